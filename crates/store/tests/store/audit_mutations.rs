//! The audit replayer against mutated logs: every mutation is reported with its code, nothing
//! panics, and the replayer keeps going (every line is read; other workspaces stay clean).

use billing_domain::SitePolicy;
use billing_store::audit::{audit_lines, AuditOptions};
use billing_store::chain::{event_hash, HashInput};
use billing_store::{BillingStore, FindingCode};
use proptest::prelude::*;
use serde_json::Value;

use crate::harness::*;

/// Lines of a log, and each workspace's head.
type Log = (Vec<String>, Vec<(String, String)>);

/// A valid export of a few workspaces (some upgraded, some not), and each workspace's head.
fn valid_log() -> &'static Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let world = World::new();
            let store = BillingStore::open("sqlite::memory:", world.services.clone())
                .await
                .unwrap();
            for (i, site) in ["cn1", "us1", "eu1"].iter().enumerate() {
                upgrade(&store, &format!("ws-{i}"), site).await;
            }
            store
                .execute(&ws("ws-partial"), &owner_cmd("p1", act::request("cn4")))
                .await
                .unwrap();
            store
                .execute(&ws("ws-partial"), &owner_cmd("p2", act::bind(KNOWN_USER)))
                .await
                .unwrap();
            let mut out = Vec::new();
            store.export(&mut out, |_| {}).await.unwrap();
            let lines: Vec<String> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            let mut heads = Vec::new();
            for name in ["ws-0", "ws-1", "ws-2", "ws-partial"] {
                heads.push((
                    name.to_owned(),
                    store.head(&ws(name)).await.unwrap().unwrap(),
                ));
            }
            (lines, heads)
        })
    })
}

fn workspace_of(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["aggregate_id"].as_str().unwrap().to_owned()
}

fn is_last_of_workspace(lines: &[String], i: usize) -> bool {
    i + 1 == lines.len() || workspace_of(&lines[i + 1]) != workspace_of(&lines[i])
}

#[derive(Clone, Debug)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    SwapWithNext(usize),
    TruncateWorkspace(usize),
    EditPayload(usize),
    EditHash(usize),
    InsertForged(usize),
    BreakJson(usize),
}

fn mutation(n: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..n).prop_map(Mutation::Drop),
        (0..n).prop_map(Mutation::Duplicate),
        (0..n).prop_map(Mutation::SwapWithNext),
        (0..n).prop_map(Mutation::TruncateWorkspace),
        (0..n).prop_map(Mutation::EditPayload),
        (0..n).prop_map(Mutation::EditHash),
        (0..n).prop_map(Mutation::InsertForged),
        (0..n).prop_map(Mutation::BreakJson),
    ]
}

