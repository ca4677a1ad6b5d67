//! A given/when/then harness over the real ports' in-memory implementations.

use std::sync::Arc;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace, ManualClock};
use billing_domain::*;
use chrono::{DateTime, Duration, Utc};

pub const START: &str = "2026-11-27T09:00:00Z";
pub const KNOWN_USER: &str = "acme-finance";
/// The actor id the billing system acts under in these tests.
pub const SYSTEM: &str = "billing-system";

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test timestamp")
}
pub fn site(s: &str) -> SiteId {
    SiteId::parse(s).unwrap()
}
pub fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}
pub fn method(s: &str) -> MethodId {
    MethodId::parse(s).unwrap()
}
pub fn version(s: &str) -> AgreementVersion {
    AgreementVersion::parse(s).unwrap()
}
pub fn actor_id(s: &str) -> ActorId {
    ActorId::parse(s).unwrap()
}
pub fn cloud(account: &str, instance: Option<&str>) -> CloudAccount {
    CloudAccount {
        account_id: ExternalId::parse(account).unwrap(),
        instance_id: instance.map(|i| ExternalId::parse(i).unwrap()),
    }
}
pub fn aws(account: &str) -> Settlement {
    Settlement::Cloud {
        method: method("aws"),
        account: cloud(account, None),
    }
}
pub fn bill(s: &str) -> BillId {
    BillId::parse(s).unwrap()
}
pub fn cny(minor: u64) -> Money {
    Money::new(minor, Currency::Cny).unwrap()
}
pub fn ali(account: &str, instance: &str) -> Settlement {
    Settlement::Cloud {
        method: method("alibaba-cloud"),
        account: cloud(account, Some(instance)),
    }
}
/// The actor id each role acts under in these tests.
pub fn actor_of(role: Role) -> ActorId {
    actor_id(match role {
        Role::Owner => "alice",
        Role::Admin => "bob",
        Role::Member => "carol",
        Role::System => SYSTEM,
    })
}
pub fn enterprise(name: &str) -> Settlement {
    Settlement::Enterprise {
        user_name: user(name),
    }
}

/// Events as the owner `alice` produces them at `at`.
pub mod ev {
    use super::*;

