//! Connecting: URLs, pools, the writer, and migrations that any number of processes may run at
//! once on the same new database.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

use super::append::PgGroup;
use super::lanes::Lanes;
use super::sqlite_writer::{SqliteWriter, WriterConfig};
use super::{
    Backend, Db, SqliteDurability, StoreOptions, Writer, POSTGRES_MIGRATOR, SQLITE_MIGRATOR,
};
use crate::error::StoreError;

impl Db {
    /// Connects to `url` (`postgres://…`, `sqlite://PATH`, `sqlite::memory:`), applies the
    /// embedded migrations, and starts the writer. A SQLite file is created on first use; any
    /// number of processes may open the same new file (or new PostgreSQL database) at once.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for a URL that is neither `postgres://…` nor `sqlite:…`,
    /// [`StoreError::Unavailable`] when the database does not answer, [`StoreError::Migration`]
    /// when the schema cannot be brought up to date.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = connect_postgres(url, options).await?;
            Self::from_pg_pool(pool, options).await
        } else if url.starts_with("sqlite:") {
            connect_sqlite(url, options).await
        } else {
            Err(StoreError::InvalidUrl {
                url: redact(url),
                reason: "expected postgres://…, sqlite://PATH or sqlite::memory:".into(),
            })
        }
    }

    /// A database over an existing PostgreSQL pool (a host's own, or a test's): applies the
    /// embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Migration`].
    pub async fn from_pg_pool(pool: PgPool, options: &StoreOptions) -> Result<Self, StoreError> {
        // PostgreSQL serializes concurrent migration runs itself (sqlx takes an advisory lock).
        POSTGRES_MIGRATOR.run(&pool).await?;
        let connect = pool.connect_options();
        let url = format!(
            "postgres://{}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        Ok(Self {
            backend: Backend::Postgres(pool),
            url: Arc::from(url),
            lanes: Arc::new(Lanes::new(options)),
            writer: Writer::Postgres(Arc::new(PgGroup::default())),
            commits: Arc::default(),
        })
    }
}

async fn connect_postgres(url: &str, options: &StoreOptions) -> Result<PgPool, StoreError> {
    let unavailable = |reason: String| StoreError::Unavailable {
        url: redact(url),
        reason,
    };
    let connect = PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        url: redact(url),
        reason: e.to_string(),
    })?;
    // One direct connection first: an unreachable server fails now, with its own reason
    // ("connection refused"), instead of after the pool's acquire timeout.
    let probe = tokio::time::timeout(options.busy_timeout, PgConnection::connect_with(&connect))
        .await
        .map_err(|_| unavailable(format!("no answer within {:?}", options.busy_timeout)))?
        .map_err(|e| unavailable(e.to_string()))?;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.busy_timeout)
        // A broken connection shows up as an error on use; a ping per acquire costs a round
        // trip per operation.
        .test_before_acquire(false)
        .connect_with(connect)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    // Closing the probe politely is not worth waiting for.
    drop(probe);
    Ok(pool)
}

async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Db, StoreError> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() && !memory {
        return Err(StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: "no file: use sqlite://PATH (or sqlite::memory:)".into(),
        });
    }
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?
        .create_if_missing(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(match options.sqlite_durability {
            SqliteDurability::Full => SqliteSynchronous::Full,
            SqliteDurability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true);
    let mut pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.busy_timeout)
        .test_before_acquire(false);
    if memory {
        // An in-memory database lives as long as one of its connections.
        pool = pool
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let pool = pool
        .connect_with(connect.clone())
        .await
        .map_err(|e| StoreError::Unavailable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    migrate_sqlite(&pool).await?;
    let writer = SqliteWriter::start(WriterConfig {
        url: url.to_owned(),
        file: connect.get_filename().to_owned(),
        in_memory: memory,
        durability: options.sqlite_durability,
        busy_timeout: options.busy_timeout,
    })
    .await?;
    Ok(Db {
        backend: Backend::Sqlite(pool),
        url: Arc::from(url),
        lanes: Arc::new(Lanes::new(options)),
        writer: Writer::Sqlite(Arc::new(writer)),
        commits: Arc::default(),
    })
}

/// Brings a SQLite database's schema up to date, safely when several processes open the same
/// new file at once.
///
/// sqlx's migrator checks which migrations are applied and then applies the rest, with nothing
/// held in between on SQLite: two processes opening a new file both found nothing applied, and
/// the second failed with `table events already exists`. Here the whole run happens inside one
/// `BEGIN IMMEDIATE` transaction (SQLite's write lock, waited for with the busy timeout), so the
/// second process finds the schema complete once it gets the lock. The migrator's own
/// transactions nest inside it as savepoints. A database already up to date is recognised
/// without taking the write lock, so opening a busy store does not wait for its writers.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    if up_to_date(&mut conn).await {
        return Ok(());
    }
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    SQLITE_MIGRATOR.run_direct(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether every embedded migration is recorded as applied, with its checksum (a database that
/// cannot say, or says anything else, is not).
async fn up_to_date(conn: &mut sqlx::SqliteConnection) -> bool {
    let applied: Result<Vec<(i64, Vec<u8>)>, sqlx::Error> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await;
    let Ok(applied) = applied else {
        return false;
    };
    SQLITE_MIGRATOR.iter().all(|m| {
        applied
            .iter()
            .any(|(version, checksum)| *version == m.version && checksum[..] == m.checksum[..])
    })
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
