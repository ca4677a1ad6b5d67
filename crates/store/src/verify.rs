//! Verifying a log as it streams past: sequences, the hash chain, heads and the aggregate's rules.
//!
//! [`Verifier`] takes events ordered by workspace (byte order of the id) then sequence — the order
//! of the store's streams and of its exports — and keeps only the current workspace's state, so
//! memory stays flat however long the log is. It reports [`Finding`]s and keeps going.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use billing_domain::{SitePolicy, UpgradeStep, Workspace};
use serde::Serialize;
use serde_json::Value;

use crate::chain::GENESIS_HASH;
use crate::record::{decode, DecodeError, DecodedEvent, EventLineRef, RowRef};

/// What kind of problem a finding is (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A line that is not a stored event.
    MalformedLine,
    /// An aggregate or event type this library does not know.
    UnknownEvent,
    /// An event version with no upcaster.
    UnsupportedVersion,
    /// Sequences skip a number (events removed).
    SequenceGap,
    /// A sequence appears twice.
    DuplicateSequence,
    /// Events or workspaces out of order.
    OutOfOrder,
    /// An event's content does not match its hash (content altered).
    HashMismatch,
    /// An event's link to the previous event is wrong (altered, removed or inserted events).
    ChainBroken,
    /// The stream's newest hash is not the recorded/expected head (newest events removed).
    HeadMismatch,
    /// The aggregate's rules refuse this history.
    InvalidTransition,
}

impl FindingCode {
    /// The code as printed (`sequence-gap`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::MalformedLine => "malformed-line",
            FindingCode::UnknownEvent => "unknown-event",
            FindingCode::UnsupportedVersion => "unsupported-version",
            FindingCode::SequenceGap => "sequence-gap",
            FindingCode::DuplicateSequence => "duplicate-sequence",
            FindingCode::OutOfOrder => "out-of-order",
            FindingCode::HashMismatch => "hash-mismatch",
            FindingCode::ChainBroken => "chain-broken",
            FindingCode::HeadMismatch => "head-mismatch",
            FindingCode::InvalidTransition => "invalid-transition",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub code: FindingCode,
    /// The workspace, when known.
    pub workspace: Option<String>,
    /// The event's sequence, when known.
    pub sequence: Option<u64>,
    /// The line number in a file (from 1), when reading a file.
    pub line: Option<u64>,
    /// What exactly is wrong.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(ws) = &self.workspace {
            write!(f, " workspace {ws}")?;
        }
        if let Some(seq) = self.sequence {
            write!(f, " sequence {seq}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What a verified log holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Lines or rows read.
    pub records: u64,
    /// Events that decoded.
    pub events: u64,
    /// Workspaces seen.
    pub workspaces: u64,
    /// Workspaces on the Commercial Plan at the end of their stream.
    pub commercial: u64,
    /// Workspaces per site (those that requested the upgrade).
    pub by_site: BTreeMap<String, u64>,
    /// Commercial workspaces per settlement method.
    pub by_method: BTreeMap<String, u64>,
    /// Findings reported.
    pub findings: u64,
}

/// The newest event of a workspace as the verifier saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    /// The workspace.
    pub workspace: String,
    /// Its last sequence.
    pub sequence: u64,
    /// Its last hash (the head).
    pub hash: String,
    /// Its state after the events that verified.
    pub state: Workspace,
}

struct Current {
    workspace: String,
    last_sequence: u64,
    last_hash: String,
    state: Workspace,
    /// After a structural finding the rules are not checked any more for this workspace: the
    /// history is already known to be broken and every later step would cascade.
    desynced: bool,
}

/// Verifies a log event by event; see the module docs.
pub struct Verifier<'p> {
    policy: Option<&'p SitePolicy>,
    current: Option<Current>,
    expected_heads: HashMap<String, String>,
    summary: Summary,
}

impl<'p> Verifier<'p> {
    /// A verifier that also checks the site-policy rules when `policy` is given.
    pub fn new(policy: Option<&'p SitePolicy>) -> Self {
        Self {
            policy,
            current: None,
            expected_heads: HashMap::new(),
            summary: Summary::default(),
        }
    }

