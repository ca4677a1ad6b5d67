//! The command line as clap parses it: every value in its type (domain values through the
//! domain's own parsers, see [`values`]), so a command that parsed is a valid request and bad
//! input never reaches the store. The workspace commands are declared in [`workspace`].

mod values;
mod workspace;

use std::net::SocketAddr;
use std::path::PathBuf;

use billing_adapters::webhooks::EndpointId;
use billing_domain::{ActorId, Email, ExternalId, MethodId, Role, UserName, WorkspaceId};
use billing_store::{Position, SubscriptionName};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use self::values::{external_id, named, workspace_role};
pub(crate) use self::values::{BadValue, ExpectHead};
pub(crate) use self::workspace::{
    Accept, Ask, Bind, Dissolve, On, RecordArrears, SetSettlement, SettleArrears, Upgrade,
};

/// The Expense Center base URL used for links unless one is given.
pub(crate) const DEFAULT_EXPENSE_CENTER_URL: &str = "https://expense-center.example";

/// `billing`: operate and audit workspace-billing stores.
#[derive(Debug, Parser)]
#[command(
    name = "billing",
    version,
    about = "Operate and audit workspace-billing stores: upgrades, settlement, views, export/import and audits.",
    after_help = "Exit status: 0 done; 1 refused by a domain rule, or audit findings; \
                  2 bad usage, or input that cannot be opened or read; 3 store unavailable."
)]
pub(crate) struct Cli {
    /// Database URL: `sqlite://PATH`, `sqlite::memory:` or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        global = true,
        env = "BILLING_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://billing.db",
        value_name = "URL"
    )]
    pub(crate) db: String,

    /// Print one JSON document on stdout instead of tables (errors too).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// The instant the command happens at (RFC 3339, e.g. `2026-12-15T09:00:00Z`), for drills,
    /// decisions taken offline and tests; default: the system clock. A command at an instant
    /// before its workspace's newest event is refused (`clock-behind-stream`). The store still
    /// records when it wrote each event (`recorded_at`) by its own clock.
    #[arg(long, global = true, env = "BILLING_NOW", value_name = "RFC3339", value_parser = values::now)]
    pub(crate) now: Option<DateTime<Utc>>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The Expense Center base URL for links.
#[derive(Debug, Args)]
pub(crate) struct ExpenseCenterUrl {
    /// Base URL of the Expense Center, for the account link.
    #[arg(
        long = "expense-center-url",
        env = "BILLING_EXPENSE_CENTER_URL",
        default_value = DEFAULT_EXPENSE_CENTER_URL,
        value_name = "URL"
    )]
    pub(crate) url: String,
}

