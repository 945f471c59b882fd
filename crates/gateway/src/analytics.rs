//! One analytics event per request, put on a bounded queue without waiting: when the queue
//! is full the event is dropped and counted (`tollgate_gateway_analytics_dropped_total`),
//! so analytics can never slow a request down. A sink task drains the queue into an
//! optional JSON-lines file and a bounded buffer that is shipped in batches to the
//! analytics component, with backoff while it is away.

use crate::runtime::ApiEntry;
use axum::http::{HeaderValue, Method};
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tollgate_model::analytics::{UsageBatchRef, UsageEventRef};
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
    /// The caller's address (the connection's, shared).
    pub client_ip: Option<Arc<str>>,
}

impl AnalyticsEvent {
    /// The event in the shape the analytics log and the analytics component read,
    /// borrowed from the event (rendered by the sink task, off the request path).
    pub fn usage(&self) -> UsageEventRef<'_> {
        let deployed = self.api.as_ref().map(|(entry, _)| &entry.deployed);
        let api = deployed.map(|d| &d.api);
        let resource = self
            .api
            .as_ref()
            .and_then(|(entry, op)| op.and_then(|i| entry.deployed.api.operations.get(i)))
            .map_or("", |op| op.target.as_str());
        UsageEventRef {
            timestamp: self.timestamp,
            api_id: deployed.map_or("", |d| d.api_id.as_str()),
            api: api.map_or("", |a| a.name.as_str()),
            api_version: api.map_or("", |a| a.version.as_str()),
            resource,
            method: self.method.as_str(),
            application_id: self.application_id.as_deref(),
            subscriber: self.claims.as_ref().map(|c| c.sub.as_str()),
            key_type: self.key_type.as_ref().map(KeyType::as_str),
            status: self.status,
            error_code: self.error_code,
            gateway_latency_ms: self.gateway_latency_ms,
            backend_latency_ms: self.backend_latency_ms,
            response_bytes: self.response_bytes,
            user_agent: self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            client_ip: self.client_ip.as_deref(),
        }
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
            if pending.capacity() == 0 {
                // A new batch is made room for once, not grown (and copied) as it fills.
                pending.reserve_exact(self.batch_size);
            }
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

/// The shape of the analytics log's lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One [`UsageEvent`] as JSON per line.
    #[default]
    Json,
    /// The reference's ELK analytics lines (`apimMetrics: apim:response, properties :{…}`),
    /// which its Logstash and Kibana dashboards read.
    Elk,
}

/// Where a gateway's events go: the JSON-lines log, the analytics component, or both.
#[derive(Clone, Default)]
pub struct Sinks {
    /// Append one line per event to this file.
    pub log: Option<PathBuf>,
    /// The lines' shape.
    pub log_format: LogFormat,
    /// The gateway's runtime state, to name applications in ELK lines.
    pub live: Option<Arc<crate::follow::LiveState>>,
    /// Ship the events to the analytics component.
    pub shipper: Option<Arc<dyn ShipUsage>>,
    /// This gateway's id (in each shipment).
    pub gateway_id: String,
    /// The environment it serves (in each shipment).
    pub environment: String,
    /// Events held for shipping at most (while the component is away); the oldest are
    /// dropped and counted beyond it.
    pub max_pending: usize,
}

/// Hands a batch of events to the analytics component: over HTTP from a gateway node
/// ([`crate::analytics_client::HttpShipper`]), or in-process on an all-in-one node. The
/// batch borrows from the held events, so shipping copies no string per call.
pub trait ShipUsage: Send + Sync {
    /// Delivers the batch, or says why not (the caller keeps it and tries again).
    fn ship<'a>(
        &'a self,
        batch: &'a UsageBatchRef<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

    /// Takes the held events as they are, when the shipper counts them where it runs
    /// (the in-process analytics component) and needs no batch built for it: `true`
    /// when it took them. The default takes nothing, and [`ShipUsage::ship`] is used.
    fn take_held(&self, _environment: &str, _events: &[Vec<AnalyticsEvent>]) -> bool {
        false
    }
}

/// How often held events are shipped.
pub const SHIP_INTERVAL: Duration = Duration::from_secs(1);

/// Most events in one shipment.
pub const SHIP_BATCH: usize = 5_000;

/// Longest wait between attempts while the analytics component cannot be reached (each
/// attempt ships one small batch, so trying often costs little and a restarted component
/// is caught up with soon).
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Events waiting to be shipped, bounded: the oldest go first, counted as dropped. They
/// are held as the gateway made them (sharing its API entries and claims), in the
/// workers' batches (never copied into one long queue), and rendered only when shipped.
struct Pending {
    batches: Mutex<Held>,
    max: usize,
    dropped: metrics::Counter,
}

