//! The tamper-evident chain: canonical JSON and SHA-256 hashes linking each workspace's events.
//!
//! Every stored event's metadata carries `prev_hash` (the previous event's hash in the same
//! workspace, or [`GENESIS_HASH`] for the first) and `hash`: SHA-256, lowercase hex, over the
//! canonical JSON of
//! `{"aggregate_id", "aggregate_type", "event_type", "event_version", "metadata" (without "hash"),
//! "payload", "sequence"}`.
//!
//! Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings escaped as
//! `serde_json` escapes them, integers in decimal. It does not depend on how the stored text is
//! laid out, so an auditor recomputes the same hash from any faithful copy.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::record::RowRef;

/// The `prev_hash` of a workspace's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Appends the canonical JSON of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json escapes only quotes, backslashes and control characters; most strings here
    // (ids, hashes, timestamps) have none and are copied as they are.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a &str cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// The canonical JSON of `value`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// What the hash of one event covers. `metadata_without_hash` is the metadata object with its
/// `hash` key removed (or never added).
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    /// The aggregate type (`workspace`).
    pub aggregate_type: &'a str,
    /// The workspace id.
    pub aggregate_id: &'a str,
    /// The sequence number.
    pub sequence: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The event version.
    pub event_version: &'a str,
    /// The payload.
    pub payload: &'a Value,
    /// The metadata without `hash`.
    pub metadata_without_hash: &'a Value,
}

/// SHA-256 (lowercase hex) of the canonical form of `input`.
pub fn event_hash(input: HashInput<'_>) -> String {
    event_hash_of_canonical(RowRef {
        aggregate_type: input.aggregate_type,
        aggregate_id: input.aggregate_id,
        sequence: input.sequence,
        event_type: input.event_type,
        event_version: input.event_version,
        payload: &canonical(input.payload),
        metadata: &canonical(input.metadata_without_hash),
    })
}

/// [`event_hash`] of a row whose payload and metadata are already canonical JSON text (as the
/// store writes them), without parsing them again. `row.metadata` is the metadata *without* its
/// `hash` key: what the hash covers.
pub fn event_hash_of_canonical(row: RowRef<'_>) -> String {
    let mut text = String::with_capacity(160 + row.payload.len() + row.metadata.len());
    text.push_str("{\"aggregate_id\":");
    write_string(row.aggregate_id, &mut text);
    text.push_str(",\"aggregate_type\":");
    write_string(row.aggregate_type, &mut text);
    text.push_str(",\"event_type\":");
    write_string(row.event_type, &mut text);
    text.push_str(",\"event_version\":");
    write_string(row.event_version, &mut text);
    text.push_str(",\"metadata\":");
    text.push_str(row.metadata);
    text.push_str(",\"payload\":");
    text.push_str(row.payload);
    text.push_str(",\"sequence\":");
    text.push_str(&row.sequence.to_string());
    text.push('}');
    sha256_hex(text.as_bytes())
}

/// Writes a JSON object whose values are all strings, in canonical form. `fields` must be sorted
/// by key (checked in debug builds).
pub fn write_string_object(fields: &[(&str, &str)], out: &mut String) {
    debug_assert!(
        fields.windows(2).all(|w| w[0].0 < w[1].0),
        "keys must be sorted"
    );
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_string(value, out);
    }
    out.push('}');
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_digest(Sha256::digest(bytes).as_slice())
}

/// A 32-byte digest as 64 lowercase hex digits.
pub fn hex_digest(digest: &[u8]) -> String {
    let mut hex_digits = [0u8; 64];
    // A 32-byte digest always fits 64 hex digits, and hex digits are ASCII.
    match hex::encode_to_slice(digest, &mut hex_digits) {
        Ok(()) => String::from_utf8(hex_digits.to_vec()).unwrap_or_default(),
        Err(_) => hex::encode(digest),
    }
}

/// Whether `s` looks like a hash: 64 lowercase hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        for s in [
            "plain",
            "",
            "quote\"d",
            "back\\slash",
            "new\nline",
            "tab\t",
            "\u{1}",
            "é ü 名",
            "/slash",
        ] {
            let mut out = String::new();
            write_string(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn canonical_sorts_keys_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "é\n"}], "a": true }"#).unwrap();
        assert_eq!(canonical(&v), r#"{"a":true,"b":[1,{"a":"é\n","z":null}]}"#);
    }

    #[test]
    fn the_hash_covers_every_field() {
        let payload = json!({"UpgradeRequested": {"site": "cn1"}});
        let meta = json!({"actor_id": "alice", "prev_hash": GENESIS_HASH});
        let base = HashInput {
            aggregate_type: "workspace",
            aggregate_id: "ws-1",
            sequence: 1,
            event_type: "UpgradeRequested",
            event_version: "1.0",
            payload: &payload,
            metadata_without_hash: &meta,
        };
        let h = event_hash(base);
        assert!(is_hash(&h));
        let other_payload = json!({"UpgradeRequested": {"site": "cn2"}});
        let other_meta = json!({"actor_id": "bob", "prev_hash": GENESIS_HASH});
        let variants = [
            HashInput {
                aggregate_id: "ws-2",
                ..base
            },
            HashInput {
                aggregate_type: "other",
                ..base
            },
            HashInput {
                sequence: 2,
                ..base
            },
            HashInput {
                event_type: "AccountBound",
                ..base
            },
            HashInput {
                event_version: "1.1",
                ..base
            },
            HashInput {
                payload: &other_payload,
                ..base
            },
            HashInput {
                metadata_without_hash: &other_meta,
                ..base
            },
        ];
        for v in variants {
            assert_ne!(event_hash(v), h, "{v:?}");
        }
        // Layout does not matter, content does.
        let spaced: Value =
            serde_json::from_str(r#"{ "UpgradeRequested" : { "site" : "cn1" } }"#).unwrap();
        assert_eq!(
            event_hash(HashInput {
                payload: &spaced,
                ..base
            }),
            h
        );
    }

    #[test]
    fn the_hash_is_sha256_of_the_documented_form() {
        let payload = json!({"A": {}});
        let meta = json!({});
        let h = event_hash(HashInput {
            aggregate_type: "workspace",
            aggregate_id: "w",
            sequence: 7,
            event_type: "A",
            event_version: "1.0",
            payload: &payload,
            metadata_without_hash: &meta,
        });
        let text = r#"{"aggregate_id":"w","aggregate_type":"workspace","event_type":"A","event_version":"1.0","metadata":{},"payload":{"A":{}},"sequence":7}"#;
        assert_eq!(h, sha256_hex(text.as_bytes()));
    }
}
