//! User passwords: argon2id in PHC form. Hashing costs tens of milliseconds and ~19 MiB
//! per hash by design, so it runs on the blocking pool, never on a request-handling
//! thread, and at most [`limit_concurrency`] hashes run at once in the process: callers
//! beyond wait in a bounded queue, and beyond the queue are refused (503), so that a burst
//! of sign-in attempts cannot exhaust memory or threads.

use crate::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Callers that may wait for a hashing slot, per slot; more are refused as busy.
pub const WAITING_PER_SLOT: usize = 32;

/// The process's hashing slots and what the tests (and operators) can observe of them.
struct Hashing {
    slots: usize,
    semaphore: Semaphore,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    started: AtomicU64,
}

static HASHING: OnceLock<Hashing> = OnceLock::new();

impl Hashing {
    fn new(slots: usize) -> Self {
        let slots = if slots == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            slots
        };
        Self {
            slots,
            semaphore: Semaphore::new(slots),
            waiting: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
        }
    }

    /// A slot, waiting for one if the queue has room.
    async fn slot(&'static self) -> Result<SemaphorePermit<'static>> {
        if let Ok(permit) = self.semaphore.try_acquire() {
            return Ok(permit);
        }
        let queued = Queued::join(&self.waiting);
        if queued.ahead >= self.slots.saturating_mul(WAITING_PER_SLOT) {
            return Err(busy());
        }
        self.semaphore.acquire().await.map_err(|_| busy())
    }
}

fn busy() -> Error {
    Error::Domain(tollgate_model::Error::Unavailable(
        "the server is busy checking other passwords; retry in a moment".into(),
    ))
}

/// One place in the waiting queue, left when dropped (also when the caller gives up).
struct Queued<'a> {
    waiting: &'a AtomicUsize,
    ahead: usize,
}

impl<'a> Queued<'a> {
    fn join(waiting: &'a AtomicUsize) -> Self {
        let ahead = waiting.fetch_add(1, Ordering::AcqRel);
        Self { waiting, ahead }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A hash being computed: counted in flight until dropped (with the blocking task).
struct InFlight(&'static Hashing);

impl InFlight {
    fn enter(h: &'static Hashing) -> Self {
        h.started.fetch_add(1, Ordering::AcqRel);
        let now = h.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        h.peak_in_flight.fetch_max(now, Ordering::AcqRel);
        Self(h)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn hashing() -> &'static Hashing {
    HASHING.get_or_init(|| Hashing::new(0))
}

/// Sets how many hashes may run at once (0: one per CPU core). Takes effect only before
/// the first hash (call it at start-up); returns whether it did.
pub fn limit_concurrency(slots: usize) -> bool {
    HASHING.set(Hashing::new(slots)).is_ok()
}

/// What the hashing slots have seen since the process started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingStats {
    /// How many hashes may run at once.
    pub slots: usize,
    /// Hashes started (each costs argon2 time and memory).
    pub started: u64,
    /// Hashes running now.
    pub in_flight: usize,
    /// The most hashes that ever ran at once.
    pub peak_in_flight: usize,
}

/// The hashing counters: how a test (or an operator) sees that the cap holds.
pub fn stats() -> HashingStats {
    let h = hashing();
    HashingStats {
        slots: h.slots,
        started: h.started.load(Ordering::Acquire),
        in_flight: h.in_flight.load(Ordering::Acquire),
        peak_in_flight: h.peak_in_flight.load(Ordering::Acquire),
    }
}

/// What a limit on password checks (failed sign-ins) needs from the hashing: to refuse a
/// check right before argon2 runs, once a slot is held, and to learn each outcome before
/// the slot is freed. Then every check that waited for a slot sees the failures of all the
/// checks that ran before it, and no more checks hash than the limit plus the slots.
pub trait Gate: Send + Sync + 'static {
    /// Whether the check may run now; the error is returned to the caller as is.
    fn admit(&self) -> Result<(), tollgate_model::Error>;
    /// Whether the password matched (called on the blocking thread, slot still held).
    fn outcome(&self, matched: bool);
}

/// No limit: every check runs.
impl Gate for () {
    fn admit(&self) -> Result<(), tollgate_model::Error> {
        Ok(())
    }
    fn outcome(&self, _matched: bool) {}
}

/// Runs `work` on the blocking pool in a hashing slot. The slot is held by the blocking
/// task itself, so a caller that gives up does not free it while argon2 still runs.
async fn in_slot<T: Send + 'static>(
    admit: impl FnOnce() -> Result<(), tollgate_model::Error>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let h = hashing();
    let permit = h.slot().await?;
    admit()?;
    let running = InFlight::enter(h);
    tokio::task::spawn_blocking(move || {
        let out = work();
        // Out of the count first, then the slot is freed.
        drop(running);
        drop(permit);
        out
    })
    .await
    .map_err(|e| Error::Corrupt(format!("password hashing task failed: {e}")))
}

/// Hashes `password` with argon2id and a random salt.
pub async fn hash(password: String) -> Result<String> {
    in_slot(
        || Ok(()),
        move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::Corrupt(format!("cannot hash password: {e}")))
        },
    )
    .await?
}

