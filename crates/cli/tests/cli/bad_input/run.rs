//! Running the binary: [`billing`] with captured output and a time limit, and [`snapshot`] to
//! prove a run wrote nothing.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one run of the binary may take before the test calls it hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// One run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `billing --db URL ARGS…` in `cwd`, with output captured in files (no pipe can fill up)
/// and a time limit (a hang fails the test instead of stalling it).
pub(crate) fn billing(cwd: &Path, db: &str, args: &[OsString], json: bool) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let stdout_path = out_dir.path().join("stdout");
    let stderr_path = out_dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_billing"));
    command
        .arg("--db")
        .arg(db)
        .args(args)
        .current_dir(cwd)
        .env_remove("BILLING_DATABASE_URL")
        .env_remove("BILLING_EXPENSE_CENTER_URL")
        .env_remove("BILLING_LOG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap());
    if json {
        command.arg("--json");
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("billing {args:?} (--db {db}) did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&fs::read(&stdout_path).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&stderr_path).unwrap()).into_owned(),
    }
}

pub(crate) fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Every file under `dir` with its content (directories as `None`), to prove a run wrote nothing.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let relative = entry.path().strip_prefix(dir).unwrap().to_path_buf();
            if kind.is_dir() {
                all.insert(relative, None);
                stack.push(entry.path());
            } else {
                // Unreadable files (a chmod 000 fixture) are compared by size and mtime only.
                let content = fs::read(entry.path()).unwrap_or_else(|_| {
                    let meta = entry.metadata().ok();
                    let seen = meta.map(|m| (m.len(), m.modified().ok()));
                    format!("{seen:?}").into_bytes()
                });
                all.insert(relative, Some(content));
            }
        }
    }
    all
}
