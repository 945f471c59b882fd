//! Listeners: bind (before anything is served, so a taken port fails start-up), optional
//! TLS, HTTP/1.1 and HTTP/2, and a graceful drain: on shutdown stop accepting, let every
//! in-flight request finish (up to a timeout), then close.
//!
//! One job, accepting and draining connections, in a crate of its own so that the gateway
//! (the data plane) can use it without linking what the REST APIs need: this crate must
//! not depend on `tollgate-store`, `tollgate-http` or any component (the gateway's
//! `tests/dependency_tree.rs` fails if a database driver reaches the gateway).
//! `tollgate-http` re-exports it as `tollgate_http::listener`.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tollgate_config::TlsConfig;
use tower::ServiceExt;

/// Why a listener could not start. Each names the config key to change.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr} for the {name} listener: {reason}; free the port or change `{key}`")]
    Bind {
        /// Listener name.
        name: &'static str,
        /// Address asked for.
        addr: SocketAddr,
        /// Config key of the address.
        key: &'static str,
        /// OS error.
        reason: String,
    },
    /// The certificate or key could not be loaded.
    #[error("cannot load TLS {what} for the {name} listener from {path}: {reason}; check `{key}`")]
    Tls {
        /// Listener name.
        name: &'static str,
        /// `certificate` or `private key`.
        what: &'static str,
        /// File path.
        path: String,
        /// Config key.
        key: String,
        /// What went wrong.
        reason: String,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A hyper service that can serve the requests of one accepted connection (HTTP/1.1 or
/// HTTP/2, with upgrades): an axum router wrapped for hyper, or the gateway's own service.
pub trait ConnectionService:
    hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<Self::ResponseBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
    /// The body of its responses.
    type ResponseBody: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> ConnectionService for S
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}

/// A bound socket, ready to serve.
pub struct BoundListener {
    name: &'static str,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    local_addr: SocketAddr,
    /// The largest request head hyper reads (431 beyond it); hyper's default when unset.
    max_header_bytes: Option<usize>,
}

impl std::fmt::Debug for BoundListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundListener")
            .field("name", &self.name)
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Loads a TLS server configuration (HTTP/2 and HTTP/1.1 by ALPN) from PEM files.
/// `key_prefix` is the config table for error messages (`management.tls`).
pub fn load_tls(name: &'static str, tls: &TlsConfig, key_prefix: &str) -> Result<TlsAcceptor, ListenerError> {
    let err = |what: &'static str, path: &std::path::Path, key: &str, reason: String| ListenerError::Tls {
        name,
        what,
        path: path.display().to_string(),
        key: format!("{key_prefix}.{key}"),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| err("certificate", &tls.cert, "cert", e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err("certificate", &tls.cert, "cert", e.to_string()))?;
    if certs.is_empty() {
        return Err(err("certificate", &tls.cert, "cert", "no PEM certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| err("private key", &tls.key, "key", e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("certificate", &tls.cert, "cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| err("private key", &tls.key, "key", e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl BoundListener {
    /// Binds `addr` for the listener `name` (`key` is its config key, for errors) and
    /// logs `Listener bound.` with the actual address (port 0 resolves here).
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        key: &'static str,
        tls: Option<TlsAcceptor>,
    ) -> Result<Self, ListenerError> {
        let listener = TcpListener::bind(addr).await.map_err(|e| ListenerError::Bind {
            name,
            addr,
            key,
            reason: e.to_string(),
        })?;
        let local_addr = listener.local_addr().map_err(|e| ListenerError::Bind {
            name,
            addr,
            key,
            reason: e.to_string(),
        })?;
        tracing::info!(listener = name, addr = %local_addr, tls = tls.is_some(), "Listener bound.");
        Ok(Self {
            name,
            listener,
            tls,
            local_addr,
            max_header_bytes: None,
        })
    }

    /// Refuses request heads larger than `bytes` (at least 8192) with 431, over HTTP/1.1
    /// and HTTP/2 alike; without it, hyper's defaults apply.
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = Some(bytes);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Binds `count` sockets to one address with `SO_REUSEPORT`, for as many
    /// single-threaded runtimes that each accept their own connections (the kernel spreads
    /// them), as nginx's workers do: a request then stays on one thread from accept to
    /// backend and back, with no cross-thread wake-ups.
    pub fn bind_per_thread(
        name: &'static str,
        addr: SocketAddr,
        key: &'static str,
        count: usize,
    ) -> Result<Vec<ThreadListener>, ListenerError> {
        let err = |e: std::io::Error| ListenerError::Bind {
            name,
            addr,
            key,
            reason: e.to_string(),
        };
        let mut bound = addr;
        let mut out = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(bound),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .map_err(err)?;
            socket.set_reuse_address(true).map_err(err)?;
            socket.set_reuse_port(true).map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            socket.bind(&bound.into()).map_err(err)?;
            socket.listen(1024).map_err(err)?;
            let std: std::net::TcpListener = socket.into();
            // Port 0 resolves on the first socket; the others share its port.
            bound = std.local_addr().map_err(err)?;
            out.push(ThreadListener {
                name,
                listener: std,
                local_addr: bound,
            });
        }
        tracing::info!(listener = name, addr = %bound, tls = false, threads = out.len(), "Listener bound.");
        Ok(out)
    }

    /// Serves `app` until `shutdown` is cancelled, then drains: in-flight requests get up
    /// to `drain_timeout` to finish. Resolves when every connection is closed.
    pub async fn serve(self, app: Router, shutdown: CancellationToken, drain_timeout: Duration) {
        let per_connection = move |remote: SocketAddr| {
            TowerToHyperService::new(app.clone().map_request(move |mut req: axum::http::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            }))
        };
        self.serve_with(per_connection, shutdown, drain_timeout).await;
    }

    /// As [`Self::serve`], with a hyper service made for each accepted connection from
    /// the peer's address: for servers that keep per-connection state or skip the router.
    pub async fn serve_with<F, S>(self, per_connection: F, shutdown: CancellationToken, drain_timeout: Duration)
    where
        F: Fn(SocketAddr) -> S,
        S: ConnectionService,
    {
        let builder = builder(self.max_header_bytes);
        let tls = self.tls.clone();
        let name = self.name;
        let on_accept = move |stream: TcpStream, remote: SocketAddr, shutdown: CancellationToken| {
            let service = per_connection(remote);
            let builder = builder.clone();
            let tls = tls.clone();
            async move {
                match tls {
                    None => serve_connection(&builder, TokioIo::new(stream), service, &shutdown).await,
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        let tls_stream = tokio::select! {
                            () = shutdown.cancelled() => return,
                            r = handshake => match r {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(listener = name, remote = %remote, error = %e, "TLS handshake failed.");
                                    return;
                                }
                                Err(_) => return,
                            },
                        };
                        serve_connection(&builder, TokioIo::new(tls_stream), service, &shutdown).await;
                    }
                }
            }
        };
        self.serve_connections(on_accept, shutdown, drain_timeout).await;
    }

    /// Accepts connections until `shutdown` is cancelled and hands each to `on_accept`
    /// (with the peer's address and the shutdown token) in a task of its own, then drains
    /// like [`Self::serve`]: for servers that speak HTTP themselves (the gateway's
    /// HTTP/1.1 loop, which hands what it does not serve to [`serve_hyper`]).
    pub async fn serve_connections<F, Fut>(self, on_accept: F, shutdown: CancellationToken, drain_timeout: Duration)
    where
        F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let tracker = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = self.name, error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tracker.spawn(on_accept(stream, remote, shutdown.clone()));
        }
        drop(self.listener);
        tracker.close();
        let open = tracker.len();
        tracing::info!(
            listener = self.name,
            open_connections = open,
            "Listener closed; draining connections."
        );
        if tokio::time::timeout(drain_timeout, tracker.wait()).await.is_err() {
            tracing::warn!(
                listener = self.name,
                timeout = ?drain_timeout,
                "Connections still open after the drain timeout; closing them."
            );
        }
    }
}