/// The held batches, oldest first, and how many events they hold.
#[derive(Default)]
struct Held {
    batches: VecDeque<Vec<AnalyticsEvent>>,
    events: usize,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.batches.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops the oldest events beyond the bound.
    fn trim(&self, held: &mut Held) {
        let mut over = held.events.saturating_sub(self.max);
        if over == 0 {
            return;
        }
        self.dropped.increment(over as u64);
        held.events -= over;
        while over > 0 {
            let Some(oldest) = held.batches.front_mut() else {
                break;
            };
            if oldest.len() <= over {
                over -= oldest.len();
                held.batches.pop_front();
            } else {
                oldest.drain(..over);
                oldest.shrink_to_fit();
                over = 0;
            }
        }
    }

    fn push(&self, mut batch: Vec<AnalyticsEvent>) {
        if batch.is_empty() {
            return;
        }
        // A worker's batch has room for a whole batch however few events a flush found in
        // it; held for minutes while the analytics component is away, the room would count
        // for far more than the events the bound counts. Held batches keep only their events.
        if batch.capacity() > 2 * batch.len() {
            batch.shrink_to_fit();
        }
        let mut held = self.lock();
        held.events += batch.len();
        held.batches.push_back(batch);
        self.trim(&mut held);
    }

    /// The oldest whole batches, up to `n` events (or the first batch, if larger).
    fn take(&self, n: usize) -> Vec<Vec<AnalyticsEvent>> {
        let mut held = self.lock();
        let mut taken = Vec::new();
        let mut count = 0;
        while let Some(next) = held.batches.front().map(Vec::len) {
            if count > 0 && count + next > n {
                break;
            }
            count += next;
            taken.extend(held.batches.pop_front());
        }
        held.events -= count;
        taken
    }

    /// Puts a shipment that failed back in front of what arrived meanwhile.
    fn put_back(&self, batches: Vec<Vec<AnalyticsEvent>>) {
        let mut held = self.lock();
        for batch in batches.into_iter().rev() {
            held.events += batch.len();
            held.batches.push_front(batch);
        }
        self.trim(&mut held);
    }
}

/// Drains the queue into the configured sinks until the queue closes. Nothing here is
/// on the request path: a slow file or an absent analytics component only fills the
/// bounded buffers, whose overflow is dropped and counted.
pub async fn run_sinks(mut rx: mpsc::Receiver<Vec<AnalyticsEvent>>, sinks: Sinks) {
    // Plain blocking file writes, one per batch on tokio's blocking pool: tokio::fs would
    // hand every 8 KiB write to that pool, waking a thread several times per batch.
    let mut log = match &sinks.log {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "Cannot open the analytics log; no events will be written to it.");
                None
            }
        },
        None => None,
    };
    let pending = sinks.shipper.clone().map(|shipper| {
        let pending = Arc::new(Pending {
            batches: Mutex::default(),
            max: sinks.max_pending.max(1),
            dropped: metrics::counter!("tollgate_gateway_analytics_dropped_total"),
        });
        tokio::spawn(ship_loop(
            pending.clone(),
            shipper,
            sinks.gateway_id.clone(),
            sinks.environment.clone(),
        ));
        pending
    });
    while let Some(batch) = rx.recv().await {
        if let Some(file) = &log {
            let state = sinks.live.as_ref().map(|l| l.load());
            let mut lines = Vec::with_capacity(batch.len() * 512);
            for event in &batch {
                let usage = event.usage();
                match sinks.log_format {
                    LogFormat::Json => {
                        if serde_json::to_writer(&mut lines, &usage).is_err() {
                            continue;
                        }
                    }
                    LogFormat::Elk => {
                        let app = usage
                            .application_id
                            .and_then(|id| state.as_ref()?.application(id))
                            .map(|a| (a.name.as_str(), a.owner.as_str()));
                        lines.extend_from_slice(elk_line(event, &usage, app).as_bytes());
                    }
                }
                lines.push(b'\n');
            }
            let file = Arc::clone(file);
            let written = tokio::task::spawn_blocking(move || (&*file).write_all(&lines)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "Cannot write the analytics log."),
                Err(e) => {
                    tracing::error!(error = %e, "The analytics log writer failed; no more events will be written to it.");
                    log = None;
                }
            }
        }
        if let Some(p) = &pending {
            p.push(batch);
        }
    }
}

/// The reference's `errorType` of a gateway error code.
fn elk_error_type(code: i64) -> &'static str {
    match code {
        900_800..=900_807 => "THROTTLED",
        900_900..=900_910 => "AUTH",
        101_500..=101_599 => "TARGET_CONNECTIVITY",
        _ => "OTHER",
    }
}

