//! The bad-input catalogue of the `billing` binary (issue 5, "Hostile input"): odd user names,
//! workspace ids with quotes, SQL metacharacters and control characters, unknown sites and
//! methods, malformed times, versions, roles, e-mails and heads, unreadable files, database URLs
//! that are malformed or do not answer.
//!
//! Every case runs four times — on a fresh directory (no store yet) and on a prepared store (an
//! upgraded workspace), each in human and in `--json` mode; a refusal that depends on the
//! workspace's state runs on the prepared store only, an import on an empty store only — and
//! must:
//! - exit with the documented status (SPEC §7: 1 only for a rule refusal, 2 for bad input or an
//!   unreadable file, 3 for a store that is unavailable), never panic;
//! - say so clearly: the message names the field and the value (on stderr, or as the `error`
//!   object of the JSON document on stdout);
//! - write nothing: for statuses 2 and 3 the working directory (store files included) is byte for
//!   byte what it was, so a fresh store is not even created; where the store had to be opened
//!   (a rule refusal, a file that fails only while it is read) the exported log is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long one run of the binary may take before the test calls it hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A valid head hash (64 lowercase hex digits).
const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The user name the prepared store has registered and bound.
const USER: &str = "acme-finance";

// ---------------------------------------------------------------------------------------------
// Running the binary

