//! Applications and subscriptions (AM database): the parts the Publisher and Admin need
//! today (listing, blocking, in-use checks). The Developer Portal adds the rest.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

/// An application as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApplicationRow {
    /// Id.
    pub id: String,
    /// Name, unique per owner.
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
}

/// Stores a new application.
pub async fn insert_application(tx: &mut Tx, tenant: TenantId, app: &ApplicationRow, at: EpochMillis) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO applications (id, tenant_id, name, owner, throttling_policy, description, token_type, status, \
         attributes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '{}', $9, $9)"
    )
    .bind(&app.id)
    .bind(tenant.to_string())
    .bind(&app.name)
    .bind(&app.owner)
    .bind(&app.throttling_policy)
    .bind(&app.description)
    .bind(&app.token_type)
    .bind(&app.status)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A subscription with what the Publisher shows of its application.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// Id.
    pub id: String,
    /// The subscribed API.
    pub api_id: String,
    /// The subscribing application.
    pub application_id: String,
    /// The business plan.
    pub throttling_policy: String,
    /// `UNBLOCKED`, `BLOCKED`, `PROD_ONLY_BLOCKED`…
    pub status: String,
    /// The application's name.
    pub application_name: String,
    /// The application's owner.
    pub application_owner: String,
    /// The application's description.
    pub application_description: Option<String>,
    /// When it was created.
    pub created_at: i64,
}

const SELECT: &str = "SELECT s.id, s.api_id, s.application_id, s.throttling_policy, s.status, \
     a.name AS application_name, a.owner AS application_owner, a.description AS application_description, s.created_at \
     FROM subscriptions s JOIN applications a ON a.id = s.application_id";

/// Stores a new subscription.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    tx: &mut Tx,
    tenant: TenantId,
    id: &str,
    application_id: &str,
    api_id: &str,
    policy: &str,
    status: &str,
    at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO subscriptions (id, tenant_id, application_id, api_id, throttling_policy, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    )
    .bind(id)
    .bind(tenant.to_string())
    .bind(application_id)
    .bind(api_id)
    .bind(policy)
    .bind(status)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A tenant's subscriptions, optionally to one API, with the total.
pub async fn list(
    db: &Database,
    tenant: TenantId,
    api_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<SubscriptionRow>, i64)> {
    let sql = format!(
        "{SELECT} WHERE s.tenant_id = $1 AND ($2 IS NULL OR s.api_id = $2) ORDER BY s.created_at, s.id LIMIT $3 OFFSET $4"
    );
    let rows: Vec<SubscriptionRow> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(api_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscriptions WHERE tenant_id = $1 AND ($2 IS NULL OR api_id = $2)"
    )
    .bind(tenant.to_string())
    .bind(api_id)
    .fetch_one(p)
    .await)?;
    Ok((rows, total))
}

/// One subscription.
pub async fn get(db: &Database, tenant: TenantId, id: &str) -> Result<Option<SubscriptionRow>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// Changes a subscription's status.
pub async fn set_status(tx: &mut Tx, id: &str, status: &str, at: EpochMillis) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE subscriptions SET status = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(status)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// How many subscriptions an API has (an API with subscriptions cannot be deleted).
pub async fn count_for_api(tx: &mut Tx, api_id: &str) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscriptions WHERE api_id = $1"
    )
    .bind(api_id)
    .fetch_one(c)
    .await)?)
}

/// How many subscriptions use a subscription policy, and how many applications use an
/// application policy (policies in use cannot be deleted).
pub async fn policy_usage(db: &Database, tenant: TenantId, name: &str) -> Result<(i64, i64)> {
    let subs: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscriptions WHERE tenant_id = $1 AND throttling_policy = $2"
    )
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(p)
    .await)?;
    let apps: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM applications WHERE tenant_id = $1 AND throttling_policy = $2"
    )
    .bind(tenant.to_string())
    .bind(name)
    .fetch_one(p)
    .await)?;
    Ok((subs, apps))
}
