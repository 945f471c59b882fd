//! Throttling policies (AM database), stored as their REST JSON per level, and the
//! one-time installation of the reference's default policies.

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx, events};
use serde_json::Value;
use tollgate_events::control::PolicyChange;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_model::policy::{PolicyLevel, ThrottlingPolicySummary, defaults};
use tollgate_model::{EpochMillis, TenantId, now_millis};

/// A stored policy.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPolicy {
    /// Id.
    pub id: String,
    /// Level.
    pub level: PolicyLevel,
    /// Unique name within the level.
    pub name: String,
    /// The policy as its REST JSON.
    pub body: Value,
    /// Built-in and not removable (`Unlimited`).
    pub read_only: bool,
}

impl StoredPolicy {
    /// The policy in the portals' `ThrottlingPolicy` shape (name, quota type, request
    /// count, unit time, burst control, tier plan), reported under `level_name`.
    pub fn policy_summary(&self, level_name: &str) -> ThrottlingPolicySummary {
        let b = &self.body;
        let limit = &b["defaultLimit"];
        let (quota_type, count, unit_time, time_unit, data_unit) = match limit["type"].as_str() {
            Some("BANDWIDTHLIMIT") => (
                "BANDWIDTHVOLUME",
                &limit["bandwidth"]["dataAmount"],
                &limit["bandwidth"]["unitTime"],
                &limit["bandwidth"]["timeUnit"],
                &limit["bandwidth"]["dataUnit"],
            ),
            _ => (
                "REQUESTCOUNT",
                &limit["requestCount"]["requestCount"],
                &limit["requestCount"]["unitTime"],
                &limit["requestCount"]["timeUnit"],
                &Value::Null,
            ),
        };
        let text = |v: &Value| v.as_str().map(str::to_string);
        ThrottlingPolicySummary {
            name: self.name.clone(),
            display_name: text(&b["displayName"]),
            description: text(&b["description"]),
            policy_level: level_name.to_string(),
            quota_policy_type: quota_type.to_string(),
            request_count: count.as_i64().unwrap_or(0),
            unit_time: unit_time.as_i64().unwrap_or(1),
            time_unit: text(time_unit),
            data_unit: text(data_unit),
            rate_limit_count: b["rateLimitCount"].as_i64().unwrap_or(0),
            rate_limit_time_unit: text(&b["rateLimitTimeUnit"]),
            stop_on_quota_reach: b["stopOnQuotaReach"].as_bool().unwrap_or(true),
            tier_plan: text(&b["billingPlan"]).unwrap_or_else(|| "FREE".into()),
        }
    }
}

struct Row {
    id: String,
    level: String,
    name: String,
    body: String,
    is_read_only: bool,
}
crate::db::from_row!(Row {
    id,
    level,
    name,
    body,
    is_read_only
});

impl TryFrom<Row> for StoredPolicy {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(StoredPolicy {
            level: r.level.parse().map_err(Error::Corrupt)?,
            body: serde_json::from_str(&r.body).map_err(|e| Error::Corrupt(format!("policy {}: {e}", r.id)))?,
            id: r.id,
            name: r.name,
            read_only: r.is_read_only,
        })
    }
}

/// A tenant's policies of one level, by name.
pub async fn list(db: &Database, tenant: TenantId, level: PolicyLevel) -> Result<Vec<StoredPolicy>> {
    let rows: Vec<Row> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, level, name, body, is_read_only FROM throttle_policies \
         WHERE tenant_id = $1 AND level = $2 ORDER BY lower(name)"
    )
    .bind(tenant.to_string())
    .bind(level.as_str())
    .fetch_all(p)
    .await)?;
    rows.into_iter().map(StoredPolicy::try_from).collect()
}

/// The names of a tenant's policies of one level.
pub async fn names(db: &Database, tenant: TenantId, level: PolicyLevel) -> Result<Vec<String>> {
    Ok(list(db, tenant, level).await?.into_iter().map(|p| p.name).collect())
}

/// One policy by id (or by name) within a level.
pub async fn get(
    db: &Database,
    tenant: TenantId,
    level: PolicyLevel,
    id_or_name: &str,
) -> Result<Option<StoredPolicy>> {
    let row: Option<Row> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, level, name, body, is_read_only FROM throttle_policies \
         WHERE tenant_id = $1 AND level = $2 AND (id = $3 OR name = $3)"
    )
    .bind(tenant.to_string())
    .bind(level.as_str())
    .bind(id_or_name)
    .fetch_optional(p)
    .await)?;
    row.map(StoredPolicy::try_from).transpose()
}

/// Whether a policy of that level and name exists (inside a transaction).
pub async fn exists_in(tx: &mut Tx, tenant: TenantId, level: PolicyLevel, name: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM throttle_policies WHERE tenant_id = $1 AND level = $2 AND lower(name) = lower($3)"
    )
    .bind(tenant.to_string())
    .bind(level.as_str())
    .bind(name)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Stores a new policy.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    level: PolicyLevel,
    id: &str,
    name: &str,
    body: &Value,
    read_only: bool,
    at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO throttle_policies (id, tenant_id, level, name, body, is_read_only, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(level.as_str())
    .bind(name)
    .bind(body.to_string())
    .bind(read_only)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a policy's body.
pub async fn update(tx: &mut Tx, id: &str, body: &Value, at: EpochMillis) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE throttle_policies SET body = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(body.to_string())
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// Removes a policy.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query("DELETE FROM throttle_policies WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// Installs the reference's default policies for `tenant`, once: returns whether this
/// call installed them. Safe when several nodes start together (the marker row decides).
pub async fn install_defaults(db: &Database, tenant: TenantId) -> Result<bool> {
    let mut tx = db.begin().await?;
    let now = now_millis();
    let claimed = on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO bootstrap_markers (tenant_id, name, done_at) VALUES ($1, 'default_policies', $2) \
         ON CONFLICT (tenant_id, name) DO NOTHING"
    )
    .bind(tenant.to_string())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if claimed == 0 {
        return Ok(false);
    }
    let to_json = |v: Result<Value, serde_json::Error>| v.map_err(|e| Error::Corrupt(e.to_string()));
    let mut all: Vec<(PolicyLevel, String, Value)> = Vec::new();
    for p in defaults::subscription_policies() {
        all.push((
            PolicyLevel::Subscription,
            p.policy_name.clone(),
            to_json(serde_json::to_value(&p))?,
        ));
    }
    for p in defaults::application_policies() {
        all.push((
            PolicyLevel::Application,
            p.policy_name.clone(),
            to_json(serde_json::to_value(&p))?,
        ));
    }
    for p in defaults::advanced_policies() {
        all.push((
            PolicyLevel::Advanced,
            p.policy_name.clone(),
            to_json(serde_json::to_value(&p))?,
        ));
    }
    for (level, name, body) in all {
        let id = uuid::Uuid::now_v7().to_string();
        insert(&mut tx, tenant, level, &id, &name, &body, name == "Unlimited", now).await?;
        let event = NewEvent::new(
            tenant,
            None,
            ControlEvent::PolicyUpserted(PolicyChange {
                level,
                policy_id: id,
                policy: body,
            }),
        );
        events::append(&mut tx, &event).await?;
    }
    tx.commit().await?;
    tracing::info!(tenant = %tenant, "Default throttling policies installed.");
    Ok(true)
}
