//! The events outbox (AM database). [`append`] runs inside the caller's transaction, so
//! an event exists exactly when the change it describes does; sequence numbers are
//! assigned under a lock, so they increase in commit order and a reader that has seen
//! `seq = N` can never later find an event below N.

use crate::db::{on_pool, on_tx};
use crate::{Database, Engine, Error, Result, Tx};
use tollgate_events::{Event, EventKind, NewEvent};
use tollgate_model::{TenantId, now_millis};

/// Arbitrary constant naming the PostgreSQL advisory lock that serialises appends.
const OUTBOX_LOCK_KEY: i64 = 0x7467_6f75_7462_6f78; // "tgoutbox"

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
    let payload = serde_json::to_string(&event.payload).map_err(|e| Error::Corrupt(e.to_string()))?;
    let seq: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
            "INSERT INTO events (seq, tenant_id, kind, environment, payload, created_at) \
             SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5 FROM events \
             RETURNING seq",
        )
        .bind(event.tenant_id.to_string())
        .bind(event.kind.as_str())
        .bind(&event.environment)
        .bind(&payload)
        .bind(now_millis())
        .fetch_one(c)
        .await
    })?;
    Ok(seq)
}

/// The highest sequence number written so far (0 when the outbox is empty).
pub async fn latest_seq(db: &Database) -> Result<i64> {
    let seq: Option<i64> = on_pool!(db.reader(), |p| {
        sqlx::query_scalar("SELECT MAX(seq) FROM events").fetch_one(p).await
    })?;
    Ok(seq.unwrap_or(0))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    tenant_id: String,
    kind: String,
    environment: Option<String>,
    payload: String,
    created_at: i64,
}

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
