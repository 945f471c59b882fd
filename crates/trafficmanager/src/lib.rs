//! The Traffic Manager component: the event hub that streams control events to gateways
//! (docs/architecture.md, "Event hub") and the shared counters of distributed throttling
//! (docs/architecture.md, "Distributed throttling"). Its routes live on the
//! traffic-manager listener and answer only callers presenting the cluster secret:
//! `GET /internal/v1/snapshot?environment=E`, `GET /internal/v1/watch?since=N` (SSE),
//! both with `&tenants=a.com,b.org` for a gateway limited to some tenants,
//! `GET /internal/v1/events/latest`, `POST /internal/v1/gateway-status` (what a gateway
//! serves) and `POST /internal/v1/throttle/sync` (shared throttle counters). In all-in-one the same [`DatabaseHub`] feeds the
//! in-process gateway. Depends on `http`, `store`, `events`, `config` and `model` only.

pub mod counters;
pub mod hub;
pub mod node;
mod watch_stream;

pub use counters::{CounterStore, CounterStoreError};
pub use hub::{DatabaseHub, EventFeed, compact_loop};

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::routing::{get, post};
use serde::Deserialize;
use std::sync::Arc;
use tollgate_events::GatewayReport;
use tollgate_events::{Hub, TenantFilter, WatchItem};
use tollgate_http::ApiJson;
use tollgate_http::cluster::{ClusterSecret, require_cluster_secret};
use tollgate_http::{ApiError, ApiQuery};
use tollgate_model::{Error, FieldError};
use tollgate_store::events;

/// Prefix of every node-to-node endpoint.
pub const INTERNAL_BASE_PATH: &str = "/internal/v1";

/// What the traffic manager's handlers need.
#[derive(Clone, Debug)]
pub struct TrafficManagerState {
    /// The event hub (the AM database's outbox and snapshots).
    pub hub: Arc<DatabaseHub>,
    /// Shared throttle counters.
    pub counters: Arc<CounterStore>,
    /// Authenticates calling nodes.
    pub cluster_secret: ClusterSecret,
}

/// The internal routes, each behind the cluster-secret check.
pub fn routes(state: TrafficManagerState) -> Router {
    let internal = Router::new()
        .route("/events/latest", get(latest_event))
        .route("/snapshot", get(snapshot))
        .route("/watch", get(watch))
        .route("/gateway-status", post(gateway_status))
        .route("/throttle/sync", post(throttle_sync))
        .route_layer(middleware::from_fn_with_state(
            state.cluster_secret.clone(),
            require_cluster_secret,
        ))
        .with_state(state);
    Router::new().nest(INTERNAL_BASE_PATH, internal)
}

/// `GET /internal/v1/events/latest` → `{"sequence": N}`: the newest event in the outbox.
async fn latest_event(State(state): State<TrafficManagerState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let seq = events::latest_seq(state.hub.am()).await?;
    Ok(axum::Json(serde_json::json!({ "sequence": seq })))
}

#[derive(Debug, Deserialize)]
struct SnapshotQuery {
    environment: Option<String>,
    tenants: Option<String>,
}

/// The tenants a gateway asks for (`?tenants=a.com,b.org`; absent or empty: all), or a
/// 400 naming the parameter and the value that is no tenant domain.
fn tenant_filter(tenants: Option<&str>) -> Result<TenantFilter, ApiError> {
    match tenants {
        None => Ok(TenantFilter::all()),
        Some(list) => TenantFilter::from_query(list)
            .map_err(|why| Error::Validation(vec![FieldError::new("tenants", why)]).into()),
    }
}

/// `GET /internal/v1/snapshot?environment=E[&tenants=…]` → the runtime
/// [`tollgate_events::Snapshot`] of environment `E`, of the tenants named (all by default).
async fn snapshot(
    State(state): State<TrafficManagerState>,
    ApiQuery(q): ApiQuery<SnapshotQuery>,
) -> Result<axum::Json<tollgate_events::Snapshot>, ApiError> {
    let environment = q.environment.filter(|e| !e.trim().is_empty()).ok_or_else(|| {
        Error::Validation(vec![FieldError::new(
            "environment",
            "name the gateway environment: ?environment=Default",
        )])
    })?;
    let tenants = tenant_filter(q.tenants.as_deref())?;
    let snapshot = state
        .hub
        .snapshot(&environment, &tenants)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(axum::Json(snapshot))
}

