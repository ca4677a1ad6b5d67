//! End-to-end tests of the `billing` binary against temporary SQLite stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// One run of the binary.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A temporary directory with a store URL in it.
struct Store {
    dir: TempDir,
    url: String,
}

impl Store {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("billing.db").display());
        Self { dir, url }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db_file(&self) -> PathBuf {
        self.path("billing.db")
    }

    /// Runs `billing --db URL ARGS…`.
    fn run(&self, args: &[&str]) -> Run {
        billing_with_db(&self.url, args)
    }

    /// Runs and expects exit status `code`.
    fn expect(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, code, "billing {args:?}: {run:?}");
        run
    }

    /// Registers `acme-finance` and walks workspace `acme` to the Commercial Plan on `us1`.
    fn upgraded(&self) {
        self.expect(
            0,
            &[
                "account",
                "register",
                "--username",
                "acme-finance",
                "--email",
                "f@acme.example",
            ],
        );
        self.expect(
            0,
            &[
                "upgrade",
                "--workspace",
                "acme",
                "--site",
                "us1",
                "--actor",
                "alice",
            ],
        );
        self.expect(
            0,
            &[
                "account",
                "bind",
                "--workspace",
                "acme",
                "--username",
                "acme-finance",
            ],
        );
        self.expect(
            0,
            &[
                "agreement",
                "accept",
                "--workspace",
                "acme",
                "--version",
                "2024-06",
            ],
        );
    }
}

