//! Lanes: a few connections of the command path's own, beside the pool.
//!
//! sqlx pings every connection it takes back into its pool, one more round trip per query. The
//! command path makes one round trip per command, so it keeps its connections instead: a lane is
//! taken for one operation and put back when that operation finished cleanly.
//!
//! Cancellation is an input: a command's future may be dropped at any await (a host's request
//! timeout). A lane's connection is owned by the operation while it runs, so a dropped operation
//! drops — closes — its connection with it, whatever state it was in (inside a transaction, or
//! with an answer still unread); only an operation that returned `Ok` gives its connection back.
//! An operation that failed closes its connection too: after an error its state is unknown.
//! Opening a connection is the one step that is not cancelled with its caller: it runs in a task
//! of its own and, if its caller went away, leaves the new connection idle for the next one.
//! Otherwise a host whose timeouts are shorter than a connection's set-up (TLS) would close and
//! reopen connections for ever without a command getting through.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::sync::{oneshot, Semaphore, SemaphorePermit};

use super::backend::PerBackend;
use super::{Db, StoreOptions};
use crate::error::StoreError;

/// The idle lanes, and permits for how many may be in use at once.
pub(super) struct Lanes {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    capacity: usize,
    timeout: Duration,
}

/// A lane's connection (on SQLite for reads only: SQLite appends go through the writer thread).
pub(super) type Conn = PerBackend<PgConnection, SqliteConnection>;

impl Lanes {
    pub(super) fn new(options: &StoreOptions) -> Self {
        let lanes = usize::try_from(options.max_connections.max(1)).unwrap_or(1);
        Self {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(lanes),
            capacity: lanes,
            timeout: options.busy_timeout,
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `conn` for the next operation (closes it if as many are idle as may be in use).
    fn put(&self, conn: Conn) {
        let mut idle = self.idle();
        if idle.len() < self.capacity {
            idle.push(conn);
        }
    }
}

/// A lane in use: its connection and its permit. Dropped, it closes its connection (the default
/// for an operation that failed or was cancelled); [`Lane::release`] gives the connection back
/// after an operation that finished cleanly. (No `Drop` impl, so no state decides this at drop
/// time: only `release` can return a connection.)
pub(super) struct Lane<'a> {
    lanes: &'a Lanes,
    /// The connection, owned by the operation that holds the lane.
    pub(super) conn: Conn,
    _permit: SemaphorePermit<'a>,
}

impl Lane<'_> {
    /// Returns the connection to the idle lanes: the operation on it finished cleanly.
    pub(super) fn release(self) {
        let Lane { lanes, conn, .. } = self;
        lanes.put(conn);
    }
}

impl Db {
    /// Takes a lane: an idle connection, or a new one, within the busy timeout.
    pub(super) async fn lane(&self) -> Result<Lane<'_>, StoreError> {
        let lanes = &*self.lanes;
        let permit = tokio::time::timeout(lanes.timeout, lanes.permits.acquire())
            .await
            .map_err(|_| StoreError::Unavailable {
                url: self.url().to_owned(),
                reason: format!("no connection free within {:?}", lanes.timeout),
            })?
            .map_err(|_| StoreError::Unavailable {
                url: self.url().to_owned(),
                reason: "the store is closed".into(),
            })?;
        let idle = lanes.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect_lane().await?,
        };
        Ok(Lane {
            lanes,
            conn,
            _permit: permit,
        })
    }

    /// Opens a connection in a task of its own (see the module's docs on cancellation).
    async fn connect_lane(&self) -> Result<Conn, StoreError> {
        let (done, connected) = oneshot::channel();
        let (backend, lanes) = (self.backend.clone(), self.lanes.clone());
        tokio::spawn(async move {
            let conn: Result<Conn, sqlx::Error> = on_backend!(&backend, |pool, Same| {
                Connection::connect_with(&*pool.connect_options())
                    .await
                    .map(Same)
            });
            if let Err(Ok(conn)) = done.send(conn) {
                // The caller went away: the next operation takes the connection.
                lanes.put(conn);
            }
        });
        connected
            .await
            .map_err(|_| {
                StoreError::internal("the task opening a connection stopped without an answer")
            })?
            .map_err(|e| StoreError::Unavailable {
                url: self.url().to_owned(),
                reason: e.to_string(),
            })
    }

    /// Closes the idle lanes, so long operations find the server's connections free.
    pub(super) fn release_lanes(&self) {
        self.lanes.idle().clear();
    }
}
