//! Request counters and latency for the management and internal listeners, labelled by
//! the matched route template (bounded), never by the raw path.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Middleware recording `tollgate_<listener>_http_requests_total` and
/// `tollgate_<listener>_http_request_duration_seconds`.
pub async fn record(listener: &'static str, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let (counter, histogram) = names(listener);
    metrics::counter!(counter, "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!(histogram, "route" => route, "method" => method).record(start.elapsed().as_secs_f64());
    response
}

fn names(listener: &'static str) -> (&'static str, &'static str) {
    match listener {
        "traffic-manager" => (
            "tollgate_trafficmanager_http_requests_total",
            "tollgate_trafficmanager_http_request_duration_seconds",
        ),
        _ => (
            "tollgate_management_http_requests_total",
            "tollgate_management_http_request_duration_seconds",
        ),
    }
}
