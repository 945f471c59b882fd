//! Shared scopes (AM database).

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx};
use tollgate_model::api::Scope;
use tollgate_model::{EpochMillis, TenantId};

struct Row {
    id: String,
    name: String,
    body: String,
}
crate::db::from_row!(Row { id, name, body });

impl TryFrom<Row> for Scope {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let mut s: Scope = serde_json::from_str(&r.body).map_err(|e| Error::Corrupt(format!("scope {}: {e}", r.id)))?;
        s.id = Some(r.id);
        s.name = r.name;
        Ok(s)
    }
}

fn body(scope: &Scope) -> Result<String> {
    let mut s = scope.clone();
    s.id = None;
    serde_json::to_string(&s).map_err(|e| Error::Corrupt(e.to_string()))
}

/// A tenant's shared scopes by name, with the total, for pagination.
pub async fn list(db: &Database, tenant: TenantId, offset: i64, limit: i64) -> Result<(Vec<Scope>, i64)> {
    let rows: Vec<Row> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, name, body FROM shared_scopes WHERE tenant_id = $1 ORDER BY name LIMIT $2 OFFSET $3"
    )
    .bind(tenant.to_string())
    .bind(limit)
    .bind(offset)
    .fetch_all(p)
    .await)?;
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM shared_scopes WHERE tenant_id = $1"
    )
    .bind(tenant.to_string())
    .fetch_one(p)
    .await)?;
    Ok((rows.into_iter().map(Scope::try_from).collect::<Result<_>>()?, total))
}

/// One shared scope by id or by name.
pub async fn get(db: &Database, tenant: TenantId, id_or_name: &str) -> Result<Option<Scope>> {
    let row: Option<Row> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, name, body FROM shared_scopes WHERE tenant_id = $1 AND (id = $2 OR name = $2)"
    )
    .bind(tenant.to_string())
    .bind(id_or_name)
    .fetch_optional(p)
    .await)?;
    row.map(Scope::try_from).transpose()
}

/// The names of a tenant's shared scopes.
pub async fn names(db: &Database, tenant: TenantId) -> Result<Vec<String>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT name FROM shared_scopes WHERE tenant_id = $1"
    )
    .bind(tenant.to_string())
    .fetch_all(p)
    .await)?)
}

/// Stores a new shared scope; a duplicate name is a unique violation.
pub async fn insert(tx: &mut Tx, tenant: TenantId, id: &str, scope: &Scope, at: EpochMillis) -> Result<()> {
    let body = body(scope)?;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO shared_scopes (id, tenant_id, name, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(&scope.name)
    .bind(&body)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a shared scope's description and bindings (its name stays).
pub async fn update(tx: &mut Tx, id: &str, scope: &Scope, at: EpochMillis) -> Result<()> {
    let body = body(scope)?;
    on_tx!(tx, |c| sqlx::query(
        "UPDATE shared_scopes SET body = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(&body)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes a shared scope.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM shared_scopes WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
