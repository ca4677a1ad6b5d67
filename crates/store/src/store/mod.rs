//! [`BillingStore`]: the command executor over a database.
//!
//! The command path: take the workspace's state from the cache (or load and verify its stream),
//! decide with the domain, then append the events, the new head and the idempotency record in one
//! round trip, conditioned on the sequence the decision saw. A concurrent writer makes that
//! append fail on the primary key; the cache entry is dropped and the caller gets
//! [`StoreError::Conflict`] (the retry helper reloads and decides again). A refusal is checked
//! against the stored head first, so a stale cache never refuses a command either. What the
//! domain answers that is no refusal becomes its own error: an outside system that did not
//! answer [`StoreError::PortUnavailable`], a stored history it cannot decide on
//! [`StoreError::Integrity`], anything else [`StoreError::Internal`].

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use billing_domain::{
    Action, Workspace, WorkspaceCommand, WorkspaceEvent, WorkspaceId, WorkspaceServices,
};
use lru::LruCache;
use sha2::{Digest, Sha256};

mod expecting;
mod load;

pub use self::load::load_workspace;
use self::load::{check_head, decode_row, fold_rows};
use crate::chain::{canonical, event_hash_of_canonical, hex_digest, GENESIS_HASH};
use crate::db::{Append, AppendError, CommandRecord, Db, ImportHook, NewRow, StoreOptions};
use crate::error::{domain_refusal, StoreError};
use crate::record::{EventMetadata, MetadataText, RowRef, StoredEvent, AGGREGATE_TYPE};

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The events the command wrote, as stored.
    pub events: Vec<StoredEvent>,
    /// True when the command id had already been executed and this is its original outcome.
    pub replayed: bool,
}

/// A command the store just committed, as a [`CommitListener`] sees it.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The workspace.
    pub workspace: &'a WorkspaceId,
    /// Its state after the command.
    pub state: &'a Workspace,
    /// The events the command wrote.
    pub events: &'a [StoredEvent],
    /// The workspace's new head hash.
    pub head: &'a str,
}

/// Hears about every command the store commits, right after the commit (projections, outboxes).
///
/// Called on the command path: it must not block; queue the work and return. A listener that
/// misses a commit (a crash between commit and projection) catches up from the log: the store
/// is the source of truth, listeners only follow it.
pub trait CommitListener: Send + Sync {
    /// A command was committed.
    fn committed(&self, commit: &Commit<'_>);
}

/// How often and how patiently [`BillingStore::execute_with_retry`] retries conflicts.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// The first delay; each further one doubles, with full jitter.
    pub min_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 8,
            min_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(200),
        }
    }
}

#[derive(Clone, Debug)]
struct Cached {
    state: Workspace,
    sequence: u64,
    head: String,
}

/// A workspace-billing store: executes commands against a database, durably and idempotently.
pub struct BillingStore {
    db: Db,
    services: WorkspaceServices,
    /// The store's own clock, for `recorded_at` (the services' clock stamps `occurred_at`).
    recorder: Arc<dyn billing_domain::Clock>,
    listener: Option<Arc<dyn CommitListener>>,
    import_hook: Option<Arc<dyn ImportHook>>,
    cache: Mutex<LruCache<String, Arc<Cached>>>,
}

impl std::fmt::Debug for BillingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingStore")
            .field("backend", &self.db.kind())
            .finish_non_exhaustive()
    }
}

/// The hash of a command's content: which workspace, who, and what — not when, and not its id.
///
/// It is SHA-256 (lowercase hex) of the JSON of `[workspace, actor, action]` as `serde_json`
/// writes these types — a stable form as long as the types keep their shape (like events).
pub fn command_hash(workspace: &WorkspaceId, command: &WorkspaceCommand) -> String {
    let mut hasher = Sha256Writer(Sha256::new());
    // Writing into a hasher cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(&mut hasher, &(workspace, &command.actor, &command.action));
    hex_digest(hasher.0.finalize().as_slice())
}

