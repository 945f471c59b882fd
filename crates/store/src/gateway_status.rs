//! Deployment acknowledgements (AM database): the latest report of each gateway node,
//! and the live / deployed / failed gateway counts the Publisher shows per deployment.

use crate::db::on_pool;
use crate::{Database, Error, Result};
use tollgate_events::GatewayReport;

/// Records `report` as the gateway's latest, received at `now` (epoch ms). A report
/// marked `unchanged` only refreshes the sequence and the time of the gateway's previous
/// one; it returns `false` when there is none (the gateway must send a full report).
pub async fn record(db: &Database, report: &GatewayReport, now: i64) -> Result<bool> {
    if !report.unchanged {
        upsert(db, report, now).await?;
        return Ok(true);
    }
    let updated = on_pool!(db.writer(), |p| sqlx::query(
        "UPDATE gateway_status SET environment = $2, sequence = $3, reported_at = $4 WHERE gateway_id = $1"
    )
    .bind(&report.gateway_id)
    .bind(&report.environment)
    .bind(report.sequence)
    .bind(now)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(updated > 0)
}

/// Records a full report as the gateway's latest, received at `now` (epoch ms).
async fn upsert(db: &Database, report: &GatewayReport, now: i64) -> Result<()> {
    let revisions = serde_json::to_string(&report.revisions).map_err(|e| Error::Corrupt(e.to_string()))?;
    let failed = serde_json::to_string(&report.failed).map_err(|e| Error::Corrupt(e.to_string()))?;
    on_pool!(db.writer(), |p| sqlx::query(
        "INSERT INTO gateway_status (gateway_id, environment, sequence, revisions, failed, reported_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (gateway_id) DO UPDATE SET environment = excluded.environment, \
         sequence = excluded.sequence, revisions = excluded.revisions, failed = excluded.failed, \
         reported_at = excluded.reported_at"
    )
    .bind(&report.gateway_id)
    .bind(&report.environment)
    .bind(report.sequence)
    .bind(&revisions)
    .bind(&failed)
    .bind(now)
    .execute(p)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The gateways of one environment and what they did with one revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayCounts {
    /// Gateways that reported recently enough to count as live.
    pub live: i64,
    /// Live gateways that serve the revision.
    pub deployed: i64,
    /// Live gateways that could not apply it.
    pub failed: i64,
}

struct StatusRow {
    revisions: String,
    failed: String,
}
crate::db::from_row!(StatusRow { revisions, failed });

/// Counts for `revision_id` among the gateways of `environment` that reported since
/// `live_since` (epoch ms).
pub async fn counts(db: &Database, environment: &str, revision_id: &str, live_since: i64) -> Result<GatewayCounts> {
    let rows: Vec<StatusRow> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT revisions, failed FROM gateway_status WHERE environment = $1 AND reported_at >= $2"
    )
    .bind(environment)
    .bind(live_since)
    .fetch_all(p)
    .await)?;
    let mut counts = GatewayCounts::default();
    for row in rows {
        counts.live += 1;
        let has = |list: &str| {
            serde_json::from_str::<Vec<String>>(list)
                .map(|l| l.iter().any(|r| r == revision_id))
                .unwrap_or(false)
        };
        if has(&row.revisions) {
            counts.deployed += 1;
        } else if has(&row.failed) {
            counts.failed += 1;
        }
    }
    Ok(counts)
}

/// Forgets gateways whose last report is older than `before` (epoch ms): nodes gone for
/// good. Returns how many were removed.
pub async fn prune(db: &Database, before: i64) -> Result<u64> {
    Ok(on_pool!(db.writer(), |p| sqlx::query(
        "DELETE FROM gateway_status WHERE reported_at < $1"
    )
    .bind(before)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?)
}
