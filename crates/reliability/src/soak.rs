//! `billing-reliability soak`: many concurrent writers over many workspaces, valid and refused
//! commands mixed, and every few commands all writers racing on one hot workspace at once; then
//! the totals are reconciled against the store and every invariant is checked.
//!
//! Time runs fast (a calendar month every `--month-ms` of real time, through the store's injected
//! clock), so the once-a-month settlement rule lets workspaces change settlement many times in
//! one run instead of refusing every change after the first.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_adapters::Embedded;
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, Clock, CloudAccount, DomainError, Email, ExternalId,
    MethodId, Role, Settlement, Site, SiteId, SitePolicy, UpgradeStep, UserName, Workspace,
    WorkspaceCommand, WorkspaceId,
};
use billing_store::{RetryPolicy, StoreOptions};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Barrier;

use crate::check::Anomalies;
use crate::exec::{classify, persist, Kind, Settled};
use crate::facts::{audit, outbox_check, views_rebuild_equal, StoreFacts};
use crate::rng::Rng;
use crate::stats::Latency;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct SoakArgs {
    /// Database URL.
    pub(crate) db: String,
    /// Concurrent writers.
    pub(crate) writers: usize,
    /// Workspaces (including the hot ones).
    pub(crate) workspaces: usize,
    /// Commands in all.
    pub(crate) commands: u64,
    /// Hot workspaces all writers race on.
    pub(crate) hot: usize,
    /// A race every this many commands of each writer.
    pub(crate) race_every: u64,
    /// Real milliseconds per simulated calendar month.
    pub(crate) month_ms: u64,
    /// Seed of the workload.
    pub(crate) seed: u64,
}

/// A clock that runs `factor` times faster than real time from the moment it was made.
#[derive(Debug)]
struct FastClock {
    base: DateTime<Utc>,
    start: Instant,
    factor: f64,
}

impl Clock for FastClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed().as_secs_f64() * self.factor;
        // Microseconds reach 292,000 years: no overflow in any run.
        let micros = (elapsed * 1e6).min(i64::MAX as f64) as i64;
        self.base + chrono::Duration::microseconds(micros)
    }
}

/// What a command must do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Succeed.
    Ok,
    /// Succeed, or be refused by one of these rules.
    OkOr(&'static [&'static str]),
    /// Be refused by one of these rules.
    Refused(&'static [&'static str]),
    /// Anything a rule allows (races).
    Any,
}

/// One command's outcome, as its writer saw it.
#[derive(Debug)]
enum Outcome {
    Ok { first: u64, last: u64 },
    Refused,
    Failed,
}

#[derive(Debug)]
struct Record {
    command_id: String,
    workspace: String,
    outcome: Outcome,
}

#[derive(Default)]
struct Totals {
    conflicts: AtomicU64,
    conflicts_exhausted: AtomicU64,
    subscriptions: AtomicU64,
    races: AtomicU64,
}

/// What one writer saw.
#[derive(Default)]
struct WriterReport {
    records: Vec<Record>,
    ok_latency: Vec<Duration>,
    refused_latency: Vec<Duration>,
    refusals: BTreeMap<&'static str, u64>,
    anomalies: Vec<(&'static str, String)>,
}

struct Owned {
    id: WorkspaceId,
    name: String,
    site: Site,
    state: Workspace,
}

struct Ctx {
    embedded: Embedded,
    policy: SitePolicy,
    prefix: String,
    hot: Vec<WorkspaceId>,
    shared: Vec<UserName>,
    barrier: Barrier,
    totals: Totals,
    races: u64,
    args: SoakArgs,
}

const SHARED: usize = 16;

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 16,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(100),
    }
}

