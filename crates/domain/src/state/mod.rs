//! The workspace's state: what a workspace is and what can be read of it; how events change it
//! is [`fold`].
//!
//! The plan is structural: [`Workspace`] is either in the Experience stage (with its upgrade
//! progress) or in the Commercial stage, and the only function that turns a commercial state into
//! a next state, `evolve_commercial` (in [`fold`]), returns a [`Commercial`] — there is no path
//! back. The fields are private, so a host can only read them.

mod fold;

pub(crate) use self::fold::check_once_a_month;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::standing::{Reason, Standing};
use crate::values::{AgreementVersion, BillId, ExternalId, Settlement, SiteId, UserName};

/// The plan a workspace is on, as a label for views and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// The free Experience Plan.
    Experience,
    /// The paid Commercial Plan.
    Commercial,
}

impl Plan {
    /// The plan's display name ("Experience Plan", "Commercial Plan").
    pub fn display_name(self) -> &'static str {
        match self {
            Plan::Experience => "Experience Plan",
            Plan::Commercial => "Commercial Plan",
        }
    }

    /// The plan's lowercase name (`experience`, `commercial`), as views and JSON carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Experience => "experience",
            Plan::Commercial => "commercial",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self, DomainError> {
        [Plan::Experience, Plan::Commercial]
            .into_iter()
            .find(|plan| plan.as_str() == value)
            .ok_or_else(|| DomainError::InvalidValue {
                field: "plan",
                value: value.to_owned(),
                reason: "must be experience or commercial",
            })
    }
}

/// How far the upgrade has come, as a label for views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeStep {
    /// Nothing yet.
    NotRequested,
    /// The upgrade was requested.
    Requested,
    /// An Expense Center account is bound.
    AccountBound,
    /// The agreement was accepted but the stream lacks the `PlanUpgraded` that must follow (only
    /// a broken log shows this).
    AgreementAccepted,
    /// Upgraded: on the Commercial Plan.
    Upgraded,
}

impl UpgradeStep {
    /// The step's kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeStep::NotRequested => "not-requested",
            UpgradeStep::Requested => "requested",
            UpgradeStep::AccountBound => "account-bound",
            UpgradeStep::AgreementAccepted => "agreement-accepted",
            UpgradeStep::Upgraded => "upgraded",
        }
    }
}

impl fmt::Display for UpgradeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UpgradeStep {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self, DomainError> {
        [
            UpgradeStep::NotRequested,
            UpgradeStep::Requested,
            UpgradeStep::AccountBound,
            UpgradeStep::AgreementAccepted,
            UpgradeStep::Upgraded,
        ]
        .into_iter()
        .find(|step| step.as_str() == value)
        .ok_or_else(|| DomainError::InvalidValue {
            field: "upgrade_step",
            value: value.to_owned(),
            reason:
                "must be not-requested, requested, account-bound, agreement-accepted or upgraded",
        })
    }
}

/// The Expense Center account bound to a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundAccount {
    /// The bound user name.
    pub user_name: UserName,
    /// The Expense Center's account id.
    pub account_id: ExternalId,
    /// Whether it was registered while binding.
    pub newly_registered: bool,
    /// When it was bound.
    pub bound_at: DateTime<Utc>,
}

/// Upgrade progress while on the Experience Plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
enum Progress {
    NotRequested,
    Requested {
        site: SiteId,
        requested_at: DateTime<Utc>,
    },
    Bound {
        site: SiteId,
        account: BoundAccount,
    },
    Accepted {
        site: SiteId,
        account: BoundAccount,
        agreement_version: AgreementVersion,
    },
}

/// The state of a workspace on the Commercial Plan. It can only be read and evolved into another
/// `Commercial`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commercial {
    site: SiteId,
    account: BoundAccount,
    agreement_version: AgreementVersion,
    upgraded_at: DateTime<Utc>,
    pub(crate) settlement: Settlement,
    /// The last change an owner requested (the only ones that count toward once a month).
    last_settlement_change_at: Option<DateTime<Utc>>,
    settlement_changes: u32,
    #[serde(default)]
    pub(crate) standing: Standing,
    #[serde(default)]
    pub(crate) reasons: Vec<Reason>,
    #[serde(default)]
    pub(crate) countdowns: u32,
    /// Every bill ever recorded in arrears (a bill is recorded once).
    #[serde(default)]
    pub(crate) bills: BTreeSet<BillId>,
}

impl Commercial {
    /// The workspace's site.
    pub fn site(&self) -> &SiteId {
        &self.site
    }
    /// The bound Expense Center account.
    pub fn account(&self) -> &BoundAccount {
        &self.account
    }
    /// The agreement version accepted.
    pub fn agreement_version(&self) -> &AgreementVersion {
        &self.agreement_version
    }
    /// When the workspace was upgraded.
    pub fn upgraded_at(&self) -> DateTime<Utc> {
        self.upgraded_at
    }
    /// The current settlement.
    pub fn settlement(&self) -> &Settlement {
        &self.settlement
    }
    /// When the owner last asked for a settlement change (the upgrade's default and changes
    /// because a cloud subscription ended do not count).
    pub fn last_settlement_change_at(&self) -> Option<DateTime<Utc>> {
        self.last_settlement_change_at
    }
    /// How many times the settlement changed, for any reason.
    pub fn settlement_changes(&self) -> u32 {
        self.settlement_changes
    }
    /// Where the workspace stands (good, countdown, locked, dissolved).
    pub fn standing(&self) -> &Standing {
        &self.standing
    }
    /// The open reasons, oldest first.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
    /// How many countdowns the workspace has had.
    pub fn countdowns(&self) -> u32 {
        self.countdowns
    }
}

