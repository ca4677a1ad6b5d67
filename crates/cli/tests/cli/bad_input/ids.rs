//! Workspace ids, actors and command ids.

use super::catalogue::{check_all, invalid, shown, USER};

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
