//! The plain-HTTP request path without a router in between: hyper calls a
//! [`GatewayService`] for every request of a connection, with the peer's address rendered
//! once per connection instead of once per request.

use crate::request::{Gateway, Peer, handle_call};
use axum::body::Body;
use axum::response::Response;
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// The service of one client connection.
#[derive(Debug, Clone)]
pub struct GatewayService {
    gateway: Arc<Gateway>,
    peer: Arc<Peer>,
}

/// The per-connection service maker for a listener's `serve_with`.
pub fn per_connection(gateway: Arc<Gateway>) -> impl Fn(SocketAddr) -> GatewayService {
    move |remote| GatewayService {
        gateway: Arc::clone(&gateway),
        peer: Arc::new(Peer::new(Some(remote))),
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for GatewayService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let gateway = Arc::clone(&self.gateway);
        let peer = Arc::clone(&self.peer);
        Box::pin(async move { Ok(handle_call(&gateway, &peer, req.map(Body::new)).await) })
    }
}
