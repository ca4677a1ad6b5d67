//! The pure domain of workspace-billing: how a workspace moves from the free Experience Plan to
//! the paid Commercial Plan, binds an Expense Center account, accepts the opening agreement and
//! chooses how it settles — and, once commercial, its standing: arrears and ended cloud
//! subscriptions, the countdown, lock, unlock and dissolve (SPEC §10), none of which leads back.
//!
//! - [`Workspace`] is the aggregate; it is built only by folding [`WorkspaceEvent`]s and has no
//!   way back from the Commercial Plan.
//! - [`plan`], [`gather`] and [`decide`] are the rules, run together by [`execute`]; time and
//!   outside answers enter as data.
//! - [`SitePolicy`] is the site table as data.
//! - The [`ExpenseCenter`] and [`CloudMarketplace`] ports are the only source of
//!   [`VerifiedAccount`] and [`VerifiedSubscription`].
//!
//! ```
//! use std::sync::Arc;
//! use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace, ManualClock};
//! use billing_domain::*;
//!
//! # fn main() -> Result<(), DomainError> {
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let expense_center = Arc::new(InMemoryExpenseCenter::new());
//! expense_center.add(&UserName::parse("acme-finance")?);
//! let services = WorkspaceServices {
//!     expense_center,
//!     marketplace: Arc::new(InMemoryMarketplace::new()),
//!     policy: Arc::new(SitePolicy::builtin()),
//!     clock: Arc::new(ManualClock::new("2026-11-27T09:00:00Z".parse().unwrap())),
//! };
//! let owner = Actor::new(ActorId::parse("u-1")?, Role::Owner);
//! let mut workspace = Workspace::default();
//! for (id, action) in [
//!     ("c1", Action::RequestUpgrade { site: SiteId::parse("cn1")? }),
//!     ("c2", Action::BindAccount { user_name: UserName::parse("acme-finance")? }),
//!     ("c3", Action::AcceptAgreement { version: AgreementVersion::parse("2024-06")? }),
//! ] {
//!     let command = WorkspaceCommand::new(ExternalId::parse(id)?, owner.clone(), action);
//!     for event in execute(&workspace, &command, &services).await? {
//!         workspace = workspace.evolve(&event)?;
//!     }
//! }
//! assert_eq!(workspace.plan(), Plan::Commercial);
//! assert_eq!(workspace.data_visible_from(), workspace.upgraded_at());
//! # Ok(()) }) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod aggregate;
mod commands;
mod decide;
mod error;
mod events;
mod every_variant;
pub mod instant;
pub mod memory;
mod ports;
mod site_policy;
mod standing;
mod state;
mod upcast;
mod values;

pub use commands::{Action, Permission, SettlementRequest, WorkspaceCommand};
pub use decide::{decide, execute, plan};
pub use error::{DomainError, DomainErrorKind};
pub use events::{
    AccountBound, AgreementAccepted, ArrearsRecorded, ArrearsSettled, ChangeReason,
    CloudSubscriptionEnded, CloudSubscriptionResumed, CountdownReminded, CountdownStarted,
    PlanUpgraded, SettlementChanged, UpgradeRequested, WorkspaceDissolved, WorkspaceEvent,
    WorkspaceLocked, WorkspaceUnlocked, EVENT_VERSIONS,
};
pub use ports::{
    gather, Clock, CloudMarketplace, ExpenseCenter, ExpenseCenterAccount, Facts, Lookup,
    Registration, VerifiedAccount, VerifiedSubscription, WorkspaceServices,
};
pub use site_policy::{
    start_of_next_month, MethodKind, MethodSpec, Site, SitePolicy, StandingPolicy, SubscriptionEnd,
    BUILTIN_POLICY_JSON,
};
pub use standing::{Countdown, Reason, Standing};
pub use state::{BoundAccount, Commercial, Plan, UpgradeStep, Workspace};
pub use upcast::upcast;
pub use values::{
    Actor, ActorId, AgreementVersion, BillId, CloudAccount, Currency, Email, ExternalId, MethodId,
    Money, Role, Settlement, SiteId, UserName, WorkspaceId, MAX_ID_LEN,
};
