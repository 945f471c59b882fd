//! The backend call: pick the production or sandbox endpoint (round robin over a
//! load-balanced list, then the failover list), forward the request with hop-by-hop
//! headers removed and `X-Forwarded-*` set, and stream both bodies through. A connection
//! failure moves on to the next endpoint only for idempotent requests without a body.
//! Backends are `http://` (HTTP/1.1) or `https://` (HTTP/2 or HTTP/1.1 by ALPN, verified
//! against the Mozilla roots plus an optional CA file).

use crate::error::GatewayError;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Uri};
use axum::response::Response;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tollgate_model::api::{Endpoint, EndpointConfig};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Pooled keep-alive connections to backends.
#[derive(Debug)]
pub struct Backends {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    next: AtomicUsize,
    read_timeout: Duration,
}

/// The TLS settings for `https://` backends: the Mozilla roots, plus the certificates of
/// `extra_ca_pem` (a private CA's, say).
pub fn backend_tls(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots.add(cert).map_err(|e| format!("unusable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("no certificate in it".into());
        }
    }
    // ALPN (h2, http/1.1) is set by the connector from the enabled protocols.
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Backends {
    /// A pool with the given connect and default read timeouts and TLS settings.
    pub fn new(connect_timeout: Duration, read_timeout: Duration, tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self {
            client,
            next: AtomicUsize::new(0),
            read_timeout,
        }
    }

    /// The endpoints to try for a key type, in order.
    fn candidates<'a>(&self, config: &'a EndpointConfig, sandbox: bool) -> Vec<&'a Endpoint> {
        let (primary, failovers) = if sandbox {
            (config.sandbox_endpoints.as_ref(), &config.sandbox_failovers)
        } else {
            (config.production_endpoints.as_ref(), &config.production_failovers)
        };
        let mut list: Vec<&Endpoint> = primary.map(|p| p.as_vec()).unwrap_or_default();
        if config.endpoint_type == "load_balance" && list.len() > 1 {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % list.len();
            list.rotate_left(start);
        }
        list.extend(failovers.iter());
        list
    }

    /// Forwards `req` (whose URI is the path and query below the API's context) to the
    /// API's backend.
    pub async fn forward(
        &self,
        config: Option<&EndpointConfig>,
        sandbox: bool,
        remainder: &str,
        req: Request<Body>,
        client_ip: Option<IpAddr>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Result<Response, GatewayError> {
        let Some(config) = config else {
            return Err(GatewayError::BackendUnreachable(
                "the API has no endpoint configured".into(),
            ));
        };
        let candidates = self.candidates(config, sandbox);
        if candidates.is_empty() {
            return Err(GatewayError::BackendUnreachable(format!(
                "the API has no {} endpoint",
                if sandbox { "sandbox" } else { "production" }
            )));
        }
        let (mut parts, body) = req.into_parts();
        let original_host = parts.headers.get(header::HOST).cloned();
        // An upgrade (WebSocket) keeps the two headers that ask for it.
        let upgrade = client_upgrade
            .is_some()
            .then(|| parts.headers.get(header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(&mut parts.headers);
        if let Some(protocol) = &upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol.clone());
        }
        let mut client_upgrade = client_upgrade;
        parts.headers.remove(header::AUTHORIZATION);
        forwarded_headers(&mut parts.headers, client_ip, original_host);
        let retryable = is_idempotent(&parts.method) && body_is_empty(&parts.headers);
        let mut body = Some(body);
        let mut last_error = GatewayError::BackendUnreachable("no endpoint answered".into());
        for endpoint in candidates {
            let uri = match backend_uri(&endpoint.url, remainder) {
                Ok(u) => u,
                Err(e) => {
                    last_error = GatewayError::BackendUnreachable(e);
                    continue;
                }
            };
            let mut out = Request::builder()
                .method(parts.method.clone())
                .uri(uri)
                .body(body.take().unwrap_or_default())
                .map_err(|e| GatewayError::BackendUnreachable(e.to_string()))?;
            *out.headers_mut() = parts.headers.clone();
            out.headers_mut().remove(header::HOST);
            let timeout = endpoint
                .read_timeout_ms()
                .ok()
                .flatten()
                .map(Duration::from_millis)
                .unwrap_or(self.read_timeout);
            match tokio::time::timeout(timeout, self.client.request(out)).await {
                Ok(Ok(mut res)) => {
                    if res.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS
                        && let Some(client_side) = client_upgrade.take()
                    {
                        let backend_side = hyper::upgrade::on(&mut res);
                        tokio::spawn(splice(client_side, backend_side));
                        let (rparts, _) = res.into_parts();
                        return Ok(Response::from_parts(rparts, Body::empty()));
                    }
                    let (mut rparts, rbody) = res.into_parts();
                    strip_hop_by_hop(&mut rparts.headers);
                    return Ok(Response::from_parts(rparts, Body::new(rbody)));
                }
                Ok(Err(e)) if e.is_connect() => {
                    tracing::warn!(endpoint = %endpoint.url, error = %e, "Backend refused the connection.");
                    last_error = GatewayError::BackendUnreachable(format!("cannot connect to {}", endpoint.url));
                    if !retryable {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    return Err(GatewayError::BackendUnreachable(format!("the backend failed: {e}")));
                }
                Err(_) => {
                    return Err(GatewayError::BackendTimeout(format!(
                        "the backend did not answer within {} ms",
                        timeout.as_millis()
                    )));
                }
            }
        }
        Err(last_error)
    }
}

/// Copies bytes both ways between an upgraded client connection and an upgraded backend
/// connection until either side closes.
async fn splice(client: hyper::upgrade::OnUpgrade, backend: hyper::upgrade::OnUpgrade) {
    let (client, backend) = tokio::join!(client, backend);
    match (client, backend) {
        (Ok(client), Ok(backend)) => {
            let mut client = hyper_util::rt::TokioIo::new(client);
            let mut backend = hyper_util::rt::TokioIo::new(backend);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                tracing::debug!(error = %e, "Upgraded connection ended with an error.");
            }
        }
        (c, b) => tracing::debug!(client = c.is_ok(), backend = b.is_ok(), "An upgrade did not complete."),
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn body_is_empty(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::TRANSFER_ENCODING)
        && headers.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
}

/// Removes hop-by-hop headers and every header the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, client_ip: Option<IpAddr>, host: Option<HeaderValue>) {
    if let Some(ip) = client_ip {
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("x-forwarded-for", v);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(h) = host {
        headers.insert("x-forwarded-host", h);
    }
}

/// The backend URI for an endpoint base and the request's path-and-query below the
/// API context.
fn backend_uri(base: &str, remainder: &str) -> Result<Uri, String> {
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!("endpoint `{base}` is not an http:// or https:// URL"));
    }
    let joined = format!("{}{}", base.trim_end_matches('/'), remainder);
    joined.parse::<Uri>().map_err(|e| format!("endpoint `{joined}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn backend_uris_join_base_and_remainder() {
        assert_eq!(
            backend_uri("http://b:8080/v1/", "/pets/1?x=2").unwrap().to_string(),
            "http://b:8080/v1/pets/1?x=2"
        );
        assert!(backend_uri("https://b", "/").is_ok());
        assert!(backend_uri("ftp://b", "/").is_err());
    }

    #[test]
    fn load_balanced_endpoints_rotate_and_failovers_follow() {
        let config: EndpointConfig = serde_json::from_value(serde_json::json!({
            "endpoint_type": "load_balance",
            "production_endpoints": [{"url": "http://a"}, {"url": "http://b"}],
            "production_failovers": [{"url": "http://c"}]
        }))
        .unwrap();
        let b = Backends::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            backend_tls(None).unwrap(),
        );
        let first: Vec<&str> = b.candidates(&config, false).iter().map(|e| e.url.as_str()).collect();
        let second: Vec<&str> = b.candidates(&config, false).iter().map(|e| e.url.as_str()).collect();
        assert_eq!(first, ["http://a", "http://b", "http://c"]);
        assert_eq!(second, ["http://b", "http://a", "http://c"]);
        assert!(b.candidates(&config, true).is_empty());
    }
}
