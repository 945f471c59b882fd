//! Tollgate's storage: the two logical databases (AM and shared) on embedded SQLite or
//! PostgreSQL, their migrations, and the repositories over them.
//!
//! SQL is written once in a portable subset (`$n` placeholders, TEXT ids, BIGINT
//! epoch-ms, JSON as TEXT) and run on either engine through [`Database`]. This crate
//! depends only on `model`, `events` and `config`; components reach storage through the
//! repositories here, never through raw pools.

pub mod analytics;
pub mod apis;
pub mod applications;
pub mod block_conditions;
mod db;
pub mod documents;
pub mod environments;
mod error;
pub mod events;
pub mod gateway_status;
pub mod key_managers;
pub mod keys;
mod migrate;
pub mod oauth;
pub mod password;
pub mod policies;
pub mod ratings;
pub mod scopes;
pub mod snapshot;
pub mod subscriptions;
pub mod tenants;
pub mod user_stores;
pub mod users;

pub use db::{Database, Engine, Pool, PoolStats, Tx, connect, lock_named};
pub use error::{Error, Result};
pub use migrate::{MigrationSet, migrations};
pub use tollgate_config::DatabaseName;
