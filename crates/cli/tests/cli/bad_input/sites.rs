//! Sites, methods, cloud accounts.

use super::catalogue::{case, check_all, invalid, refused};

#[test]
fn unknown_or_malformed_sites_and_methods_are_refused() {
    let cases = vec![
        // Malformed: refused before the store is opened.
        invalid(
            "upper-case site",
            &["upgrade", "--workspace", "new-ws", "--site", "CN1"],
            &["site", "CN1"],
        ),
        invalid(
            "empty site",
            &["upgrade", "--workspace", "new-ws", "--site="],
            &["site", "\"\""],
        ),
        invalid(
            "site with SQL",
            &["upgrade", "--workspace", "new-ws", "--site", "us1';--"],
            &["site", "us1';--"],
        ),
        invalid(
            "site with a space",
            &["upgrade", "--workspace", "new-ws", "--site", "us 1"],
            &["site", "us 1"],
        ),
        invalid(
            "site with a newline",
            &["upgrade", "--workspace", "new-ws", "--site", "us1\n"],
            &["site", "us1\\n"],
        ),
        invalid(
            "site of 33 characters",
            &[
                "upgrade",
                "--workspace",
                "new-ws",
                "--site",
                &"s".repeat(33),
            ],
            &["site", &"s".repeat(33)],
        ),
        invalid(
            "upper-case method",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "AWS",
            ],
            &["method", "AWS"],
        ),
        invalid(
            "empty method",
            &["settlement", "set", "--workspace", "acme", "--method="],
            &["method", "\"\""],
        ),
        invalid(
            "method with SQL",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws\" OR 1=1",
            ],
            &["method", "aws\\\" OR 1=1"],
        ),
        invalid(
            "method with a bell",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws\u{7}",
            ],
            &["method", "aws\\u{7}"],
        ),
        invalid(
            "cloud account with quotes",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws",
                "--account",
                "1' OR '1'='1",
            ],
            &["account", "1' OR '1'='1"],
        ),
        invalid(
            "marketplace instance with a space",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "alibaba-cloud",
                "--account",
                "1",
                "--instance",
                "i 1",
            ],
            &["instance", "i 1"],
        ),
        case(
            "enterprise with a cloud account",
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
            2,
            "invalid-settlement-request",
            &["enterprise"],
        )
        .prepared_only(),
        case(
            "an instance without an account",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws",
                "--instance",
                "i-1",
            ],
            2,
            "invalid-settlement-request",
            &["aws", "instance"],
        )
        .prepared_only(),
        case(
            "cloud method without an account",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "aws",
            ],
            2,
            "invalid-settlement-request",
            &["aws", "account"],
        )
        .prepared_only(),
        // Well-formed but unknown: the site policy refuses them by rule, naming the value.
        refused(
            "unknown site",
            &["upgrade", "--workspace", "new-ws", "--site", "zz9"],
            "unknown-site",
            &["zz9"],
        ),
        refused(
            "unknown method",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "bitcoin",
            ],
            "settlement-not-allowed-on-site",
            &["bitcoin", "us1"],
        )
        .prepared_only(),
        refused(
            "a method of another site",
            &[
                "settlement",
                "set",
                "--workspace",
                "acme",
                "--method",
                "alibaba-cloud",
                "--account",
                "1",
                "--instance",
                "i-1",
            ],
            "settlement-not-allowed-on-site",
            &["alibaba-cloud", "us1"],
        )
        .prepared_only(),
        // The embedded marketplace knows its providers.
        invalid(
            "unknown cloud provider",
            &["cloud", "subscribe", "--provider", "gcp", "--account", "1"],
            &["provider", "gcp"],
        ),
        invalid(
            "enterprise is no cloud provider",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "enterprise",
                "--account",
                "1",
            ],
            &["provider", "enterprise"],
        ),
        invalid(
            "upper-case provider",
            &["cloud", "subscribe", "--provider", "AWS", "--account", "1"],
            &["provider", "AWS"],
        ),
        invalid(
            "empty cloud account",
            &["cloud", "subscribe", "--provider", "aws", "--account="],
            &["account", "\"\""],
        ),
        invalid(
            "cloud account with a double quote",
            &[
                "cloud",
                "unsubscribe",
                "--provider",
                "aws",
                "--account",
                "12\"34",
            ],
            &["account", "12\\\"34"],
        ),
        invalid(
            "provider that needs an instance",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "alibaba-cloud",
                "--account",
                "1",
            ],
            &["alibaba-cloud", "instance"],
        ),
        invalid(
            "provider that takes no instance",
            &[
                "cloud",
                "subscribe",
                "--provider",
                "aws",
                "--account",
                "1",
                "--instance",
                "i-1",
            ],
            &["aws", "instance", "i-1"],
        ),
    ];
    check_all(&cases);
}
