//! Every read statement of the store, each one text for both backends: sqlx's SQLite driver takes
//! `$N` parameters, and `CAST(… AS TEXT)` reads PostgreSQL's `json` columns and SQLite's text
//! columns alike, as their exact stored text. The one exception is the commit order, which each
//! backend reads its own way ([`Dialect::read_committed`]).

use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::backend::{Dialect, PerBackend};
use super::{seq_i64, seq_u64, Db};
use crate::error::StoreError;
use crate::record::{RowRef, StoredRow, AGGREGATE_TYPE};

/// A `SELECT` of the seven stored columns of `events` (payload and metadata as text), then the
/// rest of the statement.
macro_rules! select_rows {
    ($rest:literal) => {
        concat!(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, ",
            "CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata FROM events ",
            $rest
        )
    };
}

const EVENTS_RANGE: &str = select_rows!(
    "WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4 ORDER BY sequence"
);

const STREAM_ALL: &str = select_rows!("ORDER BY aggregate_type, aggregate_id, sequence");

/// One workspace's events (kind 0) and its recorded head (kind 1), in one statement: read
/// separately, a commit landing in between would look like a head that runs ahead of its stream.
const LOAD_STREAM: &str = "SELECT 0 AS kind, sequence, event_type, event_version, \
       CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata \
     FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
     UNION ALL \
     SELECT 1, h.last_sequence, h.head_hash, '', '', '' FROM ( \
       SELECT last_sequence, head_hash FROM commands \
       WHERE aggregate_type = $1 AND aggregate_id = $2 \
       ORDER BY last_sequence DESC LIMIT 1) AS h \
     ORDER BY kind, sequence";

/// A command's idempotency record (if any) and the workspace's head sequence, in one round trip.
const COMMAND_AND_HEAD: &str =
    "SELECT c.aggregate_id, c.command_hash, c.first_sequence, c.last_sequence, \
       (SELECT max(last_sequence) FROM commands WHERE aggregate_type = $1 AND aggregate_id = $3) \
     FROM (SELECT 1) AS one LEFT JOIN commands c ON c.command_id = $2";

const HEAD: &str = "SELECT aggregate_id, last_sequence AS sequence, head_hash AS hash \
     FROM commands WHERE aggregate_type = $1 AND aggregate_id = $2 \
     ORDER BY last_sequence DESC LIMIT 1";

const HEADS: &str = "SELECT aggregate_id, sequence, hash FROM heads \
     WHERE aggregate_type = $1 ORDER BY aggregate_id";

/// The head of one workspace's chain as the store records it (its newest command record).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Head {
    /// The workspace.
    #[sqlx(rename = "aggregate_id")]
    pub workspace: String,
    /// Its newest sequence.
    #[sqlx(try_from = "i64")]
    pub sequence: u64,
    /// Its newest hash.
    pub hash: String,
}

/// An idempotency record: what a command id wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandRecord {
    /// The workspace the command wrote to.
    pub(crate) workspace: String,
    /// The hash of the command's content.
    pub(crate) command_hash: String,
    /// Its first event's sequence.
    pub(crate) first_sequence: u64,
    /// Its last event's sequence.
    pub(crate) last_sequence: u64,
}

/// A line of [`LOAD_STREAM`]: an event, or (kind 1) the head in `sequence` and `event_type`.
#[derive(sqlx::FromRow)]
struct StreamLine {
    kind: i32,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
}

