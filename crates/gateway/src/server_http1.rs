//! The gateway's own HTTP/1.1 server for the plain-HTTP workers (decision 007): a loop
//! per connection that parses request heads with `httparse`, calls the request path
//! directly (no boxed future per request, no dispatcher between the socket and
//! [`handle_call`]) and writes the response head and a body that is already at hand in
//! one system call.
//!
//! It serves what most API calls are: HTTP/1.1 requests without a body, with one valid
//! `Host`, kept alive or closed by `Connection: close`. The first request it does not
//! serve (one with a body, an upgrade, `Expect`, HTTP/1.0 or HTTP/2's preface, a missing,
//! repeated or invalid `Host`, a head it cannot parse or longer than
//! `gateway.max_request_header_bytes`) hands the connection, with every byte read so far,
//! to hyper for the rest of its life, so that hyper's answers to those cases (and the
//! request path's refusals of what hyper accepts) are given in one place.

use crate::answer::Answer;
use crate::backend_http1::PassedHead;
use crate::request::{Gateway, LentHeaders, Peer, handle_call};
use crate::service::GatewayService;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Request, StatusCode, Uri, Version};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body as HttpBody;
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice, Write as _};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;

/// Header lines a request served here may have; one with more goes to hyper.
const MAX_HEADERS: usize = 32;
/// The longest request head read before the connection goes to hyper, which answers 431
/// past `gateway.max_request_header_bytes` (when that is less, the loop stops there).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;
/// Body bytes gathered behind the head before they are written; a larger chunk is
/// written from where it is instead of copied.
const GATHER_BYTES: usize = 16 * 1024;
/// A body's last piece of at least this many bytes is written from where it is, beside
/// what the buffer holds, in one vectored write (as nginx writes a head and a body),
/// instead of being copied behind the head.
const IN_PLACE_BYTES: usize = 512;

/// The plain-HTTP workers' connection handler: serves each accepted connection with
/// [`serve_connection`].
pub fn connection_handler(
    gateway: Arc<Gateway>,
) -> impl Fn(TcpStream, SocketAddr, CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    move |stream, remote, shutdown| Box::pin(serve_connection(Arc::clone(&gateway), stream, remote, shutdown))
}

/// Serves the requests of one client connection until it closes, the client asks to
/// close, or `shutdown` is cancelled (a request in flight is answered first).
pub async fn serve_connection(
    gateway: Arc<Gateway>,
    mut stream: TcpStream,
    remote: SocketAddr,
    shutdown: CancellationToken,
) {
    let peer = Arc::new(Peer::new(Some(remote)));
    let mut read = BytesMut::with_capacity(READ_CHUNK);
    let mut write = Vec::with_capacity(READ_CHUNK);
    let mut idle = Idle::new(gateway.keep_alive_timeout);
    // One request per connection, its method, target and headers set by each parse: it
    // is lent down the request path, never moved (decision 007).
    let mut request = Request::new(Body::empty());
    let waiter = std::pin::pin!(shutdown.cancelled());
    let mut shut = Shutdown {
        token: &shutdown,
        waiter,
        registered: false,
    };
    let max_head = gateway.max_request_header_bytes.min(MAX_HEAD_BYTES);
    loop {
        let head = loop {
            if !read.is_empty() {
                match parse_request(&read, &mut request) {
                    Parsed::Request(head) if head.length <= max_head => break head,
                    Parsed::Partial if read.len() <= max_head => {}
                    Parsed::Request(_) | Parsed::Partial | Parsed::NotServed => {
                        let max_header_bytes = gateway.max_request_header_bytes;
                        let service = GatewayService::new(gateway, peer);
                        let io = Prefixed {
                            prefix: read.freeze(),
                            io: stream,
                        };
                        tollgate_listener::serve_hyper(io, service, &shutdown, max_header_bytes).await;
                        return;
                    }
                }
            }
            read.reserve(READ_CHUNK);
            let received = tokio::select! {
                biased;
                () = shut.wait() => return,
                received = stream.read_buf(&mut read) => received,
                () = idle.wait() => {
                    if idle.ticked() {
                        tracing::debug!("Closing a client connection that sat idle past gateway.keep_alive_timeout.");
                        return;
                    }
                    continue;
                }
            };
            match received {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "Client connection failed.");
                    return;
                }
            }
        };
        let ParsedRequest {
            close,
            length,
            authorization,
            host,
            apikey,
        } = head;
        let head_only = request.method() == Method::HEAD;
        // The head stays in the read buffer until the call is answered: the headers kept
        // out of the map are lent from there.
        let lent = LentHeaders {
            authorization: authorization.map(|r| &read[r]),
            host: host.map(|r| &read[r]),
            apikey: apikey.map(|r| &read[r]),
        };
        let response = handle_call(&gateway, &peer, &mut request, lent).await;
        read.advance(length);
        let keep_alive = match write_response(&mut stream, &mut write, response, head_only, close).await {
            Ok(keep_alive) => keep_alive,
            Err(e) => {
                tracing::debug!(error = %e, "Writing a response failed.");
                false
            }
        };
        if !keep_alive || shutdown.is_cancelled() {
            return;
        }
        idle.served();
    }
}

