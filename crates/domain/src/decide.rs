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

use crate::commands::{Action, SettlementRequest, WorkspaceCommand};
use crate::error::DomainError;
use crate::events::{
    AccountBound, AgreementAccepted, ArrearsRecorded, ArrearsSettled, ChangeReason,
    CloudSubscriptionEnded, CloudSubscriptionResumed, CountdownReminded, CountdownStarted,
    PlanUpgraded, SettlementChanged, UpgradeRequested, WorkspaceDissolved, WorkspaceEvent,
    WorkspaceLocked, WorkspaceUnlocked,
};
use crate::ports::{gather, Facts, Lookup, WorkspaceServices};
use crate::site_policy::{SitePolicy, SubscriptionEnd};
use crate::standing::{list, Countdown, Standing};
use crate::state::{check_once_a_month, Commercial, UpgradeStep, Workspace};
use crate::values::{ActorId, CloudAccount, MethodId, Role, Settlement};

/// Checks the rules that need no outside answer and says what must be looked up.
///
/// The checks run in this order: a dissolved workspace refuses everything; then the actor's
/// role; then the command's instant against the stream's newest event; then a locked workspace
/// refuses every owner command that clears no reason; then the action's own rules.
///
/// # Errors
/// The rule refusals of SPEC §2 and §10 that do not depend on the Expense Center or the
/// marketplaces.
pub fn plan(
    state: &Workspace,
    command: &WorkspaceCommand,
    policy: &SitePolicy,
    now: DateTime<Utc>,
) -> Result<Lookup, DomainError> {
    let commercial = state.commercial();
    if let Some(dissolved_at) = commercial.and_then(|c| c.standing().dissolved_at()) {
        return Err(DomainError::WorkspaceDissolved { dissolved_at });
    }
    command.action.permission().check(&command.actor)?;
    if let Some(newest) = state.newest_event_at() {
        if now < newest {
            return Err(DomainError::ClockBehindStream { now, newest });
        }
    }
    if let Some(c) = commercial {
        if let Some(locked_at) = c.standing().locked_at() {
            if command.actor.role == Role::Owner && !clears_a_reason(c, &command.action) {
                return Err(DomainError::WorkspaceLocked {
                    locked_at,
                    reasons: list(c.reasons()),
                });
            }
        }
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
        Action::ChangeSettlement(request) => {
            let Some(commercial) = state.commercial() else {
                return Err(DomainError::NotCommercialYet);
            };
            let target = requested_settlement(commercial, policy, request)?;
            let current = commercial.settlement();
            if target == *current {
                return Err(DomainError::SettlementUnchanged {
                    current: current.clone(),
                });
            }
            let site = policy.site(commercial.site())?;
            if change_reason(commercial, &target) == ChangeReason::OwnerRequest {
                check_once_a_month(commercial, site, now)?;
            }
            Ok(Lookup::Cloud {
                current: cloud_pair(current),
                target: cloud_pair(&target),
            })
        }
        Action::RecordArrears { bill, .. } => {
            let c = commercial.ok_or(DomainError::NotCommercialYet)?;
            if c.bills.contains(bill) {
                return Err(DomainError::ArrearsAlreadyRecorded { bill: bill.clone() });
            }
            Ok(Lookup::Nothing)
        }
        Action::SettleArrears { bill, .. } => {
            let c = commercial.ok_or(DomainError::NotCommercialYet)?;
            if !c.reasons().iter().any(|r| r.is_bill(bill)) {
                let open: Vec<&str> = c
                    .reasons()
                    .iter()
                    .filter_map(|r| match r {
                        crate::Reason::Arrears { bill, .. } => Some(bill.as_str()),
                        crate::Reason::CloudSubscriptionEnded { .. } => None,
                    })
                    .collect();
                return Err(DomainError::UnknownArrears {
                    bill: bill.clone(),
                    open: if open.is_empty() {
                        "none".to_owned()
                    } else {
                        open.join(", ")
                    },
                });
            }
            Ok(Lookup::Nothing)
        }
        Action::ReportSubscriptionEnded { method, account } => {
            let c = commercial.ok_or(DomainError::NotCommercialYet)?;
            if c.settlement().cloud() != Some((method, account)) {
                return Err(DomainError::NotSettlingThroughAccount {
                    method: method.clone(),
                    account: account.clone(),
                    settlement: Box::new(c.settlement().clone()),
                });
            }
            if c.reasons().iter().any(|r| r.is_cloud(method, account)) {
                return Err(DomainError::CloudSubscriptionAlreadyEnded {
                    method: method.clone(),
                    account: account.clone(),
                });
            }
            Ok(Lookup::Nothing)
        }
        Action::ReportSubscriptionResumed { method, account } => {
            let c = commercial.ok_or(DomainError::NotCommercialYet)?;
            if !c.reasons().iter().any(|r| r.is_cloud(method, account)) {
                return Err(DomainError::CloudSubscriptionNotEnded {
                    method: method.clone(),
                    account: account.clone(),
                });
            }
            Ok(Lookup::Cloud {
                current: None,
                target: Some((method.clone(), account.clone())),
            })
        }
        Action::SendReminder => {
            let running = running_countdown(commercial)?;
            if running.reminded_at.is_some() {
                return Err(DomainError::ReminderAlreadySent {
                    countdown: running.number,
                });
            }
            due(running, "reminder", running.remind_at, now)
        }
        Action::Lock => {
            let running = running_countdown(commercial)?;
            due(running, "lock", running.deadline, now)
        }
        Action::Dissolve => {
            running_countdown(commercial)?;
            Ok(Lookup::Nothing)
        }
    }
}