// A workspace spends nearly all its life commercial: boxing the larger variant would only add an
// allocation to every state.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "plan", rename_all = "lowercase")]
enum Stage {
    Experience { progress: Progress },
    Commercial(Commercial),
}

/// A workspace: the event-sourced aggregate of workspace-billing.
///
/// Built only by folding events ([`Workspace::evolve`], [`Workspace::replay`]); read through
/// accessors. `Workspace::default()` is a fresh workspace on the Experience Plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    stage: Stage,
    /// When the newest event occurred (commands may not happen before it).
    #[serde(default)]
    newest: Option<DateTime<Utc>>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            stage: Stage::Experience {
                progress: Progress::NotRequested,
            },
            newest: None,
        }
    }
}

pub(crate) fn transition(event_type: &'static str, reason: impl Into<String>) -> DomainError {
    DomainError::InvalidTransition {
        event_type,
        reason: reason.into(),
    }
}

impl Workspace {
    /// The plan the workspace is on.
    pub fn plan(&self) -> Plan {
        match self.stage {
            Stage::Experience { .. } => Plan::Experience,
            Stage::Commercial(_) => Plan::Commercial,
        }
    }

    /// How far the upgrade has come.
    pub fn upgrade_step(&self) -> UpgradeStep {
        match &self.stage {
            Stage::Experience { progress } => match progress {
                Progress::NotRequested => UpgradeStep::NotRequested,
                Progress::Requested { .. } => UpgradeStep::Requested,
                Progress::Bound { .. } => UpgradeStep::AccountBound,
                Progress::Accepted { .. } => UpgradeStep::AgreementAccepted,
            },
            Stage::Commercial(_) => UpgradeStep::Upgraded,
        }
    }

    /// The commercial state, once upgraded.
    pub fn commercial(&self) -> Option<&Commercial> {
        match &self.stage {
            Stage::Commercial(c) => Some(c),
            Stage::Experience { .. } => None,
        }
    }

    /// The site, known from the upgrade request on.
    pub fn site(&self) -> Option<&SiteId> {
        match &self.stage {
            Stage::Experience { progress } => match progress {
                Progress::NotRequested => None,
                Progress::Requested { site, .. }
                | Progress::Bound { site, .. }
                | Progress::Accepted { site, .. } => Some(site),
            },
            Stage::Commercial(c) => Some(&c.site),
        }
    }

    /// The bound Expense Center account, once bound.
    pub fn bound_account(&self) -> Option<&BoundAccount> {
        match &self.stage {
            Stage::Experience { progress } => match progress {
                Progress::NotRequested | Progress::Requested { .. } => None,
                Progress::Bound { account, .. } | Progress::Accepted { account, .. } => {
                    Some(account)
                }
            },
            Stage::Commercial(c) => Some(&c.account),
        }
    }

    /// The accepted agreement version, once accepted.
    pub fn agreement_version(&self) -> Option<&AgreementVersion> {
        match &self.stage {
            Stage::Experience {
                progress:
                    Progress::Accepted {
                        agreement_version, ..
                    },
            } => Some(agreement_version),
            Stage::Experience { .. } => None,
            Stage::Commercial(c) => Some(&c.agreement_version),
        }
    }

    /// When the workspace was upgraded.
    pub fn upgraded_at(&self) -> Option<DateTime<Utc>> {
        self.commercial().map(Commercial::upgraded_at)
    }

    /// From when collected data is viewable: the upgrade instant (data collected during the
    /// Experience Plan is no longer viewable). `None` on the Experience Plan: all data is.
    pub fn data_visible_from(&self) -> Option<DateTime<Utc>> {
        self.upgraded_at()
    }

    /// The current settlement, once upgraded.
    pub fn settlement(&self) -> Option<&Settlement> {
        self.commercial().map(Commercial::settlement)
    }

    /// How many times the settlement changed (the upgrade's default does not count).
    pub fn settlement_changes(&self) -> u32 {
        self.commercial().map_or(0, Commercial::settlement_changes)
    }

    /// Where a commercial workspace stands; `None` on the Experience Plan.
    pub fn standing(&self) -> Option<&Standing> {
        self.commercial().map(Commercial::standing)
    }

    /// The open reasons (none on the Experience Plan).
    pub fn reasons(&self) -> &[Reason] {
        self.commercial().map_or(&[], Commercial::reasons)
    }

    /// When the newest event occurred; `None` for a workspace without events.
    pub fn newest_event_at(&self) -> Option<DateTime<Utc>> {
        self.newest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_and_steps_parse_what_they_print_and_serde_writes() {
        for plan in [Plan::Experience, Plan::Commercial] {
            assert_eq!(plan.as_str().parse::<Plan>().unwrap(), plan);
            assert_eq!(
                serde_json::to_value(plan).unwrap(),
                serde_json::json!(plan.as_str())
            );
        }
        for step in [
            UpgradeStep::NotRequested,
            UpgradeStep::Requested,
            UpgradeStep::AccountBound,
            UpgradeStep::AgreementAccepted,
            UpgradeStep::Upgraded,
        ] {
            assert_eq!(step.as_str().parse::<UpgradeStep>().unwrap(), step);
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::json!(step.as_str())
            );
        }
        let err = "Commercial".parse::<Plan>().unwrap_err();
        assert!(err.to_string().contains("Commercial"), "{err}");
        assert!("upgrading".parse::<UpgradeStep>().is_err());
    }
}
