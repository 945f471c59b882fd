//! Keeps the gateway's runtime state current from the event hub (docs/architecture.md,
//! "Event hub"): boot from the hub's snapshot, then watch the events after it and swap in
//! a new state for each batch; requests read the current state without locking.
//!
//! Static stability: when the hub is unreachable at start, the gateway boots from the
//! snapshot it persisted last (plus the journal of events applied since) and keeps
//! serving; it reconnects with its last sequence, backing off with jitter. A heartbeat
//! saying the hub has sent more than the gateway holds means something was missed: the
//! gateway reconnects from its own sequence. A hub that no longer has the events after
//! that sequence says so, and the gateway loads a new snapshot.

use crate::runtime::RuntimeState;
use arc_swap::ArcSwap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_events::hub::GATEWAY_REPORT_INTERVAL;
use tollgate_events::{Event, GatewayReport, Hub, Snapshot, TenantFilter, WatchItem};

/// A watch that brings nothing (not even a heartbeat) for this long is presumed dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Backoff between reconnection attempts: from the first to the last, doubling, jittered.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(5);

/// After this many journaled events the gateway loads a fresh snapshot (which also
/// rewrites its persisted copy), so the journal stays short.
const JOURNAL_LIMIT: usize = 10_000;

/// Where the served state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StateSource {
    /// Nothing loaded yet.
    None = 0,
    /// The event hub's snapshot (and its events since).
    Hub = 1,
    /// The snapshot persisted under the data directory: the hub was unreachable at start.
    Persisted = 2,
}

/// The state requests read, where it came from, and how the hub connection is.
#[derive(Debug)]
pub struct LiveState {
    current: ArcSwap<RuntimeState>,
    loaded: AtomicBool,
    source: AtomicU8,
    connected: AtomicBool,
    last_contact: AtomicI64,
    hub: Mutex<String>,
    /// The tenants followed (`gateway.tenants`), for the report.
    tenants: Mutex<TenantFilter>,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            current: ArcSwap::default(),
            loaded: AtomicBool::new(false),
            source: AtomicU8::new(StateSource::None as u8),
            connected: AtomicBool::new(false),
            last_contact: AtomicI64::new(0),
            hub: Mutex::new(String::new()),
            tenants: Mutex::new(TenantFilter::all()),
        }
    }
}

impl LiveState {
    /// An empty state (every request 404s until the first snapshot loads).
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn load(&self) -> Arc<RuntimeState> {
        self.current.load_full()
    }

    /// Whether a state has been loaded (from the hub or the persisted snapshot).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Replaces the state.
    pub fn store(&self, state: RuntimeState) {
        metrics::gauge!("tollgate_gateway_state_sequence").set(state.seq as f64);
        // Counted again only when a batch changed the APIs or tenants (most change neither:
        // applications, subscriptions, keys, revocations).
        let previous = self.current.load();
        if !self.loaded.load(Ordering::Acquire) || !state.same_apis_and_tenants(&previous) {
            let held = state.apis_per_tenant();
            metrics::gauge!("tollgate_gateway_tenants").set(held.len() as f64);
            // A tenant no longer held reads 0, not its last count.
            for gone in previous.apis_per_tenant().into_keys().filter(|d| !held.contains_key(d)) {
                metrics::gauge!("tollgate_gateway_tenant_apis", "tenant" => gone).set(0.0);
            }
            for (domain, apis) in held {
                metrics::gauge!("tollgate_gateway_tenant_apis", "tenant" => domain).set(apis as f64);
            }
        }
        drop(previous);
        self.current.store(Arc::new(state));
        self.loaded.store(true, Ordering::Release);
    }

    /// Where the served state came from.
    pub fn source(&self) -> StateSource {
        match self.source.load(Ordering::Acquire) {
            1 => StateSource::Hub,
            2 => StateSource::Persisted,
            _ => StateSource::None,
        }
    }

    fn set_source(&self, source: StateSource) {
        self.source.store(source as u8, Ordering::Release);
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
        metrics::gauge!("tollgate_gateway_hub_connected").set(if connected { 1.0 } else { 0.0 });
        if connected {
            self.touch();
        }
    }

    fn touch(&self) {
        let now = tollgate_model::now_millis();
        self.last_contact.store(now, Ordering::Release);
        metrics::gauge!("tollgate_gateway_hub_last_contact_seconds").set(now as f64 / 1000.0);
    }

