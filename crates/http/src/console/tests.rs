//! Unit tests of the console: CSRF tokens, the same-origin check, command ids, words and
//! escaping.

use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use billing_domain::{
    CloudAccount, Countdown, DomainError, ExternalId, MethodId, Reason, Settlement, SiteId,
    SitePolicy, Standing, UserName,
};
use chrono::{DateTime, Utc};

use super::pages::{ErrorPage, Layout, Link};
use super::session::{csrf_token, csrf_valid, new_command_id, same_origin};
use super::words::{self, Cx, Said};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

#[test]
fn csrf_token_verifies_only_for_its_subject_and_key() {
    let key = [7u8; 32];
    let token = csrf_token(&key, "session-a");
    assert_eq!(token.len(), 43, "base64url of 32 bytes: {token}");
    assert!(csrf_valid(&key, "session-a", &token));
    assert!(!csrf_valid(&key, "session-b", &token));
    assert!(!csrf_valid(&[8u8; 32], "session-a", &token));
    let mut tampered = token.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    assert!(!csrf_valid(
        &key,
        "session-a",
        &String::from_utf8(tampered).unwrap()
    ));
    for bad in ["", "not base64!", "AAAA", &token[..40]] {
        assert!(!csrf_valid(&key, "session-a", bad), "{bad:?} accepted");
    }
}

#[test]
fn same_origin_compares_host_and_port() {
    let uri = Uri::from_static("/workspaces/ws-1/upgrade");
    assert!(same_origin(
        &headers(&[(header::HOST, "localhost:8080")]),
        &uri
    ));
    let ok = [
        ("http://localhost:8080", "localhost:8080"),
        ("https://billing.example", "billing.example"),
        ("https://Billing.Example:443", "billing.example"),
        ("http://billing.example", "billing.example:80"),
    ];
    for (origin, host) in ok {
        let h = headers(&[(header::ORIGIN, origin), (header::HOST, host)]);
        assert!(same_origin(&h, &uri), "{origin} vs {host}");
    }
    let refused = [
        ("http://evil.example", "localhost:8080"),
        ("http://localhost:9090", "localhost:8080"),
        ("https://billing.example", "billing.example:80"),
        ("null", "localhost:8080"),
        ("ftp://localhost:8080", "localhost:8080"),
    ];
    for (origin, host) in refused {
        let h = headers(&[(header::ORIGIN, origin), (header::HOST, host)]);
        assert!(!same_origin(&h, &uri), "{origin} vs {host} accepted");
    }
    // An Origin and no host to compare it with: refused.
    assert!(!same_origin(
        &headers(&[(header::ORIGIN, "http://localhost")]),
        &uri
    ));
}

#[test]
fn command_ids_are_new_random_hex_external_ids() {
    let a = new_command_id();
    let b = new_command_id();
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    assert!(ExternalId::parse(&a).is_ok());
}

#[test]
fn too_soon_names_the_next_instant_in_the_site_time_zone() {
    let policy = SitePolicy::builtin();
    let cn1 = SiteId::parse("cn1").unwrap();
    let e = DomainError::SettlementChangeTooSoon {
        last_changed_at: utc("2027-01-10T02:00:00Z"),
        next_allowed_at: utc("2027-01-31T16:00:00Z"),
        time_zone: "Asia/Shanghai".into(),
    };
    assert_eq!(
        words::domain(&e, Cx::new(&policy, Some(&cn1))),
        "The settlement method can change only once per calendar month. The next change is possible from 2027-02-01 00:00 (Asia/Shanghai)."
    );
    // Without the site the instant is still named, in UTC.
    assert!(words::domain(&e, Cx::new(&policy, None)).ends_with("from 2027-01-31 16:00 UTC."));
    let us1 = SiteId::parse("us1").unwrap();
    let la = DomainError::SettlementChangeTooSoon {
        last_changed_at: utc("2026-12-15T00:00:00Z"),
        next_allowed_at: utc("2027-01-01T08:00:00Z"),
        time_zone: "America/Los_Angeles".into(),
    };
    assert!(words::domain(&la, Cx::new(&policy, Some(&us1)))
        .ends_with("from 2027-01-01 00:00 (America/Los_Angeles)."));
}