/// Closes a client connection that waits too long for its next request. Its timer ticks
/// every quarter of the keep-alive timeout, and the connection is closed at the fifth
/// tick without a request served in between: after between one and 1.25 timeouts of
/// idleness (a tick that came while a call was in flight counts at once, which makes the
/// lower bound exact). A request only clears the count: no timer is set per request, and
/// the timer is polled once after it is set (which leaves the task's waker with it) and
/// then only once it has fired.
struct Idle {
    timer: Pin<Box<tokio::time::Sleep>>,
    quarter: Duration,
    ticks: u8,
    /// Set since the timer was last polled.
    unpolled: bool,
}

/// The idle timer, as the connection loop waits on it: the timer itself is polled only
/// when it has not been since it was set, or once it has fired.
struct IdleWait<'a>(&'a mut Idle);

impl Future for IdleWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let idle = &mut *self.0;
        if !idle.unpolled && !idle.timer.is_elapsed() {
            // The timer has held this task's waker since it was last polled, and wakes
            // the task when it fires: nothing to do until then.
            return Poll::Pending;
        }
        idle.unpolled = false;
        // Outside the task's cooperative budget: a poll the budget cut short would leave
        // no waker with the timer.
        let mut timer = tokio::task::unconstrained(idle.timer.as_mut());
        Pin::new(&mut timer).poll(cx)
    }
}

impl Idle {
    /// Ticks after `timeout` / 4, and again every `timeout` / 4.
    fn new(timeout: Duration) -> Self {
        let quarter = timeout / 4;
        Self {
            timer: Box::pin(tokio::time::sleep(quarter)),
            quarter,
            ticks: 0,
            unpolled: true,
        }
    }

    /// The timer, to wait on.
    fn wait(&mut self) -> IdleWait<'_> {
        IdleWait(self)
    }

    /// Counts a tick and sets the next: whether the connection has now been idle long
    /// enough to close.
    fn ticked(&mut self) -> bool {
        self.ticks += 1;
        let next = tokio::time::Instant::now() + self.quarter;
        self.timer.as_mut().reset(next);
        self.unpolled = true;
        self.ticks >= 5
    }

    /// A request was served: the idle time starts again.
    fn served(&mut self) {
        self.ticks = 0;
    }
}

/// The shutdown signal, as the connection loop waits on it: the token's waiter is polled
/// once per connection, which leaves the task's waker with it, and after that a wait only
/// reads whether the token was cancelled (the waiter wakes the task when it is). Polled at
/// every wait, the waiter took the token's lock each time, and a new one per wait was
/// registered and removed again per request (≈ 380 instructions a call either way).
struct Shutdown<'t, 'w> {
    token: &'t CancellationToken,
    waiter: Pin<&'w mut tokio_util::sync::WaitForCancellationFuture<'t>>,
    registered: bool,
}

