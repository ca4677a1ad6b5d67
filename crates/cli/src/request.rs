//! Validating the command line into a [`Request`]: every value is parsed into its domain type
//! here, before the store is opened, so bad input is refused with exit status 2 and nothing is
//! written.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use billing_adapters::webhooks::{self, EndpointId};

use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, BillId, CloudAccount, Currency, DomainError, Email,
    ExternalId, MethodId, MethodKind, Money, Role, SiteId, SitePolicy, UserName, WorkspaceCommand,
    WorkspaceId,
};
use billing_store::{BadPosition, Position, SubscriptionName};
use chrono::{DateTime, Utc};

use crate::args::{
    AccountCommand, AgreementCommand, ArrearsCommand, CloudArgs, CloudCommand, Command,
    SettlementCommand, TokenCommand, WebhookCommand, Who, WorkspaceCommand as WorkspaceArgs,
};
use crate::exit::CliError;

/// A validated request: what to do, with every value in its domain type.
#[derive(Debug)]
pub(crate) enum Request {
    /// `billing demo`.
    Demo {
        /// The Expense Center link base.
        expense_center_url: String,
        /// Whether to walk it on the `--db` store and keep it.
        keep: bool,
        /// Whether to walk the lifecycle after the upgrade instead.
        lifecycle: bool,
    },
    /// `billing account register`.
    Register {
        /// The new user name.
        user_name: UserName,
        /// Its e-mail address.
        email: Email,
    },
    /// `billing cloud subscribe|unsubscribe`.
    Cloud {
        /// The cloud method (provider).
        method: MethodId,
        /// The cloud account.
        account: CloudAccount,
        /// Subscribe (`true`) or unsubscribe.
        active: bool,
    },
    /// A workspace command: `upgrade`, `account bind`, `agreement accept`, `settlement set`.
    Workspace {
        /// The subcommand's name, for output.
        name: &'static str,
        /// The workspace.
        workspace: WorkspaceId,
        /// The command.
        command: WorkspaceCommand,
    },
    /// `billing tick`.
    Tick,
    /// `billing serve`.
    Serve {
        /// The address.
        listen: std::net::SocketAddr,
        /// The key file, if given.
        auth_key: Option<PathBuf>,
        /// Seed and print demo sign-in links.
        demo: bool,
        /// Seconds between notice deliveries (0: none while serving).
        deliver_every: u64,
        /// The Expense Center link base.
        expense_center_url: String,
    },
    /// `billing token issue`.
    TokenIssue {
        /// The actor.
        actor: ActorId,
        /// What the token grants.
        grant: billing_http::Grant,
        /// How long it is valid.
        ttl: chrono::Duration,
        /// The key file.
        auth_key: Option<PathBuf>,
    },
    /// `billing notices`.
    Notices {
        /// Only this workspace's.
        workspace: Option<WorkspaceId>,
    },
    /// `billing show`.
    Show {
        /// The workspace.
        workspace: WorkspaceId,
        /// The instant to show the view at; `None` for now.
        as_of: Option<DateTime<Utc>>,
        /// The Expense Center link base.
        expense_center_url: String,
    },
    /// `billing history`.
    History {
        /// The workspace.
        workspace: WorkspaceId,
    },
    /// `billing export`.
    Export {
        /// The output file; `None` for stdout.
        out: Option<PathBuf>,
    },
    /// `billing import`.
    Import {
        /// The file to import (checked readable).
        from: PathBuf,
    },
    /// `billing audit`.
    Audit {
        /// The file to audit (opened), or `None` for the store.
        from: Option<(PathBuf, File)>,
        /// Heads kept outside the log.
        expect_heads: Vec<(String, String)>,
    },
    /// `billing rebuild-views`.
    RebuildViews,
    /// `billing events`.
    Events {
        /// Where to start: after a position, or at a subscription's checkpoint.
        from: EventsFrom,
        /// Whether to wait for new events.
        follow: bool,
    },
    /// `billing subscriptions`.
    Subscriptions,
    /// `billing publish`.
    Publish {
        /// The NATS server URL.
        nats: String,
        /// The stream name (checked).
        stream: String,
        /// Whether to keep publishing new events.
        follow: bool,
    },
    /// `billing webhook add`.
    WebhookAdd {
        /// The URL (checked).
        url: String,
        /// The event types (checked); empty for all.
        events: Vec<String>,
    },
    /// `billing webhook list`.
    WebhookList,
    /// `billing webhook remove`.
    WebhookRemove(EndpointId),
    /// `billing webhook failures`.
    WebhookFailures(Option<EndpointId>),
    /// `billing webhook retry`.
    WebhookRetry(EndpointId),
    /// `billing deliver`.
    Deliver {
        /// Whether to keep delivering.
        follow: bool,
        /// How long one attempt waits.
        timeout: Duration,
        /// How long the lease lasts unrenewed.
        lease: Duration,
    },
}

