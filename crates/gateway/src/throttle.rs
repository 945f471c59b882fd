//! The gateway's throttle counters (decision 009). Every worker of the process shares
//! them; the request path only touches this map, never the network. A background task
//! syncs them with the traffic manager in batches:
//!
//! - **Far from a limit** a call is admitted optimistically when the key's estimated
//!   global count (the traffic manager's last count, plus what this gateway admitted
//!   since, plus the cluster's rate times how stale that count is) leaves room for it;
//!   the use is reported at the next sync.
//! - **Near a limit** a call is admitted only from permits the traffic manager granted
//!   this gateway, and it never grants past the limit.
//! - **Traffic manager unreachable**: each gateway admits its share of each limit
//!   (`limit / live gateways`, `gateway.throttle_fallback = "local_share"`) or nothing
//!   (`"fail_closed"`), and reports what it admitted once the traffic manager answers
//!   again, before using any new grant, so the window's total stays right.

use dashmap::DashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tollgate_events::throttle::{CounterDelta, Counters, SyncRequest};
use tollgate_model::throttle_window::{Limit, Window};

/// What a gateway does while the traffic manager cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fallback {
    /// Admit this gateway's share of each limit (`limit / live gateways`).
    #[default]
    LocalShare,
    /// Refuse every call that a limit applies to.
    FailClosed,
}

/// A key not synced for this long is synced even without news, so that its global count
/// stays fresh; its estimate allows for everyone's admissions over this lag.
const FAR_SYNC: Duration = Duration::from_millis(500);

/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the
/// window ends), as clients of Kong and Tyk expect them.
pub(crate) fn rate_limit_headers(
    headers: &mut impl crate::answer::SetHeaders,
    limit: u64,
    remaining: u64,
    reset_after: u64,
) {
    use axum::http::HeaderName;
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
    let (mut l, mut r, mut s) = (itoa::Buffer::new(), itoa::Buffer::new(), itoa::Buffer::new());
    headers.set(&[
        (LIMIT, l.format(limit).as_bytes()),
        (REMAINING, r.format(remaining).as_bytes()),
        (RESET, s.format(reset_after).as_bytes()),
    ]);
}

/// A counter unused for this long past its window is forgotten.
const FORGET_AFTER_MS: i64 = 60_000;

/// The outcome of counting one call against one limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Admitted; `remaining` (estimated, cluster-wide) until `reset_at` (epoch ms).
    Admit {
        /// The window's limit.
        limit: u64,
        /// Estimated calls left in the window.
        remaining: u64,
        /// When the window ends.
        reset_at: i64,
    },
    /// Refused: until the window ends when it is used up, or for a moment while this
    /// gateway waits for permits (or for the traffic manager).
    Deny {
        /// The window's limit.
        limit: u64,
        /// When the window ends.
        reset_at: i64,
        /// When a retry may pass: `reset_at` for a used-up window, a second from now
        /// otherwise.
        retry_at: i64,
    },
}

/// One counter's state at this gateway, for its current window.
#[derive(Debug)]
struct KeyState {
    limit: u64,
    window: Window,
    /// Granted to this gateway and not yet used.
    permits: u64,
    /// Admitted without a grant, not yet reported.
    unreported: u64,
    /// Admitted at this gateway in this window (for the fallback share).
    admitted: u64,
    /// The traffic manager's count for this window at `synced_at`.
    global: u64,
    /// When the last answer for this window arrived (0: none yet).
    synced_at: i64,
    /// The traffic manager said the window is used up.
    exhausted: bool,
    /// Near the limit: admit only from permits until the window ends.
    leased: bool,
    /// A sync asking permits for this key is in flight.
    asking: bool,
    /// The rest of the cluster's admissions per millisecond (smoothed): the count's
    /// growth between two answers, less what this gateway added.
    others_rate: f64,
    /// Whether `others_rate` was measured (two answers in one window); until then the rest
    /// of the cluster is assumed to call as often as this gateway, per live gateway.
    others_known: bool,
    /// What this gateway added to the window (reported use and granted permits).
    own_sent: u64,
    /// When, and at what count of others' additions, the rate was last sampled.
    rate_at: i64,
    others_at: u64,
    /// This gateway's demand per millisecond (smoothed).
    local_rate: f64,
    demand_since_sync: u64,
    rate_measured_at: i64,
    last_seen: i64,
    bandwidth: bool,
}

