//! Which database: the one switch between PostgreSQL and SQLite that every crate uses.
//!
//! - [`PerBackend`] holds a value of one backend's kind: [`Backend`] a pool, [`StoreTx`] an open
//!   transaction's connection, and inside the store a lane's connection, a streamed row, the
//!   write path. No other crate defines a switch of its own.
//! - [`on_backend!`](crate::on_backend) runs one piece of code on whichever backend a value
//!   holds: the code is written once and compiled once per backend. Wherever the backends agree
//!   on a statement's text (sqlx's SQLite driver takes `$N` parameters), that is all it takes.
//! - [`Dialect`] is where they do not agree: each backend's module (`postgres.rs`, `sqlite.rs`)
//!   implements it, and the shared code calls it from inside `on_backend!`.
//!
//! # Adding a backend
//!
//! A third backend is one new module beside `postgres.rs` and `sqlite.rs`, plus its variant:
//!
//! 1. the module: connecting and migrating (its `migrations/<name>/`), its write path (as
//!    `append.rs` is PostgreSQL's and `sqlite_writer.rs` SQLite's), and `impl Dialect`;
//! 2. here: the variant of [`PerBackend`], its arm in `on_backend!` and in
//!    [`PerBackend::kind`];
//! 3. the two places where a backend is chosen rather than used: `Db::connect` (its URL scheme,
//!    in the `if` that picks a module) and `Db::append` (its writer; a `match` the compiler
//!    points at).
//!
//! Every other statement of the store and of the adapters runs through `on_backend!` and
//! compiles for the new backend unchanged (or, for a statement text it does not take, the
//! difference becomes a [`Dialect`] item). Outside the store only what really differs names a
//! backend, and the compiler points at each `match` there too: the view rebuild
//! (`billing-adapters`: its schema copy reads each database's catalog, its fill uses each one's
//! bulk path), the benchmarks' settling of a database after an import (`billing-bench`), and the
//! tests' databases (`TestDb`, `Outage` in `billing-test-support`).

use std::future::Future;

use sqlx::{PgConnection, PgPool, Pool, SqliteConnection, SqlitePool, Transaction};

use super::import::Span;
use super::reads::{Position, PositionedRow};
use crate::error::StoreError;
use crate::record::StoredRow;

/// Runs the same code on the value of either backend: `on_backend!(value, |x| body)` matches
/// `value` (a [`PerBackend`], or a reference to one) and runs `body` with `x` bound to what it
/// holds. `body` is written once and compiled once per backend, so it may use each backend's
/// own types (`x` is a `&PgPool` in one arm and a `&SqlitePool` in the other) as long as both
/// compile; `?` and `return` act on the enclosing function. Both arms must have one type: where
/// the backends' own types differ (a `PgQueryResult` and a `SqliteQueryResult`), end the body
/// with `;` or map it to a common type (`.rows_affected()`).
///
/// `on_backend!(value, |x, Same| body)` also names the arm's variant: inside `body`, `Same(v)`
/// wraps `v` as the same backend's value (a connection into a [`StoreTx`], say).
///
/// ```no_run
/// # async fn run(db: &billing_store::Db) -> Result<(), sqlx::Error> {
/// let n: i64 = billing_store::on_backend!(db.backend(), |pool| {
///     sqlx::query_scalar("SELECT count(*) FROM billing_view WHERE plan = $1")
///         .bind("commercial")
///         .fetch_one(pool)
///         .await?
/// });
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! on_backend {
    ($value:expr, |$x:pat_param| $body:expr) => {
        match $value {
            $crate::PerBackend::Postgres($x) => $body,
            $crate::PerBackend::Sqlite($x) => $body,
        }
    };
    ($value:expr, |$x:pat_param, $same:ident| $body:expr) => {
        match $value {
            $crate::PerBackend::Postgres($x) => {
                #[allow(unused_imports)]
                use $crate::PerBackend::Postgres as $same;
                $body
            }
            $crate::PerBackend::Sqlite($x) => {
                #[allow(unused_imports)]
                use $crate::PerBackend::Sqlite as $same;
                $body
            }
        }
    };
}

/// A value of one backend's kind: a pool, a connection, a row — whichever the database is.
///
/// Run code on it with [`on_backend!`](crate::on_backend); match on it only where a backend is
/// chosen (`db/backend.rs` says how a backend is added).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerBackend<P, S> {
    /// PostgreSQL.
    Postgres(P),
    /// SQLite.
    Sqlite(S),
}

/// Which database, with its pool (for the adapters' own tables and long reads).
pub type Backend = PerBackend<PgPool, SqlitePool>;

/// An open transaction of the store's database, on either backend: an import's (for an
/// [`ImportHook`](crate::ImportHook)) or a subscription batch's (for a
/// [`SubscriptionHandler`](crate::SubscriptionHandler)), so what a hook or handler writes
/// commits with it or not at all. Run statements on it with
/// [`on_backend!`](crate::on_backend): `on_backend!(&mut tx, |conn| query.execute(&mut **conn))`.
pub type StoreTx<'t> = PerBackend<&'t mut PgConnection, &'t mut SqliteConnection>;

impl<P, S> PerBackend<P, S> {
    /// Which backend, as a word (`postgres`, `sqlite`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

impl StoreTx<'_> {
    /// Brings the query planner's statistics for `tables` (names from code, comma-separated)
    /// up to date, for tables a transaction has just filled: PostgreSQL's `ANALYZE`; on SQLite
    /// nothing (the store never runs SQLite's `ANALYZE`, whose statistics would then stay as
    /// they were at that moment).
    ///
    /// # Errors
    /// The database's error.
    pub async fn analyze(&mut self, tables: &str) -> Result<(), sqlx::Error> {
        on_backend!(self, |conn| analyze(&mut **conn, tables).await)
    }
}

/// What the backends do differently, beyond connecting and appending: each backend's module
/// implements it on its sqlx database type, and the shared code calls it inside
/// [`on_backend!`](crate::on_backend) (`Dialect::read_committed(pool, …)`: the pool says which).
pub(crate) trait Dialect: sqlx::Database {
    /// Up to `limit` committed events after `after`, in commit order (ADR 0009).
    fn read_committed(
        pool: &Pool<Self>,
        after: Position,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<PositionedRow>, sqlx::Error>> + Send;

    /// How many committed events are readable after `after` now.
    fn events_behind(
        pool: &Pool<Self>,
        after: Position,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;

    /// The (transaction, position) of the last event readable in the commit order now.
    fn last_readable(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Option<(i64, i64)>, sqlx::Error>> + Send;

    /// Opens an import's transaction, in which nothing else writes to the events until it ends.
    fn begin_import(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// Writes an import's batch of rows and the command records that end in it, and empties
    /// the batch.
    fn flush_import(
        tx: &mut Transaction<'static, Self>,
        batch: &mut Vec<StoredRow>,
        spans: Vec<Span>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Opens a subscription batch's transaction.
    fn begin_batch(
        pool: &Pool<Self>,
    ) -> impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send;

    /// [`StoreTx::analyze`] on this backend.
    fn analyze(
        conn: &mut Self::Connection,
        tables: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// [`Dialect::analyze`] on a connection of either backend (the connection says which).
pub(crate) async fn analyze<C>(conn: &mut C, tables: &str) -> Result<(), sqlx::Error>
where
    C: sqlx::Connection,
    C::Database: Dialect<Connection = C>,
{
    <C::Database as Dialect>::analyze(conn, tables).await
}
