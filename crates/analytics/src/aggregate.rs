//! The in-memory side of aggregation: shipped events are counted per minute and
//! dimensions until the next flush writes them (and their hour and day roll-ups) to the
//! AM database. Memory stays bounded: past [`Aggregator::max_keys`] distinct keys, new
//! keys are dropped and counted (`tollgate_analytics_dropped_total`).

use hashbrown::{Equivalent, HashMap};
use std::sync::Mutex;
use tollgate_model::analytics::{UsageBatch, UsageEvent, UsageEventRef};
use tollgate_store::analytics::{Granularity, UsageCounts, UsageKey};

/// Counts of the events received since the last flush.
#[derive(Debug)]
pub struct Aggregator {
    pending: Mutex<HashMap<UsageKey, UsageCounts>>,
    max_keys: usize,
    received: metrics::Counter,
    dropped: metrics::Counter,
}

/// What a flush writes: the minute rows and their roll-ups, per granularity.
pub type Drained = Vec<tollgate_store::analytics::Rows>;

/// A [`UsageKey`] borrowed from an event. Its fields are in the same order and hash the
/// same way (a `&str` hashes as its `String`), so it finds the owned key without copying
/// nine strings per event.
#[derive(Hash, Eq)]
struct UsageKeyRef<'a> {
    bucket_start: i64,
    environment: &'a str,
    api_id: &'a str,
    api_name: &'a str,
    api_version: &'a str,
    resource: &'a str,
    method: &'a str,
    application_id: &'a str,
    subscriber: &'a str,
    status: i64,
    error_code: i64,
}

impl UsageKeyRef<'_> {
    fn to_owned(&self) -> UsageKey {
        UsageKey {
            bucket_start: self.bucket_start,
            environment: self.environment.to_string(),
            api_id: self.api_id.to_string(),
            api_name: self.api_name.to_string(),
            api_version: self.api_version.to_string(),
            resource: self.resource.to_string(),
            method: self.method.to_string(),
            application_id: self.application_id.to_string(),
            subscriber: self.subscriber.to_string(),
            status: self.status,
            error_code: self.error_code,
        }
    }
}

/// Whether two borrowed strings are equal, known at once when they are the same string:
/// consecutive events of one API and caller borrow most of their key from the same
/// deployed API and token claims.
fn same_str(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

impl PartialEq for UsageKeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bucket_start == other.bucket_start
            && self.status == other.status
            && self.error_code == other.error_code
            && same_str(self.api_id, other.api_id)
            && same_str(self.resource, other.resource)
            && same_str(self.method, other.method)
            && same_str(self.application_id, other.application_id)
            && same_str(self.subscriber, other.subscriber)
            && same_str(self.api_name, other.api_name)
            && same_str(self.api_version, other.api_version)
            && same_str(self.environment, other.environment)
    }
}

impl Equivalent<UsageKey> for UsageKeyRef<'_> {
    fn equivalent(&self, key: &UsageKey) -> bool {
        self.bucket_start == key.bucket_start
            && self.status == key.status
            && self.error_code == key.error_code
            && self.api_id == key.api_id
            && self.resource == key.resource
            && self.method == key.method
            && self.application_id == key.application_id
            && self.subscriber == key.subscriber
            && self.api_name == key.api_name
            && self.api_version == key.api_version
            && self.environment == key.environment
    }
}

impl Aggregator {
    /// An aggregator holding at most `max_keys` distinct minute keys between flushes.
    pub fn new(max_keys: usize) -> Self {
        Self {
            pending: Mutex::default(),
            max_keys: max_keys.max(1),
            received: metrics::counter!("tollgate_analytics_events_received_total"),
            dropped: metrics::counter!("tollgate_analytics_dropped_total"),
        }
    }

    /// The most distinct keys held between flushes.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Counts a gateway's batch; returns how many of its events were kept.
    pub fn add(&self, batch: &UsageBatch) -> usize {
        self.add_events(&batch.environment, batch.events.iter().map(UsageEvent::borrowed))
    }

