//! The workspace commands: each is declared once, as the struct of its own arguments and its
//! [`Ask`] impl (its name, and the [`Action`] its values ask for). [`On`] adds what every
//! workspace command takes — the workspace, the actor, the role and the command id — and
//! `commands::workspace::execute` runs any of them. The rules (role, shape, state) are the
//! domain's: nothing here checks one.

use billing_domain::{
    Action, ActorId, AgreementVersion, BillId, Currency, DomainError, ExternalId, MethodId, Money,
    Role, SettlementRequest, SiteId, UserName, WorkspaceId,
};
use clap::Args;

use super::values::{external_id, role};

/// A workspace command's own arguments: its name (as the output says it) and what it asks.
pub(crate) trait Ask: Args {
    /// The command as people type it (`upgrade`, `settlement set`, …).
    const NAME: &'static str;

    /// The action asked for.
    ///
    /// # Errors
    /// A value that only makes sense with another one and does not fit it (an amount in a
    /// currency, say): [`DomainError::InvalidValue`] naming it.
    fn action(self) -> Result<Action, DomainError>;
}

/// A command to one workspace: which workspace, what it asks (`A`), and who sends it.
#[derive(Debug, Args)]
pub(crate) struct On<A: Args> {
    /// The workspace.
    #[arg(long, value_name = "W")]
    pub(crate) workspace: WorkspaceId,
    /// What the command asks.
    #[command(flatten)]
    pub(crate) ask: A,
    /// Actor, role and command id.
    #[command(flatten)]
    pub(crate) who: Who,
}

/// Who sends a workspace command, and under which command id.
#[derive(Debug, Args)]
pub(crate) struct Who {
    /// The id of the person acting (as the host application knows them).
    #[arg(long, default_value = "cli", value_name = "ID")]
    pub(crate) actor: ActorId,

    /// The actor's role in the workspace; `system` is the billing system itself (it reports
    /// arrears and ended subscriptions).
    #[arg(long, default_value = "owner", value_parser = role())]
    pub(crate) role: Role,

    /// The command id (re-sending the same id is safe); default: a fresh unique id.
    #[arg(long, value_name = "ID", value_parser = external_id("command-id"))]
    pub(crate) command_id: Option<ExternalId>,
}

/// `billing upgrade`.
#[derive(Debug, Args)]
pub(crate) struct Upgrade {
    /// The workspace's site (`cn1`, `us1`, …).
    #[arg(long, value_name = "S")]
    site: SiteId,
}

impl Ask for Upgrade {
    const NAME: &'static str = "upgrade";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::RequestUpgrade { site: self.site })
    }
}

/// `billing account bind`.
#[derive(Debug, Args)]
pub(crate) struct Bind {
    /// The Expense Center user name.
    #[arg(long, value_name = "U")]
    username: UserName,
}

impl Ask for Bind {
    const NAME: &'static str = "account bind";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::BindAccount {
            user_name: self.username,
        })
    }
}

/// `billing agreement accept`.
#[derive(Debug, Args)]
pub(crate) struct Accept {
    /// The agreement version accepted (e.g. `2024-06`).
    #[arg(long, value_name = "V")]
    version: AgreementVersion,
}

impl Ask for Accept {
    const NAME: &'static str = "agreement accept";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::AcceptAgreement {
            version: self.version,
        })
    }
}

/// `billing settlement set`.
#[derive(Debug, Args)]
pub(crate) struct SetSettlement {
    /// The method: `enterprise` or a cloud method the site allows.
    #[arg(long, value_name = "M")]
    method: MethodId,
    /// The cloud account id (cloud methods).
    #[arg(long, value_name = "ID", value_parser = external_id("account"))]
    account: Option<ExternalId>,
    /// The marketplace instance id (methods that need one).
    #[arg(long, value_name = "ID", value_parser = external_id("instance"))]
    instance: Option<ExternalId>,
}

impl Ask for SetSettlement {
    const NAME: &'static str = "settlement set";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::ChangeSettlement(SettlementRequest::new(
            self.method,
            self.account,
            self.instance,
        )))
    }
}

/// `billing arrears record`.
#[derive(Debug, Args)]
pub(crate) struct RecordArrears {
    /// The Expense Center's bill id.
    #[arg(long, value_name = "B")]
    bill: BillId,
    /// The amount owed, e.g. `12.34` (at most two decimals).
    #[arg(long, value_name = "AMOUNT")]
    amount: String,
    /// The currency.
    #[arg(long, value_name = "CUR", value_parser = ["CNY", "USD"])]
    currency: String,
}

impl Ask for RecordArrears {
    const NAME: &'static str = "arrears record";
    fn action(self) -> Result<Action, DomainError> {
        let currency: Currency = self.currency.parse()?;
        Ok(Action::RecordArrears {
            bill: self.bill,
            amount: Money::parse_decimal(&self.amount, currency)?,
        })
    }
}

/// `billing arrears settle`.
#[derive(Debug, Args)]
pub(crate) struct SettleArrears {
    /// The bill id.
    #[arg(long, value_name = "B")]
    bill: BillId,
    /// The Huawei Cloud stored-value card order that paid the recharge.
    #[arg(long, value_name = "ORDER", value_parser = external_id("stored-value-card"))]
    stored_value_card: Option<ExternalId>,
}

impl Ask for SettleArrears {
    const NAME: &'static str = "arrears settle";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::SettleArrears {
            bill: self.bill,
            stored_value_card: self.stored_value_card,
        })
    }
}

/// `billing workspace dissolve`.
#[derive(Debug, Args)]
pub(crate) struct Dissolve {}

impl Ask for Dissolve {
    const NAME: &'static str = "workspace dissolve";
    fn action(self) -> Result<Action, DomainError> {
        Ok(Action::Dissolve)
    }
}
