//! A commercial workspace's standing (SPEC §10): `good` → `countdown` → `locked`, back to `good`
//! when every reason is cleared, and `dissolved`, which is terminal. Every standing is the
//! Commercial Plan: these types live inside [`Commercial`](crate::Commercial), so nothing here
//! can lead back to the Experience Plan.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::events::{
    ArrearsRecorded, ArrearsSettled, CloudSubscriptionEnded, CloudSubscriptionResumed,
    CountdownReminded, CountdownStarted, WorkspaceDissolved, WorkspaceEvent, WorkspaceLocked,
    WorkspaceUnlocked,
};
use crate::state::{transition, Commercial};
use crate::values::{BillId, CloudAccount, MethodId, Money};

/// A running (or ended) countdown to the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countdown {
    /// Its number in this workspace, from 1.
    pub number: u32,
    /// When it started (the first reason appeared).
    pub started_at: DateTime<Utc>,
    /// When the workspace is locked unless every reason is cleared first.
    pub deadline: DateTime<Utc>,
    /// When the reminder is due.
    pub remind_at: DateTime<Utc>,
    /// When the reminder was sent, once it was.
    pub reminded_at: Option<DateTime<Utc>>,
}

/// Where a commercial workspace stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "standing", rename_all = "kebab-case")]
pub enum Standing {
    /// No open reason.
    #[default]
    Good,
    /// A reason is open; the countdown runs.
    Countdown(Countdown),
    /// The countdown's deadline passed with a reason open.
    Locked {
        /// The countdown that passed.
        countdown: Countdown,
        /// When it was locked.
        locked_at: DateTime<Utc>,
    },
    /// Dissolved by the owner during a countdown; terminal.
    Dissolved {
        /// The countdown it was dissolved in.
        countdown: Countdown,
        /// When.
        dissolved_at: DateTime<Utc>,
    },
}

impl Standing {
    /// Every standing's name, in the order a workspace can reach them.
    pub const NAMES: [&'static str; 4] = ["good", "countdown", "locked", "dissolved"];

    /// The standing's name (`good`, `countdown`, `locked`, `dissolved`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::Good => "good",
            Standing::Countdown(_) => "countdown",
            Standing::Locked { .. } => "locked",
            Standing::Dissolved { .. } => "dissolved",
        }
    }

    /// The current (or last) countdown, unless in good standing.
    pub fn countdown(&self) -> Option<&Countdown> {
        match self {
            Standing::Good => None,
            Standing::Countdown(c)
            | Standing::Locked { countdown: c, .. }
            | Standing::Dissolved { countdown: c, .. } => Some(c),
        }
    }

    /// When the workspace was locked, while it is.
    pub fn locked_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Standing::Locked { locked_at, .. } => Some(*locked_at),
            _ => None,
        }
    }

    /// When the workspace was dissolved, if it was.
    pub fn dissolved_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Standing::Dissolved { dissolved_at, .. } => Some(*dissolved_at),
            _ => None,
        }
    }
}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a workspace is in a countdown or locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// A bill in arrears on the Expense Center account.
    Arrears {
        /// The bill.
        bill: BillId,
        /// How much is owed.
        amount: Money,
        /// When it was recorded.
        since: DateTime<Utc>,
    },
    /// The cloud subscription the workspace settles through ended.
    CloudSubscriptionEnded {
        /// The cloud method.
        method: MethodId,
        /// The cloud account.
        account: CloudAccount,
        /// When it was reported.
        since: DateTime<Utc>,
    },
}

impl Reason {
    /// The reason's kind (`arrears`, `cloud-subscription-ended`).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Arrears { .. } => "arrears",
            Reason::CloudSubscriptionEnded { .. } => "cloud-subscription-ended",
        }
    }

    /// Whether this is the ended subscription of `method` and `account`.
    pub fn is_cloud(&self, method: &MethodId, account: &CloudAccount) -> bool {
        matches!(self, Reason::CloudSubscriptionEnded { method: m, account: a, .. } if m == method && a == account)
    }

    /// Whether this is the arrears of `bill`.
    pub fn is_bill(&self, bill: &BillId) -> bool {
        matches!(self, Reason::Arrears { bill: b, .. } if b == bill)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Arrears { bill, amount, .. } => write!(f, "arrears on bill {bill} ({amount})"),
            Reason::CloudSubscriptionEnded {
                method, account, ..
            } => write!(f, "{method} subscription of account {account} ended"),
        }
    }
}