impl Shutdown<'_, '_> {
    /// Resolves once the token is cancelled.
    fn wait(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.token.is_cancelled() {
                return Poll::Ready(());
            }
            if self.registered {
                return Poll::Pending;
            }
            self.registered = true;
            // Outside the task's cooperative budget: a poll the budget cut short would
            // leave no waker with the waiter.
            let mut waiter = tokio::task::unconstrained(self.waiter.as_mut());
            Pin::new(&mut waiter).poll(cx)
        })
    }
}

/// What the start of the read buffer holds.
enum Parsed {
    /// A request served here.
    Request(ParsedRequest),
    /// Not yet a whole head.
    Partial,
    /// Something for hyper (nothing consumed).
    NotServed,
}

/// A request head parsed from the start of the read buffer (into the connection's
/// request: its body empty, its header map every header but those lent).
struct ParsedRequest {
    /// Whether the client asked to close the connection after it.
    close: bool,
    /// The head's length in the read buffer.
    length: usize,
    /// Where the (first) `Authorization` value is in the read buffer.
    authorization: Option<std::ops::Range<usize>>,
    /// Where the (first) `Host` value is in the read buffer.
    host: Option<std::ops::Range<usize>>,
    /// Where the (first) `apikey` value is in the read buffer.
    apikey: Option<std::ops::Range<usize>>,
}

/// Parses the request head at the start of `read` (consuming nothing) into `request`,
/// which is left as it was unless a request to serve here is parsed.
fn parse_request(read: &[u8], request: &mut Request<Body>) -> Parsed {
    let mut lines = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let length =
        match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut parsed, read, &mut lines) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(_) => return Parsed::NotServed,
        };
    if parsed.version != Some(1) {
        return Parsed::NotServed;
    }
    let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
        return Parsed::NotServed;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::NotServed;
    };
    if !path.starts_with('/') {
        return Parsed::NotServed;
    }
    let Ok(uri) = Uri::from_maybe_shared(Bytes::copy_from_slice(path.as_bytes())) else {
        return Parsed::NotServed;
    };
    let mut close = false;
    let (mut authorization, mut host, mut apikey) = (None, None, None);
    // Where a value (a slice of `read`) is in `read`.
    let place = |value: &[u8]| {
        let start = value.as_ptr() as usize - read.as_ptr() as usize;
        start..start + value.len()
    };
    let mut headers = HeaderMap::new();
    for line in parsed.headers.iter() {
        // The lent headers are known by their names alone (httparse has checked that
        // every name is a token); no `HeaderName` is made of them.
        let raw_name = line.name.as_bytes();
        let lent = if raw_name.eq_ignore_ascii_case(b"authorization") {
            Some(&mut authorization)
        } else if raw_name.eq_ignore_ascii_case(b"host") {
            if host.is_some() {
                // Two are refused (RFC 9112 §3.2): hyper and the request path answer.
                return Parsed::NotServed;
            }
            Some(&mut host)
        } else if raw_name.eq_ignore_ascii_case(crate::request::APIKEY_NAME.as_bytes()) {
            Some(&mut apikey)
        } else {
            None
        };
        if let Some(lent) = lent {
            lent.get_or_insert_with(|| place(line.value));
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(raw_name) else {
            return Parsed::NotServed;
        };
        if name == header::CONTENT_LENGTH {
            if line.value.is_empty() || line.value.iter().any(|b| *b != b'0') {
                return Parsed::NotServed;
            }
            // Repeated equal lines count as one (RFC 9110 §8.6) and are passed on as one;
            // unequal ones are left to hyper's reading.
            if let Some(first) = headers.get(header::CONTENT_LENGTH) {
                if first.as_bytes() != line.value {
                    return Parsed::NotServed;
                }
                continue;
            }
        } else if name == header::TRANSFER_ENCODING || name == header::UPGRADE || name == header::EXPECT {
            return Parsed::NotServed;
        } else if name == header::CONNECTION {
            close |= crate::backend_http1::lists_token(line.value, "close");
        }
        let Ok(value) = HeaderValue::from_bytes(line.value) else {
            return Parsed::NotServed;
        };
        headers.append(name, value);
    }
    if !host
        .as_ref()
        .is_some_and(|h| crate::request::valid_host(&read[h.clone()]))
    {
        return Parsed::NotServed;
    }
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Request(ParsedRequest {
        close,
        length,
        authorization,
        host,
        apikey,
    })
}

