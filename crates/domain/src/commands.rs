//! Commands: what an actor asks of a workspace.
//!
//! There is deliberately no command that downgrades a workspace.

use serde::{Deserialize, Serialize};

use crate::values::{
    Actor, AgreementVersion, CloudAccount, Email, ExternalId, MethodId, SiteId, UserName,
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
        }
    }
}