impl KeyState {
    fn new(limit: &Limit, window: Window, now: i64) -> Self {
        Self {
            limit: limit.amount,
            window,
            permits: 0,
            unreported: 0,
            admitted: 0,
            global: 0,
            synced_at: 0,
            exhausted: false,
            leased: false,
            asking: false,
            others_rate: 0.0,
            others_known: false,
            own_sent: 0,
            rate_at: window.start,
            others_at: 0,
            local_rate: 0.0,
            demand_since_sync: 0,
            rate_measured_at: now,
            last_seen: now,
            bandwidth: limit.bandwidth,
        }
    }

    /// The estimated cluster-wide count now: what the traffic manager counted, what this
    /// gateway admitted since, and the rest of the cluster's rate over the staleness (so a
    /// lone gateway's estimate is exact).
    fn estimate(&self, now: i64, horizon_ms: f64, live_gateways: u32) -> f64 {
        let stale = if self.synced_at > 0 {
            (now - self.synced_at) as f64
        } else {
            (now - self.window.start) as f64
        };
        let others = if self.others_known {
            self.others_rate
        } else {
            self.local_rate * f64::from(live_gateways.saturating_sub(1))
        };
        // Rounded: a rate decayed to almost nothing must not cost a whole call.
        self.global as f64 + self.unreported as f64 + (others * (stale + horizon_ms)).round()
    }

    /// Permits worth asking for: two sync intervals of this gateway's demand, at least one.
    fn wanted(&self, interval_ms: f64) -> u64 {
        let target = (self.local_rate * interval_ms * 2.0).ceil().max(1.0) as u64;
        target.saturating_sub(self.permits)
    }
}

/// The gateway's throttle counters, shared by its workers.
#[derive(Debug)]
pub struct Throttler {
    keys: DashMap<Box<str>, KeyState, foldhash::fast::RandomState>,
    /// Use of windows that ended before it was reported.
    leftovers: Mutex<Vec<CounterDelta>>,
    wake: Notify,
    shared: AtomicBool,
    /// Whether the traffic manager has ever answered (before that, calls are optimistic).
    contacted: AtomicBool,
    live_gateways: AtomicU32,
    last_contact: AtomicI64,
    fallback: Fallback,
    interval: Duration,
    gateway_id: String,
    counters: Mutex<String>,
}

impl Throttler {
    /// Counters for gateway `gateway_id`, syncing every `interval`.
    pub fn new(gateway_id: String, interval: Duration, fallback: Fallback) -> Arc<Self> {
        Arc::new(Self {
            keys: DashMap::default(),
            leftovers: Mutex::default(),
            wake: Notify::new(),
            shared: AtomicBool::new(true),
            contacted: AtomicBool::new(false),
            live_gateways: AtomicU32::new(1),
            last_contact: AtomicI64::new(0),
            fallback,
            interval: interval.max(Duration::from_millis(1)),
            gateway_id,
            counters: Mutex::new(String::new()),
        })
    }

    fn interval_ms(&self) -> f64 {
        self.interval.as_secs_f64() * 1000.0
    }

