//! The billing view and the audit trail: what a workspace looks like, and what happened to it.
//!
//! Both are pure functions of the log: [`BillingView::from_state`] of the folded state, and
//! [`AuditEntry::from_event`] of each stored event. [`billing_view_at`] computes the view as of
//! any instant.
//!
//! Both carry domain types. Their serde form is the flat JSON that `billing show --json` and
//! `billing history --json` print and the HTTP API answers (a contract for scripts), declared
//! once: [`FlatView`] for the view — its settlement spread over `settlement_method`,
//! `cloud_account_id` and `cloud_instance_id`, its standing (SPEC §10) over `standing`,
//! `reasons`, `countdown`, `countdown_deadline`, `remind_at`, `reminded_at`, `locked_at` and
//! `dissolved_at` —, [`AuditEntry`] for a trail entry and [`EventEntry`] for a stored event. The
//! OpenAPI document's schemas are derived from the same types. Ids and labels are strings,
//! instants RFC 3339 ([`billing_domain::instant::rfc3339`]).

use std::fmt::Display;

use billing_domain::instant::rfc3339;
use billing_domain::{
    ActorId, AgreementVersion, CloudAccount, Countdown, ExternalId, MethodId, Plan, Reason, Role,
    Settlement, SiteId, Standing, UpgradeStep, UserName, Workspace, WorkspaceEvent, WorkspaceId,
};
use billing_store::StoredEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A workspace's billing, as the console shows it (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FlatView", try_from = "FlatView")]
pub struct BillingView {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The plan the workspace is on.
    pub plan: Plan,
    /// How far the upgrade has come.
    pub upgrade_step: UpgradeStep,
    /// The site, once the upgrade was requested.
    pub site: Option<SiteId>,
    /// The bound Expense Center user name.
    pub user_name: Option<UserName>,
    /// How the workspace settles (the method, and the cloud account for cloud methods), once
    /// commercial.
    pub settlement: Option<Settlement>,
    /// The accepted agreement version.
    pub agreement_version: Option<AgreementVersion>,
    /// When the workspace was upgraded.
    pub upgraded_at: Option<DateTime<Utc>>,
    /// From when collected data is viewable (= `upgraded_at`; data collected during the
    /// Experience Plan is no longer viewable). `None` on the Experience Plan.
    pub data_visible_from: Option<DateTime<Utc>>,
    /// How many times the settlement changed.
    pub settlement_changes: u32,
    /// The last sequence the view includes (0: no events).
    pub last_sequence: u64,
    /// The stream's head hash at that sequence (keep it outside the database to audit later);
    /// empty when there are no events.
    pub head_hash: String,
    /// Where the workspace stands (SPEC §10): good, in a countdown, locked or dissolved, with the
    /// current (or last) countdown. `None` on the Experience Plan.
    pub standing: Option<Standing>,
    /// The open reasons (arrears, an ended cloud subscription), oldest first.
    pub reasons: Vec<Reason>,
}

impl BillingView {
    /// The view of `state`, the state after `last_sequence` events ending in `head_hash`.
    pub fn from_state(
        workspace_id: &WorkspaceId,
        state: &Workspace,
        last_sequence: u64,
        head_hash: &str,
    ) -> Self {
        Self {
            workspace_id: workspace_id.clone(),
            plan: state.plan(),
            upgrade_step: state.upgrade_step(),
            site: state.site().cloned(),
            user_name: state.bound_account().map(|a| a.user_name.clone()),
            settlement: state.settlement().cloned(),
            agreement_version: state.agreement_version().cloned(),
            upgraded_at: state.upgraded_at(),
            data_visible_from: state.data_visible_from(),
            settlement_changes: state.settlement_changes(),
            last_sequence,
            head_hash: head_hash.to_owned(),
            standing: state.standing().cloned(),
            reasons: state.reasons().to_vec(),
        }
    }

