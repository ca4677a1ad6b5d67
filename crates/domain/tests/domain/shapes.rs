//! The serialized shape of every event: golden files and a serde round-trip property.

use std::path::PathBuf;

use billing_domain::*;
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use crate::harness::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One fixed example of each event type, in the order of `WorkspaceEvent::TYPES`.
fn examples() -> Vec<WorkspaceEvent> {
    let at = t("2026-11-27T09:15:30.250Z");
    let deadline = t("2026-12-11T09:15:30.250Z");
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
            ali("1688000012345678", "i-ali-1"),
            at,
        ),
        WorkspaceEvent::ArrearsRecorded(ArrearsRecorded {
            amount: cny(1234),
            at,
            bill: bill("bill-2026-11-0042"),
            by: actor_id(SYSTEM),
        }),
        WorkspaceEvent::ArrearsSettled(ArrearsSettled {
            at,
            bill: bill("bill-2026-11-0042"),
            by: actor_id("alice"),
            stored_value_card: Some(ExternalId::parse("svc-order-77").unwrap()),
        }),
        ev::sub_ended("aws", cloud("123456789012", None), at),
        ev::sub_resumed(
            "alibaba-cloud",
            cloud("1688000012345678", Some("i-ali-1")),
            at,
        ),
        WorkspaceEvent::CountdownStarted(CountdownStarted {
            at,
            by: actor_id(SYSTEM),
            countdown: 1,
            deadline,
            remind_at: t("2026-12-08T09:15:30.250Z"),
        }),
        ev::reminded(1, deadline, at),
        ev::locked(1, deadline, at),
        ev::unlocked(1, "alice", at),
        ev::dissolved(1, at),
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

fn read_golden(name: &str) -> String {
    let path = golden_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Regenerate with `UPDATE_GOLDEN=1 cargo test -p billing-domain golden` — only together with a
/// new version in `EVENT_VERSIONS` and an upcaster for the old shape (keep the old golden as
/// `<type>-<old version>.json`, as `SettlementChanged-1.0.json`).
#[test]
fn golden_files_guard_every_event_shape() {
    let examples = examples();
    let types: Vec<_> = examples.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, WorkspaceEvent::TYPES, "one example per event type");
    let versioned: Vec<_> = EVENT_VERSIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(versioned, WorkspaceEvent::TYPES, "a version for every type");
    for event in examples {
        let name = format!("{}.json", event.event_type());
        let shape = stored_shape(&event);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(golden_dir().join(&name), &shape).unwrap();
        }
        let golden = read_golden(&name);
        assert_eq!(
            shape,
            golden,
            "the stored shape of {} changed",
            event.event_type()
        );
        let value: serde_json::Value = serde_json::from_str(&golden).unwrap();
        let version = EVENT_VERSIONS
            .iter()
            .find(|(name, _)| *name == event.event_type())
            .map(|(_, v)| *v)
            .unwrap();
        assert_eq!(value["event_version"], version, "{}", event.event_type());
        assert_eq!(event.event_version(), version);
        assert_eq!(
            WorkspaceEvent::current_version(event.event_type()),
            Some(version)
        );
        let back: WorkspaceEvent = serde_json::from_value(value["payload"].clone()).unwrap();
        assert_eq!(
            back,
            event,
            "the golden payload of {} no longer reads",
            event.event_type()
        );
        // Canonical JSON as written: the compact form has its keys in byte order already
        // (serde_json's Value sorts them).
        let compact = serde_json::to_string(&event).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(compact, sorted, "{} is not canonical", event.event_type());
    }
    assert_eq!(WorkspaceEvent::current_version("Downgraded"), None);
}

#[test]
fn settlement_changed_is_at_version_two_and_every_other_type_at_one() {
    for (name, version) in EVENT_VERSIONS {
        let expected = if name == "SettlementChanged" {
            "2.0"
        } else {
            "1.0"
        };
        assert_eq!(version, expected, "{name}");
    }
}

/// The 1.0 golden (the shape before the first schema change) upcasts to the 2.0 event with reason
/// `owner-request`, and the upcast is exactly "add the reason".
#[test]
fn the_one_zero_settlement_changed_golden_upcasts_to_an_owner_request() {
    let old: serde_json::Value =
        serde_json::from_str(&read_golden("SettlementChanged-1.0.json")).unwrap();
    assert_eq!(old["event_version"], "1.0");
    assert!(old["payload"]["SettlementChanged"].get("reason").is_none());
    // A 1.0 payload does not read as 2.0 without the upcaster.
    assert!(serde_json::from_value::<WorkspaceEvent>(old["payload"].clone()).is_err());
    let up = upcast("SettlementChanged", "1.0", old["payload"].clone()).unwrap();
    let mut expected = old["payload"].clone();
    expected["SettlementChanged"]["reason"] = serde_json::json!("owner-request");
    assert_eq!(up, expected, "the upcast only adds the reason");
    let event: WorkspaceEvent = serde_json::from_value(up).unwrap();
    let WorkspaceEvent::SettlementChanged(changed) = &event else {
        panic!("{event:?}")
    };
    assert_eq!(changed.reason, ChangeReason::OwnerRequest);
    // It is the 2.0 example with reason owner-request, and the 2.0 golden is the 1.0 one plus
    // the reason.
    let v2: serde_json::Value =
        serde_json::from_str(&read_golden("SettlementChanged.json")).unwrap();
    assert_eq!(v2["event_version"], "2.0");
    assert_eq!(v2["payload"], expected);
    assert_eq!(event, examples()[4]);
}

