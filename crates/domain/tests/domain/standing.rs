//! Given/when/then for SPEC §10: arrears and ended cloud subscriptions, the countdown, the
//! reminder, the lock, unlocking, dissolving, and the refusals of each.

use billing_domain::*;
use chrono::{DateTime, Duration, Utc};

use crate::harness::*;

pub const UPGRADED: &str = "2026-11-01T00:00:00Z";

/// A commercial workspace on `s`, upgraded at [`UPGRADED`].
pub fn upgraded(s: &str) -> Vec<WorkspaceEvent> {
    ev::upgrade(s, t(UPGRADED))
}

/// A workspace on cn4 in countdown 1 since `at` over bill `b-1`.
pub fn in_countdown(at: DateTime<Utc>) -> Vec<WorkspaceEvent> {
    let mut log = upgraded("cn4");
    log.push(ev::arrears("b-1", 1234, at));
    log.push(ev::countdown(1, SYSTEM, at));
    log
}

/// A workspace on cn4 locked at the deadline of a countdown that started at `at`.
pub fn locked_since(at: DateTime<Utc>) -> Vec<WorkspaceEvent> {
    let mut log = in_countdown(at);
    let deadline = at + Duration::days(14);
    log.push(ev::locked(1, deadline, deadline));
    log
}

/// A workspace on us1 settling through AWS account 123456789012 since `at`.
pub fn on_aws(at: DateTime<Utc>) -> Vec<WorkspaceEvent> {
    let mut log = upgraded("us1");
    log.push(ev::changed(enterprise(KNOWN_USER), aws("123456789012"), at));
    log
}

fn aws_account() -> CloudAccount {
    cloud("123456789012", None)
}

// ---- the countdown ----------------------------------------------------------------------------

#[test]
fn arrears_start_a_countdown_of_fourteen_days_with_a_reminder_three_days_before() {
    let world = World::new();
    let now = world.now();
    let state = world
        .given(upgraded("cn4"))
        .when_system(act::record("b-1", 1234))
        .then_events(vec![
            ev::arrears("b-1", 1234, now),
            ev::countdown(1, SYSTEM, now),
        ]);
    let Some(Standing::Countdown(running)) = state.standing() else {
        panic!("{:?}", state.standing())
    };
    assert_eq!(running.number, 1);
    assert_eq!(running.started_at, now);
    assert_eq!(running.deadline, now + Duration::days(14));
    assert_eq!(running.remind_at, running.deadline - Duration::days(3));
    assert_eq!(running.reminded_at, None);
    assert_eq!(state.reasons().len(), 1);
    assert!(state.reasons()[0].is_bill(&bill("b-1")));
    assert_eq!(
        state.plan(),
        Plan::Commercial,
        "every standing is the Commercial Plan"
    );
}

#[test]
fn a_second_reason_joins_the_countdown_without_moving_the_deadline() {
    let world = World::new();
    let start = world.now();
    world.clock.advance(Duration::days(2));
    let state = world
        .given(in_countdown(start))
        .when_system(act::record("b-2", 500))
        .then_events(vec![ev::arrears("b-2", 500, world.now())]);
    let running = state.standing().unwrap().countdown().unwrap();
    assert_eq!(running.deadline, start + Duration::days(14));
    assert_eq!(state.reasons().len(), 2);
    assert_eq!(state.commercial().unwrap().countdowns(), 1);
}

#[test]
fn the_reminder_fires_once_from_remind_at() {
    let world = World::new();
    let start = world.now();
    let deadline = start + Duration::days(14);
    let remind_at = deadline - Duration::days(3);
    world.clock.set(remind_at - Duration::seconds(1));
    let err = world
        .given(in_countdown(start))
        .when_system(Action::SendReminder)
        .then_refused("deadline-not-reached");
    let text = err.to_string();
    assert!(
        text.contains("reminder") && text.contains(&remind_at.to_string()),
        "{text}"
    );
    world.clock.set(remind_at);
    let state = world
        .given(in_countdown(start))
        .when_system(Action::SendReminder)
        .then_events(vec![ev::reminded(1, deadline, remind_at)]);
    assert_eq!(
        state.standing().unwrap().countdown().unwrap().reminded_at,
        Some(remind_at)
    );
    let mut log = in_countdown(start);
    log.push(ev::reminded(1, deadline, remind_at));
    world.clock.advance(Duration::hours(1));
    let err = world
        .given(log)
        .when_system(Action::SendReminder)
        .then_refused("reminder-already-sent");
    assert!(err.to_string().contains("countdown 1"), "{err}");
}