impl Db {
    /// One workspace's events in sequence order, and its recorded head, from one snapshot.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn load_stream(
        &self,
        workspace: &str,
    ) -> Result<(Vec<StoredRow>, Option<Head>), StoreError> {
        let mut lane = self.lane().await?;
        let lines: Vec<StreamLine> = on_backend!(&mut lane.conn, |c| sqlx::query_as(LOAD_STREAM)
            .bind(AGGREGATE_TYPE)
            .bind(workspace)
            .fetch_all(&mut *c)
            .await?);
        lane.release();
        let mut events = Vec::with_capacity(lines.len());
        let mut head = None;
        for line in lines {
            if line.kind == 1 {
                head = Some(Head {
                    workspace: workspace.to_owned(),
                    sequence: seq_u64(line.sequence),
                    hash: line.event_type,
                });
            } else {
                events.push(StoredRow {
                    aggregate_type: AGGREGATE_TYPE.to_owned(),
                    aggregate_id: workspace.to_owned(),
                    sequence: seq_u64(line.sequence),
                    event_type: line.event_type,
                    event_version: line.event_version,
                    payload: line.payload,
                    metadata: line.metadata,
                });
            }
        }
        Ok((events, head))
    }

    /// The recorded head of one workspace (`None` when it has no events).
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn head(&self, workspace: &str) -> Result<Option<Head>, StoreError> {
        let mut lane = self.lane().await?;
        let head = on_backend!(&mut lane.conn, |c| sqlx::query_as(HEAD)
            .bind(AGGREGATE_TYPE)
            .bind(workspace)
            .fetch_optional(&mut *c)
            .await?);
        lane.release();
        Ok(head)
    }

    /// The idempotency record of `command_id` and the head sequence of `workspace` (0 for none),
    /// in one round trip.
    pub(crate) async fn command_and_head(
        &self,
        command_id: &str,
        workspace: &str,
    ) -> Result<(Option<CommandRecord>, u64), StoreError> {
        type Line = (
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let mut lane = self.lane().await?;
        let line: Line = on_backend!(&mut lane.conn, |c| sqlx::query_as(COMMAND_AND_HEAD)
            .bind(AGGREGATE_TYPE)
            .bind(command_id)
            .bind(workspace)
            .fetch_one(&mut *c)
            .await?);
        lane.release();
        let record = match line {
            (Some(workspace), Some(command_hash), Some(first), Some(last), _) => {
                Some(CommandRecord {
                    workspace,
                    command_hash,
                    first_sequence: seq_u64(first),
                    last_sequence: seq_u64(last),
                })
            }
            _ => None,
        };
        Ok((record, line.4.map_or(0, seq_u64)))
    }

    /// Events `first..=last` of one workspace.
    pub(crate) async fn events_range(
        &self,
        workspace: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let mut lane = self.lane().await?;
        let rows = on_backend!(&mut lane.conn, |c| sqlx::query_as(EVENTS_RANGE)
            .bind(AGGREGATE_TYPE)
            .bind(workspace)
            .bind(seq_i64(first))
            .bind(seq_i64(last))
            .fetch_all(&mut *c)
            .await?);
        lane.release();
        Ok(rows)
    }

    /// How many events the store holds.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn count_events(&self) -> Result<u64, StoreError> {
        let mut lane = self.lane().await?;
        let n: i64 = on_backend!(&mut lane.conn, |c| sqlx::query_scalar(
            "SELECT count(*) FROM events"
        )
        .fetch_one(&mut *c)
        .await?);
        lane.release();
        Ok(seq_u64(n))
    }

    /// Every event, ordered by workspace id (byte order) then sequence, streamed: memory stays
    /// flat however large the store.
    pub fn stream_all(&self) -> BoxStream<'_, Result<StoredRow, StoreError>> {
        self.release_lanes();
        on_backend!(&self.backend, |pool| sqlx::query_as(STREAM_ALL)
            .fetch(pool)
            .map(|r| r.map_err(StoreError::from))
            .boxed())
    }

    /// [`Db::stream_all`], each row as the database returned it: for a reader that goes through
    /// every event once and needs the fields only borrowed ([`EventRow::fields`]), it saves
    /// copying seven fields into strings of their own per row. Rows can be handed to another
    /// thread and read there.
    pub fn stream_all_rows(&self) -> BoxStream<'_, Result<EventRow, StoreError>> {
        self.release_lanes();
        on_backend!(&self.backend, |pool, Same| sqlx::query(STREAM_ALL)
            .fetch(pool)
            .map(|r| r.map(|row| EventRow(Same(row))).map_err(StoreError::from))
            .boxed())
    }

    /// Up to `limit` committed events after `after`, in commit order: a reader that starts at
    /// [`Position::START`] and goes on from the position of the last event it got sees every
    /// committed event exactly once, however commits interleave — a transaction that took its
    /// positions early and commits late is never passed over (ADR 0009). Within a workspace the
    /// order is sequence order. An empty answer means nothing more is visible yet.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Unavailable`].
    pub async fn read_committed(
        &self,
        after: Position,
        limit: u32,
    ) -> Result<Vec<PositionedRow>, StoreError> {
        let limit = i64::from(limit);
        Ok(on_backend!(&self.backend, |pool| Dialect::read_committed(
            pool, after, limit
        )
        .await?))
    }

    /// Every recorded head, ordered by workspace id, streamed.
    pub fn stream_heads(&self) -> BoxStream<'_, Result<Head, StoreError>> {
        self.release_lanes();
        on_backend!(&self.backend, |pool| sqlx::query_as(HEADS)
            .bind(AGGREGATE_TYPE)
            .fetch(pool)
            .map(|r| r.map_err(StoreError::from))
            .boxed())
    }
}

