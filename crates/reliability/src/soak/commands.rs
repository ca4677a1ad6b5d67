//! The command table: what a writer sends next on a workspace it owns (valid or refused, with
//! the outcome it must get), and what every writer sends in a race on a hot workspace.

use std::sync::atomic::Ordering;

use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, DomainError, Email, ExternalId,
    MethodId, Role, Settlement, SettlementRequest, Site, SiteId, SitePolicy, UpgradeStep, UserName,
    WorkspaceCommand, WorkspaceId,
};

use super::writer::{failure_kind, Owned};
use super::Ctx;
use crate::rng::Rng;

/// What a command must do.
#[derive(Clone, Copy, Debug)]
pub(super) enum Expect {
    /// Succeed.
    Ok,
    /// Succeed, or be refused by one of these rules.
    OkOr(&'static [&'static str]),
    /// Be refused by one of these rules.
    Refused(&'static [&'static str]),
    /// Anything a rule allows (races).
    Any,
}

fn actor(name: &str, role: Role) -> Result<Actor, String> {
    Ok(Actor::new(
        ActorId::parse(&format!("{}-{name}", role.as_str())).map_err(|e| e.to_string())?,
        role,
    ))
}

fn cloud_account(
    site: &Site,
    policy: &SitePolicy,
    id: &str,
) -> Result<Option<(MethodId, CloudAccount)>, String> {
    let Some(method) = site
        .default_cloud_method
        .as_ref()
        .and_then(|m| policy.method(m))
    else {
        return Ok(None);
    };
    let e = |e: DomainError| e.to_string();
    let account = CloudAccount {
        account_id: ExternalId::parse(id).map_err(e)?,
        instance_id: if method.requires_instance {
            Some(ExternalId::parse(&format!("{id}-i")).map_err(e)?)
        } else {
            None
        },
    };
    Ok(Some((method.id.clone(), account)))
}

async fn subscribe(
    ctx: &Ctx,
    method: &MethodId,
    account: &CloudAccount,
    active: bool,
) -> Result<(), String> {
    ctx.totals.subscriptions.fetch_add(1, Ordering::Relaxed);
    ctx.embedded
        .marketplace
        .set(method, account, active)
        .await
        .map_err(|e| format!("the marketplace failed: {e}"))
}

/// A planned command: its workspace, the command, what it must do, and which of the writer's own
/// workspaces it is on (none in a race).
pub(super) type Planned = (WorkspaceId, WorkspaceCommand, Expect, Option<usize>);

