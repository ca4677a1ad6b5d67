//! The events of the workspace aggregate: the five of the upgrade flow and the nine of its
//! standing afterwards (SPEC §10).
//!
//! Serialized shapes are a contract (golden files under `tests/golden/` guard them): a change needs
//! a new version in [`EVENT_VERSIONS`] and an upcaster ([`upcast`](crate::upcast)) that reads the
//! old shape.
//!
//! There is deliberately no event that moves a workspace back to the Experience Plan.
//!
//! Every struct lists its fields in byte order of their names, so `serde_json` writes an event
//! as canonical JSON (sorted keys, no whitespace) without a detour through `serde_json::Value`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{
    ActorId, AgreementVersion, BillId, CloudAccount, ExternalId, MethodId, Money, Settlement,
    SiteId, UserName,
};

/// The version of every event type's shape in this release, by type (see
/// [`WorkspaceEvent::current_version`]). `SettlementChanged` is at 2.0 (it gained `reason`); every
/// other type is at 1.0.
pub const EVENT_VERSIONS: [(&str, &str); 14] = [
    ("UpgradeRequested", "1.0"),
    ("AccountBound", "1.0"),
    ("AgreementAccepted", "1.0"),
    ("PlanUpgraded", "1.0"),
    ("SettlementChanged", "2.0"),
    ("ArrearsRecorded", "1.0"),
    ("ArrearsSettled", "1.0"),
    ("CloudSubscriptionEnded", "1.0"),
    ("CloudSubscriptionResumed", "1.0"),
    ("CountdownStarted", "1.0"),
    ("CountdownReminded", "1.0"),
    ("WorkspaceLocked", "1.0"),
    ("WorkspaceUnlocked", "1.0"),
    ("WorkspaceDissolved", "1.0"),
];

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

/// Why the settlement changed (`SettlementChanged` 2.0). Only owner requests count toward the
/// once-a-month limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeReason {
    /// The owner asked for it (every 1.0 event upcasts to this).
    OwnerRequest,
    /// The cloud subscription it settled through ended: the provider's policy fell back to
    /// enterprise settlement, or the owner switched to enterprise to clear the reason. Does not
    /// count toward once a month.
    CloudSubscriptionEnded,
}

impl ChangeReason {
    /// The kebab-case name (`owner-request`, `cloud-subscription-ended`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::OwnerRequest => "owner-request",
            ChangeReason::CloudSubscriptionEnded => "cloud-subscription-ended",
        }
    }
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
    /// Why (since 2.0; 1.0 events are owner requests).
    pub reason: ChangeReason,
    /// The settlement after.
    pub to: Settlement,
}

/// The Expense Center reported a bill in arrears on the bound account (a reason of SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrearsRecorded {
    /// How much is owed.
    pub amount: Money,
    /// When.
    pub at: DateTime<Utc>,
    /// The bill.
    pub bill: BillId,
    /// Who reported it (the billing system).
    pub by: ActorId,
}

/// A bill in arrears was settled by a recharge of the Expense Center account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrearsSettled {
    /// When.
    pub at: DateTime<Utc>,
    /// The bill.
    pub bill: BillId,
    /// Who settled it.
    pub by: ActorId,
    /// The Huawei Cloud stored-value card order that paid the recharge, if one did.
    pub stored_value_card: Option<ExternalId>,
}

/// The cloud subscription the workspace settles through ended, and its provider's policy is to
/// lock (a reason of SPEC §10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSubscriptionEnded {
    /// The cloud account.
    pub account: CloudAccount,
    /// When.
    pub at: DateTime<Utc>,
    /// Who reported it (the billing system).
    pub by: ActorId,
    /// The cloud method.
    pub method: MethodId,
}

/// The ended cloud subscription is active again (the same account re-subscribed), verified by
/// the marketplace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudSubscriptionResumed {
    /// The cloud account.
    pub account: CloudAccount,
    /// When.
    pub at: DateTime<Utc>,
    /// Who reported it (the billing system).
    pub by: ActorId,
    /// The cloud method.
    pub method: MethodId,
}

/// A countdown to the lock started: the first reason appeared on a workspace in good standing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountdownStarted {
    /// When.
    pub at: DateTime<Utc>,
    /// Who caused it (the actor whose report opened the first reason).
    pub by: ActorId,
    /// The countdown's number in this workspace, from 1.
    pub countdown: u32,
    /// When the workspace is locked unless every reason is cleared first.
    pub deadline: DateTime<Utc>,
    /// When the reminder e-mail is due.
    pub remind_at: DateTime<Utc>,
}

