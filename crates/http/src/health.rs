//! `GET /health/live`, `GET /health/ready` and `GET /metrics`, served by every node.
//! Ready means: every database this node opened answers, its migrations are applied,
//! and the node is not draining for shutdown.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tollgate_store::Database;
use tollgate_telemetry::MetricsHandle;

/// Whether the gateway has loaded its runtime state, and a report of it for
/// `/health/ready` (where the state came from, the hub connection).
pub type GatewayLoaded = Box<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// What readiness depends on; shared by the node's listeners.
pub struct Readiness {
    databases: Vec<Database>,
    migrated: AtomicBool,
    draining: AtomicBool,
    components: String,
    gateway: std::sync::OnceLock<GatewayLoaded>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Readiness over `databases` (empty for a gateway node, which opens none).
    pub fn new(databases: Vec<Database>, components: String) -> Arc<Self> {
        Arc::new(Self {
            databases,
            migrated: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            components,
            gateway: std::sync::OnceLock::new(),
        })
    }

    /// Records that every migration has been applied.
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::Release);
    }

    /// Records that shutdown began: load balancers should stop sending new requests.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Makes readiness also wait for the gateway's runtime state (a node whose gateway
    /// follows an event hub): until it has loaded, the node would answer every API call 404.
    pub fn set_gateway_check(&self, loaded: GatewayLoaded) {
        let _ = self.gateway.set(loaded);
    }

    /// The databases whose health readiness depends on.
    pub fn databases(&self) -> &[Database] {
        &self.databases
    }

    /// Checks everything; returns whether ready and a JSON report.
    pub async fn check(&self) -> (bool, serde_json::Value) {
        let mut ready = true;
        let mut dbs = serde_json::Map::new();
        for db in &self.databases {
            let state = match db.ping(Duration::from_secs(2)).await {
                Ok(()) => "ok".to_string(),
                Err(e) => {
                    ready = false;
                    format!("unreachable: {e}")
                }
            };
            dbs.insert(db.name().to_string(), json!(state));
        }
        let migrated = self.migrated.load(Ordering::Acquire);
        let draining = self.draining.load(Ordering::Acquire);
        let gateway = self.gateway.get().map(|report| report());
        ready &= migrated && !draining && gateway.as_ref().is_none_or(|(loaded, _)| *loaded);
        let status = if draining {
            "draining"
        } else if ready {
            "ready"
        } else {
            "not_ready"
        };
        let mut body = json!({
            "status": status,
            "components": self.components,
            "databases": dbs,
            "migrations": if migrated { "applied" } else { "pending" },
        });
        if let Some((_, report)) = gateway {
            body["gateway"] = report;
        }
        (ready, body)
    }
}

#[derive(Clone)]
struct HealthState {
    readiness: Arc<Readiness>,
    metrics: MetricsHandle,
}

/// The health and metrics routes, ready to merge into any listener's router.
pub fn health_routes(readiness: Arc<Readiness>, metrics: MetricsHandle) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(HealthState { readiness, metrics })
}

async fn live() -> impl IntoResponse {
    axum::Json(json!({ "status": "live" }))
}

async fn ready(State(state): State<HealthState>) -> Response {
    let (ready, body) = state.readiness.check().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn render_metrics(State(state): State<HealthState>) -> Response {
    for db in state.readiness.databases() {
        let stats = db.pool_stats();
        let name = db.name().as_str();
        metrics::gauge!("tollgate_store_pool_connections", "database" => name, "state" => "open")
            .set(f64::from(stats.size));
        metrics::gauge!("tollgate_store_pool_connections", "database" => name, "state" => "idle")
            .set(f64::from(stats.idle));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}
