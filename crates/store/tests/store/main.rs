//! The store crate's integration tests. Every scenario runs twice: on SQLite (a temporary file)
//! and on PostgreSQL (a fresh database per test, from `#[sqlx::test]`; needs `DATABASE_URL`,
//! which `scripts/test` provides), through `billing_test_support::on_both_backends!`.

#![allow(unreachable_pub, clippy::unwrap_used, missing_docs)]

mod audit_mutations;
mod authorization;
mod commit_order;
mod defects;
mod errors;
mod fuzz_reader;
mod harness;
mod properties;
mod scenarios;
mod subscribers;

billing_test_support::on_both_backends! {
    harness: crate::harness::Harness,
    scenarios: crate::scenarios,
    tests: [
        the_documented_flow_is_stored_and_replays,
        every_refusal_writes_nothing,
        resending_a_command_id_returns_the_original_outcome,
        reusing_a_command_id_for_other_content_is_refused,
        idempotency_survives_a_restart,
        events_cannot_be_updated_deleted_or_truncated,
        every_event_links_to_the_previous_one_and_the_head_is_recorded,
        export_import_export_is_byte_identical,
        import_refuses_a_tampered_file_and_writes_nothing,
        import_refuses_a_store_that_is_not_empty,
        a_stale_cache_never_decides,
        racing_writers_lose_nothing_and_duplicate_nothing,
        a_tampered_stream_does_not_load,
        cqrs_es_repositories_read_the_streams,
    ],
}

/// Issue 9's defects of the first store, on both backends.
mod issue_9 {
    billing_test_support::on_both_backends! {
        harness: crate::harness::Harness,
        scenarios: crate::defects,
        tests: [
            cancelled_commands_leave_every_connection_usable_and_nothing_half_written,
            a_fault_is_named_the_same_alone_and_in_a_group,
            an_unreachable_database_is_reported_once,
        ],
    }
}

/// One error per cause on the command path (issue 18), on both backends.
mod errors_on_both {
    billing_test_support::on_both_backends! {
        harness: crate::harness::Harness,
        scenarios: crate::errors,
        tests: [
            an_outside_system_that_does_not_answer_is_no_refusal,
            a_workspace_that_moved_on_is_one_conflict_on_every_path,
        ],
    }
}

/// The commit order readers follow (SPEC §11), on both backends.
mod commit_order_on_both {
    billing_test_support::on_both_backends! {
        harness: crate::harness::Harness,
        scenarios: crate::commit_order,
        tests: [
            a_reader_sees_every_committed_event_once_in_workspace_order,
            a_checkpoint_is_durable_never_moves_back_and_knows_its_lag,
        ],
    }
}

/// Running named subscriptions (SPEC §11), on both backends.
mod subscribers_on_both {
    billing_test_support::on_both_backends! {
        harness: crate::harness::Harness,
        scenarios: crate::subscribers,
        tests: [
            one_instance_at_a_time_and_a_taken_over_one_writes_nothing,
            a_failing_handler_writes_nothing_and_its_batch_comes_again,
            a_commit_wakes_a_follower_and_silence_lets_it_sleep,
        ],
    }
}

/// Two processes opening a brand-new PostgreSQL database at once both end up with one schema.
#[sqlx::test(migrations = false)]
async fn postgres_migrations_are_safe_when_two_processes_start_at_once(pool: sqlx::PgPool) {
    let url = billing_test_support::url_of(&pool).await;
    let options = billing_store::StoreOptions::default();
    let (a, b, c) = tokio::join!(
        billing_store::Db::connect(&url, &options),
        billing_store::Db::connect(&url, &options),
        billing_store::Db::connect(&url, &options),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        applied,
        billing_store::db::POSTGRES_MIGRATOR.iter().count() as i64
    );
}

/// A URL that names no supported database, or a server that does not answer, is a clear error.
#[tokio::test]
async fn bad_urls_are_named_in_the_error() {
    let services = crate::harness::World::new().services;
    let err = billing_store::BillingStore::open("mysql://localhost/db", services.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mysql://localhost/db"), "{err}");
    let options = billing_store::StoreOptions {
        busy_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let err = billing_store::BillingStore::open_with(
        "postgres://nobody:secret@127.0.0.1:1/none",
        services,
        options,
    )
    .await
    .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        !err.to_string().contains("secret"),
        "the password leaked: {err}"
    );
}

/// A SQLite store made before migration 3 (command records in a rowid table) upgrades in place:
/// its command records, heads and idempotency survive, and the append-only triggers come back.
#[tokio::test]
async fn a_sqlite_store_made_before_migration_3_upgrades_and_keeps_its_records() {
    use billing_store::{Backend, BillingStore};
    let old = tempfile::tempdir().unwrap();
    for (name, sql) in [
        (
            "0001_event_store.sql",
            include_str!("../../migrations/sqlite/0001_event_store.sql"),
        ),
        (
            "0002_views_and_adapters.sql",
            include_str!("../../migrations/sqlite/0002_views_and_adapters.sql"),
        ),
    ] {
        std::fs::write(old.path().join(name), sql).unwrap();
    }
    let file = billing_test_support::SqliteFile::in_temp_dir();
    {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                file.url()
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        // A command record written by the old schema.
        sqlx::query(
            "INSERT INTO commands VALUES ('old-1', 'workspace', 'old', 'h', 1, 2, 'old-head')",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let world = harness::World::new();
    let store = BillingStore::open(file.url(), world.services.clone())
        .await
        .unwrap();
    harness::upgrade(&store, "acme", "us1").await;
    let again = BillingStore::open(file.url(), world.services.clone())
        .await
        .unwrap();
    let replay = again
        .execute(
            &harness::ws("acme"),
            &harness::owner_cmd("acme-0", harness::act::request("us1")),
        )
        .await
        .unwrap();
    assert!(replay.replayed);
    let Backend::Sqlite(pool) = again.db().backend() else {
        unreachable!()
    };
    let schema: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE name = 'commands'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(schema.contains("WITHOUT ROWID"), "{schema}");
    let old: (String, i64, String) =
        sqlx::query_as("SELECT aggregate_id, sequence, hash FROM heads WHERE aggregate_id = 'old'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(old, ("old".into(), 2, "old-head".into()));
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM commands")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(records, 4, "the old record and the flow's three");
    let err = sqlx::query("DELETE FROM commands")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
