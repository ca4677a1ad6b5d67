//! The domain's one error type.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::values::{ActorId, BillId, CloudAccount, MethodId, Role, Settlement, SiteId, UserName};

/// Why the domain refused a command, an event or a value.
///
/// Every variant names its rule ([`DomainError::code`], the SPEC's kebab-case name) and carries
/// the values involved. How a caller should handle them:
/// - rule refusals (everything except the three below) are the user's to fix: show the message,
///   map to a 4xx / exit code 1, do not retry;
/// - [`DomainError::InvalidValue`] and [`DomainError::InvalidSitePolicy`] are bad input: map to a
///   4xx / exit code 2;
/// - [`DomainError::PortUnavailable`] is an outside system failing: retry later;
/// - [`DomainError::InvalidTransition`] means a stored history breaks the rules: the log is
///   corrupt or forged, report it to an auditor;
/// - [`DomainError::UnsupportedEventVersion`] means a log holds an event shape this release
///   cannot read: upgrade the library, or report the log.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A value failed validation.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// The field (command option) the value was given for.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Only the workspace owner may upgrade, bind, accept the agreement or change settlement.
    #[error(
        "not-workspace-owner: actor {actor} has role {role}; only the workspace owner may do this"
    )]
    NotWorkspaceOwner {
        /// The actor who sent the command.
        actor: ActorId,
        /// The role the actor holds.
        role: Role,
    },
    /// An upgrade step on a workspace that is already on the Commercial Plan.
    #[error("already-commercial: the workspace is already on the Commercial Plan (since {upgraded_at}); an upgrade step cannot run again")]
    AlreadyCommercial {
        /// When the workspace was upgraded.
        upgraded_at: DateTime<Utc>,
    },
    /// The upgrade has already been requested.
    #[error("upgrade-already-requested: the upgrade was already requested for site {site}")]
    UpgradeAlreadyRequested {
        /// The site given in the first request.
        site: SiteId,
    },
    /// A step that needs a requested upgrade came first.
    #[error("upgrade-not-requested: request the upgrade (Billing -> Upgrade) before this step")]
    UpgradeNotRequested,
    /// The site is not in the site policy.
    #[error("unknown-site: site {site} is not in the site policy (known: {known})")]
    UnknownSite {
        /// The site asked for.
        site: SiteId,
        /// The known site ids, comma-separated.
        known: String,
    },
    /// The Expense Center does not know this user name.
    #[error("unknown-user-name: the Expense Center has no account with user name {user_name}")]
    UnknownUserName {
        /// The user name asked for.
        user_name: UserName,
    },
    /// Registration refused: the user name is taken.
    #[error("user-name-taken: the Expense Center user name {user_name} is already taken; choose another or bind the existing account")]
    UserNameTaken {
        /// The user name asked for.
        user_name: UserName,
    },
    /// Accepting the agreement needs a bound account.
    #[error("account-not-bound: bind an Expense Center account before accepting the agreement")]
    AccountNotBound,
    /// An account is already bound; a bound user name never changes.
    #[error("account-already-bound: Expense Center account {bound} is already bound and cannot be changed (asked for {requested})")]
    AccountAlreadyBound {
        /// The user name already bound.
        bound: UserName,
        /// The user name asked for.
        requested: UserName,
    },
    /// Settlement can only change after the upgrade.
    #[error("not-commercial-yet: settlement can be changed only after the upgrade to the Commercial Plan")]
    NotCommercialYet,
    /// The site does not allow the settlement method (or the method is unknown).
    #[error("settlement-not-allowed-on-site: settlement method {method} is not allowed on site {site} (allowed: {allowed})")]
    SettlementNotAllowedOnSite {
        /// The method asked for.
        method: MethodId,
        /// The workspace's site.
        site: SiteId,
        /// The site's allowed methods, comma-separated.
        allowed: String,
    },
    /// The settlement request is malformed for its method (missing or extra account fields).
    #[error("invalid settlement for method {method}: {reason}")]
    InvalidSettlementRequest {
        /// The method asked for.
        method: MethodId,
        /// What is missing or extra.
        reason: &'static str,
    },
    /// The requested settlement is the current one.
    #[error("settlement-unchanged: the workspace already settles through {current}")]
    SettlementUnchanged {
        /// The current settlement.
        current: Settlement,
    },
    /// The settlement changed already this calendar month (site time zone).
    #[error("settlement-change-too-soon: settlement last changed at {last_changed_at}; the next change is allowed from {next_allowed_at} ({time_zone})")]
    SettlementChangeTooSoon {
        /// When the settlement last changed.
        last_changed_at: DateTime<Utc>,
        /// The first instant a change is allowed again.
        next_allowed_at: DateTime<Utc>,
        /// The site's time zone.
        time_zone: String,
    },
    /// The current cloud subscription is still active.
    #[error("cloud-settlement-locked-in: the workspace settles through {method} account {account}, whose subscription is still active; end it before changing the method")]
    CloudSettlementLockedIn {
        /// The current cloud method.
        method: MethodId,
        /// The current cloud account.
        account: CloudAccount,
    },
    /// The cloud account has no active marketplace subscription.
    #[error("cloud-account-not-subscribed: {method} account {account} has no active marketplace subscription")]
    CloudAccountNotSubscribed {
        /// The method asked for.
        method: MethodId,
        /// The account asked for.
        account: CloudAccount,
    },
    /// The lookups given to `decide` do not belong to this command (a caller bug).
    #[error("verification-missing: {what} was not verified through its port for this command")]
    VerificationMissing {
        /// What was expected.
        what: &'static str,
    },
    /// An outside system (Expense Center, cloud marketplace) could not answer.
    #[error("{port} unavailable: {reason}")]
    PortUnavailable {
        /// Which port failed.
        port: &'static str,
        /// What it reported.
        reason: String,
    },
    /// A host-supplied site policy is not usable.
    #[error("invalid site policy: {reason}")]
    InvalidSitePolicy {
        /// What is wrong with it.
        reason: String,
    },
    /// Only the billing system may report Expense Center and marketplace facts or fire deadlines.
    #[error("not-billing-system: actor {actor} has role {role}; only the billing system (role system) may do this")]
    NotBillingSystem {
        /// The actor who sent the command.
        actor: ActorId,
        /// The role the actor holds.
        role: Role,
    },
    /// The command's instant is earlier than the workspace's newest event: a stream's times never
    /// go backwards. Send it again at (or after) `newest`, or fix the clock (`--now`).
    #[error("clock-behind-stream: the command happens at {now}, before the workspace's newest event at {newest}")]
    ClockBehindStream {
        /// The command's instant.
        now: DateTime<Utc>,
        /// When the workspace's newest event occurred.
        newest: DateTime<Utc>,
    },
    /// The workspace is locked: only commands that clear a reason are accepted (settling a bill,
    /// switching an ended cloud settlement to enterprise).
    #[error("workspace-locked: the workspace is locked since {locked_at} (open reasons: {reasons}); clear them first")]
    WorkspaceLocked {
        /// When it was locked.
        locked_at: DateTime<Utc>,
        /// The open reasons, for the message.
        reasons: String,
    },
    /// The workspace was dissolved: it refuses everything.
    #[error(
        "workspace-dissolved: the workspace was dissolved at {dissolved_at}; it accepts no command"
    )]
    WorkspaceDissolved {
        /// When it was dissolved.
        dissolved_at: DateTime<Utc>,
    },
    /// The command needs a running countdown (dissolve, a reminder, a lock).
    #[error("not-in-countdown: the workspace's standing is {standing}, not countdown")]
    NotInCountdown {
        /// The current standing (`good`, `locked`, …).
        standing: &'static str,
    },
    /// A deadline was fired before it fell due.
    #[error("deadline-not-reached: the {what} of countdown {countdown} is due at {due_at}, not at {now}")]
    DeadlineNotReached {
        /// Which deadline (`reminder` or `lock`).
        what: &'static str,
        /// The countdown.
        countdown: u32,
        /// When it is due.
        due_at: DateTime<Utc>,
        /// The command's instant.
        now: DateTime<Utc>,
    },
    /// The countdown's reminder was already sent.
    #[error("reminder-already-sent: the reminder of countdown {countdown} was already sent")]
    ReminderAlreadySent {
        /// The countdown.
        countdown: u32,
    },
    /// The same bill was reported in arrears twice.
    #[error(
        "arrears-already-recorded: bill {bill} was already recorded in arrears on this workspace"
    )]
    ArrearsAlreadyRecorded {
        /// The bill.
        bill: BillId,
    },
    /// Settling a bill that is not open in arrears.
    #[error(
        "unknown-arrears: bill {bill} is not open in arrears on this workspace (open: {open})"
    )]
    UnknownArrears {
        /// The bill asked for.
        bill: BillId,
        /// The open bills, comma-separated (`none` when there are none).
        open: String,
    },
    /// A subscription report about an account the workspace does not settle through.
    #[error("not-settling-through-account: the workspace settles through {settlement}, not {method} account {account}")]
    NotSettlingThroughAccount {
        /// The method reported.
        method: MethodId,
        /// The account reported.
        account: CloudAccount,
        /// The current settlement (boxed: it is the largest field of any refusal, and every
        /// `Result<_, DomainError>` carries the size of the largest one).
        settlement: Box<Settlement>,
    },
    /// The ended subscription was already reported.
    #[error("cloud-subscription-already-ended: the end of the {method} subscription of account {account} is already recorded")]
    CloudSubscriptionAlreadyEnded {
        /// The method.
        method: MethodId,
        /// The account.
        account: CloudAccount,
    },
    /// A resumed subscription was reported for an account with no ended subscription recorded.
    #[error("cloud-subscription-not-ended: no ended {method} subscription of account {account} is open on this workspace")]
    CloudSubscriptionNotEnded {
        /// The method.
        method: MethodId,
        /// The account.
        account: CloudAccount,
    },
    /// A stored event's shape version this release cannot read.
    #[error("unsupported-version: {event_type} version {version} is not supported (this library reads {reads})")]
    UnsupportedEventVersion {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: String,
        /// The version this release reads for the type.
        reads: &'static str,
    },
    /// An event cannot follow the history before it.
    #[error("invalid-transition: {event_type} cannot follow the history so far: {reason}")]
    InvalidTransition {
        /// The event's type.
        event_type: &'static str,
        /// Why it cannot follow.
        reason: String,
    },
}

