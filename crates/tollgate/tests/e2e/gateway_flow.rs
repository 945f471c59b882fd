//! API calls through the gateway of an all-in-one node, end to end: a real backend, an API
//! published and deployed through the Publisher API, keys and tokens from the key manager,
//! and the gateway following the outbox in-process. Each refusal is checked with the
//! reference's status and code, and state changes (a blocked subscription, a revoked
//! token) take effect once their event arrives.

use crate::{READY, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(crate) const ADMIN: (&str, &str) = ("admin", "test-admin-password");
pub(crate) const DEV: (&str, &str) = ("gwdev", "gwdev-password");

/// The backend: echoes what it received; `/v1/slow` answers after 3 s.
pub(crate) async fn backend() -> tollgate_testkit::RunningServer {
    use axum::extract::Request;
    use axum::routing::{any, get};
    let echo = |req: Request| async move {
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        (
            [("x-backend", "pets")],
            axum::Json(json!({ "method": req.method().as_str(), "uri": req.uri().to_string(), "headers": headers })),
        )
    };
    tollgate_testkit::serve(
        axum::Router::new()
            .route(
                "/v1/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "late"
                }),
            )
            .route(
                "/v1/open/streamed",
                get(|| async {
                    // No length known up front: sent chunked.
                    let parts = ["first part, ", "second part"].map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p)));
                    axum::body::Body::from_stream(futures_util::stream::iter(parts))
                }),
            )
            .route("/v1/{*rest}", any(echo)),
    )
    .await
}

/// The resources of the test APIs.
pub(crate) fn standard_operations() -> Value {
    json!([
        {"target": "/pets/{petId}", "verb": "GET"},
        {"target": "/pets/{petId}", "verb": "PUT", "scopes": ["pets_write"]},
        {"target": "/pets", "verb": "POST"},
        {"target": "/slow", "verb": "GET"},
        {"target": "/open", "verb": "GET", "authType": "None"}
    ])
}

pub(crate) struct Client {
    pub(crate) mgmt: SocketAddr,
    pub(crate) gw: SocketAddr,
    pub(crate) http: reqwest::Client,
}

impl Client {
    /// A client of the control plane at `mgmt` that calls through the gateway at `gw`.
    pub(crate) fn new(mgmt: SocketAddr, gw: SocketAddr) -> Self {
        Self {
            mgmt,
            gw,
            http: tollgate_testkit::http(),
        }
    }