fn billing(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(args)
        .env_remove("BILLING_DATABASE_URL")
        .env_remove("BILLING_EXPENSE_CENTER_URL")
        .env_remove("BILLING_LOG")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn billing_with_db(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--db", url];
    all.extend_from_slice(args);
    billing(&all)
}

#[test]
fn the_documented_flow_runs_through_separate_invocations() {
    let store = Store::new();
    store.expect(
        0,
        &[
            "account",
            "register",
            "--username",
            "acme-finance",
            "--email",
            "f@acme.example",
        ],
    );
    let taken = store.expect(
        1,
        &[
            "account",
            "register",
            "--username",
            "acme-finance",
            "--email",
            "g@acme.example",
        ],
    );
    assert!(taken.stderr.contains("user-name-taken"), "{taken:?}");

    store.expect(
        0,
        &[
            "upgrade",
            "--workspace",
            "acme",
            "--site",
            "us1",
            "--actor",
            "alice",
        ],
    );
    let unknown = store.expect(
        1,
        &[
            "account",
            "bind",
            "--workspace",
            "acme",
            "--username",
            "nobody-here",
        ],
    );
    assert!(
        unknown.output().contains("unknown-user-name"),
        "{unknown:?}"
    );
    assert!(unknown.output().contains("nobody-here"), "{unknown:?}");

    let member = store.expect(
        1,
        &[
            "account",
            "bind",
            "--workspace",
            "acme",
            "--username",
            "acme-finance",
            "--role",
            "member",
        ],
    );
    assert!(member.stderr.contains("not-workspace-owner"), "{member:?}");

    store.expect(
        0,
        &[
            "account",
            "bind",
            "--workspace",
            "acme",
            "--username",
            "acme-finance",
        ],
    );
    let accept = store.expect(
        0,
        &[
            "agreement",
            "accept",
            "--workspace",
            "acme",
            "--version",
            "2024-06",
        ],
    );
    assert!(accept.stdout.contains("PlanUpgraded"), "{accept:?}");
    assert!(
        accept
            .stdout
            .contains("Opening reminder sent to acme-finance"),
        "{accept:?}"
    );

    let show = store.expect(0, &["show", "--workspace", "acme"]);
    assert!(show.stdout.contains("Commercial Plan"), "{show:?}");
    assert!(show.stdout.contains("data_visible_from"), "{show:?}");
    assert!(
        show.stdout
            .contains("https://expense-center.example/accounts/acme-finance"),
        "{show:?}"
    );
    let view = store
        .expect(0, &["show", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(view["plan_name"], "Commercial Plan");
    assert_eq!(view["site"], "us1");
    assert_eq!(view["settlement_method"], "enterprise");
    assert!(view["data_visible_from"].is_string(), "{view}");
    assert_eq!(view["data_visible_from"], view["upgraded_at"]);
    assert_eq!(view["head_hash"].as_str().unwrap().len(), 64);

    let history = store.expect(0, &["history", "--workspace", "acme"]);
    for event in [
        "UpgradeRequested",
        "AccountBound",
        "AgreementAccepted",
        "PlanUpgraded",
    ] {
        assert!(history.stdout.contains(event), "{history:?}");
    }
    let trail = store
        .expect(0, &["history", "--workspace", "acme", "--json"])
        .json();
    let events = trail["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{trail}");
    assert_eq!(events[0]["actor_id"], "alice");
    assert_eq!(events[3]["event_type"], "PlanUpgraded");
}

#[test]
fn settlement_changes_through_a_subscribed_cloud_account_once_a_month() {
    let store = Store::new();
    store.upgraded();
    let unsubscribed = store.expect(
        1,
        &[
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    assert!(
        unsubscribed.stderr.contains("cloud-account-not-subscribed"),
        "{unsubscribed:?}"
    );
    store.expect(
        0,
        &[
            "cloud",
            "subscribe",
            "--provider",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    store.expect(
        0,
        &[
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    let view = store
        .expect(0, &["show", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(view["settlement_method"], "aws");
    assert_eq!(view["cloud_account_id"], "123456789012");
    assert_eq!(view["settlement_changes"], 1);

    store.expect(
        0,
        &[
            "cloud",
            "unsubscribe",
            "--provider",
            "aws",
            "--account",
            "123456789012",
        ],
    );
    let again = store.expect(
        1,
        &[
            "settlement",
            "set",
            "--workspace",
            "acme",
            "--method",
            "enterprise",
        ],
    );
    assert!(
        again.stderr.contains("settlement-change-too-soon"),
        "{again:?}"
    );
}

#[test]
fn json_output_is_one_document_for_results_and_errors() {
    let store = Store::new();
    let upgrade = store
        .expect(
            0,
            &["--json", "upgrade", "--workspace", "acme", "--site", "cn1"],
        )
        .json();
    assert_eq!(upgrade["events"][0]["event_type"], "UpgradeRequested");
    assert_eq!(upgrade["events"][0]["sequence"], 1);
    assert_eq!(upgrade["replayed"], false);

    // --json after the subcommand works too; a refusal is an error document with status 1.
    let refused = store.expect(
        1,
        &[
            "account",
            "bind",
            "--workspace",
            "acme",
            "--username",
            "nobody-here",
            "--json",
        ],
    );
    let error = refused.json();
    assert_eq!(error["error"]["code"], "unknown-user-name");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nobody-here"));

    let usage = billing(&["--json", "no-such-command"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_eq!(usage.json()["error"]["code"], "usage");

    let bad = store.expect(
        2,
        &["upgrade", "--workspace", "acme", "--site", "CN1", "--json"],
    );
    assert_eq!(bad.json()["error"]["code"], "invalid-value");

    let history = store
        .expect(0, &["history", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(history["events"].as_array().unwrap().len(), 1);
    let audit = store.expect(0, &["audit", "--json"]).json();
    assert_eq!(audit["clean"], true);
    assert_eq!(audit["summary"]["events"], 1);
}

#[test]
fn a_command_id_makes_resending_safe() {
    let store = Store::new();
    let args = [
        "upgrade",
        "--workspace",
        "acme",
        "--site",
        "us1",
        "--command-id",
        "req-1",
        "--json",
    ];
    let first = store.expect(0, &args).json();
    let second = store.expect(0, &args).json();
    assert_eq!(first["replayed"], false);
    assert_eq!(second["replayed"], true);
    assert_eq!(first["events"], second["events"]);
    let reused = store.expect(
        1,
        &[
            "upgrade",
            "--workspace",
            "acme",
            "--site",
            "eu1",
            "--command-id",
            "req-1",
        ],
    );
    assert!(reused.stderr.contains("command-id-reused"), "{reused:?}");
    let history = store
        .expect(0, &["history", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(history["events"].as_array().unwrap().len(), 1);
}

#[test]
fn bad_input_exits_2_names_the_value_and_writes_nothing() {
    let store = Store::new();
    let missing = store.path("missing.jsonl");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["upgrade", "--workspace", "acme", "--site", "CN1"],
            "CN1",
        ),
        (
            vec![
                "account",
                "register",
                "--username",
                "acme\"finance",
                "--email",
                "f@acme.example",
            ],
            "username",
        ),
        (
            vec![
                "account",
                "register",
                "--username",
                "acme-finance",
                "--email",
                "nope",
            ],
            "email",
        ),
        (
            vec![
                "account",
                "bind",
                "--workspace",
                "acme",
                "--username",
                "it's",
            ],
            "username",
        ),
        (
            vec!["show", "--workspace", "acme", "--as-of", "last tuesday"],
            "last tuesday",
        ),
        (vec!["show", "--workspace", "ac me"], "workspace"),
        (vec!["audit", "--from", missing], "missing.jsonl"),
        (vec!["import", "--from", missing], "missing.jsonl"),
        (
            vec![
                "upgrade",
                "--workspace",
                "acme",
                "--site",
                "us1",
                "--role",
                "root",
            ],
            "root",
        ),
        (
            vec![
                "upgrade",
                "--workspace",
                "acme",
                "--site",
                "us1",
                "--actor",
                "a b",
            ],
            "actor",
        ),
        (
            vec![
                "upgrade",
                "--workspace",
                "acme",
                "--site",
                "us1",
                "--command-id",
                "x'y",
            ],
            "command-id",
        ),
        (vec!["audit", "--expect-head", "acme"], "expect-head"),
        (vec!["audit", "--expect-head", "acme=abc"], "expect-head"),
        (
            vec!["cloud", "subscribe", "--provider", "gcp", "--account", "1"],
            "gcp",
        ),
        (
            vec![
                "cloud",
                "subscribe",
                "--provider",
                "alibaba-cloud",
                "--account",
                "1",
            ],
            "instance",
        ),
        (
            vec!["agreement", "accept", "--workspace", "acme"],
            "--version",
        ),
        (
            vec!["upgrade", "--workspace", "acme", "--site", "us1", "--bogus"],
            "--bogus",
        ),
    ];
    for (args, named) in cases {
        let run = store.run(&args);
        assert_eq!(run.code, 2, "billing {args:?}: {run:?}");
        assert!(
            run.stderr.contains(named),
            "billing {args:?} does not name {named}: {run:?}"
        );
        assert!(run.stdout.is_empty(), "billing {args:?}: {run:?}");
    }
    assert!(
        !store.db_file().exists(),
        "bad input must not even create the store"
    );

    // On an existing store, bad input leaves the log as it was.
    store.upgraded();
    let before = store.expect(0, &["export"]).stdout;
    store.expect(2, &["upgrade", "--workspace", "other", "--site", "CN1"]);
    store.expect(
        2,
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
    );
    assert_eq!(store.expect(0, &["export"]).stdout, before);
}

#[test]
fn an_unreachable_store_exits_3() {
    let run = billing_with_db(
        "postgres://nobody@127.0.0.1:1/x",
        &["show", "--workspace", "acme"],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("unavailable"), "{run:?}");
    let bad_url = billing_with_db("mysql://x/y", &["history", "--workspace", "acme", "--json"]);
    assert_eq!(bad_url.code, 2, "{bad_url:?}");
    assert_eq!(bad_url.json()["error"]["code"], "invalid-url");
}

fn export_to(store: &Store, name: &str) -> PathBuf {
    let path = store.path(name);
    store.expect(0, &["export", "--out", path.to_str().unwrap()]);
    path
}

#[test]
fn export_import_export_is_byte_identical() {
    let first = Store::new();
    first.upgraded();
    first.expect(0, &["upgrade", "--workspace", "beta", "--site", "cn1"]);
    let exported = export_to(&first, "first.jsonl");
    let bytes = std::fs::read(&exported).unwrap();
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 5);
    // stdout export is the same bytes.
    assert_eq!(
        first.expect(0, &["export"]).stdout.as_bytes(),
        bytes.as_slice()
    );

    let second = Store::new();
    let import = second.expect(
        0,
        &["import", "--from", exported.to_str().unwrap(), "--json"],
    );
    assert_eq!(import.json()["imported"], 5);
    let again = export_to(&second, "second.jsonl");
    assert_eq!(
        std::fs::read(&again).unwrap(),
        bytes,
        "export → import → export differs"
    );

    // The imported store has its views and audits clean.
    let view = second
        .expect(0, &["show", "--workspace", "acme", "--json"])
        .json();
    assert_eq!(view["plan_name"], "Commercial Plan");
    second.expect(0, &["audit"]);
    second.expect(0, &["rebuild-views"]);

    // A second import into a store that holds events is refused.
    let twice = second.expect(1, &["import", "--from", exported.to_str().unwrap()]);
    assert!(twice.stderr.contains("empty store"), "{twice:?}");
}

fn tamper(source: &Path, target: &Path) {
    let text = std::fs::read_to_string(source).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(line.contains("\"user_name\":\"acme-finance\""), "{line}");
    let tampered = text.replacen(
        "\"user_name\":\"acme-finance\"",
        "\"user_name\":\"evil-finance\"",
        1,
    );
    std::fs::write(target, tampered).unwrap();
}

#[test]
fn a_tampered_export_fails_the_audit_with_its_line_number() {
    let store = Store::new();
    store.upgraded();
    let exported = export_to(&store, "good.jsonl");
    store.expect(0, &["audit", "--from", exported.to_str().unwrap()]);
    let bad = store.path("bad.jsonl");
    tamper(&exported, &bad);

    let audit = store.expect(1, &["audit", "--from", bad.to_str().unwrap()]);
    assert!(audit.stdout.contains("hash-mismatch line 2"), "{audit:?}");
    let report = store
        .expect(1, &["audit", "--from", bad.to_str().unwrap(), "--json"])
        .json();
    assert_eq!(report["clean"], false);
    let finding = &report["findings"][0];
    assert_eq!(finding["code"], "hash-mismatch");
    assert_eq!(finding["line"], 2);
    assert_eq!(finding["workspace"], "acme");

    // Import refuses it, with the finding, and writes nothing.
    let fresh = Store::new();
    let import = fresh.expect(1, &["import", "--from", bad.to_str().unwrap()]);
    assert!(import.stderr.contains("hash-mismatch line 2"), "{import:?}");
    assert!(fresh.expect(0, &["export"]).stdout.is_empty());
}

#[test]
fn expected_heads_catch_removed_newest_events() {
    let store = Store::new();
    store.upgraded();
    let exported = export_to(&store, "log.jsonl");
    let file = exported.to_str().unwrap();
    let head = store
        .expect(0, &["show", "--workspace", "acme", "--json"])
        .json()["head_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    store.expect(
        0,
        &[
            "audit",
            "--from",
            file,
            "--expect-head",
            &format!("acme={head}"),
        ],
    );
    store.expect(0, &["audit", "--expect-head", &format!("acme={head}")]);

    let wrong = format!("acme={}", "0".repeat(64));
    let audit = store.expect(1, &["audit", "--from", file, "--expect-head", &wrong]);
    assert!(audit.stdout.contains("head-mismatch"), "{audit:?}");
    let audit = store
        .expect(1, &["audit", "--expect-head", &wrong, "--json"])
        .json();
    assert_eq!(audit["findings"][0]["code"], "head-mismatch");

    // The newest events cut off: the file alone looks fine, the kept head does not.
    let text = std::fs::read_to_string(&exported).unwrap();
    let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    let short = store.path("short.jsonl");
    std::fs::write(&short, cut).unwrap();
    let short = short.to_str().unwrap();
    store.expect(0, &["audit", "--from", short]);
    let audit = store.expect(
        1,
        &[
            "audit",
            "--from",
            short,
            "--expect-head",
            &format!("acme={head}"),
        ],
    );
    assert!(audit.stdout.contains("head-mismatch"), "{audit:?}");
}

#[test]
fn show_as_of_an_instant_replays_the_log() {
    let store = Store::new();
    store.upgraded();
    let before = store
        .expect(
            0,
            &[
                "show",
                "--workspace",
                "acme",
                "--as-of",
                "2000-01-01T00:00:00Z",
                "--json",
            ],
        )
        .json();
    assert_eq!(before["plan_name"], "Experience Plan");
    assert_eq!(before["has_events"], false);
    let later = store
        .expect(
            0,
            &[
                "show",
                "--workspace",
                "acme",
                "--as-of",
                "2999-01-01T00:00:00+08:00",
                "--json",
            ],
        )
        .json();
    assert_eq!(later["plan_name"], "Commercial Plan");
    assert_eq!(later["last_sequence"], 4);
}

#[test]
fn the_demo_runs_the_documented_flow() {
    let demo = billing(&["demo"]);
    assert_eq!(demo.code, 0, "{demo:?}");
    for expected in [
        "unknown-user-name",
        "Opening reminder sent to acme-finance",
        "Commercial Plan",
        "SettlementChanged",
        "data_visible_from",
        "clean",
    ] {
        assert!(
            demo.stdout.contains(expected),
            "demo lacks {expected}: {demo:?}"
        );
    }
    let json = billing(&["demo", "--json"]);
    assert_eq!(json.code, 0, "{json:?}");
    let json = json.json();
    assert_eq!(json["view"]["plan_name"], "Commercial Plan");
    assert_eq!(json["view"]["settlement_method"], "aws");
    assert_eq!(json["history"].as_array().unwrap().len(), 5);
    assert_eq!(json["audit"]["clean"], true);
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 7);
    assert_eq!(steps[2]["result"]["refused"]["code"], "unknown-user-name");
    assert_eq!(steps[4]["result"]["reminders_recorded"], 1);
    assert_eq!(steps[4]["result"]["delivered_on_second_run"], 0);
}

#[test]
fn help_and_version_exit_0() {
    let help = billing(&["--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("rebuild-views"));
    assert_eq!(billing(&["--version"]).code, 0);
    assert_eq!(billing(&["audit", "--help"]).code, 0);
    assert_eq!(billing(&[]).code, 2);
}
