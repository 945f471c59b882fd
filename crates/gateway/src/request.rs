//! One API call through the gateway (docs/architecture.md, "Gateway request path"):
//! route → API state → authenticate → subscription → scope → deny policies → throttling →
//! backend. Everything is read from the current runtime state; nothing here touches a
//! database, and the only other node a call may wait on is the key manager, once per
//! opaque token.

use crate::analytics::{AnalyticsEvent, AnalyticsQueue};
use crate::answer::Answer;
use crate::authenticate::TokenVerifier;
use crate::error::GatewayError;
use crate::error::Throttled;
use crate::follow::LiveState;
use crate::proxy::Backends;
use crate::router::RouteMatch;
use crate::runtime::{ApiEntry, ApiMetrics, RouteTarget, RuntimeState};
use crate::throttle::Verdict;
use crate::throttle_policies::{Call, Consumer};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tollgate_events::snapshot::SubscriptionInfo;
use tollgate_model::LifecycleState;
use tollgate_model::block_condition::BlockedCall;
use tollgate_model::custom_rule::RequestAttributes;
use tollgate_model::token::{AccessClaims, KeyType, TokenKind};

/// What the request path shares.
#[derive(Debug)]
pub struct Gateway {
    /// The environment served.
    pub environment: String,
    /// The runtime state.
    pub live: Arc<LiveState>,
    /// Verified-token cache.
    pub verifier: TokenVerifier,
    /// Backend connections.
    pub backends: Backends,
    /// Largest request body forwarded (`[gateway] max_request_body_bytes`).
    pub max_request_body_bytes: u64,
    /// Largest request head read (`[gateway] max_request_header_bytes`), by the HTTP/1.1
    /// loop and by hyper.
    pub max_request_header_bytes: usize,
    /// How long a client connection may wait idle for its next request
    /// (`[gateway] keep_alive_timeout`).
    pub keep_alive_timeout: std::time::Duration,
    /// Metrics of requests that matched no API.
    pub unmatched: ApiMetrics,
    /// Resolves opaque tokens, when a key manager is at hand.
    pub introspector: Option<Arc<dyn crate::authenticate::Introspect>>,
    /// Where analytics events go, when a sink is configured.
    pub analytics: Option<AnalyticsQueue>,
    /// Signs the backend JWT (`X-JWT-Assertion`), when `[gateway] backend_jwt` is on.
    pub backend_jwt: Option<Arc<crate::backend_jwt::BackendJwtSigner>>,
    /// Throttle counters shared by the process's workers.
    pub throttler: Option<Arc<crate::throttle::Throttler>>,
    /// Spans of calls and backend calls, when `[tracing]` exports them.
    pub traces: Option<Arc<crate::traces::CallTracer>>,
}

/// The caller, once authenticated.
struct Caller {
    application_id: String,
    key_type: KeyType,
    claims: Arc<AccessClaims>,
}

/// The peer a connection comes from, rendered once per connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The caller's address.
    pub ip: Option<IpAddr>,
    /// The same, as text (for `X-Forwarded-For` and analytics), shared with each call's
    /// analytics event rather than copied into it.
    pub ip_text: Option<Arc<str>>,
    /// Whether the client connected over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
}

impl Peer {
    /// The peer at `addr`, connected in plain HTTP.
    pub fn new(addr: Option<SocketAddr>) -> Self {
        let ip = addr.map(|a| a.ip());
        Self {
            ip,
            ip_text: ip.map(|ip| Arc::from(ip.to_string())),
            tls: false,
        }
    }
}

/// What a listener's router holds: the gateway, and whether its connections are TLS.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The request path's shared parts.
    pub gateway: Arc<Gateway>,
    /// Whether the listener serves TLS.
    pub tls: bool,
}

/// The header the API key comes in when the API does not name one.
pub(crate) const APIKEY_NAME: &str = "apikey";
/// [`APIKEY_NAME`] as a header name.
pub(crate) const APIKEY: HeaderName = HeaderName::from_static(APIKEY_NAME);

/// The headers the HTTP/1.1 loop keeps out of a request's header map and lends from its
/// read buffer for the call: `Authorization` and `apikey`, which authentication reads and
/// the backend never gets, and `Host`, which the backend gets as `X-Forwarded-Host`. None
/// goes on as it came, so making `HeaderValue`s of them (validating and copying a long
/// token) would buy nothing. Requests that hyper parsed lend none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LentHeaders<'a> {
    /// The first `Authorization` value.
    pub(crate) authorization: Option<&'a [u8]>,
    /// The first `Host` value.
    pub(crate) host: Option<&'a [u8]>,
    /// The first `apikey` value (the API key's header when an API names none).
    pub(crate) apikey: Option<&'a [u8]>,
}

impl<'a> LentHeaders<'a> {
    fn get(&self, name: &str) -> Option<&'a [u8]> {
        if name.eq_ignore_ascii_case("authorization") {
            self.authorization
        } else if name.eq_ignore_ascii_case("host") {
            self.host
        } else if name.eq_ignore_ascii_case(APIKEY_NAME) {
            self.apikey
        } else {
            None
        }
    }
}

/// A request's headers as authentication and throttling read them: those in its map
/// and those lent beside it.
#[derive(Clone, Copy)]
struct Headers<'a> {
    map: &'a axum::http::HeaderMap,
    lent: LentHeaders<'a>,
}

