//! `billing demo`: the documented flow end to end, on a fresh workspace in a fresh embedded
//! SQLite store in a temporary directory, with the system clock.

use billing_adapters::outbox::outbox;
use billing_adapters::view_store::{audit_trail, billing_view};
use billing_adapters::{Embedded, LogMailer};
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, CloudAccount, DomainError, Email, ExternalId,
    MethodId, Registration, Role, SettlementRequest, SiteId, UserName, WorkspaceCommand,
    WorkspaceId,
};
use billing_store::audit::{audit_store, AuditOptions};
use billing_store::{StoreError, StoreOptions, StoredEvent};
use serde_json::{json, Value};

use super::log::audit_report;
use super::workspace::{
    event_json, events_table, reminder_for, reminder_json, reminder_line, run_command, trail_table,
    view_json, view_table,
};
use super::{Context, Report};
use crate::exit::{CliError, Status};
use crate::output::Zone;

/// How far a step's lines are indented under its title.
pub(super) const STEP_INDENT: usize = 3;

/// The demo's steps, for people and for JSON.
#[derive(Default)]
pub(super) struct Steps {
    pub(super) human: String,
    pub(super) json: Vec<Value>,
}

impl Steps {
    /// Records a step: its title, what happened (indented lines) and its JSON.
    pub(super) fn step(&mut self, title: &str, lines: &str, detail: Value) {
        let number = self.json.len() + 1;
        self.human.push_str(&format!("{number}. {title}\n"));
        let indent = " ".repeat(STEP_INDENT);
        for line in lines.lines() {
            self.human.push_str(&format!("{indent}{line}\n"));
        }
        self.json
            .push(json!({ "step": number, "title": title, "result": detail }));
    }
}

/// A value the demo spells out itself; a failure here is a bug in the demo, reported as one.
pub(super) fn value<T>(parsed: Result<T, DomainError>) -> Result<T, CliError> {
    parsed.map_err(|e| CliError::new(Status::Refused, "demo-failed", format!("demo value: {e}")))
}

pub(super) fn command(
    id: &str,
    actor: &Actor,
    action: Action,
) -> Result<WorkspaceCommand, CliError> {
    Ok(WorkspaceCommand::new(
        value(ExternalId::parse(id))?,
        actor.clone(),
        action,
    ))
}

pub(super) fn events_json(events: &[StoredEvent]) -> Value {
    json!({ "events": events.iter().map(event_json).collect::<Vec<_>>() })
}

/// What a demo ends with: the workspace's billing view and audit trail, and an audit of the
/// demo store (its findings listed, one per line, and its report).
pub(super) struct Outcome {
    pub(super) view: billing_adapters::BillingView,
    pub(super) trail: Vec<billing_adapters::AuditEntry>,
    pub(super) listed: String,
    pub(super) audit: Report,
}

/// Reads what a demo ends with (the views must be flushed first).
pub(super) async fn conclude(
    embedded: &Embedded,
    workspace: &WorkspaceId,
) -> Result<Outcome, CliError> {
    let view = billing_view(embedded.db(), workspace)
        .await?
        .ok_or_else(|| {
            CliError::new(
                Status::Refused,
                "demo-failed",
                format!("workspace {workspace} has no billing view after the demo"),
            )
        })?;
    let trail = audit_trail(embedded.db(), workspace).await?;
    let mut findings = Vec::new();
    let summary = audit_store(
        embedded.db(),
        Some(embedded.store.services().policy.as_ref()),
        &AuditOptions::default(),
        |f| findings.push(f),
        |_| {},
    )
    .await
    .map_err(|e: StoreError| CliError::from(e))?;
    let listed: String = findings.iter().map(|f| format!("{f}\n")).collect();
    let audit = audit_report("the demo store", &summary, findings);
    Ok(Outcome {
        view,
        trail,
        listed,
        audit,
    })
}

