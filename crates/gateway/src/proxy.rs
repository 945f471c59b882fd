//! The backend call: pick the production or sandbox endpoint (round robin over a
//! load-balanced list, then the failover list), forward the request with hop-by-hop
//! headers removed and `X-Forwarded-*` set, and stream both bodies through. A connection
//! failure moves on to the next endpoint only for idempotent requests without a body.
//! Backends are `http://` (HTTP/1.1) or `https://` (HTTP/2 or HTTP/1.1 by ALPN, verified
//! against the Mozilla roots plus an optional CA file).

use crate::answer::Answer;
use crate::backend_http1::{CallError, RequestHead, Timeouts};
use crate::backend_pool::{Http1Pool, Outgoing, PoolError};
use crate::error::GatewayError;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, Uri};
use axum::response::Response;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tollgate_model::api::{Endpoint, EndpointConfig};

/// Whether a header describes one hop and is never forwarded (RFC 9110 §7.6.1).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    crate::backend_http1::is_hop_by_hop_name(name.as_str().as_bytes())
}

/// A client's request on its way to the backend: its head as the gateway edited it, its
/// body, and how many bytes of its path are the API's context (left out of the backend's
/// path).
pub(crate) struct Outbound<'r> {
    pub(crate) method: &'r Method,
    pub(crate) uri: &'r axum::http::Uri,
    /// The client's headers as the gateway edited them (taken out of the request).
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) context_len: usize,
    /// When the backend call began (read once for the call's latency and the first
    /// endpoint's deadline).
    pub(crate) started: std::time::Instant,
}

/// A client's WebSocket handshake on its way to the backend: the client's side of the
/// connection once the gateway answers 101, and the `Sec-WebSocket-Accept` the backend's
/// 101 must carry for the two sides to be joined (decision 010).
pub(crate) struct ClientUpgrade {
    pub(crate) on: hyper::upgrade::OnUpgrade,
    pub(crate) accept: String,
}

/// Pooled keep-alive connections to backends.
#[derive(Debug)]
pub struct Backends {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    pool: Http1Pool,
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
        let connector = https_or_http(tls, connect_timeout, true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self {
            client,
            pool: Http1Pool::new(256, connect_timeout),
            next: AtomicUsize::new(0),
            read_timeout,
        }
    }

