//! The whole log: export, import, audit (tampering, expected heads) and `show --as-of`.

use std::path::{Path, PathBuf};

use crate::harness::Store;

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
