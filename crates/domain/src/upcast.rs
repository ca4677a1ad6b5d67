//! Reading older event shapes: the upcaster.
//!
//! Stored bytes are never rewritten (the hash chain covers them). A reader brings an older
//! payload to the current shape with [`upcast`] before deserializing it. The upcaster decides a
//! rule: a `SettlementChanged` of version 1.0 was always an owner's request, so it upcasts to
//! [`ChangeReason::OwnerRequest`](crate::ChangeReason::OwnerRequest) and counts toward the
//! once-a-month limit.

use serde_json::Value;

use crate::error::DomainError;
use crate::events::WorkspaceEvent;

/// Brings a stored payload (`{"EventType": {…}}`) of `event_version` to the shape this release
/// reads for `event_type`.
///
/// - the current version is returned as it is;
/// - `SettlementChanged` 1.0 gains `"reason": "owner-request"`.
///
/// # Errors
/// [`DomainError::UnsupportedEventVersion`] for an unknown type, or a version this release has
/// no upcaster for (a newer one, or one that never existed).
pub fn upcast(event_type: &str, event_version: &str, payload: Value) -> Result<Value, DomainError> {
    let unsupported = |reads: &'static str| DomainError::UnsupportedEventVersion {
        event_type: event_type.to_owned(),
        version: event_version.to_owned(),
        reads,
    };
    let Some(current) = WorkspaceEvent::current_version(event_type) else {
        return Err(unsupported("no version: the type is unknown"));
    };
    if event_version == current {
        return Ok(payload);
    }
    match (event_type, event_version) {
        ("SettlementChanged", "1.0") => {
            let mut payload = payload;
            if let Some(fields) = payload
                .get_mut("SettlementChanged")
                .and_then(Value::as_object_mut)
            {
                fields.insert("reason".to_owned(), Value::from("owner-request"));
            }
            Ok(payload)
        }
        _ => Err(unsupported(current)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settlement_changed_one_zero_becomes_an_owner_request() {
        let old = json!({"SettlementChanged": {"at": "2026-12-01T00:00:00Z", "by": "u", "from": {"enterprise": {"user_name": "acme"}}, "to": {"enterprise": {"user_name": "acme"}}}});
        let new = upcast("SettlementChanged", "1.0", old.clone()).unwrap();
        assert_eq!(new["SettlementChanged"]["reason"], json!("owner-request"));
        let mut expected = old;
        expected["SettlementChanged"]["reason"] = json!("owner-request");
        assert_eq!(new, expected, "only the reason is added");
    }

    #[test]
    fn current_versions_pass_unchanged_and_unknown_ones_are_refused() {
        let v2 = json!({"SettlementChanged": {"reason": "cloud-subscription-ended"}});
        assert_eq!(upcast("SettlementChanged", "2.0", v2.clone()).unwrap(), v2);
        let up = json!({"UpgradeRequested": {}});
        assert_eq!(upcast("UpgradeRequested", "1.0", up.clone()).unwrap(), up);
        for (kind, version) in [
            ("SettlementChanged", "3.0"),
            ("SettlementChanged", "1.1"),
            ("UpgradeRequested", "2.0"),
            ("ArrearsRecorded", "0.9"),
            ("Downgraded", "1.0"),
        ] {
            let err = upcast(kind, version, json!({})).unwrap_err();
            assert_eq!(err.code(), "unsupported-version", "{kind} {version}");
            let text = err.to_string();
            assert!(text.contains(kind) && text.contains(version), "{text}");
        }
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_left_for_the_reader_to_refuse() {
        let odd = json!({"SettlementChanged": 7});
        assert_eq!(
            upcast("SettlementChanged", "1.0", odd.clone()).unwrap(),
            odd
        );
    }
}