    /// The endpoints to try for a key type, in order, and how many there are (borrowed
    /// from the configuration: nothing is allocated per call).
    fn candidates<'a>(
        &self,
        config: &'a EndpointConfig,
        sandbox: bool,
    ) -> (usize, impl Iterator<Item = &'a Endpoint> + use<'a>) {
        let (primary, failovers) = if sandbox {
            (config.sandbox_endpoints.as_ref(), &config.sandbox_failovers)
        } else {
            (config.production_endpoints.as_ref(), &config.production_failovers)
        };
        let primary = primary.map_or(&[][..], |p| p.as_slice());
        let start = if config.endpoint_type == "load_balance" && primary.len() > 1 {
            self.next.fetch_add(1, Ordering::Relaxed) % primary.len()
        } else {
            0
        };
        let (before, from) = primary.split_at(start);
        (
            primary.len() + failovers.len(),
            from.iter().chain(before).chain(failovers.iter()),
        )
    }

    /// Forwards `request` to the API's backend: the part of its path after the API's
    /// context, and its query, follow the endpoint's URL.
    pub(crate) async fn forward(
        &self,
        config: Option<&EndpointConfig>,
        sandbox: bool,
        request: Outbound<'_>,
        forwarded: Forwarded<'_>,
        client_upgrade: Option<ClientUpgrade>,
    ) -> Result<Answer, GatewayError> {
        let Some(config) = config else {
            return Err(GatewayError::BackendUnreachable(
                "the API has no endpoint configured".into(),
            ));
        };
        let (count, candidates) = self.candidates(config, sandbox);
        if count == 0 {
            return Err(GatewayError::BackendUnreachable(format!(
                "the API has no {} endpoint",
                if sandbox { "sandbox" } else { "production" }
            )));
        }
        let Outbound {
            method,
            uri,
            mut headers,
            body,
            context_len,
            started,
        } = request;
        let mut started = Some(tokio::time::Instant::from_std(started));
        let path = uri.path();
        let remainder = Remainder {
            path: path.get(context_len..).unwrap_or(path),
            query: uri.query(),
        };
        strip_hop_by_hop(&mut headers);
        // The client's `Host` reaches the backend only as `X-Forwarded-Host`.
        let mapped_host = headers.remove(header::HOST);
        let forwarded = Forwarded {
            host: forwarded.host.or(mapped_host.as_ref().map(HeaderValue::as_bytes)),
            ..forwarded
        };
        // A WebSocket handshake keeps the two headers that ask for it (the request path
        // let no other upgrade this far).
        if client_upgrade.is_some() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        let mut client_upgrade = client_upgrade;
        let retryable = is_idempotent(method) && body_is_empty(&headers);
        let mut body = Some(body);
        // Made only when an endpoint failed (no message is allocated on the way to an answer).
        let mut last_error = None;
        for (i, endpoint) in candidates.enumerate() {
            // The headers are copied only when another endpoint may still be tried.
            let headers = if retryable && i + 1 < count {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let timeout = endpoint
                .read_timeout_ms()
                .ok()
                .flatten()
                .map(Duration::from_millis)
                .unwrap_or(self.read_timeout);
            // Each endpoint tried has the whole timeout, from when it is tried.
            let timeouts = Timeouts::from(started.take().unwrap_or_else(tokio::time::Instant::now), timeout);
            let body = body.take().unwrap_or_default();
            let attempt = match endpoint.url.strip_prefix("http://") {
                // Plain HTTP/1.1 backends use the per-worker keep-alive pool; HTTPS (and
                // HTTP/2 by ALPN) and upgrades use the general client.
                Some(rest) if client_upgrade.is_none() => {
                    self.send_pooled(rest, remainder, method, headers, forwarded, body, timeouts)
                        .await
                }
                _ => {
                    let mut headers = headers;
                    let original_host = forwarded.host.and_then(|h| HeaderValue::from_bytes(h).ok());
                    headers.remove(header::AUTHORIZATION);
                    if let Some(value) = forwarded.apikey.and_then(|v| HeaderValue::from_bytes(v).ok()) {
                        headers.append(crate::request::APIKEY, value);
                    }
                    forwarded_headers(&mut headers, forwarded, original_host);
                    self.send_general(
                        &endpoint.url,
                        remainder,
                        method,
                        headers,
                        body,
                        timeout,
                        &mut client_upgrade,
                    )
                    .await
                }
            };
            match attempt {
                Attempt::Answered(res) => return Ok(res),
                Attempt::Refused(reason) => {
                    tracing::warn!(endpoint = %endpoint.url, error = %reason, "Backend refused the connection.");
                    last_error = Some(GatewayError::BackendUnreachable(format!(
                        "cannot connect to {}",
                        endpoint.url
                    )));
                    if !retryable {
                        break;
                    }
                }
                Attempt::Unusable(reason) => {
                    last_error = Some(GatewayError::BackendUnreachable(reason));
                }
                Attempt::Failed(reason) => {
                    return Err(GatewayError::BackendUnreachable(format!(
                        "the backend failed: {reason}"
                    )));
                }
                Attempt::ClientBody(answer) => return Err(answer),
                Attempt::TimedOut => {
                    return Err(GatewayError::BackendTimeout(format!(
                        "the backend did not answer within {} ms",
                        timeout.as_millis()
                    )));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| GatewayError::BackendUnreachable("no endpoint answered".into())))
    }

    /// One call to an `http://` endpoint (`rest` is its URL after the scheme) over the
    /// keep-alive pool. `headers` are the client's, hop-by-hop ones removed; `Host`,
    /// `Authorization` and `X-Forwarded-*` are replaced as the request head is written.
    #[allow(clippy::too_many_arguments)]
    async fn send_pooled(
        &self,
        rest: &str,
        remainder: Remainder<'_>,
        method: &Method,
        headers: HeaderMap,
        forwarded: Forwarded<'_>,
        body: Body,
        timeouts: Timeouts,
    ) -> Attempt {
        let split = rest.find('/').unwrap_or(rest.len());
        let (authority, base_path) = (&rest[..split], rest[split..].trim_end_matches('/'));
        let [slash, below, question, query] = remainder.pieces();
        let path = [base_path, slash, below, question, query];
        // The remainder comes from the request's parsed URI; only the endpoint's own path
        // needs checking, and a request target may hold visible ASCII only.
        let usable = base_path.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
        // The authority is sent as `Host`: it must be a header value (`HeaderValue`'s rule).
        let host_usable = authority.bytes().all(|b| (b >= 32 && b != 127) || b == b'\t');
        let (true, true) = (usable, host_usable) else {
            return Attempt::Unusable(format!(
                "endpoint `http://{rest}` with `{remainder}` is not a valid URL"
            ));
        };
        let out = Outgoing {
            authority,
            head: RequestHead {
                method,
                path,
                host: authority,
                headers: &headers,
                forwarded,
            },
            body,
            timeouts,
        };
        match self.pool.send(out).await {
            // The client dropped the response's hop-by-hop headers as it read them; the
            // rest are written out as they came.
            Ok((head, rbody)) => Attempt::Answered(Answer::Passed(head, rbody)),
            Err(PoolError::Connect(reason)) => Attempt::Refused(reason),
            Err(PoolError::Failed(CallError::RequestBody(e))) => {
                Attempt::ClientBody(crate::request::BodyFailure::answer_for(&e))
            }
            Err(PoolError::Failed(e)) => Attempt::Failed(e.to_string()),
            Err(PoolError::TimedOut) => Attempt::TimedOut,
        }
    }

    /// One call through the general client: `https://` endpoints and upgrades.
    #[allow(clippy::too_many_arguments)]
    async fn send_general(
        &self,
        base: &str,
        remainder: Remainder<'_>,
        method: &Method,
        headers: HeaderMap,
        body: Body,
        timeout: Duration,
        client_upgrade: &mut Option<ClientUpgrade>,
    ) -> Attempt {
        let uri = match backend_uri(base, remainder) {
            Ok(u) => u,
            Err(e) => return Attempt::Unusable(e),
        };
        let mut out = Request::new(body);
        *out.method_mut() = method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        match tokio::time::timeout(timeout, self.client.request(out)).await {
            Ok(Ok(mut res)) => {
                if res.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
                    // Joined to the client only when it switched to the WebSocket the
                    // client asked for; otherwise the backend's connection is dropped.
                    let Some(client_side) = client_upgrade.take() else {
                        return Attempt::Failed("it switched protocols, which the request did not ask for".into());
                    };
                    if let Err(why) = switched_to_websocket(res.headers(), &client_side.accept) {
                        return Attempt::Failed(why);
                    }
                    let backend_side = hyper::upgrade::on(&mut res);
                    tokio::spawn(splice(client_side.on, backend_side));
                    let (rparts, _) = res.into_parts();
                    return Attempt::Answered(Response::from_parts(rparts, Body::empty()).into());
                }
                let (mut rparts, rbody) = res.into_parts();
                strip_hop_by_hop(&mut rparts.headers);
                Attempt::Answered(Response::from_parts(rparts, Body::new(rbody)).into())
            }
            Ok(Err(e)) if crate::request::BodyFailure::find(&e).is_some() => {
                Attempt::ClientBody(crate::request::BodyFailure::answer_for(&e))
            }
            Ok(Err(e)) if e.is_connect() => Attempt::Refused(e.to_string()),
            Ok(Err(e)) => Attempt::Failed(e.to_string()),
            Err(_) => Attempt::TimedOut,
        }
    }
}

