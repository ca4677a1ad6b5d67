//! The rebuild's one pass over the log, in three stages that run at once:
//!
//! 1. **read** (the calling task): streams the event rows and hands them on in chunks;
//! 2. **fold** (a blocking thread): decodes each row, evolves its workspace, and renders the
//!    finished views and the trail entries as the writer needs them — on PostgreSQL straight
//!    into `COPY` text, so the async side does no per-row work but reading and writing;
//! 3. **write** (a task of its own, on a connection of its own): fills the fresh tables batch
//!    by batch — on PostgreSQL all batches in one transaction (one commit, not one per batch);
//!    on SQLite one transaction per batch, so the store's own writer is never kept waiting for
//!    the file's write lock longer than a batch takes.
//!
//! Bounded channels join the stages, so memory holds a few chunks and batches whatever the log's
//! size. A stage that stops on an error closes its channels, and the stages before it stop at
//! their next hand-over; [`fill_next`] reports the error that stopped the pipeline, never a
//! consequence of it.

use std::future::Future;

use std::borrow::Cow;

use billing_domain::{Role, Workspace, WorkspaceEvent, WorkspaceId};
use billing_store::record::{decode_unverified, MetadataText};
use billing_store::{Backend, Db, EventRow, RowRef, AGGREGATE_TYPE};
use futures_util::TryStreamExt;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::mpsc;

use super::RebuildReport;
use crate::error::AdapterError;
use crate::view_store::rows::{bind_trail, bind_view, copy_row, db_int, parse};
use crate::view_store::rows::{TrailColumns, ViewColumns};
use crate::view_store::rows::{TRAIL_COLUMNS, VIEW_COLUMNS, VIEW_WIDTH};
use billing_domain::instant::rfc3339;

use crate::views::{AuditEntry, BillingView};

/// Rows per chunk handed from the reading stage to the folding stage.
const CHUNK: usize = 1_000;

/// Chunks in flight between reading and folding.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Trail entries per batch handed from folding to writing.
const BATCH: usize = 5_000;

/// Batches in flight between folding and writing.
const BATCHES_IN_FLIGHT: usize = 2;

/// What the fold renders for the writer: finished views and trail entries, as one backend
/// writes them.
trait Rendered: Default + Send + 'static {
    /// Adds a finished view.
    fn view(&mut self, view: BillingView);
    /// Adds the trail entry of an event of `workspace` (parsed once per workspace, not per event).
    ///
    /// # Errors
    /// [`AdapterError::Corrupt`] for a field the writer needs typed that does not parse.
    fn entry(&mut self, workspace: &WorkspaceId, entry: &Entry<'_>) -> Result<(), AdapterError>;
    /// Trail entries added so far.
    fn entries(&self) -> usize;
    /// An empty batch with room for as much as this one holds (batches are about the same size;
    /// growing each one from nothing would copy it several times over).
    fn next(&self) -> Self;
}

/// PostgreSQL: `COPY … FROM STDIN` text for both tables.
#[derive(Default)]
struct CopyText {
    views: String,
    trail: String,
    entries: usize,
}

impl Rendered for CopyText {
    fn view(&mut self, view: BillingView) {
        copy_row(&mut self.views, &ViewColumns::of(&view).fields());
    }

    fn entry(&mut self, _workspace: &WorkspaceId, entry: &Entry<'_>) -> Result<(), AdapterError> {
        let description = entry.event.describe();
        let columns = TrailColumns {
            workspace_id: entry.workspace_id,
            sequence: db_int(entry.sequence),
            event_type: entry.event.event_type(),
            actor_id: &entry.metadata.actor_id,
            actor_role: entry.actor_role.as_str(),
            occurred_at: entry.occurred_at.clone(),
            description: &description,
        };
        copy_row(&mut self.trail, &columns.fields());
        self.entries += 1;
        Ok(())
    }

    fn entries(&self) -> usize {
        self.entries
    }

