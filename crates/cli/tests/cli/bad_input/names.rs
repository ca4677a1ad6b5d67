//! User names and e-mails.

use super::catalogue::{check_all, invalid, shown, Case};

#[test]
fn user_names_that_are_empty_overlong_or_odd_are_refused() {
    let long = "a".repeat(65);
    let names: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("too short", "ab"),
        ("65 characters", &long),
        ("a space", "acme finance"),
        ("a double quote", "acme\"finance"),
        ("a single quote", "it's"),
        ("SQL", "x';DROP TABLE events;--"),
        ("SQL", "a\" OR 1=1"),
        ("unicode", "ünïcødé"),
        ("CJK", "费用中心"),
        ("a bell", "acme\u{7}fin"),
        ("a newline", "acme\nfinance"),
        ("an escape sequence", "acme\u{1b}[2Jfin"),
        ("a right-to-left override", "acme\u{202e}nif"),
        ("a leading dash", "-acme"),
        ("a percent sign", "acme%"),
    ];
    let mut cases = Vec::new();
    for (what, name) in &names {
        let value = shown(name);
        let username = format!("--username={name}");
        cases.push(invalid(
            &format!("register: user name with {what}"),
            &[
                "account",
                "register",
                &username,
                "--email",
                "f@acme.example",
            ],
            &["username", &value],
        ));
        cases.push(invalid(
            &format!("bind: user name with {what}"),
            &["account", "bind", "--workspace", "acme", &username],
            &["username", &value],
        ));
    }
    check_all(&cases);
}

#[test]
fn bad_emails_are_refused() {
    let long = format!("{}@acme.example", "a".repeat(250));
    let emails: Vec<(&str, &str)> = vec![
        ("empty", ""),
        ("no @", "nope"),
        ("no domain dot", "a@b"),
        ("no local part", "@acme.example"),
        ("a domain starting with a dot", "a@.example"),
        ("a space", "a b@acme.example"),
        ("angle brackets", "<a@acme.example>"),
        ("a quote", "a'@acme.example"),
        ("a newline", "a@acme.example\n"),
        ("a bell", "a\u{7}@acme.example"),
        ("unicode", "ä@acme.example"),
        ("255 characters", &long),
    ];
    let cases: Vec<Case> = emails
        .iter()
        .map(|(what, email)| {
            let email_arg = format!("--email={email}");
            invalid(
                &format!("register: e-mail with {what}"),
                &["account", "register", "--username", "new-user", &email_arg],
                &["email", &shown(email)],
            )
        })
        .collect();
    check_all(&cases);
}
