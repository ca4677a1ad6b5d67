//! Scenarios run on both backends (see `main.rs`).

use billing_adapters::outbox::{ensure_outbox, outbox};
use billing_adapters::view_store::{all_billing_views, audit_trail, billing_view};
use billing_adapters::{
    billing_view_at, deliver_pending, AdapterError, AuditEntry, BillingView, LogMailer, Mailer,
    OutboxMessage,
};
use billing_domain::*;

use crate::harness::*;

pub async fn views_follow_every_commit(h: &Harness) {
    h.register("acme-finance").await;
    let db = h.billing.db();
    h.run("acme", "c1", act::request("us1")).await.unwrap();
    h.billing.projector.flush().await.unwrap();
    let view = billing_view(db, &ws("acme")).await.unwrap().unwrap();
    assert_eq!(
        (view.plan, view.upgrade_step),
        (Plan::Experience, UpgradeStep::Requested)
    );
    assert_eq!(view.site, Some(SiteId::parse("us1").unwrap()));
    assert_eq!(view.data_visible_from, None);

    h.run("acme", "c2", act::bind("acme-finance"))
        .await
        .unwrap();
    h.run("acme", "c3", act::accept()).await.unwrap();
    h.billing
        .marketplace
        .set(
            &MethodId::parse("aws").unwrap(),
            &CloudAccount {
                account_id: ExternalId::parse("123456789012").unwrap(),
                instance_id: None,
            },
            true,
        )
        .await
        .unwrap();
    h.run("acme", "c4", act::settle("aws", Some("123456789012")))
        .await
        .unwrap();
    h.billing.projector.flush().await.unwrap();

    let view = billing_view(db, &ws("acme")).await.unwrap().unwrap();
    assert_eq!(view.plan_name(), "Commercial Plan");
    assert_eq!(view.upgraded_at, Some(t("2026-11-27T09:00:00Z")));
    assert_eq!(view.data_visible_from, view.upgraded_at);
    assert_eq!(
        view.user_name,
        Some(UserName::parse("acme-finance").unwrap())
    );
    assert_eq!(
        view.settlement,
        Some(Settlement::Cloud {
            method: MethodId::parse("aws").unwrap(),
            account: CloudAccount {
                account_id: ExternalId::parse("123456789012").unwrap(),
                instance_id: None,
            },
        })
    );
    assert_eq!(view.settlement_changes, 1);
    assert_eq!(view.last_sequence, 5);
    let head = h
        .billing
        .store
        .head(&WorkspaceId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        Some(view.head_hash.clone()),
        head,
        "the view shows the stream's head"
    );
    assert_eq!(
        view.expense_center_link("https://ec.example/").as_deref(),
        Some("https://ec.example/accounts/acme-finance")
    );
    let trail = audit_trail(db, &ws("acme")).await.unwrap();
    let types: Vec<_> = trail.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "UpgradeRequested",
            "AccountBound",
            "AgreementAccepted",
            "PlanUpgraded",
            "SettlementChanged"
        ]
    );
    assert!(trail
        .iter()
        .all(|e| e.actor_id.as_str() == "alice" && e.actor_role == Role::Owner));
    assert!(
        trail[1].description.contains("acme-finance"),
        "{}",
        trail[1].description
    );
}

pub async fn refused_commands_change_no_view(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn1").await;
    h.billing.projector.flush().await.unwrap();
    let before = (
        all_billing_views(h.billing.db()).await.unwrap(),
        audit_trail(h.billing.db(), &ws("acme")).await.unwrap(),
    );
    for (id, role, action) in [
        ("r1", Role::Admin, act::settle("enterprise", None)),
        ("r2", Role::Owner, act::settle("aws", Some("1"))),
        ("r3", Role::Owner, act::accept()),
        ("r4", Role::Member, act::request("cn2")),
    ] {
        assert!(run_on(&h.billing.store, "acme", id, role, action)
            .await
            .is_err());
    }
    assert!(run_on(
        &h.billing.store,
        "other",
        "r5",
        Role::Owner,
        act::bind("acme-finance")
    )
    .await
    .is_err());
    h.billing.projector.flush().await.unwrap();
    let after = (
        all_billing_views(h.billing.db()).await.unwrap(),
        audit_trail(h.billing.db(), &ws("acme")).await.unwrap(),
    );
    assert_eq!(before, after);
}