/// One line of the reference's ELK analytics log: `apim:response` for answered calls,
/// `apim:faulty` for calls the gateway refused or failed.
fn elk_line(event: &AnalyticsEvent, usage: &UsageEventRef<'_>, app: Option<(&str, &str)>) -> String {
    let api = event.api.as_ref().map(|(entry, _)| entry);
    let latency = |ms: f64| ms.round() as i64;
    let mut p = serde_json::json!({
        "apiId": usage.api_id,
        "apiName": usage.api,
        "apiVersion": usage.api_version,
        "apiContext": api.map_or("", |a| a.context()),
        "apiResourceTemplate": usage.resource,
        "apiMethod": usage.method,
        "apiCreator": api.and_then(|a| a.deployed.api.provider.as_deref()).unwrap_or(""),
        "apiCreatorTenantDomain": api.map_or(tollgate_model::tenant::Tenant::DEFAULT_DOMAIN, |a| &a.tenant_domain),
        "apiType": "HTTP",
        "applicationId": usage.application_id.unwrap_or(""),
        "applicationName": app.map_or("", |a| a.0),
        "applicationOwner": app.map_or("", |a| a.1),
        "keyType": usage.key_type.unwrap_or(""),
        "userName": usage.subscriber.unwrap_or(""),
        "userAgent": usage.user_agent.unwrap_or(""),
        "userIp": usage.client_ip.unwrap_or(""),
        "requestTimestamp": tollgate_model::rfc3339(usage.timestamp),
        "correlationId": uuid::Uuid::now_v7().to_string(),
        "regionId": "default",
        "gatewayType": "TOLLGATE",
        "platform": "Other",
        "responseCacheHit": false,
        "proxyResponseCode": usage.status,
        "targetResponseCode": if usage.backend_latency_ms.is_some() { usage.status } else { 0 },
        "responseLatency": latency(usage.gateway_latency_ms),
        "backendLatency": usage.backend_latency_ms.map_or(0, latency),
        "requestMediationLatency": latency(usage.gateway_latency_ms - usage.backend_latency_ms.unwrap_or(0.0)),
        "responseMediationLatency": 0,
    });
    let kind = match usage.error_code {
        Some(code) => {
            p["errorType"] = serde_json::json!(elk_error_type(code));
            p["errorCode"] = serde_json::json!(code);
            p["errorMessage"] = serde_json::json!(format!("gateway error {code}"));
            "apim:faulty"
        }
        None => "apim:response",
    };
    format!(
        "{} INFO {{org.wso2.am.analytics.publisher.reporter.elk.ELKCounterMetric}} - apimMetrics: {kind}, properties :{p}",
        tollgate_model::rfc3339(usage.timestamp)
    )
}

