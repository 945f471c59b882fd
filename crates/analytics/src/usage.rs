//! `GET /api/am/analytics/v1/usage`: API calls over a time range, grouped by any
//! dimensions (`groupBy=time,api,resource,application,subscriber,environment,
//! statusClass,status,errorCode`) and filtered by API, application and environment.
//! Each group reports requests, 4xx, 5xx, throttled (429) calls, bytes, and gateway and
//! backend latency (average and p50/p95/p99 from the stored histograms).
//!
//! Who sees what: administrators everything; API creators and publishers the calls to
//! their tenant's APIs; subscribers the calls of the applications they own.

use crate::AnalyticsState;
use crate::types::{self, LatencyStats, UsageReport};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use tollgate_http::auth::{AdminRole, CreatorOrPublisherRole, SubscriberRole, grants};
use tollgate_http::{ApiError, ApiQuery, Authenticated};
use tollgate_model::analytics::{LATENCY_BUCKETS, latency_quantile};
use tollgate_model::{Error, FieldError, now_millis, parse_rfc3339, rfc3339};
use tollgate_store::analytics::{self, Dimension, Granularity, UsageFilter, UsageGroup};

pub(crate) fn routes() -> Router<AnalyticsState> {
    Router::new().route("/usage", get(usage)).route(
        "/openapi.json",
        get(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                crate::api_doc::document_json(),
            )
        }),
    )
}

/// Most groups one answer holds.
const MAX_LIMIT: i64 = 10_000;

/// Most time buckets one answer spans when the granularity is chosen automatically.
const MAX_AUTO_BUCKETS: i64 = 1_500;

/// The query parameters, as sent.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct UsageQuery {
    /// Start (RFC 3339); default: `to` minus one hour.
    pub from: Option<String>,
    /// End, excluded (RFC 3339); default: now.
    pub to: Option<String>,
    /// `minute`, `hour` or `day`; default: the finest that still holds the range.
    pub granularity: Option<String>,
    /// Comma-separated dimensions.
    pub group_by: Option<String>,
    /// Only this API.
    pub api_id: Option<String>,
    /// Only this application.
    pub application_id: Option<String>,
    /// Only this gateway environment.
    pub environment: Option<String>,
    /// Most groups (1–10000, default 100).
    pub limit: Option<i64>,
}

/// The query, checked.
#[derive(Debug)]
struct Checked {
    granularity: Granularity,
    group_by: Vec<Dimension>,
    filter: UsageFilter,
    limit: i64,
}

fn check(q: &UsageQuery, now: i64, retention: &crate::Retention) -> Result<Checked, Error> {
    let mut errors = Vec::new();
    let mut time = |name: &str, value: &Option<String>| match value.as_deref() {
        None | Some("") => None,
        Some(v) => {
            let parsed = parse_rfc3339(v);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    name,
                    format!("`{v}` is not an RFC 3339 time such as 2026-11-24T10:00:00Z"),
                ));
            }
            parsed
        }
    };
    let to = time("to", &q.to).unwrap_or(now);
    let from = time("from", &q.from).unwrap_or(to - 3_600_000);
    if from >= to {
        errors.push(FieldError::new("from", "must be before `to`"));
    }
    let group_by: Vec<Dimension> = q
        .group_by
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| match s.parse::<Dimension>() {
            Ok(d) => Some(d),
            Err(m) => {
                errors.push(FieldError::new("groupBy", m));
                None
            }
        })
        .collect();
    let granularity = match q.granularity.as_deref() {
        None | Some("") => Granularity::ALL
            .into_iter()
            .find(|g| {
                let kept = i64::try_from(retention_of(retention, *g).as_millis()).unwrap_or(i64::MAX);
                (to - from) / g.millis() <= MAX_AUTO_BUCKETS && from >= now.saturating_sub(kept)
            })
            .unwrap_or(Granularity::Day),
        Some(g) => g.parse().unwrap_or_else(|m: String| {
            errors.push(FieldError::new("granularity", m));
            Granularity::Minute
        }),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be from 1 to {MAX_LIMIT}")));
    }
    Error::check_fields(errors)?;
    let nonempty = |v: &Option<String>| v.as_ref().filter(|s| !s.is_empty()).cloned();
    Ok(Checked {
        granularity,
        group_by,
        filter: UsageFilter {
            from: granularity.floor(from),
            to,
            api_id: nonempty(&q.api_id),
            application_id: nonempty(&q.application_id),
            environment: nonempty(&q.environment),
            ..UsageFilter::default()
        },
        limit,
    })
}

fn retention_of(r: &crate::Retention, g: Granularity) -> std::time::Duration {
    match g {
        Granularity::Minute => r.minute,
        Granularity::Hour => r.hour,
        Granularity::Day => r.day,
    }
}

fn latency(sum: f64, calls: i64, buckets: &[i64; LATENCY_BUCKETS]) -> Option<LatencyStats> {
    if calls <= 0 {
        return None;
    }
    let round = |v: Option<f64>| v.map(|x| (x * 100.0).round() / 100.0);
    Some(LatencyStats {
        avg: round(Some(sum / calls as f64)),
        p50: round(latency_quantile(buckets, 0.50)),
        p95: round(latency_quantile(buckets, 0.95)),
        p99: round(latency_quantile(buckets, 0.99)),
    })
}