/// The next command for a workspace this writer owns (and knows the state of).
pub(super) async fn ordinary_command(
    ctx: &Ctx,
    k: usize,
    j: u64,
    w: &mut Owned,
    rng: &mut Rng,
) -> Result<(WorkspaceCommand, Expect), String> {
    let e = |e: DomainError| e.to_string();
    let name = w.name.as_str();
    let owner = actor(name, Role::Owner)?;
    let id = ExternalId::parse(&format!("{name}.c{k}-{j}")).map_err(e)?;
    let cmd =
        |actor: &Actor, action: Action| WorkspaceCommand::new(id.clone(), actor.clone(), action);
    let version = AgreementVersion::parse("2024-06").map_err(e)?;
    let site = w.site.id.clone();
    let valid = rng.percent(70);
    let choice = rng.below(5);
    Ok(match w.state.upgrade_step() {
        UpgradeStep::NotRequested => {
            if valid {
                (cmd(&owner, Action::RequestUpgrade { site }), Expect::Ok)
            } else {
                match choice {
                    0 | 1 => (
                        cmd(
                            &actor(
                                name,
                                if choice == 0 {
                                    Role::Admin
                                } else {
                                    Role::Member
                                },
                            )?,
                            Action::RequestUpgrade { site },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                    2 => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["upgrade-not-requested"]),
                    ),
                    3 => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(
                                MethodId::enterprise(),
                                None,
                            )),
                        ),
                        Expect::Refused(&["not-commercial-yet"]),
                    ),
                    _ => (
                        cmd(
                            &owner,
                            Action::RequestUpgrade {
                                site: SiteId::parse("xx9").map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["unknown-site"]),
                    ),
                }
            }
        }
        UpgradeStep::Requested => {
            if valid {
                if rng.one_in(2) {
                    let user_name = UserName::parse(&format!("{name}-u{j}")).map_err(e)?;
                    let email = Email::parse(&format!("u{j}@{name}.example.com")).map_err(e)?;
                    (
                        cmd(&owner, Action::RegisterAndBindAccount { user_name, email }),
                        Expect::Ok,
                    )
                } else {
                    let user_name = ctx.shared[rng.index(ctx.shared.len())].clone();
                    (cmd(&owner, Action::BindAccount { user_name }), Expect::Ok)
                }
            } else {
                match choice {
                    0 => (
                        cmd(
                            &owner,
                            Action::BindAccount {
                                user_name: UserName::parse(&format!("nobody-{name}-{j}"))
                                    .map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["unknown-user-name"]),
                    ),
                    1 => (
                        cmd(
                            &owner,
                            Action::RegisterAndBindAccount {
                                user_name: ctx.shared[rng.index(ctx.shared.len())].clone(),
                                email: Email::parse("taken@soak.example.com").map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["user-name-taken"]),
                    ),
                    2 => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["account-not-bound"]),
                    ),
                    3 => (
                        cmd(&owner, Action::RequestUpgrade { site }),
                        Expect::Refused(&["upgrade-already-requested"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Member)?,
                            Action::AcceptAgreement { version },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                }
            }
        }
        UpgradeStep::AccountBound => {
            if valid {
                (cmd(&owner, Action::AcceptAgreement { version }), Expect::Ok)
            } else {
                match choice {
                    0 | 1 => (
                        cmd(
                            &owner,
                            Action::RegisterAndBindAccount {
                                user_name: UserName::parse(&format!("{name}-x{j}")).map_err(e)?,
                                email: Email::parse(&format!("x{j}@{name}.example.com"))
                                    .map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["account-already-bound"]),
                    ),
                    2 => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(
                                MethodId::enterprise(),
                                None,
                            )),
                        ),
                        Expect::Refused(&["not-commercial-yet"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Admin)?,
                            Action::AcceptAgreement { version },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                }
            }
        }
        UpgradeStep::AgreementAccepted => {
            return Err(format!(
                "{name}: the model holds AgreementAccepted without PlanUpgraded"
            ))
        }
        UpgradeStep::Upgraded => {
            let current = w.state.settlement().cloned();
            let cloud = cloud_account(&w.site, &ctx.policy, &format!("{name}-a{j}"))?;
            match (valid, cloud, current) {
                (true, Some((method, account)), Some(Settlement::Enterprise { .. })) => {
                    subscribe(ctx, &method, &account, true).await?;
                    (
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(method, Some(account))),
                        ),
                        Expect::OkOr(&["settlement-change-too-soon"]),
                    )
                }
                (true, Some(_), Some(Settlement::Cloud { method, account })) => {
                    subscribe(ctx, &method, &account, false).await?;
                    (
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(
                                MethodId::enterprise(),
                                None,
                            )),
                        ),
                        Expect::OkOr(&["settlement-change-too-soon"]),
                    )
                }
                (_, cloud, current) => match (choice, cloud, current) {
                    (0, Some((method, account)), _) => (
                        // Never subscribed.
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(method, Some(account))),
                        ),
                        Expect::Refused(&[
                            "cloud-account-not-subscribed",
                            "settlement-change-too-soon",
                            "cloud-settlement-locked-in",
                        ]),
                    ),
                    (0, None, _) => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement(SettlementRequest::of(
                                MethodId::parse("aws").map_err(e)?,
                                Some(CloudAccount {
                                    account_id: ExternalId::parse("123456789012").map_err(e)?,
                                    instance_id: None,
                                }),
                            )),
                        ),
                        Expect::Refused(&["settlement-not-allowed-on-site"]),
                    ),
                    (1, _, Some(current)) => {
                        let (method, account) = match current {
                            Settlement::Enterprise { .. } => (MethodId::enterprise(), None),
                            Settlement::Cloud { method, account } => (method, Some(account)),
                        };
                        (
                            cmd(
                                &owner,
                                Action::ChangeSettlement(SettlementRequest::of(method, account)),
                            ),
                            Expect::Refused(&["settlement-unchanged"]),
                        )
                    }
                    (2, _, _) => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["already-commercial"]),
                    ),
                    (3, _, _) => (
                        cmd(
                            &owner,
                            Action::BindAccount {
                                user_name: ctx.shared[0].clone(),
                            },
                        ),
                        Expect::Refused(&["already-commercial"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Admin)?,
                            Action::ChangeSettlement(SettlementRequest::of(
                                MethodId::enterprise(),
                                None,
                            )),
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                },
            }
        }
    })
}

