//! Keeps the gateway's runtime state current: boot from the hub's snapshot (retrying with
//! backoff until the hub answers), then read the events after it and swap in a new state
//! for each batch. Requests read the current state without locking.

use crate::runtime::RuntimeState;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_events::Hub;

/// Most events read per poll.
const BATCH: i64 = 1000;

/// The state requests read, and whether it has been loaded yet.
#[derive(Debug, Default)]
pub struct LiveState {
    current: ArcSwap<RuntimeState>,
    loaded: AtomicBool,
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

    /// Whether a snapshot has been loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Replaces the state.
    pub fn store(&self, state: RuntimeState) {
        self.current.store(Arc::new(state));
        self.loaded.store(true, Ordering::Release);
    }
}

/// Follows the hub until `shutdown`: snapshot, then events every `poll`.
pub async fn follow(
    hub: Arc<dyn Hub>,
    live: Arc<LiveState>,
    environment: String,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    let snapshot = loop {
        match hub.snapshot(&environment).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "Cannot load the gateway's runtime snapshot; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    let state = RuntimeState::from_snapshot(snapshot);
    tracing::info!(environment = %environment, apis = state.api_count(), seq = state.seq, "Gateway runtime state loaded.");
    live.store(state);
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let seq = live.load().seq;
        match hub.events_since(seq, BATCH).await {
            Ok(events) if events.is_empty() => {}
            Ok(events) => {
                let mut next = (*live.load()).clone();
                let applied = next.apply(&events);
                metrics::counter!("tollgate_gateway_events_applied_total").increment(applied as u64);
                live.store(next);
            }
            Err(e) => tracing::warn!(error = %e, "Cannot read events from the hub; the gateway serves its last state."),
        }
    }
}
