//! The embedded outside systems (`account register`, `cloud …`), the workspace commands
//! (`upgrade`, `account bind`, `agreement accept`, `settlement set`) and the views (`show`,
//! `history`).

use billing_adapters::outbox::{outbox, DeliveryReport};
use billing_adapters::view_store::{audit_trail, billing_view};
use billing_adapters::views::EventEntry;
use billing_adapters::{billing_view_at, AuditEntry, BillingView, Embedded, OutboxMessage};
use billing_domain::{
    Actor, DomainError, Email, ExternalId, MethodId, Registration, Settlement, SitePolicy,
    UserName, Workspace, WorkspaceCommand, WorkspaceEvent, WorkspaceId,
};
use billing_store::{CommandOutcome, RetryPolicy, StoredEvent};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{fresh_command_id, open, settle, Context, Report};
use crate::args::{Ask, On};
use crate::exit::CliError;
use crate::output::{or_dash, Table, Zone};

/// `billing account register`.
pub(super) async fn register(
    ctx: &Context,
    user_name: &UserName,
    email: &Email,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    match embedded.expense_center.register(user_name, email).await? {
        Registration::Taken => Err(DomainError::UserNameTaken {
            user_name: user_name.clone(),
        }
        .into()),
        Registration::Registered(account) => {
            let mut table = Table::pairs();
            table.row(["user name", account.user_name.as_str()]);
            table.row(["account id", account.account_id.as_str()]);
            table.row(["e-mail", email.as_str()]);
            Ok(Report::done(
                format!(
                    "Registered Expense Center account {user_name}\n{}",
                    table.render(2)
                ),
                json!({
                    "registered": {
                        "user_name": account.user_name.as_str(),
                        "account_id": account.account_id.as_str(),
                        "email": email.as_str(),
                    }
                }),
            ))
        }
    }
}

/// One stored event as JSON: its [`EventEntry`], the one shape the API answers too.
pub(super) fn event_json(event: &StoredEvent) -> Value {
    serde_json::to_value(EventEntry::of(event)).unwrap_or(Value::Null)
}

/// Stored events as a table, their instants in `zone`.
pub(super) fn events_table(events: &[StoredEvent], zone: Zone) -> Table {
    let mut table = Table::new(["SEQ", "EVENT", "OCCURRED AT", "DESCRIPTION"]).align_right(0);
    for event in events {
        let entry = AuditEntry::from_event(event);
        table.row([
            entry.sequence.to_string(),
            entry.event_type,
            zone.instant(entry.occurred_at),
            entry.description,
        ]);
    }
    table
}

/// The opening reminder about one of `events` (an upgrade), if the outbox has it.
pub(super) async fn reminder_for(
    embedded: &Embedded,
    workspace: &WorkspaceId,
    events: &[StoredEvent],
) -> Result<Option<OutboxMessage>, CliError> {
    let upgrade = events
        .iter()
        .find(|e| matches!(e.event, WorkspaceEvent::PlanUpgraded(_)));
    let Some(upgrade) = upgrade else {
        return Ok(None);
    };
    Ok(outbox(embedded.db())
        .await?
        .into_iter()
        .find(|m| m.workspace_id == *workspace && m.sequence == upgrade.sequence))
}

/// A line about the opening reminder, its instant in `zone`.
pub(super) fn reminder_line(message: &OutboxMessage, zone: Zone) -> String {
    match message.sent_at {
        Some(at) => format!(
            "Opening reminder sent to {} at {} (Message-ID {}): {}",
            message.user_name,
            zone.instant(at),
            message.message_id(),
            message.subject
        ),
        None => format!(
            "Opening reminder recorded for {} (Message-ID {}), not delivered yet: {}",
            message.user_name,
            message.message_id(),
            message.subject
        ),
    }
}

/// The opening reminder as JSON.
pub(super) fn reminder_json(message: &OutboxMessage) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("message_id".into(), Value::String(message.message_id()));
    }
    value
}

/// Runs a workspace command and settles the views and the outbox.
pub(super) async fn run_command(
    embedded: &Embedded,
    workspace: &WorkspaceId,
    command: &WorkspaceCommand,
) -> Result<(CommandOutcome, Option<DeliveryReport>), CliError> {
    let outcome = embedded
        .store
        .execute_with_retry(workspace, command, RetryPolicy::default())
        .await?;
    let delivery = settle(embedded).await;
    Ok((outcome, delivery))
}

