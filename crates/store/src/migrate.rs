//! Migrations for both databases on both engines, embedded in the binary. Each database
//! keeps its own history table, so the AM and shared databases may share one PostgreSQL
//! database; PostgreSQL runs take an advisory lock, so nodes starting together do not race.

use crate::db::Pool;
use crate::{Database, DatabaseName, Engine, Error, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

// AM_SQLITE, AM_POSTGRES, SHARED_SQLITE, SHARED_POSTGRES: (version, description, SQL),
// written by build.rs from `migrations/`.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// A migrator over embedded migrations, each checksummed as `sqlx::migrate!` does (so the
/// history tables of databases migrated before stay valid).
fn migrator(list: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

/// The migrations of one database on one engine.
#[derive(Debug)]
pub struct MigrationSet {
    /// Which database.
    pub database: DatabaseName,
    /// Which engine.
    pub engine: Engine,
    /// The embedded migrations.
    pub migrator: Migrator,
}

/// The embedded migrations for `database` on `engine`.
pub fn migrations(database: DatabaseName, engine: Engine) -> MigrationSet {
    let mut migrator = match (database, engine) {
        (DatabaseName::Am, Engine::Sqlite) => migrator(AM_SQLITE),
        (DatabaseName::Am, Engine::Postgres) => migrator(AM_POSTGRES),
        (DatabaseName::Shared, Engine::Sqlite) => migrator(SHARED_SQLITE),
        (DatabaseName::Shared, Engine::Postgres) => migrator(SHARED_POSTGRES),
    };
    migrator.dangerous_set_table_name(match database {
        DatabaseName::Am => "_tollgate_am_migrations",
        DatabaseName::Shared => "_tollgate_shared_migrations",
    });
    MigrationSet {
        database,
        engine,
        migrator,
    }
}

impl Database {
    /// Applies every pending migration; returns how many the database has in all.
    pub async fn migrate(&self) -> Result<usize> {
        let set = migrations(self.name(), self.engine());
        let failed = |e: sqlx::migrate::MigrateError| Error::Migrate {
            name: self.name(),
            reason: e.to_string(),
        };
        // sqlx locks PostgreSQL but not SQLite: two processes on one file (a node and
        // `tollgate migrate`) would both apply the same migration. An OS file lock beside
        // the database serialises them; it is released when `_lock` drops.
        let _lock = match self.sqlite_file() {
            Some(path) => Some(lock_file(path, self.name()).await?),
            None => None,
        };
        match self.writer() {
            Pool::Sqlite(p) => set.migrator.run(p).await.map_err(failed)?,
            Pool::Postgres(p) => set.migrator.run(p).await.map_err(failed)?,
        }
        let applied = set.migrator.iter().count();
        tracing::info!(database = %self.name(), migrations = applied, "Database migrations applied.");
        Ok(applied)
    }
}

/// Takes an exclusive lock on `<database file>.migrate-lock`, waiting for other holders.
async fn lock_file(db_file: &std::path::Path, name: DatabaseName) -> Result<std::fs::File> {
    let mut lock_path = db_file.as_os_str().to_owned();
    lock_path.push(".migrate-lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let shown = lock_path.display().to_string();
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await;
    match locked {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(e)) => Err(Error::Migrate {
            name,
            reason: format!("cannot lock {shown}: {e}"),
        }),
        Err(e) => Err(Error::Migrate {
            name,
            reason: format!("migration lock task failed: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two engines must carry the same migrations (version and description) for
    /// each database, or a deployment could not move between them.
    #[test]
    fn engines_have_matching_migration_lists() {
        for db in [DatabaseName::Am, DatabaseName::Shared] {
            let list = |engine| {
                migrations(db, engine)
                    .migrator
                    .iter()
                    .map(|m| (m.version, m.description.to_string()))
                    .collect::<Vec<_>>()
            };
            let sqlite = list(Engine::Sqlite);
            assert!(!sqlite.is_empty(), "{db} has no migrations");
            assert_eq!(
                sqlite,
                list(Engine::Postgres),
                "{db}: sqlite and postgres migrations differ"
            );
        }
    }

    /// The embedded migrations are what sqlx itself reads from the directories: the same
    /// versions, descriptions, SQL and checksums, so databases migrated by earlier builds
    /// (which embedded them with `sqlx::migrate!`) are not refused as changed.
    #[tokio::test]
    async fn embedded_migrations_match_what_sqlx_reads_from_the_directories() {
        for (db, engine, dir) in [
            (DatabaseName::Am, Engine::Sqlite, "am/sqlite"),
            (DatabaseName::Am, Engine::Postgres, "am/postgres"),
            (DatabaseName::Shared, Engine::Sqlite, "shared/sqlite"),
            (DatabaseName::Shared, Engine::Postgres, "shared/postgres"),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let read = Migrator::new(path).await.unwrap();
            let embedded = migrations(db, engine).migrator;
            let shape = |m: &Migrator| {
                m.iter()
                    .map(|x| {
                        (
                            x.version,
                            x.description.to_string(),
                            x.sql.as_str().to_string(),
                            x.checksum.to_vec(),
                            x.no_tx,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(shape(&embedded), shape(&read), "{dir}");
            assert!(!shape(&embedded).is_empty(), "{dir}");
        }
    }

    #[test]
    fn databases_keep_separate_history_tables() {
        let am = migrations(DatabaseName::Am, Engine::Postgres)
            .migrator
            .table_name
            .to_string();
        let shared = migrations(DatabaseName::Shared, Engine::Postgres)
            .migrator
            .table_name
            .to_string();
        assert_ne!(am, shared);
    }
}
