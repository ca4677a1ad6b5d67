//! The whole log: `export`, `import`, `audit` and `rebuild-views`.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};

use billing_domain::SitePolicy;
use billing_store::audit::{audit_lines, audit_store, AuditOptions};
use billing_store::{Finding, StoreError, Summary};
use serde_json::json;
use tempfile::NamedTempFile;

use super::{open, Context, Report};
use crate::args::ExpectHead;
use crate::exit::{CliError, Status};
use crate::output::{self, Table};
use crate::progress::Progress;

/// How many findings a JSON audit report lists (all are counted and, for people, printed).
const JSON_FINDINGS: usize = 1_000;

/// `billing export`.
pub(super) async fn export(ctx: &Context, out: Option<&Path>) -> Result<Report, CliError> {
    // The output comes first: a path that cannot be written is refused before the store opens.
    let target = match out {
        None => None,
        Some(path) => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let file = NamedTempFile::new_in(dir).map_err(|e| {
                CliError::usage("io", format!("cannot write {}: {e}", path.display()))
            })?;
            Some((path, file))
        }
    };
    let embedded = open(ctx).await?;
    let total = embedded.db().count_events().await?;
    let progress = Progress::new(ctx.progress(), "export", "events", Some(total));
    let written = match target {
        Some((path, mut file)) => {
            let written = embedded
                .store
                .export(file.as_file_mut(), |n| progress.set(n))
                .await
                .map_err(|e| with_path(e, path))?;
            let io = |e: std::io::Error| {
                CliError::usage("io", format!("cannot write {}: {e}", path.display()))
            };
            // A temporary file is private (0600); the export gets the mode of the file it
            // replaces, or the usual 0644.
            let permissions = match std::fs::metadata(path) {
                Ok(meta) => Some(meta.permissions()),
                Err(_) => default_permissions(),
            };
            if let Some(permissions) = permissions {
                file.as_file().set_permissions(permissions).map_err(io)?;
            }
            file.as_file().sync_all().map_err(io)?;
            file.persist(path).map_err(|e| {
                CliError::usage(
                    "io",
                    format!("cannot write {}: {}", path.display(), e.error),
                )
            })?;
            written
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            embedded
                .store
                .export(&mut stdout, |n| progress.set(n))
                .await
                .map_err(|e| match e {
                    StoreError::Io { source, .. } => CliError::usage(
                        "io",
                        format!("cannot write the export to stdout: {source}"),
                    ),
                    other => other.into(),
                })?
        }
    };
    progress.finish();
    match out {
        Some(path) => Ok(Report::done(
            format!("Exported {written} events to {}\n", path.display()),
            json!({ "exported": written, "out": path.display().to_string() }),
        )),
        None => {
            if !ctx.json && std::io::stderr().is_terminal() {
                output::stderr(&format!("Exported {written} events\n"));
            }
            Ok(Report {
                status: Status::Done,
                human: String::new(),
                json: None,
            })
        }
    }
}

/// The mode of a new export file: 0644 (a temporary file is created 0600).
#[cfg(unix)]
fn default_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

/// The mode of a new export file: the temporary file's own.
#[cfg(not(unix))]
fn default_permissions() -> Option<std::fs::Permissions> {
    None
}

/// Names the file in an I/O error of the store (which only knows `<export output>`).
fn with_path(error: StoreError, path: &Path) -> CliError {
    match error {
        StoreError::Io { source, .. } => {
            CliError::usage("io", format!("cannot write {}: {source}", path.display()))
        }
        other => other.into(),
    }
}

/// Opens an input file, or says why it cannot be read (exit status 2), before anything else is
/// opened.
fn open_input(path: &Path) -> Result<File, CliError> {
    let file = File::open(path)
        .map_err(|e| CliError::usage("unreadable-input", format!("cannot open {:?}: {e}", path)))?;
    match file.metadata() {
        Ok(meta) if meta.is_dir() => Err(CliError::usage(
            "unreadable-input",
            format!("cannot read {:?}: it is a directory", path),
        )),
        _ => Ok(file),
    }
}

/// `billing import`.
pub(super) async fn import(ctx: &Context, from: &Path) -> Result<Report, CliError> {
    open_input(from)?;
    let embedded = open(ctx).await?;
    let progress = Progress::new(ctx.progress(), "verify", "lines", None);
    let report = embedded
        .store
        .import(from, |phase, n| {
            progress.phase(phase);
            progress.set(n);
        })
        .await
        .map_err(|e| match e {
            StoreError::Io { source, .. } => CliError::usage(
                "unreadable-input",
                format!("cannot read {:?}: {source}", from),
            ),
            other => other.into(),
        })?;
    // The imported events have no views yet: build them from the log in one pass.
    progress.phase("views");
    progress.set(0);
    let views = embedded.projector.rebuild(|n| progress.set(n)).await?;
    progress.finish();
    let mut human = format!(
        "Imported {} events of {} workspaces from {}\n",
        report.events,
        report.summary.workspaces,
        from.display()
    );
    human.push_str(&summary_table(&report.summary).render(2));
    Ok(Report::done(
        human,
        json!({
            "imported": report.events,
            "from": from.display().to_string(),
            "summary": report.summary,
            "views": views,
        }),
    ))
}