/// How the response body is delimited on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body is sent (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`: this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Writes `answer` (the head and the body as it comes); whether the connection may
/// serve another request. `close` says the client asked to close it.
async fn write_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    answer: Answer,
    head_only: bool,
    close: bool,
) -> io::Result<bool> {
    buf.clear();
    match answer {
        Answer::Built(response) => {
            let (parts, body) = (*response).into_parts();
            let (framing, close) = built_head(buf, &parts, &body, head_only, close);
            write_body(stream, buf, body, framing, close).await
        }
        Answer::Passed(head, body) => {
            let framing = passed_head(buf, &head, head_only, close);
            write_body(stream, buf, body, framing, close).await
        }
    }
}

/// The status line, `Connection: close` when closing, the blank line: around the
/// header lines written between the two.
fn status_line(buf: &mut Vec<u8>, status: StatusCode) {
    // Most answers are 200s: their line is written whole.
    if status == StatusCode::OK {
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    buf.extend_from_slice(b"HTTP/1.1 ");
    buf.extend_from_slice(status.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// Whether a response with this status (to a `HEAD` when `head_only`) has no body.
fn has_no_body(status: StatusCode, head_only: bool) -> bool {
    head_only || status.is_informational() || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

fn date_line(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"date: ");
    with_http_date(|date| buf.extend_from_slice(date));
    buf.extend_from_slice(b"\r\n");
}

/// Writes the head of a response built in `http`'s types into `buf`: how its body is
/// framed, and whether the connection closes after it.
fn built_head(
    buf: &mut Vec<u8>,
    parts: &axum::http::response::Parts,
    body: &Body,
    head_only: bool,
    mut close: bool,
) -> (Framing, bool) {
    let status = parts.status;
    status_line(buf, status);
    let mut declared: Option<u64> = None;
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if name == header::TRANSFER_ENCODING {
            // The body is framed here; a backend's coding was undone when it was read.
            continue;
        }
        if name == header::CONTENT_LENGTH {
            match std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) if declared.is_none_or(|d| d == n) => declared = Some(n),
                // A length the head cannot keep is left out; the body is chunked instead.
                _ => continue,
            }
        } else if name == header::CONNECTION {
            close |= crate::backend_http1::lists_token(value.as_bytes(), "close");
        } else if name == header::DATE {
            has_date = true;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    if !has_date {
        date_line(buf);
    }
    let framing = if has_no_body(status, head_only) {
        Framing::None
    } else if let Some(n) = declared {
        Framing::Length(n)
    } else if let Some(n) = body.size_hint().exact() {
        // Writing into a Vec cannot fail.
        let _ = write!(buf, "content-length: {n}\r\n");
        Framing::Length(n)
    } else {
        buf.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    if close && !parts.headers.contains_key(header::CONNECTION) {
        buf.extend_from_slice(b"connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    (framing, close)
}

/// Writes the head of a backend's answer whose header lines were kept as read (their
/// `Content-Length`, if any, among them; their hop-by-hop headers already left out)
/// into `buf`: how its body is framed.
fn passed_head(buf: &mut Vec<u8>, head: &PassedHead, head_only: bool, close: bool) -> Framing {
    status_line(buf, head.status);
    buf.extend_from_slice(&head.lines);
    if !head.has_date {
        date_line(buf);
    }
    let framing = if has_no_body(head.status, head_only) {
        Framing::None
    } else if let Some(n) = head.length {
        Framing::Length(n)
    } else {
        buf.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    if close {
        buf.extend_from_slice(b"connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    framing
}

/// Writes the head in `buf` and `body` after it, framed as `framing` says; whether the
/// connection may serve another request.
async fn write_body<B>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut body: B,
    framing: Framing,
    mut close: bool,
) -> io::Result<bool>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if framing == Framing::None {
        stream.write_all(buf).await?;
        return Ok(!close);
    }
    let mut overflow = false;
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        // Take what the body has at hand without waiting; write only before waiting.
        let frame = match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                flush(stream, buf).await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            Some(Err(e)) => {
                // The client cannot be told mid-body: what was sent goes out, then the
                // connection closes so that the response is seen as cut short.
                tracing::debug!(error = %e, "A response body failed; closing the connection.");
                flush(stream, buf).await?;
                return Ok(false);
            }
        };
        if data.is_empty() {
            continue;
        }
        let data = match framing {
            Framing::Length(_) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                left -= take as u64;
                if take < data.len() {
                    // More than the declared length: the rest is dropped and the
                    // connection closed, as the client cannot frame it.
                    overflow = true;
                }
                data.slice(..take)
            }
            _ => {
                let _ = write!(buf, "{:x}\r\n", data.len());
                data
            }
        };
        let last_of_length = matches!(framing, Framing::Length(_)) && left == 0;
        if buf.len() + data.len() <= GATHER_BYTES && !(last_of_length && data.len() >= IN_PLACE_BYTES) {
            buf.extend_from_slice(&data);
        } else {
            write_two(stream, buf, &data).await?;
        }
        if framing == Framing::Chunked {
            buf.extend_from_slice(b"\r\n");
        }
        if overflow {
            close = true;
            break;
        }
    }
    match framing {
        Framing::Chunked => buf.extend_from_slice(b"0\r\n\r\n"),
        // Shorter than declared: the client would wait for the rest on this connection.
        _ if left > 0 => close = true,
        _ => {}
    }
    flush(stream, buf).await?;
    Ok(!close)
}

/// Writes and empties `buf`.
async fn flush(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    if !buf.is_empty() {
        stream.write_all(buf).await?;
        buf.clear();
    }
    Ok(())
}

/// Writes `buf` and then `data`, in as few system calls as the socket takes, and
/// empties `buf`.
async fn write_two(stream: &mut TcpStream, buf: &mut Vec<u8>, data: &Bytes) -> io::Result<()> {
    let (mut first, mut second) = (0, 0);
    while first < buf.len() {
        let slices = [IoSlice::new(&buf[first..]), IoSlice::new(&data[second..])];
        let n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let in_first = n.min(buf.len() - first);
        first += in_first;
        second += n - in_first;
    }
    buf.clear();
    stream.write_all(&data[second..]).await
}

thread_local! {
    /// The `Date` header's value, rendered once per second per worker thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn with_http_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == cached.1.len() {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            }
        }
        f(&cached.1);
    });
}