    pub fn requested(s: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::UpgradeRequested(UpgradeRequested {
            site: site(s),
            by: actor_id("alice"),
            at,
        })
    }
    pub fn bound(name: &str, account_id: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::AccountBound(AccountBound {
            user_name: user(name),
            account_id: ExternalId::parse(account_id).unwrap(),
            newly_registered: false,
            by: actor_id("alice"),
            at,
        })
    }
    pub fn accepted(v: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::AgreementAccepted(AgreementAccepted {
            agreement_version: version(v),
            by: actor_id("alice"),
            at,
        })
    }
    pub fn upgraded(s: &str, name: &str, v: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::PlanUpgraded(PlanUpgraded {
            site: site(s),
            agreement_version: version(v),
            settlement: enterprise(name),
            by: actor_id("alice"),
            at,
        })
    }
    /// An owner's settlement change (reason `owner-request`).
    pub fn changed(from: Settlement, to: Settlement, at: DateTime<Utc>) -> WorkspaceEvent {
        changed_because(from, to, ChangeReason::OwnerRequest, "alice", at)
    }
    pub fn changed_because(
        from: Settlement,
        to: Settlement,
        reason: ChangeReason,
        by: &str,
        at: DateTime<Utc>,
    ) -> WorkspaceEvent {
        WorkspaceEvent::SettlementChanged(SettlementChanged {
            from,
            to,
            reason,
            by: actor_id(by),
            at,
        })
    }
    /// The billing system's fall-back to the bound account after a cloud subscription ended.
    pub fn fell_back(from: Settlement, at: DateTime<Utc>) -> WorkspaceEvent {
        changed_because(
            from,
            enterprise(KNOWN_USER),
            ChangeReason::CloudSubscriptionEnded,
            SYSTEM,
            at,
        )
    }
    /// Arrears on `b` of `minor` fen, reported by the billing system.
    pub fn arrears(b: &str, minor: u64, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::ArrearsRecorded(ArrearsRecorded {
            amount: cny(minor),
            at,
            bill: bill(b),
            by: actor_id(SYSTEM),
        })
    }
    pub fn arrears_settled(b: &str, by: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::ArrearsSettled(ArrearsSettled {
            at,
            bill: bill(b),
            by: actor_id(by),
            stored_value_card: None,
        })
    }
    pub fn sub_ended(m: &str, account: CloudAccount, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::CloudSubscriptionEnded(CloudSubscriptionEnded {
            account,
            at,
            by: actor_id(SYSTEM),
            method: method(m),
        })
    }
    pub fn sub_resumed(m: &str, account: CloudAccount, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::CloudSubscriptionResumed(CloudSubscriptionResumed {
            account,
            at,
            by: actor_id(SYSTEM),
            method: method(m),
        })
    }
    /// Countdown `n` started at `at` by `by`, with the built-in 14 days and 3 days' lead.
    pub fn countdown(n: u32, by: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::CountdownStarted(CountdownStarted {
            at,
            by: actor_id(by),
            countdown: n,
            deadline: at + Duration::days(14),
            remind_at: at + Duration::days(11),
        })
    }
    pub fn reminded(n: u32, deadline: DateTime<Utc>, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::CountdownReminded(CountdownReminded {
            at,
            by: actor_id(SYSTEM),
            countdown: n,
            deadline,
        })
    }
    pub fn locked(n: u32, deadline: DateTime<Utc>, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::WorkspaceLocked(WorkspaceLocked {
            at,
            by: actor_id(SYSTEM),
            countdown: n,
            deadline,
        })
    }
    pub fn unlocked(n: u32, by: &str, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::WorkspaceUnlocked(WorkspaceUnlocked {
            at,
            by: actor_id(by),
            countdown: n,
        })
    }
    pub fn dissolved(n: u32, at: DateTime<Utc>) -> WorkspaceEvent {
        WorkspaceEvent::WorkspaceDissolved(WorkspaceDissolved {
            at,
            by: actor_id("alice"),
            countdown: n,
        })
    }

    /// The whole upgrade of a workspace on `s`, bound to the known user, at `at`.
    pub fn upgrade(s: &str, at: DateTime<Utc>) -> Vec<WorkspaceEvent> {
        vec![
            requested(s, at),
            bound(KNOWN_USER, "ec-000001", at),
            accepted("2024-06", at),
            upgraded(s, KNOWN_USER, "2024-06", at),
        ]
    }
}

/// The outside world of one scenario.
pub struct World {
    pub expense_center: Arc<InMemoryExpenseCenter>,
    pub marketplace: Arc<InMemoryMarketplace>,
    pub clock: Arc<ManualClock>,
    pub services: WorkspaceServices,
    runtime: tokio::runtime::Runtime,
}

impl World {
    /// An Expense Center that knows `acme-finance` (as `ec-000001`), no subscriptions, the
    /// built-in site policy and a clock at [`START`].
    pub fn new() -> Self {
        Self::with_policy(SitePolicy::builtin())
    }