/// An audit summary as a table: events, workspaces, commercial, by site, by method.
pub(super) fn summary_table(summary: &Summary) -> Table {
    let mut table = Table::pairs().align_right(1);
    table.row(["events".to_owned(), summary.events.to_string()]);
    table.row(["workspaces".to_owned(), summary.workspaces.to_string()]);
    table.row(["commercial".to_owned(), summary.commercial.to_string()]);
    for (site, n) in &summary.by_site {
        table.row([format!("site {site}"), n.to_string()]);
    }
    for (method, n) in &summary.by_method {
        table.row([format!("method {method}"), n.to_string()]);
    }
    table.row(["findings".to_owned(), summary.findings.to_string()]);
    table
}

/// An audit's outcome as a report.
pub(super) fn audit_report(source: &str, summary: &Summary, findings: Vec<Finding>) -> Report {
    let clean = summary.findings == 0;
    let verdict = if clean {
        "clean".to_owned()
    } else {
        format!("{} finding(s)", summary.findings)
    };
    let human = format!(
        "Audit of {source}: {verdict}\n{}",
        summary_table(summary).render(2)
    );
    let json = json!({
        "source": source,
        "clean": clean,
        "summary": summary,
        "findings": findings,
        "findings_listed": findings.len(),
        "findings_total": summary.findings,
    });
    Report {
        status: if clean { Status::Done } else { Status::Refused },
        human,
        json: Some(json),
    }
}

/// `billing audit`.
pub(super) async fn audit(
    ctx: &Context,
    from: Option<PathBuf>,
    expect_heads: Vec<ExpectHead>,
) -> Result<Report, CliError> {
    let from = match from {
        Some(path) => {
            let file = open_input(&path)?;
            Some((path, file))
        }
        None => None,
    };
    let options = AuditOptions {
        expect_heads: expect_heads
            .into_iter()
            .map(|h| (h.workspace, h.hash))
            .collect(),
    };
    let mut findings: Vec<Finding> = Vec::new();
    let json = ctx.json;
    match from {
        Some((path, file)) => {
            let progress = Progress::new(ctx.progress(), "audit", "lines", None);
            let policy = SitePolicy::builtin();
            let summary = audit_lines(
                BufReader::new(file),
                Some(&policy),
                &options,
                |finding| collect(&progress, json, &mut findings, finding),
                |n| progress.set(n),
            )
            .map_err(|e| match e {
                StoreError::Io { source, .. } => CliError::usage(
                    "unreadable-input",
                    format!("cannot read {:?}: {source}", path),
                ),
                other => other.into(),
            })?;
            progress.finish();
            Ok(audit_report(
                &path.display().to_string(),
                &summary,
                findings,
            ))
        }
        None => {
            let embedded = open(ctx).await?;
            let total = embedded.db().count_events().await?;
            let progress = Progress::new(ctx.progress(), "audit", "events", Some(total));
            let policy = embedded.store.services().policy.clone();
            let summary = audit_store(
                embedded.db(),
                Some(policy.as_ref()),
                &options,
                |finding| collect(&progress, json, &mut findings, finding),
                |n| progress.set(n),
            )
            .await?;
            progress.finish();
            Ok(audit_report("the store", &summary, findings))
        }
    }
}

/// Prints a finding as it is found (people) and keeps the first ones (JSON).
fn collect(progress: &Progress, json: bool, findings: &mut Vec<Finding>, finding: Finding) {
    if !json {
        progress.suspend(|| output::stdout(&format!("{finding}\n")));
    }
    if findings.len() < JSON_FINDINGS {
        findings.push(finding);
    }
}

/// `billing rebuild-views`.
pub(super) async fn rebuild(ctx: &Context) -> Result<Report, CliError> {
    let embedded = open(ctx).await?;
    let total = embedded.db().count_events().await?;
    let progress = Progress::new(ctx.progress(), "rebuild", "events", Some(total));
    let report = embedded.projector.rebuild(|n| progress.set(n)).await?;
    progress.finish();
    Ok(Report::done(
        format!(
            "Rebuilt the views of {} workspaces from {} events\n",
            report.workspaces, report.events
        ),
        json!(report),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn a_summary_lists_sites_and_methods() {
        let mut summary = Summary {
            events: 5,
            workspaces: 1,
            commercial: 1,
            ..Summary::default()
        };
        summary.by_site.insert("us1".into(), 1);
        summary.by_method.insert("aws".into(), 1);
        let text = summary_table(&summary).render(0);
        assert!(text.contains("site us1"), "{text}");
        assert!(text.contains("method aws"), "{text}");
        let report = audit_report("x", &summary, Vec::new());
        assert_eq!(report.status, Status::Done);
        assert!(report.human.contains("clean"));
        let _: Value = report.json.unwrap_or(Value::Null);
    }
}