/// A client connection whose first bytes were already read by [`serve_connection`]:
/// hyper reads those first, then the socket.
struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Response;

    fn parse(text: &str) -> Parsed {
        parse_request(text.as_bytes(), &mut Request::new(Body::empty()))
    }

    #[test]
    fn a_bodiless_request_is_served_here_with_its_authorization_lent_from_the_buffer() {
        let read = "GET /a/1/b?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\nX-Other: o\r\n\
                    authorization: second\r\nApiKey: k\r\n\r\nGET /next";
        let mut request = Request::new(Body::empty());
        let Parsed::Request(head) = parse_request(read.as_bytes(), &mut request) else {
            panic!("not served");
        };
        assert!(!head.close);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/a/1/b");
        assert_eq!(request.uri().query(), Some("x=1"));
        assert_eq!(request.headers()["x-other"], "o");
        assert_eq!(
            request.headers().len(),
            1,
            "Authorization, Host and apikey are kept out of the map: {:?}",
            request.headers()
        );
        assert_eq!(head.authorization.map(|r| &read[r]), Some("Bearer t"), "the first one");
        assert_eq!(head.host.map(|r| &read[r]), Some("h"));
        assert_eq!(head.apikey.map(|r| &read[r]), Some("k"));
        assert_eq!(&read[head.length..], "GET /next", "the next request follows the head");
    }

    #[test]
    fn each_parse_replaces_the_connections_request_and_one_not_served_leaves_it() {
        let mut request = Request::new(Body::empty());
        assert!(matches!(
            parse_request(b"PUT /first HTTP/1.1\r\nHost: h\r\nX-First: 1\r\n\r\n", &mut request),
            Parsed::Request(_)
        ));
        assert!(matches!(
            parse_request(
                b"GET /second?q HTTP/1.1\r\nHost: h\r\nX-Second: 2\r\n\r\n",
                &mut request
            ),
            Parsed::Request(_)
        ));
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/second?q");
        assert_eq!(
            request.headers().len(),
            1,
            "nothing of the first request is left: {request:?}"
        );
        assert_eq!(request.headers()["x-second"], "2");
        for text in [
            "POST /third HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /fourth HTTP/1.1\r\nX",
        ] {
            assert!(!matches!(
                parse_request(text.as_bytes(), &mut request),
                Parsed::Request(_)
            ));
            assert_eq!(request.uri(), "/second?q", "{text:?} left the request as it was");
            assert_eq!(request.headers().len(), 1);
        }
    }

    #[test]
    fn repeated_empty_lengths_are_passed_on_as_one() {
        let mut request = Request::new(Body::empty());
        let text =
            b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\ncontent-length: 0\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_request(text, &mut request), Parsed::Request(_)));
        let lengths: Vec<_> = request.headers().get_all(header::CONTENT_LENGTH).iter().collect();
        assert_eq!(lengths, ["0"], "{request:?}");
    }

    #[test]
    fn connection_close_is_noticed() {
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close\r\n\r\n"),
            Parsed::Request(ParsedRequest { close: true, .. })
        ));
        assert!(matches!(
            parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
            Parsed::Request(ParsedRequest { close: false, .. })
        ));
    }

    #[test]
    fn what_hyper_serves_is_left_unconsumed() {
        for text in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET http://example.com/ HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert!(matches!(parse(text), Parsed::NotServed), "{text:?}");
        }
        // What the request path refuses (RFC 9112 §3.2) is refused in one place, there.
        for text in [
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhOST: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        ] {
            assert!(matches!(parse(text), Parsed::NotServed), "{text:?}");
        }
        for host in ["example.com", "example.com:8280", "[::1]:8280", "10.0.0.1", ""] {
            let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert!(matches!(parse(&text), Parsed::Request(_)), "{text:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(matches!(
            parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Parsed::NotServed
        ));
    }

    /// Waits as the connection loop does, for a request that comes `after` (never, when
    /// `None`): how long it waited, and whether the connection was closed first.
    async fn wait_for_request(idle: &mut Idle, after: Option<Duration>) -> (Duration, bool) {
        let started = tokio::time::Instant::now();
        let request = tokio::time::sleep(after.unwrap_or(Duration::MAX / 4));
        tokio::pin!(request);
        loop {
            tokio::select! {
                biased;
                () = &mut request => return (started.elapsed(), false),
                () = idle.wait() => {
                    if idle.ticked() {
                        return (started.elapsed(), true);
                    }
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_one_to_one_and_a_quarter_timeouts() {
        let timeout = Duration::from_secs(60);
        let within = |waited: Duration| waited >= timeout && waited <= timeout * 5 / 4;
        let mut idle = Idle::new(timeout);
        let (waited, closed) = wait_for_request(&mut idle, None).await;
        assert!(closed && within(waited), "{waited:?}");

        // Requests now and then keep it open (each answered after a 20 s call, during
        // which the timer ticks unwatched); the idle time counts from the last answer.
        let mut idle = Idle::new(timeout);
        for _ in 0..10 {
            let (_, closed) = wait_for_request(&mut idle, Some(Duration::from_secs(50))).await;
            assert!(!closed, "closed while requests came every 50 s");
            tokio::time::sleep(Duration::from_secs(20)).await;
            idle.served();
        }
        let (waited, closed) = wait_for_request(&mut idle, None).await;
        assert!(closed && within(waited), "{waited:?}");

        // The same when the timer is set and waiting as the last request is answered.
        let mut idle = Idle::new(timeout);
        let (_, closed) = wait_for_request(&mut idle, Some(Duration::from_secs(5))).await;
        assert!(!closed);
        idle.served();
        let (waited, closed) = wait_for_request(&mut idle, None).await;
        assert!(closed && within(waited), "{waited:?}");
    }

    #[test]
    fn a_partial_head_waits_for_more() {
        assert!(matches!(parse("GET / HTTP/1.1\r\nHost: h\r\n"), Parsed::Partial));
    }

    /// A body of unknown length that yields `chunks`, then fails if `fail` is set.
    struct Chunks {
        chunks: std::collections::VecDeque<&'static str>,
        fail: bool,
    }

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
            Poll::Ready(match self.chunks.pop_front() {
                Some(c) => Some(Ok(hyper::body::Frame::data(Bytes::from_static(c.as_bytes())))),
                None if self.fail => Some(Err(io::Error::other("backend went away"))),
                None => None,
            })
        }
    }

    fn chunks(chunks: &[&'static str], fail: bool) -> Body {
        Body::new(Chunks {
            chunks: chunks.iter().copied().collect(),
            fail,
        })
    }

    /// Writes `response` over a real socket; whether the connection stays open, and what
    /// the client received.
    async fn written(answer: impl Into<Answer>, head_only: bool, close: bool) -> (bool, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let keep_alive = write_response(&mut server, &mut Vec::new(), answer.into(), head_only, close)
            .await
            .expect("written");
        drop(server);
        let mut received = String::new();
        client.read_to_string(&mut received).await.expect("read");
        (keep_alive, received)
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_is_chunked() {
        let (keep_alive, text) = written(Response::new(chunks(&["hello ", "world"], false)), false, false).await;
        assert!(keep_alive);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("\r\ntransfer-encoding: chunked\r\n"), "{text}");
        assert!(text.contains("\r\ndate: "), "{text}");
        assert!(
            text.ends_with("\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_known_length_is_declared_and_a_head_answer_has_no_body() {
        let (keep_alive, text) = written(Response::new(Body::from("hello")), false, false).await;
        assert!(keep_alive);
        assert!(text.contains("\r\ncontent-length: 5\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
        let mut head = Response::new(Body::from("hello"));
        head.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let (keep_alive, text) = written(head, true, false).await;
        assert!(keep_alive);
        assert!(text.contains("\r\ncontent-length: 5\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n") && !text.contains("hello"), "{text}");
    }

    #[tokio::test]
    async fn a_body_that_breaks_or_misses_its_length_closes_the_connection() {
        let (keep_alive, text) = written(Response::new(chunks(&["part"], true)), false, false).await;
        assert!(!keep_alive, "a failed body cannot be ended cleanly");
        assert!(text.ends_with("4\r\npart\r\n"), "no last chunk after a failure: {text}");

        let mut short = Response::new(chunks(&["abc"], false));
        short
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        let (keep_alive, text) = written(short, false, false).await;
        assert!(!keep_alive, "a body shorter than its length");
        assert!(text.ends_with("\r\n\r\nabc"), "{text}");

        let mut long = Response::new(chunks(&["abcdef"], false));
        long.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        let (keep_alive, text) = written(long, false, false).await;
        assert!(!keep_alive, "a body longer than its length");
        assert!(text.ends_with("\r\n\r\nabc"), "only the declared bytes: {text}");
    }

    #[tokio::test]
    async fn closing_is_announced_and_a_backends_framing_is_replaced() {
        let (keep_alive, text) = written(Response::new(chunks(&["a", "b"], false)), false, true).await;
        assert!(!keep_alive);
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
        assert!(
            text.ends_with("1\r\na\r\n1\r\nb\r\n0\r\n\r\n"),
            "the whole body before closing: {text}"
        );
        let mut backend = Response::new(chunks(&["x"], false));
        backend
            .headers_mut()
            .insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip, chunked"));
        backend
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let (keep_alive, text) = written(backend, false, false).await;
        assert!(!keep_alive, "the response asked to close");
        assert_eq!(text.matches("transfer-encoding").count(), 1, "{text}");
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
    }

    #[tokio::test]
    async fn a_length_delimited_bodys_last_piece_follows_the_head_from_where_it_is() {
        let last: &'static str = Box::leak("z".repeat(IN_PLACE_BYTES).into_boxed_str());
        for pieces in [vec![last], vec!["abc", last]] {
            let length = pieces.iter().map(|p| p.len()).sum::<usize>();
            let mut res = Response::new(chunks(&pieces, false));
            res.headers_mut().insert(header::CONTENT_LENGTH, length.into());
            let (keep_alive, text) = written(res, false, false).await;
            assert!(keep_alive);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
            assert!(head.contains(&format!("content-length: {length}")), "{head}");
            assert_eq!(body, pieces.concat(), "one body after the head, nothing after it");
        }
    }

    #[tokio::test]
    async fn a_large_body_chunk_follows_the_head_whole() {
        let big = "y".repeat(3 * GATHER_BYTES);
        let big: &'static str = Box::leak(big.into_boxed_str());
        let (_, text) = written(Response::new(chunks(&["small", big], false)), false, false).await;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        assert_eq!(body, format!("5\r\nsmall\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len()));
    }

    #[tokio::test]
    async fn a_backends_kept_lines_are_written_as_read_without_its_hop_by_hop_headers() {
        let (head, body) = crate::backend_http1::passed_answer(
            b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 10:00:00 GMT\r\n\
              Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: h\r\nContent-Length: 5\r\n\
              X-Kept: k\r\n\r\nhello",
        )
        .await;
        let (keep_alive, text) = written(Answer::Passed(head, body), false, false).await;
        assert!(keep_alive);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 10:00:00 GMT\r\nContent-Length: 5\r\n\
             X-Kept: k\r\n\r\nhello"
        );

        // Chunked with a length too: the coding wins and is redone here, a date is added.
        let (head, body) = crate::backend_http1::passed_answer(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nX-Kept: k\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        let (keep_alive, text) = written(Answer::Passed(head, body), false, true).await;
        assert!(!keep_alive, "the client asked to close");
        assert!(
            text.starts_with("HTTP/1.1 201 Created\r\nX-Kept: k\r\ndate: "),
            "{text}"
        );
        assert!(!text.to_ascii_lowercase().contains("content-length"), "{text}");
        assert!(
            text.ends_with("\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            "{text}"
        );

        // A HEAD answer: the length stays, no body follows.
        let (head, body) = crate::backend_http1::passed_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let (keep_alive, text) = written(Answer::Passed(head, body), true, false).await;
        assert!(keep_alive);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 0\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
    }

    #[test]
    fn the_date_is_an_http_date() {
        let mut date = Vec::new();
        with_http_date(|d| date.extend_from_slice(d));
        let text = String::from_utf8(date).expect("ascii");
        assert!(httpdate::parse_http_date(&text).is_ok(), "{text}");
    }
}
