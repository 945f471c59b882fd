//! OpenTelemetry traces: a node configured with an OTLP endpoint exports, to an OTLP/HTTP
//! receiver running in this test, a server span per API call that continues the caller's
//! `traceparent`, with the backend call as a child client span whose context the backend
//! receives.

use crate::gateway_flow::{ready_node, standard_operations};
use crate::tollgate;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{any, post};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The caller's trace: trace id and the caller's span id.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What the OTLP receiver and the backend saw.
#[derive(Default)]
struct Seen {
    exports: Vec<(String, String, Value)>,
    traceparents: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// Every span exported so far.
fn spans(seen: &Shared) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .exports
        .iter()
        .flat_map(|(_, _, body)| {
            body["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
                .flat_map(|s| s["spans"].as_array().into_iter().flatten())
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An attribute's value as text (OTLP JSON writes 64-bit integers as strings).
fn attribute(span: &Value, key: &str) -> Option<String> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let v = &a["value"];
            v["stringValue"]
                .as_str()
                .map(String::from)
                .or_else(|| v["intValue"].as_str().map(String::from))
                .or_else(|| v["intValue"].as_i64().map(|n| n.to_string()))
                .unwrap_or_default()
        })
}

#[tokio::test]
async fn calls_are_traced_with_the_backend_call_as_a_child_span() {
    let seen: Shared = Arc::default();
    let receiver = tollgate_testkit::serve(
        axum::Router::new()
            .route(
                "/v1/traces",
                post(
                    |State(seen): State<Shared>, headers: HeaderMap, body: String| async move {
                        let kind = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let parsed = serde_json::from_str(&body).unwrap_or(Value::Null);
                        seen.lock().unwrap().exports.push(("/v1/traces".into(), kind, parsed));
                        axum::Json(json!({}))
                    },
                ),
            )
            .with_state(seen.clone()),
    )
    .await;
    let backend = tollgate_testkit::serve(
        axum::Router::new()
            .route(
                "/v1/{*rest}",
                any(|State(seen): State<Shared>, headers: HeaderMap| async move {
                    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                        seen.lock().unwrap().traceparents.push(tp.to_string());
                    }
                    axum::Json(json!({"ok": true}))
                }),
            )
            .with_state(seen.clone()),
    )
    .await;
    let (_node, c) = ready_node(
        tollgate()
            .env(
                "TOLLGATE_TRACING__OTLP_ENDPOINT",
                format!("http://{}/v1/traces", receiver.addr),
            )
            .env("TOLLGATE_TRACING__EXPORT_INTERVAL", "200ms")
            .env("TOLLGATE_TRACING__SERVICE_NAME", "tollgate-e2e"),
    )
    .await;
    let (_, _, token) = c
        .subscribed(
            "TrPets",
            "/trpets",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    let (status, body) = c.eventually("/trpets/1.0.0/pets/7", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");

    let r = c
        .http
        .get(format!("http://{}/trpets/1.0.0/pets/7", c.gw))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let _ = c.call(Method::GET, "/trpets/1.0.0/nowhere", Some(&token)).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let (server, client) = loop {
        let all = spans(&seen);
        let ours: Vec<&Value> = all.iter().filter(|s| s["traceId"] == TRACE_ID).collect();
        let server = ours.iter().find(|s| s["kind"] == 2).cloned().cloned();
        let client = ours.iter().find(|s| s["kind"] == 3).cloned().cloned();
        if let (Some(server), Some(client)) = (&server, &client) {
            break (server.clone(), client.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no server and client spans of the trace: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The gateway span continues the caller's trace and is named by its route.
    assert_eq!(server["parentSpanId"], CALLER_SPAN, "{server:#}");
    assert_eq!(server["name"], "GET /trpets/1.0.0/pets/{petId}", "{server:#}");
    assert_eq!(attribute(&server, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(&server, "tollgate.api.name").as_deref(), Some("TrPets"));
    assert!(attribute(&server, "tollgate.application.id").is_some(), "{server:#}");
    // The backend call is its child, and the backend got the child's context.
    assert_eq!(client["parentSpanId"], server["spanId"], "{client:#}");
    assert_eq!(attribute(&client, "http.response.status_code").as_deref(), Some("200"));
    let child_id = client["spanId"].as_str().unwrap();
    let traceparents = seen.lock().unwrap().traceparents.clone();
    assert!(
        traceparents.contains(&format!("00-{TRACE_ID}-{child_id}-01")),
        "the backend received the backend span's context: {traceparents:?}"
    );
    // A refused call is traced too, with its error code, and has no backend span.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = spans(&seen);
        if let Some(refused) = all
            .iter()
            .find(|s| attribute(s, "tollgate.error_code").as_deref() == Some("900906"))
        {
            assert_eq!(attribute(refused, "http.response.status_code").as_deref(), Some("404"));
            let trace = refused["traceId"].as_str().unwrap();
            assert!(
                !all.iter().any(|s| s["traceId"] == trace && s["kind"] == 3),
                "no backend span for a call that never reached the backend"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the refused call's span never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.lock().unwrap();
    let (path, content_type, body) = &seen.exports[0];
    assert_eq!(path, "/v1/traces");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let service = body["resourceSpans"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .map(|a| a["value"]["stringValue"].clone());
    assert_eq!(service, Some(json!("tollgate-e2e")));
}
