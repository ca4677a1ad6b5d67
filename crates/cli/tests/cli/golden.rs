//! The first schema change (SPEC §10): a log written before `SettlementChanged` 2.0, by the code
//! of that time, replays identically through every read path of today's code — audit of the file,
//! import, audit of the store, byte-identical export, load (`show`), point in time (`show
//! --as-of`), the audit trail, a rebuild, and the commit-order read path subscriptions use
//! (`billing events`, with and without `--subscription`). The expected outputs are what the old
//! code printed (`crates/test-support/golden/log-1.0/README.md`).

use serde_json::Value;

use crate::harness::Store;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../test-support/golden/log-1.0"
);
const WORKSPACES: [&str; 5] = ["acme", "globex", "initech", "hooli", "piedpiper"];

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

fn golden_json(name: &str) -> Value {
    serde_json::from_str(&golden(name)).unwrap()
}

/// Every key the old code printed has the value it printed (new keys may be added).
fn assert_keeps_old_keys(old: &Value, new: &Value, what: &str) {
    let old = old.as_object().unwrap();
    for (key, value) in old {
        assert_eq!(
            new.get(key),
            Some(value),
            "{what}: key {key} changed: {new}"
        );
    }
}

/// `billing events` lines with their `position` removed, in workspace and sequence order.
fn lines_without_position(text: &str) -> Vec<Value> {
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            assert!(v["position"].is_string(), "{l}");
            v.as_object_mut().unwrap().remove("position");
            v
        })
        .collect();
    lines.sort_by_key(|v| (v["aggregate_id"].to_string(), v["sequence"].as_u64()));
    lines
}

fn log_path() -> String {
    format!("{DIR}/log.jsonl")
}

/// The old code's history with the one deliberate change since: issue 18 writes the instant in
/// `PlanUpgraded`'s description for people, to the minute in UTC (`data before 2026-12-01 15:48
/// UTC`), where the old code wrote RFC 3339 with nanoseconds and an offset. Everything else is the
/// old code's word, unchanged.
fn with_issue_18_descriptions(mut history: Value) -> Value {
    for event in history["events"].as_array_mut().unwrap() {
        if event["event_type"] != "PlanUpgraded" {
            continue;
        }
        let old = event["description"].as_str().unwrap().to_owned();
        let (head, rest) = old.split_once("data before ").unwrap();
        let (instant, tail) = rest.split_once(" no longer viewable").unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(instant).unwrap();
        event["description"] = Value::String(format!(
            "{head}data before {} UTC no longer viewable{tail}",
            at.format("%Y-%m-%d %H:%M")
        ));
    }
    history
}

fn views_replay_identically(store: &Store, when: &str) {
    for w in WORKSPACES {
        let show = store
            .expect(0, &["show", "--workspace", w, "--json"])
            .json();
        assert_keeps_old_keys(&golden_json(&format!("show-{w}.json")), &show, when);
        let history = store
            .expect(0, &["history", "--workspace", w, "--json"])
            .json();
        assert_eq!(
            history,
            with_issue_18_descriptions(golden_json(&format!("history-{w}.json"))),
            "{when}: history of {w}"
        );
    }
}

#[test]
fn a_log_written_before_settlement_changed_2_0_replays_identically_through_every_read_path() {
    let log = log_path();
    let store = Store::new();
    let old_audit = golden_json("audit.json");

    // Audit of the file, then of a store it was imported into.
    let file_audit = store.expect(0, &["audit", "--from", &log, "--json"]).json();
    assert_eq!(file_audit["summary"], old_audit["summary"], "{file_audit}");
    assert_eq!(file_audit["clean"], true);
    store.expect(0, &["import", "--from", &log]);
    let store_audit = store.expect(0, &["audit", "--json"]).json();
    assert_eq!(store_audit, old_audit);

    // Export is byte-identical: the stored 1.0 bytes are never rewritten.
    let out = store.path("again.jsonl");
    store.expect(0, &["export", "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), golden("log.jsonl"));
    assert!(
        golden("log.jsonl").contains(r#""event_type":"SettlementChanged","event_version":"1.0""#)
    );

    // Load and the views, then point in time.
    views_replay_identically(&store, "after import");
    let as_of = "2026-12-01T15:48:36.122291452Z";
    let then = store
        .expect(
            0,
            &["show", "--workspace", "acme", "--as-of", as_of, "--json"],
        )
        .json();
    assert_keeps_old_keys(
        &golden_json("show-acme-asof.json"),
        &then,
        "as of the upgrade",
    );

    // The commit-order read path, from the start and through a named subscription: every
    // line as the old code printed it. (An import commits in the file's order — workspace, then
    // sequence — so the positions follow that order, not the original store's.)
    let expected = lines_without_position(&golden("events.jsonl"));
    assert_eq!(
        lines_without_position(&store.expect(0, &["events"]).stdout),
        expected
    );
    assert_eq!(
        lines_without_position(
            &store
                .expect(0, &["events", "--subscription", "golden-reader"])
                .stdout
        ),
        expected
    );

    // A rebuild gives the same views.
    store.expect(0, &["rebuild-views"]);
    views_replay_identically(&store, "after rebuild-views");
}

/// The upcaster decides a rule: a 1.0 `SettlementChanged` was an owner's request, so it counts
/// toward once a month, and the next owner change waits for the next calendar month.
#[test]
fn an_upcast_settlement_change_counts_toward_once_a_month() {
    let store = Store::new();
    store.expect(0, &["import", "--from", &log_path()]);
    // acme moved to AWS at 2026-12-01T15:48Z, in December in us1's America/Los_Angeles.
    let early = store.expect(
        1,
        &[
            "--now",
            "2026-12-20T00:00:00Z",
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "enterprise",
        ],
    );
    assert!(
        early.stderr.contains("settlement-change-too-soon")
            && early.stderr.contains("2027-01-01 08:00:00 UTC"),
        "{early:?}"
    );
    let later = store
        .expect(
            0,
            &[
                "--now",
                "2027-01-01T08:00:00Z",
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "enterprise",
                "--json",
            ],
        )
        .json();
    let payload = &later["events"][0]["payload"]["SettlementChanged"];
    assert_eq!(payload["reason"], "owner-request", "{later}");
    // The new event is written at 2.0; the old ones stay at 1.0.
    let events = store.expect(0, &["events"]).stdout;
    let versions: Vec<&str> = events
        .lines()
        .filter(|l| l.contains(r#""event_type":"SettlementChanged""#))
        .map(|l| {
            if l.contains(r#""event_version":"2.0""#) {
                "2.0"
            } else {
                "1.0"
            }
        })
        .collect();
    assert_eq!(versions, ["1.0", "1.0", "2.0"], "{events}");
    store.expect(0, &["audit"]);
}