    /// Whether counts are shared with the traffic manager (false: fallback mode).
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    /// Counts one call of `cost` against `key`'s `limit` at `now` (epoch ms). For a
    /// bandwidth limit `cost` is 0 here and the bytes are [`charge`](Self::charge)d
    /// after the response. A refused call of a limit that is not `enforce`d is admitted
    /// and counted anyway (stopOnQuotaReach = false).
    pub fn acquire(&self, key: &str, limit: &Limit, cost: u64, enforce: bool, now: i64) -> Verdict {
        let window = limit.window(now);
        let mut wake = false;
        let verdict = {
            let mut entry = match self.keys.get_mut(key) {
                Some(e) => e,
                None => self
                    .keys
                    .entry(key.into())
                    .or_insert_with(|| KeyState::new(limit, window, now)),
            };
            let st = entry.value_mut();
            if st.window != window {
                self.roll(key, st, window);
            }
            st.limit = limit.amount;
            st.bandwidth = limit.bandwidth;
            st.last_seen = now;
            st.demand_since_sync += cost.max(1);
            let admitted = if !self.is_shared() {
                match self.fallback {
                    Fallback::FailClosed => false,
                    Fallback::LocalShare => {
                        let share = limit
                            .amount
                            .div_ceil(u64::from(self.live_gateways.load(Ordering::Relaxed).max(1)));
                        let ok = st.admitted + cost <= share && (cost > 0 || st.admitted < share);
                        if ok {
                            st.unreported += cost;
                        }
                        ok
                    }
                }
            } else if cost > 0 && st.permits >= cost {
                st.permits -= cost;
                if st.permits < st.wanted(self.interval_ms()) {
                    wake = true;
                }
                true
            } else if st.exhausted {
                false
            } else {
                let horizon = self.interval_ms() + FAR_SYNC.as_secs_f64() * 1000.0;
                let live = self.live_gateways.load(Ordering::Relaxed);
                // With other gateways, this one's own coming calls count too: every gateway then
                // turns to permits at about the same count, whatever its share of the traffic
                // (a gateway still admitting optimistically while the others hold permits
                // would over-admit by what it has not reported yet).
                let own = if live > 1 {
                    (st.local_rate * horizon).round()
                } else {
                    0.0
                };
                let room = st.estimate(now, horizon, live) + own + cost as f64 <= st.limit as f64
                    // Until the others' rate is known, no more than this gateway's share.
                    && (st.others_known || live <= 1 || st.admitted + cost <= st.limit / u64::from(live));
                if room && (!st.leased || st.bandwidth) {
                    st.unreported += cost;
                    true
                } else {
                    // Near the limit: from here on only granted permits admit.
                    st.leased = true;
                    wake = true;
                    false
                }
            };
            let admitted = if !admitted && !enforce {
                // stopOnQuotaReach = false: beyond the quota, counted (for billing), not refused.
                st.unreported += cost;
                metrics::counter!("tollgate_gateway_throttle_over_quota_total").increment(1);
                true
            } else {
                admitted
            };
            if admitted {
                st.admitted += cost;
            }
            let used = (st.global + st.unreported).max(st.admitted);
            if admitted {
                Verdict::Admit {
                    limit: st.limit,
                    remaining: st.limit.saturating_sub(used).saturating_add(st.permits).min(st.limit),
                    reset_at: st.window.end,
                }
            } else {
                let used_up = st.exhausted || (!self.is_shared() && self.fallback == Fallback::LocalShare);
                Verdict::Deny {
                    limit: st.limit,
                    reset_at: st.window.end,
                    retry_at: if used_up {
                        st.window.end
                    } else {
                        (now + 1_000).min(st.window.end)
                    },
                }
            }
        };
        if wake {
            self.wake.notify_one();
        }
        verdict
    }

    /// Charges `bytes` of a bandwidth limit after the response.
    pub fn charge(&self, key: &str, bytes: u64) {
        if let Some(mut st) = self.keys.get_mut(key) {
            st.unreported += bytes;
            st.admitted += bytes;
        }
    }

    /// Moves a key to a new window; use not yet reported goes out with the next sync.
    fn roll(&self, key: &str, st: &mut KeyState, window: Window) {
        if st.unreported > 0
            && let Ok(mut leftovers) = self.leftovers.lock()
        {
            leftovers.push(CounterDelta {
                key: key.to_string(),
                window_start: st.window.start,
                window_end: st.window.end,
                limit: st.limit,
                used: st.unreported,
                want: 0,
            });
        }
        st.window = window;
        st.permits = 0;
        st.unreported = 0;
        st.admitted = 0;
        st.global = 0;
        st.synced_at = 0;
        st.exhausted = false;
        st.leased = false;
        st.own_sent = 0;
        st.rate_at = window.start;
        st.others_at = 0;
    }

    /// What `/health/ready` says about throttling.
    pub fn report(&self) -> serde_json::Value {
        let mode = match (self.is_shared(), self.fallback) {
            (true, _) => "shared",
            (false, Fallback::LocalShare) => "fallback_local_share",
            (false, Fallback::FailClosed) => "fallback_fail_closed",
        };
        let last = self.last_contact.load(Ordering::Relaxed);
        serde_json::json!({
            "mode": mode,
            "counters": self.counters.lock().map(|c| c.clone()).unwrap_or_default(),
            "liveGateways": self.live_gateways.load(Ordering::Relaxed),
            "lastContact": (last > 0).then_some(last),
            "keys": self.keys.len(),
        })
    }

