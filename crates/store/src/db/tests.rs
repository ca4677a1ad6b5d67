//! The write path's group commits, each append in a group all or nothing, on both backends.

use std::time::Duration;

use super::append::{Append, AppendError, NewRow};
use super::sqlite_writer::{open, Job, Writer, WriterConfig};
use super::{Db, SqliteDurability, StoreOptions};

fn append(ws: &str, first: u64, n: u64, command: &str) -> Append {
    Append {
        workspace: ws.into(),
        rows: (first..first + n)
            .map(|sequence| NewRow {
                sequence,
                event_type: "UpgradeRequested",
                event_version: "1.0",
                payload: "{}".into(),
                metadata: "{}".into(),
            })
            .collect(),
        head_hash: format!("{ws}-{}", first + n - 1),
        command_id: command.into(),
        command_hash: "h".into(),
    }
}

/// The second group: ok, conflict (sequence 2 of b is taken), duplicate command id, and an ok
/// append that follows the first one of the same group.
fn second_group() -> Vec<Append> {
    vec![
        append("a", 2, 1, "c3"),
        append("b", 2, 2, "c4"),
        append("c", 1, 1, "c1"),
        append("a", 3, 2, "c5"),
    ]
}

fn check_second(outcomes: &[Result<(), AppendError>]) {
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert!(
        matches!(outcomes[1], Err(AppendError::Conflict)),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(AppendError::DuplicateCommand)),
        "{:?}",
        outcomes[2]
    );
    assert!(outcomes[3].is_ok(), "{:?}", outcomes[3]);
}

async fn check_rows(db: &Db) {
    let (a, head_a) = db.load_stream("a").await.unwrap();
    let (b, head_b) = db.load_stream("b").await.unwrap();
    let (c, head_c) = db.load_stream("c").await.unwrap();
    let seqs = |rows: &[crate::StoredRow]| rows.iter().map(|r| r.sequence).collect::<Vec<_>>();
    assert_eq!(seqs(&a), [1, 2, 3, 4], "failed appends left nothing behind");
    assert_eq!(seqs(&b), [1, 2]);
    assert!(c.is_empty(), "the duplicate command id wrote nothing");
    assert_eq!(
        head_a.map(|h| (h.sequence, h.hash)),
        Some((4, "a-4".into()))
    );
    assert_eq!(
        head_b.map(|h| (h.sequence, h.hash)),
        Some((2, "b-2".into()))
    );
    assert_eq!(head_c, None);
    assert_eq!(db.count_events().await.unwrap(), 6);
}

#[sqlx::test(migrations = false)]
async fn postgres_group_commit_keeps_each_append_all_or_nothing(pool: sqlx::PgPool) {
    let db = Db::from_pg_pool(pool, &StoreOptions::default())
        .await
        .unwrap();
    let first = db
        .append_batch_on_lane(&[append("a", 1, 1, "c1"), append("b", 1, 2, "c2")])
        .await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    check_second(&db.append_batch_on_lane(&second_group()).await);
    check_rows(&db).await;
}

/// The SQLite writer's batch: one transaction, a savepoint per append.
#[tokio::test]
async fn sqlite_group_commit_keeps_each_append_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("billing.db");
    let url = format!("sqlite://{}", file.display());
    let db = Db::connect(&url, &StoreOptions::default()).await.unwrap();
    let config = WriterConfig {
        url,
        file,
        in_memory: false,
        durability: SqliteDurability::Full,
        busy_timeout: Duration::from_secs(5),
    };
    let mut writer = Writer {
        conn: open(&config).unwrap(),
        config,
    };
    let jobs = |appends: Vec<Append>| -> Vec<Job> {
        appends
            .into_iter()
            .map(|append| Job {
                append,
                done: tokio::sync::oneshot::channel().0,
            })
            .collect()
    };
    let first = writer.commit(&jobs(vec![
        append("a", 1, 1, "c1"),
        append("b", 1, 2, "c2"),
    ]));
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    check_second(&writer.commit(&jobs(second_group())));
    assert!(writer.conn.is_autocommit(), "the group's transaction ended");
    check_rows(&db).await;
    // A group where nothing lands commits nothing and leaves no transaction open.
    let none = writer.commit(&jobs(vec![
        append("a", 1, 1, "c9"),
        append("z", 1, 1, "c1"),
    ]));
    assert!(matches!(none[0], Err(AppendError::Conflict)), "{none:?}");
    assert!(
        matches!(none[1], Err(AppendError::DuplicateCommand)),
        "{none:?}"
    );
    assert!(writer.conn.is_autocommit());
    check_rows(&db).await;
}
