//! Files.

use std::fs;
use std::path::Path;

use super::catalogue::{case, check_run, exported, prepared, usage};

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
