//! `billing-reliability deadlines-check --db URL --now T`: after `billing tick` processes ran (and
//! were killed) at instants up to `T`, every countdown's deadlines against the log and the outbox
//! (SPEC §10, I12 and I14):
//! - at most one `CountdownReminded` and one `WorkspaceLocked` per countdown, fired by the
//!   billing system, never before they were due (`remind_at`, `deadline`), never after `T`,
//!   never after the countdown ended, a lock never before its reminder;
//! - every reminder due by `T` (and every lock whose deadline passed by `T`) of a countdown still
//!   running then was fired exactly once; no lock of a deadline after `T`;
//! - the outbox holds exactly one notice per countdown event — `countdown-started`,
//!   `countdown-reminder`, `locked`, `unlocked` — for the event's sequence and countdown, and
//!   none without its event; once delivered, every one is sent;
//! - the audit of the whole store is clean;
//! - with `--mail-log` (the ticks' stderr, where [`LogMailer`] logs every delivery with its
//!   `message_id`): no notice was delivered twice, beyond one redelivery per killed tick (the
//!   mailer took it, the tick died before marking it sent) — I14, sent at most once.
//!
//! Before judging the outbox it runs the views' catch-up (what any `billing` process or
//! [`Scheduler::tick`](billing_adapters::Scheduler::tick) does first) and a delivery through
//! [`LogMailer`]; how many notices the catch-up had to record is reported
//! (`notices_recorded_by_check_catch_up`: the ones a killed tick committed the events of but did
//! not get to record).

use std::collections::BTreeMap;

use billing_adapters::outbox::{outbox, COUNTDOWN_REMINDER, COUNTDOWN_STARTED, LOCKED, UNLOCKED};
use billing_adapters::{catch_up, deliver_pending, LogMailer, OutboxMessage, BILLING_SYSTEM_ACTOR};
use billing_domain::{SitePolicy, WorkspaceEvent};
use billing_store::record::decode_unverified;
use billing_store::{Db, Position, StoreOptions};
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::check::Anomalies;
use crate::facts::audit;

/// The countdown notice kinds this check judges.
const KINDS: [&str; 4] = [COUNTDOWN_STARTED, COUNTDOWN_REMINDER, LOCKED, UNLOCKED];

/// A deadline fired: its sequence, when, the deadline it states, by whom.
#[derive(Clone, Debug)]
struct Fired {
    sequence: u64,
    at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    by: String,
}

/// One countdown of one workspace, as the log tells it.
#[derive(Clone, Debug)]
struct CountdownFacts {
    started_sequence: u64,
    deadline: DateTime<Utc>,
    remind_at: DateTime<Utc>,
    reminders: Vec<Fired>,
    locks: Vec<Fired>,
    /// The `WorkspaceUnlocked` (or `WorkspaceDissolved`) that ended it: sequence and instant.
    ended: Option<(u64, DateTime<Utc>)>,
    unlocked_sequence: Option<u64>,
}

/// The figures of the verdict.
#[derive(Debug, Default)]
struct Figures {
    workspaces: u64,
    events: u64,
    countdowns: u64,
    countdowns_ended: u64,
    reminders_due: u64,
    reminders_fired: u64,
    locks_due: u64,
    locks_fired: u64,
    duplicates: u64,
    missing: u64,
    early: u64,
    reminder_lateness_max_s: i64,
    lock_lateness_max_s: i64,
}

