//! Instants as people read them, through the domain's one formatter
//! ([`billing_domain::instant::human`]): to the minute, in the workspace's site's time zone where
//! the instant belongs to a workspace on a known site, else in UTC. The stores keep nanoseconds
//! and `--json` prints them unchanged.

use billing_domain::{SiteId, SitePolicy};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `at` for people, in UTC (`2026-11-27 09:00 UTC`): instants that belong to no workspace.
pub(crate) fn instant(at: DateTime<Utc>) -> String {
    billing_domain::instant::human(at, None)
}

/// [`instant`], or `-` for a missing value.
pub(crate) fn instant_or_dash(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), instant)
}

/// The time zone a workspace's instants are shown in: its site's, when the site is known.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Zone(Option<Tz>);

impl Zone {
    /// The zone of `site` in the built-in policy (UTC for none, or one it does not know).
    pub(crate) fn of(site: Option<&SiteId>) -> Self {
        Self(site.and_then(|s| SitePolicy::builtin().site(s).ok().map(|s| s.time_zone)))
    }

    /// `at` for people, in this zone (`2026-11-27 01:00 (America/Los_Angeles)`).
    pub(crate) fn instant(self, at: DateTime<Utc>) -> String {
        billing_domain::instant::human(at, self.0)
    }

    /// [`Zone::instant`], or `-` for a missing value.
    pub(crate) fn instant_or_dash(self, at: Option<DateTime<Utc>>) -> String {
        at.map_or_else(|| "-".to_owned(), |at| self.instant(at))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn instants_are_shown_to_the_minute_in_utc_or_the_sites_zone() {
        assert_eq!(
            instant(at("2026-11-27T09:00:59.999999999Z")),
            "2026-11-27 09:00 UTC"
        );
        assert_eq!(
            instant(at("2026-11-27T17:00:00.5+08:00")),
            "2026-11-27 09:00 UTC"
        );
        let cn1 = Zone::of(Some(&SiteId::parse("cn1").unwrap()));
        assert_eq!(
            cn1.instant(at("2026-11-30T16:30:00Z")),
            "2026-12-01 00:30 (Asia/Shanghai)"
        );
        let unknown = Zone::of(Some(&SiteId::parse("zz9").unwrap()));
        assert_eq!(
            unknown.instant(at("2026-11-30T16:30:00Z")),
            "2026-11-30 16:30 UTC"
        );
    }

    #[test]
    fn a_missing_instant_is_a_dash() {
        assert_eq!(instant_or_dash(None), "-");
        assert_eq!(Zone::default().instant_or_dash(None), "-");
    }
}