impl<'a> Headers<'a> {
    /// The value of the header `name` (the first, if several), when it is text.
    fn get<K>(&self, name: K) -> Option<&'a str>
    where
        K: axum::http::header::AsHeaderName + AsRef<str>,
    {
        self.get_bytes(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The bytes of the header `name` (the first, if several), for credentials, which
    /// the token verifier checks itself.
    fn get_bytes<K>(&self, name: K) -> Option<&'a [u8]>
    where
        K: axum::http::header::AsHeaderName + AsRef<str>,
    {
        self.lent
            .get(name.as_ref())
            .or_else(|| self.map.get(name).map(axum::http::HeaderValue::as_bytes))
    }
}

fn query_param<'a>(uri: &'a axum::http::Uri, name: &str) -> Option<&'a str> {
    let query = uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// `uri` without the query parameter `name` (every one of them); `None` when it has none
/// (or cannot be rebuilt).
fn without_query_param(uri: &axum::http::Uri, name: &str) -> Option<axum::http::Uri> {
    let query = uri.query()?;
    let named = |pair: &&str| pair.split_once('=').map_or(*pair, |(k, _)| k) == name;
    if !query.split('&').any(|pair| named(&pair)) {
        return None;
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !named(pair)).collect();
    let path_and_query = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    axum::http::Uri::from_parts(parts).ok()
}

async fn authenticate(
    gw: &Gateway,
    state: &RuntimeState,
    target: &RouteTarget,
    headers: Headers<'_>,
    uri: &axum::http::Uri,
    now_millis: i64,
) -> Result<Caller, GatewayError> {
    let api = &target.api.deployed.api;
    let allows_api_key = api.security_scheme.iter().any(|s| s == "api_key");
    let allows_oauth = api.security_scheme.is_empty() || api.security_scheme.iter().any(|s| s == "oauth2");
    let api_key_header = api.api_key_header.as_deref().unwrap_or(APIKEY_NAME);
    let sent_key = || match &api.api_key_header {
        Some(name) => headers.get_bytes(name.as_str()),
        None => headers.get_bytes(&APIKEY),
    };
    if allows_api_key && let Some(key) = sent_key().or_else(|| query_param(uri, api_key_header).map(str::as_bytes)) {
        let claims = gw
            .verifier
            .verify(state, key, TokenKind::ApiKey, None, now_millis)
            .await?;
        return Ok(Caller {
            application_id: claims.application.id.clone(),
            key_type: claims.keytype,
            claims,
        });
    }
    let auth_header = api.authorization_header.as_deref().unwrap_or("authorization");
    let sent = match &api.authorization_header {
        Some(name) => headers.get_bytes(name.as_str()),
        None => headers.get_bytes(axum::http::header::AUTHORIZATION),
    };
    if !allows_oauth {
        // Say why a token is not enough, and how the API would take one.
        let also = if sent.is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")) {
            "this API does not accept access tokens (its security schemes leave out `oauth2`; a publisher \
             adds it to the API's securityScheme to allow them): "
        } else {
            ""
        };
        return Err(GatewayError::MissingCredentials(format!(
            "{also}send an API key in the `{api_key_header}` header"
        )));
    }
    let value = sent.ok_or_else(|| {
        // An API key sent to an API that takes none: say so, and how to allow them.
        let key_sent =
            !allows_api_key && (headers.get_bytes(&APIKEY).is_some() || query_param(uri, APIKEY_NAME).is_some());
        let also = if key_sent {
            "this API does not accept API keys (its security schemes leave out `api_key`; a publisher adds it \
             to the API's securityScheme to allow them): "
        } else {
            ""
        };
        GatewayError::MissingCredentials(format!("{also}send an access token as `{auth_header}: Bearer <token>`"))
    })?;
    let token = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))
        .ok_or_else(|| GatewayError::InvalidCredentials("expected `Bearer <token>`".into()))?
        .trim_ascii();
    let claims = gw
        .verifier
        .verify(
            state,
            token,
            TokenKind::AccessToken,
            gw.introspector.as_deref(),
            now_millis,
        )
        .await?;
    let mapping = state
        .application_key(&claims.client_id, &claims.application.id)
        .ok_or_else(|| GatewayError::InvalidCredentials("the token's application keys no longer exist".into()))?;
    Ok(Caller {
        application_id: mapping.application_id.clone(),
        key_type: claims.keytype,
        claims,
    })
}

/// The caller's subscription to the API, if it lets the call through (its plan is what
/// the call is throttled and described by further on). An application of another tenant
/// than the API's is refused as not subscribed, as the reference's subscription
/// validation (which looks in the API's tenant) refuses it: to the caller, the other
/// tenant's API has no subscription of theirs, whatever the ids say.
fn check_subscription<'s>(
    state: &'s RuntimeState,
    caller: &Caller,
    api: &ApiEntry,
) -> Result<&'s SubscriptionInfo, GatewayError> {
    let not_subscribed = || GatewayError::NotSubscribed("the application is not subscribed to this API".into());
    if state.application_tenant(&caller.application_id) != Some(api.tenant) {
        return Err(not_subscribed());
    }
    let sub = state
        .subscription(&caller.application_id, &api.deployed.api_id)
        .ok_or_else(not_subscribed)?;
    match sub.subscription_status.as_str() {
        "UNBLOCKED" => Ok(sub),
        "PROD_ONLY_BLOCKED" if caller.key_type == KeyType::Sandbox => Ok(sub),
        "BLOCKED" | "PROD_ONLY_BLOCKED" => Err(GatewayError::Blocked("the subscription is blocked".into())),
        other => Err(GatewayError::NotSubscribed(format!("the subscription is {other}"))),
    }
}

/// Why a backend could read `path` as another path than the gateway routes it by, if it
/// could: an empty segment (`//`, which routing skips), a `.` or `..` segment, a `\\` or a
/// `;` (path parameters, which some servers strip), a malformed percent-encoding, or one
/// of a character that needs none (`%2e`, `%70`: RFC 3986 §2.3), of `/`, `\\` or `;`, or
/// of a control character. Such paths are refused rather than normalised: the backend then
/// always gets the path that was routed and authorised, as sent (decision 010).
fn ambiguous_path(path: &str) -> Option<&'static str> {
    // Most paths hold none of these: a vectorised search for the three bytes and a look
    // after each `/` tell (a byte-by-byte pass cost a tenant's longer `/t/{domain}/…`
    // paths measurably more, bench/tenants.sh).
    let bytes = path.as_bytes();
    let closer_look = memchr::memchr3(b'%', b'\\', b';', bytes).is_some()
        || memchr::memchr_iter(b'/', bytes).any(|i| matches!(bytes.get(i + 1), Some(b'/' | b'.')));
    if !closer_look {
        return None;
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() && segments.peek().is_some() {
            return Some("has an empty segment (`//`)");
        }
        if segment == "." || segment == ".." {
            return Some("has a `.` or `..` segment");
        }
        if segment.contains(['\\', ';']) {
            return Some("has a `\\` or a `;`");
        }
        let bytes = segment.as_bytes();
        for (i, _) in segment.match_indices('%') {
            let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                return Some("has a `%` that is not followed by two hex digits");
            };
            let decoded = (high * 16 + low) as u8;
            if decoded.is_ascii_alphanumeric() || matches!(decoded, b'-' | b'.' | b'_' | b'~') {
                return Some("percent-encodes a character that needs no encoding");
            }
            if matches!(decoded, b'/' | b'\\' | b';') || decoded.is_ascii_control() {
                return Some("percent-encodes a `/`, `\\`, `;` or a control character");
            }
        }
    }
    None
}