/// Runs the soak; returns the JSON summary and whether no invariant broke.
pub(crate) async fn run(args: SoakArgs) -> Result<(serde_json::Value, bool), String> {
    let started = Instant::now();
    let writers = args.writers.max(1);
    let hot_count = args.hot.min(args.workspaces);
    let run_id = Utc::now().timestamp_millis();
    let prefix = format!("s{run_id:x}-");
    let month = 30.0 * 24.0 * 3600.0 * 1000.0;
    let clock = Arc::new(FastClock {
        base: Utc::now(),
        start: Instant::now(),
        factor: month / args.month_ms.max(1) as f64,
    });
    let options = StoreOptions {
        max_connections: u32::try_from(writers + 4).unwrap_or(u32::MAX),
        ..StoreOptions::default()
    };
    let embedded = Embedded::open_with(&args.db, options, SitePolicy::builtin(), clock)
        .await
        .map_err(|e| format!("opening the store: {e}"))?;
    let bad = |e: DomainError| format!("the soak made a bad value: {e}");
    let mut shared = Vec::new();
    for k in 0..SHARED {
        let user_name = UserName::parse(&format!("{prefix}shared-{k}")).map_err(bad)?;
        let email = Email::parse(&format!("shared-{k}@soak.example.com")).map_err(bad)?;
        persist(
            "registering the shared accounts",
            Duration::from_secs(30),
            || embedded.expense_center.register(&user_name, &email),
        )
        .await?;
        shared.push(user_name);
    }
    let hot = (0..hot_count)
        .map(|h| WorkspaceId::parse(&format!("{prefix}hot-{h}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let per_writer = args.commands / writers as u64;
    let races = if hot.is_empty() || args.race_every == 0 {
        0
    } else {
        per_writer / args.race_every
    };
    let ctx = Arc::new(Ctx {
        embedded,
        policy: SitePolicy::builtin(),
        prefix: prefix.clone(),
        hot,
        shared,
        barrier: Barrier::new(writers),
        totals: Totals::default(),
        races,
        args: args.clone(),
    });
    // Ordinary workspaces, dealt round-robin to the writers (one writer each: no races there).
    let ordinary = args.workspaces - hot_count;
    let mut tasks = Vec::new();
    for k in 0..writers {
        let quota = per_writer + u64::from((k as u64) < args.commands % writers as u64);
        let mut owned = Vec::new();
        let mut rng = Rng::for_item(args.seed, 1_000_000 + k as u64);
        for i in (k..ordinary).step_by(writers) {
            let name = format!("{prefix}w{i:05}");
            let sites: Vec<&Site> = ctx.policy.sites().collect();
            let site = sites
                .get(rng.index(sites.len()))
                .ok_or("the site policy has no sites")?;
            owned.push(Owned {
                id: WorkspaceId::parse(&name).map_err(bad)?,
                name,
                site: (*site).clone(),
                state: Workspace::default(),
            });
        }
        let ctx = ctx.clone();
        let seed = args.seed;
        tasks.push(tokio::spawn(async move {
            writer(&ctx, k, quota, owned, Rng::for_item(seed, k as u64)).await
        }));
    }
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.map_err(|e| format!("a writer stopped: {e}"))?);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    reconcile(&ctx, reports, load_seconds, started).await
}

async fn writer(
    ctx: &Ctx,
    k: usize,
    quota: u64,
    mut owned: Vec<Owned>,
    mut rng: Rng,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut race_no = 0u64;
    for j in 0..quota {
        let racing = race_no < ctx.races && (j + 1) % ctx.args.race_every == 0;
        let planned = if racing {
            let h = usize::try_from(race_no).unwrap_or(0) % ctx.hot.len().max(1);
            race_no += 1;
            ctx.barrier.wait().await;
            ctx.totals.races.fetch_add(1, Ordering::Relaxed);
            race_command(ctx, k, j, race_no, h, &mut report.anomalies).await
        } else if owned.is_empty() {
            continue;
        } else {
            let i = rng.index(owned.len());
            ordinary_command(ctx, k, j, &mut owned[i], &mut rng)
                .await
                .map(|(c, e)| (owned[i].id.clone(), c, e, Some(i)))
        };
        let (workspace, command, expect, owner_index) = match planned {
            Ok(p) => p,
            Err(e) => {
                report.anomalies.push((failure_kind(&e), e));
                continue;
            }
        };
        let started = Instant::now();
        let settled = execute(ctx, &workspace, &command).await;
        let latency = started.elapsed();
        let id = command.command_id.to_string();
        let outcome = match &settled {
            Settled::Ok { events, replayed } => {
                report.ok_latency.push(latency);
                if *replayed {
                    report
                        .anomalies
                        .push(("replayed", format!("{id}: a fresh command id was replayed")));
                }
                if let Some(i) = owner_index {
                    for e in events {
                        match owned[i].state.evolve(&e.event) {
                            Ok(s) => owned[i].state = s,
                            Err(err) => report.anomalies.push((
                                "model",
                                format!("{id}: the stored event does not follow: {err}"),
                            )),
                        }
                    }
                }
                match settled.range() {
                    Some((first, last)) => Outcome::Ok { first, last },
                    None => {
                        report
                            .anomalies
                            .push(("failed", format!("{id}: succeeded without events")));
                        Outcome::Failed
                    }
                }
            }
            Settled::Refused(rule) => {
                report.refused_latency.push(latency);
                *report.refusals.entry(rule.code()).or_default() += 1;
                Outcome::Refused
            }
            Settled::Failed(e) => {
                report
                    .anomalies
                    .push((failure_kind(e), format!("{id}: {e}")));
                Outcome::Failed
            }
        };
        let code = match &settled {
            Settled::Refused(rule) => Some(rule.code()),
            _ => None,
        };
        let fine = match (expect, &outcome, code) {
            (_, Outcome::Failed, _) => true, // already reported
            (Expect::Ok, Outcome::Ok { .. }, _) => true,
            (Expect::OkOr(_), Outcome::Ok { .. }, _) => true,
            (Expect::OkOr(codes), Outcome::Refused, Some(c)) => codes.contains(&c),
            (Expect::Refused(codes), Outcome::Refused, Some(c)) => codes.contains(&c),
            (Expect::Any, _, _) => true,
            _ => false,
        };
        if !fine {
            report.anomalies.push((
                "unexpected-outcome",
                format!("{id} on {workspace}: expected {expect:?}, got {settled:?}"),
            ));
        }
        report.records.push(Record {
            command_id: id,
            workspace: workspace.to_string(),
            outcome,
        });
    }
    report
}

/// Executes a command: first on its own (to count conflicts), then through the store's retry
/// helper when it conflicted.
async fn execute(ctx: &Ctx, workspace: &WorkspaceId, command: &WorkspaceCommand) -> Settled {
    let store = &ctx.embedded.store;
    let mut result = store.execute(workspace, command).await;
    if matches!(&result, Err(e) if e.is_conflict()) {
        ctx.totals.conflicts.fetch_add(1, Ordering::Relaxed);
        for _ in 0..5 {
            result = store
                .execute_with_retry(workspace, command, retry_policy())
                .await;
            if matches!(&result, Err(e) if e.is_conflict()) {
                ctx.totals
                    .conflicts_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            break;
        }
    }
    match result {
        Ok(outcome) => Settled::Ok {
            events: outcome.events,
            replayed: outcome.replayed,
        },
        Err(e) => match classify(e) {
            (Kind::Rule(rule), _) => Settled::Refused(rule),
            (_, text) => Settled::Failed(text),
        },
    }
}

/// The anomaly kind of a failure: the store reporting a broken stream is its own kind.
fn failure_kind(message: &str) -> &'static str {
    if message.starts_with("integrity:") {
        "store-integrity"
    } else {
        "failed"
    }
}

fn actor(name: &str, role: Role) -> Result<Actor, String> {
    Ok(Actor::new(
        ActorId::parse(&format!("{}-{name}", role.as_str())).map_err(|e| e.to_string())?,
        role,
    ))
}

fn cloud_account(
    site: &Site,
    policy: &SitePolicy,
    id: &str,
) -> Result<Option<(MethodId, CloudAccount)>, String> {
    let Some(method) = site
        .default_cloud_method
        .as_ref()
        .and_then(|m| policy.method(m))
    else {
        return Ok(None);
    };
    let e = |e: DomainError| e.to_string();
    let account = CloudAccount {
        account_id: ExternalId::parse(id).map_err(e)?,
        instance_id: if method.requires_instance {
            Some(ExternalId::parse(&format!("{id}-i")).map_err(e)?)
        } else {
            None
        },
    };
    Ok(Some((method.id.clone(), account)))
}

async fn subscribe(
    ctx: &Ctx,
    method: &MethodId,
    account: &CloudAccount,
    active: bool,
) -> Result<(), String> {
    ctx.totals.subscriptions.fetch_add(1, Ordering::Relaxed);
    ctx.embedded
        .marketplace
        .set(method, account, active)
        .await
        .map_err(|e| format!("the marketplace failed: {e}"))
}

type Planned = (WorkspaceId, WorkspaceCommand, Expect, Option<usize>);

/// The next command for a workspace this writer owns (and knows the state of).
async fn ordinary_command(
    ctx: &Ctx,
    k: usize,
    j: u64,
    w: &mut Owned,
    rng: &mut Rng,
) -> Result<(WorkspaceCommand, Expect), String> {
    let e = |e: DomainError| e.to_string();
    let name = w.name.as_str();
    let owner = actor(name, Role::Owner)?;
    let id = ExternalId::parse(&format!("{name}.c{k}-{j}")).map_err(e)?;
    let cmd =
        |actor: &Actor, action: Action| WorkspaceCommand::new(id.clone(), actor.clone(), action);
    let version = AgreementVersion::parse("2024-06").map_err(e)?;
    let site = w.site.id.clone();
    let valid = rng.percent(70);
    let choice = rng.below(5);
    Ok(match w.state.upgrade_step() {
        UpgradeStep::NotRequested => {
            if valid {
                (cmd(&owner, Action::RequestUpgrade { site }), Expect::Ok)
            } else {
                match choice {
                    0 | 1 => (
                        cmd(
                            &actor(
                                name,
                                if choice == 0 {
                                    Role::Admin
                                } else {
                                    Role::Member
                                },
                            )?,
                            Action::RequestUpgrade { site },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                    2 => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["upgrade-not-requested"]),
                    ),
                    3 => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method: MethodId::enterprise(),
                                account: None,
                            },
                        ),
                        Expect::Refused(&["not-commercial-yet"]),
                    ),
                    _ => (
                        cmd(
                            &owner,
                            Action::RequestUpgrade {
                                site: SiteId::parse("xx9").map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["unknown-site"]),
                    ),
                }
            }
        }
        UpgradeStep::Requested => {
            if valid {
                if rng.one_in(2) {
                    let user_name = UserName::parse(&format!("{name}-u{j}")).map_err(e)?;
                    let email = Email::parse(&format!("u{j}@{name}.example.com")).map_err(e)?;
                    (
                        cmd(&owner, Action::RegisterAndBindAccount { user_name, email }),
                        Expect::Ok,
                    )
                } else {
                    let user_name = ctx.shared[rng.index(ctx.shared.len())].clone();
                    (cmd(&owner, Action::BindAccount { user_name }), Expect::Ok)
                }
            } else {
                match choice {
                    0 => (
                        cmd(
                            &owner,
                            Action::BindAccount {
                                user_name: UserName::parse(&format!("nobody-{name}-{j}"))
                                    .map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["unknown-user-name"]),
                    ),
                    1 => (
                        cmd(
                            &owner,
                            Action::RegisterAndBindAccount {
                                user_name: ctx.shared[rng.index(ctx.shared.len())].clone(),
                                email: Email::parse("taken@soak.example.com").map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["user-name-taken"]),
                    ),
                    2 => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["account-not-bound"]),
                    ),
                    3 => (
                        cmd(&owner, Action::RequestUpgrade { site }),
                        Expect::Refused(&["upgrade-already-requested"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Member)?,
                            Action::AcceptAgreement { version },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                }
            }
        }
        UpgradeStep::AccountBound => {
            if valid {
                (cmd(&owner, Action::AcceptAgreement { version }), Expect::Ok)
            } else {
                match choice {
                    0 | 1 => (
                        cmd(
                            &owner,
                            Action::RegisterAndBindAccount {
                                user_name: UserName::parse(&format!("{name}-x{j}")).map_err(e)?,
                                email: Email::parse(&format!("x{j}@{name}.example.com"))
                                    .map_err(e)?,
                            },
                        ),
                        Expect::Refused(&["account-already-bound"]),
                    ),
                    2 => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method: MethodId::enterprise(),
                                account: None,
                            },
                        ),
                        Expect::Refused(&["not-commercial-yet"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Admin)?,
                            Action::AcceptAgreement { version },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                }
            }
        }
        UpgradeStep::AgreementAccepted => {
            return Err(format!(
                "{name}: the model holds AgreementAccepted without PlanUpgraded"
            ))
        }
        UpgradeStep::Upgraded => {
            let current = w.state.settlement().cloned();
            let cloud = cloud_account(&w.site, &ctx.policy, &format!("{name}-a{j}"))?;
            match (valid, cloud, current) {
                (true, Some((method, account)), Some(Settlement::Enterprise { .. })) => {
                    subscribe(ctx, &method, &account, true).await?;
                    (
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method,
                                account: Some(account),
                            },
                        ),
                        Expect::OkOr(&["settlement-change-too-soon"]),
                    )
                }
                (true, Some(_), Some(Settlement::Cloud { method, account })) => {
                    subscribe(ctx, &method, &account, false).await?;
                    (
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method: MethodId::enterprise(),
                                account: None,
                            },
                        ),
                        Expect::OkOr(&["settlement-change-too-soon"]),
                    )
                }
                (_, cloud, current) => match (choice, cloud, current) {
                    (0, Some((method, account)), _) => (
                        // Never subscribed.
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method,
                                account: Some(account),
                            },
                        ),
                        Expect::Refused(&[
                            "cloud-account-not-subscribed",
                            "settlement-change-too-soon",
                            "cloud-settlement-locked-in",
                        ]),
                    ),
                    (0, None, _) => (
                        cmd(
                            &owner,
                            Action::ChangeSettlement {
                                method: MethodId::parse("aws").map_err(e)?,
                                account: Some(CloudAccount {
                                    account_id: ExternalId::parse("123456789012").map_err(e)?,
                                    instance_id: None,
                                }),
                            },
                        ),
                        Expect::Refused(&["settlement-not-allowed-on-site"]),
                    ),
                    (1, _, Some(current)) => {
                        let (method, account) = match current {
                            Settlement::Enterprise { .. } => (MethodId::enterprise(), None),
                            Settlement::Cloud { method, account } => (method, Some(account)),
                        };
                        (
                            cmd(&owner, Action::ChangeSettlement { method, account }),
                            Expect::Refused(&["settlement-unchanged"]),
                        )
                    }
                    (2, _, _) => (
                        cmd(&owner, Action::AcceptAgreement { version }),
                        Expect::Refused(&["already-commercial"]),
                    ),
                    (3, _, _) => (
                        cmd(
                            &owner,
                            Action::BindAccount {
                                user_name: ctx.shared[0].clone(),
                            },
                        ),
                        Expect::Refused(&["already-commercial"]),
                    ),
                    _ => (
                        cmd(
                            &actor(name, Role::Admin)?,
                            Action::ChangeSettlement {
                                method: MethodId::enterprise(),
                                account: None,
                            },
                        ),
                        Expect::Refused(&["not-workspace-owner"]),
                    ),
                },
            }
        }
    })
}

