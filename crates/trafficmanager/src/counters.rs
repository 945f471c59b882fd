//! The traffic manager's shared throttle counters (decision 009): per counter key and
//! window, the count of permits granted and of use reported. Grants never take a window
//! past its limit, so gateways that admit only from grants together admit at most the
//! limit. Counters live in this process, or in Redis (`traffic_manager.redis_url`) so
//! that two traffic managers share them instead of each granting the whole limit (the
//! reference's product-apim#11462).

use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tollgate_events::HubFuture;
use tollgate_events::throttle::{CounterGrant, Counters, CountersError, SyncRequest, SyncResponse};

/// A gateway that has not synced for this long no longer counts as live.
pub const LIVE_GATEWAY_WINDOW: Duration = Duration::from_secs(5);

/// How long a counter outlives its window, so that late reports of use still land.
const GRACE_MS: i64 = 5_000;

/// Prefix of every Redis key Tollgate writes.
const REDIS_PREFIX: &str = "tollgate:throttle";

/// Why the counters could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CounterStoreError {
    /// The Redis URL is not one the client understands.
    #[error("traffic_manager.redis_url is not a Redis URL (redis://host:6379/0): {0}")]
    BadUrl(String),
    /// Redis did not answer.
    #[error("cannot reach Redis at traffic_manager.redis_url: {0}")]
    Unreachable(String),
}

/// Shared counters, in memory or in Redis.
pub struct CounterStore {
    backend: Backend,
    /// Gateways seen, for the in-memory count of live gateways.
    gateways: Mutex<HashMap<String, Instant>>,
}

enum Backend {
    Memory(Mutex<MemoryCounters>),
    Redis {
        conn: ConnectionManager,
        script: redis::Script,
    },
}

#[derive(Default)]
struct MemoryCounters {
    /// (key, window start, window end) → (count, expiry in epoch ms). The end is part of
    /// the identity: after a policy's window changes length, a new window may start where
    /// an old one did.
    counts: HashMap<(String, i64, i64), (u64, i64)>,
    pruned_at: i64,
}

