//! Directories a tenant registers (shared database): each a secondary user store whose
//! users sign in as `DOMAIN/alice@tenant`. The settings are JSON; the bind password is
//! stored sealed, never in the clear (decision 021).

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

/// A registered directory as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserStoreRow {
    /// Id.
    pub id: String,
    /// Its domain, upper-cased: users sign in as `DOMAIN/name`.
    pub domain: String,
    /// The store's settings as JSON text, without the bind password.
    pub settings: String,
    /// The bind password, sealed.
    pub bind_password_sealed: String,
    /// When it last changed: a node builds the store again when this moves.
    pub updated_at: i64,
}
crate::db::from_row!(UserStoreRow {
    id,
    domain,
    settings,
    bind_password_sealed,
    updated_at
});

const COLUMNS: &str = "id, domain, settings, bind_password_sealed, updated_at";

/// A tenant's directories by domain.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<UserStoreRow>> {
    let sql = format!("SELECT {COLUMNS} FROM user_stores WHERE tenant_id = $1 ORDER BY domain");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .fetch_all(p)
    .await)?)
}

/// The tenant's directory with this id.
pub async fn find(db: &Database, tenant: TenantId, id: &str) -> Result<Option<UserStoreRow>> {
    let sql = format!("SELECT {COLUMNS} FROM user_stores WHERE tenant_id = $1 AND id = $2");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// Stores a new directory; a domain the tenant already has is a unique violation.
pub async fn insert(tx: &mut Tx, tenant: TenantId, row: &UserStoreRow) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO user_stores (id, tenant_id, domain, settings, bind_password_sealed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)"
    )
    .bind(&row.id)
    .bind(tenant.to_string())
    .bind(&row.domain)
    .bind(&row.settings)
    .bind(&row.bind_password_sealed)
    .bind(row.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a directory's settings and sealed password (not its domain); returns rows
/// changed.
pub async fn update(tx: &mut Tx, tenant: TenantId, row: &UserStoreRow) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE user_stores SET settings = $3, bind_password_sealed = $4, updated_at = $5 \
         WHERE tenant_id = $1 AND id = $2"
    )
    .bind(tenant.to_string())
    .bind(&row.id)
    .bind(&row.settings)
    .bind(&row.bind_password_sealed)
    .bind(row.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Removes a directory; returns rows removed.
pub async fn delete(tx: &mut Tx, tenant: TenantId, id: &str) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "DELETE FROM user_stores WHERE tenant_id = $1 AND id = $2"
    )
    .bind(tenant.to_string())
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// The moment a change is stored: never equal to `previous`, so that nodes see every
/// change as a change even within one millisecond.
pub fn next_version(previous: i64, now: EpochMillis) -> i64 {
    now.max(previous + 1)
}
