//! Valid JSON Lines logs of any size, written with the store's own encoding.
//!
//! Each line is what `billing export` writes for an event the store appended: the payload is the
//! event as `serde_json` writes it (canonical, since event fields are in byte order), the metadata
//! is the canonical string object the store builds (actor, role, command hash and id, times,
//! `prev_hash`, `hash`), and the hash is [`event_hash_of_canonical`] chained from
//! [`GENESIS_HASH`]. Workspaces follow the documented flow — request, bind, accept (which writes
//! `AgreementAccepted` and `PlanUpgraded`) — and every fourth one on a site with a cloud method
//! then changes its settlement to that method ([`write_log_with`] can stop every n-th workspace
//! after its binding instead, leaving it mid-flow). So the file passes
//! [`billing_store::audit::audit_lines`] with no findings, and imports into an empty store.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use billing_domain::{
    AccountBound, Action, Actor, ActorId, AgreementAccepted, AgreementVersion, CloudAccount,
    DomainError, ExternalId, MethodId, PlanUpgraded, Role, Settlement, SettlementChanged, SiteId,
    UpgradeRequested, UserName, WorkspaceCommand, WorkspaceEvent, WorkspaceId,
};
use billing_store::chain::{event_hash_of_canonical, GENESIS_HASH};
use billing_store::record::{EventLine, MetadataText, RowRef, AGGREGATE_TYPE};
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::value::RawValue;

/// What [`write_log`] wrote.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Log {
    /// Lines (events).
    pub(crate) events: u64,
    /// Workspaces.
    pub(crate) workspaces: u64,
    /// File size.
    pub(crate) bytes: u64,
}

/// How a generated log is shaped, beyond its size.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Shape {
    /// Every n-th workspace (number `w` with `w % n == n - 1`) stops after its binding, as if
    /// its owner had not accepted the agreement yet; 0 for none.
    pub(crate) bound_only_every: u64,
}

impl Shape {
    /// Whether generated workspace number `w` stops after its binding.
    pub(crate) fn bound_only(&self, w: u64) -> bool {
        self.bound_only_every > 0 && w % self.bound_only_every == self.bound_only_every - 1
    }
}

/// The id of generated workspace number `w`.
pub(crate) fn workspace_id(w: u64) -> String {
    format!("ws-{w:09}")
}

/// Sites the generated workspaces cycle through, with the cloud method each may switch to and
/// whether that method needs a marketplace instance id (as `sites.json` says).
const SITES: [(&str, Option<(&str, bool)>); 5] = [
    ("us1", Some(("aws", false))),
    ("cn1", Some(("alibaba-cloud", true))),
    ("cn4", None),
    ("eu1", Some(("aws", false))),
    ("cn2", Some(("aws", false))),
];

/// One command of a generated workspace and the events it wrote.
struct Step {
    action: Action,
    events: Vec<WorkspaceEvent>,
}