/// Serves one connection with hyper (HTTP/1.1 with upgrades, or HTTP/2 by its preface)
/// until it closes or `shutdown` drains it, refusing request heads larger than
/// `max_header_bytes` (at least 8192) with 431: what the gateway's own HTTP/1.1 loop hands
/// over when a connection needs more than it does.
pub async fn serve_hyper<I, S>(io: I, service: S, shutdown: &CancellationToken, max_header_bytes: usize)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: ConnectionService,
{
    serve_connection(&builder(Some(max_header_bytes)), TokioIo::new(io), service, shutdown).await;
}

/// hyper's connection builder, with the request-head limit when one is given (hyper's
/// smallest read buffer, 8192 bytes, at least: a smaller one would panic).
fn builder(max_header_bytes: Option<usize>) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    if let Some(bytes) = max_header_bytes {
        let bytes = bytes.max(8192);
        builder.http1().max_buf_size(bytes);
        builder
            .http2()
            .max_header_list_size(u32::try_from(bytes).unwrap_or(u32::MAX));
    }
    builder
}

async fn serve_connection<I, S>(builder: &Builder<TokioExecutor>, io: I, service: S, shutdown: &CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: ConnectionService,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "Connection ended with an error.");
            }
        }
        () = shutdown.cancelled() => {
            // Finish the request in flight (if any), then close; idle connections close now.
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Connection ended with an error while draining.");
            }
        }
    }
}

