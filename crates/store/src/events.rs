//! The events outbox (AM database). [`append`] runs inside the caller's transaction, so
//! an event exists exactly when the change it describes does; sequence numbers are
//! assigned under a lock, so they increase in commit order and a reader that has seen
//! `seq = N` can never later find an event below N.

use crate::db::{on_pool, on_tx};
use crate::{Database, Engine, Error, Result, Tx};
use tollgate_events::{ControlEvent, Event, EventKind, NewEvent};
use tollgate_model::{TenantId, now_millis};

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises appends.
const OUTBOX_LOCK_KEY: i64 = 0x7467_6f75_7462_6f78; // "tgoutbox"

/// Appends a control event about `tenant` (and `environment`, when it concerns only one)
/// within `tx`: what most producers need, in one call.
pub async fn emit(tx: &mut Tx, tenant: TenantId, environment: Option<String>, event: ControlEvent) -> Result<i64> {
    append(tx, &NewEvent::new(tenant, environment, event)).await
}

/// Appends `event` within `tx`; returns its sequence number.
pub async fn append(tx: &mut Tx, event: &NewEvent) -> Result<i64> {
    if tx.engine() == Engine::Postgres {
        // Held until commit: the next writer waits, then sees this row's seq.
        on_tx!(tx, |c| sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(OUTBOX_LOCK_KEY)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    let (kind, payload) = event.event.to_parts().map_err(|e| Error::Corrupt(e.to_string()))?;
    let payload = serde_json::to_string(&payload).map_err(|e| Error::Corrupt(e.to_string()))?;
    let seq: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO events (seq, tenant_id, kind, environment, payload, created_at) \
             SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5 FROM events \
             RETURNING seq",
        )
        .bind(event.tenant_id.to_string())
        .bind(kind.as_str())
        .bind(&event.environment)
        .bind(&payload)
        .bind(now_millis())
        .fetch_one(c)
        .await
    })?;
    if tx.engine() == Engine::Postgres {
        // Delivered at commit (and dropped on rollback) to every hub that listens; the
        // same empty payload lets PostgreSQL fold a transaction's notifications into one.
        on_tx!(tx, |c| sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.note_event_appended();
    Ok(seq)
}

/// The PostgreSQL `LISTEN`/`NOTIFY` channel on which commits that appended events are
/// announced to every event hub sharing the database.
pub const NOTIFY_CHANNEL: &str = "tollgate_events";

/// Counts the commits in this process that appended an event, so that every in-process
/// hub wakes at once (SQLite has no `NOTIFY`); each watcher holds its own receiver, so no
/// wake-up is lost or taken by another.
pub fn local_commits() -> &'static tokio::sync::watch::Sender<u64> {
    static SIGNAL: std::sync::OnceLock<tokio::sync::watch::Sender<u64>> = std::sync::OnceLock::new();
    SIGNAL.get_or_init(|| tokio::sync::watch::Sender::new(0))
}

/// Wakes an event hub when the outbox may have grown: on commits in this process and, on
/// PostgreSQL, on `NOTIFY` from commits in other processes. It may wake without cause;
/// it never sleeps past `max_wait`, so a lost notification delays a hub by at most that.
pub struct OutboxWatcher {
    listener: Option<sqlx::postgres::PgListener>,
    local: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for OutboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWatcher")
            .field("listens", &self.listener.is_some())
            .finish()
    }
}

impl OutboxWatcher {
    /// A watcher of `db`'s outbox (listening on PostgreSQL).
    pub async fn new(db: &Database) -> Result<Self> {
        let listener = match db.writer() {
            crate::db::Pool::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                Some(listener)
            }
            crate::db::Pool::Sqlite(_) => None,
        };
        Ok(Self {
            listener,
            local: local_commits().subscribe(),
        })
    }

    /// Resolves when the outbox may have grown, or after `max_wait`.
    pub async fn changed(&mut self, max_wait: std::time::Duration) {
        let local = self.local.changed();
        match &mut self.listener {
            Some(listener) => {
                tokio::select! {
                    _ = local => {}
                    r = listener.recv() => {
                        if let Err(e) = r {
                            // sqlx reconnects on the next call; wait a little meanwhile.
                            tracing::warn!(error = %e, "Lost the outbox LISTEN connection; reconnecting.");
                            tokio::time::sleep(max_wait.min(std::time::Duration::from_secs(1))).await;
                        }
                    }
                    () = tokio::time::sleep(max_wait) => {}
                }
            }
            None => {
                tokio::select! {
                    _ = local => {}
                    () = tokio::time::sleep(max_wait) => {}
                }
            }
        }
    }
}

/// The lowest sequence still in the outbox (`None` when it is empty).
pub async fn oldest_seq(db: &Database) -> Result<Option<i64>> {
    let seq: Option<i64> = on_pool!(db.reader(), |p| {
        sqlx::query_scalar("SELECT MIN(seq) FROM events").fetch_one(p).await
    })?;
    Ok(seq)
}

/// Deletes events written before `before` (epoch ms), always keeping the newest one so
/// that sequence numbers never restart. Returns how many were deleted. Watchers that
/// asked for a sequence older than what is left are told to re-snapshot.
pub async fn compact(db: &Database, before: i64) -> Result<u64> {
    let deleted = on_pool!(db.writer(), |p| {
        sqlx::query("DELETE FROM events WHERE created_at < $1 AND seq < (SELECT MAX(seq) FROM events)")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(deleted)
}

/// The highest sequence number written so far (0 when the outbox is empty).
pub async fn latest_seq(db: &Database) -> Result<i64> {
    let seq: Option<i64> = on_pool!(db.reader(), |p| {
        sqlx::query_scalar("SELECT MAX(seq) FROM events").fetch_one(p).await
    })?;
    Ok(seq.unwrap_or(0))
}

struct EventRow {
    seq: i64,
    tenant_id: String,
    kind: String,
    environment: Option<String>,
    payload: String,
    created_at: i64,
}
crate::db::from_row!(EventRow {
    seq,
    tenant_id,
    kind,
    environment,
    payload,
    created_at
});

/// Up to `limit` events after `since`, in order.
pub async fn read_since(db: &Database, since: i64, limit: i64) -> Result<Vec<Event>> {
    let rows: Vec<EventRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as(
            "SELECT seq, tenant_id, kind, environment, payload, created_at FROM events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(p)
        .await
    })?;
    rows.into_iter()
        .map(|r| {
            Ok(Event {
                seq: r.seq,
                kind: r.kind.parse::<EventKind>().map_err(|e| Error::Corrupt(e.to_string()))?,
                tenant_id: r
                    .tenant_id
                    .parse::<TenantId>()
                    .map_err(|e| Error::Corrupt(format!("event {} tenant: {e}", r.seq)))?,
                environment: r.environment,
                payload: serde_json::from_str(&r.payload)
                    .map_err(|e| Error::Corrupt(format!("event {} payload: {e}", r.seq)))?,
                created_at: r.created_at,
            })
        })
        .collect()
}
