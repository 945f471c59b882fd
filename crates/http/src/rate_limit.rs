//! Guessing and flooding protection shared by every endpoint that takes a secret or
//! creates an account from an anonymous caller:
//!
//! - [`RequestLimiter`]: a GCRA limiter (governor) per client address and per client id,
//!   counting every request: the OAuth2 token, introspection, revocation and login
//!   endpoints, and self sign-up.
//! - [`LoginGuard`]: counts *failed* password checks per user and per client address and
//!   locks either for a while once it has failed too often, as the reference's account
//!   lock does. It is checked before argon2 runs, so a locked account or address costs
//!   no hashing, even with the right password.
//!
//! Addresses are keyed by [`client_key`]: IPv4 as is, IPv6 by its /64 (one host usually
//! holds a whole /64, so per-address keys would not limit it).

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use std::time::Instant;
use tollgate_model::Error;

/// Keys a limiter forgets when idle beyond this many entries.
const RETAIN_RECENT_AFTER: usize = 10_000;

/// The key an address is limited by: IPv4 (also when IPv4-mapped) as is, IPv6 by /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Per-address and per-client request rates (GCRA): every request counts.
pub struct RequestLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_client: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for RequestLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimiter").finish_non_exhaustive()
    }
}

impl RequestLimiter {
    /// `per_second` sustained requests per key, bursts of twice as many.
    pub fn new(per_second: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_second.max(1).saturating_mul(2)).unwrap_or(rate);
        Self::with_quota(Quota::per_second(rate).allow_burst(burst))
    }

    /// `count` requests per `period` per key, all at once if need be; one more becomes
    /// possible every `period / count`.
    pub fn per_period(count: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
        let every = (period / burst.get()).max(Duration::from_millis(1));
        let quota = Quota::with_period(every).unwrap_or_else(|| Quota::per_second(burst));
        Self::with_quota(quota.allow_burst(burst))
    }

    fn with_quota(quota: Quota) -> Self {
        Self {
            by_ip: RateLimiter::keyed(quota),
            by_client: RateLimiter::keyed(quota),
        }
    }

    fn forget_idle(&self) {
        if self.by_ip.len() > RETAIN_RECENT_AFTER {
            self.by_ip.retain_recent();
        }
        if self.by_client.len() > RETAIN_RECENT_AFTER {
            self.by_client.retain_recent();
        }
    }

    /// Whether one more request from `ip` (and for `client_id`, when known) is allowed.
    pub fn check(&self, ip: Option<IpAddr>, client_id: Option<&str>) -> bool {
        self.forget_idle();
        let ip_ok = ip.is_none_or(|ip| self.by_ip.check_key(&client_key(ip)).is_ok());
        let client_ok = client_id.is_none_or(|c| self.by_client.check_key(&c.to_string()).is_ok());
        ip_ok && client_ok
    }

    /// Whether one more request from `ip` is allowed; if not, how long until one is.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Duration> {
        self.forget_idle();
        self.by_ip
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.by_ip.clock().now()))
    }
}

/// How [`LoginGuard`] counts failed password checks and how long it locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginGuardSettings {
    /// Failed checks in a row for one username before it is locked (0: never locked).
    pub max_failures_per_user: u32,
    /// Failed checks from one client address, within `lockout`, before it is locked
    /// (0: never locked).
    pub max_failures_per_address: u32,
    /// How long a lock lasts; failures older than this are forgotten.
    pub lockout: Duration,
}

impl Default for LoginGuardSettings {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            lockout: Duration::from_secs(300),
        }
    }
}

/// Most users and addresses tracked at once; beyond it, entries that are neither locked
/// nor recent are dropped first.
const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// Failed password checks per user and per client address, and the locks they lead to.
/// Shared by every path that checks a password (HTTP Basic on the REST APIs, the key
/// manager's login page and password grant), so a lock holds on all of them.
#[derive(Debug)]
pub struct LoginGuard {
    settings: LoginGuardSettings,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(LoginGuardSettings::default())
    }
}

