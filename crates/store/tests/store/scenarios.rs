//! Scenarios run against both backends (see `main.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use billing_domain::*;
use billing_store::chain::GENESIS_HASH;
use billing_store::{BillingStore, FindingCode, RetryPolicy, StoreError, Verifier};

use crate::harness::*;

pub async fn the_documented_flow_is_stored_and_replays(h: &Harness) {
    let store = &h.store;
    let w = ws("acme");
    let mut outcomes = Vec::new();
    for (id, action) in [
        ("c1", act::request("us1")),
        ("c2", act::bind(KNOWN_USER)),
        ("c3", act::accept()),
    ] {
        outcomes.push(store.execute(&w, &owner_cmd(id, action)).await.unwrap());
    }
    assert_eq!(
        outcomes.iter().map(|o| o.events.len()).collect::<Vec<_>>(),
        [1, 1, 2]
    );
    assert!(outcomes.iter().all(|o| !o.replayed));
    h.world.marketplace.subscribe(
        &MethodId::parse("aws").unwrap(),
        &CloudAccount {
            account_id: ExternalId::parse("123456789012").unwrap(),
            instance_id: None,
        },
    );
    let changed = store
        .execute(
            &w,
            &owner_cmd("c4", act::settle("aws", Some(("123456789012", None)))),
        )
        .await
        .unwrap();
    let stored = &changed.events[0];
    assert_eq!(stored.sequence, 5);
    assert_eq!(stored.metadata.command_id.as_str(), "c4");
    assert_eq!(stored.metadata.actor_role, Role::Owner);
    assert_eq!(stored.metadata.occurred_at, h.world.clock_now());

    // Replay equality: the live (cached) state, a cold load by another process, and a fold of
    // the stored events all agree.
    let live = store.state(&w).await.unwrap();
    let other = h.reopen().await;
    let (loaded, events) = other.load(&w).await.unwrap();
    let folded = Workspace::replay(events.iter().map(|e| &e.event)).unwrap();
    assert_eq!(live, loaded);
    assert_eq!(live, folded);
    assert_eq!(live.plan(), Plan::Commercial);
    assert_eq!(live.settlement().unwrap().method().as_str(), "aws");
    assert_eq!(events.len(), 5);
    assert_eq!(h.count("events").await, 5);
    assert_eq!(h.count("commands").await, 4);
}

pub async fn every_refusal_writes_nothing(h: &Harness) {
    let store = &h.store;
    let w = ws("acme");
    let refusals: Vec<(WorkspaceCommand, &str)> = vec![
        (
            owner_cmd("r1", act::bind(KNOWN_USER)),
            "upgrade-not-requested",
        ),
        (
            cmd("r2", Role::Admin, act::request("cn1")),
            "not-workspace-owner",
        ),
        (owner_cmd("r3", act::request("mars1")), "unknown-site"),
        (owner_cmd("r4", act::accept()), "upgrade-not-requested"),
        (
            owner_cmd("r5", act::settle("enterprise", None)),
            "not-commercial-yet",
        ),
    ];
    for (command, code) in &refusals {
        let err = store.execute(&w, command).await.unwrap_err();
        assert_eq!(err.domain().map(DomainError::code), Some(*code), "{err}");
    }
    assert_eq!(h.count("events").await, 0);
    store
        .execute(&w, &owner_cmd("ok1", act::request("cn1")))
        .await
        .unwrap();
    let refusals: Vec<(WorkspaceCommand, &str)> = vec![
        (
            owner_cmd("r6", act::request("cn2")),
            "upgrade-already-requested",
        ),
        (
            owner_cmd("r7", act::bind("nobody-here")),
            "unknown-user-name",
        ),
        (
            owner_cmd("r8", act::register(KNOWN_USER)),
            "user-name-taken",
        ),
        (owner_cmd("r9", act::accept()), "account-not-bound"),
    ];
    for (command, code) in &refusals {
        let err = store.execute(&w, command).await.unwrap_err();
        assert_eq!(err.domain().map(DomainError::code), Some(*code), "{err}");
    }
    store
        .execute(&w, &owner_cmd("ok2", act::bind(KNOWN_USER)))
        .await
        .unwrap();
    store
        .execute(&w, &owner_cmd("ok3", act::accept()))
        .await
        .unwrap();
    let refusals: Vec<(WorkspaceCommand, &str)> = vec![
        (owner_cmd("r10", act::accept()), "already-commercial"),
        (
            owner_cmd("r11", act::settle("aws", Some(("1", None)))),
            "settlement-not-allowed-on-site",
        ),
        (
            owner_cmd("r12", act::settle("enterprise", None)),
            "settlement-unchanged",
        ),
        (
            owner_cmd(
                "r13",
                act::settle("alibaba-cloud", Some(("1688", Some("i-1")))),
            ),
            "cloud-account-not-subscribed",
        ),
        (
            cmd("r14", Role::Member, act::settle("enterprise", None)),
            "not-workspace-owner",
        ),
    ];
    for (command, code) in &refusals {
        let err = store.execute(&w, command).await.unwrap_err();
        assert_eq!(err.domain().map(DomainError::code), Some(*code), "{err}");
    }
    assert_eq!(
        h.count("events").await,
        4,
        "only the three successful commands wrote"
    );
    assert_eq!(h.count("commands").await, 3);
}