/// One run of the binary.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `billing --db URL ARGS…` in `cwd`, with output captured in files (no pipe can fill up)
/// and a time limit (a hang fails the test instead of stalling it).
fn billing(cwd: &Path, db: &str, args: &[OsString], json: bool) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_billing"));
    command
        .arg("--db")
        .arg(db)
        .args(args)
        .current_dir(cwd)
        .env_remove("BILLING_DATABASE_URL")
        .env_remove("BILLING_EXPENSE_CENTER_URL")
        .env_remove("BILLING_LOG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap());
    if json {
        command.arg("--json");
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("billing {args:?} (--db {db}) did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&fs::read(&stdout_path).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&stderr_path).unwrap()).into_owned(),
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Every file under `dir` with its content (directories as `None`), to prove a run wrote nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let relative = entry.path().strip_prefix(dir).unwrap().to_path_buf();
            if kind.is_dir() {
                all.insert(relative, None);
                stack.push(entry.path());
            } else {
                // Unreadable files (a chmod 000 fixture) are compared by size and mtime only.
                let content = fs::read(entry.path()).unwrap_or_else(|_| {
                    let meta = entry.metadata().ok();
                    let seen = meta.map(|m| (m.len(), m.modified().ok()));
                    format!("{seen:?}").into_bytes()
                });
                all.insert(relative, Some(content));
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// The catalogue

/// Where a case's `--db` points.
#[derive(Clone, Copy, Debug)]
enum Db {
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
    fn url(self, dir: &Path) -> String {
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
struct Case {
    /// What is wrong, for failure messages.
    what: String,
    /// The arguments after `--db URL`; `{dir}` is replaced by the case's directory.
    args: Vec<OsString>,
    db: Db,
    /// The exit status.
    code: i32,
    /// The `error.code` of the JSON document.
    error: &'static str,
    /// What the message must contain (the field and the value, as the message shows them).
    named: Vec<String>,
    /// What the message must not contain (a password).
    absent: Vec<String>,
    /// The store is opened before the input turns out bad (a file that fails while it is read):
    /// the store file may be created, but the log stays as it was.
    opens_store: bool,
    /// The outcome depends on the workspace's state: checked on the prepared store only.
    prepared_only: bool,
    /// An import: checked on an empty store only (a store holding events refuses any import
    /// before it reads the file).
    fresh_only: bool,
}

fn case(what: &str, args: &[&str], code: i32, error: &'static str, named: &[&str]) -> Case {
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
fn invalid(what: &str, args: &[&str], named: &[&str]) -> Case {
    case(what, args, 2, "invalid-value", named)
}

/// Bad usage refused by the argument parser: exit 2, `usage`.
fn usage(what: &str, args: &[&str], named: &[&str]) -> Case {
    case(what, args, 2, "usage", named)
}

/// A refusal by a domain rule: exit 1, the rule's name.
fn refused(what: &str, args: &[&str], rule: &'static str, named: &[&str]) -> Case {
    let mut named: Vec<&str> = named.to_vec();
    named.push(rule);
    case(what, args, 1, rule, &named)
}

impl Case {
    fn db(mut self, db: Db) -> Self {
        self.db = db;
        self
    }

    /// The outcome depends on the workspace's state (an upgraded workspace on `us1`); on a fresh
    /// store an earlier rule refuses the same command (`not-commercial-yet`).
    fn prepared_only(mut self) -> Self {
        self.prepared_only = true;
        self.opens_store = true;
        self
    }

    /// An import that opens the store before it reads: on a store that holds events it is refused
    /// as `not-empty` first, so it is checked on an empty store only.
    fn fresh_only(mut self) -> Self {
        self.fresh_only = true;
        self.opens_store = true;
        self
    }

    fn absent(mut self, text: &str) -> Self {
        self.absent.push(text.to_owned());
        self
    }

    fn os_args(mut self, args: Vec<OsString>) -> Self {
        self.args = args;
        self
    }

    /// The arguments with `{dir}` replaced by `dir`.
    fn args_in(&self, dir: &Path) -> Vec<OsString> {
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
    fn named_in(&self, dir: &Path) -> Vec<String> {
        self.named
            .iter()
            .map(|n| n.replace("{dir}", &dir.display().to_string()))
            .collect()
    }
}

/// The text a message shows for `value`: the messages quote values the way Rust's `{:?}` does,
/// so a control character appears escaped (`\u{7}`, `\n`), never raw.
fn shown(value: &str) -> String {
    let debug = format!("{value:?}");
    debug[1..debug.len() - 1].to_owned()
}

/// A prepared store: `acme-finance` registered, workspace `acme` upgraded on `us1`.
fn prepared() -> TempDir {
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
fn exported(dir: &Path) -> String {
    let db = dir.join("billing.db");
    if !db.exists() {
        return String::new();
    }
    let run = billing(dir, &sqlite_url(&db), &os(&["export"]), false);
    assert_eq!(run.code, Some(0), "export: {run:?}");
    run.stdout
}

/// Checks one run of `case` in `dir` (`json`: with `--json`).
fn check_run(case: &Case, dir: &Path, json: bool) {
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
fn check_all(cases: &[Case]) {
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

// ---------------------------------------------------------------------------------------------
// User names and e-mails

#[test]
fn user_names_that_are_empty_overlong_or_odd_are_refused() {
    let long = "a".repeat(65);
    let names: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("too short", "ab"),
        ("65 characters", &long),
        ("a space", "acme finance"),
        ("a double quote", "acme\"finance"),
        ("a single quote", "it's"),
        ("SQL", "x';DROP TABLE events;--"),
        ("SQL", "a\" OR 1=1"),
        ("unicode", "ünïcødé"),
        ("CJK", "费用中心"),
        ("a bell", "acme\u{7}fin"),
        ("a newline", "acme\nfinance"),
        ("an escape sequence", "acme\u{1b}[2Jfin"),
        ("a right-to-left override", "acme\u{202e}nif"),
        ("a leading dash", "-acme"),
        ("a percent sign", "acme%"),
    ];
    let mut cases = Vec::new();
    for (what, name) in &names {
        let value = shown(name);
        let username = format!("--username={name}");
        cases.push(invalid(
            &format!("register: user name with {what}"),
            &[
                "account",
                "register",
                &username,
                "--email",
                "f@acme.example",
            ],
            &["username", &value],
        ));
        cases.push(invalid(
            &format!("bind: user name with {what}"),
            &["account", "bind", "--workspace", "acme", &username],
            &["username", &value],
        ));
    }
    check_all(&cases);
}

#[test]
fn bad_emails_are_refused() {
    let long = format!("{}@acme.example", "a".repeat(250));
    let emails: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("no @", "nope"),
        ("no domain dot", "a@b"),
        ("no local part", "@acme.example"),
        ("a domain starting with a dot", "a@.example"),
        ("a space", "a b@acme.example"),
        ("angle brackets", "<a@acme.example>"),
        ("a quote", "a'@acme.example"),
        ("a newline", "a@acme.example\n"),
        ("a bell", "a\u{7}@acme.example"),
        ("unicode", "ä@acme.example"),
        ("255 characters", &long),
    ];
    let cases: Vec<Case> = emails
        .iter()
        .map(|(what, email)| {
            let email_arg = format!("--email={email}");
            invalid(
                &format!("register: e-mail with {what}"),
                &["account", "register", "--username", "new-user", &email_arg],
                &["email", &shown(email)],
            )
        })
        .collect();
    check_all(&cases);
}

// ---------------------------------------------------------------------------------------------
// Workspace ids, actors and command ids

#[test]
fn workspace_ids_with_quotes_sql_or_control_characters_are_refused() {
    let long = "w".repeat(129);
    let ids: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("129 characters", &long),
        ("a space", "ac me"),
        ("a single quote", "acme'"),
        ("a double quote", "acme\""),
        ("SQL comment", "a';--"),
        ("SQL or", "a\" OR 1=1"),
        ("SQL or with quotes", "a' OR '1'='1"),
        ("SQL statement", "acme;DROP TABLE events"),
        ("a bell", "acme\u{7}"),
        ("a newline", "acme\n"),
        ("a NUL-like escape", "acme\\0"),
        ("a path", "../etc/passwd"),
        ("a wildcard", "acme%"),
        ("unicode", "ünï"),
    ];
    let mut cases = Vec::new();
    for (what, id) in &ids {
        let workspace = format!("--workspace={id}");
        let named = ["workspace", &shown(id)];
        let with = |command: &str| format!("{command}: workspace id with {what}");
        cases.push(invalid(
            &with("upgrade"),
            &["upgrade", &workspace, "--site", "us1"],
            &named,
        ));
        cases.push(invalid(
            &with("bind"),
            &["account", "bind", &workspace, "--username", USER],
            &named,
        ));
        cases.push(invalid(
            &with("accept"),
            &["agreement", "accept", &workspace, "--version", "2024-06"],
            &named,
        ));
        cases.push(invalid(
            &with("settlement"),
            &["settlement", "set", &workspace, "--method", "enterprise"],
            &named,
        ));
        cases.push(invalid(&with("show"), &["show", &workspace], &named));
        cases.push(invalid(&with("history"), &["history", &workspace], &named));
    }
    check_all(&cases);
}

#[test]
fn actors_and_command_ids_with_odd_characters_are_refused() {
    let long = "x".repeat(129);
    let values: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("129 characters", &long),
        ("a space", "a b"),
        ("a single quote", "x'y"),
        ("SQL", "a';--"),
        ("a backslash", "a\\b"),
        ("a backtick", "a`b"),
        ("a bell", "a\u{7}"),
        ("a newline", "a\nb"),
        ("unicode", "älice"),
    ];
    let mut cases = Vec::new();
    for (what, value) in &values {
        for (option, field) in [("--actor", "actor"), ("--command-id", "command-id")] {
            let arg = format!("{option}={value}");
            cases.push(invalid(
                &format!("upgrade: {field} with {what}"),
                &["upgrade", "--workspace", "new-ws", "--site", "us1", &arg],
                &[field, &shown(value)],
            ));
        }
    }
    check_all(&cases);
}

// ---------------------------------------------------------------------------------------------
// Sites, methods, cloud accounts

#[test]
fn unknown_or_malformed_sites_and_methods_are_refused() {
    let cases = vec![
        // Malformed: refused before the store is opened.
        invalid(
            "upper-case site",
            &["upgrade", "--workspace", "new-ws", "--site", "CN1"],
            &["site", "CN1"],
        ),
        invalid(
            "empty site",
            &["upgrade", "--workspace", "new-ws", "--site="],
            &["site", "\"\""],
        ),
        invalid(
            "site with SQL",
            &["upgrade", "--workspace", "new-ws", "--site", "us1';--"],
            &["site", "us1';--"],
        ),
        invalid(
            "site with a space",
            &["upgrade", "--workspace", "new-ws", "--site", "us 1"],
            &["site", "us 1"],
        ),
        invalid(
            "site with a newline",
            &["upgrade", "--workspace", "new-ws", "--site", "us1\n"],
            &["site", "us1\\n"],
        ),
        invalid(
            "site of 33 characters",
            &[
                "upgrade",
                "--workspace",
                "new-ws",
                "--site",
                &"s".repeat(33),
            ],
            &["site", &"s".repeat(33)],
        ),
        invalid(
            "upper-case method",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "AWS",
            ],
            &["method", "AWS"],
        ),
        invalid(
            "empty method",
            &["settlement", "set", "--workspace", "acme", "--method="],
            &["method", "\"\""],
        ),
        invalid(
            "method with SQL",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws\" OR 1=1",
            ],
            &["method", "aws\\\" OR 1=1"],
        ),
        invalid(
            "method with a bell",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws\u{7}",
            ],
            &["method", "aws\\u{7}"],
        ),
        invalid(
            "cloud account with quotes",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws",
                "--account",
                "1' OR '1'='1",
            ],
            &["account", "1' OR '1'='1"],
        ),
        invalid(
            "marketplace instance with a space",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "alibaba-cloud",
                "--account",
                "1",
                "--instance",
                "i 1",
            ],
            &["instance", "i 1"],
        ),
        case(
            "enterprise with a cloud account",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "enterprise",
                "--account",
                "1",
            ],
            2,
            "invalid-settlement-request",
            &["enterprise"],
        )
        .prepared_only(),
        case(
            "cloud method without an account",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws",
            ],
            2,
            "invalid-settlement-request",
            &["aws", "account"],
        )
        .prepared_only(),
        // Well-formed but unknown: the site policy refuses them by rule, naming the value.
        refused(
            "unknown site",
            &["upgrade", "--workspace", "new-ws", "--site", "zz9"],
            "unknown-site",
            &["zz9"],
        ),
        refused(
            "unknown method",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "bitcoin",
            ],
            "settlement-not-allowed-on-site",
            &["bitcoin", "us1"],
        )
        .prepared_only(),
        refused(
            "a method of another site",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "alibaba-cloud",
                "--account",
                "1",
                "--instance",
                "i-1",
            ],
            "settlement-not-allowed-on-site",
            &["alibaba-cloud", "us1"],
        )
        .prepared_only(),
        // The embedded marketplace knows its providers.
        invalid(
            "unknown cloud provider",
            &["cloud", "subscribe", "--provider", "gcp", "--account", "1"],
            &["provider", "gcp"],
        ),
        invalid(
            "enterprise is no cloud provider",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "enterprise",
                "--account",
                "1",
            ],
            &["provider", "enterprise"],
        ),
        invalid(
            "upper-case provider",
            &["cloud", "subscribe", "--provider", "AWS", "--account", "1"],
            &["provider", "AWS"],
        ),
        invalid(
            "empty cloud account",
            &["cloud", "subscribe", "--provider", "aws", "--account="],
            &["account", "\"\""],
        ),
        invalid(
            "cloud account with a double quote",
            &[
                "cloud",
                "unsubscribe",
                "--provider",
                "aws",
                "--account",
                "12\"34",
            ],
            &["account", "12\\\"34"],
        ),
        invalid(
            "provider that needs an instance",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "alibaba-cloud",
                "--account",
                "1",
            ],
            &["alibaba-cloud", "instance"],
        ),
        invalid(
            "provider that takes no instance",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "aws",
                "--account",
                "1",
                "--instance",
                "i-1",
            ],
            &["aws", "instance", "i-1"],
        ),
    ];
    check_all(&cases);
}

