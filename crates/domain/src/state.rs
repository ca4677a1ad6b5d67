//! The workspace's state and how events evolve it.
//!
//! The plan is structural: [`Workspace`] is either in the Experience stage (with its upgrade
//! progress) or in the Commercial stage, and the only function that turns a commercial state into
//! a next state, `evolve_commercial`, returns a [`Commercial`] — there is no path back. The fields
//! are private, so a host can only read them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::events::{
    AccountBound, AgreementAccepted, ChangeReason, PlanUpgraded, SettlementChanged,
    UpgradeRequested, WorkspaceEvent,
};
use crate::site_policy::SitePolicy;
use crate::standing::{self, Reason, Standing};
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

    /// Folds events from a fresh workspace, refusing any history the rules do not allow.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] naming the first event that cannot follow.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a WorkspaceEvent>,
    ) -> Result<Self, DomainError> {
        events
            .into_iter()
            .try_fold(Self::default(), |state, event| state.evolve(event))
    }

    /// The state after `events`, folded onto this one.
    ///
    /// # Errors
    /// As [`Workspace::evolve`], for the first event that cannot follow.
    pub fn replay_onto<'a>(
        &self,
        events: impl IntoIterator<Item = &'a WorkspaceEvent>,
    ) -> Result<Self, DomainError> {
        events
            .into_iter()
            .try_fold(self.clone(), |state, event| state.evolve(event))
    }

    /// The state after `event`, or why `event` cannot follow this state.
    ///
    /// This checks the history's shape (I1, I2 and consistency of what events repeat); use
    /// [`Workspace::check_policy`] as well to check the site-policy rules an audit replays.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`]: a second upgrade request, a binding before a request or
    /// after one, an agreement before a binding, a `PlanUpgraded` not right after
    /// `AgreementAccepted` or not matching it, any upgrade step once commercial, a settlement
    /// change before the upgrade or not starting from the current settlement.
    pub fn evolve(&self, event: &WorkspaceEvent) -> Result<Self, DomainError> {
        let stage = match &self.stage {
            Stage::Experience { progress } => match progress_evolve(progress, event)? {
                Next::Progress(progress) => Stage::Experience { progress },
                Next::Upgraded(c) => Stage::Commercial(c),
            },
            Stage::Commercial(c) => Stage::Commercial(evolve_commercial(c, event)?),
        };
        let at = event.occurred_at();
        Ok(Self {
            stage,
            newest: Some(self.newest.map_or(at, |newest| newest.max(at))),
        })
    }

    /// Checks the rules that depend on the site policy for an event that would follow this
    /// state: the site exists, the new settlement is allowed on it, and a settlement change comes
    /// no sooner than the calendar month (site time zone) after the last one.
    ///
    /// # Errors
    /// [`DomainError::UnknownSite`], [`DomainError::SettlementNotAllowedOnSite`] or
    /// [`DomainError::SettlementChangeTooSoon`].
    pub fn check_policy(
        &self,
        event: &WorkspaceEvent,
        policy: &SitePolicy,
    ) -> Result<(), DomainError> {
        match event {
            WorkspaceEvent::UpgradeRequested(e) => policy.site(&e.site).map(|_| ()),
            WorkspaceEvent::SettlementChanged(e) => {
                let Some(c) = self.commercial() else {
                    return Err(DomainError::NotCommercialYet);
                };
                let site = policy.site(&c.site)?;
                let method = e.to.method();
                if !site.allows(&method) {
                    return Err(DomainError::SettlementNotAllowedOnSite {
                        method,
                        site: site.id.clone(),
                        allowed: site.allowed_list(),
                    });
                }
                match e.reason {
                    ChangeReason::OwnerRequest => check_once_a_month(c, site, e.at),
                    ChangeReason::CloudSubscriptionEnded => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// I6: a change is allowed from the first instant of the month after the last change.
pub(crate) fn check_once_a_month(
    c: &Commercial,
    site: &crate::site_policy::Site,
    at: DateTime<Utc>,
) -> Result<(), DomainError> {
    if let Some(last) = c.last_settlement_change_at {
        let next_allowed_at = site.start_of_next_month(last);
        if at < next_allowed_at {
            return Err(DomainError::SettlementChangeTooSoon {
                last_changed_at: last,
                next_allowed_at,
                time_zone: site.time_zone.name().to_owned(),
            });
        }
    }
    Ok(())
}

#[allow(clippy::large_enum_variant)] // short-lived, as Stage
enum Next {
    Progress(Progress),
    Upgraded(Commercial),
}

fn progress_evolve(progress: &Progress, event: &WorkspaceEvent) -> Result<Next, DomainError> {
    let kind = event.event_type();
    match (progress, event) {
        (
            Progress::NotRequested,
            WorkspaceEvent::UpgradeRequested(UpgradeRequested { site, at, .. }),
        ) => Ok(Next::Progress(Progress::Requested {
            site: site.clone(),
            requested_at: *at,
        })),
        (Progress::Requested { site, .. }, WorkspaceEvent::AccountBound(e)) => {
            let AccountBound {
                user_name,
                account_id,
                newly_registered,
                at,
                ..
            } = e;
            Ok(Next::Progress(Progress::Bound {
                site: site.clone(),
                account: BoundAccount {
                    user_name: user_name.clone(),
                    account_id: account_id.clone(),
                    newly_registered: *newly_registered,
                    bound_at: *at,
                },
            }))
        }
        (Progress::Bound { site, account }, WorkspaceEvent::AgreementAccepted(e)) => {
            let AgreementAccepted {
                agreement_version, ..
            } = e;
            Ok(Next::Progress(Progress::Accepted {
                site: site.clone(),
                account: account.clone(),
                agreement_version: agreement_version.clone(),
            }))
        }
        (
            Progress::Accepted {
                site,
                account,
                agreement_version,
            },
            WorkspaceEvent::PlanUpgraded(e),
        ) => {
            let PlanUpgraded {
                site: up_site,
                agreement_version: up_version,
                settlement,
                at,
                ..
            } = e;
            if up_site != site {
                return Err(transition(
                    kind,
                    format!("it names site {up_site} but the upgrade was requested for {site}"),
                ));
            }
            if up_version != agreement_version {
                return Err(transition(
                    kind,
                    format!("it names agreement {up_version} but {agreement_version} was accepted"),
                ));
            }
            let default = Settlement::Enterprise {
                user_name: account.user_name.clone(),
            };
            if *settlement != default {
                return Err(transition(
                    kind,
                    format!("the upgrade must settle through {default}, not {settlement}"),
                ));
            }
            Ok(Next::Upgraded(Commercial {
                site: site.clone(),
                account: account.clone(),
                agreement_version: agreement_version.clone(),
                upgraded_at: *at,
                settlement: default,
                last_settlement_change_at: None,
                settlement_changes: 0,
                standing: Standing::Good,
                reasons: Vec::new(),
                countdowns: 0,
                bills: BTreeSet::new(),
            }))
        }
        (Progress::Accepted { .. }, _) => Err(transition(
            kind,
            "AgreementAccepted must be followed directly by PlanUpgraded",
        )),
        (Progress::NotRequested, _) => Err(transition(kind, "the upgrade was not requested")),
        (Progress::Requested { .. }, _) => Err(transition(
            kind,
            "after UpgradeRequested only AccountBound may follow",
        )),
        (Progress::Bound { .. }, _) => Err(transition(
            kind,
            "after AccountBound only AgreementAccepted may follow",
        )),
    }
}

/// The only transition out of a commercial state; its type shows it stays commercial (I1).
fn evolve_commercial(c: &Commercial, event: &WorkspaceEvent) -> Result<Commercial, DomainError> {
    let kind = event.event_type();
    // I13: dissolved is terminal.
    if let Some(dissolved_at) = c.standing.dissolved_at() {
        return Err(transition(
            kind,
            format!("the workspace was dissolved at {dissolved_at}; nothing can follow"),
        ));
    }
    match event {
        WorkspaceEvent::SettlementChanged(SettlementChanged {
            from,
            to,
            at,
            reason,
            ..
        }) => {
            if *from != c.settlement {
                return Err(transition(
                    kind,
                    format!(
                        "it changes from {from} but the workspace settles through {}",
                        c.settlement
                    ),
                ));
            }
            if to == from {
                return Err(transition(kind, format!("it changes nothing ({to})")));
            }
            if let Settlement::Enterprise { user_name } = to {
                if *user_name != c.account.user_name {
                    return Err(transition(
                        kind,
                        format!(
                            "enterprise settlement must use the bound account {}, not {user_name}",
                            c.account.user_name
                        ),
                    ));
                }
            }
            if *reason == ChangeReason::CloudSubscriptionEnded
                && (from.cloud().is_none() || to.cloud().is_some())
            {
                return Err(transition(
                    kind,
                    format!("only a move from a cloud account to enterprise can have reason cloud-subscription-ended, not {from} to {to}"),
                ));
            }
            let mut next = c.clone();
            if let Some((method, account)) = from.cloud() {
                // Settling elsewhere clears the old account's ended subscription.
                next.reasons.retain(|r| !r.is_cloud(method, account));
            }
            next.settlement = to.clone();
            if *reason == ChangeReason::OwnerRequest {
                next.last_settlement_change_at = Some(*at);
            }
            next.settlement_changes = c.settlement_changes.saturating_add(1);
            Ok(next)
        }
        WorkspaceEvent::PlanUpgraded(_) => Err(transition(
            kind,
            "the workspace is already commercial: a second upgrade is not a valid history",
        )),
        _ => standing::evolve(c, event),
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
