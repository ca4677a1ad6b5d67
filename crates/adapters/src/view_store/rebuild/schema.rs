//! What a rebuild copies from the live view tables: their `CREATE` text (SQLite) or `LIKE`
//! (PostgreSQL), their keys, indexes and triggers — never a copy of the DDL kept in this crate.

use sqlx::{PgPool, SqlitePool};

use super::TABLES;
use crate::error::AdapterError;

/// What a rebuild takes from the live tables' schema, read before it fills fresh ones.
#[derive(Debug, Default)]
pub(super) struct LiveSchema {
    /// Creates the fresh tables: the live tables' columns, types, defaults and constraints.
    pub(super) create: Vec<String>,
    /// PostgreSQL: adds the live tables' keys to the fresh ones once they are full (a table
    /// without keys fills faster). SQLite: nothing — its keys are part of the table's text.
    pub(super) keys: Vec<String>,
    /// Runs in the swap, once the fresh tables carry the live names: the live tables' other
    /// indexes and their triggers, recreated from their own definitions (which name the live
    /// table, and whose names the dropped tables freed); on PostgreSQL also the keys renamed to
    /// their live names.
    pub(super) after_swap: Vec<String>,
}

/// SQLite: every table's, index's and trigger's `CREATE` text is in `sqlite_schema`. The fresh
/// table is the live table's text with the name replaced; the indexes (other than the keys'
/// automatic ones, which have no text) and triggers are recreated as they were after the swap.
pub(super) async fn sqlite_schema(pool: &SqlitePool) -> Result<LiveSchema, AdapterError> {
    let mut schema = LiveSchema::default();
    for (live, next) in TABLES {
        let objects: Vec<(String, String)> = sqlx::query_as(
            "SELECT type, sql FROM sqlite_schema \
             WHERE tbl_name = $1 COLLATE NOCASE AND sql IS NOT NULL ORDER BY rowid",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        let mut tables = 0;
        for (kind, sql) in objects {
            if kind == "table" {
                tables += 1;
                let create =
                    create_table_as(&sql, live, next).map_err(|why| AdapterError::Schema {
                        table: live,
                        detail: format!("its text in sqlite_schema, {sql:?}: {why}"),
                    })?;
                schema.create.push(create);
            } else {
                schema.after_swap.push(sql);
            }
        }
        if tables != 1 {
            return Err(AdapterError::Schema {
                table: live,
                detail: format!("sqlite_schema holds {tables} tables of that name"),
            });
        }
    }
    Ok(schema)
}

/// PostgreSQL: `LIKE … INCLUDING ALL EXCLUDING INDEXES` copies every column with its type,
/// collation, NOT NULL, default, CHECK constraints, generated and identity definitions, storage,
/// compression, statistics targets and comments — all a migration could add to a view table
/// except indexes. Indexes are left out so the fill does not maintain them: the keys (primary
/// key, unique and exclusion constraints) are added once the tables are full, from the live
/// tables' own definitions (`pg_get_constraintdef`), under temporary names renamed in the swap;
/// other indexes and triggers (which `LIKE` never copies) are recreated in the swap from
/// `pg_get_indexdef` / `pg_get_triggerdef`.
pub(super) async fn pg_schema(pool: &PgPool) -> Result<LiveSchema, AdapterError> {
    let mut schema = LiveSchema::default();
    for (live, next) in TABLES {
        schema.create.push(format!(
            "CREATE TABLE {next} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES)"
        ));
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1::text::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        for (i, (name, definition)) in keys.into_iter().enumerate() {
            // Index names are unique per schema: the key gets its live name only once the live
            // table (and its index) is gone.
            let temporary = format!("{next}_key{i}");
            schema.keys.push(format!(
                "ALTER TABLE {next} ADD CONSTRAINT {temporary} {definition}"
            ));
            schema.after_swap.push(format!(
                "ALTER TABLE {live} RENAME CONSTRAINT {temporary} TO {}",
                pg_ident(&name)
            ));
        }
        let others: Vec<(String,)> = sqlx::query_as(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i \
             WHERE i.indrelid = $1::text::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                 WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid) \
             UNION ALL \
             SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t \
             WHERE t.tgrelid = $1::text::regclass AND NOT t.tgisinternal",
        )
        .bind(live)
        .fetch_all(pool)
        .await?;
        schema
            .after_swap
            .extend(others.into_iter().map(|(sql,)| sql));
    }
    Ok(schema)
}

