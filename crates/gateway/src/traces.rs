//! OpenTelemetry spans of API calls, when tracing is configured: one server span per call
//! (continuing the caller's W3C `traceparent` when it sent one) and, under it, a client
//! span for the backend call, whose context goes to the backend in `traceparent`. Without
//! a tracer the request path does none of this.

use axum::http::{HeaderMap, Method};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Starts and ends the spans of API calls.
#[derive(Debug)]
pub struct CallTracer {
    tracer: opentelemetry_sdk::trace::Tracer,
    propagator: TraceContextPropagator,
}

/// What the server span reports when the call ends.
#[derive(Debug, Default)]
pub struct CallOutcome<'a> {
    /// The matched API's name, version and resource template.
    pub api: Option<(&'a str, &'a str, &'a str)>,
    /// The calling application.
    pub application_id: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// The gateway's error code, when it refused or failed the call.
    pub error_code: Option<i64>,
}

impl CallTracer {
    /// A tracer of API calls over an SDK tracer.
    pub fn new(tracer: opentelemetry_sdk::trace::Tracer) -> Self {
        Self {
            tracer,
            propagator: TraceContextPropagator::new(),
        }
    }

    /// Starts a call's server span (named by method until the route is known).
    pub fn start(&self, method: &Method, path: &str, headers: &HeaderMap, client: Option<&str>) -> Context {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.as_str().to_string()),
            KeyValue::new("url.path", path.to_string()),
        ];
        if let Some(ip) = client {
            attributes.push(KeyValue::new("client.address", ip.to_string()));
        }
        let span = self
            .tracer
            .span_builder(method.as_str().to_string())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    /// Starts the backend call's client span under `call` and writes its context into
    /// the outgoing `headers` (any `traceparent` the caller sent is replaced).
    pub fn start_backend(&self, call: &Context, method: &Method, headers: &mut HeaderMap) -> Context {
        let span = self
            .tracer
            .span_builder(format!("backend {method}"))
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("http.request.method", method.as_str().to_string())])
            .start_with_context(&self.tracer, call);
        let cx = call.with_span(span);
        self.propagator.inject_context(&cx, &mut HeaderInjector(headers));
        cx
    }
}

/// Ends a backend span with the backend's status, or why there was none.
pub fn end_backend(cx: &Context, outcome: Result<u16, &str>) {
    let span = cx.span();
    match outcome {
        Ok(status) => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 500 {
                span.set_status(Status::error(format!("backend answered {status}")));
            }
        }
        Err(reason) => span.set_status(Status::error(reason.to_string())),
    }
    span.end();
}

/// Ends a call's server span, named `{method} {route}` once the route is known.
pub fn end_call(cx: &Context, method: &Method, outcome: &CallOutcome<'_>) {
    let span = cx.span();
    if let Some((name, version, route)) = outcome.api {
        span.update_name(format!("{} {route}", method.as_str()));
        span.set_attribute(KeyValue::new("http.route", route.to_string()));
        span.set_attribute(KeyValue::new("tollgate.api.name", name.to_string()));
        span.set_attribute(KeyValue::new("tollgate.api.version", version.to_string()));
    }
    if let Some(app) = outcome.application_id {
        span.set_attribute(KeyValue::new("tollgate.application.id", app.to_string()));
    }
    if let Some(code) = outcome.error_code {
        span.set_attribute(KeyValue::new("tollgate.error_code", code));
    }
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(outcome.status)));
    if outcome.status >= 500 {
        span.set_status(Status::error(format!("answered {}", outcome.status)));
    }
    span.end();
}
