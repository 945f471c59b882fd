//! The seam between gateways and the event hub: a gateway boots from a [`Snapshot`] and
//! then reads the events after it. In all-in-one the traffic manager implements this
//! in-process over the AM database; across processes the same trait is implemented over
//! HTTP (snapshot + watch), so the gateway's code is the same either way.

use crate::{Event, Snapshot};
use std::future::Future;
use std::pin::Pin;

/// Why the hub could not answer.
#[derive(Debug, thiserror::Error)]
#[error("event hub unavailable: {0}")]
pub struct HubError(pub String);

/// A boxed future, so the trait can be used as `dyn Hub`.
pub type HubFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HubError>> + Send + 'a>>;

/// Where a gateway's runtime state comes from.
pub trait Hub: Send + Sync {
    /// Everything `environment` serves, as of some sequence number.
    fn snapshot<'a>(&'a self, environment: &'a str) -> HubFuture<'a, Snapshot>;
    /// Up to `limit` events after `since`, in sequence order.
    fn events_since(&self, since: i64, limit: i64) -> HubFuture<'_, Vec<Event>>;
}
