//! Commands: what an actor asks of a workspace.
//!
//! There is deliberately no command that downgrades a workspace: every standing command of
//! SPEC §10 keeps it on the Commercial Plan.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::values::{
    Actor, AgreementVersion, BillId, CloudAccount, Email, ExternalId, MethodId, Money, Role,
    SiteId, UserName,
};

/// A command to the workspace aggregate: who asks, under which command id, and what.
///
/// The time a command takes effect is not part of it: it comes from the injected clock
/// ([`Clock`](crate::Clock)) when the command is executed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCommand {
    /// A caller-chosen id that makes re-sending the command safe (idempotency).
    pub command_id: ExternalId,
    /// Who sends it, with their role in the workspace.
    pub actor: Actor,
    /// What they ask for.
    pub action: Action,
}

impl WorkspaceCommand {
    /// A command from `actor` with id `command_id`.
    pub fn new(command_id: ExternalId, actor: Actor, action: Action) -> Self {
        Self {
            command_id,
            actor,
            action,
        }
    }
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Step 1: request the upgrade to the Commercial Plan on a site.
    RequestUpgrade {
        /// The workspace's site.
        site: SiteId,
    },
    /// Step 2: bind an existing Expense Center account by user name (verified by the Expense
    /// Center).
    BindAccount {
        /// The Expense Center user name.
        user_name: UserName,
    },
    /// Step 2, alternatively: register a new Expense Center account and bind it.
    RegisterAndBindAccount {
        /// The new user name (must not be taken).
        user_name: UserName,
        /// The new account's e-mail address.
        email: Email,
    },
    /// Step 3: accept the opening agreement, which completes the upgrade.
    AcceptAgreement {
        /// The agreement version accepted.
        version: AgreementVersion,
    },
    /// Step 4 (optional): change how the workspace settles, as the owner asked for it.
    ChangeSettlement(SettlementRequest),
    /// The billing system reports a bill in arrears on the bound Expense Center account
    /// (system only). Starts a countdown on a workspace in good standing.
    RecordArrears {
        /// The bill.
        bill: BillId,
        /// How much is owed.
        amount: Money,
    },
    /// A bill in arrears is settled by a recharge of the Expense Center account (the owner, or
    /// the billing system reporting the payment). Allowed while locked.
    SettleArrears {
        /// The bill.
        bill: BillId,
        /// The Huawei Cloud stored-value card order that paid the recharge, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stored_value_card: Option<ExternalId>,
    },
    /// The billing system reports that the cloud subscription the workspace settles through
    /// ended (system only). What follows is the provider's policy: fall back or count down.
    ReportSubscriptionEnded {
        /// The cloud method.
        method: MethodId,
        /// The cloud account.
        account: CloudAccount,
    },
    /// The billing system reports that an ended cloud subscription is active again (system
    /// only; verified by the marketplace).
    ReportSubscriptionResumed {
        /// The cloud method.
        method: MethodId,
        /// The cloud account.
        account: CloudAccount,
    },
    /// The billing system fires a countdown's reminder once it is due (system only).
    SendReminder,
    /// The billing system locks a workspace whose countdown deadline passed (system only).
    Lock,
    /// The owner dissolves the workspace during a countdown. Irreversible.
    Dissolve,
}

/// A change of settlement as the owner asked for it: the method, and the cloud account id and the
/// marketplace instance id each as given or absent. Which of them a method takes is the site
/// policy's ([`MethodSpec::cloud_account`](crate::MethodSpec::cloud_account)): the rules refuse
/// a wrong shape (`invalid-settlement-request`), so every door that hands over what its user
/// typed gets the same answer.
///
/// Its JSON (inside a command, which is hashed for idempotency) is the shape the command had
/// before the request was its own type: `{"method":…,"account":{"account_id":…,"instance_id":…}}`,
/// and, only for an instance id given without an account, `{"method":…,"instance":…}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SettlementFields", try_from = "SettlementFields")]
pub struct SettlementRequest {
    /// The method asked for (`enterprise` or a cloud method the site allows).
    pub method: MethodId,
    /// The cloud account id, if one was given.
    pub account: Option<ExternalId>,
    /// The marketplace instance id, if one was given.
    pub instance: Option<ExternalId>,
}

