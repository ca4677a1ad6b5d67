//! The documented flow of one workspace, as the load generator drives it: deterministic for a
//! seed and a workspace number, with deliberate refusals along the way.

use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, DomainError, Email, ExternalId,
    MethodId, Role, SettlementRequest, SitePolicy, UserName, WorkspaceCommand, WorkspaceId,
};

use crate::rng::Rng;

/// One step of a workspace's flow.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// Register an Expense Center account outside any command (shared by several workspaces;
    /// "taken" is fine).
    Register {
        /// The user name.
        user_name: UserName,
        /// Its e-mail address.
        email: Email,
    },
    /// Start an active subscription in the embedded marketplace.
    Subscribe {
        /// The cloud method.
        method: MethodId,
        /// The cloud account.
        account: CloudAccount,
    },
    /// A workspace command; `expect` is the rule that must refuse it, if one must.
    Command {
        /// The command.
        command: WorkspaceCommand,
        /// The rules that may refuse it (empty: it must succeed).
        may_refuse: &'static [&'static str],
        /// Whether it must be refused (by one of `may_refuse`).
        must_refuse: bool,
    },
}

/// How many shared Expense Center accounts the workspaces bind.
pub(crate) const SHARED_ACCOUNTS: u64 = 16;

/// The agreement version accepted.
pub(crate) const AGREEMENT: &str = "2024-06";

/// The name of workspace `index` (with `prefix`).
pub(crate) fn workspace_name(prefix: &str, index: u64) -> String {
    format!("{prefix}w{index:05}")
}