impl LoginGuard {
    /// A guard with these limits.
    pub fn new(settings: LoginGuardSettings) -> Self {
        Self {
            settings,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> LoginGuardSettings {
        self.settings
    }

    fn keys(&self, ip: Option<IpAddr>, username: &str) -> Vec<(Key, u32)> {
        let mut keys = Vec::with_capacity(2);
        if self.settings.max_failures_per_user > 0 {
            keys.push((Key::User(username.to_lowercase()), self.settings.max_failures_per_user));
        }
        if let Some(ip) = ip
            && self.settings.max_failures_per_address > 0
        {
            keys.push((Key::Address(client_key(ip)), self.settings.max_failures_per_address));
        }
        keys
    }

    /// `Ok` when neither `username` nor `ip` is locked; otherwise the 429 to answer, with
    /// the time left. Call it before any argon2 work.
    pub fn check(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Error> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, _) in self.keys(ip, username) {
            let Some(until) = entries.get(&key).and_then(|e| e.locked_until) else {
                continue;
            };
            if until > now {
                let left = until - now;
                let description = match key {
                    Key::User(_) => format!(
                        "too many failed sign-in attempts for this user; it is locked for {} more seconds",
                        left.as_secs().max(1)
                    ),
                    Key::Address(_) => format!(
                        "too many failed sign-in attempts from this address; try again in {} seconds",
                        left.as_secs().max(1)
                    ),
                };
                return Err(Error::too_many(description, left));
            }
        }
        Ok(())
    }

    /// Counts a failed check for `username` from `ip`; the one that reaches a limit
    /// locks the user or address for [`LoginGuardSettings::lockout`].
    pub fn failed(&self, ip: Option<IpAddr>, username: &str) {
        let now = Instant::now();
        let lockout = self.settings.lockout;
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, max) in self.keys(ip, username) {
            if !entries.contains_key(&key) && !make_room(&mut entries, now, lockout) {
                tracing::warn!("Too many users and addresses with failed sign-ins to track another one.");
                continue;
            }
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                since: now,
                locked_until: None,
            });
            if now.duration_since(entry.since) >= lockout || entry.locked_until.is_some_and(|u| u <= now) {
                *entry = Entry {
                    failures: 0,
                    since: now,
                    locked_until: None,
                };
            }
            entry.failures += 1;
            if entry.failures >= max {
                entry.locked_until = Some(now + lockout);
                entry.failures = 0;
                entry.since = now;
                match &key {
                    Key::User(user) => {
                        tracing::warn!(user = %user, lockout = ?lockout, "Too many failed sign-ins; user locked.");
                    }
                    Key::Address(addr) => {
                        tracing::warn!(address = %addr, lockout = ?lockout, "Too many failed sign-ins; address locked.");
                    }
                }
                metrics::counter!("tollgate_http_sign_in_lockouts_total", "kind" => match key {
                    Key::User(_) => "user",
                    Key::Address(_) => "address",
                })
                .increment(1);
            }
        }
    }

    /// A successful check: the user's run of failures starts over (the address's does
    /// not, or one good account would let an address guess at all the others).
    pub fn succeeded(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let key = Key::User(username.to_lowercase());
        if entries.get(&key).is_some_and(|e| e.locked_until.is_none()) {
            entries.remove(&key);
        }
    }
}

/// Drops entries that no longer matter (not locked, failures forgotten), then unlocked
/// ones; whether there is room for one more.
fn make_room(entries: &mut HashMap<Key, Entry>, now: Instant, lockout: Duration) -> bool {
    if entries.len() < MAX_TRACKED {
        return true;
    }
    entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now) || now.duration_since(e.since) < lockout);
    if entries.len() >= MAX_TRACKED {
        entries.retain(|_, e| e.locked_until.is_some_and(|u| u > now));
    }
    entries.len() < MAX_TRACKED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_quota_is_refused_per_key() {
        let limiter = RequestLimiter::new(1);
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

    #[test]
    fn a_period_quota_says_how_long_to_wait() {
        let limiter = RequestLimiter::per_period(3, Duration::from_secs(3600));
        let ip: IpAddr = [192, 0, 2, 7].into();
        for _ in 0..3 {
            assert_eq!(limiter.check_address(ip), Ok(()));
        }
        let wait = limiter.check_address(ip).unwrap_err();
        assert!(
            wait > Duration::from_secs(1100) && wait <= Duration::from_secs(1200),
            "{wait:?}"
        );
        assert_eq!(limiter.check_address([192, 0, 2, 8].into()), Ok(()));
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([192, 0, 2, 1]));
    }

    fn guard(per_user: u32, per_address: u32) -> LoginGuard {
        LoginGuard::new(LoginGuardSettings {
            max_failures_per_user: per_user,
            max_failures_per_address: per_address,
            lockout: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_user_is_locked_after_its_limit_of_failures_in_a_row() {
        let g = guard(3, 0);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..2 {
            assert!(g.check(ip, "Erin").is_ok());
            g.failed(ip, "erin");
        }
        // A success starts the run over.
        g.succeeded("ERIN");
        for _ in 0..3 {
            assert!(g.check(ip, "erin").is_ok());
            g.failed(ip, "erin");
        }
        let e = g.check(Some(IpAddr::from([10, 9, 9, 9])), "erin").unwrap_err();
        assert_eq!(e.status(), 429);
        assert!(e.retry_after_secs().is_some_and(|s| (59..=60).contains(&s)), "{e:?}");
        assert!(e.description().contains("this user"), "{}", e.description());
        // A success while locked does not unlock.
        g.succeeded("erin");
        assert!(g.check(ip, "erin").is_err());
        assert!(g.check(ip, "frank").is_ok(), "other users are not locked");
    }

    #[test]
    fn an_address_is_locked_after_its_limit_whatever_the_users() {
        let g = guard(0, 4);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for i in 0..4 {
            assert!(g.check(ip, &format!("user{i}")).is_ok());
            g.failed(ip, &format!("user{i}"));
            g.succeeded("someone-else");
        }
        let e = g.check(ip, "user-new").unwrap_err();
        assert!(e.description().contains("this address"), "{}", e.description());
        assert!(g.check(Some(IpAddr::from([10, 0, 0, 2])), "user-new").is_ok());
        assert!(g.check(None, "user-new").is_ok());
    }

    #[test]
    fn locks_and_old_failures_expire_after_the_lockout() {
        let lockout = Duration::from_millis(300);
        let g = LoginGuard::new(LoginGuardSettings {
            max_failures_per_user: 2,
            max_failures_per_address: 0,
            lockout,
        });
        g.failed(None, "erin");
        std::thread::sleep(lockout + Duration::from_millis(50));
        // The first failure is forgotten: one more does not lock.
        g.failed(None, "erin");
        assert!(g.check(None, "erin").is_ok());
        g.failed(None, "erin");
        assert!(g.check(None, "erin").is_err());
        std::thread::sleep(lockout + Duration::from_millis(50));
        assert!(g.check(None, "erin").is_ok());
        // After the lock, the count starts from zero.
        g.failed(None, "erin");
        assert!(g.check(None, "erin").is_ok());
    }
}