/// The command writer `k` sends in race `race_no` on hot workspace `h`: each writer something
/// different, all at once.
pub(super) async fn race_command(
    ctx: &Ctx,
    k: usize,
    j: u64,
    race_no: u64,
    h: usize,
    anomalies: &mut Vec<(&'static str, String)>,
) -> Result<Planned, String> {
    let e = |e: DomainError| e.to_string();
    let workspace = ctx.hot[h].clone();
    let name = workspace.to_string();
    // A failed read is an anomaly; the writer reads once more so the race still happens.
    let state =
        match ctx.embedded.store.state(&workspace).await {
            Ok(s) => s,
            Err(err) => {
                let message = format!("{err} (reading the state of hot workspace {name})");
                anomalies.push((failure_kind(&message), message));
                ctx.embedded.store.state(&workspace).await.map_err(|err| {
                    format!("{err} (reading the state of hot workspace {name} again)")
                })?
            }
        };
    let owner = actor(&name, Role::Owner)?;
    let id = ExternalId::parse(&format!("{name}.c{k}-{j}")).map_err(e)?;
    let cmd = |action: Action| WorkspaceCommand::new(id.clone(), owner.clone(), action);
    let sites: Vec<&Site> = ctx.policy.sites().collect();
    let command = match state.upgrade_step() {
        UpgradeStep::NotRequested => cmd(Action::RequestUpgrade {
            site: sites
                .get((k + usize::try_from(race_no).unwrap_or(0)) % sites.len().max(1))
                .ok_or("the site policy has no sites")?
                .id
                .clone(),
        }),
        UpgradeStep::Requested if k % 2 == 0 => cmd(Action::RegisterAndBindAccount {
            user_name: UserName::parse(&format!("{name}-k{k}-r{race_no}")).map_err(e)?,
            email: Email::parse(&format!("k{k}@{name}.example.com")).map_err(e)?,
        }),
        UpgradeStep::Requested => cmd(Action::BindAccount {
            user_name: ctx.shared[k % ctx.shared.len()].clone(),
        }),
        UpgradeStep::AccountBound => cmd(Action::AcceptAgreement {
            version: AgreementVersion::parse(&format!("v{k}")).map_err(e)?,
        }),
        UpgradeStep::AgreementAccepted => {
            return Err(format!(
                "{name}: the store's state holds AgreementAccepted without PlanUpgraded"
            ))
        }
        UpgradeStep::Upgraded => {
            let site = state
                .site()
                .and_then(|s| ctx.policy.site(s).ok())
                .cloned()
                .ok_or_else(|| format!("{name}: commercial without a known site"))?;
            let current = state.settlement().cloned();
            match (
                cloud_account(&site, &ctx.policy, &format!("{name}-k{k}"))?,
                current,
            ) {
                (Some(_), Some(Settlement::Cloud { method, account })) if k % 3 == 0 => {
                    subscribe(ctx, &method, &account, false).await?;
                    cmd(Action::ChangeSettlement(SettlementRequest::of(
                        MethodId::enterprise(),
                        None,
                    )))
                }
                (Some((method, account)), _) => {
                    subscribe(ctx, &method, &account, true).await?;
                    cmd(Action::ChangeSettlement(SettlementRequest::of(
                        method,
                        Some(account),
                    )))
                }
                (None, _) => cmd(Action::ChangeSettlement(SettlementRequest::of(
                    MethodId::enterprise(),
                    None,
                ))),
            }
        }
    };
    Ok((workspace, command, Expect::Any, None))
}
