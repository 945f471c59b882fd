//! Gateway environments (AM database).

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx};
use tollgate_model::{Environment, EpochMillis, TenantId};

struct EnvRow {
    id: String,
    name: String,
    body: String,
    is_read_only: bool,
}
crate::db::from_row!(EnvRow {
    id,
    name,
    body,
    is_read_only
});

impl TryFrom<EnvRow> for Environment {
    type Error = Error;
    fn try_from(r: EnvRow) -> Result<Self> {
        let mut env: Environment =
            serde_json::from_str(&r.body).map_err(|e| Error::Corrupt(format!("environment {}: {e}", r.id)))?;
        env.id = Some(r.id);
        env.name = r.name;
        env.is_read_only = r.is_read_only;
        Ok(env)
    }
}

fn body(env: &Environment) -> Result<String> {
    let mut e = env.clone();
    e.id = None;
    e.is_read_only = false;
    serde_json::to_string(&e).map_err(|e| Error::Corrupt(e.to_string()))
}

/// A tenant's environments, by name.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<Environment>> {
    let rows: Vec<EnvRow> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, name, body, is_read_only FROM environments WHERE tenant_id = $1 ORDER BY name"
    )
    .bind(tenant.to_string())
    .fetch_all(p)
    .await)?;
    rows.into_iter().map(Environment::try_from).collect()
}

/// One environment by id or by name.
pub async fn find(db: &Database, tenant: TenantId, id_or_name: &str) -> Result<Option<Environment>> {
    let row: Option<EnvRow> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, name, body, is_read_only FROM environments WHERE tenant_id = $1 AND (id = $2 OR name = $2)"
    )
    .bind(tenant.to_string())
    .bind(id_or_name)
    .fetch_optional(p)
    .await)?;
    row.map(Environment::try_from).transpose()
}

/// Whether an environment named `name` exists (inside a transaction).
pub async fn exists_in(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM environments WHERE tenant_id = $1 AND name = $2"
    )
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// Stores a new environment; a duplicate name is a unique violation.
pub async fn insert(tx: &mut Tx, tenant: TenantId, id: &str, env: &Environment, at: EpochMillis) -> Result<()> {
    let body = body(env)?;
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO environments (id, tenant_id, name, body, is_read_only, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, FALSE, $5, $5)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(&env.name)
    .bind(&body)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces an environment's description (its name stays).
pub async fn update(tx: &mut Tx, id: &str, env: &Environment, at: EpochMillis) -> Result<u64> {
    let body = body(env)?;
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE environments SET body = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(&body)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// How many of the tenant's API deployments an environment has (it cannot be removed
/// while any exist; other tenants' environments of the same name do not count).
pub async fn deployment_count(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_deployments d JOIN apis a ON a.id = d.api_id \
         WHERE a.tenant_id = $1 AND d.environment = $2"
    )
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(c)
    .await)?)
}

/// Removes an environment.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query("DELETE FROM environments WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n)
}
