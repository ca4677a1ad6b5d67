//! The system clock, for hosts that stamp commands with real time.

use billing_domain::Clock;
use chrono::{DateTime, Utc};

/// Reads the system clock. The domain never does; the store's services may.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
