//! Guessing protection for the token and login endpoints: a GCRA limiter per client IP
//! and per client id (governor), answering `429 slow_down` beyond the configured rate.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Keys the limiter forgets when idle beyond this many entries.
const RETAIN_RECENT_AFTER: usize = 10_000;

/// Per-IP and per-client limits of the token endpoint.
pub struct TokenRateLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_client: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for TokenRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRateLimiter").finish_non_exhaustive()
    }
}

impl TokenRateLimiter {
    /// `per_second` sustained requests per key, bursts of twice as many.
    pub fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Self {
            by_ip: RateLimiter::keyed(quota),
            by_client: RateLimiter::keyed(quota),
        }
    }

    /// Whether one more request from `ip` (and for `client_id`, when known) is allowed.
    pub fn check(&self, ip: Option<IpAddr>, client_id: Option<&str>) -> bool {
        if self.by_ip.len() > RETAIN_RECENT_AFTER {
            self.by_ip.retain_recent();
        }
        if self.by_client.len() > RETAIN_RECENT_AFTER {
            self.by_client.retain_recent();
        }
        let ip_ok = ip.is_none_or(|ip| self.by_ip.check_key(&ip).is_ok());
        let client_ok = client_id.is_none_or(|c| self.by_client.check_key(&c.to_string()).is_ok());
        ip_ok && client_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_quota_is_refused_per_key() {
        let limiter = TokenRateLimiter::new(1);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.check(Some(ip), Some("a")));
        assert!(limiter.check(Some(ip), Some("b")));
        // Third request from the same IP within the second exceeds the burst of 2.
        assert!(!limiter.check(Some(ip), Some("c")));
        // Another IP for a fresh client still passes.
        assert!(limiter.check(Some([10, 0, 0, 2].into()), Some("d")));
        // The same client from another IP is limited by its own key.
        assert!(limiter.check(Some([10, 0, 0, 3].into()), Some("d")));
        assert!(!limiter.check(Some([10, 0, 0, 4].into()), Some("d")));
    }
}
