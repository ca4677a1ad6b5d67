//! The soak's clock: a calendar month every `--month-ms` of real time.

use std::time::Instant;

use billing_domain::Clock;
use chrono::{DateTime, Utc};

/// A clock that runs `factor` times faster than real time from the moment it was made.
#[derive(Debug)]
pub(super) struct FastClock {
    base: DateTime<Utc>,
    start: Instant,
    factor: f64,
}

impl Clock for FastClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed().as_secs_f64() * self.factor;
        // Microseconds reach 292,000 years: no overflow in any run.
        let micros = (elapsed * 1e6).min(i64::MAX as f64) as i64;
        self.base + chrono::Duration::microseconds(micros)
    }
}

impl FastClock {
    /// Starts now, at the current time, a calendar month (30 days) every `month_ms` real
    /// milliseconds.
    pub(super) fn month_every(month_ms: u64) -> Self {
        let month = 30.0 * 24.0 * 3600.0 * 1000.0;
        Self {
            base: Utc::now(),
            start: Instant::now(),
            factor: month / month_ms.max(1) as f64,
        }
    }
}
