//! The seam between gateways and the event hub: a gateway boots from a [`Snapshot`] and
//! then watches the events after it. In all-in-one the traffic manager implements this
//! in-process over the AM database; across processes the same trait is implemented over
//! HTTP (snapshot + SSE watch), so the gateway's code is the same either way.

use crate::{Event, Snapshot};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// Why the hub could not answer.
#[derive(Debug, thiserror::Error)]
#[error("event hub unavailable: {0}")]
pub struct HubError(pub String);

/// A boxed future, so the trait can be used as `dyn Hub`.
pub type HubFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HubError>> + Send + 'a>>;

/// What a watch delivers, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchItem {
    /// The next events after everything delivered before, in sequence order.
    Events(Vec<Event>),
    /// Everything up to `seq` has been delivered and nothing newer exists yet. A watcher
    /// whose state is older than `seq` has missed something and must catch up.
    Heartbeat {
        /// The sequence the hub has delivered up to.
        seq: i64,
    },
    /// The hub no longer holds the events after the sequence asked for (compacted away):
    /// load a new snapshot.
    Resnapshot,
}

/// How often a gateway reports what it serves when nothing changes; a gateway whose last
/// report is older than three of these no longer counts as live.
pub const GATEWAY_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What a gateway reports it serves (deployment acknowledgements), every
/// [`GATEWAY_REPORT_INTERVAL`] and soon after its state changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    /// The gateway node's stable id (kept under its data directory).
    pub gateway_id: String,
    /// The gateway environment it serves.
    pub environment: String,
    /// The event sequence its state is current to.
    pub sequence: i64,
    /// The API revisions it serves.
    pub revisions: Vec<String>,
    /// Revisions whose deployment it received but could not apply.
    pub failed: Vec<String>,
    /// The revisions are those of its previous report and are not repeated (empty lists):
    /// only the sequence and the time are new. A hub that has no previous report refuses
    /// it, and the gateway sends a full one.
    #[serde(default)]
    pub unchanged: bool,
}

/// An open watch: items arrive in order; the channel closes when the hub goes away.
pub type Watch = mpsc::Receiver<WatchItem>;

/// Where a gateway's runtime state comes from.
pub trait Hub: Send + Sync {
    /// Everything `environment` serves, as of some sequence number.
    fn snapshot<'a>(&'a self, environment: &'a str) -> HubFuture<'a, Snapshot>;
    /// Every event after `since`, as it is committed, until the watch closes.
    fn watch(&self, since: i64) -> HubFuture<'_, Watch>;
    /// Records what a gateway serves (for the Publisher's deployment counts).
    fn report<'a>(&'a self, report: &'a GatewayReport) -> HubFuture<'a, ()>;
    /// Where the hub is, for logs and health reports.
    fn describe(&self) -> String;
}
