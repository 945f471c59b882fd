//! Block conditions (AM database).

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx};
use tollgate_model::block_condition::BlockCondition;
use tollgate_model::{EpochMillis, TenantId};

struct Row {
    id: String,
    type_: String,
    value: String,
    enabled: bool,
}
crate::db::from_row!(Row {
    id,
    type_,
    value,
    enabled
});

impl TryFrom<Row> for BlockCondition {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        Ok(BlockCondition {
            condition_value: serde_json::from_str(&r.value)
                .map_err(|e| Error::Corrupt(format!("condition {}: {e}", r.id)))?,
            condition_id: Some(r.id),
            condition_type: r.type_,
            condition_status: r.enabled,
        })
    }
}

const COLUMNS: &str = "id, type AS type_, value, enabled";

/// A tenant's block conditions, oldest first.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<BlockCondition>> {
    let sql = format!("SELECT {COLUMNS} FROM block_conditions WHERE tenant_id = $1 ORDER BY created_at, id");
    let rows: Vec<Row> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .fetch_all(p)
        .await)?;
    rows.into_iter().map(BlockCondition::try_from).collect()
}

/// One block condition.
pub async fn get(db: &Database, tenant: TenantId, id: &str) -> Result<Option<BlockCondition>> {
    let sql = format!("SELECT {COLUMNS} FROM block_conditions WHERE tenant_id = $1 AND id = $2");
    let row: Option<Row> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(BlockCondition::try_from).transpose()
}

/// Whether an equal condition (same `value_key`) exists.
pub async fn exists_in(tx: &mut Tx, tenant: TenantId, value_key: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM block_conditions WHERE tenant_id = $1 AND value_key = $2"
    )
    .bind(tenant.to_string())
    .bind(value_key)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Stores a new condition.
pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    id: &str,
    cond: &BlockCondition,
    value_key: &str,
    at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO block_conditions (id, tenant_id, type, value, value_key, enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(&cond.condition_type)
    .bind(cond.condition_value.to_string())
    .bind(value_key)
    .bind(cond.condition_status)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Enables or disables a condition.
pub async fn set_enabled(tx: &mut Tx, id: &str, enabled: bool, at: EpochMillis) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE block_conditions SET enabled = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(enabled)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// Removes a condition.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query("DELETE FROM block_conditions WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
