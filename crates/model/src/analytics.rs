//! API-call analytics as gateways ship them to the analytics component: one
//! [`UsageEvent`] per call, sent in [`UsageBatch`]es, and the latency buckets both sides
//! agree on (the component keeps per-minute histograms, not every latency, so that
//! percentiles survive aggregation and downsampling).

use serde::{Deserialize, Serialize};

/// One API call, in the JSON shape the gateway's analytics log and its shipments use.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// When the call arrived (epoch ms).
    pub timestamp: i64,
    /// The API's id ("" when no API matched the path).
    #[serde(default)]
    pub api_id: String,
    /// The API's name.
    #[serde(default)]
    pub api: String,
    /// The API's version.
    #[serde(default)]
    pub api_version: String,
    /// The matched resource template (`/pets/{id}`), "" when none matched.
    #[serde(default)]
    pub resource: String,
    /// HTTP method.
    pub method: String,
    /// The calling application, when authenticated.
    #[serde(default)]
    pub application_id: Option<String>,
    /// The end user the token was issued to.
    #[serde(default)]
    pub subscriber: Option<String>,
    /// `PRODUCTION` or `SANDBOX`.
    #[serde(default)]
    pub key_type: Option<String>,
    /// Response status.
    pub status: u16,
    /// The gateway's error code when it refused or failed the call (900901…).
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Time spent in the gateway, ms.
    pub gateway_latency_ms: f64,
    /// Time waiting for the backend's response headers, ms (when it was called).
    #[serde(default)]
    pub backend_latency_ms: Option<f64>,
    /// Response body size, when the backend declared it.
    #[serde(default)]
    pub response_bytes: Option<u64>,
    /// The caller's `User-Agent`.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The caller's address.
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// [`UsageEvent`] with borrowed strings: what a gateway renders its calls into, so that
/// writing the log, shipping a batch or counting it in-process copies no string per call.
/// It serializes exactly as the [`UsageEvent`] it borrows from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEventRef<'a> {
    /// When the call arrived (epoch ms).
    pub timestamp: i64,
    /// The API's id ("" when no API matched the path).
    pub api_id: &'a str,
    /// The API's name.
    pub api: &'a str,
    /// The API's version.
    pub api_version: &'a str,
    /// The matched resource template, "" when none matched.
    pub resource: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// The calling application, when authenticated.
    pub application_id: Option<&'a str>,
    /// The end user the token was issued to.
    pub subscriber: Option<&'a str>,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// The gateway's error code when it refused or failed the call.
    pub error_code: Option<i64>,
    /// Time spent in the gateway, ms.
    pub gateway_latency_ms: f64,
    /// Time waiting for the backend's response headers, ms.
    pub backend_latency_ms: Option<f64>,
    /// Response body size, when the backend declared it.
    pub response_bytes: Option<u64>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// The caller's address.
    pub client_ip: Option<&'a str>,
}

impl UsageEvent {
    /// The event's fields, borrowed.
    pub fn borrowed(&self) -> UsageEventRef<'_> {
        UsageEventRef {
            timestamp: self.timestamp,
            api_id: &self.api_id,
            api: &self.api,
            api_version: &self.api_version,
            resource: &self.resource,
            method: &self.method,
            application_id: self.application_id.as_deref(),
            subscriber: self.subscriber.as_deref(),
            key_type: self.key_type.as_deref(),
            status: self.status,
            error_code: self.error_code,
            gateway_latency_ms: self.gateway_latency_ms,
            backend_latency_ms: self.backend_latency_ms,
            response_bytes: self.response_bytes,
            user_agent: self.user_agent.as_deref(),
            client_ip: self.client_ip.as_deref(),
        }
    }
}

impl UsageEventRef<'_> {
    /// An owned copy (for whoever keeps the event beyond the borrow).
    pub fn to_event(&self) -> UsageEvent {
        UsageEvent {
            timestamp: self.timestamp,
            api_id: self.api_id.to_string(),
            api: self.api.to_string(),
            api_version: self.api_version.to_string(),
            resource: self.resource.to_string(),
            method: self.method.to_string(),
            application_id: self.application_id.map(String::from),
            subscriber: self.subscriber.map(String::from),
            key_type: self.key_type.map(String::from),
            status: self.status,
            error_code: self.error_code,
            gateway_latency_ms: self.gateway_latency_ms,
            backend_latency_ms: self.backend_latency_ms,
            response_bytes: self.response_bytes,
            user_agent: self.user_agent.map(String::from),
            client_ip: self.client_ip.map(String::from),
        }
    }
}

/// [`UsageBatch`] with borrowed events: what a gateway ships, serialized exactly as the
/// [`UsageBatch`] the analytics component reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBatchRef<'a> {
    /// The shipping gateway's id.
    pub gateway_id: &'a str,
    /// The gateway environment it serves.
    pub environment: &'a str,
    /// The calls.
    pub events: Vec<UsageEventRef<'a>>,
}