    /// Builds the next batch: keys with use to report, permits to ask, or a stale count;
    /// takes their unreported use into the batch. Forgets idle counters.
    /// With `flush` (while the traffic manager is unreachable, and so on recovery) every
    /// unreported use goes out at once.
    fn batch(&self, now: i64, flush: bool) -> (SyncRequest, Vec<u64>) {
        let interval_ms = self.interval_ms();
        let far = FAR_SYNC.as_millis() as i64;
        let live = self.live_gateways.load(Ordering::Relaxed);
        let mut items = self
            .leftovers
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let mut sent = items.iter().map(|d| d.used).collect::<Vec<_>>();
        self.keys
            .retain(|_, st| st.unreported > 0 || now - st.last_seen < FORGET_AFTER_MS.max(st.window.len() * 2));
        for mut entry in self.keys.iter_mut() {
            let (key, st) = entry.pair_mut();
            let current = st.window.start <= now && now < st.window.end;
            if !current && st.unreported == 0 {
                continue;
            }
            // Rates: demand here, and the cluster's from the counts' growth.
            let elapsed = (now - st.rate_measured_at).max(1) as f64;
            if elapsed >= interval_ms {
                let rate = st.demand_since_sync as f64 / elapsed;
                st.local_rate = if st.local_rate == 0.0 {
                    rate
                } else {
                    0.5 * st.local_rate + 0.5 * rate
                };
                st.demand_since_sync = 0;
                st.rate_measured_at = now;
            }
            let want = if st.leased && !st.exhausted && !st.asking && !st.bandwidth && self.is_shared() {
                // Ask when fewer than half the permits worth holding are left.
                let w = st.wanted(interval_ms);
                if st.permits < w { w } else { 0 }
            } else {
                0
            };
            // Near: the limit could be reached before the next far sync.
            let horizon = interval_ms + far as f64;
            // Until the others' rate is measured, a key shared with other gateways is synced
            // as if near, so that the measurement comes within two intervals.
            let near = st.leased
                || (!st.others_known && live > 1)
                || (st.estimate(now, horizon, live) + st.local_rate * horizon) * 1.25 >= st.limit as f64;
            let stale = now - st.synced_at >= if near { interval_ms as i64 } else { far };
            let due = want > 0
                || (st.unreported > 0 && (near || stale || flush))
                || (current && stale && st.last_seen >= st.window.start);
            if !due {
                continue;
            }
            st.asking |= want > 0;
            sent.push(st.unreported);
            items.push(CounterDelta {
                key: key.to_string(),
                window_start: st.window.start,
                window_end: st.window.end,
                limit: st.limit,
                used: std::mem::take(&mut st.unreported),
                want,
            });
        }
        (
            SyncRequest {
                gateway_id: self.gateway_id.clone(),
                items,
            },
            sent,
        )
    }

    /// Applies the traffic manager's answer.
    fn apply(&self, request: &SyncRequest, response: &tollgate_events::throttle::SyncResponse, now: i64) {
        self.live_gateways
            .store(response.live_gateways.max(1), Ordering::Relaxed);
        for (asked, grant) in request.items.iter().zip(&response.items) {
            let Some(mut st) = self.keys.get_mut(asked.key.as_str()) else {
                continue;
            };
            if asked.want > 0 {
                st.asking = false;
            }
            if st.window.start != grant.window_start || st.window.end != asked.window_end {
                continue;
            }
            // The rest of the cluster's rate: the growth of what others added to this
            // window, over at least 20 ms (answers near a limit come close together). Once
            // the window is used up the count stops growing whatever the demand: keep the
            // rate measured before, for the next window's start.
            st.own_sent += asked.used + grant.granted;
            let others = grant.count.saturating_sub(st.own_sent);
            // The first sample spans two sync intervals at least, so that the other gateways
            // have reported at all (until then their rate is assumed, and capped by a share).
            let span = if st.others_known {
                20
            } else {
                (2.0 * self.interval_ms()) as i64
            };
            if grant.count < st.limit && now - st.rate_at >= span {
                let rate = others.saturating_sub(st.others_at) as f64 / (now - st.rate_at) as f64;
                st.others_rate = if st.others_known {
                    0.5 * st.others_rate + 0.5 * rate
                } else {
                    rate
                };
                st.others_known = true;
                st.rate_at = now;
                st.others_at = others;
            }
            tracing::debug!(key = %asked.key, window = st.window.start, used = asked.used, want = asked.want,
                granted = grant.granted, count = grant.count, admitted = st.admitted, leased = st.leased,
                others_rate = st.others_rate, others_known = st.others_known, local_rate = st.local_rate,
                live = response.live_gateways, "Throttle answer.");
            st.permits += grant.granted;
            st.global = grant.count;
            st.synced_at = now;
            st.exhausted = grant.count >= st.limit && st.permits == 0;
        }
    }