// ---------------------------------------------------------------------------------------------
// Times, versions, roles, heads

#[test]
fn malformed_times_versions_roles_and_heads_are_refused() {
    let mut cases = Vec::new();
    for time in [
        "last tuesday",
        "",
        "2026-13-45T00:00:00Z",
        "2026-11-27",
        "2026-11-27T09:00:00",
        "2026-11-27T25:00:00Z",
        "2026-11-27 09:00:00Z ;DROP TABLE events",
        "9999999999-01-01T00:00:00Z",
        "2026-11-27T09:00:00Z\n",
        "2026-11-27T09:00:00+25:00",
        "-1",
        "1e400",
        "2026-11-27T09:00:00\u{7}Z",
    ] {
        let as_of = format!("--as-of={time}");
        cases.push(invalid(
            &format!("as-of {time:?}"),
            &["show", "--workspace", "acme", &as_of],
            &["as-of", &shown(time), "RFC 3339"],
        ));
    }
    for version in [
        "",
        "2024 06",
        "2024/06",
        "../../etc/passwd",
        "2024-06'",
        "2024-06\";--",
        "2024-06\u{7}",
        "2024-06\n",
        "v²",
        &"9".repeat(33),
    ] {
        let arg = format!("--version={version}");
        cases.push(invalid(
            &format!("version {version:?}"),
            &["agreement", "accept", "--workspace", "acme", &arg],
            &["version", &shown(version)],
        ));
    }
    for role in ["root", "OWNER", "Owner", "owner ", "owner;--", "ownér"] {
        let arg = format!("--role={role}");
        cases.push(usage(
            &format!("role {role:?}"),
            &["upgrade", "--workspace", "new-ws", "--site", "us1", &arg],
            &["--role", role],
        ));
    }
    cases.push(usage(
        "empty role",
        &[
            "upgrade",
            "--workspace",
            "new-ws",
            "--site",
            "us1",
            "--role=",
        ],
        &["--role"],
    ));
    let upper = HASH.to_uppercase();
    let short = &HASH[1..];
    let long = format!("{HASH}0");
    for head in [
        "acme".to_owned(),
        "acme=".to_owned(),
        format!("={HASH}"),
        "acme=xyz".to_owned(),
        format!("acme={upper}"),
        format!("acme={short}"),
        format!("acme={long}"),
        format!("acme=={HASH}"),
        format!("a'b={HASH}"),
        format!("a\" OR 1=1={HASH}"),
        format!("acme={HASH}\n"),
        format!("acme\u{7}={HASH}"),
        format!("acme={}", "é".repeat(32)),
    ] {
        let arg = format!("--expect-head={head}");
        cases.push(invalid(
            &format!("expect-head {head:?}"),
            &["audit", &arg],
            &["expect-head", &shown(&head)],
        ));
    }
    check_all(&cases);
}