/// What the request path learned about a call, for metrics and analytics.
#[derive(Default)]
struct CallInfo<'s> {
    /// When the call arrived (ms since the epoch), read once for every check that needs
    /// the time of day.
    arrived_millis: i64,
    /// The API called, borrowed from the runtime state the call is served by: the
    /// workers share the entry, and its reference count is touched only where an event
    /// outlives the call (a count both workers change is a cache line they pass back and
    /// forth).
    api: Option<&'s Arc<ApiEntry>>,
    operation: Option<usize>,
    caller: Option<Caller>,
    backend_latency_ms: Option<f64>,
    /// The call's server span, when traced.
    trace: Option<opentelemetry::Context>,
}

/// A call as throttling conditions and key templates see it.
struct CallAttributes<'a> {
    target: &'a RouteTarget,
    caller: Option<&'a Caller>,
    peer: &'a Peer,
    method: &'a str,
    headers: Headers<'a>,
    uri: &'a axum::http::Uri,
}

impl RequestAttributes for CallAttributes<'_> {
    fn variable(&self, name: &str) -> &str {
        let api = &self.target.api.deployed.api;
        let claims = self.caller.map(|c| &c.claims);
        match name {
            "userId" => claims.map_or("", |c| c.sub.as_str()),
            "apiContext" => self.target.api.context(),
            "apiVersion" => &api.version,
            "apiName" => &api.name,
            "appId" => self.caller.map_or("", |c| c.application_id.as_str()),
            "appName" => claims.map_or("", |c| c.application.name.as_str()),
            // The application is of the API's tenant (any other is refused before).
            "apiTenant" | "appTenant" => &self.target.api.tenant_domain,
            "clientIp" => self.peer.ip_text.as_deref().unwrap_or(""),
            "method" => self.method,
            "resource" => &api.operations[self.target.operation].target,
            _ => "",
        }
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
    fn query(&self, name: &str) -> Option<&str> {
        query_param(self.uri, name)
    }
    fn claim(&self, name: &str) -> Option<&str> {
        let c = &self.caller?.claims;
        Some(match name {
            "sub" => &c.sub,
            "iss" => &c.iss,
            "aud" => &c.aud,
            "jti" => &c.jti,
            "scope" => &c.scope,
            "client_id" | "azp" => &c.client_id,
            "keytype" => c.keytype.as_str(),
            "application.name" => &c.application.name,
            "application.tier" => &c.application.tier,
            "application.owner" => &c.application.owner,
            _ => return None,
        })
    }
}

/// What throttling decided for an admitted call: the headers to answer with and the
/// bandwidth limits to charge once the sizes are known.
#[derive(Default)]
struct Admitted {
    headers: Option<(u64, u64, u64)>,
    bandwidth: Vec<String>,
}

/// Counts the call against every limit that applies (docs/architecture.md, "Gateway
/// request path", step 10), in the reference order; the first that refuses it answers 429.
fn throttle(
    gw: &Gateway,
    state: &RuntimeState,
    target: &RouteTarget,
    attributes: &CallAttributes<'_>,
    plan: Option<&str>,
    now: i64,
) -> Result<Admitted, GatewayError> {
    let mut admitted = Admitted::default();
    let (Some(throttler), Some(policies)) = (&gw.throttler, state.throttling(target.api.tenant)) else {
        return Ok(admitted);
    };
    let api = &target.api.deployed;
    let op = &api.api.operations[target.operation];
    let consumer = attributes.caller.map(|c| Consumer {
        application_id: &c.application_id,
        plan,
        application_policy: state
            .application(&c.application_id)
            .map_or(c.claims.application.tier.as_str(), |a| a.tier.as_str()),
        user: &c.claims.sub,
    });
    let call = Call {
        api_id: &api.api_id,
        api_policy: api.api.api_throttling_policy.as_deref(),
        operation: (target.operation, &op.throttling_policy),
        consumer,
        attributes,
    };
    for check in policies.checks(&call) {
        let cost = u64::from(!check.limit.bandwidth);
        match throttler.acquire(&check.key, &check.limit, cost, check.enforce, now) {
            Verdict::Admit {
                limit,
                remaining,
                reset_at,
            } => {
                if check.limit.bandwidth {
                    admitted.bandwidth.push(check.key);
                } else if admitted.headers.is_none_or(|(_, r, _)| remaining < r) {
                    admitted.headers = Some((limit, remaining, seconds_until(reset_at, now)));
                }
            }
            Verdict::Deny {
                limit,
                reset_at,
                retry_at,
            } => {
                metrics::counter!("tollgate_gateway_throttled_total", "kind" => check.kind.as_str()).increment(1);
                let kind = check.kind.as_str();
                let description = if !throttler.is_shared() {
                    format!("the {kind} limit is enforced locally while the traffic manager is unreachable")
                } else if retry_at < reset_at {
                    format!("the {kind} limit of {limit} per window is nearly used up; retry in a second")
                } else {
                    format!("the {kind} limit of {limit} per window is reached")
                };
                return Err(GatewayError::Throttled(Throttled {
                    kind: check.kind,
                    limit,
                    reset_after: seconds_until(reset_at, now),
                    retry_after: seconds_until(retry_at, now),
                    description,
                }));
            }
        }
    }
    Ok(admitted)
}

fn seconds_until(at: i64, now: i64) -> u64 {
    u64::try_from((at - now).max(0)).unwrap_or(0).div_ceil(1000)
}