/// Feeds `serde_json`'s output straight into a hasher, with no buffer in between.
struct Sha256Writer(Sha256);

impl std::io::Write for Sha256Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BillingStore {
    /// Opens the store at `url` (`postgres://…`, `sqlite://PATH`, `sqlite::memory:`), creating
    /// the schema on first use.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`], [`StoreError::Unavailable`], [`StoreError::Migration`].
    pub async fn open(url: &str, services: WorkspaceServices) -> Result<Self, StoreError> {
        Self::open_with(url, services, StoreOptions::default()).await
    }

    /// [`BillingStore::open`] with options.
    ///
    /// # Errors
    /// As [`BillingStore::open`].
    pub async fn open_with(
        url: &str,
        services: WorkspaceServices,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let db = Db::connect(url, &options).await?;
        Ok(Self::from_db(db, services, &options))
    }

    /// A store over an already connected (and migrated) database.
    pub fn from_db(db: Db, services: WorkspaceServices, options: &StoreOptions) -> Self {
        let capacity = NonZeroUsize::new(options.cache_capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            db,
            services,
            recorder: Arc::new(crate::clock::SystemClock),
            listener: None,
            import_hook: None,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// A store over an existing PostgreSQL pool; applies the migrations.
    ///
    /// # Errors
    /// [`StoreError::Migration`].
    pub async fn from_pg_pool(
        pool: sqlx::PgPool,
        services: WorkspaceServices,
    ) -> Result<Self, StoreError> {
        let options = StoreOptions::default();
        let db = Db::from_pg_pool(pool, &options).await?;
        Ok(Self::from_db(db, services, &options))
    }

    /// Stamps `recorded_at` with `clock` instead of the system clock. The services' clock stamps
    /// when a command happens (`occurred_at`, which `--now` moves); this one, when the store
    /// recorded it, so an auditor sees both.
    pub fn with_recording_clock(mut self, clock: Arc<dyn billing_domain::Clock>) -> Self {
        self.recorder = clock;
        self
    }

    /// Tells `listener` about every command committed from now on.
    pub fn with_listener(mut self, listener: Arc<dyn CommitListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Runs `hook` inside every import's transaction, after its rows are written (the adapters
    /// record what an imported log means for their tables).
    pub fn with_import_hook(mut self, hook: Arc<dyn ImportHook>) -> Self {
        self.import_hook = Some(hook);
        self
    }

    /// The import hook, if any.
    pub(crate) fn import_hook(&self) -> Option<&dyn ImportHook> {
        self.import_hook.as_deref()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The services commands are decided with.
    pub fn services(&self) -> &WorkspaceServices {
        &self.services
    }

    fn cache_get(&self, workspace: &str) -> Option<Arc<Cached>> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(workspace)
            .cloned()
    }

    fn cache_put(&self, workspace: &str, entry: Cached) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        // Never move a cached stream backwards (a slower writer finishing after a faster one).
        if cache
            .peek(workspace)
            .is_some_and(|c| c.sequence > entry.sequence)
        {
            return;
        }
        cache.put(workspace.to_owned(), Arc::new(entry));
    }

    fn cache_drop(&self, workspace: &str) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop(workspace);
    }

    /// Loads and verifies one workspace's stream: contiguous sequences from 1, every hash and
    /// link, every transition, and the recorded head.
    ///
    /// # Errors
    /// [`StoreError::Integrity`] naming the first problem; [`StoreError::Database`].
    pub async fn load(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<(Workspace, Vec<StoredEvent>), StoreError> {
        load_workspace(&self.db, workspace).await
    }

    async fn current(
        &self,
        workspace: &WorkspaceId,
        fresh: bool,
    ) -> Result<Arc<Cached>, StoreError> {
        if !fresh {
            if let Some(hit) = self.cache_get(workspace.as_str()) {
                return Ok(hit);
            }
        }
        let (rows, head) = self.db.load_stream(workspace.as_str()).await?;
        let (state, sequence, hash) = fold_rows(workspace.as_str(), &rows, |_| {})?;
        check_head(workspace.as_str(), sequence, &hash, head.as_ref())?;
        let entry = Cached {
            state,
            sequence,
            head: hash,
        };
        self.cache_put(workspace.as_str(), entry.clone());
        Ok(Arc::new(entry))
    }

    /// The workspace's current state (from the cache when it has it).
    ///
    /// # Errors
    /// As [`BillingStore::load`].
    pub async fn state(&self, workspace: &WorkspaceId) -> Result<Workspace, StoreError> {
        Ok(self.current(workspace, false).await?.state.clone())
    }

    /// The newest hash of the workspace's chain, as the store records it (`None` for a
    /// workspace without events).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn head(&self, workspace: &WorkspaceId) -> Result<Option<String>, StoreError> {
        Ok(self.db.head(workspace.as_str()).await?.map(|h| h.hash))
    }

    /// Executes a command once: decides it on the workspace's current state and appends its
    /// events, or returns the original outcome if its command id was executed before.
    ///
    /// Dropping the returned future (a request timeout) at any point is safe: the command was
    /// then either written whole or not at all, and re-sending it with the same command id tells
    /// which.
    ///
    /// # Errors
    /// [`StoreError::Refused`] (a rule; nothing written), [`StoreError::Conflict`] (a concurrent
    /// writer; nothing written — retry), [`StoreError::CommandIdReused`],
    /// [`StoreError::PortUnavailable`] (nothing written — retry later),
    /// [`StoreError::Integrity`] (the stored history does not verify), and infrastructure
    /// errors ([`StoreError::Unavailable`], [`StoreError::Database`]: the command may have been
    /// written; re-send it with the same id).
    pub async fn execute(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
    ) -> Result<CommandOutcome, StoreError> {
        self.execute_at(workspace, command, None).await
    }

    async fn execute_at(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        expected: Option<u64>,
    ) -> Result<CommandOutcome, StoreError> {
        let hash = command_hash(workspace, command);
        // A request on a workspace this process has not seen is most likely a new workspace: it is
        // decided on an empty stream without a load. If the workspace exists after all, the append
        // conflicts on sequence 1 (or the refusal check sees its head) and it is loaded then.
        let mut assumed_empty = false;
        let mut cached = match expected {
            // Under a condition the command is decided on the stored state it names, never on a
            // cached one another writer may have moved on meanwhile.
            Some(expected) => {
                let fresh = self.current(workspace, true).await?;
                if fresh.sequence != expected {
                    let (record, _) = self
                        .db
                        .command_and_head(command.command_id.as_str(), workspace.as_str())
                        .await?;
                    if let Some(record) = record {
                        return self
                            .original_outcome(workspace, command, &hash, record)
                            .await;
                    }
                    return Err(StoreError::Conflict {
                        workspace: workspace.to_string(),
                        expected,
                        actual: Some(fresh.sequence),
                    });
                }
                fresh
            }
            None => match self.cache_get(workspace.as_str()) {
                Some(hit) => hit,
                None if matches!(command.action, Action::RequestUpgrade { .. }) => {
                    assumed_empty = true;
                    Arc::new(Cached {
                        state: Workspace::default(),
                        sequence: 0,
                        head: GENESIS_HASH.to_owned(),
                    })
                }
                None => self.current(workspace, true).await?,
            },
        };
        let mut reloaded = false;
        loop {
            let events = match billing_domain::execute(&cached.state, command, &self.services).await
            {
                Ok(events) => events,
                Err(answer) => {
                    // What refuses nothing the user can fix is its own error, at once.
                    let refusal = domain_refusal(workspace.as_str(), answer)?;
                    let (record, head_sequence) = self
                        .db
                        .command_and_head(command.command_id.as_str(), workspace.as_str())
                        .await?;
                    if let Some(record) = record {
                        return self
                            .original_outcome(workspace, command, &hash, record)
                            .await;
                    }
                    if head_sequence != cached.sequence && expected.is_some() {
                        return Err(StoreError::Conflict {
                            workspace: workspace.to_string(),
                            expected: cached.sequence,
                            actual: Some(head_sequence),
                        });
                    }
                    if head_sequence != cached.sequence && !reloaded {
                        // Decided on a stale state: decide again on the stored one.
                        reloaded = true;
                        cached = self.current(workspace, true).await?;
                        continue;
                    }
                    return Err(StoreError::Refused(refusal));
                }
            };
            match self
                .commit(workspace, command, &hash, &cached, events)
                .await
            {
                Committed::Done(outcome) => return outcome,
                Committed::Conflict if assumed_empty && !reloaded && expected.is_none() => {
                    reloaded = true;
                    cached = self.current(workspace, true).await?;
                }
                Committed::Conflict => {
                    self.cache_drop(workspace.as_str());
                    return Err(StoreError::Conflict {
                        workspace: workspace.to_string(),
                        expected: cached.sequence,
                        actual: None,
                    });
                }
            }
        }
    }

    /// Writes the events a command was decided to, on the state it was decided on. Everything
    /// that can fail without the database — encoding, chaining, folding the new state — is done
    /// before the append, so after a successful append nothing is left that could turn a
    /// written command into an error.
    async fn commit(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        hash: &str,
        cached: &Cached,
        events: Vec<WorkspaceEvent>,
    ) -> Committed {
        let prepared = self
            .prepare(workspace, command, hash, cached, events)
            .and_then(|(rows, stored, head)| {
                let state = fold_decided(workspace, &cached.state, &stored)?;
                Ok((rows, stored, head, state))
            });
        let (rows, stored, head, state) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Committed::Done(Err(e)),
        };
        let append = Append {
            workspace: workspace.to_string(),
            rows,
            head_hash: head.clone(),
            command_id: command.command_id.to_string(),
            command_hash: hash.to_owned(),
        };
        match self.db.append(append).await {
            Ok(()) => {
                let sequence = stored.last().map_or(cached.sequence, |e| e.sequence);
                if let Some(listener) = &self.listener {
                    listener.committed(&Commit {
                        workspace,
                        state: &state,
                        events: &stored,
                        head: &head,
                    });
                }
                self.cache_put(
                    workspace.as_str(),
                    Cached {
                        state,
                        sequence,
                        head,
                    },
                );
                Committed::Done(Ok(CommandOutcome {
                    workspace_id: workspace.clone(),
                    events: stored,
                    replayed: false,
                }))
            }
            Err(AppendError::DuplicateCommand) => {
                self.cache_drop(workspace.as_str());
                let outcome = match self
                    .db
                    .command_and_head(command.command_id.as_str(), workspace.as_str())
                    .await
                {
                    Ok((Some(record), _)) => {
                        self.original_outcome(workspace, command, hash, record)
                            .await
                    }
                    // The record that refused the id is gone from view: a concurrent import's
                    // or a conflict's doing; the retry helper decides again.
                    Ok((None, _)) => return Committed::Conflict,
                    Err(e) => Err(e),
                };
                Committed::Done(outcome)
            }
            Err(AppendError::Conflict) => Committed::Conflict,
            Err(fault) => {
                // Whether it was written is unknown: forget the cached state.
                self.cache_drop(workspace.as_str());
                Committed::Done(Err(match fault {
                    AppendError::Unavailable { url, reason } => {
                        StoreError::Unavailable { url, reason }
                    }
                    AppendError::Database(e) => StoreError::Database(e),
                    AppendError::Internal(detail) => StoreError::Internal { detail },
                    AppendError::Conflict | AppendError::DuplicateCommand => {
                        StoreError::internal("an append rejection was taken for a fault")
                    }
                }))
            }
        }
    }

