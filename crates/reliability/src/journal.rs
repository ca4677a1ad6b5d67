//! The side file of the load generator: one line per command sent and one per outcome, written
//! straight to the file (no user-space buffer), so every line written survives a SIGKILL of the
//! process.
//!
//! ```text
//! sent <command_id> <workspace> <json of the command>
//! ack <command_id> <workspace> ok <first_seq> <last_seq> [replayed]
//! ack <command_id> <workspace> refused <rule code>
//! fail <command_id> <workspace> <message>
//! ```
//!
//! A `sent` line is written before the command is executed, an `ack` after its outcome; a `fail`
//! line records that the generator gave up on a command (it counts as unacknowledged). A last line
//! without its newline is a write torn by the kill: it is ignored (counted).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use billing_domain::WorkspaceCommand;

/// Appends journal lines to a file, one `write` per line.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    file: Mutex<File>,
}

impl JournalWriter {
    /// Opens (creating or appending to) the journal at `path`.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    fn line(&self, text: &str) -> std::io::Result<()> {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(line.as_bytes())
    }

    /// Records that `command` is about to be executed on `workspace`.
    pub(crate) fn sent(&self, workspace: &str, command: &WorkspaceCommand) -> std::io::Result<()> {
        let json = serde_json::to_string(command).map_err(std::io::Error::other)?;
        self.line(&format!("sent {} {workspace} {json}", command.command_id))
    }

    /// Records that the command wrote events `first..=last`.
    pub(crate) fn ack_ok(
        &self,
        workspace: &str,
        command_id: &str,
        first: u64,
        last: u64,
        replayed: bool,
    ) -> std::io::Result<()> {
        let flag = if replayed { " replayed" } else { "" };
        self.line(&format!(
            "ack {command_id} {workspace} ok {first} {last}{flag}"
        ))
    }

    /// Records that a rule refused the command.
    pub(crate) fn ack_refused(
        &self,
        workspace: &str,
        command_id: &str,
        code: &str,
    ) -> std::io::Result<()> {
        self.line(&format!("ack {command_id} {workspace} refused {code}"))
    }

    /// Records that the generator gave up on the command.
    pub(crate) fn fail(
        &self,
        workspace: &str,
        command_id: &str,
        message: &str,
    ) -> std::io::Result<()> {
        let message = message.replace(['\n', '\r'], " ");
        self.line(&format!("fail {command_id} {workspace} {message}"))
    }
}

/// The outcome a journal acknowledges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ack {
    /// The command wrote events `first..=last`.
    Ok {
        /// First sequence written.
        first: u64,
        /// Last sequence written.
        last: u64,
        /// Whether the outcome was a replay of an earlier execution.
        replayed: bool,
    },
    /// A rule refused the command.
    Refused {
        /// The rule's code.
        code: String,
    },
}

/// One parsed journal line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `sent`.
    Sent {
        /// The command id.
        command_id: String,
        /// The workspace.
        workspace: String,
        /// The command's JSON, as written.
        json: String,
    },
    /// `ack`.
    Ack {
        /// The command id.
        command_id: String,
        /// The workspace.
        workspace: String,
        /// The outcome.
        ack: Ack,
    },
    /// `fail`.
    Fail {
        /// The command id.
        command_id: String,
        /// The workspace.
        workspace: String,
    },
}