impl DomainError {
    /// The rule name (SPEC casing) this refusal carries, e.g. `not-workspace-owner`.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidValue { .. } => "invalid-value",
            DomainError::NotWorkspaceOwner { .. } => "not-workspace-owner",
            DomainError::AlreadyCommercial { .. } => "already-commercial",
            DomainError::UpgradeAlreadyRequested { .. } => "upgrade-already-requested",
            DomainError::UpgradeNotRequested => "upgrade-not-requested",
            DomainError::UnknownSite { .. } => "unknown-site",
            DomainError::UnknownUserName { .. } => "unknown-user-name",
            DomainError::UserNameTaken { .. } => "user-name-taken",
            DomainError::AccountNotBound => "account-not-bound",
            DomainError::AccountAlreadyBound { .. } => "account-already-bound",
            DomainError::NotCommercialYet => "not-commercial-yet",
            DomainError::SettlementNotAllowedOnSite { .. } => "settlement-not-allowed-on-site",
            DomainError::InvalidSettlementRequest { .. } => "invalid-settlement-request",
            DomainError::SettlementUnchanged { .. } => "settlement-unchanged",
            DomainError::SettlementChangeTooSoon { .. } => "settlement-change-too-soon",
            DomainError::CloudSettlementLockedIn { .. } => "cloud-settlement-locked-in",
            DomainError::CloudAccountNotSubscribed { .. } => "cloud-account-not-subscribed",
            DomainError::VerificationMissing { .. } => "verification-missing",
            DomainError::PortUnavailable { .. } => "port-unavailable",
            DomainError::InvalidSitePolicy { .. } => "invalid-site-policy",
            DomainError::InvalidTransition { .. } => "invalid-transition",
            DomainError::NotBillingSystem { .. } => "not-billing-system",
            DomainError::ClockBehindStream { .. } => "clock-behind-stream",
            DomainError::WorkspaceLocked { .. } => "workspace-locked",
            DomainError::WorkspaceDissolved { .. } => "workspace-dissolved",
            DomainError::NotInCountdown { .. } => "not-in-countdown",
            DomainError::DeadlineNotReached { .. } => "deadline-not-reached",
            DomainError::ReminderAlreadySent { .. } => "reminder-already-sent",
            DomainError::ArrearsAlreadyRecorded { .. } => "arrears-already-recorded",
            DomainError::UnknownArrears { .. } => "unknown-arrears",
            DomainError::NotSettlingThroughAccount { .. } => "not-settling-through-account",
            DomainError::CloudSubscriptionAlreadyEnded { .. } => "cloud-subscription-already-ended",
            DomainError::CloudSubscriptionNotEnded { .. } => "cloud-subscription-not-ended",
            DomainError::UnsupportedEventVersion { .. } => "unsupported-version",
        }
    }

    /// Whether the error is bad input (a value or a policy), as opposed to a rule refusal.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DomainError::InvalidValue { .. }
                | DomainError::InvalidSitePolicy { .. }
                | DomainError::InvalidSettlementRequest { .. }
        )
    }
}
