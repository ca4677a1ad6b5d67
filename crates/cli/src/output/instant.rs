//! Instants as people read them: `2026-11-27 09:00:00 UTC`, to the second, in UTC.
//!
//! The stores keep nanoseconds and `--json` prints them unchanged; tables and other human lines
//! go through [`instant`], so every instant a person reads has the same shape. The seconds are
//! truncated, never rounded up: a shown instant is never later than the stored one.

use chrono::{DateTime, Utc};

/// The one shape of an instant in human output.
const HUMAN: &str = "%Y-%m-%d %H:%M:%S UTC";

/// `at` as people read an instant (`2026-11-27 09:00:00 UTC`).
pub(crate) fn instant(at: DateTime<Utc>) -> String {
    at.format(HUMAN).to_string()
}

/// [`instant`], or `-` for a missing value.
pub(crate) fn instant_or_dash(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), instant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn instants_are_shown_to_the_second_in_utc() {
        assert_eq!(
            instant(at("2026-11-27T09:00:00.123456789Z")),
            "2026-11-27 09:00:00 UTC"
        );
        assert_eq!(
            instant(at("2026-11-27T09:00:00Z")),
            "2026-11-27 09:00:00 UTC"
        );
        assert_eq!(
            instant(at("2026-11-27T17:00:00.999999999+08:00")),
            "2026-11-27 09:00:00 UTC"
        );
    }

    #[test]
    fn a_missing_instant_is_a_dash() {
        assert_eq!(instant_or_dash(None), "-");
        assert_eq!(
            instant_or_dash(Some(at("2026-11-27T09:00:00.5Z"))),
            "2026-11-27 09:00:00 UTC"
        );
    }
}
