//! What the outbox sends about a workspace (SPEC §2 and §10): the opening reminder after the
//! upgrade, and the notices of its standing — countdown started, countdown reminder, locked,
//! unlocked, settlement fallen back. Each is a pure function of one stored event and the
//! workspace's state right after it, so the projector (after the commit), the catch-up (from the
//! log) and a rebuild all compose the same notice.

use billing_domain::{
    ChangeReason, Reason, Role, Settlement, Standing, UserName, Workspace, WorkspaceEvent,
    WorkspaceId,
};
use billing_store::StoredEvent;
use chrono::{DateTime, Utc};

use billing_domain::instant::rfc3339;

use crate::views::opening_reminder;

/// The outbox kind of the opening reminder e-mail, once per upgrade.
pub const OPENING_REMINDER: &str = "opening-reminder";
/// The outbox kind of the notice that a countdown started (`CountdownStarted`).
pub const COUNTDOWN_STARTED: &str = "countdown-started";
/// The outbox kind of a countdown's reminder (`CountdownReminded`), due at the countdown's
/// `remind_at`.
pub const COUNTDOWN_REMINDER: &str = "countdown-reminder";
/// The outbox kind of the notice that the workspace was locked (`WorkspaceLocked`).
pub const LOCKED: &str = "locked";
/// The outbox kind of the notice that the workspace was unlocked (`WorkspaceUnlocked`).
pub const UNLOCKED: &str = "unlocked";
/// The outbox kind of the notice that the billing system moved the workspace to enterprise
/// settlement because its cloud subscription ended: a `SettlementChanged` with reason
/// `cloud-subscription-ended` whose actor's role is `system`. (The owner switching to
/// enterprise to clear an ended subscription is the owner's own doing, not a fallback: no
/// notice; the `unlocked` notice follows when it cleared the last reason.)
pub const SETTLEMENT_FALLEN_BACK: &str = "settlement-fallen-back";

/// Every notice kind, in the order a workspace can first receive them.
pub const NOTICE_KINDS: [&str; 6] = [
    OPENING_REMINDER,
    COUNTDOWN_STARTED,
    COUNTDOWN_REMINDER,
    LOCKED,
    UNLOCKED,
    SETTLEMENT_FALLEN_BACK,
];

/// One notice, composed from its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    /// One of [`NOTICE_KINDS`].
    pub(crate) kind: &'static str,
    /// The countdown it is about (none for the opening reminder and a fallback).
    pub(crate) countdown: Option<u32>,
    /// To whom: the bound Expense Center user name.
    pub(crate) to: UserName,
    /// When it fell due.
    pub(crate) due_at: DateTime<Utc>,
    /// Subject line.
    pub(crate) subject: String,
    /// Text body.
    pub(crate) body: String,
}