impl UsageBatchRef<'_> {
    /// An owned copy.
    pub fn to_batch(&self) -> UsageBatch {
        UsageBatch {
            gateway_id: self.gateway_id.to_string(),
            environment: self.environment.to_string(),
            events: self.events.iter().map(UsageEventRef::to_event).collect(),
        }
    }
}

/// What a gateway ships at once: its events, with where they happened.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageBatch {
    /// The shipping gateway's id.
    pub gateway_id: String,
    /// The gateway environment it serves.
    pub environment: String,
    /// The calls.
    pub events: Vec<UsageEvent>,
}

/// Upper bounds (ms) of the latency histogram's buckets; a last, unbounded bucket
/// follows. Roughly ×2–2.5 apart, as Prometheus' defaults.
pub const LATENCY_BUCKETS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// How many buckets a latency histogram has (the bounded ones and the last).
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The bucket a latency falls in.
pub fn latency_bucket(ms: f64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// The `q`-quantile (0 < q ≤ 1) of a histogram, interpolated linearly inside its bucket;
/// `None` when it is empty. The last bucket reports its lower bound (it has no upper).
pub fn latency_quantile(counts: &[i64; LATENCY_BUCKETS], q: f64) -> Option<f64> {
    let total: i64 = counts.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0i64;
    for (i, &c) in counts.iter().enumerate() {
        if c <= 0 {
            continue;
        }
        if (seen + c) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { LATENCY_BUCKETS_MS[i - 1] };
            let Some(&upper) = LATENCY_BUCKETS_MS.get(i) else {
                return Some(lower);
            };
            let within = (rank - seen as f64) / c as f64;
            return Some(lower + (upper - lower) * within);
        }
        seen += c;
    }
    Some(LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_batch_serializes_as_its_owned_batch() {
        let full = UsageEvent {
            timestamp: 7,
            api_id: "a1".into(),
            api: "Pets".into(),
            api_version: "1.0.0".into(),
            resource: "/pets/{id}".into(),
            method: "GET".into(),
            application_id: Some("app".into()),
            subscriber: Some("alice".into()),
            key_type: Some("PRODUCTION".into()),
            status: 200,
            error_code: Some(900_800),
            gateway_latency_ms: 1.5,
            backend_latency_ms: Some(0.5),
            response_bytes: Some(1024),
            user_agent: Some("wrk".into()),
            client_ip: Some("127.0.0.1".into()),
        };
        let batch = UsageBatch {
            gateway_id: "g".into(),
            environment: "Default".into(),
            events: vec![full, UsageEvent::default()],
        };
        let borrowed = UsageBatchRef {
            gateway_id: &batch.gateway_id,
            environment: &batch.environment,
            events: batch.events.iter().map(UsageEvent::borrowed).collect(),
        };
        assert_eq!(
            serde_json::to_value(&borrowed).unwrap(),
            serde_json::to_value(&batch).unwrap()
        );
        assert_eq!(borrowed.to_batch(), batch);
    }

    #[test]
    fn latencies_land_in_their_bucket() {
        assert_eq!(latency_bucket(0.2), 0);
        assert_eq!(latency_bucket(1.0), 0);
        assert_eq!(latency_bucket(1.5), 1);
        assert_eq!(latency_bucket(99.0), 6);
        assert_eq!(latency_bucket(60_000.0), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let mut h = [0i64; LATENCY_BUCKETS];
        assert_eq!(latency_quantile(&h, 0.5), None);
        h[latency_bucket(3.0)] = 100; // all in (2, 5]
        let p50 = latency_quantile(&h, 0.5).unwrap_or_default();
        assert!((p50 - 3.5).abs() < 1e-9, "{p50}");
        h[latency_bucket(700.0)] = 100; // half in (500, 1000]
        let p99 = latency_quantile(&h, 0.99).unwrap_or_default();
        assert!(p99 > 500.0 && p99 <= 1000.0, "{p99}");
        let p25 = latency_quantile(&h, 0.25).unwrap_or_default();
        assert!(p25 > 2.0 && p25 <= 5.0, "{p25}");
        let mut slow = [0i64; LATENCY_BUCKETS];
        slow[LATENCY_BUCKETS - 1] = 1;
        assert_eq!(latency_quantile(&slow, 0.5), Some(10_000.0));
    }

    #[test]
    fn an_event_reads_back_from_its_json_line() {
        let line = r#"{"timestamp":1,"apiId":"a","api":"Pets","apiVersion":"1","resource":"/pets","method":"GET",
            "applicationId":null,"subscriber":null,"keyType":null,"status":401,"errorCode":900902,
            "gatewayLatencyMs":0.4,"backendLatencyMs":null,"responseBytes":null,"userAgent":"curl","clientIp":"127.0.0.1"}"#;
        let e: UsageEvent = serde_json::from_str(line).unwrap_or_default();
        assert_eq!((e.status, e.error_code, e.api_id.as_str()), (401, Some(900902), "a"));
    }
}
