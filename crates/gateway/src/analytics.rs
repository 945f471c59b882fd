//! One analytics event per request, put on a bounded queue without waiting: when the queue
//! is full the event is dropped and counted (`tollgate_gateway_analytics_dropped_total`),
//! so analytics can never slow a request down. A sink task drains the queue; in this
//! release the sink is an optional JSON-lines file (the Analytics component comes later).

use serde::Serialize;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// What one request did, in the shape analytics aggregates.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsEvent {
    /// When the request arrived (epoch ms).
    pub timestamp: i64,
    /// API name (empty when no API matched).
    pub api: String,
    /// API version.
    pub api_version: String,
    /// The resource template that matched.
    pub resource: String,
    /// HTTP method.
    pub method: String,
    /// The calling application, when authenticated.
    pub application_id: Option<String>,
    /// The end user or application owner.
    pub subscriber: Option<String>,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: Option<String>,
    /// Response status.
    pub status: u16,
    /// The gateway's error code, when it refused or failed the call.
    pub error_code: Option<i64>,
    /// Total time in the gateway, ms.
    pub gateway_latency_ms: f64,
    /// Time waiting for the backend's response headers, ms (when it was called).
    pub backend_latency_ms: Option<f64>,
    /// Response body size, when the backend declared it.
    pub response_bytes: Option<u64>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
    /// The caller's address.
    pub client_ip: Option<String>,
}

/// The sending side, shared by every request.
#[derive(Debug, Clone)]
pub struct AnalyticsQueue {
    tx: mpsc::Sender<AnalyticsEvent>,
    dropped: metrics::Counter,
}

impl AnalyticsQueue {
    /// A queue of `capacity` events and its receiving end.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<AnalyticsEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                dropped: metrics::counter!("tollgate_gateway_analytics_dropped_total"),
            },
            rx,
        )
    }

    /// Enqueues without waiting; a full (or closed) queue drops and counts the event.
    /// Returns whether it was queued.
    pub fn publish(&self, event: AnalyticsEvent) -> bool {
        let queued = self.tx.try_send(event).is_ok();
        if !queued {
            self.dropped.increment(1);
        }
        queued
    }
}

/// Writes every event as one JSON line to `path` (appending), flushing after each batch.
pub async fn json_log_sink(mut rx: mpsc::Receiver<AnalyticsEvent>, path: PathBuf) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(f) => tokio::io::BufWriter::new(f),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "Cannot open the analytics log; events will be dropped.");
            return;
        }
    };
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        for event in batch.drain(..) {
            if let Ok(mut line) = serde_json::to_vec(&event) {
                line.push(b'\n');
                if let Err(e) = file.write_all(&line).await {
                    tracing::warn!(error = %e, "Cannot write the analytics log.");
                }
            }
        }
        if let Err(e) = file.flush().await {
            tracing::warn!(error = %e, "Cannot flush the analytics log.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_instead_of_waiting() {
        let (queue, mut rx) = AnalyticsQueue::new(1);
        assert!(queue.publish(AnalyticsEvent::default()));
        assert!(!queue.publish(AnalyticsEvent::default()), "full: dropped, not awaited");
        assert!(rx.try_recv().is_ok());
        assert!(queue.publish(AnalyticsEvent::default()), "room again");
    }
}
