//! `GET /api/am/analytics/v1/usage`: API calls over a time range, grouped by any
//! dimensions (`groupBy=time,api,resource,application,subscriber,environment,
//! statusClass,status,errorCode`) and filtered by API, application and environment.
//! Each group reports requests, 4xx, 5xx, throttled (429) calls, bytes, and gateway and
//! backend latency (average and p50/p95/p99 from the stored histograms).
//!
//! Who sees what: the super tenant's administrators the whole platform (and, with
//! `groupBy=tenant`, each tenant's share); another tenant's administrators, API creators
//! and publishers the calls to their tenant's APIs; subscribers the calls of the
//! applications they own.

use crate::AnalyticsState;
use crate::types::{self, LatencyStats, UsageReport};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use tollgate_http::auth::{AdminRole, CreatorOrPublisherRole, SubscriberRole, grants};
use tollgate_http::{ApiError, ApiQuery, Authenticated};
use tollgate_model::analytics::{LATENCY_BUCKETS, latency_quantile};
use tollgate_model::{Error, FieldError, TenantId, now_millis, parse_rfc3339, rfc3339};
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

/// The `groupBy` value that breaks the answer down per tenant (super-tenant
/// administrators only). The stored rows carry no tenant: a call counts for the tenant
/// whose API it called, so calls that matched no API, or whose API was deleted since,
/// appear only in the platform-wide totals.
const TENANT: &str = "tenant";

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
    /// Comma-separated dimensions: time, api, resource, application, subscriber,
    /// environment, statusClass, status, errorCode, and tenant (super-tenant
    /// administrators only).
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
    /// `groupBy` named `tenant`: one query per tenant (see [`TENANT`]).
    by_tenant: bool,
    /// The dimensions as asked, for the answer (`tenant` among them).
    group_by_names: Vec<String>,
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
    let names: Vec<&str> = q
        .group_by
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let by_tenant = names.contains(&TENANT);
    let group_by: Vec<Dimension> = names
        .iter()
        .filter(|s| **s != TENANT)
        .filter_map(|s| match s.parse::<Dimension>() {
            Ok(d) => Some(d),
            Err(m) => {
                errors.push(FieldError::new("groupBy", format!("{m}, or {TENANT}")));
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
        by_tenant,
        group_by_names: names.iter().map(|s| s.to_string()).collect(),
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
#[utoipa::path(get, path = "/usage", operation_id = "get_usage", tag = "Usage", summary = "API calls over a time range, grouped by any dimensions", description = "Groups report requests, clientErrors, serverErrors, throttled, responseBytes, and gatewayLatencyMs and backendLatencyMs as {avg, p50, p95, p99}. The super tenant's administrators see every tenant's calls, and with groupBy=tenant each tenant's share (a group per tenant, marked with its domain; others are refused with 403); another tenant's administrators, API creators and publishers see the calls to their tenant's APIs, subscribers the calls of their own applications.", params(UsageQuery), responses((status = 200, description = "The range and grouping used, and the groups", body = UsageReport), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn usage(
    auth: Authenticated,
    State(state): State<AnalyticsState>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<axum::Json<UsageReport>, ApiError> {
    let p = auth.principal();
    let mut checked = check(&q, now_millis(), &state.retention)?;
    // The widest view the caller's roles (and token scopes) give; only the super
    // tenant's administrators see beyond their own tenant.
    let platform = grants::<AdminRole>(p) && p.tenant_id == TenantId::DEFAULT;
    if platform {
        tracing::trace!("analytics: the whole platform");
    } else if grants::<AdminRole>(p) || grants::<CreatorOrPublisherRole>(p) {
        checked.filter.tenant_apis = Some(p.tenant_id);
    } else if grants::<SubscriberRole>(p) {
        checked.filter.application_owner = Some((p.tenant_id, p.username.clone()));
    } else {
        return Err(Error::Forbidden(format!(
            "analytics need the admin, creator, publisher or subscriber role; `{}` has none of them",
            p.qualified_name()
        ))
        .into());
    }
    if checked.by_tenant && !platform {
        return Err(Error::Forbidden(format!(
            "groupBy={TENANT} compares tenants, which only the super tenant's administrators see; `{}` sees `{}` only",
            p.qualified_name(),
            p.tenant_domain
        ))
        .into());
    }
    let list = if checked.by_tenant {
        per_tenant(&state, &checked).await?
    } else {
        analytics::query(
            &state.am,
            checked.granularity,
            &checked.group_by,
            &checked.filter,
            checked.limit,
        )
        .await?
        .iter()
        .map(group_body)
        .collect()
    };
    Ok(axum::Json(UsageReport {
        from: rfc3339(checked.filter.from),
        to: rfc3339(checked.filter.to),
        granularity: checked.granularity.as_str().to_string(),
        group_by: checked.group_by_names.clone(),
        count: list.len(),
        list,
    }))
}

/// The answer broken down per tenant: the query once per tenant, over the calls to that
/// tenant's APIs, each group marked with the tenant's domain; then ordered as one query
/// orders its groups (by time, else busiest first) and cut to the limit.
async fn per_tenant(state: &AnalyticsState, checked: &Checked) -> Result<Vec<types::UsageGroup>, ApiError> {
    let mut list = Vec::new();
    for tenant in tollgate_store::tenants::states(&state.am).await? {
        let filter = UsageFilter {
            tenant_apis: Some(tenant.tenant_id),
            ..checked.filter.clone()
        };
        let groups = analytics::query(
            &state.am,
            checked.granularity,
            &checked.group_by,
            &filter,
            checked.limit,
        )
        .await?;
        list.extend(groups.iter().map(|g| types::UsageGroup {
            tenant: Some(tenant.domain.clone()),
            ..group_body(g)
        }));
    }
    order_groups(&mut list, checked.group_by.contains(&Dimension::Time));
    list.truncate(usize::try_from(checked.limit).unwrap_or(usize::MAX));
    Ok(list)
}

/// By time then tenant when grouped by time (RFC 3339 times of one format sort as
/// text), otherwise busiest first; ties by tenant.
fn order_groups(list: &mut [types::UsageGroup], by_time: bool) {
    if by_time {
        list.sort_by(|a, b| (&a.time, &a.tenant).cmp(&(&b.time, &b.tenant)));
    } else {
        list.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.tenant.cmp(&b.tenant)));
    }
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
    fn tenant_is_a_grouping_of_its_own_and_bad_dimensions_name_it() {
        let q = |g: &str| UsageQuery {
            group_by: Some(g.into()),
            ..UsageQuery::default()
        };
        let c = check(&q("api, tenant,time"), NOW, &RETENTION).expect("valid");
        assert!(c.by_tenant);
        assert_eq!(c.group_by, [Dimension::Api, Dimension::Time]);
        assert_eq!(c.group_by_names, ["api", "tenant", "time"]);
        assert!(!check(&q("api"), NOW, &RETENTION).expect("valid").by_tenant);
        let Err(Error::Validation(fields)) = check(&q("tenant,tenants"), NOW, &RETENTION) else {
            panic!("accepted");
        };
        assert_eq!(fields.len(), 1);
        assert!(fields[0].message.contains("or tenant"), "{}", fields[0].message);
    }

    #[test]
    fn per_tenant_groups_are_ordered_as_one_query_orders_them() {
        let g = |tenant: &str, time: &str, requests: i64| types::UsageGroup {
            tenant: Some(tenant.into()),
            time: Some(time.into()),
            requests,
            ..types::UsageGroup::default()
        };
        let mut list = vec![
            g("globex.com", "2026-01-01T10:01:00Z", 5),
            g("acme.com", "2026-01-01T10:01:00Z", 7),
            g("acme.com", "2026-01-01T10:00:00Z", 5),
        ];
        order_groups(&mut list, false);
        let seen: Vec<_> = list.iter().map(|g| (g.tenant.clone().unwrap(), g.requests)).collect();
        assert_eq!(
            seen,
            [("acme.com".into(), 7), ("acme.com".into(), 5), ("globex.com".into(), 5)]
        );
        order_groups(&mut list, true);
        let seen: Vec<_> = list
            .iter()
            .map(|g| (g.time.clone().unwrap(), g.tenant.clone().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("2026-01-01T10:00:00Z".into(), "acme.com".into()),
                ("2026-01-01T10:01:00Z".into(), "acme.com".into()),
                ("2026-01-01T10:01:00Z".into(), "globex.com".into())
            ]
        );
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
