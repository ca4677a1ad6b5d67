//! How the command line's text becomes values: every option is parsed by clap into its domain
//! type (or into one of the tool's own, below) before anything runs, so bad input exits 2 and
//! writes nothing. A value that does not parse is refused with the error of its type: the
//! domain's [`DomainError`] for domain values (relabelled with the option it was given for), a
//! [`BadValue`] for the tool's own options; `main` reports either as it reports any error.

use std::fmt;

use billing_domain::{DomainError, ExternalId, Role, WorkspaceId};
use clap::builder::{PossibleValuesParser, TypedValueParser};

/// An option of the tool's own (not a domain value) that does not parse: the error code and the
/// message, naming the option and the value.
#[derive(Debug)]
pub(crate) struct BadValue {
    /// The error code (`invalid-value`, `listen`, `ttl`, …).
    pub(crate) code: &'static str,
    /// What is wrong.
    pub(crate) message: String,
}

impl BadValue {
    /// A bad value with `code`.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadValue {}

/// A domain value's parser, whose refusal names `option` (an [`ExternalId`] says `account`
/// whatever it was given for).
pub(crate) fn named<T: 'static>(
    option: &'static str,
    parse: fn(&str) -> Result<T, DomainError>,
) -> impl Fn(&str) -> Result<T, DomainError> + Clone + Send + Sync + 'static {
    move |value| parse(value).map_err(|e| relabel(option, e))
}

/// `error` naming `option` as its field.
pub(crate) fn relabel(option: &'static str, error: DomainError) -> DomainError {
    match error {
        DomainError::InvalidValue { value, reason, .. } => DomainError::InvalidValue {
            field: option,
            value,
            reason,
        },
        other => other,
    }
}

/// An id at an outside system given for `option`.
pub(crate) fn external_id(
    option: &'static str,
) -> impl Fn(&str) -> Result<ExternalId, DomainError> + Clone + Send + Sync + 'static {
    named(option, ExternalId::parse)
}

/// `--role`: one of the roles, listed in `--help`.
pub(crate) fn role() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(Role::ALL.map(Role::as_str)).try_map(|text| text.parse::<Role>())
}

/// `--role` of a token: a role in a workspace (the billing system is `--system`).
pub(crate) fn workspace_role() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(["owner", "admin", "member"]).try_map(|text| text.parse::<Role>())
}

/// A head kept outside the log: `--expect-head WORKSPACE=HASH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExpectHead {
    /// The workspace.
    pub(crate) workspace: String,
    /// Its head hash (64 lowercase hex digits).
    pub(crate) hash: String,
}

/// Parses one `--expect-head W=HASH`.
pub(crate) fn expect_head(value: &str) -> Result<ExpectHead, BadValue> {
    let bad = |reason: &str| {
        BadValue::new(
            "invalid-value",
            format!("invalid expect-head {value:?}: {reason}"),
        )
    };
    let Some((workspace, hash)) = value.split_once('=') else {
        return Err(bad("expected WORKSPACE=HASH"));
    };
    let workspace = WorkspaceId::parse(workspace)
        .map_err(|e| bad(&format!("the workspace is not valid ({e})")))?;
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad(
            "the hash must be 64 lowercase hexadecimal digits (SHA-256)",
        ));
    }
    Ok(ExpectHead {
        workspace: workspace.to_string(),
        hash: hash.to_owned(),
    })
}

/// An RFC 3339 instant given for `option`.
fn rfc3339(option: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, BadValue> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            BadValue::new(
                "invalid-value",
                format!(
                    "invalid {option} {value:?}: {e}; expected an RFC 3339 instant such as 2026-11-27T09:00:00Z"
                ),
            )
        })
}

/// `--as-of`.
pub(crate) fn as_of(value: &str) -> Result<chrono::DateTime<chrono::Utc>, BadValue> {
    rfc3339("as-of", value)
}

/// `--now` (or `BILLING_NOW`).
pub(crate) fn now(value: &str) -> Result<chrono::DateTime<chrono::Utc>, BadValue> {
    rfc3339("now", value)
}

/// `--listen`: an address like `127.0.0.1:8080`.
pub(crate) fn listen(value: &str) -> Result<std::net::SocketAddr, BadValue> {
    value.parse().map_err(|e| {
        BadValue::new(
            "listen",
            format!("--listen {value:?} is not an address like 127.0.0.1:8080: {e}"),
        )
    })
}

