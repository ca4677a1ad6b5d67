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

/// Starts `billing ARGS…` on `store` with its stdout read line by line; the function returns
/// the next line parsed, waiting up to 20 s for it.
fn follow(store: &Store, args: &[&str]) -> (std::process::Child, impl Fn() -> Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(["--db", &store.url])
        .args(args)
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
    let next = move || {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no line within 20 s");
        serde_json::from_str::<Value>(&line).unwrap()
    };
    (child, next)
}

#[test]
fn follow_prints_new_events_as_they_commit_and_a_signal_ends_it_cleanly() {
    let store = Store::new();
    store.upgraded();
    let (mut child, next) = follow(&store, &["events", "--follow"]);
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

/// The subscription named `name` in `billing subscriptions --json`.
fn subscription(store: &Store, name: &str) -> Value {
    let listed = store.expect(0, &["subscriptions", "--json"]).json();
    listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no subscription {name}: {listed}"))
        .clone()
}

#[test]
fn a_subscription_resumes_from_its_checkpoint_and_reports_its_lag() {
    let store = Store::new();
    let none = store.expect(0, &["subscriptions"]);
    assert_eq!(none.stdout, "No subscriptions yet.\n");
    store.upgraded();
    let first = lines(
        &store
            .expect(0, &["events", "--subscription", "feed"])
            .stdout,
    );
    assert_eq!(first.len(), 4);
    let feed = subscription(&store, "feed");
    assert_eq!(feed["position"], first[3]["position"]);
    assert_eq!(
        (
            feed["events_behind"].as_u64(),
            feed["seconds_behind"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert!(feed["oldest_unhandled"].is_null());
    // `billing events` reads a subscription without holding it.
    assert!(
        feed["holder"].is_null() && feed["lease_until"].is_null(),
        "{feed}"
    );
    // One more commit: one event behind, then only that one is printed, then nothing.
    store.expect(0, &["upgrade", "--workspace", "beta", "--site", "cn1"]);
    let behind = subscription(&store, "feed");
    assert_eq!(behind["events_behind"], 1);
    assert!(behind["oldest_unhandled"].is_string(), "{behind}");
    let next = lines(
        &store
            .expect(0, &["events", "--subscription", "feed"])
            .stdout,
    );
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["aggregate_id"], "beta");
    assert_eq!(
        store
            .expect(0, &["events", "--subscription", "feed"])
            .stdout,
        ""
    );
    // A new name starts at the beginning of the log.
    let other = lines(
        &store
            .expect(0, &["events", "--subscription", "audit-copy"])
            .stdout,
    );
    assert_eq!(other.len(), 5);
    let table = store.expect(0, &["subscriptions"]).stdout;
    assert!(
        table.contains("feed") && table.contains("audit-copy") && table.ends_with('\n'),
        "{table}"
    );
}

#[test]
fn a_bad_subscription_name_or_two_starting_points_are_refused() {
    let store = Store::new();
    let run = store.expect(2, &["events", "--subscription", "Feed One"]);
    assert!(
        run.stderr.contains("--subscription") && run.stderr.contains("\"Feed One\""),
        "{run:?}"
    );
    let run = store.expect(2, &["events", "--subscription", "feed", "--from", "0.0"]);
    assert!(run.stderr.contains("--from"), "{run:?}");
}

#[test]
fn a_following_subscription_saves_what_it_printed_when_a_signal_ends_it() {
    let store = Store::new();
    store.upgraded();
    let (mut child, next) = follow(&store, &["events", "--subscription", "live", "--follow"]);
    for _ in 0..4 {
        next();
    }
    store.expect(0, &["upgrade", "--workspace", "gamma", "--site", "cn1"]);
    let last = next();
    assert_eq!(last["aggregate_id"], "gamma");
    // The checkpoint is saved right after the line is written; give it a moment, then stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while subscription(&store, "live")["position"] != last["position"] {
        assert!(
            std::time::Instant::now() < deadline,
            "the checkpoint did not move"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(subscription(&store, "live")["position"], last["position"]);
    assert_eq!(
        store
            .expect(0, &["events", "--subscription", "live"])
            .stdout,
        ""
    );
}

#[test]
fn a_lost_view_is_projected_again_by_the_views_subscription() {
    let store = Store::new();
    store.upgraded();
    // The view row goes (as after a crash between commit and projection).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&store.url).await.unwrap();
        sqlx::query("DELETE FROM billing_view WHERE workspace_id = 'acme'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    // The next process catches up through the views subscription, which ends at the log's end;
    // the listing says what its lag means.
    let views = subscription(&store, "billing-views");
    assert_eq!(views["events_behind"], 0, "{views}");
    assert_eq!(views["position"], "0.4", "{views}");
    let human = store.expect(0, &["subscriptions"]).stdout;
    assert!(
        human.contains("billing-views moves only when the views catch up"),
        "{human}"
    );
    let shown = store
        .expect(0, &["show", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(shown["plan"], "commercial", "{shown}");
}