impl SettlementRequest {
    /// A request for `method`, with the account and instance ids as given.
    pub fn new(
        method: MethodId,
        account: Option<ExternalId>,
        instance: Option<ExternalId>,
    ) -> Self {
        Self {
            method,
            account,
            instance,
        }
    }

    /// A request for `method` through `account` (`None`: no cloud account, as enterprise takes).
    pub fn of(method: MethodId, account: Option<CloudAccount>) -> Self {
        match account {
            Some(a) => Self::new(method, Some(a.account_id), a.instance_id),
            None => Self::new(method, None, None),
        }
    }

    /// Whether nothing but the method was given.
    pub fn is_bare(&self) -> bool {
        self.account.is_none() && self.instance.is_none()
    }
}

/// The serialized shape of a [`SettlementRequest`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettlementFields {
    method: MethodId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<CloudAccount>,
    /// Only an instance id given without an account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<ExternalId>,
}

impl From<SettlementRequest> for SettlementFields {
    fn from(r: SettlementRequest) -> Self {
        match r.account {
            Some(account_id) => Self {
                method: r.method,
                account: Some(CloudAccount {
                    account_id,
                    instance_id: r.instance,
                }),
                instance: None,
            },
            None => Self {
                method: r.method,
                account: None,
                instance: r.instance,
            },
        }
    }
}

impl TryFrom<SettlementFields> for SettlementRequest {
    type Error = DomainError;

    fn try_from(f: SettlementFields) -> Result<Self, DomainError> {
        match (f.account, f.instance) {
            (Some(account), None) => Ok(Self::of(f.method, Some(account))),
            (None, instance) => Ok(Self::new(f.method, None, instance)),
            (Some(_), Some(instance)) => Err(DomainError::InvalidValue {
                field: "instance",
                value: instance.to_string(),
                reason: "is given twice: inside the account and beside it",
            }),
        }
    }
}

/// Who may send an action (SPEC §2 and §10): the rule [`plan`](crate::plan) applies, for a door
/// that wants to know before it offers a form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// The workspace owner only: the upgrade flow, settlement, dissolve.
    Owner,
    /// The billing system only: reports of outside facts and the deadlines.
    BillingSystem,
    /// The owner, or the billing system reporting it: settling a bill.
    OwnerOrBillingSystem,
}

impl Permission {
    /// Whether `actor` holds this permission.
    ///
    /// # Errors
    /// [`DomainError::NotBillingSystem`] for a system-only action sent by anyone else;
    /// [`DomainError::NotWorkspaceOwner`] for an owner action sent by anyone but the owner.
    pub fn check(self, actor: &Actor) -> Result<(), DomainError> {
        let allowed = match (self, actor.role) {
            (Permission::BillingSystem, Role::System)
            | (Permission::Owner | Permission::OwnerOrBillingSystem, Role::Owner)
            | (Permission::OwnerOrBillingSystem, Role::System) => true,
            (Permission::BillingSystem, _) => {
                return Err(DomainError::NotBillingSystem {
                    actor: actor.id.clone(),
                    role: actor.role,
                })
            }
            (Permission::Owner | Permission::OwnerOrBillingSystem, _) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(DomainError::NotWorkspaceOwner {
                actor: actor.id.clone(),
                role: actor.role,
            })
        }
    }
}

