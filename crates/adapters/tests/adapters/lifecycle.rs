//! After the upgrade (SPEC §10), on both backends: the billing view's standing, the notices of
//! the outbox, and the scheduler that fires reminders and locks.

billing_test_support::on_both_backends! {
    harness: crate::harness::Harness,
    scenarios: crate::lifecycle::scenarios,
    tests: [
        the_standing_follows_the_countdown_to_the_lock_and_back,
        an_ended_subscription_falls_back_or_counts_down,
        notices_survive_a_crash_and_a_rebuild,
        imported_notices_are_recorded_as_sent,
        the_scheduler_fires_what_is_due_and_only_that,
        concurrent_ticks_fire_each_deadline_exactly_once,
        a_tick_catches_up_a_stale_view_first,
    ],
}

mod scenarios {
    use std::sync::Arc;

    use billing_adapters::outbox::{
        ensure_outbox, notices, COUNTDOWN_REMINDER, COUNTDOWN_STARTED, LOCKED, OPENING_REMINDER,
        SETTLEMENT_FALLEN_BACK, UNLOCKED,
    };
    use billing_adapters::view_store::{all_billing_views, audit_trail, billing_view};
    use billing_adapters::{
        billing_view_at, catch_up, deadline_command_id, deliver_pending,
        workspaces_settling_through, BillingView, LogMailer, OutboxMessage, Scheduler, TickReport,
    };
    use billing_domain::*;
    use chrono::{DateTime, Duration, Utc};

    use crate::harness::*;

    const ARREARS_AT: &str = "2026-12-01T09:00:00Z";
    const REMIND_AT: &str = "2026-12-12T09:00:00Z";
    const DEADLINE: &str = "2026-12-15T09:00:00Z";

    fn arrears(bill: &str, amount: &str) -> Action {
        Action::RecordArrears {
            bill: BillId::parse(bill).unwrap(),
            amount: Money::parse_decimal(amount, Currency::Cny).unwrap(),
        }
    }

    fn settle_bill(bill: &str) -> Action {
        Action::SettleArrears {
            bill: BillId::parse(bill).unwrap(),
            stored_value_card: None,
        }
    }

    async fn system(
        store: &billing_store::BillingStore,
        workspace: &str,
        id: &str,
        action: Action,
    ) -> Result<(), billing_store::StoreError> {
        run_on(store, workspace, id, Role::System, action).await
    }

    /// The billing view of `workspace` now: projected, equal to the point-in-time view of the log
    /// at the clock's instant, and equal to a rebuild.
    async fn checked_view(h: &Harness, workspace: &str) -> BillingView {
        let db = h.billing.db();
        h.billing.projector.flush().await.unwrap();
        let live = billing_view(db, &ws(workspace)).await.unwrap().unwrap();
        let (_, events) = h.billing.store.load(&ws(workspace)).await.unwrap();
        assert_eq!(
            billing_view_at(&ws(workspace), &events, h.clock.now()).as_ref(),
            Some(&live),
            "the view at {} is the log's",
            h.clock.now()
        );
        let (views, trail) = (
            all_billing_views(db).await.unwrap(),
            audit_trail(db, &ws(workspace)).await.unwrap(),
        );
        h.billing.projector.rebuild(|_| {}).await.unwrap();
        assert_eq!(all_billing_views(db).await.unwrap(), views, "rebuilt views");
        assert_eq!(audit_trail(db, &ws(workspace)).await.unwrap(), trail);
        live
    }

    fn kinds(messages: &[OutboxMessage]) -> Vec<(&str, u64)> {
        messages
            .iter()
            .map(|m| (m.kind.as_str(), m.sequence))
            .collect()
    }

    async fn tick(h: &Harness) -> TickReport {
        let report = Scheduler::new(
            h.billing.store.clone(),
            billing_adapters::Clocks::billing_at(h.billing.store.clone().services().clock.clone()),
        )
        .tick()
        .await
        .unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
        report
    }

    fn ids(names: &[&str]) -> Vec<WorkspaceId> {
        names.iter().map(|n| ws(n)).collect()
    }

