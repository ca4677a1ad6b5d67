//! An auditor replays an exported log: it verifies order, sequences, the hash chain, heads kept
//! outside the database and the aggregate's rules, and prints findings and a summary. Then it
//! alters one event in a copy of the log and shows that the audit catches it.
//!
//! `cargo run --example audit_replay [LOG.jsonl [WORKSPACE=HEAD ...]]` — without arguments it
//! first writes a small log of its own.

use std::error::Error;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use billing_domain::memory::{InMemoryExpenseCenter, InMemoryMarketplace};
use billing_domain::{
    Action, Actor, ActorId, AgreementVersion, ExternalId, Role, SiteId, SitePolicy, UserName,
    WorkspaceCommand, WorkspaceId, WorkspaceServices,
};
use billing_store::audit::{audit_lines, AuditOptions};
use billing_store::{BillingStore, SystemClock};

async fn write_sample_log(path: &std::path::Path) -> Result<Vec<(String, String)>, Box<dyn Error>> {
    let expense_center = Arc::new(InMemoryExpenseCenter::new());
    expense_center.add(&UserName::parse("acme-finance")?);
    let services = WorkspaceServices {
        expense_center,
        marketplace: Arc::new(InMemoryMarketplace::new()),
        policy: Arc::new(SitePolicy::builtin()),
        clock: Arc::new(SystemClock),
    };
    let store = BillingStore::open("sqlite::memory:", services).await?;
    let owner = Actor::new(ActorId::parse("alice")?, Role::Owner);
    let mut heads = Vec::new();
    for (name, site) in [("acme", "cn1"), ("globex", "us1")] {
        let workspace = WorkspaceId::parse(name)?;
        let steps = [
            Action::RequestUpgrade {
                site: SiteId::parse(site)?,
            },
            Action::BindAccount {
                user_name: UserName::parse("acme-finance")?,
            },
            Action::AcceptAgreement {
                version: AgreementVersion::parse("2024-06")?,
            },
        ];
        for (i, action) in steps.into_iter().enumerate() {
            let id = ExternalId::parse(&format!("{name}-{i}"))?;
            store
                .execute(
                    &workspace,
                    &WorkspaceCommand::new(id, owner.clone(), action),
                )
                .await?;
        }
        // An auditor keeps the head outside the database.
        if let Some(head) = store.head(&workspace).await? {
            heads.push((name.to_owned(), head));
        }
    }
    let mut file = File::create(path)?;
    store.export(&mut file, |_| {}).await?;
    Ok(heads)
}

fn audit(path: &std::path::Path, heads: &[(String, String)]) -> Result<u64, Box<dyn Error>> {
    let options = AuditOptions {
        expect_heads: heads.to_vec(),
    };
    let summary = audit_lines(
        BufReader::new(File::open(path)?),
        Some(&SitePolicy::builtin()),
        &options,
        |finding| println!("  finding: {finding}"),
        |_| {},
    )?;
    println!(
        "  {} events, {} workspaces, {} commercial, {} findings",
        summary.events, summary.workspaces, summary.commercial, summary.findings
    );
    Ok(summary.findings)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir()?;
    let (path, heads) = match args.split_first() {
        Some((file, rest)) => {
            let heads = rest
                .iter()
                .filter_map(|a| a.split_once('=').map(|(w, h)| (w.to_owned(), h.to_owned())))
                .collect();
            (PathBuf::from(file), heads)
        }
        None => {
            let path = dir.path().join("log.jsonl");
            let heads = write_sample_log(&path).await?;
            (path, heads)
        }
    };
    println!("audit of {}", path.display());
    audit(&path, &heads)?;

    // Tamper with a copy: move the first workspace's site, as a forger might.
    let text = std::fs::read_to_string(&path)?;
    let forged = dir.path().join("forged.jsonl");
    std::fs::write(
        &forged,
        text.replacen("\"site\":\"cn1\"", "\"site\":\"cn4\"", 1),
    )?;
    println!("audit of a tampered copy");
    let findings = audit(&forged, &heads)?;
    println!(
        "tampering {}",
        if findings > 0 {
            "detected"
        } else {
            "NOT detected"
        }
    );
    Ok(())
}
