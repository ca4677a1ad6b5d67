//! How events change a workspace: the strict fold ([`Workspace::evolve`]) that refuses any
//! history the rules do not allow, and the site-policy checks an audit replays
//! ([`Workspace::check_policy`]). The only function that turns a commercial state into a next
//! state, `evolve_commercial`, returns a [`Commercial`]: there is no path back.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{transition, BoundAccount, Commercial, Progress, Stage, Workspace};
use crate::error::DomainError;
use crate::events::{
    AccountBound, AgreementAccepted, ChangeReason, PlanUpgraded, SettlementChanged,
    UpgradeRequested, WorkspaceEvent,
};
use crate::site_policy::SitePolicy;
use crate::standing::{self, Standing};
use crate::values::Settlement;

impl Workspace {
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
