//! Histories of SPEC §10 that replay refuses (`invalid-transition`), the upcaster's rule for
//! `SettlementChanged` 1.0, and the human texts of the standing events, values and refusals.

use billing_domain::*;
use chrono::Duration;

use crate::harness::*;
use crate::standing::{in_countdown, locked_since, on_aws, upgraded};

#[track_caller]
fn refused(log: &[WorkspaceEvent], needle: &str) {
    let err = Workspace::replay(log).unwrap_err();
    assert_eq!(err.code(), "invalid-transition", "{err}");
    assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
}

fn with(
    mut log: Vec<WorkspaceEvent>,
    more: impl IntoIterator<Item = WorkspaceEvent>,
) -> Vec<WorkspaceEvent> {
    log.extend(more);
    log
}

#[test]
fn replay_refuses_a_lock_before_the_deadline_or_with_no_reason_open() {
    let start = t("2026-11-10T00:00:00Z");
    let deadline = start + Duration::days(14);
    refused(
        &with(
            in_countdown(start),
            [ev::locked(1, deadline, deadline - Duration::seconds(1))],
        ),
        "has not passed",
    );
    refused(
        &with(upgraded("cn4"), [ev::locked(1, deadline, deadline)]),
        "not countdown",
    );
    // A countdown whose reason was cleared without the unlock that must follow.
    refused(
        &with(
            in_countdown(start),
            [
                ev::arrears_settled("b-1", "alice", start),
                ev::locked(1, deadline, deadline),
            ],
        ),
        "no reason is open",
    );
    refused(
        &with(in_countdown(start), [ev::locked(2, deadline, deadline)]),
        "countdown 2",
    );
    refused(
        &with(locked_since(start), [ev::locked(1, deadline, deadline)]),
        "not countdown",
    );
    // At the deadline exactly it replays.
    Workspace::replay(&with(
        in_countdown(start),
        [ev::locked(1, deadline, deadline)],
    ))
    .unwrap();
}

#[test]
fn replay_refuses_an_unlock_with_a_reason_open_or_outside_a_countdown() {
    let start = t("2026-11-10T00:00:00Z");
    refused(
        &with(in_countdown(start), [ev::unlocked(1, "alice", start)]),
        "still open",
    );
    refused(
        &with(locked_since(start), [ev::unlocked(1, "alice", start)]),
        "still open",
    );
    refused(
        &with(upgraded("cn4"), [ev::unlocked(1, "alice", start)]),
        "standing is good",
    );
    refused(
        &with(
            in_countdown(start),
            [
                ev::arrears_settled("b-1", "alice", start),
                ev::unlocked(2, "alice", start),
            ],
        ),
        "countdown 2",
    );
}

#[test]
fn replay_refuses_any_event_after_dissolve() {
    let start = t("2026-11-10T00:00:00Z");
    let dissolved = with(in_countdown(start), [ev::dissolved(1, start)]);
    for next in [
        ev::arrears("b-2", 1, start),
        ev::arrears_settled("b-1", "alice", start),
        ev::unlocked(1, "alice", start),
        ev::locked(1, start, start + Duration::days(14)),
        ev::dissolved(1, start),
        ev::changed(enterprise(KNOWN_USER), aws("1"), start),
        ev::upgraded("cn4", KNOWN_USER, "2024-06", start),
        ev::requested("cn4", start),
    ] {
        refused(&with(dissolved.clone(), [next]), "dissolved");
    }
    refused(
        &with(upgraded("cn4"), [ev::dissolved(1, start)]),
        "only during a countdown",
    );
    refused(
        &with(in_countdown(start), [ev::dissolved(3, start)]),
        "countdown 3",
    );
}

#[test]
fn replay_refuses_a_countdown_with_no_reason_or_out_of_order() {
    let start = t("2026-11-10T00:00:00Z");
    refused(
        &with(upgraded("cn4"), [ev::countdown(1, SYSTEM, start)]),
        "no reason is open",
    );
    refused(
        &with(in_countdown(start), [ev::countdown(2, SYSTEM, start)]),
        "not good",
    );
    refused(
        &with(
            upgraded("cn4"),
            [
                ev::arrears("b-1", 1, start),
                ev::countdown(2, SYSTEM, start),
            ],
        ),
        "the next one is 1",
    );
    let bad_times = |deadline, remind_at| {
        with(
            upgraded("cn4"),
            [
                ev::arrears("b-1", 1, start),
                WorkspaceEvent::CountdownStarted(CountdownStarted {
                    at: start,
                    by: actor_id(SYSTEM),
                    countdown: 1,
                    deadline,
                    remind_at,
                }),
            ],
        )
    };
    let day = Duration::days(1);
    refused(&bad_times(start, start), "out of order");
    refused(&bad_times(start + day, start - day), "out of order");
    refused(&bad_times(start + day, start + day * 2), "out of order");
    // The boundaries replay: a reminder at the start or at the deadline.
    Workspace::replay(&bad_times(start + day, start)).unwrap();
    Workspace::replay(&bad_times(start + day, start + day)).unwrap();
}

