//! The event hub over the AM database (docs/architecture.md, "Event hub"): snapshots from
//! [`tollgate_store::snapshot::read`], and watches that deliver every outbox event after a
//! sequence, in order, as soon as it is committed. One [`EventFeed`] per process wakes on
//! commits (in-process, and `LISTEN`/`NOTIFY` from other processes on PostgreSQL) and
//! tells every watch; each watch then reads the outbox after its own cursor, so a slow
//! watcher never holds up the others and nothing is skipped. The same [`DatabaseHub`]
//! feeds an in-process gateway (all-in-one) and the HTTP endpoints other nodes watch.
//!
//! A gateway limited to some tenants (`gateway.tenants`) is filtered here, not only at the
//! gateway: its snapshot holds only its tenants' entries, and its watch only their events
//! ([`TenantScope`]), with a [`WatchItem::Progress`] wherever events were left out.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tollgate_events::{GatewayReport, Hub, HubError, HubFuture, Snapshot, TenantFilter, TenantScope, Watch, WatchItem};
use tollgate_store::{Database, events};

/// Most events read from the outbox at once.
const READ_BATCH: i64 = 500;

/// Longest sleep between outbox checks when no notification arrives (a lost `NOTIFY`
/// delays watchers by at most this).
const SAFETY_CHECK: Duration = Duration::from_secs(2);

/// The newest outbox sequence this process knows of, kept current by one task.
#[derive(Clone, Debug)]
pub struct EventFeed {
    latest: watch::Receiver<i64>,
}

impl EventFeed {
    /// Starts following `am`'s outbox until `shutdown`. The task waits for the database
    /// (and its migrations) to answer, so the feed can be made before the node is ready.
    pub fn start(am: Database, shutdown: CancellationToken) -> Self {
        let (tx, latest) = watch::channel(0);
        tokio::spawn(async move {
            let mut retry = Duration::from_millis(100);
            let mut watcher = loop {
                let ready = async {
                    let first = events::latest_seq(&am).await?;
                    let watcher = events::OutboxWatcher::new(&am).await?;
                    Ok::<_, tollgate_store::Error>((first, watcher))
                };
                match ready.await {
                    Ok((first, watcher)) => {
                        tx.send_replace(first);
                        break watcher;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "The event feed waits for the AM database.");
                        tokio::select! {
                            () = tokio::time::sleep(retry) => {}
                            () = shutdown.cancelled() => return,
                        }
                        retry = (retry * 2).min(Duration::from_secs(5));
                    }
                }
            };
            loop {
                tokio::select! {
                    () = watcher.changed(SAFETY_CHECK) => {}
                    () = shutdown.cancelled() => return,
                }
                match events::latest_seq(&am).await {
                    Ok(seq) => {
                        tx.send_if_modified(|known| {
                            let newer = seq > *known;
                            if newer {
                                *known = seq;
                            }
                            newer
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "Cannot read the outbox's latest sequence."),
                }
            }
        });
        Self { latest }
    }

    /// The newest sequence known.
    pub fn latest(&self) -> i64 {
        *self.latest.borrow()
    }
}

/// The event hub over the AM database.
#[derive(Clone, Debug)]
pub struct DatabaseHub {
    am: Database,
    feed: EventFeed,
    heartbeat: Duration,
}

impl DatabaseHub {
    /// A hub over `am`, woken by `feed`, sending a heartbeat after `heartbeat` without events.
    pub fn new(am: Database, feed: EventFeed, heartbeat: Duration) -> Arc<Self> {
        Arc::new(Self { am, feed, heartbeat })
    }

    /// The AM database.
    pub fn am(&self) -> &Database {
        &self.am
    }