/// Where `billing events` starts.
#[derive(Debug)]
pub(crate) enum EventsFrom {
    /// After this position.
    Position(Position),
    /// At this subscription's checkpoint, saving it as it goes.
    Subscription(SubscriptionName),
}

/// A fresh command id: `cli-<unix nanos>-<pid>`.
pub(crate) fn fresh_command_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{nanos}-{}", std::process::id())
}

/// Re-labels a value error with the option it came from (an [`ExternalId`] says `account`
/// whatever it was given for).
fn relabel(field: &'static str, error: DomainError) -> DomainError {
    match error {
        DomainError::InvalidValue { value, reason, .. } => DomainError::InvalidValue {
            field,
            value,
            reason,
        },
        other => other,
    }
}

fn external_id(field: &'static str, value: &str) -> Result<ExternalId, DomainError> {
    ExternalId::parse(value).map_err(|e| relabel(field, e))
}

fn actor(who: &Who) -> Result<(Actor, ExternalId), DomainError> {
    let id = ActorId::parse(&who.actor)?;
    let role: Role = who.role.parse()?;
    let command_id = match &who.command_id {
        Some(id) => external_id("command-id", id)?,
        None => external_id("command-id", &fresh_command_id())?,
    };
    Ok((Actor::new(id, role), command_id))
}

fn workspace_command(
    name: &'static str,
    workspace: &str,
    who: &Who,
    action: Action,
) -> Result<Request, DomainError> {
    let workspace = WorkspaceId::parse(workspace)?;
    let (actor, command_id) = actor(who)?;
    Ok(Request::Workspace {
        name,
        workspace,
        command: WorkspaceCommand::new(command_id, actor, action),
    })
}

fn cloud(args: &CloudArgs, active: bool) -> Result<Request, CliError> {
    let method = MethodId::parse(&args.provider).map_err(|e| relabel("provider", e))?;
    let policy = SitePolicy::builtin();
    let providers: Vec<&str> = policy
        .methods()
        .filter(|m| m.kind == MethodKind::Cloud)
        .map(|m| m.id.as_str())
        .collect();
    let Some(spec) = policy
        .method(&method)
        .filter(|m| m.kind == MethodKind::Cloud)
    else {
        return Err(CliError::usage(
            "invalid-value",
            format!(
                "invalid provider {:?}: must be one of {}",
                args.provider,
                providers.join(", ")
            ),
        ));
    };
    let account = CloudAccount {
        account_id: external_id("account", &args.account)?,
        instance_id: args
            .instance
            .as_deref()
            .map(|i| external_id("instance", i))
            .transpose()?,
    };
    match (spec.requires_instance, &account.instance_id) {
        (true, None) => Err(CliError::usage(
            "invalid-value",
            format!("provider {method} needs the marketplace instance id (--instance)"),
        )),
        (false, Some(instance)) => Err(CliError::usage(
            "invalid-value",
            format!(
                "provider {method} takes no marketplace instance id (got --instance {instance})"
            ),
        )),
        _ => Ok(Request::Cloud {
            method,
            account,
            active,
        }),
    }
}

/// Parses `--as-of`.
fn instant(value: &str) -> Result<DateTime<Utc>, CliError> {
    rfc3339("as-of", value)
}

/// Parses an RFC 3339 instant given for `option`.
fn rfc3339(option: &str, value: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CliError::usage(
                "invalid-value",
                format!(
                    "invalid {option} {value:?}: {e}; expected an RFC 3339 instant such as 2026-11-27T09:00:00Z"
                ),
            )
        })
}

/// Parses `--now` (or `BILLING_NOW`).
///
/// # Errors
/// A usage error naming `now` and the value.
pub(crate) fn now(value: Option<&str>) -> Result<Option<DateTime<Utc>>, CliError> {
    value.map(|v| rfc3339("now", v)).transpose()
}

fn bill(value: &str) -> Result<BillId, DomainError> {
    BillId::parse(value).map_err(|e| relabel("bill", e))
}