/// Ships held events every [`SHIP_INTERVAL`]; after a failure waits longer each time
/// (up to [`MAX_BACKOFF`]) and keeps the events, within the buffer's bound.
async fn ship_loop(pending: Arc<Pending>, shipper: Arc<dyn ShipUsage>, gateway_id: String, environment: String) {
    let mut wait = SHIP_INTERVAL;
    let mut failing = false;
    loop {
        tokio::time::sleep(wait).await;
        if Arc::strong_count(&pending) == 1 {
            return; // the sink task is gone
        }
        loop {
            // While the component is away, each attempt is one small batch, not a whole
            // shipment rendered (megabytes of JSON) only to fail to connect.
            let events = pending.take(if failing { 1 } else { SHIP_BATCH });
            if events.is_empty() {
                wait = SHIP_INTERVAL;
                break;
            }
            if shipper.take_held(&environment, &events) {
                continue;
            }
            let mut usage = Vec::with_capacity(events.iter().map(Vec::len).sum());
            usage.extend(events.iter().flatten().map(AnalyticsEvent::usage));
            let batch = UsageBatchRef {
                gateway_id: &gateway_id,
                environment: &environment,
                events: usage,
            };
            let shipped = shipper.ship(&batch).await;
            drop(batch);
            match shipped {
                Ok(()) => {
                    if failing {
                        tracing::info!("Analytics events are shipped again.");
                        failing = false;
                    }
                    wait = SHIP_INTERVAL;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "Cannot ship analytics events; keeping them and retrying.");
                        failing = true;
                    }
                    pending.put_back(events);
                    wait = (wait * 2).min(MAX_BACKOFF);
                    break;
                }
            }
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

    /// Fails its first `fail` calls, then records what it is given.
    struct Flaky {
        fail: std::sync::atomic::AtomicUsize,
        got: Mutex<Vec<tollgate_model::analytics::UsageBatch>>,
    }

    impl ShipUsage for Flaky {
        fn ship<'a>(
            &'a self,
            batch: &'a UsageBatchRef<'a>,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
            Box::pin(async move {
                if self.fail.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    self.fail.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    return Err("away".into());
                }
                self.got.lock().unwrap().push(batch.to_batch());
                Ok(())
            })
        }
    }

    #[test]
    fn the_pending_buffer_keeps_the_newest_and_a_failed_shipment_goes_back_in_front() {
        let p = Pending {
            batches: Mutex::default(),
            max: 3,
            dropped: metrics::counter!("test_dropped"),
        };
        let e = |ts| AnalyticsEvent {
            timestamp: ts,
            ..AnalyticsEvent::default()
        };
        let stamps =
            |batches: &[Vec<AnalyticsEvent>]| -> Vec<i64> { batches.iter().flatten().map(|e| e.timestamp).collect() };
        p.push(vec![e(1), e(2)]);
        p.push(vec![e(3), e(4)]);
        let first = p.take(2);
        assert_eq!(stamps(&first), [2], "1 was dropped; whole batches up to the bound");
        p.push(vec![e(5), e(6)]);
        assert_eq!(p.lock().events, 3, "4 went as 6 came");
        p.put_back(first);
        let all = p.take(10);
        assert_eq!(stamps(&all), [4, 5, 6], "the oldest go when a put-back overflows");
        assert_eq!(p.lock().events, 0);
        p.push(vec![e(7), e(8), e(9), e(10), e(11)]);
        assert_eq!(
            stamps(&p.take(2)),
            [9, 10, 11],
            "a batch larger than the bound is taken whole"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_shipped_in_order_after_the_component_comes_back() {
        let (queue, rx) = AnalyticsQueue::new(100, 1);
        let flaky = Arc::new(Flaky {
            fail: 2.into(),
            got: Mutex::default(),
        });
        let sinks = Sinks {
            shipper: Some(flaky.clone()),
            gateway_id: "g1".into(),
            environment: "Default".into(),
            max_pending: 100,
            ..Sinks::default()
        };
        tokio::spawn(run_sinks(rx, sinks));
        for ts in 0..3 {
            queue.publish(AnalyticsEvent {
                timestamp: ts,
                status: 200,
                ..AnalyticsEvent::default()
            });
        }
        // Two failures (backoff 2 s, then 4 s) before the third attempt succeeds. While
        // failing, an attempt carries one batch (one event here); the rest follows at once.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let got = flaky.got.lock().unwrap().clone();
        let sizes: Vec<_> = got.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, [1, 2], "the probing shipment, then the rest");
        assert_eq!(got[0].environment, "Default");
        let order: Vec<_> = got.iter().flat_map(|b| &b.events).map(|e| e.timestamp).collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn held_batches_keep_only_the_room_their_events_need() {
        let p = Pending {
            batches: Mutex::default(),
            max: 10_000,
            dropped: metrics::counter!("test_dropped"),
        };
        // A worker's flush hands over a batch made with room for 256 events holding one.
        for _ in 0..1_000 {
            let mut batch = Vec::with_capacity(256);
            batch.push(AnalyticsEvent::default());
            p.push(batch);
        }
        let room: usize = p.lock().batches.iter().map(Vec::capacity).sum();
        assert!(room <= 2_000, "1 000 held events keep room for {room}");
        // Trimmed from the front, a batch gives its room back too.
        p.push((0..9_500).map(|_| AnalyticsEvent::default()).collect());
        let room: usize = p.lock().batches.iter().map(Vec::capacity).sum();
        assert_eq!(p.lock().events, 10_000);
        assert!(room <= 10_000 + 2_000, "{room}");
    }

    #[test]
    fn elk_lines_are_in_the_reference_shape() {
        let event = AnalyticsEvent {
            timestamp: 1_790_000_000_000,
            method: Method::GET,
            status: 429,
            error_code: Some(900_804),
            gateway_latency_ms: 1.4,
            application_id: Some("app-1".into()),
            ..AnalyticsEvent::default()
        };
        let usage = event.usage();
        let line = elk_line(&event, &usage, Some(("Shop", "ann")));
        let (head, json) = line.split_once("properties :").unwrap();
        assert!(head.ends_with("apimMetrics: apim:faulty, "), "{head}");
        let p: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(p["errorType"], "THROTTLED");
        assert_eq!(
            (p["applicationName"].as_str(), p["applicationOwner"].as_str()),
            (Some("Shop"), Some("ann"))
        );
        assert_eq!(
            (p["proxyResponseCode"].as_u64(), p["targetResponseCode"].as_u64()),
            (Some(429), Some(0))
        );
        let ok = AnalyticsEvent {
            status: 200,
            error_code: None,
            backend_latency_ms: Some(0.6),
            ..event
        };
        assert!(elk_line(&ok, &ok.usage(), None).contains("apimMetrics: apim:response, properties :{"));
    }
}
