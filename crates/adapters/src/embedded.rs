//! Everything wired together on one database: the store, its projector, and the embedded
//! Expense Center and marketplaces — what the `billing` CLI and the examples run.

use std::sync::Arc;

use billing_domain::{Clock, SitePolicy, WorkspaceServices};
use billing_store::{BillingStore, Db, StoreOptions, SystemClock};

use crate::clocks::Clocks;
use crate::error::AdapterError;
use crate::expense_center::EmbeddedExpenseCenter;
use crate::marketplace::EmbeddedMarketplace;
use crate::outbox::ImportedReminders;
use crate::projector::Projector;

/// A store with its projector and embedded outside systems, sharing one database, and the clocks
/// they all run by.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// When billing happens (the services' clock) and the processes' own clock (the store's
    /// `recorded_at`, leases and claims).
    pub clocks: Clocks,
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

    /// Opens `url` with a host's site policy and the clock billing happens by (the system clock
    /// for the processes).
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
        Ok(Self::over(db, &options, policy, Clocks::billing_at(clock)))
    }

    /// Wires everything over an already connected and migrated database, running by `clocks`.
    pub fn over(db: Db, options: &StoreOptions, policy: SitePolicy, clocks: Clocks) -> Self {
        let expense_center = Arc::new(EmbeddedExpenseCenter::new(
            db.clone(),
            clocks.billing.clone(),
        ));
        let marketplace = Arc::new(EmbeddedMarketplace::new(db.clone(), clocks.billing.clone()));
        let services = WorkspaceServices {
            expense_center: expense_center.clone(),
            marketplace: marketplace.clone(),
            policy: Arc::new(policy),
            clock: clocks.billing.clone(),
        };
        let projector = Projector::start(db.clone(), clocks.process.clone());
        let store = Arc::new(
            BillingStore::from_db(db, services, options)
                .with_recording_clock(clocks.process.clone())
                .with_listener(projector.clone())
                .with_import_hook(Arc::new(ImportedReminders)),
        );
        Self {
            clocks,
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

    /// Delivers every pending notice through `mailer` ([`crate::deliver_pending`]) by these
    /// clocks.
    ///
    /// # Errors
    /// As [`crate::deliver_pending`].
    pub async fn deliver_pending(
        &self,
        mailer: &dyn crate::Mailer,
    ) -> Result<crate::outbox::DeliveryReport, AdapterError> {
        crate::deliver_pending(self.db(), mailer, &self.clocks).await
    }

    /// A scheduler of the deadlines over this store, by these clocks.
    pub fn scheduler(&self) -> crate::Scheduler {
        crate::Scheduler::new(self.store.clone(), self.clocks.clone())
    }
}
