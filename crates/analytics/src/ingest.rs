//! `POST /internal/v1/analytics/events`: a gateway's batch of API-call events, counted at
//! once and written at the next flush. Cluster nodes only (the cluster secret); a batch
//! that does not parse is refused whole with 400 and counts nothing.

use crate::types::IngestReceipt;
use crate::{AnalyticsState, INGEST_PATH};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::post;
use tollgate_http::cluster::require_cluster_secret;
use tollgate_http::{ApiError, ApiJson};
use tollgate_model::analytics::UsageBatch;

/// Largest batch body accepted (gateways send at most a few thousand events a batch).
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

pub(crate) fn routes(state: AnalyticsState) -> Router {
    Router::new()
        .route(INGEST_PATH, post(ingest))
        .route_layer(middleware::from_fn_with_state(
            state.cluster_secret.clone(),
            require_cluster_secret,
        ))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
        .with_state(state)
}

async fn ingest(
    State(state): State<AnalyticsState>,
    ApiJson(batch): ApiJson<UsageBatch>,
) -> Result<(StatusCode, axum::Json<IngestReceipt>), ApiError> {
    let kept = state.aggregator.add(&batch);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(IngestReceipt {
            accepted: kept,
            dropped: batch.events.len().saturating_sub(kept),
        }),
    ))
}
