//! A reference-model state machine test: random sequences of commands (every role, the billing
//! system included; sites, user names known and unknown, settlement requests; arrears, ended and
//! resumed subscriptions, reminders, locks, dissolve), clock jumps of seconds and of days, the
//! clock set back, and marketplace changes run against the real aggregate and ports, and against
//! the independent model of `state_machine_model.rs`. After every step the outcomes (the event
//! types or the refusal code) must agree and invariants I1–I8 and I12–I14 must hold.

use std::sync::LazyLock;

use billing_domain::*;
use chrono::{DateTime, Duration, Utc};
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, StateMachineTest};

use crate::harness::{actor_of, user, World, SYSTEM};
use crate::state_machine_model::*;

static POLICY: LazyLock<SitePolicy> = LazyLock::new(SitePolicy::builtin);

struct Sut {
    world: World,
    state: Workspace,
    log: Vec<WorkspaceEvent>,
    commands: u64,
    ever_commercial: bool,
    /// The state at the moment it was dissolved (I13: it never changes afterwards).
    dissolved: Option<Workspace>,
}

struct WorkspaceUnderTest;

impl StateMachineTest for WorkspaceUnderTest {
    type SystemUnderTest = Sut;
    type Reference = WorkspaceMachine;

    fn init_test(model: &Model) -> Sut {
        let world = World::new();
        for name in PRESEEDED {
            world.expense_center.add(&user(name));
        }
        world.clock.set(model.now);
        Sut {
            world,
            state: Workspace::default(),
            log: Vec::new(),
            commands: 0,
            ever_commercial: false,
            dissolved: None,
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        match step {
            Step::Command { role, action } => {
                sut.commands += 1;
                let command = WorkspaceCommand::new(
                    ExternalId::parse(&format!("cmd-{}", sut.commands)).unwrap(),
                    Actor::new(actor_of(role), role),
                    action.clone(),
                );
                let now = sut.world.now();
                let result = sut.world.execute(&sut.state, &command);
                check_deadlines_fire(&sut.state, role, &action, now, &result);
                if sut.dissolved.is_some() {
                    // I13: a dissolved workspace refuses every command, whoever sends it.
                    assert_eq!(
                        result.as_ref().map_err(DomainError::code).err(),
                        Some("workspace-dissolved"),
                        "{action:?} after dissolve"
                    );
                }
                match (result, &model.expected) {
                    (Ok(events), Some(Ok(types))) => {
                        let got: Vec<_> = events.iter().map(WorkspaceEvent::event_type).collect();
                        assert_eq!(&got, types, "{role} {action:?} produced {events:?}");
                        for event in &events {
                            check_at_emission(&sut, event);
                            sut.state = sut
                                .state
                                .evolve(event)
                                .unwrap_or_else(|e| panic!("emitted event does not evolve: {e}"));
                            sut.log.push(event.clone());
                        }
                        sut.ever_commercial |= sut.state.plan() == Plan::Commercial;
                        if sut
                            .state
                            .standing()
                            .and_then(Standing::dissolved_at)
                            .is_some()
                        {
                            sut.dissolved.get_or_insert_with(|| sut.state.clone());
                        }
                    }
                    // I5: a refusal returns no events, so neither state nor log can change.
                    (Err(e), Some(Err(code))) => {
                        assert_eq!(e.code(), *code, "{role} {action:?}: {e}");
                        if std::env::var_os("SM_STATS").is_some() {
                            eprintln!("CODE {code}");
                        }
                    }
                    (result, expected) => {
                        panic!("{action:?}: aggregate gave {result:?}, model expected {expected:?}")
                    }
                }
            }
            Step::Advance { seconds } => sut.world.clock.advance(Duration::seconds(seconds)),
            Step::Rewind { seconds } => sut.world.clock.advance(Duration::seconds(-seconds)),
            Step::Subscribe { method, account } => {
                sut.world.marketplace.subscribe(&method, &account)
            }
            Step::Unsubscribe { method, account } => {
                sut.world.marketplace.unsubscribe(&method, &account)
            }
            Step::AccountCreatedElsewhere { user_name } => {
                sut.world.expense_center.add(&user_name);
            }
        }
        sut
    }

    fn teardown(sut: Sut, _model: Model) {
        if std::env::var_os("SM_STATS").is_some() {
            let changes = sut.state.settlement_changes();
            let has = |kind: &str| sut.log.iter().any(|e| e.event_type() == kind);
            eprintln!(
                "STATS commercial={} changes={} events={} countdown={} reminded={} locked={} unlocked={} dissolved={} fallback={}",
                sut.ever_commercial,
                changes.min(3),
                sut.log.len().min(20) / 5 * 5,
                has("CountdownStarted"),
                has("CountdownReminded"),
                has("WorkspaceLocked"),
                has("WorkspaceUnlocked"),
                has("WorkspaceDissolved"),
                sut.log.iter().any(|e| matches!(e, WorkspaceEvent::SettlementChanged(c) if c.by.as_str() == SYSTEM)),
            );
        }
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let state = &sut.state;
        // The aggregate and the model agree on what the workspace looks like.
        assert_eq!(state.plan() == Plan::Commercial, model.commercial);
        assert_eq!(state.site().map(|s| s.as_str().to_owned()), model.site);
        assert_eq!(
            state.bound_account().map(|a| a.user_name.clone()),
            model.bound
        );
        let settlement = state.settlement().map(|s| {
            (
                s.method().as_str().to_owned(),
                s.cloud().map(|(_, a)| a.clone()),
            )
        });
        assert_eq!(settlement, model.settlement);
        check_standing(state, model);

        // I1: once commercial, every later state is commercial.
        if sut.ever_commercial {
            assert_eq!(state.plan(), Plan::Commercial);
        }
        if sut
            .log
            .iter()
            .any(|e| matches!(e, WorkspaceEvent::PlanUpgraded(_)))
        {
            assert_eq!(state.plan(), Plan::Commercial);
            assert_eq!(state.data_visible_from(), state.upgraded_at());
        }
        check_order(&sut.log);
        // I3: every bound user name is one the Expense Center knows.
        for event in &sut.log {
            if let WorkspaceEvent::AccountBound(b) = event {
                assert!(sut.world.expense_center.contains(&b.user_name));
            }
        }
        // I4: the settlement method is one the site allows.
        if let (Some(site), Some(settlement)) = (state.site(), state.settlement()) {
            assert!(POLICY.site(site).unwrap().allows(&settlement.method()));
        }
        check_once_a_month(state, &sut.log);
        check_locks(state, &sut.log);
        check_dissolved_is_terminal(sut);
        check_notices_at_most_once(&sut.log);
        // I8: folding the log again gives the live state, through both entry points.
        assert_eq!(&Workspace::replay(&sut.log).unwrap(), state);
        let mut via_cqrs = Workspace::default();
        for event in &sut.log {
            cqrs_es::Aggregate::apply(&mut via_cqrs, event.clone());
        }
        assert_eq!(&via_cqrs, state);
        let json = serde_json::to_string(state).unwrap();
        assert_eq!(&serde_json::from_str::<Workspace>(&json).unwrap(), state);
        assert_eq!(
            state.settlement_changes() as usize,
            sut.log
                .iter()
                .filter(|e| matches!(e, WorkspaceEvent::SettlementChanged(_)))
                .count()
        );
    }
}

/// Checks made at the moment an event is emitted, against the outside world as it is then.
fn check_at_emission(sut: &Sut, event: &WorkspaceEvent) {
    match event {
        // I3: the Expense Center confirms the name at binding time.
        WorkspaceEvent::AccountBound(b) => assert!(sut.world.expense_center.contains(&b.user_name)),
        // I7: leaving a cloud account happens only once its subscription ended; a chosen cloud
        // account is subscribed.
        WorkspaceEvent::SettlementChanged(c) => {
            // A fall-back is the billing system's report that the subscription ended; every other
            // change leaves a cloud account only once the marketplace says it ended.
            let fall_back =
                c.reason == ChangeReason::CloudSubscriptionEnded && c.by.as_str() == SYSTEM;
            if let (false, Some((m, a))) = (fall_back, c.from.cloud()) {
                assert!(
                    !sut.world.marketplace.is_active(m, a),
                    "left an active subscription"
                );
            }
            if let Some((m, a)) = c.to.cloud() {
                assert!(
                    sut.world.marketplace.is_active(m, a),
                    "chose an unsubscribed account"
                );
            }
        }
        _ => {}
    }
}

/// I2: PlanUpgraded at most once, right after AgreementAccepted, only after UpgradeRequested and
/// AccountBound; AgreementAccepted is always followed by PlanUpgraded.
fn check_order(log: &[WorkspaceEvent]) {
    let position = |name: &str| log.iter().position(|e| e.event_type() == name);
    let count = |name: &str| log.iter().filter(|e| e.event_type() == name).count();
    assert!(count("PlanUpgraded") <= 1);
    assert!(count("UpgradeRequested") <= 1);
    assert!(count("AccountBound") <= 1);
    assert_eq!(count("AgreementAccepted"), count("PlanUpgraded"));
    if let Some(i) = position("PlanUpgraded") {
        assert!(i >= 3);
        assert_eq!(log[i - 1].event_type(), "AgreementAccepted");
        assert!(position("UpgradeRequested").unwrap() < position("AccountBound").unwrap());
        assert!(position("AccountBound").unwrap() < i - 1);
    }
}

/// I6: consecutive changes the owner asked for fall in strictly later calendar months (site time
/// zone); changes because a cloud subscription ended do not count.
fn check_once_a_month(state: &Workspace, log: &[WorkspaceEvent]) {
    let Some(site) = state.site() else { return };
    let Ok(site) = POLICY.site(site) else { return };
    let months: Vec<_> = log
        .iter()
        .filter_map(|e| match e {
            WorkspaceEvent::SettlementChanged(c) if c.reason == ChangeReason::OwnerRequest => {
                Some(year_month(c.at, site.time_zone))
            }
            _ => None,
        })
        .collect();
    assert!(
        months.windows(2).all(|w| w[0] < w[1]),
        "two changes in one month: {months:?}"
    );
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        max_shrink_iters: 4096,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        .. Config::default()
    })]

    /// I1–I8 and I12–I14 over random command sequences (up to 60 steps), against the reference
    /// model.
    #[test]
    fn the_aggregate_follows_the_reference_model(sequential 1..=60 => WorkspaceUnderTest);
}