/// How one endpoint answered.
enum Attempt {
    /// With a response (any status).
    Answered(Answer),
    /// No connection could be made: the next endpoint may be tried.
    Refused(String),
    /// The endpoint's URL is unusable: the next endpoint is tried.
    Unusable(String),
    /// The connection failed mid-call.
    Failed(String),
    /// No answer within the read timeout.
    TimedOut,
    /// The client's request body failed on the way (over the limit, malformed): the
    /// client's answer; the backend connection was dropped.
    ClientBody(GatewayError),
}

/// A connector for `http://` and `https://` URLs (HTTP/1.1, and HTTP/2 by ALPN when
/// `http2`), with TCP_NODELAY and a connect timeout.
pub fn https_or_http(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    http2: bool,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1();
    if http2 {
        builder.enable_http2().wrap_connector(http)
    } else {
        builder.wrap_connector(http)
    }
}

/// Whether a backend's 101 switched to the WebSocket a handshake asked for: `Upgrade:
/// websocket`, `Connection: upgrade` and the `Sec-WebSocket-Accept` of the client's key
/// (RFC 6455 §4.1, what the client checks too). Why not, otherwise.
fn switched_to_websocket(headers: &HeaderMap, accept: &str) -> Result<(), String> {
    let upgrade = headers.get(header::UPGRADE).map(HeaderValue::as_bytes);
    if !upgrade.is_some_and(|u| u.trim_ascii().eq_ignore_ascii_case(b"websocket")) {
        return Err(format!(
            "its 101 switched to {:?}, not to the WebSocket asked for",
            String::from_utf8_lossy(upgrade.unwrap_or_default())
        ));
    }
    if !headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| crate::backend_http1::lists_token(v.as_bytes(), "upgrade"))
    {
        return Err("its 101 has no `Connection: upgrade`".into());
    }
    let answered = headers.get(header::SEC_WEBSOCKET_ACCEPT).map(HeaderValue::as_bytes);
    if answered.map(<[u8]>::trim_ascii) != Some(accept.as_bytes()) {
        return Err("its 101 does not accept the client's WebSocket key".into());
    }
    Ok(())
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

