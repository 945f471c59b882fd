//! Storage errors, and their translation into the domain error that clients see.

use tollgate_config::DatabaseName;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or opened at start-up.
    #[error(
        "cannot connect to the {name} database at {url}: {reason}; check [database.{name}] url ({env}) and that the server is running and reachable"
    )]
    Connect {
        /// Which database.
        name: DatabaseName,
        /// The URL with its password redacted.
        url: String,
        /// What the driver said.
        reason: String,
        /// The environment variable that overrides the URL.
        env: &'static str,
    },
    /// The URL could not be turned into connection options.
    #[error("invalid [database.{name}] url {url}: {reason}")]
    Url {
        /// Which database.
        name: DatabaseName,
        /// The URL with its password redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Applying migrations failed.
    #[error("migrating the {name} database failed: {reason}")]
    Migrate {
        /// Which database.
        name: DatabaseName,
        /// What the migrator said.
        reason: String,
    },
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value could not be decoded (corrupt row, newer schema).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A domain rule was broken (validation, conflict, not found).
    #[error(transparent)]
    Domain(#[from] tollgate_model::Error),
}

/// Shorthand for storage results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the failure is a unique-constraint violation (a duplicate name).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Query(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}

impl From<Error> for tollgate_model::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Domain(e) => e,
            Error::Query(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)) => {
                tollgate_model::Error::Unavailable("the database is not answering; try again shortly".into())
            }
            Error::Query(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                tollgate_model::Error::Conflict("a resource with the same unique name already exists".into())
            }
            other => tollgate_model::Error::Internal(other.to_string()),
        }
    }
}