    /// What `/health/ready` reports about the gateway's state.
    pub fn report(&self) -> serde_json::Value {
        let state = match (self.is_loaded(), self.source()) {
            (false, _) => "loading state",
            (true, StateSource::Persisted) => "serving the persisted snapshot",
            (true, _) => "state loaded",
        };
        let last_contact = self.last_contact.load(Ordering::Acquire);
        let current = self.load();
        let served = match self.tenants.lock().ok().and_then(|t| t.to_query()) {
            None => serde_json::json!("all"),
            Some(list) => serde_json::json!(list.split(',').collect::<Vec<_>>()),
        };
        serde_json::json!({
            "state": state,
            "sequence": current.seq,
            "hub": self.hub.lock().map(|h| h.clone()).unwrap_or_default(),
            "hubConnected": self.connected.load(Ordering::Acquire),
            "lastHubContact": (last_contact > 0).then_some(last_contact),
            "tenants": {"served": served, "held": current.tenant_counts()},
        })
    }
}

/// The snapshot a gateway persists under its data directory, and the journal of events
/// applied since, so that it can serve after a restart while the hub is down.
#[derive(Debug, Clone)]
pub struct PersistedState {
    snapshot: PathBuf,
    journal: PathBuf,
}

impl PersistedState {
    /// The files for `environment` under `dir`.
    pub fn new(dir: PathBuf, environment: &str) -> Self {
        let safe: String = environment
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            snapshot: dir.join(format!("{safe}.snapshot.json")),
            journal: dir.join(format!("{safe}.events.jsonl")),
        }
    }

    /// Writes `snapshot` (atomically: a temporary file renamed over the old one) and
    /// empties the journal.
    pub async fn save(&self, snapshot: &Snapshot) -> std::io::Result<()> {
        if let Some(dir) = self.snapshot.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let bytes = serde_json::to_vec(snapshot).map_err(std::io::Error::other)?;
        let tmp = self.snapshot.with_extension("json.tmp");
        tokio::fs::write(&tmp, bytes).await?;
        tokio::fs::write(&self.journal, b"").await?;
        tokio::fs::rename(&tmp, &self.snapshot).await
    }

    /// Appends applied events to the journal.
    pub async fn append(&self, events: &[Event]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.journal)
            .await?;
        file.write_all(&lines).await?;
        file.flush().await
    }

    /// The persisted state, if there is one: the snapshot with the journal applied.
    /// Returns the state and how many journal events it replayed.
    pub async fn load(&self) -> Option<(RuntimeState, usize)> {
        let bytes = tokio::fs::read(&self.snapshot).await.ok()?;
        let snapshot: Snapshot = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %self.snapshot.display(), error = %e, "The persisted snapshot is unreadable; ignoring it.");
                return None;
            }
        };
        let mut state = RuntimeState::from_snapshot(snapshot);
        // A line cut short by a crash ends the journal.
        let journal = tokio::fs::read_to_string(&self.journal).await.unwrap_or_default();
        let events: Vec<Event> = journal.lines().map_while(|l| serde_json::from_str(l).ok()).collect();
        state.apply(&events);
        Some((state, events.len()))
    }
}

