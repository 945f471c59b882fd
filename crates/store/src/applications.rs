//! Applications (AM database): what a Developer Portal user creates to hold keys and
//! subscriptions. Owner checks live in the Developer Portal; these are plain queries.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

/// An application as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationRow {
    /// Id.
    pub id: String,
    /// Name, unique per owner regardless of case.
    pub name: String,
    /// The user who owns it.
    pub owner: String,
    /// Its application policy.
    pub throttling_policy: String,
    /// Free text.
    pub description: Option<String>,
    /// `JWT` or `OAUTH` (opaque tokens).
    pub token_type: String,
    /// `APPROVED` and so on.
    pub status: String,
    /// Free-form attributes as a JSON object (text).
    pub attributes: String,
}
crate::db::from_row!(ApplicationRow {
    id,
    name,
    owner,
    throttling_policy,
    description,
    token_type,
    status,
    attributes
});

const COLUMNS: &str = "id, name, owner, throttling_policy, description, token_type, status, attributes";

/// An application with its bookkeeping, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplicationListing {
    /// The application.
    pub app: ApplicationRow,
    /// How many subscriptions it holds.
    pub subscription_count: i64,
    /// When it was created.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}
crate::db::from_row!(ApplicationListing { subscription_count, created_at, updated_at }; app);

const LISTING: &str = "SELECT a.id, a.name, a.owner, a.throttling_policy, a.description, a.token_type, a.status, \
     a.attributes, a.created_at, a.updated_at, \
     (SELECT COUNT(*) FROM subscriptions s WHERE s.application_id = a.id) AS subscription_count \
     FROM applications a";

/// Stores a new application.
pub async fn insert(tx: &mut Tx, tenant: TenantId, app: &ApplicationRow, at: EpochMillis) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO applications (id, tenant_id, name, owner, throttling_policy, description, token_type, status, \
         attributes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
    )
    .bind(&app.id)
    .bind(tenant.to_string())
    .bind(&app.name)
    .bind(&app.owner)
    .bind(&app.throttling_policy)
    .bind(&app.description)
    .bind(&app.token_type)
    .bind(&app.status)
    .bind(&app.attributes)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces an application's editable fields; returns rows changed.
pub async fn update(tx: &mut Tx, app: &ApplicationRow, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE applications SET name = $2, throttling_policy = $3, description = $4, token_type = $5, \
         attributes = $6, updated_at = $7 WHERE id = $1"
    )
    .bind(&app.id)
    .bind(&app.name)
    .bind(&app.throttling_policy)
    .bind(&app.description)
    .bind(&app.token_type)
    .bind(&app.attributes)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Deletes an application with its subscriptions, keys and API keys; returns rows
/// removed from `applications`.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<u64> {
    for sql in [
        "DELETE FROM subscriptions WHERE application_id = $1",
        "DELETE FROM application_keys WHERE application_id = $1",
        "DELETE FROM api_keys WHERE application_id = $1",
    ] {
        on_tx!(tx, |c| sqlx::query(sql)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(on_tx!(tx, |c| sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// One application of a tenant, with its listing fields.
pub async fn get(db: &Database, tenant: TenantId, id: &str) -> Result<Option<ApplicationListing>> {
    let sql = format!("{LISTING} WHERE a.tenant_id = $1 AND a.id = $2");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// An owner's application by name (any case), with its listing fields.
pub async fn find_by_name(
    db: &Database,
    tenant: TenantId,
    owner: &str,
    name: &str,
) -> Result<Option<ApplicationListing>> {
    let sql = format!("{LISTING} WHERE a.tenant_id = $1 AND a.owner = $2 AND lower(a.name) = lower($3)");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(owner)
    .bind(name)
    .fetch_optional(p)
    .await)?)
}

/// An owner's application by name (any case), read inside a transaction.
pub async fn find_by_name_in(tx: &mut Tx, tenant: TenantId, owner: &str, name: &str) -> Result<Option<ApplicationRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM applications WHERE tenant_id = $1 AND owner = $2 AND lower(name) = lower($3)");
    Ok(on_tx!(tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(owner)
        .bind(name)
        .fetch_optional(c)
        .await)?)
}

/// One application, read inside a transaction.
pub async fn get_in(tx: &mut Tx, tenant: TenantId, id: &str) -> Result<Option<ApplicationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2");
    Ok(on_tx!(tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// An owner's applications whose name contains `query` (case-insensitive), by name,
/// with the total.
pub async fn list_by_owner(
    db: &Database,
    tenant: TenantId,
    owner: &str,
    query: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ApplicationListing>, i64)> {
    let pattern = query.map(|q| format!("%{}%", q.to_lowercase()));
    let filter = "a.tenant_id = $1 AND a.owner = $2 AND ($3 IS NULL OR lower(a.name) LIKE $3)";
    let sql = format!("{LISTING} WHERE {filter} ORDER BY lower(a.name), a.id LIMIT $4 OFFSET $5");
    let rows: Vec<ApplicationListing> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(owner)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
    let count = format!("SELECT COUNT(*) FROM applications a WHERE {filter}");
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
        .bind(tenant.to_string())
        .bind(owner)
        .bind(&pattern)
        .fetch_one(p)
        .await)?;
    Ok((rows, total))
}

/// Whether `owner` already has an application called `name` (any case), other than
/// `except_id`.
pub async fn name_taken(tx: &mut Tx, tenant: TenantId, owner: &str, name: &str, except_id: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM applications WHERE tenant_id = $1 AND owner = $2 AND lower(name) = lower($3) AND id <> $4"
    )
    .bind(tenant.to_string())
    .bind(owner)
    .bind(name)
    .bind(except_id)
    .fetch_one(c)
    .await
    })?;
    Ok(n > 0)
}