impl std::fmt::Debug for CounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Adds use and grants permits for every entry, and returns `[granted, count]` pairs; then
/// records the gateway as live and returns the live count last. KEYS: the gateways set,
/// then one counter key per entry. ARGV: now, gateway id, live window, then per entry
/// limit, used, want, expiry.
const SYNC_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], 60000)
local out = {}
for i = 2, #KEYS do
  local base = 3 + (i - 2) * 4
  local limit = tonumber(ARGV[base + 1])
  local used = tonumber(ARGV[base + 2])
  local want = tonumber(ARGV[base + 3])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0') + used
  local grant = 0
  if want > 0 and count < limit then grant = math.min(want, limit - count) end
  count = count + grant
  if used + grant > 0 then
    redis.call('INCRBY', KEYS[i], used + grant)
    redis.call('PEXPIREAT', KEYS[i], ARGV[base + 4])
  end
  out[#out + 1] = grant
  out[#out + 1] = count
end
out[#out + 1] = redis.call('ZCARD', KEYS[1])
return out
";

impl CounterStore {
    /// Counters kept in this process (one traffic manager).
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::Memory(Mutex::default()),
            gateways: Mutex::default(),
        }
    }

    /// Counters kept in Redis at `url`, shared by every traffic manager using it.
    pub async fn redis(url: &str) -> Result<Self, CounterStoreError> {
        let client = redis::Client::open(url).map_err(|e| CounterStoreError::BadUrl(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| CounterStoreError::Unreachable(e.to_string()))?;
        Ok(Self {
            backend: Backend::Redis {
                conn,
                script: redis::Script::new(SYNC_SCRIPT),
            },
            gateways: Mutex::default(),
        })
    }

    /// Applies one gateway's batch (see [`Counters::sync`]).
    pub async fn apply(&self, request: &SyncRequest) -> Result<SyncResponse, CountersError> {
        let now = tollgate_model::now_millis();
        match &self.backend {
            Backend::Memory(counters) => {
                let live = self.note_gateway(&request.gateway_id);
                let mut counters = counters
                    .lock()
                    .map_err(|_| CountersError("the counter lock was poisoned".into()))?;
                if now - counters.pruned_at > 1_000 {
                    counters.counts.retain(|_, (_, expires)| *expires > now);
                    counters.pruned_at = now;
                }
                let items = request
                    .items
                    .iter()
                    .map(|item| {
                        let entry = counters
                            .counts
                            .entry((item.key.clone(), item.window_start, item.window_end))
                            .or_insert((0, item.window_end + GRACE_MS));
                        entry.0 = entry.0.saturating_add(item.used);
                        let granted = item.want.min(item.limit.saturating_sub(entry.0));
                        entry.0 += granted;
                        CounterGrant {
                            key: item.key.clone(),
                            window_start: item.window_start,
                            granted,
                            count: entry.0,
                        }
                    })
                    .collect();
                Ok(SyncResponse {
                    live_gateways: live,
                    items,
                })
            }
            Backend::Redis { conn, script } => {
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(format!("{REDIS_PREFIX}:gateways"))
                    .arg(now)
                    .arg(&request.gateway_id)
                    .arg(LIVE_GATEWAY_WINDOW.as_millis() as i64);
                for item in &request.items {
                    invocation
                        .key(format!(
                            "{REDIS_PREFIX}:{}:{}:{}",
                            item.window_start, item.window_end, item.key
                        ))
                        .arg(item.limit)
                        .arg(item.used)
                        .arg(item.want)
                        .arg(item.window_end + GRACE_MS);
                }
                let mut conn = conn.clone();
                let out: Vec<u64> = invocation
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| CountersError(format!("Redis: {e}")))?;
                if out.len() != request.items.len() * 2 + 1 {
                    return Err(CountersError("Redis answered an unexpected shape".into()));
                }
                let items = request
                    .items
                    .iter()
                    .zip(out.chunks_exact(2))
                    .map(|(item, pair)| CounterGrant {
                        key: item.key.clone(),
                        window_start: item.window_start,
                        granted: pair[0],
                        count: pair[1],
                    })
                    .collect();
                Ok(SyncResponse {
                    live_gateways: u32::try_from(out[out.len() - 1]).unwrap_or(u32::MAX),
                    items,
                })
            }
        }
    }

    /// Records that `gateway` synced; returns how many gateways synced recently.
    fn note_gateway(&self, gateway: &str) -> u32 {
        let Ok(mut gateways) = self.gateways.lock() else {
            return 1;
        };
        let now = Instant::now();
        match gateways.get_mut(gateway) {
            Some(seen) => *seen = now,
            None => {
                gateways.insert(gateway.to_string(), now);
            }
        }
        gateways.retain(|_, seen| now.duration_since(*seen) < LIVE_GATEWAY_WINDOW);
        u32::try_from(gateways.len()).unwrap_or(u32::MAX)
    }
}

impl Counters for CounterStore {
    fn sync(&self, request: SyncRequest) -> HubFuture<'_, SyncResponse> {
        Box::pin(async move {
            self.apply(&request)
                .await
                .map_err(|e| tollgate_events::HubError(e.to_string()))
        })
    }

    fn describe(&self) -> String {
        match &self.backend {
            Backend::Memory(_) => "in-process counters".into(),
            Backend::Redis { .. } => "Redis counters".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_events::throttle::CounterDelta;

    fn ask(gateway: &str, used: u64, want: u64) -> SyncRequest {
        SyncRequest {
            gateway_id: gateway.into(),
            items: vec![CounterDelta {
                key: "sub:Gold:app:api".into(),
                window_start: 60_000,
                window_end: 120_000,
                limit: 10,
                used,
                want,
            }],
        }
    }

    async fn grants_never_pass_the_limit(store: CounterStore) {
        let a = store.apply(&ask("a", 0, 4)).await.unwrap();
        assert_eq!((a.items[0].granted, a.items[0].count), (4, 4));
        // Use reported without a grant counts, and is never refused.
        let b = store.apply(&ask("b", 3, 5)).await.unwrap();
        assert_eq!((b.items[0].granted, b.items[0].count), (3, 10));
        assert_eq!(b.live_gateways, 2);
        let c = store.apply(&ask("a", 2, 1)).await.unwrap();
        assert_eq!((c.items[0].granted, c.items[0].count), (0, 12));
    }

    #[tokio::test]
    async fn a_window_of_another_length_is_another_counter() {
        let store = CounterStore::in_memory();
        store.apply(&ask("a", 10, 0)).await.unwrap();
        // The policy now counts per 10 s: that window starts where the minute did.
        let mut shorter = ask("a", 0, 2);
        shorter.items[0].window_end = 70_000;
        let answer = store.apply(&shorter).await.unwrap();
        assert_eq!((answer.items[0].granted, answer.items[0].count), (2, 2));
    }

    #[tokio::test]
    async fn in_memory_grants_never_pass_the_limit() {
        grants_never_pass_the_limit(CounterStore::in_memory()).await;
    }

    #[tokio::test]
    async fn redis_grants_never_pass_the_limit() {
        let Some(url) = tollgate_testkit::redis_url() else {
            return;
        };
        let store = CounterStore::redis(&url).await.unwrap();
        // A fresh window per run, so reruns do not see earlier counts.
        let start = tollgate_model::now_millis() * 1000;
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(format!("{REDIS_PREFIX}:gateways"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut request = ask("a", 0, 4);
        request.items[0].window_start = start;
        request.items[0].window_end = start + 60_000;
        let a = store.apply(&request).await.unwrap();
        assert_eq!((a.items[0].granted, a.items[0].count), (4, 4));
        request.gateway_id = "b".into();
        request.items[0].used = 3;
        request.items[0].want = 5;
        let b = store.apply(&request).await.unwrap();
        assert_eq!((b.items[0].granted, b.items[0].count), (3, 10));
        assert_eq!(b.live_gateways, 2);
    }
}
