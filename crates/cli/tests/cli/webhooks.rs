//! `billing webhook …` and `billing deliver` against a real HTTP receiver on loopback that checks
//! every signature with its own HMAC: each event arrives once, signed, as its `billing events`
//! line, in workspace order; failures stay pending, a 410 disables, retry re-drives; bad input
//! is refused before anything is written.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use billing_test_support::receiver::{Answer, Receiver};
use serde_json::Value;

use crate::harness::Store;

/// A receiver served by its own runtime's threads while the test runs processes.
fn receiver() -> (tokio::runtime::Runtime, Receiver) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let r = runtime.block_on(Receiver::start());
    (runtime, r)
}

/// Adds an endpoint for `r` and gives the receiver its secret; returns the endpoint id.
fn add(store: &Store, r: &Receiver, extra: &[&str]) -> String {
    let mut args = vec!["webhook", "add", "--url", r.url(), "--json"];
    args.extend_from_slice(extra);
    let added = store.expect(0, &args).json();
    let secret = added["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{added}");
    r.set_secret(secret);
    added["endpoint"]["id"].as_str().unwrap().to_owned()
}

fn endpoint(store: &Store, id: &str) -> Value {
    let list = store.expect(0, &["webhook", "list", "--json"]).json();
    list["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

#[test]
fn deliver_posts_every_event_once_signed_as_its_events_line() {
    let (_rt, r) = receiver();
    let store = Store::new();
    let id = add(&store, &r, &[]);
    store.upgraded();
    store.expect(0, &["upgrade", "--workspace", "beta", "--site", "cn1"]);
    let first = store.expect(0, &["deliver", "--json"]).json();
    assert_eq!(first["delivered"], 5, "{first}");
    let again = store.expect(0, &["deliver", "--json"]).json();
    assert_eq!(again["delivered"], 0, "nothing twice: {again}");

    let events = store.expect(0, &["events"]).stdout;
    let lines: Vec<&str> = events.lines().collect();
    let got = r.received();
    assert_eq!(got.len(), lines.len());
    // Workspaces go side by side; within each, in sequence order.
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let id = format!("{}:{}", v["aggregate_id"].as_str().unwrap(), v["sequence"]);
        let same: Vec<_> = got.iter().filter(|x| x.id == id).collect();
        assert_eq!(same.len(), 1, "{id} once");
        assert!(same[0].signature_ok, "{:?}", same[0]);
        assert_eq!(
            same[0].body, *line,
            "the body is the event's `billing events` line"
        );
    }
    for ws in ["acme", "beta"] {
        let seqs: Vec<u64> = got
            .iter()
            .filter_map(|x| {
                x.id.strip_prefix(&format!("{ws}:"))
                    .map(|s| s.parse().unwrap())
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{ws}: {seqs:?}");
    }
    let listed = endpoint(&store, &id);
    assert_eq!(
        (listed["delivered"].as_u64(), listed["pending"].as_u64()),
        (Some(5), Some(0))
    );
    let human = store.expect(0, &["webhook", "list"]).stdout;
    assert!(
        human.contains(&id) && human.contains("every type") && human.contains("enabled"),
        "{human}"
    );

    let removed = store
        .expect(0, &["webhook", "remove", &id, "--json"])
        .json();
    assert_eq!(removed["dropped"], 0, "{removed}");
    let gone = store.expect(2, &["webhook", "remove", &id]);
    assert!(
        gone.stderr.contains(&id) && gone.stderr.contains("webhook list"),
        "{gone:?}"
    );
    let none = store.expect(0, &["webhook", "list"]).stdout;
    assert!(none.contains("No webhook endpoints"), "{none}");
}

#[test]
fn failures_stay_pending_a_410_disables_and_retry_re_drives_in_order() {
    let (_rt, r) = receiver();
    let store = Store::new();
    let id = add(&store, &r, &[]);
    store.upgraded();
    r.script([Answer::Status(503)]);
    let failed = store.expect(0, &["deliver", "--json"]).json();
    assert_eq!(
        (failed["delivered"].as_u64(), failed["retrying"].as_u64()),
        (Some(0), Some(1)),
        "{failed}"
    );
    assert_eq!(
        failed["pending"], 4,
        "the workspace's later events wait: {failed}"
    );
    assert!(failed["next_attempt"].is_string(), "{failed}");
    let human = store.expect(0, &["deliver"]).stdout;
    assert!(
        human.contains("4 events are still pending; the next attempt is due at"),
        "{human}"
    );
    assert_eq!(r.received().len(), 1, "not due again yet");

    // Retry makes it due now; the receiver now says it is gone.
    store.expect(0, &["webhook", "retry", &id]);
    r.script([Answer::Status(410)]);
    let disabled = store.expect(0, &["deliver", "--json"]).json();
    assert_eq!(disabled["disabled"], 1, "{disabled}");
    let listed = endpoint(&store, &id);
    let state = store.expect(0, &["webhook", "list"]).stdout;
    assert!(
        state.contains("disabled since") && state.contains("410"),
        "{state}"
    );
    assert_eq!(listed["pending"], 4, "kept, not lost: {listed}");
    assert_eq!(
        store.expect(0, &["deliver", "--json"]).json()["delivered"],
        0
    );

    let retried = store.expect(0, &["webhook", "retry", &id, "--json"]).json();
    assert_eq!(retried["re_enabled"], true, "{retried}");
    let delivered = store.expect(0, &["deliver", "--json"]).json();
    assert_eq!(delivered["delivered"], 4, "{delivered}");
    let ids: Vec<String> = r.received().iter().map(|x| x.id.clone()).collect();
    assert_eq!(
        ids,
        ["acme:1", "acme:1", "acme:1", "acme:2", "acme:3", "acme:4"]
    );
    assert!(r.received().iter().all(|x| x.signature_ok));
    let failures = store.expect(0, &["webhook", "failures"]).stdout;
    assert!(failures.contains("No dead letters"), "{failures}");
}

#[test]
fn bad_webhook_input_is_refused_naming_the_value() {
    let store = Store::new();
    for (args, needles) in [
        (
            vec!["webhook", "add", "--url", "ftp://example.com/x"],
            vec!["\"ftp://example.com/x\"", "\"ftp\"", "http or https"],
        ),
        (
            vec!["webhook", "add", "--url", "example.com/hooks"],
            vec!["\"example.com/hooks\"", "relative URL"],
        ),
        (
            vec![
                "webhook",
                "add",
                "--url",
                "http://127.0.0.1:9/",
                "--event",
                "PlanDowngraded",
            ],
            vec!["\"PlanDowngraded\"", "PlanUpgraded"],
        ),
        (
            vec!["webhook", "retry", "ep_nope"],
            vec!["\"ep_nope\"", "16 lowercase hex"],
        ),
        (
            vec!["webhook", "remove", "ep_0123456789abcdef"],
            vec!["ep_0123456789abcdef", "no webhook endpoint"],
        ),
        (
            vec!["deliver", "--timeout", "0"],
            vec!["--timeout 0", "1 to 3600"],
        ),
    ] {
        let run = store.expect(2, &args);
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "{args:?}: {needle:?} not in {run:?}"
            );
        }
    }
    let list = store.expect(0, &["webhook", "list", "--json"]).json();
    assert_eq!(
        list["endpoints"].as_array().unwrap().len(),
        0,
        "nothing written: {list}"
    );
}

#[test]
fn deliver_follow_sends_new_commits_and_one_runs_at_a_time() {
    let (_rt, r) = receiver();
    let store = Store::new();
    add(&store, &r, &["--event", "PlanUpgraded"]);
    store.upgraded();
    let child = Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(["--db", &store.url, "deliver", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.received().len() < n {
            assert!(Instant::now() < deadline, "{:?}", r.received());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(1);
    let second = store.expect(3, &["deliver"]);
    assert!(
        second
            .stderr
            .contains("another `billing deliver` is delivering"),
        "{second:?}"
    );
    // Another process upgrades a second workspace; the follower sends its PlanUpgraded only.
    store.expect(0, &["upgrade", "--workspace", "beta", "--site", "us1"]);
    store.expect(
        0,
        &[
            "account",
            "bind",
            "--workspace",
            "beta",
            "--username",
            "acme-finance",
        ],
    );
    store.expect(
        0,
        &[
            "agreement",
            "accept",
            "--workspace",
            "beta",
            "--version",
            "2024-06",
        ],
    );
    wait_for(2);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"], 2, "{report}");
    let ids: Vec<String> = r.received().iter().map(|x| x.id.clone()).collect();
    assert_eq!(ids, ["acme:4", "beta:4"]);
    // Its lease was given up: a new run starts at once.
    store.expect(0, &["deliver"]);
}
