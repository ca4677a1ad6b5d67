//! The billing view and the audit trail: what a workspace looks like, and what happened to it.
//!
//! Both are pure functions of the log: [`BillingView::from_state`] of the folded state, and
//! [`AuditEntry::from_event`] of each stored event. [`billing_view_at`] computes the view as of
//! any instant.

use billing_domain::{Plan, Settlement, Workspace, WorkspaceEvent};
use billing_store::StoredEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A workspace's billing, as the console shows it (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    /// The workspace.
    pub workspace_id: String,
    /// `experience` or `commercial`.
    pub plan: String,
    /// How far the upgrade has come (`not-requested`, `requested`, `account-bound`, `upgraded`).
    pub upgrade_step: String,
    /// The site, once the upgrade was requested.
    pub site: Option<String>,
    /// The bound Expense Center user name.
    pub user_name: Option<String>,
    /// The settlement method (`enterprise`, `aws`, …), once commercial.
    pub settlement_method: Option<String>,
    /// The cloud account the workspace settles through, for cloud methods.
    pub cloud_account_id: Option<String>,
    /// The cloud marketplace instance, for methods that have one.
    pub cloud_instance_id: Option<String>,
    /// The accepted agreement version.
    pub agreement_version: Option<String>,
    /// When the workspace was upgraded (RFC 3339).
    pub upgraded_at: Option<String>,
    /// From when collected data is viewable (= `upgraded_at`; data collected during the
    /// Experience Plan is no longer viewable). `None` on the Experience Plan.
    pub data_visible_from: Option<String>,
    /// How many times the settlement changed.
    pub settlement_changes: i64,
    /// The last sequence the view includes.
    pub last_sequence: i64,
    /// The stream's head hash at that sequence (keep it outside the database to audit later).
    pub head_hash: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl BillingView {
    /// The view of `state`, the state after `last_sequence` events ending in `head_hash`.
    pub fn from_state(
        workspace_id: &str,
        state: &Workspace,
        last_sequence: u64,
        head_hash: &str,
    ) -> Self {
        let settlement = state.settlement();
        let cloud = settlement.and_then(Settlement::cloud);
        Self {
            workspace_id: workspace_id.to_owned(),
            plan: match state.plan() {
                Plan::Experience => "experience".into(),
                Plan::Commercial => "commercial".into(),
            },
            upgrade_step: state.upgrade_step().as_str().to_owned(),
            site: state.site().map(ToString::to_string),
            user_name: state.bound_account().map(|a| a.user_name.to_string()),
            settlement_method: settlement.map(|s| s.method().to_string()),
            cloud_account_id: cloud.map(|(_, a)| a.account_id.to_string()),
            cloud_instance_id: cloud
                .and_then(|(_, a)| a.instance_id.as_ref().map(ToString::to_string)),
            agreement_version: state.agreement_version().map(ToString::to_string),
            upgraded_at: state.upgraded_at().map(ts),
            data_visible_from: state.data_visible_from().map(ts),
            settlement_changes: i64::from(state.settlement_changes()),
            last_sequence: i64::try_from(last_sequence).unwrap_or(i64::MAX),
            head_hash: head_hash.to_owned(),
        }
    }

    /// The plan's display name ("Experience Plan", "Commercial Plan").
    pub fn plan_name(&self) -> &'static str {
        if self.plan == "commercial" {
            Plan::Commercial.display_name()
        } else {
            Plan::Experience.display_name()
        }
    }

    /// The link to the bound account in the Expense Center, under `base_url`.
    pub fn expense_center_link(&self, base_url: &str) -> Option<String> {
        self.user_name
            .as_ref()
            .map(|u| format!("{}/accounts/{u}", base_url.trim_end_matches('/')))
    }
}

/// One line of a workspace's audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The workspace.
    pub workspace_id: String,
    /// The event's sequence.
    pub sequence: i64,
    /// The event type.
    pub event_type: String,
    /// Who caused it.
    pub actor_id: String,
    /// In which role.
    pub actor_role: String,
    /// When (RFC 3339).
    pub occurred_at: String,
    /// A one-line human description.
    pub description: String,
}

impl AuditEntry {
    /// The entry for a stored event.
    pub fn from_event(event: &StoredEvent) -> Self {
        Self {
            workspace_id: event.workspace_id.to_string(),
            sequence: i64::try_from(event.sequence).unwrap_or(i64::MAX),
            event_type: event.event.event_type().to_owned(),
            actor_id: event.metadata.actor_id.to_string(),
            actor_role: event.metadata.actor_role.as_str().to_owned(),
            occurred_at: ts(event.metadata.occurred_at),
            description: event.event.describe(),
        }
    }
}

/// The billing view as of `instant`: the events that occurred up to it, folded. `None` when the
/// workspace had no events yet.
pub fn billing_view_at(
    workspace_id: &str,
    events: &[StoredEvent],
    instant: DateTime<Utc>,
) -> Option<BillingView> {
    let mut state = Workspace::default();
    let mut last: Option<&StoredEvent> = None;
    for stored in events {
        if stored.event.occurred_at() > instant {
            break;
        }
        // Stored events come from a verified stream; one that does not evolve ends the fold.
        match state.evolve(&stored.event) {
            Ok(next) => state = next,
            Err(_) => break,
        }
        last = Some(stored);
    }
    last.map(|e| BillingView::from_state(workspace_id, &state, e.sequence, &e.metadata.hash))
}

/// The opening reminder for a `PlanUpgraded` event (subject and body).
pub fn opening_reminder(
    workspace_id: &str,
    event: &WorkspaceEvent,
) -> Option<(String, String, String)> {
    let WorkspaceEvent::PlanUpgraded(up) = event else {
        return None;
    };
    let Settlement::Enterprise { user_name } = &up.settlement else {
        return None;
    };
    let subject = format!("Workspace {workspace_id} is on the Commercial Plan");
    let body = format!(
        "Your workspace {workspace_id} on site {} was upgraded to the Commercial Plan at {} \
         (agreement {}). It settles through your Expense Center account {user_name}. Data collected \
         during the Experience Plan is no longer viewable.",
        up.site,
        ts(up.at),
        up.agreement_version
    );
    Some((user_name.to_string(), subject, body))
}
