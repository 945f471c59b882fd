//! Telemetry every node shares: structured logs (text or JSON, through `tracing`), the
//! process-wide Prometheus recorder behind `GET /metrics`, and OpenTelemetry trace export
//! ([`traces`]).
//!
//! Metric names follow `tollgate_<component>_<thing>_<unit>` with bounded labels (API
//! ids yes, raw paths or user names never). This crate depends on no other Tollgate crate.

pub mod traces;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log filter (`[log] level` or `RUST_LOG`) does not parse.
    #[error(
        "invalid log level `{filter}` in [log] level (TOLLGATE_LOG__LEVEL) or RUST_LOG: {reason}; use e.g. `info` or `tollgate_store=debug,info`"
    )]
    Filter {
        /// The filter as given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// The trace exporter could not be set up.
    #[error("cannot export traces: {0}")]
    Traces(String),
    /// A global logger or recorder was already installed.
    #[error("telemetry already initialised: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, wins over `level`.
/// JSON lines put every field under `fields` with the message as `fields.message`.
pub fn init_logging(level: &str, json: bool) -> Result<(), Error> {
    let filter_text = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_string());
    let filter = EnvFilter::try_new(&filter_text).map_err(|e| Error::Filter {
        filter: filter_text.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = if json {
        builder.json().with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
    result.map_err(|e| Error::AlreadyInstalled(e.to_string()))
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Bucket bounds (seconds) of every `*_duration_seconds` histogram: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Renders the process's metrics in the Prometheus text format.
#[derive(Clone, Debug)]
pub struct MetricsHandle(PrometheusHandle);

impl MetricsHandle {
    /// The current metrics as Prometheus text.
    pub fn render(&self) -> String {
        if let Some(live) = HEAP_SOURCE.get() {
            metrics::gauge!("tollgate_process_heap_bytes").set(live() as f64);
        }
        self.0.render()
    }
}

static HEAP_SOURCE: OnceLock<fn() -> usize> = OnceLock::new();

/// Publishes `tollgate_process_heap_bytes`, read from `live` at each scrape: the bytes
/// the program holds on the heap, which the binary's allocator counts (RSS also holds
/// what the allocator caches, so a leak shows here first). Set once; later calls are
/// ignored.
pub fn report_heap(live: fn() -> usize) {
    if HEAP_SOURCE.set(live).is_ok() {
        metrics::describe_gauge!(
            "tollgate_process_heap_bytes",
            metrics::Unit::Bytes,
            "Bytes the process holds live on its heap (allocated and not yet freed), at the scrape."
        );
    }
}

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle) and records `tollgate_build_info`.
pub fn install_metrics(version: &'static str) -> Result<MetricsHandle, Error> {
    if let Some(h) = HANDLE.get() {
        return Ok(MetricsHandle(h.clone()));
    }
    // Latencies are histograms with fixed buckets (aggregatable across nodes), not
    // per-node quantile summaries.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &LATENCY_BUCKETS_SECONDS)
        .map_err(|e| Error::AlreadyInstalled(e.to_string()))?
        .install_recorder()
        .map_err(|e| Error::AlreadyInstalled(e.to_string()))?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    metrics::describe_gauge!("tollgate_build_info", "Always 1; labels carry the running version.");
    metrics::gauge!("tollgate_build_info", "version" => version).set(1.0);
    let upkeep = handle.clone();
    // Histograms are drained on render; periodic upkeep bounds memory between scrapes.
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| Error::AlreadyInstalled(format!("cannot start metrics upkeep thread: {e}")))?;
    Ok(MetricsHandle(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_explained() {
        // SAFETY-free: RUST_LOG is not set by the test harness for this process.
        if std::env::var("RUST_LOG").is_ok() {
            return;
        }
        let err = init_logging("info,=[", false).unwrap_err().to_string();
        assert!(err.contains("[log] level"), "{err}");
    }

    #[test]
    fn the_heap_gauge_is_read_at_each_scrape() {
        static BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(12_345);
        let handle = install_metrics("9.9.9").unwrap();
        report_heap(|| BYTES.load(std::sync::atomic::Ordering::Relaxed));
        assert!(handle.render().contains("tollgate_process_heap_bytes 12345"));
        BYTES.store(67_890, std::sync::atomic::Ordering::Relaxed);
        assert!(handle.render().contains("tollgate_process_heap_bytes 67890"));
    }

    #[test]
    fn metrics_render_build_info() {
        let handle = install_metrics("9.9.9").unwrap();
        metrics::counter!("tollgate_test_things_total").increment(2);
        let text = handle.render();
        assert!(text.contains("tollgate_build_info{version=\"9.9.9\"} 1"), "{text}");
        assert!(text.contains("tollgate_test_things_total 2"), "{text}");
        metrics::histogram!("tollgate_test_request_duration_seconds").record(0.003);
        let text = handle.render();
        assert!(
            text.contains("tollgate_test_request_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
    }
}
