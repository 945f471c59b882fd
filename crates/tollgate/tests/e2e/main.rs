//! End-to-end tests: real `tollgate` processes on real sockets, SQLite files and (when
//! reachable) PostgreSQL databases. One test binary, so the helpers compile once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod config_errors;
mod consumer_flow;
mod key_managers;
mod profiles;
mod publisher_flow;
mod shutdown;
mod startup;
mod tls;

use std::time::Duration;
use tollgate_testkit::NodeBuilder;

/// The binary under test.
pub fn tollgate() -> NodeBuilder {
    NodeBuilder::serve(env!("CARGO_BIN_EXE_tollgate"))
}

/// How long a node may take to become ready (debug builds on a busy 2-core machine).
pub const READY: Duration = Duration::from_secs(60);

/// A cluster secret for partial-profile nodes.
pub const SECRET: &str = "e2e-cluster-secret-0123456789";