/// Any workspace command (`upgrade`, `account bind`, `agreement accept`, `settlement set`,
/// `arrears …`, `workspace dissolve`): its action is made before the store is opened (a value
/// that does not fit exits 2 and writes nothing), then decided by the domain.
pub(super) async fn execute<A: Ask>(ctx: &Context, on: On<A>) -> Result<Report, CliError> {
    let name = A::NAME;
    let workspace = &on.workspace;
    let command_id = match on.who.command_id {
        Some(id) => id,
        None => ExternalId::parse(&fresh_command_id())?,
    };
    let command = &WorkspaceCommand::new(
        command_id,
        Actor::new(on.who.actor, on.who.role),
        on.ask.action()?,
    );
    let embedded = open(ctx).await?;
    let (outcome, delivery) = run_command(&embedded, workspace, command).await?;
    let zone = Zone::of(embedded.store.state(workspace).await?.site());
    let head = match outcome.events.last() {
        Some(event) => Some(event.metadata.hash.clone()),
        None => embedded.store.head(workspace).await?,
    };
    let reminder = reminder_for(&embedded, workspace, &outcome.events).await?;

    let mut human = format!(
        "{name}: workspace {workspace}, command {}, actor {} ({})\n",
        command.command_id, command.actor.id, command.actor.role
    );
    if outcome.replayed {
        human.push_str(
            "This command id was executed before: its original outcome follows; nothing new was written.\n",
        );
    }
    human.push_str(&events_table(&outcome.events, zone).render(2));
    human.push_str(&format!("Head hash: {}\n", or_dash(head.as_deref())));
    if let Some(message) = &reminder {
        human.push_str(&reminder_line(message, zone));
        human.push('\n');
    }
    let json = json!({
        "command": name,
        "workspace": workspace.as_str(),
        "command_id": command.command_id.as_str(),
        "actor": command.actor.id.as_str(),
        "role": command.actor.role.as_str(),
        "replayed": outcome.replayed,
        "events": outcome.events.iter().map(event_json).collect::<Vec<_>>(),
        "head": head,
        "delivered": delivery,
        "opening_reminder": reminder.as_ref().map(reminder_json),
    });
    Ok(Report::done(human, json))
}

/// How a view's settlement reads in its table.
fn settlement_text(settlement: &Settlement) -> String {
    match settlement {
        Settlement::Enterprise { user_name } => {
            format!(
                "{} (Expense Center account {user_name})",
                MethodId::ENTERPRISE
            )
        }
        Settlement::Cloud { method, account } => match &account.instance_id {
            Some(instance) => format!(
                "{method} (cloud account {}, instance {instance})",
                account.account_id
            ),
            None => format!("{method} (cloud account {})", account.account_id),
        },
    }
}

/// The billing view as a two-column table.
pub(super) fn view_table(
    view: &BillingView,
    expense_center_url: &str,
    as_of: Option<DateTime<Utc>>,
) -> Table {
    let policy = SitePolicy::builtin();
    let zone = Zone::of(view.site.as_ref());
    let site = view.site.as_ref().map(|id| match policy.site(id) {
        Ok(site) => format!("{id} — {}", site.name),
        Err(_) => id.to_string(),
    });
    let mut table = Table::pairs();
    table.row(["Workspace", view.workspace_id.as_str()]);
    if let Some(at) = as_of {
        table.row(["As of".to_owned(), zone.instant(at)]);
    }
    table.row(["Plan", view.plan_name()]);
    table.row(["Upgrade step", view.upgrade_step.as_str()]);
    table.row(["Site".to_owned(), or_dash(site.as_deref())]);
    table.row([
        "Expense Center account".to_owned(),
        or_dash(view.user_name.as_ref().map(UserName::as_str)),
    ]);
    table.row([
        "Expense Center link".to_owned(),
        or_dash(view.expense_center_link(expense_center_url).as_deref()),
    ]);
    table.row([
        "Settlement".to_owned(),
        or_dash(view.settlement.as_ref().map(settlement_text).as_deref()),
    ]);
    table.row([
        "Agreement version".to_owned(),
        or_dash(view.agreement_version.as_ref().map(|v| v.as_str())),
    ]);
    table.row([
        "Upgraded at".to_owned(),
        zone.instant_or_dash(view.upgraded_at),
    ]);
    table.row([
        "Data visible from".to_owned(),
        zone.instant_or_dash(view.data_visible_from),
    ]);
    table.row([
        "Settlement changes".to_owned(),
        view.settlement_changes.to_string(),
    ]);
    standing_rows(&mut table, view, zone);
    table.row(["Last sequence".to_owned(), view.last_sequence.to_string()]);
    table.row([
        "Head hash".to_owned(),
        or_dash(Some(view.head_hash.as_str()).filter(|h| !h.is_empty())),
    ]);
    table
}