    /// The standing's name (`good`, `countdown`, `locked`, `dissolved`); `None` on the
    /// Experience Plan.
    pub fn standing_name(&self) -> Option<&'static str> {
        self.standing.as_ref().map(Standing::as_str)
    }

    /// The current (or last) countdown: running, or the one the workspace was locked or
    /// dissolved in. `None` in good standing and on the Experience Plan.
    pub fn countdown(&self) -> Option<&Countdown> {
        self.standing.as_ref().and_then(Standing::countdown)
    }

    /// The deadline of the current (or last) countdown: when the workspace will be locked unless
    /// every reason is cleared first (or the deadline that passed, once locked).
    pub fn countdown_deadline(&self) -> Option<DateTime<Utc>> {
        self.countdown().map(|c| c.deadline)
    }

    /// When the workspace was locked, while it is.
    pub fn locked_at(&self) -> Option<DateTime<Utc>> {
        self.standing.as_ref().and_then(Standing::locked_at)
    }

    /// When the workspace was dissolved, if it was.
    pub fn dissolved_at(&self) -> Option<DateTime<Utc>> {
        self.standing.as_ref().and_then(Standing::dissolved_at)
    }

    /// The plan's display name ("Experience Plan", "Commercial Plan").
    pub fn plan_name(&self) -> &'static str {
        self.plan.display_name()
    }

    /// The link to the bound account in the Expense Center, under `base_url`.
    pub fn expense_center_link(&self, base_url: &str) -> Option<String> {
        self.user_name
            .as_ref()
            .map(|u| format!("{}/accounts/{u}", base_url.trim_end_matches('/')))
    }
}

/// The billing view's one flat shape (SPEC §6 and §10): its JSON, as `billing show --json`
/// prints it and the HTTP API answers it (the OpenAPI schema `ViewBody`), and the columns of
/// the `billing_view` table. [`BillingView`] serializes as this and reads back from it.
///
/// The JSON does not carry when a countdown started (`countdown_started_at`; the table does):
/// reading JSON of a view with a countdown back needs that field added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = ViewBody,
    description = "A workspace's billing view (SPEC §6), as `billing show --json` prints it."
)]
pub struct FlatView {
    /// The workspace.
    #[schema(value_type = String)]
    pub workspace_id: WorkspaceId,
    /// `experience` or `commercial`.
    #[schema(value_type = String)]
    pub plan: Plan,
    /// `not-requested`, `requested`, `account-bound`, `agreement-accepted`, `upgraded`.
    #[schema(value_type = String)]
    pub upgrade_step: UpgradeStep,
    /// The site, once the upgrade was requested.
    #[schema(value_type = Option<String>)]
    pub site: Option<SiteId>,
    /// The bound Expense Center user name.
    #[schema(value_type = Option<String>)]
    pub user_name: Option<UserName>,
    /// `enterprise`, `alibaba-cloud`, `aws`, once commercial.
    #[schema(value_type = Option<String>)]
    pub settlement_method: Option<MethodId>,
    /// The cloud account, for a cloud settlement.
    #[schema(value_type = Option<String>)]
    pub cloud_account_id: Option<ExternalId>,
    /// The marketplace instance, for Alibaba Cloud.
    #[schema(value_type = Option<String>)]
    pub cloud_instance_id: Option<ExternalId>,
    /// The accepted agreement version.
    #[schema(value_type = Option<String>)]
    pub agreement_version: Option<AgreementVersion>,
    /// When the workspace was upgraded.
    pub upgraded_at: Option<DateTime<Utc>>,
    /// From when collected data is viewable (= `upgraded_at`).
    pub data_visible_from: Option<DateTime<Utc>>,
    /// How many times the settlement changed.
    pub settlement_changes: u32,
    /// The last sequence the view includes (0: no events); the `ETag`.
    pub last_sequence: u64,
    /// The chain's head hash at that sequence.
    pub head_hash: String,
    /// `good`, `countdown`, `locked`, `dissolved`; none on the Experience Plan.
    pub standing: Option<String>,
    /// The open reasons (arrears, an ended cloud subscription), oldest first.
    #[schema(value_type = Vec<Object>)]
    pub reasons: Vec<Reason>,
    /// The current (or last) countdown's number.
    pub countdown: Option<u32>,
    /// When that countdown started (the table's; not in the JSON).
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub countdown_started_at: Option<DateTime<Utc>>,
    /// Its deadline.
    pub countdown_deadline: Option<DateTime<Utc>>,
    /// When its reminder is due.
    pub remind_at: Option<DateTime<Utc>>,
    /// When its reminder was sent.
    pub reminded_at: Option<DateTime<Utc>>,
    /// When the workspace was locked.
    pub locked_at: Option<DateTime<Utc>>,
    /// When the workspace was dissolved.
    pub dissolved_at: Option<DateTime<Utc>>,
}

