//! SQLite databases in temporary files.

use tempfile::TempDir;

/// A SQLite database file (not yet created) in its own temporary directory, removed on drop.
#[derive(Debug)]
pub struct SqliteFile {
    url: String,
    _dir: TempDir,
}

impl SqliteFile {
    /// A new temporary directory and the URL of `billing.db` inside it.
    ///
    /// # Panics
    ///
    /// When no temporary directory can be made.
    pub fn in_temp_dir() -> Self {
        let dir = tempfile::tempdir()
            .unwrap_or_else(|e| panic!("making a temporary directory for SQLite: {e}"));
        let url = format!("sqlite://{}", dir.path().join("billing.db").display());
        Self { url, _dir: dir }
    }

    /// The database's URL (`sqlite://…/billing.db`).
    pub fn url(&self) -> &str {
        &self.url
    }
}
