//! Everything wired together on one database: the store, its projector, and the embedded
//! Expense Center and marketplaces — what the `billing` CLI and the examples run.

use std::sync::Arc;

use billing_domain::{Clock, SitePolicy, WorkspaceServices};
use billing_store::{BillingStore, Db, StoreOptions, SystemClock};

use crate::error::AdapterError;
use crate::expense_center::EmbeddedExpenseCenter;
use crate::marketplace::EmbeddedMarketplace;
use crate::outbox::ImportedReminders;
use crate::projector::Projector;

/// A store with its projector and embedded outside systems, sharing one database.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The command executor.
    pub store: Arc<BillingStore>,
    /// Keeps the views and the outbox up to date.
    pub projector: Arc<Projector>,
    /// The embedded Expense Center directory.
    pub expense_center: Arc<EmbeddedExpenseCenter>,
    /// The embedded marketplace subscriptions.
    pub marketplace: Arc<EmbeddedMarketplace>,
}

impl Embedded {
    /// Opens `url` with the built-in site policy and the system clock.
    ///
    /// # Errors
    /// The store's errors for a bad URL, an unavailable database or failed migrations.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self, AdapterError> {
        Self::open_with(url, options, SitePolicy::builtin(), Arc::new(SystemClock)).await
    }

    /// Opens `url` with a host's site policy and clock.
    ///
    /// # Errors
    /// As [`Embedded::open`].
    pub async fn open_with(
        url: &str,
        options: StoreOptions,
        policy: SitePolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AdapterError> {
        let db = Db::connect(url, &options).await?;
        Ok(Self::over(db, &options, policy, clock))
    }

    /// Wires everything over an already connected and migrated database.
    pub fn over(db: Db, options: &StoreOptions, policy: SitePolicy, clock: Arc<dyn Clock>) -> Self {
        let expense_center = Arc::new(EmbeddedExpenseCenter::new(db.clone()));
        let marketplace = Arc::new(EmbeddedMarketplace::new(db.clone()));
        let services = WorkspaceServices {
            expense_center: expense_center.clone(),
            marketplace: marketplace.clone(),
            policy: Arc::new(policy),
            clock,
        };
        let projector = Projector::start(db.clone());
        let store = Arc::new(
            BillingStore::from_db(db, services, options)
                .with_listener(projector.clone())
                .with_import_hook(Arc::new(ImportedReminders)),
        );
        Self {
            store,
            projector,
            expense_center,
            marketplace,
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        self.store.db()
    }
}
