//! Running the binary against a temporary SQLite store: [`Store`], [`billing`].

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// One run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    pub(crate) fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A temporary directory with a store URL in it.
pub(crate) struct Store {
    pub(crate) dir: TempDir,
    pub(crate) url: String,
}

impl Store {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("billing.db").display());
        Self { dir, url }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn db_file(&self) -> PathBuf {
        self.path("billing.db")
    }

    /// Runs `billing --db URL ARGS…`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        billing_with_db(&self.url, args)
    }

    /// Runs and expects exit status `code`.
    pub(crate) fn expect(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, code, "billing {args:?}: {run:?}");
        run
    }

    /// Registers `acme-finance` and walks workspace `acme` to the Commercial Plan on `us1`.
    pub(crate) fn upgraded(&self) {
        self.expect(
            0,
            &[
                "account",
                "register",
                "--username",
                "acme-finance",
                "--email",
                "f@acme.example",
            ],
        );
        self.expect(
            0,
            &[
                "upgrade",
                "--workspace",
                "acme",
                "--site",
                "us1",
                "--actor",
                "alice",
            ],
        );
        self.expect(
            0,
            &[
                "account",
                "bind",
                "--workspace",
                "acme",
                "--username",
                "acme-finance",
            ],
        );
        self.expect(
            0,
            &[
                "agreement",
                "accept",
                "--workspace",
                "acme",
                "--version",
                "2024-06",
            ],
        );
    }
}

pub(crate) fn billing(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_billing"))
        .args(args)
        .env_remove("BILLING_DATABASE_URL")
        .env_remove("BILLING_EXPENSE_CENTER_URL")
        .env_remove("BILLING_LOG")
        .env_remove("BILLING_NOW")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

pub(crate) fn billing_with_db(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--db", url];
    all.extend_from_slice(args);
    billing(&all)
}