/// The countdown's reminder fell due and was recorded (its e-mail goes through the outbox).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountdownReminded {
    /// When.
    pub at: DateTime<Utc>,
    /// Who fired it (the billing system's scheduler).
    pub by: ActorId,
    /// The countdown.
    pub countdown: u32,
    /// The countdown's deadline, as the reminder states it.
    pub deadline: DateTime<Utc>,
}

/// The countdown's deadline passed with a reason still open: the workspace is locked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceLocked {
    /// When.
    pub at: DateTime<Utc>,
    /// Who fired it (the billing system's scheduler).
    pub by: ActorId,
    /// The countdown.
    pub countdown: u32,
    /// The deadline that passed.
    pub deadline: DateTime<Utc>,
}

/// The last open reason was cleared: the workspace is back in good standing (from a countdown
/// or from locked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUnlocked {
    /// When.
    pub at: DateTime<Utc>,
    /// Who cleared the last reason.
    pub by: ActorId,
    /// The countdown that ended.
    pub countdown: u32,
}

/// The owner dissolved the workspace during a countdown. Terminal: nothing follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDissolved {
    /// When.
    pub at: DateTime<Utc>,
    /// Who dissolved it.
    pub by: ActorId,
    /// The countdown it was dissolved in.
    pub countdown: u32,
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
    /// See [`ArrearsRecorded`].
    ArrearsRecorded(ArrearsRecorded),
    /// See [`ArrearsSettled`].
    ArrearsSettled(ArrearsSettled),
    /// See [`CloudSubscriptionEnded`].
    CloudSubscriptionEnded(CloudSubscriptionEnded),
    /// See [`CloudSubscriptionResumed`].
    CloudSubscriptionResumed(CloudSubscriptionResumed),
    /// See [`CountdownStarted`].
    CountdownStarted(CountdownStarted),
    /// See [`CountdownReminded`].
    CountdownReminded(CountdownReminded),
    /// See [`WorkspaceLocked`].
    WorkspaceLocked(WorkspaceLocked),
    /// See [`WorkspaceUnlocked`].
    WorkspaceUnlocked(WorkspaceUnlocked),
    /// See [`WorkspaceDissolved`].
    WorkspaceDissolved(WorkspaceDissolved),
}

impl WorkspaceEvent {
    /// Every event type name: the upgrade flow in order, then the standing events.
    pub const TYPES: [&'static str; 14] = [
        "UpgradeRequested",
        "AccountBound",
        "AgreementAccepted",
        "PlanUpgraded",
        "SettlementChanged",
        "ArrearsRecorded",
        "ArrearsSettled",
        "CloudSubscriptionEnded",
        "CloudSubscriptionResumed",
        "CountdownStarted",
        "CountdownReminded",
        "WorkspaceLocked",
        "WorkspaceUnlocked",
        "WorkspaceDissolved",
    ];