#[test]
fn the_lock_fires_at_the_deadline_and_not_before() {
    let world = World::new();
    let start = world.now();
    let deadline = start + Duration::days(14);
    world.clock.set(deadline - Duration::seconds(1));
    let err = world
        .given(in_countdown(start))
        .when_system(Action::Lock)
        .then_refused("deadline-not-reached");
    assert!(err.to_string().contains(&deadline.to_string()), "{err}");
    for at in [deadline, deadline + Duration::days(3)] {
        world.clock.set(at);
        let state = world
            .given(in_countdown(start))
            .when_system(Action::Lock)
            .then_events(vec![ev::locked(1, deadline, at)]);
        assert_eq!(state.standing().unwrap().locked_at(), Some(at));
        assert_eq!(state.standing().unwrap().as_str(), "locked");
    }
}

#[test]
fn reminders_and_locks_need_a_running_countdown() {
    let world = World::new();
    for action in [Action::SendReminder, Action::Lock] {
        let err = world
            .given(upgraded("cn4"))
            .when_system(action.clone())
            .then_refused("not-in-countdown");
        assert!(err.to_string().contains("good"), "{err}");
        world
            .given(vec![])
            .when_system(action.clone())
            .then_refused("not-commercial-yet");
    }
    let start = t("2026-11-02T00:00:00Z");
    let err = world
        .given(locked_since(start))
        .when_system(Action::SendReminder)
        .then_refused("not-in-countdown");
    assert!(err.to_string().contains("locked"), "{err}");
}

// ---- while locked ---------------------------------------------------------------------------

#[test]
fn while_locked_every_owner_command_that_clears_no_reason_is_refused() {
    let world = World::new();
    world.marketplace.subscribe(&method("aws"), &aws_account());
    let start = t("2026-11-02T00:00:00Z");
    // Locked on us1, settling through the bound account, over bill b-1.
    let mut log = upgraded("us1");
    log.push(ev::arrears("b-1", 1234, start));
    log.push(ev::countdown(1, SYSTEM, start));
    log.push(ev::locked(
        1,
        start + Duration::days(14),
        start + Duration::days(14),
    ));
    world.clock.set(start + Duration::days(20));
    for action in [
        act::settle("aws", Some(aws_account())),
        Action::Dissolve,
        act::request("us1"),
        act::bind(KNOWN_USER),
        act::register("someone-new"),
        act::accept("2024-06"),
        act::pay("b-9"),
    ] {
        let err = world
            .given(log.clone())
            .when_owner(action.clone())
            .then_refused("workspace-locked");
        let text = err.to_string();
        assert!(text.contains("b-1") && text.contains("12.34 CNY"), "{text}");
        assert!(
            text.contains(&(start + Duration::days(14)).to_string()),
            "{text}"
        );
    }
    assert!(!world.expense_center.contains(&user("someone-new")));
}

