//! The rules: which commands a workspace accepts, and the events they produce.
//!
//! Deciding takes three steps, so that nothing external is asked before the cheap rules pass and
//! nothing is decided on unverified input:
//! 1. [`plan`] checks every rule that needs no outside answer and says what to look up;
//! 2. [`gather`](crate::gather) asks the ports and returns [`Facts`];
//! 3. [`decide`] checks the rest and returns the events.
//!
//! [`execute`] runs all three. All are pure except `gather`; none reads a clock.

use chrono::{DateTime, Utc};

use crate::commands::{Action, WorkspaceCommand};
use crate::error::DomainError;
use crate::events::{
    AccountBound, AgreementAccepted, PlanUpgraded, SettlementChanged, UpgradeRequested,
    WorkspaceEvent,
};
use crate::ports::{gather, Facts, Lookup, WorkspaceServices};
use crate::site_policy::{MethodKind, SitePolicy};
use crate::state::{check_once_a_month, Commercial, UpgradeStep, Workspace};
use crate::values::{CloudAccount, MethodId, Role, Settlement};

/// Checks the rules that need no outside answer and says what must be looked up.
///
/// # Errors
/// The rule refusals of SPEC §2 that do not depend on the Expense Center or the marketplaces.
pub fn plan(
    state: &Workspace,
    command: &WorkspaceCommand,
    policy: &SitePolicy,
    now: DateTime<Utc>,
) -> Result<Lookup, DomainError> {
    if command.actor.role != Role::Owner {
        return Err(DomainError::NotWorkspaceOwner {
            actor: command.actor.id.clone(),
            role: command.actor.role,
        });
    }
    match &command.action {
        Action::RequestUpgrade { site } => {
            refuse_if_commercial(state)?;
            if let Some(requested) = state.site() {
                return Err(DomainError::UpgradeAlreadyRequested {
                    site: requested.clone(),
                });
            }
            policy.site(site)?;
            Ok(Lookup::Nothing)
        }
        Action::BindAccount { user_name } => {
            check_can_bind(state, user_name)?;
            Ok(Lookup::FindAccount {
                user_name: user_name.clone(),
            })
        }
        Action::RegisterAndBindAccount { user_name, email } => {
            check_can_bind(state, user_name)?;
            Ok(Lookup::Register {
                user_name: user_name.clone(),
                email: email.clone(),
                request_id: command.command_id.clone(),
            })
        }
        Action::AcceptAgreement { .. } => {
            refuse_if_commercial(state)?;
            match state.upgrade_step() {
                UpgradeStep::NotRequested => Err(DomainError::UpgradeNotRequested),
                UpgradeStep::Requested => Err(DomainError::AccountNotBound),
                UpgradeStep::AccountBound => Ok(Lookup::Nothing),
                UpgradeStep::AgreementAccepted | UpgradeStep::Upgraded => {
                    Err(interrupted_upgrade())
                }
            }
        }
        Action::ChangeSettlement { method, account } => {
            let Some(commercial) = state.commercial() else {
                return Err(DomainError::NotCommercialYet);
            };
            let target = requested_settlement(commercial, policy, method, account.as_ref())?;
            let current = commercial.settlement();
            if target == *current {
                return Err(DomainError::SettlementUnchanged {
                    current: current.clone(),
                });
            }
            let site = policy.site(commercial.site())?;
            check_once_a_month(commercial, site, now)?;
            Ok(Lookup::Cloud {
                current: cloud_pair(current),
                target: cloud_pair(&target),
            })
        }
    }
}

