//! Keep-alive HTTP/1.1 connections to `http://` backends: one idle list per backend
//! address in each worker's [`crate::proxy::Backends`], as nginx keeps its upstream
//! `keepalive` connections per worker. A connection is taken for one call and goes back
//! to its list when the backend's response body has been read to its end, so no call
//! waits behind another call's body, and nothing is spawned per call. The calls
//! themselves are [`crate::backend_http1`]'s.

use crate::backend_http1::{CallError, Connection, PassedHead, RequestHead, ResponseBody, Timeouts};
use axum::body::Body;
use foldhash::HashMap;
use hyper::body::Body as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Why a pooled call failed.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be opened (refused, unreachable, timed out).
    Connect(String),
    /// The call's deadline passed before the backend answered (or while connecting).
    TimedOut,
    /// The connection failed while the request was sent or the response awaited.
    Failed(CallError),
}

/// Idle connections of one backend address.
#[derive(Debug, Default)]
struct HostPool {
    // Boxed on purpose: a connection moves between this list, its call and its answer's
    // body as a pointer, not as its whole state.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<Connection>>>,
}

/// Where a connection returns after its call: its address's idle list, unless that
/// list is full.
#[derive(Debug)]
pub(crate) struct Home {
    host: Arc<HostPool>,
    max_idle: usize,
}