pub(crate) fn is_idempotent(method: &Method) -> bool {
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
    // Most messages carry none, or only `Connection`: one pass over the names tells.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let listed: Vec<HeaderValue> = headers.get_all(header::CONNECTION).iter().cloned().collect();
    for value in &listed {
        for name in value.to_str().unwrap_or("").split(',') {
            headers.remove(name.trim());
        }
    }
    while let Some(name) = headers.keys().find(|name| is_hop_by_hop(name)).cloned() {
        headers.remove(name);
    }
}

fn forwarded_headers(headers: &mut HeaderMap, forwarded: Forwarded<'_>, host: Option<HeaderValue>) {
    if let Some(ip) = forwarded.client_ip {
        let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prior) => HeaderValue::from_str(&format!("{prior}, {ip}")),
            None => HeaderValue::from_str(ip),
        };
        if let Ok(v) = value {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(forwarded.proto()));
    if let Some(h) = host {
        headers.insert(X_FORWARDED_HOST, h);
    }
}

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the gateway tells a pooled backend about the caller, written into the request
/// head in place of the client's own `X-Forwarded-*` headers (as [`forwarded_headers`]
/// sets them for the general client).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Forwarded<'a> {
    /// The caller's address, appended to the client's `X-Forwarded-For`.
    pub(crate) client_ip: Option<&'a str>,
    /// The `Host` the client asked for, when it is not in the request's header map.
    pub(crate) host: Option<&'a [u8]>,
    /// Whether the client connected over TLS.
    pub(crate) tls: bool,
    /// A lent `apikey` header that is not the API's credential: it goes on as it came.
    pub(crate) apikey: Option<&'a [u8]>,
}

impl Forwarded<'_> {
    /// `X-Forwarded-Proto`: the scheme the client used.
    pub(crate) fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// The request's path below the API's context, and its query: what follows the
/// endpoint's own URL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remainder<'a> {
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Remainder<'a> {
    /// The remainder in pieces that, joined, are it: a `/` when the path below the
    /// context does not start with one, that path, and `?` and the query if any.
    fn pieces(self) -> [&'a str; 4] {
        let slash = if self.path.is_empty() || self.path.starts_with('/') {
            ""
        } else {
            "/"
        };
        match self.query {
            Some(query) => [slash, self.path, "?", query],
            None => [slash, self.path, "", ""],
        }
    }
}

impl std::fmt::Display for Remainder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.pieces().iter().try_for_each(|piece| f.write_str(piece))
    }
}

