//! What comes after the upgrade (SPEC §10) on the command line: the marketplace stand-in reporting
//! ended and resumed subscriptions (`cloud …`), the deadlines (`tick`) and the outbox's notices
//! (`notices`). The workspace commands of §10 (`arrears …`, `workspace dissolve`) run through
//! [`super::workspace::execute`] like every other workspace command.

use billing_adapters::outbox::notices as outbox_notices;
use billing_adapters::{
    workspaces_settling_through, Embedded, OutboxMessage, BILLING_SYSTEM_ACTOR,
};
use billing_domain::{
    Action, Actor, ActorId, CloudAccount, ExternalId, MethodId, MethodKind, MethodSpec, Role,
    SitePolicy, WorkspaceCommand, WorkspaceId,
};
use billing_store::{RetryPolicy, StoreError};
use serde_json::{json, Value};

use super::workspace::{event_json, events_table};
use super::{fresh_command_id, open, settle, Context, Report};
use crate::args::CloudArgs;
use crate::exit::{CliError, Status};
use crate::output::{instant, instant_or_dash, Table, Zone};

/// The billing system as an actor.
pub(super) fn system_actor() -> Result<Actor, CliError> {
    Ok(Actor::new(
        ActorId::parse(BILLING_SYSTEM_ACTOR)?,
        Role::System,
    ))
}

/// What reporting a marketplace change to one workspace came to.
struct Reported {
    workspace: WorkspaceId,
    outcome: Result<Vec<billing_store::StoredEvent>, String>,
}

/// Reports `action` to every workspace that settles through `account`, as the billing system.
async fn report_to_workspaces(
    embedded: &Embedded,
    method: &MethodId,
    account: &CloudAccount,
    action: impl Fn() -> Action,
) -> Result<Vec<Reported>, CliError> {
    let workspaces = workspaces_settling_through(
        embedded.db(),
        embedded.clocks.process.as_ref(),
        method,
        account,
    )
    .await?;
    let actor = system_actor()?;
    let base = fresh_command_id();
    let mut reported = Vec::with_capacity(workspaces.len());
    for (i, workspace) in workspaces.into_iter().enumerate() {
        let command = WorkspaceCommand::new(
            ExternalId::parse(&format!("{base}-{i}"))?,
            actor.clone(),
            action(),
        );
        let outcome = match embedded
            .store
            .execute_with_retry(&workspace, &command, RetryPolicy::default())
            .await
        {
            Ok(outcome) => Ok(outcome.events),
            Err(StoreError::Refused(refusal)) => Err(refusal.to_string()),
            Err(other) => return Err(other.into()),
        };
        reported.push(Reported { workspace, outcome });
    }
    Ok(reported)
}

/// The provider and the cloud account `args` name, in the shape the site policy gives the
/// provider's accounts (the domain's [`MethodSpec::cloud_account`]); refused before anything is
/// opened.
fn marketplace_account(args: CloudArgs) -> Result<(MethodId, CloudAccount), CliError> {
    let policy = SitePolicy::builtin();
    let cloud = |spec: &&MethodSpec| spec.kind == MethodKind::Cloud;
    let Some(spec) = policy.method(&args.provider).filter(cloud) else {
        let providers: Vec<&str> = policy
            .methods()
            .filter(cloud)
            .map(|m| m.id.as_str())
            .collect();
        return Err(CliError::usage(
            "invalid-value",
            format!(
                "invalid provider {:?}: must be one of {}",
                args.provider.as_str(),
                providers.join(", ")
            ),
        ));
    };
    match spec.cloud_account(Some(&args.account), args.instance.as_ref()) {
        Ok(Some(account)) => Ok((args.provider, account)),
        Ok(None) => Err(CliError::usage(
            "invalid-value",
            format!("provider {} takes no cloud account", args.provider),
        )),
        Err(reason) => Err(CliError::usage(
            "invalid-value",
            match &args.instance {
                Some(instance) => format!(
                    "provider {}: {reason} (got --instance {instance})",
                    args.provider
                ),
                None => format!("provider {}: {reason} (--instance)", args.provider),
            },
        )),
    }
}

/// The zone a workspace's instants are shown in (its site's).
async fn zone_of(embedded: &Embedded, workspace: &WorkspaceId) -> Result<Zone, CliError> {
    Ok(Zone::of(embedded.store.state(workspace).await?.site()))
}