/// `--ttl`: a duration like `90s`, `30m`, `1h` or `7d` (at most 366 days).
pub(crate) fn ttl(text: &str) -> Result<chrono::Duration, BadValue> {
    let bad = |why: &str| {
        BadValue::new(
            "ttl",
            format!("--ttl {text:?} {why}: give a number and s, m, h or d, like 1h"),
        )
    };
    let split = text.len().saturating_sub(1);
    let (number, unit) = (
        text.get(..split).unwrap_or(""),
        text.get(split..).unwrap_or(""),
    );
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("is not a positive duration"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| bad("has no unit"))?;
    if seconds > 366 * 86_400 {
        return Err(bad("is longer than 366 days"));
    }
    Ok(chrono::Duration::seconds(seconds))
}

/// `--stream`: 1 to 32 of A-Z, a-z, 0-9, `_` and `-`.
pub(crate) fn stream(value: &str) -> Result<String, BadValue> {
    let valid = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(BadValue::new(
            "invalid-value",
            format!("invalid --stream {value:?}: 1 to 32 of A-Z, a-z, 0-9, '_' and '-'"),
        ))
    }
}

/// `--nats`: `nats://HOST:PORT` or `tls://HOST:PORT`.
pub(crate) fn nats(value: &str) -> Result<String, BadValue> {
    if value.starts_with("nats://") || value.starts_with("tls://") {
        Ok(value.to_owned())
    } else {
        Err(BadValue::new(
            "invalid-value",
            format!("invalid --nats {value:?}: expected nats://HOST:PORT or tls://HOST:PORT"),
        ))
    }
}

/// `--timeout` of `billing deliver`: 1 to 3600 seconds.
pub(crate) fn timeout(value: &str) -> Result<u64, BadValue> {
    value
        .parse::<u64>()
        .ok()
        .filter(|t| (1..=3600).contains(t))
        .ok_or_else(|| {
            BadValue::new(
                "invalid-value",
                format!("invalid --timeout {value}: 1 to 3600 seconds"),
            )
        })
}

/// `--subscription`: a subscription's name.
pub(crate) fn subscription(value: &str) -> Result<billing_store::SubscriptionName, BadValue> {
    billing_store::SubscriptionName::parse(value)
        .map_err(|e| BadValue::new("invalid-value", format!("invalid --subscription: {e}")))
}

/// `--from` of `billing events`: a position.
pub(crate) fn position(value: &str) -> Result<billing_store::Position, BadValue> {
    value.parse().map_err(|e: billing_store::BadPosition| {
        BadValue::new("invalid-value", format!("invalid --from: {e}"))
    })
}

/// A webhook endpoint's id (`ep_…`).
pub(crate) fn endpoint(
    value: &str,
) -> Result<billing_adapters::webhooks::EndpointId, billing_adapters::AdapterError> {
    value.parse()
}

/// `--event` of `billing webhook add`: an event type.
pub(crate) fn event_type(value: &str) -> Result<String, BadValue> {
    let types = billing_domain::WorkspaceEvent::TYPES;
    if types.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(BadValue::new(
            "invalid-value",
            format!(
                "invalid --event {value:?}: the event types are {}",
                types.join(", ")
            ),
        ))
    }
}

/// A webhook endpoint's URL, checked as the adapters check it.
pub(crate) fn webhook_url(value: &str) -> Result<String, billing_adapters::AdapterError> {
    billing_adapters::webhooks::check_url(value).map(|_| value.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn expect_heads_need_a_workspace_and_a_sha256() {
        let hash = "a".repeat(64);
        assert_eq!(
            expect_head(&format!("acme={hash}")).unwrap(),
            ExpectHead {
                workspace: "acme".to_owned(),
                hash: hash.clone()
            }
        );
        for bad in [
            "acme",
            "acme=",
            "acme=xyz",
            &format!("ac me={hash}"),
            &format!("acme={}", "A".repeat(64)),
        ] {
            assert_eq!(expect_head(bad).unwrap_err().code, "invalid-value", "{bad}");
        }
    }

    #[test]
    fn instants_are_rfc3339() {
        assert!(as_of("2026-11-27T09:00:00Z").is_ok());
        assert!(as_of("2026-11-27T09:00:00+08:00").is_ok());
        assert!(as_of("yesterday").is_err());
    }

    #[test]
    fn relabelled_errors_name_the_option() {
        let err = external_id("instance")("a b").unwrap_err();
        assert!(err.to_string().contains("instance"), "{err}");
    }

    #[test]
    fn ttls_need_a_unit_and_a_bound() {
        assert_eq!(ttl("90m").unwrap(), chrono::Duration::minutes(90));
        for bad in ["", "h", "0h", "-1h", "10", "367d", "1w"] {
            assert_eq!(ttl(bad).unwrap_err().code, "ttl", "{bad}");
        }
    }
}