// ---------------------------------------------------------------------------------------------
// Files

#[test]
fn unreadable_nonexistent_and_directory_files_are_refused() {
    let mut cases = Vec::new();
    for command in ["audit", "import"] {
        cases.push(case(
            &format!("{command}: a file that does not exist"),
            &[command, "--from", "{dir}/missing.jsonl"],
            2,
            "unreadable-input",
            &["{dir}/missing.jsonl", "No such file"],
        ));
        cases.push(case(
            &format!("{command}: a directory"),
            &[command, "--from", "{dir}"],
            2,
            "unreadable-input",
            &["{dir}", "directory"],
        ));
        cases.push(case(
            &format!("{command}: a file in a directory that does not exist"),
            &[command, "--from", "{dir}/nowhere/log.jsonl"],
            2,
            "unreadable-input",
            &["{dir}/nowhere/log.jsonl"],
        ));
        cases.push(usage(
            &format!("{command}: an empty path"),
            &[command, "--from="],
            &["--from"],
        ));
        // A file that opens but fails while it is read.
        if cfg!(target_os = "linux") {
            let mut failing = case(
                &format!("{command}: a file that fails while it is read"),
                &[command, "--from", "/proc/self/mem"],
                2,
                "unreadable-input",
                &["/proc/self/mem"],
            );
            if command == "import" {
                // Import opens the store before it reads.
                failing = failing.fresh_only();
            }
            cases.push(failing);
        }
    }
    // An unreadable file (mode 000), where this process cannot read it (not as root).
    let probe = tempfile::tempdir().unwrap();
    let locked = probe.path().join("locked.jsonl");
    fs::write(&locked, "").unwrap();
    set_mode(&locked, 0o000);
    if fs::File::open(&locked).is_err() {
        for command in ["audit", "import"] {
            cases.push(case(
                &format!("{command}: a file without read permission"),
                &[command, "--from", "{dir}/locked.jsonl"],
                2,
                "unreadable-input",
                &["{dir}/locked.jsonl", "ermission denied"],
            ));
        }
    }
    cases.push(case(
        "export to a directory that does not exist",
        &["export", "--out", "{dir}/nowhere/out.jsonl"],
        2,
        "io",
        &["{dir}/nowhere/out.jsonl"],
    ));
    // Text that is not a log: read, then refused with findings (exit 1), nothing written.
    cases.push(
        case(
            "import of a file that is not a log",
            &["import", "--from", "{dir}/noise.jsonl"],
            1,
            "import-refused",
            &["malformed-line"],
        )
        .fresh_only(),
    );

    let run_in = |dir: &Path| {
        fs::write(
            dir.join("noise.jsonl"),
            "\u{0}{\"aggregate_id\":\"acme\"\r\nnot json\rstill not\n",
        )
        .unwrap();
        let locked = dir.join("locked.jsonl");
        fs::write(&locked, "").unwrap();
        set_mode(&locked, 0o000);
    };
    let prepared = prepared();
    run_in(prepared.path());
    let log = exported(prepared.path());
    for case in &cases {
        let fresh = tempfile::tempdir().unwrap();
        run_in(fresh.path());
        check_run(case, fresh.path(), false);
        check_run(case, fresh.path(), true);
        if !case.fresh_only {
            check_run(case, prepared.path(), false);
            check_run(case, prepared.path(), true);
        }
    }
    assert_eq!(exported(prepared.path()), log, "the prepared log changed");
    // Leave the directories removable.
    set_mode(&prepared.path().join("locked.jsonl"), 0o644);
    set_mode(&locked, 0o644);
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

// ---------------------------------------------------------------------------------------------
// Database URLs

#[test]
fn database_urls_that_do_not_answer_or_are_malformed_are_refused() {
    let upgrade = ["upgrade", "--workspace", "acme", "--site", "us1"];
    let cases = vec![
        case(
            "a PostgreSQL server that does not answer",
            &upgrade,
            3,
            "store-unavailable",
            &["postgres://nobody@127.0.0.1:1/x", "unavailable"],
        )
        .db(Db::Url("postgres://nobody@127.0.0.1:1/x")),
        case(
            "a PostgreSQL server that does not answer, with a password",
            &["show", "--workspace", "acme"],
            3,
            "store-unavailable",
            &["127.0.0.1:1", "unavailable"],
        )
        .db(Db::Url("postgres://nobody:s3cr3t-pw@127.0.0.1:1/x"))
        .absent("s3cr3t-pw"),
        case(
            "a malformed PostgreSQL URL (IPv6)",
            &upgrade,
            2,
            "invalid-url",
            &["postgres://[::1", "URL"],
        )
        .db(Db::Url("postgres://[::1")),
        case(
            "a malformed PostgreSQL URL (port), with a password",
            &upgrade,
            2,
            "invalid-url",
            &["port", "URL"],
        )
        .db(Db::Url("postgres://x:s3cr3t-pw@localhost:notaport/db"))
        .absent("s3cr3t-pw"),
        case(
            "an unsupported scheme",
            &upgrade,
            2,
            "invalid-url",
            &["mysql://x/y"],
        )
        .db(Db::Url("mysql://x/y")),
        case("an empty URL", &upgrade, 2, "invalid-url", &["URL"]).db(Db::Url("")),
        case(
            "a bare file name, no scheme",
            &upgrade,
            2,
            "invalid-url",
            &["billing.db"],
        )
        .db(Db::Url("billing.db")),
        case(
            "a SQLite URL with an unknown mode",
            &upgrade,
            2,
            "invalid-url",
            &["bogus"],
        )
        .db(Db::Url("sqlite://bad-mode.db?mode=bogus")),
        case(
            "a SQLite file in a directory that does not exist",
            &upgrade,
            3,
            "store-unavailable",
            &["{dir}/no-such-dir/sub/billing.db", "unable to open"],
        )
        .db(Db::MissingDir),
        case(
            "a SQLite URL that names a directory",
            &["history", "--workspace", "acme"],
            3,
            "store-unavailable",
            &["{dir}/a-directory.db"],
        )
        .db(Db::Directory),
        case(
            "a SQLite file that is not a database",
            &upgrade,
            3,
            "store-unavailable",
            &["{dir}/garbage.db", "not a database"],
        )
        .db(Db::Garbage),
        usage("an argument that is not UTF-8", &[], &["UTF-8"]).os_args(non_utf8_args()),
    ];
    check_all(&cases);
}

/// `upgrade --workspace acme --site <invalid UTF-8>`.
fn non_utf8_args() -> Vec<OsString> {
    let mut args = os(&["upgrade", "--workspace", "acme", "--site"]);
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        args.push(OsStr::from_bytes(b"us\xff\xfe1").to_owned());
    }
    #[cfg(not(unix))]
    args.push(OsString::from("US1"));
    args
}