/// The aggregate's standing agrees with the model's: name, reasons, countdown and its times.
fn check_standing(state: &Workspace, model: &Model) {
    let Some(c) = state.commercial() else {
        assert!(!model.commercial);
        return;
    };
    let name = match model.standing {
        MStanding::Good => "good",
        MStanding::Countdown => "countdown",
        MStanding::Locked => "locked",
        MStanding::Dissolved => "dissolved",
    };
    assert_eq!(c.standing().as_str(), name);
    let reasons: Vec<_> = c
        .reasons()
        .iter()
        .map(|r| match r {
            Reason::Arrears { bill, .. } => MReason::Bill(bill.as_str().to_owned()),
            Reason::CloudSubscriptionEnded {
                method, account, ..
            } => MReason::Cloud(method.as_str().to_owned(), account.clone()),
        })
        .collect();
    assert_eq!(reasons, model.reasons);
    assert_eq!(c.countdowns(), model.countdowns);
    assert_eq!(c.last_settlement_change_at(), model.last_change);
    assert_eq!(state.newest_event_at(), model.newest);
    if model.standing != MStanding::Good {
        let running = c.standing().countdown().unwrap();
        let expected = model.countdown.as_ref().unwrap();
        assert_eq!(running.number, expected.number);
        assert_eq!(running.deadline, expected.deadline);
        assert_eq!(running.remind_at, expected.remind_at);
        assert_eq!(running.reminded_at.is_some(), expected.reminded);
    }
}