    /// arrears → countdown → reminder → lock → settle → unlock: the view's standing at each step is
    /// the log's (point in time) and a rebuild's; each notice is recorded once, with its due time.
    pub async fn the_standing_follows_the_countdown_to_the_lock_and_back(h: &Harness) {
        h.register("acme-finance").await;
        upgrade(h, "acme", "cn4").await;
        let good = checked_view(h, "acme").await;
        assert_eq!(good.standing, Some(Standing::Good));
        assert_eq!(good.standing_name(), Some("good"));
        assert!(good.reasons.is_empty() && good.countdown_deadline().is_none());

        h.clock.set(t(ARREARS_AT));
        system(&h.billing.store, "acme", "a1", arrears("B-1", "12.34"))
            .await
            .unwrap();
        let counting = checked_view(h, "acme").await;
        assert_eq!(counting.standing_name(), Some("countdown"));
        assert_eq!(counting.countdown_deadline(), Some(t(DEADLINE)));
        assert_eq!(counting.locked_at(), None);
        let countdown = counting.countdown().unwrap().clone();
        assert_eq!(
            (countdown.number, countdown.started_at, countdown.remind_at),
            (1, t(ARREARS_AT), t(REMIND_AT))
        );
        assert!(
            matches!(&counting.reasons[..], [Reason::Arrears { bill, amount, .. }]
            if bill.as_str() == "B-1" && amount.minor == 1234),
            "{:?}",
            counting.reasons
        );
        // A second bill joins the countdown without moving the deadline.
        system(&h.billing.store, "acme", "a2", arrears("B-2", "5"))
            .await
            .unwrap();
        assert_eq!(checked_view(h, "acme").await.reasons.len(), 2);
        system(&h.billing.store, "acme", "a3", settle_bill("B-2"))
            .await
            .unwrap();

        // Nothing is due before the reminder.
        h.clock.set(t(REMIND_AT) - Duration::seconds(1));
        assert_eq!(tick(h).await.reminders_sent, Vec::<WorkspaceId>::new());
        h.clock.set(t(REMIND_AT) + Duration::hours(1));
        let reminded = tick(h).await;
        assert_eq!(
            (reminded.reminders_sent, reminded.locked),
            (ids(&["acme"]), vec![])
        );
        let view = checked_view(h, "acme").await;
        assert_eq!(
            view.countdown().unwrap().reminded_at,
            Some(t(REMIND_AT) + Duration::hours(1))
        );
        let lock_at = t(DEADLINE) + Duration::minutes(5);
        h.clock.set(lock_at);
        let locked = tick(h).await;
        assert_eq!(
            (locked.reminders_sent, locked.locked),
            (vec![], ids(&["acme"]))
        );
        let view = checked_view(h, "acme").await;
        assert_eq!(view.standing_name(), Some("locked"));
        assert_eq!(view.locked_at(), Some(lock_at));
        assert_eq!(view.countdown_deadline(), Some(t(DEADLINE)));
        let value = serde_json::to_value(&view).unwrap();
        assert_eq!(value["standing"], "locked");
        assert_eq!(value["countdown"], 1);
        assert_eq!(value["locked_at"], "2026-12-15T09:05:00Z");
        assert_eq!(value["reasons"][0]["bill"], "B-1");

        // Settling the bill clears the last reason: unlocked, good again.
        let settle_at = lock_at + Duration::hours(2);
        h.clock.set(settle_at);
        h.run("acme", "s1", settle_bill("B-1")).await.unwrap();
        let back = checked_view(h, "acme").await;
        assert_eq!(back.standing, Some(Standing::Good));
        assert!(back.reasons.is_empty());
        assert_eq!((back.countdown_deadline(), back.locked_at()), (None, None));

        // Every instant of the history, from the log.
        let (_, events) = h.billing.store.load(&ws("acme")).await.unwrap();
        let at = |s: DateTime<Utc>| billing_view_at(&ws("acme"), &events, s).unwrap();
        assert_eq!(
            at(t(ARREARS_AT) - Duration::seconds(1)).standing,
            Some(Standing::Good)
        );
        assert_eq!(at(t(REMIND_AT)).countdown().unwrap().reminded_at, None);
        assert_eq!(
            at(lock_at - Duration::seconds(1)).standing_name(),
            Some("countdown")
        );
        assert_eq!(at(lock_at).locked_at(), Some(lock_at));
        assert_eq!(at(settle_at), back);

        // The notices: each kind once, in sequence order, with its due time and the facts.
        let db = h.billing.db();
        catch_up(db, &billing_store::SystemClock).await.unwrap();
        assert_eq!(ensure_outbox(db, settle_at).await.unwrap(), 0);
        let sent = notices(db, Some(&ws("acme"))).await.unwrap();
        assert_eq!(
            kinds(&sent),
            [
                (OPENING_REMINDER, 4),
                (COUNTDOWN_STARTED, 6),
                (COUNTDOWN_REMINDER, 9),
                (LOCKED, 10),
                (UNLOCKED, 12),
            ]
        );
        let due: Vec<_> = sent.iter().map(|m| m.due_at).collect();
        assert_eq!(
            due,
            [
                t("2026-11-27T09:00:00Z"),
                t(ARREARS_AT),
                t(REMIND_AT),
                lock_at,
                settle_at
            ]
        );
        assert!(sent.iter().all(|m| m.user_name.as_str() == "acme-finance"));
        assert_eq!(
            sent.iter().map(|m| m.countdown).collect::<Vec<_>>(),
            [None, Some(1), Some(1), Some(1), Some(1)]
        );
        let started = &sent[1];
        assert!(
            started.subject.contains("2026-12-15T09:00:00Z")
                && started.body.contains("B-1")
                && started.body.contains("12.34 CNY")
                && started.body.contains(REMIND_AT),
            "{started:?}"
        );
        assert!(sent[2].body.contains("2026-12-15T09:00:00Z") && sent[2].body.contains("B-1"));
        assert!(sent[3].body.contains("12.34 CNY"), "{:?}", sent[3]);
        assert!(sent[4].subject.contains("good standing"), "{:?}", sent[4]);
        let delivered = deliver_pending(db, &LogMailer, &billing_adapters::Clocks::at(settle_at))
            .await
            .unwrap();
        assert_eq!(delivered.sent, 5);
        assert_eq!(
            deliver_pending(db, &LogMailer, &billing_adapters::Clocks::at(settle_at))
                .await
                .unwrap()
                .sent,
            0
        );
        assert!(notices(db, None)
            .await
            .unwrap()
            .iter()
            .all(|m| m.sent_at == Some(settle_at)));
    }