    fn next(&self) -> Self {
        Self {
            views: String::with_capacity(self.views.len()),
            trail: String::with_capacity(self.trail.len()),
            entries: 0,
        }
    }
}

/// SQLite: the typed rows, bound by the writer.
#[derive(Default)]
struct Rows {
    views: Vec<BillingView>,
    trail: Vec<AuditEntry>,
}

impl Rendered for Rows {
    fn view(&mut self, view: BillingView) {
        self.views.push(view);
    }

    fn entry(&mut self, workspace_id: &WorkspaceId, entry: &Entry<'_>) -> Result<(), AdapterError> {
        let workspace = entry.workspace_id;
        self.trail.push(AuditEntry {
            workspace_id: workspace_id.clone(),
            sequence: entry.sequence,
            event_type: entry.event.event_type().to_owned(),
            actor_id: parse(workspace, "metadata.actor_id", &entry.metadata.actor_id)?,
            actor_role: entry.actor_role,
            occurred_at: parse(workspace, "metadata.occurred_at", &entry.occurred_at)?,
            description: entry.event.describe(),
        });
        Ok(())
    }

    fn entries(&self) -> usize {
        self.trail.len()
    }

    fn next(&self) -> Self {
        Self {
            views: Vec::with_capacity(self.views.len()),
            trail: Vec::with_capacity(self.trail.len()),
        }
    }
}

/// Fills the fresh tables from one pass over the log; `progress` gets the events read so far.
///
/// # Errors
/// The error that stopped the pipeline: the read's ([`AdapterError::Store`]), the fold's
/// ([`StoreError::Integrity`](billing_store::StoreError::Integrity)), the write's
/// ([`AdapterError::Store`]), or
/// [`AdapterError::Internal`] when a stage's thread or task itself stopped.
pub(super) async fn fill_next(
    db: &Db,
    progress: &mut impl FnMut(u64),
) -> Result<RebuildReport, AdapterError> {
    // Per backend: each fills the tables its own fastest way (`COPY`; multi-row `INSERT`s).
    match db.backend() {
        Backend::Postgres(pool) => {
            let pool = pool.clone();
            pipeline(db, progress, move |batches| write_postgres(pool, batches)).await
        }
        Backend::Sqlite(pool) => {
            let pool = pool.clone();
            pipeline(db, progress, move |batches| write_sqlite(pool, batches)).await
        }
    }
}

