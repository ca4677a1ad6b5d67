//! Stored events: their metadata, their line form (export/import and database rows), and the
//! decoding of a line back into a domain event.

use std::borrow::Cow;

use billing_domain::{ActorId, DomainError, ExternalId, Role, WorkspaceEvent, WorkspaceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::chain::{event_hash, event_hash_of_canonical, write_string_object, HashInput};

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
#[serde(deny_unknown_fields)]
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
    /// `billing events` only: the event's place in the commit order, `transaction.position`
    /// ([`crate::Position`]). Exports have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

/// One stored event as its seven stored fields — a row of the `events` table, a JSON Lines line —
/// with payload and metadata as their exact stored text.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRow {
    /// The aggregate type (`workspace`).
    pub aggregate_type: String,
    /// The workspace id.
    pub aggregate_id: String,
    /// The sequence in the workspace's stream, from 1.
    #[sqlx(try_from = "i64")]
    pub sequence: u64,
    /// The event type.
    pub event_type: String,
    /// The event version.
    pub event_version: String,
    /// The payload text.
    pub payload: String,
    /// The metadata text.
    pub metadata: String,
}

impl StoredRow {
    /// The row's fields, borrowed.
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: &self.event_version,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }
}

/// The seven stored fields of one event, borrowed (from a [`StoredRow`], a line being read, or
/// the rows the store is about to write).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowRef<'a> {
    /// The aggregate type (`workspace`).
    pub aggregate_type: &'a str,
    /// The workspace id.
    pub aggregate_id: &'a str,
    /// The sequence in the workspace's stream, from 1.
    pub sequence: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The event version.
    pub event_version: &'a str,
    /// The payload text.
    pub payload: &'a str,
    /// The metadata text.
    pub metadata: &'a str,
}

impl EventLineRef<'_> {
    /// The line's fields as a row.
    pub fn row(&self) -> RowRef<'_> {
        RowRef {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: &self.event_version,
            payload: self.payload.get(),
            metadata: self.metadata.get(),
        }
    }
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

/// Brings a stored payload of an older `event_version` to the current shape, with the domain's
/// upcaster ([`billing_domain::upcast`]): `SettlementChanged` 1.0 reads as 2.0 with reason
/// `owner-request`. The stored bytes are never rewritten; the hash is always computed over them.
///
/// # Errors
/// [`DecodeError::UnsupportedVersion`] for a version this release cannot read.
pub fn upcast(event_type: &str, event_version: &str, payload: Value) -> Result<Value, DecodeError> {
    billing_domain::upcast(event_type, event_version, payload).map_err(|e| match e {
        DomainError::UnsupportedEventVersion {
            event_type,
            version,
            reads,
        } => DecodeError::UnsupportedVersion(format!(
            "{event_type} version {version} is not supported (this library reads {reads})"
        )),
        other => DecodeError::UnsupportedVersion(other.to_string()),
    })
}

/// Whether `event_version` is the one this release writes for `event_type` (the fast paths
/// read only those).
pub fn is_current_version(event_type: &str, event_version: &str) -> bool {
    WorkspaceEvent::current_version(event_type) == Some(event_version)
}

/// Decodes one line's fields: checks the types, upcasts, parses payload and metadata, and
/// recomputes the hash.
///
/// # Errors
/// [`DecodeError`] saying what is wrong.
pub fn decode(row: RowRef<'_>) -> Result<DecodedEvent, DecodeError> {
    let RowRef {
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
    } = row;
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
    if is_current_version(event_type, event_version) {
        if let Some(fast) = decode_canonical(row) {
            return Ok(DecodedEvent {
                stored: StoredEvent {
                    workspace_id,
                    sequence,
                    event: fast.0,
                    metadata: fast.1,
                },
                computed_hash: fast.2,
            });
        }
    }
    let stored_payload: Value = serde_json::from_str(payload)
        .map_err(|e| DecodeError::Malformed(format!("payload is not JSON: {e}")))?;
    let payload = upcast(event_type, event_version, stored_payload.clone())?;
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
        // The chain covers the stored bytes, not their upcast reading.
        payload: &stored_payload,
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

/// The metadata as text: the one place that knows its keys and their (canonical, byte) order.
/// The store writes every event's metadata through it, and the fast decoder reads it back with
/// it (values borrowed from the stored JSON where they need no unescaping). Tools that write
/// logs the store's way (benchmarks, generators) use it too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the fields are `EventMetadata`'s, as text
pub struct MetadataText<'a> {
    #[serde(borrow)]
    pub actor_id: Cow<'a, str>,
    #[serde(borrow)]
    pub actor_role: Cow<'a, str>,
    #[serde(borrow)]
    pub command_hash: Cow<'a, str>,
    #[serde(borrow)]
    pub command_id: Cow<'a, str>,
    #[serde(borrow)]
    pub hash: Cow<'a, str>,
    #[serde(borrow)]
    pub occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    pub prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    pub recorded_at: Cow<'a, str>,
}

