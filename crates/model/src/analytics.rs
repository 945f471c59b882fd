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
