//! `billing-reliability deadlines-seed`: the workspaces the deadlines round of `scripts/crash-test`
//! fires deadlines on (SPEC §10). Each workspace is upgraded at `--start` (request, register and
//! bind an Expense Center account, accept), then the billing system (role `system`) records a bill
//! in arrears at a seeded instant in the first `--spread-days` days, which starts a countdown:
//! reminder due 11 days later, deadline 14 days later (the built-in policy). Some workspaces get a
//! second bill a little later (it joins the countdown; the deadline does not move), and some settle
//! their bill before the reminder is due (the countdown ends: neither reminder nor lock may ever
//! fire).
//!
//! Every command happens at its own instant. The store's services have one clock, shared by every
//! writer, so a [`ManualClock`](billing_domain::memory::ManualClock) set before each command would
//! let concurrent writers stamp each other's instants; instead [`SeedClock`] reads the instant of
//! the task that asks (a task-local value set around each command: the domain reads the clock in
//! the caller's task), and every `ArrearsRecorded` written is checked against the instant it was
//! meant to carry.
//!
//! The seed is the round's set-up, not what it tests: on SQLite it commits with `synchronous =
//! NORMAL` (in WAL mode a commit still survives a killed process, only not a power loss), and it
//! delivers the notices its commands recorded (the opening reminders, the countdowns started and
//! the unlocks) before it ends, as a host would, so the ticks deliver only their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_adapters::{deliver_pending, Embedded, LogMailer, BILLING_SYSTEM_ACTOR};
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, BillId, Clock, Currency, DomainError, Email,
    ExternalId, Money, Role, SitePolicy, UserName, WorkspaceCommand, WorkspaceEvent, WorkspaceId,
};
use billing_store::{RetryPolicy, SqliteDurability, StoreOptions};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::exec::{persist, settle, Retries, Settled};
use crate::flow::{workspace_name, AGREEMENT};
use crate::rng::Rng;

/// The prefix of the seeded workspaces' ids.
pub(crate) const PREFIX: &str = "dl-";

tokio::task_local! {
    /// The instant of the command the current task is executing.
    static NOW: DateTime<Utc>;
}

/// The services' clock of the seeding store: the instant of the command the asking task runs
/// (see the module documentation); outside a command, `fallback`, and the read is counted.
#[derive(Debug)]
pub(crate) struct SeedClock {
    fallback: DateTime<Utc>,
    unscoped: AtomicU64,
}

impl SeedClock {
    fn new(fallback: DateTime<Utc>) -> Self {
        Self {
            fallback,
            unscoped: AtomicU64::new(0),
        }
    }
}

impl Clock for SeedClock {
    fn now(&self) -> DateTime<Utc> {
        NOW.try_with(|at| *at).unwrap_or_else(|_| {
            self.unscoped.fetch_add(1, Ordering::Relaxed);
            self.fallback
        })
    }
}

/// One command of a seeded workspace, at its instant.
#[derive(Clone, Debug)]
pub(crate) struct Timed {
    /// When it happens.
    pub(crate) at: DateTime<Utc>,
    /// The command.
    pub(crate) command: WorkspaceCommand,
}

/// What became of a workspace's countdown in the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One bill, never settled: reminder and lock fall due.
    OneBill,
    /// A second bill during the countdown: it joins it, the deadline stays.
    TwoBills,
    /// The bill is settled before the reminder is due: the countdown ends.
    SettledEarly,
}

const HOUR: i64 = 3_600;
const DAY: i64 = 24 * HOUR;