    /// The event type (the variant name).
    pub fn event_type(&self) -> &'static str {
        match self {
            WorkspaceEvent::UpgradeRequested(_) => "UpgradeRequested",
            WorkspaceEvent::AccountBound(_) => "AccountBound",
            WorkspaceEvent::AgreementAccepted(_) => "AgreementAccepted",
            WorkspaceEvent::PlanUpgraded(_) => "PlanUpgraded",
            WorkspaceEvent::SettlementChanged(_) => "SettlementChanged",
            WorkspaceEvent::ArrearsRecorded(_) => "ArrearsRecorded",
            WorkspaceEvent::ArrearsSettled(_) => "ArrearsSettled",
            WorkspaceEvent::CloudSubscriptionEnded(_) => "CloudSubscriptionEnded",
            WorkspaceEvent::CloudSubscriptionResumed(_) => "CloudSubscriptionResumed",
            WorkspaceEvent::CountdownStarted(_) => "CountdownStarted",
            WorkspaceEvent::CountdownReminded(_) => "CountdownReminded",
            WorkspaceEvent::WorkspaceLocked(_) => "WorkspaceLocked",
            WorkspaceEvent::WorkspaceUnlocked(_) => "WorkspaceUnlocked",
            WorkspaceEvent::WorkspaceDissolved(_) => "WorkspaceDissolved",
        }
    }

    /// The version of this event's shape that this release writes.
    pub fn event_version(&self) -> &'static str {
        Self::current_version(self.event_type()).unwrap_or("1.0")
    }

    /// The version this release writes for `event_type`, or `None` for an unknown type.
    pub fn current_version(event_type: &str) -> Option<&'static str> {
        EVENT_VERSIONS
            .iter()
            .find(|(name, _)| *name == event_type)
            .map(|(_, version)| *version)
    }

    /// Who caused the event.
    pub fn actor(&self) -> &ActorId {
        match self {
            WorkspaceEvent::UpgradeRequested(e) => &e.by,
            WorkspaceEvent::AccountBound(e) => &e.by,
            WorkspaceEvent::AgreementAccepted(e) => &e.by,
            WorkspaceEvent::PlanUpgraded(e) => &e.by,
            WorkspaceEvent::SettlementChanged(e) => &e.by,
            WorkspaceEvent::ArrearsRecorded(e) => &e.by,
            WorkspaceEvent::ArrearsSettled(e) => &e.by,
            WorkspaceEvent::CloudSubscriptionEnded(e) => &e.by,
            WorkspaceEvent::CloudSubscriptionResumed(e) => &e.by,
            WorkspaceEvent::CountdownStarted(e) => &e.by,
            WorkspaceEvent::CountdownReminded(e) => &e.by,
            WorkspaceEvent::WorkspaceLocked(e) => &e.by,
            WorkspaceEvent::WorkspaceUnlocked(e) => &e.by,
            WorkspaceEvent::WorkspaceDissolved(e) => &e.by,
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
            WorkspaceEvent::ArrearsRecorded(e) => e.at,
            WorkspaceEvent::ArrearsSettled(e) => e.at,
            WorkspaceEvent::CloudSubscriptionEnded(e) => e.at,
            WorkspaceEvent::CloudSubscriptionResumed(e) => e.at,
            WorkspaceEvent::CountdownStarted(e) => e.at,
            WorkspaceEvent::CountdownReminded(e) => e.at,
            WorkspaceEvent::WorkspaceLocked(e) => e.at,
            WorkspaceEvent::WorkspaceUnlocked(e) => e.at,
            WorkspaceEvent::WorkspaceDissolved(e) => e.at,
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
                crate::instant::human(e.at, None)
            ),
            WorkspaceEvent::SettlementChanged(e) => match e.reason {
                ChangeReason::OwnerRequest => {
                    format!("{} changed settlement from {} to {}", e.by, e.from, e.to)
                }
                ChangeReason::CloudSubscriptionEnded => format!(
                    "{} moved settlement from {} to {} because the cloud subscription ended (not counted toward once a month)",
                    e.by, e.from, e.to
                ),
            },
            WorkspaceEvent::ArrearsRecorded(e) => format!(
                "{} recorded arrears: bill {} over {}",
                e.by, e.bill, e.amount
            ),
            WorkspaceEvent::ArrearsSettled(e) => match &e.stored_value_card {
                Some(card) => format!(
                    "{} settled bill {} by a recharge paid with Huawei Cloud stored-value card order {card}",
                    e.by, e.bill
                ),
                None => format!("{} settled bill {} by a recharge", e.by, e.bill),
            },
            WorkspaceEvent::CloudSubscriptionEnded(e) => format!(
                "{} reported that the {} subscription of account {} ended",
                e.by, e.method, e.account
            ),
            WorkspaceEvent::CloudSubscriptionResumed(e) => format!(
                "{} reported that the {} subscription of account {} is active again",
                e.by, e.method, e.account
            ),
            WorkspaceEvent::CountdownStarted(e) => format!(
                "countdown {} started: the workspace will be locked at {} unless every reason is cleared",
                e.countdown,
                crate::instant::human(e.deadline, None)
            ),
            WorkspaceEvent::CountdownReminded(e) => format!(
                "countdown {} reminder sent: the workspace will be locked at {}",
                e.countdown,
                crate::instant::human(e.deadline, None)
            ),
            WorkspaceEvent::WorkspaceLocked(e) => format!(
                "workspace locked: countdown {} passed its deadline {} with a reason still open",
                e.countdown,
                crate::instant::human(e.deadline, None)
            ),
            WorkspaceEvent::WorkspaceUnlocked(e) => format!(
                "workspace unlocked: every reason of countdown {} is cleared",
                e.countdown
            ),
            WorkspaceEvent::WorkspaceDissolved(e) => format!(
                "{} dissolved the workspace during countdown {}; nothing can follow",
                e.by, e.countdown
            ),
        }
    }
}

impl cqrs_es::DomainEvent for WorkspaceEvent {
    fn event_type(&self) -> String {
        WorkspaceEvent::event_type(self).to_owned()
    }

    fn event_version(&self) -> String {
        WorkspaceEvent::event_version(self).to_owned()
    }
}
