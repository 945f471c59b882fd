//! Shared test fixtures, written once: fresh databases on each engine, and a driver for
//! real `tollgate` processes (spawn, read their JSON logs for bound addresses, wait for
//! readiness, signal, collect exit status).
//!
//! Test-only: nothing in the product depends on this crate. It must not depend on
//! Tollgate's own crates, so that every crate can use it without a dependency cycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod backend;
pub mod browser;
pub mod db;
pub mod ldap;
pub mod node;
pub mod portal_client;
pub mod redis;

pub use backend::RecordingBackend;
pub use browser::Browser;
pub use db::{TestDb, all_engines, postgres, sqlite};
pub use ldap::Slapd;
pub use node::{Node, NodeBuilder};
pub use portal_client::PortalSession;
pub use redis::redis_url;

/// A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// An HTTP client for tests. Installs the process's rustls crypto provider first, as the
/// binary does, since the client is built without a default one.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// An HTTP client that trusts `ca_pem` in addition to nothing else.
pub fn https_trusting(ca_pem: &str) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("PEM certificate"))
        .build()
        .expect("HTTPS client")
}

/// A node's Prometheus text (`GET http://{addr}/metrics`).
pub async fn metrics_text(addr: std::net::SocketAddr) -> String {
    http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the first sample in Prometheus `text` whose line starts with `series` (a
/// name, optionally with the start of its labels); `None` when there is none.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `GET url` → (status, JSON body or `null`).
pub async fn get_json(url: impl AsRef<str>) -> (u16, serde_json::Value) {
    let r = http().get(url.as_ref()).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Checks a REST API's OpenAPI document: it equals the committed snapshot at
/// `snapshot` (set `UPDATE_OPENAPI=1` to rewrite it), it is OpenAPI 3.x that the `oas3`
/// parser accepts, every `$ref` resolves, and every operation has responses. Returns the
/// parsed document.
pub fn check_openapi_document(generated: &str, snapshot: &std::path::Path) -> serde_json::Value {
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(snapshot, generated).expect("write snapshot");
    }
    let committed = std::fs::read_to_string(snapshot)
        .unwrap_or_else(|_| panic!("{} missing; run the test with UPDATE_OPENAPI=1", snapshot.display()));
    assert_eq!(
        committed,
        generated,
        "the OpenAPI document changed; review and run with UPDATE_OPENAPI=1 to accept it ({})",
        snapshot.display()
    );
    let doc: serde_json::Value = serde_json::from_str(generated).expect("document is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not OpenAPI 3"
    );
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.extend(v.as_str().map(String::from));
                    } else {
                        refs(v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            assert!(op["operationId"].is_string(), "{method} {path} has no operationId");
        }
    }
    doc
}

/// Every `(METHOD, path)` of an OpenAPI document, with `{params}` filled with `x`.
pub fn openapi_operations(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item
            .as_object()
            .into_iter()
            .flatten()
            .map(|(m, _)| m.to_ascii_uppercase())
        {
            ops.push((method, concrete.clone()));
        }
    }
    ops
}

/// One documented operation with what a caller must fill in: its path template as
/// documented (`/apis/{apiId}`), its parameters and the media type of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedOperation {
    /// `GET`, `POST`… (upper case).
    pub method: String,
    /// The path template, relative to the document's server (`/apis/{apiId}`).
    pub path: String,
    /// `(name, location, required)` of each parameter; location is `path`, `query` or
    /// `header`. Parameters declared on the path item come first.
    pub params: Vec<(String, String, bool)>,
    /// The request body's first media type (`application/json`, `multipart/form-data`),
    /// when the operation takes one.
    pub body: Option<String>,
}

impl DocumentedOperation {
    /// The names of the parameters at `location`, in documented order.
    pub fn params_in(&self, location: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(_, at, _)| at == location)
            .map(|(name, _, _)| name.as_str())
            .collect()
    }
}

