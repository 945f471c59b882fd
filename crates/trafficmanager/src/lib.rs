//! The Traffic Manager component: the event hub that streams control events to gateways
//! (ARCHITECTURE.md §3) and, later, distributed throttling (§5). Its routes live on the
//! traffic-manager listener and answer only callers presenting the cluster secret.
//!
//! Today it serves the outbox's current sequence, which gateways and operators use to
//! tell how far behind a node is; snapshot and watch arrive with the Event hub issue.
//! Depends on `http`, `store` and `model` only.

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use tollgate_http::ApiError;
use tollgate_http::cluster::{ClusterSecret, require_cluster_secret};
use tollgate_model::Error;
use tollgate_store::{Database, events};

/// Prefix of every node-to-node endpoint.
pub const INTERNAL_BASE_PATH: &str = "/internal/v1";

/// What the traffic manager's handlers need.
#[derive(Clone, Debug)]
pub struct TrafficManagerState {
    /// The AM database (events outbox, policies).
    pub am: Database,
    /// Authenticates calling nodes.
    pub cluster_secret: ClusterSecret,
}

/// The internal routes, each behind the cluster-secret check.
pub fn routes(state: TrafficManagerState) -> Router {
    let internal = Router::new()
        .route("/events/latest", get(latest_event))
        .route_layer(middleware::from_fn_with_state(
            state.cluster_secret.clone(),
            require_cluster_secret,
        ))
        .with_state(state);
    Router::new().nest(INTERNAL_BASE_PATH, internal)
}

/// `GET /internal/v1/events/latest` → `{"sequence": N}`: the newest event in the outbox.
async fn latest_event(State(state): State<TrafficManagerState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let seq = events::latest_seq(&state.am).await.map_err(Error::from)?;
    Ok(axum::Json(serde_json::json!({ "sequence": seq })))
}