/// Reads every committed event, decoded, grouped by workspace in sequence order.
async fn streams(
    db: &Db,
    anomalies: &mut Anomalies,
) -> Result<BTreeMap<String, Vec<(u64, WorkspaceEvent)>>, String> {
    let mut by_workspace: BTreeMap<String, Vec<(u64, WorkspaceEvent)>> = BTreeMap::new();
    let mut at = Position::START;
    loop {
        let rows = db
            .read_committed(at, 5_000)
            .await
            .map_err(|e| format!("reading the log: {e}"))?;
        let Some(last) = rows.last() else { break };
        at = last.position;
        for r in rows {
            // The audit below verifies every hash; here only the events are needed.
            match decode_unverified(r.row.as_ref()) {
                Ok(stored) => by_workspace
                    .entry(r.row.aggregate_id.clone())
                    .or_default()
                    .push((stored.sequence, stored.event)),
                Err(e) => anomalies.add(
                    "decode",
                    format!("{} #{}: {e}", r.row.aggregate_id, r.row.sequence),
                ),
            }
        }
    }
    for events in by_workspace.values_mut() {
        events.sort_by_key(|(s, _)| *s);
    }
    Ok(by_workspace)
}

/// The countdowns of one stream, by number.
fn countdowns(
    workspace: &str,
    events: &[(u64, WorkspaceEvent)],
    anomalies: &mut Anomalies,
) -> BTreeMap<u32, CountdownFacts> {
    let mut out: BTreeMap<u32, CountdownFacts> = BTreeMap::new();
    let mut running: Option<u32> = None;
    let fired = |sequence: u64, at, deadline, by: &billing_domain::ActorId| Fired {
        sequence,
        at,
        deadline,
        by: by.to_string(),
    };
    for (sequence, event) in events {
        let sequence = *sequence;
        match event {
            WorkspaceEvent::CountdownStarted(e) => {
                running = Some(e.countdown);
                let facts = CountdownFacts {
                    started_sequence: sequence,
                    deadline: e.deadline,
                    remind_at: e.remind_at,
                    reminders: Vec::new(),
                    locks: Vec::new(),
                    ended: None,
                    unlocked_sequence: None,
                };
                if out.insert(e.countdown, facts).is_some() {
                    anomalies.add(
                        "countdown",
                        format!("{workspace}: countdown {} started twice", e.countdown),
                    );
                }
            }
            WorkspaceEvent::CountdownReminded(e) => match out.get_mut(&e.countdown) {
                Some(c) => c.reminders.push(fired(sequence, e.at, e.deadline, &e.by)),
                None => anomalies.add(
                    "countdown",
                    format!(
                        "{workspace} #{sequence}: a reminder of countdown {} that never started",
                        e.countdown
                    ),
                ),
            },
            WorkspaceEvent::WorkspaceLocked(e) => match out.get_mut(&e.countdown) {
                Some(c) => c.locks.push(fired(sequence, e.at, e.deadline, &e.by)),
                None => anomalies.add(
                    "countdown",
                    format!(
                        "{workspace} #{sequence}: a lock of countdown {} that never started",
                        e.countdown
                    ),
                ),
            },
            WorkspaceEvent::WorkspaceUnlocked(e) => {
                running = None;
                match out.get_mut(&e.countdown) {
                    Some(c) if c.ended.is_none() => {
                        c.ended = Some((sequence, e.at));
                        c.unlocked_sequence = Some(sequence);
                    }
                    _ => anomalies.add(
                        "countdown",
                        format!(
                            "{workspace} #{sequence}: countdown {} unlocked but not running",
                            e.countdown
                        ),
                    ),
                }
            }
            WorkspaceEvent::WorkspaceDissolved(e) => {
                if let Some(c) = running.take().and_then(|n| out.get_mut(&n)) {
                    c.ended = Some((sequence, e.at));
                }
            }
            _ => {}
        }
    }
    out
}