/// Decides a command on verified facts: the events it produces, or why it is refused.
///
/// `facts` must come from [`gather`](crate::gather) for the [`Lookup`] that [`plan`] returns for
/// the same state, command and instant; otherwise the command is refused with
/// [`DomainError::VerificationMissing`].
///
/// # Errors
/// Every rule refusal of SPEC §2 (see [`DomainError`]).
pub fn decide(
    state: &Workspace,
    command: &WorkspaceCommand,
    policy: &SitePolicy,
    now: DateTime<Utc>,
    facts: &Facts,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let lookup = plan(state, command, policy, now)?;
    if facts.lookup != lookup {
        return Err(DomainError::VerificationMissing {
            what: "the lookup for this command",
        });
    }
    let by = command.actor.id.clone();
    let events = match &command.action {
        Action::RequestUpgrade { site } => {
            vec![WorkspaceEvent::UpgradeRequested(UpgradeRequested {
                site: site.clone(),
                by,
                at: now,
            })]
        }
        Action::BindAccount { .. } | Action::RegisterAndBindAccount { .. } => {
            let Some(account) = &facts.account else {
                return Err(DomainError::VerificationMissing {
                    what: "the Expense Center account",
                });
            };
            vec![WorkspaceEvent::AccountBound(AccountBound {
                user_name: account.user_name().clone(),
                account_id: account.account_id().clone(),
                newly_registered: account.newly_registered(),
                by,
                at: now,
            })]
        }
        Action::AcceptAgreement { version } => {
            let (Some(site), Some(account)) = (state.site(), state.bound_account()) else {
                // plan() returned Ok only for a bound workspace, which has both.
                return Err(DomainError::AccountNotBound);
            };
            vec![
                WorkspaceEvent::AgreementAccepted(AgreementAccepted {
                    agreement_version: version.clone(),
                    by: by.clone(),
                    at: now,
                }),
                WorkspaceEvent::PlanUpgraded(PlanUpgraded {
                    site: site.clone(),
                    agreement_version: version.clone(),
                    settlement: Settlement::Enterprise {
                        user_name: account.user_name.clone(),
                    },
                    by,
                    at: now,
                }),
            ]
        }
        Action::ChangeSettlement { method, account } => {
            let Some(commercial) = state.commercial() else {
                return Err(DomainError::NotCommercialYet);
            };
            let current = commercial.settlement().clone();
            if let Some((current_method, current_account)) = current.cloud() {
                match facts.current_cloud_active {
                    Some(false) => {}
                    Some(true) => {
                        return Err(DomainError::CloudSettlementLockedIn {
                            method: current_method.clone(),
                            account: current_account.clone(),
                        })
                    }
                    None => {
                        return Err(DomainError::VerificationMissing {
                            what: "the current cloud subscription",
                        })
                    }
                }
            }
            let target = requested_settlement(commercial, policy, method, account.as_ref())?;
            if let Settlement::Cloud { method, account } = &target {
                match &facts.target {
                    Some(Some(verified))
                        if verified.method() == method && verified.account() == account => {}
                    Some(_) => {
                        return Err(DomainError::CloudAccountNotSubscribed {
                            method: method.clone(),
                            account: account.clone(),
                        })
                    }
                    None => {
                        return Err(DomainError::VerificationMissing {
                            what: "the requested cloud subscription",
                        })
                    }
                }
            }
            vec![WorkspaceEvent::SettlementChanged(SettlementChanged {
                from: current,
                to: target,
                by,
                at: now,
            })]
        }
    };
    Ok(events)
}

/// Plans, gathers and decides a command against `state`, at the services' clock's instant.
///
/// # Errors
/// Every refusal of [`plan`], [`gather`](crate::gather) and [`decide`].
pub async fn execute(
    state: &Workspace,
    command: &WorkspaceCommand,
    services: &WorkspaceServices,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let now = services.clock.now();
    let lookup = plan(state, command, &services.policy, now)?;
    let facts = gather(lookup, services).await?;
    decide(state, command, &services.policy, now, &facts)
}

fn refuse_if_commercial(state: &Workspace) -> Result<(), DomainError> {
    match state.upgraded_at() {
        Some(upgraded_at) => Err(DomainError::AlreadyCommercial { upgraded_at }),
        None => Ok(()),
    }
}

fn interrupted_upgrade() -> DomainError {
    DomainError::InvalidTransition {
        event_type: "AgreementAccepted",
        reason: "the stream holds AgreementAccepted without the PlanUpgraded that must follow it"
            .into(),
    }
}

fn check_can_bind(state: &Workspace, requested: &crate::UserName) -> Result<(), DomainError> {
    refuse_if_commercial(state)?;
    match state.upgrade_step() {
        UpgradeStep::NotRequested => Err(DomainError::UpgradeNotRequested),
        UpgradeStep::Requested => Ok(()),
        UpgradeStep::AccountBound | UpgradeStep::AgreementAccepted | UpgradeStep::Upgraded => {
            Err(DomainError::AccountAlreadyBound {
                bound: state
                    .bound_account()
                    .map(|a| a.user_name.clone())
                    .unwrap_or_else(|| requested.clone()),
                requested: requested.clone(),
            })
        }
    }
}

fn cloud_pair(settlement: &Settlement) -> Option<(MethodId, CloudAccount)> {
    settlement
        .cloud()
        .map(|(method, account)| (method.clone(), account.clone()))
}

/// The settlement a change request asks for, checked against the site policy.
fn requested_settlement(
    commercial: &Commercial,
    policy: &SitePolicy,
    method: &MethodId,
    account: Option<&CloudAccount>,
) -> Result<Settlement, DomainError> {
    let site = policy.site(commercial.site())?;
    let spec = match policy.method(method) {
        Some(spec) if site.allows(method) => spec,
        _ => {
            return Err(DomainError::SettlementNotAllowedOnSite {
                method: method.clone(),
                site: site.id.clone(),
                allowed: site.allowed_list(),
            })
        }
    };
    let bad = |reason| DomainError::InvalidSettlementRequest {
        method: method.clone(),
        reason,
    };
    match spec.kind {
        MethodKind::Enterprise => match account {
            None => Ok(Settlement::Enterprise {
                user_name: commercial.account().user_name.clone(),
            }),
            Some(_) => Err(bad(
                "enterprise settles through the bound Expense Center account and takes no cloud account",
            )),
        },
        MethodKind::Cloud => {
            let Some(account) = account else {
                return Err(bad("a cloud method needs the cloud account id"));
            };
            match (spec.requires_instance, &account.instance_id) {
                (true, None) => Err(bad("this method needs the marketplace instance id")),
                (false, Some(_)) => Err(bad("this method takes no marketplace instance id")),
                _ => Ok(Settlement::Cloud {
                    method: method.clone(),
                    account: account.clone(),
                }),
            }
        }
    }
}