impl From<BillingView> for FlatView {
    fn from(v: BillingView) -> Self {
        let countdown = v.countdown().cloned();
        let (locked_at, dissolved_at) = (v.locked_at(), v.dissolved_at());
        let (settlement_method, cloud) = match v.settlement {
            None => (None, None),
            Some(Settlement::Enterprise { .. }) => (Some(MethodId::enterprise()), None),
            Some(Settlement::Cloud { method, account }) => (Some(method), Some(account)),
        };
        let (cloud_account_id, cloud_instance_id) =
            cloud.map_or((None, None), |a| (Some(a.account_id), a.instance_id));
        Self {
            workspace_id: v.workspace_id,
            plan: v.plan,
            upgrade_step: v.upgrade_step,
            site: v.site,
            user_name: v.user_name,
            settlement_method,
            cloud_account_id,
            cloud_instance_id,
            agreement_version: v.agreement_version,
            upgraded_at: v.upgraded_at,
            data_visible_from: v.data_visible_from,
            settlement_changes: v.settlement_changes,
            last_sequence: v.last_sequence,
            head_hash: v.head_hash,
            standing: v.standing.as_ref().map(|s| s.as_str().to_owned()),
            reasons: v.reasons,
            countdown: countdown.as_ref().map(|c| c.number),
            countdown_started_at: countdown.as_ref().map(|c| c.started_at),
            countdown_deadline: countdown.as_ref().map(|c| c.deadline),
            remind_at: countdown.as_ref().map(|c| c.remind_at),
            reminded_at: countdown.and_then(|c| c.reminded_at),
            locked_at,
            dissolved_at,
        }
    }
}

/// An instant for a message: RFC 3339, or `none`.
fn instant_or_none(value: Option<DateTime<Utc>>) -> String {
    value.map_or_else(|| "none".to_owned(), rfc3339)
}

impl FlatView {
    /// The standing its fields make, or which fields do not make one, with their values.
    fn standing(&self) -> Result<Option<Standing>, String> {
        let countdown = match (
            self.countdown,
            self.countdown_started_at,
            self.countdown_deadline,
            self.remind_at,
        ) {
            (None, None, None, None) if self.reminded_at.is_none() => None,
            (Some(number), Some(started_at), Some(deadline), Some(remind_at)) => Some(Countdown {
                number,
                started_at,
                deadline,
                remind_at,
                reminded_at: self.reminded_at,
            }),
            (number, started_at, deadline, remind_at) => {
                return Err(format!(
                    "countdown {}, countdown_started_at {}, countdown_deadline {}, remind_at {} \
                     and reminded_at {} make no countdown",
                    number.map_or_else(|| "none".to_owned(), |n| n.to_string()),
                    instant_or_none(started_at),
                    instant_or_none(deadline),
                    instant_or_none(remind_at),
                    instant_or_none(self.reminded_at),
                ))
            }
        };
        let standing = match (
            self.standing.as_deref(),
            countdown,
            self.locked_at,
            self.dissolved_at,
        ) {
            (None, None, None, None) => None,
            (Some("good"), None, None, None) => Some(Standing::Good),
            (Some("countdown"), Some(countdown), None, None) => {
                Some(Standing::Countdown(countdown))
            }
            (Some("locked"), Some(countdown), Some(locked_at), None) => Some(Standing::Locked {
                countdown,
                locked_at,
            }),
            (Some("dissolved"), Some(countdown), None, Some(dissolved_at)) => {
                Some(Standing::Dissolved {
                    countdown,
                    dissolved_at,
                })
            }
            (standing, countdown, locked_at, dissolved_at) => {
                return Err(format!(
                    "standing {}, countdown {}, locked_at {} and dissolved_at {} make no standing",
                    or_none(standing.as_ref()),
                    countdown.map_or_else(|| "none".to_owned(), |c| c.number.to_string()),
                    instant_or_none(locked_at),
                    instant_or_none(dissolved_at),
                ))
            }
        };
        Ok(standing)
    }
}