/// The reasons as one line for messages (`none` when there are none).
pub(crate) fn list(reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return "none".to_owned();
    }
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The state after a standing event (SPEC §10), or why it cannot follow.
pub(crate) fn evolve(c: &Commercial, event: &WorkspaceEvent) -> Result<Commercial, DomainError> {
    let kind = event.event_type();
    let fail = |reason: String| Err(transition(kind, reason));
    let mut next = c.clone();
    match event {
        WorkspaceEvent::ArrearsRecorded(ArrearsRecorded {
            amount, at, bill, ..
        }) => {
            if c.bills.contains(bill) {
                return fail(format!("bill {bill} was already recorded in arrears"));
            }
            next.bills.insert(bill.clone());
            next.reasons.push(Reason::Arrears {
                bill: bill.clone(),
                amount: *amount,
                since: *at,
            });
        }
        WorkspaceEvent::ArrearsSettled(ArrearsSettled { bill, .. }) => {
            if !c.reasons.iter().any(|r| r.is_bill(bill)) {
                return fail(format!("bill {bill} is not open in arrears"));
            }
            next.reasons.retain(|r| !r.is_bill(bill));
        }
        WorkspaceEvent::CloudSubscriptionEnded(CloudSubscriptionEnded {
            account,
            at,
            method,
            ..
        }) => {
            if c.settlement.cloud() != Some((method, account)) {
                return fail(format!(
                    "the workspace settles through {}, not {method} account {account}",
                    c.settlement
                ));
            }
            if c.reasons.iter().any(|r| r.is_cloud(method, account)) {
                return fail(format!(
                    "the end of the {method} subscription of {account} is already recorded"
                ));
            }
            next.reasons.push(Reason::CloudSubscriptionEnded {
                method: method.clone(),
                account: account.clone(),
                since: *at,
            });
        }
        WorkspaceEvent::CloudSubscriptionResumed(CloudSubscriptionResumed {
            account,
            method,
            ..
        }) => {
            if !c.reasons.iter().any(|r| r.is_cloud(method, account)) {
                return fail(format!(
                    "no ended {method} subscription of {account} is open"
                ));
            }
            next.reasons.retain(|r| !r.is_cloud(method, account));
        }
        WorkspaceEvent::CountdownStarted(CountdownStarted {
            at,
            countdown,
            deadline,
            remind_at,
            ..
        }) => {
            if c.standing != Standing::Good {
                return fail(format!(
                    "the workspace's standing is {}, not good",
                    c.standing
                ));
            }
            if c.reasons.is_empty() {
                return fail("no reason is open".into());
            }
            if *countdown != c.countdowns.saturating_add(1) {
                return fail(format!(
                    "it is countdown {countdown} but the next one is {}",
                    c.countdowns.saturating_add(1)
                ));
            }
            if !(at <= remind_at && remind_at <= deadline && at < deadline) {
                return fail(format!(
                    "its times are out of order: starts {at}, reminder {remind_at}, deadline {deadline}"
                ));
            }
            next.countdowns = *countdown;
            next.standing = Standing::Countdown(Countdown {
                number: *countdown,
                started_at: *at,
                deadline: *deadline,
                remind_at: *remind_at,
                reminded_at: None,
            });
        }
        WorkspaceEvent::CountdownReminded(CountdownReminded { at, countdown, .. }) => {
            let Standing::Countdown(running) = &c.standing else {
                return fail(format!(
                    "the workspace's standing is {}, not countdown",
                    c.standing
                ));
            };
            check_number(kind, running, *countdown)?;
            if running.reminded_at.is_some() {
                return fail(format!("countdown {countdown}'s reminder was already sent"));
            }
            if *at < running.remind_at {
                return fail(format!(
                    "the reminder is due at {}, not {at}",
                    running.remind_at
                ));
            }
            let mut running = running.clone();
            running.reminded_at = Some(*at);
            next.standing = Standing::Countdown(running);
        }
        WorkspaceEvent::WorkspaceLocked(WorkspaceLocked { at, countdown, .. }) => {
            let Standing::Countdown(running) = &c.standing else {
                return fail(format!(
                    "the workspace's standing is {}, not countdown",
                    c.standing
                ));
            };
            check_number(kind, running, *countdown)?;
            // I12: locked only after the deadline passed, with a reason still open.
            if *at < running.deadline {
                return fail(format!(
                    "the deadline {} has not passed at {at}",
                    running.deadline
                ));
            }
            if c.reasons.is_empty() {
                return fail("no reason is open".into());
            }
            next.standing = Standing::Locked {
                countdown: running.clone(),
                locked_at: *at,
            };
        }
        WorkspaceEvent::WorkspaceUnlocked(WorkspaceUnlocked { countdown, .. }) => {
            let running = match &c.standing {
                Standing::Countdown(running)
                | Standing::Locked {
                    countdown: running, ..
                } => running,
                other => return fail(format!("the workspace's standing is {other}")),
            };
            check_number(kind, running, *countdown)?;
            if !c.reasons.is_empty() {
                return fail(format!("a reason is still open: {}", list(&c.reasons)));
            }
            next.standing = Standing::Good;
        }
        WorkspaceEvent::WorkspaceDissolved(WorkspaceDissolved { at, countdown, .. }) => {
            let Standing::Countdown(running) = &c.standing else {
                return fail(format!(
                    "the workspace's standing is {}; it can be dissolved only during a countdown",
                    c.standing
                ));
            };
            check_number(kind, running, *countdown)?;
            next.standing = Standing::Dissolved {
                countdown: running.clone(),
                dissolved_at: *at,
            };
        }
        _ => {
            return fail(
                "the workspace is already commercial: upgrade steps cannot follow the upgrade"
                    .into(),
            )
        }
    }
    Ok(next)
}

fn check_number(kind: &'static str, running: &Countdown, number: u32) -> Result<(), DomainError> {
    if running.number == number {
        Ok(())
    } else {
        Err(transition(
            kind,
            format!(
                "it names countdown {number} but countdown {} is the workspace's",
                running.number
            ),
        ))
    }
}
