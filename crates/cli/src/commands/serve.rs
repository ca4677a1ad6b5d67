//! `billing serve` (the HTTP API and the console over the `--db` store, through
//! `billing-http`) and `billing token issue` (SPEC §12).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use billing_adapters::{Embedded, LogMailer};
use billing_domain::{
    ActorId, CloudAccount, Email, ExternalId, MethodId, Role, UserName, WorkspaceId,
};
use billing_http::{Billing, Grant, HttpOptions, JwtAuth};
use chrono::Utc;
use serde_json::json;

use super::events::stop_signal;
use super::{open, Context, Report};
use crate::exit::CliError;

/// The demo's Expense Center account, AWS account and Alibaba Cloud account.
pub(crate) const DEMO_USER_NAME: &str = "demo-finance";
/// The AWS account the demo subscribes.
pub(crate) const DEMO_AWS_ACCOUNT: &str = "123456789012";
/// The Alibaba Cloud UID the demo subscribes, with its instance.
pub(crate) const DEMO_ALIBABA_ACCOUNT: (&str, &str) = ("1234567890123456", "i-demo-0001");
/// The workspaces the demo owner's token grants.
const DEMO_WORKSPACES: [&str; 3] = ["demo", "demo-hangzhou", "demo-ningxia"];

/// Reads the key file.
fn read_key(path: &Path) -> Result<Vec<u8>, CliError> {
    let mut key = std::fs::read(path).map_err(|e| {
        CliError::usage(
            "auth-key",
            format!("cannot read the key file {}: {e}", path.display()),
        )
    })?;
    if key.last() == Some(&b'\n') {
        key.pop();
        if key.last() == Some(&b'\r') {
            key.pop();
        }
    }
    Ok(key)
}

/// The token signer of `--auth-key`, or (with `demo`) a random key for this run.
fn auth(file: Option<&Path>, demo: bool) -> Result<JwtAuth, CliError> {
    let key = match (file, demo) {
        (Some(path), _) => read_key(path)?,
        (None, true) => {
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).map_err(|e| {
                CliError::usage("auth-key", format!("no random source for a demo key: {e}"))
            })?;
            key
        }
        (None, false) => {
            return Err(CliError::usage(
                "auth-key",
                "give --auth-key FILE (or BILLING_AUTH_KEY_FILE): the HS256 key of the tokens",
            ))
        }
    };
    JwtAuth::hs256(&key).map_err(|e| CliError::usage("auth-key", e.to_string()))
}

/// `billing token issue`.
pub(super) fn issue(
    ctx: &Context,
    actor: &ActorId,
    grant: &Grant,
    ttl: chrono::Duration,
    key: Option<&Path>,
) -> Result<Report, CliError> {
    let auth = auth(key, false)?;
    let now = ctx.instant();
    let token = auth
        .issue(actor, grant, now, ttl)
        .map_err(|e| CliError::usage("token", e.to_string()))?;
    let expires = now + ttl;
    Ok(Report::done(
        format!("{token}\n"),
        json!({ "token": token, "actor": actor.as_str(), "expires_at": expires }),
    ))
}

/// Seeds the demo's outside systems: the Expense Center account and two subscribed cloud
/// accounts (each only if missing).
async fn seed(embedded: &Embedded) -> Result<(), CliError> {
    let invalid = |e: billing_domain::DomainError| CliError::usage("demo", e.to_string());
    let user = UserName::parse(DEMO_USER_NAME).map_err(invalid)?;
    let email = Email::parse("finance@demo.example").map_err(invalid)?;
    // Taken means an earlier run registered it: the same account.
    let _ = embedded.expense_center.register(&user, &email).await?;
    let aws = CloudAccount {
        account_id: ExternalId::parse(DEMO_AWS_ACCOUNT).map_err(invalid)?,
        instance_id: None,
    };
    embedded
        .marketplace
        .set(&MethodId::parse("aws").map_err(invalid)?, &aws, true)
        .await?;
    let alibaba = CloudAccount {
        account_id: ExternalId::parse(DEMO_ALIBABA_ACCOUNT.0).map_err(invalid)?,
        instance_id: Some(ExternalId::parse(DEMO_ALIBABA_ACCOUNT.1).map_err(invalid)?),
    };
    embedded
        .marketplace
        .set(
            &MethodId::parse("alibaba-cloud").map_err(invalid)?,
            &alibaba,
            true,
        )
        .await?;
    Ok(())
}