/// Import verifies a file with the same verifier as the audit, so it must judge every file the
/// way `billing audit --from` does: a file that audits clean imports, a file with findings is
/// refused with those findings (exit 1, each with its line number) — a line that is not UTF-8 is
/// a `malformed-line` for both (not an unreadable file, exit 2), a line longer than the audit's
/// limit is refused by both (and not read into memory whole), a blank line is skipped by both.
#[test]
fn import_judges_a_file_exactly_as_the_audit_does() {
    let source = prepared();
    let log = exported(source.path());
    let lines: Vec<&str> = log.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let padded = {
        // A valid event, padded with 2 MiB of insignificant whitespace inside the JSON.
        let at = lines[0].find("\"payload\"").unwrap();
        format!(
            "{}{}{}",
            &lines[0][..at],
            " ".repeat(2 << 20),
            &lines[0][at..]
        )
    };
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a blank line at the end", format!("{log}\n").into_bytes()),
        ("a line that is not UTF-8", {
            let mut bytes = format!("{}\n", lines[0]).into_bytes();
            bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
            bytes.extend_from_slice(lines[1..].join("\n").as_bytes());
            bytes.push(b'\n');
            bytes
        }),
        (
            "a line beyond the audit's length limit",
            format!("{padded}\n").into_bytes(),
        ),
    ];
    let mut disagreements = Vec::new();
    for (what, bytes) in &files {
        let file = dir.path().join("log.jsonl");
        fs::write(&file, bytes).unwrap();
        let from = file.display().to_string();
        let audit = billing(
            dir.path(),
            &sqlite_url(&dir.path().join("audit.db")),
            &os(&["audit", "--from", &from, "--json"]),
            false,
        );
        let store = tempfile::tempdir().unwrap();
        let import = billing(
            store.path(),
            &sqlite_url(&store.path().join("billing.db")),
            &os(&["import", "--from", &from, "--json"]),
            false,
        );
        for run in [&audit, &import] {
            assert!(!run.stderr.contains("panicked"), "{what}: {run:?}");
        }
        let audit_json: Value = serde_json::from_str(&audit.stdout).unwrap();
        let import_json: Value = serde_json::from_str(&import.stdout).unwrap();
        let audited_lines: Vec<Value> = audit_json["findings"]
            .as_array()
            .map(|f| f.iter().map(|f| f["line"].clone()).collect())
            .unwrap_or_default();
        let refused_lines: Vec<Value> = import_json["error"]["details"]["findings"]
            .as_array()
            .map(|f| f.iter().map(|f| f["line"].clone()).collect())
            .unwrap_or_default();
        if audit.code != import.code || audited_lines != refused_lines {
            disagreements.push(format!(
                "{what}: audit exits {:?} with findings on lines {audited_lines:?}, \
                 import exits {:?} with findings on lines {refused_lines:?} ({})",
                audit.code,
                import.code,
                import.stdout.trim()
            ));
        }
        if import.code != Some(0) {
            assert_eq!(exported(store.path()), "", "{what}: a refused import wrote");
        }
    }
    assert!(
        disagreements.is_empty(),
        "import and audit disagree:\n{}",
        disagreements.join("\n")
    );
}

