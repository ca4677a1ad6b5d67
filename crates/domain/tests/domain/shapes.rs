//! The serialized shape of every event: golden files and a serde round-trip property.

use std::path::PathBuf;

use billing_domain::*;
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use crate::harness::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One fixed example of each event type.
fn examples() -> Vec<WorkspaceEvent> {
    let at = t("2026-11-27T09:15:30.250Z");
    vec![
        ev::requested("cn1", at),
        WorkspaceEvent::AccountBound(AccountBound {
            user_name: user("acme-finance"),
            account_id: ExternalId::parse("ec-000001").unwrap(),
            newly_registered: true,
            by: actor_id("alice"),
            at,
        }),
        ev::accepted("2024-06", at),
        ev::upgraded("cn1", "acme-finance", "2024-06", at),
        ev::changed(
            enterprise("acme-finance"),
            Settlement::Cloud {
                method: method("alibaba-cloud"),
                account: cloud("1688000012345678", Some("i-ali-1")),
            },
            at,
        ),
    ]
}

fn stored_shape(event: &WorkspaceEvent) -> String {
    let value = serde_json::json!({
        "event_type": cqrs_es::DomainEvent::event_type(event),
        "event_version": cqrs_es::DomainEvent::event_version(event),
        "payload": event,
    });
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

/// Regenerate with `UPDATE_GOLDEN=1 cargo test -p billing-domain golden` — only together with a
/// new `EVENT_VERSION` and an upcaster for the old shape.
#[test]
fn golden_files_guard_every_event_shape() {
    let examples = examples();
    let types: Vec<_> = examples.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, WorkspaceEvent::TYPES, "one example per event type");
    for event in examples {
        let path = golden_dir().join(format!("{}.json", event.event_type()));
        let shape = stored_shape(&event);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &shape).unwrap();
        }
        let golden =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            shape,
            golden,
            "the stored shape of {} changed",
            event.event_type()
        );
        let value: serde_json::Value = serde_json::from_str(&golden).unwrap();
        assert_eq!(value["event_version"], EVENT_VERSION);
        let back: WorkspaceEvent = serde_json::from_value(value["payload"].clone()).unwrap();
        assert_eq!(
            back,
            event,
            "the golden payload of {} no longer reads",
            event.event_type()
        );
    }
}

// ---- strategies --------------------------------------------------------------------------------

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970..2200, with nanoseconds.
    (0i64..7_258_118_400, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| Utc.timestamp_opt(secs, nanos).single().unwrap())
}

fn any_user() -> impl Strategy<Value = UserName> {
    "[a-zA-Z0-9][a-zA-Z0-9._@-]{2,63}".prop_map(|s| UserName::parse(&s).unwrap())
}

fn any_id() -> impl Strategy<Value = ExternalId> {
    "[!#-&(-\\[\\]-_a-~]{1,40}".prop_map(|s| ExternalId::parse(&s).unwrap())
}

fn any_actor() -> impl Strategy<Value = ActorId> {
    any_id().prop_map(|id| ActorId::parse(id.as_str()).unwrap())
}

fn any_slug() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,32}"
}

fn any_version() -> impl Strategy<Value = AgreementVersion> {
    "[A-Za-z0-9._-]{1,32}".prop_map(|s| AgreementVersion::parse(&s).unwrap())
}

fn any_settlement() -> impl Strategy<Value = Settlement> {
    prop_oneof![
        any_user().prop_map(|user_name| Settlement::Enterprise { user_name }),
        (any_slug(), any_id(), proptest::option::of(any_id())).prop_map(
            |(m, account_id, instance_id)| {
                Settlement::Cloud {
                    method: MethodId::parse(&m).unwrap(),
                    account: CloudAccount {
                        account_id,
                        instance_id,
                    },
                }
            }
        ),
    ]
}

pub fn any_event() -> impl Strategy<Value = WorkspaceEvent> {
    prop_oneof![
        (any_slug(), any_actor(), instant()).prop_map(|(s, by, at)| {
            WorkspaceEvent::UpgradeRequested(UpgradeRequested {
                site: SiteId::parse(&s).unwrap(),
                by,
                at,
            })
        }),
        (any_user(), any_id(), any::<bool>(), any_actor(), instant()).prop_map(
            |(user_name, account_id, newly_registered, by, at)| {
                WorkspaceEvent::AccountBound(AccountBound {
                    user_name,
                    account_id,
                    newly_registered,
                    by,
                    at,
                })
            }
        ),
        (any_version(), any_actor(), instant()).prop_map(|(agreement_version, by, at)| {
            WorkspaceEvent::AgreementAccepted(AgreementAccepted {
                agreement_version,
                by,
                at,
            })
        }),
        (
            any_slug(),
            any_version(),
            any_settlement(),
            any_actor(),
            instant()
        )
            .prop_map(|(s, agreement_version, settlement, by, at)| {
                WorkspaceEvent::PlanUpgraded(PlanUpgraded {
                    site: SiteId::parse(&s).unwrap(),
                    agreement_version,
                    settlement,
                    by,
                    at,
                })
            }),
        (any_settlement(), any_settlement(), any_actor(), instant()).prop_map(
            |(from, to, by, at)| {
                WorkspaceEvent::SettlementChanged(SettlementChanged { from, to, by, at })
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Every event reads back as itself, and serializing again gives the same bytes.
    #[test]
    fn every_event_round_trips_through_json(event in any_event()) {
        let json = serde_json::to_string(&event).unwrap();
        let back: WorkspaceEvent = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &event);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let value = serde_json::to_value(&event).unwrap();
        prop_assert!(value.get(event.event_type()).is_some(), "externally tagged by event_type");
    }
}