/// Judges one countdown's deadlines at `now`.
fn judge(
    workspace: &str,
    number: u32,
    c: &CountdownFacts,
    now: DateTime<Utc>,
    figures: &mut Figures,
    anomalies: &mut Anomalies,
) {
    let label = format!("{workspace} countdown {number}");
    figures.countdowns += 1;
    figures.reminders_fired += c.reminders.len() as u64;
    figures.locks_fired += c.locks.len() as u64;
    if c.ended.is_some() {
        figures.countdowns_ended += 1;
    }
    for (what, list, due) in [
        ("reminder", &c.reminders, c.remind_at),
        ("lock", &c.locks, c.deadline),
    ] {
        if list.len() > 1 {
            figures.duplicates += list.len() as u64 - 1;
            anomalies.add(
                "duplicate",
                format!(
                    "{label}: {} {what}s, at sequences {:?}",
                    list.len(),
                    list.iter().map(|f| f.sequence).collect::<Vec<_>>()
                ),
            );
        }
        for f in list {
            if f.at < due {
                figures.early += 1;
                anomalies.add(
                    "early",
                    format!(
                        "{label}: {what} #{} at {} but due at {due}",
                        f.sequence, f.at
                    ),
                );
            }
            if f.at > now {
                anomalies.add(
                    "after-now",
                    format!(
                        "{label}: {what} #{} at {}, after --now {now}",
                        f.sequence, f.at
                    ),
                );
            }
            if f.deadline != c.deadline {
                anomalies.add(
                    "deadline",
                    format!(
                        "{label}: {what} #{} states deadline {} but the countdown's is {}",
                        f.sequence, f.deadline, c.deadline
                    ),
                );
            }
            if f.by != BILLING_SYSTEM_ACTOR {
                anomalies.add(
                    "actor",
                    format!("{label}: {what} #{} fired by {}", f.sequence, f.by),
                );
            }
            if f.sequence <= c.started_sequence {
                anomalies.add(
                    "order",
                    format!(
                        "{label}: {what} #{} before the countdown started (#{})",
                        f.sequence, c.started_sequence
                    ),
                );
            }
            if let Some((ended, _)) = c.ended {
                if f.sequence > ended {
                    // I12: a lock (or a reminder) after the last reason was cleared.
                    anomalies.add(
                        "after-end",
                        format!(
                            "{label}: {what} #{} after the countdown ended (#{ended})",
                            f.sequence
                        ),
                    );
                }
            }
        }
        let lateness = list
            .first()
            .map_or(0, |f| (f.at - due).num_seconds().max(0));
        match what {
            "reminder" => {
                figures.reminder_lateness_max_s = figures.reminder_lateness_max_s.max(lateness);
            }
            _ => figures.lock_lateness_max_s = figures.lock_lateness_max_s.max(lateness),
        }
        // Due by `now`, with the countdown still running when it fell due: exactly one.
        let running_when_due = c.ended.is_none_or(|(_, at)| at > due);
        let ended_after_due = c.ended.is_some_and(|(_, at)| at > due);
        if due <= now && running_when_due {
            match what {
                "reminder" => figures.reminders_due += 1,
                _ => figures.locks_due += 1,
            }
            // A countdown that ended after its deadline fell due may have ended before a tick
            // came: then nothing fired, rightly. Only a countdown still running is judged.
            if list.is_empty() && !ended_after_due {
                figures.missing += 1;
                anomalies.add(
                    "missing",
                    format!("{label}: {what} due at {due} (<= {now}) never fired"),
                );
            }
        }
        if due > now && !list.is_empty() {
            anomalies.add(
                "not-due",
                format!("{label}: {what} due at {due}, after --now {now}, fired"),
            );
        }
    }
    if let (Some(lock), reminder) = (c.locks.first(), c.reminders.first()) {
        if reminder.is_none_or(|r| r.sequence > lock.sequence) {
            anomalies.add(
                "order",
                format!(
                    "{label}: locked at #{} without a reminder before it",
                    lock.sequence
                ),
            );
        }
    }
}

