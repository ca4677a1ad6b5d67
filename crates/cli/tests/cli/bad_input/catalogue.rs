//! The catalogue: a [`Case`] is one bad input and what the binary must make of it;
//! [`check_all`] runs it on a fresh directory and on a prepared store, in human and `--json` mode.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use super::run::{billing, os, snapshot, sqlite_url};

/// A valid head hash (64 lowercase hex digits).
pub(crate) const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The user name the prepared store has registered and bound.
pub(crate) const USER: &str = "acme-finance";

/// Where a case's `--db` points.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Db {
    /// The directory's own store, `billing.db` (fresh: not there yet; prepared: upgraded).
    Store,
    /// A fixed URL (servers that do not answer, malformed URLs).
    Url(&'static str),
    /// A SQLite file in a directory that does not exist.
    MissingDir,
    /// A SQLite URL that names a directory.
    Directory,
    /// A SQLite URL that names a file of noise bytes (not a database).
    Garbage,
}

impl Db {
    /// The URL in `dir`, creating the fixture it needs.
    pub(crate) fn url(self, dir: &Path) -> String {
        match self {
            Db::Store => sqlite_url(&dir.join("billing.db")),
            Db::Url(url) => url.to_owned(),
            Db::MissingDir => sqlite_url(&dir.join("no-such-dir").join("sub").join("billing.db")),
            Db::Directory => {
                let path = dir.join("a-directory.db");
                fs::create_dir_all(&path).unwrap();
                sqlite_url(&path)
            }
            Db::Garbage => {
                let path = dir.join("garbage.db");
                if !path.exists() {
                    let bytes: Vec<u8> = (0..4096u32)
                        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                        .collect();
                    fs::write(&path, bytes).unwrap();
                }
                sqlite_url(&path)
            }
        }
    }
}

/// One bad input and what the binary must make of it.
#[derive(Debug)]
pub(crate) struct Case {
    /// What is wrong, for failure messages.
    pub(crate) what: String,
    /// The arguments after `--db URL`; `{dir}` is replaced by the case's directory.
    pub(crate) args: Vec<OsString>,
    pub(crate) db: Db,
    /// The exit status.
    pub(crate) code: i32,
    /// The `error.code` of the JSON document.
    pub(crate) error: &'static str,
    /// What the message must contain (the field and the value, as the message shows them).
    pub(crate) named: Vec<String>,
    /// What the message must not contain (a password).
    pub(crate) absent: Vec<String>,
    /// The store is opened before the input turns out bad (a file that fails while it is read):
    /// the store file may be created, but the log stays as it was.
    pub(crate) opens_store: bool,
    /// The outcome depends on the workspace's state: checked on the prepared store only.
    pub(crate) prepared_only: bool,
    /// An import: checked on an empty store only (a store holding events refuses any import
    /// before it reads the file).
    pub(crate) fresh_only: bool,
}

pub(crate) fn case(
    what: &str,
    args: &[&str],
    code: i32,
    error: &'static str,
    named: &[&str],
) -> Case {
    Case {
        what: what.to_owned(),
        args: os(args),
        db: Db::Store,
        code,
        error,
        named: named.iter().map(|s| (*s).to_owned()).collect(),
        absent: Vec::new(),
        opens_store: false,
        prepared_only: false,
        fresh_only: false,
    }
}

/// Bad input refused before anything is opened: exit 2, `invalid-value`.
pub(crate) fn invalid(what: &str, args: &[&str], named: &[&str]) -> Case {
    case(what, args, 2, "invalid-value", named)
}

/// Bad usage refused by the argument parser: exit 2, `usage`.
pub(crate) fn usage(what: &str, args: &[&str], named: &[&str]) -> Case {
    case(what, args, 2, "usage", named)
}

/// A refusal by a domain rule: exit 1, the rule's name.
pub(crate) fn refused(what: &str, args: &[&str], rule: &'static str, named: &[&str]) -> Case {
    let mut named: Vec<&str> = named.to_vec();
    named.push(rule);
    case(what, args, 1, rule, &named)
}

impl Case {
    pub(crate) fn db(mut self, db: Db) -> Self {
        self.db = db;
        self
    }

    /// The outcome depends on the workspace's state (an upgraded workspace on `us1`); on a fresh
    /// store an earlier rule refuses the same command (`not-commercial-yet`).
    pub(crate) fn prepared_only(mut self) -> Self {
        self.prepared_only = true;
        self.opens_store = true;
        self
    }

    /// An import that opens the store before it reads: on a store that holds events it is refused
    /// as `not-empty` first, so it is checked on an empty store only.
    pub(crate) fn fresh_only(mut self) -> Self {
        self.fresh_only = true;
        self.opens_store = true;
        self
    }

    pub(crate) fn absent(mut self, text: &str) -> Self {
        self.absent.push(text.to_owned());
        self
    }

    pub(crate) fn os_args(mut self, args: Vec<OsString>) -> Self {
        self.args = args;
        self
    }

    /// The arguments with `{dir}` replaced by `dir`.
    pub(crate) fn args_in(&self, dir: &Path) -> Vec<OsString> {
        self.args
            .iter()
            .map(|a| match a.to_str() {
                Some(s) if s.contains("{dir}") => {
                    OsString::from(s.replace("{dir}", &dir.display().to_string()))
                }
                _ => a.clone(),
            })
            .collect()
    }