pub async fn resending_a_command_id_returns_the_original_outcome(h: &Harness) {
    let store = &h.store;
    let w = ws("acme");
    upgrade(store, "acme", "cn1").await;
    let command = owner_cmd("acme-2", act::accept());
    h.world.clock.advance(chrono::Duration::hours(1));
    let again = store.execute(&w, &command).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.events.len(), 2);
    assert_eq!(again.events[0].sequence, 3);
    assert_eq!(again.events[1].event.event_type(), "PlanUpgraded");
    // A re-sent registration returns the account the first one created, not user-name-taken.
    let w2 = ws("globex");
    store
        .execute(&w2, &owner_cmd("g1", act::request("cn1")))
        .await
        .unwrap();
    let first = store
        .execute(&w2, &owner_cmd("g2", act::register("globex-fin")))
        .await
        .unwrap();
    let second = store
        .execute(&w2, &owner_cmd("g2", act::register("globex-fin")))
        .await
        .unwrap();
    assert!(second.replayed);
    assert_eq!(first.events, second.events);
    assert!(h
        .world
        .expense_center
        .contains(&UserName::parse("globex-fin").unwrap()));
    assert_eq!(h.count("events").await, 6);
}

pub async fn reusing_a_command_id_for_other_content_is_refused(h: &Harness) {
    let store = &h.store;
    store
        .execute(&ws("acme"), &owner_cmd("same-id", act::request("cn1")))
        .await
        .unwrap();
    for (workspace, action) in [
        ("acme", act::request("cn2")),
        ("other", act::request("cn1")),
    ] {
        let err = store
            .execute(&ws(workspace), &owner_cmd("same-id", action))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::CommandIdReused { .. }), "{err}");
        assert!(err.to_string().contains("command-id-reused"), "{err}");
    }
    assert_eq!(h.count("events").await, 1);
}

pub async fn idempotency_survives_a_restart(h: &Harness) {
    upgrade(&h.store, "acme", "cn1").await;
    let restarted = h.reopen().await;
    let again = restarted
        .execute(&ws("acme"), &owner_cmd("acme-1", act::bind(KNOWN_USER)))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.events[0].sequence, 2);
    let err = restarted
        .execute(&ws("acme"), &owner_cmd("acme-1", act::bind("globex")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CommandIdReused { .. }), "{err}");
    assert_eq!(h.count("events").await, 4);
}

