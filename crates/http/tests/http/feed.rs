//! `GET /v1/events`: the committed events as Server-Sent Events, for the billing system (SQLite).

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{send, Harness};

/// One Server-Sent Event.
#[derive(Debug)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Parses a `text/event-stream` body into its events (comments and keep-alives dropped).
fn parse(text: &str) -> Vec<Sse> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut sse = Sse {
                id: None,
                event: None,
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => sse.id = Some(value.to_owned()),
                    "event" => sse.event = Some(value.to_owned()),
                    "data" => {
                        if any && !sse.data.is_empty() {
                            sse.data.push('\n');
                        }
                        sse.data.push_str(value);
                    }
                    _ => continue,
                }
                any = true;
            }
            any.then_some(sse)
        })
        .collect()
}

/// The events of a finished feed: each `id` is its position and its data the export line
/// carrying the same `"position"`.
async fn feed(h: &Harness, query: &str, last_event_id: Option<&str>) -> Vec<(String, Value)> {
    let mut request = h.get(&format!("/v1/events?{query}"), &h.system());
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    parse(&reply.text)
        .into_iter()
        .map(|sse| {
            let id = sse
                .id
                .clone()
                .unwrap_or_else(|| panic!("every event has an id: {sse:?}"));
            let data: Value = serde_json::from_str(&sse.data)
                .unwrap_or_else(|e| panic!("the data is JSON ({e}): {:?}", sse.data));
            assert_eq!(
                data["position"],
                id.as_str(),
                "the id is the position: {data}"
            );
            assert_eq!(
                sse.event.as_deref(),
                data["event_type"].as_str(),
                "the event name is its type: {data}"
            );
            (id, data)
        })
        .collect()
}

/// A position's numbers, for ordering.
fn position(id: &str) -> (u64, u64) {
    let (t, p) = id.split_once('.').expect("a position is t.p");
    (t.parse().expect("digits"), p.parse().expect("digits"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_serves_every_event_in_commit_order_and_resumes() {
    let h = Harness::on_sqlite().await;
    h.make_commercial("one", "us1").await;
    h.make_commercial("two", "cn1").await;

    let all = feed(&h, "follow=false", None).await;
    assert_eq!(all.len(), 8, "{all:?}");
    let positions: Vec<(u64, u64)> = all.iter().map(|(id, _)| position(id)).collect();
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "commit order: {positions:?}"
    );
    let one: Vec<u64> = all
        .iter()
        .filter(|(_, d)| d["aggregate_id"] == "one")
        .map(|(_, d)| d["sequence"].as_u64().expect("a sequence"))
        .collect();
    assert_eq!(one, [1, 2, 3, 4], "a workspace's events in sequence order");

    // Resuming after the third event serves the other five; Last-Event-ID wins over ?from=.
    let third = all[2].0.as_str();
    let rest = feed(&h, "follow=false", Some(third)).await;
    let ids =
        |events: &[(String, Value)]| events.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&rest), ids(&all[3..]));
    let from = feed(&h, &format!("follow=false&from={third}"), None).await;
    assert_eq!(ids(&from), ids(&all[3..]));
    let both = feed(&h, &format!("follow=false&from={}", all[0].0), Some(third)).await;
    assert_eq!(ids(&both), ids(&all[3..]), "Last-Event-ID wins");
    let last = all.last().map(|(id, _)| id.as_str());
    assert!(
        feed(&h, "follow=false", last).await.is_empty(),
        "nothing after the last"
    );

    // Only the billing system reads the feed.
    let reply = send(h.get("/v1/events?follow=false", &h.owner("one"))).await;
    reply.problem(403, "not-billing-system");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_feed_sees_a_new_event() {
    let h = Harness::on_sqlite().await;
    h.make_commercial("live", "us1").await;
    let all = feed(&h, "follow=false", None).await;
    let last = all.last().expect("events").0.clone();

    let mut response = h
        .get("/v1/events", &h.system())
        .header("Last-Event-ID", &last)
        .send()
        .await
        .expect("the feed answers");
    assert_eq!(response.status(), 200);

    let owner = h.owner("live");
    h.subscribe("aws", "210987654321", true).await;
    h.ok(
        &owner,
        "live",
        "settlement",
        json!({ "method": "aws", "account": "210987654321" }),
    )
    .await;

    let mut text = String::new();
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while !parse(&text).iter().any(|e| e.id.is_some()) {
            let chunk = response
                .chunk()
                .await
                .expect("reading the feed")
                .expect("a following feed does not end");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the new event reached the feed within 10 s: {text:?}"
    );
    let events = parse(&text);
    let first = events.iter().find(|e| e.id.is_some()).expect("an event");
    assert_eq!(first.event.as_deref(), Some("SettlementChanged"), "{text}");
    let data: Value = serde_json::from_str(&first.data).expect("JSON data");
    assert_eq!(data["aggregate_id"], "live");
    assert_eq!(data["sequence"], 5);
    assert!(position(first.id.as_deref().unwrap_or_default()) > position(&last));
}
