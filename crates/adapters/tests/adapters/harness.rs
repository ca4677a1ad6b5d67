//! One backend per test: the embedded billing (store, projector, embedded ports) over it.

use std::sync::Arc;

use billing_adapters::Embedded;
use billing_domain::memory::ManualClock;
use billing_domain::*;
use billing_store::{Db, RetryPolicy, StoreOptions};
pub use billing_test_support::{BackendHarness, FreshDatabase, TestDatabase, TestDb};
use chrono::{DateTime, Utc};

pub struct Harness {
    pub db: TestDb,
    pub clock: Arc<ManualClock>,
    pub billing: Embedded,
}

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).unwrap()
}

impl BackendHarness for Harness {
    async fn sqlite() -> Self {
        let db = TestDb::sqlite();
        let clock = Arc::new(ManualClock::new(t("2026-11-27T09:00:00Z")));
        let billing = Embedded::open_with(
            &db.url().await,
            StoreOptions::default(),
            SitePolicy::builtin(),
            clock.clone(),
        )
        .await
        .unwrap();
        Self { db, clock, billing }
    }

    async fn postgres(pool: sqlx::PgPool) -> Self {
        let clock = Arc::new(ManualClock::new(t("2026-11-27T09:00:00Z")));
        let options = StoreOptions::default();
        let db = Db::from_pg_pool(pool.clone(), &options).await.unwrap();
        let billing = Embedded::over(
            db,
            &options,
            SitePolicy::builtin(),
            billing_adapters::Clocks::billing_at(clock.clone()),
        );
        Self {
            db: TestDb::Postgres(pool),
            clock,
            billing,
        }
    }
}

impl Harness {
    /// Another process on the same database: its own store, projector and cache.
    pub async fn reopen(&self) -> Embedded {
        let options = StoreOptions::default();
        let db = self.db.connect(&options).await;
        Embedded::over(
            db,
            &options,
            SitePolicy::builtin(),
            billing_adapters::Clocks::billing_at(self.clock.clone()),
        )
    }

    /// A fresh, empty database of the same backend, wired like this one (for imports); keep the
    /// database while in use.
    pub async fn fresh(&self) -> (Embedded, FreshDatabase) {
        let fresh = self.db.fresh().await;
        let e = Embedded::open_with(
            fresh.url(),
            StoreOptions::default(),
            SitePolicy::builtin(),
            self.clock.clone(),
        )
        .await
        .unwrap();
        (e, fresh)
    }

    /// A store on the same database with no projector at all (a process that dies before
    /// projecting).
    pub async fn store_without_views(&self) -> billing_store::BillingStore {
        let options = StoreOptions::default();
        let db = self.db.connect(&options).await;
        let services = WorkspaceServices {
            expense_center: Arc::new(billing_adapters::EmbeddedExpenseCenter::new(
                db.clone(),
                self.clock.clone(),
            )),
            marketplace: Arc::new(billing_adapters::EmbeddedMarketplace::new(
                db.clone(),
                self.clock.clone(),
            )),
            policy: Arc::new(SitePolicy::builtin()),
            clock: self.clock.clone(),
        };
        billing_store::BillingStore::from_db(db, services, &options)
    }

    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        billing_test_support::execute(self.billing.db(), sql).await
    }

    /// The one integer `sql` selects (a `count(*)`).
    pub async fn count(&self, sql: &str) -> i64 {
        billing_test_support::query_i64(self.billing.db(), sql).await
    }

    pub fn is_postgres(&self) -> bool {
        self.billing.db().kind() == "postgres"
    }

    pub async fn register(&self, name: &str) {
        self.billing
            .expense_center
            .register(
                &UserName::parse(name).unwrap(),
                &Email::parse("finance@example.com").unwrap(),
            )
            .await
            .unwrap();
    }

    pub async fn run(
        &self,
        workspace: &str,
        id: &str,
        action: Action,
    ) -> Result<(), billing_store::StoreError> {
        run_on(&self.billing.store, workspace, id, Role::Owner, action).await
    }
}

pub async fn run_on(
    store: &billing_store::BillingStore,
    workspace: &str,
    id: &str,
    role: Role,
    action: Action,
) -> Result<(), billing_store::StoreError> {
    let command = WorkspaceCommand::new(
        ExternalId::parse(id).unwrap(),
        Actor::new(ActorId::parse("alice").unwrap(), role),
        action,
    );
    store
        .execute_with_retry(
            &WorkspaceId::parse(workspace).unwrap(),
            &command,
            RetryPolicy::default(),
        )
        .await
        .map(|_| ())
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
    pub fn accept() -> Action {
        Action::AcceptAgreement {
            version: AgreementVersion::parse("2024-06").unwrap(),
        }
    }
    pub fn settle(method: &str, account: Option<&str>) -> Action {
        Action::ChangeSettlement(SettlementRequest::of(
            MethodId::parse(method).unwrap(),
            account.map(|a| CloudAccount {
                account_id: ExternalId::parse(a).unwrap(),
                instance_id: None,
            }),
        ))
    }
}

/// Upgrades `workspace` on `site` with the (registered) user `acme-finance`.
pub async fn upgrade(h: &Harness, workspace: &str, site: &str) {
    h.run(workspace, &format!("{workspace}-1"), act::request(site))
        .await
        .unwrap();
    h.run(
        workspace,
        &format!("{workspace}-2"),
        act::bind("acme-finance"),
    )
    .await
    .unwrap();
    h.run(workspace, &format!("{workspace}-3"), act::accept())
        .await
        .unwrap();
}