/// A required option left out is named in the JSON error too, not only in the human one (the
/// JSON message must not stop at "the following required arguments were not provided:").
#[test]
fn json_usage_errors_name_the_missing_option() {
    let cases = [
        usage(
            "instance without account",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "alibaba-cloud",
                "--instance",
                "i-1",
            ],
            &["--account"],
        ),
        usage(
            "accept without a version",
            &["agreement", "accept", "--workspace", "acme"],
            &["--version"],
        ),
        usage(
            "upgrade without a site",
            &["upgrade", "--workspace", "acme"],
            &["--site"],
        ),
    ];
    check_all(&cases);
}

/// A SQLite URL without a path names no database: it is bad input (exit 2), not an outage with
/// a confusing "no such table" (each pooled connection of `sqlite://` gets its own private,
/// temporary database, so the migrated schema is not where the command looks).
#[test]
fn a_sqlite_url_without_a_path_is_refused_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [case(
        "a SQLite URL without a path",
        &["upgrade", "--workspace", "acme", "--site", "us1"],
        2,
        "invalid-url",
        &["sqlite://"],
    )
    .db(Db::Url("sqlite://"))];
    for case in &cases {
        check_run(case, dir.path(), false);
        check_run(case, dir.path(), true);
    }
}

// ---------------------------------------------------------------------------------------------
// SQL metacharacters in values that are valid are data, never SQL