pub async fn the_opening_reminder_is_recorded_and_sent_exactly_once(h: &Harness) {
    h.register("acme-finance").await;
    let db = h.billing.db();
    h.run("acme", "c1", act::request("cn1")).await.unwrap();
    h.run("acme", "c2", act::bind("acme-finance"))
        .await
        .unwrap();
    h.billing.projector.flush().await.unwrap();
    assert!(
        outbox(db).await.unwrap().is_empty(),
        "nothing before the upgrade is stored"
    );
    h.run("acme", "c3", act::accept()).await.unwrap();
    // Re-sending the accept (same command id) and catching up again add nothing.
    h.run("acme", "c3", act::accept()).await.unwrap();
    h.billing.projector.flush().await.unwrap();
    h.billing.projector.catch_up().await.unwrap();
    ensure_outbox(db, t("2026-11-27T10:00:00Z")).await.unwrap();
    let messages = outbox(db).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].user_name.as_str(), "acme-finance");
    assert_eq!(messages[0].sequence, 4);
    assert!(messages[0].subject.contains("Commercial Plan"));

    let first = deliver_pending(
        db,
        &LogMailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:00:00Z")),
    )
    .await
    .unwrap();
    let second = deliver_pending(
        db,
        &LogMailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:01:00Z")),
    )
    .await
    .unwrap();
    assert_eq!((first.sent, second.sent), (1, 0));
    let sent = outbox(db).await.unwrap();
    assert_eq!(sent[0].sent_at, Some(t("2026-11-27T10:00:00Z")));
    assert_eq!(sent[0].attempts, 1);
}

struct FailingMailer;

#[async_trait::async_trait]
impl Mailer for FailingMailer {
    async fn deliver(&self, _: &OutboxMessage) -> Result<(), AdapterError> {
        Err(AdapterError::Delivery("relay refused".into()))
    }
}

