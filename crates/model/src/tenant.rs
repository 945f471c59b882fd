//! Tenants (organizations). Tollgate runs one default tenant today; the id is on every
//! tenant-owned row so that multi-tenancy is a feature, not a migration.

use crate::{EpochMillis, TenantId};
use serde::{Deserialize, Serialize};

/// A tenant as stored in the shared database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable id.
    pub id: TenantId,
    /// The tenant domain, as in the reference (`carbon.super` for the default tenant).
    pub domain: String,
    /// Display name.
    pub name: String,
    /// When the tenant was created.
    pub created_at: EpochMillis,
}

impl Tenant {
    /// The default tenant's domain, as the reference system spells it.
    pub const DEFAULT_DOMAIN: &'static str = "carbon.super";
}
