//! One analytics event per request, put on a bounded queue without waiting: when the queue
//! is full the event is dropped and counted (`tollgate_gateway_analytics_dropped_total`),
//! so analytics can never slow a request down. A sink task drains the queue; in this
//! release the sink is an optional JSON-lines file (the Analytics component comes later).

use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

/// Events are handed to the sink in batches of this many (or every
/// [`FLUSH_INTERVAL`]), so a busy gateway wakes the sink once per batch, not per request.
pub const BATCH: usize = 256;

/// How long an event waits at most in a worker's batch before it is handed over.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The sending side. Each gateway worker gets its own batch ([`Self::for_worker`]); the
/// queue behind it is bounded in batches.
#[derive(Debug, Clone)]
pub struct AnalyticsQueue {
    tx: mpsc::Sender<Vec<AnalyticsEvent>>,
    dropped: metrics::Counter,
    batch_size: usize,
    pending: Arc<Mutex<Vec<AnalyticsEvent>>>,
}

impl AnalyticsQueue {
    /// A queue holding about `capacity` events (in batches of `batch_size`) and its
    /// receiving end.
    pub fn new(capacity: usize, batch_size: usize) -> (Self, mpsc::Receiver<Vec<AnalyticsEvent>>) {
        let batch_size = batch_size.max(1);
        let (tx, rx) = mpsc::channel((capacity / batch_size).max(1));
        (
            Self {
                tx,
                dropped: metrics::counter!("tollgate_gateway_analytics_dropped_total"),
                batch_size,
                pending: Arc::default(),
            },
            rx,
        )
    }

    /// The same queue with a batch of its own, flushed every [`FLUSH_INTERVAL`] by a task
    /// on the current runtime (call it on the worker's thread).
    pub fn for_worker(&self) -> Self {
        let worker = Self {
            pending: Arc::default(),
            ..self.clone()
        };
        let flusher = worker.clone();
        let pending = Arc::downgrade(&worker.pending);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pending.strong_count() <= 1 {
                    // Only this task holds the batch: the worker is gone.
                    flusher.flush();
                    return;
                }
                flusher.flush();
            }
        });
        worker
    }

    /// Adds an event to the batch without waiting; a full batch goes to the queue, and
    /// a full (or closed) queue drops and counts its events.
    pub fn publish(&self, event: AnalyticsEvent) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.push(event);
            (pending.len() >= self.batch_size).then(|| std::mem::take(&mut *pending))
        };
        if let Some(batch) = full {
            self.send(batch);
        }
    }

    /// Hands over whatever the batch holds.
    pub fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if !batch.is_empty() {
            self.send(batch);
        }
    }

    fn send(&self, batch: Vec<AnalyticsEvent>) {
        if let Err(e) = self.tx.try_send(batch) {
            let lost = match e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b.len(),
            };
            self.dropped.increment(lost as u64);
        }
    }
}

/// Writes every event as one JSON line to `path` (appending), flushing after each batch.
pub async fn json_log_sink(mut rx: mpsc::Receiver<Vec<AnalyticsEvent>>, path: PathBuf) {
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
    let mut line = Vec::with_capacity(512);
    while let Some(batch) = rx.recv().await {
        for event in batch {
            line.clear();
            if serde_json::to_writer(&mut line, &event).is_ok() {
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
    fn events_go_in_batches_and_a_full_queue_drops_instead_of_waiting() {
        let (queue, mut rx) = AnalyticsQueue::new(2, 2);
        queue.publish(AnalyticsEvent::default());
        assert!(rx.try_recv().is_err(), "half a batch waits for the flush");
        queue.publish(AnalyticsEvent::default());
        assert_eq!(
            rx.try_recv().map(|b| b.len()).ok(),
            Some(2),
            "a full batch is handed over"
        );
        queue.publish(AnalyticsEvent::default());
        queue.flush();
        queue.publish(AnalyticsEvent::default());
        queue.flush();
        assert_eq!(rx.try_recv().map(|b| b.len()).ok(), Some(1));
        assert!(
            rx.try_recv().is_err(),
            "the second flush found the queue full: dropped, not awaited"
        );
    }

    #[tokio::test]
    async fn a_worker_batch_is_flushed_on_time() {
        let (queue, mut rx) = AnalyticsQueue::new(100, 50);
        let worker = queue.for_worker();
        worker.publish(AnalyticsEvent::default());
        let batch = tokio::time::timeout(FLUSH_INTERVAL * 20, rx.recv()).await;
        assert_eq!(batch.ok().flatten().map(|b| b.len()), Some(1));
    }
}
