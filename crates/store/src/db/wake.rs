//! Wake-ups for readers that follow the commit order (SPEC §11 "Live"): a hint that something
//! may have committed, never a promise that it is readable, and never needed for correctness —
//! a reader that is woken reads [`Db::read_committed`] as always, and one that is not woken
//! reads again after its own timeout ([`WakeUps::POLL`], 50 ms, inside SPEC §11's 100 ms).
//!
//! A commit through this [`Db`] (any clone of it: appends and imports) wakes the followers in
//! the same process, on both backends — a host that runs its commands and its subscribers in one
//! process sees each commit at once. Commits of other processes are seen at the next poll.
//! PostgreSQL's LISTEN/NOTIFY would wake those too, but a `NOTIFY` with every append cost the
//! command path 5–7 % when measured (ADR 0012), so the store does not send one.
//!
//! A woken follower can find nothing yet: on PostgreSQL `read_committed` waits for every older
//! transaction to end (ADR 0009). So after a wake-up [`WakeUps::wait`] returns again soon
//! without a new commit (after 5, 10, 20, 40 and 80 ms), however long its caller would wait.

use std::time::Duration;

use tokio::sync::watch;

use super::Db;

/// The re-reads after a wake-up, for commits not yet readable.
const RECHECKS: [Duration; 5] = [
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
];

/// Counts this process's commits, for [`WakeUps`] in the same process.
#[derive(Debug)]
pub(crate) struct Commits(watch::Sender<u64>);

impl Default for Commits {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Commits {
    /// Called after each commit of events.
    pub(crate) fn committed(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// What wakes a follower of the commit order ([`Db::wake_ups`]): each commit through this
/// [`Db`] or a clone of it (appends and imports), in this process. Only a hint: a follower reads
/// [`Db::read_committed`] as always, and reads again after [`WakeUps::POLL`] when nothing woke
/// it (another process's commits are seen that way; the store sends no NOTIFY, ADR 0012).
#[derive(Debug)]
pub struct WakeUps {
    local: watch::Receiver<u64>,
    rechecks: usize,
}

impl Db {
    /// Wake-ups for a follower of this database's commit order.
    pub fn wake_ups(&self) -> WakeUps {
        let mut local = self.commits.0.subscribe();
        local.mark_unchanged();
        WakeUps {
            local,
            rechecks: RECHECKS.len(),
        }
    }
}

impl WakeUps {
    /// How long a follower may wait between reads and still see another process's commit
    /// within SPEC §11's 100 ms.
    pub const POLL: Duration = Duration::from_millis(50);

    /// Waits until this process may have committed something, or `at_most` has passed. After a
    /// wake-up the next five waits end after 5, 10, 20, 40 and 80 ms at the latest, without a new
    /// commit: on PostgreSQL a commit can be readable only once older transactions have ended.
    /// Returns whether it was woken.
    pub async fn wait(&mut self, at_most: Duration) -> bool {
        let limit = match RECHECKS.get(self.rechecks) {
            Some(recheck) => {
                self.rechecks += 1;
                at_most.min(*recheck)
            }
            None => at_most,
        };
        let woken = tokio::select! {
            changed = self.local.changed() => changed.is_ok(),
            () = tokio::time::sleep(limit) => false,
        };
        if woken {
            self.local.mark_unchanged();
            self.rechecks = 0;
        }
        woken
    }
}