/// Serves one API call through axum (the TLS listener): the peer comes from the
/// connection's `ConnectInfo`.
pub async fn handle(State(listener): State<Listener>, req: Request) -> Response {
    let peer = Peer {
        tls: listener.tls,
        ..Peer::new(req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
    };
    let mut req = req;
    handle_call(&listener.gateway, &peer, &mut req, LentHeaders::default())
        .await
        .into_response()
}

/// Serves one API call from `peer`, with the headers kept out of its map in `lent`.
/// The request is lent, not moved: every layer of the request path holds a reference
/// to it where a moved request was copied into each layer's state (decision 007); the
/// call takes its headers and body out of it.
pub(crate) async fn handle_call(gw: &Gateway, peer: &Peer, req: &mut Request, lent: LentHeaders<'_>) -> Answer {
    let started = Instant::now();
    let state = gw.live.load();
    let mut info = CallInfo {
        arrived_millis: tollgate_model::now_millis(),
        ..CallInfo::default()
    };
    let traced_method = gw.traces.as_ref().map(|t| {
        info.trace = Some(t.start(req.method(), req.uri().path(), req.headers(), peer.ip_text.as_deref()));
        req.method().clone()
    });
    // What the analytics event needs of the request, which the call consumes.
    let analytics_request = gw.analytics.as_ref().map(|_| {
        (
            req.method().clone(),
            req.headers().get(axum::http::header::USER_AGENT).cloned(),
        )
    });
    // The steps before and after the API call are plain functions, not a layer of futures
    // of their own: an awaited layer's state is copied whole as it is made (decision 007).
    let headers = Headers {
        map: req.headers(),
        lent,
    };
    let origin = headers.get(axum::http::header::ORIGIN).map(str::to_string);
    // The HTTP/1.1 loop serves only requests with one valid `Host` and no
    // `Transfer-Encoding`, and lends the host; a request hyper parsed is checked here.
    let host = if lent.host.is_none() {
        check_host(req).and_then(|()| check_transfer_coding(req))
    } else {
        Ok(())
    };
    let served = match host.map(|()| answered_here(gw, &state, req, headers, origin.as_deref(), &mut info)) {
        Err(refused) => Err(refused),
        Ok(Some(answer)) => Ok(answer),
        Ok(None) => serve_call(gw, &state, peer, req, lent, &mut info).await.map(|mut res| {
            decorate_cors(origin.as_deref(), &info, &mut res);
            res
        }),
    };
    let (response, error_code) = match served {
        Ok(res) => (res, None),
        Err(e) => {
            let code = e.code();
            (e.into_response().into(), Some(code))
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let metrics = info.api.as_ref().map_or(&gw.unmatched, |a| &a.metrics);
    metrics.record(status, elapsed);
    if let (Some(cx), Some(method)) = (&info.trace, &traced_method) {
        let operation = info
            .api
            .as_ref()
            .zip(info.operation)
            .and_then(|(api, i)| api.deployed.api.operations.get(i).map(|op| (api, op)));
        let route = operation.map(|(api, op)| format!("{}{}", api.context(), op.target));
        crate::traces::end_call(
            cx,
            method,
            &crate::traces::CallOutcome {
                api: operation.zip(route.as_deref()).map(|((api, _), route)| {
                    (api.deployed.api.name.as_str(), api.deployed.api.version.as_str(), route)
                }),
                application_id: info.caller.as_ref().map(|c| c.application_id.as_str()),
                status,
                error_code,
            },
        );
    }
    if let (Some(queue), Some((method, user_agent))) = (&gw.analytics, analytics_request) {
        // Built where it is handed over, and the caller moved into it: the event is not
        // moved about on its way to the queue.
        let (key_type, application_id, claims) = match info.caller.take() {
            Some(c) => (Some(c.key_type), Some(c.application_id), Some(c.claims)),
            None => (None, None, None),
        };
        queue.publish(AnalyticsEvent {
            timestamp: info.arrived_millis,
            api: info.api.map(|api| (Arc::clone(api), info.operation)),
            method,
            key_type,
            application_id,
            claims,
            status,
            error_code,
            gateway_latency_ms: elapsed * 1000.0,
            backend_latency_ms: info.backend_latency_ms,
            response_bytes: response.content_length(),
            user_agent,
            client_ip: peer.ip_text.clone(),
        });
    }
    response
}

/// What the gateway answers itself, before any API is called: its backend JWT's keys,
/// and CORS preflights of APIs that enable CORS. `origin` is the request's `Origin`.
fn answered_here<'s>(
    gw: &Gateway,
    state: &'s RuntimeState,
    req: &Request,
    headers: Headers<'_>,
    origin: Option<&str>,
    info: &mut CallInfo<'s>,
) -> Option<Answer> {
    if let Some(signer) = &gw.backend_jwt
        && req.method() == axum::http::Method::GET
        && req.uri().path() == crate::backend_jwt::JWKS_PATH
    {
        return Some(axum::Json(signer.jwks().clone()).into_response().into());
    }
    // A CORS preflight names the method it asks about; the gateway answers it itself,
    // unless the API's tenant is deactivated: then the call is refused as any other is.
    if req.method() == axum::http::Method::OPTIONS
        && let (Some(origin), Some(asked)) = (origin, headers.get(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD))
        && state.inactive_tenant(req.uri().path()).is_none()
        && let RouteMatch::Found { value, .. } = state.route(asked, req.uri().path())
        && let Some(cors) = value
            .api
            .deployed
            .api
            .cors_configuration
            .as_ref()
            .filter(|c| c.cors_configuration_enabled)
    {
        info.api = Some(&value.api);
        return Some(crate::cors::preflight(cors, origin).into());
    }
    None
}

/// Adds the CORS headers of the called API, when it enables CORS and the request has an
/// `Origin`.
fn decorate_cors(origin: Option<&str>, info: &CallInfo, res: &mut Answer) {
    if let (Some(origin), Some(api)) = (origin, &info.api)
        && let Some(cors) = api
            .deployed
            .api
            .cors_configuration
            .as_ref()
            .filter(|c| c.cors_configuration_enabled)
    {
        crate::cors::decorate(cors, origin, res);
    }
}

async fn serve_call<'s>(
    gw: &Gateway,
    state: &'s RuntimeState,
    peer: &Peer,
    req: &mut Request,
    lent: LentHeaders<'_>,
    info: &mut CallInfo<'s>,
) -> Result<Answer, GatewayError> {
    let headers = Headers {
        map: req.headers(),
        lent,
    };
    if let Some(why) = ambiguous_path(req.uri().path()) {
        return Err(GatewayError::BadRequest(format!(
            "the request path {why}: send it without, as the one path it means"
        )));
    }
    // A deactivated tenant's calls are refused before anything else about them is looked
    // at, as the reference refuses them (docs/gateway-tenants.md).
    if let Some(domain) = state.inactive_tenant(req.uri().path()) {
        // The reference's own words for it.
        return Err(GatewayError::TenantInactive(format!(
            "Trying to access inactive tenant domain : {domain}"
        )));
    }
    let target = match state.route(req.method().as_str(), req.uri().path()) {
        RouteMatch::Found { value, .. } => value,
        RouteMatch::MethodNotAllowed(allow) => return Err(GatewayError::MethodNotAllowed(allow)),
        RouteMatch::NotFound => {
            return Err(GatewayError::NoMatchingResource(format!(
                "No API deployed to the `{}` environment matches this request's context, version and resource.",
                gw.environment
            )));
        }
    };
    info.api = Some(&target.api);
    let deployed = &target.api.deployed;
    match deployed.life_cycle_status {
        LifecycleState::Blocked => return Err(GatewayError::ApiBlocked("the API is blocked by its publisher".into())),
        LifecycleState::Retired | LifecycleState::Created => {
            return Err(GatewayError::NoMatchingResource("the API is not available".into()));
        }
        _ => {}
    }
    // Only a WebSocket handshake may switch protocols, and only on a WebSocket API, which
    // takes nothing else; any other upgrade (h2c…) is not passed on (decision 010).
    let upgrade = if req.headers().contains_key(axum::http::header::UPGRADE) {
        upgrade_asked(req)?
    } else {
        Upgrade::None
    };
    match upgrade {
        Upgrade::WebSocket(_) if !target.api.websocket => {
            return Err(GatewayError::BadRequest(
                "this API takes no WebSocket connections (only APIs of type WS do)".into(),
            ));
        }
        Upgrade::None | Upgrade::Other if target.api.websocket => {
            return Err(GatewayError::UpgradeRequired(
                "this is a WebSocket API: open a WebSocket (GET with `Upgrade: websocket`)".into(),
            ));
        }
        _ => {}
    }
    let op = &deployed.api.operations[target.operation];
    info.operation = Some(target.operation);
    // The subscription plan of an authenticated caller.
    let mut plan = None;
    let sandbox = if op.auth_type.eq_ignore_ascii_case("None") {
        false
    } else {
        let caller = authenticate(gw, state, target, headers, req.uri(), info.arrived_millis).await?;
        plan = Some(
            check_subscription(state, &caller, &target.api)?
                .throttling_policy
                .as_str(),
        );
        if !op.scopes.is_empty() && !caller.claims.scopes().any(|s| op.scopes.iter().any(|r| r == s)) {
            return Err(GatewayError::ScopeMissing(format!(
                "this resource needs one of the scopes {}",
                op.scopes.join(", ")
            )));
        }
        let sandbox = caller.key_type == KeyType::Sandbox;
        info.caller = Some(caller);
        sandbox
    };
    // Block conditions (deny policies) of the API's tenant: API, application, user, IP or
    // IP range.
    let tenant = target.api.tenant;
    if state.has_block_conditions(tenant) {
        let call = BlockedCall {
            api_context: target.api.context(),
            tenant_prefix_len: target.api.prefix_len,
            application: info
                .caller
                .as_ref()
                .and_then(|c| state.application(&c.application_id))
                .map(|a| (a.owner.as_str(), a.name.as_str())),
            user: info.caller.as_ref().map(|c| c.claims.sub.as_str()),
            client_ip: peer.ip,
        };
        if state.blocked(tenant, &call) {
            return Err(GatewayError::RequestBlocked("a deny policy refuses this call".into()));
        }
    }
    let attributes = CallAttributes {
        target,
        caller: info.caller.as_ref(),
        peer,
        method: req.method().as_str(),
        headers,
        uri: req.uri(),
    };
    let admitted = throttle(gw, state, target, &attributes, plan, info.arrived_millis)?;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gw.max_request_body_bytes) {
        return Err(too_large(gw.max_request_body_bytes));
    }
    if let Some(mocks) = &target.api.mocks {
        // A mocked API: answered here from its definition's examples, with no backend
        // (decision 016). The request body is not read.
        let mut res = crate::mock::answer(mocks.get(target.operation).and_then(Option::as_ref), req.headers())?;
        finish(gw, &admitted, declared, &mut res);
        return Ok(res);
    }
    let context_len = target.context_len;
    let other_upgrade = upgrade == Upgrade::Other;
    let client_upgrade = match upgrade {
        Upgrade::WebSocket(accept) => Some(crate::proxy::ClientUpgrade {
            on: hyper::upgrade::on(&mut *req),
            accept,
        }),
        _ => None,
    };
    let body = std::mem::take(req.body_mut());
    // The headers the backend gets, taken out of the request (`headers` above reads the
    // request as it came).
    let mut outgoing = std::mem::take(req.headers_mut());
    if other_upgrade {
        // The request goes on as a plain one: `Upgrade` and what `Connection` names are
        // hop-by-hop and left out on the way; h2c's settings go too even when unnamed.
        outgoing.remove(HTTP2_SETTINGS);
    }
    // The credentials a call was authenticated with stop here, as in the reference: an
    // API key never reaches the backend (a backend JWT tells it who called), nor does a
    // custom authorization header (`Authorization` itself is left out as the request is
    // written).
    let mut apikey_on = lent.apikey;
    let authenticated = info.caller.is_some();
    if authenticated && deployed.api.security_scheme.iter().any(|s| s == "api_key") {
        match &deployed.api.api_key_header {
            None => {
                outgoing.remove(APIKEY);
                apikey_on = None;
            }
            Some(name) => {
                outgoing.remove(name.as_str());
            }
        }
        let name = deployed.api.api_key_header.as_deref().unwrap_or(APIKEY_NAME);
        if let Some(uri) = without_query_param(req.uri(), name) {
            *req.uri_mut() = uri;
        }
    }
    if authenticated && let Some(name) = &deployed.api.authorization_header {
        outgoing.remove(name.as_str());
    }
    // Only the gateway speaks for the caller to the backend.
    // (A signed one replaces it below.)
    if gw.backend_jwt.is_none() || info.caller.is_none() {
        outgoing.remove(crate::backend_jwt::HEADER_NAME);
    }
    if let (Some(signer), Some(caller)) = (&gw.backend_jwt, &info.caller) {
        let tier = plan.unwrap_or("");
        let jwt = signer.sign(
            &caller.claims.sub,
            &caller.claims.application,
            caller.key_type.as_str(),
            tier,
            &deployed.api.name,
            &deployed.api.version,
        );
        match jwt.and_then(|j| axum::http::HeaderValue::from_str(&j).ok()) {
            Some(value) => outgoing.insert(crate::backend_jwt::HEADER_NAME, value),
            None => outgoing.remove(crate::backend_jwt::HEADER_NAME),
        };
    }
    // Streamed through, never buffered; a body without a length is cut off at the limit.
    // Its first piece is awaited before the backend is asked: a body malformed or too
    // large from its start is refused without touching the backend.
    let body = if hyper::body::Body::is_end_stream(&body) {
        body
    } else {
        Started::first_piece(body, gw).await?
    };
    let backend_trace = match (&gw.traces, &info.trace) {
        (Some(t), Some(cx)) => Some(t.start_backend(cx, req.method(), &mut outgoing)),
        _ => None,
    };
    let backend_started = Instant::now();
    let result = gw
        .backends
        .forward(
            deployed.api.endpoint_config.as_ref(),
            sandbox,
            crate::proxy::Outbound {
                method: req.method(),
                uri: req.uri(),
                headers: outgoing,
                body,
                context_len,
                started: backend_started,
            },
            crate::proxy::Forwarded {
                client_ip: peer.ip_text.as_deref(),
                host: lent.host,
                tls: peer.tls,
                apikey: apikey_on,
            },
            client_upgrade,
        )
        .await;
    info.backend_latency_ms = Some(backend_started.elapsed().as_secs_f64() * 1000.0);
    if let Some(cx) = &backend_trace {
        match &result {
            Ok(r) => crate::traces::end_backend(cx, Ok(r.status().as_u16())),
            Err(e) => crate::traces::end_backend(cx, Err(&format!("{e:?}"))),
        }
    }
    let mut res = result?;
    finish(gw, &admitted, declared, &mut res);
    Ok(res)
}