/// Whether an action clears an open reason (the only owner commands a locked workspace takes).
fn clears_a_reason(c: &Commercial, action: &Action) -> bool {
    match action {
        Action::SettleArrears { bill, .. } => c.reasons().iter().any(|r| r.is_bill(bill)),
        Action::ChangeSettlement(request) => {
            request.method.is_enterprise() && request.is_bare() && ended_cloud(c)
        }
        _ => false,
    }
}

/// Whether the workspace settles through a cloud account whose subscription ended.
fn ended_cloud(c: &Commercial) -> bool {
    c.settlement()
        .cloud()
        .is_some_and(|(method, account)| c.reasons().iter().any(|r| r.is_cloud(method, account)))
}

/// Why a change to `target` happens: moving an ended cloud settlement to enterprise is the
/// cloud subscription's doing (not counted toward once a month); anything else is the owner's.
fn change_reason(c: &Commercial, target: &Settlement) -> ChangeReason {
    if target.cloud().is_none() && ended_cloud(c) {
        ChangeReason::CloudSubscriptionEnded
    } else {
        ChangeReason::OwnerRequest
    }
}

fn running_countdown(commercial: Option<&Commercial>) -> Result<&Countdown, DomainError> {
    let c = commercial.ok_or(DomainError::NotCommercialYet)?;
    match c.standing() {
        Standing::Countdown(running) => Ok(running),
        other => Err(DomainError::NotInCountdown {
            standing: other.as_str(),
        }),
    }
}

