//! One analytics event per request, put on a bounded queue without waiting: when the queue
//! is full the event is dropped and counted (`tollgate_gateway_analytics_dropped_total`),
//! so analytics can never slow a request down. A sink task drains the queue; in this
//! release the sink is an optional JSON-lines file (the Analytics component comes later).

use crate::runtime::ApiEntry;
use axum::http::{HeaderValue, Method};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tollgate_model::token::{AccessClaims, KeyType};

/// What one request did, in the shape analytics aggregates. It refers to the runtime
/// state's API entry and the caller's claims instead of copying their strings, so that
/// building it costs the request path next to nothing; the sink renders it.
#[derive(Clone, Debug, Default)]
pub struct AnalyticsEvent {
    /// When the request arrived (epoch ms).
    pub timestamp: i64,
    /// The API and the index of the operation that matched, when one did.
    pub api: Option<(Arc<ApiEntry>, Option<usize>)>,
    /// HTTP method.
    pub method: Method,
    /// The calling application, when authenticated.
    pub application_id: Option<String>,
    /// The caller's verified claims (the subscriber is their subject).
    pub claims: Option<Arc<AccessClaims>>,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: Option<KeyType>,
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
    pub user_agent: Option<HeaderValue>,
    /// The caller's address.
    pub client_ip: Option<String>,
}

/// The JSON shape of an event (one line of the analytics log).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventRecord<'a> {
    timestamp: i64,
    api: &'a str,
    api_version: &'a str,
    resource: &'a str,
    method: &'a str,
    application_id: Option<&'a str>,
    subscriber: Option<&'a str>,
    key_type: Option<&'a str>,
    status: u16,
    error_code: Option<i64>,
    gateway_latency_ms: f64,
    backend_latency_ms: Option<f64>,
    response_bytes: Option<u64>,
    user_agent: Option<&'a str>,
    client_ip: Option<&'a str>,
}

impl Serialize for AnalyticsEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let api = self.api.as_ref().map(|(entry, _)| &entry.deployed.api);
        let resource = self
            .api
            .as_ref()
            .and_then(|(entry, op)| op.and_then(|i| entry.deployed.api.operations.get(i)))
            .map_or("", |op| op.target.as_str());
        EventRecord {
            timestamp: self.timestamp,
            api: api.map_or("", |a| a.name.as_str()),
            api_version: api.map_or("", |a| a.version.as_str()),
            resource,
            method: self.method.as_str(),
            application_id: self.application_id.as_deref(),
            subscriber: self.claims.as_ref().map(|c| c.sub.as_str()),
            key_type: self.key_type.map(|k| k.as_str()),
            status: self.status,
            error_code: self.error_code,
            gateway_latency_ms: self.gateway_latency_ms,
            backend_latency_ms: self.backend_latency_ms,
            response_bytes: self.response_bytes,
            user_agent: self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            client_ip: self.client_ip.as_deref(),
        }
        .serialize(serializer)
    }
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