pub async fn events_cannot_be_updated_deleted_or_truncated(h: &Harness) {
    upgrade(&h.store, "acme", "cn1").await;
    let before = export_text(&h.store).await;
    let mut attempts = vec![
        "UPDATE events SET event_type = 'PlanDowngraded' WHERE sequence = 4",
        "DELETE FROM events WHERE sequence = 4",
        "DELETE FROM events",
        "UPDATE commands SET command_hash = 'x'",
        "DELETE FROM commands",
        "UPDATE commands SET last_sequence = 1",
    ];
    if matches!(h.backend, TestDb::Postgres(_)) {
        attempts.extend(["TRUNCATE events", "TRUNCATE commands"]);
    }
    for sql in attempts {
        let err = h.raw(sql).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(export_text(&h.store).await, before, "nothing changed");
    assert_eq!(h.count("events").await, 4);
}

pub async fn every_event_links_to_the_previous_one_and_the_head_is_recorded(h: &Harness) {
    let store = &h.store;
    upgrade(store, "acme", "cn1").await;
    upgrade(store, "beta", "us1").await;
    for name in ["acme", "beta"] {
        let (_, events) = store.load(&ws(name)).await.unwrap();
        assert_eq!(events[0].metadata.prev_hash, GENESIS_HASH);
        for pair in events.windows(2) {
            assert_eq!(pair[1].metadata.prev_hash, pair[0].metadata.hash);
            assert_ne!(pair[1].metadata.hash, pair[0].metadata.hash);
        }
        assert_eq!(
            store.head(&ws(name)).await.unwrap().as_deref(),
            Some(events.last().unwrap().metadata.hash.as_str())
        );
    }
    assert_eq!(store.head(&ws("nobody")).await.unwrap(), None);
    // An independent verifier over the export agrees.
    let text = export_text(store).await;
    let mut verifier = Verifier::new(Some(&store.services().policy));
    for (i, line) in text.lines().enumerate() {
        assert!(verifier.push_line(i as u64 + 1, line).0.is_empty());
    }
    let (findings, _, summary) = verifier.finish();
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(
        (summary.events, summary.workspaces, summary.commercial),
        (8, 2, 2)
    );
}

async fn export_text(store: &BillingStore) -> String {
    let mut out = Vec::new();
    store.export(&mut out, |_| {}).await.unwrap();
    String::from_utf8(out).unwrap()
}

pub async fn export_import_export_is_byte_identical(h: &Harness) {
    let store = &h.store;
    for (i, site) in ["cn1", "us1", "cn4", "eu1"].iter().enumerate() {
        upgrade(store, &format!("ws-{i}"), site).await;
    }
    store
        .execute(&ws("zz-partial"), &owner_cmd("p1", act::request("ap1")))
        .await
        .unwrap();
    let first = export_text(store).await;
    assert_eq!(first.lines().count(), 17);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, &first).unwrap();
    let (target, _keep) = h.fresh().await;
    let mut phases = HashSet::new();
    let report = target
        .import(&path, |phase, _| {
            phases.insert(phase);
        })
        .await
        .unwrap();
    assert_eq!(report.events, 17);
    assert_eq!(phases, HashSet::from(["verify", "write"]));
    let second = export_text(&target).await;
    assert_eq!(
        first, second,
        "export -> import -> export must be byte-identical"
    );
    // The imported store is a working store: heads, idempotency and appends all carry on.
    assert_eq!(
        target.head(&ws("ws-0")).await.unwrap(),
        store.head(&ws("ws-0")).await.unwrap()
    );
    let again = target
        .execute(&ws("ws-0"), &owner_cmd("ws-0-2", act::accept()))
        .await
        .unwrap();
    assert!(again.replayed);
    target
        .execute(&ws("zz-partial"), &owner_cmd("p2", act::bind(KNOWN_USER)))
        .await
        .unwrap();
}

pub async fn import_refuses_a_tampered_file_and_writes_nothing(h: &Harness) {
    upgrade(&h.store, "acme", "cn1").await;
    upgrade(&h.store, "beta", "cn2").await;
    let text = export_text(&h.store).await;
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(String, FindingCode)> = vec![
        (
            text.replacen("\"site\":\"cn1\"", "\"site\":\"cn4\"", 1),
            FindingCode::HashMismatch,
        ),
        (
            text.lines()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, l)| format!("{l}\n"))
                .collect(),
            FindingCode::SequenceGap,
        ),
        (format!("{text}{{not json\n"), FindingCode::MalformedLine),
        (
            {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.swap(0, 5);
                lines.join("\n") + "\n"
            },
            FindingCode::OutOfOrder,
        ),
    ];
    for (i, (content, code)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad-{i}.jsonl"));
        std::fs::write(&path, content).unwrap();
        let (target, _keep) = h.fresh().await;
        match target.import(&path, |_, _| {}).await {
            Err(StoreError::ImportRefused { findings, total }) => {
                assert!(total >= 1);
                assert!(
                    findings.iter().any(|f| f.code == code),
                    "{code}: {findings:?}"
                );
            }
            other => panic!("case {i}: expected a refusal, got {other:?}"),
        }
        assert_eq!(
            target.db().count_events().await.unwrap(),
            0,
            "nothing written"
        );
    }
}

pub async fn import_refuses_a_store_that_is_not_empty(h: &Harness) {
    upgrade(&h.store, "acme", "cn1").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, export_text(&h.store).await).unwrap();
    let err = h.store.import(&path, |_, _| {}).await.unwrap_err();
    assert!(matches!(err, StoreError::NotEmpty), "{err}");
    assert_eq!(h.count("events").await, 4);
}