    /// [`BillingStore::execute`], retrying conflicts up to `policy.max_retries` times with
    /// exponential backoff and full jitter; each retry reloads the workspace and decides again.
    ///
    /// # Errors
    /// As [`BillingStore::execute`]; [`StoreError::Conflict`] only after the last retry.
    pub async fn execute_with_retry(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        policy: RetryPolicy,
    ) -> Result<CommandOutcome, StoreError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter();
        (|| self.execute(workspace, command))
            .retry(backoff)
            .when(StoreError::is_conflict)
            .await
    }

    async fn original_outcome(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        hash: &str,
        record: CommandRecord,
    ) -> Result<CommandOutcome, StoreError> {
        if record.command_hash != hash {
            return Err(StoreError::CommandIdReused {
                command_id: command.command_id.to_string(),
                workspace: record.workspace,
            });
        }
        let rows = self
            .db
            .events_range(
                workspace.as_str(),
                record.first_sequence,
                record.last_sequence,
            )
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(decode_row(row)?.0);
        }
        Ok(CommandOutcome {
            workspace_id: workspace.clone(),
            events,
            replayed: true,
        })
    }

    /// Builds the rows (canonical payload and metadata text, chained hashes) for `events`.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        workspace: &WorkspaceId,
        command: &WorkspaceCommand,
        hash: &str,
        cached: &Cached,
        events: Vec<WorkspaceEvent>,
    ) -> Result<(Vec<NewRow>, Vec<StoredEvent>, String), StoreError> {
        let recorded_at = self.recorder.now();
        let mut prev = cached.head.clone();
        let mut rows = Vec::with_capacity(events.len());
        let mut stored = Vec::with_capacity(events.len());
        let recorded = timestamp(recorded_at);
        for (i, event) in events.into_iter().enumerate() {
            let sequence = cached.sequence + 1 + i as u64;
            // Event structs list their fields in byte order: this is canonical JSON already.
            let payload = serde_json::to_string(&event).map_err(encode_error)?;
            debug_assert_eq!(
                Some(payload.as_str()),
                serde_json::to_value(&event)
                    .ok()
                    .map(|v| canonical(&v))
                    .as_deref(),
                "the serialized event is not canonical JSON"
            );
            let occurred = timestamp(event.occurred_at());
            let mut text = MetadataText {
                actor_id: Cow::Borrowed(command.actor.id.as_str()),
                actor_role: Cow::Borrowed(command.actor.role.as_str()),
                command_hash: Cow::Borrowed(hash),
                command_id: Cow::Borrowed(command.command_id.as_str()),
                hash: Cow::Borrowed(""),
                occurred_at: Cow::Borrowed(&occurred),
                prev_hash: Cow::Borrowed(&prev),
                recorded_at: Cow::Borrowed(&recorded),
            };
            let mut without_hash = String::with_capacity(400);
            text.write(false, &mut without_hash);
            let event_hash = event_hash_of_canonical(RowRef {
                aggregate_type: AGGREGATE_TYPE,
                aggregate_id: workspace.as_str(),
                sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: &payload,
                metadata: &without_hash,
            });
            text.hash = Cow::Borrowed(&event_hash);
            let mut metadata_text = String::with_capacity(without_hash.len() + 80);
            text.write(true, &mut metadata_text);
            let metadata = EventMetadata {
                actor_id: command.actor.id.clone(),
                actor_role: command.actor.role,
                command_id: command.command_id.clone(),
                command_hash: hash.to_owned(),
                occurred_at: event.occurred_at(),
                recorded_at,
                prev_hash: prev.clone(),
                hash: event_hash.clone(),
            };
            rows.push(NewRow {
                sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload,
                metadata: metadata_text,
            });
            stored.push(StoredEvent {
                workspace_id: workspace.clone(),
                sequence,
                event,
                metadata,
            });
            prev = event_hash;
        }
        Ok((rows, stored, prev))
    }
}

