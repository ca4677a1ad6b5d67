//! Webhook delivery against a real receiver on loopback that checks the signatures itself, on
//! both backends.

billing_test_support::on_both_backends! {
    harness: crate::harness::Harness,
    scenarios: crate::webhooks::scenarios,
    tests: [
        every_event_reaches_the_receiver_signed_in_workspace_order,
        a_failing_receiver_is_retried_with_backoff_then_dead_lettered_and_retried,
        a_receiver_answering_410_disables_the_endpoint_and_keeps_its_events,
        redirects_hangs_and_refused_connections_are_failures_that_retry,
        one_deliverer_runs_at_a_time,
    ],
}

pub mod scenarios {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use billing_adapters::webhooks::{self, Deliverer, DeliveryPolicy, Step};
    use billing_test_support::receiver::{Answer, Received, Receiver};
    use chrono::{DateTime, Utc};
    use serde_json::Value;

    use crate::harness::{t, upgrade, Harness};

    const START: &str = "2026-11-27T10:00:00Z";

    fn policy() -> DeliveryPolicy {
        DeliveryPolicy {
            timeout: Duration::from_millis(500),
            ..DeliveryPolicy::default()
        }
    }

    async fn deliverer(h: &Harness, holder: &str, now: DateTime<Utc>) -> Deliverer {
        Deliverer::start(h.billing.db(), holder, policy(), now)
            .await
            .unwrap()
            .expect("no other deliverer runs")
    }