/// Runs the three stages, `write` being the writing stage given its channel.
async fn pipeline<R, W, F>(
    db: &Db,
    progress: &mut impl FnMut(u64),
    write: W,
) -> Result<RebuildReport, AdapterError>
where
    R: Rendered,
    W: FnOnce(mpsc::Receiver<R>) -> F,
    F: Future<Output = Result<(), AdapterError>> + Send + 'static,
{
    let (rows_tx, rows_rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (batches_tx, batches_rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    let folder = tokio::task::spawn_blocking(move || fold::<R>(rows_rx, &batches_tx));
    let writer = tokio::spawn(write(batches_rx));
    let read = read(db, &rows_tx, progress).await;
    drop(rows_tx);
    let folded = folder
        .await
        .map_err(|e| stopped("fold", &e))
        .and_then(|r| r);
    let written = writer
        .await
        .map_err(|e| stopped("write", &e))
        .and_then(|r| r);
    // A stage that failed made the ones before it stop early (their hand-over failed) and the
    // ones after it end early (their input ended): its error is the one to report.
    written?;
    let report = folded?;
    read?;
    report.ok_or_else(|| AdapterError::Internal {
        detail: "the rebuild's fold stopped early while its writer finished".to_owned(),
    })
}

fn stopped(stage: &str, e: &tokio::task::JoinError) -> AdapterError {
    AdapterError::Internal {
        detail: format!("the rebuild's {stage} stage stopped: {e}"),
    }
}

/// The reading stage: streams every event row, handing them on in chunks. Returns early, and
/// without an error, when the fold has stopped.
async fn read(
    db: &Db,
    chunks: &mpsc::Sender<Vec<EventRow>>,
    progress: &mut impl FnMut(u64),
) -> Result<(), AdapterError> {
    let mut rows = db.stream_all_rows();
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut read: u64 = 0;
    while let Some(row) = rows.try_next().await? {
        chunk.push(row);
        if chunk.len() == CHUNK {
            read += CHUNK as u64;
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if chunks.send(full).await.is_err() {
                return Ok(());
            }
            progress(read);
        }
    }
    read += chunk.len() as u64;
    if !chunk.is_empty() && chunks.send(chunk).await.is_err() {
        return Ok(());
    }
    progress(read);
    Ok(())
}

/// The workspace being folded: its id, state, last sequence and head hash.
struct Current {
    workspace: WorkspaceId,
    state: Workspace,
    sequence: u64,
    head: String,
}

impl Current {
    fn view(&self) -> BillingView {
        BillingView::from_state(&self.workspace, &self.state, self.sequence, &self.head)
    }
}

/// The folding stage: decodes and folds every row it is handed, in order, handing on a rendered
/// batch every [`BATCH`] trail entries. `None` when the writer stopped before it finished.
fn fold<R: Rendered>(
    mut chunks: mpsc::Receiver<Vec<EventRow>>,
    batches: &mpsc::Sender<R>,
) -> Result<Option<RebuildReport>, AdapterError> {
    let mut report = RebuildReport {
        events: 0,
        workspaces: 0,
    };
    let mut current: Option<Current> = None;
    let mut rendered = R::default();
    while let Some(chunk) = chunks.blocking_recv() {
        for row in &chunk {
            report.events += 1;
            let entry = decode(row.fields()?)?;
            if current.as_ref().map(|c| c.workspace.as_str()) != Some(entry.workspace_id) {
                if let Some(done) = current.take() {
                    rendered.view(done.view());
                    report.workspaces += 1;
                }
                current = Some(Current {
                    workspace: parse(entry.workspace_id, "aggregate_id", entry.workspace_id)?,
                    state: Workspace::default(),
                    sequence: 0,
                    head: String::new(),
                });
            }
            if let Some(c) = current.as_mut() {
                evolve(c, &entry)?;
                rendered.entry(&c.workspace, &entry)?;
            }
        }
        if rendered.entries() >= BATCH {
            let next = rendered.next();
            if batches
                .blocking_send(std::mem::replace(&mut rendered, next))
                .is_err()
            {
                return Ok(None);
            }
        }
    }
    if let Some(done) = current.take() {
        rendered.view(done.view());
        report.workspaces += 1;
    }
    if batches.blocking_send(rendered).is_err() {
        return Ok(None);
    }
    Ok(Some(report))
}

/// What the views take from one event row: the event, and the metadata as its text, borrowed
/// from the row.
struct Entry<'a> {
    workspace_id: &'a str,
    sequence: u64,
    event: WorkspaceEvent,
    metadata: MetadataText<'a>,
    actor_role: Role,
    /// `occurred_at` in the form the views store ([`rfc3339`]).
    occurred_at: Cow<'a, str>,
}

/// Decodes what the views need from `row`, without recomputing its hash: the log is verified on
/// load, on import and by audits, and a rebuild only needs the events. The metadata stays
/// borrowed text (only the role is parsed), and `occurred_at` is used as stored when it is
/// already in the views' form, which is the form this library writes.
///
/// # Errors
/// [`StoreError::Integrity`](billing_store::StoreError::Integrity) naming the workspace and
/// sequence, with the store's own words for what is wrong.
fn decode(row: RowRef<'_>) -> Result<Entry<'_>, AdapterError> {
    let integrity = |detail: String| -> AdapterError {
        billing_store::StoreError::Integrity {
            workspace: row.aggregate_id.to_owned(),
            detail: format!("sequence {}: {detail}", row.sequence),
        }
        .into()
    };
    let fast = (row.aggregate_type == AGGREGATE_TYPE
        && billing_store::record::is_current_version(row.event_type, row.event_version)
        && row.sequence > 0)
        .then(|| {
            let event: WorkspaceEvent = serde_json::from_str(row.payload).ok()?;
            let metadata: MetadataText<'_> = serde_json::from_str(row.metadata).ok()?;
            let actor_role = metadata.actor_role.parse().ok()?;
            let occurred_at = if is_rfc3339(&metadata.occurred_at) {
                metadata.occurred_at.clone()
            } else {
                Cow::Owned(rfc3339(metadata.occurred_at.parse().ok()?))
            };
            (event.event_type() == row.event_type).then_some((
                event,
                metadata,
                actor_role,
                occurred_at,
            ))
        })
        .flatten();
    if let Some((event, metadata, actor_role, occurred_at)) = fast {
        return Ok(Entry {
            workspace_id: row.aggregate_id,
            sequence: row.sequence,
            event,
            metadata,
            actor_role,
            occurred_at,
        });
    }
    // Anything else is decoded by the store, which upcasts what it can and words what it cannot.
    let stored = decode_unverified(row).map_err(|e| integrity(e.to_string()))?;
    let text = serde_json::from_str(row.metadata).map_err(|e| integrity(e.to_string()))?;
    Ok(Entry {
        workspace_id: row.aggregate_id,
        sequence: stored.sequence,
        actor_role: stored.metadata.actor_role,
        occurred_at: Cow::Owned(rfc3339(stored.metadata.occurred_at)),
        event: stored.event,
        metadata: text,
    })
}

/// Whether `text` is an instant exactly as [`rfc3339`] writes it: UTC with `Z`, a four-digit
/// year, and a fraction of 3, 6 or 9 digits only when it is not zero in its last three digits.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let fraction = match b.len() {
        20 => 0,
        24 => 3,
        27 => 6,
        30 => 9,
        _ => return false,
    };
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (fraction == 0
            || (b[19] == b'.'
                && digits(20..20 + fraction)
                && &b[17 + fraction..20 + fraction] != b"000"))
        && b[b.len() - 1] == b'Z'
}