/// Follows `hub` until `shutdown`: snapshot (or the persisted one), then watch, of the
/// `tenants` this gateway serves (the hub filters). Which hub is followed is recorded at
/// once, before the returned future first runs, so that the node's health report names
/// it from the start.
pub fn follow(
    hub: Arc<dyn Hub>,
    live: Arc<LiveState>,
    environment: String,
    tenants: TenantFilter,
    persisted: Option<PersistedState>,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> {
    if let Ok(mut h) = live.hub.lock() {
        *h = hub.describe();
    }
    if let Ok(mut t) = live.tenants.lock() {
        *t = tenants.clone();
    }
    follow_hub(hub, live, environment, tenants, persisted, shutdown)
}

async fn follow_hub(
    hub: Arc<dyn Hub>,
    live: Arc<LiveState>,
    environment: String,
    tenants: TenantFilter,
    persisted: Option<PersistedState>,
    shutdown: CancellationToken,
) {
    let mut follower = Follower {
        hub,
        live,
        environment,
        tenants,
        persisted,
        journaled: 0,
        backoff: BACKOFF_FIRST,
    };
    // Boot: the hub's snapshot, or (hub down) the persisted one while retrying.
    loop {
        if follower.resnapshot().await {
            break;
        }
        if !follower.live.is_loaded()
            && let Some(p) = &follower.persisted
            && let Some((state, replayed)) = p.load().await
        {
            tracing::warn!(
                environment = %follower.environment,
                apis = state.api_count(),
                seq = state.seq,
                replayed,
                "The event hub is unreachable; serving the persisted snapshot until it answers."
            );
            follower.journaled = replayed;
            follower.live.store(state);
            follower.live.set_source(StateSource::Persisted);
            break;
        }
        if !follower.pause(&shutdown).await {
            return;
        }
    }
    // Watch, reconnecting from the last sequence held.
    loop {
        let since = follower.live.load().seq;
        match follower.hub.watch(since, &follower.tenants).await {
            Ok(mut items) => {
                // Connected: what it serves is the hub's state from here on.
                follower.live.set_connected(true);
                follower.live.set_source(StateSource::Hub);
                follower.backoff = BACKOFF_FIRST;
                if !follower.drain(&mut items, &shutdown).await {
                    return;
                }
                follower.live.set_connected(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, since, "Cannot watch the event hub; the gateway serves its last state and retries.");
            }
        }
        if !follower.pause(&shutdown).await {
            return;
        }
    }
}

struct Follower {
    hub: Arc<dyn Hub>,
    live: Arc<LiveState>,
    environment: String,
    tenants: TenantFilter,
    persisted: Option<PersistedState>,
    journaled: usize,
    backoff: Duration,
}

impl Follower {
    /// Loads a snapshot from the hub and serves it; false when the hub did not answer.
    async fn resnapshot(&mut self) -> bool {
        match self.hub.snapshot(&self.environment, &self.tenants).await {
            Ok(snapshot) => {
                // Serve first, then persist (the file is for the next start).
                let state = RuntimeState::from_snapshot(snapshot.clone());
                tracing::info!(environment = %self.environment, apis = state.api_count(), seq = state.seq, "Gateway runtime state loaded.");
                self.live.store(state);
                self.live.set_source(StateSource::Hub);
                self.live.touch();
                metrics::counter!("tollgate_gateway_snapshots_loaded_total").increment(1);
                self.journaled = 0;
                if let Some(p) = &self.persisted
                    && let Err(e) = p.save(&snapshot).await
                {
                    tracing::warn!(error = %e, "Cannot persist the gateway snapshot; a restart while the hub is down will serve nothing.");
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot load the gateway's runtime snapshot from the event hub.");
                false
            }
        }
    }

    /// Applies a watch's items until it ends (true) or shutdown (false).
    async fn drain(&mut self, items: &mut tollgate_events::Watch, shutdown: &CancellationToken) -> bool {
        let mut held_back: Option<WatchItem> = None;
        loop {
            let item = match held_back.take() {
                Some(item) => Ok(Some(item)),
                None => tokio::select! {
                    item = tokio::time::timeout(IDLE_TIMEOUT, items.recv()) => item,
                    () = shutdown.cancelled() => return false,
                },
            };
            match item {
                Err(_) => {
                    tracing::warn!(timeout = ?IDLE_TIMEOUT, "No event or heartbeat from the hub; reconnecting.");
                    return true;
                }
                Ok(None) => {
                    tracing::info!("The event hub closed the watch; reconnecting.");
                    return true;
                }
                Ok(Some(WatchItem::Events(mut events))) => {
                    self.live.touch();
                    // Whatever else has already arrived goes into the same new state: a
                    // gateway that fell behind catches up in a few large steps.
                    while let Ok(next) = items.try_recv() {
                        match next {
                            WatchItem::Events(more) => events.extend(more),
                            other => {
                                held_back = Some(other);
                                break;
                            }
                        }
                    }
                    let current = self.live.load();
                    let fresh: Vec<Event> = events.into_iter().filter(|e| e.seq > current.seq).collect();
                    if fresh.is_empty() {
                        continue;
                    }
                    let mut next = (*current).clone();
                    let applied = next.apply(&fresh);
                    metrics::counter!("tollgate_gateway_events_applied_total").increment(applied as u64);
                    self.live.store(next);
                    if let Some(p) = &self.persisted {
                        if let Err(e) = p.append(&fresh).await {
                            tracing::warn!(error = %e, "Cannot journal events; the persisted state will be older.");
                        }
                        self.journaled += fresh.len();
                        if self.journaled >= JOURNAL_LIMIT {
                            self.resnapshot().await;
                        }
                    }
                }
                Ok(Some(WatchItem::Progress { seq })) => {
                    // The events up to `seq` left out were other tenants': this state is
                    // as current as the hub's (a later heartbeat must not read as a gap).
                    self.live.touch();
                    let current = self.live.load();
                    if current.seq < seq {
                        let mut next = (*current).clone();
                        next.seq = seq;
                        self.live.store(next);
                    }
                }
                Ok(Some(WatchItem::Heartbeat { seq })) => {
                    self.live.touch();
                    let held = self.live.load().seq;
                    if held < seq {
                        tracing::warn!(
                            held,
                            hub = seq,
                            "The hub has sent events this gateway does not hold; catching up."
                        );
                        metrics::counter!("tollgate_gateway_gaps_detected_total").increment(1);
                        return true;
                    }
                }
                Ok(Some(WatchItem::Resnapshot)) => {
                    tracing::info!(
                        "The event hub no longer holds the events after this gateway's state; loading a new snapshot."
                    );
                    if !self.resnapshot().await {
                        return true;
                    }
                    // Watch again from the new snapshot's sequence.
                    return true;
                }
            }
        }
    }

    /// Waits the jittered backoff (doubling it); false on shutdown.
    async fn pause(&mut self, shutdown: &CancellationToken) -> bool {
        let wait = jittered(self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_LAST);
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = shutdown.cancelled() => false,
        }
    }
}

/// Reports what the gateway serves to the hub (deployment acknowledgements): soon after
/// each change of its state, and every [`GATEWAY_REPORT_INTERVAL`] otherwise, until
/// `shutdown`.
pub async fn report_loop(hub: Arc<dyn Hub>, live: Arc<LiveState>, gateway_id: String, shutdown: CancellationToken) {
    let mut reported_seq = -1;
    let mut reported_at: Option<std::time::Instant> = None;
    // The revisions the hub last accepted from this gateway, to send only changes.
    let mut accepted: Option<(Vec<String>, Vec<String>)> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = shutdown.cancelled() => return,
        }
        if !live.is_loaded() {
            continue;
        }
        let state = live.load();
        let due = reported_at.is_none_or(|t| t.elapsed() >= GATEWAY_REPORT_INTERVAL);
        if state.seq == reported_seq && !due {
            continue;
        }
        let served = state.revisions();
        let unchanged = accepted.as_ref() == Some(&served);
        let mut report = GatewayReport {
            gateway_id: gateway_id.clone(),
            environment: state.environment.clone(),
            sequence: state.seq,
            revisions: Vec::new(),
            failed: Vec::new(),
            unchanged,
        };
        if !unchanged {
            (report.revisions, report.failed) = served.clone();
        }
        match hub.report(&report).await {
            Ok(()) => accepted = Some(served),
            Err(e) => {
                // Send everything next time (the hub may have lost this gateway's report).
                accepted = None;
                tracing::debug!(error = %e, "Cannot report the gateway's revisions to the hub; retrying later.");
            }
        }
        // Failed or not, the next attempt waits for a change or the interval.
        reported_seq = state.seq;
        reported_at = Some(std::time::Instant::now());
    }
}

