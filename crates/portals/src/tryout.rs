//! The Developer Portal's try-out console: sends one real request through a gateway the
//! API is deployed to, with the token or API key the user gives, and shows the answer.
//! Only the API's own gateway URLs are reachable (the host comes from the deployment,
//! never from the form), so the console cannot be used to reach anything else.

use crate::form::{FormData, problem};
use crate::rest::RestError;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_http::destination::DestinationError;

/// How long the console waits for the gateway.
const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the answer's body the page shows.
const MAX_SHOWN_BYTES: usize = 64 * 1024;

/// The console's HTTP client (plain HTTP to the gateway's `http` URL).
#[derive(Clone)]
pub struct TryOutClient {
    client: Client<HttpConnector, Body>,
}

impl Default for TryOutClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TryOutClient {
    /// A client with its own small connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }
}

/// Why an endpoint test has no HTTP status to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The URL cannot be tested (not `http://`, or not a URL): the input is at fault.
    Unusable(String),
    /// The test ran and the endpoint did not answer.
    Unreachable(String),
}

/// The Publisher's "test endpoint": whether `url` answers a `GET` within 5 seconds, as
/// the gateway would reach it from this node (an HTTP status, or why not). The addresses
/// OpenAPI import by URL refuses (private, loopback, link-local) are refused here too unless
/// `allow_private` (`[publisher] url_import_allow_private`): otherwise the form would let a
/// creator probe the server's own network. The address checked is the one connected to.
pub async fn probe(client: &TryOutClient, url: &str, allow_private: bool) -> Result<u16, ProbeFailure> {
    if !url.starts_with("http://") {
        return Err(ProbeFailure::Unusable(
            "only http:// endpoints can be tested from here for now".into(),
        ));
    }
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e| ProbeFailure::Unusable(format!("not a valid URL: {e}")))?;
    let Some(authority) = uri.authority().cloned() else {
        return Err(ProbeFailure::Unusable("not a valid URL: it names no host".into()));
    };
    if authority.as_str().contains('@') {
        return Err(ProbeFailure::Unusable(
            "not a valid URL for a test: it holds credentials (user@host)".into(),
        ));
    }
    let addr = tollgate_http::destination::resolve_allowed(
        authority.host(),
        authority.port_u16().unwrap_or(80),
        allow_private,
    )
    .await
    .map_err(|e| match e {
        DestinationError::Private(_) | DestinationError::AlsoPrivate(_) => ProbeFailure::Unusable(e.to_string()),
        DestinationError::Timeout(_) | DestinationError::Unresolvable(..) => ProbeFailure::Unreachable(e.to_string()),
    })?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{addr}{path}"))
        .header(axum::http::header::HOST, authority.as_str())
        .body(Body::empty())
        .map_err(|e| ProbeFailure::Unusable(format!("not a valid URL: {e}")))?;
    match tokio::time::timeout(Duration::from_secs(5), client.client.request(request)).await {
        Ok(Ok(r)) => Ok(r.status().as_u16()),
        Ok(Err(e)) => Err(ProbeFailure::Unreachable(format!("could not connect: {e}"))),
        Err(_) => Err(ProbeFailure::Unreachable("no answer within 5 seconds".into())),
    }
}

/// The gateway base URL of `environment` (by name) from the API's `endpointURLs`.
fn gateway_url(api: &Value, environment: &str) -> Option<String> {
    api["endpointURLs"]
        .as_array()?
        .iter()
        .find(|e| environment.is_empty() || e["environmentName"] == environment)
        .and_then(|e| e["URLs"]["http"].as_str())
        .map(|u| u.trim_end_matches('/').to_string())
}

