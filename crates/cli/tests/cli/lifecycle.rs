//! After the upgrade (SPEC §9, §10) through the binary: `--now`, arrears, `tick`, the lock, the
//! recharge that unlocks, dissolve, the marketplace reporting ended and resumed subscriptions,
//! `notices`, the view's new fields, and audits of forged histories.

use serde_json::{json, Value};

use crate::harness::Store;

const T0: &str = "2027-01-04T09:00:00Z";
const DAY11: &str = "2027-01-15T09:00:00Z";
const DAY14: &str = "2027-01-18T09:00:00Z";
const DAY15: &str = "2027-01-19T09:00:00Z";

fn record(store: &Store, code: i32, workspace: &str, bill: &str, role: &str) -> Value {
    let run = store.expect(
        code,
        &[
            "--now",
            T0,
            "arrears",
            "record",
            "--workspace",
            workspace,
            "--bill",
            bill,
            "--amount",
            "12.34",
            "--currency",
            "CNY",
            "--role",
            role,
            "--actor",
            "ec-feed",
            "--json",
        ],
    );
    run.json()
}

fn event_types(run: &Value) -> Vec<String> {
    run["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn show(store: &Store, workspace: &str) -> Value {
    store
        .expect(0, &["show", "--workspace", workspace, "--json"])
        .json()
}

#[test]
fn arrears_count_down_remind_lock_and_a_recharge_unlocks() {
    let store = Store::new();
    store.upgraded();
    // Only the billing system reports arrears.
    let refused = record(&store, 1, "acme", "b-1", "owner");
    assert_eq!(refused["error"]["code"], "not-billing-system", "{refused}");
    let recorded = record(&store, 0, "acme", "b-1", "system");
    assert_eq!(
        event_types(&recorded),
        ["ArrearsRecorded", "CountdownStarted"]
    );
    let view = show(&store, "acme");
    assert_eq!(view["standing"], "countdown", "{view}");
    assert_eq!(view["countdown_deadline"], "2027-01-18T09:00:00Z");
    assert_eq!(view["remind_at"], "2027-01-15T09:00:00Z");
    assert_eq!(view["reasons"][0]["bill"], "b-1");
    assert_eq!(
        view["reasons"][0]["amount"],
        json!({"currency": "CNY", "minor": 1234})
    );
    // `--now` is when the command happened; the store recorded it by its own clock.
    let events = store.expect(0, &["events"]).stdout;
    let line: Value = serde_json::from_str(
        events
            .lines()
            .find(|l| l.contains(r#""event_type":"ArrearsRecorded""#))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["metadata"]["occurred_at"], T0, "{line}");
    assert_eq!(line["metadata"]["actor_role"], "system");
    let recorded: chrono::DateTime<chrono::Utc> = line["metadata"]["recorded_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (chrono::Utc::now() - recorded).num_minutes().abs() < 10,
        "recorded_at is the store's clock, not --now: {line}"
    );
    // The same bill twice is refused.
    let twice = record(&store, 1, "acme", "b-1", "system");
    assert_eq!(twice["error"]["code"], "arrears-already-recorded");

    // A tick before anything is due fires nothing; at day 11 the reminder, once.
    let early = store
        .expect(0, &["--now", "2027-01-10T00:00:00Z", "tick", "--json"])
        .json();
    assert_eq!(early["reminders_sent"], json!([]), "{early}");
    let remind = store.expect(0, &["--now", DAY11, "tick", "--json"]).json();
    assert_eq!(remind["reminders_sent"], json!(["acme"]), "{remind}");
    assert_eq!(remind["locked"], json!([]));
    let again = store.expect(0, &["--now", DAY11, "tick", "--json"]).json();
    assert_eq!(again["reminders_sent"], json!([]), "{again}");

    // Unknown bills are named.
    let unknown = store.expect(
        1,
        &[
            "--now",
            DAY11,
            "arrears",
            "settle",
            "--workspace",
            "acme",
            "--bill",
            "b-9",
        ],
    );
    assert!(
        unknown.stderr.contains("unknown-arrears") && unknown.stderr.contains("b-1"),
        "{unknown:?}"
    );

    // At the deadline: locked. Every owner command that clears nothing is refused.
    let lock = store.expect(0, &["--now", DAY14, "tick"]);
    assert!(lock.stdout.contains("1 workspace(s) locked"), "{lock:?}");
    let view = show(&store, "acme");
    assert_eq!(view["standing"], "locked");
    assert_eq!(view["locked_at"], "2027-01-18T09:00:00Z");
    let human = store.expect(0, &["show", "--workspace", "acme"]).stdout;
    assert!(
        human.contains("Standing") && human.contains("locked"),
        "{human}"
    );
    let blocked = store.expect(
        1,
        &[
            "--now",
            DAY15,
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    assert!(blocked.stderr.contains("workspace-locked"), "{blocked:?}");
    // Time never goes backwards in a stream.
    let behind = store.expect(
        1,
        &[
            "--now",
            T0,
            "arrears",
            "settle",
            "--workspace",
            "acme",
            "--bill",
            "b-1",
        ],
    );
    assert!(behind.stderr.contains("clock-behind-stream"), "{behind:?}");
    // A recharge paid with a stored-value card settles the bill and unlocks.
    let settled = store
        .expect(
            0,
            &[
                "--now",
                DAY15,
                "arrears",
                "settle",
                "--workspace",
                "acme",
                "--bill",
                "b-1",
                "--stored-value-card",
                "HWSVC-0001",
                "--json",
            ],
        )
        .json();
    assert_eq!(
        event_types(&settled),
        ["ArrearsSettled", "WorkspaceUnlocked"]
    );
    assert!(settled["events"][0]["description"]
        .as_str()
        .unwrap()
        .contains("stored-value card order HWSVC-0001"));
    let view = show(&store, "acme");
    assert_eq!(view["standing"], "good");
    assert_eq!(view["reasons"], json!([]));
    assert_eq!(
        view["plan"], "commercial",
        "never back to the Experience Plan"
    );

    // Each notice once, with when it was due.
    let notices = store
        .expect(0, &["notices", "--workspace", "acme", "--json"])
        .json();
    let kinds: Vec<(&str, &str)> = notices["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["due_at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("opening-reminder", kinds[0].1),
            ("countdown-started", T0),
            ("countdown-reminder", DAY11),
            ("locked", DAY14),
            ("unlocked", DAY15),
        ],
        "{notices}"
    );
    let listed = store.expect(0, &["notices"]).stdout;
    assert!(listed.contains("countdown-reminder"), "{listed}");
    store.expect(0, &["audit"]);
}

#[test]
fn dissolve_only_in_a_countdown_and_then_nothing() {
    let store = Store::new();
    store.upgraded();
    let good = store.expect(
        1,
        &["--now", T0, "workspace", "dissolve", "--workspace", "acme"],
    );
    assert!(good.stderr.contains("not-in-countdown"), "{good:?}");
    record(&store, 0, "acme", "b-1", "system");
    let system = store.expect(
        1,
        &[
            "--now",
            T0,
            "workspace",
            "dissolve",
            "--workspace",
            "acme",
            "--role",
            "system",
        ],
    );
    assert!(system.stderr.contains("not-workspace-owner"), "{system:?}");
    store.expect(
        0,
        &[
            "--now",
            DAY11,
            "workspace",
            "dissolve",
            "--workspace",
            "acme",
        ],
    );
    assert_eq!(show(&store, "acme")["standing"], "dissolved");
    for args in [
        vec![
            "--now",
            DAY15,
            "arrears",
            "settle",
            "--workspace",
            "acme",
            "--bill",
            "b-1",
        ],
        vec![
            "--now",
            DAY15,
            "workspace",
            "dissolve",
            "--workspace",
            "acme",
        ],
    ] {
        let run = store.expect(1, &args);
        assert!(run.stderr.contains("workspace-dissolved"), "{run:?}");
    }
    // The deadline passes: nothing to lock.
    let tick = store.expect(0, &["--now", DAY15, "tick", "--json"]).json();
    assert_eq!(tick["locked"], json!([]), "{tick}");
    store.expect(0, &["audit"]);
}

#[test]
fn ended_subscriptions_lock_on_aws_and_fall_back_on_alibaba_cloud() {
    let store = Store::new();
    store.upgraded();
    store.expect(
        0,
        &[
            "cloud",
            "subscribe",
            "--provider",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    store.expect(
        0,
        &[
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    // AWS: the ended subscription is a reason; the countdown starts.
    let ended = store
        .expect(
            0,
            &[
                "--now",
                T0,
                "cloud",
                "unsubscribe",
                "--provider",
                "aws",
                "--account",
                "123456789012",
                "--json",
            ],
        )
        .json();
    let events: Vec<&str> = ended["reported"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["CloudSubscriptionEnded", "CountdownStarted"],
        "{ended}"
    );
    assert_eq!(show(&store, "acme")["standing"], "countdown");
    // Re-subscribing the same account clears it.
    let resumed = store
        .expect(
            0,
            &[
                "--now",
                DAY11,
                "cloud",
                "subscribe",
                "--provider",
                "aws",
                "--account",
                "123456789012",
                "--json",
            ],
        )
        .json();
    let events: Vec<&str> = resumed["reported"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["CloudSubscriptionResumed", "WorkspaceUnlocked"],
        "{resumed}"
    );

    // Alibaba Cloud on cn1: the workspace falls back to enterprise, and it does not count.
    store.expect(
        0,
        &[
            "account",
            "register",
            "--username",
            "globex-fin",
            "--email",
            "g@globex.example",
        ],
    );
    store.expect(0, &["upgrade", "--workspace", "globex", "--site", "cn1"]);
    store.expect(
        0,
        &[
            "account",
            "bind",
            "--workspace",
            "globex",
            "--username",
            "globex-fin",
        ],
    );
    store.expect(
        0,
        &[
            "agreement",
            "accept",
            "--workspace",
            "globex",
            "--version",
            "2024-06",
        ],
    );
    let ali = [
        "--provider",
        "alibaba-cloud",
        "--account",
        "1688",
        "--instance",
        "i-1",
    ];
    store.expect(0, &[&["cloud", "subscribe"][..], &ali].concat());
    // The owner's change in December, the fall-back in January…
    store.expect(
        0,
        &[
            "--now",
            "2026-12-20T09:00:00Z",
            "settlement",
            "set",
            "--workspace",
            "globex",
            "--method",
            "alibaba-cloud",
            "--account",
            "1688",
            "--instance",
            "i-1",
        ],
    );
    let fell = store
        .expect(
            0,
            &[
                &["--now", DAY11, "--json", "cloud", "unsubscribe"][..],
                &ali,
            ]
            .concat(),
        )
        .json();
    let change = &fell["reported"][0]["events"][0];
    assert_eq!(change["event_type"], "SettlementChanged", "{fell}");
    assert_eq!(
        change["payload"]["SettlementChanged"]["reason"],
        "cloud-subscription-ended"
    );
    let view = show(&store, "globex");
    assert_eq!(view["settlement_method"], "enterprise");
    assert_eq!(view["standing"], "good");
    // …does not count toward once a month: the owner may change again in January.
    store.expect(
        0,
        &[&["--now", DAY14, "cloud", "subscribe"][..], &ali].concat(),
    );
    store.expect(
        0,
        &[
            "--now",
            DAY14,
            "settlement",
            "set",
            "--workspace",
            "globex",
            "--method",
            "alibaba-cloud",
            "--account",
            "1688",
            "--instance",
            "i-1",
        ],
    );
    let notices = store
        .expect(0, &["notices", "--workspace", "globex", "--json"])
        .json();
    assert!(
        notices["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "settlement-fallen-back"),
        "{notices}"
    );
    store.expect(0, &["audit"]);
}

#[test]
fn bad_lifecycle_input_is_refused_naming_the_value_and_writes_nothing() {
    let store = Store::new();
    store.upgraded();
    for (args, needle) in [
        (vec!["--now", "tomorrow", "tick"], "now"),
        (
            vec![
                "arrears",
                "record",
                "--workspace",
                "acme",
                "--bill",
                "b",
                "--amount",
                "12.345",
                "--currency",
                "CNY",
                "--role",
                "system",
            ],
            "12.345",
        ),
        (
            vec![
                "arrears",
                "record",
                "--workspace",
                "acme",
                "--bill",
                "b",
                "--amount",
                "-1",
                "--currency",
                "CNY",
                "--role",
                "system",
            ],
            "-1",
        ),
        (
            vec![
                "arrears",
                "record",
                "--workspace",
                "acme",
                "--bill",
                "b'1",
                "--amount",
                "1",
                "--currency",
                "CNY",
                "--role",
                "system",
            ],
            "bill",
        ),
        (
            vec![
                "arrears",
                "record",
                "--workspace",
                "acme",
                "--bill",
                "b",
                "--amount",
                "1",
                "--currency",
                "EUR",
                "--role",
                "system",
            ],
            "EUR",
        ),
    ] {
        let run = store.expect(2, &args);
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }
    assert_eq!(show(&store, "acme")["last_sequence"], 4);
}

/// Appends a forged event to `workspace`'s stream in an export, with a valid hash chain, so only
/// the aggregate's rules can tell.
fn forge(export: &str, workspace: &str, event_type: &str, payload: Value, at: &str) -> String {
    let last: Value = export
        .lines()
        .rev()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["aggregate_id"] == workspace)
        .unwrap();
    let sequence = last["sequence"].as_u64().unwrap() + 1;
    let metadata = json!({
        "actor_id": "mallory",
        "actor_role": "system",
        "command_hash": "0".repeat(64),
        "command_id": format!("forged-{sequence}"),
        "occurred_at": at,
        "prev_hash": last["metadata"]["hash"],
        "recorded_at": at,
    });
    let payload = json!({ event_type: payload });
    let hash = billing_store::chain::event_hash(billing_store::chain::HashInput {
        aggregate_type: "workspace",
        aggregate_id: workspace,
        sequence,
        event_type,
        event_version: "1.0",
        payload: &payload,
        metadata_without_hash: &metadata,
    });
    let mut metadata = metadata;
    metadata["hash"] = json!(hash);
    let line = json!({
        "aggregate_type": "workspace",
        "aggregate_id": workspace,
        "sequence": sequence,
        "event_type": event_type,
        "event_version": "1.0",
        "payload": payload,
        "metadata": metadata,
    });
    format!("{export}{line}\n")
}

#[test]
fn the_audit_refuses_forged_locks_unlocks_and_commands_after_dissolve() {
    let store = Store::new();
    store.upgraded();
    record(&store, 0, "acme", "b-1", "system");
    let out = store.path("countdown.jsonl");
    store.expect(0, &["export", "--out", out.to_str().unwrap()]);
    let export = std::fs::read_to_string(&out).unwrap();
    let early = "2027-01-05T09:00:00Z";
    let cases = [
        (
            "a lock before the deadline",
            forge(
                &export,
                "acme",
                "WorkspaceLocked",
                json!({"at": early, "by": "mallory", "countdown": 1, "deadline": DAY14}),
                early,
            ),
            "has not passed",
        ),
        (
            "an unlock with a reason open",
            forge(
                &export,
                "acme",
                "WorkspaceUnlocked",
                json!({"at": early, "by": "mallory", "countdown": 1}),
                early,
            ),
            "still open",
        ),
    ];
    // And a workspace dissolved, then billed.
    store.expect(
        0,
        &[
            "--now",
            DAY11,
            "workspace",
            "dissolve",
            "--workspace",
            "acme",
        ],
    );
    store.expect(0, &["export", "--out", out.to_str().unwrap()]);
    let dissolved = std::fs::read_to_string(&out).unwrap();
    let after = forge(
        &dissolved,
        "acme",
        "ArrearsRecorded",
        json!({"amount": {"currency": "USD", "minor": 5}, "at": DAY15, "bill": "b-2", "by": "mallory"}),
        DAY15,
    );
    for (what, text, needle) in
        cases
            .into_iter()
            .chain([("an event after dissolve", after, "dissolved")])
    {
        let file = store.path("forged.jsonl");
        std::fs::write(&file, text).unwrap();
        let audit = store
            .expect(1, &["audit", "--from", file.to_str().unwrap(), "--json"])
            .json();
        let findings = audit["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{what}: {audit}");
        assert_eq!(findings[0]["code"], "invalid-transition", "{what}: {audit}");
        assert!(
            findings[0]["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(needle)
                || findings[0].to_string().contains(needle),
            "{what}: {audit}"
        );
    }
}

#[test]
fn the_lifecycle_demo_walks_arrears_to_unlock_on_a_fresh_store() {
    let run = crate::harness::billing(&["--json", "--now", T0, "demo", "--lifecycle"]);
    assert_eq!(run.code, 0, "{run:?}");
    let demo = run.json();
    let titles: Vec<&str> = demo["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 7, "{titles:?}");
    assert!(
        titles[0].starts_with("Day 0 (--now 2027-01-04T09:00:00Z)"),
        "{titles:?}"
    );
    assert_eq!(
        demo["steps"][3]["result"]["reminders_sent"],
        json!(["acme"])
    );
    assert_eq!(demo["steps"][4]["result"]["locked"], json!(["acme"]));
    assert_eq!(
        demo["steps"][5]["result"]["refused"]["code"],
        "workspace-locked"
    );
    let kinds: Vec<&str> = demo["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "opening-reminder",
            "countdown-started",
            "countdown-reminder",
            "locked",
            "unlocked"
        ]
    );
    assert_eq!(demo["view"]["standing"], "good");
    assert_eq!(demo["view"]["plan"], "commercial");
    assert_eq!(demo["audit"]["clean"], true);
    let human = crate::harness::billing(&["--now", T0, "demo", "--lifecycle"]);
    assert!(
        human
            .stdout
            .contains("Day 14 (--now 2027-01-18T09:00:00Z): billing tick: the deadline passed"),
        "{human:?}"
    );
}
