//! The analytics REST API's response bodies, so that the generated OpenAPI document states
//! their real schema (the reference has no analytics document to name them after).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The answer of `GET /usage`: the range and grouping actually used, and one group per
/// combination of the asked dimensions' values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// Start of the first bucket counted (RFC 3339), `from` floored to the granularity.
    pub from: String,
    /// End, excluded (RFC 3339).
    pub to: String,
    /// `minute`, `hour` or `day`: the buckets' size.
    pub granularity: String,
    /// The dimensions grouped by, in the order asked.
    pub group_by: Vec<String>,
    /// Groups listed.
    pub count: usize,
    /// The groups.
    pub list: Vec<UsageGroup>,
}

/// One group: the values of the grouped dimensions (only those asked for are present)
/// and what the calls add up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    /// The tenant's domain, with `groupBy=tenant` (the super tenant's administrators
    /// only): the calls to that tenant's APIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Start of the time bucket (RFC 3339), with `groupBy=time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The API's id, with `groupBy=api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// The API's name, with `groupBy=api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_name: Option<String>,
    /// The API's version, with `groupBy=api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The resource template, with `groupBy=resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The HTTP method, with `groupBy=resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The application's id (empty for calls without one), with `groupBy=application`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The application's name, with `groupBy=application`; null when the application no
    /// longer exists (or the calls had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub application_name: Option<Option<String>>,
    /// The end user, with `groupBy=subscriber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<String>,
    /// The gateway environment, with `groupBy=environment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// 2, 3, 4 or 5 (for 2xx…), with `groupBy=statusClass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_class: Option<i64>,
    /// The response status, with `groupBy=status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// The gateway's error code (0: none), with `groupBy=errorCode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Calls.
    pub requests: i64,
    /// Calls answered 4xx.
    pub client_errors: i64,
    /// Calls answered 5xx.
    pub server_errors: i64,
    /// Calls refused by throttling (429).
    pub throttled: i64,
    /// Response bytes sent to clients.
    pub response_bytes: i64,
    /// Time spent in the gateway per call; null when there were no calls.
    #[schema(required = true)]
    pub gateway_latency_ms: Option<LatencyStats>,
    /// Backend time per call that reached the backend; null when none did.
    #[schema(required = true)]
    pub backend_latency_ms: Option<LatencyStats>,
}

/// Latency in milliseconds: the average and percentiles read from the stored histogram
/// (each rounded to 0.01 ms; a percentile is null when the histogram is empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyStats {
    /// Average.
    #[schema(required = true)]
    pub avg: Option<f64>,
    /// Median.
    #[schema(required = true)]
    pub p50: Option<f64>,
    /// 95th percentile.
    #[schema(required = true)]
    pub p95: Option<f64>,
    /// 99th percentile.
    #[schema(required = true)]
    pub p99: Option<f64>,
}

/// The answer of the node-to-node ingest route: how many events of the batch were
/// counted and how many were dropped (the aggregator was full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReceipt {
    /// Events counted.
    pub accepted: usize,
    /// Events dropped.
    pub dropped: usize,
}