/// Whether `password` matches the stored PHC `hash` (the comparison is constant-time).
pub async fn verify(password: String, hash: String) -> Result<bool> {
    verify_gated(password, hash, ()).await
}

/// As [`verify`], once `gate` admits it, telling `gate` the outcome (see [`Gate`]).
pub async fn verify_gated(password: String, hash: String, gate: impl Gate) -> Result<bool> {
    let gate = std::sync::Arc::new(gate);
    let admit = gate.clone();
    in_slot(
        move || admit.admit(),
        move || {
            let matched = Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok();
            gate.outcome(matched);
            matched
        },
    )
    .await
}

/// A valid argon2id hash of a random password. Verifying against it when a user does
/// not exist costs the same time as a real check, so response times do not reveal
/// which usernames exist.
pub(crate) const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$dG9sbGdhdGVkdW1teXNhbHQ$Zm5iEujHnVSvnUhs6WVWwTxwDuOtKrpgsplDi7S/Q5s";

/// Generates a random password of `len` characters from an unambiguous alphabet.
pub fn generate(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| Error::Corrupt(format!("no randomness available: {e}")))?;
    // 256 % 57 leaves a small bias; rejection sampling removes it.
    let limit = 256 - (256 % ALPHABET.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 1];
    for b in bytes {
        let mut b = usize::from(b);
        while b >= limit {
            getrandom::fill(&mut buf).map_err(|e| Error::Corrupt(format!("no randomness available: {e}")))?;
            b = usize::from(buf[0]);
        }
        out.push(char::from(ALPHABET[b % ALPHABET.len()]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!verify("wrong horse".into(), h).await.unwrap());
    }

    #[tokio::test]
    async fn dummy_hash_is_a_valid_hash_that_matches_nothing_guessable() {
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify("admin".into(), DUMMY_HASH.into()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_there_are_slots() {
        assert!(limit_concurrency(2), "the first setting takes effect");
        assert!(!limit_concurrency(8), "later ones do not");
        let tasks: Vec<_> = (0..12)
            .map(|i| tokio::spawn(verify(format!("guess-{i}"), DUMMY_HASH.to_string())))
            .collect();
        for t in tasks {
            assert!(!t.await.unwrap().unwrap());
        }
        let s = stats();
        assert_eq!(s.slots, 2);
        assert_eq!(s.started, 12);
        assert_eq!(s.in_flight, 0);
        assert!(s.peak_in_flight <= 2, "{s:?}");
        assert!(s.peak_in_flight >= 1, "{s:?}");
    }

    #[tokio::test]
    async fn a_gate_that_refuses_skips_the_hash() {
        let before = stats().started;
        struct Locked;
        impl Gate for Locked {
            fn admit(&self) -> Result<(), tollgate_model::Error> {
                Err(tollgate_model::Error::Forbidden("locked".into()))
            }
            fn outcome(&self, _: bool) {
                panic!("a refused check has no outcome");
            }
        }
        let refused = verify_gated("x".into(), DUMMY_HASH.into(), Locked).await;
        assert!(matches!(
            refused,
            Err(Error::Domain(tollgate_model::Error::Forbidden(_)))
        ));
        assert_eq!(stats().started, before, "no hash started");
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate(24).unwrap();
        let b = generate(24).unwrap();
        assert_eq!(a.chars().count(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
