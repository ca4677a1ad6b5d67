//! The domain's one error type.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::values::{ActorId, BillId, CloudAccount, MethodId, Role, Settlement, SiteId, UserName};

/// Why the domain refused a command, an event or a value.
///
/// Every variant names its rule ([`DomainError::code`], the SPEC's kebab-case name) and carries
/// the values involved. [`DomainError::kind`] says how a caller handles each; of the 34
/// variants:
/// - 27 are rule refusals, the user's to fix: nothing was decided; show the message, do not
///   retry as is ([`DomainErrorKind::Rule`]). Two of them are role rules,
///   [`DomainError::NotWorkspaceOwner`] and [`DomainError::NotBillingSystem`]: send the command
///   as an actor who holds the role ([`DomainErrorKind::Role`]).
///
/// The seven others are no rule refusal:
/// - three are bad input, fixed by correcting the input: [`DomainError::InvalidValue`],
///   [`DomainError::InvalidSettlementRequest`] (a settlement request that does not fit its
///   method) and [`DomainError::InvalidSitePolicy`] (a host-supplied policy)
///   ([`DomainErrorKind::BadInput`]);
/// - [`DomainError::PortUnavailable`]: an outside system could not answer; nothing was decided,
///   retry later ([`DomainErrorKind::PortUnavailable`]);
/// - two say a stored history cannot be folded: [`DomainError::InvalidTransition`] (it breaks
///   the rules: the log is corrupt or forged; audit it) and
///   [`DomainError::UnsupportedEventVersion`] (it holds an event shape this release cannot read:
///   upgrade the library, else audit the log) ([`DomainErrorKind::StoredHistory`]);
/// - [`DomainError::VerificationMissing`]: `decide` was handed facts gathered for another command,
///   a bug in its caller; report it ([`DomainErrorKind::CallerBug`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A value failed validation: bad input; correct the named field.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// The field (command option) the value was given for.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Only the workspace owner may upgrade, bind, accept the agreement or change settlement: a
    /// role rule; send the command as the owner.
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
    /// The settlement request is malformed for its method (missing or extra account fields):
    /// bad input; send the fields the method takes.
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
    /// The lookups given to `decide` do not belong to this command: a bug in the caller (the
    /// store gathers them itself, so through it this is a bug in this library); report it.
    #[error("verification-missing: {what} was not verified through its port for this command")]
    VerificationMissing {
        /// What was expected.
        what: &'static str,
    },
    /// An outside system (Expense Center, cloud marketplace) could not answer; nothing was
    /// decided. Retry later.
    #[error("{port} unavailable: {reason}")]
    PortUnavailable {
        /// Which port failed.
        port: &'static str,
        /// What it reported.
        reason: String,
    },
    /// A host-supplied site policy is not usable: bad input; fix the policy.
    #[error("invalid site policy: {reason}")]
    InvalidSitePolicy {
        /// What is wrong with it.
        reason: String,
    },
    /// Only the billing system may report Expense Center and marketplace facts or fire deadlines:
    /// a role rule; the billing system (role `system`) sends these.
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
    /// A stored event's shape version this release cannot read: the log was written by a newer
    /// release (upgrade this one) or altered (audit it).
    #[error("unsupported-version: {event_type} version {version} is not supported (this library reads {reads})")]
    UnsupportedEventVersion {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: String,
        /// The version this release reads for the type.
        reads: &'static str,
    },
    /// An event cannot follow the history before it: a stored history that breaks the rules is
    /// corrupt or forged; audit it.
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

    /// How a caller handles this error (an exhaustive `match`: a new variant compiles only
    /// with a decision here).
    pub fn kind(&self) -> DomainErrorKind {
        match self {
            DomainError::NotWorkspaceOwner { .. } | DomainError::NotBillingSystem { .. } => {
                DomainErrorKind::Role
            }
            DomainError::AlreadyCommercial { .. }
            | DomainError::UpgradeAlreadyRequested { .. }
            | DomainError::UpgradeNotRequested
            | DomainError::UnknownSite { .. }
            | DomainError::UnknownUserName { .. }
            | DomainError::UserNameTaken { .. }
            | DomainError::AccountNotBound
            | DomainError::AccountAlreadyBound { .. }
            | DomainError::NotCommercialYet
            | DomainError::SettlementNotAllowedOnSite { .. }
            | DomainError::SettlementUnchanged { .. }
            | DomainError::SettlementChangeTooSoon { .. }
            | DomainError::CloudSettlementLockedIn { .. }
            | DomainError::CloudAccountNotSubscribed { .. }
            | DomainError::ClockBehindStream { .. }
            | DomainError::WorkspaceLocked { .. }
            | DomainError::WorkspaceDissolved { .. }
            | DomainError::NotInCountdown { .. }
            | DomainError::DeadlineNotReached { .. }
            | DomainError::ReminderAlreadySent { .. }
            | DomainError::ArrearsAlreadyRecorded { .. }
            | DomainError::UnknownArrears { .. }
            | DomainError::NotSettlingThroughAccount { .. }
            | DomainError::CloudSubscriptionAlreadyEnded { .. }
            | DomainError::CloudSubscriptionNotEnded { .. } => DomainErrorKind::Rule,
            DomainError::InvalidValue { .. }
            | DomainError::InvalidSettlementRequest { .. }
            | DomainError::InvalidSitePolicy { .. } => DomainErrorKind::BadInput,
            DomainError::PortUnavailable { .. } => DomainErrorKind::PortUnavailable,
            DomainError::InvalidTransition { .. } | DomainError::UnsupportedEventVersion { .. } => {
                DomainErrorKind::StoredHistory
            }
            DomainError::VerificationMissing { .. } => DomainErrorKind::CallerBug,
        }
    }

    /// Whether the error is bad input (a value, a settlement request or a policy), as opposed to
    /// a rule refusal: [`DomainErrorKind::BadInput`].
    pub fn is_bad_input(&self) -> bool {
        self.kind() == DomainErrorKind::BadInput
    }

    /// One value of every variant, for the tests of a mapping from this error in another crate
    /// (the CLI's exit statuses, the HTTP problems), which `#[non_exhaustive]` keeps from
    /// matching the variants without a wildcard. The list is checked complete when this crate
    /// compiles ([`one_of_each!`](crate::one_of_each)) and by its tests.
    ///
    /// # Errors
    /// None in practice: the values in the list are literals that parse. An error would name
    /// the literal that does not.
    pub fn one_of_each() -> Result<Vec<DomainError>, DomainError> {
        Ok(Self::samples()?.1)
    }

    fn samples() -> Result<(usize, Vec<DomainError>), DomainError> {
        use crate::values::ExternalId;
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let actor = ActorId::parse("alice")?;
        let site = SiteId::parse("cn1")?;
        let user_name = UserName::parse("acme-finance")?;
        let aws = MethodId::parse("aws")?;
        let account = CloudAccount {
            account_id: ExternalId::parse("123456789012")?,
            instance_id: None,
        };
        let bill = BillId::parse("b-1")?;
        let enterprise = Settlement::Enterprise {
            user_name: user_name.clone(),
        };
        Ok(crate::one_of_each!(DomainError;
            DomainError::InvalidValue { .. } => DomainError::InvalidValue {
                field: "site",
                value: "CN 1".into(),
                reason: "may contain only printable ASCII characters without spaces",
            };
            DomainError::NotWorkspaceOwner { .. } => DomainError::NotWorkspaceOwner {
                actor: actor.clone(),
                role: Role::Member,
            };
            DomainError::AlreadyCommercial { .. } => DomainError::AlreadyCommercial { upgraded_at: at };
            DomainError::UpgradeAlreadyRequested { .. } => DomainError::UpgradeAlreadyRequested {
                site: site.clone(),
            };
            DomainError::UpgradeNotRequested => DomainError::UpgradeNotRequested;
            DomainError::UnknownSite { .. } => DomainError::UnknownSite {
                site: site.clone(),
                known: "cn2, cn4, us1".into(),
            };
            DomainError::UnknownUserName { .. } => DomainError::UnknownUserName {
                user_name: user_name.clone(),
            };
            DomainError::UserNameTaken { .. } => DomainError::UserNameTaken {
                user_name: user_name.clone(),
            };
            DomainError::AccountNotBound => DomainError::AccountNotBound;
            DomainError::AccountAlreadyBound { .. } => DomainError::AccountAlreadyBound {
                bound: user_name.clone(),
                requested: UserName::parse("other-finance")?,
            };
            DomainError::NotCommercialYet => DomainError::NotCommercialYet;
            DomainError::SettlementNotAllowedOnSite { .. } => DomainError::SettlementNotAllowedOnSite {
                method: aws.clone(),
                site: site.clone(),
                allowed: "enterprise, alibaba-cloud".into(),
            };
            DomainError::InvalidSettlementRequest { .. } => DomainError::InvalidSettlementRequest {
                method: MethodId::enterprise(),
                reason: "enterprise takes no cloud account",
            };
            DomainError::SettlementUnchanged { .. } => DomainError::SettlementUnchanged {
                current: enterprise.clone(),
            };
            DomainError::SettlementChangeTooSoon { .. } => DomainError::SettlementChangeTooSoon {
                last_changed_at: at,
                next_allowed_at: at,
                time_zone: "Asia/Shanghai".into(),
            };
            DomainError::CloudSettlementLockedIn { .. } => DomainError::CloudSettlementLockedIn {
                method: aws.clone(),
                account: account.clone(),
            };
            DomainError::CloudAccountNotSubscribed { .. } => DomainError::CloudAccountNotSubscribed {
                method: aws.clone(),
                account: account.clone(),
            };
            DomainError::VerificationMissing { .. } => DomainError::VerificationMissing {
                what: "the Expense Center account",
            };
            DomainError::PortUnavailable { .. } => DomainError::PortUnavailable {
                port: "expense center",
                reason: "connection refused".into(),
            };
            DomainError::InvalidSitePolicy { .. } => DomainError::InvalidSitePolicy {
                reason: "no site".into(),
            };
            DomainError::NotBillingSystem { .. } => DomainError::NotBillingSystem {
                actor: actor.clone(),
                role: Role::Owner,
            };
            DomainError::ClockBehindStream { .. } => DomainError::ClockBehindStream {
                now: at,
                newest: at,
            };
            DomainError::WorkspaceLocked { .. } => DomainError::WorkspaceLocked {
                locked_at: at,
                reasons: "arrears b-1".into(),
            };
            DomainError::WorkspaceDissolved { .. } => DomainError::WorkspaceDissolved {
                dissolved_at: at,
            };
            DomainError::NotInCountdown { .. } => DomainError::NotInCountdown { standing: "good" };
            DomainError::DeadlineNotReached { .. } => DomainError::DeadlineNotReached {
                what: "lock",
                countdown: 1,
                due_at: at,
                now: at,
            };
            DomainError::ReminderAlreadySent { .. } => DomainError::ReminderAlreadySent {
                countdown: 1,
            };
            DomainError::ArrearsAlreadyRecorded { .. } => DomainError::ArrearsAlreadyRecorded {
                bill: bill.clone(),
            };
            DomainError::UnknownArrears { .. } => DomainError::UnknownArrears {
                bill: bill.clone(),
                open: "none".into(),
            };
            DomainError::NotSettlingThroughAccount { .. } => DomainError::NotSettlingThroughAccount {
                method: aws.clone(),
                account: account.clone(),
                settlement: Box::new(enterprise),
            };
            DomainError::CloudSubscriptionAlreadyEnded { .. } => DomainError::CloudSubscriptionAlreadyEnded {
                method: aws.clone(),
                account: account.clone(),
            };
            DomainError::CloudSubscriptionNotEnded { .. } => DomainError::CloudSubscriptionNotEnded {
                method: aws,
                account,
            };
            DomainError::UnsupportedEventVersion { .. } => DomainError::UnsupportedEventVersion {
                event_type: "PlanUpgraded".into(),
                version: "9".into(),
                reads: "1",
            };
            DomainError::InvalidTransition { .. } => DomainError::InvalidTransition {
                event_type: "PlanUpgraded",
                reason: "no upgrade was requested".into(),
            };
        ))
    }
}