#[test]
fn settling_the_last_bill_unlocks_from_locked_and_from_countdown() {
    let world = World::new();
    let start = t("2026-11-02T00:00:00Z");
    world.clock.set(start + Duration::days(20));
    let now = world.now();
    let state = world
        .given(locked_since(start))
        .when_owner(act::pay("b-1"))
        .then_events(vec![
            ev::arrears_settled("b-1", "alice", now),
            ev::unlocked(1, "alice", now),
        ]);
    assert_eq!(state.standing(), Some(&Standing::Good));
    assert!(state.reasons().is_empty());
    // From a countdown, by the billing system reporting the payment.
    let state = world
        .given(in_countdown(start))
        .when_system(act::pay("b-1"))
        .then_events(vec![
            ev::arrears_settled("b-1", SYSTEM, now),
            ev::unlocked(1, SYSTEM, now),
        ]);
    assert_eq!(state.standing(), Some(&Standing::Good));
    // A second countdown is numbered 2.
    let mut log = in_countdown(start);
    log.push(ev::arrears_settled("b-1", SYSTEM, now));
    log.push(ev::unlocked(1, SYSTEM, now));
    world
        .given(log)
        .when_system(act::record("b-2", 99))
        .then_events(vec![
            ev::arrears("b-2", 99, now),
            ev::countdown(2, SYSTEM, now),
        ]);
}

#[test]
fn settling_one_of_two_bills_keeps_the_workspace_locked() {
    let world = World::new();
    let start = t("2026-11-02T00:00:00Z");
    let mut log = in_countdown(start);
    log.push(ev::arrears("b-2", 700, start + Duration::days(1)));
    let deadline = start + Duration::days(14);
    log.push(ev::locked(1, deadline, deadline));
    world.clock.set(deadline + Duration::hours(1));
    let now = world.now();
    let state = world
        .given(log)
        .when_owner(act::pay("b-1"))
        .then_events(vec![ev::arrears_settled("b-1", "alice", now)]);
    assert_eq!(state.standing().unwrap().locked_at(), Some(deadline));
    assert!(state.reasons()[0].is_bill(&bill("b-2")));
}

#[test]
fn a_recharge_paid_by_stored_value_card_records_the_card_order() {
    let world = World::new();
    let now = world.now();
    let card = ExternalId::parse("svc-order-77").unwrap();
    let events = world
        .given(in_countdown(now))
        .when_owner(Action::SettleArrears {
            bill: bill("b-1"),
            stored_value_card: Some(card.clone()),
        })
        .result
        .unwrap();
    let WorkspaceEvent::ArrearsSettled(settled) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(settled.stored_value_card, Some(card));
    assert!(
        events[0].describe().contains("svc-order-77"),
        "{}",
        events[0].describe()
    );
}

// ---- arrears refusals ---------------------------------------------------------------------

#[test]
fn the_same_bill_is_recorded_once_even_after_it_was_settled() {
    let world = World::new();
    let now = world.now();
    let err = world
        .given(in_countdown(now))
        .when_system(act::record("b-1", 1234))
        .then_refused("arrears-already-recorded");
    assert!(err.to_string().contains("b-1"), "{err}");
    let mut log = in_countdown(now);
    log.push(ev::arrears_settled("b-1", "alice", now));
    log.push(ev::unlocked(1, "alice", now));
    world
        .given(log)
        .when_system(act::record("b-1", 1234))
        .then_refused("arrears-already-recorded");
    world
        .given(vec![])
        .when_system(act::record("b-1", 1234))
        .then_refused("not-commercial-yet");
}

#[test]
fn settling_a_bill_that_is_not_open_names_the_open_ones() {
    let world = World::new();
    let now = world.now();
    let err = world
        .given(upgraded("cn4"))
        .when_owner(act::pay("b-7"))
        .then_refused("unknown-arrears");
    assert_eq!(
        err.to_string(),
        "unknown-arrears: bill b-7 is not open in arrears on this workspace (open: none)"
    );
    let mut log = in_countdown(now);
    log.push(ev::arrears("b-2", 1, now));
    let err = world
        .given(log)
        .when_system(act::pay("b-7"))
        .then_refused("unknown-arrears");
    assert!(err.to_string().contains("(open: b-1, b-2)"), "{err}");
    world
        .given(vec![])
        .when_owner(act::pay("b-7"))
        .then_refused("not-commercial-yet");
}

// ---- ended cloud subscriptions ----------------------------------------------------------------