/// The reasons as one line (`none` when there are none).
fn reasons_line(reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return "none".to_owned();
    }
    reasons
        .iter()
        .map(|r| match r {
            Reason::Arrears {
                bill,
                amount,
                since,
            } => format!(
                "bill {bill} in arrears, {amount} (recorded {})",
                rfc3339(*since)
            ),
            Reason::CloudSubscriptionEnded {
                method,
                account,
                since,
            } => format!(
                "the {method} subscription of account {account} ended (reported {})",
                rfc3339(*since)
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What clears the reasons, for the bodies.
const HOW_TO_CLEAR: &str = "Settle each bill in arrears by recharging the Expense Center account \
    (a Huawei Cloud stored-value card may pay the recharge); clear an ended cloud subscription by \
    subscribing the same account again or by switching to enterprise settlement.";

/// The notice `stored` (an event of `workspace`) calls for, given the workspace's state right
/// after it; `None` for an event that calls for none, or a workspace without a bound account.
pub(crate) fn notice(
    workspace: &WorkspaceId,
    after: &Workspace,
    stored: &StoredEvent,
) -> Option<Notice> {
    if let Some(reminder) = opening_reminder(workspace, &stored.event) {
        return Some(Notice {
            kind: OPENING_REMINDER,
            countdown: None,
            to: reminder.to,
            due_at: stored.event.occurred_at(),
            subject: reminder.subject,
            body: reminder.body,
        });
    }
    let to = after.bound_account()?.user_name.clone();
    let reasons = reasons_line(after.reasons());
    let at = stored.event.occurred_at();
    let (kind, countdown, due_at, subject, body) = match &stored.event {
        WorkspaceEvent::CountdownStarted(e) => (
            COUNTDOWN_STARTED,
            Some(e.countdown),
            at,
            format!(
                "Workspace {workspace}: countdown {} started; it will be locked at {}",
                e.countdown,
                rfc3339(e.deadline)
            ),
            format!(
                "Countdown {} of workspace {workspace} started at {}. Open reasons: {reasons}. \
                 Unless every reason is cleared first, the workspace will be locked at {}; a \
                 reminder follows at {}. {HOW_TO_CLEAR}",
                e.countdown,
                rfc3339(e.at),
                rfc3339(e.deadline),
                rfc3339(e.remind_at)
            ),
        ),
        WorkspaceEvent::CountdownReminded(e) => {
            let remind_at = match after.standing() {
                Some(Standing::Countdown(c)) if c.number == e.countdown => c.remind_at,
                _ => at,
            };
            (
                COUNTDOWN_REMINDER,
                Some(e.countdown),
                remind_at,
                format!(
                    "Reminder: workspace {workspace} will be locked at {}",
                    rfc3339(e.deadline)
                ),
                format!(
                    "Countdown {} of workspace {workspace} ends at {}: unless every reason is \
                     cleared by then, the workspace will be locked. Open reasons: {reasons}. \
                     {HOW_TO_CLEAR}",
                    e.countdown,
                    rfc3339(e.deadline)
                ),
            )
        }
        WorkspaceEvent::WorkspaceLocked(e) => (
            LOCKED,
            Some(e.countdown),
            at,
            format!("Workspace {workspace} is locked"),
            format!(
                "Countdown {} of workspace {workspace} passed its deadline {} with reasons still \
                 open, and the workspace was locked at {}. Open reasons: {reasons}. While it is \
                 locked, every owner command is refused except the ones that clear a reason; \
                 it is unlocked as soon as none is left. {HOW_TO_CLEAR}",
                e.countdown,
                rfc3339(e.deadline),
                rfc3339(e.at)
            ),
        ),
        WorkspaceEvent::WorkspaceUnlocked(e) => (
            UNLOCKED,
            Some(e.countdown),
            at,
            format!("Workspace {workspace} is in good standing again"),
            format!(
                "Every reason of countdown {} of workspace {workspace} was cleared at {}: the \
                 workspace is unlocked and in good standing, still on the Commercial Plan.",
                e.countdown,
                rfc3339(e.at)
            ),
        ),
        WorkspaceEvent::SettlementChanged(e)
            if e.reason == ChangeReason::CloudSubscriptionEnded
                && stored.metadata.actor_role == Role::System =>
        {
            let ended = match &e.from {
                Settlement::Cloud { method, account } => {
                    format!("The {method} subscription of account {account}")
                }
                Settlement::Enterprise { .. } => "The cloud subscription".to_owned(),
            };
            (
                SETTLEMENT_FALLEN_BACK,
                None,
                at,
                format!("Workspace {workspace} now settles through your Expense Center account"),
                format!(
                    "{ended} that workspace {workspace} settled through ended, so at {} the \
                     workspace moved from {} to {}. This change does not count toward the \
                     once-a-month limit on settlement changes.",
                    rfc3339(e.at),
                    e.from,
                    e.to
                ),
            )
        }
        _ => return None,
    };
    Some(Notice {
        kind,
        countdown,
        to,
        due_at,
        subject,
        body,
    })
}