/// Parses one complete line.
pub(crate) fn parse_line(line: &str) -> Result<Entry, String> {
    let mut head = line.splitn(4, ' ');
    let kind = head.next().unwrap_or_default();
    let (Some(command_id), Some(workspace)) = (head.next(), head.next()) else {
        return Err(format!("too few fields: {line:?}"));
    };
    if command_id.is_empty() || workspace.is_empty() {
        return Err(format!("empty command id or workspace: {line:?}"));
    }
    let rest = head.next().unwrap_or_default();
    let (command_id, workspace) = (command_id.to_owned(), workspace.to_owned());
    match kind {
        "sent" => {
            if rest.is_empty() {
                return Err(format!("sent without a command: {line:?}"));
            }
            Ok(Entry::Sent {
                command_id,
                workspace,
                json: rest.to_owned(),
            })
        }
        "fail" => Ok(Entry::Fail {
            command_id,
            workspace,
        }),
        "ack" => {
            let fields: Vec<&str> = rest.split(' ').collect();
            let ack = match fields.as_slice() {
                ["ok", first, last, flags @ ..] => {
                    let number = |s: &str| {
                        s.parse::<u64>()
                            .map_err(|e| format!("bad sequence {s:?} ({e}): {line:?}"))
                    };
                    let (first, last) = (number(first)?, number(last)?);
                    if first == 0 || last < first {
                        return Err(format!("bad sequence range {first}..{last}: {line:?}"));
                    }
                    let replayed = match flags {
                        [] => false,
                        ["replayed"] => true,
                        _ => return Err(format!("unknown ack flags {flags:?}: {line:?}")),
                    };
                    Ack::Ok {
                        first,
                        last,
                        replayed,
                    }
                }
                ["refused", code] if !code.is_empty() => Ack::Refused {
                    code: (*code).to_owned(),
                },
                _ => return Err(format!("bad ack: {line:?}")),
            };
            Ok(Entry::Ack {
                command_id,
                workspace,
                ack,
            })
        }
        _ => Err(format!("unknown line kind {kind:?}: {line:?}")),
    }
}

/// A command as the journals tell it.
#[derive(Clone, Debug)]
pub(crate) struct Sent {
    /// The workspace.
    pub(crate) workspace: String,
    /// The command.
    pub(crate) command: WorkspaceCommand,
    /// The acknowledged outcome, if any.
    pub(crate) ack: Option<Ack>,
    /// Whether a `fail` line was written for it.
    pub(crate) failed: bool,
}

/// Everything the journals say, merged.
#[derive(Debug, Default)]
pub(crate) struct Journals {
    /// Every sent command, by command id.
    pub(crate) commands: BTreeMap<String, Sent>,
    /// Complete lines read.
    pub(crate) lines: u64,
    /// Last lines without their newline (torn by a kill), ignored.
    pub(crate) torn: u64,
    /// Problems with the journals themselves (each is an anomaly).
    pub(crate) problems: Vec<String>,
    /// Outcomes read, matched to their commands by [`Journals::finish`].
    pending: Vec<PendingOutcome>,
}

/// An outcome line waiting for [`Journals::finish`]: where it was, the command id, the
/// workspace, and the outcome (`None` for `fail`).
type PendingOutcome = (String, usize, String, String, Option<Ack>);

impl Journals {
    /// Reads and merges journal files.
    pub(crate) fn read(paths: &[std::path::PathBuf]) -> std::io::Result<Self> {
        let mut journals = Self::default();
        for path in paths {
            let text = std::fs::read(path)?;
            journals.add_text(&path.display().to_string(), &String::from_utf8_lossy(&text));
        }
        journals.finish();
        Ok(journals)
    }