    /// An ended cloud subscription: Alibaba Cloud falls back to enterprise settlement (a notice says
    /// so), AWS counts down; the workspaces reported to are the ones the billing view shows settling
    /// through the account.
    pub async fn an_ended_subscription_falls_back_or_counts_down(h: &Harness) {
        h.register("acme-finance").await;
        let ali = MethodId::parse("alibaba-cloud").unwrap();
        let ali_account = CloudAccount {
            account_id: ExternalId::parse("1688").unwrap(),
            instance_id: Some(ExternalId::parse("i-1").unwrap()),
        };
        let aws = MethodId::parse("aws").unwrap();
        let aws_account = CloudAccount {
            account_id: ExternalId::parse("123456789012").unwrap(),
            instance_id: None,
        };
        h.billing
            .marketplace
            .set(&ali, &ali_account, true)
            .await
            .unwrap();
        h.billing
            .marketplace
            .set(&aws, &aws_account, true)
            .await
            .unwrap();
        for (workspace, site) in [("ali-a", "cn1"), ("ali-b", "cn6"), ("aws-a", "us1")] {
            upgrade(h, workspace, site).await;
        }
        for (workspace, method, account) in [
            ("ali-a", &ali, &ali_account),
            ("ali-b", &ali, &ali_account),
            ("aws-a", &aws, &aws_account),
        ] {
            h.run(
                workspace,
                &format!("{workspace}-cloud"),
                Action::ChangeSettlement(SettlementRequest::of(
                    method.clone(),
                    Some(account.clone()),
                )),
            )
            .await
            .unwrap();
        }
        let db = h.billing.db();
        assert_eq!(
            workspaces_settling_through(db, &billing_store::SystemClock, &ali, &ali_account)
                .await
                .unwrap(),
            ids(&["ali-a", "ali-b"])
        );
        let other_instance = CloudAccount {
            instance_id: Some(ExternalId::parse("i-2").unwrap()),
            ..ali_account.clone()
        };
        assert!(workspaces_settling_through(
            db,
            &billing_store::SystemClock,
            &ali,
            &other_instance
        )
        .await
        .unwrap()
        .is_empty());
        assert_eq!(
            workspaces_settling_through(db, &billing_store::SystemClock, &aws, &aws_account)
                .await
                .unwrap(),
            ids(&["aws-a"])
        );

        h.clock.set(t(ARREARS_AT));
        for workspace in ["ali-a", "ali-b"] {
            system(
                &h.billing.store,
                workspace,
                &format!("{workspace}-ended"),
                Action::ReportSubscriptionEnded {
                    method: ali.clone(),
                    account: ali_account.clone(),
                },
            )
            .await
            .unwrap();
        }
        system(
            &h.billing.store,
            "aws-a",
            "aws-a-ended",
            Action::ReportSubscriptionEnded {
                method: aws.clone(),
                account: aws_account.clone(),
            },
        )
        .await
        .unwrap();
        let fallen = checked_view(h, "ali-a").await;
        assert_eq!(fallen.standing, Some(Standing::Good));
        assert_eq!(fallen.settlement_changes, 2);
        assert!(
            workspaces_settling_through(db, &billing_store::SystemClock, &ali, &ali_account)
                .await
                .unwrap()
                .is_empty()
        );
        let counting = checked_view(h, "aws-a").await;
        assert_eq!(counting.standing_name(), Some("countdown"));
        assert!(matches!(
            &counting.reasons[..],
            [Reason::CloudSubscriptionEnded { .. }]
        ));

        let all = notices(db, None).await.unwrap();
        let standing: Vec<_> = all
            .iter()
            .filter(|m| m.kind != OPENING_REMINDER)
            .map(|m| (m.workspace_id.as_str(), m.kind.as_str(), m.due_at))
            .collect();
        assert_eq!(
            standing,
            [
                ("ali-a", SETTLEMENT_FALLEN_BACK, t(ARREARS_AT)),
                ("ali-b", SETTLEMENT_FALLEN_BACK, t(ARREARS_AT)),
                ("aws-a", COUNTDOWN_STARTED, t(ARREARS_AT)),
            ]
        );
        let fallback = all
            .iter()
            .find(|m| m.kind == SETTLEMENT_FALLEN_BACK)
            .unwrap();
        assert!(
            fallback.body.contains("alibaba-cloud") && fallback.body.contains("1688"),
            "{fallback:?}"
        );
        // Re-subscribing clears the AWS reason: unlocked.
        h.clock.set(t(ARREARS_AT) + Duration::days(1));
        system(
            &h.billing.store,
            "aws-a",
            "aws-a-resumed",
            Action::ReportSubscriptionResumed {
                method: aws.clone(),
                account: aws_account.clone(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            checked_view(h, "aws-a").await.standing,
            Some(Standing::Good)
        );
        let aws_notices = notices(db, Some(&ws("aws-a"))).await.unwrap();
        assert_eq!(
            aws_notices
                .iter()
                .map(|m| m.kind.as_str())
                .collect::<Vec<_>>(),
            [OPENING_REMINDER, COUNTDOWN_STARTED, UNLOCKED]
        );
    }

    /// A process that commits and dies before projecting loses no notice: the views' catch-up and
    /// `ensure_outbox` record each one once, and a rebuild changes none.
    pub async fn notices_survive_a_crash_and_a_rebuild(h: &Harness) {
        h.register("acme-finance").await;
        upgrade(h, "acme", "cn2").await;
        h.billing.projector.flush().await.unwrap();
        let db = h.billing.db();
        let dying = Arc::new(h.store_without_views().await);
        h.clock.set(t(ARREARS_AT));
        system(&dying, "acme", "a1", arrears("B-1", "99.99"))
            .await
            .unwrap();
        assert_eq!(
            kinds(&notices(db, None).await.unwrap()),
            [(OPENING_REMINDER, 4)]
        );
        // The views' catch-up (what a restarted projector runs) records the missing notice.
        assert_eq!(catch_up(db, &billing_store::SystemClock).await.unwrap(), 1);
        assert_eq!(
            kinds(&notices(db, None).await.unwrap()),
            [(OPENING_REMINDER, 4), (COUNTDOWN_STARTED, 6)]
        );
        // A scheduler over the dying store fires the reminder and the lock, then the store dies
        // before anything projects them.
        h.clock.set(t(DEADLINE));
        let report = Scheduler::new(
            dying.clone(),
            billing_adapters::Clocks::billing_at(dying.clone().services().clock.clone()),
        )
        .tick()
        .await
        .unwrap();
        assert_eq!(
            (report.reminders_sent, report.locked, report.failed),
            (ids(&["acme"]), ids(&["acme"]), vec![])
        );
        drop(dying);
        assert_eq!(notices(db, None).await.unwrap().len(), 2);
        assert_eq!(ensure_outbox(db, t(DEADLINE)).await.unwrap(), 2);
        assert_eq!(ensure_outbox(db, t(DEADLINE)).await.unwrap(), 0);
        catch_up(db, &billing_store::SystemClock).await.unwrap();
        let after = notices(db, None).await.unwrap();
        assert_eq!(
            kinds(&after),
            [
                (OPENING_REMINDER, 4),
                (COUNTDOWN_STARTED, 6),
                (COUNTDOWN_REMINDER, 7),
                (LOCKED, 8)
            ]
        );
        assert_eq!(after[2].due_at, t(REMIND_AT));
        // A lost notice row is recorded again from the log, with the same content.
        let locked = after[3].clone();
        h.raw("DELETE FROM email_outbox WHERE kind = 'locked'")
            .await
            .unwrap();
        assert_eq!(ensure_outbox(db, t(DEADLINE)).await.unwrap(), 1);
        let again = notices(db, None).await.unwrap();
        assert_eq!(
            (&again[3].subject, &again[3].body),
            (&locked.subject, &locked.body)
        );
        // A rebuild leaves the outbox alone, and nothing is due twice.
        h.billing.projector.rebuild(|_| {}).await.unwrap();
        assert_eq!(notices(db, None).await.unwrap(), again);
        assert_eq!(ensure_outbox(db, t(DEADLINE)).await.unwrap(), 0);
        assert_eq!(
            deliver_pending(db, &LogMailer, &billing_adapters::Clocks::at(t(DEADLINE)))
                .await
                .unwrap()
                .sent,
            4
        );
        assert_eq!(
            deliver_pending(db, &LogMailer, &billing_adapters::Clocks::at(t(DEADLINE)))
                .await
                .unwrap()
                .sent,
            0
        );
    }

    /// An imported log's notices were sent by the store it came from: the import records them as
    /// sent, with their kind, countdown, recipient and due time.
    pub async fn imported_notices_are_recorded_as_sent(h: &Harness) {
        h.register("acme-finance").await;
        upgrade(h, "acme", "cn4").await;
        h.clock.set(t(ARREARS_AT));
        system(&h.billing.store, "acme", "a1", arrears("B-1", "1"))
            .await
            .unwrap();
        h.clock.set(t(DEADLINE));
        tick(h).await;
        h.run("acme", "s1", settle_bill("B-1")).await.unwrap();
        h.billing.projector.flush().await.unwrap();
        let source = notices(h.billing.db(), None).await.unwrap();
        assert_eq!(source.len(), 5);

        let mut export = Vec::new();
        h.billing.store.export(&mut export, |_| {}).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        std::fs::write(&path, export).unwrap();
        let (target, _keep) = h.fresh().await;
        target.store.import(&path, |_, _| {}).await.unwrap();
        target.projector.flush().await.unwrap();
        target.projector.catch_up().await.unwrap();
        let imported = notices(target.db(), None).await.unwrap();
        let shape = |m: &OutboxMessage| {
            (
                m.workspace_id.clone(),
                m.kind.clone(),
                m.sequence,
                m.countdown,
                m.user_name.clone(),
                m.due_at,
            )
        };
        assert_eq!(
            imported.iter().map(shape).collect::<Vec<_>>(),
            source.iter().map(shape).collect::<Vec<_>>()
        );
        assert!(imported.iter().all(|m| m.sent_at.is_some()), "{imported:?}");
        assert_eq!(
            deliver_pending(
                target.db(),
                &LogMailer,
                &billing_adapters::Clocks::at(t(DEADLINE))
            )
            .await
            .unwrap()
            .sent,
            0
        );
        assert_eq!(ensure_outbox(target.db(), t(DEADLINE)).await.unwrap(), 0);
    }

    /// Upgrades `n` workspaces `prefix-NNN` and records arrears on each at `ARREARS_AT`.
    async fn counting_down(h: &Harness, prefix: &str, n: usize) -> Vec<String> {
        use futures_util::StreamExt as _;
        h.clock.set(t("2026-11-27T09:00:00Z"));
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:03}")).collect();
        futures_util::stream::iter(&names)
            .for_each_concurrent(16, |w| async move { upgrade(h, w, "cn4").await })
            .await;
        h.clock.set(t(ARREARS_AT));
        futures_util::stream::iter(&names)
            .for_each_concurrent(16, |w| async move {
                system(
                    &h.billing.store,
                    w,
                    &format!("{w}-arrears"),
                    arrears("B-1", "10"),
                )
                .await
                .unwrap();
            })
            .await;
        names
    }

    /// Nothing due: nothing fired. At `remind_at`: the reminder only. Past the deadline: the reminder
    /// (when it was never sent) and the lock. A repeated tick fires nothing.
    pub async fn the_scheduler_fires_what_is_due_and_only_that(h: &Harness) {
        h.register("acme-finance").await;
        let empty = tick(h).await;
        assert_eq!(
            empty,
            TickReport {
                at: h.clock.now(),
                ..TickReport::default()
            }
        );
        counting_down(h, "early", 2).await;
        // "late" starts its countdown a day later: its reminder is not due at early's.
        h.clock.set(t(ARREARS_AT) + Duration::days(1));
        upgrade(h, "late", "cn4").await;
        system(&h.billing.store, "late", "late-a", arrears("B-9", "3"))
            .await
            .unwrap();
        h.clock.set(t(ARREARS_AT) + Duration::days(5));
        assert_eq!(
            tick(h).await,
            TickReport {
                at: h.clock.now(),
                ..TickReport::default()
            }
        );

        h.clock.set(t(REMIND_AT));
        let at_reminder = tick(h).await;
        assert_eq!(at_reminder.reminders_sent, ids(&["early-000", "early-001"]));
        assert!(at_reminder.locked.is_empty() && at_reminder.already_done == 0);
        let again = tick(h).await;
        assert!(
            again.reminders_sent.is_empty() && again.locked.is_empty(),
            "{again:?}"
        );

        // Past late's deadline, nobody ever fired late's reminder: it goes out, then the lock.
        h.clock.set(t(DEADLINE) + Duration::days(2));
        let past = tick(h).await;
        assert_eq!(past.reminders_sent, ids(&["late"]));
        assert_eq!(past.locked, ids(&["early-000", "early-001", "late"]));
        assert_eq!(past.already_done, 0);
        let repeated = tick(h).await;
        assert_eq!(
            repeated,
            TickReport {
                at: h.clock.now(),
                ..TickReport::default()
            }
        );
        for workspace in ["early-000", "early-001", "late"] {
            assert_eq!(
                checked_view(h, workspace).await.standing_name(),
                Some("locked"),
                "{workspace}"
            );
        }
        // Re-sending a fired deadline's command gives the original outcome.
        let id = deadline_command_id("lock", 1, &ws("late")).unwrap();
        let outcome = h
            .billing
            .store
            .execute(
                &ws("late"),
                &WorkspaceCommand::new(
                    id,
                    Actor::new(ActorId::parse("billing-system").unwrap(), Role::System),
                    Action::Lock,
                ),
            )
            .await
            .unwrap();
        assert!(outcome.replayed);
        // A long workspace id gets a hashed command id within the limit.
        let long = ws(&"w".repeat(MAX_ID_LEN));
        let hashed = deadline_command_id("reminder", 3, &long).unwrap();
        assert!(
            hashed.as_str().starts_with("deadline:reminder:3:sha256:"),
            "{hashed}"
        );
        assert!(hashed.as_str().len() <= MAX_ID_LEN);
    }

    /// Two schedulers (two processes) ticking at once over 200 workspaces fire every reminder and
    /// every lock exactly once between them; a further tick fires nothing.
    pub async fn concurrent_ticks_fire_each_deadline_exactly_once(h: &Harness) {
        h.register("acme-finance").await;
        let names = counting_down(h, "many", 200).await;
        let other = h.reopen().await;
        h.clock.set(t(DEADLINE) + Duration::hours(1));
        let (first, second) = (
            Scheduler::new(
                h.billing.store.clone(),
                billing_adapters::Clocks::billing_at(
                    h.billing.store.clone().services().clock.clone(),
                ),
            ),
            Scheduler::new(
                other.store.clone(),
                billing_adapters::Clocks::billing_at(other.store.clone().services().clock.clone()),
            ),
        );
        let (a, b) = tokio::join!(first.tick(), second.tick());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.failed.is_empty() && b.failed.is_empty(), "{a:?} {b:?}");
        let mut reminded: Vec<_> = a.reminders_sent.iter().chain(&b.reminders_sent).collect();
        let mut locked: Vec<_> = a.locked.iter().chain(&b.locked).collect();
        reminded.sort();
        locked.sort();
        let all: Vec<WorkspaceId> = names.iter().map(|n| ws(n)).collect();
        assert_eq!(reminded, all.iter().collect::<Vec<_>>());
        assert_eq!(locked, all.iter().collect::<Vec<_>>());
        for event in ["CountdownReminded", "WorkspaceLocked"] {
            assert_eq!(
                h.count(&format!(
                    "SELECT count(*) FROM events WHERE event_type = '{event}'"
                ))
                .await,
                200,
                "{event}"
            );
        }
        let again = tick(h).await;
        assert!(
            again.reminders_sent.is_empty() && again.locked.is_empty(),
            "{again:?}"
        );
        other.projector.flush().await.unwrap();
        h.billing.projector.flush().await.unwrap();
        for kind in [COUNTDOWN_REMINDER, LOCKED] {
            assert_eq!(
                h.count(&format!(
                    "SELECT count(*) FROM email_outbox WHERE kind = '{kind}'"
                ))
                .await,
                200,
                "{kind}"
            );
        }
    }

    /// A view that missed a commit (the process died before projecting it) does not hide the
    /// deadline: the tick catches the views up first.
    pub async fn a_tick_catches_up_a_stale_view_first(h: &Harness) {
        h.register("acme-finance").await;
        upgrade(h, "acme", "cn4").await;
        h.billing.projector.flush().await.unwrap();
        let dying = h.store_without_views().await;
        h.clock.set(t(ARREARS_AT));
        system(&dying, "acme", "a1", arrears("B-1", "7.5"))
            .await
            .unwrap();
        drop(dying);
        let stale = billing_view(h.billing.db(), &ws("acme"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stale.standing,
            Some(Standing::Good),
            "the view missed the arrears"
        );
        h.clock.set(t(DEADLINE));
        let report = tick(h).await;
        assert_eq!(
            (report.reminders_sent, report.locked),
            (ids(&["acme"]), ids(&["acme"]))
        );
        assert_eq!(
            checked_view(h, "acme").await.standing_name(),
            Some("locked")
        );
    }
}