#[test]
fn an_ended_aws_subscription_starts_a_countdown() {
    let world = World::new();
    let now = world.now();
    let state = world
        .given(on_aws(t("2026-11-05T00:00:00Z")))
        .when_system(act::ended("aws", aws_account()))
        .then_events(vec![
            ev::sub_ended("aws", aws_account(), now),
            ev::countdown(1, SYSTEM, now),
        ]);
    assert_eq!(state.reasons()[0].kind(), "cloud-subscription-ended");
    assert!(state.reasons()[0].is_cloud(&method("aws"), &aws_account()));
    assert_eq!(
        state.settlement(),
        Some(&aws("123456789012")),
        "AWS does not fall back"
    );
}

#[test]
fn an_ended_alibaba_cloud_subscription_falls_back_without_counting_toward_once_a_month() {
    let world = World::new();
    let first = cloud("1688001", Some("i-1"));
    let second = cloud("1688002", Some("i-2"));
    world
        .marketplace
        .subscribe(&method("alibaba-cloud"), &second);
    // The owner moved to Alibaba Cloud in November (Shanghai) — that counts.
    let mut log = upgraded("cn1");
    log.push(ev::changed(
        enterprise(KNOWN_USER),
        ali("1688001", "i-1"),
        t("2026-11-02T00:00:00Z"),
    ));
    let now = world.now();
    let state = world
        .given(log.clone())
        .when_system(act::ended("alibaba-cloud", first))
        .then_events(vec![ev::fell_back(ali("1688001", "i-1"), now)]);
    assert_eq!(state.standing(), Some(&Standing::Good), "no countdown");
    assert!(state.reasons().is_empty());
    assert_eq!(state.settlement(), Some(&enterprise(KNOWN_USER)));
    let c = state.commercial().unwrap();
    assert_eq!(
        c.last_settlement_change_at(),
        Some(t("2026-11-02T00:00:00Z"))
    );
    assert_eq!(c.settlement_changes(), 2);
    // Right after, in December (Shanghai), the owner may change again: the fall-back did not
    // count, the November change did.
    log.push(ev::fell_back(ali("1688001", "i-1"), now));
    world.clock.set(t("2026-11-30T16:00:00Z"));
    world
        .given(log.clone())
        .when_owner(act::settle("alibaba-cloud", Some(second.clone())))
        .then_events(vec![ev::changed(
            enterprise(KNOWN_USER),
            ali("1688002", "i-2"),
            t("2026-11-30T16:00:00Z"),
        )]);
    // And a fall-back in the same month as no owner change does not block one either.
    let mut log = upgraded("cn1");
    log.push(ev::changed(
        enterprise(KNOWN_USER),
        ali("1688001", "i-1"),
        t("2026-10-15T00:00:00Z"),
    ));
    log.push(ev::fell_back(
        ali("1688001", "i-1"),
        t("2026-11-10T00:00:00Z"),
    ));
    world.clock.set(t("2026-11-10T00:00:01Z"));
    world
        .given(log)
        .when_owner(act::settle("alibaba-cloud", Some(second)))
        .then_events(vec![ev::changed(
            enterprise(KNOWN_USER),
            ali("1688002", "i-2"),
            t("2026-11-10T00:00:01Z"),
        )]);
}