    /// `named` with `{dir}` replaced by `dir`.
    pub(crate) fn named_in(&self, dir: &Path) -> Vec<String> {
        self.named
            .iter()
            .map(|n| n.replace("{dir}", &dir.display().to_string()))
            .collect()
    }
}

/// The text a message shows for `value`: the messages quote values the way Rust's `{:?}` does,
/// so a control character appears escaped (`\u{7}`, `\n`), never raw.
pub(crate) fn shown(value: &str) -> String {
    let debug = format!("{value:?}");
    debug[1..debug.len() - 1].to_owned()
}

/// A prepared store: `acme-finance` registered, workspace `acme` upgraded on `us1`.
pub(crate) fn prepared() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("billing.db"));
    for args in [
        &[
            "account",
            "register",
            "--username",
            USER,
            "--email",
            "f@acme.example",
        ][..],
        &["upgrade", "--workspace", "acme", "--site", "us1"],
        &["account", "bind", "--workspace", "acme", "--username", USER],
        &[
            "agreement",
            "accept",
            "--workspace",
            "acme",
            "--version",
            "2024-06",
        ],
    ] {
        let run = billing(dir.path(), &url, &os(args), false);
        assert_eq!(run.code, Some(0), "preparing: billing {args:?}: {run:?}");
    }
    dir
}

/// The store's log as exported (empty when there is no store file).
pub(crate) fn exported(dir: &Path) -> String {
    let db = dir.join("billing.db");
    if !db.exists() {
        return String::new();
    }
    let run = billing(dir, &sqlite_url(&db), &os(&["export"]), false);
    assert_eq!(run.code, Some(0), "export: {run:?}");
    run.stdout
}

/// Checks one run of `case` in `dir` (`json`: with `--json`).
pub(crate) fn check_run(case: &Case, dir: &Path, json: bool) {
    let url = case.db.url(dir);
    let args = case.args_in(dir);
    let named = case.named_in(dir);
    let writes_allowed = case.code == 1 || case.opens_store;
    let log_before = if writes_allowed {
        exported(dir)
    } else {
        String::new()
    };
    let files_before = snapshot(dir);
    let run = billing(dir, &url, &args, json);
    let context = format!(
        "{} — billing --db {url} {args:?}{}: {run:#?}",
        case.what,
        if json { " --json" } else { "" }
    );

    assert!(
        !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
        "panic: {context}"
    );
    assert_eq!(run.code, Some(case.code), "exit status: {context}");

    let message = if json {
        let document: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {context}"));
        assert_eq!(
            document["error"]["code"], case.error,
            "JSON error code: {context}"
        );
        let message = document["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {context}"))
            .to_owned();
        assert!(!message.trim().is_empty(), "empty message: {context}");
        message
    } else {
        assert!(
            run.stdout.is_empty(),
            "an error prints nothing on stdout: {context}"
        );
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with("error: ") || l.starts_with("refused: ")),
            "the message says it is an error: {context}"
        );
        if case.error == "invalid-value" {
            // Values are quoted with their control characters escaped: nothing raw reaches
            // the terminal or a log.
            assert!(
                run.stderr.chars().all(|c| c == '\n' || !c.is_control())
                    && run.stderr.lines().count() == 1,
                "a raw control character in the message: {context}"
            );
        }
        run.stderr.clone()
    };
    for text in &named {
        assert!(
            message.contains(text.as_str()),
            "the message does not name {text:?}: {context}"
        );
    }
    for text in &case.absent {
        assert!(
            !run.stdout.contains(text.as_str()) && !run.stderr.contains(text.as_str()),
            "the output shows {text:?}: {context}"
        );
    }

    // Nothing written.
    if writes_allowed {
        // The store may have been opened (and, fresh, created) but the log is as it was.
        assert_eq!(exported(dir), log_before, "the log changed: {context}");
        let now = snapshot(dir);
        let extra: Vec<_> = now
            .keys()
            .filter(|p| !files_before.contains_key(*p))
            .filter(|p| {
                let name = p.to_string_lossy();
                !matches!(
                    name.as_ref(),
                    "billing.db" | "billing.db-wal" | "billing.db-shm"
                )
            })
            .collect();
        assert!(extra.is_empty(), "files appeared {extra:?}: {context}");
    } else {
        assert_eq!(
            snapshot(dir),
            files_before,
            "the run wrote to its directory (store files included): {context}"
        );
    }
}

/// Runs every case fresh and on a prepared store, in human and JSON mode.
pub(crate) fn check_all(cases: &[Case]) {
    let prepared = prepared();
    let log = exported(prepared.path());
    assert_eq!(log.lines().count(), 4, "the prepared log: {log}");
    for case in cases {
        if case.prepared_only {
            check_run(case, prepared.path(), false);
            check_run(case, prepared.path(), true);
            continue;
        }
        let fresh = tempfile::tempdir().unwrap();
        check_run(case, fresh.path(), false);
        check_run(case, fresh.path(), true);
        if case.code != 1 && !case.opens_store {
            let left: Vec<_> = fs::read_dir(fresh.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with("billing.db"))
                .collect();
            assert!(
                left.is_empty(),
                "{}: a store was created: {left:?}",
                case.what
            );
        }
        check_run(case, prepared.path(), false);
        check_run(case, prepared.path(), true);
    }
    assert_eq!(exported(prepared.path()), log, "the prepared log changed");
}
