//! Keep-alive HTTP/1.1 connections to `http://` backends: one idle list per backend
//! address in each worker's [`crate::proxy::Backends`], as nginx keeps its upstream
//! `keepalive` connections per worker. A connection is taken for one call and goes back
//! to its list when the backend's response body has been read to its end, so no call
//! waits behind another call's body, and nothing is spawned per call.

use axum::body::Body;
use bytes::Bytes;
use foldhash::HashMap;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a pooled call failed.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be opened (refused, unreachable, timed out).
    Connect(String),
    /// The connection failed while the request was sent or the response awaited.
    Failed(hyper::Error),
}

/// Idle connections of one backend address.
#[derive(Debug, Default)]
struct HostPool {
    idle: Mutex<Vec<SendRequest<Body>>>,
}

/// Idle keep-alive connections per backend address (`host:port`).
#[derive(Debug)]
pub(crate) struct Http1Pool {
    hosts: Mutex<HashMap<Box<str>, Arc<HostPool>>>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
}

impl Http1Pool {
    /// An empty pool that keeps at most `max_idle_per_host` idle connections per address.
    pub(crate) fn new(max_idle_per_host: usize, connect_timeout: Duration) -> Self {
        Self {
            hosts: Mutex::new(HashMap::default()),
            max_idle_per_host,
            connect_timeout,
        }
    }

    fn host(&self, authority: &str) -> Arc<HostPool> {
        let mut hosts = self.hosts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(host) = hosts.get(authority) {
            return Arc::clone(host);
        }
        let host = Arc::new(HostPool::default());
        hosts.insert(authority.into(), Arc::clone(&host));
        host
    }

    /// Sends `req` (origin-form URI, `Host` set) to `authority` on an idle connection, or
    /// a new one. A request that an idle connection could not take (the backend closed it
    /// meanwhile) is sent again on a new connection; nothing is sent twice.
    pub(crate) async fn send(
        &self,
        authority: &str,
        mut req: hyper::Request<Body>,
    ) -> Result<hyper::Response<PooledBody>, PoolError> {
        let host = self.host(authority);
        loop {
            let idle = host
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let (mut sender, reused) = match idle {
                Some(sender) => (sender, true),
                None => (self.connect(authority).await?, false),
            };
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(PoolError::Connect(format!(
                    "the connection to {authority} closed at once"
                )));
            }
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let (parts, body) = res.into_parts();
                    let body = PooledBody {
                        body,
                        give_back: Some((sender, host, self.max_idle_per_host)),
                    };
                    return Ok(hyper::Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: a stale idle connection; try the next one.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(PoolError::Failed(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self, authority: &str) -> Result<SendRequest<Body>, PoolError> {
        let (host, port) = split_authority(authority);
        let stream = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| PoolError::Connect(format!("no connection within {} ms", self.connect_timeout.as_millis())))?
            .map_err(|e| PoolError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| PoolError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "Backend connection ended with an error.");
            }
        });
        Ok(sender)
    }
}

/// `host` and port of an `host[:port]` authority (port 80 when absent; IPv6 brackets
/// removed).
fn split_authority(authority: &str) -> (&str, u16) {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().unwrap_or(80)),
        _ => (authority, 80),
    };
    (host.trim_start_matches('[').trim_end_matches(']'), port)
}

/// A backend response body that returns its connection to the pool once it has been
/// read to the end (a body dropped half-read closes the connection instead).
pub(crate) struct PooledBody {
    body: Incoming,
    give_back: Option<(SendRequest<Body>, Arc<HostPool>, usize)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((sender, host, max)) = self.give_back.take()
            && !sender.is_closed()
        {
            let mut idle = host.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < max {
                idle.push(sender);
            }
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.give_back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) may never be polled.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A raw HTTP/1.1 backend on a real socket that answers `ok` to every request and
    /// counts its connections; with `close_after_each` it hangs up after each answer
    /// without saying so (as a backend whose keep-alive timeout ran out does).
    async fn backend(close_after_each: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if socket.write_all(answer).await.is_err() || close_after_each {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn call(pool: &Http1Pool, authority: &str) -> String {
        let mut req = hyper::Request::new(Body::empty());
        *req.uri_mut() = "/x".parse().unwrap();
        req.headers_mut()
            .insert(hyper::header::HOST, authority.parse().unwrap());
        let res = pool.send(authority, req).await.expect("answered");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_body_is_read() {
        let (addr, accepted) = backend(false).await;
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        for _ in 0..5 {
            assert_eq!(call(&pool, &addr).await, "ok");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one keep-alive connection served all calls"
        );
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_replaced_without_failing_the_call() {
        let (addr, accepted) = backend(true).await;
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        for _ in 0..3 {
            assert_eq!(call(&pool, &addr).await, "ok");
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        let req = hyper::Request::new(Body::empty());
        assert!(matches!(pool.send(&addr, req).await, Err(PoolError::Connect(_))));
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("127.0.0.1:8080"), ("127.0.0.1", 8080));
        assert_eq!(split_authority("backend.internal"), ("backend.internal", 80));
        assert_eq!(split_authority("[::1]:9000"), ("::1", 9000));
        assert_eq!(split_authority("[::1]"), ("::1", 80));
    }
}
