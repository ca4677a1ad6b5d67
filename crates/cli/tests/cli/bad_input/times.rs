//! Times, versions, roles, heads.

use super::catalogue::{check_all, invalid, shown, usage, HASH};

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
