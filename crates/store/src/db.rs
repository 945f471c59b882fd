//! One database handle over either engine. SQLite gets a single writer connection and a
//! pool of readers (WAL), so writers never meet `SQLITE_BUSY`; PostgreSQL uses one pool.

use crate::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use tollgate_config::{DatabaseConfig, DatabaseName, engine_of, redact_url};

pub use tollgate_config::Engine;

/// A pool on one engine.
#[derive(Clone, Debug)]
pub enum Pool {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs the same expression against whichever engine a [`Pool`] holds; `$p` is bound
/// to the typed pool, so one SQL text serves both engines.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs the same expression against whichever engine a [`Tx`] holds; `$c` is bound to
/// the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx.inner_mut() {
            $crate::db::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Implements `sqlx::FromRow` for a row struct on both engines, reading each listed field
/// from the column of its name and each field after `;` from the whole row (what
/// `#[derive(sqlx::FromRow)]` with `#[sqlx(flatten)]` does, without the proc macro whose
/// host build compiles both database drivers and SQLite a second time; docs/build.md).
/// A field left out of the list is a compile error: the struct literal is incomplete.
macro_rules! from_row {
    ($name:ident { $($field:ident),* $(,)? } $(; $($flat:ident),+ $(,)?)?) => {
        $crate::db::from_row!(@on sqlx::sqlite::SqliteRow, $name { $($field),* } $(; $($flat),+)?);
        $crate::db::from_row!(@on sqlx::postgres::PgRow, $name { $($field),* } $(; $($flat),+)?);
    };
    (@on $row:ty, $name:ident { $($field:ident),* } $(; $($flat:ident),+)?) => {
        impl<'r> sqlx::FromRow<'r, $row> for $name {
            fn from_row(row: &'r $row) -> std::result::Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                    $($($flat: sqlx::FromRow::from_row(row)?,)+)?
                })
            }
        }
    };
}
pub(crate) use from_row;

/// An open transaction on either engine. Dropping it without [`Tx::commit`] rolls back,
/// so a failed request never leaves half-written rows.
pub struct Tx {
    inner: TxInner,
    appended_event: bool,
}

/// The engine-specific transaction inside a [`Tx`].
pub(crate) enum TxInner {
    /// A SQLite transaction (on the single writer connection).
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// A PostgreSQL transaction.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn new(inner: TxInner) -> Self {
        Self {
            inner,
            appended_event: false,
        }
    }

    pub(crate) fn inner_mut(&mut self) -> &mut TxInner {
        &mut self.inner
    }

    /// Records that the transaction wrote to the events outbox, so that its commit wakes
    /// this process's event hub.
    pub(crate) fn note_event_appended(&mut self) {
        self.appended_event = true;
    }

    /// Makes every write of the transaction durable at once.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if self.appended_event {
            crate::events::local_commits().send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    /// The engine this transaction runs on (for the few statements that differ).
    pub fn engine(&self) -> Engine {
        match self.inner {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }
}

/// One logical database (AM or shared), open on its engine.
#[derive(Clone, Debug)]
pub struct Database {
    name: DatabaseName,
    url: String,
    /// The SQLite file, when the database is one (for the migration lock).
    sqlite_file: Option<std::path::PathBuf>,
    read: Pool,
    write: Pool,
}

/// Connection counts of a database's pools, exported as metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
}

