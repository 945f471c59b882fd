//! What an outside attack on the gateway found (issue 25), each checked with exact bytes
//! on a raw socket against a real node and a backend that records what reached it: an
//! upgrade that opens a tunnel past the gateway's checks, paths the backend would read
//! differently from how the gateway routed them, and HTTP/1.1 conformance (`Host`, method
//! case, body and header limits).

use crate::gateway_flow::{Client, node_with, raw_exchange};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_testkit::RecordingBackend;

/// Deploys an API of `operations` on `backend`'s `/v1` with the other `fields` given, and
/// waits until `ready` (a path of one of its resources that takes no credentials) answers
/// anything but 404.
async fn deploy_open(
    c: &Client,
    name: &str,
    context: &str,
    backend: &RecordingBackend,
    operations: Value,
    fields: Value,
    ready: &str,
) {
    let up = format!("http://{}/v1", backend.addr);
    c.deploy_api_with_fields(
        name,
        context,
        json!({"endpoint_type": "http", "production_endpoints": {"url": up}}),
        operations,
        fields,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = c.call(reqwest::Method::GET, ready, None).await;
        if status != 404 {
            return;
        }
        assert!(Instant::now() < deadline, "{ready} was never deployed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status code of the first answer in `text`.
fn status_of(text: &str) -> u16 {
    text.strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// Reads one answer's head from `stream` a byte at a time (nothing after it is consumed).
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n == 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads the body of an answer whose head was read, by its `Content-Length`.
async fn read_body(stream: &mut tokio::net::TcpStream, head: &str) -> String {
    use tokio::io::AsyncReadExt;
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no length: {head}"));
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut body))
        .await
        .expect("the body within 10 s")
        .unwrap();
    String::from_utf8(body).unwrap()
}

/// Over a connection the gateway switched to `h2c`, asks the backend's private path as an
/// HTTP/2 client would: what came back.
async fn private_over_tunnel(stream: tokio::net::TcpStream) -> String {
    let io = hyper_util::rt::TokioIo::new(stream);
    let attempt = async {
        let (mut send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = axum::http::Request::get("http://backend/v1/private/secret")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = send.send_request(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), 1 << 16)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(format!("{status} {}", String::from_utf8_lossy(&body)))
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => format!("no HTTP/2 answer: {e}"),
        Err(_) => "no HTTP/2 answer within 10 s".into(),
    }
}

/// A backend that speaks `h2c` when asked to (RFC 7540 §3.2, as some servers still do):
/// `GET /v1/open/…` answers `public`, or, with `Upgrade: h2c`, 101 and then HTTP/2 on the
/// same connection, where `/v1/private/…` answers `private-data`.
async fn h2c_backend() -> RecordingBackend {
    use axum::routing::get;
    let inner = axum::Router::new()
        .route("/v1/private/{*rest}", get(|| async { "private-data" }))
        .route("/v1/open/{*rest}", get(|| async { "public" }));
    let tunnel = inner.clone();
    let open = move |mut req: axum::extract::Request| {
        let tunnel = tunnel.clone();
        async move {
            let h2c = req
                .headers()
                .get("upgrade")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"h2c"));
            if h2c && let Some(on) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() {
                tokio::spawn(async move {
                    if let Ok(upgraded) = on.await {
                        let service = hyper_util::service::TowerToHyperService::new(tunnel);
                        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                            .serve_connection(upgraded, service)
                            .await;
                    }
                });
                return axum::http::Response::builder()
                    .status(101)
                    .header("connection", "Upgrade")
                    .header("upgrade", "h2c")
                    .body(axum::body::Body::empty())
                    .unwrap();
            }
            axum::http::Response::new(axum::body::Body::from("public"))
        }
    };
    RecordingBackend::serve(
        axum::Router::new()
            .route("/v1/open/{*rest}", get(open))
            .route("/v1/private/{*rest}", get(|| async { "private-data" })),
    )
    .await
}