    /// Expects `workspace`'s newest hash to be `hash` (a head kept outside the log). Call before
    /// the workspace's events are pushed.
    pub fn expect_head(&mut self, workspace: impl Into<String>, hash: impl Into<String>) {
        self.expected_heads.insert(workspace.into(), hash.into());
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Verifies one JSON Lines line (`line` is its number, from 1).
    pub fn push_line(&mut self, line: u64, text: &str) -> (Vec<Finding>, Option<StreamEnd>) {
        self.summary.records += 1;
        match serde_json::from_str::<EventLineRef<'_>>(text) {
            Ok(parsed) => {
                let decoded = decode(parsed.row());
                self.push_decoded(Some(line), &parsed.aggregate_id, parsed.sequence, decoded)
            }
            Err(e) => {
                // Name the workspace and sequence when the line is JSON enough to say.
                let loose: Option<Value> = serde_json::from_str(text).ok();
                let field = |k: &str| loose.as_ref().and_then(|v| v.get(k)).cloned();
                let finding = Finding {
                    code: FindingCode::MalformedLine,
                    workspace: field("aggregate_id").and_then(|v| v.as_str().map(str::to_owned)),
                    sequence: field("sequence").and_then(|v| v.as_u64()),
                    line: Some(line),
                    detail: format!("not a stored event: {e}"),
                };
                self.summary.findings += 1;
                if let Some(current) = &mut self.current {
                    if finding.workspace.as_deref() == Some(current.workspace.as_str()) {
                        current.desynced = true;
                    }
                }
                (vec![finding], None)
            }
        }
    }

    /// Verifies one stored row (from a database).
    pub fn push_row(&mut self, row: RowRef<'_>) -> (Vec<Finding>, Option<StreamEnd>) {
        self.summary.records += 1;
        let decoded = decode(row);
        self.push_decoded(None, row.aggregate_id, row.sequence, decoded)
    }

