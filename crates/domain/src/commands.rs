//! Commands: what an actor asks of a workspace.
//!
//! There is deliberately no command that downgrades a workspace: every standing command of
//! SPEC §10 keeps it on the Commercial Plan.

use serde::{Deserialize, Serialize};

use crate::values::{
    Actor, AgreementVersion, BillId, CloudAccount, Email, ExternalId, MethodId, Money, SiteId,
    UserName,
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
    /// Step 4 (optional): change how the workspace settles.
    ChangeSettlement {
        /// The new method (`enterprise` or a cloud method the site allows).
        method: MethodId,
        /// The cloud account, for cloud methods; absent for `enterprise`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<CloudAccount>,
    },
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

impl Action {
    /// The action's name, as in logs and the CLI (`request-upgrade`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Action::RequestUpgrade { .. } => "request-upgrade",
            Action::BindAccount { .. } => "bind-account",
            Action::RegisterAndBindAccount { .. } => "register-and-bind-account",
            Action::AcceptAgreement { .. } => "accept-agreement",
            Action::ChangeSettlement { .. } => "change-settlement",
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
