//! The Analytics component: gateways ship their API-call events here in batches
//! (`POST /internal/v1/analytics/events`, node-to-node, or in-process on an all-in-one
//! node); they are counted per minute in memory ([`aggregate`]), written with their hour
//! and day roll-ups to the AM database every flush interval ([`flush`]), expired by
//! retention, and served by the REST API under [`BASE_PATH`] ([`usage`]) with the same
//! role rules as the rest of the platform.
//!
//! Depends on `http`, `store`, `config` and `model` only; never on another component.

pub mod aggregate;
pub mod api_doc;
pub mod flush;
mod ingest;
pub mod node;
pub mod types;
pub mod usage;

use axum::Router;
use axum::extract::FromRef;
use std::sync::Arc;
use tollgate_http::Authenticator;
use tollgate_http::cluster::ClusterSecret;
use tollgate_store::Database;

pub use aggregate::Aggregator;
pub use flush::{Retention, flush_loop, retention_loop};

/// Where the analytics REST API lives.
pub const BASE_PATH: &str = "/api/am/analytics/v1";

/// Where gateways ship their events (behind the cluster secret).
pub const INGEST_PATH: &str = "/internal/v1/analytics/events";

/// What the component's handlers need.
#[derive(Clone, Debug)]
pub struct AnalyticsState {
    /// The AM database (aggregates, APIs, applications).
    pub am: Database,
    /// Counts events between flushes.
    pub aggregator: Arc<Aggregator>,
    /// Checks REST credentials.
    pub authenticator: Authenticator,
    /// Authenticates shipping gateways.
    pub cluster_secret: ClusterSecret,
    /// How long each granularity is kept (queries pick one that still holds the range).
    pub retention: Retention,
}

impl FromRef<AnalyticsState> for Authenticator {
    fn from_ref(state: &AnalyticsState) -> Self {
        state.authenticator.clone()
    }
}

/// The analytics REST API's routes, nested under [`BASE_PATH`].
pub fn routes(state: AnalyticsState) -> Router {
    Router::new().nest(BASE_PATH, usage::routes().with_state(state))
}

/// The node-to-node route gateways ship events to, with its own body limit.
pub fn ingest_routes(state: AnalyticsState) -> Router {
    ingest::routes(state)
}
