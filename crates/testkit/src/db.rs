//! Fresh databases for tests. SQLite: a file in a temporary directory. PostgreSQL: a new
//! database on the server named by `TEST_DATABASE_URL` (default: the local server), dropped
//! when the fixture is dropped. Without a reachable server PostgreSQL tests are skipped
//! with a printed reason, unless `REQUIRE_POSTGRES=1` (set by CI), where that is a failure.

use sqlx::Connection;
use std::time::Duration;

/// The server tests create their databases on, unless `TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub enum TestDb {
    /// A SQLite file in a temporary directory.
    Sqlite {
        /// Keeps the directory alive.
        dir: tempfile::TempDir,
        /// `sqlite://…/test.db`.
        url: String,
    },
    /// A fresh PostgreSQL database.
    Postgres {
        /// URL of the fresh database.
        url: String,
        /// Its name (dropped on drop).
        name: String,
        /// URL of the maintenance database used to create and drop it.
        admin_url: String,
    },
}

impl TestDb {
    /// The URL to hand to Tollgate.
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// `sqlite` or `postgres`, for assertion messages.
    pub fn engine(&self) -> &'static str {
        match self {
            TestDb::Sqlite { .. } => "sqlite",
            TestDb::Postgres { .. } => "postgres",
        }
    }

    /// A second URL on the same engine for another logical database: another file in
    /// the same directory, or another fresh PostgreSQL database.
    pub async fn sibling(&self, label: &str) -> TestDb {
        match self {
            TestDb::Sqlite { .. } => sqlite(label),
            TestDb::Postgres { .. } => postgres(label).await.expect("PostgreSQL was reachable a moment ago"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name, admin_url, .. } = self {
            let (name, admin_url) = (name.clone(), admin_url.clone());
            // Drop runs outside any runtime guarantee: use a private one on a thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

/// A SQLite database file in a fresh temporary directory.
pub fn sqlite(label: &str) -> TestDb {
    let dir = tempfile::Builder::new()
        .prefix("tollgate-test-")
        .tempdir()
        .expect("temp dir");
    let url = format!("sqlite://{}/{label}.db", dir.path().display());
    TestDb::Sqlite { dir, url }
}

/// A fresh PostgreSQL database, or `None` (with the reason printed) when no server is
/// reachable and `REQUIRE_POSTGRES` is not set.
pub async fn postgres(label: &str) -> Option<TestDb> {
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_string());
    let required = std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true");
    // A refused connection fails at once; the timeout only bounds a server that accepts
    // but does not answer. CI runs every test at once on 2 cores, where a backend fork can
    // take seconds (a 5 s bound was seen to expire there), so it is generous.
    let connect = tokio::time::timeout(Duration::from_secs(30), sqlx::PgConnection::connect(&admin_url)).await;
    let mut conn = match connect {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return skip(label, &admin_url, &e.to_string(), required),
        Err(_) => return skip(label, &admin_url, "timed out", required),
    };
    let safe_label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let name = format!("tollgate_t_{safe_label}_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE on the test server");
    let url = match admin_url.rsplit_once('/') {
        Some((base, _)) if base.contains("://") && base.split("://").nth(1).is_some_and(|r| !r.is_empty()) => {
            format!("{base}/{name}")
        }
        _ => format!("{admin_url}/{name}"),
    };
    eprintln!("[postgres] test `{label}` runs on PostgreSQL database {name}");
    Some(TestDb::Postgres { url, name, admin_url })
}

fn skip(label: &str, url: &str, reason: &str, required: bool) -> Option<TestDb> {
    if required {
        panic!("REQUIRE_POSTGRES is set but PostgreSQL at {url} is unreachable ({reason}) for test `{label}`");
    }
    eprintln!(
        "[postgres] SKIPPED PostgreSQL part of `{label}`: {url} unreachable ({reason}); set TEST_DATABASE_URL to run it"
    );
    None
}

/// A fresh SQLite database and, when reachable, a fresh PostgreSQL one: run the same
/// test body on each.
pub async fn all_engines(label: &str) -> Vec<TestDb> {
    let mut dbs = vec![sqlite(label)];
    dbs.extend(postgres(label).await);
    dbs
}
