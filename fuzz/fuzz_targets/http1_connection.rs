//! A whole client connection to the gateway (`tollgate_gateway::connection_handler`, the
//! plain-HTTP workers' handler): any bytes, in reads the fuzzer cuts, through the own
//! HTTP/1.1 loop, the hand-over to hyper, routing, authentication (a JWT-protected
//! resource), and proxying to a real backend on a loopback socket that reads the whole
//! request body (chunked or by length) and echoes it.
//!
//! The connection always ends (no hang: libFuzzer's `-timeout`), nothing panics, and what
//! the client receives starts with a well-formed HTTP/1.x response (or, after HTTP/2's
//! preface, an HTTP/2 SETTINGS frame).
#![no_main]

use arbitrary::Arbitrary;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::cell::OnceCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_gateway::follow::LiveState;
use tollgate_gateway::runtime::{ApiMetrics, RuntimeState};
use tollgate_gateway::{Gateway, TokenVerifier};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    cuts: Vec<u16>,
    bytes: &'a [u8],
}

/// A backend that echoes each request's body.
async fn backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(body)))
                });
                let io = tollgate_fuzz::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    addr
}

fn gateway(backend: SocketAddr) -> Arc<Gateway> {
    let operation = |target: &str, verb: &str, auth: &str| json!({"target": target, "verb": verb, "authType": auth});
    let mut operations = Vec::new();
    for verb in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        operations.push(operation("/open/*", verb, "None"));
        operations.push(operation("/secure/*", verb, "Application & Application User"));
    }
    let snapshot = json!({
        "seq": 1, "environment": "Default",
        "apis": [{
            "apiId": "api1", "revisionId": "r1", "lifeCycleStatus": "PUBLISHED", "isDefaultVersion": true,
            "api": {
                "name": "Fuzz", "context": "/fuzz", "version": "1.0.0", "operations": operations,
                "corsConfiguration": {"corsConfigurationEnabled": true, "accessControlAllowOrigins": ["*"]},
                "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": format!("http://{backend}")}},
            },
        }],
        "applications": [], "subscriptions": [], "keyMappings": [], "revocations": [],
        "signingKeys": [], "keyManagers": [],
    });
    let snapshot = serde_json::from_value(snapshot).unwrap_or_else(|e| panic!("the snapshot: {e}"));
    let live = Arc::new(LiveState::new());
    live.store(RuntimeState::from_snapshot(snapshot));
    let tls = tollgate_gateway::proxy::backend_tls(None).unwrap_or_else(|e| panic!("tls: {e}"));
    Arc::new(Gateway {
        environment: "Default".into(),
        live,
        verifier: TokenVerifier::new(),
        backends: tollgate_gateway::proxy::Backends::new(Duration::from_secs(5), Duration::from_secs(5), tls),
        max_request_body_bytes: 64 * 1024,
        max_request_header_bytes: 64 * 1024,
        keep_alive_timeout: Duration::from_secs(5),
        unmatched: ApiMetrics::new("none"),
        introspector: None,
        analytics: None,
        backend_jwt: None,
        throttler: None,
        traces: None,
    })
}

thread_local! {
    static GATEWAY: OnceCell<Arc<Gateway>> = const { OnceCell::new() };
}

async fn connection(pieces: &[&[u8]]) -> Vec<u8> {
    let gateway = match GATEWAY.with(|g| g.get().cloned()) {
        Some(g) => g,
        None => {
            let g = gateway(backend().await);
            GATEWAY.with(|cell| cell.get_or_init(|| g).clone())
        }
    };
    let handler = tollgate_gateway::connection_handler(gateway);
    let (near, mut far) = tollgate_fuzz::socket_pair();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = handler(near, SocketAddr::from(([127, 0, 0, 1], 40000)), shutdown.clone());
    let client = async {
        let mut received = Vec::new();
        for piece in pieces {
            if far.write_all(piece).await.is_err() {
                break;
            }
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
        // Read what comes back until the gateway closes, or nothing happens for an hour
        // of paused time; then close the client's side and read the rest.
        let mut chunk = [0u8; 8192];
        loop {
            tokio::select! {
                read = far.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return received,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                },
                () = tokio::time::sleep(Duration::from_secs(3600)) => break,
            }
        }
        let _ = far.shutdown().await;
        let _ = far.read_to_end(&mut received).await;
        received
    };
    let ((), received) = tokio::join!(served, client);
    received
}

fuzz_target!(|input: Input<'_>| {
    let pieces = tollgate_fuzz::pieces(input.bytes, &input.cuts);
    let received = tollgate_fuzz::block_on(connection(&pieces));
    if received.is_empty() {
        return;
    }
    if input.bytes.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") {
        // HTTP/2 with prior knowledge: hyper answers in frames, the first its SETTINGS.
        assert_eq!(received.get(3), Some(&4), "HTTP/2 starts with a SETTINGS frame");
        return;
    }
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(&received) {
        Ok(httparse::Status::Complete(_)) => {
            // HTTP/1.1, or HTTP/1.0 to an HTTP/1.0 request (hyper's answer).
            assert!(matches!(response.version, Some(0 | 1)), "answered as HTTP/1.x");
            let code = response.code.unwrap_or_default();
            assert!((100..600).contains(&code), "status {code}");
        }
        other => panic!(
            "the first answer is not an HTTP response: {other:?} {:?}",
            String::from_utf8_lossy(&received[..received.len().min(200)])
        ),
    }
});
