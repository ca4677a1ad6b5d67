//! Any number of processes may open the same new store at once (issue 9): twelve `billing
//! upgrade` processes started together on a store that does not exist yet make one schema, one
//! winner and eleven refusals — on SQLite (a file that does not exist) and on PostgreSQL (a new,
//! empty database). Before issue 9, 8 of 12 SQLite processes exited 3 with `migration failed: …
//! table events already exists`.

use std::process::{Command, Stdio};

use sqlx::Connection as _;

const PROCESSES: usize = 12;

/// Starts the processes together, then waits for all; returns (exit status, stderr) of each.
fn race(url: &str) -> Vec<(i32, String)> {
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_billing"))
                .args([
                    "--db",
                    url,
                    "upgrade",
                    "--workspace",
                    "hot",
                    "--site",
                    "cn1",
                ])
                .env_remove("BILLING_DATABASE_URL")
                .env_remove("BILLING_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}

fn one_winner(outcomes: &[(i32, String)]) {
    let won = outcomes.iter().filter(|(code, _)| *code == 0).count();
    let refused: Vec<_> = outcomes.iter().filter(|(code, _)| *code == 1).collect();
    assert_eq!(won, 1, "{outcomes:#?}");
    assert_eq!(refused.len(), PROCESSES - 1, "{outcomes:#?}");
    for (_, stderr) in refused {
        assert!(stderr.contains("upgrade-already-requested"), "{stderr}");
    }
}

fn history_has_one_event(url: &str) {
    let run = crate::harness::billing_with_db(url, &["--json", "history", "--workspace", "hot"]);
    assert_eq!(run.code, 0, "{run:?}");
    let history = run.json();
    assert_eq!(
        history["events"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
}

#[test]
fn twelve_processes_opening_a_new_sqlite_file_at_once_make_one_schema_and_one_winner() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let outcomes = race(&url);
        one_winner(&outcomes);
        history_has_one_event(&url);
        assert!(dir.path().join("new.db").exists(), "round {round}");
    }
}

#[tokio::test]
async fn twelve_processes_opening_a_new_postgres_database_at_once_make_one_schema_and_one_winner() {
    let server = billing_test_support::database_url();
    let mut admin = sqlx::PgConnection::connect(server.as_str()).await.unwrap();
    let name = format!("billing_first_open_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = server.clone();
    url.set_path(&name);
    let outcomes = tokio::task::spawn_blocking({
        let url = url.to_string();
        move || race(&url)
    })
    .await
    .unwrap();
    one_winner(&outcomes);
    history_has_one_event(url.as_str());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
