//! Subscriptions of applications to APIs (AM database): listing, blocking and in-use
//! checks for the Publisher and Admin, and the Developer Portal's own operations.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

pub use crate::applications::{ApplicationRow, insert as insert_application};

/// A subscription with what the Publisher shows of its application.
#[derive(Clone, Debug, PartialEq, Eq)]
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
crate::db::from_row!(SubscriptionRow {
    id,
    api_id,
    application_id,
    throttling_policy,
    status,
    application_name,
    application_owner,
    application_description,
    created_at
});

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

/// An owner's subscriptions, optionally of one application and/or to one API, with the
/// total (Developer Portal: a subscriber sees only their own).
#[allow(clippy::too_many_arguments)]
pub async fn list_for_owner(
    db: &Database,
    tenant: TenantId,
    owner: &str,
    application_id: Option<&str>,
    api_id: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<SubscriptionRow>, i64)> {
    let filter = "s.tenant_id = $1 AND a.owner = $2 AND ($3 IS NULL OR s.application_id = $3) \
                  AND ($4 IS NULL OR s.api_id = $4)";
    let sql = format!("{SELECT} WHERE {filter} ORDER BY s.created_at, s.id LIMIT $5 OFFSET $6");
    let rows: Vec<SubscriptionRow> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(owner)
        .bind(application_id)
        .bind(api_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
    let count =
        format!("SELECT COUNT(*) FROM subscriptions s JOIN applications a ON a.id = s.application_id WHERE {filter}");
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(sqlx::AssertSqlSafe(count.clone()))
        .bind(tenant.to_string())
        .bind(owner)
        .bind(application_id)
        .bind(api_id)
        .fetch_one(p)
        .await)?;
    Ok((rows, total))
}

/// One subscription, read inside a transaction.
pub async fn get_in(tx: &mut Tx, tenant: TenantId, id: &str) -> Result<Option<SubscriptionRow>> {
    let sql = format!("{SELECT} WHERE s.tenant_id = $1 AND s.id = $2");
    Ok(on_tx!(tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The id of `application_id`'s subscription to `api_id`, if it has one.
pub async fn find_for(tx: &mut Tx, application_id: &str, api_id: &str) -> Result<Option<String>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM subscriptions WHERE application_id = $1 AND api_id = $2"
    )
    .bind(application_id)
    .bind(api_id)
    .fetch_optional(c)
    .await)?)
}

/// Changes a subscription's business plan; returns rows changed.
pub async fn set_policy(tx: &mut Tx, id: &str, policy: &str, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE subscriptions SET throttling_policy = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(policy)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// The statuses a publisher sets to cut an application off an API.
pub const BLOCKED_STATUSES: [&str; 2] = ["BLOCKED", "PROD_ONLY_BLOCKED"];

/// Removes a subscription unless it is blocked (a block stays until its publisher lifts
/// it); returns rows removed. The check and the removal are one statement, so a block that
/// lands meanwhile is never lost.
pub async fn delete_unless_blocked(tx: &mut Tx, id: &str) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "DELETE FROM subscriptions WHERE id = $1 AND status NOT IN ($2, $3)"
    )
    .bind(id)
    .bind(BLOCKED_STATUSES[0])
    .bind(BLOCKED_STATUSES[1])
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// The `subscription_upserted` event of the row as it stands: one event for the
/// Publisher (block/unblock) and the Developer Portal (subscribe, change plan).
pub fn upserted_event(s: &SubscriptionRow) -> tollgate_events::ControlEvent {
    tollgate_events::ControlEvent::SubscriptionUpserted(tollgate_events::snapshot::SubscriptionInfo {
        subscription_id: s.id.clone(),
        api_id: s.api_id.clone(),
        application_id: s.application_id.clone(),
        throttling_policy: s.throttling_policy.clone(),
        subscription_status: s.status.clone(),
    })
}