    /// As [`World::new`], deciding by `policy`.
    pub fn with_policy(policy: SitePolicy) -> Self {
        let expense_center = Arc::new(InMemoryExpenseCenter::new());
        expense_center.add(&user(KNOWN_USER));
        let marketplace = Arc::new(InMemoryMarketplace::new());
        let clock = Arc::new(ManualClock::new(t(START)));
        let services = WorkspaceServices {
            expense_center: expense_center.clone(),
            marketplace: marketplace.clone(),
            policy: Arc::new(policy),
            clock: clock.clone(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime");
        Self {
            expense_center,
            marketplace,
            clock,
            services,
            runtime,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        billing_domain::Clock::now(self.clock.as_ref())
    }

    pub fn given(&self, events: Vec<WorkspaceEvent>) -> Given<'_> {
        let state = Workspace::replay(&events).expect("given events form a valid history");
        Given { world: self, state }
    }

    pub fn given_state(&self, state: Workspace) -> Given<'_> {
        Given { world: self, state }
    }

    pub fn execute(
        &self,
        state: &Workspace,
        command: &WorkspaceCommand,
    ) -> Result<Vec<WorkspaceEvent>, DomainError> {
        self.runtime
            .block_on(execute(state, command, &self.services))
    }
}

pub struct Given<'w> {
    world: &'w World,
    pub state: Workspace,
}

pub struct Then {
    pub before: Workspace,
    pub result: Result<Vec<WorkspaceEvent>, DomainError>,
}

impl Given<'_> {
    pub fn when(&self, role: Role, action: Action) -> Then {
        let command = WorkspaceCommand::new(
            ExternalId::parse("cmd-1").unwrap(),
            Actor::new(actor_of(role), role),
            action,
        );
        Then {
            before: self.state.clone(),
            result: self.world.execute(&self.state, &command),
        }
    }

    pub fn when_owner(&self, action: Action) -> Then {
        self.when(Role::Owner, action)
    }

    pub fn when_system(&self, action: Action) -> Then {
        self.when(Role::System, action)
    }
}

impl Then {
    /// Asserts the command succeeded with exactly `expected`, and returns the new state.
    #[track_caller]
    pub fn then_events(self, expected: Vec<WorkspaceEvent>) -> Workspace {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected);
                Workspace::replay_from(&self.before, &events)
            }
            Err(e) => panic!("expected events, got refusal: {e}"),
        }
    }

    /// Asserts the command was refused under `code` and returns the error.
    #[track_caller]
    pub fn then_refused(self, code: &str) -> DomainError {
        match self.result {
            Ok(events) => panic!("expected refusal {code}, got events {events:?}"),
            Err(e) => {
                assert_eq!(e.code(), code, "wrong refusal: {e}");
                e
            }
        }
    }
}

pub trait ReplayFrom {
    fn replay_from(state: &Workspace, events: &[WorkspaceEvent]) -> Workspace;
}

impl ReplayFrom for Workspace {
    #[track_caller]
    fn replay_from(state: &Workspace, events: &[WorkspaceEvent]) -> Workspace {
        events.iter().fold(state.clone(), |s, e| {
            s.evolve(e).expect("emitted events evolve")
        })
    }
}

pub mod act {
    use super::*;

    pub fn request(s: &str) -> Action {
        Action::RequestUpgrade { site: site(s) }
    }
    pub fn bind(name: &str) -> Action {
        Action::BindAccount {
            user_name: user(name),
        }
    }
    pub fn register(name: &str) -> Action {
        Action::RegisterAndBindAccount {
            user_name: user(name),
            email: Email::parse("finance@acme.example").unwrap(),
        }
    }
    pub fn accept(v: &str) -> Action {
        Action::AcceptAgreement {
            version: version(v),
        }
    }
    pub fn settle(m: &str, account: Option<CloudAccount>) -> Action {
        Action::ChangeSettlement(SettlementRequest::of(method(m), account))
    }
    pub fn record(b: &str, minor: u64) -> Action {
        Action::RecordArrears {
            bill: bill(b),
            amount: cny(minor),
        }
    }
    pub fn pay(b: &str) -> Action {
        Action::SettleArrears {
            bill: bill(b),
            stored_value_card: None,
        }
    }
    pub fn ended(m: &str, account: CloudAccount) -> Action {
        Action::ReportSubscriptionEnded {
            method: method(m),
            account,
        }
    }
    pub fn resumed(m: &str, account: CloudAccount) -> Action {
        Action::ReportSubscriptionResumed {
            method: method(m),
            account,
        }
    }
}