#[test]
fn switching_an_ended_aws_settlement_to_enterprise_is_free_and_unlocks() {
    let world = World::new();
    // The owner moved to AWS this month (Los Angeles); the subscription then ended.
    let changed_at = t("2026-11-20T00:00:00Z");
    let ended_at = t("2026-11-21T00:00:00Z");
    let mut log = on_aws(changed_at);
    log.push(ev::sub_ended("aws", aws_account(), ended_at));
    log.push(ev::countdown(1, SYSTEM, ended_at));
    let now = world.now();
    let state = world
        .given(log.clone())
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![
            ev::changed_because(
                aws("123456789012"),
                enterprise(KNOWN_USER),
                ChangeReason::CloudSubscriptionEnded,
                "alice",
                now,
            ),
            ev::unlocked(1, "alice", now),
        ]);
    assert_eq!(state.standing(), Some(&Standing::Good));
    let c = state.commercial().unwrap();
    assert_eq!(
        c.last_settlement_change_at(),
        Some(changed_at),
        "not counted"
    );
    // The November change to AWS still counts: another owner change this month is refused.
    world
        .marketplace
        .subscribe(&method("aws"), &cloud("210987654321", None));
    let err = world
        .given_state(state)
        .when_owner(act::settle("aws", Some(cloud("210987654321", None))))
        .then_refused("settlement-change-too-soon");
    assert!(err.to_string().contains(&changed_at.to_string()), "{err}");
    // The same switch is allowed while locked.
    let deadline = ended_at + Duration::days(14);
    log.push(ev::locked(1, deadline, deadline));
    world.clock.set(deadline + Duration::days(1));
    let now = world.now();
    world
        .given(log)
        .when_owner(act::settle("enterprise", None))
        .then_events(vec![
            ev::changed_because(
                aws("123456789012"),
                enterprise(KNOWN_USER),
                ChangeReason::CloudSubscriptionEnded,
                "alice",
                now,
            ),
            ev::unlocked(1, "alice", now),
        ]);
}

#[test]
fn moving_an_ended_aws_settlement_to_another_account_counts_and_clears_the_reason() {
    let world = World::new();
    let other = cloud("210987654321", None);
    world.marketplace.subscribe(&method("aws"), &other);
    let mut log = on_aws(t("2026-10-20T00:00:00Z"));
    log.push(ev::sub_ended(
        "aws",
        aws_account(),
        t("2026-11-21T00:00:00Z"),
    ));
    log.push(ev::countdown(1, SYSTEM, t("2026-11-21T00:00:00Z")));
    let now = world.now();
    let state = world
        .given(log)
        .when_owner(act::settle("aws", Some(other)))
        .then_events(vec![
            ev::changed(aws("123456789012"), aws("210987654321"), now),
            ev::unlocked(1, "alice", now),
        ]);
    assert_eq!(
        state.commercial().unwrap().last_settlement_change_at(),
        Some(now)
    );
}

#[test]
fn re_subscribing_the_same_account_clears_the_reason_once_the_marketplace_confirms_it() {
    let world = World::new();
    let ended_at = t("2026-11-21T00:00:00Z");
    let mut log = on_aws(t("2026-11-05T00:00:00Z"));
    log.push(ev::sub_ended("aws", aws_account(), ended_at));
    log.push(ev::countdown(1, SYSTEM, ended_at));
    let err = world
        .given(log.clone())
        .when_system(act::resumed("aws", aws_account()))
        .then_refused("cloud-account-not-subscribed");
    assert!(err.to_string().contains("123456789012"), "{err}");
    world.marketplace.subscribe(&method("aws"), &aws_account());
    let now = world.now();
    let state = world
        .given(log)
        .when_system(act::resumed("aws", aws_account()))
        .then_events(vec![
            ev::sub_resumed("aws", aws_account(), now),
            ev::unlocked(1, SYSTEM, now),
        ]);
    assert_eq!(state.standing(), Some(&Standing::Good));
    assert_eq!(state.settlement(), Some(&aws("123456789012")));
}

