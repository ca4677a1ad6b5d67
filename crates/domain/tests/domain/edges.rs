//! Edges the other tests do not reach: ports that lie, the boundaries of the value types, and
//! the first of a month that has no midnight.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::*;
use chrono::{DateTime, Utc};

use crate::harness::*;

/// An Expense Center that answers for another user name than the one asked about.
struct LyingExpenseCenter;

#[async_trait]
impl ExpenseCenter for LyingExpenseCenter {
    async fn find_account(
        &self,
        _user_name: &UserName,
    ) -> Result<Option<ExpenseCenterAccount>, DomainError> {
        Ok(Some(ExpenseCenterAccount {
            user_name: user("someone-else"),
            account_id: ExternalId::parse("ec-666").unwrap(),
        }))
    }

    async fn register_account(
        &self,
        _user_name: &UserName,
        _email: &Email,
        _request_id: &ExternalId,
    ) -> Result<Registration, DomainError> {
        Ok(Registration::Registered(ExpenseCenterAccount {
            user_name: user("someone-else"),
            account_id: ExternalId::parse("ec-666").unwrap(),
        }))
    }
}

fn lying_world() -> World {
    let mut world = World::new();
    world.services.expense_center = Arc::new(LyingExpenseCenter);
    world
}

#[test]
fn an_expense_center_answer_for_another_user_name_binds_nothing() {
    let world = lying_world();
    let requested = vec![ev::requested("cn1", world.now())];
    let err = world
        .given(requested.clone())
        .when_owner(act::bind(KNOWN_USER))
        .then_refused("unknown-user-name");
    assert!(err.to_string().contains(KNOWN_USER), "{err}");
    let err = world
        .given(requested)
        .when_owner(act::register("new-finance"))
        .then_refused("port-unavailable");
    let text = err.to_string();
    assert!(
        text.contains("someone-else") && text.contains("new-finance"),
        "{text}"
    );
}

#[test]
fn an_expense_center_that_does_not_know_the_name_binds_nothing() {
    let world = World::new();
    world
        .given(vec![ev::requested("cn1", world.now())])
        .when_owner(act::bind("unknown-finance"))
        .then_refused("unknown-user-name");
}

#[test]
fn gather_asks_only_what_the_lookup_names() {
    let world = World::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let a = cloud("123456789012", None);
    let b = cloud("210987654321", None);
    world.marketplace.subscribe(&method("aws"), &a);
    let facts = |lookup| rt.block_on(gather(lookup, &world.services)).unwrap();
    // Only the current account is active: the target is reported unsubscribed, not confused with
    // the current one.
    let both = facts(Lookup::Cloud {
        current: Some((method("aws"), a.clone())),
        target: Some((method("aws"), b.clone())),
    });
    let swapped = facts(Lookup::Cloud {
        current: Some((method("aws"), b)),
        target: Some((method("aws"), a)),
    });
    assert_ne!(both, swapped);
    assert_eq!(facts(Lookup::Nothing), facts(Lookup::Nothing));
}

// ---- value boundaries ---------------------------------------------------------------------

#[test]
fn ids_are_at_most_128_characters() {
    let ok = "x".repeat(MAX_ID_LEN);
    let long = "x".repeat(MAX_ID_LEN + 1);
    assert!(ExternalId::parse(&ok).is_ok());
    assert!(ActorId::parse(&ok).is_ok());
    assert!(BillId::parse(&ok).is_ok());
    assert!(WorkspaceId::parse(&ok).is_ok());
    for err in [
        ExternalId::parse(&long).unwrap_err(),
        ActorId::parse(&long).unwrap_err(),
        BillId::parse(&long).unwrap_err(),
        WorkspaceId::parse(&long).unwrap_err(),
    ] {
        assert!(err.to_string().contains("128"), "{err}");
    }
    // Characters, not bytes: 128 two-byte characters are still refused for their kind.
    assert!(ExternalId::parse(&"é".repeat(64)).is_err());
    for c in ["!", "~", "#", "a-b_c.d:e"] {
        assert!(ExternalId::parse(c).is_ok(), "{c:?}");
    }
    for c in ["a`b", "a\u{7f}", "\u{e9}"] {
        assert!(ExternalId::parse(c).is_err(), "{c:?}");
    }
}