pub async fn a_stale_cache_never_decides(h: &Harness) {
    let a = &h.store;
    let b = h.reopen().await;
    let w = ws("acme");
    a.execute(&w, &owner_cmd("c1", act::request("us1")))
        .await
        .unwrap();
    // A caches the workspace at sequence 1; B moves it on behind A's back.
    assert_eq!(
        a.state(&w).await.unwrap().upgrade_step(),
        UpgradeStep::Requested
    );
    b.execute(&w, &owner_cmd("c2", act::bind(KNOWN_USER)))
        .await
        .unwrap();
    // On A's stale state "accept" is refused (account-not-bound); the refusal is checked
    // against the stored head first, so A decides again on the stored state and succeeds.
    let done = a
        .execute(&w, &owner_cmd("c3", act::accept()))
        .await
        .unwrap();
    assert_eq!(done.events[0].sequence, 3);
    // B's cache says "bound" (sequence 2): its bind refusal is re-checked and names the truth.
    let err = b
        .execute(&w, &owner_cmd("c4", act::bind(KNOWN_USER)))
        .await
        .unwrap_err();
    assert_eq!(
        err.domain().map(DomainError::code),
        Some("already-commercial"),
        "{err}"
    );

    // A stale *success* is never written: B changes settlement behind A's back; A, still
    // believing the workspace settles through enterprise, decides a change — the append
    // conflicts on the sequence A saw and nothing is written.
    let aws = MethodId::parse("aws").unwrap();
    let account = |a: &str| CloudAccount {
        account_id: ExternalId::parse(a).unwrap(),
        instance_id: None,
    };
    h.world
        .marketplace
        .subscribe(&aws, &account("111111111111"));
    h.world
        .marketplace
        .subscribe(&aws, &account("222222222222"));
    let cached = a.state(&w).await.unwrap();
    assert_eq!(cached.settlement().unwrap().method().as_str(), "enterprise");
    b.execute(
        &w,
        &owner_cmd("c5", act::settle("aws", Some(("111111111111", None)))),
    )
    .await
    .unwrap();
    h.world.clock.advance(chrono::Duration::days(40));
    let stale = a
        .execute(
            &w,
            &owner_cmd("c6", act::settle("aws", Some(("222222222222", None)))),
        )
        .await;
    match stale {
        Err(StoreError::Conflict { expected, .. }) => assert_eq!(expected, 4),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        h.count("events").await,
        5,
        "the stale decision wrote nothing"
    );
    // Retried on the stored state, the rules see the active AWS subscription: locked in.
    let err = a
        .execute_with_retry(
            &w,
            &owner_cmd("c6", act::settle("aws", Some(("222222222222", None)))),
            RetryPolicy::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.domain().map(DomainError::code),
        Some("cloud-settlement-locked-in"),
        "{err}"
    );

    // A request for a workspace a process never saw does not clobber it.
    let c = h.reopen().await;
    let err = c
        .execute(&w, &owner_cmd("c7", act::request("cn2")))
        .await
        .unwrap_err();
    assert_eq!(
        err.domain().map(DomainError::code),
        Some("already-commercial"),
        "{err}"
    );
    assert_eq!(h.count("events").await, 5);
}