/// The commands and events of generated workspace number `w`: the documented flow, plus a
/// settlement change for every fourth workspace on a site with a cloud method.
fn workspace_steps(w: u64) -> Result<(WorkspaceId, Actor, Vec<Step>), DomainError> {
    let id = WorkspaceId::parse(&workspace_id(w))?;
    let by = ActorId::parse("alice")?;
    let actor = Actor::new(by.clone(), Role::Owner);
    let (site_name, cloud) = SITES[(w % SITES.len() as u64) as usize];
    let site = SiteId::parse(site_name)?;
    let user_name = UserName::parse(&format!("fin-{w:09}"))?;
    let version = AgreementVersion::parse("2024-06")?;
    // One workspace a second from 2026-01-05, each flow a few minutes long.
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        + Duration::seconds(i64::try_from(w).unwrap_or(i64::MAX / 2) % 10_000_000);
    let at = |minutes: i64| start + Duration::minutes(minutes);
    let enterprise = Settlement::Enterprise {
        user_name: user_name.clone(),
    };
    let mut steps = vec![
        Step {
            action: Action::RequestUpgrade { site: site.clone() },
            events: vec![WorkspaceEvent::UpgradeRequested(UpgradeRequested {
                at: at(0),
                by: by.clone(),
                site: site.clone(),
            })],
        },
        Step {
            action: Action::BindAccount {
                user_name: user_name.clone(),
            },
            events: vec![WorkspaceEvent::AccountBound(AccountBound {
                account_id: ExternalId::parse(&format!("ec-{w:09}"))?,
                at: at(2),
                by: by.clone(),
                newly_registered: false,
                user_name: user_name.clone(),
            })],
        },
        Step {
            action: Action::AcceptAgreement {
                version: version.clone(),
            },
            events: vec![
                WorkspaceEvent::AgreementAccepted(AgreementAccepted {
                    agreement_version: version.clone(),
                    at: at(5),
                    by: by.clone(),
                }),
                WorkspaceEvent::PlanUpgraded(PlanUpgraded {
                    agreement_version: version,
                    at: at(5),
                    by: by.clone(),
                    settlement: enterprise.clone(),
                    site,
                }),
            ],
        },
    ];
    if let (Some((method, needs_instance)), 1) = (cloud, w % 4) {
        let method = MethodId::parse(method)?;
        let account = CloudAccount {
            account_id: ExternalId::parse(&format!("{w:012}"))?,
            instance_id: if needs_instance {
                Some(ExternalId::parse(&format!("i-{w:09}"))?)
            } else {
                None
            },
        };
        steps.push(Step {
            action: Action::ChangeSettlement(billing_domain::SettlementRequest::of(
                method.clone(),
                Some(account.clone()),
            )),
            events: vec![WorkspaceEvent::SettlementChanged(SettlementChanged {
                // Some weeks after the upgrade (the first change has no monthly limit).
                at: at(60 * 24 * 40),
                by,
                from: enterprise,
                reason: billing_domain::ChangeReason::OwnerRequest,
                to: Settlement::Cloud { account, method },
            })],
        });
    }
    Ok((id, actor, steps))
}

/// How many of a workspace's `full` events to write when `left` events remain to be written:
/// all of them if they fit, else a prefix that is still a valid history (a stream may stop
/// after the request or the binding, but not between `AgreementAccepted` and `PlanUpgraded`).
fn events_to_write(full: u64, left: u64) -> u64 {
    match left {
        l if l >= full => full,
        l if l >= 4 => 4,
        3 => 2,
        l => l,
    }
}

/// A timestamp exactly as serde writes `DateTime<Utc>` (and as the store writes metadata).
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Writes a valid log of exactly `events` events to `path` (see the module docs).
///
/// # Errors
/// The file cannot be written, or an event cannot be encoded (a bug: all values are valid).
pub(crate) fn write_log(path: &Path, events: u64) -> Result<Log, String> {
    write_log_with(path, events, Shape::default())
}