fn due(
    running: &Countdown,
    what: &'static str,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Lookup, DomainError> {
    if now < due_at {
        return Err(DomainError::DeadlineNotReached {
            what,
            countdown: running.number,
            due_at,
            now,
        });
    }
    Ok(Lookup::Nothing)
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
        Action::ChangeSettlement(request) => {
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
            let target = requested_settlement(commercial, policy, request)?;
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
                reason: change_reason(commercial, &target),
                from: current,
                to: target,
                by,
                at: now,
            })]
        }
        Action::RecordArrears { bill, amount } => {
            vec![WorkspaceEvent::ArrearsRecorded(ArrearsRecorded {
                amount: *amount,
                at: now,
                bill: bill.clone(),
                by,
            })]
        }
        Action::SettleArrears {
            bill,
            stored_value_card,
        } => vec![WorkspaceEvent::ArrearsSettled(ArrearsSettled {
            at: now,
            bill: bill.clone(),
            by,
            stored_value_card: stored_value_card.clone(),
        })],
        Action::ReportSubscriptionEnded { method, account } => {
            let Some(c) = state.commercial() else {
                return Err(DomainError::NotCommercialYet);
            };
            let end = policy
                .method(method)
                .map_or(SubscriptionEnd::Lock, |spec| spec.subscription_end());
            match end {
                SubscriptionEnd::FallBack => {
                    vec![WorkspaceEvent::SettlementChanged(SettlementChanged {
                        at: now,
                        by,
                        from: c.settlement().clone(),
                        reason: ChangeReason::CloudSubscriptionEnded,
                        to: Settlement::Enterprise {
                            user_name: c.account().user_name.clone(),
                        },
                    })]
                }
                SubscriptionEnd::Lock => {
                    vec![WorkspaceEvent::CloudSubscriptionEnded(
                        CloudSubscriptionEnded {
                            account: account.clone(),
                            at: now,
                            by,
                            method: method.clone(),
                        },
                    )]
                }
            }
        }
        Action::ReportSubscriptionResumed { method, account } => {
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
                        what: "the resumed cloud subscription",
                    })
                }
            }
            vec![WorkspaceEvent::CloudSubscriptionResumed(
                CloudSubscriptionResumed {
                    account: account.clone(),
                    at: now,
                    by,
                    method: method.clone(),
                },
            )]
        }
        Action::SendReminder => {
            let running = running_countdown(state.commercial())?;
            vec![WorkspaceEvent::CountdownReminded(CountdownReminded {
                at: now,
                by,
                countdown: running.number,
                deadline: running.deadline,
            })]
        }
        Action::Lock => {
            let running = running_countdown(state.commercial())?;
            vec![WorkspaceEvent::WorkspaceLocked(WorkspaceLocked {
                at: now,
                by,
                countdown: running.number,
                deadline: running.deadline,
            })]
        }
        Action::Dissolve => {
            let running = running_countdown(state.commercial())?;
            vec![WorkspaceEvent::WorkspaceDissolved(WorkspaceDissolved {
                at: now,
                by,
                countdown: running.number,
            })]
        }
    };
    follow_ups(state, events, policy, &command.actor.id, now)
}

/// Adds what a command's events imply for the standing: the first reason on a workspace in good
/// standing starts a countdown; clearing the last reason unlocks it.
fn follow_ups(
    state: &Workspace,
    mut events: Vec<WorkspaceEvent>,
    policy: &SitePolicy,
    by: &ActorId,
    now: DateTime<Utc>,
) -> Result<Vec<WorkspaceEvent>, DomainError> {
    let after = Workspace::replay_onto(state, &events)?;
    let Some(c) = after.commercial() else {
        return Ok(events);
    };
    match c.standing() {
        Standing::Good if !c.reasons().is_empty() => {
            let deadline = policy.standing().deadline(now);
            events.push(WorkspaceEvent::CountdownStarted(CountdownStarted {
                at: now,
                by: by.clone(),
                countdown: c.countdowns().saturating_add(1),
                deadline,
                remind_at: policy.standing().remind_at(deadline).max(now),
            }));
        }
        Standing::Countdown(running)
        | Standing::Locked {
            countdown: running, ..
        } if c.reasons().is_empty() => {
            events.push(WorkspaceEvent::WorkspaceUnlocked(WorkspaceUnlocked {
                at: now,
                by: by.clone(),
                countdown: running.number,
            }));
        }
        _ => {}
    }
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

/// The settlement a change request asks for, checked against the site policy: the method must be
/// one the site allows, and the ids given with it the ones it takes.
fn requested_settlement(
    commercial: &Commercial,
    policy: &SitePolicy,
    request: &SettlementRequest,
) -> Result<Settlement, DomainError> {
    let method = &request.method;
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
    let account = spec
        .cloud_account(request.account.as_ref(), request.instance.as_ref())
        .map_err(|reason| DomainError::InvalidSettlementRequest {
            method: method.clone(),
            reason,
        })?;
    Ok(match account {
        None => Settlement::Enterprise {
            user_name: commercial.account().user_name.clone(),
        },
        Some(account) => Settlement::Cloud {
            method: method.clone(),
            account,
        },
    })
}