/// `billing cloud subscribe|unsubscribe`: changes the embedded marketplace, then reports the
/// change to every workspace that settles through the account.
pub(super) async fn cloud(
    ctx: &Context,
    args: CloudArgs,
    active: bool,
) -> Result<Report, CliError> {
    let (method, account) = marketplace_account(args)?;
    let (method, account) = (&method, &account);
    let embedded = open(ctx).await?;
    embedded.marketplace.set(method, account, active).await?;
    let what = if active { "Subscribed" } else { "Unsubscribed" };
    let mut human = format!("{what}: {method} account {account} (embedded marketplace)\n");
    let reported = report_to_workspaces(&embedded, method, account, || {
        if active {
            Action::ReportSubscriptionResumed {
                method: method.clone(),
                account: account.clone(),
            }
        } else {
            Action::ReportSubscriptionEnded {
                method: method.clone(),
                account: account.clone(),
            }
        }
    })
    .await?;
    if !reported.is_empty() {
        settle(&embedded).await;
    }
    let mut json_reports = Vec::new();
    for r in &reported {
        match &r.outcome {
            Ok(events) => {
                human.push_str(&format!(
                    "Reported to workspace {} (as the billing system):\n",
                    r.workspace
                ));
                human.push_str(
                    &events_table(events, zone_of(&embedded, &r.workspace).await?).render(2),
                );
                json_reports.push(json!({
                    "workspace": r.workspace.as_str(),
                    "events": events.iter().map(event_json).collect::<Vec<_>>(),
                }));
            }
            Err(refusal) => {
                human.push_str(&format!(
                    "Not reported to workspace {}: {refusal}\n",
                    r.workspace
                ));
                json_reports.push(json!({
                    "workspace": r.workspace.as_str(),
                    "refused": refusal,
                }));
            }
        }
    }
    Ok(Report::done(
        human,
        json!({
            "provider": method.as_str(),
            "account": account.account_id.as_str(),
            "instance": account.instance_id.as_ref().map(|i| i.as_str()),
            "active": active,
            "reported": json_reports,
        }),
    ))
}

/// `billing tick`: fires every deadline due at `--now` (or the system clock).
pub(super) async fn tick(ctx: &Context) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let report = embedded.scheduler().tick().await?;
    let at = report.at;
    settle(&embedded).await;
    let mut human = format!(
        "Tick at {}: {} reminder(s) sent, {} workspace(s) locked, {} already done, {} failed\n",
        instant(at),
        report.reminders_sent.len(),
        report.locked.len(),
        report.already_done,
        report.failed.len()
    );
    let mut table = Table::new(["WORKSPACE", "FIRED"]);
    for w in &report.reminders_sent {
        table.row([w.to_string(), "countdown reminder".to_owned()]);
    }
    for w in &report.locked {
        table.row([w.to_string(), "locked".to_owned()]);
    }
    if !report.reminders_sent.is_empty() || !report.locked.is_empty() {
        human.push_str(&table.render(2));
    }
    for (w, message) in &report.failed {
        human.push_str(&format!("  failed: workspace {w}: {message}\n"));
    }
    let json = json!({
        "at": at,
        "reminders_sent": report.reminders_sent,
        "locked": report.locked,
        "already_done": report.already_done,
        "failed": report.failed.iter().map(|(w, m)| json!({"workspace": w, "error": m})).collect::<Vec<_>>(),
    });
    if report.failed.is_empty() {
        Ok(Report::done(human, json))
    } else {
        Ok(Report {
            status: Status::Unavailable,
            human,
            json: Some(json),
        })
    }
}

/// A notice as JSON.
fn notice_json(message: &OutboxMessage) -> Value {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("message_id".into(), Value::String(message.message_id()));
    }
    value
}

/// `billing notices`.
pub(super) async fn notices(
    ctx: &Context,
    workspace: Option<&WorkspaceId>,
) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    embedded.projector.flush().await?;
    let messages = outbox_notices(embedded.db(), workspace).await?;
    let mut table =
        Table::new(["WORKSPACE", "KIND", "SEQ", "DUE", "SENT", "TO", "SUBJECT"]).align_right(2);
    for m in &messages {
        table.row([
            m.workspace_id.to_string(),
            m.kind.clone(),
            m.sequence.to_string(),
            instant(m.due_at),
            instant_or_dash(m.sent_at),
            m.user_name.to_string(),
            m.subject.clone(),
        ]);
    }
    let human = if messages.is_empty() {
        "The outbox holds no notices.\n".to_owned()
    } else {
        format!("{} notice(s)\n{}", messages.len(), table.render(0))
    };
    Ok(Report::done(
        human,
        json!({ "notices": messages.iter().map(notice_json).collect::<Vec<_>>() }),
    ))
}