/// The demo's sign-in links: the owner of the demo workspaces, and a member of the first.
fn demo_links(auth: &JwtAuth, base: &str) -> Result<String, CliError> {
    let invalid = |e: billing_domain::DomainError| CliError::usage("demo", e.to_string());
    let ttl = chrono::Duration::hours(12);
    let mut owner = std::collections::BTreeMap::new();
    for w in DEMO_WORKSPACES {
        owner.insert(WorkspaceId::parse(w).map_err(invalid)?, Role::Owner);
    }
    let sign = |actor: &str, grant: Grant| -> Result<String, CliError> {
        let actor = ActorId::parse(actor).map_err(invalid)?;
        auth.issue(&actor, &grant, Utc::now(), ttl)
            .map_err(|e| CliError::usage("demo", e.to_string()))
    };
    let owner_token = sign("demo-owner", Grant::Workspaces(owner))?;
    let member = [(
        WorkspaceId::parse(DEMO_WORKSPACES[0]).map_err(invalid)?,
        Role::Member,
    )];
    let member_token = sign(
        "demo-member",
        Grant::Workspaces(member.into_iter().collect()),
    )?;
    Ok(format!(
        "Demo: Expense Center account {DEMO_USER_NAME}; AWS account {DEMO_AWS_ACCOUNT} and \
         Alibaba Cloud UID {} (instance {}) subscribed.\n\
         Sign in as the owner of {}:\n  {base}/sign-in?token={owner_token}\n\
         Sign in as a member of {} (who cannot upgrade):\n  {base}/sign-in?token={member_token}\n",
        DEMO_ALIBABA_ACCOUNT.0,
        DEMO_ALIBABA_ACCOUNT.1,
        DEMO_WORKSPACES.join(", "),
        DEMO_WORKSPACES[0],
    ))
}

/// What `billing serve` was asked.
pub(super) struct ServeOptions<'a> {
    /// The address.
    pub(super) listen: SocketAddr,
    /// The key file.
    pub(super) key: Option<&'a Path>,
    /// Seed and print the demo's links.
    pub(super) demo: bool,
    /// Seconds between notice deliveries (0: none while serving).
    pub(super) deliver_every: u64,
    /// The Expense Center link base.
    pub(super) expense_center_url: &'a str,
}

/// `billing serve`.
pub(super) async fn serve(ctx: &Context, options: &ServeOptions<'_>) -> Result<Report, CliError> {
    let ServeOptions {
        listen,
        key,
        demo,
        deliver_every,
        expense_center_url,
    } = *options;
    let auth = auth(key, demo)?;
    let embedded = open(ctx).await?;
    if demo {
        seed(&embedded).await?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::usage("listen", format!("cannot listen on {listen}: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::usage("listen", format!("no local address: {e}")))?;
    let base = format!("http://{address}");
    let options = HttpOptions {
        expense_center_url: expense_center_url.to_owned(),
        ..HttpOptions::default()
    };
    let billing = Billing::with_options(embedded.clone(), Arc::new(auth.clone()), options);
    let mut banner = format!(
        "billing serve: listening on {base} (store {}); the API under {base}/v1, its document \
         at {base}/openapi.json, the console at {base}/\n",
        embedded.db().url()
    );
    if demo {
        banner.push_str(&demo_links(&auth, &base)?);
    }
    banner.push_str("Stop with Ctrl-C (SIGINT) or SIGTERM.\n");
    {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }
    let delivery = (deliver_every > 0).then(|| {
        tokio::spawn(deliver_forever(
            embedded.clone(),
            Duration::from_secs(deliver_every),
        ))
    });
    let stop = stop_signal()?;
    let served = billing_http::serve(listener, billing.router(), stop).await;
    if let Some(delivery) = delivery {
        delivery.abort();
    }
    served.map_err(|e| CliError::usage("listen", e.to_string()))?;
    // Notices of the last requests, before exiting.
    let _ = embedded.deliver_pending(&LogMailer).await;
    Ok(Report::done(
        "billing serve: stopped\n".to_owned(),
        json!({ "stopped": true, "listen": address.to_string() }),
    ))
}

/// Hands pending notices to the log mailer every `interval`.
async fn deliver_forever(embedded: Embedded, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = embedded.deliver_pending(&LogMailer).await {
            tracing::warn!(error = %e, "pending notices not delivered; they stay in the outbox");
        }
    }
}
