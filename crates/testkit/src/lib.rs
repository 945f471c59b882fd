//! Shared test fixtures, written once: fresh databases on each engine, and a driver for
//! real `tollgate` processes (spawn, read their JSON logs for bound addresses, wait for
//! readiness, signal, collect exit status).
//!
//! Test-only: nothing in the product depends on this crate. It must not depend on
//! Tollgate's own crates, so that every crate can use it without a dependency cycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod db;
pub mod node;

pub use db::{TestDb, all_engines, postgres, sqlite};
pub use node::{Node, NodeBuilder};
