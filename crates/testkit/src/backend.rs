//! Backends for gateway tests that record what reached them on the wire: every connection
//! accepted and closed, and every byte read on each, so that a test can tell whether a
//! request reached the backend at all, and with exactly which request line.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What a [`RecordingBackend`] saw.
#[derive(Default)]
struct Record {
    accepted: AtomicUsize,
    /// Each connection, in the order they were accepted.
    connections: Mutex<Vec<Connection>>,
    /// The HTTP/1 request lines read, on whichever connection, in the order they came.
    request_lines: Mutex<Vec<String>>,
}

/// One connection a [`RecordingBackend`] accepted.
#[derive(Default)]
struct Connection {
    /// Every byte read on it.
    received: Vec<u8>,
    /// Whether it has been closed (by either side).
    closed: bool,
    /// How much of `received` has been looked at for request lines.
    scanned: usize,
}

impl Connection {
    /// The request lines among the whole lines read since the last call.
    fn new_request_lines(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        while let Some(end) = self.received[self.scanned..].windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&self.received[self.scanned..self.scanned + end]).into_owned();
            self.scanned += end + 2;
            if is_request_line(&line) {
                found.push(line);
            }
        }
        found
    }
}

/// Whether `line` looks like an HTTP/1 request line (`GET /x HTTP/1.1`).
fn is_request_line(line: &str) -> bool {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic())
        && !target.is_empty()
        && version.starts_with("HTTP/1.")
}

/// A backend on `127.0.0.1:0` that records every connection and every byte it reads;
/// stops when dropped.
pub struct RecordingBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    record: Arc<Record>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RecordingBackend {
    /// Serves `router` with hyper (HTTP/1.1 with upgrades, or HTTP/2 by its preface); a
    /// handler may take the connection over by removing the request's
    /// `hyper::upgrade::OnUpgrade` extension and answering 101.
    pub async fn serve(router: axum::Router) -> Self {
        Self::start(move |io| {
            let router = router.clone();
            async move {
                let service = hyper_util::service::TowerToHyperService::new(router);
                let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service)
                    .await;
            }
        })
        .await
    }

    /// Answers the first request head of each connection with `answer`, exactly as given,
    /// then reads (and records) whatever else comes until the peer closes: a backend that
    /// misbehaves on purpose (a 101 nobody asked for, say).
    pub async fn answering(answer: &'static [u8]) -> Self {
        Self::start(move |mut io| async move {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            if io.write_all(answer).await.is_err() {
                return;
            }
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await
    }

    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(Recorded) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let record = Arc::new(Record::default());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&record);
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let index = {
                    let mut connections = shared.connections.lock().expect("record");
                    connections.push(Connection::default());
                    connections.len() - 1
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let io = Recorded {
                    io: stream,
                    record: Arc::clone(&shared),
                    index,
                };
                let done = serve(io);
                let closed = Arc::clone(&shared);
                tokio::spawn(async move {
                    done.await;
                    if let Some(c) = closed.connections.lock().expect("record").get_mut(index) {
                        c.closed = true;
                    }
                });
            }
        });
        Self {
            addr,
            record,
            _stop: stop,
        }
    }

    /// How many connections it accepted.
    pub fn connections(&self) -> usize {
        self.record.accepted.load(Ordering::SeqCst)
    }

    /// Each connection in the order accepted: what was read on it (as text, invalid UTF-8
    /// replaced), and whether it is closed.
    pub fn connection_log(&self) -> Vec<(String, bool)> {
        let connections = self.record.connections.lock().expect("record");
        connections
            .iter()
            .map(|c| (String::from_utf8_lossy(&c.received).into_owned(), c.closed))
            .collect()
    }

    /// Everything it read, connection after connection (as text, invalid UTF-8 replaced).
    pub fn received(&self) -> String {
        self.connection_log().into_iter().map(|(text, _)| text).collect()
    }

    /// The HTTP/1 request lines (`GET /x HTTP/1.1`) it read, on any connection, in the
    /// order they came.
    pub fn request_lines(&self) -> Vec<String> {
        self.record.request_lines.lock().expect("record").clone()
    }
}

/// A backend connection that copies every byte read into the backend's record.
pub struct Recorded {
    io: TcpStream,
    record: Arc<Record>,
    index: usize,
}

impl AsyncRead for Recorded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = &buf.filled()[before..];
            let lines = match self.record.connections.lock().expect("record").get_mut(self.index) {
                Some(c) => {
                    c.received.extend_from_slice(read);
                    c.new_request_lines()
                }
                None => Vec::new(),
            };
            self.record.request_lines.lock().expect("record").extend(lines);
        }
        polled
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