    /// Gives a failed batch's use back to the counters, to report with the next one.
    fn restore(&self, request: SyncRequest, sent: &[u64]) {
        for (delta, used) in request.items.into_iter().zip(sent) {
            match self.keys.get_mut(delta.key.as_str()) {
                Some(mut st) if st.window.start == delta.window_start && st.window.end == delta.window_end => {
                    st.unreported += used;
                    if delta.want > 0 {
                        st.asking = false;
                    }
                }
                _ if *used > 0 => {
                    if let Ok(mut leftovers) = self.leftovers.lock() {
                        leftovers.push(CounterDelta {
                            used: *used,
                            want: 0,
                            ..delta
                        });
                    }
                }
                _ => {}
            }
        }
    }

    /// Syncs the counters with `counters` until `shutdown`: every interval, at once when a
    /// key needs permits, and at least every second as a heartbeat; backs off while the
    /// traffic manager cannot be reached, in fallback mode meanwhile.
    pub async fn run(self: Arc<Self>, counters: Arc<dyn Counters>, shutdown: CancellationToken) {
        if let Ok(mut c) = self.counters.lock() {
            *c = counters.describe();
        }
        let mut failures = 0u32;
        let mut last_sync = 0i64;
        loop {
            let pause = if failures == 0 {
                self.interval
            } else {
                (self.interval * 2u32.saturating_pow(failures.min(5))).min(Duration::from_secs(1))
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified(), if failures == 0 => {}
                () = tokio::time::sleep(pause) => {}
            }
            let now = tollgate_model::now_millis();
            let heartbeat = now - last_sync >= 1_000 || failures > 0;
            let (request, sent) = self.batch(now, failures > 0);
            if request.items.is_empty() && !heartbeat {
                continue;
            }
            last_sync = now;
            let result = tokio::time::timeout(Duration::from_secs(1), counters.sync(request.clone())).await;
            match result {
                Ok(Ok(response)) if response.items.len() == request.items.len() => {
                    self.apply(&request, &response, tollgate_model::now_millis());
                    self.last_contact.store(now, Ordering::Relaxed);
                    self.contacted.store(true, Ordering::Relaxed);
                    if !self.shared.swap(true, Ordering::Relaxed) {
                        tracing::info!(counters = %counters.describe(), "Throttle counters reachable again: limits are shared across gateways.");
                        metrics::gauge!("tollgate_gateway_throttle_fallback").set(0.0);
                    }
                    failures = 0;
                }
                other => {
                    let reason = match other {
                        Ok(Ok(_)) => "the answer did not match the request".to_string(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "timed out after 1 s".to_string(),
                    };
                    self.restore(request, &sent);
                    failures = failures.saturating_add(1);
                    if self.shared.swap(false, Ordering::Relaxed) {
                        tracing::warn!(counters = %counters.describe(), error = %reason, fallback = ?self.fallback,
                            "Throttle counters unreachable: falling back until they answer.");
                        metrics::gauge!("tollgate_gateway_throttle_fallback").set(1.0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_events::HubFuture;
    use tollgate_events::throttle::SyncResponse;
    use tollgate_model::throttle_window::TimeUnit;

    fn per_minute(n: u64) -> Limit {
        Limit {
            amount: n,
            bandwidth: false,
            unit: TimeUnit::Minute,
            unit_time: 1,
        }
    }

    /// The traffic manager's arithmetic, in memory, for unit tests.
    #[derive(Default)]
    struct Memory(Mutex<std::collections::HashMap<(String, i64), u64>>, AtomicBool);

    impl Counters for Memory {
        fn sync(&self, request: SyncRequest) -> HubFuture<'_, SyncResponse> {
            Box::pin(async move {
                if self.1.load(Ordering::Relaxed) {
                    return Err(tollgate_events::HubError("down".into()));
                }
                let mut counts = self.0.lock().unwrap();
                let items = request
                    .items
                    .iter()
                    .map(|d| {
                        let c = counts.entry((d.key.clone(), d.window_start)).or_default();
                        *c += d.used;
                        let granted = d.want.min(d.limit.saturating_sub(*c));
                        *c += granted;
                        tollgate_events::throttle::CounterGrant {
                            key: d.key.clone(),
                            window_start: d.window_start,
                            granted,
                            count: *c,
                        }
                    })
                    .collect();
                Ok(SyncResponse {
                    live_gateways: 3,
                    items,
                })
            })
        }
        fn describe(&self) -> String {
            "memory".into()
        }
    }

    fn sync(t: &Throttler, m: &Memory, now: i64) {
        let (request, sent) = t.batch(now, !t.is_shared());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        match rt.block_on(m.sync(request.clone())) {
            Ok(r) => {
                t.apply(&request, &r, now);
                t.shared.store(true, Ordering::Relaxed);
            }
            Err(_) => {
                t.restore(request, &sent);
                t.shared.store(false, Ordering::Relaxed);
            }
        }
    }

    fn admitted(v: Verdict) -> bool {
        matches!(v, Verdict::Admit { .. })
    }

    #[test]
    fn one_gateway_admits_exactly_the_limit_per_window() {
        let t = Throttler::new("g".into(), Duration::from_millis(50), Fallback::LocalShare);
        let m = Memory::default();
        let limit = per_minute(10);
        for window in 0..3 {
            let start = 60_000 * (window + 10);
            let mut n = 0;
            for i in 0..30 {
                let now = start + i * 2_000;
                if admitted(t.acquire("k", &limit, 1, true, now)) {
                    n += 1;
                }
                sync(&t, &m, now + 1);
            }
            assert_eq!(n, 10, "window {window}");
            // A used-up window is refused until it ends.
            let end = start + 60_000;
            assert_eq!(
                t.acquire("k", &limit, 1, true, end - 1),
                Verdict::Deny {
                    limit: 10,
                    reset_at: end,
                    retry_at: end
                }
            );
        }
    }

    /// Admitted per window when `n` gateways share calls at 3× `limit` per minute,
    /// round-robin or 80/10/10, syncing every 50 ms and at once when a gateway is out of
    /// permits (a simulated clock; the traffic manager's arithmetic in memory).
    fn simulate(n: usize, skewed: bool, limit: Limit, windows: i64) -> Vec<u64> {
        let m = Memory::default();
        let gateways: Vec<_> = (0..n)
            .map(|i| Throttler::new(format!("g{i}"), Duration::from_millis(50), Fallback::LocalShare))
            .collect();
        let len = limit.window(0).len();
        let calls = (limit.amount * 3) as i64;
        let start = 60_000 * 1_000;
        let mut admitted = vec![0; windows as usize];
        let mut next_sync = start;
        for i in 0..calls * windows {
            let now = start + i * len / calls;
            while next_sync <= now {
                for g in &gateways {
                    sync(g, &m, next_sync);
                }
                next_sync += 50;
            }
            let slot = (i % 10) as usize;
            let g = if skewed && n == 3 {
                match slot {
                    0..=7 => 0,
                    8 => 1,
                    _ => 2,
                }
            } else {
                (i as usize) % n
            };
            let key_state = |g: &Throttler| g.keys.get("k").map(|s| (s.leased, s.exhausted));
            match gateways[g].acquire("k", &limit, 1, true, now) {
                Verdict::Admit { .. } => admitted[((now - start) / len) as usize] += 1,
                Verdict::Deny { .. } => {
                    if key_state(&gateways[g]) == Some((true, false)) {
                        sync(&gateways[g], &m, now + 1);
                    }
                }
            }
        }
        admitted
    }

    #[test]
    fn gateways_together_admit_the_limit_within_the_stated_bound() {
        for n in 1..=3 {
            for skewed in [false, true] {
                if skewed && n != 3 {
                    continue;
                }
                let per_second = Limit {
                    unit: TimeUnit::Second,
                    ..per_minute(1_000)
                };
                for limit in [per_minute(10), per_minute(600), per_minute(60_000), per_second] {
                    let admitted = simulate(n, skewed, limit, 3);
                    let limit = limit.amount;
                    eprintln!("N={n} skewed={skewed} L={limit}: {admitted:?}");
                    for a in &admitted {
                        let ok = if limit == 10 {
                            (10..=11).contains(a)
                        } else {
                            (*a as f64 - limit as f64).abs() <= limit as f64 * 0.02
                        };
                        assert!(ok, "N={n} skewed={skewed} L={limit}: admitted {admitted:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_rate_decayed_to_almost_nothing_does_not_cost_a_call() {
        let t = Throttler::new("g".into(), Duration::from_millis(50), Fallback::LocalShare);
        let limit = per_minute(2);
        let start = 60_000 * 13;
        t.acquire("k", &limit, 1, true, start);
        if let Some(mut st) = t.keys.get_mut("k") {
            st.others_known = true;
            st.others_rate = 1e-10;
        }
        assert!(admitted(t.acquire("k", &limit, 1, true, start + 1)));
        assert!(!admitted(t.acquire("k", &limit, 1, true, start + 2)));
    }

    #[test]
    fn counted_only_limits_admit_and_count() {
        let t = Throttler::new("g".into(), Duration::from_millis(50), Fallback::LocalShare);
        let m = Memory::default();
        let limit = per_minute(3);
        let start = 60_000 * 7;
        for i in 0..10 {
            assert!(admitted(t.acquire("k", &limit, 1, false, start + i * 100)));
            sync(&t, &m, start + i * 100 + 1);
        }
        assert_eq!(m.0.lock().unwrap()[&("k".to_string(), start)], 10);
    }

    #[test]
    fn fallback_admits_a_share_and_reports_it_on_recovery() {
        let t = Throttler::new("g".into(), Duration::from_millis(50), Fallback::LocalShare);
        let m = Memory::default();
        let limit = per_minute(30);
        let start = 60_000 * 9;
        // Learn the live count (3), then lose the traffic manager.
        t.acquire("k", &limit, 1, true, start);
        sync(&t, &m, start + 1);
        m.1.store(true, Ordering::Relaxed);
        sync(&t, &m, start + 2);
        assert!(!t.is_shared());
        assert_eq!(t.report()["mode"], "fallback_local_share");
        let n = (0..30)
            .filter(|i| admitted(t.acquire("k", &limit, 1, true, start + 10 + i)))
            .count();
        // 10 is this gateway's share; one was admitted before the outage.
        assert_eq!(n, 9);
        m.1.store(false, Ordering::Relaxed);
        sync(&t, &m, start + 100);
        assert!(t.is_shared());
        assert_eq!(
            m.0.lock().unwrap()[&("k".to_string(), start)],
            10,
            "the outage's admissions are counted"
        );

        let closed = Throttler::new("c".into(), Duration::from_millis(50), Fallback::FailClosed);
        closed.shared.store(false, Ordering::Relaxed);
        // Refused for now, not for the whole window: the traffic manager may come back.
        assert_eq!(
            closed.acquire("k", &limit, 1, true, start),
            Verdict::Deny {
                limit: 30,
                reset_at: start + 60_000,
                retry_at: start + 1_000
            }
        );
        assert_eq!(closed.report()["mode"], "fallback_fail_closed");
    }

    #[test]
    fn use_of_an_ended_window_is_still_reported() {
        let t = Throttler::new("g".into(), Duration::from_millis(50), Fallback::LocalShare);
        let m = Memory::default();
        let limit = per_minute(100);
        let start = 60_000 * 11;
        assert!(admitted(t.acquire("k", &limit, 1, true, start + 59_999)));
        assert!(admitted(t.acquire("k", &limit, 1, true, start + 60_000)));
        sync(&t, &m, start + 60_001);
        let counts = m.0.lock().unwrap();
        assert_eq!(counts[&("k".to_string(), start)], 1);
        assert_eq!(counts[&("k".to_string(), start + 60_000)], 1);
    }
}
