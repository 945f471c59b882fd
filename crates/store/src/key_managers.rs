//! Third-party key managers (AM database): external OIDC providers whose tokens gateways
//! accept, with the JWKS last fetched from them.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

/// A key manager as stored; `body` is the REST resource as JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyManagerRow {
    /// Id.
    pub id: String,
    /// Unique name (any case).
    pub name: String,
    /// The resource as JSON text.
    pub body: String,
    /// Whether its tokens are accepted.
    pub enabled: bool,
    /// The JWKS last fetched (JSON text).
    pub jwks: Option<String>,
    /// When the JWKS was fetched.
    pub jwks_fetched_at: Option<i64>,
}
crate::db::from_row!(KeyManagerRow {
    id,
    name,
    body,
    enabled,
    jwks,
    jwks_fetched_at
});

const COLUMNS: &str = "id, name, body, enabled, jwks, jwks_fetched_at";

/// A tenant's key managers by name.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<KeyManagerRow>> {
    let sql = format!("SELECT {COLUMNS} FROM key_managers WHERE tenant_id = $1 ORDER BY lower(name)");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .fetch_all(p)
    .await)?)
}

/// Every enabled key manager of every tenant, with its tenant (the JWKS refresher's list).
pub async fn list_enabled(db: &Database) -> Result<Vec<(String, KeyManagerRow)>> {
    struct Row {
        tenant_id: String,
        km: KeyManagerRow,
    }
    crate::db::from_row!(Row { tenant_id }; km);
    let sql = format!("SELECT tenant_id, {COLUMNS} FROM key_managers WHERE enabled = TRUE ORDER BY id");
    let rows: Vec<Row> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_all(p)
        .await)?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.km)).collect())
}

/// One key manager by id or name (any case).
pub async fn find(db: &Database, tenant: TenantId, id_or_name: &str) -> Result<Option<KeyManagerRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM key_managers WHERE tenant_id = $1 AND (id = $2 OR lower(name) = lower($2))");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(id_or_name)
    .fetch_optional(p)
    .await)?)
}

/// Whether another key manager of the tenant already uses `name` (any case).
pub async fn name_taken(tx: &mut Tx, tenant: TenantId, name: &str, except_id: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_managers WHERE tenant_id = $1 AND lower(name) = lower($2) AND id <> $3"
    )
    .bind(tenant.to_string())
    .bind(name)
    .bind(except_id)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Stores a new key manager.
pub async fn insert(tx: &mut Tx, tenant: TenantId, km: &KeyManagerRow, at: EpochMillis) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO key_managers (id, tenant_id, name, body, enabled, jwks, jwks_fetched_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
    )
    .bind(&km.id)
    .bind(tenant.to_string())
    .bind(&km.name)
    .bind(&km.body)
    .bind(km.enabled)
    .bind(&km.jwks)
    .bind(km.jwks_fetched_at)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a key manager's resource; returns rows changed.
pub async fn update(tx: &mut Tx, km: &KeyManagerRow, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE key_managers SET name = $2, body = $3, enabled = $4, jwks = $5, jwks_fetched_at = $6, updated_at = $7 \
         WHERE id = $1"
    )
    .bind(&km.id)
    .bind(&km.name)
    .bind(&km.body)
    .bind(km.enabled)
    .bind(&km.jwks)
    .bind(km.jwks_fetched_at)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Removes a key manager; returns rows removed.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query("DELETE FROM key_managers WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// How many of the tenant's application keys are mapped from its key manager `name` (one
/// in use cannot go; another tenant's key manager of the same name does not count).
pub async fn mapped_key_count(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM application_keys WHERE tenant_id = $1 AND key_manager = $2"
    )
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(c)
    .await)?)
}

/// Stores a freshly fetched key set, unless the key manager changed (or went) since `seen`
/// was read; returns rows changed. A slow fetch can thus never undo an admin's edit.
pub async fn set_jwks(tx: &mut Tx, seen: &KeyManagerRow, jwks: &str, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE key_managers SET jwks = $2, jwks_fetched_at = $3 WHERE id = $1 AND body = $4 AND enabled = $5 AND name = $6"
    )
    .bind(&seen.id)
    .bind(jwks)
    .bind(at)
    .bind(&seen.body)
    .bind(seen.enabled)
    .bind(&seen.name)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?)
}
