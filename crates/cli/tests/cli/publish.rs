//! `billing publish --nats`: every committed event reaches a real NATS JetStream stream once, on
//! its workspace's subject, with its identity as `Nats-Msg-Id`; a second run sends nothing new;
//! a store that sends the same events again (its checkpoint lost) adds nothing to the stream.
//! Needs NATS with JetStream at `NATS_URL` (default `nats://127.0.0.1:4222`; `scripts/test`
//! provides it): the test fails, never skips, when it does not answer.

use async_nats::jetstream;
use serde_json::Value;

use crate::harness::Store;

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_event_reaches_jetstream_once_and_a_resend_adds_nothing() {
    let url = nats_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let stream = format!("T{}n{nanos}", std::process::id());
    let store = Store::new();
    store.upgraded();
    store.expect(0, &["upgrade", "--workspace", "beta.v2", "--site", "cn1"]);
    let first = store
        .expect(
            0,
            &["publish", "--nats", &url, "--stream", &stream, "--json"],
        )
        .json();
    assert_eq!(
        (first["published"].as_u64(), first["duplicates"].as_u64()),
        (Some(5), Some(0)),
        "{first}"
    );
    // Again: nothing new to send.
    let again = store
        .expect(
            0,
            &["publish", "--nats", &url, "--stream", &stream, "--json"],
        )
        .json();
    assert_eq!(again["published"], 0, "{again}");
    // Another store holding the same log, sending it all again: JetStream drops every message.
    let exported = store.path("log.jsonl");
    store.expect(0, &["export", "--out", exported.to_str().unwrap()]);
    let copy = Store::new();
    copy.expect(0, &["import", "--from", exported.to_str().unwrap()]);
    let resent = copy
        .expect(
            0,
            &["publish", "--nats", &url, "--stream", &stream, "--json"],
        )
        .json();
    assert_eq!(
        (resent["published"].as_u64(), resent["duplicates"].as_u64()),
        (Some(5), Some(5)),
        "{resent}"
    );

    let events = lines(&store.expect(0, &["events"]).stdout);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap_or_else(|e| {
            panic!("NATS at {url} does not answer ({e}); scripts/test starts one")
        });
        let js = jetstream::new(client);
        let mut s = js.get_stream(&stream).await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 5);
        for (seq, event) in (1..=5u64).zip(&events) {
            let message = s.get_raw_message(seq).await.unwrap();
            let workspace = event["aggregate_id"].as_str().unwrap();
            let subject = format!("billing.{stream}.{}", workspace.replace('.', "~2E"));
            assert_eq!(message.subject.as_str(), subject);
            let id = message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned());
            assert_eq!(id, Some(format!("{workspace}:{}", event["sequence"])));
            let payload: Value = serde_json::from_slice(&message.payload).unwrap();
            assert_eq!(&payload, event);
        }
        js.delete_stream(&stream).await.unwrap();
    });
}

#[test]
fn a_bad_stream_name_or_server_url_is_named_and_an_absent_server_is_unavailable() {
    let store = Store::new();
    let run = store.expect(
        2,
        &[
            "publish",
            "--nats",
            "nats://127.0.0.1:4222",
            "--stream",
            "a.b",
        ],
    );
    assert!(
        run.stderr.contains("--stream") && run.stderr.contains("\"a.b\""),
        "{run:?}"
    );
    let run = store.expect(2, &["publish", "--nats", "http://127.0.0.1:4222"]);
    assert!(run.stderr.contains("--nats"), "{run:?}");
    store.upgraded();
    let run = store.expect(
        3,
        &[
            "publish",
            "--nats",
            "nats://127.0.0.1:1",
            "--stream",
            "NOWHERE",
        ],
    );
    assert!(run.stderr.contains("nats://127.0.0.1:1"), "{run:?}");
    // Nothing was acknowledged, so nothing is checkpointed.
    let listed = store.expect(0, &["subscriptions"]).stdout;
    assert!(!listed.contains("publish."), "{listed}");
}