#[test]
fn subscription_reports_must_name_the_account_the_workspace_settles_through() {
    let world = World::new();
    let other = cloud("210987654321", None);
    let log = on_aws(t("2026-11-05T00:00:00Z"));
    for action in [
        act::ended("aws", other.clone()),
        act::ended("alibaba-cloud", aws_account()),
    ] {
        let err = world
            .given(log.clone())
            .when_system(action)
            .then_refused("not-settling-through-account");
        assert!(err.to_string().contains("aws (123456789012)"), "{err}");
    }
    world
        .given(upgraded("us1"))
        .when_system(act::ended("aws", aws_account()))
        .then_refused("not-settling-through-account");
    let mut ended = log.clone();
    ended.push(ev::sub_ended(
        "aws",
        aws_account(),
        t("2026-11-21T00:00:00Z"),
    ));
    ended.push(ev::countdown(1, SYSTEM, t("2026-11-21T00:00:00Z")));
    let err = world
        .given(ended.clone())
        .when_system(act::ended("aws", aws_account()))
        .then_refused("cloud-subscription-already-ended");
    assert!(err.to_string().contains("123456789012"), "{err}");
    for action in [
        act::resumed("aws", aws_account()),
        act::resumed("aws", other.clone()),
    ] {
        world
            .given(log.clone())
            .when_system(action)
            .then_refused("cloud-subscription-not-ended");
    }
    world
        .given(ended)
        .when_system(act::resumed("aws", other))
        .then_refused("cloud-subscription-not-ended");
    for action in [
        act::ended("aws", aws_account()),
        act::resumed("aws", aws_account()),
    ] {
        world
            .given(vec![])
            .when_system(action)
            .then_refused("not-commercial-yet");
    }
}

// ---- dissolve ---------------------------------------------------------------------------------

#[test]
fn dissolving_is_possible_only_during_a_countdown_and_is_terminal() {
    let world = World::new();
    let err = world
        .given(upgraded("cn4"))
        .when_owner(Action::Dissolve)
        .then_refused("not-in-countdown");
    assert!(err.to_string().contains("good"), "{err}");
    world
        .given(vec![])
        .when_owner(Action::Dissolve)
        .then_refused("not-commercial-yet");
    let start = world.now();
    let state = world
        .given(in_countdown(start))
        .when_owner(Action::Dissolve)
        .then_events(vec![ev::dissolved(1, start)]);
    assert_eq!(state.standing().unwrap().dissolved_at(), Some(start));
    assert_eq!(state.plan(), Plan::Commercial);
    let mut log = in_countdown(start);
    log.push(ev::dissolved(1, start));
    world.clock.advance(Duration::days(30));
    let every = crate::authorization::every_action();
    for role in Role::ALL {
        for action in &every {
            let err = world
                .given(log.clone())
                .when(role, action.clone())
                .then_refused("workspace-dissolved");
            assert!(err.to_string().contains(&start.to_string()), "{err}");
        }
    }
}

// ---- time ---------------------------------------------------------------------------------

#[test]
fn a_command_before_the_newest_event_is_behind_the_stream_and_an_equal_instant_is_not() {
    let world = World::new();
    let newest = t("2026-11-27T10:00:00Z");
    let log = in_countdown(newest);
    world.clock.set(newest - Duration::milliseconds(1));
    for (role, action) in [
        (Role::System, act::record("b-2", 1)),
        (Role::Owner, act::pay("b-1")),
        (Role::Owner, Action::Dissolve),
    ] {
        let err = world
            .given(log.clone())
            .when(role, action)
            .then_refused("clock-behind-stream");
        let text = err.to_string();
        assert!(text.contains(&newest.to_string()), "{text}");
        assert!(
            text.contains(&(newest - Duration::milliseconds(1)).to_string()),
            "{text}"
        );
    }
    assert_eq!(
        world.given(log.clone()).state.newest_event_at(),
        Some(newest)
    );
    world.clock.set(newest);
    world
        .given(log)
        .when_system(act::record("b-2", 1))
        .then_events(vec![ev::arrears("b-2", 1, newest)]);
    assert_eq!(Workspace::default().newest_event_at(), None);
}

#[test]
fn the_newest_instant_is_the_latest_event_even_when_a_log_holds_an_earlier_one_last() {
    let mut log = upgraded("cn4");
    log.push(ev::arrears("b-1", 1, t("2026-11-20T00:00:00Z")));
    log.push(ev::countdown(1, SYSTEM, t("2026-11-20T00:00:00Z")));
    log.push(ev::arrears("b-2", 1, t("2026-11-10T00:00:00Z")));
    let state = Workspace::replay(&log).unwrap();
    assert_eq!(state.newest_event_at(), Some(t("2026-11-20T00:00:00Z")));
}