    pub(crate) async fn rest(
        &self,
        who: (&str, &str),
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("http://{}/api/am{path}", self.mgmt))
            .basic_auth(who.0, Some(who.1));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("http://{}{path}", self.gw));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    /// Calls `path` and asserts the gateway's refusal: its status and error code.
    pub(crate) async fn expect_error(&self, method: Method, path: &str, token: Option<&str>, status: u16, code: i64) {
        let (got, _, body) = self.call(method, path, token).await;
        assert_eq!((got, body["code"].clone()), (status, json!(code)), "{body}");
    }

    /// Calls until `done` holds for the answer (the gateway applies events within a poll).
    pub(crate) async fn eventually(&self, path: &str, token: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, _, body) = self.call(Method::GET, path, Some(token)).await;
            if done(status, &body) || Instant::now() > deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates, publishes and deploys an API (with [`standard_operations`]) to Default;
    /// returns its id.
    pub(crate) async fn deploy_api(&self, name: &str, context: &str, endpoint_config: Value) -> String {
        self.deploy_api_with(name, context, endpoint_config, standard_operations())
            .await
    }

    /// Creates, publishes and deploys an API with these operations; returns its id.
    pub(crate) async fn deploy_api_with(
        &self,
        name: &str,
        context: &str,
        endpoint_config: Value,
        operations: Value,
    ) -> String {
        self.deploy_api_with_fields(name, context, endpoint_config, operations, json!({}))
            .await
    }

    /// The same, with the API's other `fields` (`securityScheme`…) set as given.
    pub(crate) async fn deploy_api_with_fields(
        &self,
        name: &str,
        context: &str,
        endpoint_config: Value,
        operations: Value,
        fields: Value,
    ) -> String {
        let mut body = json!({
            "name": name, "context": context, "version": "1.0.0", "policies": ["Gold"],
            "endpointConfig": endpoint_config,
            "scopes": [{"scope": {"name": "pets_write"}, "shared": true}],
            "corsConfiguration": {"corsConfigurationEnabled": true,
                "accessControlAllowOrigins": ["https://app.example"],
                "accessControlAllowHeaders": ["authorization", "content-type"],
                "accessControlAllowMethods": ["GET", "PUT"]},
            "operations": operations,
        });
        if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
            body.extend(fields.clone());
        }
        let (status, api) = self.rest(ADMIN, Method::POST, "/publisher/v4/apis", Some(body)).await;
        assert_eq!(status, 201, "{api}");
        let id = api["id"].as_str().unwrap().to_string();
        self.publish_and_deploy(&id).await;
        id
    }

    /// Publishes the API and deploys a new revision of it to `Default`.
    pub(crate) async fn publish_and_deploy(&self, id: &str) {
        let (status, body) = self
            .rest(
                ADMIN,
                Method::POST,
                &format!("/publisher/v4/apis/change-lifecycle?apiId={id}&action=Publish"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, rev) = self
            .rest(
                ADMIN,
                Method::POST,
                &format!("/publisher/v4/apis/{id}/revisions"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201, "{rev}");
        let rev_id = rev["id"].as_str().unwrap();
        let (status, body) = self
            .rest(
                ADMIN,
                Method::POST,
                &format!("/publisher/v4/apis/{id}/deploy-revision?revisionId={rev_id}"),
                Some(json!([{"name": "Default", "displayOnDevportal": true}])),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// An application of DEV with production keys; returns (app id, consumer key, secret,
    /// key mapping id).
    pub(crate) async fn app_with_keys(&self, name: &str) -> (String, String, String, String) {
        self.app_with_keys_of_type(name, "JWT").await
    }

    /// The same, with access tokens of `token_type` (`JWT` or `OAUTH`).
    pub(crate) async fn app_with_keys_of_type(&self, name: &str, token_type: &str) -> (String, String, String, String) {
        self.app_with_keys_and_policy(name, token_type, "Unlimited").await
    }

    /// The same, with the application policy `policy`.
    pub(crate) async fn app_with_keys_and_policy(
        &self,
        name: &str,
        token_type: &str,
        policy: &str,
    ) -> (String, String, String, String) {
        self.app_with_grants(name, token_type, policy, &["client_credentials"])
            .await
    }

    /// The same, with keys that allow the grant types `grants`.
    pub(crate) async fn app_with_grants(
        &self,
        name: &str,
        token_type: &str,
        policy: &str,
        grants: &[&str],
    ) -> (String, String, String, String) {
        let (status, app) = self
            .rest(
                DEV,
                Method::POST,
                "/devportal/v3/applications",
                Some(json!({"name": name, "throttlingPolicy": policy, "tokenType": token_type})),
            )
            .await;
        assert_eq!(status, 201, "{app}");
        let app_id = app["applicationId"].as_str().unwrap().to_string();
        let (status, keys) = self
            .rest(
                DEV,
                Method::POST,
                &format!("/devportal/v3/applications/{app_id}/generate-keys"),
                Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": grants})),
            )
            .await;
        assert_eq!(status, 200, "{keys}");
        (
            app_id,
            keys["consumerKey"].as_str().unwrap().to_string(),
            keys["consumerSecret"].as_str().unwrap().to_string(),
            keys["keyMappingId"].as_str().unwrap().to_string(),
        )
    }

    pub(crate) async fn token(&self, ck: &str, cs: &str) -> String {
        let r = self
            .http
            .post(format!("http://{}/oauth2/token", self.mgmt))
            .basic_auth(ck, Some(cs))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// A ready all-in-one node with `env` set (and a fast event poll), the shared scope the
/// test APIs use, and DEV signed up.
pub(crate) async fn node_with(env: &[(&str, String)]) -> (tollgate_testkit::Node, Client) {
    let mut builder = tollgate().env("TOLLGATE_GATEWAY__POLL_INTERVAL", "100ms");
    for (k, v) in env {
        builder = builder.env(k, v.clone());
    }
    ready_node(builder).await
}

/// Spawns an all-in-one node, waits until it is ready, creates the shared scope the test
/// APIs use and signs DEV up; the node and a client of it.
pub(crate) async fn ready_node(builder: tollgate_testkit::NodeBuilder) -> (tollgate_testkit::Node, Client) {
    let mut node = builder.spawn();
    let mgmt = node.wait_ready(READY).await;
    let c = Client::new(mgmt, node.listener("gateway"));
    prepare(&c).await;
    (node, c)
}

/// Creates the shared scope the test APIs use (`pets_write`).
pub(crate) async fn create_test_scope(c: &Client) {
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/publisher/v4/scopes",
            Some(json!({"name": "pets_write", "bindings": ["subscriber"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Creates the shared scope the test APIs use and signs DEV up, through `c`'s control plane.
pub(crate) async fn prepare(c: &Client) {
    let mgmt = c.mgmt;
    create_test_scope(c).await;
    let signup = c
        .http
        .post(format!("http://{mgmt}/api/am/devportal/v3/signup"))
        .json(&json!({"username": DEV.0, "password": DEV.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status().as_u16(), 201);
}

impl Client {
    /// Deploys an API and subscribes a new application of DEV (named like the API) to it
    /// with Gold; returns (API id, application id, access token).
    pub(crate) async fn subscribed(
        &self,
        name: &str,
        context: &str,
        endpoint_url: &str,
        operations: Value,
    ) -> (String, String, String) {
        let api = self
            .deploy_api_with(
                name,
                context,
                json!({"endpoint_type": "http", "production_endpoints": {"url": endpoint_url}}),
                operations,
            )
            .await;
        let (app, _, _, token) = self.subscribe(&api, name).await;
        (api, app, token)
    }

    /// Deploys an API whose `/open/*` resources take no credentials (`operations`),
    /// subscribes DEV to it, and waits until the gateway serves it; the access token.
    pub(crate) async fn serving_open_api(
        &self,
        name: &str,
        context: &str,
        endpoint_url: &str,
        operations: Value,
    ) -> String {
        let (_, _, token) = self.subscribed(name, context, endpoint_url, operations).await;
        let ready = format!("{context}/1.0.0/open/ready");
        let (status, body) = self.eventually(&ready, &token, |s, _| s == 200).await;
        assert_eq!(status, 200, "{body}");
        token
    }

    /// A new application of DEV (named `name`) with keys, subscribed to `api` with Gold;
    /// returns (application id, consumer key, consumer secret, access token).
    pub(crate) async fn subscribe(&self, api: &str, name: &str) -> (String, String, String, String) {
        let (app, ck, cs, _) = self.app_with_keys(name).await;
        self.subscribe_app(&app, api).await;
        let token = self.token(&ck, &cs).await;
        (app, ck, cs, token)
    }

    /// Subscribes DEV's application `app` to `api` with Gold; returns the subscription id.
    pub(crate) async fn subscribe_app(&self, app: &str, api: &str) -> String {
        let (status, sub) = self
            .rest(
                DEV,
                Method::POST,
                "/devportal/v3/subscriptions",
                Some(json!({"applicationId": app, "apiId": api, "throttlingPolicy": "Gold"})),
            )
            .await;
        assert_eq!(status, 201, "{sub}");
        sub["subscriptionId"].as_str().unwrap().to_string()
    }
}

/// Sends `requests` as they are on one raw connection and reads until the gateway closes
/// it; the bytes received.
pub(crate) async fn raw_exchange(gw: SocketAddr, requests: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(gw).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    until_closed(&mut stream).await.0
}

/// Reads until the gateway closes the connection (10 s at most): what came, and how long
/// it took.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    (String::from_utf8(received).unwrap(), started.elapsed())
}

#[tokio::test]
async fn raw_http1_connections_are_answered_in_order_and_handed_to_hyper_when_needed() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let up = format!("http://{}/v1", backend.addr);
    c.serving_open_api(
        "GwRaw",
        "/gwraw",
        &up,
        json!([
            {"target": "/open/*", "verb": "GET", "authType": "None"},
            {"target": "/open/*", "verb": "HEAD", "authType": "None"},
            {"target": "/open/*", "verb": "POST", "authType": "None"}
        ]),
    )
    .await;

    // Pipelined: both answered, in order, and the connection closed as the second asked.
    let text = raw_exchange(
        c.gw,
        "GET /gwraw/1.0.0/open/a HTTP/1.1\r\nHost: gw\r\n\r\n\
         GET /gwraw/1.0.0/open/b HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    let (a, b) = (text.find("/v1/open/a").unwrap(), text.find("/v1/open/b").unwrap());
    assert!(a < b, "answers in the order asked: {text}");
    assert_eq!(text.matches("connection: close\r\n").count(), 1, "{text}");
    assert!(
        text.contains("x-backend: pets\r\n") && text.contains("date: "),
        "{text}"
    );

    // HEAD: the head only; a streamed backend body: chunked to the client.
    let text = raw_exchange(
        c.gw,
        "HEAD /gwraw/1.0.0/open/a HTTP/1.1\r\nHost: gw\r\n\r\n\
         GET /gwraw/1.0.0/open/streamed HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, streamed) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK") && head.contains("content-length: "),
        "{head}"
    );
    assert!(
        streamed.starts_with("HTTP/1.1 200 OK\r\n"),
        "no body after the HEAD answer: {text}"
    );
    assert!(streamed.contains("transfer-encoding: chunked\r\n"), "{streamed}");
    assert!(
        streamed.ends_with("\r\n\r\nc\r\nfirst part, \r\nb\r\nsecond part\r\n0\r\n\r\n"),
        "{streamed}"
    );

    // A request with a body goes to hyper on the same connection, after one served here.
    let text = raw_exchange(
        c.gw,
        "GET /gwraw/1.0.0/open/a HTTP/1.1\r\nHost: gw\r\n\r\n\
         POST /gwraw/1.0.0/open/c HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert!(
        text.contains(r#""method":"POST""#) && text.contains("/v1/open/c"),
        "{text}"
    );

    // HTTP/1.0 and a head that is not HTTP: hyper answers, as before.
    let text = raw_exchange(c.gw, "GET /gwraw/1.0.0/open/a HTTP/1.0\r\nHost: gw\r\n\r\n").await;
    assert!(
        text.starts_with("HTTP/1.0 200 OK\r\n") && text.contains("/v1/open/a"),
        "{text}"
    );
    let text = raw_exchange(c.gw, "NOT HTTP AT ALL\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
}

#[tokio::test]
async fn idle_and_trickling_client_connections_are_closed_after_the_keep_alive_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = backend().await;
    let (_node, c) = node_with(&[("TOLLGATE_GATEWAY__KEEP_ALIVE_TIMEOUT", "400ms".into())]).await;
    let up = format!("http://{}/v1", backend.addr);
    c.serving_open_api(
        "GwIdle",
        "/gwidle",
        &up,
        json!([{"target": "/open/*", "verb": "GET", "authType": "None"}]),
    )
    .await;
    let request = "GET /gwidle/1.0.0/open/a HTTP/1.1\r\nHost: gw\r\n\r\n";

    // Answered, then left idle: closed after the timeout, not before.
    let mut stream = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let (text, waited) = until_closed(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(waited >= Duration::from_millis(400), "closed after {waited:?}");

    // A head that never ends (one byte every 100 ms): closed, unanswered.
    let stream = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let _ = writer
            .write_all(b"GET /gwidle/1.0.0/open/a HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            .await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut received))
        .await
        .expect("the gateway closes a connection whose head never ends")
        .ok();
    assert!(received.is_empty(), "{}", String::from_utf8_lossy(&received));
    assert!(started.elapsed() >= Duration::from_millis(400));
    trickle.abort();

    // Requests every 150 ms for 1.5 s keep one connection open: all ten are answered.
    let mut stream = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    for i in 0..10 {
        let last = if i == 9 { "Connection: close\r\n" } else { "" };
        let sent = stream
            .write_all(format!("GET /gwidle/1.0.0/open/{i} HTTP/1.1\r\nHost: gw\r\n{last}\r\n").as_bytes())
            .await;
        assert!(sent.is_ok(), "request {i} could not be sent");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (text, _) = until_closed(&mut stream).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 10, "{text}");
}

#[tokio::test]
async fn api_keys_are_read_from_the_header_or_the_query_and_never_reach_the_backend() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});
    let keyed = c
        .deploy_api_with_fields(
            "GwKeyed",
            "/gwkeyed",
            endpoint.clone(),
            standard_operations(),
            json!({"securityScheme": ["oauth2", "api_key"]}),
        )
        .await;
    let key_only = c
        .deploy_api_with_fields(
            "GwKeyOnly",
            "/gwkeyonly",
            endpoint.clone(),
            standard_operations(),
            json!({"securityScheme": ["api_key"]}),
        )
        .await;
    let oauth_only = c.deploy_api("GwOAuthOnly", "/gwoauth", endpoint).await;
    let (app, ..) = c.app_with_keys("GwKeyShop").await;
    for api in [&keyed, &key_only, &oauth_only] {
        c.subscribe_app(&app, api).await;
    }
    let (status, key) = c
        .rest(
            DEV,
            Method::POST,
            &format!("/devportal/v3/applications/{app}/api-keys/PRODUCTION/generate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    let key = key["apikey"].as_str().unwrap().to_string();
    let call = |method: Method, path: &str, apikey: &str| {
        c.http
            .request(method, format!("http://{}{path}", c.gw))
            .header("apikey", apikey)
            .header("x-kept", "k")
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };

    // In the `apikey` header (once the gateway has the deployment): the call goes through,
    // the key does not.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        let got = answer(call(Method::GET, "/gwkeyed/1.0.0/pets/7", &key).send().await.unwrap()).await;
        if got.0 == 200 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-kept"], "k", "{body}");
    assert!(
        body["headers"].get("apikey").is_none(),
        "the key reached the backend: {body}"
    );
    // The same on a connection hyper serves (a request with a body).
    let (status, body) = answer(
        call(Method::POST, "/gwkeyed/1.0.0/pets", &key)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["method"]), (200, &json!("POST")), "{body}");
    assert!(
        body["headers"].get("apikey").is_none(),
        "the key reached the backend: {body}"
    );
    // In the query, which the backend gets without it.
    let (status, _, body) = c
        .call(
            Method::GET,
            &format!("/gwkeyed/1.0.0/pets/7?color=red&apikey={key}&size=2"),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["uri"]),
        (200, &json!("/v1/pets/7?color=red&size=2")),
        "{body}"
    );
    let (status, _, body) = c
        .call(Method::GET, &format!("/gwkeyed/1.0.0/pets/7?apikey={key}"), None)
        .await;
    assert_eq!((status, &body["uri"]), (200, &json!("/v1/pets/7")), "{body}");
    // A key that is not one.
    let (status, body) = answer(
        call(Method::GET, "/gwkeyed/1.0.0/pets/7", "not-a-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["code"]), (401, &json!(900901)), "{body}");

    // An API that takes no API keys: the key is no credential, and where no credential is
    // asked for, an `apikey` header is the client's own and goes on.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        let got = answer(call(Method::GET, "/gwoauth/1.0.0/pets/7", &key).send().await.unwrap()).await;
        if got.0 != 404 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((status, &body["code"]), (401, &json!(900902)), "{body}");
    // The answer says why, and how the API would take keys; the same for a key in the query.
    let why = "this API does not accept API keys (its security schemes leave out `api_key`";
    assert!(body["description"].as_str().unwrap().starts_with(why), "{body}");
    let (status, _, body) = c
        .call(Method::GET, &format!("/gwoauth/1.0.0/pets/7?apikey={key}"), None)
        .await;
    assert_eq!((status, &body["code"]), (401, &json!(900902)), "{body}");
    assert!(body["description"].as_str().unwrap().starts_with(why), "{body}");
    // An API that takes only API keys says the same of an access token; with nothing sent,
    // it only says what to send.
    let bearer = |token: Option<&str>| {
        let r = c.http.get(format!("http://{}/gwkeyonly/1.0.0/pets/7", c.gw));
        match token {
            Some(t) => r.header("authorization", format!("Bearer {t}")),
            None => r,
        }
    };
    let (status, body) = answer(bearer(Some("a.b.c")).send().await.unwrap()).await;
    assert_eq!((status, &body["code"]), (401, &json!(900902)), "{body}");
    assert_eq!(
        body["description"],
        "this API does not accept access tokens (its security schemes leave out `oauth2`; a publisher adds it \
         to the API's securityScheme to allow them): send an API key in the `apikey` header",
        "{body}"
    );
    let (status, body) = answer(bearer(None).send().await.unwrap()).await;
    assert_eq!(
        (status, &body["description"]),
        (401, &json!("send an API key in the `apikey` header")),
        "{body}"
    );
    let (status, body) = answer(
        call(Method::GET, "/gwoauth/1.0.0/open", "backend-own")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["apikey"], "backend-own", "{body}");
}

#[tokio::test]
async fn calls_are_authenticated_checked_against_subscriptions_and_proxied() {
    let backend = backend().await;
    // A port with nothing listening: bind, note, drop.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let analytics_dir = tempfile::tempdir().unwrap();
    let analytics_log = analytics_dir.path().join("analytics.jsonl");
    let (_node, c) = node_with(&[
        ("TOLLGATE_GATEWAY__READ_TIMEOUT", "1s".to_string()),
        ("TOLLGATE_GATEWAY__ANALYTICS_LOG", analytics_log.display().to_string()),
    ])
    .await;
    let mgmt = c.mgmt;
    let up = format!("http://{}/v1", backend.addr);
    let down = format!("http://{closed}/v1");
    let pets = c
        .deploy_api(
            "GwPets",
            "/gwpets",
            json!({"endpoint_type": "http", "production_endpoints": {"url": up}}),
        )
        .await;
    let failover = c
        .deploy_api(
            "GwFailover",
            "/gwfailover",
            json!({"endpoint_type": "failover", "production_endpoints": {"url": down}, "production_failovers": [{"url": up}]}),
        )
        .await;
    let dead = c
        .deploy_api(
            "GwDead",
            "/gwdead",
            json!({"endpoint_type": "http", "production_endpoints": {"url": down}}),
        )
        .await;

    let (app, ck, cs, km) = c.app_with_keys("GwShop").await;
    let mut sub_ids = Vec::new();
    for api in [&pets, &failover, &dead] {
        sub_ids.push(c.subscribe_app(&app, api).await);
    }
    let token = c.token(&ck, &cs).await;

    // A valid token: the backend's answer, body and headers, once the gateway has the
    // deployment (it follows the outbox).
    let (status, body) = c
        .eventually("/gwpets/1.0.0/pets/7?color=red", &token, |s, _| s == 200)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "GET");
    assert_eq!(body["uri"], "/v1/pets/7?color=red");
    assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(body["headers"]["x-forwarded-proto"], "http");
    // The Host the client sent (the gateway's address) goes on as X-Forwarded-Host; the
    // backend gets its own.
    let (sent_host, backend_host) = (&body["headers"]["x-forwarded-host"], &body["headers"]["host"]);
    assert!(
        sent_host.as_str().is_some_and(|h| h.starts_with("127.0.0.1:")) && sent_host != backend_host,
        "{body}"
    );
    assert!(
        body["headers"].get("authorization").is_none(),
        "the token is not forwarded: {body}"
    );
    let (status, headers, _) = c.call(Method::GET, "/gwpets/1.0.0/pets/7", Some(&token)).await;
    assert_eq!((status, headers["x-backend"].to_str().unwrap()), (200, "pets"));

    // Refusals, with the reference's codes.
    c.expect_error(Method::GET, "/gwpets/1.0.0/pets/7", None, 401, 900902)
        .await;
    c.expect_error(Method::GET, "/gwpets/1.0.0/pets/7", Some("garbage"), 401, 900901)
        .await;
    c.expect_error(Method::GET, "/gwpets/1.0.0/nothing", Some(&token), 404, 900906)
        .await;
    let (status, headers, _) = c.call(Method::DELETE, "/gwpets/1.0.0/pets/7", Some(&token)).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"].to_str().unwrap(), "GET, PUT");
    let (status, _, body) = c.call(Method::GET, "/gwpets/1.0.0/open", None).await;
    assert_eq!(status, 200, "a resource with authType None needs no token: {body}");

    // Scopes: PUT needs pets_write.
    c.expect_error(Method::PUT, "/gwpets/1.0.0/pets/7", Some(&token), 403, 900910)
        .await;
    let (status, scoped) = c
        .rest(
            DEV,
            Method::POST,
            &format!("/devportal/v3/applications/{app}/oauth-keys/{km}/generate-token"),
            Some(json!({"consumerSecret": cs, "scopes": ["pets_write"]})),
        )
        .await;
    assert_eq!(status, 200, "{scoped}");
    let writer = scoped["accessToken"].as_str().unwrap().to_string();
    let (status, _, body) = c.call(Method::PUT, "/gwpets/1.0.0/pets/7", Some(&writer)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["method"], "PUT");

    // An expired token.
    let (status, short) = c
        .rest(
            DEV,
            Method::POST,
            &format!("/devportal/v3/applications/{app}/oauth-keys/{km}/generate-token"),
            Some(json!({"consumerSecret": cs, "validityPeriod": 1})),
        )
        .await;
    assert_eq!(status, 200, "{short}");
    let short = short["accessToken"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    c.expect_error(Method::GET, "/gwpets/1.0.0/pets/7", Some(&short), 401, 900901)
        .await;

    // CORS: the gateway answers preflights itself and marks actual responses.
    let preflight = |origin: &'static str| {
        c.http
            .request(Method::OPTIONS, format!("http://{}/gwpets/1.0.0/pets/7", c.gw))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let r = preflight("https://app.example").await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, PUT");
    assert_eq!(preflight("https://evil.example").await.unwrap().status().as_u16(), 403);
    let r = c
        .http
        .get(format!("http://{}/gwpets/1.0.0/pets/7", c.gw))
        .bearer_auth(&token)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");

    // An application that is not subscribed.
    let (_, ck2, cs2, _) = c.app_with_keys("GwOther").await;
    let other = c.token(&ck2, &cs2).await;
    let (status, body) = c.eventually("/gwpets/1.0.0/pets/7", &other, |s, _| s != 401).await;
    assert_eq!((status, body["code"].clone()), (403, json!(900908)), "{body}");

    // Opaque tokens (an OAUTH application) are resolved by the key manager, then cached.
    let (opaque_app, ock, ocs, _) = c.app_with_keys_of_type("GwOpaque", "OAUTH").await;
    c.subscribe_app(&opaque_app, &pets).await;
    let opaque = c.token(&ock, &ocs).await;
    assert_ne!(opaque.matches('.').count(), 2, "an opaque token: {opaque}");
    let (status, body) = c.eventually("/gwpets/1.0.0/pets/3", &opaque, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let r = c
        .http
        .post(format!("http://{mgmt}/oauth2/revoke"))
        .basic_auth(&ock, Some(&ocs))
        .form(&[("token", opaque.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = c.eventually("/gwpets/1.0.0/pets/3", &opaque, |s, _| s == 401).await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!(900901)),
        "revoked opaque token: {body}"
    );

    // Backends: failover, refused connection, timeout.
    let (status, body) = c.eventually("/gwfailover/1.0.0/pets/1", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "the failover endpoint answers: {body}");
    let (status, body) = c.eventually("/gwdead/1.0.0/pets/1", &token, |s, _| s != 404).await;
    assert_eq!((status, body["code"].clone()), (502, json!(101503)), "{body}");
    c.expect_error(Method::GET, "/gwpets/1.0.0/slow", Some(&token), 504, 101504)
        .await;

    // A blocked subscription is refused once its event arrives.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            &format!(
                "/publisher/v4/subscriptions/block-subscription?subscriptionId={}&blockState=BLOCKED",
                sub_ids[0]
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.eventually("/gwpets/1.0.0/pets/7", &token, |s, _| s == 403).await;
    assert_eq!((status, body["code"].clone()), (403, json!(900907)), "{body}");

    // A revoked token is refused once the revocation event arrives.
    let (status, body) = c.eventually("/gwfailover/1.0.0/pets/1", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let r = c
        .http
        .post(format!("http://{mgmt}/oauth2/revoke"))
        .basic_auth(&ck, Some(&cs))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = c.eventually("/gwfailover/1.0.0/pets/1", &token, |s, _| s == 401).await;
    assert_eq!((status, body["code"].clone()), (401, json!(900901)), "{body}");

    // Every call left an analytics event in the log (batched, flushed within 100 ms).
    let read_log = || -> Vec<Value> {
        std::fs::read_to_string(&analytics_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut events = read_log();
    for _ in 0..50 {
        if events.iter().any(|e| e["status"] == 401 && e["errorCode"] == 900901) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = read_log();
    }
    let ok = events
        .iter()
        .find(|e| e["api"] == "GwPets" && e["status"] == 200 && e["method"] == "GET")
        .expect("a successful call");
    assert_eq!(ok["resource"], "/pets/{petId}");
    assert_eq!(ok["applicationId"], app.as_str());
    assert_eq!(ok["keyType"], "PRODUCTION");
    assert!(ok["backendLatencyMs"].as_f64().is_some() && ok["gatewayLatencyMs"].as_f64().is_some());
    assert!(
        events.iter().any(|e| e["status"] == 401 && e["errorCode"] == 900902),
        "a refused call is recorded with its code"
    );
    assert!(
        events.iter().any(|e| e["status"] == 404 && e["api"] == ""),
        "unmatched calls too"
    );
}

#[tokio::test]
async fn fifty_megabytes_stream_through_both_ways_with_flat_gateway_memory() {
    use axum::body::Body;
    use futures_util::StreamExt;
    const MB: usize = 1 << 20;
    let backend = tollgate_testkit::serve(
        axum::Router::new()
            .route(
                "/v1/big",
                axum::routing::get(|| async {
                    let chunks = futures_util::stream::iter(
                        (0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; MB]))),
                    );
                    Body::from_stream(chunks)
                }),
            )
            .route(
                "/v1/upload",
                axum::routing::post(|body: Body| async move {
                    let mut stream = body.into_data_stream();
                    let mut total = 0usize;
                    while let Some(chunk) = stream.next().await {
                        total += chunk.unwrap().len();
                    }
                    total.to_string()
                }),
            ),
    )
    .await;
    let (node, c) = node_with(&[]).await;
    let (_, _, token) = c
        .subscribed(
            "GwBig",
            "/gwbig",
            &format!("http://{}/v1", backend.addr),
            json!([{"target": "/big", "verb": "GET"}, {"target": "/upload", "verb": "POST"}]),
        )
        .await;
    // Warm up (the deployment reaches the gateway, pools fill), then note the peak RSS.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c
            .http
            .post(format!("http://{}/gwbig/1.0.0/upload", c.gw))
            .bearer_auth(&token)
            .body("warm")
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 || Instant::now() > deadline {
            assert_eq!(r.text().await.unwrap(), "4");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = node.peak_rss_kb();

    // Download 50 MB, counting as it arrives.
    let r = c
        .http
        .get(format!("http://{}/gwbig/1.0.0/big", c.gw))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut stream = r.bytes_stream();
    let mut received = 0usize;
    while let Some(chunk) = stream.next().await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, 50 * MB);

    // Upload 50 MB, produced lazily.
    let chunks =
        futures_util::stream::iter((0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; MB]))));
    let r = c
        .http
        .post(format!("http://{}/gwbig/1.0.0/upload", c.gw))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), (50 * MB).to_string());

    let growth_mb = (node.peak_rss_kb().saturating_sub(before)) / 1024;
    eprintln!("gateway peak RSS grew by {growth_mb} MB while streaming 2 × 50 MB");
    assert!(
        growth_mb < 25,
        "the gateway buffered a body: peak RSS grew by {growth_mb} MB"
    );

    // A body over the limit is refused before it is read: headers only, then the answer.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    let head = format!(
        "POST /gwbig/1.0.0/upload HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        200 * MB
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = tcp.read(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
}

/// Opens a WebSocket to `url` through the gateway with `token`; the backend's answer to
/// the handshake when it is not a 101.
async fn websocket(
    url: &str,
    token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(ws, response)| {
        assert_eq!(response.status().as_u16(), 101);
        ws
    })
}

/// The status of a refused WebSocket handshake.
fn refused_with(result: Result<impl Sized, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("not an HTTP refusal: {e}"),
        Ok(_) => panic!("the handshake succeeded"),
    }
}

#[tokio::test]
async fn websocket_connections_pass_only_on_websocket_apis_and_only_to_a_websocket_backend() {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use futures_util::{SinkExt, StreamExt};
    let backend = tollgate_testkit::RecordingBackend::serve(axum::Router::new().route(
        "/v1/echo",
        axum::routing::get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(msg)) = socket.recv().await {
                    if let Message::Text(t) = msg {
                        let reply = format!("echo: {}", t.as_str());
                        if socket.send(Message::Text(reply.into())).await.is_err() {
                            break;
                        }
                    }
                }
            })
        }),
    ))
    .await;
    let (_node, c) = node_with(&[]).await;
    let endpoint = |addr: SocketAddr| json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{addr}/v1")}});
    let echo = json!([{"target": "/echo", "verb": "GET"}]);
    let ws_api = c
        .deploy_api_with_fields(
            "GwWs",
            "/gwws",
            endpoint(backend.addr),
            echo.clone(),
            json!({"type": "WS"}),
        )
        .await;
    let (app, _, _, token) = c.subscribe(&ws_api, "GwWs").await;
    let url = format!("ws://{}/gwws/1.0.0/echo", c.gw);

    // Without a token the upgrade is refused like any call.
    assert_eq!(refused_with(websocket(&url, None).await), 401);

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ws = loop {
        match websocket(&url, Some(&token)).await {
            Ok(ws) => break ws,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebSocket through the gateway: {e}"),
        }
    };
    for text in ["hello", "gateway"] {
        ws.send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("echo: {text}"));
    }
    ws.close(None).await.unwrap();

    // A WebSocket API takes WebSocket handshakes only: a plain call is told to upgrade.
    let (status, headers, _) = c.call(Method::GET, "/gwws/1.0.0/echo", Some(&token)).await;
    assert_eq!(status, 426);
    assert_eq!(headers["upgrade"], "websocket");

    // An HTTP API in front of the same backend takes no WebSocket: 400, the backend not asked.
    let http_api = c
        .deploy_api_with("GwWsHttp", "/gwwshttp", endpoint(backend.addr), echo.clone())
        .await;
    c.subscribe_app(&app, &http_api).await;
    // Deployed and subscribed once a plain call reaches the backend.
    let (status, _) = c
        .eventually("/gwwshttp/1.0.0/echo", &token, |s, _| s != 404 && s != 403)
        .await;
    assert!(status != 404 && status != 403, "{status}");
    let before = backend.request_lines();
    let refused = websocket(&format!("ws://{}/gwwshttp/1.0.0/echo", c.gw), Some(&token)).await;
    assert_eq!(refused_with(refused), 400);
    assert_eq!(
        backend.request_lines(),
        before,
        "the handshake did not reach the backend"
    );

    // A backend that answers a handshake with a 101 to another protocol, or with a
    // Sec-WebSocket-Accept that is not the handshake's: 502, no tunnel.
    for (name, answer) in [
        (
            "GwWsH2c",
            &b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"[..],
        ),
        (
            "GwWsAccept",
            &b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
               Sec-WebSocket-Accept: bm90IHRoZSBoYW5kc2hha2Uncw==\r\n\r\n"[..],
        ),
    ] {
        let switcher = tollgate_testkit::RecordingBackend::answering(answer).await;
        let context = format!("/{}", name.to_ascii_lowercase());
        let api = c
            .deploy_api_with_fields(
                name,
                &context,
                endpoint(switcher.addr),
                echo.clone(),
                json!({"type": "WS"}),
            )
            .await;
        c.subscribe_app(&app, &api).await;
        let (status, _) = c
            .eventually(&format!("{context}/1.0.0/echo"), &token, |s, _| s != 404)
            .await;
        assert_eq!(status, 426);
        // Refused with 403 until the subscription's event has arrived too.
        let deadline = Instant::now() + Duration::from_secs(15);
        let refused = loop {
            let refused = refused_with(websocket(&format!("ws://{}{context}/1.0.0/echo", c.gw), Some(&token)).await);
            if refused != 403 || Instant::now() > deadline {
                break refused;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(refused, 502, "{name}");
        assert_eq!(switcher.connections(), 1, "{name}");
    }
}

#[tokio::test]
async fn tokens_of_a_registered_third_party_key_manager_are_accepted() {
    use base64::Engine as _;
    // The provider: a real EC key (made with rcgen, signed with jsonwebtoken: the
    // product's own aws-lc stack), its JWKS served over HTTP.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw();
    assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed P-256 point");
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-key-1", "alg": "ES256", "use": "sig",
        "x": b64(&point[1..33]), "y": b64(&point[33..]),
    }]});
    let signer = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
    let idp = tollgate_testkit::serve(axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let body = jwks.clone();
            async move { axum::Json(body) }
        }),
    ))
    .await;
    let issuer = "https://idp.example.com/realms/shop";
    let sign = |client: &str, scope: &str, ttl: i64| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some("idp-key-1".into());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + ttl.max(0) as u64;
        let payload = json!({"iss": issuer, "sub": "alice@idp", "exp": exp, "azp": client, "scope": scope});
        jsonwebtoken::encode(&header, &payload, &signer).unwrap()
    };

    let backend = backend().await;
    let (_node, c) = node_with(&[("TOLLGATE_KEY_MANAGER__JWKS_REFRESH_INTERVAL", "1s".to_string())]).await;
    let (status, km) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/key-managers",
            Some(json!({"name": "Shop IdP", "type": "Keycloak", "issuer": issuer,
                "certificates": {"type": "JWKS", "value": format!("http://{}/certs", idp.addr)}})),
        )
        .await;
    assert_eq!(status, 201, "{km}");
    let api = c
        .deploy_api(
            "GwIdp",
            "/gwidp",
            json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}}),
        )
        .await;
    let (status, app) = c
        .rest(
            DEV,
            Method::POST,
            "/devportal/v3/applications",
            Some(json!({"name": "IdpShop", "throttlingPolicy": "Unlimited"})),
        )
        .await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["applicationId"].as_str().unwrap().to_string();
    let (status, mapped) = c
        .rest(
            DEV,
            Method::POST,
            &format!("/devportal/v3/applications/{app_id}/map-keys"),
            Some(json!({"consumerKey": "shop-web", "keyManager": "Shop IdP", "keyType": "PRODUCTION"})),
        )
        .await;
    assert_eq!(status, 200, "{mapped}");
    c.subscribe_app(&app_id, &api).await;

    // Once the provider's keys reach the gateway, its tokens work like ours.
    let token = sign("shop-web", "pets_write openid", 300);
    let (status, body) = c.eventually("/gwidp/1.0.0/pets/5", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = c.call(Method::PUT, "/gwidp/1.0.0/pets/5", Some(&token)).await;
    assert_eq!(status, 200, "the scope claim is honoured: {body}");
    c.expect_error(
        Method::PUT,
        "/gwidp/1.0.0/pets/5",
        Some(&sign("shop-web", "openid", 300)),
        403,
        900910,
    )
    .await;
    // A client no application mapped, and an expired token, are refused.
    c.expect_error(
        Method::GET,
        "/gwidp/1.0.0/pets/5",
        Some(&sign("someone-else", "openid", 300)),
        401,
        900901,
    )
    .await;
    c.expect_error(
        Method::GET,
        "/gwidp/1.0.0/pets/5",
        Some(&sign("shop-web", "openid", 0)),
        401,
        900901,
    )
    .await;
}

