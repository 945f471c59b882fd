//! End-to-end tests: real `tollgate` processes on real sockets, SQLite files and (when
//! reachable) PostgreSQL databases. One test binary, so the helpers compile once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analytics;
mod binary;
mod cli;
mod config_errors;
mod conformance;
mod consumer_flow;
mod distributed;
mod gateway_flow;
mod gateway_hardening;
mod identity;
mod key_managers;
mod mock_api;
mod portals;
mod portals_forms;
mod profiles;
mod projects;
mod publisher_flow;
mod shutdown;
mod startup;
mod tenant_gateway;
mod tenant_isolation;
mod tenant_portals;
mod throttling;
mod throttling_distributed;
mod tls;
mod traces;
mod user_stores;
mod walkthrough;
mod web_edge;

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

/// A ready control-plane node on two fresh PostgreSQL databases (AM, shared), with its
/// management address and an AM handle; `None` (skipped, with the reason printed) when no
/// PostgreSQL server is reachable.
pub async fn control_plane_on_postgres(
    label: &str,
) -> Option<(
    tollgate_testkit::Node,
    std::net::SocketAddr,
    tollgate_store::Database,
    [tollgate_testkit::TestDb; 2],
)> {
    let am_db = tollgate_testkit::postgres(&format!("{label}_am")).await?;
    let shared_db = tollgate_testkit::postgres(&format!("{label}_shared")).await?;
    let mut node = tollgate()
        .args(["--profile", "control-plane"])
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_DATABASE__AM__URL", am_db.url())
        .env("TOLLGATE_DATABASE__SHARED__URL", shared_db.url())
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let am = tollgate_store::connect(
        tollgate_store::DatabaseName::Am,
        am_db.url(),
        &tollgate_config::DatabaseConfig::default(),
    )
    .await
    .unwrap();
    Some((node, mgmt, am, [am_db, shared_db]))
}