/// This gateway node's id: kept in `dir/gateway-id`, made on first use.
pub fn gateway_id(dir: &std::path::Path) -> std::io::Result<String> {
    let path = dir.join("gateway-id");
    if let Ok(id) = std::fs::read_to_string(&path)
        && !id.trim().is_empty()
    {
        return Ok(id.trim().to_string());
    }
    let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
    let id = format!("gw-{:016x}{:016x}", random(), random());
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, &id)?;
    Ok(id)
}

/// `base` scaled by a random factor in [0.5, 1.5), so that gateways do not reconnect in
/// lockstep after a hub restart.
fn jittered(base: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let factor = 0.5 + (random % 1000) as f64 / 1000.0;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(1000));
            assert!(
                d >= Duration::from_millis(500) && d < Duration::from_millis(1500),
                "{d:?}"
            );
        }
    }

    /// A hub whose first watch brings `items`; it records the tenants and `since` asked for.
    struct ScriptedHub {
        items: Mutex<Vec<WatchItem>>,
        asked: Mutex<Vec<(i64, TenantFilter)>>,
    }

    impl Hub for ScriptedHub {
        fn snapshot<'a>(
            &'a self,
            environment: &'a str,
            tenants: &'a TenantFilter,
        ) -> tollgate_events::HubFuture<'a, Snapshot> {
            Box::pin(async move {
                self.asked.lock().unwrap().push((-1, tenants.clone()));
                Ok(Snapshot {
                    seq: 5,
                    environment: environment.into(),
                    ..Snapshot::default()
                })
            })
        }
        fn watch<'a>(
            &'a self,
            since: i64,
            tenants: &'a TenantFilter,
        ) -> tollgate_events::HubFuture<'a, tollgate_events::Watch> {
            Box::pin(async move {
                self.asked.lock().unwrap().push((since, tenants.clone()));
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let items = std::mem::take(&mut *self.items.lock().unwrap());
                for item in items {
                    tx.send(item).await.unwrap();
                }
                // Later watches stay open and silent.
                tokio::spawn(async move { tx.closed().await });
                Ok(rx)
            })
        }
        fn report<'a>(&'a self, _: &'a GatewayReport) -> tollgate_events::HubFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    #[tokio::test]
    async fn progress_past_other_tenants_events_keeps_a_limited_gateway_current() {
        let event = Event {
            seq: 6,
            kind: tollgate_events::EventKind::ApplicationDeleted,
            tenant_id: tollgate_model::TenantId::DEFAULT,
            environment: None,
            payload: serde_json::json!({"id": "nobody"}),
            created_at: 1,
        };
        // Events 7 to 9 were another tenant's: the hub says it is past them, then idles.
        let hub = Arc::new(ScriptedHub {
            items: Mutex::new(vec![
                WatchItem::Events(vec![event]),
                WatchItem::Progress { seq: 9 },
                WatchItem::Heartbeat { seq: 9 },
            ]),
            asked: Mutex::new(Vec::new()),
        });
        let live = Arc::new(LiveState::new());
        let shutdown = CancellationToken::new();
        let tenants = TenantFilter::only(["acme.com"]);
        let task = tokio::spawn(follow(
            hub.clone(),
            live.clone(),
            "Default".into(),
            tenants.clone(),
            None,
            shutdown.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while live.load().seq < 9 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(live.load().seq, 9, "the progress is the state's sequence");
        // The heartbeat after it is no gap: the first watch stays open.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked = hub.asked.lock().unwrap().clone();
        assert_eq!(
            asked,
            [(-1, tenants.clone()), (5, tenants)],
            "one snapshot, one watch, both limited"
        );
        assert_eq!(live.report()["tenants"]["served"], serde_json::json!(["acme.com"]));
        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_persisted_snapshot_and_journal_restore_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let p = PersistedState::new(dir.path().join("gw"), "Default");
        assert!(p.load().await.is_none(), "nothing persisted yet");
        let snapshot = Snapshot {
            seq: 3,
            environment: "Default".into(),
            ..Snapshot::default()
        };
        p.save(&snapshot).await.unwrap();
        let event = |seq| Event {
            seq,
            kind: tollgate_events::EventKind::ApplicationDeleted,
            tenant_id: tollgate_model::TenantId::DEFAULT,
            environment: None,
            payload: serde_json::json!({"id": "nobody"}),
            created_at: 1,
        };
        p.append(&[event(4), event(5)]).await.unwrap();
        // A crash mid-line leaves a partial last line: it is ignored.
        let mut journal = std::fs::read_to_string(&p.journal).unwrap();
        journal.push_str("{\"seq\": 6, \"ki");
        std::fs::write(&p.journal, journal).unwrap();
        let (state, replayed) = p.load().await.unwrap();
        assert_eq!((state.seq, replayed), (5, 2));
        // A new snapshot empties the journal.
        p.save(&Snapshot { seq: 9, ..snapshot }).await.unwrap();
        let (state, replayed) = p.load().await.unwrap();
        assert_eq!((state.seq, replayed), (9, 0));
    }
}