#[test]
fn replay_refuses_a_reminder_before_remind_at_or_twice() {
    let start = t("2026-11-10T00:00:00Z");
    let deadline = start + Duration::days(14);
    let remind_at = start + Duration::days(11);
    refused(
        &with(
            in_countdown(start),
            [ev::reminded(1, deadline, remind_at - Duration::seconds(1))],
        ),
        "is due at",
    );
    refused(
        &with(
            in_countdown(start),
            [
                ev::reminded(1, deadline, remind_at),
                ev::reminded(1, deadline, remind_at),
            ],
        ),
        "already sent",
    );
    refused(
        &with(upgraded("cn4"), [ev::reminded(1, deadline, remind_at)]),
        "not countdown",
    );
    refused(
        &with(in_countdown(start), [ev::reminded(4, deadline, remind_at)]),
        "countdown 4",
    );
    Workspace::replay(&with(
        in_countdown(start),
        [ev::reminded(1, deadline, remind_at)],
    ))
    .unwrap();
}

#[test]
fn replay_refuses_a_cloud_subscription_ended_change_to_a_cloud_account() {
    let at = t("2026-11-10T00:00:00Z");
    let because = ChangeReason::CloudSubscriptionEnded;
    refused(
        &with(
            on_aws(at),
            [ev::changed_because(
                aws("123456789012"),
                aws("2"),
                because,
                SYSTEM,
                at,
            )],
        ),
        "only a move from a cloud account to enterprise",
    );
    refused(
        &with(
            upgraded("us1"),
            [ev::changed_because(
                enterprise(KNOWN_USER),
                aws("2"),
                because,
                SYSTEM,
                at,
            )],
        ),
        "cloud-subscription-ended",
    );
    // Back to the bound account, that reason replays.
    Workspace::replay(&with(on_aws(at), [ev::fell_back(aws("123456789012"), at)])).unwrap();
}

#[test]
fn replay_refuses_reasons_that_do_not_fit_the_history() {
    let at = t("2026-11-10T00:00:00Z");
    let account = cloud("123456789012", None);
    refused(
        &with(in_countdown(at), [ev::arrears("b-1", 5, at)]),
        "already recorded",
    );
    refused(
        &with(upgraded("cn4"), [ev::arrears_settled("b-1", "alice", at)]),
        "not open",
    );
    refused(
        &with(upgraded("us1"), [ev::sub_ended("aws", account.clone(), at)]),
        "settles through",
    );
    refused(
        &with(
            on_aws(at),
            [
                ev::sub_ended("aws", account.clone(), at),
                ev::sub_ended("aws", account.clone(), at),
            ],
        ),
        "already recorded",
    );
    refused(
        &with(on_aws(at), [ev::sub_resumed("aws", account, at)]),
        "no ended",
    );
    refused(&[ev::arrears("b-1", 1, at)], "not requested");
}

/// The upcaster decides a rule: a 1.0 `SettlementChanged` was an owner's request, so it counts
/// toward once a month.
#[test]
fn an_upcast_one_zero_change_counts_toward_once_a_month() {
    let policy = SitePolicy::builtin();
    let old = serde_json::json!({"SettlementChanged": {
        "at": "2026-11-05T00:00:00Z",
        "by": "alice",
        "from": {"enterprise": {"user_name": KNOWN_USER}},
        "to": {"cloud": {"account": {"account_id": "123456789012"}, "method": "aws"}},
    }});
    let first: WorkspaceEvent =
        serde_json::from_value(upcast("SettlementChanged", "1.0", old).unwrap()).unwrap();
    let before = Workspace::replay(&upgraded("us1")).unwrap();
    before.check_policy(&first, &policy).unwrap();
    let state = before.evolve(&first).unwrap();
    assert_eq!(
        state.commercial().unwrap().last_settlement_change_at(),
        Some(t("2026-11-05T00:00:00Z"))
    );
    let second = ev::changed(
        aws("123456789012"),
        enterprise(KNOWN_USER),
        t("2026-11-20T00:00:00Z"),
    );
    let err = state.check_policy(&second, &policy).unwrap_err();
    assert_eq!(err.code(), "settlement-change-too-soon");
    // The same owner change is refused live as well.
    let world = World::new();
    world.clock.set(t("2026-11-20T00:00:00Z"));
    world
        .given_state(state.clone())
        .when_owner(act::settle("enterprise", None))
        .then_refused("settlement-change-too-soon");
    // A fall-back in the same month passes the audit's policy check; an owner change from the
    // next month does too.
    let fell_back = ev::fell_back(aws("123456789012"), t("2026-11-20T00:00:00Z"));
    state.check_policy(&fell_back, &policy).unwrap();
    let next_month = ev::changed(
        aws("123456789012"),
        enterprise(KNOWN_USER),
        t("2026-12-01T08:00:00Z"),
    );
    state.check_policy(&next_month, &policy).unwrap();
}

