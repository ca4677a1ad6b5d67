//! What people read against what `--json` keeps: instants to the minute in the site's time zone
//! in tables and full precision in JSON; labels, not field names; every command's human output
//! ending in a newline.

use chrono::{DateTime, Utc};

use crate::harness::{billing, Run, Store};

/// How the tables show a stored instant of a workspace on `us1` (`2026-11-27T09:00:00.123Z` →
/// `2026-11-27 01:00 (America/Los_Angeles)`); the stores write UTC with a `Z`.
fn on_us1(stored: &str) -> String {
    assert!(stored.ends_with('Z') && stored.len() >= 20, "{stored}");
    let t: DateTime<Utc> = stored.parse().unwrap();
    let local = t.with_timezone(&chrono_tz::America::Los_Angeles);
    format!("{} (America/Los_Angeles)", local.format("%Y-%m-%d %H:%M"))
}

/// The value of the two-column row labelled `label` in a human view table.
fn row<'a>(run: &'a Run, label: &str) -> &'a str {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} row: {run:?}"))
}

#[test]
fn tables_show_instants_to_the_minute_in_the_sites_zone_while_json_keeps_them() {
    let store = Store::new();
    store.upgraded();
    let as_of = "2999-01-01T00:00:00.123456789Z";

    let shown = store.expect(0, &["show", "--workspace", "acme", "--as-of", as_of]);
    let json = store
        .expect(
            0,
            &["show", "--workspace", "acme", "--as-of", as_of, "--json"],
        )
        .json();
    assert_eq!(json["as_of"], as_of, "{json}");
    assert_eq!(
        row(&shown, "As of"),
        "2998-12-31 16:00 (America/Los_Angeles)"
    );
    let upgraded_at = json["upgraded_at"].as_str().unwrap();
    assert_eq!(row(&shown, "Upgraded at"), on_us1(upgraded_at));
    assert_eq!(
        row(&shown, "Data visible from"),
        on_us1(json["data_visible_from"].as_str().unwrap())
    );
    assert!(!shown.stdout.contains("data_visible_from"), "{shown:?}");
    assert!(!shown.stdout.contains(as_of), "{shown:?}");
    assert!(!shown.stdout.contains(upgraded_at), "{shown:?}");

    // The audit trail: JSON carries each instant exactly as the log stores it.
    let history = store.expect(0, &["history", "--workspace", "acme"]);
    let trail = store
        .expect(0, &["history", "--workspace", "acme", "--json"])
        .json();
    let events = trail["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "{trail}");
    let exported = store.expect(0, &["export"]);
    for (event, line) in events.iter().zip(exported.stdout.lines()) {
        let stored: serde_json::Value = serde_json::from_str(line).unwrap();
        let occurred_at = event["occurred_at"].as_str().unwrap();
        assert_eq!(occurred_at, stored["metadata"]["occurred_at"], "{line}");
        let sequence = event["sequence"].as_i64().unwrap();
        let line = history
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{sequence} ")))
            .unwrap_or_else(|| panic!("no row for event {sequence}: {history:?}"));
        assert!(line.contains(&on_us1(occurred_at)), "{line}");
        assert!(!line.contains(occurred_at), "{line}");
    }
}

#[test]
fn every_command_ends_its_human_output_with_a_newline() {
    let store = Store::new();
    let log = store.path("log.jsonl");
    let log = log.to_str().unwrap();
    let copy = Store::new();
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut run = |store: &Store, code: i32, args: &[&str]| {
        runs.push((args.join(" "), store.expect(code, args)));
    };

    run(&store, 0, &["history", "--workspace", "acme"]);
    run(&store, 0, &["show", "--workspace", "acme"]);
    run(
        &store,
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
    run(
        &store,
        0,
        &["upgrade", "--workspace", "acme", "--site", "us1"],
    );
    run(
        &store,
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
    run(
        &store,
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
    let aws = ["--provider", "aws", "--account", "123456789012"];
    run(&store, 0, &[&["cloud", "subscribe"][..], &aws].concat());
    run(
        &store,
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
    run(&store, 0, &[&["cloud", "unsubscribe"][..], &aws].concat());
    run(
        &store,
        1,
        &["upgrade", "--workspace", "acme", "--site", "us1"],
    );
    run(&store, 0, &["show", "--workspace", "acme"]);
    run(
        &store,
        0,
        &[
            "show",
            "--workspace",
            "acme",
            "--as-of",
            "2000-01-01T00:00:00Z",
        ],
    );
    run(&store, 0, &["history", "--workspace", "acme"]);
    run(&store, 0, &["export"]);
    run(&store, 0, &["export", "--out", log]);
    run(&store, 0, &["audit"]);
    run(&store, 0, &["audit", "--from", log]);
    run(&store, 0, &["rebuild-views"]);
    run(&copy, 0, &["import", "--from", log]);
    runs.push(("demo".to_owned(), billing(&["demo"])));

    for (args, run) in &runs {
        assert!(
            !run.stdout.is_empty() || !run.stderr.is_empty(),
            "billing {args} said nothing: {run:?}"
        );
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "billing {args}: {stream} does not end with a newline: {text:?}"
            );
        }
    }
}

#[test]
fn export_to_a_file_ends_its_summary_with_a_newline() {
    let store = Store::new();
    store.upgraded();
    let out = store.path("log.jsonl");
    let run = store.expect(0, &["export", "--out", out.to_str().unwrap()]);
    assert_eq!(
        run.stdout,
        format!("Exported 4 events to {}\n", out.display()),
        "{run:?}"
    );
    let empty = Store::new();
    let out = empty.path("log.jsonl");
    let run = empty.expect(0, &["export", "--out", out.to_str().unwrap()]);
    assert_eq!(
        run.stdout,
        format!("Exported 0 events to {}\n", out.display())
    );
}