/// The subcommands of SPEC §7.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the documented upgrade flow end to end on a fresh workspace in a fresh embedded store.
    Demo {
        /// The Expense Center link base.
        #[command(flatten)]
        expense_center: ExpenseCenterUrl,
        /// Walk the demo on the `--db` store (which must hold no events) and keep it, so its
        /// events can be followed, delivered and published afterwards; default: a temporary
        /// store, removed at the end.
        #[arg(long)]
        keep: bool,
        /// Walk what comes after the upgrade instead: arrears, the 14-day countdown, its
        /// reminder, the lock, and a recharge paid with a stored-value card that unlocks,
        /// moving time with `--now` on a fresh store.
        #[arg(long)]
        lifecycle: bool,
    },
    /// Expense Center accounts: register one (embedded stand-in), or bind one to a workspace.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Embedded stand-in for the cloud marketplaces: start or end a subscription.
    #[command(subcommand)]
    Cloud(CloudCommand),
    /// Request the upgrade to the Commercial Plan (step 1).
    Upgrade(On<Upgrade>),
    /// The opening agreement.
    #[command(subcommand)]
    Agreement(AgreementCommand),
    /// How a commercial workspace settles.
    #[command(subcommand)]
    Settlement(SettlementCommand),
    /// Arrears on a workspace's Expense Center account: record a bill (the billing system) or
    /// settle it by a recharge.
    #[command(subcommand)]
    Arrears(ArrearsCommand),
    /// The workspace itself: dissolve it during a countdown.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Fire every deadline due now (or at `--now`): countdown reminders and locks, each exactly
    /// once however many ticks run, repeat or crash. Acts as the billing system itself.
    Tick,
    /// Serve the HTTP API under `/v1`, its OpenAPI document at `/openapi.json` and the console
    /// at `/`, on the `--db` store, until SIGINT or SIGTERM (requests in flight finish).
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR", value_parser = values::listen)]
        listen: SocketAddr,
        /// The HS256 key that signs and checks the bearer tokens: the file's bytes (a trailing
        /// newline removed), at least 32. Required unless `--demo`, which then makes a key for
        /// this run only.
        #[command(flatten)]
        auth_key: AuthKey,
        /// Seed an Expense Center account and marketplace subscriptions on the store, and print
        /// sign-in links for a demo owner (and a member), so a newcomer can click through.
        #[arg(long)]
        demo: bool,
        /// Seconds between deliveries of pending notices (the opening reminder, …) to the
        /// mailer; 0: none while serving (a `billing tick` or another process delivers them).
        /// Pending ones are delivered once more when the server stops.
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        deliver_every: u64,
        /// The Expense Center link base.
        #[command(flatten)]
        expense_center: ExpenseCenterUrl,
    },
    /// Bearer tokens for `billing serve`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// List the notices in the outbox: workspace, kind, when it was due, when it was sent.
    Notices {
        /// Only this workspace's.
        #[arg(long, value_name = "W")]
        workspace: Option<WorkspaceId>,
    },
    /// Show a workspace's billing view, now or as of an instant.
    Show {
        /// The workspace.
        #[arg(long, value_name = "W")]
        workspace: WorkspaceId,
        /// Show the view as of this instant (RFC 3339, e.g. `2026-11-27T09:00:00Z`).
        #[arg(long, value_name = "RFC3339", value_parser = values::as_of)]
        as_of: Option<DateTime<Utc>>,
        /// The Expense Center link base.
        #[command(flatten)]
        expense_center: ExpenseCenterUrl,
    },
    /// Show a workspace's audit trail: every event with actor, role and time.
    History {
        /// The workspace.
        #[arg(long, value_name = "W")]
        workspace: WorkspaceId,
    },
    /// Export every event as JSON Lines (ordered by workspace, then sequence).
    ///
    /// Without `--out` the JSON Lines are the output on stdout (also with `--json`).
    Export {
        /// Write to this file (replaced only once the export is complete); default: stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import a JSON Lines export into an empty store: verified first, then all or nothing.
    Import {
        /// The file to import.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Verify a log — the store's, or a JSON Lines file — and report every finding.
    Audit {
        /// Audit this JSON Lines file instead of the store.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// A head hash kept outside the log: `WORKSPACE=HASH` (repeatable).
        #[arg(long = "expect-head", value_name = "W=HASH", value_parser = values::expect_head)]
        expect_head: Vec<ExpectHead>,
    },
    /// Rebuild every view from the log.
    RebuildViews,
    /// Print committed events in commit order as JSON Lines: each an export line plus its
    /// `"position"`.
    ///
    /// Without `--follow` it stops at the end of what is committed; with it, it waits for new
    /// events until SIGINT or SIGTERM, then exits 0 (with `--subscription`, its checkpoint is the
    /// last line written).
    Events {
        /// Start after this position (`TRANSACTION.POSITION`, as a line's `"position"` says);
        /// default: the beginning of the log.
        #[arg(long, value_name = "POSITION", conflicts_with = "subscription", value_parser = values::position)]
        from: Option<Position>,
        /// Resume from this subscription's checkpoint (a new name starts at the beginning of
        /// the log) and save it after each line is written.
        #[arg(long, value_name = "NAME", value_parser = values::subscription)]
        subscription: Option<SubscriptionName>,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
    },
    /// List the subscriptions: each one's checkpoint and how far behind the log it is.
    Subscriptions,
    /// Publish committed events, in commit order, to a NATS JetStream stream.
    ///
    /// Each event goes to subject `billing.STREAM.WORKSPACE` (the workspace id with every byte
    /// other than A-Z, a-z, 0-9, `_` and `-` written `~XX` in hex), as its `billing events`
    /// line, with `Nats-Msg-Id` = `WORKSPACE:SEQUENCE`, so JetStream drops a message sent twice
    /// within the stream's duplicate window (2 minutes unless the stream says otherwise). The
    /// stream is created if it does not exist. The checkpoint (subscription `publish.STREAM`,
    /// lower case) is saved only after JetStream acknowledged every message before it, so after
    /// a crash only the unacknowledged batch is sent again.
    Publish {
        /// The NATS server, e.g. `nats://127.0.0.1:4222`.
        #[arg(long, value_name = "URL", value_parser = values::nats)]
        nats: String,
        /// The JetStream stream: 1 to 32 of A-Z, a-z, 0-9, `_` and `-`.
        #[arg(long, value_name = "NAME", default_value = "BILLING", value_parser = values::stream)]
        stream: String,
        /// Keep publishing new events until SIGINT or SIGTERM.
        #[arg(long)]
        follow: bool,
    },
    /// Webhook endpoints: add, list, remove, their dead letters, and re-driving them.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Deliver committed events to the webhook endpoints.
    ///
    /// Each event is POSTed as its `billing events` line, signed the Standard Webhooks way
    /// (`webhook-id` = `WORKSPACE:SEQUENCE`, the same on every attempt; `webhook-timestamp`;
    /// `webhook-signature`). A workspace's next event waits for the previous one's 2xx. A failed
    /// attempt is retried after 5 s, 10 s, 20 s … up to 1 h apart, each plus a random jitter,
    /// for 72 hours; then the event is a dead letter (`billing webhook failures`, re-driven by
    /// `billing webhook retry`). A 410 Gone disables the endpoint; redirects are not followed.
    /// One `billing deliver` runs at a time per database; another takes over once the first's
    /// lease (`--lease`, a minute) has run out after it died.
    Deliver {
        /// Keep delivering new events (and retries as they fall due) until SIGINT or SIGTERM;
        /// without it, stop once nothing is due.
        #[arg(long)]
        follow: bool,
        /// Seconds one attempt waits for the receiver's answer (1 to 3600).
        #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = values::timeout)]
        timeout: u64,
        /// Seconds after this run dies (stops renewing) that another may take over; at least
        /// twice `--timeout`.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        lease: u64,
    },
}

/// The key file of the tokens.
#[derive(Debug, Args)]
pub(crate) struct AuthKey {
    /// The HS256 key file (its bytes, a trailing newline removed; at least 32).
    #[arg(long = "auth-key", env = "BILLING_AUTH_KEY_FILE", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

/// `billing token …`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a bearer token (JWT, HS256) for `billing serve`: an actor with a role in one
    /// workspace, or the billing system.
    Issue {
        /// The actor id (`sub`).
        #[arg(long, value_name = "A")]
        actor: ActorId,
        /// The workspace the role is in (with `--role`).
        #[arg(
            long,
            value_name = "W",
            required_unless_present = "system",
            conflicts_with = "system"
        )]
        workspace: Option<WorkspaceId>,
        /// The role in that workspace (default: owner).
        #[arg(long, value_parser = workspace_role(), requires = "workspace")]
        role: Option<Role>,
        /// A token of the billing system itself (`scope: billing-system`).
        #[arg(long)]
        system: bool,
        /// How long it is valid: a number and s, m, h or d (`90m`, `1h`, `7d`).
        #[arg(long, default_value = "1h", value_name = "TTL", value_parser = values::ttl)]
        ttl: chrono::Duration,
        /// The key file.
        #[command(flatten)]
        auth_key: AuthKey,
    },
}

