//! Contenders measured in interleaved slices, and the store's own contender.
//!
//! Every contender runs in short slices, interleaved A-B-B-A with its baseline, and its rate is
//! total operations over total time — so a noisy neighbour slows all contenders alike instead of
//! whichever happened to run at that moment. The ratio of a pair is the median of its per-round
//! ratios.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace};
use billing_domain::*;
use billing_store::{BillingStore, SystemClock};

use crate::measure::{cpu_seconds, median_min_max, Tally};

/// Services with in-memory ports (the user name `acme-finance` exists) and the built-in policy.
pub(crate) fn services() -> WorkspaceServices {
    let expense_center = Arc::new(InMemoryExpenseCenter::new());
    if let Ok(name) = UserName::parse("acme-finance") {
        expense_center.add(&name);
    }
    WorkspaceServices {
        expense_center,
        marketplace: Arc::new(InMemoryMarketplace::new()),
        policy: Arc::new(SitePolicy::builtin()),
        clock: Arc::new(SystemClock),
    }
}

/// A workspace id and the commands to run on it, in order.
pub(crate) type Work = (WorkspaceId, Vec<WorkspaceCommand>);

/// The three commands that upgrade workspace `w`: a request, a verified binding, and the
/// agreement (which writes two events).
pub(crate) fn flow(prefix: &str, w: usize) -> Result<Work, String> {
    let build = || -> Result<_, DomainError> {
        let id = WorkspaceId::parse(&format!("{prefix}-{w:07}"))?;
        let owner = Actor::new(ActorId::parse("alice")?, Role::Owner);
        let actions = [
            Action::RequestUpgrade {
                site: SiteId::parse("us1")?,
            },
            Action::BindAccount {
                user_name: UserName::parse("acme-finance")?,
            },
            Action::AcceptAgreement {
                version: AgreementVersion::parse("2024-06")?,
            },
        ];
        let mut commands = Vec::new();
        for (i, a) in actions.into_iter().enumerate() {
            commands.push(WorkspaceCommand::new(
                ExternalId::parse(&format!("{id}-{i}"))?,
                owner.clone(),
                a,
            ));
        }
        Ok((id, commands))
    };
    build().map_err(|e| e.to_string())
}

/// The future of one slice: how many operations it did.
pub(crate) type Slice<'a> = Pin<Box<dyn Future<Output = Result<usize, String>> + 'a>>;

/// One contender: runs a slice of work and reports how many operations it did.
pub(crate) trait Contender {
    /// Builds the inputs of slice `slice` (untimed: a host builds its commands anyway).
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        let _ = slice;
        Ok(())
    }
    /// Runs slice `slice` (timed) and says how many operations it did.
    fn slice(&mut self, slice: usize) -> Slice<'_>;
}