/// The standing rows of the view's table (SPEC §10): standing, open reasons, the countdown's
/// deadline and reminder, and when it was locked or dissolved.
fn standing_rows(table: &mut Table, view: &BillingView, zone: Zone) {
    let Some(standing) = &view.standing else {
        table.row(["Standing", "-"]);
        return;
    };
    table.row(["Standing", standing.as_str()]);
    let reasons = if view.reasons.is_empty() {
        "none".to_owned()
    } else {
        view.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    table.row(["Open reasons".to_owned(), reasons]);
    let countdown = standing.countdown();
    table.row([
        "Countdown deadline".to_owned(),
        zone.instant_or_dash(countdown.map(|c| c.deadline)),
    ]);
    if let Some(c) = countdown {
        let reminder = match c.reminded_at {
            Some(at) => format!("sent {}", zone.instant(at)),
            None => format!("due {}", zone.instant(c.remind_at)),
        };
        table.row([format!("Countdown {} reminder", c.number), reminder]);
    }
    table.row([
        "Locked at".to_owned(),
        zone.instant_or_dash(standing.locked_at()),
    ]);
    if let Some(at) = standing.dissolved_at() {
        table.row(["Dissolved at".to_owned(), zone.instant(at)]);
    }
}

/// The billing view as JSON: its fields (the view's flat serde form), the plan's name, the
/// Expense Center link and the instant asked for.
pub(super) fn view_json(
    view: &BillingView,
    expense_center_url: &str,
    as_of: Option<DateTime<Utc>>,
) -> Value {
    let mut value = serde_json::to_value(view).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("plan_name".into(), json!(view.plan_name()));
        map.insert(
            "expense_center_link".into(),
            json!(view.expense_center_link(expense_center_url)),
        );
        map.insert("as_of".into(), json!(as_of));
    }
    value
}

/// `billing show`.
pub(super) async fn show(
    ctx: &Context,
    workspace: &WorkspaceId,
    as_of: Option<DateTime<Utc>>,
    expense_center_url: &str,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let view = match as_of {
        None => {
            embedded.projector.flush().await?;
            billing_view(embedded.db(), workspace).await?
        }
        Some(at) => {
            let (_, events) = embedded.store.load(workspace).await?;
            billing_view_at(workspace, &events, at)
        }
    };
    let known = view.is_some();
    // A workspace without events (yet, or as of that instant) is on the Experience Plan.
    let view =
        view.unwrap_or_else(|| BillingView::from_state(workspace, &Workspace::default(), 0, ""));
    let mut human = view_table(&view, expense_center_url, as_of).render(0);
    if !known {
        human.push_str(
            "(no events for this workspace at that time: every workspace starts on the Experience Plan)\n",
        );
    }
    let mut json = view_json(&view, expense_center_url, as_of);
    if let Some(map) = json.as_object_mut() {
        map.insert("has_events".into(), json!(known));
    }
    Ok(Report::done(human, json))
}

/// The audit trail as a table, its instants in `zone`.
pub(super) fn trail_table(trail: &[AuditEntry], zone: Zone) -> Table {
    let mut table = Table::new([
        "SEQ",
        "OCCURRED AT",
        "ACTOR",
        "ROLE",
        "EVENT",
        "DESCRIPTION",
    ])
    .align_right(0);
    for entry in trail {
        table.row([
            entry.sequence.to_string(),
            zone.instant(entry.occurred_at),
            entry.actor_id.to_string(),
            entry.actor_role.to_string(),
            entry.event_type.clone(),
            entry.description.clone(),
        ]);
    }
    table
}

/// `billing history`.
pub(super) async fn history(ctx: &Context, workspace: &WorkspaceId) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    embedded.projector.flush().await?;
    let trail = audit_trail(embedded.db(), workspace).await?;
    let zone = Zone::of(
        billing_view(embedded.db(), workspace)
            .await?
            .and_then(|v| v.site)
            .as_ref(),
    );
    let human = if trail.is_empty() {
        format!("Workspace {workspace} has no events.\n")
    } else {
        format!(
            "Audit trail of workspace {workspace} ({} events)\n{}",
            trail.len(),
            trail_table(&trail, zone).render(0)
        )
    };
    Ok(Report::done(
        human,
        json!({ "workspace": workspace.as_str(), "events": trail }),
    ))
}

