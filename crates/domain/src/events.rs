//! The five events of the workspace aggregate.
//!
//! Serialized shapes are a contract (golden files under `tests/golden/` guard them): a change needs
//! a new [`EVENT_VERSION`] and an upcaster that reads the old shape.
//!
//! There is deliberately no event that moves a workspace back to the Experience Plan.
//!
//! Every struct lists its fields in byte order of their names, so `serde_json` writes an event
//! as canonical JSON (sorted keys, no whitespace) without a detour through `serde_json::Value`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{ActorId, AgreementVersion, ExternalId, Settlement, SiteId, UserName};

/// The version of every event shape in this release.
pub const EVENT_VERSION: &str = "1.0";

/// The owner asked to upgrade the workspace to the Commercial Plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequested {
    /// When.
    pub at: DateTime<Utc>,
    /// Who requested it.
    pub by: ActorId,
    /// The workspace's site, known from this point.
    pub site: SiteId,
}

/// An Expense Center account, verified (or just registered) by the Expense Center, was bound.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBound {
    /// The Expense Center's id for the account, as it confirmed it.
    pub account_id: ExternalId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who bound it.
    pub by: ActorId,
    /// Whether the account was registered in this step rather than found.
    pub newly_registered: bool,
    /// The bound user name; it never changes afterwards.
    pub user_name: UserName,
}

/// The owner accepted the opening agreement. Always followed by [`PlanUpgraded`] in the same
/// command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementAccepted {
    /// The agreement version accepted.
    pub agreement_version: AgreementVersion,
    /// When.
    pub at: DateTime<Utc>,
    /// Who accepted it.
    pub by: ActorId,
}

/// The workspace is on the Commercial Plan, for good. Data collected before `at` is no longer
/// viewable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanUpgraded {
    /// The agreement version the upgrade was accepted under.
    pub agreement_version: AgreementVersion,
    /// When; also the start of the data that stays viewable.
    pub at: DateTime<Utc>,
    /// Who upgraded it.
    pub by: ActorId,
    /// The settlement the upgrade sets by default: the bound Expense Center account.
    pub settlement: Settlement,
    /// The workspace's site.
    pub site: SiteId,
}

/// The settlement method changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementChanged {
    /// When.
    pub at: DateTime<Utc>,
    /// Who changed it.
    pub by: ActorId,
    /// The settlement before.
    pub from: Settlement,
    /// The settlement after.
    pub to: Settlement,
}

/// An event of the workspace aggregate. `event_type` is the variant name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkspaceEvent {
    /// See [`UpgradeRequested`].
    UpgradeRequested(UpgradeRequested),
    /// See [`AccountBound`].
    AccountBound(AccountBound),
    /// See [`AgreementAccepted`].
    AgreementAccepted(AgreementAccepted),
    /// See [`PlanUpgraded`].
    PlanUpgraded(PlanUpgraded),
    /// See [`SettlementChanged`].
    SettlementChanged(SettlementChanged),
}

impl WorkspaceEvent {
    /// Every event type name, in flow order.
    pub const TYPES: [&'static str; 5] = [
        "UpgradeRequested",
        "AccountBound",
        "AgreementAccepted",
        "PlanUpgraded",
        "SettlementChanged",
    ];

    /// The event type (the variant name).
    pub fn event_type(&self) -> &'static str {
        match self {
            WorkspaceEvent::UpgradeRequested(_) => "UpgradeRequested",
            WorkspaceEvent::AccountBound(_) => "AccountBound",
            WorkspaceEvent::AgreementAccepted(_) => "AgreementAccepted",
            WorkspaceEvent::PlanUpgraded(_) => "PlanUpgraded",
            WorkspaceEvent::SettlementChanged(_) => "SettlementChanged",
        }
    }

    /// Who caused the event.
    pub fn actor(&self) -> &ActorId {
        match self {
            WorkspaceEvent::UpgradeRequested(e) => &e.by,
            WorkspaceEvent::AccountBound(e) => &e.by,
            WorkspaceEvent::AgreementAccepted(e) => &e.by,
            WorkspaceEvent::PlanUpgraded(e) => &e.by,
            WorkspaceEvent::SettlementChanged(e) => &e.by,
        }
    }

    /// When the event occurred.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            WorkspaceEvent::UpgradeRequested(e) => e.at,
            WorkspaceEvent::AccountBound(e) => e.at,
            WorkspaceEvent::AgreementAccepted(e) => e.at,
            WorkspaceEvent::PlanUpgraded(e) => e.at,
            WorkspaceEvent::SettlementChanged(e) => e.at,
        }
    }

    /// A one-line human description for audit trails.
    pub fn describe(&self) -> String {
        match self {
            WorkspaceEvent::UpgradeRequested(e) => {
                format!("{} requested the upgrade to the Commercial Plan on site {}", e.by, e.site)
            }
            WorkspaceEvent::AccountBound(e) if e.newly_registered => format!(
                "{} registered and bound Expense Center account {}",
                e.by, e.user_name
            ),
            WorkspaceEvent::AccountBound(e) => {
                format!("{} bound Expense Center account {}", e.by, e.user_name)
            }
            WorkspaceEvent::AgreementAccepted(e) => format!(
                "{} accepted the opening agreement version {}",
                e.by, e.agreement_version
            ),
            WorkspaceEvent::PlanUpgraded(e) => format!(
                "workspace upgraded to the Commercial Plan; settles through {}; data before {} no longer viewable",
                e.settlement,
                e.at.to_rfc3339()
            ),
            WorkspaceEvent::SettlementChanged(e) => {
                format!("{} changed settlement from {} to {}", e.by, e.from, e.to)
            }
        }
    }
}

impl cqrs_es::DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        WorkspaceEvent::event_type(self).to_owned()
    }

    fn event_version(&self) -> String {
        EVENT_VERSION.to_owned()
    }
}