#[tokio::test]
async fn https_backends_are_verified_and_spoken_to_over_http2() {
    // A TLS backend with its own CA (a self-signed certificate), HTTP/2 by ALPN.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let tls = tollgate_config::TlsConfig {
        cert: cert_path.clone(),
        key: key_path,
    };
    let acceptor = tollgate_http::listener::load_tls("backend", &tls, "backend.tls").unwrap();
    let listener =
        tollgate_http::BoundListener::bind("backend", "127.0.0.1:0".parse().unwrap(), "backend", Some(acceptor))
            .await
            .unwrap();
    let backend_port = listener.local_addr().port();
    let stop = tokio_util::sync::CancellationToken::new();
    let app = axum::Router::new().route(
        "/v1/{*rest}",
        axum::routing::any(|req: axum::extract::Request| async move { format!("{:?}", req.version()) }),
    );
    tokio::spawn(listener.serve(app, stop.clone(), Duration::from_secs(1)));

    let (_node, c) = node_with(&[("TOLLGATE_GATEWAY__BACKEND_CA_FILE", cert_path.display().to_string())]).await;
    let (_, _, token) = c
        .subscribed(
            "GwTls",
            "/gwtls",
            &format!("https://localhost:{backend_port}/v1"),
            standard_operations(),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        let r = c
            .http
            .get(format!("http://{}/gwtls/1.0.0/pets/1", c.gw))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 || Instant::now() > deadline {
            assert_eq!(r.status().as_u16(), 200);
            break r.text().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        answer, "HTTP/2.0",
        "the gateway speaks HTTP/2 to a TLS backend that offers it"
    );
    stop.cancel();
}