/// What an admitted call's answer gets from throttling: the rate-limit headers, and the
/// bandwidth limits charged with the request's and the response's declared sizes.
fn finish(gw: &Gateway, admitted: &Admitted, declared: Option<u64>, res: &mut Answer) {
    if let Some((limit, remaining, reset)) = admitted.headers {
        crate::throttle::rate_limit_headers(res, limit, remaining, reset);
    }
    if let Some(throttler) = gw.throttler.as_ref().filter(|_| !admitted.bandwidth.is_empty()) {
        let sent = res.content_length().unwrap_or(0);
        for key in &admitted.bandwidth {
            throttler.charge(key, sent + declared.unwrap_or(0));
        }
    }
}

/// The 413 of a body over `limit`, naming the setting.
fn too_large(limit: u64) -> GatewayError {
    GatewayError::PayloadTooLarge(format!(
        "the request body is larger than gateway.max_request_body_bytes ({limit} bytes)"
    ))
}

/// Whether a `Host` value is a valid `host[:port]` (RFC 9110 §7.2: an authority without
/// user info; empty is allowed). It reaches backends as `X-Forwarded-Host`.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    value.iter().all(|b| {
        matches!(b,
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'-' | b'.' | b'_' | b'~' | b'%' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')'
            | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'[' | b']')
    })
}