/// Parses one `--expect-head W=HASH`.
fn expect_head(value: &str) -> Result<(String, String), CliError> {
    let bad = |reason: &str| {
        CliError::usage(
            "invalid-value",
            format!("invalid expect-head {value:?}: {reason}"),
        )
    };
    let Some((workspace, hash)) = value.split_once('=') else {
        return Err(bad("expected WORKSPACE=HASH"));
    };
    let workspace = WorkspaceId::parse(workspace)
        .map_err(|e| bad(&format!("the workspace is not valid ({e})")))?;
    if hash.len() != 64
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad(
            "the hash must be 64 lowercase hexadecimal digits (SHA-256)",
        ));
    }
    Ok((workspace.to_string(), hash.to_owned()))
}

/// Opens an input file, or says why it cannot be read (exit status 2).
fn open_input(path: &PathBuf) -> Result<File, CliError> {
    let file = File::open(path)
        .map_err(|e| CliError::usage("unreadable-input", format!("cannot open {:?}: {e}", path)))?;
    match file.metadata() {
        Ok(meta) if meta.is_dir() => Err(CliError::usage(
            "unreadable-input",
            format!("cannot read {:?}: it is a directory", path),
        )),
        _ => Ok(file),
    }
}

/// Validates the parsed command line.
///
/// # Errors
/// A [`CliError`] with exit status 2 naming the option and the value.
pub(crate) fn validate(command: Command) -> Result<Request, CliError> {
    Ok(match command {
        Command::Demo {
            expense_center,
            keep,
            lifecycle,
        } => Request::Demo {
            expense_center_url: expense_center.url,
            keep,
            lifecycle,
        },
        Command::Arrears(ArrearsCommand::Record {
            workspace,
            bill: bill_id,
            amount,
            currency,
            who,
        }) => {
            let currency: Currency = currency.parse()?;
            workspace_command(
                "arrears record",
                &workspace,
                &who,
                Action::RecordArrears {
                    bill: bill(&bill_id)?,
                    amount: Money::parse_decimal(&amount, currency)?,
                },
            )?
        }
        Command::Arrears(ArrearsCommand::Settle {
            workspace,
            bill: bill_id,
            stored_value_card,
            who,
        }) => workspace_command(
            "arrears settle",
            &workspace,
            &who,
            Action::SettleArrears {
                bill: bill(&bill_id)?,
                stored_value_card: stored_value_card
                    .as_deref()
                    .map(|c| external_id("stored-value-card", c))
                    .transpose()?,
            },
        )?,
        Command::Workspace(WorkspaceArgs::Dissolve { workspace, who }) => {
            workspace_command("workspace dissolve", &workspace, &who, Action::Dissolve)?
        }
        Command::Tick => Request::Tick,
        Command::Serve {
            listen,
            auth_key,
            demo,
            deliver_every,
            expense_center,
        } => Request::Serve {
            listen: listen.parse().map_err(|e| {
                CliError::usage(
                    "listen",
                    format!("--listen {listen:?} is not an address like 127.0.0.1:8080: {e}"),
                )
            })?,
            auth_key: auth_key.file,
            demo,
            deliver_every,
            expense_center_url: expense_center.url,
        },
        Command::Token(TokenCommand::Issue {
            actor,
            workspace,
            role,
            system,
            ttl,
            auth_key,
        }) => Request::TokenIssue {
            actor: ActorId::parse(&actor)?,
            grant: match (system, workspace) {
                (true, _) => billing_http::Grant::System,
                (false, Some(workspace)) => {
                    let role: Role = role.as_deref().unwrap_or("owner").parse()?;
                    billing_http::Grant::Workspaces(
                        [(WorkspaceId::parse(&workspace)?, role)]
                            .into_iter()
                            .collect(),
                    )
                }
                (false, None) => {
                    return Err(CliError::usage(
                        "workspace",
                        "give --workspace W --role R, or --system",
                    ))
                }
            },
            ttl: parse_ttl(&ttl)?,
            auth_key: auth_key.file,
        },
        Command::Notices { workspace } => Request::Notices {
            workspace: workspace.as_deref().map(WorkspaceId::parse).transpose()?,
        },
        Command::Account(AccountCommand::Register { username, email }) => Request::Register {
            user_name: UserName::parse(&username)?,
            email: Email::parse(&email)?,
        },
        Command::Account(AccountCommand::Bind {
            workspace,
            username,
            who,
        }) => workspace_command(
            "account bind",
            &workspace,
            &who,
            Action::BindAccount {
                user_name: UserName::parse(&username)?,
            },
        )?,
        Command::Cloud(CloudCommand::Subscribe(args)) => cloud(&args, true)?,
        Command::Cloud(CloudCommand::Unsubscribe(args)) => cloud(&args, false)?,
        Command::Upgrade {
            workspace,
            site,
            who,
        } => workspace_command(
            "upgrade",
            &workspace,
            &who,
            Action::RequestUpgrade {
                site: SiteId::parse(&site)?,
            },
        )?,
        Command::Agreement(AgreementCommand::Accept {
            workspace,
            version,
            who,
        }) => workspace_command(
            "agreement accept",
            &workspace,
            &who,
            Action::AcceptAgreement {
                version: AgreementVersion::parse(&version)?,
            },
        )?,
        Command::Settlement(SettlementCommand::Set {
            workspace,
            method,
            account,
            instance,
            who,
        }) => {
            let method = MethodId::parse(&method)?;
            let account = match account {
                None if instance.is_some() => {
                    return Err(CliError::usage(
                        "invalid-value",
                        "--instance needs --account: an instance belongs to a cloud account",
                    ))
                }
                None => None,
                Some(account) => Some(CloudAccount {
                    account_id: external_id("account", &account)?,
                    instance_id: instance
                        .as_deref()
                        .map(|i| external_id("instance", i))
                        .transpose()?,
                }),
            };
            // The shape a known method needs is checked before anything is opened; which
            // methods a site allows is the store's rule to apply.
            if let Some(spec) = SitePolicy::builtin().method(&method) {
                let problem = match (spec.kind, &account) {
                    (MethodKind::Enterprise, Some(a)) => Some(format!(
                        "method enterprise settles through the bound Expense Center account and takes no cloud account (got --account {})",
                        a.account_id
                    )),
                    (MethodKind::Cloud, None) => {
                        Some(format!("method {method} needs the cloud account id (--account)"))
                    }
                    (MethodKind::Cloud, Some(a)) if spec.requires_instance && a.instance_id.is_none() => {
                        Some(format!("method {method} needs the marketplace instance id (--instance)"))
                    }
                    (MethodKind::Cloud, Some(a)) if !spec.requires_instance && a.instance_id.is_some() => {
                        Some(format!("method {method} takes no marketplace instance id (--instance)"))
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(CliError::usage("invalid-settlement-request", problem));
                }
            }
            workspace_command(
                "settlement set",
                &workspace,
                &who,
                Action::ChangeSettlement { method, account },
            )?
        }
        Command::Show {
            workspace,
            as_of,
            expense_center,
        } => Request::Show {
            workspace: WorkspaceId::parse(&workspace)?,
            as_of: as_of.as_deref().map(instant).transpose()?,
            expense_center_url: expense_center.url,
        },
        Command::History { workspace } => Request::History {
            workspace: WorkspaceId::parse(&workspace)?,
        },
        Command::Export { out } => Request::Export { out },
        Command::Import { from } => {
            open_input(&from)?;
            Request::Import { from }
        }
        Command::Audit {
            from,
            expect_head: heads,
        } => {
            let expect_heads = heads
                .iter()
                .map(|h| expect_head(h))
                .collect::<Result<Vec<_>, _>>()?;
            let from = match from {
                Some(path) => {
                    let file = open_input(&path)?;
                    Some((path, file))
                }
                None => None,
            };
            Request::Audit { from, expect_heads }
        }
        Command::RebuildViews => Request::RebuildViews,
        Command::Events {
            from,
            subscription,
            follow,
        } => Request::Events {
            from: match (from, subscription) {
                (_, Some(name)) => {
                    EventsFrom::Subscription(SubscriptionName::parse(&name).map_err(|e| {
                        CliError::usage("invalid-value", format!("invalid --subscription: {e}"))
                    })?)
                }
                (None, None) => EventsFrom::Position(Position::START),
                (Some(text), None) => {
                    EventsFrom::Position(text.parse().map_err(|e: BadPosition| {
                        CliError::usage("invalid-value", format!("invalid --from: {e}"))
                    })?)
                }
            },
            follow,
        },
        Command::Subscriptions => Request::Subscriptions,
        Command::Publish {
            nats,
            stream,
            follow,
        } => {
            let valid = (1..=32).contains(&stream.len())
                && stream
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(CliError::usage(
                    "invalid-value",
                    format!("invalid --stream {stream:?}: 1 to 32 of A-Z, a-z, 0-9, '_' and '-'"),
                ));
            }
            if !(nats.starts_with("nats://") || nats.starts_with("tls://")) {
                return Err(CliError::usage(
                    "invalid-value",
                    format!(
                        "invalid --nats {nats:?}: expected nats://HOST:PORT or tls://HOST:PORT"
                    ),
                ));
            }
            Request::Publish {
                nats,
                stream,
                follow,
            }
        }
        Command::Webhook(command) => webhook(command)?,
        Command::Deliver {
            follow,
            timeout,
            lease,
        } => {
            if !(1..=3600).contains(&timeout) {
                return Err(CliError::usage(
                    "invalid-value",
                    format!("invalid --timeout {timeout}: 1 to 3600 seconds"),
                ));
            }
            if lease < timeout.saturating_mul(2) {
                return Err(CliError::usage(
                    "invalid-value",
                    format!(
                        "invalid --lease {lease}: at least twice --timeout ({timeout}), so a step \
                         waiting for its attempts does not lose the lease"
                    ),
                ));
            }
            Request::Deliver {
                follow,
                timeout: Duration::from_secs(timeout),
                lease: Duration::from_secs(lease),
            }
        }
    })
}