/// A named contender.
pub(crate) type Named = (&'static str, Box<dyn Contender>);

/// `BillingStore::execute` from `writers` concurrent tasks, each on its own workspaces.
pub(crate) struct Store {
    /// The store.
    pub(crate) store: Arc<BillingStore>,
    /// Concurrent writers.
    pub(crate) writers: usize,
    /// New workspaces per writer per slice.
    pub(crate) workspaces_per_writer: usize,
    /// Prefix of the workspace ids (distinct per contender on one database).
    pub(crate) prefix: &'static str,
    /// How many commands of the flow to run per workspace: 3 (the documented flow, four events)
    /// or 1 (only the request: one event per command).
    pub(crate) steps: usize,
    /// Per writer, the workspaces and commands of the prepared slice.
    pub(crate) inputs: Vec<Vec<Work>>,
}

impl Store {
    /// The documented flow (three commands) on `workspaces_per_writer` new workspaces per
    /// writer and slice.
    pub(crate) fn flow(
        store: Arc<BillingStore>,
        writers: usize,
        workspaces_per_writer: usize,
        prefix: &'static str,
    ) -> Self {
        Self {
            store,
            writers,
            workspaces_per_writer,
            prefix,
            steps: 3,
            inputs: Vec::new(),
        }
    }
}

impl Contender for Store {
    fn prepare(&mut self, slice: usize) -> Result<(), String> {
        self.inputs = (0..self.writers)
            .map(|writer| {
                let prefix = format!("{}{slice}-{writer}", self.prefix);
                (0..self.workspaces_per_writer)
                    .map(|w| {
                        flow(&prefix, w).map(|(id, mut commands)| {
                            commands.truncate(self.steps);
                            (id, commands)
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(())
    }

    fn slice(&mut self, _slice: usize) -> Slice<'_> {
        Box::pin(async move {
            let mut tasks = Vec::new();
            for workspaces in std::mem::take(&mut self.inputs) {
                let store = self.store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0;
                    for (id, commands) in &workspaces {
                        for c in commands {
                            store.execute(id, c).await.map_err(|e| e.to_string())?;
                            done += 1;
                        }
                    }
                    Ok::<_, String>(done)
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await.map_err(|e| e.to_string())??;
            }
            Ok(done)
        })
    }
}

/// A ratio of a pair: contender ÷ baseline, median over rounds.
#[derive(Clone, Debug)]
pub(crate) struct PairRatio {
    /// The baseline's name.
    pub(crate) baseline: &'static str,
    /// The contender's name.
    pub(crate) contender: &'static str,
    /// Median of the per-round ratios.
    pub(crate) median: f64,
    /// Smallest per-round ratio.
    pub(crate) min: f64,
    /// Largest per-round ratio.
    pub(crate) max: f64,
    /// Rounds.
    pub(crate) rounds: usize,
}

/// What [`interleave`] measured.
#[derive(Debug)]
pub(crate) struct Interleaved {
    /// Per contender (in the order given), its name and everything its slices did.
    pub(crate) tallies: Vec<(&'static str, Tally)>,
    /// Per pair (in the order given), its ratio.
    pub(crate) ratios: Vec<PairRatio>,
}

impl Interleaved {
    /// The rate of contender `name` (0 if there is none).
    pub(crate) fn rate(&self, name: &str) -> f64 {
        self.tallies
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, t)| t.rate())
    }

    /// The median ratio `contender` ÷ `baseline` (0 if that pair was not measured).
    pub(crate) fn ratio(&self, contender: &str, baseline: &str) -> f64 {
        self.ratios
            .iter()
            .find(|r| r.contender == contender && r.baseline == baseline)
            .map_or(0.0, |r| r.median)
    }

    /// Prints one line per contender and one per ratio on stderr.
    pub(crate) fn print(&self) {
        for (name, t) in &self.tallies {
            eprintln!(
                "  {name:<20} {:>8.0} ops/s  ({} ops in {:.2}s; client CPU {:.0} µs/op)",
                t.rate(),
                t.ops,
                t.secs,
                t.cpu_us_per_op()
            );
        }
        for r in &self.ratios {
            eprintln!(
                "  {} / {}: median {:.3} over {} slice pairs (min {:.3}, max {:.3})",
                r.contender, r.baseline, r.median, r.rounds, r.min, r.max
            );
        }
    }
}

/// Warms every contender up (connections, prepared statements, caches) with one untimed slice,
/// then runs `rounds` rounds; in each round every (baseline, contender) pair of `pairs` runs
/// A-B-B-A, one slice each. Slices are numbered from 1 across the whole run (the warm-up slice
/// is `1_000_000`), so a contender can give every slice its own workspaces.
///
/// # Errors
/// A pair names an unknown contender, or a slice fails.
pub(crate) async fn interleave(
    contenders: &mut [Named],
    pairs: &[(&'static str, &'static str)],
    rounds: usize,
) -> Result<Interleaved, String> {
    let index = |name: &str| {
        contenders
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| format!("no contender named {name}"))
    };
    let pairs: Vec<(usize, usize)> = pairs
        .iter()
        .map(|(base, other)| Ok((index(base)?, index(other)?)))
        .collect::<Result<_, String>>()?;
    for (_, c) in contenders.iter_mut() {
        c.prepare(1_000_000)?;
        c.slice(1_000_000).await?;
    }
    let mut tallies = vec![Tally::default(); contenders.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
    let mut slice_no = 0;
    for _ in 0..rounds {
        for (p, &(base, other)) in pairs.iter().enumerate() {
            // A B B A: both sides see the same conditions on average.
            let mut rates = [0.0f64; 2];
            for (side, i) in [(0, base), (1, other), (1, other), (0, base)] {
                slice_no += 1;
                contenders[i].1.prepare(slice_no)?;
                let cpu = cpu_seconds();
                let start = Instant::now();
                let ops = contenders[i].1.slice(slice_no).await?;
                let secs = start.elapsed().as_secs_f64();
                tallies[i].secs += secs;
                tallies[i].ops += ops;
                tallies[i].cpu += cpu_seconds() - cpu;
                rates[side] += ops as f64 / secs;
            }
            if rates[0] > 0.0 {
                ratios[p].push(rates[1] / rates[0]);
            }
        }
    }
    let ratios = pairs
        .iter()
        .zip(&ratios)
        .map(|(&(base, other), r)| {
            let (median, min, max) = median_min_max(r);
            PairRatio {
                baseline: contenders[base].0,
                contender: contenders[other].0,
                median,
                min,
                max,
                rounds: r.len(),
            }
        })
        .collect();
    Ok(Interleaved {
        tallies: contenders.iter().map(|(n, _)| *n).zip(tallies).collect(),
        ratios,
    })
}
