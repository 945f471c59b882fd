//! Tollgate's HTTP edge, shared by every component: listeners (plain or TLS) that drain
//! in-flight requests on shutdown, the one error envelope, the authentication extractors
//! REST handlers declare their roles with, node-to-node (cluster secret) authentication,
//! and the health and metrics routes every node serves.
//!
//! Components build their routers on this crate; it must not depend on any component.

pub mod auth;
pub mod cluster;
pub mod error;
pub mod health;
pub mod listener;
pub mod request_metrics;

pub use auth::{Authenticated, Authenticator};
pub use error::{ApiError, ApiJson, ApiQuery, Pagination};
pub use health::{Readiness, health_routes};
pub use listener::{BoundListener, ListenerError};