/// A value for a message: quoted, or `none`.
fn or_none<T: Display>(value: Option<&T>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("{:?}", v.to_string()))
}

impl TryFrom<FlatView> for BillingView {
    /// Which fields do not make a settlement, with their values.
    type Error = String;

    fn try_from(f: FlatView) -> Result<Self, String> {
        let standing = f.standing()?;
        let settlement = match (f.settlement_method, f.cloud_account_id, f.cloud_instance_id) {
            (None, None, None) => None,
            (Some(method), None, None) if method.is_enterprise() => match &f.user_name {
                Some(user_name) => Some(Settlement::Enterprise {
                    user_name: user_name.clone(),
                }),
                None => return Err("settlement_method \"enterprise\" without a user_name".into()),
            },
            (Some(method), Some(account_id), instance_id) if !method.is_enterprise() => {
                Some(Settlement::Cloud {
                    method,
                    account: CloudAccount {
                        account_id,
                        instance_id,
                    },
                })
            }
            (method, account, instance) => {
                return Err(format!(
                    "settlement_method {}, cloud_account_id {} and cloud_instance_id {} make no \
                     settlement",
                    or_none(method.as_ref()),
                    or_none(account.as_ref()),
                    or_none(instance.as_ref())
                ))
            }
        };
        Ok(Self {
            workspace_id: f.workspace_id,
            plan: f.plan,
            upgrade_step: f.upgrade_step,
            site: f.site,
            user_name: f.user_name,
            settlement,
            agreement_version: f.agreement_version,
            upgraded_at: f.upgraded_at,
            data_visible_from: f.data_visible_from,
            settlement_changes: f.settlement_changes,
            last_sequence: f.last_sequence,
            head_hash: f.head_hash,
            standing,
            reasons: f.reasons,
        })
    }
}

/// One line of a workspace's audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The event's sequence.
    pub sequence: u64,
    /// The event type (`UpgradeRequested`, `PlanUpgraded`, …).
    pub event_type: String,
    /// Who caused it.
    pub actor_id: ActorId,
    /// In which role.
    pub actor_role: Role,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// A one-line human description.
    pub description: String,
}

impl AuditEntry {
    /// The entry for a stored event.
    pub fn from_event(event: &StoredEvent) -> Self {
        Self {
            workspace_id: event.workspace_id.clone(),
            sequence: event.sequence,
            event_type: event.event.event_type().to_owned(),
            actor_id: event.metadata.actor_id.clone(),
            actor_role: event.metadata.actor_role,
            occurred_at: event.metadata.occurred_at,
            description: event.event.describe(),
        }
    }
}