impl Home {
    /// Keeps `conn` for the next call to its address.
    pub(crate) fn give_back(&self, conn: Box<Connection>) {
        let mut idle = self.host.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Home {
    /// A home of its own, for calls made without a pool.
    pub(crate) fn for_tests() -> Self {
        Self {
            host: Arc::default(),
            max_idle: 1,
        }
    }
}

/// Idle keep-alive connections per backend address (`host:port`).
#[derive(Debug)]
pub(crate) struct Http1Pool {
    hosts: Mutex<HashMap<Box<str>, Arc<HostPool>>>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
}

/// One request to send over the pool.
pub(crate) struct Outgoing<'a> {
    /// The backend's `host[:port]`.
    pub(crate) authority: &'a str,
    /// The request head to send.
    pub(crate) head: RequestHead<'a>,
    pub(crate) body: Body,
    /// When the response head must have arrived, and how long the body may pause.
    pub(crate) timeouts: Timeouts,
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

    /// Sends a request on an idle connection, or a new one. An idle connection the
    /// backend has closed is skipped; a request that a reused connection took but never
    /// answered (the backend closed it meanwhile) is sent again on a new connection
    /// when it has no body and an idempotent method, as nginx does.
    pub(crate) async fn send(&self, out: Outgoing<'_>) -> Result<(PassedHead, ResponseBody), PoolError> {
        let host = self.host(out.authority);
        let resendable = out.body.is_end_stream() && crate::proxy::is_idempotent(out.head.method);
        let mut body = Some(out.body);
        loop {
            let idle = loop {
                let popped = host
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                match popped {
                    Some(conn) if !conn.is_reusable() => continue,
                    other => break other,
                }
            };
            let (conn, reused) = match idle {
                Some(conn) => (conn, true),
                None => (self.connect(out.authority, out.timeouts.head_by).await?, false),
            };
            let home = Home {
                host: Arc::clone(&host),
                max_idle: self.max_idle_per_host,
            };
            let request_body = if resendable {
                Body::empty()
            } else {
                body.take().unwrap_or_default()
            };
            match conn.call(out.head, request_body, home, out.timeouts).await {
                Ok(answer) => return Ok(answer),
                Err(CallError::ClosedBeforeAnswer(_)) if reused && resendable => continue,
                Err(CallError::TimedOut) => return Err(PoolError::TimedOut),
                Err(e) => return Err(PoolError::Failed(e)),
            }
        }
    }

    /// Opens a connection within the connect timeout, and before the call's `deadline`
    /// (whichever comes first says what the failure was).
    async fn connect(&self, authority: &str, deadline: Instant) -> Result<Box<Connection>, PoolError> {
        let (host, port) = split_authority(authority);
        let connect_deadline = Instant::now() + self.connect_timeout;
        let stream = tokio::time::timeout_at(
            connect_deadline.min(deadline),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| {
            if connect_deadline <= deadline {
                PoolError::Connect(format!("no connection within {} ms", self.connect_timeout.as_millis()))
            } else {
                PoolError::TimedOut
            }
        })?
        .map_err(|e| PoolError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection::new(stream))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Forwarded;
    use axum::http::{HeaderMap, Method};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The answer of [`backend`].
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    /// A raw HTTP/1.1 backend on a real socket that gives `answer` (an `ok` body) to every
    /// request but those for `/slow`, which it never answers, and counts its connections;
    /// with `close_after_each` it hangs up after each answer without saying so (as a
    /// backend whose keep-alive timeout ran out does).
    async fn backend(answer: &'static [u8], close_after_each: bool) -> (String, Arc<AtomicUsize>) {
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
                            let slow = buf.starts_with(b"GET /slow ");
                            buf.drain(..end + 4);
                            if slow {
                                continue;
                            }
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

    /// A `GET` of `path` that must be answered within `timeout`: the body.
    async fn send(pool: &Http1Pool, authority: &str, path: &str, timeout: Duration) -> Result<String, PoolError> {
        let out = Outgoing {
            authority,
            head: RequestHead {
                method: &Method::GET,
                path: [path, "", "", "", ""],
                forwarded: Forwarded::default(),
                host: authority,
                headers: &HeaderMap::new(),
            },
            body: Body::empty(),
            timeouts: Timeouts::from(Instant::now(), timeout),
        };
        let (_, body) = pool.send(out).await?;
        let body = body.collect().await.unwrap().to_bytes();
        Ok(String::from_utf8(body.to_vec()).unwrap())
    }

    async fn call(pool: &Http1Pool, authority: &str) -> String {
        send(pool, authority, "/x", Duration::from_secs(10))
            .await
            .expect("answered")
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_body_is_read() {
        let (addr, accepted) = backend(OK, false).await;
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
    async fn each_call_on_a_kept_connection_has_its_own_deadline() {
        let (addr, accepted) = backend(OK, false).await;
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        assert_eq!(
            send(&pool, &addr, "/a", Duration::from_millis(100)).await.unwrap(),
            "ok"
        );
        // That call's deadline passes while its connection is idle in the pool...
        tokio::time::sleep(Duration::from_millis(300)).await;
        // ...and does not cut short the next call on it.
        assert_eq!(send(&pool, &addr, "/b", Duration::from_secs(10)).await.unwrap(), "ok");
        // A deadline earlier than the last call's is kept to.
        let started = Instant::now();
        let slow = send(&pool, &addr, "/slow", Duration::from_millis(200)).await;
        let waited = started.elapsed();
        assert!(matches!(slow, Err(PoolError::TimedOut)), "{slow:?}");
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
            "timed out after {waited:?}"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "all three calls went over one connection"
        );
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_replaced_without_failing_the_call() {
        let (addr, accepted) = backend(OK, true).await;
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        for _ in 0..3 {
            assert_eq!(call(&pool, &addr).await, "ok");
            tokio::task::yield_now().await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_the_backend_says_it_closes_is_not_reused() {
        let answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 2\r\n\r\nok";
        let (addr, accepted) = backend(answer, false).await;
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        for _ in 0..3 {
            assert_eq!(call(&pool, &addr).await, "ok");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "a new connection after each `Connection: close`"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = Http1Pool::new(8, Duration::from_secs(1));
        let out = Outgoing {
            authority: &addr,
            head: RequestHead {
                method: &Method::GET,
                path: ["", "", "", "", ""],
                forwarded: Forwarded::default(),
                host: &addr,
                headers: &HeaderMap::new(),
            },
            body: Body::empty(),
            timeouts: Timeouts::from(Instant::now(), Duration::from_secs(10)),
        };
        assert!(matches!(pool.send(out).await, Err(PoolError::Connect(_))));
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("127.0.0.1:8080"), ("127.0.0.1", 8080));
        assert_eq!(split_authority("backend.internal"), ("backend.internal", 80));
        assert_eq!(split_authority("[::1]:9000"), ("::1", 9000));
        assert_eq!(split_authority("[::1]"), ("::1", 80));
    }
}