/// `billing webhook …`
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Add an endpoint; prints its id and its signing secret (shown this once).
    ///
    /// It is sent the events committed from now on (as far as `billing deliver` has queued).
    Add {
        /// Where events are POSTed: an http or https URL.
        #[arg(long, value_name = "URL", value_parser = values::webhook_url)]
        url: String,
        /// Send only events of this type (repeatable); default: every type.
        #[arg(long = "event", value_name = "TYPE", value_parser = values::event_type)]
        events: Vec<String>,
    },
    /// List the endpoints with their delivered, pending and dead counts.
    List,
    /// Remove an endpoint and everything still queued for it.
    Remove {
        /// The endpoint id (`ep_…`).
        #[arg(value_name = "ENDPOINT", value_parser = values::endpoint)]
        endpoint: EndpointId,
    },
    /// List the dead letters: events whose retries gave up.
    Failures {
        /// Only this endpoint's.
        #[arg(long, value_name = "ENDPOINT", value_parser = values::endpoint)]
        endpoint: Option<EndpointId>,
    },
    /// Re-drive an endpoint: its dead letters are attempted again (in order), a disabled
    /// endpoint is enabled again, and everything pending for it is due now.
    Retry {
        /// The endpoint id (`ep_…`).
        #[arg(value_name = "ENDPOINT", value_parser = values::endpoint)]
        endpoint: EndpointId,
    },
}

