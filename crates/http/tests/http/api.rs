//! The documented flow, idempotency and If-Match over HTTP: scenarios run on both backends.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{send, t, Harness, NEXT_MONTH, START};

/// A 200 command body: the workspace, the command id, the events written (of these types, at
/// consecutive sequences) and the view after them.
fn assert_command(body: &Value, workspace: &str, types: &[&str]) {
    assert_eq!(body["workspace_id"], workspace, "{body}");
    assert!(
        body["command_id"].as_str().is_some_and(|k| !k.is_empty()),
        "{body}"
    );
    let events = body["events"]
        .as_array()
        .expect("a command body has events");
    let got: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().expect("an event type"))
        .collect();
    assert_eq!(got, types, "{body}");
    let last = events.last().expect("a command writes events");
    assert_eq!(
        body["view"]["last_sequence"], last["sequence"],
        "the view is the one right after the events: {body}"
    );
    assert_eq!(body["view"]["head_hash"], last["hash"], "{body}");
    assert_eq!(body["view"]["workspace_id"], workspace, "{body}");
}

pub async fn the_documented_flow_binds_an_account_and_settles_through_aws(h: &Harness) {
    let w = "acme";
    let owner = h.owner(w);
    h.register_user("acme-finance").await;

    let body = h.ok(&owner, w, "upgrade", json!({ "site": "us1" })).await;
    assert_command(&body, w, &["UpgradeRequested"]);
    assert_eq!(body["view"]["plan"], "experience", "{body}");
    assert_eq!(body["view"]["upgrade_step"], "requested", "{body}");
    assert_eq!(body["view"]["site"], "us1", "{body}");

    // The user name is verified: an unknown one is refused and nothing is written.
    let before = h.total_events().await;
    send(h.post(
        &owner,
        w,
        "account/bind",
        &json!({ "username": "nobody-at-all" }),
    ))
    .await
    .problem(409, "unknown-user-name");
    assert_eq!(h.total_events().await, before, "a refusal writes nothing");

    let body = h
        .ok(
            &owner,
            w,
            "account/bind",
            json!({ "username": "acme-finance" }),
        )
        .await;
    assert_command(&body, w, &["AccountBound"]);
    assert_eq!(body["view"]["user_name"], "acme-finance", "{body}");
    assert_eq!(body["view"]["upgrade_step"], "account-bound", "{body}");

    let body = h
        .ok(
            &owner,
            w,
            "agreement/accept",
            json!({ "version": "2024-06" }),
        )
        .await;
    assert_command(&body, w, &["AgreementAccepted", "PlanUpgraded"]);
    let view = &body["view"];
    assert_eq!(view["plan"], "commercial", "{body}");
    assert_eq!(view["settlement_method"], "enterprise", "{body}");
    assert_eq!(view["agreement_version"], "2024-06", "{body}");
    let upgraded_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(view["upgraded_at"].clone()).expect("upgraded_at is an instant");
    assert_eq!(upgraded_at, t(START), "{body}");
    assert_eq!(view["data_visible_from"], view["upgraded_at"], "{body}");

    // The view read afterwards shows the Commercial Plan.
    let reply = send(h.get("/v1/workspaces/acme", &owner)).await;
    let read = reply.ok();
    assert_eq!(read["plan"], "commercial", "{read}");
    assert_eq!(read["upgrade_step"], "upgraded", "{read}");
    assert_eq!(reply.header("etag"), Some("\"4\""), "{read}");

    // A cloud account must be subscribed before it is chosen.
    h.clock.advance(Duration::hours(1));
    send(h.post(
        &owner,
        w,
        "settlement",
        &json!({ "method": "aws", "account": "123456789012" }),
    ))
    .await
    .problem(409, "cloud-account-not-subscribed");
    h.subscribe("aws", "123456789012", true).await;
    let body = h
        .ok(
            &owner,
            w,
            "settlement",
            json!({ "method": "aws", "account": "123456789012" }),
        )
        .await;
    assert_command(&body, w, &["SettlementChanged"]);
    assert_eq!(body["view"]["settlement_method"], "aws", "{body}");
    assert_eq!(body["view"]["cloud_account_id"], "123456789012", "{body}");
    assert_eq!(body["view"]["settlement_changes"], 1, "{body}");

    // A second change in the same calendar month (Oregon time) is refused, naming when the
    // next one is allowed: 2026-12-01 00:00 in Los Angeles.
    h.clock.advance(Duration::days(5));
    let before = h.total_events().await;
    let problem = send(h.post(&owner, w, "settlement", &json!({ "method": "enterprise" })))
        .await
        .problem(409, "settlement-change-too-soon");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2026-12-01")),
        "the refusal names the next allowed instant: {problem}"
    );
    assert_eq!(h.total_events().await, before, "a refusal writes nothing");

    // Next month the active AWS subscription still holds the workspace.
    h.clock.set(t(NEXT_MONTH));
    send(h.post(&owner, w, "settlement", &json!({ "method": "enterprise" })))
        .await
        .problem(409, "cloud-settlement-locked-in");

    assert_eq!(
        h.history(w).await,
        [
            "UpgradeRequested",
            "AccountBound",
            "AgreementAccepted",
            "PlanUpgraded",
            "SettlementChanged"
        ]
    );
    assert_eq!(h.stream_len(w).await, 5);
}

