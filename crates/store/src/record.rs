//! Stored events: their metadata, their line form (export/import and database rows), and the
//! decoding of a line back into a domain event.

use billing_domain::{ActorId, ExternalId, Role, WorkspaceEvent, WorkspaceId, EVENT_VERSION};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::chain::{event_hash, HashInput};

/// The aggregate type of every workspace stream.
pub const AGGREGATE_TYPE: &str = "workspace";

/// The metadata of every stored event. All values are strings, so cqrs-es readers
/// (`HashMap<String, String>`) can read it too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMetadata {
    /// Who sent the command.
    pub actor_id: ActorId,
    /// The role they held.
    pub actor_role: Role,
    /// The command's id.
    pub command_id: ExternalId,
    /// SHA-256 of the command's content (workspace, actor, action): re-sending the id with other
    /// content is refused.
    pub command_hash: String,
    /// When the command took effect (the injected clock).
    pub occurred_at: DateTime<Utc>,
    /// When the store recorded it (the store's clock).
    pub recorded_at: DateTime<Utc>,
    /// The previous event's hash in this workspace (`GENESIS_HASH` for the first).
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// A domain event as stored, with its place in the stream and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Its sequence in the workspace's stream, from 1.
    pub sequence: u64,
    /// The event.
    pub event: WorkspaceEvent,
    /// Its metadata.
    pub metadata: EventMetadata,
}

/// One stored event as a JSON Lines line (SPEC §5), with payload and metadata kept as the exact
/// stored text so export → import → export is byte-identical.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventLine {
    /// Always `workspace`.
    pub aggregate_type: String,
    /// The workspace id.
    pub aggregate_id: String,
    /// The sequence number.
    pub sequence: u64,
    /// The event type.
    pub event_type: String,
    /// The event version.
    pub event_version: String,
    /// The payload, as stored.
    pub payload: Box<RawValue>,
    /// The metadata, as stored.
    pub metadata: Box<RawValue>,
}

/// Why a line does not decode into an event; each maps to an audit finding code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or not the line shape, or fields of the wrong type (`malformed-line`).
    Malformed(String),
    /// An aggregate or event type this library does not know (`unknown-event`).
    UnknownEvent(String),
    /// An event version with no upcaster (`unsupported-version`).
    UnsupportedVersion(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(m)
            | DecodeError::UnknownEvent(m)
            | DecodeError::UnsupportedVersion(m) => f.write_str(m),
        }
    }
}

/// A decoded line: the event, its metadata, and the hash recomputed from the content.
#[derive(Clone, Debug)]
pub struct DecodedEvent {
    /// The event as stored.
    pub stored: StoredEvent,
    /// The hash recomputed from the line's content (compare with `metadata.hash`).
    pub computed_hash: String,
}

/// Brings a stored payload of an older `event_version` to the current shape.
///
/// Every event is at version 1.0 today, so this only accepts 1.0. When a shape changes, add its
/// new version to `EVENT_VERSION` and a match arm here that rewrites the old payload, with a test
/// that an old log still replays.
pub fn upcast(event_type: &str, event_version: &str, payload: Value) -> Result<Value, DecodeError> {
    match event_version {
        v if v == EVENT_VERSION => Ok(payload),
        other => Err(DecodeError::UnsupportedVersion(format!(
            "{event_type} version {other} is not supported (this library reads {EVENT_VERSION})"
        ))),
    }
}

/// Decodes one line's fields: checks the types, upcasts, parses payload and metadata, and
/// recomputes the hash.
///
/// # Errors
/// [`DecodeError`] saying what is wrong.
pub fn decode(
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: u64,
    event_type: &str,
    event_version: &str,
    payload: &str,
    metadata: &str,
) -> Result<DecodedEvent, DecodeError> {
    if aggregate_type != AGGREGATE_TYPE {
        return Err(DecodeError::UnknownEvent(format!(
            "aggregate type {aggregate_type:?} is not {AGGREGATE_TYPE:?}"
        )));
    }
    if !WorkspaceEvent::TYPES.contains(&event_type) {
        return Err(DecodeError::UnknownEvent(format!(
            "unknown event type {event_type:?}"
        )));
    }
    let workspace_id = WorkspaceId::parse(aggregate_id)
        .map_err(|e| DecodeError::Malformed(format!("aggregate_id: {e}")))?;
    if sequence == 0 {
        return Err(DecodeError::Malformed("sequence must start at 1".into()));
    }
    let payload: Value = serde_json::from_str(payload)
        .map_err(|e| DecodeError::Malformed(format!("payload is not JSON: {e}")))?;
    let payload = upcast(event_type, event_version, payload)?;
    let event = WorkspaceEvent::deserialize(&payload)
        .map_err(|e| DecodeError::Malformed(format!("payload is not a {event_type}: {e}")))?;
    if event.event_type() != event_type {
        return Err(DecodeError::Malformed(format!(
            "event_type says {event_type} but the payload is a {}",
            event.event_type()
        )));
    }
    let mut meta_value: Value = serde_json::from_str(metadata)
        .map_err(|e| DecodeError::Malformed(format!("metadata is not JSON: {e}")))?;
    let meta = EventMetadata::deserialize(&meta_value)
        .map_err(|e| DecodeError::Malformed(format!("metadata: {e}")))?;
    if let Value::Object(map) = &mut meta_value {
        map.remove("hash");
    }
    let computed_hash = event_hash(HashInput {
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload: &payload,
        metadata_without_hash: &meta_value,
    });
    Ok(DecodedEvent {
        stored: StoredEvent {
            workspace_id,
            sequence,
            event,
            metadata: meta,
        },
        computed_hash,
    })
}

impl EventLine {
    /// Decodes the line.
    ///
    /// # Errors
    /// [`DecodeError`] saying what is wrong.
    pub fn decode(&self) -> Result<DecodedEvent, DecodeError> {
        decode(
            &self.aggregate_type,
            &self.aggregate_id,
            self.sequence,
            &self.event_type,
            &self.event_version,
            self.payload.get(),
            self.metadata.get(),
        )
    }
}