    /// Adds one journal's text (`name` only labels problems). Call [`Journals::finish`] after
    /// the last one.
    pub(crate) fn add_text(&mut self, name: &str, text: &str) {
        // Everything up to the last newline is complete; anything after it was torn.
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        if complete.len() < text.len() {
            self.torn += 1;
        }
        for (n, line) in complete.split_terminator('\n').enumerate() {
            if line.is_empty() {
                self.problems.push(format!("{name}:{}: empty line", n + 1));
                continue;
            }
            self.lines += 1;
            match parse_line(line) {
                Err(e) => self.problems.push(format!("{name}:{}: {e}", n + 1)),
                Ok(Entry::Sent {
                    command_id,
                    workspace,
                    json,
                }) => {
                    let command: WorkspaceCommand = match serde_json::from_str(&json) {
                        Ok(c) => c,
                        Err(e) => {
                            self.problems.push(format!(
                                "{name}:{}: command {command_id}: bad JSON ({e})",
                                n + 1
                            ));
                            continue;
                        }
                    };
                    if command.command_id.as_str() != command_id {
                        self.problems.push(format!(
                            "{name}:{}: line names command {command_id} but its JSON is {}",
                            n + 1,
                            command.command_id
                        ));
                        continue;
                    }
                    match self.commands.get(&command_id) {
                        Some(existing)
                            if existing.workspace != workspace || existing.command != command =>
                        {
                            self.problems.push(format!(
                                "{name}:{}: command id {command_id} sent again with different content",
                                n + 1
                            ));
                        }
                        Some(_) => {}
                        None => {
                            self.commands.insert(
                                command_id,
                                Sent {
                                    workspace,
                                    command,
                                    ack: None,
                                    failed: false,
                                },
                            );
                        }
                    }
                }
                Ok(Entry::Ack {
                    command_id,
                    workspace,
                    ack,
                }) => self
                    .pending
                    .push((name.to_owned(), n + 1, command_id, workspace, Some(ack))),
                Ok(Entry::Fail {
                    command_id,
                    workspace,
                }) => self
                    .pending
                    .push((name.to_owned(), n + 1, command_id, workspace, None)),
            }
        }
    }

    /// Matches every outcome read to its command; call after the last journal.
    pub(crate) fn finish(&mut self) {
        for (name, line, command_id, workspace, ack) in std::mem::take(&mut self.pending) {
            let Some(sent) = self.commands.get_mut(&command_id) else {
                self.problems.push(format!(
                    "{name}:{line}: outcome of command {command_id}, which was never sent"
                ));
                continue;
            };
            if sent.workspace != workspace {
                self.problems.push(format!(
                    "{name}:{line}: outcome of command {command_id} names workspace {workspace}, sent to {}",
                    sent.workspace
                ));
                continue;
            }
            match (ack, &sent.ack) {
                (None, _) => sent.failed = true,
                (Some(ack), None) => sent.ack = Some(ack),
                (Some(ack), Some(earlier)) => {
                    if !same_outcome(&ack, earlier) {
                        self.problems.push(format!(
                            "{name}:{line}: command {command_id} acknowledged twice with different outcomes ({earlier:?}, then {ack:?})"
                        ));
                    }
                }
            }
        }
    }

    /// Commands sent but never acknowledged.
    pub(crate) fn unacknowledged(&self) -> impl Iterator<Item = (&String, &Sent)> {
        self.commands.iter().filter(|(_, s)| s.ack.is_none())
    }
}