impl MetadataText<'_> {
    /// Appends the canonical JSON of the metadata to `out`: with its `hash` (as stored), or
    /// without it (what the hash covers).
    pub fn write(&self, with_hash: bool, out: &mut String) {
        let mut fields: [(&str, &str); 8] = [
            ("actor_id", &self.actor_id),
            ("actor_role", &self.actor_role),
            ("command_hash", &self.command_hash),
            ("command_id", &self.command_id),
            ("hash", &self.hash),
            ("occurred_at", &self.occurred_at),
            ("prev_hash", &self.prev_hash),
            ("recorded_at", &self.recorded_at),
        ];
        if with_hash {
            write_string_object(&fields, out);
        } else {
            fields.copy_within(5.., 4);
            write_string_object(&fields[..7], out);
        }
    }
}

/// The fast path of [`decode`], for rows as this library writes them: a payload that is already
/// canonical JSON (the event serializes back to exactly the stored text) and metadata with exactly
/// the known string fields. Then the hash is computed over the stored text itself, with no
/// `serde_json::Value` in between — the same hash the general path computes, because canonical
/// JSON is a fixed point. `None` means "take the general path" (which also words any error).
fn decode_canonical(row: RowRef<'_>) -> Option<(WorkspaceEvent, EventMetadata, String)> {
    let event: WorkspaceEvent = serde_json::from_str(row.payload).ok()?;
    if event.event_type() != row.event_type || serde_json::to_string(&event).ok()? != row.payload {
        return None;
    }
    let text: MetadataText<'_> = serde_json::from_str(row.metadata).ok()?;
    let typed = EventMetadata {
        actor_id: ActorId::parse(&text.actor_id).ok()?,
        actor_role: text.actor_role.parse().ok()?,
        command_id: ExternalId::parse(&text.command_id).ok()?,
        command_hash: text.command_hash.clone().into_owned(),
        occurred_at: text.occurred_at.parse().ok()?,
        recorded_at: text.recorded_at.parse().ok()?,
        prev_hash: text.prev_hash.clone().into_owned(),
        hash: text.hash.clone().into_owned(),
    };
    let mut without_hash = String::with_capacity(row.metadata.len());
    text.write(false, &mut without_hash);
    // The typed metadata must say what the text says (it is parsed from the same text).
    debug_assert_eq!(typed.hash, text.hash);
    let hash = event_hash_of_canonical(RowRef {
        metadata: &without_hash,
        ..row
    });
    Some((event, typed, hash))
}

/// Decodes a stored row without recomputing its hash — for views rebuilt from a log the store
/// already verifies on load and audit.
///
/// # Errors
/// [`DecodeError`] saying what is wrong.
pub fn decode_unverified(row: RowRef<'_>) -> Result<StoredEvent, DecodeError> {
    let fast = (row.aggregate_type == AGGREGATE_TYPE
        && is_current_version(row.event_type, row.event_version))
    .then(|| {
        let event: WorkspaceEvent = serde_json::from_str(row.payload).ok()?;
        let meta: EventMetadata = serde_json::from_str(row.metadata).ok()?;
        let workspace_id = WorkspaceId::parse(row.aggregate_id).ok()?;
        (event.event_type() == row.event_type && row.sequence > 0).then_some(StoredEvent {
            workspace_id,
            sequence: row.sequence,
            event,
            metadata: meta,
        })
    })
    .flatten();
    match fast {
        Some(stored) => Ok(stored),
        None => decode(row).map(|d| d.stored),
    }
}