/// How a caller handles a [`DomainError`] ([`DomainError::kind`]): what a door (the CLI's exit
/// status, the HTTP status) decides on.
///
/// Not `#[non_exhaustive]`, unlike the error enums: a new kind is a new way of handling an
/// error, and every door must decide how to answer it. A `match` on it in another crate needs no
/// wildcard arm, so adding a kind fails to compile there until it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DomainErrorKind {
    /// A rule refused the command: the user's to fix. Show the message; do not retry as is.
    Rule,
    /// A role rule refused it: the actor's role may not do this. Send it as an actor who holds
    /// the role the message names.
    Role,
    /// A value, a settlement request or a site policy is malformed: correct the input.
    BadInput,
    /// An outside system could not answer; nothing was decided. Retry later.
    PortUnavailable,
    /// A stored history cannot be folded: corrupt, forged, or written by a newer release. Audit
    /// the log (upgrade first if it is newer).
    StoredHistory,
    /// The caller handed `decide` facts gathered for another command: a bug; report it.
    CallerBug,
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::{DomainError, DomainErrorKind};

    #[test]
    fn one_of_each_holds_one_value_of_every_variant() {
        let (arms, all) = DomainError::samples().unwrap();
        let variants: HashSet<_> = all.iter().map(std::mem::discriminant).collect();
        assert_eq!((variants.len(), all.len()), (arms, arms));
        let codes: HashSet<_> = all.iter().map(DomainError::code).collect();
        assert_eq!(codes.len(), arms, "every variant has its own code");
    }

    /// The counts the type's documentation gives.
    #[test]
    fn the_documented_counts_of_each_kind_hold() {
        let mut kinds = HashMap::new();
        for e in DomainError::one_of_each().unwrap() {
            *kinds.entry(e.kind()).or_insert(0) += 1;
        }
        assert_eq!(kinds.values().sum::<i32>(), 34);
        assert_eq!(
            kinds[&DomainErrorKind::Rule] + kinds[&DomainErrorKind::Role],
            27
        );
        assert_eq!(kinds[&DomainErrorKind::Role], 2);
        assert_eq!(kinds[&DomainErrorKind::BadInput], 3);
        assert_eq!(kinds[&DomainErrorKind::PortUnavailable], 1);
        assert_eq!(kinds[&DomainErrorKind::StoredHistory], 2);
        assert_eq!(kinds[&DomainErrorKind::CallerBug], 1);
    }
}