#[test]
fn cloud_refusals_name_the_provider_and_account() {
    let policy = SitePolicy::builtin();
    let cx = Cx::new(&policy, SiteId::parse("cn2").ok().as_ref());
    let aws = MethodId::parse("aws").unwrap();
    let account = CloudAccount {
        account_id: ExternalId::parse("123456789012").unwrap(),
        instance_id: None,
    };
    assert_eq!(
        words::domain(
            &DomainError::CloudSettlementLockedIn {
                method: aws.clone(),
                account: account.clone()
            },
            cx
        ),
        "This workspace settles through an active AWS subscription; it can move to another method only after that subscription ends."
    );
    assert_eq!(
        words::domain(
            &DomainError::CloudAccountNotSubscribed {
                method: aws,
                account
            },
            cx
        ),
        "AWS account 123456789012 has no active marketplace subscription."
    );
    let user = UserName::parse("nobody-here").unwrap();
    assert_eq!(
        words::domain(&DomainError::UnknownUserName { user_name: user.clone() }, cx),
        "No Expense Center account has the user name “nobody-here”. Check the name, or register a new account below."
    );
    assert_eq!(
        words::domain(&DomainError::UserNameTaken { user_name: user }, cx),
        "The user name “nobody-here” is taken. Choose another one."
    );
}

#[test]
fn settlements_and_standings_in_words() {
    let policy = SitePolicy::builtin();
    let enterprise = Settlement::Enterprise {
        user_name: UserName::parse("acme-finance").unwrap(),
    };
    assert_eq!(
        words::settlement(&policy, &enterprise),
        "Enterprise (Expense Center account acme-finance)"
    );
    let alibaba = Settlement::Cloud {
        method: MethodId::parse("alibaba-cloud").unwrap(),
        account: CloudAccount {
            account_id: ExternalId::parse("1234").unwrap(),
            instance_id: Some(ExternalId::parse("i-9").unwrap()),
        },
    };
    assert_eq!(
        words::settlement(&policy, &alibaba),
        "Alibaba Cloud account 1234 (instance i-9)"
    );
    let cx = Cx::new(&policy, SiteId::parse("cn1").ok().as_ref());
    assert_eq!(words::standing(None, &[], cx), "Good standing");
    let countdown = Countdown {
        number: 1,
        started_at: utc("2027-03-01T00:00:00Z"),
        deadline: utc("2027-03-15T00:00:00Z"),
        remind_at: utc("2027-03-12T00:00:00Z"),
        reminded_at: None,
    };
    let reasons = [Reason::Arrears {
        bill: billing_domain::BillId::parse("B-1").unwrap(),
        amount: billing_domain::Money::new(1200, billing_domain::Currency::Cny).unwrap(),
        since: utc("2027-03-01T00:00:00Z"),
    }];
    let text = words::standing(Some(&Standing::Countdown(countdown)), &reasons, cx);
    assert!(
        text.starts_with("Countdown: locked on 2027-03-15 08:00 (Asia/Shanghai) unless bill B-1"),
        "{text}"
    );
}

#[test]
fn pages_escape_what_they_show() {
    let page = ErrorPage {
        layout: Layout {
            title: "Error <b>".into(),
            home: "/".into(),
            sign_out: "/sign-out".into(),
            bar: None,
        },
        error: Some(Said::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-value",
            "The workspace id “<script>alert('x')</script>\"” is not valid.",
        )),
        back: Link {
            href: "/\"><script>".into(),
            text: "Back".into(),
        },
    };
    let html = page.render().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(&#39;x&#39;)"),
        "{html}"
    );
    assert!(
        html.contains("<title>Error &#60;b&#62; · workspace-billing</title>"),
        "{html}"
    );
    assert!(html.contains(r#"<p id="error" role="alert">The workspace id"#));
    assert!(html.contains(r#"<code id="error-code">invalid-value</code>"#));
}
