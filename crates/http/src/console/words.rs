//! What the console says: refusals, settlements, standings and instants in words for people,
//! instants in the site's time zone.

use axum::http::StatusCode;
use billing_adapters::AdapterError;
use billing_domain::{
    DomainError, MethodId, Reason, Settlement, Site, SiteId, SitePolicy, Standing,
};
use billing_store::StoreError;
use chrono::{DateTime, Utc};

use crate::auth::AuthError;
use crate::problem::ApiError;

/// A message for the page's `#error`: the status it is answered with, the rule name, the words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Said {
    /// The status of the page.
    pub(crate) status: StatusCode,
    /// The rule name (`settlement-change-too-soon`, `csrf-token-invalid`, …).
    pub(crate) code: String,
    /// The words.
    pub(crate) text: String,
}

impl Said {
    /// A message.
    pub(crate) fn new(status: StatusCode, code: &str, text: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            text: text.into(),
        }
    }
}

/// What the words depend on: the policy, and the workspace's site once known.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    /// The site policy.
    pub(crate) policy: &'a SitePolicy,
    /// The workspace's site, if known.
    pub(crate) site: Option<&'a Site>,
}

impl<'a> Cx<'a> {
    /// The context of a workspace on `site` (if any) under `policy`.
    pub(crate) fn new(policy: &'a SitePolicy, site: Option<&SiteId>) -> Self {
        Self {
            policy,
            site: site.and_then(|s| policy.site(s).ok()),
        }
    }

    /// A site's name (its id when the policy does not know it).
    fn site_name(&self, site: &SiteId) -> String {
        self.policy
            .site(site)
            .map_or_else(|_| site.to_string(), |s| s.name.clone())
    }
}

/// An instant for people, through the domain's one formatter: `2027-02-01 00:00
/// (Asia/Shanghai)` in the site's time zone, `2027-02-01 00:00 UTC` when the site is not known.
pub(crate) fn when(t: DateTime<Utc>, site: Option<&Site>) -> String {
    billing_domain::instant::human(t, site.map(|s| s.time_zone))
}

/// A method as the settlement form lists it: "Enterprise (Expense Center)", "AWS",
/// "Alibaba Cloud", else the policy's own name for it.
pub(crate) fn method_label(policy: &SitePolicy, method: &MethodId) -> String {
    if method.is_enterprise() {
        return "Enterprise (Expense Center)".to_owned();
    }
    provider(policy, method)
}

/// A cloud provider's name ("AWS", "Alibaba Cloud", else the policy's name for the method).
pub(crate) fn provider(policy: &SitePolicy, method: &MethodId) -> String {
    match method.as_str() {
        "aws" => "AWS".to_owned(),
        "alibaba-cloud" => "Alibaba Cloud".to_owned(),
        MethodId::ENTERPRISE => "Expense Center".to_owned(),
        _ => policy
            .method(method)
            .map_or_else(|| method.to_string(), |m| m.name.clone()),
    }
}

/// A settlement in words: "Enterprise (Expense Center account acme-finance)",
/// "AWS account 123456789012", "Alibaba Cloud account 1234 (instance i-1)".
pub(crate) fn settlement(policy: &SitePolicy, settlement: &Settlement) -> String {
    match settlement {
        Settlement::Enterprise { user_name } => {
            format!("Enterprise (Expense Center account {user_name})")
        }
        Settlement::Cloud { method, account } => {
            format!("{} account {account}", provider(policy, method))
        }
    }
}

/// What clears a reason, in words ("bill B-1 (12.00 CNY) is paid").
fn clears(reason: &Reason, policy: &SitePolicy) -> String {
    match reason {
        Reason::Arrears { bill, amount, .. } => format!("bill {bill} ({amount}) is paid"),
        Reason::CloudSubscriptionEnded {
            method, account, ..
        } => format!(
            "the {} subscription of account {account} is active again or the workspace settles through another method",
            provider(policy, method)
        ),
    }
}

