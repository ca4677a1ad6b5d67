//! The documented flow through separate invocations: settlement, `--json`, command ids, bad
//! input and an unreachable store.

use crate::harness::{billing, billing_with_db, Store};

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
    assert!(show.stdout.contains("Data visible from"), "{show:?}");
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

    // Ending the subscription is reported to the workspace (SPEC §10: on AWS a countdown
    // starts); the owner's switch to enterprise then clears that reason and does not count.
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
    let switched = store
        .expect(
            0,
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "enterprise",
                "--json",
            ],
        )
        .json();
    assert_eq!(
        switched["events"][0]["payload"]["SettlementChanged"]["reason"], "cloud-subscription-ended",
        "{switched}"
    );
    // The owner's own change back to AWS in the same month is the second owner request.
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
    let again = store.expect(
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
