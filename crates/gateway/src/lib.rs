//! The Gateway component: the data plane every API call passes through
//! (docs/architecture.md, "Gateway request path"). It opens no database: everything it
//! serves comes from the event hub (docs/architecture.md, "Event hub").
//!
//! A request is routed by a trie over the deployed APIs' paths ([`router`]), checked
//! against the runtime state ([`runtime`], kept current from the event hub by
//! [`follow`]): API state, token or API key, subscription and scope, then proxied to the
//! backend ([`proxy`]), counted against its throttling limits on the way ([`throttle_policies`]
//! says which, [`throttle`] counts them with the traffic manager).
//! Plain-HTTP connections are read and answered by the gateway's own HTTP/1.1 loop
//! (`server_http1`), which hands what it does not serve to hyper (`service`).
//! Depends on `listener`, `config`, `events` and `model` only: no database driver
//! (`tests/dependency_tree.rs` checks it).

pub mod analytics;
pub mod analytics_client;
mod answer;
mod authenticate;
mod backend_http1;
pub mod backend_jwt;
mod backend_pool;
pub mod cors;
pub mod error;
pub mod follow;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hub_client;
pub mod key_manager_client;
pub mod mock;
pub mod node;
pub mod proxy;
mod request;
pub mod router;
pub mod runtime;
mod server_http1;
mod service;
pub mod throttle;
pub mod throttle_policies;
pub mod traces;

pub use authenticate::{Introspect, TokenVerifier};
pub use request::{Gateway, Listener, Peer};
pub use server_http1::connection_handler;
pub use service::GatewayService;

use axum::Router;
use std::sync::Arc;

/// The gateway's router for a listener that hyper serves (the TLS listener, `tls`
/// set): every request goes through [`request::handle`].
pub fn routes(gateway: Arc<Gateway>, tls: bool) -> Router {
    Router::new()
        .fallback(request::handle)
        .with_state(request::Listener { gateway, tls })
}