fn webhook(command: WebhookCommand) -> Result<Request, CliError> {
    let endpoint = |text: &str| -> Result<EndpointId, CliError> { Ok(text.parse()?) };
    Ok(match command {
        WebhookCommand::Add { url, events } => {
            webhooks::check_url(&url)?;
            for event in &events {
                if !billing_domain::WorkspaceEvent::TYPES.contains(&event.as_str()) {
                    return Err(CliError::usage(
                        "invalid-value",
                        format!(
                            "invalid --event {event:?}: the event types are {}",
                            billing_domain::WorkspaceEvent::TYPES.join(", ")
                        ),
                    ));
                }
            }
            Request::WebhookAdd { url, events }
        }
        WebhookCommand::List => Request::WebhookList,
        WebhookCommand::Remove { endpoint: e } => Request::WebhookRemove(endpoint(&e)?),
        WebhookCommand::Failures { endpoint: e } => {
            Request::WebhookFailures(e.as_deref().map(endpoint).transpose()?)
        }
        WebhookCommand::Retry { endpoint: e } => Request::WebhookRetry(endpoint(&e)?),
    })
}

/// A duration like `90s`, `30m`, `1h` or `7d` (at most 366 days).
fn parse_ttl(text: &str) -> Result<chrono::Duration, CliError> {
    let bad = |why: &str| {
        CliError::usage(
            "ttl",
            format!("--ttl {text:?} {why}: give a number and s, m, h or d, like 1h"),
        )
    };
    let split = text.len().saturating_sub(1);
    let (number, unit) = (
        text.get(..split).unwrap_or(""),
        text.get(split..).unwrap_or(""),
    );
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("is not a positive duration"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| bad("has no unit"))?;
    if seconds > 366 * 86_400 {
        return Err(bad("is longer than 366 days"));
    }
    Ok(chrono::Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn expect_heads_need_a_workspace_and_a_sha256() {
        let hash = "a".repeat(64);
        assert_eq!(
            expect_head(&format!("acme={hash}")).unwrap(),
            ("acme".to_owned(), hash.clone())
        );
        for bad in [
            "acme",
            "acme=",
            "acme=xyz",
            &format!("ac me={hash}"),
            &format!("acme={}", "A".repeat(64)),
        ] {
            assert_eq!(expect_head(bad).unwrap_err().status.code(), 2, "{bad}");
        }
    }

    #[test]
    fn instants_are_rfc3339() {
        assert!(instant("2026-11-27T09:00:00Z").is_ok());
        assert!(instant("2026-11-27T09:00:00+08:00").is_ok());
        assert_eq!(instant("yesterday").unwrap_err().status.code(), 2);
    }

    #[test]
    fn command_ids_are_valid_external_ids() {
        assert!(ExternalId::parse(&fresh_command_id()).is_ok());
    }

    #[test]
    fn relabelled_errors_name_the_option() {
        let err = external_id("instance", "a b").unwrap_err();
        assert!(err.to_string().contains("instance"), "{err}");
    }
}