#[test]
fn sql_metacharacters_in_valid_values_are_stored_as_data() {
    let dir = prepared();
    let url = sqlite_url(&dir.path().join("billing.db"));
    // Printable ASCII without spaces or quotes is a valid actor or command id, `;` and `--`
    // included: the values must reach the log verbatim, and the tables must still be there.
    let actor = "x;DROP--TABLE_events;";
    let command_id = "c1;DELETE--FROM_commands";
    let run = billing(
        dir.path(),
        &url,
        &os(&[
            "upgrade",
            "--workspace",
            "w-2",
            "--site",
            "eu1",
            "--actor",
            actor,
            "--command-id",
            command_id,
            "--json",
        ]),
        false,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    let history = billing(
        dir.path(),
        &url,
        &os(&["history", "--workspace", "w-2", "--json"]),
        false,
    );
    assert_eq!(history.code, Some(0), "{history:?}");
    let trail: Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(trail["events"][0]["actor_id"], actor, "{trail}");
    let log = exported(dir.path());
    assert_eq!(log.lines().count(), 5, "{log}");
    assert!(log.contains(command_id), "{log}");
    let audit = billing(dir.path(), &url, &os(&["audit", "--json"]), false);
    assert_eq!(audit.code, Some(0), "{audit:?}");
}