#[tokio::test]
async fn an_h2c_upgrade_on_a_public_resource_opens_no_tunnel_to_the_backend() {
    use tokio::io::AsyncWriteExt;
    let backend = h2c_backend().await;
    // A backend that switches protocols whatever it is asked.
    let switcher =
        RecordingBackend::answering(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            .await;
    let (_node, c) = node_with(&[]).await;
    let operations = json!([
        {"target": "/open/*", "verb": "GET", "authType": "None"},
        {"target": "/private/*", "verb": "GET"}
    ]);
    deploy_open(
        &c,
        "GwH2c",
        "/gwh2c",
        &backend,
        operations.clone(),
        json!({}),
        "/gwh2c/1.0.0/open/ready",
    )
    .await;
    // Without a token the private resource is refused, as it should be.
    let (status, _, _) = c.call(reqwest::Method::GET, "/gwh2c/1.0.0/private/secret", None).await;
    assert_eq!(status, 401);

    // One anonymous call to the public resource, asking to upgrade to h2c (h2csmuggler's
    // request): the gateway must not switch, and must not pass the upgrade on.
    let upgrade = "GET /gwh2c/1.0.0/open/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                   Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let mut stream = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    if status_of(&head) == 101 {
        let tunnelled = private_over_tunnel(stream).await;
        panic!("the gateway switched to h2c for an anonymous call; over the tunnel, /private answered: {tunnelled}");
    }
    assert_eq!(status_of(&head), 200, "served as a plain request: {head}");
    assert_eq!(read_body(&mut stream, &head).await, "public");
    let received = backend.received().to_ascii_lowercase();
    assert!(
        !received.contains("upgrade:") && !received.contains("http2-settings:"),
        "the upgrade was passed on: {received}"
    );
    assert_eq!(
        backend.request_lines(),
        ["GET /v1/open/ready HTTP/1.1", "GET /v1/open/x HTTP/1.1"]
    );

    // The connection stays HTTP/1.1: the next request on it is an ordinary call.
    stream
        .write_all(b"GET /gwh2c/1.0.0/private/secret HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert_eq!(status_of(&head), 401, "{head}");

    // A backend that answers 101 to a request that asked for no upgrade gets no tunnel
    // either: 502, whether or not the client asked (its request was passed on without).
    deploy_open(
        &c,
        "GwH2cSwitch",
        "/gwh2cswitch",
        &switcher,
        operations,
        json!({}),
        "/gwh2cswitch/1.0.0/open/ready",
    )
    .await;
    let text = raw_exchange(
        c.gw,
        "GET /gwh2cswitch/1.0.0/open/plain HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&text), 502, "{text}");
    let mut stream = tokio::net::TcpStream::connect(c.gw).await.unwrap();
    stream
        .write_all(upgrade.replace("/gwh2c/", "/gwh2cswitch/").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    if status_of(&head) == 101 {
        let tunnelled = private_over_tunnel(stream).await;
        panic!("the gateway passed a backend's 101 on: {head}; over the tunnel: {tunnelled}");
    }
    assert_eq!(status_of(&head), 502, "{head}");
    let received = switcher.received().to_ascii_lowercase();
    assert!(received.contains("get /v1/open/x http/1.1"), "{received}");
    assert!(
        !received.contains("upgrade:"),
        "the client's upgrade was not passed on: {received}"
    );
}
/// Sends `target` as a GET with exact bytes; the status, and the request lines the backend
/// read because of it.
async fn get_raw(c: &Client, backend: &RecordingBackend, target: &str) -> (u16, Vec<String>) {
    let before = backend.request_lines().len();
    let text = raw_exchange(
        c.gw,
        &format!("GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
    )
    .await;
    let lines = backend.request_lines();
    (status_of(&text), lines[before..].to_vec())
}

#[tokio::test]
async fn the_backend_gets_the_path_that_was_routed_or_the_call_is_refused() {
    let backend = RecordingBackend::serve(axum::Router::new().fallback(|| async { "ok" })).await;
    let (_node, c) = node_with(&[]).await;
    // Public `/open/*` and `/{item}`, private `/private/*`; the default version, so that
    // the bare context routes too.
    deploy_open(
        &c,
        "GwPath",
        "/gwpath",
        &backend,
        json!([
            {"target": "/open/*", "verb": "GET", "authType": "None"},
            {"target": "/{item}", "verb": "GET", "authType": "None"},
            {"target": "/private/*", "verb": "GET"}
        ]),
        json!({"isDefaultVersion": true}),
        "/gwpath/1.0.0/open/ready",
    )
    .await;

    // Every case is tried and every mismatch reported together.
    let mut wrong = Vec::new();
    // Forwarded exactly as routed: the path below the context, the query as it came.
    for (target, forwarded) in [
        (
            "/gwpath/1.0.0/open/a/b?q=1&r=%2F..",
            "GET /v1/open/a/b?q=1&r=%2F.. HTTP/1.1",
        ),
        ("/gwpath/1.0.0/open/a/", "GET /v1/open/a/ HTTP/1.1"),
        ("/gwpath/1.0.0/open/a%20b", "GET /v1/open/a%20b HTTP/1.1"),
        ("/gwpath/open/a", "GET /v1/open/a HTTP/1.1"),
        ("/gwpath/item", "GET /v1/item HTTP/1.1"),
        // The default version's `/{item}` with item `1.0.0private`: the versioned context
        // is not a prefix of it on a segment boundary, and is not cut off.
        ("/gwpath/1.0.0private", "GET /v1/1.0.0private HTTP/1.1"),
    ] {
        let got = get_raw(&c, &backend, target).await;
        if got != (200, vec![forwarded.to_string()]) {
            wrong.push(format!("{target} → {got:?}, not 200 and {forwarded}"));
        }
    }

    // Paths a backend may read differently from how they would route: 400, and nothing
    // reaches the backend.
    for target in [
        "/gwpath//1.0.0/open/a",
        "/gwpath/1.0.0//open/a",
        "//gwpath/1.0.0/open/a",
        "/gwpath/1.0.0/open//a",
        "/gwpath/1.0.0/open/../private/a",
        "/gwpath/1.0.0/open/./a",
        "/gwpath/1.0.0/open/..",
        "/gwpath/1.0.0/open/%2e%2e/private/a",
        "/gwpath/1.0.0/open/.%2E/private/a",
        "/gwpath/1.0.0/open/..%2Fprivate%2Fa",
        "/gwpath/1.0.0/open/..;/private/a",
        "/gwpath/1.0.0/open/a;x=1",
        "/gwpath/1.0.0/open/%5C..%5Cprivate",
        "/gwpath/1.0.0/%70rivate/a",
        "/gwpath/1.0.0/open/a%2",
        "/gwpath/1.0.0/open/a%00",
    ] {
        let got = get_raw(&c, &backend, target).await;
        if got != (400, Vec::new()) {
            wrong.push(format!("{target} → {got:?}, not 400 with nothing forwarded"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let lines = backend.request_lines();
    assert!(
        !lines.iter().any(|l| l.contains("private/") || l.contains("/private ")),
        "nothing private reached the backend: {lines:?}"
    );
}
/// Waits (5 s at most) until the backend has read a request line holding `needle`, on
/// connections that are all closed; whether each such connection is closed.
async fn connections_with(backend: &RecordingBackend, needle: &str) -> Vec<bool> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<bool> = backend
            .connection_log()
            .into_iter()
            .filter(|(text, _)| text.contains(needle))
            .map(|(_, closed)| closed)
            .collect();
        if (!found.is_empty() && found.iter().all(|closed| *closed)) || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests sent with exact bytes to the `/gwconf/1.0.0` API (backend path `/v1/…`), each
/// to a path of its own, and what went wrong with them.
struct Conformance<'a> {
    c: &'a Client,
    backend: &'a RecordingBackend,
    /// Backend paths that must never be read.
    never: Vec<String>,
    wrong: Vec<String>,
}

impl Conformance<'_> {
    /// Sends `request` (its target `/gwconf/1.0.0/…`) and expects `status` with `needle` in
    /// the answer; the backend reads the request (waited for) or never does.
    async fn expect(&mut self, request: &str, status: u16, needle: &str, reaches_backend: bool) {
        let target = request.split(' ').nth(1).expect("a request line");
        let forwarded = format!("{} ", target.replacen("/gwconf/1.0.0", "/v1", 1));
        let text = raw_exchange(self.c.gw, request).await;
        let got = status_of(&text);
        let mut reached = self.reached(&forwarded);
        if reaches_backend {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reached && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                reached = self.reached(&forwarded);
            }
        } else {
            self.never.push(forwarded);
        }
        if got != status || !text.contains(needle) || reached != reaches_backend {
            self.wrong.push(format!(
                "{request:.120?} → {got} (backend asked: {reached}), not {status} with {needle:?} \
                 (backend asked: {reaches_backend}): {text:.200?}"
            ));
        }
    }

    fn reached(&self, forwarded: &str) -> bool {
        self.backend.request_lines().iter().any(|l| l.contains(forwarded))
    }
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_before_the_backend_is_asked() {
    let backend = RecordingBackend::serve(
        axum::Router::new().fallback(|body: axum::body::Bytes| async move { format!("read {} bytes", body.len()) }),
    )
    .await;
    let (_node, c) = node_with(&[("TOLLGATE_GATEWAY__MAX_REQUEST_BODY_BYTES", "1024".into())]).await;
    deploy_open(
        &c,
        "GwConf",
        "/gwconf",
        &backend,
        json!([
            {"target": "/open/*", "verb": "GET", "authType": "None"},
            {"target": "/open/*", "verb": "POST", "authType": "None"}
        ]),
        json!({}),
        "/gwconf/1.0.0/open/ready",
    )
    .await;
    // Every case is tried and every mismatch reported together.
    let mut check = Conformance {
        c: &c,
        backend: &backend,
        never: Vec::new(),
        wrong: Vec::new(),
    };

    // Host (RFC 9112 §3.2): one in an HTTP/1.1 request, never two, a valid authority.
    for (i, (head, status)) in [
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: gw\r\nHost: gw\r\nConnection: close\r\n\r\n", 400),
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\nhost: other\r\nConnection: close\r\n\r\n", 400),
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: gw/evil?x\r\nConnection: close\r\n\r\n", 400),
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: gw:8280\r\nConnection: close\r\n\r\n", 200),
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: [::1]:8280\r\nConnection: close\r\n\r\n", 200),
        // HTTP/1.0 needs none; a request hyper serves (it has a body) is checked the same.
        ("GET /gwconf/1.0.0/open/host{} HTTP/1.0\r\n\r\n", 200),
        ("POST /gwconf/1.0.0/open/host{} HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 400),
        ("POST /gwconf/1.0.0/open/host{} HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 400),
    ]
    .into_iter()
    .enumerate()
    {
        check.expect(&head.replace("{}", &i.to_string()), status, "", status == 200).await;
    }

    // Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET.
    let head = "get /gwconf/1.0.0/open/lower HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    check.expect(head, 405, "", false).await;

    // A declared length over gateway.max_request_body_bytes: 413 at once, naming the key.
    let head = "POST /gwconf/1.0.0/open/big HTTP/1.1\r\nHost: gw\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n";
    check.expect(head, 413, "gateway.max_request_body_bytes", false).await;

    // A chunked body that grows past it: 413 (not a backend error), and the backend
    // connection that had the start of it is closed, not kept for another call.
    let chunk = format!("200\r\n{}\r\n", "x".repeat(512));
    let request = format!(
        "POST /gwconf/1.0.0/open/grows HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(4)
    );
    check
        .expect(&request, 413, "gateway.max_request_body_bytes", true)
        .await;
    let closed = connections_with(&backend, "/v1/open/grows ").await;
    if closed != [true] {
        check.wrong.push(format!(
            "the backend connection of the body past the limit is kept: {closed:?}"
        ));
    }

    // An invalid chunk size: 400, and the backend never hears of the request.
    let request = "POST /gwconf/1.0.0/open/badchunk HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
                   Connection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    check.expect(request, 400, "", false).await;
    // One that comes after a good chunk: 400 too, the backend connection discarded.
    let request = "POST /gwconf/1.0.0/open/badlater HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
                   Connection: close\r\n\r\n5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n";
    check.expect(request, 400, "", true).await;
    let closed = connections_with(&backend, "/v1/open/badlater ").await;
    if closed != [true] {
        check.wrong.push(format!(
            "the backend connection of the malformed body is kept: {closed:?}"
        ));
    }

    // A transfer coding other than chunked alone is not decoded here: 501 (RFC 9112 §6.1),
    // not gzip bytes passed on without their coding; chunked twice is malformed.
    let request = "POST /gwconf/1.0.0/open/gzipped HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\
                   Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    check.expect(request, 501, "gzip", false).await;
    let request = "POST /gwconf/1.0.0/open/twice HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
                   Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    check.expect(request, 400, "", false).await;

    // A body within the limit still goes through.
    let request = format!(
        "POST /gwconf/1.0.0/open/fits HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(2)
    );
    check.expect(&request, 200, "read 1024 bytes", true).await;

    // The request head's limit is gateway.max_request_header_bytes (64 KiB by default),
    // whether the gateway's own loop or hyper reads the head: 431 past it.
    for (size, status) in [(60 * 1024, 200), (70 * 1024, 431)] {
        let request = format!(
            "GET /gwconf/1.0.0/open/head{size} HTTP/1.1\r\nHost: gw\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(size)
        );
        check.expect(&request, status, "", status == 200).await;
    }

    // Nothing refused reached the backend later either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = backend.request_lines();
    for path in &check.never {
        if lines.iter().any(|l| l.contains(path.as_str())) {
            check.wrong.push(format!("{path}reached the backend"));
        }
    }
    assert!(check.wrong.is_empty(), "{}", check.wrong.join("\n"));
}
