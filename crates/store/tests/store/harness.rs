//! One backend per test, and the outside world around it.

use std::sync::Arc;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace, ManualClock};
use billing_domain::*;
use billing_store::{BillingStore, StoreOptions};
pub use billing_test_support::{BackendHarness, FreshDatabase, TestDatabase, TestDb};
use chrono::{DateTime, Utc};

pub const KNOWN_USER: &str = "acme-finance";

pub struct World {
    pub expense_center: Arc<InMemoryExpenseCenter>,
    pub marketplace: Arc<InMemoryMarketplace>,
    pub clock: Arc<ManualClock>,
    pub services: WorkspaceServices,
}

impl World {
    pub fn clock_now(&self) -> DateTime<Utc> {
        Clock::now(self.clock.as_ref())
    }

    pub fn new() -> Self {
        let expense_center = Arc::new(InMemoryExpenseCenter::new());
        expense_center.add(&UserName::parse(KNOWN_USER).unwrap());
        let marketplace = Arc::new(InMemoryMarketplace::new());
        let clock = Arc::new(ManualClock::new(
            "2026-11-27T09:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        ));
        let services = WorkspaceServices {
            expense_center: expense_center.clone(),
            marketplace: marketplace.clone(),
            policy: Arc::new(SitePolicy::builtin()),
            clock: clock.clone(),
        };
        Self {
            expense_center,
            marketplace,
            clock,
            services,
        }
    }
}

pub struct Harness {
    pub world: World,
    pub backend: TestDb,
    pub store: BillingStore,
}

impl BackendHarness for Harness {
    async fn sqlite() -> Self {
        let backend = TestDb::sqlite();
        let world = World::new();
        let store = BillingStore::open(&backend.url().await, world.services.clone())
            .await
            .unwrap();
        Self {
            world,
            backend,
            store,
        }
    }

    async fn postgres(pool: sqlx::PgPool) -> Self {
        let world = World::new();
        let store = BillingStore::from_pg_pool(pool.clone(), world.services.clone())
            .await
            .unwrap();
        Self {
            world,
            backend: TestDb::Postgres(pool),
            store,
        }
    }
}

impl Harness {
    /// Another store over the same database, with its own (empty) cache — another process.
    pub async fn reopen(&self) -> BillingStore {
        let options = StoreOptions::default();
        let db = self.backend.connect(&options).await;
        BillingStore::from_db(db, self.world.services.clone(), &options)
    }

    /// A fresh, empty store of the same backend (for imports); keep the database while in use.
    pub async fn fresh(&self) -> (BillingStore, FreshDatabase) {
        let fresh = self.backend.fresh().await;
        let store = BillingStore::open(fresh.url(), self.world.services.clone())
            .await
            .unwrap();
        (store, fresh)
    }

    /// Runs raw SQL against the database, bypassing the store.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        billing_test_support::execute(self.store.db(), sql).await
    }

    pub async fn count(&self, table: &str) -> i64 {
        billing_test_support::query_i64(self.store.db(), &format!("SELECT count(*) FROM {table}"))
            .await
    }
}

pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

pub fn owner_cmd(id: &str, action: Action) -> WorkspaceCommand {
    cmd(id, Role::Owner, action)
}

pub fn cmd(id: &str, role: Role, action: Action) -> WorkspaceCommand {
    WorkspaceCommand::new(
        ExternalId::parse(id).unwrap(),
        Actor::new(ActorId::parse("alice").unwrap(), role),
        action,
    )
}

pub mod act {
    use super::*;

    pub fn request(site: &str) -> Action {
        Action::RequestUpgrade {
            site: SiteId::parse(site).unwrap(),
        }
    }
    pub fn bind(name: &str) -> Action {
        Action::BindAccount {
            user_name: UserName::parse(name).unwrap(),
        }
    }
    pub fn register(name: &str) -> Action {
        Action::RegisterAndBindAccount {
            user_name: UserName::parse(name).unwrap(),
            email: Email::parse("finance@example.com").unwrap(),
        }
    }
    pub fn accept() -> Action {
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06").unwrap(),
        }
    }
    pub fn settle(method: &str, account: Option<(&str, Option<&str>)>) -> Action {
        Action::ChangeSettlement(SettlementRequest::of(
            MethodId::parse(method).unwrap(),
            account.map(|(a, i)| CloudAccount {
                account_id: ExternalId::parse(a).unwrap(),
                instance_id: i.map(|i| ExternalId::parse(i).unwrap()),
            }),
        ))
    }
}

/// Runs the upgrade flow on `workspace` (site `site`), with command ids prefixed by it.
pub async fn upgrade(store: &BillingStore, workspace: &str, site: &str) {
    let w = ws(workspace);
    for (i, action) in [act::request(site), act::bind(KNOWN_USER), act::accept()]
        .into_iter()
        .enumerate()
    {
        store
            .execute(&w, &owner_cmd(&format!("{workspace}-{i}"), action))
            .await
            .unwrap();
    }
}
