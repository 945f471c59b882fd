//! Tenants (shared database). Only the default tenant exists today; it is created by the
//! first migration.

use crate::db::on_pool;
use crate::{Database, Result};
use tollgate_model::{Tenant, TenantId};

struct TenantRow {
    id: String,
    domain: String,
    name: String,
    created_at: i64,
}
crate::db::from_row!(TenantRow {
    id,
    domain,
    name,
    created_at
});

/// Looks up a tenant by its domain (`carbon.super`).
pub async fn find_by_domain(db: &Database, domain: &str) -> Result<Option<Tenant>> {
    let row: Option<TenantRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as("SELECT id, domain, name, created_at FROM tenants WHERE domain = $1")
            .bind(domain)
            .fetch_optional(p)
            .await
    })?;
    row.map(|r| {
        Ok(Tenant {
            id: r
                .id
                .parse::<TenantId>()
                .map_err(|e| crate::Error::Corrupt(format!("tenant id `{}`: {e}", r.id)))?,
            domain: r.domain,
            name: r.name,
            created_at: r.created_at,
        })
    })
    .transpose()
}