/// The command writer `k` sends in race `race_no` on hot workspace `h`: each writer something
/// different, all at once.
async fn race_command(
    ctx: &Ctx,
    k: usize,
    j: u64,
    race_no: u64,
    h: usize,
    anomalies: &mut Vec<(&'static str, String)>,
) -> Result<Planned, String> {
    let e = |e: DomainError| e.to_string();
    let workspace = ctx.hot[h].clone();
    let name = workspace.to_string();
    // A failed read is an anomaly; the writer reads once more so the race still happens.
    let state =
        match ctx.embedded.store.state(&workspace).await {
            Ok(s) => s,
            Err(err) => {
                let message = format!("{err} (reading the state of hot workspace {name})");
                anomalies.push((failure_kind(&message), message));
                ctx.embedded.store.state(&workspace).await.map_err(|err| {
                    format!("{err} (reading the state of hot workspace {name} again)")
                })?
            }
        };
    let owner = actor(&name, Role::Owner)?;
    let id = ExternalId::parse(&format!("{name}.c{k}-{j}")).map_err(e)?;
    let cmd = |action: Action| WorkspaceCommand::new(id.clone(), owner.clone(), action);
    let sites: Vec<&Site> = ctx.policy.sites().collect();
    let command = match state.upgrade_step() {
        UpgradeStep::NotRequested => cmd(Action::RequestUpgrade {
            site: sites
                .get((k + usize::try_from(race_no).unwrap_or(0)) % sites.len().max(1))
                .ok_or("the site policy has no sites")?
                .id
                .clone(),
        }),
        UpgradeStep::Requested if k % 2 == 0 => cmd(Action::RegisterAndBindAccount {
            user_name: UserName::parse(&format!("{name}-k{k}-r{race_no}")).map_err(e)?,
            email: Email::parse(&format!("k{k}@{name}.example.com")).map_err(e)?,
        }),
        UpgradeStep::Requested => cmd(Action::BindAccount {
            user_name: ctx.shared[k % ctx.shared.len()].clone(),
        }),
        UpgradeStep::AccountBound => cmd(Action::AcceptAgreement {
            version: AgreementVersion::parse(&format!("v{k}")).map_err(e)?,
        }),
        UpgradeStep::AgreementAccepted => {
            return Err(format!(
                "{name}: the store's state holds AgreementAccepted without PlanUpgraded"
            ))
        }
        UpgradeStep::Upgraded => {
            let site = state
                .site()
                .and_then(|s| ctx.policy.site(s).ok())
                .cloned()
                .ok_or_else(|| format!("{name}: commercial without a known site"))?;
            let current = state.settlement().cloned();
            match (
                cloud_account(&site, &ctx.policy, &format!("{name}-k{k}"))?,
                current,
            ) {
                (Some(_), Some(Settlement::Cloud { method, account })) if k % 3 == 0 => {
                    subscribe(ctx, &method, &account, false).await?;
                    cmd(Action::ChangeSettlement {
                        method: MethodId::enterprise(),
                        account: None,
                    })
                }
                (Some((method, account)), _) => {
                    subscribe(ctx, &method, &account, true).await?;
                    cmd(Action::ChangeSettlement {
                        method,
                        account: Some(account),
                    })
                }
                (None, _) => cmd(Action::ChangeSettlement {
                    method: MethodId::enterprise(),
                    account: None,
                }),
            }
        }
    };
    Ok((workspace, command, Expect::Any, None))
}

async fn reconcile(
    ctx: &Ctx,
    reports: Vec<WriterReport>,
    load_seconds: f64,
    started: Instant,
) -> Result<(serde_json::Value, bool), String> {
    let mut anomalies = Anomalies::default();
    let mut ok_latency = Vec::new();
    let mut refused_latency = Vec::new();
    let mut records = Vec::new();
    let mut refusals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for r in reports {
        for (code, n) in r.refusals {
            *refusals.entry(code).or_default() += n;
        }
        for (kind, detail) in r.anomalies {
            anomalies.add(kind, detail);
        }
        ok_latency.extend(r.ok_latency);
        refused_latency.extend(r.refused_latency);
        records.extend(r.records);
    }
    let db = ctx.embedded.db();
    let facts = StoreFacts::read(db, &ctx.prefix).await?;
    anomalies.add_all("records", facts.consistency());
    // Totals: every acknowledged command is recorded with the events its writer saw; no refused
    // command wrote anything; nothing is recorded that no writer acknowledged.
    let (mut ok, mut refused, mut failed) = (0u64, 0u64, 0u64);
    let mut seen: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    let mut acknowledged: HashMap<&str, ()> = HashMap::new();
    for r in &records {
        let row = facts.commands.get(&r.command_id);
        match r.outcome {
            Outcome::Ok { first, last } => {
                ok += 1;
                acknowledged.insert(r.command_id.as_str(), ());
                seen.entry(r.workspace.as_str())
                    .or_default()
                    .push((first, last));
                match row {
                    Some(row)
                        if row.workspace == r.workspace
                            && (row.first, row.last) == (first, last) => {}
                    other => anomalies.add(
                        "totals",
                        format!(
                            "{}: acknowledged {first}..{last} on {} but recorded {other:?}",
                            r.command_id, r.workspace
                        ),
                    ),
                }
            }
            Outcome::Refused => {
                refused += 1;
                if let Some(row) = row {
                    anomalies.add(
                        "refused-wrote",
                        format!("{}: refused but recorded {row:?}", r.command_id),
                    );
                }
            }
            Outcome::Failed => failed += 1,
        }
    }
    for id in facts.commands.keys() {
        if !acknowledged.contains_key(id.as_str()) {
            anomalies.add(
                "totals",
                format!("{id}: recorded but no writer saw it succeed"),
            );
        }
    }
    if ok != facts.commands.len() as u64 {
        anomalies.add(
            "totals",
            format!(
                "{ok} commands acknowledged but {} recorded",
                facts.commands.len()
            ),
        );
    }
    // Per workspace: the writers' ranges tile 1..=events exactly (no two writers won the same
    // version, nothing lost), and match what the store holds.
    let mut workspaces: BTreeMap<&str, u64> = BTreeMap::new();
    for (workspace, mut ranges) in seen {
        ranges.sort_unstable();
        let mut next = 1u64;
        for (first, last) in &ranges {
            if *first != next {
                anomalies.add(
                    "totals",
                    format!("{workspace}: writers saw ranges {ranges:?}: not contiguous from 1"),
                );
                break;
            }
            next = last + 1;
        }
        workspaces.insert(workspace, next - 1);
    }
    for (workspace, events) in &facts.events_per_workspace {
        let saw = workspaces.remove(workspace.as_str()).unwrap_or(0);
        if saw != *events {
            anomalies.add(
                "totals",
                format!("{workspace}: the store holds {events} events, the writers saw {saw}"),
            );
        }
    }
    for (workspace, saw) in workspaces {
        anomalies.add(
            "totals",
            format!("{workspace}: the writers saw {saw} events, the store holds none"),
        );
    }
    let audit = audit(db, &ctx.policy).await?;
    anomalies.add_audit(&audit);
    let views = views_rebuild_equal(&ctx.embedded, &facts, &ctx.prefix).await?;
    anomalies.add_all("views", views.mismatches.iter().cloned());
    let outbox = outbox_check(&ctx.embedded, &facts, &ctx.prefix).await?;
    anomalies.add_all("outbox", outbox.mismatches.iter().cloned());
    let mut all_latency: Vec<Duration> =
        ok_latency.iter().chain(&refused_latency).copied().collect();
    let acknowledged_latency = Latency::of(&mut all_latency);
    let commands = records.len() as u64;
    let t = &ctx.totals;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let passed = anomalies.total == 0;
    let summary = json!({
        "soak": if passed { "ok" } else { "anomalies" },
        "writers": ctx.args.writers,
        "workspaces": ctx.args.workspaces,
        "hot_workspaces": ctx.hot.len(),
        "commands": commands,
        "acknowledged_ok": ok,
        "acknowledged_refused": refused,
        "refusals_by_rule": refusals,
        "failed": failed,
        "command_records": facts.commands.len(),
        "events": facts.events,
        "race_rounds": ctx.races,
        "race_commands": load(&t.races),
        "conflicts": load(&t.conflicts),
        "conflicts_exhausting_helper": load(&t.conflicts_exhausted),
        "subscription_changes": load(&t.subscriptions),
        "commercial": audit.commercial,
        "audit_findings": audit.findings,
        "views": views,
        "outbox": outbox,
        "latency_ms": {
            "acknowledged": acknowledged_latency,
            "ok": Latency::of(&mut ok_latency),
            "refused": Latency::of(&mut refused_latency),
        },
        "commands_per_second": commands as f64 / load_seconds.max(1e-9),
        "load_seconds": load_seconds,
        "seconds": started.elapsed().as_secs_f64(),
        "month_ms": ctx.args.month_ms,
        "seed": ctx.args.seed,
        "prefix": ctx.prefix,
        "anomalies": anomalies,
    });
    Ok((summary, passed))
}