/// [`write_log`] with some workspaces stopped mid-flow as `shape` says.
///
/// # Errors
/// As [`write_log`].
pub(crate) fn write_log_with(path: &Path, events: u64, shape: Shape) -> Result<Log, String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut written = 0u64;
    let mut workspaces = 0u64;
    let mut bytes = 0u64;
    let mut line_buf: Vec<u8> = Vec::with_capacity(2048);
    while written < events {
        let (id, actor, mut steps) = workspace_steps(workspaces).map_err(|e| e.to_string())?;
        if shape.bound_only(workspaces) {
            // The request and the binding: one event each.
            steps.truncate(2);
        }
        let full: u64 = steps.iter().map(|s| s.events.len() as u64).sum();
        let mut keep = events_to_write(full, events - written);
        workspaces += 1;
        let mut prev = GENESIS_HASH.to_owned();
        let mut sequence = 0u64;
        let actor_id = actor.id.as_str();
        let actor_role = actor.role.as_str();
        for (i, step) in steps.into_iter().enumerate() {
            if keep == 0 {
                break;
            }
            let command = WorkspaceCommand::new(
                ExternalId::parse(&format!("{id}-{i}")).map_err(|e| e.to_string())?,
                actor.clone(),
                step.action,
            );
            let command_hash = billing_store::command_hash(&id, &command);
            let command_id = command.command_id.as_str();
            for event in step.events {
                if keep == 0 {
                    break;
                }
                keep -= 1;
                sequence += 1;
                // Event structs list their fields in byte order: this is canonical JSON.
                let payload = serde_json::to_string(&event).map_err(|e| e.to_string())?;
                let occurred = timestamp(event.occurred_at());
                let mut text = MetadataText {
                    actor_id: Cow::Borrowed(actor_id),
                    actor_role: Cow::Borrowed(actor_role),
                    command_hash: Cow::Borrowed(&command_hash),
                    command_id: Cow::Borrowed(command_id),
                    hash: Cow::Borrowed(""),
                    occurred_at: Cow::Borrowed(&occurred),
                    prev_hash: Cow::Borrowed(&prev),
                    recorded_at: Cow::Borrowed(&occurred),
                };
                let mut without_hash = String::with_capacity(400);
                text.write(false, &mut without_hash);
                let hash = event_hash_of_canonical(RowRef {
                    aggregate_type: AGGREGATE_TYPE,
                    aggregate_id: id.as_str(),
                    sequence,
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: &payload,
                    metadata: &without_hash,
                });
                text.hash = Cow::Borrowed(&hash);
                let mut metadata = String::with_capacity(without_hash.len() + 80);
                text.write(true, &mut metadata);
                let raw = |text: String| RawValue::from_string(text).map_err(|e| e.to_string());
                let line = EventLine {
                    aggregate_type: AGGREGATE_TYPE.to_owned(),
                    aggregate_id: id.to_string(),
                    sequence,
                    event_type: event.event_type().to_owned(),
                    event_version: event.event_version().to_owned(),
                    payload: raw(payload)?,
                    metadata: raw(metadata)?,
                    position: None,
                };
                line_buf.clear();
                serde_json::to_writer(&mut line_buf, &line).map_err(|e| e.to_string())?;
                line_buf.push(b'\n');
                out.write_all(&line_buf).map_err(io)?;
                bytes += line_buf.len() as u64;
                written += 1;
                prev = hash;
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(Log {
        events: written,
        workspaces,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::SitePolicy;
    use billing_store::audit::{audit_lines, AuditOptions};

    #[test]
    fn a_prefix_never_stops_between_acceptance_and_upgrade() {
        for full in [4, 5] {
            for left in 1..10 {
                let n = events_to_write(full, left);
                assert!(n <= left && n <= full);
                assert_ne!(n, 3, "full {full}, left {left}");
                assert!(n >= 1);
            }
        }
    }

    #[test]
    fn generated_logs_audit_clean_at_every_size() {
        let dir = tempfile::tempdir().unwrap();
        for events in [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 57, 200] {
            let path = dir.path().join(format!("log-{events}.jsonl"));
            let log = write_log(&path, events).unwrap();
            assert_eq!(log.events, events);
            let mut findings = Vec::new();
            let summary = audit_lines(
                std::io::BufReader::new(File::open(&path).unwrap()),
                Some(&SitePolicy::builtin()),
                &AuditOptions::default(),
                |f| findings.push(f.to_string()),
                |_| {},
            )
            .unwrap();
            assert_eq!(findings, Vec::<String>::new(), "{events} events");
            assert_eq!(summary.events, events);
            assert_eq!(summary.workspaces, log.workspaces);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), log.bytes);
        }
    }

    #[test]
    fn logs_with_workspaces_stopped_after_binding_audit_clean() {
        let dir = tempfile::tempdir().unwrap();
        let shape = Shape {
            bound_only_every: 4,
        };
        for events in [1, 5, 9, 10, 11, 200] {
            let path = dir.path().join(format!("log-{events}.jsonl"));
            let log = write_log_with(&path, events, shape).unwrap();
            assert_eq!(log.events, events);
            let mut findings = Vec::new();
            audit_lines(
                std::io::BufReader::new(File::open(&path).unwrap()),
                Some(&SitePolicy::builtin()),
                &AuditOptions::default(),
                |f| findings.push(f.to_string()),
                |_| {},
            )
            .unwrap();
            assert_eq!(findings, Vec::<String>::new(), "{events} events");
            // Workspace 3 stops after its binding: two events, the last one `AccountBound`.
            if events >= 200 {
                let text = std::fs::read_to_string(&path).unwrap();
                let stream: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(&workspace_id(3)))
                    .collect();
                assert_eq!(stream.len(), 2);
                assert!(stream[1].contains("AccountBound"), "{}", stream[1]);
            }
        }
    }
}