    /// Steps at `now` until the receiver has `n` requests (events become visible to the
    /// subscription once every older transaction has ended; the deadline only bounds a failure).
    async fn step_until(d: &mut Deliverer, r: &Receiver, now: DateTime<Utc>, n: usize) -> Step {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut total = Step::default();
        while r.received().len() < n {
            assert!(Instant::now() < deadline, "only {:?} of {n}", r.received());
            let s = d.step(now).await.unwrap();
            total += s;
            if s.is_idle() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        total
    }

    /// A receiver with an endpoint for it (of `types`), checking that endpoint's signatures.
    async fn receiving(
        h: &Harness,
        types: &[String],
        now: DateTime<Utc>,
    ) -> (Receiver, webhooks::AddedEndpoint) {
        let r = Receiver::start().await;
        let e = webhooks::add_endpoint(h.billing.db(), r.url(), types, now)
            .await
            .unwrap();
        r.set_secret(&e.secret);
        (r, e)
    }

    fn body(r: &Received) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    pub async fn every_event_reaches_the_receiver_signed_in_workspace_order(h: &Harness) {
        let db = h.billing.db();
        let now = t(START);
        let all = Receiver::start().await;
        let upgrades = Receiver::start().await;
        let a = webhooks::add_endpoint(db, all.url(), &[], now)
            .await
            .unwrap();
        all.set_secret(&a.secret);
        let b = webhooks::add_endpoint(db, upgrades.url(), &["PlanUpgraded".into()], now)
            .await
            .unwrap();
        upgrades.set_secret(&b.secret);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("whsec_"), "{}", a.secret);

        h.register("acme-finance").await;
        for w in ["wh-a", "wh-b", "wh-c"] {
            upgrade(h, w, "cn2").await;
        }
        let events = h.count("SELECT count(*) FROM events").await as usize;
        let mut d = deliverer(h, "test-1", now).await;
        step_until(&mut d, &all, now, events).await;
        step_until(&mut d, &upgrades, now, 3).await;
        // Nothing more comes: every event once.
        for _ in 0..3 {
            d.step(now).await.unwrap();
        }
        let got = all.received();
        assert_eq!(got.len(), events, "each event once");
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for r in &got {
            assert!(r.signature_ok, "signature of {r:?}");
            assert_eq!(r.timestamp, now.timestamp().to_string());
            let v = body(r);
            let ws = v["aggregate_id"].as_str().unwrap().to_owned();
            let seq = v["sequence"].as_u64().unwrap();
            assert_eq!(
                r.id,
                format!("{ws}:{seq}"),
                "the webhook-id is the event's identity"
            );
            assert!(v["position"].is_string(), "{v}");
            let before = last.insert(ws.clone(), seq).unwrap_or(0);
            assert_eq!(seq, before + 1, "workspace {ws} in order, none skipped");
        }
        let only: Vec<_> = upgrades
            .received()
            .iter()
            .map(|r| body(r)["event_type"].clone())
            .collect();
        assert_eq!(
            only, ["PlanUpgraded"; 3],
            "the filtered endpoint gets its type only"
        );
        let listed = webhooks::endpoints(db).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            listed.iter().map(|e| e.delivered).sum::<u64>(),
            events as u64 + 3
        );
        assert!(listed
            .iter()
            .all(|e| e.pending == 0 && e.dead == 0 && e.disabled.is_none()));
        d.release().await.unwrap();
    }

    pub async fn a_failing_receiver_is_retried_with_backoff_then_dead_lettered_and_retried(
        h: &Harness,
    ) {
        let db = h.billing.db();
        let mut now = t(START);
        let (r, e) = receiving(h, &[], now).await;
        r.script(std::iter::repeat_n(Answer::Status(500), 10_000));
        h.register("acme-finance").await;
        upgrade(h, "wh-fail", "cn2").await;
        let mut d = deliverer(h, "test-1", now).await;
        let s = step_until(&mut d, &r, now, 1).await;
        assert_eq!(s.retrying, 1, "{s:?}");
        // Not due again at once, and the workspace's next event waits for the first.
        assert_eq!(d.step(now).await.unwrap(), Step::default());
        let next = d.next_attempt().await.unwrap().unwrap();
        let delay = next - now;
        assert!(
            delay >= chrono::Duration::seconds(5) && delay <= chrono::Duration::seconds(10),
            "first retry after 5 s plus jitter, not {delay}"
        );
        // Walk the clock to every next attempt until the retries give up.
        let mut delays = Vec::new();
        let mut dead = 0;
        while dead == 0 {
            let at = d.next_attempt().await.unwrap().expect("still pending");
            delays.push(at - now);
            now = at;
            let s = d.step(now).await.unwrap();
            dead = s.dead;
            assert!(delays.len() < 200, "gives up in time: {delays:?}");
        }
        let received = r.received();
        assert!(received
            .iter()
            .all(|x| x.id == "wh-fail:1" && x.signature_ok));
        let span = now - t(START);
        assert!(
            span >= chrono::Duration::hours(72) && span < chrono::Duration::hours(74),
            "gave up 72 h after the first failure, not {span}"
        );
        for (i, delay) in delays.iter().enumerate() {
            // 5 s doubling up to 1 h, plus a jitter of up to as much again.
            let base = chrono::Duration::seconds((5i64 << i.min(20)).min(3600));
            assert!(
                *delay >= base && *delay <= base * 2,
                "delay {i} is {delay}, not in [{base}, 2 × {base}]: {delays:?}"
            );
        }
        let failures = webhooks::failures(db, Some(&e.endpoint.id)).await.unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].workspace_id.as_str(), failures[0].sequence),
            ("wh-fail", 1)
        );
        assert!(failures[0].last_error.contains("500"), "{:?}", failures[0]);
        assert_eq!(failures[0].attempts as usize, received.len());
        // With the head dead, the workspace's next event goes (and fails) in its turn.
        let s = d.step(now).await.unwrap();
        assert_eq!(s.retrying, 1, "{s:?}");
        assert_eq!(r.received().last().unwrap().id, "wh-fail:2");

        // The receiver is mended; a retry re-drives the dead letter, then the rest in order.
        r.clear_script();
        let n = r.received().len();
        let retried = webhooks::retry(db, &e.endpoint.id, now).await.unwrap();
        assert_eq!(retried.dead_letters, 1);
        assert!(!retried.re_enabled);
        assert!(webhooks::failures(db, None).await.unwrap().is_empty());
        let events = h.count("SELECT count(*) FROM events").await as usize;
        step_until(&mut d, &r, now, n + events).await;
        let ids: Vec<_> = r.received()[n..].iter().map(|x| x.id.clone()).collect();
        let expected: Vec<_> = (1..=events).map(|s| format!("wh-fail:{s}")).collect();
        assert_eq!(ids, expected);
        assert_eq!(webhooks::endpoints(db).await.unwrap()[0].pending, 0);
    }

    pub async fn a_receiver_answering_410_disables_the_endpoint_and_keeps_its_events(h: &Harness) {
        let db = h.billing.db();
        let now = t(START);
        let (r, e) = receiving(h, &[], now).await;
        r.script([Answer::Status(410)]);
        h.register("acme-finance").await;
        upgrade(h, "wh-gone", "cn2").await;
        let events = h.count("SELECT count(*) FROM events").await as u64;
        let mut d = deliverer(h, "test-1", now).await;
        let s = step_until(&mut d, &r, now, 1).await;
        assert_eq!(s.disabled, 1, "{s:?}");
        for _ in 0..3 {
            assert_eq!(
                d.step(now).await.unwrap().delivered,
                0,
                "nothing goes to it"
            );
        }
        assert_eq!(r.received().len(), 1);
        let listed = &webhooks::endpoints(db).await.unwrap()[0];
        let disabled = listed.disabled.as_ref().expect("disabled");
        assert!(disabled.reason.contains("410"), "{disabled:?}");
        assert!(disabled
            .reason
            .contains(&format!("billing webhook retry {}", e.endpoint.id)));
        assert_eq!(listed.pending, events, "its events stay queued");

        let retried = webhooks::retry(db, &e.endpoint.id, now).await.unwrap();
        assert!(retried.re_enabled);
        step_until(&mut d, &r, now, 1 + events as usize).await;
        let ids: Vec<_> = r.received().iter().map(|x| x.id.clone()).collect();
        let expected: Vec<_> = std::iter::once("wh-gone:1".to_owned())
            .chain((1..=events).map(|s| format!("wh-gone:{s}")))
            .collect();
        assert_eq!(
            ids, expected,
            "the refused one again, then the rest in order"
        );
        assert_eq!(webhooks::endpoints(db).await.unwrap()[0].pending, 0);
    }

    pub async fn redirects_hangs_and_refused_connections_are_failures_that_retry(h: &Harness) {
        let db = h.billing.db();
        let now = t(START);
        let (r, e) = receiving(h, &[], now).await;
        r.script([
            Answer::Redirect("http://127.0.0.1:9/elsewhere".into()),
            Answer::Hang,
        ]);
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_url = format!("http://{}/hooks", closed.local_addr().unwrap());
        drop(closed);
        let refused = webhooks::add_endpoint(db, &closed_url, &["UpgradeRequested".into()], now)
            .await
            .unwrap();
        h.register("acme-finance").await;
        upgrade(h, "wh-odd", "cn2").await;
        let mut d = deliverer(h, "test-1", now).await;
        step_until(&mut d, &r, now, 1).await;
        let redirect = last_error(h, &e.endpoint.id, "wh-odd", 1).await;
        assert!(
            redirect.contains("307")
                && redirect.contains("redirect to http://127.0.0.1:9/elsewhere")
                && redirect.contains("do not follow redirects"),
            "{redirect}"
        );
        let later = now + chrono::Duration::minutes(5);
        step_until(&mut d, &r, later, 2).await;
        let hang = last_error(h, &e.endpoint.id, "wh-odd", 1).await;
        assert!(
            hang.contains("no answer within 0.5 s (timed out)"),
            "{hang}"
        );
        let much_later = later + chrono::Duration::minutes(5);
        step_until(&mut d, &r, much_later, 3).await;
        let got = r.received();
        assert_eq!(
            got.iter()
                .map(|x| (x.id.as_str(), x.answered))
                .take(3)
                .collect::<Vec<_>>(),
            [
                ("wh-odd:1", Some(307)),
                ("wh-odd:1", None),
                ("wh-odd:1", Some(200))
            ],
            "the same event until it is answered 2xx"
        );
        let refused_error = last_error(h, &refused.endpoint.id, "wh-odd", 1).await;
        assert!(
            refused_error.contains("could not connect"),
            "{refused_error}"
        );
        let listed = webhooks::endpoints(db).await.unwrap();
        let refused_listed = listed.iter().find(|x| x.id == refused.endpoint.id).unwrap();
        assert_eq!(
            (refused_listed.pending, refused_listed.delivered),
            (1, 0),
            "kept, not lost"
        );
    }

    async fn last_error(
        h: &Harness,
        endpoint: &webhooks::EndpointId,
        workspace: &str,
        sequence: i64,
    ) -> String {
        let sql = "SELECT last_error FROM webhook_deliveries \
                   WHERE endpoint_id = $1 AND workspace_id = $2 AND sequence = $3";
        let found: Option<String> = billing_store::on_backend!(h.billing.db().backend(), |p| {
            sqlx::query_scalar(sql)
                .bind(endpoint.as_str())
                .bind(workspace)
                .bind(sequence)
                .fetch_one(p)
                .await
                .unwrap()
        });
        found.expect("an attempt was recorded")
    }

    pub async fn one_deliverer_runs_at_a_time(h: &Harness) {
        let db = h.billing.db();
        let now = t(START);
        let first = deliverer(h, "one", now).await;
        assert!(Deliverer::start(db, "two", policy(), now)
            .await
            .unwrap()
            .is_none());
        first.release().await.unwrap();
        let second = deliverer(h, "two", now).await;
        let mut first = deliverer(h, "one", now + chrono::Duration::minutes(2)).await;
        let err = {
            let mut second = second;
            second
                .step(now + chrono::Duration::minutes(2))
                .await
                .unwrap_err()
        };
        assert!(err.to_string().contains("webhooks"), "{err}");
        first
            .step(now + chrono::Duration::minutes(2))
            .await
            .unwrap();
    }
}