#[cfg(test)]
mod tests {
    use billing_domain::CloudAccount;

    use super::*;

    fn entry(sequence: u64, actor: &str, description: &str) -> AuditEntry {
        AuditEntry {
            workspace_id: WorkspaceId::parse("acme").unwrap(),
            sequence,
            event_type: "UpgradeRequested".into(),
            actor_id: billing_domain::ActorId::parse(actor).unwrap(),
            actor_role: billing_domain::Role::Owner,
            occurred_at: "2026-11-27T09:00:00.123456789Z".parse().unwrap(),
            description: description.into(),
        }
    }

    #[test]
    fn the_trail_shows_instants_to_the_minute_and_descriptions_as_written() {
        // Actor ids are ASCII (ActorId); descriptions are free text (wide characters aligned by
        // display width are the table's own test).
        let trail = [
            entry(1, "alice", "アリスがアップグレードを申請しました"),
            entry(2, "bob", "bob bound an account"),
        ];
        assert_eq!(
            trail_table(&trail, Zone::default()).render_within(0, None),
            "SEQ  OCCURRED AT           ACTOR  ROLE   EVENT             DESCRIPTION\n  \
               1  2026-11-27 09:00 UTC  alice  owner  UpgradeRequested  アリスがアップグレードを申請しました\n  \
               2  2026-11-27 09:00 UTC  bob    owner  UpgradeRequested  bob bound an account\n"
        );
    }

    #[test]
    fn the_view_shows_its_instants_to_the_minute_in_the_sites_zone_with_labels() {
        let acme = WorkspaceId::parse("acme").unwrap();
        let mut view = BillingView::from_state(&acme, &Workspace::default(), 0, "");
        view.upgraded_at = Some("2026-11-27T09:00:00.5Z".parse().unwrap());
        let as_of = "2026-11-27T10:00:00.25Z".parse().unwrap();
        let text = view_table(&view, "https://ec.example", Some(as_of)).render_within(0, None);
        assert!(
            text.contains("As of                   2026-11-27 10:00 UTC\n"),
            "{text}"
        );
        assert!(
            text.contains("Upgraded at             2026-11-27 09:00 UTC\n"),
            "{text}"
        );
        assert!(text.contains("Data visible from       -\n"), "{text}");
        view.site = Some(billing_domain::SiteId::parse("cn1").unwrap());
        let text = view_table(&view, "https://ec.example", Some(as_of)).render_within(0, None);
        assert!(
            text.contains("Upgraded at             2026-11-27 17:00 (Asia/Shanghai)\n"),
            "{text}"
        );
        // Every row has a label for people, none a field name.
        for line in text.lines() {
            let label = line.split("  ").next().unwrap_or_default();
            assert!(!label.contains('_'), "{label:?} in {text}");
        }
    }

    #[test]
    fn the_view_names_the_account_its_settlement_goes_through() {
        let acme = WorkspaceId::parse("acme").unwrap();
        let mut view = BillingView::from_state(&acme, &Workspace::default(), 0, "");
        let finance = UserName::parse("acme-finance").unwrap();
        let cloud = |instance: Option<&str>| Settlement::Cloud {
            method: MethodId::parse("alibaba-cloud").unwrap(),
            account: CloudAccount {
                account_id: billing_domain::ExternalId::parse("1688").unwrap(),
                instance_id: instance.map(|i| billing_domain::ExternalId::parse(i).unwrap()),
            },
        };
        for (settlement, shown) in [
            (
                Settlement::Enterprise {
                    user_name: finance.clone(),
                },
                "enterprise (Expense Center account acme-finance)",
            ),
            (cloud(None), "alibaba-cloud (cloud account 1688)"),
            (
                cloud(Some("i-1")),
                "alibaba-cloud (cloud account 1688, instance i-1)",
            ),
        ] {
            view.settlement = Some(settlement);
            let text = view_table(&view, "https://ec.example", None).render_within(0, None);
            assert!(
                text.contains(&format!("Settlement              {shown}\n")),
                "{text}"
            );
        }
    }
}