#[tokio::test]
async fn the_backend_jwt_says_who_called_and_verifies_with_the_gateway_key() {
    let backend = backend().await;
    let (_node, c) = node_with(&[("TOLLGATE_GATEWAY__BACKEND_JWT", "true".to_string())]).await;
    let (_, app, token) = c
        .subscribed(
            "GwJwt",
            "/gwjwt",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    // A client cannot smuggle its own assertion through.
    let deadline = Instant::now() + Duration::from_secs(15);
    let echoed = loop {
        let r = c
            .http
            .get(format!("http://{}/gwjwt/1.0.0/pets/1", c.gw))
            .bearer_auth(&token)
            .header("x-jwt-assertion", "forged")
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 || Instant::now() > deadline {
            assert_eq!(r.status().as_u16(), 200);
            break r.json::<Value>().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let assertion = echoed["headers"]["x-jwt-assertion"]
        .as_str()
        .expect("a backend JWT")
        .to_string();
    assert_ne!(assertion, "forged");

    // It verifies with the key the gateway publishes.
    let (status, _, jwks) = c.call(Method::GET, "/.well-known/gateway-jwks.json", None).await;
    assert_eq!(status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["subscriber"], DEV.0);
    assert_eq!(claims["application"]["id"], app.as_str());
    assert_eq!(claims["application"]["name"], "GwJwt");
    assert_eq!(claims["tier"], "Gold");
    assert_eq!(claims["keytype"], "PRODUCTION");
    assert_eq!(claims["api"], "GwJwt");
}

#[tokio::test]
async fn deny_policies_refuse_calls_once_their_event_arrives() {
    let backend = backend().await;
    let (_node, c) = node_with(&[]).await;
    let (_, _, token) = c
        .subscribed(
            "GwDeny",
            "/gwdeny",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    let path = "/gwdeny/1.0.0/pets/1";
    let (status, body) = c.eventually(path, &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");

    // An IP deny policy for the caller's address: every call is refused, authenticated or not.
    let (status, ip_rule) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/deny-policies",
            Some(json!({"conditionType": "IP", "conditionValue": {"fixedIp": "127.0.0.1", "invert": false}})),
        )
        .await;
    assert_eq!(status, 201, "{ip_rule}");
    let (status, body) = c.eventually(path, &token, |s, _| s == 403).await;
    assert_eq!((status, body["code"].clone()), (403, json!(900805)), "{body}");
    c.expect_error(Method::GET, "/gwdeny/1.0.0/open", None, 403, 900805)
        .await;

    // Disabled: calls pass again.
    let id = ip_rule["conditionId"].as_str().unwrap();
    let (status, body) = c
        .rest(
            ADMIN,
            Method::PATCH,
            &format!("/admin/v4/throttling/deny-policy/{id}"),
            Some(json!({"conditionStatus": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.eventually(path, &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");

    // An API deny policy refuses that API only until it is deleted.
    let (status, api_rule) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/deny-policies",
            Some(json!({"conditionType": "API", "conditionValue": "/gwdeny/1.0.0"})),
        )
        .await;
    assert_eq!(status, 201, "{api_rule}");
    let (status, body) = c.eventually(path, &token, |s, _| s == 403).await;
    assert_eq!((status, body["code"].clone()), (403, json!(900805)), "{body}");
    let id = api_rule["conditionId"].as_str().unwrap();
    let (status, body) = c
        .rest(
            ADMIN,
            Method::DELETE,
            &format!("/admin/v4/throttling/deny-policy/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.eventually(path, &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
}