impl Action {
    /// Who may send this action.
    pub fn permission(&self) -> Permission {
        match self {
            Action::RequestUpgrade { .. }
            | Action::BindAccount { .. }
            | Action::RegisterAndBindAccount { .. }
            | Action::AcceptAgreement { .. }
            | Action::ChangeSettlement(_)
            | Action::Dissolve => Permission::Owner,
            Action::RecordArrears { .. }
            | Action::ReportSubscriptionEnded { .. }
            | Action::ReportSubscriptionResumed { .. }
            | Action::SendReminder
            | Action::Lock => Permission::BillingSystem,
            Action::SettleArrears { .. } => Permission::OwnerOrBillingSystem,
        }
    }

    /// The action's name, as in logs and the CLI (`request-upgrade`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Action::RequestUpgrade { .. } => "request-upgrade",
            Action::BindAccount { .. } => "bind-account",
            Action::RegisterAndBindAccount { .. } => "register-and-bind-account",
            Action::AcceptAgreement { .. } => "accept-agreement",
            Action::ChangeSettlement(_) => "change-settlement",
            Action::RecordArrears { .. } => "record-arrears",
            Action::SettleArrears { .. } => "settle-arrears",
            Action::ReportSubscriptionEnded { .. } => "report-subscription-ended",
            Action::ReportSubscriptionResumed { .. } => "report-subscription-resumed",
            Action::SendReminder => "send-reminder",
            Action::Lock => "lock",
            Action::Dissolve => "dissolve",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(s: &str) -> ExternalId {
        ExternalId::parse(s).unwrap()
    }

    /// A command's JSON is hashed for idempotency (`command_hash`): a settlement request keeps
    /// the bytes the command had before the request was its own type, so a command re-sent
    /// across the change is still recognised.
    #[test]
    fn a_settlement_request_keeps_the_json_commands_had() {
        let aws = MethodId::parse("aws").unwrap();
        let cases = [
            (
                SettlementRequest::new(MethodId::enterprise(), None, None),
                r#"{"action":"change-settlement","method":"enterprise"}"#,
            ),
            (
                SettlementRequest::new(aws.clone(), Some(id("1234")), None),
                r#"{"action":"change-settlement","method":"aws","account":{"account_id":"1234"}}"#,
            ),
            (
                SettlementRequest::new(aws.clone(), Some(id("1234")), Some(id("i-1"))),
                r#"{"action":"change-settlement","method":"aws","account":{"account_id":"1234","instance_id":"i-1"}}"#,
            ),
            (
                SettlementRequest::new(aws, None, Some(id("i-1"))),
                r#"{"action":"change-settlement","method":"aws","instance":"i-1"}"#,
            ),
        ];
        for (request, json) in cases {
            let action = Action::ChangeSettlement(request);
            assert_eq!(serde_json::to_string(&action).unwrap(), json);
            assert_eq!(serde_json::from_str::<Action>(json).unwrap(), action);
        }
        let twice = r#"{"action":"change-settlement","method":"aws","account":{"account_id":"1","instance_id":"i-1"},"instance":"i-2"}"#;
        let err = serde_json::from_str::<Action>(twice).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }

    #[test]
    fn permissions_name_the_actor_and_role_they_refuse() {
        let actor = |role| Actor::new(crate::ActorId::parse("u-1").unwrap(), role);
        assert!(Permission::Owner.check(&actor(Role::Owner)).is_ok());
        assert_eq!(
            Permission::Owner
                .check(&actor(Role::System))
                .unwrap_err()
                .code(),
            "not-workspace-owner"
        );
        assert_eq!(
            Permission::BillingSystem
                .check(&actor(Role::Owner))
                .unwrap_err()
                .code(),
            "not-billing-system"
        );
        for role in [Role::Owner, Role::System] {
            assert!(Permission::OwnerOrBillingSystem.check(&actor(role)).is_ok());
        }
        for role in [Role::Admin, Role::Member] {
            let err = Permission::OwnerOrBillingSystem
                .check(&actor(role))
                .unwrap_err();
            assert_eq!(err.code(), "not-workspace-owner");
            assert!(err.to_string().contains(role.as_str()), "{err}");
        }
    }
}
