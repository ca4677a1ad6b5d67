//! Connecting: which backend a URL names (each backend's module connects, migrates and starts
//! its writer), and URLs without their passwords.

use super::{postgres, sqlite, Db, StoreOptions};
use crate::error::StoreError;

impl Db {
    /// Connects to `url` (`postgres://…`, `sqlite://PATH`, `sqlite::memory:`), applies the
    /// embedded migrations, and starts the writer. A SQLite file is created on first use; any
    /// number of processes may open the same new file (or new PostgreSQL database) at once.
    ///
    /// # Errors
    /// [`StoreError::InvalidUrl`] for a URL that is neither `postgres://…` nor `sqlite:…`,
    /// [`StoreError::Unavailable`] when the database does not answer, [`StoreError::Migration`]
    /// when the schema cannot be brought up to date.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres::connect_postgres(url, options).await?;
            Self::from_pg_pool(pool, options).await
        } else if url.starts_with("sqlite:") {
            sqlite::connect_sqlite(url, options).await
        } else {
            Err(StoreError::InvalidUrl {
                url: redact(url),
                reason: "expected postgres://…, sqlite://PATH or sqlite::memory:".into(),
            })
        }
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