/// Applies the mutation; returns the new lines, the expected finding codes (any of them) and the
/// workspace the findings belong to (`None`: unknown, e.g. broken JSON).
fn apply(
    lines: &[String],
    m: &Mutation,
) -> Option<(Vec<String>, Vec<FindingCode>, Option<String>)> {
    let mut out = lines.to_vec();
    let ws_of = |i: usize| Some(workspace_of(&lines[i]));
    Some(match *m {
        Mutation::Drop(i) => {
            out.remove(i);
            let code = if is_last_of_workspace(lines, i) {
                FindingCode::HeadMismatch
            } else {
                FindingCode::SequenceGap
            };
            (out, vec![code], ws_of(i))
        }
        Mutation::Duplicate(i) => {
            out.insert(i + 1, lines[i].clone());
            (out, vec![FindingCode::DuplicateSequence], ws_of(i))
        }
        Mutation::SwapWithNext(i) => {
            if is_last_of_workspace(lines, i) {
                return None;
            }
            out.swap(i, i + 1);
            (out, vec![FindingCode::OutOfOrder], ws_of(i))
        }
        Mutation::TruncateWorkspace(i) => {
            // Remove this line and every later line of its workspace: the newest events.
            let ws = workspace_of(&lines[i]);
            let j = i;
            while j < out.len() && workspace_of(&out[j]) == ws {
                out.remove(j);
            }
            (out, vec![FindingCode::HeadMismatch], Some(ws))
        }
        Mutation::EditPayload(i) => {
            let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
            let payload = v["payload"]
                .as_object_mut()
                .unwrap()
                .values_mut()
                .next()
                .unwrap();
            payload["by"] = Value::String("mallory".into());
            out[i] = serde_json::to_string(&v).unwrap();
            (out, vec![FindingCode::HashMismatch], ws_of(i))
        }
        Mutation::EditHash(i) => {
            let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
            let hash = v["metadata"]["hash"].as_str().unwrap().to_owned();
            let rest = &hash[1..];
            let flipped = if hash.starts_with('0') {
                format!("1{rest}")
            } else {
                format!("0{rest}")
            };
            v["metadata"]["hash"] = Value::String(flipped);
            out[i] = serde_json::to_string(&v).unwrap();
            (out, vec![FindingCode::HashMismatch], ws_of(i))
        }
        Mutation::InsertForged(i) => {
            // A well-formed event with a correct hash of its own, linked to nothing real.
            let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
            let sequence = v["sequence"].as_u64().unwrap() + 1;
            v["sequence"] = Value::from(sequence);
            v["metadata"]["prev_hash"] = Value::String("ab".repeat(32));
            let mut meta = v["metadata"].clone();
            meta.as_object_mut().unwrap().remove("hash");
            let hash = event_hash(HashInput {
                aggregate_type: v["aggregate_type"].as_str().unwrap(),
                aggregate_id: v["aggregate_id"].as_str().unwrap(),
                sequence,
                event_type: v["event_type"].as_str().unwrap(),
                event_version: v["event_version"].as_str().unwrap(),
                payload: &v["payload"],
                metadata_without_hash: &meta,
            });
            v["metadata"]["hash"] = Value::String(hash);
            out.insert(i + 1, serde_json::to_string(&v).unwrap());
            (out, vec![FindingCode::ChainBroken], ws_of(i))
        }
        Mutation::BreakJson(i) => {
            let half = lines[i].len() / 2;
            out[i] = lines[i][..half].to_owned();
            (out, vec![FindingCode::MalformedLine], None)
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        .. ProptestConfig::default()
    })]

    #[test]
    fn every_mutation_is_reported_and_the_audit_keeps_going(m in mutation(valid_log().0.len())) {
        let (lines, heads) = valid_log();
        let Some((mutated, expected, workspace)) = apply(lines, &m) else { return Ok(()) };
        let text = mutated.join("\n") + "\n";
        let mut findings = Vec::new();
        let options = AuditOptions { expect_heads: heads.clone() };
        let policy = SitePolicy::builtin();
        let summary = audit_lines(text.as_bytes(), Some(&policy), &options, |f| findings.push(f), |_| {}).unwrap();
        prop_assert!(
            findings.iter().any(|f| expected.contains(&f.code)),
            "{:?}: expected one of {:?}, got {:?}", m, expected, findings
        );
        // The replayer kept going: every line was read, and other workspaces stayed clean.
        prop_assert_eq!(summary.records, mutated.len() as u64);
        if let Some(ws) = workspace {
            for f in &findings {
                prop_assert_eq!(f.workspace.as_deref(), Some(ws.as_str()), "{:?}: {}", m, f);
            }
        }
        prop_assert_eq!(summary.findings, findings.len() as u64);
        // File findings carry line numbers where a line is at fault.
        for f in &findings {
            if f.code != FindingCode::HeadMismatch && f.code != FindingCode::InvalidTransition {
                prop_assert!(f.line.is_some(), "{}", f);
            }
        }
    }
}

#[test]
fn the_clean_log_has_no_findings() {
    let (lines, heads) = valid_log();
    let text = lines.join("\n") + "\n";
    let mut findings = Vec::new();
    let summary = audit_lines(
        text.as_bytes(),
        Some(&SitePolicy::builtin()),
        &AuditOptions {
            expect_heads: heads.clone(),
        },
        |f| findings.push(f),
        |_| {},
    )
    .unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(
        (summary.events, summary.workspaces, summary.commercial),
        (14, 4, 3)
    );
    assert_eq!(summary.by_site.get("cn4"), Some(&1));
    assert_eq!(summary.by_method.get("enterprise"), Some(&3));
}

#[test]
fn garbage_input_never_panics() {
    let inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\n\n\n".to_vec(),
        b"{}".to_vec(),
        b"[1,2,3]\nnull\n\"x\"".to_vec(),
        vec![0xff, 0xfe, b'\n', b'{'],
        b"{\"aggregate_type\":\"workspace\",\"aggregate_id\":\"w\",\"sequence\":-1}".to_vec(),
        b"{\"aggregate_type\":\"workspace\",\"aggregate_id\":\"w\",\"sequence\":1,\"event_type\":\"PlanDowngraded\",\"event_version\":\"1.0\",\"payload\":{},\"metadata\":{}}".to_vec(),
        b"{\"aggregate_type\":\"workspace\",\"aggregate_id\":\"w\",\"sequence\":1,\"event_type\":\"UpgradeRequested\",\"event_version\":\"9.9\",\"payload\":{},\"metadata\":{}}".to_vec(),
    ];
    for input in inputs {
        let mut findings = Vec::new();
        audit_lines(
            input.as_slice(),
            None,
            &AuditOptions::default(),
            |f| findings.push(f),
            |_| {},
        )
        .unwrap();
    }
    let mut codes = Vec::new();
    audit_lines(
        b"{\"aggregate_type\":\"workspace\",\"aggregate_id\":\"w\",\"sequence\":1,\"event_type\":\"PlanDowngraded\",\"event_version\":\"1.0\",\"payload\":{},\"metadata\":{}}\n{\"aggregate_type\":\"workspace\",\"aggregate_id\":\"w2\",\"sequence\":1,\"event_type\":\"UpgradeRequested\",\"event_version\":\"9.9\",\"payload\":{},\"metadata\":{}}".as_slice(),
        None,
        &AuditOptions::default(),
        |f| codes.push(f.code),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        codes,
        [FindingCode::UnknownEvent, FindingCode::UnsupportedVersion]
    );
}