/// A PostgreSQL identifier, quoted.
fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `sql`, the `CREATE TABLE` text of table `live` as SQLite stores it in `sqlite_schema`, for a
/// table named `next` instead.
///
/// SQLite stores `CREATE TABLE ` (keywords in upper case, the qualifier and `IF NOT EXISTS`
/// removed), then the name as it was written — bare, `"quoted"`, `[bracketed]`, `` `ticked` ``
/// or `'quoted'`; `ALTER TABLE … RENAME` writes it `"quoted"` — then the rest of the statement
/// verbatim. Only the name is replaced; nothing after it is touched.
///
/// # Errors
/// What is unexpected about the text (another name, an unterminated quote, no `CREATE TABLE`).
fn create_table_as(sql: &str, live: &str, next: &str) -> Result<String, String> {
    let head = sql
        .get(..12)
        .filter(|h| h.eq_ignore_ascii_case("CREATE TABLE"));
    let rest = match head {
        Some(_) => sql[12..].trim_start(),
        None => return Err("it does not start with CREATE TABLE".into()),
    };
    let (name, after) = split_name(rest).ok_or("its table name is not terminated")?;
    if !name.eq_ignore_ascii_case(live) {
        return Err(format!("it creates table {name:?}"));
    }
    Ok(format!("CREATE TABLE \"{next}\"{after}"))
}

/// Splits a leading SQLite identifier off `text`: its unquoted name, and the text after it.
fn split_name(text: &str) -> Option<(String, &str)> {
    let first = text.chars().next()?;
    let close = match first {
        '"' | '`' | '\'' => first,
        '[' => ']',
        _ => {
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()))
                .unwrap_or(text.len());
            return (end > 0).then(|| (text[..end].to_owned(), &text[end..]));
        }
    };
    let mut name = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != close {
            name.push(c);
            continue;
        }
        // A doubled quote is one quote character in the name (not so for `]`).
        if close != ']' && chars.peek().map(|&(_, d)| d) == Some(close) {
            name.push(c);
            chars.next();
            continue;
        }
        return Some((name, &text[i + c.len_utf8()..]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::create_table_as;

    #[test]
    fn the_fresh_table_is_the_live_text_under_the_new_name() {
        for (stored, rest) in [
            (
                "CREATE TABLE billing_view (\n    a TEXT PRIMARY KEY\n) STRICT",
                " (\n    a TEXT PRIMARY KEY\n) STRICT",
            ),
            (
                "CREATE TABLE \"billing_view\" (a TEXT, b TEXT NOT NULL DEFAULT 'x')",
                " (a TEXT, b TEXT NOT NULL DEFAULT 'x')",
            ),
            ("CREATE TABLE [billing_view](a)", "(a)"),
            ("CREATE TABLE `Billing_View` (a)", " (a)"),
            ("create table  'billing_view'(a)", "(a)"),
        ] {
            assert_eq!(
                create_table_as(stored, "billing_view", "billing_view_next"),
                Ok(format!("CREATE TABLE \"billing_view_next\"{rest}")),
                "{stored}"
            );
        }
    }

    #[test]
    fn a_text_for_another_table_or_with_a_broken_name_is_refused() {
        for stored in [
            "CREATE TABLE billing_view_old (a)",
            "CREATE TABLE \"billing_view (a)",
            "CREATE VIEW billing_view AS SELECT 1",
            "CREATE TABLE \"billing\"\"view\" (a)",
            "",
        ] {
            assert!(
                create_table_as(stored, "billing_view", "billing_view_next").is_err(),
                "{stored}"
            );
        }
    }
}
