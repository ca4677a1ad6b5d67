//! The checker against a real (SQLite) store: a clean run passes, an unacknowledged command is
//! re-sent, and journals that disagree with the store are caught.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_billing-reliability");

fn run(args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("null");
    let json = serde_json::from_str(last).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        if json.is_null() {
            Value::String(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        } else {
            json
        },
    )
}

fn check(db: &str, journals: &[&Path]) -> (i32, Value) {
    let mut args = vec!["check", "--db", db];
    for j in journals {
        args.push("--journal");
        args.push(j.to_str().unwrap());
    }
    run(&args)
}

fn kinds(report: &Value) -> Vec<String> {
    report["anomalies"]["by_kind"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn check_passes_a_clean_run_resends_and_catches_lies() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("store.db").display());
    let journal = dir.path().join("load.journal");
    let (code, load) = run(&[
        "load",
        "--db",
        &db,
        "--journal",
        journal.to_str().unwrap(),
        "--workspaces",
        "12",
        "--writers",
        "2",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0, "{load}");
    assert_eq!(load["unexpected_outcomes"], 0, "{load}");

    let (code, report) = check(&db, &[&journal]);
    assert_eq!(code, 0, "{report}");
    let counts = &report["counts"];
    assert_eq!(counts["acked_ok"], counts["command_records"], "{report}");
    assert_eq!(
        counts["resent_acknowledged"], counts["acked_ok"],
        "{report}"
    );
    assert_eq!(
        counts["resent_acknowledged_replayed_same"], counts["acked_ok"],
        "{report}"
    );
    assert_eq!(report["outbox"]["upgrades"], 12, "{report}");

    // A command sent but never acknowledged (the generator died before executing it): the
    // check re-sends it and it succeeds.
    let text = std::fs::read_to_string(&journal).unwrap();
    let sent = text
        .lines()
        .find(|l| l.starts_with("sent ") && l.contains(".request "))
        .unwrap();
    let request = sent.replacen("w00000", "w00099", 3);
    let unacked = dir.path().join("unacked.journal");
    std::fs::write(&unacked, format!("{request}\n")).unwrap();
    let (code, report) = check(&db, &[&journal, &unacked]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"]["unacknowledged"], 1, "{report}");
    assert_eq!(report["counts"]["resent_unacknowledged_ok"], 1, "{report}");

    // A journal acknowledging a command the store does not hold.
    let ghost = dir.path().join("ghost.journal");
    let ghost_sent = sent.replacen("w00000", "w00098", 3);
    let ghost_id = ghost_sent.split(' ').nth(1).unwrap().to_owned();
    std::fs::write(
        &ghost,
        format!("{ghost_sent}\nack {ghost_id} w00098 ok 1 1\n"),
    )
    .unwrap();
    let (code, report) = check(&db, &[&journal, &unacked, &ghost]);
    assert_eq!(code, 1, "{report}");
    assert!(
        kinds(&report).contains(&"acknowledged".to_owned()),
        "{report}"
    );

    // A journal saying a command was refused although it wrote events.
    let liar = dir.path().join("liar.journal");
    let lied: String = text
        .lines()
        .map(|l| {
            if l.starts_with("ack ") && l.contains(".accept ") && l.contains(" ok ") {
                let mut f = l.split(' ');
                let (_, id, ws) = (f.next(), f.next().unwrap(), f.next().unwrap());
                format!("ack {id} {ws} refused already-commercial\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&liar, lied).unwrap();
    let (code, report) = check(&db, &[&liar, &unacked]);
    assert_eq!(code, 1, "{report}");
    assert!(
        kinds(&report).contains(&"refused-wrote".to_owned()),
        "{report}"
    );

    // Commands in the store that no journal sent.
    let (code, report) = check(&db, &[&unacked]);
    assert_eq!(code, 1, "{report}");
    assert!(kinds(&report).contains(&"unsent".to_owned()), "{report}");
}

#[test]
fn integrity_reports_a_sound_file_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let db = format!("sqlite://{}", path.display());
    let journal = dir.path().join("j");
    let (code, _) = run(&[
        "load",
        "--db",
        &db,
        "--journal",
        journal.to_str().unwrap(),
        "--workspaces",
        "2",
    ]);
    assert_eq!(code, 0);
    let (code, report) = run(&["integrity", "--db", &db]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["integrity"], "ok");
    assert!(report["events"].as_u64().unwrap() >= 8, "{report}");
    let missing = format!("sqlite://{}", dir.path().join("nothing.db").display());
    let (code, _) = run(&["integrity", "--db", &missing]);
    assert_eq!(code, 3);
    assert!(!dir.path().join("nothing.db").exists());
}