/// Runs the check; returns the JSON verdict and whether it found no anomaly.
pub(crate) async fn run(
    url: &str,
    now: DateTime<Utc>,
    mail_log: Option<&std::path::Path>,
    kills: u64,
) -> Result<(serde_json::Value, bool), String> {
    let started = std::time::Instant::now();
    let db = Db::connect(url, &StoreOptions::default())
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let mut anomalies = Anomalies::default();
    let mut figures = Figures::default();
    let is_countdown_notice = |m: &&OutboxMessage| KINDS.contains(&m.kind.as_str());
    let before = outbox(&db)
        .await
        .map_err(|e| format!("reading the outbox: {e}"))?
        .iter()
        .filter(is_countdown_notice)
        .count() as u64;
    let projected = catch_up(&db, &billing_store::SystemClock)
        .await
        .map_err(|e| format!("the views' catch-up: {e}"))?;
    // Every claim a killed tick held has run out by now (the check models that much time).
    let after_claims = Utc::now() + billing_adapters::outbox::CLAIM + chrono::Duration::seconds(1);
    let delivery = deliver_pending(
        &db,
        &LogMailer,
        &billing_adapters::Clocks {
            billing: std::sync::Arc::new(billing_domain::memory::ManualClock::new(Utc::now())),
            process: std::sync::Arc::new(billing_domain::memory::ManualClock::new(after_claims)),
        },
    )
    .await
    .map_err(|e| format!("delivering the outbox: {e}"))?;
    if delivery.failed > 0 {
        anomalies.add(
            "outbox",
            format!("{} notices could not be delivered", delivery.failed),
        );
    }
    let messages = outbox(&db)
        .await
        .map_err(|e| format!("reading the outbox: {e}"))?;
    let streams = streams(&db, &mut anomalies).await?;
    let deliveries = match mail_log {
        Some(path) => Some(deliveries(path, &messages, kills, &mut anomalies)?),
        None => None,
    };

    // The notices: (workspace, kind, countdown) -> messages.
    let mut notices: BTreeMap<(String, &'static str, u32), Vec<&OutboxMessage>> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut attempts_over_one = 0u64;
    for m in &messages {
        *by_kind.entry(m.kind.clone()).or_default() += 1;
        let Some(kind) = KINDS.iter().find(|k| **k == m.kind) else {
            continue;
        };
        attempts_over_one += u64::from(m.attempts > 1);
        match m.countdown {
            Some(n) => notices
                .entry((m.workspace_id.to_string(), kind, n))
                .or_default()
                .push(m),
            None => anomalies.add(
                "outbox",
                format!(
                    "{}: a {kind} notice (#{}) names no countdown",
                    m.workspace_id, m.sequence
                ),
            ),
        }
    }
    let after = notices.values().map(|v| v.len() as u64).sum::<u64>();
    let (mut notices_missing, mut notices_duplicate, mut notices_unsent) = (0u64, 0u64, 0u64);

    for (workspace, events) in &streams {
        figures.workspaces += 1;
        figures.events += events.len() as u64;
        for (number, c) in countdowns(workspace, events, &mut anomalies) {
            judge(workspace, number, &c, now, &mut figures, &mut anomalies);
            let expected: [(&'static str, Vec<u64>); 4] = [
                (COUNTDOWN_STARTED, vec![c.started_sequence]),
                (
                    COUNTDOWN_REMINDER,
                    c.reminders.iter().map(|f| f.sequence).collect(),
                ),
                (LOCKED, c.locks.iter().map(|f| f.sequence).collect()),
                (UNLOCKED, c.unlocked_sequence.into_iter().collect()),
            ];
            for (kind, sequences) in expected {
                let found = notices
                    .remove(&(workspace.clone(), kind, number))
                    .unwrap_or_default();
                let Some(first) = sequences.first() else {
                    continue;
                };
                match found.as_slice() {
                    [] => {
                        notices_missing += 1;
                        anomalies.add(
                            "notice-missing",
                            format!(
                                "{workspace} countdown {number}: no {kind} notice for #{first}"
                            ),
                        );
                    }
                    [m] => {
                        if m.sequence != *first {
                            anomalies.add(
                                "notice-sequence",
                                format!(
                                    "{workspace} countdown {number}: the {kind} notice is about #{} but the event is #{first}",
                                    m.sequence
                                ),
                            );
                        }
                        if m.sent_at.is_none() {
                            notices_unsent += 1;
                            anomalies.add(
                                "notice-unsent",
                                format!("{workspace} countdown {number}: the {kind} notice was never sent"),
                            );
                        }
                    }
                    more => {
                        notices_duplicate += more.len() as u64 - 1;
                        anomalies.add(
                            "notice-duplicate",
                            format!(
                                "{workspace} countdown {number}: {} {kind} notices",
                                more.len()
                            ),
                        );
                    }
                }
            }
        }
    }
    let notices_orphan = notices.values().map(|v| v.len() as u64).sum::<u64>();
    for ((workspace, kind, number), found) in &notices {
        anomalies.add(
            "notice-orphan",
            format!(
                "{workspace} countdown {number}: {} {kind} notice(s) without their event",
                found.len()
            ),
        );
    }

    let audit = audit(&db, &SitePolicy::builtin()).await?;
    anomalies.add_audit(&audit);

    let ok = anomalies.total == 0;
    let f = &figures;
    let hours = |s: i64| (s as f64 / 3_600.0 * 100.0).round() / 100.0;
    let verdict = json!({
        "deadlines_check": if ok { "ok" } else { "anomalies" },
        "now": now,
        "workspaces": f.workspaces,
        "events": f.events,
        "countdowns": f.countdowns,
        "countdowns_ended": f.countdowns_ended,
        "reminders_due": f.reminders_due,
        "reminders_fired": f.reminders_fired,
        "locks_due": f.locks_due,
        "locks_fired": f.locks_fired,
        "duplicates": f.duplicates,
        "missing": f.missing,
        "early": f.early,
        "reminder_lateness_max_hours": hours(f.reminder_lateness_max_s),
        "lock_lateness_max_hours": hours(f.lock_lateness_max_s),
        "notices_by_kind": by_kind,
        "notices_recorded_by_check_catch_up": after.saturating_sub(before),
        "workspaces_reprojected_by_check": projected,
        "notices_delivered_by_check": delivery.sent,
        "notices_delivered_more_than_once": attempts_over_one,
        "notices_missing": notices_missing,
        "notices_duplicate": notices_duplicate,
        "notices_orphan": notices_orphan,
        "notices_unsent": notices_unsent,
        "deliveries": deliveries,
        "audit": audit,
        "anomalies": anomalies,
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok((verdict, ok))
}

/// What the mail log says about deliveries.
#[derive(Debug, Default, serde::Serialize)]
struct Deliveries {
    /// Deliveries logged.
    logged: u64,
    /// Distinct messages delivered.
    messages: u64,
    /// Messages delivered more than once.
    messages_delivered_twice_or_more: u64,
    /// Deliveries beyond the first of each message.
    redeliveries: u64,
    /// Redeliveries the kills explain (one each).
    redeliveries_allowed: u64,
    /// The most often delivered messages, with how often.
    most_delivered: Vec<(String, u64)>,
}

/// Counts the deliveries `LogMailer` logged (`message_id=<…>`) and judges them: at most one
/// redelivery per kill, and only of messages the outbox holds.
fn deliveries(
    path: &std::path::Path,
    messages: &[OutboxMessage],
    kills: u64,
    anomalies: &mut Anomalies,
) -> Result<Deliveries, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once("message_id=<") else {
            continue;
        };
        let Some((id, _)) = rest.split_once('>') else {
            continue;
        };
        *counts.entry(id).or_default() += 1;
    }
    let known: std::collections::HashSet<String> =
        messages.iter().map(OutboxMessage::message_id).collect();
    for id in counts.keys() {
        if !known.contains(&format!("<{id}>")) {
            anomalies.add(
                "delivered-unknown",
                format!("<{id}> was delivered but is not in the outbox"),
            );
        }
    }
    let mut figures = Deliveries {
        logged: counts.values().sum(),
        messages: counts.len() as u64,
        redeliveries_allowed: kills,
        ..Deliveries::default()
    };
    for n in counts.values() {
        if *n > 1 {
            figures.messages_delivered_twice_or_more += 1;
            figures.redeliveries += n - 1;
        }
    }
    let mut most: Vec<(&str, u64)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    most.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    figures.most_delivered = most
        .iter()
        .take(5)
        .map(|(id, n)| (format!("<{id}>"), *n))
        .collect();
    if figures.redeliveries > kills {
        anomalies.add(
            "delivered-twice",
            format!(
                "{} notices were delivered more than once ({} deliveries too many) after {kills} kills (at most {kills}); e.g. {:?}",
                figures.messages_delivered_twice_or_more,
                figures.redeliveries,
                figures.most_delivered
            ),
        );
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::{ActorId, CountdownReminded, CountdownStarted, WorkspaceLocked};

    fn t(day: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-01-04T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::days(day)
    }

    fn system() -> ActorId {
        ActorId::parse(BILLING_SYSTEM_ACTOR).unwrap()
    }

    fn stream(reminders: &[i64], locks: &[i64]) -> Vec<(u64, WorkspaceEvent)> {
        let mut events = vec![(
            4,
            WorkspaceEvent::CountdownStarted(CountdownStarted {
                at: t(0),
                by: system(),
                countdown: 1,
                deadline: t(14),
                remind_at: t(11),
            }),
        )];
        let mut n = 5;
        for day in reminders {
            events.push((
                n,
                WorkspaceEvent::CountdownReminded(CountdownReminded {
                    at: t(*day),
                    by: system(),
                    countdown: 1,
                    deadline: t(14),
                }),
            ));
            n += 1;
        }
        for day in locks {
            events.push((
                n,
                WorkspaceEvent::WorkspaceLocked(WorkspaceLocked {
                    at: t(*day),
                    by: system(),
                    countdown: 1,
                    deadline: t(14),
                }),
            ));
            n += 1;
        }
        events
    }

    fn verdict(events: &[(u64, WorkspaceEvent)], now: i64) -> (Figures, Anomalies) {
        let mut anomalies = Anomalies::default();
        let mut figures = Figures::default();
        for (n, c) in countdowns("w", events, &mut anomalies) {
            judge("w", n, &c, t(now), &mut figures, &mut anomalies);
        }
        (figures, anomalies)
    }

    #[test]
    fn deadlines_fired_once_when_due_pass() {
        let (f, a) = verdict(&stream(&[11], &[14]), 30);
        assert_eq!(a.total, 0, "{:?}", a.first);
        assert_eq!((f.reminders_due, f.locks_due), (1, 1));
        let (_, a) = verdict(&stream(&[12], &[]), 13);
        assert_eq!(a.total, 0, "{:?}", a.first);
        let (_, a) = verdict(&stream(&[], &[]), 10);
        assert_eq!(a.total, 0, "{:?}", a.first);
    }

    #[test]
    fn every_way_a_deadline_goes_wrong_is_an_anomaly() {
        let kinds = |events: Vec<(u64, WorkspaceEvent)>, now| {
            let (_, a) = verdict(&events, now);
            a.by_kind.keys().copied().collect::<Vec<_>>()
        };
        assert_eq!(kinds(stream(&[11, 12], &[14]), 30), ["duplicate"]);
        assert_eq!(kinds(stream(&[11], &[14, 15]), 30), ["duplicate"]);
        assert_eq!(kinds(stream(&[11], &[]), 30), ["missing"]);
        assert_eq!(kinds(stream(&[], &[]), 12), ["missing"]);
        assert_eq!(kinds(stream(&[10], &[]), 10), ["early", "not-due"]);
        assert_eq!(kinds(stream(&[11], &[13]), 30), ["early"]);
        assert_eq!(kinds(stream(&[], &[14]), 30), ["missing", "order"]);
    }
}