pub async fn registering_a_new_account_binds_it(h: &Harness) {
    let (w, other) = ("newco", "otherco");
    let owner = h.owner(w);
    h.ok(&owner, w, "upgrade", json!({ "site": "cn4" })).await;
    let body = h
        .ok(
            &owner,
            w,
            "account/register",
            json!({ "username": "newco-billing", "email": "billing@newco.example" }),
        )
        .await;
    assert_command(&body, w, &["AccountBound"]);
    assert_eq!(body["view"]["user_name"], "newco-billing", "{body}");

    // User names are unique: another workspace cannot register the same one.
    let other_owner = h.owner(other);
    h.ok(&other_owner, other, "upgrade", json!({ "site": "cn1" }))
        .await;
    let before = h.total_events().await;
    send(h.post(
        &other_owner,
        other,
        "account/register",
        &json!({ "username": "newco-billing", "email": "someone@else.example" }),
    ))
    .await
    .problem(409, "user-name-taken");
    assert_eq!(h.total_events().await, before);

    let body = h
        .ok(
            &owner,
            w,
            "agreement/accept",
            json!({ "version": "2024-06" }),
        )
        .await;
    assert_eq!(body["view"]["plan"], "commercial", "{body}");
    assert_eq!(body["view"]["settlement_method"], "enterprise", "{body}");
    // China 4 settles through the Expense Center only.
    send(h.post(
        &owner,
        w,
        "settlement",
        &json!({ "method": "aws", "account": "123456789012" }),
    ))
    .await
    .problem(409, "settlement-not-allowed-on-site");
    send(h.post(&owner, w, "settlement", &json!({ "method": "enterprise" })))
        .await
        .problem(409, "settlement-unchanged");
    assert_eq!(
        h.history(w).await,
        [
            "UpgradeRequested",
            "AccountBound",
            "AgreementAccepted",
            "PlanUpgraded"
        ]
    );
}

pub async fn steps_out_of_order_are_refused(h: &Harness) {
    let w = "eager";
    let owner = h.owner(w);
    h.register_user("eager-finance").await;
    let refused = |command: &'static str, body: Value, code: &'static str| {
        let request = h.post(&owner, w, command, &body);
        async move {
            send(request).await.problem(409, code);
        }
    };
    refused(
        "account/bind",
        json!({ "username": "eager-finance" }),
        "upgrade-not-requested",
    )
    .await;
    refused(
        "agreement/accept",
        json!({ "version": "2024-06" }),
        "upgrade-not-requested",
    )
    .await;
    refused(
        "settlement",
        json!({ "method": "enterprise" }),
        "not-commercial-yet",
    )
    .await;
    h.ok(&owner, w, "upgrade", json!({ "site": "cn2" })).await;
    refused(
        "upgrade",
        json!({ "site": "cn2" }),
        "upgrade-already-requested",
    )
    .await;
    refused(
        "agreement/accept",
        json!({ "version": "2024-06" }),
        "account-not-bound",
    )
    .await;
    h.ok(
        &owner,
        w,
        "account/bind",
        json!({ "username": "eager-finance" }),
    )
    .await;
    refused(
        "account/bind",
        json!({ "username": "eager-finance" }),
        "account-already-bound",
    )
    .await;
    h.ok(
        &owner,
        w,
        "agreement/accept",
        json!({ "version": "2024-06" }),
    )
    .await;
    refused("upgrade", json!({ "site": "cn2" }), "already-commercial").await;
    refused(
        "account/bind",
        json!({ "username": "eager-finance" }),
        "already-commercial",
    )
    .await;
    assert_eq!(h.stream_len(w).await, 4, "only the four steps were written");
}

