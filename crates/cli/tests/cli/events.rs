//! `billing events`: committed events in commit order as JSON Lines, each an export line plus its
//! `"position"`; `--from` resumes after a position; `--follow` waits for new events until a
//! signal, then exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::harness::Store;

/// The lines of a run's stdout, parsed.
fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn position(line: &Value) -> String {
    line["position"].as_str().unwrap().to_owned()
}

/// A position as its two numbers, which compare in commit order.
fn order(line: &Value) -> (u64, u64) {
    let p = position(line);
    let (t, n) = p.split_once('.').unwrap();
    (t.parse().unwrap(), n.parse().unwrap())
}

#[test]
fn every_committed_event_is_printed_once_with_its_position_in_commit_order() {
    let store = Store::new();
    store.upgraded();
    store.expect(0, &["upgrade", "--workspace", "beta", "--site", "cn1"]);
    let events = lines(&store.expect(0, &["events"]).stdout);
    assert_eq!(events.len(), 5);
    assert!(events.windows(2).all(|w| order(&w[0]) < order(&w[1])));
    // Each line is an export line plus its position.
    let mut exported = lines(&store.expect(0, &["export"]).stdout);
    let mut plain: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("position").unwrap();
            e
        })
        .collect();
    let key = |v: &Value| (v["aggregate_id"].to_string(), v["sequence"].as_u64());
    exported.sort_by_key(key);
    plain.sort_by_key(key);
    assert_eq!(plain, exported);
    // Each workspace's events in sequence order.
    let acme: Vec<u64> = events
        .iter()
        .filter(|e| e["aggregate_id"] == "acme")
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(acme, [1, 2, 3, 4]);

    // --from resumes after a line's position; after the last one there is nothing.
    let from = position(&events[1]);
    let rest = lines(&store.expect(0, &["events", "--from", &from]).stdout);
    assert_eq!(rest, events[2..]);
    let last = position(&events[4]);
    assert_eq!(store.expect(0, &["events", "--from", &last]).stdout, "");
}

#[test]
fn a_position_that_does_not_parse_is_named() {
    let store = Store::new();
    for bad in ["x", "12", "1.-2", "1.2.3"] {
        let run = store.expect(2, &["events", "--from", bad]);
        assert!(
            run.stderr.contains("--from") && run.stderr.contains(&format!("{bad:?}")),
            "{run:?}"
        );
        assert_eq!(run.stdout, "");
    }
}

#[test]
fn follow_prints_new_events_as_they_commit_and_a_signal_ends_it_cleanly() {
    let store = Store::new();
    store.upgraded();
    let mut child = Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(["--db", &store.url, "events", "--follow"])
        .env_remove("BILLING_DATABASE_URL")
        .env_remove("BILLING_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no line within 20 s");
        serde_json::from_str::<Value>(&line).unwrap()
    };
    let first: Vec<Value> = (0..4).map(|_| next()).collect();
    assert!(first.iter().all(|e| e["aggregate_id"] == "acme"));
    // Another process commits; the follower prints it.
    store.expect(0, &["upgrade", "--workspace", "gamma", "--site", "cn1"]);
    let new = next();
    assert_eq!(
        (new["aggregate_id"].as_str(), new["sequence"].as_u64()),
        (Some("gamma"), Some(1))
    );
    assert!(order(&new) > order(&first[3]));
    // SIGTERM ends it with exit 0.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}