/// Opens `name` at `url` with `settings`, failing fast (within `connect_timeout`) when
/// the server cannot be reached, with an error that names the key to fix.
pub async fn connect(name: DatabaseName, url: &str, settings: &DatabaseConfig) -> Result<Database> {
    let redacted = redact_url(url);
    let engine = engine_of(url).map_err(|reason| Error::Url {
        name,
        url: redacted.clone(),
        reason,
    })?;
    let connect_failed = |reason: String| Error::Connect {
        name,
        url: redacted.clone(),
        reason,
        env: name.url_env(),
    };
    let mut sqlite_file = None;
    let (read, write) = match engine {
        Engine::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Url {
                    name,
                    url: redacted.clone(),
                    reason: e.to_string(),
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(settings.acquire_timeout);
            // `engine_of` refused in-memory URLs above; this stays as a guard for any that
            // slip through another spelling.
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !in_memory {
                let path = options.get_filename();
                sqlite_file = Some(path.to_path_buf());
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| connect_failed(format!("cannot create directory {}: {e}", dir.display())))?;
                }
            }
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.clone());
            let write = tokio::time::timeout(settings.connect_timeout, write)
                .await
                .map_err(|_| connect_failed("timed out".into()))?
                .map_err(|e| connect_failed(e.to_string()))?;
            let read = if in_memory {
                write.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(settings.max_connections)
                    .min_connections(settings.min_connections)
                    .acquire_timeout(settings.acquire_timeout)
                    .connect_lazy_with(options.read_only(true))
            };
            (Pool::Sqlite(read), Pool::Sqlite(write))
        }
        Engine::Postgres => {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| Error::Url {
                    name,
                    url: redacted.clone(),
                    reason: e.to_string(),
                })?
                .application_name("tollgate");
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .min_connections(settings.min_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options);
            let pool = tokio::time::timeout(settings.connect_timeout, pool)
                .await
                .map_err(|_| connect_failed(format!("no answer within {:?}", settings.connect_timeout)))?
                .map_err(|e| connect_failed(e.to_string()))?;
            (Pool::Postgres(pool.clone()), Pool::Postgres(pool))
        }
    };
    tracing::info!(database = %name, url = %redacted, engine = ?engine, "Database opened.");
    Ok(Database {
        name,
        url: redacted,
        sqlite_file,
        read,
        write,
    })
}

impl Database {
    /// Which logical database this is.
    pub fn name(&self) -> DatabaseName {
        self.name
    }

    /// The SQLite file behind this database, if it is one.
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        self.sqlite_file.as_deref()
    }

    /// The URL with any password redacted.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    /// The engine.
    pub fn engine(&self) -> Engine {
        match self.write {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// The pool for queries that only read.
    pub fn reader(&self) -> &Pool {
        &self.read
    }

    /// The pool for writes (SQLite: the single writer connection).
    pub fn writer(&self) -> &Pool {
        &self.write
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match &self.write {
            Pool::Sqlite(p) => Tx::new(TxInner::Sqlite(p.begin().await?)),
            Pool::Postgres(p) => Tx::new(TxInner::Postgres(p.begin().await?)),
        })
    }

    /// Whether the database answers a trivial query within `timeout` (readiness).
    pub async fn ping(&self, timeout: Duration) -> Result<()> {
        let query = async {
            on_pool!(&self.read, |p| sqlx::query("SELECT 1").execute(p).await.map(|_| ()))?;
            if let (Pool::Sqlite(w), true) = (&self.write, matches!(self.read, Pool::Sqlite(_))) {
                sqlx::query("SELECT 1").execute(w).await?;
            }
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(timeout, query).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::Query(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Connection counts for metrics (the write pool for SQLite is one connection).
    pub fn pool_stats(&self) -> PoolStats {
        let stats = |p: &Pool| match p {
            Pool::Sqlite(p) => (p.size(), u32::try_from(p.num_idle()).unwrap_or(u32::MAX)),
            Pool::Postgres(p) => (p.size(), u32::try_from(p.num_idle()).unwrap_or(u32::MAX)),
        };
        let (size, idle) = stats(&self.read);
        if matches!(self.engine(), Engine::Sqlite) {
            let (ws, wi) = stats(&self.write);
            PoolStats {
                size: size + ws,
                idle: idle + wi,
            }
        } else {
            PoolStats { size, idle }
        }
    }

    /// Closes every connection, waiting for checked-out ones to return.
    pub async fn close(&self) {
        on_pool!(&self.read, |p| p.close().await);
        on_pool!(&self.write, |p| p.close().await);
    }
}

/// Serialises transactions that must not interleave (a uniqueness check and the insert it
/// guards; an in-use check and the delete it allows): on PostgreSQL an advisory lock on
/// `name` held until commit; on SQLite nothing, since its single writer already
/// serialises them.
pub async fn lock_named(tx: &mut Tx, name: &str) -> Result<()> {
    if let TxInner::Postgres(t) = tx.inner_mut() {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(name)
            .execute(&mut **t)
            .await?;
    }
    Ok(())
}