/// A JSON Lines line read without copying: strings and the raw payload and metadata borrow from
/// the line (strings with escapes are the exception).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLineRef<'a> {
    /// Always `workspace`.
    #[serde(borrow)]
    pub aggregate_type: Cow<'a, str>,
    /// The workspace id.
    #[serde(borrow)]
    pub aggregate_id: Cow<'a, str>,
    /// The sequence number.
    pub sequence: u64,
    /// The event type.
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    /// The event version.
    #[serde(borrow)]
    pub event_version: Cow<'a, str>,
    /// The payload, as stored.
    #[serde(borrow)]
    pub payload: &'a RawValue,
    /// The metadata, as stored.
    #[serde(borrow)]
    pub metadata: &'a RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::GENESIS_HASH;
    use billing_domain::{SiteId, UpgradeRequested};

    fn row() -> (String, String) {
        let event = WorkspaceEvent::UpgradeRequested(UpgradeRequested {
            at: "2026-11-27T09:00:00.250Z".parse().unwrap(),
            by: ActorId::parse("alice").unwrap(),
            site: SiteId::parse("cn1").unwrap(),
        });
        let payload = serde_json::to_string(&event).unwrap();
        let mut meta = String::new();
        write_string_object(
            &[
                ("actor_id", "alice"),
                ("actor_role", "owner"),
                ("command_hash", "h"),
                ("command_id", "c1"),
                ("hash", "x"),
                ("occurred_at", "2026-11-27T09:00:00.250Z"),
                ("prev_hash", GENESIS_HASH),
                ("recorded_at", "2026-11-27T09:00:01Z"),
            ],
            &mut meta,
        );
        (payload, meta)
    }

    fn at<'a>(
        event_type: &'a str,
        version: &'a str,
        payload: &'a str,
        meta: &'a str,
    ) -> RowRef<'a> {
        RowRef {
            aggregate_type: "workspace",
            aggregate_id: "ws-1",
            sequence: 1,
            event_type,
            event_version: version,
            payload,
            metadata: meta,
        }
    }

    fn hash_of(payload: &str, meta: &str) -> String {
        decode(at("UpgradeRequested", "1.0", payload, meta))
            .unwrap()
            .computed_hash
    }

    #[test]
    fn the_fast_path_hashes_exactly_like_the_general_path() {
        let (payload, meta) = row();
        assert!(decode_canonical(at("UpgradeRequested", "1.0", &payload, &meta)).is_some());
        let fast = hash_of(&payload, &meta);
        // Whitespace and key order force the general path; the hash must not change.
        let spaced_payload = payload.replace("{\"", "{ \"");
        assert!(decode_canonical(at("UpgradeRequested", "1.0", &spaced_payload, &meta)).is_none());
        assert_eq!(hash_of(&spaced_payload, &meta), fast);
        let reordered: serde_json::Value = serde_json::from_str(&meta).unwrap();
        let reordered = serde_json::to_string_pretty(&reordered).unwrap();
        assert_eq!(hash_of(&payload, &reordered), fast);
        // Content still matters.
        assert_ne!(hash_of(&payload.replace("cn1", "cn2"), &meta), fast);
        assert_ne!(hash_of(&payload, &meta.replace("alice", "bob")), fast);
    }

    #[test]
    fn unverified_decoding_reads_the_same_event() {
        let (payload, meta) = row();
        let full = decode(at("UpgradeRequested", "1.0", &payload, &meta)).unwrap();
        let quick = decode_unverified(at("UpgradeRequested", "1.0", &payload, &meta)).unwrap();
        assert_eq!(full.stored, quick);
        assert!(decode_unverified(at("PlanUpgraded", "1.0", &payload, &meta)).is_err());
        assert!(decode_unverified(at("UpgradeRequested", "2.0", &payload, &meta)).is_err());
    }
}

#[cfg(test)]
mod upcast_tests {
    use billing_domain::{ChangeReason, WorkspaceEvent};

    use super::{decode, decode_unverified, EventLineRef};

    const GOLDEN: &str = include_str!("../../test-support/golden/log-1.0/log.jsonl");

    /// A 1.0 `SettlementChanged` decodes as 2.0 with reason owner-request, and its hash is
    /// computed over the stored bytes (it matches the recorded hash), on both decode paths.
    #[test]
    fn one_zero_settlement_changes_read_as_owner_requests_and_keep_their_hash() {
        let mut seen = 0;
        for text in GOLDEN.lines() {
            let line: EventLineRef<'_> = serde_json::from_str(text).unwrap();
            let decoded = decode(line.row()).unwrap();
            assert_eq!(
                decoded.computed_hash, decoded.stored.metadata.hash,
                "line {text}"
            );
            assert_eq!(decode_unverified(line.row()).unwrap(), decoded.stored);
            if let WorkspaceEvent::SettlementChanged(e) = &decoded.stored.event {
                assert_eq!(line.event_version, "1.0");
                assert_eq!(e.reason, ChangeReason::OwnerRequest);
                seen += 1;
            }
        }
        assert_eq!(seen, 2, "the golden log holds two settlement changes");
    }

    #[test]
    fn an_unknown_version_is_unsupported_and_says_what_this_release_reads() {
        let text = GOLDEN
            .lines()
            .find(|l| l.contains("\"SettlementChanged\""))
            .unwrap()
            .replace("\"event_version\":\"1.0\"", "\"event_version\":\"3.0\"");
        let line: EventLineRef<'_> = serde_json::from_str(&text).unwrap();
        let err = decode(line.row()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SettlementChanged version 3.0 is not supported (this library reads 2.0)"
        );
    }
}