    /// The heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    async fn run_watch(&self, since: i64, tenants: TenantFilter, tx: mpsc::Sender<WatchItem>) {
        let mut latest = self.feed.latest.clone();
        let mut cursor = since;
        let mut scope = if tenants.is_all() {
            TenantScope::new(tenants, [])
        } else {
            match tollgate_store::tenants::states(&self.am).await {
                Ok(known) => TenantScope::new(tenants, &known),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the tenants for a watch.");
                    return;
                }
            }
        };
        // Too far behind (the events after `since` were compacted away) or ahead (the
        // database was replaced): only a new snapshot is consistent.
        let bounds = async {
            Ok::<_, tollgate_store::Error>((events::oldest_seq(&self.am).await?, events::latest_seq(&self.am).await?))
        };
        match bounds.await {
            Ok((oldest, newest)) if oldest.is_some_and(|o| since < o - 1) || since > newest => {
                let _ = tx.send(WatchItem::Resnapshot).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the outbox for a watch.");
                return;
            }
        }
        loop {
            latest.borrow_and_update();
            let batch = match events::read_since(&self.am, cursor, READ_BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot read the outbox for a watch; closing it.");
                    return;
                }
            };
            if let Some(last) = batch.last() {
                cursor = last.seq;
                if scope.is_all() {
                    if tx.send(WatchItem::Events(batch)).await.is_err() {
                        return;
                    }
                    continue;
                }
                let read = batch.len();
                let kept: Vec<_> = batch.into_iter().filter(|e| scope.admits(e)).collect();
                let left_out = kept.last().is_none_or(|e| e.seq < cursor);
                metrics::counter!("tollgate_hub_events_left_out_total").increment((read - kept.len()) as u64);
                if !kept.is_empty() && tx.send(WatchItem::Events(kept)).await.is_err() {
                    return;
                }
                // The events after the last one sent were for other tenants: say how far
                // this watch is now, so that the gateway's sequence keeps up.
                if left_out && tx.send(WatchItem::Progress { seq: cursor }).await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(self.heartbeat) => {
                    if tx.send(WatchItem::Heartbeat { seq: cursor }).await.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    }
}

impl Hub for DatabaseHub {
    fn snapshot<'a>(&'a self, environment: &'a str, tenants: &'a TenantFilter) -> HubFuture<'a, Snapshot> {
        Box::pin(async move {
            tollgate_store::snapshot::read_for(&self.am, environment, tollgate_model::now_millis(), tenants)
                .await
                .map_err(|e| HubError(e.to_string()))
        })
    }

    fn watch<'a>(&'a self, since: i64, tenants: &'a TenantFilter) -> HubFuture<'a, Watch> {
        Box::pin(async move {
            let (tx, rx) = mpsc::channel(16);
            let hub = self.clone();
            let tenants = tenants.clone();
            tokio::spawn(async move { hub.run_watch(since, tenants, tx).await });
            Ok(rx)
        })
    }

    fn report<'a>(&'a self, report: &'a GatewayReport) -> HubFuture<'a, ()> {
        Box::pin(async move {
            let known = tollgate_store::gateway_status::record(&self.am, report, tollgate_model::now_millis())
                .await
                .map_err(|e| HubError(e.to_string()))?;
            if known {
                Ok(())
            } else {
                Err(HubError(format!(
                    "no earlier report of gateway {}: send a full one",
                    report.gateway_id
                )))
            }
        })
    }

    fn describe(&self) -> String {
        "in-process".into()
    }
}

/// Deletes outbox events older than `retention`, and the reports of gateways silent for as
/// long, every hour (and once at start), until `shutdown`. Gateways that come back after
/// longer than that re-snapshot.
pub async fn compact_loop(am: Database, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let cutoff = tollgate_model::now_millis() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match events::compact(&am, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "Compacted the event outbox."),
            Err(e) => tracing::warn!(error = %e, "Cannot compact the event outbox."),
        }
        if let Err(e) = tollgate_store::gateway_status::prune(&am, cutoff).await {
            tracing::warn!(error = %e, "Cannot forget the reports of gateways gone for good.");
        }
    }
}