// ---- human texts ------------------------------------------------------------------------------

#[test]
fn every_standing_event_describes_itself_with_its_values() {
    let at = t("2026-11-27T09:15:30Z");
    let deadline = t("2026-12-11T09:15:30Z");
    let account = cloud("123456789012", None);
    let cases = [
        (ev::arrears("b-1", 1234, at), "billing-system recorded arrears: bill b-1 over 12.34 CNY"),
        (ev::arrears_settled("b-1", "alice", at), "alice settled bill b-1 by a recharge"),
        (
            ev::sub_ended("aws", account.clone(), at),
            "billing-system reported that the aws subscription of account 123456789012 ended",
        ),
        (
            ev::sub_resumed("aws", account, at),
            "billing-system reported that the aws subscription of account 123456789012 is active again",
        ),
        // Instants in descriptions are for people: to the minute, in UTC (billing_domain::instant;
        // they were RFC 3339 with seconds and an offset before issue 18).
        (
            ev::countdown(1, SYSTEM, at),
            "countdown 1 started: the workspace will be locked at 2026-12-11 09:15 UTC unless every reason is cleared",
        ),
        (
            ev::reminded(1, deadline, at),
            "countdown 1 reminder sent: the workspace will be locked at 2026-12-11 09:15 UTC",
        ),
        (
            ev::locked(1, deadline, deadline),
            "workspace locked: countdown 1 passed its deadline 2026-12-11 09:15 UTC with a reason still open",
        ),
        (ev::unlocked(2, "alice", at), "workspace unlocked: every reason of countdown 2 is cleared"),
        (ev::dissolved(1, at), "alice dissolved the workspace during countdown 1; nothing can follow"),
        (
            ev::fell_back(aws("123456789012"), at),
            "billing-system moved settlement from aws (123456789012) to enterprise (acme-finance) because the cloud subscription ended (not counted toward once a month)",
        ),
        (
            ev::changed(enterprise(KNOWN_USER), aws("1"), at),
            "alice changed settlement from enterprise (acme-finance) to aws (1)",
        ),
    ];
    for (event, text) in cases {
        assert_eq!(event.describe(), text);
        assert_eq!(event.occurred_at(), event_at(&event));
    }
    let card = WorkspaceEvent::ArrearsSettled(ArrearsSettled {
        at,
        bill: bill("b-1"),
        by: actor_id("alice"),
        stored_value_card: Some(ExternalId::parse("svc-9").unwrap()),
    });
    assert_eq!(
        card.describe(),
        "alice settled bill b-1 by a recharge paid with Huawei Cloud stored-value card order svc-9"
    );
    assert_eq!(card.actor(), &actor_id("alice"));
    assert_eq!(ev::arrears("b-1", 1, at).actor(), &actor_id(SYSTEM));
}

#[test]
fn the_upgrade_events_describe_themselves_with_their_values() {
    let at = t("2026-11-27T09:15:30Z");
    let registered = WorkspaceEvent::AccountBound(AccountBound {
        account_id: ExternalId::parse("ec-000002").unwrap(),
        at,
        by: actor_id("alice"),
        newly_registered: true,
        user_name: user("new-finance"),
    });
    let cases = [
        (
            ev::requested("cn1", at),
            "alice requested the upgrade to the Commercial Plan on site cn1",
        ),
        (
            ev::bound(KNOWN_USER, "ec-000001", at),
            "alice bound Expense Center account acme-finance",
        ),
        (
            registered,
            "alice registered and bound Expense Center account new-finance",
        ),
        (
            ev::accepted("2024-06", at),
            "alice accepted the opening agreement version 2024-06",
        ),
        (
            ev::upgraded("cn1", KNOWN_USER, "2024-06", at),
            "workspace upgraded to the Commercial Plan; settles through enterprise (acme-finance); data before 2026-11-27 09:15 UTC no longer viewable",
        ),
    ];
    for (event, text) in cases {
        assert_eq!(event.describe(), text);
        assert_eq!(event.actor(), &actor_id("alice"));
        assert_eq!(event.occurred_at(), at);
    }
}