/// RFC 9112 §3.2: an HTTP/1.1 request has one `Host`; no request has two, or an invalid
/// one (HTTP/2 names its authority otherwise).
fn check_host(req: &Request) -> Result<(), GatewayError> {
    if req.version() >= axum::http::Version::HTTP_2 {
        return Ok(());
    }
    let mut hosts = req.headers().get_all(axum::http::header::HOST).iter();
    let refused = |why: &str| Err(GatewayError::BadRequest(why.into()));
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == axum::http::Version::HTTP_11 => {
            refused("an HTTP/1.1 request needs a `Host` header")
        }
        (Some(_), Some(_)) => refused("a request has one `Host` header, not several"),
        (Some(host), None) if !valid_host(host.as_bytes()) => refused("`Host` is not a valid host[:port]"),
        _ => Ok(()),
    }
}

/// A request's `Transfer-Encoding`, if any, must be `chunked` alone: the gateway decodes
/// no other transfer coding (RFC 9112 §6.1 answers 501), and passing `gzip, chunked` on
/// after un-chunking it would hand the backend gzip bytes without their coding. The own
/// HTTP/1.1 loop serves no request with the header; this checks what hyper parsed.
fn check_transfer_coding(req: &Request) -> Result<(), GatewayError> {
    let mut chunked = 0;
    for value in req.headers().get_all(axum::http::header::TRANSFER_ENCODING) {
        for coding in value.as_bytes().split(|b| *b == b',') {
            let coding = coding.trim_ascii();
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else if !coding.is_empty() {
                return Err(GatewayError::NotImplemented(format!(
                    "the transfer coding `{}` is not supported: send the body with Content-Length or `Transfer-Encoding: chunked` alone",
                    String::from_utf8_lossy(coding)
                )));
            }
        }
    }
    if chunked > 1 {
        return Err(GatewayError::BadRequest(
            "`chunked` is applied once, not several times".into(),
        ));
    }
    Ok(())
}

/// A request body's failure, as the client is answered: 413 past
/// `gateway.max_request_body_bytes`, 400 for a body that is malformed (a bad chunk size)
/// or cut short. It travels inside the body's error to wherever the body is read (the
/// backend clients), which answer with it and drop their backend connection.
#[derive(Debug)]
pub(crate) struct BodyFailure(GatewayError);

impl std::fmt::Display for BodyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            GatewayError::PayloadTooLarge(why) | GatewayError::BadRequest(why) => f.write_str(why),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for BodyFailure {}

impl BodyFailure {
    /// What a failure of the limited request body means for the client.
    fn of(error: &(dyn std::error::Error + 'static), limit: u64) -> Self {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if e.is::<http_body_util::LengthLimitError>() {
                return Self(too_large(limit));
            }
            cause = e.source();
        }
        Self(GatewayError::BadRequest(format!(
            "the request body could not be read: {error}"
        )))
    }

    /// The failure among `error`'s causes, if the request body is what failed.
    pub(crate) fn find<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e GatewayError> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(failure) = e.downcast_ref::<Self>() {
                return Some(&failure.0);
            }
            cause = e.source();
        }
        None
    }

    /// The client's answer to a call whose request body failed with `error`.
    pub(crate) fn answer_for(error: &(dyn std::error::Error + 'static)) -> GatewayError {
        Self::find(error)
            .cloned()
            .unwrap_or_else(|| GatewayError::BadRequest(format!("the request body failed: {error}")))
    }
}

