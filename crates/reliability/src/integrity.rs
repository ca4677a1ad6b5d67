//! `billing-reliability integrity --db sqlite://FILE`: SQLite's own `PRAGMA integrity_check` and
//! the number of events, for machines without the `sqlite3` shell.

use std::str::FromStr;

use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Runs `PRAGMA integrity_check` on the file; returns the JSON report and whether it said ok.
pub(crate) async fn run(url: &str) -> Result<(serde_json::Value, bool), String> {
    if !url.starts_with("sqlite:") {
        return Err(format!("integrity needs a sqlite:// URL, not {url:?}"));
    }
    // The file must exist: checking must not create an empty database.
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| format!("bad URL {url:?}: {e}"))?
        .create_if_missing(false);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| format!("cannot open {url}: {e}"))?;
    let lines: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| format!("integrity_check failed to run: {e}"))?;
    let lines: Vec<String> = lines.into_iter().map(|l| l.0).collect();
    let ok = lines == ["ok"];
    let has_events: Option<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| format!("reading the schema: {e}"))?;
    let events: Option<i64> = match has_events {
        Some(_) => Some(
            sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("counting events: {e}"))?,
        ),
        None => None,
    };
    // Closing politely checkpoints nothing we need; errors here do not change the verdict.
    let _ = conn.close().await;
    Ok((
        json!({ "integrity": if ok { "ok" } else { "corrupt" }, "integrity_check": lines, "events": events }),
        ok,
    ))
}
