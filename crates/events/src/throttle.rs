//! The seam between gateways and the traffic manager's shared counters (decision 009):
//! a gateway sends, per counter key and window, what it admitted without a grant and
//! how many permits it wants; the traffic manager adds the first, grants what the limit
//! still allows of the second, and answers with the window's global count. In all-in-one
//! the traffic manager implements [`Counters`] in-process; across processes the gateway
//! posts the same [`SyncRequest`] to `POST /internal/v1/throttle/sync`.

use crate::hub::HubFuture;
use serde::{Deserialize, Serialize};

/// Most counter entries one sync may carry.
pub const MAX_SYNC_ITEMS: usize = 10_000;

/// Longest counter key accepted.
pub const MAX_KEY_LEN: usize = 512;

/// One gateway's batch of counter updates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The calling gateway's stable id (for the count of live gateways).
    pub gateway_id: String,
    /// One entry per counter key and window.
    pub items: Vec<CounterDelta>,
}

/// What a gateway reports and asks for one counter in one window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterDelta {
    /// The counter: policy kind, policy and the rendered key (`sub:Gold:app:api`).
    pub key: String,
    /// First millisecond of the window (epoch).
    pub window_start: i64,
    /// First millisecond after it (the counter expires then).
    pub window_end: i64,
    /// The window's limit (requests, or bytes for bandwidth limits).
    pub limit: u64,
    /// Admitted without a grant since the last sync (fallback mode, bandwidth charged
    /// after the response, a key's first call): added to the count unconditionally.
    #[serde(default)]
    pub used: u64,
    /// Permits wanted: granted up to what the limit still allows.
    #[serde(default)]
    pub want: u64,
}

/// The traffic manager's answer: one entry per entry asked, in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    /// Gateways that synced in the last few seconds (for the fallback share `L / N`).
    pub live_gateways: u32,
    /// Per counter asked.
    pub items: Vec<CounterGrant>,
}

/// The outcome for one counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterGrant {
    /// The counter key, as asked.
    pub key: String,
    /// The window, as asked.
    pub window_start: i64,
    /// Permits granted to this gateway (0 when the limit is reached).
    pub granted: u64,
    /// The window's global count after this sync (granted permits and reported use).
    pub count: u64,
}

impl SyncRequest {
    /// The first problem with the batch, as `(field, message)`, for a 400 answer.
    pub fn problem(&self) -> Option<(String, String)> {
        if self.gateway_id.trim().is_empty() || self.gateway_id.len() > 255 {
            return Some(("gatewayId".into(), "must be 1 to 255 characters".into()));
        }
        if self.items.len() > MAX_SYNC_ITEMS {
            return Some(("items".into(), format!("at most {MAX_SYNC_ITEMS} entries per sync")));
        }
        self.items.iter().enumerate().find_map(|(i, item)| {
            let field = |f: &str| format!("items[{i}].{f}");
            if item.key.is_empty() || item.key.len() > MAX_KEY_LEN {
                Some((field("key"), format!("must be 1 to {MAX_KEY_LEN} characters")))
            } else if item.window_end <= item.window_start {
                Some((field("windowEnd"), "must be after windowStart".into()))
            } else if item.limit == 0 {
                Some((field("limit"), "must be 1 or more".into()))
            } else {
                None
            }
        })
    }
}

/// Why the shared counters could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("throttle counters unavailable: {0}")]
pub struct CountersError(pub String);

/// Where a gateway's throttle counters are shared: the traffic manager, in-process or
/// over HTTP.
pub trait Counters: Send + Sync {
    /// Adds the batch's use, grants its wants, and answers with the global counts.
    fn sync(&self, request: SyncRequest) -> HubFuture<'_, SyncResponse>;
    /// Where the counters are, for logs and health reports.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_field() {
        let item = CounterDelta {
            key: "sub:Gold:a:b".into(),
            window_start: 0,
            window_end: 60_000,
            limit: 10,
            used: 0,
            want: 1,
        };
        let ok = SyncRequest {
            gateway_id: "g1".into(),
            items: vec![item.clone()],
        };
        assert_eq!(ok.problem(), None);
        let mut bad = ok.clone();
        bad.gateway_id = " ".into();
        assert_eq!(bad.problem().unwrap().0, "gatewayId");
        let mut bad = ok.clone();
        bad.items[0].window_end = 0;
        assert_eq!(bad.problem().unwrap().0, "items[0].windowEnd");
        let mut bad = ok.clone();
        bad.items[0].limit = 0;
        assert_eq!(bad.problem().unwrap().0, "items[0].limit");
        let mut bad = ok;
        bad.items[0].key = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(bad.problem().unwrap().0, "items[0].key");
    }
}