/// A request body, limited to `gateway.max_request_body_bytes`, whose first piece has
/// come: that piece, then the rest. Its failures are [`BodyFailure`]s.
struct Started {
    first: Option<hyper::body::Frame<bytes::Bytes>>,
    rest: http_body_util::Limited<Body>,
    limit: u64,
}

impl Started {
    /// Waits (`gateway.keep_alive_timeout` at most) for the first piece of `body`: a body
    /// that fails at once is refused before the backend is asked.
    async fn first_piece(body: Body, gw: &Gateway) -> Result<Body, GatewayError> {
        use http_body_util::BodyExt;
        let limit = gw.max_request_body_bytes;
        let mut rest = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
        let first = match tokio::time::timeout(gw.keep_alive_timeout, rest.frame()).await {
            Err(_) => {
                return Err(GatewayError::RequestTimeout(
                    "the request body did not start within gateway.keep_alive_timeout".into(),
                ));
            }
            Ok(None) => return Ok(Body::empty()),
            Ok(Some(Err(e))) => return Err(BodyFailure::of(&*e, limit).0),
            Ok(Some(Ok(frame))) => frame,
        };
        Ok(Body::new(Self {
            first: Some(first),
            rest,
            limit,
        }))
    }
}

impl hyper::body::Body for Started {
    type Data = bytes::Bytes;
    type Error = BodyFailure;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, BodyFailure>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(first)));
        }
        let limit = self.limit;
        std::pin::Pin::new(&mut self.rest)
            .poll_frame(cx)
            .map_err(|e| BodyFailure::of(&*e, limit))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let first = self
            .first
            .as_ref()
            .and_then(|f| f.data_ref())
            .map_or(0, |d| d.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

/// `HTTP2-Settings`, which an h2c upgrade request carries (RFC 7540 §3.2.1).
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The GUID a WebSocket server appends to the client's key (RFC 6455 §1.3).
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a request's `Upgrade` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum Upgrade {
    /// Nothing.
    None,
    /// A WebSocket handshake (RFC 6455 §4.1), with the `Sec-WebSocket-Accept` its 101
    /// must carry.
    WebSocket(String),
    /// Another protocol (`h2c`, say): ignored, as a server may (RFC 9110 §7.8).
    Other,
}

