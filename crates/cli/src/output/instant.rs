//! Instants as people read them: `2026-11-27 09:00:00 UTC`, to the second, in UTC.
//!
//! The stores keep nanoseconds and `--json` prints them unchanged; tables and other human lines
//! go through [`instant`], so every instant a person reads has the same shape. The seconds are
//! truncated, never rounded up: a shown instant is never later than the stored one.

use chrono::{DateTime, Utc};

/// The one shape of an instant in human output.
const HUMAN: &str = "%Y-%m-%d %H:%M:%S UTC";

/// A value that may be shown as an instant: a `DateTime<Utc>`, or the RFC 3339 text the views
/// carry today.
pub(crate) trait AsInstant {
    /// The instant, or the text to show unchanged when it is not one.
    fn as_instant(&self) -> Result<DateTime<Utc>, &str>;
}

impl AsInstant for str {
    fn as_instant(&self) -> Result<DateTime<Utc>, &str> {
        DateTime::parse_from_rfc3339(self)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self)
    }
}

impl AsInstant for String {
    fn as_instant(&self) -> Result<DateTime<Utc>, &str> {
        self.as_str().as_instant()
    }
}

impl AsInstant for DateTime<Utc> {
    fn as_instant(&self) -> Result<DateTime<Utc>, &str> {
        Ok(*self)
    }
}

/// `value` as people read an instant (`2026-11-27 09:00:00 UTC`); text that is not an RFC 3339
/// instant is returned as it is.
pub(crate) fn instant<T: AsInstant + ?Sized>(value: &T) -> String {
    match value.as_instant() {
        Ok(at) => at.format(HUMAN).to_string(),
        Err(text) => text.to_owned(),
    }
}

/// [`instant`], or `-` for a missing value.
pub(crate) fn instant_or_dash<T: AsInstant + ?Sized>(value: Option<&T>) -> String {
    value.map_or_else(|| "-".to_owned(), instant)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn instants_are_shown_to_the_second_in_utc() {
        assert_eq!(
            instant("2026-11-27T09:00:00.123456789Z"),
            "2026-11-27 09:00:00 UTC"
        );
        assert_eq!(instant("2026-11-27T09:00:00Z"), "2026-11-27 09:00:00 UTC");
        assert_eq!(
            instant("2026-11-27T17:00:00.999999999+08:00"),
            "2026-11-27 09:00:00 UTC"
        );
        let at = Utc
            .with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
            .single()
            .map(|t| t + chrono::Duration::nanoseconds(999_999_999));
        assert_eq!(
            at.as_ref().map(instant).as_deref(),
            Some("2026-11-27 09:00:00 UTC")
        );
    }

    #[test]
    fn text_that_is_not_an_instant_is_shown_as_it_is() {
        assert_eq!(instant("not yet"), "not yet");
        assert_eq!(instant(""), "");
        assert_eq!(instant("2026-11-27"), "2026-11-27");
        assert_eq!(instant_or_dash::<str>(None), "-");
        assert_eq!(
            instant_or_dash(Some(&"2026-11-27T09:00:00.5Z".to_owned())),
            "2026-11-27 09:00:00 UTC"
        );
    }
}
