//! Running a parsed [`Command`]: each command returns a [`Report`] (its human text, its JSON
//! document and its exit status) or a [`CliError`].

mod demo;
mod events;
mod lifecycle;
mod lifecycle_demo;
mod log;
mod publish;
mod serve;
mod webhook;
mod workspace;

use billing_adapters::outbox::DeliveryReport;
use std::sync::Arc;

use billing_adapters::{Embedded, LogMailer};
use billing_domain::memory::ManualClock;
use billing_domain::{Clock, SitePolicy};
use billing_store::{StoreOptions, SystemClock};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::args::{
    AccountCommand, AgreementCommand, ArrearsCommand, CloudCommand, Command, SettlementCommand,
    TokenCommand, WebhookCommand, WorkspaceCommand,
};
use crate::exit::{CliError, Status};
use crate::output;

/// What every command needs besides its own values.
#[derive(Debug)]
pub(crate) struct Context {
    /// The database URL (`--db`).
    pub(crate) db_url: String,
    /// Whether the output is JSON (`--json`).
    pub(crate) json: bool,
    /// The instant commands happen at (`--now`); `None` for the system clock.
    pub(crate) now: Option<DateTime<Utc>>,
}

impl Context {
    /// The clock commands are stamped with: `--now`, or the system clock.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(at) => Arc::new(ManualClock::new(at)),
            None => Arc::new(SystemClock),
        }
    }

    /// The instant this run happens at.
    pub(crate) fn instant(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    /// Whether progress bars are drawn.
    pub(crate) fn progress(&self) -> bool {
        crate::progress::enabled(self.json)
    }
}

/// What a command did, for the person or the program that asked.
#[derive(Debug)]
pub(crate) struct Report {
    /// The exit status (audit findings end with 1 without being an error).
    pub(crate) status: Status,
    /// Human output for stdout.
    pub(crate) human: String,
    /// The JSON document for `--json`; `None` when the command's output is its data (an
    /// export to stdout).
    pub(crate) json: Option<Value>,
}

impl Report {
    /// A successful report.
    pub(crate) fn done(human: String, json: Value) -> Self {
        Self {
            status: Status::Done,
            human,
            json: Some(json),
        }
    }
}

/// Opens the store at `--db` with its projector and embedded outside systems.
async fn open(ctx: &Context) -> Result<Embedded, CliError> {
    Ok(Embedded::open_with(
        &ctx.db_url,
        StoreOptions::default(),
        SitePolicy::builtin(),
        ctx.clock(),
    )
    .await?)
}

/// Brings the views and the outbox up to date after a write, and delivers pending messages.
///
/// The write itself is durable by then; if the views or the outbox cannot catch up now, the next
/// run catches up from the log, so this warns instead of failing the command.
async fn settle(embedded: &Embedded) -> Option<DeliveryReport> {
    if let Err(e) = embedded.projector.flush().await {
        output::stderr(&format!(
            "warning: the change is stored, but the views are not up to date yet ({e}); \
             they catch up on the next run\n"
        ));
        return None;
    }
    match embedded.deliver_pending(&LogMailer).await {
        Ok(report) => Some(report),
        Err(e) => {
            output::stderr(&format!(
                "warning: the change is stored, but pending e-mail was not delivered ({e}); \
                 it stays in the outbox\n"
            ));
            None
        }
    }
}

/// A fresh command id: `cli-<unix nanos>-<pid>`.
pub(crate) fn fresh_command_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{nanos}-{}", std::process::id())
}

