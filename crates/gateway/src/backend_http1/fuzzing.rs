//! The backend response reader, for the fuzz targets: one call on a connection whose
//! other end the fuzzer plays.

use super::{Connection, RequestHead, Timeouts};
use crate::backend_pool::Home;
use crate::proxy::Forwarded;
use axum::body::Body;
use axum::http::{HeaderMap, Method};
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A backend's answer as the gateway read it.
#[derive(Debug)]
pub struct BackendAnswer {
    /// The final status.
    pub status: u16,
    /// The header lines passed on (hop-by-hop ones left out), each ending in CRLF.
    pub lines: Vec<u8>,
    /// The same lines as `http` headers, as hyper-served connections pass them on.
    pub headers: HeaderMap,
    /// Whether the lines hold a `Date`.
    pub has_date: bool,
    /// The `Content-Length` passed on.
    pub length: Option<u64>,
    /// The body, or why reading it failed.
    pub body: Result<Vec<u8>, String>,
}

/// Sends a bodiless `method` request for `/` on `io` and reads the answer: its head, or
/// why it was refused, and then its whole body.
pub async fn call_backend(io: TcpStream, method: Method) -> Result<BackendAnswer, String> {
    let headers = HeaderMap::new();
    let request = RequestHead {
        method: &method,
        path: ["/", "", "", "", ""],
        host: "backend.test",
        headers: &headers,
        forwarded: Forwarded::default(),
    };
    let (head, body) = Connection::new(io)
        .call(
            request,
            Body::empty(),
            Home::for_tests(),
            Timeouts::from(Instant::now(), Duration::from_secs(30)),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (status, lines, has_date, length) = (head.status.as_u16(), head.lines.clone(), head.has_date, head.length);
    let headers = head.into_parts().headers;
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .map_err(|e| e.to_string());
    Ok(BackendAnswer {
        status,
        lines,
        headers,
        has_date,
        length,
        body,
    })
}
