//! Writing what the [`Aggregator`] counted to the AM database every flush interval, and
//! expiring old rows per granularity (minute rows go first; hours and days stay longer,
//! so old ranges are still answered, coarser).

use crate::Aggregator;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_store::Database;
use tollgate_store::analytics::{self, Granularity};

/// Writes the counts held now (minute rows and roll-ups in one transaction); on
/// failure they are put back for the next flush.
pub async fn flush_once(aggregator: &Aggregator, am: &Database) -> Result<usize, tollgate_store::Error> {
    let drained = aggregator.drain();
    if drained.is_empty() {
        return Ok(0);
    }
    match analytics::add(am, &drained).await {
        Ok(()) => {
            let rows: usize = drained.iter().map(|(_, rows)| rows.len()).sum();
            metrics::counter!("tollgate_analytics_rows_written_total").increment(rows as u64);
            Ok(rows)
        }
        Err(e) => {
            metrics::counter!("tollgate_analytics_flush_failures_total").increment(1);
            aggregator.restore(drained);
            Err(e)
        }
    }
}

/// Flushes every `interval` until `shutdown`, then once more.
pub async fn flush_loop(aggregator: Arc<Aggregator>, am: Database, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.cancelled() => true,
        };
        match flush_once(&aggregator, &am).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "Analytics flushed."),
            Err(e) => tracing::warn!(error = %e, "Cannot write analytics; retrying at the next flush."),
        }
        if stopping {
            return;
        }
    }
}

/// How long each granularity's rows are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Per-minute rows.
    pub minute: Duration,
    /// Per-hour rows.
    pub hour: Duration,
    /// Per-day rows.
    pub day: Duration,
}

impl Retention {
    fn of(&self, g: Granularity) -> Duration {
        match g {
            Granularity::Minute => self.minute,
            Granularity::Hour => self.hour,
            Granularity::Day => self.day,
        }
    }
}

/// Deletes the rows each granularity keeps no longer, as of `now` (epoch ms); returns
/// how many went per granularity.
pub async fn expire(
    am: &Database,
    retention: &Retention,
    now: i64,
) -> Result<Vec<(Granularity, u64)>, tollgate_store::Error> {
    let mut out = Vec::new();
    for g in Granularity::ALL {
        let keep = i64::try_from(retention.of(g).as_millis()).unwrap_or(i64::MAX);
        let cutoff = g.floor(now.saturating_sub(keep));
        out.push((g, analytics::delete_before(am, g, cutoff).await?));
    }
    Ok(out)
}

/// Expires old rows every ten minutes until `shutdown`.
pub async fn retention_loop(am: Database, retention: Retention, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match expire(&am, &retention, tollgate_model::now_millis()).await {
            Ok(deleted) => {
                for (g, n) in deleted.into_iter().filter(|(_, n)| *n > 0) {
                    tracing::info!(granularity = g.as_str(), deleted = n, "Expired old analytics rows.");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot expire old analytics rows."),
        }
    }
}
