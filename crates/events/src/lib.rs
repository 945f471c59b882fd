//! Control events: every change a gateway must learn about, as written to the `events`
//! outbox in the AM database in the same transaction as the change itself, and streamed
//! by the event hub (docs/architecture.md, "Event hub").
//!
//! This crate holds only the event vocabulary; it must not depend on storage or HTTP, so
//! that gateways can decode events without linking a database driver.

pub mod control;
pub mod hub;
pub mod snapshot;
pub mod throttle;

pub use control::{ControlEvent, ControlEventError};
pub use hub::{GatewayReport, Hub, HubError, HubFuture, TenantFilter, TenantScope, Watch, WatchItem};
pub use snapshot::Snapshot;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tollgate_model::{EpochMillis, TenantId};

/// What changed. The names are stored in the outbox and sent on the wire, so they are a
/// public contract: add variants, never rename them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An API revision was deployed to a gateway environment.
    ApiRevisionDeployed,
    /// An API revision was undeployed from a gateway environment.
    ApiRevisionUndeployed,
    /// An API's lifecycle state changed (blocked, retired…).
    ApiStateChanged,
    /// An application was created or updated.
    ApplicationUpserted,
    /// An application was deleted.
    ApplicationDeleted,
    /// A subscription was created or its state changed.
    SubscriptionUpserted,
    /// A subscription was removed.
    SubscriptionDeleted,
    /// A consumer key was mapped to an application.
    KeyMappingUpserted,
    /// A consumer key mapping was removed.
    KeyMappingDeleted,
    /// A throttling policy was created or updated.
    PolicyUpserted,
    /// A throttling policy was deleted.
    PolicyDeleted,
    /// A block condition was added or changed.
    BlockConditionUpserted,
    /// A block condition was removed.
    BlockConditionDeleted,
    /// A token, refresh token or API key was revoked.
    TokenRevoked,
    /// The key manager's signing keys changed (rotation).
    SigningKeysChanged,
    /// A gateway environment was created, changed or removed.
    EnvironmentChanged,
    /// A third-party key manager was registered or changed (with its fetched JWKS).
    KeyManagerUpserted,
    /// A third-party key manager was removed.
    KeyManagerDeleted,
    /// A tenant was created, activated or deactivated.
    TenantChanged,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::ApiRevisionDeployed => "api_revision_deployed",
            EventKind::ApiRevisionUndeployed => "api_revision_undeployed",
            EventKind::ApiStateChanged => "api_state_changed",
            EventKind::ApplicationUpserted => "application_upserted",
            EventKind::ApplicationDeleted => "application_deleted",
            EventKind::SubscriptionUpserted => "subscription_upserted",
            EventKind::SubscriptionDeleted => "subscription_deleted",
            EventKind::KeyMappingUpserted => "key_mapping_upserted",
            EventKind::KeyMappingDeleted => "key_mapping_deleted",
            EventKind::PolicyUpserted => "policy_upserted",
            EventKind::PolicyDeleted => "policy_deleted",
            EventKind::BlockConditionUpserted => "block_condition_upserted",
            EventKind::BlockConditionDeleted => "block_condition_deleted",
            EventKind::TokenRevoked => "token_revoked",
            EventKind::SigningKeysChanged => "signing_keys_changed",
            EventKind::EnvironmentChanged => "environment_changed",
            EventKind::KeyManagerUpserted => "key_manager_upserted",
            EventKind::KeyManagerDeleted => "key_manager_deleted",
            EventKind::TenantChanged => "tenant_changed",
        }
    }

    /// Every kind, for exhaustive tests and documentation.
    pub const ALL: [EventKind; 19] = [
        EventKind::ApiRevisionDeployed,
        EventKind::ApiRevisionUndeployed,
        EventKind::ApiStateChanged,
        EventKind::ApplicationUpserted,
        EventKind::ApplicationDeleted,
        EventKind::SubscriptionUpserted,
        EventKind::SubscriptionDeleted,
        EventKind::KeyMappingUpserted,
        EventKind::KeyMappingDeleted,
        EventKind::PolicyUpserted,
        EventKind::PolicyDeleted,
        EventKind::BlockConditionUpserted,
        EventKind::BlockConditionDeleted,
        EventKind::TokenRevoked,
        EventKind::SigningKeysChanged,
        EventKind::EnvironmentChanged,
        EventKind::KeyManagerUpserted,
        EventKind::KeyManagerDeleted,
        EventKind::TenantChanged,
    ];
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored kind name this build does not know (written by a newer node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEventKind(pub String);

impl fmt::Display for UnknownEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event kind `{}`", self.0)
    }
}

impl std::error::Error for UnknownEventKind {}

impl FromStr for EventKind {
    type Err = UnknownEventKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownEventKind(s.to_string()))
    }
}

/// An event about to be appended to the outbox: a typed [`ControlEvent`], so that every
/// producer writes a payload of the shape its kind promises.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Whose change it is.
    pub tenant_id: TenantId,
    /// The gateway environment it concerns, when it concerns only one.
    pub environment: Option<String>,
    /// What changed, with its payload.
    pub event: ControlEvent,
}

impl NewEvent {
    /// The event `event` of `tenant_id`, concerning only `environment` when given.
    pub fn new(tenant_id: TenantId, environment: Option<String>, event: ControlEvent) -> Self {
        Self {
            tenant_id,
            environment,
            event,
        }
    }

    /// What changed: the stored kind name.
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }
}

/// An event as stored, with the sequence number the outbox gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Strictly increasing across the whole outbox; the SSE id of the watch stream.
    pub seq: i64,
    /// What changed.
    pub kind: EventKind,
    /// Whose change it is.
    pub tenant_id: TenantId,
    /// The gateway environment it concerns, when it concerns only one.
    pub environment: Option<String>,
    /// The kind-specific body, as stored; [`Event::control`] reads it.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: EpochMillis,
}

impl Event {
    /// The typed event, or why its payload does not fit its kind.
    pub fn control(&self) -> Result<ControlEvent, ControlEventError> {
        ControlEvent::from_parts(self.kind, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_match_serde() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert!("api_exploded".parse::<EventKind>().is_err());
    }
}