/// The backend URI for an endpoint base and the request's path-and-query below the
/// API context.
fn backend_uri(base: &str, remainder: Remainder<'_>) -> Result<Uri, String> {
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

        // Several `Connection` headers, names in any case, an empty item, a bad name.
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("X-One,, bad name"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-two"));
        h.insert("x-one", HeaderValue::from_static("1"));
        h.insert("x-two", HeaderValue::from_static("2"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);

        // Only names `Connection` lists go; a message without hop-by-hop headers is kept whole.
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Close"));
        h.insert("close", HeaderValue::from_static("a header named close"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);
        let mut h = HeaderMap::new();
        h.insert("x-kept", HeaderValue::from_static("yes"));
        h.insert(header::HOST, HeaderValue::from_static("example.com"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn backend_uris_join_base_and_remainder() {
        assert_eq!(
            backend_uri(
                "http://b:8080/v1/",
                Remainder {
                    path: "pets/1",
                    query: Some("x=2")
                }
            )
            .unwrap()
            .to_string(),
            "http://b:8080/v1/pets/1?x=2"
        );
        let root = Remainder { path: "", query: None };
        assert_eq!(backend_uri("https://b", root).unwrap().to_string(), "https://b/");
        assert!(backend_uri("ftp://b", root).is_err());
    }

    #[tokio::test]
    async fn an_endpoint_path_that_cannot_be_a_request_target_is_unusable() {
        let b = Backends::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            backend_tls(None).unwrap(),
        );
        for rest in ["127.0.0.1:9/a b", "127.0.0.1:9/a#frag", "127.0.0.1:9/\u{e9}t\u{e9}"] {
            let attempt = b
                .send_pooled(
                    rest,
                    Remainder {
                        path: "/pets",
                        query: None,
                    },
                    &Method::GET,
                    HeaderMap::new(),
                    Forwarded::default(),
                    Body::empty(),
                    Timeouts::from(tokio::time::Instant::now(), Duration::from_secs(1)),
                )
                .await;
            assert!(
                matches!(&attempt, Attempt::Unusable(why) if why.contains("not a valid URL")),
                "{rest}"
            );
        }
    }

    #[test]
    fn only_a_101_to_the_websocket_asked_for_is_joined() {
        let head = |lines: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in lines {
                h.append(*name, HeaderValue::from_static(value));
            }
            h
        };
        let accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let good = [
            ("upgrade", "WebSocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ];
        assert_eq!(switched_to_websocket(&head(&good), accept), Ok(()));
        for (lines, why) in [
            (vec![("upgrade", "h2c"), good[1], good[2]], "h2c"),
            (vec![good[1], good[2]], "not to the WebSocket"),
            (vec![good[0], good[2]], "Connection"),
            (vec![good[0], good[1]], "key"),
            (
                vec![good[0], good[1], ("sec-websocket-accept", "dGhlIHNhbXBsZSBub25jZQ==")],
                "key",
            ),
        ] {
            let refused = switched_to_websocket(&head(&lines), accept).expect_err("refused");
            assert!(refused.contains(why), "{refused}");
        }
    }

    /// A backend that answers every connection's first request with `answer`.
    async fn answering(answer: &'static [u8]) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(answer).await;
                    let _ = conn.read(&mut buf).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn the_general_client_opens_no_tunnel_on_a_101_nobody_asked_for() {
        let addr = answering(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").await;
        let b = Backends::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
            backend_tls(None).unwrap(),
        );
        let attempt = b
            .send_general(
                &format!("http://{addr}"),
                Remainder {
                    path: "/x",
                    query: None,
                },
                &Method::GET,
                HeaderMap::new(),
                Body::empty(),
                Duration::from_secs(5),
                &mut None,
            )
            .await;
        assert!(
            matches!(&attempt, Attempt::Failed(why) if why.contains("did not ask for")),
            "a 101 to a plain request is a failure"
        );
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
        let first: Vec<&str> = b.candidates(&config, false).1.map(|e| e.url.as_str()).collect();
        let second: Vec<&str> = b.candidates(&config, false).1.map(|e| e.url.as_str()).collect();
        assert_eq!(first, ["http://a", "http://b", "http://c"]);
        assert_eq!(second, ["http://b", "http://a", "http://c"]);
        assert_eq!(b.candidates(&config, true).0, 0);
    }
}