/// The commands of workspace `index`, in time order.
///
/// # Errors
/// A generated value that does not validate (a bug in this generator).
pub(crate) fn plan(
    policy: &SitePolicy,
    seed: u64,
    index: u64,
    start: DateTime<Utc>,
    spread_days: u64,
) -> Result<(WorkspaceId, Shape, Vec<Timed>), DomainError> {
    let mut rng = Rng::for_item(seed, index);
    let name = workspace_name(PREFIX, index);
    let workspace = WorkspaceId::parse(&name)?;
    let sites: Vec<_> = policy.sites().collect();
    let Some(site) = sites.get(rng.index(sites.len())) else {
        return Err(DomainError::InvalidSitePolicy {
            reason: "the policy has no sites".into(),
        });
    };
    let owner = Actor::new(ActorId::parse(&format!("owner-{name}"))?, Role::Owner);
    let system = Actor::new(ActorId::parse(BILLING_SYSTEM_ACTOR)?, Role::System);
    let id = |step: &str| ExternalId::parse(&format!("{name}.{step}"));
    let secs = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    let mut commands = vec![
        Timed {
            at: start,
            command: WorkspaceCommand::new(
                id("request")?,
                owner.clone(),
                Action::RequestUpgrade {
                    site: site.id.clone(),
                },
            ),
        },
        Timed {
            at: start,
            command: WorkspaceCommand::new(
                id("register-bind")?,
                owner.clone(),
                Action::RegisterAndBindAccount {
                    user_name: UserName::parse(&format!("fin-{name}"))?,
                    email: Email::parse(&format!("finance@{name}.example.com"))?,
                },
            ),
        },
        Timed {
            at: start,
            command: WorkspaceCommand::new(
                id("accept")?,
                owner.clone(),
                Action::AcceptAgreement {
                    version: AgreementVersion::parse(AGREEMENT)?,
                },
            ),
        },
    ];
    let first_at = start + secs(rng.below(spread_days.max(1) * DAY as u64));
    let currency = if rng.one_in(3) {
        Currency::Usd
    } else {
        Currency::Cny
    };
    let bill = |n: u32| BillId::parse(&format!("bill-{name}-{n}"));
    let arrears = |n: u32, at: DateTime<Utc>, rng: &mut Rng| -> Result<Timed, DomainError> {
        Ok(Timed {
            at,
            command: WorkspaceCommand::new(
                id(&format!("arrears-{n}"))?,
                system.clone(),
                Action::RecordArrears {
                    bill: bill(n)?,
                    amount: Money::new(100 + rng.below(99_900), currency)?,
                },
            ),
        })
    };
    commands.push(arrears(1, first_at, &mut rng)?);
    let shape = match rng.below(100) {
        0..=11 => Shape::TwoBills,
        12..=23 => Shape::SettledEarly,
        _ => Shape::OneBill,
    };
    match shape {
        Shape::OneBill => {}
        Shape::TwoBills => {
            // Within five days: long before the reminder (11 days after the first bill).
            let at = first_at + secs(HOUR as u64 + rng.below(5 * DAY as u64));
            commands.push(arrears(2, at, &mut rng)?);
        }
        Shape::SettledEarly => {
            // Within ten days: before the reminder is due, so no deadline may ever fire.
            let at = first_at + secs(HOUR as u64 + rng.below(10 * DAY as u64 - HOUR as u64));
            let who = if rng.one_in(2) {
                owner.clone()
            } else {
                system.clone()
            };
            commands.push(Timed {
                at,
                command: WorkspaceCommand::new(
                    id("settle-1")?,
                    who,
                    Action::SettleArrears {
                        bill: bill(1)?,
                        stored_value_card: None,
                    },
                ),
            });
        }
    }
    Ok((workspace, shape, commands))
}

/// What to seed.
#[derive(Debug, Clone)]
pub(crate) struct SeedArgs {
    /// Database URL.
    pub(crate) db: String,
    /// How many workspaces.
    pub(crate) workspaces: u64,
    /// Seed of the plan.
    pub(crate) seed: u64,
    /// When the workspaces are upgraded.
    pub(crate) start: DateTime<Utc>,
    /// Arrears are recorded within this many days of `start`.
    pub(crate) spread_days: u64,
    /// Concurrent writers.
    pub(crate) writers: usize,
}

#[derive(Default)]
struct Counters {
    workspaces: AtomicU64,
    commands: AtomicU64,
    replayed: AtomicU64,
    events: AtomicU64,
    arrears: AtomicU64,
    two_bills: AtomicU64,
    settled_early: AtomicU64,
    countdowns: AtomicU64,
    anomalies: AtomicU64,
    retries: Retries,
}

/// Seeds the workspaces; returns the JSON summary and whether everything went as planned.
pub(crate) async fn seed(args: SeedArgs) -> Result<(serde_json::Value, bool), String> {
    let started = Instant::now();
    let policy = SitePolicy::builtin();
    let clock = Arc::new(SeedClock::new(args.start));
    let options = StoreOptions {
        max_connections: u32::try_from(args.writers + 2).unwrap_or(u32::MAX),
        sqlite_durability: SqliteDurability::Normal,
        ..StoreOptions::default()
    };
    let patience = Duration::from_secs(60);
    let embedded = persist("opening the store", patience, || {
        Embedded::open_with(&args.db, options.clone(), policy.clone(), clock.clone())
    })
    .await?;
    let embedded = Arc::new(embedded);
    let policy = Arc::new(policy);
    let next = Arc::new(AtomicU64::new(0));
    let counters = Arc::new(Counters::default());
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for _ in 0..args.writers.max(1) {
        let (embedded, policy, next, counters, errors, args) = (
            embedded.clone(),
            policy.clone(),
            next.clone(),
            counters.clone(),
            errors.clone(),
            args.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= args.workspaces {
                    return Ok::<(), String>(());
                }
                let (workspace, shape, commands) =
                    plan(&policy, args.seed, index, args.start, args.spread_days).map_err(|e| {
                        format!("workspace {index}: the generator made a bad value: {e}")
                    })?;
                let problems = seed_one(&embedded, &workspace, shape, &commands, &counters).await;
                if !problems.is_empty() {
                    counters
                        .anomalies
                        .fetch_add(problems.len() as u64, Ordering::Relaxed);
                    let mut errors = errors.lock().unwrap_or_else(|e| e.into_inner());
                    for p in problems {
                        if errors.len() < 50 {
                            errors.push(p);
                        }
                    }
                }
            }
        }));
    }
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("a writer stopped: {e}")),
        }
    }
    let flushed = tokio::time::timeout(Duration::from_secs(60), embedded.projector.flush()).await;
    let views = match flushed {
        Ok(Ok(())) => "current".to_owned(),
        Ok(Err(e)) => format!("behind: {e}"),
        Err(_) => "behind: flush timed out".to_owned(),
    };
    let delivered = deliver_pending(
        embedded.db(),
        &LogMailer,
        &billing_adapters::Clocks::at(Utc::now()),
    )
    .await
    .map_err(|e| format!("delivering the outbox: {e}"))?;
    if delivered.failed > 0 {
        counters
            .anomalies
            .fetch_add(delivered.failed, Ordering::Relaxed);
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let c = &counters;
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unscoped = clock.unscoped.load(Ordering::Relaxed);
    let ok = load(&c.anomalies) == 0 && load(&c.workspaces) == args.workspaces;
    let days = |d: i64| args.start + chrono::Duration::days(d);
    Ok((
        json!({
            "deadlines_seed": if ok { "done" } else { "anomalies" },
            "workspaces": load(&c.workspaces),
            "commands": load(&c.commands),
            "replayed": load(&c.replayed),
            "events": load(&c.events),
            "arrears": load(&c.arrears),
            "countdowns": load(&c.countdowns),
            "two_bills": load(&c.two_bills),
            "settled_before_reminder": load(&c.settled_early),
            "transient_retries": load(&c.retries.transient),
            "start": args.start,
            "arrears_until": days(i64::try_from(args.spread_days).unwrap_or(0)),
            "clock_reads_outside_a_command": unscoped,
            "views": views,
            "notices_delivered": delivered.sent,
            "anomalies": load(&c.anomalies),
            "errors": errors,
            "seconds": started.elapsed().as_secs_f64(),
        }),
        ok,
    ))
}