#[test]
fn slugs_and_agreement_versions_are_at_most_32_characters() {
    let ok = "a".repeat(32);
    let long = "a".repeat(33);
    assert!(SiteId::parse(&ok).is_ok());
    assert!(MethodId::parse(&ok).is_ok());
    assert!(AgreementVersion::parse(&ok).is_ok());
    assert!(SiteId::parse(&long).is_err());
    assert!(MethodId::parse(&long).is_err());
    assert!(AgreementVersion::parse(&long).is_err());
    assert!(SiteId::parse("").is_err() && AgreementVersion::parse("").is_err());
    for good in ["cn-1", "0", "z"] {
        assert!(SiteId::parse(good).is_ok(), "{good}");
    }
    for bad in ["Cn1", "cn_1", "cn.1", "cn 1"] {
        assert!(SiteId::parse(bad).is_err(), "{bad}");
    }
    for good in ["2024-06", "v1.2_rc", "Z"] {
        assert!(AgreementVersion::parse(good).is_ok(), "{good}");
    }
    for bad in ["2024/06", "v 1", "v@1"] {
        assert!(AgreementVersion::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn user_names_are_3_to_64_characters() {
    assert!(UserName::parse("abc").is_ok());
    assert!(UserName::parse(&"a".repeat(64)).is_ok());
    assert!(UserName::parse("ab").is_err());
    assert!(UserName::parse(&"a".repeat(65)).is_err());
    for good in ["a.b", "a_b", "a-b", "a@b", "9ab", "Zed"] {
        assert!(UserName::parse(good).is_ok(), "{good}");
    }
    for bad in [".ab", "_ab", "@ab", "ab!", "ab+c"] {
        assert!(UserName::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn emails_are_at_most_254_characters() {
    let domain = "@example.com";
    let ok = format!("{}{domain}", "a".repeat(254 - domain.len()));
    let long = format!("{}{domain}", "a".repeat(255 - domain.len()));
    assert!(Email::parse(&ok).is_ok());
    assert!(Email::parse(&long).is_err());
    for bad in [
        "a@example.",
        "a@.example.com",
        "a<b@example.com",
        "a'b@example.com",
    ] {
        assert!(Email::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn workspace_ids_allow_their_punctuation_only() {
    for good in ["a.b", "a_b", "a:b", "a-b", "A9"] {
        assert!(WorkspaceId::parse(good).is_ok(), "{good}");
    }
    assert!(WorkspaceId::parse("").is_err());
    for bad in ["a@b", "a!b", "a#b"] {
        assert!(WorkspaceId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn money_serializes_canonically_and_refuses_zero_on_the_way_in() {
    let money = Money::new(1234, Currency::Usd).unwrap();
    let json = serde_json::to_string(&money).unwrap();
    assert_eq!(json, r#"{"currency":"USD","minor":1234}"#);
    assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    assert!(serde_json::from_str::<Money>(r#"{"currency":"USD","minor":0}"#).is_err());
    assert!(serde_json::from_str::<Money>(r#"{"currency":"USD","minor":1,"x":1}"#).is_err());
    assert!(serde_json::from_str::<Money>(r#"{"currency":"EUR","minor":1}"#).is_err());
    assert_eq!(Money::parse_decimal("7", Currency::Cny).unwrap().minor, 700);
    let max = Money::parse_decimal("184467440737095516.15", Currency::Cny).unwrap();
    assert_eq!(max.minor, u64::MAX);
    assert!(Money::parse_decimal("184467440737095516.16", Currency::Cny).is_err());
}

// ---- a month that starts without midnight -----------------------------------------------------

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn the_next_month_starts_at_the_first_instant_that_exists_on_the_first() {
    use chrono_tz::America::{Asuncion, Havana};
    // Paraguay moved its clocks from 00:00 to 01:00 on Sunday 2017-10-01: the month began at
    // 01:00 -03:00.
    assert_eq!(
        start_of_next_month(Asuncion, utc("2017-09-15T12:00:00Z")),
        utc("2017-10-01T04:00:00Z")
    );
    // Cuba moved its clocks back from 01:00 to 00:00 on Sunday 2015-11-01: midnight happened
    // twice, and the month began at the first one (-04:00).
    assert_eq!(
        start_of_next_month(Havana, utc("2015-10-15T12:00:00Z")),
        utc("2015-11-01T04:00:00Z")
    );
    // Danmarkshavn moved from -03:00 to +00:00 at midnight on 1996-01-01: a gap of three hours,
    // the longest at a month start in the recent tz database.
    assert_eq!(
        start_of_next_month(
            chrono_tz::America::Danmarkshavn,
            utc("1995-12-15T12:00:00Z")
        ),
        utc("1996-01-01T03:00:00Z")
    );
    // A site in such a zone counts its months the same way.
    let site = Site {
        id: site("py1"),
        name: "Paraguay 1".into(),
        operator: "o".into(),
        allowed_methods: vec![MethodId::enterprise()],
        default_cloud_method: None,
        time_zone: Asuncion,
    };
    assert_eq!(
        site.start_of_next_month(utc("2017-09-30T12:00:00Z")),
        utc("2017-10-01T04:00:00Z")
    );
}

#[test]
fn the_month_after_the_last_representable_one_saturates() {
    assert_eq!(
        start_of_next_month(chrono_tz::UTC, DateTime::<Utc>::MAX_UTC),
        DateTime::<Utc>::MAX_UTC
    );
}

#[test]
fn services_debug_without_their_ports() {
    let world = World::new();
    let text = format!("{:?}", world.services);
    assert_eq!(text, "WorkspaceServices { policy_sites: 7, .. }");
}

// ---- state accessors and labels -------------------------------------------------------------

#[test]
fn plans_and_steps_print_their_names() {
    assert_eq!(Plan::Experience.display_name(), "Experience Plan");
    assert_eq!(Plan::Commercial.display_name(), "Commercial Plan");
    for plan in [Plan::Experience, Plan::Commercial] {
        assert_eq!(plan.to_string(), plan.as_str());
    }
    for step in [
        UpgradeStep::NotRequested,
        UpgradeStep::Requested,
        UpgradeStep::AccountBound,
        UpgradeStep::AgreementAccepted,
        UpgradeStep::Upgraded,
    ] {
        assert_eq!(step.to_string(), step.as_str());
    }
}

#[test]
fn the_agreement_version_is_known_from_its_acceptance_on() {
    let at = utc("2026-11-01T00:00:00Z");
    let log = ev::upgrade("cn1", at);
    let version = |n: usize| {
        Workspace::replay(&log[..n])
            .unwrap()
            .agreement_version()
            .cloned()
    };
    assert_eq!(version(0), None);
    assert_eq!(version(2), None);
    let accepted = Workspace::replay(&log[..3]).unwrap();
    assert_eq!(accepted.upgrade_step(), UpgradeStep::AgreementAccepted);
    assert_eq!(
        accepted.agreement_version(),
        Some(&AgreementVersion::parse("2024-06").unwrap())
    );
    assert_eq!(
        version(4),
        Some(AgreementVersion::parse("2024-06").unwrap())
    );
    let commercial = Workspace::replay(&log).unwrap();
    assert_eq!(
        commercial
            .commercial()
            .unwrap()
            .agreement_version()
            .as_str(),
        "2024-06"
    );
}

#[test]
fn amounts_say_what_is_wrong_with_them() {
    let reason = |s: &str| match Money::parse_decimal(s, Currency::Cny).unwrap_err() {
        DomainError::InvalidValue { reason, value, .. } => {
            assert_eq!(value, s);
            reason
        }
        other => panic!("{other:?}"),
    };
    for not_a_number in [".5", "-1", "1a.5", "1.5a", "", "a"] {
        assert!(
            reason(not_a_number).starts_with("must be a decimal number"),
            "{not_a_number:?}"
        );
    }
    for bad_fraction in ["1.234", "1."] {
        assert!(
            reason(bad_fraction).contains("after the point"),
            "{bad_fraction:?}"
        );
    }
    assert_eq!(reason("99999999999999999999"), "is too large");
    assert_eq!(reason("0.00"), "must be more than zero");
}

#[test]
fn replay_names_a_second_upgrade_as_such() {
    let at = utc("2026-11-01T00:00:00Z");
    let mut log = ev::upgrade("cn1", at);
    log.push(ev::upgraded("cn1", KNOWN_USER, "2024-06", at));
    let err = Workspace::replay(&log).unwrap_err();
    assert!(
        err.to_string()
            .contains("a second upgrade is not a valid history"),
        "{err}"
    );
    let mut log = ev::upgrade("cn1", at);
    log.push(ev::requested("cn1", at));
    let err = Workspace::replay(&log).unwrap_err();
    assert!(
        err.to_string()
            .contains("upgrade steps cannot follow the upgrade"),
        "{err}"
    );
}