    /// Counts the calls of a gateway serving `environment`, from borrowed events (an
    /// in-process gateway's, which are never copied into owned ones); returns how many
    /// were kept.
    ///
    /// Consecutive events with one key (most of a busy gateway's batch) are counted
    /// together first and looked up once.
    pub fn add_events<'a>(&self, environment: &str, events: impl IntoIterator<Item = UsageEventRef<'a>>) -> usize {
        let mut kept = 0;
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut run: Option<(UsageKeyRef<'_>, UsageCounts)> = None;
        for e in events {
            // Looked up by reference: a key is copied only when it is new this minute.
            let key = UsageKeyRef {
                bucket_start: Granularity::Minute.floor(e.timestamp),
                environment,
                api_id: e.api_id,
                api_name: e.api,
                api_version: e.api_version,
                resource: e.resource,
                method: e.method,
                application_id: e.application_id.unwrap_or_default(),
                subscriber: e.subscriber.unwrap_or_default(),
                status: i64::from(e.status),
                error_code: e.error_code.unwrap_or(0),
            };
            match &mut run {
                Some((same, counts)) if *same == key => {
                    counts.record(e.gateway_latency_ms, e.backend_latency_ms, e.response_bytes);
                }
                _ => {
                    if let Some((done, counts)) = run.take() {
                        kept += self.count_run(&mut pending, &done, counts);
                    }
                    let mut counts = UsageCounts::default();
                    counts.record(e.gateway_latency_ms, e.backend_latency_ms, e.response_bytes);
                    run = Some((key, counts));
                }
            }
        }
        if let Some((done, counts)) = run {
            kept += self.count_run(&mut pending, &done, counts);
        }
        self.received.increment(kept as u64);
        kept
    }

    /// Adds the counts of a run of events with one key to `pending`; how many events
    /// were kept (none when the key is new and the key limit is reached).
    fn count_run(
        &self,
        pending: &mut HashMap<UsageKey, UsageCounts>,
        key: &UsageKeyRef<'_>,
        counts: UsageCounts,
    ) -> usize {
        let events = usize::try_from(counts.requests).unwrap_or(0);
        let len = pending.len();
        match pending.get_mut(key) {
            Some(c) => c.merge(&counts),
            None if len < self.max_keys => {
                pending.insert(key.to_owned(), counts);
            }
            None => {
                self.dropped.increment(events as u64);
                return 0;
            }
        }
        events
    }

    /// Takes everything counted so far, as minute rows and their hour and day roll-ups.
    pub fn drain(&self) -> Drained {
        let minutes: Vec<(UsageKey, UsageCounts)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                .into_iter()
                .collect();
        if minutes.is_empty() {
            return Vec::new();
        }
        let roll = |g: Granularity| {
            let mut m: HashMap<UsageKey, UsageCounts> = HashMap::new();
            for (k, c) in &minutes {
                let key = UsageKey {
                    bucket_start: g.floor(k.bucket_start),
                    ..k.clone()
                };
                m.entry(key).or_default().merge(c);
            }
            m.into_iter().collect::<Vec<_>>()
        };
        let hours = roll(Granularity::Hour);
        let days = roll(Granularity::Day);
        vec![
            (Granularity::Minute, minutes),
            (Granularity::Hour, hours),
            (Granularity::Day, days),
        ]
    }

    /// Puts back rows a flush could not write, so that the next flush tries again
    /// (minute rows only; the roll-ups are recomputed from them).
    pub fn restore(&self, drained: Drained) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (g, rows) in drained {
            if g != Granularity::Minute {
                continue;
            }
            for (k, c) in rows {
                pending.entry(k).or_default().merge(&c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ts: i64, app: &str, status: u16) -> UsageEvent {
        UsageEvent {
            timestamp: ts,
            api_id: "a".into(),
            method: "GET".into(),
            application_id: Some(app.into()),
            status,
            gateway_latency_ms: 2.0,
            ..UsageEvent::default()
        }
    }

    #[test]
    fn a_borrowed_key_hashes_and_compares_as_its_owned_key() {
        use std::hash::BuildHasher;
        let e = UsageEvent {
            api: "Pets".into(),
            api_version: "1.0.0".into(),
            resource: "/pets/{id}".into(),
            subscriber: Some("alice".into()),
            error_code: Some(900_800),
            ..event(61_000, "x", 429)
        };
        let borrowed = UsageKeyRef {
            bucket_start: 60_000,
            environment: "Default",
            api_id: &e.api_id,
            api_name: &e.api,
            api_version: &e.api_version,
            resource: &e.resource,
            method: &e.method,
            application_id: "x",
            subscriber: "alice",
            status: 429,
            error_code: 900_800,
        };
        let owned = borrowed.to_owned();
        let hasher = hashbrown::DefaultHashBuilder::default();
        assert_eq!(hasher.hash_one(&borrowed), hasher.hash_one(&owned));
        assert!(borrowed.equivalent(&owned));
        let other = UsageKey {
            subscriber: "bob".into(),
            ..owned.clone()
        };
        assert!(!borrowed.equivalent(&other));
    }

    #[test]
    fn events_are_counted_per_minute_and_rolled_up() {
        let agg = Aggregator::new(100);
        let batch = UsageBatch {
            gateway_id: "g".into(),
            environment: "Default".into(),
            events: vec![
                event(1_000, "x", 200),
                event(2_000, "x", 200),
                event(61_000, "x", 200),
                event(61_000, "y", 500),
            ],
        };
        assert_eq!(agg.add(&batch), 4);
        let drained = agg.drain();
        let rows = |g: Granularity| {
            drained
                .iter()
                .find(|(x, _)| *x == g)
                .map(|(_, r)| r.clone())
                .unwrap_or_default()
        };
        assert_eq!(rows(Granularity::Minute).len(), 3);
        let hours = rows(Granularity::Hour);
        assert_eq!(hours.len(), 2, "x and y in the same hour");
        let x = hours
            .iter()
            .find(|(k, _)| k.application_id == "x")
            .map(|(_, c)| c.requests);
        assert_eq!(x, Some(3));
        assert!(agg.drain().is_empty(), "drained once");
    }

    #[test]
    fn runs_of_one_key_count_as_their_events_wherever_they_break() {
        let agg = Aggregator::new(100);
        let events = ["x", "x", "y", "x", "x", "x"].map(|app| event(1_000, app, 200));
        assert_eq!(agg.add_events("Default", events.iter().map(UsageEvent::borrowed)), 6);
        let drained = agg.drain();
        let minutes = &drained.iter().find(|(g, _)| *g == Granularity::Minute).unwrap().1;
        let count = |app: &str| {
            minutes
                .iter()
                .find(|(k, _)| k.application_id == app)
                .map(|(_, c)| (c.requests, c.gateway_latency_sum))
        };
        assert_eq!(count("x"), Some((5, 10.0)));
        assert_eq!(count("y"), Some((1, 2.0)));

        // A new key's whole run is dropped at the key limit; a known key's still counts.
        let full = Aggregator::new(1);
        let events = ["x", "y", "y", "x"].map(|app| event(1_000, app, 200));
        assert_eq!(full.add_events("Default", events.iter().map(UsageEvent::borrowed)), 2);
    }

    #[test]
    fn past_the_key_limit_new_keys_are_dropped_and_old_ones_still_count() {
        let agg = Aggregator::new(1);
        let batch = UsageBatch {
            events: vec![event(0, "x", 200), event(0, "y", 200), event(0, "x", 200)],
            ..UsageBatch::default()
        };
        assert_eq!(agg.add(&batch), 2);
        let drained = agg.drain();
        agg.restore(drained);
        let again = agg.drain();
        assert_eq!(again[0].1[0].1.requests, 2, "restored rows are flushed next time");
    }
}
