//! Tollgate's domain types: the words every other crate speaks (tenants, users, roles,
//! components, profiles) and the one error type that crosses crate boundaries.
//!
//! This crate must not depend on storage, HTTP or any runtime: it is the bottom of the
//! dependency graph, so keeping it small keeps every rebuild small.

pub mod analytics;
pub mod api;
pub mod block_condition;
pub mod component;
pub mod custom_rule;
pub mod document;
pub mod environment;
pub mod error;
pub mod id;
pub mod key_manager;
pub mod lifecycle;
pub mod mock;
pub mod policy;
pub mod role;
pub mod tenant;
pub mod text;
pub mod throttle_window;
pub mod token;
pub mod user;

pub use api::Api;
pub use component::{Component, ComponentSet, Profile};
pub use environment::Environment;
pub use error::{Error, FieldError, Result};
pub use id::{TenantId, UserId};
pub use lifecycle::{LifecycleAction, LifecycleState};
pub use role::Role;
pub use tenant::Tenant;
pub use user::{NewUser, Principal, User};

/// Milliseconds since the Unix epoch: the one time representation stored in both
/// database engines (BIGINT) and carried in events.
pub type EpochMillis = i64;

/// The current time as [`EpochMillis`], so that every crate reads the clock the same way.
pub fn now_millis() -> EpochMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-11-24T04:22:18.123Z`), the time
/// format of Tollgate's REST bodies.
pub fn rfc3339(ms: EpochMillis) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Reads an RFC 3339 timestamp (`2026-11-24T10:00:00Z`) as epoch ms; `None` if it is not
/// one. The inverse of [`rfc3339`], for query parameters.
pub fn parse_rfc3339(text: &str) -> Option<EpochMillis> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}
