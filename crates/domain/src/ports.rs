//! Ports to the outside world the upgrade flow touches, and the verified facts they produce.
//!
//! The aggregate is pure: everything external is looked up *before* a command is decided.
//! [`gather`] asks the ports what [`plan`](crate::plan) says a command needs and returns
//! [`Facts`]. A [`VerifiedAccount`] or [`VerifiedSubscription`] has no public constructor: the only
//! way to get one is for the Expense Center or the marketplace port to confirm it inside
//! [`gather`], so no code path can bind a user name the Expense Center did not confirm (I3) or
//! choose a cloud account that is not subscribed.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::site_policy::SitePolicy;
use crate::values::{CloudAccount, Email, ExternalId, MethodId, UserName};

/// An Expense Center account as the Expense Center reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpenseCenterAccount {
    /// The account's user name.
    pub user_name: UserName,
    /// The Expense Center's id for the account.
    pub account_id: ExternalId,
}

/// The Expense Center's answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The account was created (or had already been created by the same request id).
    Registered(ExpenseCenterAccount),
    /// Another account already has this user name.
    Taken,
}

/// The Expense Center: verifies user names and registers accounts.
///
/// A host implements it for its real Expense Center; the adapters crate provides an embedded
/// directory. Methods return [`DomainError::PortUnavailable`] when the Expense Center cannot
/// answer.
#[async_trait]
pub trait ExpenseCenter: Send + Sync {
    /// The account with exactly this user name, if any.
    ///
    /// # Errors
    /// [`DomainError::PortUnavailable`] when the Expense Center cannot answer.
    async fn find_account(
        &self,
        user_name: &UserName,
    ) -> Result<Option<ExpenseCenterAccount>, DomainError>;

    /// Registers a new account. `request_id` makes the call idempotent: registering again with
    /// the same request id and user name returns the account the first call created.
    ///
    /// # Errors
    /// [`DomainError::PortUnavailable`] when the Expense Center cannot answer.
    async fn register_account(
        &self,
        user_name: &UserName,
        email: &Email,
        request_id: &ExternalId,
    ) -> Result<Registration, DomainError>;
}

/// The cloud marketplaces: whether a cloud account has an active subscription.
#[async_trait]
pub trait CloudMarketplace: Send + Sync {
    /// Whether `account` has an active marketplace subscription for `method`.
    ///
    /// # Errors
    /// [`DomainError::PortUnavailable`] when the marketplace cannot answer.
    async fn is_subscribed(
        &self,
        method: &MethodId,
        account: &CloudAccount,
    ) -> Result<bool, DomainError>;
}

/// Where the time of a command comes from. The domain never reads the system clock.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// An Expense Center account the Expense Center confirmed for this command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccount {
    account: ExpenseCenterAccount,
    newly_registered: bool,
}

impl VerifiedAccount {
    /// The confirmed user name.
    pub fn user_name(&self) -> &UserName {
        &self.account.user_name
    }
    /// The Expense Center's account id.
    pub fn account_id(&self) -> &ExternalId {
        &self.account.account_id
    }
    /// Whether it was registered for this command.
    pub fn newly_registered(&self) -> bool {
        self.newly_registered
    }
}

/// A cloud account the marketplace confirmed as subscribed for this command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSubscription {
    method: MethodId,
    account: CloudAccount,
}

impl VerifiedSubscription {
    /// The cloud method.
    pub fn method(&self) -> &MethodId {
        &self.method
    }
    /// The subscribed account.
    pub fn account(&self) -> &CloudAccount {
        &self.account
    }
}

/// What a command needs looked up before it can be decided (from [`plan`](crate::plan)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing external.
    Nothing,
    /// Verify that the Expense Center knows this user name.
    FindAccount {
        /// The user name to verify.
        user_name: UserName,
    },
    /// Register a new Expense Center account.
    Register {
        /// The new user name.
        user_name: UserName,
        /// The new account's e-mail.
        email: Email,
        /// Idempotency key for the registration (the command id).
        request_id: ExternalId,
    },
    /// Ask the marketplaces about the current and the requested cloud accounts.
    Cloud {
        /// The current cloud settlement, whose subscription locks the workspace in while active.
        current: Option<(MethodId, CloudAccount)>,
        /// The requested cloud settlement, which must be subscribed.
        target: Option<(MethodId, CloudAccount)>,
    },
}

/// The answers of the ports for one command. Only [`gather`] makes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// What was looked up; `decide` refuses facts gathered for another command or state.
    pub(crate) lookup: Lookup,
    pub(crate) account: Option<VerifiedAccount>,
    /// `Some(active)` when the current cloud subscription was looked up.
    pub(crate) current_cloud_active: Option<bool>,
    /// `Some(None)` when the target was looked up and is not subscribed.
    pub(crate) target: Option<Option<VerifiedSubscription>>,
}

/// The services the workspace aggregate needs: its ports, the site policy and the clock.
#[derive(Clone)]
pub struct WorkspaceServices {
    /// The Expense Center.
    pub expense_center: Arc<dyn ExpenseCenter>,
    /// The cloud marketplaces.
    pub marketplace: Arc<dyn CloudMarketplace>,
    /// The site policy.
    pub policy: Arc<SitePolicy>,
    /// The clock that stamps commands.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WorkspaceServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceServices")
            .field("policy_sites", &self.policy.sites().count())
            .finish_non_exhaustive()
    }
}

/// Asks the ports what `lookup` needs and returns the verified facts.
///
/// # Errors
/// [`DomainError::UnknownUserName`] when the Expense Center does not confirm the user name,
/// [`DomainError::UserNameTaken`] when registration finds the name taken,
/// [`DomainError::PortUnavailable`] when a port cannot answer.
pub async fn gather(lookup: Lookup, services: &WorkspaceServices) -> Result<Facts, DomainError> {
    let mut facts = Facts {
        lookup: lookup.clone(),
        account: None,
        current_cloud_active: None,
        target: None,
    };
    match lookup {
        Lookup::Nothing => {}
        Lookup::FindAccount { user_name } => {
            match services.expense_center.find_account(&user_name).await? {
                // The port must confirm exactly the name asked for; anything else is no answer.
                Some(account) if account.user_name == user_name => {
                    facts.account = Some(VerifiedAccount {
                        account,
                        newly_registered: false,
                    });
                }
                _ => return Err(DomainError::UnknownUserName { user_name }),
            }
        }
        Lookup::Register {
            user_name,
            email,
            request_id,
        } => match services
            .expense_center
            .register_account(&user_name, &email, &request_id)
            .await?
        {
            Registration::Registered(account) if account.user_name == user_name => {
                facts.account = Some(VerifiedAccount {
                    account,
                    newly_registered: true,
                });
            }
            Registration::Registered(other) => {
                return Err(DomainError::PortUnavailable {
                    port: "expense center",
                    reason: format!(
                        "registered user name {} when {user_name} was asked for",
                        other.user_name
                    ),
                })
            }
            Registration::Taken => return Err(DomainError::UserNameTaken { user_name }),
        },
        Lookup::Cloud { current, target } => {
            if let Some((method, account)) = current {
                facts.current_cloud_active = Some(
                    services
                        .marketplace
                        .is_subscribed(&method, &account)
                        .await?,
                );
            }
            if let Some((method, account)) = target {
                let subscribed = services
                    .marketplace
                    .is_subscribed(&method, &account)
                    .await?;
                facts.target = Some(subscribed.then_some(VerifiedSubscription { method, account }));
            }
        }
    }
    Ok(facts)
}