#[derive(Debug, Deserialize)]
struct WatchQuery {
    since: Option<i64>,
    tenants: Option<String>,
}

/// `GET /internal/v1/watch?since=N[&tenants=…]` → Server-Sent Events: each outbox event
/// after `N` in order (`id` = sequence, `event` = kind, `data` = the event), a
/// `: heartbeat N` comment when idle (everything up to `N` sent), and `event: resnapshot`
/// when the events after `N` are no longer kept. With `tenants`, only those tenants'
/// events (and those of no tenant), and a `: progress N` comment after events left out
/// (everything up to `N` the watch asked for sent).
async fn watch(
    State(state): State<TrafficManagerState>,
    ApiQuery(q): ApiQuery<WatchQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let since = match q.since {
        Some(n) if n >= 0 => n,
        Some(_) => {
            return Err(
                Error::Validation(vec![FieldError::new("since", "must be a sequence number, 0 or more")]).into(),
            );
        }
        None => {
            return Err(Error::Validation(vec![FieldError::new(
                "since",
                "give the last sequence applied: ?since=0 for everything",
            )])
            .into());
        }
    };
    let tenants = tenant_filter(q.tenants.as_deref())?;
    let items = state
        .hub
        .watch(since, &tenants)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    metrics::counter!("tollgate_hub_watches_opened_total").increment(1);
    let streamed = metrics::counter!("tollgate_hub_events_streamed_total");
    let stream = watch_stream::WatchStream::new(items, move |item| match item {
        WatchItem::Events(batch) => batch
            .into_iter()
            .inspect(|_| streamed.increment(1))
            .map(|event| {
                let data = serde_json::to_string(&event).unwrap_or_default();
                SseEvent::default()
                    .id(event.seq.to_string())
                    .event(event.kind.as_str())
                    .data(data)
            })
            .collect(),
        WatchItem::Heartbeat { seq } => vec![SseEvent::default().comment(format!("heartbeat {seq}"))],
        WatchItem::Progress { seq } => vec![SseEvent::default().comment(format!("progress {seq}"))],
        WatchItem::Resnapshot => vec![SseEvent::default().event("resnapshot").data("{}")],
    });
    Ok(Sse::new(stream))
}

/// `POST /internal/v1/gateway-status`: a gateway's report of what it serves (deployment
/// acknowledgements); 204.
async fn gateway_status(
    State(state): State<TrafficManagerState>,
    ApiJson(report): ApiJson<GatewayReport>,
) -> Result<axum::http::StatusCode, ApiError> {
    let mut errors = Vec::new();
    for (field, value) in [("gatewayId", &report.gateway_id), ("environment", &report.environment)] {
        if value.trim().is_empty() || value.len() > 255 {
            errors.push(FieldError::new(field, "must be 1 to 255 characters"));
        }
    }
    if report.sequence < 0 {
        errors.push(FieldError::new("sequence", "must be 0 or more"));
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors).into());
    }
    state
        .hub
        .report(&report)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /internal/v1/throttle/sync`: a gateway's batch of counter use and permit wants
/// ([`tollgate_events::throttle::SyncRequest`]); answers with the grants and global counts,
/// or 503 when the counters (Redis) cannot be reached, which sends gateways to their
/// fallback mode.
async fn throttle_sync(
    State(state): State<TrafficManagerState>,
    ApiJson(request): ApiJson<tollgate_events::throttle::SyncRequest>,
) -> Result<axum::Json<tollgate_events::throttle::SyncResponse>, ApiError> {
    if let Some((field, message)) = request.problem() {
        return Err(Error::Validation(vec![FieldError::new(field, message)]).into());
    }
    let response = state.counters.apply(&request).await.map_err(|e| {
        tracing::warn!(error = %e, "Throttle counters unavailable.");
        metrics::counter!("tollgate_trafficmanager_throttle_syncs_total", "outcome" => "unavailable").increment(1);
        Error::Unavailable(e.to_string())
    })?;
    metrics::counter!("tollgate_trafficmanager_throttle_syncs_total", "outcome" => "ok").increment(1);
    Ok(axum::Json(response))
}
