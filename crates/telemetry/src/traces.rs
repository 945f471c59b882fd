//! OpenTelemetry traces, exported over OTLP/HTTP (JSON) when `[tracing] otlp_endpoint` is
//! set. Spans are batched and sent by a task on the tokio runtime (through hyper, with
//! TLS for `https://` collectors); a full queue drops spans rather than slowing calls.

use crate::Error;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider};
use std::time::Duration;

/// The tracer provider of a node that exports traces; shut it down at exit to send what
/// is still queued.
#[derive(Debug, Clone)]
pub struct Traces {
    provider: SdkTracerProvider,
}

/// How spans are exported (`[tracing]`).
#[derive(Debug, Clone)]
pub struct TraceExport<'a> {
    /// The OTLP/HTTP traces URL.
    pub endpoint: &'a str,
    /// `service.name`.
    pub service_name: &'a str,
    /// Share of root calls sampled (0.0 to 1.0).
    pub sample_ratio: f64,
    /// How often batches are sent.
    pub export_interval: Duration,
}

impl Traces {
    /// Starts exporting; must be called inside the tokio runtime that will send batches.
    pub fn start(export: &TraceExport<'_>) -> Result<Self, Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = opentelemetry_http::hyper::HyperClient::new(connector, Duration::from_secs(10), None);
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(export.endpoint)
            .with_http_client(client)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Traces(format!("tracing.otlp_endpoint `{}`: {e}", export.endpoint)))?;
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(export.export_interval)
                    .with_max_queue_size(8_192)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                export.sample_ratio,
            ))))
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(export.service_name.to_string())
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    /// A tracer for one part of the node (`tollgate-gateway`).
    pub fn tracer(&self, name: &'static str) -> opentelemetry_sdk::trace::Tracer {
        use opentelemetry::trace::TracerProvider as _;
        self.provider.tracer(name)
    }

    /// Sends what is queued and stops exporting.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "Could not send the last spans.");
        }
    }
}
