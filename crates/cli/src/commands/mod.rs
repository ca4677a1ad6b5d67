//! Running a validated [`Request`]: each command returns a [`Report`] (its human text, its JSON
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

use billing_adapters::{deliver_pending, Embedded, LogMailer};
use billing_domain::memory::ManualClock;
use billing_domain::{Clock, SitePolicy};
use billing_store::{StoreOptions, SystemClock};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::exit::{CliError, Status};
use crate::output;
use crate::request::Request;

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
async fn settle(embedded: &Embedded, now: DateTime<Utc>) -> Option<DeliveryReport> {
    if let Err(e) = embedded.projector.flush().await {
        output::stderr(&format!(
            "warning: the change is stored, but the views are not up to date yet ({e}); \
             they catch up on the next run\n"
        ));
        return None;
    }
    match deliver_pending(embedded.db(), &LogMailer, now).await {
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

/// Runs a validated request.
///
/// # Errors
/// The command's [`CliError`], with its exit status.
pub(crate) async fn run(request: Request, ctx: &Context) -> Result<Report, CliError> {
    match request {
        Request::Demo {
            expense_center_url,
            lifecycle: true,
            ..
        } => lifecycle_demo::run(ctx, &expense_center_url).await,
        Request::Demo {
            expense_center_url,
            keep,
            lifecycle: false,
        } => demo::run(ctx, &expense_center_url, keep).await,
        Request::Tick => lifecycle::tick(ctx).await,
        Request::Serve {
            listen,
            auth_key,
            demo,
            deliver_every,
            expense_center_url,
        } => {
            let options = serve::ServeOptions {
                listen,
                key: auth_key.as_deref(),
                demo,
                deliver_every,
                expense_center_url: &expense_center_url,
            };
            serve::serve(ctx, &options).await
        }
        Request::TokenIssue {
            actor,
            grant,
            ttl,
            auth_key,
        } => serve::issue(ctx, &actor, &grant, ttl, auth_key.as_deref()),
        Request::Notices { workspace } => lifecycle::notices(ctx, workspace.as_ref()).await,
        Request::Register { user_name, email } => {
            workspace::register(ctx, &user_name, &email).await
        }
        Request::Cloud {
            method,
            account,
            active,
        } => lifecycle::cloud(ctx, &method, &account, active).await,
        Request::Workspace {
            name,
            workspace,
            command,
        } => workspace::execute(ctx, name, &workspace, &command).await,
        Request::Show {
            workspace,
            as_of,
            expense_center_url,
        } => workspace::show(ctx, &workspace, as_of, &expense_center_url).await,
        Request::History { workspace } => workspace::history(ctx, &workspace).await,
        Request::Export { out } => log::export(ctx, out.as_deref()).await,
        Request::Import { from } => log::import(ctx, &from).await,
        Request::Audit { from, expect_heads } => log::audit(ctx, from, expect_heads).await,
        Request::RebuildViews => log::rebuild(ctx).await,
        Request::Events { from, follow } => events::events(ctx, from, follow).await,
        Request::Subscriptions => events::subscriptions(ctx).await,
        Request::Publish {
            nats,
            stream,
            follow,
        } => publish::publish(ctx, &nats, &stream, follow).await,
        Request::WebhookAdd { url, events } => webhook::add(ctx, &url, &events).await,
        Request::WebhookList => webhook::list(ctx).await,
        Request::WebhookRemove(id) => webhook::remove(ctx, &id).await,
        Request::WebhookFailures(id) => webhook::failures(ctx, id.as_ref()).await,
        Request::WebhookRetry(id) => webhook::retry(ctx, &id).await,
        Request::Deliver {
            follow,
            timeout,
            lease,
        } => webhook::deliver(ctx, follow, timeout, lease).await,
    }
}