/// The steps of workspace `index` in a run seeded with `seed`.
///
/// # Errors
/// A generated value that does not validate (a bug in this generator).
pub(crate) fn workspace_flow(
    policy: &SitePolicy,
    prefix: &str,
    seed: u64,
    index: u64,
) -> Result<(WorkspaceId, Vec<Step>), DomainError> {
    let mut rng = Rng::for_item(seed, index);
    let name = workspace_name(prefix, index);
    let workspace = WorkspaceId::parse(&name)?;
    let sites: Vec<_> = policy.sites().collect();
    let Some(site) = sites.get(rng.index(sites.len())) else {
        return Err(DomainError::InvalidSitePolicy {
            reason: "the policy has no sites".into(),
        });
    };
    let owner = Actor::new(ActorId::parse(&format!("owner-{name}"))?, Role::Owner);
    let admin = Actor::new(ActorId::parse(&format!("admin-{name}"))?, Role::Admin);
    let mut steps = Vec::new();
    let command = |step: &str,
                   actor: &Actor,
                   action: Action,
                   may_refuse: &'static [&'static str],
                   must_refuse: bool|
     -> Result<Step, DomainError> {
        Ok(Step::Command {
            command: WorkspaceCommand::new(
                ExternalId::parse(&format!("{name}.{step}"))?,
                actor.clone(),
                action,
            ),
            may_refuse,
            must_refuse,
        })
    };
    let version = AgreementVersion::parse(AGREEMENT)?;
    let request = Action::RequestUpgrade {
        site: site.id.clone(),
    };
    if rng.one_in(5) {
        steps.push(command(
            "early-accept",
            &owner,
            Action::AcceptAgreement {
                version: version.clone(),
            },
            &["upgrade-not-requested"],
            true,
        )?);
    }
    if rng.one_in(6) {
        steps.push(command(
            "admin-request",
            &admin,
            request.clone(),
            &["not-workspace-owner"],
            true,
        )?);
    }
    steps.push(command("request", &owner, request, &[], false)?);
    if rng.one_in(3) {
        steps.push(command(
            "bind-unknown",
            &owner,
            Action::BindAccount {
                user_name: UserName::parse(&format!("ghost-{name}"))?,
            },
            &["unknown-user-name"],
            true,
        )?);
    }
    if rng.one_in(2) {
        steps.push(command(
            "register-bind",
            &owner,
            Action::RegisterAndBindAccount {
                user_name: UserName::parse(&format!("fin-{name}"))?,
                email: Email::parse(&format!("finance@{name}.example.com"))?,
            },
            &[],
            false,
        )?);
    } else {
        let shared = UserName::parse(&format!("{prefix}shared-{}", index % SHARED_ACCOUNTS))?;
        steps.push(Step::Register {
            user_name: shared.clone(),
            email: Email::parse(&format!("billing@{shared}.example.com"))?,
        });
        steps.push(command(
            "bind",
            &owner,
            Action::BindAccount { user_name: shared },
            &[],
            false,
        )?);
    }
    if rng.one_in(6) {
        steps.push(command(
            "rebind",
            &owner,
            Action::RegisterAndBindAccount {
                user_name: UserName::parse(&format!("other-{name}"))?,
                email: Email::parse(&format!("other@{name}.example.com"))?,
            },
            &["account-already-bound"],
            true,
        )?);
    }
    steps.push(command(
        "accept",
        &owner,
        Action::AcceptAgreement {
            version: version.clone(),
        },
        &[],
        false,
    )?);
    if rng.one_in(5) {
        steps.push(command(
            "accept-again",
            &owner,
            Action::AcceptAgreement { version },
            &["already-commercial"],
            true,
        )?);
    }
    match site
        .default_cloud_method
        .as_ref()
        .and_then(|m| policy.method(m))
    {
        Some(method) => {
            let instance = |id: String| -> Result<Option<ExternalId>, DomainError> {
                if method.requires_instance {
                    Ok(Some(ExternalId::parse(&id)?))
                } else {
                    Ok(None)
                }
            };
            let account = CloudAccount {
                account_id: ExternalId::parse(&format!("acct-{name}"))?,
                instance_id: instance(format!("inst-{name}"))?,
            };
            if rng.one_in(4) {
                steps.push(command(
                    "settle-unsubscribed",
                    &owner,
                    Action::ChangeSettlement(SettlementRequest::of(
                        method.id.clone(),
                        Some(CloudAccount {
                            account_id: ExternalId::parse(&format!("nosub-{name}"))?,
                            instance_id: instance(format!("nosub-inst-{name}"))?,
                        }),
                    )),
                    &["cloud-account-not-subscribed"],
                    true,
                )?);
            }
            steps.push(Step::Subscribe {
                method: method.id.clone(),
                account: account.clone(),
            });
            steps.push(command(
                "settle-cloud",
                &owner,
                Action::ChangeSettlement(SettlementRequest::of(method.id.clone(), Some(account))),
                &[],
                false,
            )?);
            if rng.one_in(3) {
                steps.push(command(
                    "settle-back",
                    &owner,
                    Action::ChangeSettlement(SettlementRequest::of(MethodId::enterprise(), None)),
                    &["settlement-change-too-soon", "cloud-settlement-locked-in"],
                    true,
                )?);
            }
        }
        None => {
            steps.push(command(
                "settle-unchanged",
                &owner,
                Action::ChangeSettlement(SettlementRequest::of(MethodId::enterprise(), None)),
                &["settlement-unchanged"],
                true,
            )?);
            steps.push(command(
                "settle-aws",
                &owner,
                Action::ChangeSettlement(SettlementRequest::of(
                    MethodId::parse("aws")?,
                    Some(CloudAccount {
                        account_id: ExternalId::parse(&format!("acct-{name}"))?,
                        instance_id: None,
                    }),
                )),
                &["settlement-not-allowed-on-site"],
                true,
            )?);
        }
    }
    Ok((workspace, steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_deterministic_and_valid() {
        let policy = SitePolicy::builtin();
        for index in 0..200 {
            let (w1, a) = workspace_flow(&policy, "", 9, index).unwrap();
            let (w2, b) = workspace_flow(&policy, "", 9, index).unwrap();
            assert_eq!(w1, w2);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            let ids: Vec<String> = a
                .iter()
                .filter_map(|s| match s {
                    Step::Command { command, .. } => Some(command.command_id.to_string()),
                    _ => None,
                })
                .collect();
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                ids.len(),
                unique.len(),
                "command ids are unique per workspace"
            );
            assert!(ids.iter().any(|id| id.ends_with(".accept")));
        }
    }
}