/// What writing a decided command came to.
enum Committed {
    /// Its outcome: written (or the original outcome of its id), or an error.
    Done(Result<CommandOutcome, StoreError>),
    /// Another writer got there first; nothing was written.
    Conflict,
}

/// The state after `events`, folded onto the state they were decided on — before they are
/// written, so a fold that fails (a bug: the domain decided events it cannot apply) writes
/// nothing and says so.
fn fold_decided(
    workspace: &WorkspaceId,
    state: &Workspace,
    events: &[StoredEvent],
) -> Result<Workspace, StoreError> {
    let mut state = state.clone();
    for e in events {
        state = state.evolve(&e.event).map_err(|refusal| {
            StoreError::internal(format!(
                "workspace {workspace}: the domain decided a {} that does not apply to the state it was decided on ({refusal}); nothing was written",
                e.event.event_type()
            ))
        })?;
    }
    Ok(state)
}

/// A timestamp exactly as serde writes `DateTime<Utc>` (RFC 3339, `Z`, fractional seconds in
/// groups of three digits only when present).
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn encode_error(e: serde_json::Error) -> StoreError {
    StoreError::internal(format!(
        "an event could not be encoded: {e}; nothing was written"
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace, ManualClock};
    use billing_domain::*;
    use chrono::{TimeZone, Utc};

    use super::{BillingStore, Cached, Committed, StoreError, GENESIS_HASH};

    /// Events that do not fold onto the state they were decided on (a domain bug) are refused
    /// before anything is written, as an internal error that says so. Before issue 9 the fold
    /// came after the append, and its failure was reported as a rule refusal — "nothing
    /// written" — for a command that had been committed.
    #[tokio::test]
    async fn events_that_do_not_fold_are_an_internal_error_and_write_nothing() {
        let at = Utc.timestamp_opt(1_764_000_000, 0).single().unwrap();
        let services = WorkspaceServices {
            expense_center: Arc::new(InMemoryExpenseCenter::new()),
            marketplace: Arc::new(InMemoryMarketplace::new()),
            policy: Arc::new(SitePolicy::builtin()),
            clock: Arc::new(ManualClock::new(at)),
        };
        let store = BillingStore::open("sqlite::memory:", services)
            .await
            .unwrap();
        let workspace = WorkspaceId::parse("acme").unwrap();
        let alice = ActorId::parse("alice").unwrap();
        let command = WorkspaceCommand::new(
            ExternalId::parse("c1").unwrap(),
            Actor::new(alice.clone(), Role::Owner),
            Action::AcceptAgreement {
                version: AgreementVersion::parse("2024-06").unwrap(),
            },
        );
        // An upgrade of a workspace that never asked for one.
        let upgraded = WorkspaceEvent::PlanUpgraded(PlanUpgraded {
            agreement_version: AgreementVersion::parse("2024-06").unwrap(),
            at,
            by: alice,
            settlement: Settlement::Enterprise {
                user_name: UserName::parse("acme-finance").unwrap(),
            },
            site: SiteId::parse("cn1").unwrap(),
        });
        let empty = Cached {
            state: Workspace::default(),
            sequence: 0,
            head: GENESIS_HASH.to_owned(),
        };
        let hash = super::command_hash(&workspace, &command);
        let outcome = store
            .commit(&workspace, &command, &hash, &empty, vec![upgraded])
            .await;
        let Committed::Done(Err(err @ StoreError::Internal { .. })) = outcome else {
            panic!("expected an internal error");
        };
        assert!(err.to_string().contains("nothing was written"), "{err}");
        assert!(err.domain().is_none(), "not a rule refusal: {err}");
        assert_eq!(store.db().count_events().await.unwrap(), 0);
        assert_eq!(store.db().head("acme").await.unwrap(), None);
    }

    #[test]
    fn timestamps_are_written_exactly_as_serde_writes_them() {
        for (secs, nanos) in [
            (0, 0),
            (1_764_000_000, 250_000_000),
            (1_764_000_001, 1),
            (4_102_444_800, 123_456_789),
            (1_700_000_000, 120_000),
        ] {
            let t = Utc.timestamp_opt(secs, nanos).single().unwrap();
            let serde = serde_json::to_value(t).unwrap();
            assert_eq!(serde.as_str(), Some(super::timestamp(t).as_str()), "{t:?}");
        }
    }
}