/// One stored event as people and programs read it — its audit-trail entry, its hash in the
/// workspace's chain and its payload: the event JSON of the CLI's `--json` output and of the
/// HTTP API (the OpenAPI schema `EventBody`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(
    as = EventBody,
    description = "One stored event: its audit-trail entry, its hash and its payload."
)]
pub struct EventEntry {
    /// Its sequence in the workspace's stream, from 1.
    pub sequence: u64,
    /// `UpgradeRequested`, `PlanUpgraded`, …
    pub event_type: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Who caused it.
    #[schema(value_type = String)]
    pub actor_id: ActorId,
    /// In which role.
    #[schema(value_type = String)]
    pub actor_role: Role,
    /// What it means, in words.
    pub description: String,
    /// Its hash in the workspace's chain.
    pub hash: String,
    /// The event as stored.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl EventEntry {
    /// The entry of a stored event.
    pub fn of(event: &StoredEvent) -> Self {
        let entry = AuditEntry::from_event(event);
        Self {
            sequence: entry.sequence,
            event_type: entry.event_type,
            occurred_at: entry.occurred_at,
            actor_id: entry.actor_id,
            actor_role: entry.actor_role,
            description: entry.description,
            hash: event.metadata.hash.clone(),
            // Events always serialize (their fields are strings, numbers and their own types).
            payload: serde_json::to_value(&event.event).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The billing view as of `instant`: the events that occurred up to it, folded. `None` when the
/// workspace had no events yet.
pub fn billing_view_at(
    workspace_id: &WorkspaceId,
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

/// The opening reminder e-mail about an upgrade: to whom, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpeningReminder {
    /// The Expense Center user name it goes to (the upgrade's enterprise settlement).
    pub to: UserName,
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub body: String,
}

/// The opening reminder for `event`, when it is a `PlanUpgraded` settling through the Expense
/// Center.
pub fn opening_reminder(
    workspace_id: &WorkspaceId,
    event: &WorkspaceEvent,
) -> Option<OpeningReminder> {
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
        rfc3339(up.at),
        up.agreement_version
    );
    Some(OpeningReminder {
        to: user_name.clone(),
        subject,
        body,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view(settlement: Option<Settlement>) -> BillingView {
        BillingView {
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            plan: Plan::Commercial,
            upgrade_step: UpgradeStep::Upgraded,
            site: Some(SiteId::parse("us1").unwrap()),
            user_name: Some(UserName::parse("acme-finance").unwrap()),
            settlement,
            agreement_version: Some(AgreementVersion::parse("2024-06").unwrap()),
            upgraded_at: Some("2026-11-27T09:00:00.123456789Z".parse().unwrap()),
            data_visible_from: Some("2026-11-27T09:00:00.123456789Z".parse().unwrap()),
            settlement_changes: 1,
            last_sequence: 5,
            head_hash: "ab".into(),
            standing: Some(Standing::Good),
            reasons: Vec::new(),
        }
    }

    #[test]
    fn the_view_serializes_to_the_flat_json_the_cli_prints_and_back() {
        let aws = Settlement::Cloud {
            method: MethodId::parse("aws").unwrap(),
            account: CloudAccount {
                account_id: ExternalId::parse("123456789012").unwrap(),
                instance_id: None,
            },
        };
        let v = view(Some(aws));
        let value = serde_json::to_value(&v).unwrap();
        assert_eq!(
            value,
            json!({
                "workspace_id": "acme",
                "plan": "commercial",
                "upgrade_step": "upgraded",
                "site": "us1",
                "user_name": "acme-finance",
                "settlement_method": "aws",
                "cloud_account_id": "123456789012",
                "cloud_instance_id": null,
                "agreement_version": "2024-06",
                "upgraded_at": "2026-11-27T09:00:00.123456789Z",
                "data_visible_from": "2026-11-27T09:00:00.123456789Z",
                "settlement_changes": 1,
                "last_sequence": 5,
                "head_hash": "ab",
                "standing": "good",
                "reasons": [],
                "countdown": null,
                "countdown_deadline": null,
                "remind_at": null,
                "reminded_at": null,
                "locked_at": null,
                "dissolved_at": null,
            })
        );
        assert_eq!(serde_json::from_value::<BillingView>(value).unwrap(), v);

        let enterprise = view(Some(Settlement::Enterprise {
            user_name: UserName::parse("acme-finance").unwrap(),
        }));
        let value = serde_json::to_value(&enterprise).unwrap();
        assert_eq!(value["settlement_method"], json!("enterprise"));
        assert_eq!(value["cloud_account_id"], json!(null));
        assert_eq!(
            serde_json::from_value::<BillingView>(value).unwrap(),
            enterprise
        );
    }

    fn countdown() -> Countdown {
        Countdown {
            number: 2,
            started_at: "2026-12-01T09:00:00Z".parse().unwrap(),
            deadline: "2026-12-15T09:00:00Z".parse().unwrap(),
            remind_at: "2026-12-12T09:00:00Z".parse().unwrap(),
            reminded_at: Some("2026-12-12T09:00:01.5Z".parse().unwrap()),
        }
    }

    #[test]
    fn the_standing_spreads_over_its_flat_fields() {
        let mut v = view(None);
        v.reasons = vec![Reason::Arrears {
            bill: billing_domain::BillId::parse("B-7").unwrap(),
            amount: billing_domain::Money::new(1234, billing_domain::Currency::Cny).unwrap(),
            since: "2026-12-01T09:00:00Z".parse().unwrap(),
        }];
        v.standing = Some(Standing::Locked {
            countdown: countdown(),
            locked_at: "2026-12-15T09:00:00Z".parse().unwrap(),
        });
        assert_eq!(v.standing_name(), Some("locked"));
        assert_eq!(
            v.countdown_deadline(),
            Some("2026-12-15T09:00:00Z".parse().unwrap())
        );
        assert_eq!(v.locked_at(), Some("2026-12-15T09:00:00Z".parse().unwrap()));
        let value = serde_json::to_value(&v).unwrap();
        assert_eq!(value["standing"], json!("locked"));
        assert_eq!(
            value["reasons"],
            json!([{"reason": "arrears", "bill": "B-7", "amount": {"currency": "CNY", "minor": 1234}, "since": "2026-12-01T09:00:00Z"}])
        );
        assert_eq!(value["countdown"], json!(2));
        assert_eq!(value["countdown_deadline"], json!("2026-12-15T09:00:00Z"));
        assert_eq!(value["remind_at"], json!("2026-12-12T09:00:00Z"));
        assert_eq!(value["reminded_at"], json!("2026-12-12T09:00:01.500Z"));
        assert_eq!(value["locked_at"], json!("2026-12-15T09:00:00Z"));
        assert_eq!(value["dissolved_at"], json!(null));
        assert!(value.get("countdown_started_at").is_none(), "{value}");
        // Reading it back needs when the countdown started, which the JSON does not carry.
        let err = serde_json::from_value::<BillingView>(value.clone()).unwrap_err();
        assert!(
            err.to_string().contains("countdown_started_at none"),
            "{err}"
        );
        let mut with_start = value;
        with_start["countdown_started_at"] = json!("2026-12-01T09:00:00Z");
        assert_eq!(
            serde_json::from_value::<BillingView>(with_start).unwrap(),
            v
        );

        // The Experience Plan has no standing at all.
        let mut experience = view(None);
        experience.standing = None;
        let value = serde_json::to_value(&experience).unwrap();
        assert_eq!(value["standing"], json!(null));
        assert_eq!(
            serde_json::from_value::<BillingView>(value).unwrap(),
            experience
        );
    }

    #[test]
    fn flat_standing_fields_that_make_no_standing_are_refused_with_their_values() {
        let mut value = serde_json::to_value(view(None)).unwrap();
        value["standing"] = json!("locked");
        let err = serde_json::from_value::<BillingView>(value).unwrap_err();
        assert!(err.to_string().contains("standing \"locked\""), "{err}");
        let mut value = serde_json::to_value(view(None)).unwrap();
        value["standing"] = json!("sleeping");
        assert!(serde_json::from_value::<BillingView>(value).is_err());
    }

    #[test]
    fn flat_fields_that_make_no_settlement_are_refused_with_their_values() {
        let mut value = serde_json::to_value(view(None)).unwrap();
        value["settlement_method"] = json!("enterprise");
        value["cloud_account_id"] = json!("42");
        let err = serde_json::from_value::<BillingView>(value).unwrap_err();
        assert!(err.to_string().contains("\"enterprise\""), "{err}");
        assert!(err.to_string().contains("\"42\""), "{err}");

        let mut value = serde_json::to_value(view(None)).unwrap();
        value["settlement_method"] = json!("aws");
        let err = serde_json::from_value::<BillingView>(value).unwrap_err();
        assert!(err.to_string().contains("cloud_account_id none"), "{err}");
    }

    #[test]
    fn the_audit_entry_keeps_its_json_shape() {
        let entry = AuditEntry {
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            sequence: 1,
            event_type: "UpgradeRequested".into(),
            actor_id: ActorId::parse("alice").unwrap(),
            actor_role: Role::Owner,
            occurred_at: "2026-11-27T09:00:00.5Z".parse().unwrap(),
            description: "d".into(),
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({
                "workspace_id": "acme",
                "sequence": 1,
                "event_type": "UpgradeRequested",
                "actor_id": "alice",
                "actor_role": "owner",
                "occurred_at": "2026-11-27T09:00:00.500Z",
                "description": "d",
            })
        );
    }
}