/// Executes one workspace's commands in order, each at its instant; returns what went wrong.
async fn seed_one(
    embedded: &Embedded,
    workspace: &WorkspaceId,
    shape: Shape,
    commands: &[Timed],
    counters: &Counters,
) -> Vec<String> {
    let mut problems = Vec::new();
    for Timed { at, command } in commands {
        counters.commands.fetch_add(1, Ordering::Relaxed);
        let settled = NOW
            .scope(
                *at,
                settle(
                    &embedded.store,
                    workspace,
                    command,
                    RetryPolicy::default(),
                    Duration::from_secs(60),
                    &counters.retries,
                ),
            )
            .await;
        let events = match settled {
            Settled::Ok { events, replayed } => {
                counters
                    .replayed
                    .fetch_add(u64::from(replayed), Ordering::Relaxed);
                events
            }
            Settled::Refused(rule) => {
                problems.push(format!(
                    "{workspace}: {} at {at} was refused: {rule}",
                    command.command_id
                ));
                return problems;
            }
            Settled::Failed(why) => {
                problems.push(format!(
                    "{workspace}: {} at {at} failed: {why}",
                    command.command_id
                ));
                return problems;
            }
        };
        counters
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        for e in &events {
            match &e.event {
                WorkspaceEvent::ArrearsRecorded(a) => {
                    counters.arrears.fetch_add(1, Ordering::Relaxed);
                    if a.at != *at {
                        problems.push(format!(
                            "{workspace}: {} was meant to happen at {at} but the event says {}",
                            command.command_id, a.at
                        ));
                    }
                }
                WorkspaceEvent::CountdownStarted(_) => {
                    counters.countdowns.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }
    match shape {
        Shape::OneBill => {}
        Shape::TwoBills => {
            counters.two_bills.fetch_add(1, Ordering::Relaxed);
        }
        Shape::SettledEarly => {
            counters.settled_early.fetch_add(1, Ordering::Relaxed);
        }
    }
    counters.workspaces.fetch_add(1, Ordering::Relaxed);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-01-04T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn plans_are_deterministic_in_time_order_and_before_every_reminder() {
        let policy = SitePolicy::builtin();
        let mut shapes = [0u32; 3];
        for index in 0..500 {
            let (w1, s1, a) = plan(&policy, 5, index, start(), 10).unwrap();
            let (w2, s2, b) = plan(&policy, 5, index, start(), 10).unwrap();
            assert_eq!((w1, s1), (w2, s2));
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            assert!(a.windows(2).all(|p| p[0].at <= p[1].at), "in time order");
            let first_arrears = a[3].at;
            assert!(first_arrears < start() + chrono::Duration::days(10));
            // Everything happens before the countdown's reminder is due (11 days on).
            let remind_at = first_arrears + chrono::Duration::days(11);
            assert!(a.iter().all(|t| t.at < remind_at));
            shapes[match s1 {
                Shape::OneBill => 0,
                Shape::TwoBills => 1,
                Shape::SettledEarly => 2,
            }] += 1;
        }
        assert!(shapes.iter().all(|n| *n > 20), "{shapes:?}");
    }

    #[tokio::test]
    async fn the_clock_reads_the_instant_of_the_asking_task() {
        let clock = SeedClock::new(start());
        let later = start() + chrono::Duration::days(3);
        assert_eq!(NOW.scope(later, async { clock.now() }).await, later);
        assert_eq!(clock.now(), start());
        assert_eq!(clock.unscoped.load(Ordering::Relaxed), 1);
    }
}