/// Runs a parsed command.
///
/// # Errors
/// The command's [`CliError`], with its exit status.
pub(crate) async fn run(command: Command, ctx: &Context) -> Result<Report, CliError> {
    match command {
        Command::Demo {
            expense_center,
            lifecycle: true,
            ..
        } => lifecycle_demo::run(ctx, &expense_center.url).await,
        Command::Demo {
            expense_center,
            keep,
            lifecycle: false,
        } => demo::run(ctx, &expense_center.url, keep).await,
        Command::Upgrade(on) => workspace::execute(ctx, on).await,
        Command::Account(AccountCommand::Bind(on)) => workspace::execute(ctx, on).await,
        Command::Agreement(AgreementCommand::Accept(on)) => workspace::execute(ctx, on).await,
        Command::Settlement(SettlementCommand::Set(on)) => workspace::execute(ctx, on).await,
        Command::Arrears(ArrearsCommand::Record(on)) => workspace::execute(ctx, on).await,
        Command::Arrears(ArrearsCommand::Settle(on)) => workspace::execute(ctx, on).await,
        Command::Workspace(WorkspaceCommand::Dissolve(on)) => workspace::execute(ctx, on).await,
        Command::Account(AccountCommand::Register { username, email }) => {
            workspace::register(ctx, &username, &email).await
        }
        Command::Cloud(CloudCommand::Subscribe(args)) => lifecycle::cloud(ctx, args, true).await,
        Command::Cloud(CloudCommand::Unsubscribe(args)) => lifecycle::cloud(ctx, args, false).await,
        Command::Tick => lifecycle::tick(ctx).await,
        Command::Serve {
            listen,
            auth_key,
            demo,
            deliver_every,
            expense_center,
        } => {
            let options = serve::ServeOptions {
                listen,
                key: auth_key.file.as_deref(),
                demo,
                deliver_every,
                expense_center_url: &expense_center.url,
            };
            serve::serve(ctx, &options).await
        }
        Command::Token(TokenCommand::Issue {
            actor,
            workspace,
            role,
            system,
            ttl,
            auth_key,
        }) => {
            let grant = match (system, workspace) {
                (true, _) => billing_http::Grant::System,
                (false, Some(workspace)) => billing_http::Grant::Workspaces(
                    [(workspace, role.unwrap_or(billing_domain::Role::Owner))]
                        .into_iter()
                        .collect(),
                ),
                (false, None) => {
                    return Err(CliError::usage(
                        "workspace",
                        "give --workspace W --role R, or --system",
                    ))
                }
            };
            serve::issue(ctx, &actor, &grant, ttl, auth_key.file.as_deref())
        }
        Command::Notices { workspace } => lifecycle::notices(ctx, workspace.as_ref()).await,
        Command::Show {
            workspace,
            as_of,
            expense_center,
        } => workspace::show(ctx, &workspace, as_of, &expense_center.url).await,
        Command::History { workspace } => workspace::history(ctx, &workspace).await,
        Command::Export { out } => log::export(ctx, out.as_deref()).await,
        Command::Import { from } => log::import(ctx, &from).await,
        Command::Audit { from, expect_head } => log::audit(ctx, from, expect_head).await,
        Command::RebuildViews => log::rebuild(ctx).await,
        Command::Events {
            from,
            subscription,
            follow,
        } => events::events(ctx, from, subscription, follow).await,
        Command::Subscriptions => events::subscriptions(ctx).await,
        Command::Publish {
            nats,
            stream,
            follow,
        } => publish::publish(ctx, &nats, &stream, follow).await,
        Command::Webhook(WebhookCommand::Add { url, events }) => {
            webhook::add(ctx, &url, &events).await
        }
        Command::Webhook(WebhookCommand::List) => webhook::list(ctx).await,
        Command::Webhook(WebhookCommand::Remove { endpoint }) => {
            webhook::remove(ctx, &endpoint).await
        }
        Command::Webhook(WebhookCommand::Failures { endpoint }) => {
            webhook::failures(ctx, endpoint.as_ref()).await
        }
        Command::Webhook(WebhookCommand::Retry { endpoint }) => {
            webhook::retry(ctx, &endpoint).await
        }
        Command::Deliver {
            follow,
            timeout,
            lease,
        } => {
            if lease < timeout.saturating_mul(2) {
                return Err(CliError::usage(
                    "invalid-value",
                    format!(
                        "invalid --lease {lease}: at least twice --timeout ({timeout}), so a step \
                         waiting for its attempts does not lose the lease"
                    ),
                ));
            }
            webhook::deliver(
                ctx,
                follow,
                std::time::Duration::from_secs(timeout),
                std::time::Duration::from_secs(lease),
            )
            .await
        }
    }
}