/// Sends the console's request; the answer as the page shows it.
pub async fn send(client: &TryOutClient, api: &Value, form: &FormData) -> Result<Value, RestError> {
    let Some(base) = gateway_url(api, form.get("environment")) else {
        return Err(problem(
            "environment",
            "this API is not deployed to a gateway environment with an http URL; deploy a revision first",
        ));
    };
    let method = form.get("method").to_ascii_uppercase();
    let method = match method.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => {
            Method::from_bytes(method.as_bytes()).map_err(|_| problem("method", "unknown method"))?
        }
        _ => {
            return Err(problem(
                "method",
                "choose GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS",
            ));
        }
    };
    let path = form.get("path");
    if !path.starts_with('/') || path.contains("://") || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(problem(
            "path",
            "the resource path starts with / and has no spaces, e.g. /pets/1",
        ));
    }
    let query = form.get("query").trim_start_matches('?');
    let url = if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    };
    let credential = form.get("credential");
    let mut builder = Request::builder().method(method.clone()).uri(&url);
    match form.get("auth") {
        "apikey" => {
            let header = api["apiKeyHeader"].as_str().unwrap_or("apikey");
            builder = builder.header(header, credential);
        }
        "none" => {}
        _ if credential.is_empty() => {
            return Err(problem(
                "credential",
                "paste an access token (generate a test token on your application's page), or choose no authentication",
            ));
        }
        _ => {
            let header = api["authorizationHeader"].as_str().unwrap_or("Authorization");
            builder = builder.header(header, format!("Bearer {credential}"));
        }
    }
    let body = form.raw("body").to_string();
    if !body.is_empty() {
        let content_type = match form.get("contentType") {
            "" => "application/json",
            t => t,
        };
        builder = builder.header("content-type", content_type);
    }
    let request = builder
        .body(Body::from(body))
        .map_err(|e| problem("path", &format!("the request is not valid: {e}")))?;
    let started = Instant::now();
    let response = match tokio::time::timeout(TIMEOUT, client.client.request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(problem(
                "environment",
                &format!("the gateway at {base} could not be reached: {e}"),
            ));
        }
        Err(_) => return Err(problem("environment", "the gateway did not answer within 15 seconds")),
    };
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut shown = Vec::new();
    let mut truncated = false;
    let mut body = response.into_body();
    while let Some(frame) = tokio::time::timeout(TIMEOUT, body.frame())
        .await
        .ok()
        .flatten()
        .and_then(Result::ok)
    {
        if let Some(data) = frame.data_ref() {
            let room = MAX_SHOWN_BYTES.saturating_sub(shown.len());
            shown.extend_from_slice(&data[..data.len().min(room)]);
            if data.len() > room {
                truncated = true;
                break;
            }
        }
    }
    Ok(json!({
        "url": url,
        "method": method.as_str(),
        "status": status.as_u16(),
        "reason": status.canonical_reason().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(&shown),
        "truncated": truncated,
        "elapsedMs": started.elapsed().as_millis() as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_url_comes_from_the_deployment_only() {
        let api = json!({"endpointURLs": [
            {"environmentName": "Default", "URLs": {"http": "http://gw:8280/pets/1.0.0", "https": null}},
            {"environmentName": "Internal", "URLs": {"http": "http://in:8280/pets/1.0.0/"}}
        ]});
        assert_eq!(
            gateway_url(&api, "Default").as_deref(),
            Some("http://gw:8280/pets/1.0.0")
        );
        assert_eq!(
            gateway_url(&api, "Internal").as_deref(),
            Some("http://in:8280/pets/1.0.0")
        );
        assert_eq!(gateway_url(&api, "").as_deref(), Some("http://gw:8280/pets/1.0.0"));
        assert_eq!(gateway_url(&api, "Nope"), None);
    }

    #[tokio::test]
    async fn a_path_that_would_leave_the_gateway_is_refused() {
        let api = json!({"endpointURLs": [{"environmentName": "Default", "URLs": {"http": "http://127.0.0.1:9/x"}}]});
        for path in ["http://evil/", "pets", "/a b", "/x://y"] {
            let form = FormData(vec![
                ("method".into(), "GET".into()),
                ("path".into(), path.into()),
                ("auth".into(), "none".into()),
            ]);
            let e = send(&TryOutClient::new(), &api, &form).await.err();
            assert!(e.is_some_and(|e| e.fields.contains_key("path")), "{path}");
        }
    }
}