/// I12: a workspace is locked only after its countdown's deadline passed with a reason still
/// open (checked for every lock in the log), and never while no reason is open (checked after
/// every command: within one command the last reason's clearing and the unlock are two events).
fn check_locks(live: &Workspace, log: &[WorkspaceEvent]) {
    if let Some(Standing::Locked { .. } | Standing::Countdown(_)) = live.standing() {
        assert!(
            !live.reasons().is_empty(),
            "locked or counting down with no reason open"
        );
    }
    let mut state = Workspace::default();
    for event in log {
        if let WorkspaceEvent::WorkspaceLocked(locked) = event {
            let Some(Standing::Countdown(running)) = state.standing() else {
                panic!("locked outside a countdown")
            };
            assert!(locked.at >= running.deadline, "locked before the deadline");
            assert_eq!(locked.deadline, running.deadline);
            assert!(!state.reasons().is_empty(), "locked with no reason open");
        }
        state = state.evolve(event).unwrap();
    }
}

/// I13: dissolved is terminal — it is the last event, and the state never changes after it.
fn check_dissolved_is_terminal(sut: &Sut) {
    if let Some(i) = sut
        .log
        .iter()
        .position(|e| matches!(e, WorkspaceEvent::WorkspaceDissolved(_)))
    {
        assert_eq!(i, sut.log.len() - 1, "events after dissolve");
        assert_eq!(sut.dissolved.as_ref(), Some(&sut.state));
    }
}

/// I14 (domain level): each countdown's reminder and lock appear at most once in the log.
fn check_notices_at_most_once(log: &[WorkspaceEvent]) {
    let mut seen = std::collections::BTreeSet::new();
    for event in log {
        let key = match event {
            WorkspaceEvent::CountdownStarted(e) => ("started", e.countdown),
            WorkspaceEvent::CountdownReminded(e) => ("reminded", e.countdown),
            WorkspaceEvent::WorkspaceLocked(e) => ("locked", e.countdown),
            WorkspaceEvent::WorkspaceUnlocked(e) => ("unlocked", e.countdown),
            WorkspaceEvent::WorkspaceDissolved(e) => ("dissolved", e.countdown),
            _ => continue,
        };
        assert!(seen.insert(key), "{key:?} twice");
    }
}

/// I14 (domain level): once a deadline is due, the billing system's reminder or lock happens.
fn check_deadlines_fire(
    before: &Workspace,
    role: Role,
    action: &Action,
    now: DateTime<Utc>,
    result: &Result<Vec<WorkspaceEvent>, DomainError>,
) {
    let Some(Standing::Countdown(running)) = before.standing() else {
        return;
    };
    if role != Role::System || before.newest_event_at().is_some_and(|n| now < n) {
        return;
    }
    let fired = |kind: &str| {
        result
            .as_ref()
            .is_ok_and(|events| events.iter().any(|e| e.event_type() == kind))
    };
    match action {
        Action::SendReminder if running.reminded_at.is_none() && now >= running.remind_at => {
            assert!(
                fired("CountdownReminded"),
                "a due reminder did not fire: {result:?}"
            );
        }
        Action::Lock if now >= running.deadline => {
            assert!(
                fired("WorkspaceLocked"),
                "a due lock did not fire: {result:?}"
            );
        }
        _ => {}
    }
}