/// Two acknowledgements of one command agree (a replayed ok and the original ok are the same
/// outcome).
fn same_outcome(a: &Ack, b: &Ack) -> bool {
    match (a, b) {
        (
            Ack::Ok {
                first: f1,
                last: l1,
                ..
            },
            Ack::Ok {
                first: f2,
                last: l2,
                ..
            },
        ) => f1 == f2 && l1 == l2,
        (Ack::Refused { .. }, Ack::Refused { .. }) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::{Action, Actor, ActorId, ExternalId, Role, SiteId};

    fn command(id: &str) -> WorkspaceCommand {
        WorkspaceCommand::new(
            ExternalId::parse(id).unwrap(),
            Actor::new(ActorId::parse("owner").unwrap(), Role::Owner),
            Action::RequestUpgrade {
                site: SiteId::parse("cn1").unwrap(),
            },
        )
    }

    fn sent_line(id: &str, ws: &str) -> String {
        format!(
            "sent {id} {ws} {}",
            serde_json::to_string(&command(id)).unwrap()
        )
    }

    #[test]
    fn lines_parse() {
        assert_eq!(
            parse_line("ack c1 w1 ok 3 4").unwrap(),
            Entry::Ack {
                command_id: "c1".into(),
                workspace: "w1".into(),
                ack: Ack::Ok {
                    first: 3,
                    last: 4,
                    replayed: false
                }
            }
        );
        assert_eq!(
            parse_line("ack c1 w1 ok 3 3 replayed").unwrap(),
            Entry::Ack {
                command_id: "c1".into(),
                workspace: "w1".into(),
                ack: Ack::Ok {
                    first: 3,
                    last: 3,
                    replayed: true
                }
            }
        );
        assert_eq!(
            parse_line("ack c1 w1 refused unknown-user-name").unwrap(),
            Entry::Ack {
                command_id: "c1".into(),
                workspace: "w1".into(),
                ack: Ack::Refused {
                    code: "unknown-user-name".into()
                }
            }
        );
        assert!(matches!(
            parse_line("fail c1 w1 store unavailable: gone"),
            Ok(Entry::Fail { .. })
        ));
        for bad in [
            "ack c1 w1 ok 4 3",
            "ack c1 w1 ok 0 1",
            "ack c1 w1 ok x 1",
            "ack c1 w1 ok 1 1 twice",
            "ack c1 w1 refused",
            "ack c1 w1 maybe",
            "sent c1 w1",
            "hello c1 w1 x",
            "ack c1",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn journals_merge_and_find_the_unacknowledged() {
        let mut j = Journals::default();
        let text = format!(
            "{}\nack c1 w1 ok 1 1\n{}\nack c2 w2 refused user-name-taken\n{}\n",
            sent_line("c1", "w1"),
            sent_line("c2", "w2"),
            sent_line("c3", "w3"),
        );
        j.add_text("a", &text);
        // A second journal re-sends c3 and acknowledges it, and tears its last line.
        let text = format!(
            "{}\nack c3 w3 ok 2 3 replayed\nack c4 w",
            sent_line("c3", "w3")
        );
        j.add_text("b", &text);
        j.finish();
        assert!(j.problems.is_empty(), "{:?}", j.problems);
        assert_eq!(j.commands.len(), 3);
        assert_eq!(j.torn, 1);
        assert_eq!(j.lines, 7);
        assert_eq!(j.unacknowledged().count(), 0);
        assert_eq!(
            j.commands["c3"].ack,
            Some(Ack::Ok {
                first: 2,
                last: 3,
                replayed: true
            })
        );
    }

    #[test]
    fn journal_problems_are_reported() {
        let mut j = Journals::default();
        let text = format!(
            "{}\nack c1 w1 ok 1 1\nack c1 w1 ok 1 2\nack c9 w1 ok 1 1\nack c1 w2 ok 1 1\nnonsense\n",
            sent_line("c1", "w1")
        );
        j.add_text("a", &text);
        j.finish();
        assert_eq!(j.problems.len(), 4, "{:?}", j.problems);
    }

    #[test]
    fn a_sent_line_whose_ack_was_torn_stays_unacknowledged() {
        let mut j = Journals::default();
        j.add_text("a", &format!("{}\nack c1 w1 o", sent_line("c1", "w1")));
        j.finish();
        assert_eq!(j.unacknowledged().count(), 1);
        assert_eq!(j.torn, 1);
        assert!(j.problems.is_empty());
    }

    #[test]
    fn the_writer_writes_what_the_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let w = JournalWriter::open(&path).unwrap();
        w.sent("w1", &command("c1")).unwrap();
        w.ack_ok("w1", "c1", 1, 1, false).unwrap();
        w.sent("w1", &command("c2")).unwrap();
        w.ack_refused("w1", "c2", "upgrade-already-requested")
            .unwrap();
        w.sent("w1", &command("c3")).unwrap();
        w.fail("w1", "c3", "gave up\nafter a while").unwrap();
        let j = Journals::read(&[path]).unwrap();
        assert!(j.problems.is_empty(), "{:?}", j.problems);
        assert_eq!(j.lines, 6);
        let unacked: Vec<_> = j.unacknowledged().map(|(id, _)| id.clone()).collect();
        assert_eq!(unacked, vec!["c3".to_owned()]);
        assert!(j.commands["c3"].failed);
    }
}