    fn push_decoded(
        &mut self,
        line: Option<u64>,
        workspace: &str,
        sequence: u64,
        decoded: Result<DecodedEvent, DecodeError>,
    ) -> (Vec<Finding>, Option<StreamEnd>) {
        let mut findings = Vec::new();
        let mut ended = None;
        let finding = |code, detail: String| Finding {
            code,
            workspace: Some(workspace.to_owned()),
            sequence: Some(sequence),
            line,
            detail,
        };

        // Which workspace: the same, a later one (finish the current), or an earlier one.
        let same = self
            .current
            .as_ref()
            .map(|c| c.workspace.as_str().cmp(workspace));
        match same {
            Some(std::cmp::Ordering::Greater) => {
                let current = self
                    .current
                    .as_ref()
                    .map(|c| c.workspace.clone())
                    .unwrap_or_default();
                findings.push(finding(
                    FindingCode::OutOfOrder,
                    format!("workspace {workspace} comes after {current}; the log must be ordered by workspace id"),
                ));
                return self.report(findings, None);
            }
            Some(std::cmp::Ordering::Equal) => {}
            Some(std::cmp::Ordering::Less) | None => {
                let (mut end_findings, end) = self.finish_current();
                findings.append(&mut end_findings);
                ended = end;
                self.summary.workspaces += 1;
                self.current = Some(Current {
                    workspace: workspace.to_owned(),
                    last_sequence: 0,
                    last_hash: GENESIS_HASH.to_owned(),
                    state: Workspace::default(),
                    desynced: false,
                });
            }
        }
        let Some(current) = self.current.as_mut() else {
            return self.report(findings, ended);
        };

        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                let code = match e {
                    DecodeError::Malformed(_) => FindingCode::MalformedLine,
                    DecodeError::UnknownEvent(_) => FindingCode::UnknownEvent,
                    DecodeError::UnsupportedVersion(_) => FindingCode::UnsupportedVersion,
                };
                findings.push(finding(code, e.to_string()));
                current.desynced = true;
                if sequence > current.last_sequence {
                    current.last_sequence = sequence;
                }
                return self.report(findings, ended);
            }
        };
        self.summary.events += 1;

        // `sequence <= last` rather than `sequence < last + 1`: a log may claim any u64.
        if sequence <= current.last_sequence {
            let code = if sequence == current.last_sequence {
                FindingCode::DuplicateSequence
            } else {
                FindingCode::OutOfOrder
            };
            findings.push(finding(
                code,
                format!("sequence {sequence} after {}", current.last_sequence),
            ));
            current.desynced = true;
            return self.report(findings, ended);
        }
        let gap = sequence - current.last_sequence > 1;
        if gap {
            findings.push(finding(
                FindingCode::SequenceGap,
                format!(
                    "expected sequence {}, found {sequence}",
                    current.last_sequence + 1
                ),
            ));
            current.desynced = true;
        }
        let meta = &decoded.stored.metadata;
        let hash_ok = decoded.computed_hash == meta.hash;
        if !hash_ok {
            findings.push(finding(
                FindingCode::HashMismatch,
                format!(
                    "content hashes to {} but the event claims {}",
                    decoded.computed_hash, meta.hash
                ),
            ));
            current.desynced = true;
        }
        // After a gap the link cannot be checked: the event it points to is missing.
        if !gap && meta.prev_hash != current.last_hash {
            findings.push(finding(
                FindingCode::ChainBroken,
                format!(
                    "prev_hash {} does not link to the previous event's hash {}",
                    meta.prev_hash, current.last_hash
                ),
            ));
            current.desynced = true;
        }
        current.last_sequence = sequence;
        current.last_hash = meta.hash.clone();

        if !current.desynced {
            let event = &decoded.stored.event;
            let checked = match self.policy {
                Some(policy) => current.state.check_policy(event, policy),
                None => Ok(()),
            }
            .and_then(|()| current.state.evolve(event));
            match checked {
                Ok(next) => current.state = next,
                Err(e) => {
                    findings.push(finding(FindingCode::InvalidTransition, e.to_string()));
                    current.desynced = true;
                }
            }
        }
        self.report(findings, ended)
    }

    fn report(
        &mut self,
        findings: Vec<Finding>,
        ended: Option<StreamEnd>,
    ) -> (Vec<Finding>, Option<StreamEnd>) {
        self.summary.findings += findings.len() as u64;
        (findings, ended)
    }

    fn finish_current(&mut self) -> (Vec<Finding>, Option<StreamEnd>) {
        let Some(current) = self.current.take() else {
            return (Vec::new(), None);
        };
        let mut findings = Vec::new();
        if let Some(expected) = self.expected_heads.remove(&current.workspace) {
            if expected != current.last_hash {
                findings.push(Finding {
                    code: FindingCode::HeadMismatch,
                    workspace: Some(current.workspace.clone()),
                    sequence: Some(current.last_sequence),
                    line: None,
                    detail: format!(
                        "the stream ends at sequence {} with hash {}, but its head is {expected}: newest events are missing or altered",
                        current.last_sequence, current.last_hash
                    ),
                });
            }
        }
        if !current.desynced && current.state.upgrade_step() == UpgradeStep::AgreementAccepted {
            findings.push(Finding {
                code: FindingCode::InvalidTransition,
                workspace: Some(current.workspace.clone()),
                sequence: Some(current.last_sequence),
                line: None,
                detail: "the stream ends with AgreementAccepted but no PlanUpgraded".into(),
            });
        }
        if let Some(site) = current.state.site() {
            *self.summary.by_site.entry(site.to_string()).or_default() += 1;
        }
        if let Some(settlement) = current.state.settlement() {
            self.summary.commercial += 1;
            *self
                .summary
                .by_method
                .entry(settlement.method().to_string())
                .or_default() += 1;
        }
        let end = StreamEnd {
            workspace: current.workspace,
            sequence: current.last_sequence,
            hash: current.last_hash,
            state: current.state,
        };
        (findings, Some(end))
    }

    /// Ends the log: finishes the last workspace and reports expected heads of workspaces that
    /// never appeared.
    pub fn finish(mut self) -> (Vec<Finding>, Option<StreamEnd>, Summary) {
        let (mut findings, end) = self.finish_current();
        let mut missing: Vec<_> = self.expected_heads.drain().collect();
        missing.sort();
        for (workspace, hash) in missing {
            findings.push(Finding {
                code: FindingCode::HeadMismatch,
                workspace: Some(workspace),
                sequence: None,
                line: None,
                detail: format!("the head is {hash} but the log holds no events of this workspace"),
            });
        }
        self.summary.findings += findings.len() as u64;
        (findings, end, self.summary)
    }
}