#[test]
fn change_reasons_have_their_spec_names() {
    for (reason, name) in [
        (ChangeReason::OwnerRequest, "owner-request"),
        (
            ChangeReason::CloudSubscriptionEnded,
            "cloud-subscription-ended",
        ),
    ] {
        assert_eq!(reason.as_str(), name);
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            serde_json::json!(name)
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
        (
            any_settlement(),
            any_settlement(),
            any_reason(),
            any_actor(),
            instant()
        )
            .prop_map(|(from, to, reason, by, at)| {
                WorkspaceEvent::SettlementChanged(SettlementChanged {
                    at,
                    by,
                    from,
                    reason,
                    to,
                })
            }),
        standing_event(),
    ]
}

fn any_reason() -> impl Strategy<Value = ChangeReason> {
    prop_oneof![
        Just(ChangeReason::OwnerRequest),
        Just(ChangeReason::CloudSubscriptionEnded)
    ]
}

fn any_money() -> impl Strategy<Value = Money> {
    (
        1u64..=u64::MAX,
        proptest::sample::select(Currency::ALL.to_vec()),
    )
        .prop_map(|(minor, currency)| Money::new(minor, currency).unwrap())
}

fn any_bill() -> impl Strategy<Value = BillId> {
    any_id().prop_map(|id| BillId::parse(id.as_str()).unwrap())
}

fn any_cloud() -> impl Strategy<Value = (MethodId, CloudAccount)> {
    (any_slug(), any_id(), proptest::option::of(any_id())).prop_map(
        |(m, account_id, instance_id)| {
            (
                MethodId::parse(&m).unwrap(),
                CloudAccount {
                    account_id,
                    instance_id,
                },
            )
        },
    )
}

/// The nine standing events of SPEC §10.
fn standing_event() -> impl Strategy<Value = WorkspaceEvent> {
    let numbered = || (instant(), any_actor(), any::<u32>(), instant());
    prop_oneof![
        (any_money(), instant(), any_bill(), any_actor()).prop_map(|(amount, at, bill, by)| {
            WorkspaceEvent::ArrearsRecorded(ArrearsRecorded {
                amount,
                at,
                bill,
                by,
            })
        }),
        (
            instant(),
            any_bill(),
            any_actor(),
            proptest::option::of(any_id())
        )
            .prop_map(|(at, bill, by, stored_value_card)| {
                WorkspaceEvent::ArrearsSettled(ArrearsSettled {
                    at,
                    bill,
                    by,
                    stored_value_card,
                })
            }),
        (any_cloud(), instant(), any_actor(), any::<bool>()).prop_map(
            |((method, account), at, by, resumed)| {
                if resumed {
                    WorkspaceEvent::CloudSubscriptionResumed(CloudSubscriptionResumed {
                        account,
                        at,
                        by,
                        method,
                    })
                } else {
                    WorkspaceEvent::CloudSubscriptionEnded(CloudSubscriptionEnded {
                        account,
                        at,
                        by,
                        method,
                    })
                }
            }
        ),
        (numbered(), instant()).prop_map(|((at, by, countdown, deadline), remind_at)| {
            WorkspaceEvent::CountdownStarted(CountdownStarted {
                at,
                by,
                countdown,
                deadline,
                remind_at,
            })
        }),
        (numbered(), 0..4u8).prop_map(|((at, by, countdown, deadline), kind)| match kind {
            0 => WorkspaceEvent::CountdownReminded(CountdownReminded {
                at,
                by,
                countdown,
                deadline,
            }),
            1 => WorkspaceEvent::WorkspaceLocked(WorkspaceLocked {
                at,
                by,
                countdown,
                deadline,
            }),
            2 => WorkspaceEvent::WorkspaceUnlocked(WorkspaceUnlocked { at, by, countdown }),
            _ => WorkspaceEvent::WorkspaceDissolved(WorkspaceDissolved { at, by, countdown }),
        }),
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
        prop_assert_eq!(&serde_json::to_string(&back).unwrap(), &json);
        let value = serde_json::to_value(&event).unwrap();
        prop_assert!(value.get(event.event_type()).is_some(), "externally tagged by event_type");
        // Canonical as written (keys in byte order) and at the version its type is at.
        prop_assert_eq!(&serde_json::to_string(&value).unwrap(), &json);
        prop_assert_eq!(
            Some(event.event_version()),
            WorkspaceEvent::current_version(event.event_type())
        );
    }
}
