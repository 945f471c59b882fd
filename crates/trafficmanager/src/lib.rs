//! The Traffic Manager component: the event hub that streams control events to gateways
//! (ARCHITECTURE.md §3) and, later, distributed throttling (§5). Its routes live on the
//! traffic-manager listener and answer only callers presenting the cluster secret.
//!
//! Today it serves the outbox's current sequence, which gateways and operators use to
//! tell how far behind a node is; snapshot and watch arrive with the Event hub issue.
//! In all-in-one it also feeds the in-process gateway ([`DatabaseHub`]).
//! Depends on `http`, `store`, `events` and `model` only.

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::routing::get;
use tollgate_events::{Event, Hub, HubError, HubFuture, Snapshot};
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

/// The event hub over the AM database, for gateways in the same process (all-in-one):
/// snapshots from [`tollgate_store::snapshot::read`], events from the outbox.
#[derive(Clone, Debug)]
pub struct DatabaseHub {
    /// The AM database.
    pub am: Database,
}

impl Hub for DatabaseHub {
    fn snapshot<'a>(&'a self, environment: &'a str) -> HubFuture<'a, Snapshot> {
        Box::pin(async move {
            tollgate_store::snapshot::read(&self.am, environment, tollgate_model::now_millis())
                .await
                .map_err(|e| HubError(e.to_string()))
        })
    }

    fn events_since(&self, since: i64, limit: i64) -> HubFuture<'_, Vec<Event>> {
        Box::pin(async move {
            events::read_since(&self.am, since, limit)
                .await
                .map_err(|e| HubError(e.to_string()))
        })
    }
}