/// One of the sockets [`BoundListener::bind_per_thread`] made, served by its own thread
/// and single-threaded runtime.
#[derive(Debug)]
pub struct ThreadListener {
    name: &'static str,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
}

impl ThreadListener {
    /// Starts a thread with a single-threaded runtime that builds its connection handler
    /// with `make` (so that per-thread state, such as connection pools, stays on the
    /// thread) and serves until `shutdown`, draining like [`BoundListener::serve`]. Each
    /// accepted connection goes to the handler as in [`BoundListener::serve_connections`].
    /// The returned future resolves when the thread is done.
    pub fn serve_on_own_thread<M, F, Fut>(
        self,
        index: usize,
        make: M,
        shutdown: CancellationToken,
        drain_timeout: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static
    where
        M: FnOnce() -> F + Send + 'static,
        F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let name = self.name;
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(listener = name, error = %e, "Cannot start a listener thread's runtime.");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(self.listener) {
                        Ok(listener) => {
                            let bound = BoundListener {
                                name,
                                listener,
                                tls: None,
                                local_addr: self.local_addr,
                                max_header_bytes: None,
                            };
                            bound.serve_connections(make(), shutdown, drain_timeout).await;
                        }
                        Err(e) => tracing::error!(listener = name, error = %e, "Cannot adopt a listener socket."),
                    }
                });
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            tracing::error!(listener = name, error = %e, "Cannot start a listener thread.");
        }
        async move {
            if done_rx.await.is_err() {
                tracing::error!(
                    listener = name,
                    thread = index,
                    "A listener thread stopped unexpectedly (it panicked); its share of connections is no longer served."
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_taken_port_names_the_key_to_change() {
        let first = BoundListener::bind("management", "127.0.0.1:0".parse().unwrap(), "management.listen", None)
            .await
            .unwrap();
        let err = BoundListener::bind("management", first.local_addr(), "management.listen", None)
            .await
            .unwrap_err();
        assert!(matches!(err, ListenerError::Bind { .. }), "{err:?}");
        assert!(err.to_string().contains("`management.listen`"), "{err}");
    }

    #[test]
    fn a_missing_certificate_names_its_config_key() {
        let tls = TlsConfig {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let Err(err) = load_tls("management", &tls, "management.tls") else {
            panic!("a missing certificate loaded");
        };
        assert!(err.to_string().contains("`management.tls.cert`"), "{err}");
    }

    /// Shutdown while a request is in flight: the listener stops accepting, the request
    /// still gets its answer, and `serve` resolves once the connection is closed.
    #[tokio::test]
    async fn shutdown_drains_the_request_in_flight() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
        let app = Router::new().route(
            "/slow",
            axum::routing::get(move || {
                if let Some(tx) = started_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "done"
                }
            }),
        );
        let listener = BoundListener::bind("test", "127.0.0.1:0".parse().unwrap(), "test.listen", None)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(listener.serve(app, shutdown.clone(), Duration::from_secs(5)));

        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        started_rx.await.unwrap();
        shutdown.cancel();

        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting after the drain"
        );
    }
}