/// Applies `entry`, the next event of `c`'s stream.
fn evolve(c: &mut Current, entry: &Entry<'_>) -> Result<(), AdapterError> {
    let integrity = |detail: String| -> AdapterError {
        billing_store::StoreError::Integrity {
            workspace: c.workspace.as_str().to_owned(),
            detail,
        }
        .into()
    };
    if entry.sequence != c.sequence + 1 {
        return Err(integrity(format!(
            "sequence {} after {}",
            entry.sequence, c.sequence
        )));
    }
    let next = c
        .state
        .evolve(&entry.event)
        .map_err(|e| integrity(format!("sequence {}: {e}", entry.sequence)))?;
    c.state = next;
    c.sequence = entry.sequence;
    c.head.clear();
    c.head.push_str(&entry.metadata.hash);
    Ok(())
}

/// The PostgreSQL writing stage: every batch by `COPY`, all in one transaction.
async fn write_postgres(
    pool: PgPool,
    mut batches: mpsc::Receiver<CopyText>,
) -> Result<(), AdapterError> {
    let mut tx = pool.begin().await?;
    while let Some(batch) = batches.recv().await {
        for (table, columns, text) in [
            ("billing_view_next", VIEW_COLUMNS, batch.views),
            ("audit_trail_next", TRAIL_COLUMNS, batch.trail),
        ] {
            if text.is_empty() {
                continue;
            }
            let statement = format!("COPY {table} ({columns}) FROM STDIN");
            let mut copy = tx.copy_in_raw(&statement).await?;
            copy.send(text.into_bytes()).await?;
            copy.finish().await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The SQLite writing stage: each batch by multi-row `INSERT`s, in a transaction of its own.
async fn write_sqlite(
    pool: SqlitePool,
    mut batches: mpsc::Receiver<Rows>,
) -> Result<(), AdapterError> {
    while let Some(batch) = batches.recv().await {
        insert_sqlite(&pool, &batch).await?;
    }
    Ok(())
}

async fn insert_sqlite(pool: &SqlitePool, batch: &Rows) -> Result<(), AdapterError> {
    let mut tx = pool.begin().await?;
    for chunk in batch.views.chunks(500) {
        let columns: Vec<ViewColumns<'_>> = chunk.iter().map(ViewColumns::of).collect();
        let sql = insert_values("billing_view_next", VIEW_COLUMNS, VIEW_WIDTH, columns.len());
        let mut q = sqlx::query(&sql);
        for c in &columns {
            q = bind_view(q, c);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in batch.trail.chunks(1000) {
        let columns: Vec<TrailColumns<'_>> = chunk.iter().map(TrailColumns::of).collect();
        let sql = insert_values("audit_trail_next", TRAIL_COLUMNS, 7, columns.len());
        let mut q = sqlx::query(&sql);
        for c in &columns {
            q = bind_trail(q, c);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `INSERT INTO table (columns) VALUES (?, …), …` for `rows` rows of `width` values.
fn insert_values(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    format!(
        "INSERT INTO {table} ({columns}) VALUES {}",
        vec![row; rows].join(",")
    )
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::{insert_values, is_rfc3339};
    use billing_domain::instant::rfc3339;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Every instant as the views write it is taken as stored, and nothing else is: text
        /// that is taken must be exactly what writing its instant gives.
        #[test]
        fn the_stored_form_is_recognised_exactly(
            seconds in -62_135_596_800i64..253_402_300_799,
            nanos in prop_oneof![Just(0u32), (0u32..1_000).prop_map(|m| m * 1_000_000),
                                 (0u32..1_000_000).prop_map(|u| u * 1_000), 0u32..1_000_000_000],
            edit in 0usize..6,
        ) {
            let instant = DateTime::<Utc>::from_timestamp(seconds, nanos).unwrap_or_default();
            let written = rfc3339(instant);
            prop_assert!(is_rfc3339(&written), "{written}");
            // Other spellings of the same or another instant.
            let other = match edit {
                0 => written.replace('Z', "+00:00"),
                1 => written.replace('Z', "z"),
                2 => written.replace('Z', ".000Z"),
                3 => written.replace('Z', "0Z"),
                4 => written.replace('T', " "),
                _ => written.replacen(|c: char| c.is_ascii_digit(), "x", 1),
            };
            if is_rfc3339(&other) {
                let parsed: DateTime<Utc> = other.parse().map_err(|e| TestCaseError::fail(format!("{other}: {e}")))?;
                prop_assert_eq!(rfc3339(parsed), other);
            }
        }
    }

    #[test]
    fn other_spellings_are_not_taken_as_stored() {
        for text in [
            "2026-11-27T09:00:00.5Z",
            "2026-11-27T09:00:00.000Z",
            "2026-11-27T09:00:00.100000Z",
            "2026-11-27T09:00:00.250000000Z",
            "2026-11-27T09:00:00+00:00",
            "+12026-11-27T09:00:00Z",
            "2026-11-27",
            "",
        ] {
            assert!(!is_rfc3339(text), "{text}");
        }
        for text in [
            "2026-11-27T09:00:00Z",
            "2026-11-27T09:00:00.250Z",
            "2026-11-27T09:00:00.000001Z",
        ] {
            assert!(is_rfc3339(text), "{text}");
        }
    }

    #[test]
    fn inserts_name_their_columns() {
        assert_eq!(
            insert_values("t", "a, b", 2, 2),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?)"
        );
    }
}