/// What the `Upgrade` header of `req` asks for: `websocket` alone is a WebSocket
/// handshake, which must then be a valid one (400 otherwise); anything else is another
/// protocol.
fn upgrade_asked(req: &Request) -> Result<Upgrade, GatewayError> {
    use axum::http::header::{CONNECTION, SEC_WEBSOCKET_KEY, UPGRADE};
    let headers = req.headers();
    let mut upgrades = headers.get_all(UPGRADE).iter();
    let websocket = match (upgrades.next(), upgrades.next()) {
        (Some(only), None) => only.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"),
        _ => false,
    };
    if !websocket {
        return Ok(Upgrade::Other);
    }
    let bad = |why: &str| {
        Err(GatewayError::BadRequest(format!(
            "not a valid WebSocket handshake: {why}"
        )))
    };
    if req.method() != axum::http::Method::GET || req.version() != axum::http::Version::HTTP_11 {
        return bad("it must be an HTTP/1.1 GET");
    }
    if !headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| crate::backend_http1::lists_token(v.as_bytes(), "upgrade"))
    {
        return bad("`Connection` must list `upgrade`");
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.as_bytes().trim_ascii(),
        _ => return bad("it needs one `Sec-WebSocket-Key`"),
    };
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    if engine.decode(key).map(|k| k.len()) != Ok(16) {
        return bad("`Sec-WebSocket-Key` must be 16 bytes in base64");
    }
    let mut keyed = key.to_vec();
    keyed.extend_from_slice(WEBSOCKET_GUID.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &keyed);
    Ok(Upgrade::WebSocket(engine.encode(digest.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(lines: &[(&str, &str)]) -> Request {
        let mut req = Request::new(Body::empty());
        for (name, value) in lines {
            req.headers_mut()
                .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        req
    }

    fn caller(application_id: &str) -> Caller {
        Caller {
            application_id: application_id.into(),
            key_type: KeyType::Production,
            claims: Arc::new(AccessClaims {
                iss: "tollgate".into(),
                sub: "alice@acme.com".into(),
                aud: "ck".into(),
                exp: i64::MAX / 2,
                iat: 0,
                nbf: 0,
                jti: "j".into(),
                scope: String::new(),
                client_id: "ck".into(),
                application: tollgate_model::token::ApplicationClaim {
                    id: application_id.into(),
                    name: "App".into(),
                    tier: "Unlimited".into(),
                    owner: "alice@acme.com".into(),
                },
                keytype: KeyType::Production,
                token_type: TokenKind::AccessToken,
            }),
        }
    }

    /// Tenants acme.com and beta.org, each with an API; acme's application is subscribed
    /// to both (a subscription across tenants, which the control plane never makes).
    fn two_tenants() -> RuntimeState {
        use serde_json::json;
        let tenant = |id: &str, domain: &str, api_id: &str| {
            json!({"tenantId": id, "domain": domain, "active": true,
                "apis": [{"apiId": api_id, "revisionId": "r1", "lifeCycleStatus": "PUBLISHED", "isDefaultVersion": false,
                    "api": {"name": "Shop", "context": "/shop", "version": "1.0.0", "operations": [{"target": "/*", "verb": "GET"}]}}]})
        };
        let mut acme = tenant("00000000-0000-7000-8000-0000000000aa", "acme.com", "acme-shop");
        acme["applications"] = json!([{"id": "acme-app", "name": "App", "owner": "alice@acme.com", "tier": "Unlimited",
            "tokenType": "JWT", "status": "APPROVED"}]);
        acme["subscriptions"] = json!([
            {"subscriptionId": "s1", "apiId": "acme-shop", "applicationId": "acme-app", "throttlingPolicy": "Gold", "subscriptionStatus": "UNBLOCKED"},
            {"subscriptionId": "s2", "apiId": "beta-shop", "applicationId": "acme-app", "throttlingPolicy": "Gold", "subscriptionStatus": "UNBLOCKED"}
        ]);
        let beta = tenant("00000000-0000-7000-8000-0000000000bb", "beta.org", "beta-shop");
        let snapshot = json!({"seq": 1, "environment": "Default", "apis": [], "applications": [], "subscriptions": [],
            "keyMappings": [], "revocations": [], "signingKeys": [], "keyManagers": [], "tenants": [acme, beta]});
        RuntimeState::from_snapshot(serde_json::from_value(snapshot).unwrap())
    }

    #[test]
    fn an_application_of_another_tenant_is_refused_as_not_subscribed() {
        let state = two_tenants();
        let (acme_api, beta_api) = (state.api("acme-shop").unwrap(), state.api("beta-shop").unwrap());
        let sub = check_subscription(&state, &caller("acme-app"), acme_api).unwrap();
        assert_eq!(sub.subscription_id, "s1");
        for (app, api) in [("acme-app", beta_api), ("unknown-app", acme_api)] {
            let err = check_subscription(&state, &caller(app), api).unwrap_err();
            assert_eq!(err.code(), 900_908, "{app} → {}", api.deployed.api_id);
            let res = err.into_response();
            assert_eq!(res.status(), 403);
        }
    }

    #[tokio::test]
    async fn a_call_to_an_inactive_tenant_answers_as_the_reference_does() {
        use http_body_util::BodyExt;
        let err = GatewayError::TenantInactive("Trying to access inactive tenant domain : acme.com".into());
        assert_eq!(err.code(), 500);
        let res = err.into_response();
        assert_eq!(res.status(), 500);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], 500);
        assert_eq!(
            body["description"],
            "Trying to access inactive tenant domain : acme.com"
        );
    }

    #[test]
    fn paths_in_normal_form_pass_and_ambiguous_ones_are_named() {
        for path in [
            "/",
            "/pizza/1.0.0/menu",
            "/pizza/1.0.0/menu/",
            "/pizza/1.0.0/a%20b/%C3%A9t%C3%A9/100%25",
            "/.well-known/x",
            "/a/.hidden/..x/x../.../b",
            "*",
        ] {
            assert_eq!(ambiguous_path(path), None, "{path}");
        }
        for (path, why) in [
            ("//pizza/1.0.0", "empty segment"),
            ("/pizza//1.0.0/menu", "empty segment"),
            ("/pizza/1.0.0/menu//", "empty segment"),
            ("/pizza/1.0.0/./menu", "`.` or `..`"),
            ("/pizza/1.0.0/open/..", "`.` or `..`"),
            ("/pizza/1.0.0/open/../admin", "`.` or `..`"),
            ("/pizza/1.0.0/open/..;/admin", "`;`"),
            ("/pizza/1.0.0/menu;jsessionid=1", "`;`"),
            ("/pizza/1.0.0/a\\b", "`\\`"),
            ("/pizza/1.0.0/%2e%2e/admin", "needs no encoding"),
            ("/pizza/1.0.0/.%2E/admin", "needs no encoding"),
            ("/pizza/1.0.0/%61dmin", "needs no encoding"),
            ("/pizza/1.0.0/%7e", "needs no encoding"),
            ("/pizza/1.0.0/..%2Fadmin", "`/`"),
            ("/pizza/1.0.0/a%5cb", "`/`"),
            ("/pizza/1.0.0/a%3Bb", "`/`"),
            ("/pizza/1.0.0/a%00", "control"),
            ("/pizza/1.0.0/a%0A", "control"),
            ("/pizza/1.0.0/a%7F", "control"),
            ("/pizza/1.0.0/a%2", "two hex digits"),
            ("/pizza/1.0.0/a%zz", "two hex digits"),
        ] {
            match ambiguous_path(path) {
                Some(message) => assert!(message.contains(why), "{path}: {message}"),
                None => panic!("{path} passed"),
            }
        }
    }

    #[test]
    fn a_websocket_handshake_is_recognised_and_its_accept_computed() {
        // RFC 6455 §1.3's example.
        let req = handshake(&[
            ("upgrade", "WebSocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(
            upgrade_asked(&req),
            Ok(Upgrade::WebSocket("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()))
        );
    }

    #[test]
    fn other_upgrades_are_other_and_a_broken_websocket_handshake_is_refused() {
        for upgrade in ["h2c", "websocket, h2c", "HTTP/2.0", "TLS/1.2", ""] {
            let req = handshake(&[("upgrade", upgrade), ("connection", "upgrade")]);
            assert_eq!(upgrade_asked(&req), Ok(Upgrade::Other), "{upgrade}");
        }
        let two = handshake(&[("upgrade", "websocket"), ("upgrade", "websocket")]);
        assert_eq!(upgrade_asked(&two), Ok(Upgrade::Other));
        let key = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        for (lines, why) in [
            (vec![("upgrade", "websocket"), key], "Connection"),
            (
                vec![("upgrade", "websocket"), ("connection", "upgrade")],
                "Sec-WebSocket-Key",
            ),
            (
                vec![
                    ("upgrade", "websocket"),
                    ("connection", "upgrade"),
                    ("sec-websocket-key", "c2hvcnQ="),
                ],
                "16 bytes",
            ),
            (
                vec![("upgrade", "websocket"), ("connection", "upgrade"), key, key],
                "one",
            ),
        ] {
            match upgrade_asked(&handshake(&lines)) {
                Err(GatewayError::BadRequest(message)) => assert!(message.contains(why), "{message}"),
                other => panic!("{lines:?}: {other:?}"),
            }
        }
        let mut post = handshake(&[("upgrade", "websocket"), ("connection", "upgrade"), key]);
        *post.method_mut() = axum::http::Method::POST;
        assert!(matches!(upgrade_asked(&post), Err(GatewayError::BadRequest(_))));
    }

    #[test]
    fn a_query_parameter_is_taken_out_and_the_rest_kept() {
        let uri: axum::http::Uri = "/a/b?x=1&apikey=k&y&apikey=again&apikeys=2".parse().unwrap();
        assert_eq!(without_query_param(&uri, "apikey").unwrap(), "/a/b?x=1&y&apikeys=2");
        let uri: axum::http::Uri = "/a?apikey=k".parse().unwrap();
        assert_eq!(without_query_param(&uri, "apikey").unwrap(), "/a");
        let uri: axum::http::Uri = "/a".parse().unwrap();
        assert!(
            without_query_param(&uri, "apikey").is_none(),
            "no query, nothing to rebuild"
        );
        let uri: axum::http::Uri = "/a?apikeys=2".parse().unwrap();
        assert!(
            without_query_param(&uri, "apikey").is_none(),
            "no such parameter, nothing to rebuild"
        );
    }
}
