//! SQL metacharacters in values that are valid are data, never SQL.

use serde_json::Value;

use super::catalogue::{exported, prepared};
use super::run::{billing, os, sqlite_url};

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