/// `billing account …`
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Register an Expense Center account (embedded stand-in for the real Expense Center).
    Register {
        /// The new user name (unique).
        #[arg(long, value_name = "U")]
        username: UserName,
        /// The account's e-mail address.
        #[arg(long, value_name = "E")]
        email: Email,
    },
    /// Bind an Expense Center account to a workspace by user name, verified (step 2).
    Bind(On<Bind>),
}

/// `billing arrears …`
#[derive(Debug, Subcommand)]
pub(crate) enum ArrearsCommand {
    /// Record a bill in arrears (reported by the billing system: `--role system`). Starts the
    /// countdown on a workspace in good standing.
    Record(On<RecordArrears>),
    /// Settle a bill by a recharge of the Expense Center account (the owner, or the billing
    /// system reporting the payment); unlocks once no reason is left.
    Settle(On<SettleArrears>),
}

/// `billing workspace …`
#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Dissolve the workspace (the owner, during a countdown only). Irreversible: a dissolved
    /// workspace refuses every command.
    Dissolve(On<Dissolve>),
}

/// A cloud account at a marketplace.
#[derive(Debug, Args)]
pub(crate) struct CloudArgs {
    /// The cloud provider (a cloud settlement method: `alibaba-cloud`, `aws`).
    #[arg(long, value_name = "PROVIDER", value_parser = named("provider", MethodId::parse))]
    pub(crate) provider: MethodId,
    /// The account id at the provider (Alibaba Cloud UID, AWS account id).
    #[arg(long, value_name = "ID", value_parser = external_id("account"))]
    pub(crate) account: ExternalId,
    /// The marketplace instance id (Alibaba Cloud).
    #[arg(long, value_name = "ID", value_parser = external_id("instance"))]
    pub(crate) instance: Option<ExternalId>,
}

/// `billing cloud …`
#[derive(Debug, Subcommand)]
pub(crate) enum CloudCommand {
    /// Start a marketplace subscription for a cloud account; reports it to every workspace
    /// whose ended subscription of that account is open (which clears that reason).
    Subscribe(CloudArgs),
    /// End a marketplace subscription for a cloud account; reports it to every workspace that
    /// settles through that account (the provider's policy then falls back or counts down).
    Unsubscribe(CloudArgs),
}

/// `billing agreement …`
#[derive(Debug, Subcommand)]
pub(crate) enum AgreementCommand {
    /// Accept the opening agreement, which completes the upgrade (step 3).
    Accept(On<Accept>),
}

/// `billing settlement …`
#[derive(Debug, Subcommand)]
pub(crate) enum SettlementCommand {
    /// Change the settlement method (step 4).
    Set(On<SetSettlement>),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
