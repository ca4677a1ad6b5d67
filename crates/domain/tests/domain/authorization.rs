//! The authorization property, over the whole product of action × role × a state of every
//! standing: the owner runs the upgrade flow, settlement and dissolve; the billing system
//! reports facts and fires deadlines; both may settle a bill; nobody else may do anything.

use billing_domain::*;
use chrono::Duration;

use crate::harness::*;
use crate::standing::{in_countdown, locked_since, on_aws, upgraded};

/// One action of every kind.
pub fn every_action() -> Vec<Action> {
    vec![
        act::request("cn4"),
        act::bind(KNOWN_USER),
        act::register("someone-new"),
        act::accept("2024-06"),
        act::settle("enterprise", None),
        act::record("b-2", 100),
        act::pay("b-1"),
        act::ended("aws", cloud("123456789012", None)),
        act::resumed("aws", cloud("123456789012", None)),
        Action::SendReminder,
        Action::Lock,
        Action::Dissolve,
    ]
}

/// The model's own answer to who may send an action, and the refusal for everyone else.
fn authorized(action: &Action, role: Role) -> Result<(), &'static str> {
    let system_only = matches!(
        action,
        Action::RecordArrears { .. }
            | Action::ReportSubscriptionEnded { .. }
            | Action::ReportSubscriptionResumed { .. }
            | Action::SendReminder
            | Action::Lock
    );
    match (action, role) {
        (_, Role::System) if system_only => Ok(()),
        _ if system_only => Err("not-billing-system"),
        (Action::SettleArrears { .. }, Role::Owner | Role::System) => Ok(()),
        (_, Role::Owner) => Ok(()),
        _ => Err("not-workspace-owner"),
    }
}

#[test]
fn every_action_and_role_is_authorized_as_the_spec_says() {
    let world = World::new();
    let start = t("2026-11-10T00:00:00Z");
    world.clock.set(start + Duration::days(20));
    let mut ended = on_aws(t("2026-11-05T00:00:00Z"));
    ended.push(ev::sub_ended("aws", cloud("123456789012", None), start));
    ended.push(ev::countdown(1, SYSTEM, start));
    let states = [
        vec![],
        vec![ev::requested("cn4", start)],
        vec![
            ev::requested("cn4", start),
            ev::bound(KNOWN_USER, "ec-000001", start),
        ],
        upgraded("cn4"),
        in_countdown(start),
        locked_since(start),
        on_aws(start),
        ended,
    ];
    let mut checked = 0;
    for history in &states {
        for action in every_action() {
            for role in Role::ALL {
                let then = world.given(history.clone()).when(role, action.clone());
                let outcome = then.result.as_ref().map_err(DomainError::code);
                match authorized(&action, role) {
                    Err(code) => {
                        assert_eq!(outcome, Err(code), "{role} {}", action.name());
                        let err = then.result.unwrap_err();
                        let text = err.to_string();
                        assert!(
                            text.contains(role.as_str()) && text.contains(actor_of(role).as_str()),
                            "{text}"
                        );
                    }
                    Ok(()) => assert!(
                        !matches!(outcome, Err("not-billing-system" | "not-workspace-owner")),
                        "{role} {} on {history:?}: {outcome:?}",
                        action.name()
                    ),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, states.len() * 12 * 4);
}

#[test]
fn a_dissolved_workspace_refuses_every_role_before_asking_who_it_is() {
    let world = World::new();
    let start = world.now();
    let mut log = in_countdown(start);
    log.push(ev::dissolved(1, start));
    for action in every_action() {
        for role in Role::ALL {
            world
                .given(log.clone())
                .when(role, action.clone())
                .then_refused("workspace-dissolved");
        }
    }
}

#[test]
fn action_names_are_the_cli_names() {
    let names: Vec<_> = every_action().iter().map(Action::name).collect();
    assert_eq!(
        names,
        [
            "request-upgrade",
            "bind-account",
            "register-and-bind-account",
            "accept-agreement",
            "change-settlement",
            "record-arrears",
            "settle-arrears",
            "report-subscription-ended",
            "report-subscription-resumed",
            "send-reminder",
            "lock",
            "dissolve",
        ]
    );
}
