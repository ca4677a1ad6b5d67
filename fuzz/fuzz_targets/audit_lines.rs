//! Arbitrary bytes as a JSON Lines log: `audit_lines` must never panic, must return `Ok` (bad
//! content is a finding, not an error), and must count every line and every finding.

#![no_main]

use billing_domain::SitePolicy;
use billing_store::audit::{audit_lines, AuditOptions, MAX_LINE_BYTES};
use billing_store::FindingCode;
use libfuzzer_sys::fuzz_target;

/// The number of lines the reader sees: a final newline ends the last line.
fn lines(data: &[u8]) -> u64 {
    if data.is_empty() {
        return 0;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.iter().filter(|b| **b == b'\n').count() as u64 + 1
}

fuzz_target!(|data: &[u8]| {
    let policy = SitePolicy::builtin();
    let mut findings = Vec::new();
    let summary = audit_lines(
        data,
        Some(&policy),
        &AuditOptions::default(),
        |f| findings.push(f),
        |_| {},
    )
    .expect("audit_lines over a byte slice cannot fail to read");
    assert_eq!(summary.records, lines(data), "every line is counted");
    assert_eq!(
        summary.findings,
        findings.len() as u64,
        "every finding is counted"
    );
    assert!(summary.events <= summary.records);
    for finding in &findings {
        if let Some(line) = finding.line {
            assert!(line >= 1 && line <= summary.records, "{finding}");
        }
        if finding.code == FindingCode::MalformedLine && finding.detail.contains("longer than") {
            assert!(data.len() > MAX_LINE_BYTES);
        }
    }
});