pub async fn a_post_is_idempotent_by_its_key(h: &Harness) {
    let w = "idem";
    let owner = h.owner(w);

    let reply = send(
        h.request(Method::POST, "/v1/workspaces/idem/upgrade")
            .bearer_auth(&owner)
            .json(&json!({ "site": "us1" })),
    )
    .await;
    reply.problem(400, "idempotency-key-required");
    assert_eq!(
        h.total_events().await,
        0,
        "a POST without a key writes nothing"
    );

    let upgrade = || h.post_keyed(&owner, w, "upgrade", "upgrade-1", &json!({ "site": "us1" }));
    let first = send(upgrade()).await;
    let first_body = first.ok();
    assert_command(&first_body, w, &["UpgradeRequested"]);
    assert_eq!(
        first_body["command_id"], "upgrade-1",
        "the key is the command id"
    );
    assert_eq!(
        first.header("idempotent-replayed"),
        None,
        "a first send is no replay"
    );

    let again = send(upgrade()).await;
    assert_eq!(again.ok(), first_body, "a replay answers the original body");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(h.history(w).await, ["UpgradeRequested"], "written once");

    // The same key with other content is refused, whichever command it names.
    send(h.post_keyed(&owner, w, "upgrade", "upgrade-1", &json!({ "site": "cn1" })))
        .await
        .problem(422, "command-id-reused");
    h.register_user("idem-finance").await;
    send(h.post_keyed(
        &owner,
        w,
        "account/bind",
        "upgrade-1",
        &json!({ "username": "idem-finance" }),
    ))
    .await
    .problem(422, "command-id-reused");
    assert_eq!(h.total_events().await, 1);

    // The same command sent eight times at once is written once; every answer is its outcome.
    let sends = (0..8).map(|_| {
        send(h.post_keyed(
            &owner,
            w,
            "account/bind",
            "bind-1",
            &json!({ "username": "idem-finance" }),
        ))
    });
    let replies = futures_util::future::join_all(sends).await;
    let bodies: Vec<Value> = replies.iter().map(|r| r.ok()).collect();
    assert!(
        bodies.windows(2).all(|p| p[0] == p[1]),
        "one outcome: {bodies:?}"
    );
    let fresh = replies
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one of the concurrent sends wrote");
    assert_eq!(h.history(w).await, ["UpgradeRequested", "AccountBound"]);
}

pub async fn if_match_guards_a_command_with_the_etag(h: &Harness) {
    let w = "etag";
    let owner = h.owner(w);
    let etag = |h: &Harness| {
        let request = h.get("/v1/workspaces/etag", &owner);
        async move {
            let reply = send(request).await;
            let view = reply.ok();
            let tag = reply
                .header("etag")
                .expect("a workspace GET has an ETag")
                .to_owned();
            assert_eq!(
                tag,
                format!("\"{}\"", view["last_sequence"]),
                "ETag is the last sequence"
            );
            tag
        }
    };
    assert_eq!(
        etag(h).await,
        "\"0\"",
        "a workspace without events is at version 0"
    );

    let upgrade = h
        .post(&owner, w, "upgrade", &json!({ "site": "us1" }))
        .header("If-Match", "\"0\"");
    send(upgrade).await.ok();
    assert_eq!(etag(h).await, "\"1\"");

    h.register_user("etag-finance").await;
    let bind = |key: &str, tag: &str| {
        h.post_keyed(
            &owner,
            w,
            "account/bind",
            key,
            &json!({ "username": "etag-finance" }),
        )
        .header("If-Match", tag)
    };
    // Stale: decided on version 0, the workspace is at 1.
    let before = h.total_events().await;
    let problem = send(bind("bind-stale", "\"0\""))
        .await
        .problem(412, "precondition-failed");
    assert!(
        problem["detail"].as_str().is_some_and(|d| d.contains('1')),
        "the refusal names the current version: {problem}"
    );
    assert_eq!(
        h.total_events().await,
        before,
        "a failed precondition writes nothing"
    );
    assert_eq!(etag(h).await, "\"1\"");

    let first = send(bind("bind-1", "\"1\"")).await;
    let first_body = first.ok();
    assert_command(&first_body, w, &["AccountBound"]);
    assert_eq!(etag(h).await, "\"2\"");

    // A replay is answered with the original outcome though its If-Match is stale now.
    let again = send(bind("bind-1", "\"1\"")).await;
    assert_eq!(again.ok(), first_body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    // `*` is no condition; anything but one strong tag of digits is an invalid value.
    for bad in ["W/\"2\"", "2", "\"two\"", "\"2\", \"3\"", "\"-1\""] {
        send(bind(&h.key(), bad))
            .await
            .problem(422, "invalid-value");
    }
    assert_eq!(h.stream_len(w).await, 2);
    let accept = h
        .post(
            &owner,
            w,
            "agreement/accept",
            &json!({ "version": "2024-06" }),
        )
        .header("If-Match", "*");
    send(accept).await.ok();
    assert_eq!(etag(h).await, "\"4\"");

    // Eight clients that read the same version: exactly one writes, the others are told the
    // version moved (412), never a rule's refusal decided on a state they did not read.
    let racers = "etag-race";
    let racer = h.owner(racers);
    let sends = (0..8).map(|i| {
        send(
            h.post_keyed(
                &racer,
                racers,
                "upgrade",
                &format!("race-{i}"),
                &json!({ "site": "us1" }),
            )
            .header("If-Match", "\"0\""),
        )
    });
    let replies = futures_util::future::join_all(sends).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "one writer wins: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        7,
        "the others are precondition failures: {statuses:?}"
    );
    assert_eq!(h.stream_len(racers).await, 1);
}