pub async fn a_crash_between_commit_and_projection_is_caught_up(h: &Harness) {
    h.register("acme-finance").await;
    // A process commits the whole upgrade and dies before projecting anything.
    let dying = h.store_without_views().await;
    for (id, action) in [
        ("c1", act::request("cn2")),
        ("c2", act::bind("acme-finance")),
        ("c3", act::accept()),
    ] {
        run_on(&dying, "acme", id, Role::Owner, action)
            .await
            .unwrap();
    }
    drop(dying);
    assert_eq!(
        billing_view(h.billing.db(), &ws("acme")).await.unwrap(),
        None
    );
    // The next process starts behind and catches up from the log.
    let next = h.reopen().await;
    next.projector.flush().await.unwrap();
    let view = billing_view(next.db(), &ws("acme")).await.unwrap().unwrap();
    assert_eq!(view.plan, Plan::Commercial);
    assert_eq!(audit_trail(next.db(), &ws("acme")).await.unwrap().len(), 4);
    // The reminder survived the crash; a failed delivery keeps it pending, then it is sent once.
    let failed = deliver_pending(
        next.db(),
        &FailingMailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!((failed.sent, failed.failed), (0, 1));
    let sent = deliver_pending(
        next.db(),
        &LogMailer,
        &billing_adapters::Clocks::at(t("2026-11-27T10:05:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(sent.sent, 1);
    let messages = outbox(next.db()).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].attempts, 2);
}

pub async fn a_failed_view_update_is_retried_not_dropped(h: &Harness) {
    h.register("acme-finance").await;
    h.run("acme", "c1", act::request("cn1")).await.unwrap();
    h.billing.projector.flush().await.unwrap();
    // The view table goes away: the next projection fails.
    h.raw("ALTER TABLE billing_view RENAME TO billing_view_away")
        .await
        .unwrap();
    h.run("acme", "c2", act::bind("acme-finance"))
        .await
        .unwrap();
    assert!(
        h.billing.projector.flush().await.is_err(),
        "the failure is reported, not swallowed"
    );
    // Once the table is back, the projector catches up from the last applied sequence.
    h.raw("ALTER TABLE billing_view_away RENAME TO billing_view")
        .await
        .unwrap();
    let mut caught_up = false;
    for _ in 0..50 {
        if h.billing.projector.flush().await.is_ok() {
            let view = billing_view(h.billing.db(), &ws("acme"))
                .await
                .unwrap()
                .unwrap();
            if view.last_sequence == 2 {
                caught_up = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the failed update was never applied");
    assert_eq!(
        audit_trail(h.billing.db(), &ws("acme"))
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn rebuilt_views_equal_incremental_ones(h: &Harness) {
    h.register("acme-finance").await;
    for (i, site) in ["cn1", "us1", "cn4", "eu1", "ap1"].iter().enumerate() {
        upgrade(h, &format!("ws-{i}"), site).await;
    }
    h.run("partial", "p1", act::request("cn6")).await.unwrap();
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    let snapshot = |db| async move {
        let views = all_billing_views(db).await.unwrap();
        let mut trails = Vec::new();
        for v in &views {
            trails.push(audit_trail(db, &v.workspace_id).await.unwrap());
        }
        (views, trails)
    };
    let incremental = snapshot(db).await;
    assert_eq!(incremental.0.len(), 6);
    let mut seen = Vec::new();
    let report = h.billing.projector.rebuild(|n| seen.push(n)).await.unwrap();
    assert_eq!((report.events, report.workspaces), (21, 6));
    assert_eq!(seen.last(), Some(&21));
    assert_eq!(
        snapshot(db).await,
        incremental,
        "rebuilt views equal incremental ones"
    );
    // A second rebuild counts nothing twice.
    h.billing.projector.rebuild(|_| {}).await.unwrap();
    assert_eq!(snapshot(db).await, incremental);
    // The outbox is not rebuilt: still one reminder per upgrade.
    assert_eq!(outbox(db).await.unwrap().len(), 5);
}

/// Every billing view and each one's audit trail.
async fn views_and_trails(db: &billing_store::Db) -> (Vec<BillingView>, Vec<Vec<AuditEntry>>) {
    let views = all_billing_views(db).await.unwrap();
    let mut trails = Vec::new();
    for v in &views {
        trails.push(audit_trail(db, &v.workspace_id).await.unwrap());
    }
    (views, trails)
}

/// A rebuild of more events than one batch and one chunk of its pipeline carry (5,000 trail
/// entries, 1,000 rows) equals the incremental views, and reports progress as it reads.
pub async fn a_rebuild_of_many_batches_equals_the_incremental_views(h: &Harness) {
    use futures_util::StreamExt as _;
    h.register("acme-finance").await;
    // 1,300 upgraded workspaces (four events each) and 300 only requested: 5,500 events.
    let commands = (0..1_600).flat_map(|i| {
        let workspace = format!("ws-{i:04}");
        let steps = if i < 1_300 {
            vec![
                act::request("cn1"),
                act::bind("acme-finance"),
                act::accept(),
            ]
        } else {
            vec![act::request("us1")]
        };
        steps
            .into_iter()
            .enumerate()
            .map(move |(n, action)| (workspace.clone(), format!("{workspace}-{n}"), action))
    });
    // One workspace's commands in order, sixteen workspaces at a time.
    let mut by_workspace: Vec<Vec<(String, String, Action)>> = Vec::new();
    for command in commands {
        match by_workspace.last_mut() {
            Some(last) if last[0].0 == command.0 => last.push(command),
            _ => by_workspace.push(vec![command]),
        }
    }
    futures_util::stream::iter(by_workspace)
        .for_each_concurrent(16, |steps| async move {
            for (workspace, id, action) in steps {
                h.run(&workspace, &id, action).await.unwrap();
            }
        })
        .await;
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    let incremental = views_and_trails(db).await;
    assert_eq!(incremental.0.len(), 1_600);
    let mut seen = Vec::new();
    let report = h.billing.projector.rebuild(|n| seen.push(n)).await.unwrap();
    assert_eq!((report.events, report.workspaces), (5_500, 1_600));
    assert!(seen.len() >= 5, "progress reported {} times", seen.len());
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&5_500));
    assert_eq!(views_and_trails(db).await, incremental);
}

/// A log that does not fold — a gap in a stream, a payload that is no event — stops the rebuild
/// with an integrity error naming the workspace and sequence, and leaves the views as they were
/// (and no half-filled tables behind).
pub async fn a_rebuild_of_a_log_that_does_not_fold_changes_no_view(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn1").await;
    upgrade(h, "beta", "us1").await;
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    let before = views_and_trails(db).await;
    // Only someone who can switch the triggers off can alter history.
    if h.is_postgres() {
        h.raw("ALTER TABLE events DISABLE TRIGGER USER")
            .await
            .unwrap();
    } else {
        h.raw("DROP TRIGGER events_no_update").await.unwrap();
    }
    let payload = if h.is_postgres() {
        "UPDATE events SET payload = '{\"NoSuchEvent\":{}}'::json \
         WHERE aggregate_id = 'beta' AND sequence = 2"
    } else {
        "UPDATE events SET payload = '{\"NoSuchEvent\":{}}' \
         WHERE aggregate_id = 'beta' AND sequence = 2"
    };
    for (tamper, restore, workspace, says) in [
        (
            "UPDATE events SET sequence = 9 WHERE aggregate_id = 'acme' AND sequence = 4",
            Some("UPDATE events SET sequence = 4 WHERE aggregate_id = 'acme' AND sequence = 9"),
            "acme",
            "sequence 9 after 3",
        ),
        (payload, None, "beta", "sequence 2"),
    ] {
        assert_eq!(h.raw(tamper).await.unwrap(), 1);
        let err = h.billing.projector.rebuild(|_| {}).await.unwrap_err();
        // A history that does not fold is the store's `Integrity` (before issue 18 the rebuild
        // reported it as the adapters' own `Integrity`, a second name for the same cause).
        match &err {
            AdapterError::Store(billing_store::StoreError::Integrity {
                workspace: w,
                detail,
            }) => {
                assert_eq!(w, workspace, "{err}");
                assert!(detail.contains(says), "{err}");
            }
            other => panic!("expected an integrity error, got {other}"),
        }
        assert_eq!(views_and_trails(db).await, before);
        let left = if h.is_postgres() {
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%_next'"
        } else {
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_next'"
        };
        assert_eq!(h.count(left).await, 0);
        if let Some(restore) = restore {
            assert_eq!(h.raw(restore).await.unwrap(), 1);
            h.billing.projector.rebuild(|_| {}).await.unwrap();
            assert_eq!(views_and_trails(db).await, before);
        }
    }
}

/// What a later migration adds to the view tables — a column with a default, NOT NULL and a
/// CHECK; an index — is still there after a rebuild, which still equals the incremental views.
pub async fn a_rebuild_keeps_what_later_migrations_added(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn1").await;
    h.run("beta", "b1", act::request("us1")).await.unwrap();
    h.billing.projector.flush().await.unwrap();
    for migration in [
        "ALTER TABLE billing_view ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'active' \
         CHECK (lifecycle IN ('active', 'locked'))",
        "ALTER TABLE audit_trail ADD COLUMN source TEXT NOT NULL DEFAULT 'log'",
        "CREATE INDEX billing_view_by_site ON billing_view (site)",
    ] {
        h.raw(migration).await.unwrap();
    }
    let db = h.billing.db();
    let incremental = views_and_trails(db).await;
    let index = if h.is_postgres() {
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'billing_view_by_site'"
    } else {
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'billing_view_by_site'"
    };
    for round in 1..=2 {
        let report = h.billing.projector.rebuild(|_| {}).await.unwrap();
        assert_eq!((report.events, report.workspaces), (5, 2), "round {round}");
        assert_eq!(views_and_trails(db).await, incremental, "round {round}");
        // The columns are there, filled with their defaults…
        assert_eq!(
            h.count("SELECT count(*) FROM billing_view WHERE lifecycle = 'active'")
                .await,
            2
        );
        assert_eq!(
            h.count("SELECT count(*) FROM audit_trail WHERE source = 'log'")
                .await,
            5
        );
        // …with their constraints, and the keys and the index are back.
        assert!(
            h.raw("UPDATE billing_view SET lifecycle = 'gone'")
                .await
                .is_err(),
            "round {round}: the CHECK constraint was lost"
        );
        assert!(
            h.raw("UPDATE billing_view SET lifecycle = NULL")
                .await
                .is_err(),
            "round {round}: NOT NULL was lost"
        );
        assert!(
            h.raw(
                "INSERT INTO audit_trail (workspace_id, sequence, event_type, actor_id, \
                 actor_role, occurred_at, description) VALUES ('acme', 1, 'x', 'x', 'owner', \
                 '2026-11-27T09:00:00Z', 'x')"
            )
            .await
            .is_err(),
            "round {round}: the trail's primary key was lost"
        );
        assert_eq!(h.count(index).await, 1, "round {round}: the index was lost");
        if h.is_postgres() {
            // The keys keep their names (a later migration may name them).
            assert_eq!(
                h.count(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conname IN \
                     ('billing_view_pkey', 'audit_trail_pkey')"
                )
                .await,
                2,
                "round {round}"
            );
        }
    }
    // The rebuilt tables take the next commit like the old ones.
    h.run("beta", "b2", act::bind("acme-finance"))
        .await
        .unwrap();
    h.billing.projector.flush().await.unwrap();
    let beta = billing_view(db, &ws("beta")).await.unwrap().unwrap();
    assert_eq!(beta.upgrade_step, UpgradeStep::AccountBound);
    assert_eq!(audit_trail(db, &ws("beta")).await.unwrap().len(), 2);
}

/// Reading typed views parses every stored value: one that does not parse is an integrity error
/// naming the workspace, the column and the value, never a panic; a rebuild rewrites the views.
pub async fn a_stored_value_that_does_not_parse_is_an_integrity_error(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn1").await;
    h.billing.projector.flush().await.unwrap();
    let db = h.billing.db();
    // A stored row that does not parse is `Corrupt`, whose location names the workspace (before
    // issue 18 it was `Integrity`, beside a `Corrupt` for directory rows: one cause, two names).
    let integrity = |e: AdapterError| match e {
        AdapterError::Corrupt { location, detail } => format!("{location}: {detail}"),
        other => panic!("not a corrupt row: {other}"),
    };
    h.raw("UPDATE billing_view SET site = 'CN 1'")
        .await
        .unwrap();
    let text = integrity(billing_view(db, &ws("acme")).await.unwrap_err());
    assert!(
        text.starts_with("workspace acme: ")
            && text.contains("billing_view.site")
            && text.contains("\"CN 1\""),
        "{text}"
    );
    assert!(all_billing_views(db).await.is_err());
    h.raw("UPDATE billing_view SET site = 'cn1', settlement_method = 'aws'")
        .await
        .unwrap();
    let text = integrity(billing_view(db, &ws("acme")).await.unwrap_err());
    assert!(
        text.contains("settlement_method \"aws\"") && text.contains("cloud_account_id none"),
        "{text}"
    );
    h.raw("UPDATE audit_trail SET actor_role = 'root' WHERE sequence = 2")
        .await
        .unwrap();
    let text = integrity(audit_trail(db, &ws("acme")).await.unwrap_err());
    assert!(
        text.contains("audit_trail.actor_role") && text.contains("\"root\""),
        "{text}"
    );
    h.raw("UPDATE email_outbox SET created_at = 'yesterday'")
        .await
        .unwrap();
    let text = integrity(outbox(db).await.unwrap_err());
    assert!(
        text.contains("email_outbox.created_at") && text.contains("\"yesterday\""),
        "{text}"
    );
    let text = integrity(
        deliver_pending(
            db,
            &LogMailer,
            &billing_adapters::Clocks::at(t("2026-11-27T10:00:00Z")),
        )
        .await
        .unwrap_err(),
    );
    assert!(text.contains("email_outbox.created_at"), "{text}");

    // The views come back from the log.
    h.billing.projector.rebuild(|_| {}).await.unwrap();
    assert_eq!(
        billing_view(db, &ws("acme")).await.unwrap().unwrap().site,
        Some(SiteId::parse("cn1").unwrap())
    );
    assert_eq!(audit_trail(db, &ws("acme")).await.unwrap().len(), 4);
}

pub async fn the_billing_view_at_any_instant_comes_from_the_log(h: &Harness) {
    h.register("acme-finance").await;
    h.clock.set(t("2026-10-01T00:00:00Z"));
    h.run("acme", "c1", act::request("us1")).await.unwrap();
    h.clock.set(t("2026-10-02T00:00:00Z"));
    h.run("acme", "c2", act::bind("acme-finance"))
        .await
        .unwrap();
    h.clock.set(t("2026-10-03T00:00:00Z"));
    h.run("acme", "c3", act::accept()).await.unwrap();
    let (_, events) = h
        .billing
        .store
        .load(&WorkspaceId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        billing_view_at(&ws("acme"), &events, t("2026-09-30T00:00:00Z")),
        None
    );
    let before = billing_view_at(&ws("acme"), &events, t("2026-10-02T12:00:00Z")).unwrap();
    assert_eq!(
        (before.plan, before.upgrade_step),
        (Plan::Experience, UpgradeStep::AccountBound)
    );
    assert_eq!(before.last_sequence, 2);
    let after = billing_view_at(&ws("acme"), &events, t("2026-10-03T00:00:00Z")).unwrap();
    assert_eq!(after.plan, Plan::Commercial);
    h.billing.projector.flush().await.unwrap();
    assert_eq!(
        Some(after),
        billing_view(h.billing.db(), &ws("acme")).await.unwrap()
    );
}

pub async fn the_embedded_expense_center_verifies_and_registers(h: &Harness) {
    let ec = &h.billing.expense_center;
    let name = UserName::parse("acme-finance").unwrap();
    let email = Email::parse("a@example.com").unwrap();
    assert_eq!(ec.find_account(&name).await.unwrap(), None);
    let Registration::Registered(account) = ec.register(&name, &email).await.unwrap() else {
        panic!("not registered")
    };
    assert_eq!(ec.find_account(&name).await.unwrap(), Some(account.clone()));
    assert_eq!(
        ec.register(&name, &email).await.unwrap(),
        Registration::Taken
    );
    // Registration through a command is idempotent per request id.
    let other = UserName::parse("globex-fin").unwrap();
    let req = ExternalId::parse("cmd-9").unwrap();
    let first = ec.register_account(&other, &email, &req).await.unwrap();
    let again = ec.register_account(&other, &email, &req).await.unwrap();
    assert_eq!(first, again);
    let stranger = ExternalId::parse("cmd-10").unwrap();
    assert_eq!(
        ec.register_account(&other, &email, &stranger)
            .await
            .unwrap(),
        Registration::Taken
    );
    assert_eq!(ec.email_of(&name).await.unwrap(), Some(email.clone()));
    // Through the store: an unknown name is refused, a registered one binds.
    h.run("acme", "c1", act::request("cn1")).await.unwrap();
    let err = h
        .run("acme", "c2", act::bind("nobody-here"))
        .await
        .unwrap_err();
    assert_eq!(
        err.domain().map(DomainError::code),
        Some("unknown-user-name")
    );
    h.run("acme", "c3", act::bind("acme-finance"))
        .await
        .unwrap();
}

pub async fn the_embedded_marketplace_tracks_subscriptions(h: &Harness) {
    let m = &h.billing.marketplace;
    let aws = MethodId::parse("aws").unwrap();
    let ali = MethodId::parse("alibaba-cloud").unwrap();
    let a = CloudAccount {
        account_id: ExternalId::parse("111").unwrap(),
        instance_id: None,
    };
    let b = CloudAccount {
        account_id: ExternalId::parse("1688").unwrap(),
        instance_id: Some(ExternalId::parse("i-1").unwrap()),
    };
    assert!(!m.is_subscribed(&aws, &a).await.unwrap());
    m.set(&aws, &a, true).await.unwrap();
    m.set(&ali, &b, true).await.unwrap();
    assert!(m.is_subscribed(&aws, &a).await.unwrap());
    assert!(m.is_subscribed(&ali, &b).await.unwrap());
    assert!(!m
        .is_subscribed(
            &ali,
            &CloudAccount {
                instance_id: None,
                ..b.clone()
            }
        )
        .await
        .unwrap());
    m.set(&aws, &a, false).await.unwrap();
    assert!(!m.is_subscribed(&aws, &a).await.unwrap());
}

pub async fn an_imported_store_does_not_send_reminders_again(h: &Harness) {
    h.register("acme-finance").await;
    upgrade(h, "acme", "cn1").await;
    upgrade(h, "beta", "us1").await;
    h.billing.projector.flush().await.unwrap();
    assert_eq!(
        deliver_pending(
            h.billing.db(),
            &LogMailer,
            &billing_adapters::Clocks::at(t("2026-11-27T10:00:00Z"))
        )
        .await
        .unwrap()
        .sent,
        2
    );
    let mut export = Vec::new();
    h.billing.store.export(&mut export, |_| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, export).unwrap();

    let (target, _keep) = h.fresh().await;
    target.store.import(&path, |_, _| {}).await.unwrap();
    target.projector.flush().await.unwrap();
    target.projector.catch_up().await.unwrap();
    // The views come back from the log; the reminders were sent by the store the log came from.
    let view = billing_view(target.db(), &ws("acme"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.plan, Plan::Commercial);
    let messages = outbox(target.db()).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert!(
        messages
            .iter()
            .all(|m| m.sent_at.is_some() && m.user_name.as_str() == "acme-finance"),
        "{messages:?}"
    );
    assert_eq!(
        deliver_pending(
            target.db(),
            &LogMailer,
            &billing_adapters::Clocks::at(t("2026-11-27T11:00:00Z"))
        )
        .await
        .unwrap()
        .sent,
        0
    );
    // A new upgrade in the imported store gets its reminder as usual.
    target
        .expense_center
        .register(
            &UserName::parse("gamma-fin").unwrap(),
            &Email::parse("g@example.com").unwrap(),
        )
        .await
        .unwrap();
    run_on(
        &target.store,
        "gamma",
        "g1",
        Role::Owner,
        act::request("cn1"),
    )
    .await
    .unwrap();
    run_on(
        &target.store,
        "gamma",
        "g2",
        Role::Owner,
        act::bind("gamma-fin"),
    )
    .await
    .unwrap();
    run_on(&target.store, "gamma", "g3", Role::Owner, act::accept())
        .await
        .unwrap();
    target.projector.flush().await.unwrap();
    assert_eq!(
        deliver_pending(
            target.db(),
            &LogMailer,
            &billing_adapters::Clocks::at(t("2026-11-27T12:00:00Z"))
        )
        .await
        .unwrap()
        .sent,
        1
    );
}

/// Catch-ups running at once (two processes starting behind) record each missing reminder once
/// between them, and each counts only the rows it inserted: the counts add up to the reminders
/// recorded. Before issue 9 each counted every row it had tried to insert.
pub async fn the_outbox_counts_only_the_reminders_it_records(h: &Harness) {
    h.register("acme-finance").await;
    // The harness's own projector has caught up (with nothing) and stays out of the way.
    h.billing.projector.flush().await.unwrap();
    let dying = h.store_without_views().await;
    for i in 0..60 {
        let workspace = format!("ob-{i:02}");
        for (step, action) in [
            act::request("cn2"),
            act::bind("acme-finance"),
            act::accept(),
        ]
        .into_iter()
        .enumerate()
        {
            run_on(
                &dying,
                &workspace,
                &format!("{workspace}-{step}"),
                Role::Owner,
                action,
            )
            .await
            .unwrap();
        }
    }
    drop(dying);
    let db = h.billing.db();
    let now = t("2026-11-27T10:00:00Z");
    let (a, b, c, d) = tokio::join!(
        ensure_outbox(db, now),
        ensure_outbox(db, now),
        ensure_outbox(db, now),
        ensure_outbox(db, now)
    );
    let added = [a, b, c, d].into_iter().map(Result::unwrap).sum::<u64>();
    assert_eq!(
        added, 60,
        "each reminder counted by the one catch-up that recorded it"
    );
    assert_eq!(outbox(db).await.unwrap().len(), 60);
    assert_eq!(ensure_outbox(db, now).await.unwrap(), 0);
}
