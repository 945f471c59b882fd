//! The request path as a hyper service without a router in between: hyper calls a
//! [`GatewayService`] for every request of a connection the gateway's own HTTP/1.1 loop
//! handed over (`server_http1`), with the peer's address rendered once per connection.

use crate::request::{Gateway, LentHeaders, Peer, handle_call};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The service of one client connection.
#[derive(Debug, Clone)]
pub struct GatewayService {
    gateway: Arc<Gateway>,
    peer: Arc<Peer>,
}

impl GatewayService {
    /// The service of a connection from `peer`.
    pub fn new(gateway: Arc<Gateway>, peer: Arc<Peer>) -> Self {
        Self { gateway, peer }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for GatewayService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let gateway = Arc::clone(&self.gateway);
        let peer = Arc::clone(&self.peer);
        Box::pin(async move {
            let mut req = req.map(Body::new);
            Ok(handle_call(&gateway, &peer, &mut req, LentHeaders::default())
                .await
                .into_response())
        })
    }
}
