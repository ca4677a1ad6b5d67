//! SPEC §10 as policy data: the countdown length, the reminder lead and what an ended
//! subscription does come from the site policy, so a host's policy changes the outcome without a
//! code change.

use billing_domain::*;
use chrono::{DateTime, Duration, Utc};

use crate::harness::*;
use crate::standing::{on_aws, upgraded};

fn aws_account() -> CloudAccount {
    cloud("123456789012", None)
}

// ---- policy data ------------------------------------------------------------------------------

fn host_policy() -> SitePolicy {
    let json = BUILTIN_POLICY_JSON
        .replace(
            r#""countdown_days": 14, "reminder_lead_days": 3"#,
            r#""countdown_days": 7, "reminder_lead_days": 1"#,
        )
        .replace(
            r#""requires_instance": false, "on_subscription_end": "lock""#,
            r#""requires_instance": false, "on_subscription_end": "fall-back""#,
        );
    assert_ne!(json, BUILTIN_POLICY_JSON, "the replacements apply");
    SitePolicy::from_json(&json).unwrap()
}

#[test]
fn a_host_policy_changes_the_countdown_and_the_aws_behaviour_without_code() {
    let policy = host_policy();
    assert_eq!(
        *policy.standing(),
        StandingPolicy {
            countdown_days: 7,
            reminder_lead_days: 1
        }
    );
    let world = World::with_policy(policy);
    let now = world.now();
    let events = world
        .given(upgraded("cn4"))
        .when_system(act::record("b-1", 1))
        .result
        .unwrap();
    assert_eq!(
        events[1],
        WorkspaceEvent::CountdownStarted(CountdownStarted {
            at: now,
            by: actor_id(SYSTEM),
            countdown: 1,
            deadline: now + Duration::days(7),
            remind_at: now + Duration::days(6),
        })
    );
    world
        .given(on_aws(t("2026-11-05T00:00:00Z")))
        .when_system(act::ended("aws", aws_account()))
        .then_events(vec![ev::fell_back(aws("123456789012"), now)]);
    // The built-in policy says 14 / 3 and lock.
    let builtin = SitePolicy::builtin();
    assert_eq!(*builtin.standing(), StandingPolicy::default());
    assert_eq!(
        builtin.method(&method("aws")).unwrap().subscription_end(),
        SubscriptionEnd::Lock
    );
    assert_eq!(
        builtin
            .method(&method("alibaba-cloud"))
            .unwrap()
            .subscription_end(),
        SubscriptionEnd::FallBack
    );
}

#[test]
fn a_method_without_a_subscription_end_policy_locks() {
    let json = BUILTIN_POLICY_JSON.replace(r#", "on_subscription_end": "lock""#, "");
    assert_ne!(json, BUILTIN_POLICY_JSON);
    let policy = SitePolicy::from_json(&json).unwrap();
    let spec = policy.method(&method("aws")).unwrap();
    assert_eq!(spec.on_subscription_end, None);
    assert_eq!(spec.subscription_end(), SubscriptionEnd::Lock);
    let world = World::with_policy(policy);
    let now = world.now();
    world
        .given(on_aws(t("2026-11-05T00:00:00Z")))
        .when_system(act::ended("aws", aws_account()))
        .then_events(vec![
            ev::sub_ended("aws", aws_account(), now),
            ev::countdown(1, SYSTEM, now),
        ]);
    assert_eq!(SubscriptionEnd::Lock.as_str(), "lock");
    assert_eq!(SubscriptionEnd::FallBack.as_str(), "fall-back");
}

#[test]
fn a_standing_policy_needs_a_countdown_and_a_lead_no_longer_than_it() {
    let policy = SitePolicy::builtin();
    let set = |countdown_days, reminder_lead_days| {
        policy.clone().with_standing(StandingPolicy {
            countdown_days,
            reminder_lead_days,
        })
    };
    let err = set(0, 0).unwrap_err();
    assert_eq!(err.code(), "invalid-site-policy");
    assert!(err.to_string().contains("countdown_days"), "{err}");
    let err = set(3, 4).unwrap_err();
    assert!(
        err.to_string().contains("(4)") && err.to_string().contains("3 days"),
        "{err}"
    );
    // The boundaries are allowed: one day, and a reminder as the countdown starts.
    assert_eq!(set(1, 0).unwrap().standing().countdown_days, 1);
    let same = set(5, 5).unwrap();
    assert_eq!(same.standing().reminder_lead_days, 5);
    let start = t(START);
    assert_eq!(
        same.standing().remind_at(same.standing().deadline(start)),
        start
    );
    // The same rules apply when a host loads a policy from JSON.
    let json = BUILTIN_POLICY_JSON.replace(r#""countdown_days": 14"#, r#""countdown_days": 0"#);
    assert_eq!(
        SitePolicy::from_json(&json).unwrap_err().code(),
        "invalid-site-policy"
    );
    // Times saturate instead of overflowing.
    let far = StandingPolicy {
        countdown_days: u32::MAX,
        reminder_lead_days: u32::MAX,
    };
    assert_eq!(far.deadline(start), DateTime::<Utc>::MAX_UTC);
    assert_eq!(far.remind_at(start), DateTime::<Utc>::MIN_UTC);
}

#[test]
fn a_reminder_lead_as_long_as_the_countdown_is_due_at_once() {
    let policy = SitePolicy::builtin()
        .with_standing(StandingPolicy {
            countdown_days: 2,
            reminder_lead_days: 2,
        })
        .unwrap();
    let world = World::with_policy(policy);
    let now = world.now();
    let state = world
        .given(upgraded("cn4"))
        .when_system(act::record("b-1", 1))
        .then_events(vec![
            ev::arrears("b-1", 1, now),
            WorkspaceEvent::CountdownStarted(CountdownStarted {
                at: now,
                by: actor_id(SYSTEM),
                countdown: 1,
                deadline: now + Duration::days(2),
                remind_at: now,
            }),
        ]);
    world
        .given_state(state)
        .when_system(Action::SendReminder)
        .then_events(vec![ev::reminded(1, now + Duration::days(2), now)]);
}

#[test]
fn the_builtin_policy_lists_its_methods_by_id_with_their_subscription_ends() {
    let policy = SitePolicy::builtin();
    let methods: Vec<_> = policy
        .methods()
        .map(|m| (m.id.as_str().to_owned(), m.kind, m.on_subscription_end))
        .collect();
    assert_eq!(
        methods,
        [
            (
                "alibaba-cloud".to_owned(),
                MethodKind::Cloud,
                Some(SubscriptionEnd::FallBack)
            ),
            (
                "aws".to_owned(),
                MethodKind::Cloud,
                Some(SubscriptionEnd::Lock)
            ),
            ("enterprise".to_owned(), MethodKind::Enterprise, None),
        ]
    );
    assert!(policy.method(&method("paypal")).is_none());
}