fn event_at(event: &WorkspaceEvent) -> chrono::DateTime<chrono::Utc> {
    serde_json::to_value(event).unwrap()[event.event_type()]["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn reasons_standings_and_money_print_for_people() {
    let at = t("2026-11-27T09:15:30Z");
    let arrears = Reason::Arrears {
        bill: bill("b-1"),
        amount: Money::new(120_005, Currency::Usd).unwrap(),
        since: at,
    };
    assert_eq!(arrears.to_string(), "arrears on bill b-1 (1200.05 USD)");
    assert_eq!(arrears.kind(), "arrears");
    let ended = Reason::CloudSubscriptionEnded {
        method: method("alibaba-cloud"),
        account: cloud("1688", Some("i-1")),
        since: at,
    };
    assert_eq!(
        ended.to_string(),
        "alibaba-cloud subscription of account 1688 (instance i-1) ended"
    );
    assert!(!ended.is_bill(&bill("b-1")) && !arrears.is_cloud(&method("aws"), &cloud("1", None)));
    assert!(!ended.is_cloud(&method("aws"), &cloud("1688", Some("i-1"))));
    assert!(!ended.is_cloud(&method("alibaba-cloud"), &cloud("1688", Some("i-2"))));
    assert!(!arrears.is_bill(&bill("b-2")));
    let countdown = Countdown {
        number: 1,
        started_at: at,
        deadline: at,
        remind_at: at,
        reminded_at: None,
    };
    let standings = [
        Standing::Good,
        Standing::Countdown(countdown.clone()),
        Standing::Locked {
            countdown: countdown.clone(),
            locked_at: at,
        },
        Standing::Dissolved {
            countdown: countdown.clone(),
            dissolved_at: at,
        },
    ];
    for (standing, name) in standings.iter().zip(Standing::NAMES) {
        assert_eq!(standing.to_string(), name);
        assert_eq!(standing.as_str(), name);
        assert_eq!(standing.countdown().is_some(), name != "good");
        assert_eq!(standing.locked_at().is_some(), name == "locked");
        assert_eq!(standing.dissolved_at().is_some(), name == "dissolved");
    }
    assert_eq!(Standing::default(), Standing::Good);
    assert_eq!(cny(1).to_string(), "0.01 CNY");
    assert_eq!(cny(100).to_string(), "1.00 CNY");
    assert_eq!(
        Money::new(123_456, Currency::Usd).unwrap().to_string(),
        "1234.56 USD"
    );
}

#[test]
fn refusals_carry_their_values() {
    let at = t("2026-11-27T09:15:30Z");
    let cases = [
        (
            DomainError::NotBillingSystem { actor: actor_id("alice"), role: Role::Owner },
            "not-billing-system: actor alice has role owner; only the billing system (role system) may do this",
        ),
        (
            DomainError::NotWorkspaceOwner { actor: actor_id(SYSTEM), role: Role::System },
            "not-workspace-owner: actor billing-system has role system; only the workspace owner may do this",
        ),
        (
            DomainError::DeadlineNotReached { what: "lock", countdown: 2, due_at: at, now: at - Duration::hours(1) },
            "deadline-not-reached: the lock of countdown 2 is due at 2026-11-27 09:15:30 UTC, not at 2026-11-27 08:15:30 UTC",
        ),
        (
            DomainError::ArrearsAlreadyRecorded { bill: bill("b-1") },
            "arrears-already-recorded: bill b-1 was already recorded in arrears on this workspace",
        ),
        (
            DomainError::WorkspaceDissolved { dissolved_at: at },
            "workspace-dissolved: the workspace was dissolved at 2026-11-27 09:15:30 UTC; it accepts no command",
        ),
        (
            DomainError::NotInCountdown { standing: "locked" },
            "not-in-countdown: the workspace's standing is locked, not countdown",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(err.to_string(), text);
        assert!(!err.is_bad_input());
    }
}