/// The open reasons as one clause ("bill B-1 (12.00 CNY) is paid and …").
fn clears_all(reasons: &[Reason], policy: &SitePolicy) -> String {
    if reasons.is_empty() {
        return "every open reason is cleared".to_owned();
    }
    reasons
        .iter()
        .map(|r| clears(r, policy))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The standing in words ("Good standing", "Countdown: locked on … unless …", "Locked since
/// …", "Dissolved on …"); a workspace on the Experience Plan is in good standing.
pub(crate) fn standing(standing: Option<&Standing>, reasons: &[Reason], cx: Cx<'_>) -> String {
    match standing {
        None | Some(Standing::Good) => "Good standing".to_owned(),
        Some(Standing::Countdown(countdown)) => format!(
            "Countdown: locked on {} unless {}.",
            when(countdown.deadline, cx.site),
            clears_all(reasons, cx.policy)
        ),
        Some(Standing::Locked { locked_at, .. }) => format!(
            "Locked since {}. It unlocks when {}.",
            when(*locked_at, cx.site),
            clears_all(reasons, cx.policy)
        ),
        Some(Standing::Dissolved { dissolved_at, .. }) => {
            format!("Dissolved on {}.", when(*dissolved_at, cx.site))
        }
    }
}

/// A field's name for people.
fn field_name(field: &str) -> &str {
    match field {
        "username" => "user name",
        "email" => "e-mail address",
        "version" => "agreement version",
        "method" => "settlement method",
        "account" => "account id",
        "instance" => "instance id",
        "workspace" | "id" => "workspace id",
        "actor" => "actor id",
        other => other,
    }
}

/// "a member", "an admin".
fn with_article(role: billing_domain::Role) -> String {
    match role.as_str() {
        r @ ("admin" | "owner") => format!("an {r}"),
        r => format!("a {r}"),
    }
}

/// A domain refusal in words.
pub(crate) fn domain(e: &DomainError, cx: Cx<'_>) -> String {
    let policy = cx.policy;
    match e {
        DomainError::InvalidValue {
            field,
            value,
            reason,
        } => format!("The {} “{value}” is not valid: it {reason}.", field_name(field)),
        DomainError::NotWorkspaceOwner { role, .. } => format!(
            "Only the workspace owner can upgrade this workspace or change its settlement; you are {} of it.",
            with_article(*role)
        ),
        DomainError::AlreadyCommercial { upgraded_at } => format!(
            "This workspace is already on the Commercial Plan (since {}); the upgrade cannot run again.",
            when(*upgraded_at, cx.site)
        ),
        DomainError::UpgradeAlreadyRequested { site } => format!(
            "The upgrade was already requested, for site {}.",
            cx.site_name(site)
        ),
        DomainError::UpgradeNotRequested => {
            "Request the upgrade first: choose the workspace's site.".to_owned()
        }
        DomainError::UnknownSite { site, .. } => {
            format!("There is no site “{site}”. Choose one of the sites listed.")
        }
        DomainError::UnknownUserName { user_name } => format!(
            "No Expense Center account has the user name “{user_name}”. Check the name, or register a new account below."
        ),
        DomainError::UserNameTaken { user_name } => {
            format!("The user name “{user_name}” is taken. Choose another one.")
        }
        DomainError::AccountNotBound => {
            "Bind an Expense Center account before accepting the agreement.".to_owned()
        }
        DomainError::AccountAlreadyBound { bound, .. } => format!(
            "The Expense Center account “{bound}” is already bound to this workspace; a bound user name never changes."
        ),
        DomainError::NotCommercialYet => {
            "The settlement can change only after the upgrade to the Commercial Plan.".to_owned()
        }
        DomainError::SettlementNotAllowedOnSite { method, site, .. } => {
            let allowed = policy.site(site).map_or_else(
                |_| String::new(),
                |s| {
                    let labels: Vec<String> = s
                        .allowed_methods
                        .iter()
                        .map(|m| method_label(policy, m))
                        .collect();
                    format!(" Choose one of: {}.", labels.join(", "))
                },
            );
            format!(
                "{} is not a settlement method on site {}.{allowed}",
                method_label(policy, method),
                cx.site_name(site)
            )
        }
        DomainError::InvalidSettlementRequest { method, reason } => format!(
            "Settlement through {} cannot be set as given: {reason}.",
            method_label(policy, method)
        ),
        DomainError::SettlementUnchanged { current } => format!(
            "The workspace already settles through {}. Choose another method or account to change it.",
            settlement(policy, current)
        ),
        DomainError::SettlementChangeTooSoon {
            next_allowed_at,
            time_zone,
            ..
        } => {
            let site = cx.site.filter(|s| s.time_zone.name() == time_zone);
            format!(
                "The settlement method can change only once per calendar month. The next change is possible from {}.",
                when(*next_allowed_at, site)
            )
        }
        DomainError::CloudSettlementLockedIn { method, .. } => format!(
            "This workspace settles through an active {} subscription; it can move to another method only after that subscription ends.",
            provider(policy, method)
        ),
        DomainError::CloudAccountNotSubscribed { method, account } => format!(
            "{} account {account} has no active marketplace subscription.",
            provider(policy, method)
        ),
        DomainError::PortUnavailable { port, .. } => port_unavailable(port),
        DomainError::WorkspaceLocked { locked_at, .. } => format!(
            "The workspace is locked since {}: settle what is open first.",
            when(*locked_at, cx.site)
        ),
        DomainError::WorkspaceDissolved { dissolved_at } => format!(
            "The workspace was dissolved on {}; it accepts no change.",
            when(*dissolved_at, cx.site)
        ),
        DomainError::ClockBehindStream { .. } => {
            "The server's clock is behind this workspace's last change. Try again in a moment.".to_owned()
        }
        other => other.to_string(),
    }
}

/// Why a token does not sign in, in words.
pub(crate) fn auth(e: &AuthError) -> String {
    match e {
        AuthError::Missing => "No token was given. Paste the token you were issued.".to_owned(),
        AuthError::Malformed(why) => {
            format!("The token is not one this server can read ({why}). Ask for a new one.")
        }
        AuthError::Invalid(_) => {
            "The token's signature does not verify: it was not issued with this server's key. Ask for a new one.".to_owned()
        }
        AuthError::Expired => "The token has expired. Ask for a new one.".to_owned(),
    }
}

/// A store error that is not a refusal, in words.
fn store(e: &StoreError, detail: String) -> String {
    match e {
        StoreError::CommandIdReused { .. } => {
            "This form was already sent with other values. Reload the page and send it again."
                .to_owned()
        }
        StoreError::PortUnavailable { port, .. } => port_unavailable(port),
        e if e.is_unavailable() => unavailable(),
        _ => detail,
    }
}

fn port_unavailable(port: &str) -> String {
    format!("The {port} could not answer just now. Try again in a moment; nothing was changed.")
}

fn unavailable() -> String {
    "The billing store is unavailable right now. Try again in a moment; nothing was changed."
        .to_owned()
}

/// An error of a command or a read in words, with the API's status and code.
pub(crate) fn refusal(e: &ApiError, cx: Cx<'_>) -> Said {
    let problem = e.problem();
    let status = problem.status_code();
    let text = match e {
        ApiError::Store(s) | ApiError::Adapter(AdapterError::Store(s)) => match s.domain() {
            Some(d) => domain(d, cx),
            None => store(s, problem.detail.clone()),
        },
        ApiError::NoRole {
            workspace, command, ..
        } => {
            if *command {
                format!("You have no role in workspace {workspace}: only its owner can change it.")
            } else {
                format!("You have no role in workspace {workspace}. Sign in with an account that has one.")
            }
        }
        ApiError::Unauthenticated(a) => auth(a),
        ApiError::InvalidValue { field, reason } => {
            format!("The {} is not valid: {reason}.", field_name(field))
        }
        ApiError::PreconditionFailed { .. } => {
            "The workspace changed since this page was shown. Reload it and try again.".to_owned()
        }
        _ if status == StatusCode::SERVICE_UNAVAILABLE => unavailable(),
        _ => problem.detail.clone(),
    };
    Said {
        status,
        code: problem.code,
        text,
    }
}