/// A group as the API answers it: each dimension value under its reported name (the
/// time bucket as RFC 3339), then the measures.
fn group_body(g: &UsageGroup) -> types::UsageGroup {
    let c = &g.counts;
    let mut out = types::UsageGroup {
        requests: c.requests,
        client_errors: g.client_errors,
        server_errors: g.server_errors,
        throttled: g.throttled,
        response_bytes: c.response_bytes,
        gateway_latency_ms: latency(c.gateway_latency_sum, c.requests, &c.gateway_buckets),
        backend_latency_ms: latency(c.backend_latency_sum, c.backend_calls, &c.backend_buckets),
        ..types::UsageGroup::default()
    };
    for (name, value) in &g.dimensions {
        let text = || value.as_str().map(str::to_string);
        match *name {
            "time" => out.time = value.as_i64().map(rfc3339),
            "apiId" => out.api_id = text(),
            "apiName" => out.api_name = text(),
            "apiVersion" => out.api_version = text(),
            "resource" => out.resource = text(),
            "method" => out.method = text(),
            "applicationId" => out.application_id = text(),
            "applicationName" => out.application_name = Some(text()),
            "subscriber" => out.subscriber = text(),
            "environment" => out.environment = text(),
            "statusClass" => out.status_class = value.as_i64(),
            "status" => out.status = value.as_i64(),
            "errorCode" => out.error_code = value.as_i64(),
            other => tracing::warn!(
                dimension = other,
                "analytics: a dimension the REST API does not know; left out"
            ),
        }
    }
    out
}

/// `GET /usage`.
#[utoipa::path(get, path = "/usage", operation_id = "get_usage", tag = "Usage", summary = "API calls over a time range, grouped by any dimensions", description = "Groups report requests, clientErrors, serverErrors, throttled, responseBytes, and gatewayLatencyMs and backendLatencyMs as {avg, p50, p95, p99}. Administrators see every call, API creators and publishers the calls to their tenant's APIs, subscribers the calls of their own applications.", params(UsageQuery), responses((status = 200, description = "The range and grouping used, and the groups", body = UsageReport), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn usage(
    auth: Authenticated,
    State(state): State<AnalyticsState>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<UsageReport>, ApiError> {
    let p = auth.principal();
    let mut checked = check(&q, now_millis(), &state.retention)?;
    // The widest view the caller's roles (and token scopes) give.
    if grants::<AdminRole>(p) {
        tracing::trace!("analytics: the whole platform");
    } else if grants::<CreatorOrPublisherRole>(p) {
        checked.filter.tenant_apis = Some(p.tenant_id);
    } else if grants::<SubscriberRole>(p) {
        checked.filter.application_owner = Some((p.tenant_id, p.username.clone()));
    } else {
        return Err(Error::Forbidden(format!(
            "analytics need the admin, creator, publisher or subscriber role; `{}` has none of them",
            p.username
        ))
        .into());
    }
    let groups = analytics::query(
        &state.am,
        checked.granularity,
        &checked.group_by,
        &checked.filter,
        checked.limit,
    )
    .await?;
    let list: Vec<types::UsageGroup> = groups.iter().map(group_body).collect();
    Ok(axum::Json(UsageReport {
        from: rfc3339(checked.filter.from),
        to: rfc3339(checked.filter.to),
        granularity: checked.granularity.as_str().to_string(),
        group_by: checked.group_by.iter().map(|d| d.as_str().to_string()).collect(),
        count: list.len(),
        list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RETENTION: crate::Retention = crate::Retention {
        minute: Duration::from_secs(2 * 86_400),
        hour: Duration::from_secs(90 * 86_400),
        day: Duration::from_secs(1000 * 86_400),
    };
    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn the_finest_granularity_that_holds_the_range_is_chosen() {
        let q = |from: &str| UsageQuery {
            from: Some(from.into()),
            to: Some(rfc3339(NOW)),
            ..UsageQuery::default()
        };
        let g = |from_ms: i64| {
            check(&q(&rfc3339(from_ms)), NOW, &RETENTION)
                .ok()
                .map(|c| c.granularity)
        };
        assert_eq!(g(NOW - 3_600_000), Some(Granularity::Minute));
        assert_eq!(g(NOW - 3 * 86_400_000), Some(Granularity::Hour), "minutes are gone");
        assert_eq!(g(NOW - 200 * 86_400_000), Some(Granularity::Day));
    }

    #[test]
    fn bad_parameters_are_named() {
        let q = UsageQuery {
            from: Some("yesterday".into()),
            group_by: Some("api,colour".into()),
            granularity: Some("week".into()),
            limit: Some(0),
            ..UsageQuery::default()
        };
        let Err(Error::Validation(fields)) = check(&q, NOW, &RETENTION) else {
            panic!("accepted");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["from", "groupBy", "granularity", "limit"]);
        let backwards = UsageQuery {
            from: Some(rfc3339(NOW)),
            to: Some(rfc3339(NOW - 1000)),
            ..UsageQuery::default()
        };
        assert!(check(&backwards, NOW, &RETENTION).is_err());
    }

    #[test]
    fn latencies_report_average_and_percentiles() {
        let mut b = [0i64; LATENCY_BUCKETS];
        b[2] = 4;
        let v = latency(14.0, 4, &b).expect("calls were made");
        assert_eq!(v.avg, Some(3.5));
        assert!(v.p99.is_some_and(|p| p > 2.0 && p <= 5.0));
        assert!(latency(0.0, 0, &b).is_none());
    }
}