/// Reads the [`RowRef`] out of a row selected by `select_rows!` (columns by position, in the
/// order that macro selects them), of either backend. The columns' types are the statement's own
/// (text by its `CAST`s, the sequence an integer column), so the per-row type check is skipped;
/// decoding still checks that text is UTF-8.
fn row_fields<'r, R: sqlx::Row>(r: &'r R) -> Result<RowRef<'r>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database>,
    &'r str: sqlx::Decode<'r, R::Database>,
{
    let sequence: i64 = r.try_get_unchecked(2)?;
    Ok(RowRef {
        aggregate_type: r.try_get_unchecked(0)?,
        aggregate_id: r.try_get_unchecked(1)?,
        sequence: u64::try_from(sequence).map_err(|e| sqlx::Error::ColumnDecode {
            index: "sequence".to_owned(),
            source: Box::new(e),
        })?,
        event_type: r.try_get_unchecked(3)?,
        event_version: r.try_get_unchecked(4)?,
        payload: r.try_get_unchecked(5)?,
        metadata: r.try_get_unchecked(6)?,
    })
}

/// One row of [`Db::stream_all_rows`], as the database returned it.
pub struct EventRow(PerBackend<sqlx::postgres::PgRow, sqlx::sqlite::SqliteRow>);

impl EventRow {
    /// The row's seven fields, borrowed from the row.
    ///
    /// # Errors
    /// [`StoreError::Database`] for a column that does not decode: text that is not UTF-8, a
    /// negative sequence.
    pub fn fields(&self) -> Result<RowRef<'_>, StoreError> {
        on_backend!(&self.0, |r| row_fields(r)).map_err(StoreError::from)
    }
}

/// A place in the commit order ([`Db::read_committed`]): on PostgreSQL the transaction that
/// wrote an event and the event's position; on SQLite the position alone (the transaction is 0).
/// Positions compare in commit order; they have gaps. Written `transaction.position`, e.g.
/// `812.10452`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The writing transaction's id (PostgreSQL's `xid8`), 0 on SQLite.
    pub transaction: u64,
    /// The event's position (`events.position`).
    pub position: u64,
}

impl Position {
    /// Before every event.
    pub const START: Self = Self {
        transaction: 0,
        position: 0,
    };
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.transaction, self.position)
    }
}

/// A position that is not `transaction.position` in digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a position: expected two numbers joined by a dot, like 812.10452")]
pub struct BadPosition(pub String);

impl std::str::FromStr for Position {
    type Err = BadPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(text.to_owned());
        let (transaction, position) = text.split_once('.').ok_or_else(bad)?;
        let number = |t: &str| {
            t.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| t.parse::<u64>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(Self {
            transaction: number(transaction)?,
            position: number(position)?,
        })
    }
}

/// One committed event and its place in the commit order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionedRow {
    /// Where the event stands in the commit order.
    pub position: Position,
    /// The event as stored.
    pub row: StoredRow,
}

/// Reads a [`PositionedRow`] out of a row of either commit-order statement: columns by
/// position (the transaction, the position, then `select_rows!`'s seven), types as the
/// statements cast them, so the per-row type check is skipped (followers read every event).
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for PositionedRow
where
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let number = |index: usize, column: &str| -> Result<u64, sqlx::Error> {
            let value: i64 = row.try_get_unchecked(index)?;
            u64::try_from(value).map_err(|e| sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source: Box::new(e),
            })
        };
        Ok(Self {
            position: Position {
                transaction: number(0, "commit_transaction")?,
                position: number(1, "commit_position")?,
            },
            row: StoredRow {
                aggregate_type: row.try_get_unchecked(2)?,
                aggregate_id: row.try_get_unchecked(3)?,
                sequence: number(4, "sequence")?,
                event_type: row.try_get_unchecked(5)?,
                event_version: row.try_get_unchecked(6)?,
                payload: row.try_get_unchecked(7)?,
                metadata: row.try_get_unchecked(8)?,
            },
        })
    }
}
