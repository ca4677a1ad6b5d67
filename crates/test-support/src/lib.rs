#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod postgres;
pub mod receiver;
mod sqlite;
mod store;
mod test_db;

pub use postgres::{database_url, second_database, url_of};
pub use sqlite::SqliteFile;
pub use store::{execute, query_i64, Outage};
pub use test_db::{FreshDatabase, TestDatabase, TestDb};

/// A crate's test harness, built on one backend or the other.
///
/// [`on_both_backends!`] builds one harness per test through these constructors and hands it to
/// the scenario. Implement them with `async fn`; they panic when the harness cannot be built (a
/// test has nothing better to do).
pub trait BackendHarness: Sized {
    /// A harness on a new SQLite database in a temporary file.
    fn sqlite() -> impl std::future::Future<Output = Self>;

    /// A harness on the test's own PostgreSQL database, fresh and not yet migrated (the pool
    /// `#[sqlx::test(migrations = false)]` passes in).
    fn postgres(pool: sqlx::PgPool) -> impl std::future::Future<Output = Self>;
}

/// Runs each named scenario on both backends.
///
/// ```text
/// on_both_backends! {
///     harness: crate::harness::Harness,   // a type implementing BackendHarness
///     scenarios: crate::scenarios,        // the module of `pub async fn NAME(&Harness)`
///     tests: [scenario_a, scenario_b],
/// }
/// ```
///
/// expands, where it is invoked, to
/// - `mod sqlite`: `#[tokio::test]` `NAME()` on [`BackendHarness::sqlite`] (multi-threaded, two
///   workers, so background tasks run beside the scenario);
/// - `mod postgres`: `#[sqlx::test(migrations = false)]` `NAME(pool)` on
///   [`BackendHarness::postgres`], a fresh database per test;
/// - `postgres_is_configured_for_the_test_suite`, a test that fails when `DATABASE_URL` does not
///   name a PostgreSQL server, so the PostgreSQL tests never skip silently.
///
/// Both paths are resolved inside the generated modules: start them with `crate::`.
/// The test attributes expand in the calling crate, which therefore needs `tokio` and `sqlx`
/// among its (dev-)dependencies. Invoke it once per module (it defines `sqlite` and `postgres`).
#[macro_export]
macro_rules! on_both_backends {
    (
        harness: $harness:ty,
        scenarios: $($scenarios:ident)::+,
        tests: [$($name:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            use $($scenarios)::+ as scenarios;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = <$harness as $crate::BackendHarness>::sqlite().await;
                    scenarios::$name(&h).await;
                }
            )*
        }
        mod postgres {
            use $($scenarios)::+ as scenarios;
            $(
                #[sqlx::test(migrations = false)]
                async fn $name(pool: sqlx::PgPool) {
                    let h = <$harness as $crate::BackendHarness>::postgres(pool).await;
                    scenarios::$name(&h).await;
                }
            )*
        }

        /// The PostgreSQL tests must really run: a missing server fails here instead of being
        /// skipped.
        #[test]
        fn postgres_is_configured_for_the_test_suite() {
            $crate::database_url();
        }
    };
}