/// Every operation of an OpenAPI document with its parameters and body type, sorted by
/// path then method. Panics on a document whose `paths` is not an object (a test's
/// input is the node's own generated document).
pub fn documented_operations(doc: &serde_json::Value) -> Vec<DocumentedOperation> {
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    let params_of = |v: &serde_json::Value| -> Vec<(String, String, bool)> {
        v["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                // A `$ref` to components: resolve it within the document.
                let p = match p["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
                    Some(pointer) => doc.pointer(pointer)?,
                    None => p,
                };
                Some((
                    p["name"].as_str()?.to_string(),
                    p["in"].as_str()?.to_string(),
                    p["required"].as_bool().unwrap_or(false),
                ))
            })
            .collect()
    };
    let mut out = Vec::new();
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, item) in paths {
        let common = params_of(item);
        for (method, op) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let mut params = common.clone();
            for p in params_of(op) {
                params.retain(|(n, at, _)| !(n == &p.0 && at == &p.1));
                params.push(p);
            }
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.keys().next().cloned());
            out.push(DocumentedOperation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                params,
                body,
            });
        }
    }
    out.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    out
}

/// Checks that the REST API at `base` (`http://addr/api/am/admin/v4`) serves `generated`
/// at `/openapi.json`, without credentials.
pub async fn check_served_openapi(base: &str, generated: &str) {
    let r = http()
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("GET openapi.json");
    assert_eq!(r.status(), 200, "{base}/openapi.json");
    assert_eq!(
        r.text().await.expect("body"),
        generated,
        "the served document is the generated one"
    );
}

/// Calls every documented operation of `doc` on `base` without credentials; returns
/// (method, path, status, body) of each, for the caller's rule (401, or not a 404/405).
pub async fn call_documented_operations(base: &str, doc: &serde_json::Value) -> Vec<(String, String, u16, String)> {
    let mut out = Vec::new();
    for (method, path) in openapi_operations(doc) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let r = http()
            .request(m, format!("{base}{path}"))
            .send()
            .await
            .expect("documented operation");
        let status = r.status().as_u16();
        out.push((method, path, status, r.text().await.unwrap_or_default()));
    }
    out
}

/// An in-process HTTP server on `127.0.0.1:0` for component tests; stops when dropped.
pub struct RunningServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves `router` on an ephemeral loopback port until the returned value is dropped.
/// (End-to-end tests run the real `tollgate` binary and its own listeners instead.)
pub async fn serve(router: axum::Router) -> RunningServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await;
    });
    RunningServer { addr, _stop: stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_operations_read_parameters_refs_and_bodies() {
        let doc = json!({
            "openapi": "3.1.0",
            "components": {"parameters": {"Limit": {"name": "limit", "in": "query"}}},
            "paths": {
                "/apis/{apiId}": {
                    "parameters": [{"name": "apiId", "in": "path", "required": true}],
                    "get": {"responses": {}},
                    "put": {
                        "parameters": [{"name": "If-Match", "in": "header"}],
                        "requestBody": {"content": {"application/json": {}}},
                        "responses": {}
                    },
                    "summary": "not an operation"
                },
                "/apis": {"get": {"parameters": [{"$ref": "#/components/parameters/Limit"},
                                                 {"$ref": "#/components/parameters/Missing"}],
                                  "responses": {}}}
            }
        });
        let ops = documented_operations(&doc);
        let seen: Vec<(&str, &str)> = ops.iter().map(|o| (o.method.as_str(), o.path.as_str())).collect();
        assert_eq!(
            seen,
            [("GET", "/apis"), ("GET", "/apis/{apiId}"), ("PUT", "/apis/{apiId}")]
        );
        assert_eq!(
            ops[0].params,
            [("limit".to_string(), "query".to_string(), false)],
            "an unresolved $ref is left out"
        );
        assert_eq!(ops[1].params_in("path"), ["apiId"]);
        assert_eq!(ops[2].params_in("header"), ["If-Match"]);
        assert_eq!(
            ops[2].params_in("path"),
            ["apiId"],
            "path-item parameters apply to each operation"
        );
        assert_eq!(ops[2].body.as_deref(), Some("application/json"));
        assert_eq!(ops[1].body, None);
    }

    #[test]
    #[should_panic(expected = "the document has paths")]
    fn a_document_without_paths_is_refused() {
        documented_operations(&json!({"openapi": "3.1.0"}));
    }
}