/// Runs the demo.
pub(super) async fn run(
    ctx: &Context,
    expense_center_url: &str,
    keep: bool,
) -> Result<Report, CliError> {
    if keep {
        let embedded = Embedded::open(&ctx.db_url, StoreOptions::default()).await?;
        let held = embedded.db().count_events().await?;
        if held > 0 {
            return Err(CliError::usage(
                "store-not-empty",
                format!(
                    "demo --keep walks the demo on the --db store, which must hold no events; \
                     {} holds {held}: give another --db, or leave out --keep for a temporary store",
                    ctx.db_url
                ),
            ));
        }
        return walk(&embedded, &ctx.db_url, ctx, expense_center_url).await;
    }
    let dir = tempfile::Builder::new()
        .prefix("billing-demo-")
        .tempdir()
        .map_err(|e| {
            CliError::new(
                Status::Unavailable,
                "store-unavailable",
                format!("cannot create a temporary directory for the demo store: {e}"),
            )
        })?;
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let embedded = Embedded::open(&url, StoreOptions::default()).await?;
    let result = walk(&embedded, &url, ctx, expense_center_url).await;
    // Close the store's background work before the directory goes away.
    drop(embedded);
    drop(dir);
    result
}

async fn walk(
    embedded: &Embedded,
    url: &str,
    ctx: &Context,
    expense_center_url: &str,
) -> Result<Report, CliError> {
    let workspace = value(WorkspaceId::parse("acme"))?;
    let owner = Actor::new(value(ActorId::parse("alice"))?, Role::Owner);
    let user_name = value(UserName::parse("acme-finance"))?;
    let email = value(Email::parse("finance@acme.example"))?;
    let unknown = value(UserName::parse("nobody-here"))?;
    let site = value(SiteId::parse("us1"))?;
    let zone = Zone::of(Some(&site));
    let version = value(AgreementVersion::parse("2024-06"))?;
    let aws = value(MethodId::parse("aws"))?;
    let cloud_account = CloudAccount {
        account_id: value(ExternalId::parse("123456789012"))?,
        instance_id: None,
    };
    let mut steps = Steps::default();
    let mut header = format!(
        "billing demo: an embedded store at {url}, workspace {workspace}, owner {}\n\n",
        owner.id
    );
    if ctx.json {
        header.clear();
    }

    // 1. An Expense Center account to bind.
    let account = match embedded.expense_center.register(&user_name, &email).await? {
        Registration::Registered(account) => account,
        Registration::Taken => return Err(DomainError::UserNameTaken { user_name }.into()),
    };
    steps.step(
        &format!("Register Expense Center account {user_name} ({email})"),
        &format!("registered: account id {}", account.account_id),
        json!({ "user_name": user_name.as_str(), "account_id": account.account_id.as_str() }),
    );

    // 2. Request the upgrade.
    let request = command(
        "demo-1",
        &owner,
        Action::RequestUpgrade { site: site.clone() },
    )?;
    let (outcome, _) = run_command(embedded, &workspace, &request).await?;
    steps.step(
        &format!("Request the upgrade on site {site} (Billing -> Upgrade)"),
        &events_table(&outcome.events, zone)
            .nested(STEP_INDENT)
            .render(0),
        events_json(&outcome.events),
    );

    // 3. An unknown user name is refused by the Expense Center's verification.
    let bind_unknown = command(
        "demo-2",
        &owner,
        Action::BindAccount {
            user_name: unknown.clone(),
        },
    )?;
    match run_command(embedded, &workspace, &bind_unknown).await {
        Err(refusal) if refusal.code == "unknown-user-name" => steps.step(
            &format!("Bind unknown user name {unknown}"),
            &format!("refused, nothing written: {}", refusal.message),
            json!({ "refused": { "code": refusal.code, "message": refusal.message } }),
        ),
        Err(other) => return Err(other),
        Ok(_) => {
            return Err(CliError::new(
                Status::Refused,
                "demo-failed",
                format!("binding the unknown user name {unknown} was not refused"),
            ))
        }
    }

    // 4. The verified one binds.
    let bind = command(
        "demo-3",
        &owner,
        Action::BindAccount {
            user_name: user_name.clone(),
        },
    )?;
    let (outcome, _) = run_command(embedded, &workspace, &bind).await?;
    steps.step(
        &format!("Bind verified user name {user_name}"),
        &events_table(&outcome.events, zone)
            .nested(STEP_INDENT)
            .render(0),
        events_json(&outcome.events),
    );

    // 5. Accepting the agreement upgrades, and the opening reminder goes out once.
    let accept = command(
        "demo-4",
        &owner,
        Action::AcceptAgreement {
            version: version.clone(),
        },
    )?;
    let (outcome, delivered) = run_command(embedded, &workspace, &accept).await?;
    let again = embedded.deliver_pending(&LogMailer).await?;
    let reminder = reminder_for(embedded, &workspace, &outcome.events).await?;
    let reminders = outbox(embedded.db())
        .await?
        .into_iter()
        .filter(|m| m.workspace_id == workspace)
        .count();
    let sent_now = delivered.map_or(0, |d| d.sent);
    let mut lines = events_table(&outcome.events, zone)
        .nested(STEP_INDENT)
        .render(0);
    match &reminder {
        Some(message) => lines.push_str(&reminder_line(message, zone)),
        None => lines.push_str("Opening reminder: not recorded"),
    }
    lines.push_str(&format!(
        "\nOutbox: {reminders} reminder(s) for this workspace; delivered {sent_now} now, {} on a second delivery run",
        again.sent
    ));
    let mut detail = events_json(&outcome.events);
    if let Some(map) = detail.as_object_mut() {
        map.insert(
            "opening_reminder".into(),
            json!(reminder.as_ref().map(reminder_json)),
        );
        map.insert("reminders_recorded".into(), json!(reminders));
        map.insert("delivered".into(), json!(sent_now));
        map.insert("delivered_on_second_run".into(), json!(again.sent));
    }
    steps.step(
        &format!("Accept the opening agreement {version}: the workspace is upgraded, for good"),
        &lines,
        detail,
    );

    // 6. A subscribed AWS account in the embedded marketplace.
    embedded.marketplace.set(&aws, &cloud_account, true).await?;
    steps.step(
        &format!("Subscribe AWS account {cloud_account} in the embedded AWS Marketplace"),
        "subscribed (active)",
        json!({ "provider": aws.as_str(), "account": cloud_account.account_id.as_str(), "active": true }),
    );

    // 7. Settle through it: us1 allows aws, and the upgrade's default is not a change.
    let change = command(
        "demo-5",
        &owner,
        Action::ChangeSettlement(SettlementRequest::of(
            aws.clone(),
            Some(cloud_account.clone()),
        )),
    )?;
    let (outcome, _) = run_command(embedded, &workspace, &change).await?;
    steps.step(
        &format!("Change settlement to {aws} account {cloud_account} (allowed on {site}; the upgrade's default does not count as a change)"),
        &events_table(&outcome.events, zone).nested(STEP_INDENT).render(0),
        events_json(&outcome.events),
    );

    // The result: the billing view, the audit trail, and a clean audit.
    embedded.projector.flush().await?;
    let Outcome {
        view,
        trail,
        listed,
        audit,
    } = conclude(embedded, &workspace).await?;

    let human = format!(
        "{header}{}\nBilling view\n{}\nAudit trail\n{}\n{listed}{}",
        steps.human,
        view_table(&view, expense_center_url, None).render(2),
        trail_table(&trail, zone).render(2),
        audit.human
    );
    let json = json!({
        "store": url,
        "workspace": workspace.as_str(),
        "steps": steps.json,
        "view": view_json(&view, expense_center_url, None),
        "history": trail,
        "audit": audit.json,
    });
    // The audit of a store the demo just wrote is clean; if not, the status says so (1).
    Ok(Report {
        status: audit.status,
        human,
        json: Some(json),
    })
}
