//! How an instant becomes text — each form declared once, and every crate writes instants
//! through these:
//!
//! - [`rfc3339`]: the stored and JSON form — RFC 3339 in UTC with `Z`, the fraction as serde
//!   writes a `DateTime<Utc>` (none, or 3, 6 or 9 digits). Event payloads and metadata carry it,
//!   so the hash chain covers exactly these bytes;
//! - [`sortable`]: RFC 3339 in UTC with nine fraction digits — one fixed width, so comparing two
//!   such texts compares the instants (years 0 to 9999): for columns compared in SQL;
//! - [`human`]: for people — to the minute, in a time zone (a site's, where there is one):
//!   `2027-02-01 08:00 (Asia/Shanghai)`, or `2027-02-01 00:00 UTC`. The minute is truncated,
//!   never rounded up: a shown instant is never later than the stored one.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

/// `t` in the stored and JSON form (`2026-11-27T09:00:00.5Z`), exactly as serde writes a
/// `DateTime<Utc>`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `t` in one fixed width (`2026-11-27T09:00:00.500000000Z`): texts that compare as the
/// instants do.
pub fn sortable(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `t` for people, to the minute: in `zone` with the zone's name (`2027-02-01 08:00
/// (Asia/Shanghai)`), or in UTC (`2027-02-01 00:00 UTC`).
pub fn human(t: DateTime<Utc>, zone: Option<Tz>) -> String {
    match zone {
        Some(zone) => format!(
            "{} ({})",
            t.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            zone.name()
        ),
        None => format!("{} UTC", t.format("%Y-%m-%d %H:%M")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_stored_form_is_what_serde_writes() {
        for text in [
            "2026-11-27T09:00:00Z",
            "2026-11-27T09:00:00.500Z",
            "2026-11-27T09:00:00.000001Z",
            "2026-11-27T09:00:00.123456789Z",
        ] {
            let t = at(text);
            assert_eq!(rfc3339(t), text);
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn the_sortable_form_has_one_width() {
        let early = at("2026-11-27T09:00:00.5Z");
        let late = at("2026-11-27T09:00:00.123456789Z");
        assert_eq!(sortable(early), "2026-11-27T09:00:00.500000000Z");
        assert_eq!(sortable(early).len(), sortable(late).len());
        assert!(sortable(early) > sortable(at("2026-11-27T09:00:00Z")));
    }

    #[test]
    fn people_read_minutes_in_the_zone_truncated() {
        let t = at("2026-11-30T16:59:59.999Z");
        assert_eq!(human(t, None), "2026-11-30 16:59 UTC");
        assert_eq!(
            human(t, Some(chrono_tz::Asia::Shanghai)),
            "2026-12-01 00:59 (Asia/Shanghai)"
        );
        assert_eq!(
            human(
                at("2027-02-01T08:00:00Z"),
                Some(chrono_tz::America::Los_Angeles)
            ),
            "2027-02-01 00:00 (America/Los_Angeles)"
        );
    }
}
