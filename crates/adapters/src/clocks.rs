//! Where the adapters take their time from: never the system clock directly, always a [`Clock`]
//! (the domain's port), so a host, a drill (`--now`) or a test decides what "now" is.

use std::sync::Arc;

use billing_domain::memory::ManualClock;
use billing_domain::Clock;
use billing_store::SystemClock;
use chrono::{DateTime, Utc};

/// The two clocks the adapters run by.
///
/// - `billing`: when billing happens — the clock commands are stamped with (the services'
///   clock; the CLI's `--now` moves it). Notices are sent, accounts registered and
///   subscriptions changed at its instant.
/// - `process`: the processes' own clock — what the store stamps `recorded_at` with, and what
///   leases and claims run by (they coordinate processes, whatever instant commands happen at):
///   the views subscription's lease, an outbox message's claim, a projected row's `created_at`.
#[derive(Clone)]
pub struct Clocks {
    /// When billing happens.
    pub billing: Arc<dyn Clock>,
    /// The processes' own clock.
    pub process: Arc<dyn Clock>,
}

impl Clocks {
    /// Both the system clock.
    pub fn system() -> Self {
        Self::billing_at(Arc::new(SystemClock))
    }

    /// `billing` for when billing happens, the system clock for the processes.
    pub fn billing_at(billing: Arc<dyn Clock>) -> Self {
        Self {
            billing,
            process: Arc::new(SystemClock),
        }
    }

    /// Billing stopped at `instant`, the system clock for the processes: for tools and tests that
    /// decide when billing happens.
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self::billing_at(Arc::new(ManualClock::new(instant)))
    }
}

impl std::fmt::Debug for Clocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clocks")
            .field("billing", &self.billing.now())
            .field("process", &self.process.now())
            .finish()
    }
}
