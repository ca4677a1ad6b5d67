//! `billing demo`, `--help` and `--version`.

use crate::harness::billing;

#[test]
fn the_demo_runs_the_documented_flow() {
    let demo = billing(&["demo"]);
    assert_eq!(demo.code, 0, "{demo:?}");
    for expected in [
        "unknown-user-name",
        "Opening reminder sent to acme-finance",
        "Commercial Plan",
        "SettlementChanged",
        "Data visible from",
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