pub async fn racing_writers_lose_nothing_and_duplicate_nothing(h: &Harness) {
    let store = Arc::new(h.reopen().await);
    let w = ws("hot");
    upgrade(&store, "hot", "us1").await;
    let aws = MethodId::parse("aws").unwrap();
    // Subscriptions the racing writers may switch to; every change is a valid command, so the
    // only refusals come from the once-a-month rule and unchanged settlements.
    let accounts: Vec<String> = (0..4).map(|i| format!("10000000000{i}")).collect();
    for a in &accounts {
        h.world.marketplace.subscribe(
            &aws,
            &CloudAccount {
                account_id: ExternalId::parse(a).unwrap(),
                instance_id: None,
            },
        );
    }
    let writers = 16;
    let mut tasks = Vec::new();
    for t in 0..writers {
        let store = store.clone();
        let w = w.clone();
        let account = accounts[t % accounts.len()].clone();
        tasks.push(tokio::spawn(async move {
            let action = if t % 2 == 0 {
                act::settle("aws", Some((account.as_str(), None)))
            } else {
                act::settle("enterprise", None)
            };
            let command = owner_cmd(&format!("race-{t}"), action);
            let policy = RetryPolicy {
                max_retries: 20,
                ..RetryPolicy::default()
            };
            (t, store.execute_with_retry(&w, &command, policy).await)
        }));
    }
    let mut written = 0usize;
    let mut successes = 0;
    for task in tasks {
        let (t, result) = task.await.unwrap();
        match result {
            Ok(outcome) => {
                successes += 1;
                written += outcome.events.len();
            }
            Err(StoreError::Refused(e)) => assert!(
                matches!(
                    e.code(),
                    "settlement-change-too-soon" | "settlement-unchanged"
                ),
                "writer {t}: {e}"
            ),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("writer {t}: {e}"),
        }
    }
    // Once a month: exactly one change can win.
    assert_eq!(successes, 1, "exactly one change per month");
    let (state, events) = h.reopen().await.load(&w).await.unwrap();
    assert_eq!(events.len(), 4 + written, "no event lost or duplicated");
    let ids: HashSet<_> = events
        .iter()
        .map(|e| (e.metadata.command_id.clone(), e.sequence))
        .collect();
    assert_eq!(ids.len(), events.len());
    assert_eq!(state.settlement_changes(), 1);

    // Many writers on one workspace, each a distinct valid command each time: every one must
    // eventually succeed, in some order, with no gaps.
    h.world.clock.advance(chrono::Duration::days(40));
    let ws2 = ws("hot-2");
    store
        .execute(&ws2, &owner_cmd("h-0", act::request("cn1")))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..12 {
        let store = store.clone();
        let ws2 = ws2.clone();
        tasks.push(tokio::spawn(async move {
            // Registrations of distinct names: only one can bind; the rest are refused with
            // account-already-bound once they see it.
            let command = owner_cmd(
                &format!("h-{}", t + 1),
                act::register(&format!("user-{t:03}")),
            );
            let policy = RetryPolicy {
                max_retries: 30,
                ..RetryPolicy::default()
            };
            store.execute_with_retry(&ws2, &command, policy).await
        }));
    }
    let mut bound = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => bound += 1,
            Err(StoreError::Refused(e)) => assert_eq!(e.code(), "account-already-bound"),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(bound, 1);
    let (_, events) = h.reopen().await.load(&ws2).await.unwrap();
    assert_eq!(events.len(), 2);
}

pub async fn a_tampered_stream_does_not_load(h: &Harness) {
    upgrade(&h.store, "acme", "cn1").await;
    // Only someone who can switch the triggers off can alter history — and it shows.
    match h.backend {
        TestDb::Postgres(_) => {
            h.raw("ALTER TABLE events DISABLE TRIGGER USER")
                .await
                .unwrap();
        }
        TestDb::Sqlite { .. } => {
            h.raw("DROP TRIGGER events_no_update").await.unwrap();
        }
    }
    let tamper = match h.backend {
        TestDb::Postgres(_) => {
            "UPDATE events SET payload = replace(payload::text, 'cn1', 'cn4')::json WHERE sequence = 1"
        }
        TestDb::Sqlite { .. } => "UPDATE events SET payload = replace(payload, 'cn1', 'cn4') WHERE sequence = 1",
    };
    assert_eq!(h.raw(tamper).await.unwrap(), 1);
    let err = h.reopen().await.load(&ws("acme")).await.unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("hash-mismatch"), "{err}");
}

pub async fn cqrs_es_repositories_read_the_streams(h: &Harness) {
    use cqrs_es::persist::{PersistedEventRepository, PersistedEventStore};
    use cqrs_es::EventStore;
    upgrade(&h.store, "acme", "cn6").await;
    let ours = h.store.state(&ws("acme")).await.unwrap();
    async fn via<R: PersistedEventRepository>(repo: R) -> Workspace {
        let store = PersistedEventStore::<R, Workspace>::new_event_store(repo);
        let mut context = store.load_aggregate("acme").await.unwrap();
        let events = store.load_events("acme").await.unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(
            events[3].metadata.get("command_id").map(String::as_str),
            Some("acme-2")
        );
        std::mem::take(cqrs_es::AggregateContext::aggregate(&mut context))
    }
    let theirs = match h.store.db().backend() {
        billing_store::Backend::Postgres(pool) => {
            via(postgres_es::PostgresEventRepository::new(pool.clone())).await
        }
        billing_store::Backend::Sqlite(pool) => {
            via(sqlite_es::SqliteEventRepository::new(pool.clone())).await
        }
    };
    assert_eq!(theirs, ours);
}
