//! Tenants. The shared database's `tenants` table is the source (with each tenant's
//! roles and users); the AM database keeps `tenant_states`, the copy that snapshots and
//! gateways need (domain and active flag), written with a `tenant_changed` event in the
//! same transaction (decision 019).

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx, events, password};
use tollgate_events::ControlEvent;
use tollgate_events::control::TenantState;
use tollgate_model::environment::DEFAULT_ENVIRONMENT;
use tollgate_model::{NewUser, Role, Tenant, TenantId, User, now_millis};

struct TenantRow {
    id: String,
    domain: String,
    name: String,
    active: bool,
    created_at: i64,
}
crate::db::from_row!(TenantRow {
    id,
    domain,
    name,
    active,
    created_at
});

impl TryFrom<TenantRow> for Tenant {
    type Error = Error;
    fn try_from(r: TenantRow) -> Result<Self> {
        Ok(Tenant {
            id: r
                .id
                .parse::<TenantId>()
                .map_err(|e| Error::Corrupt(format!("tenant id `{}`: {e}", r.id)))?,
            domain: r.domain,
            name: r.name,
            active: r.active,
            created_at: r.created_at,
        })
    }
}

/// Looks up a tenant by its domain (`carbon.super`, `acme.com`).
pub async fn find_by_domain(db: &Database, domain: &str) -> Result<Option<Tenant>> {
    let row: Option<TenantRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as("SELECT id, domain, name, active, created_at FROM tenants WHERE domain = $1")
            .bind(domain)
            .fetch_optional(p)
            .await
    })?;
    row.map(Tenant::try_from).transpose()
}

/// Looks up a tenant by id.
pub async fn get(db: &Database, id: TenantId) -> Result<Option<Tenant>> {
    let row: Option<TenantRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as("SELECT id, domain, name, active, created_at FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(p)
            .await
    })?;
    row.map(Tenant::try_from).transpose()
}

/// Every tenant, the super tenant first, then by domain; with the total.
pub async fn list(db: &Database, offset: i64, limit: i64) -> Result<(Vec<Tenant>, i64)> {
    let rows: Vec<TenantRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as(
            "SELECT id, domain, name, active, created_at FROM tenants \
             ORDER BY CASE WHEN domain = 'carbon.super' THEN 0 ELSE 1 END, domain LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await
    })?;
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(p)
        .await)?;
    Ok((rows.into_iter().map(Tenant::try_from).collect::<Result<_>>()?, total))
}

/// The tenant a sign-in name names and the user's name inside it: `alice@acme.com` is
/// `alice` of `acme.com` when `acme.com` is a tenant; any other name (`alice`, or
/// `bob@mail.com` when `mail.com` is no tenant) is a user of the super tenant.
/// `None` when the super tenant itself is missing (a database that was never migrated).
pub async fn resolve_user(db: &Database, name: &str) -> Result<Option<(Tenant, String)>> {
    if let (user, Some(domain)) = tollgate_model::tenant::split_qualified(name)
        && let Some(tenant) = find_by_domain(db, domain).await?
    {
        return Ok(Some((tenant, user.to_string())));
    }
    Ok(get(db, TenantId::DEFAULT).await?.map(|t| (t, name.to_string())))
}

/// A tenant to create, with its first administrator.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The domain (validated here).
    pub domain: String,
    /// Display name; the domain when empty.
    pub name: String,
    /// The first administrator's name inside the tenant (without `@domain`).
    pub admin_username: String,
    /// Their password.
    pub admin_password: String,
    /// Their email address.
    pub admin_email: Option<String>,
}

/// Creates a tenant, its four built-in roles and its first administrator, all or
/// nothing. A taken domain is a conflict; bad fields are a validation error naming them.
/// The AM side is provisioned separately ([`provision`]).
pub async fn create(db: &Database, new: NewTenant) -> Result<(Tenant, User)> {
    let mut errors = Vec::new();
    if let Err(e) = tollgate_model::tenant::validate_domain(&new.domain) {
        errors.push(tollgate_model::FieldError::new("domain", e));
    }
    let id = TenantId::new();
    let admin = NewUser {
        tenant_id: id,
        username: new.admin_username.clone(),
        password: new.admin_password.clone(),
        email: new.admin_email.clone(),
        roles: vec![Role::Admin],
    };
    if let Err(tollgate_model::Error::Validation(fields)) = admin.validate() {
        errors.extend(fields.into_iter().map(|mut f| {
            f.field = match f.field.as_str() {
                "username" => "adminUsername".into(),
                "password" => "adminPassword".into(),
                other => other.to_string(),
            };
            f
        }));
    }
    if new.admin_username.contains('@') {
        errors.push(tollgate_model::FieldError::new(
            "adminUsername",
            "give the name without `@domain`; the administrator signs in as `name@domain`",
        ));
    }
    if !errors.is_empty() {
        return Err(tollgate_model::Error::Validation(errors).into());
    }
    let hash = password::hash(new.admin_password.clone()).await?;
    let now = now_millis();
    let name = if new.name.trim().is_empty() {
        new.domain.clone()
    } else {
        new.name.trim().to_string()
    };
    let mut tx = db.begin().await?;
    let inserted = on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO tenants (id, domain, name, active, created_at) VALUES ($1, $2, $3, TRUE, $4)"
    )
    .bind(id.to_string())
    .bind(&new.domain)
    .bind(&name)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()));
    if let Err(e) = inserted {
        let e = Error::from(e);
        return Err(if e.is_unique_violation() {
            tollgate_model::Error::Conflict(format!("a tenant with the domain `{}` already exists", new.domain)).into()
        } else {
            e
        });
    }
    for role in Role::ALL {
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO roles (tenant_id, name, description) VALUES ($1, $2, $3)"
        )
        .bind(id.to_string())
        .bind(role.as_str())
        .bind(role.description())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let user = crate::users::insert_in(&mut tx, admin, &hash).await?;
    tx.commit().await?;
    let tenant = Tenant {
        id,
        domain: new.domain,
        name,
        active: true,
        created_at: now,
    };
    Ok((tenant, user))
}

/// The super tenant's users named `…@domain` (at most 100): once a tenant `domain`
/// exists, that name signs in to it, so they can no longer sign in as before. A tenant's
/// creation reports them rather than being refused for them, so that anyone who signs up
/// as `x@bigcorp.com` first cannot keep the tenant `bigcorp.com` from being created.
pub async fn shadowed_users(db: &Database, domain: &str) -> Result<Vec<String>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT username FROM users WHERE tenant_id = $1 AND lower(username) LIKE $2 ORDER BY username LIMIT 100"
    )
    .bind(TenantId::DEFAULT.to_string())
    .bind(format!("%@{}", domain.to_ascii_lowercase()))
    .fetch_all(p)
    .await)?)
}

/// Activates or deactivates a tenant in the shared database; whether it existed. The
/// super tenant cannot be deactivated (its administrators manage the others).
pub async fn set_active(db: &Database, id: TenantId, active: bool) -> Result<bool> {
    if id == TenantId::DEFAULT && !active {
        return Err(
            tollgate_model::Error::Conflict("the super tenant `carbon.super` cannot be deactivated".into()).into(),
        );
    }
    let n = on_pool!(db.writer(), |p| sqlx::query(
        "UPDATE tenants SET active = $2 WHERE id = $1"
    )
    .bind(id.to_string())
    .bind(active)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Brings the AM database in line with `tenant`: its `tenant_states` row (with a
/// `tenant_changed` event when it changed), its `Default` environment and its default
/// throttling policies. Idempotent, so start-up runs it for every tenant to repair a
/// creation that stopped between the two databases.
pub async fn provision(am: &Database, tenant: &Tenant) -> Result<()> {
    let mut tx = am.begin().await?;
    sync_state(&mut tx, tenant).await?;
    ensure_default_environment(&mut tx, tenant.id).await?;
    tx.commit().await?;
    crate::policies::install_defaults(am, tenant.id).await?;
    Ok(())
}

/// Writes `tenant`'s state to `tenant_states` and, when it is new or changed, the
/// `tenant_changed` event that tells gateways.
async fn sync_state(tx: &mut Tx, tenant: &Tenant) -> Result<()> {
    let current: Option<(String, bool)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT domain, active FROM tenant_states WHERE tenant_id = $1"
    )
    .bind(tenant.id.to_string())
    .fetch_optional(c)
    .await)?;
    if current.as_ref() == Some(&(tenant.domain.clone(), tenant.active)) {
        return Ok(());
    }
    let now = now_millis();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO tenant_states (tenant_id, domain, active, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET domain = $2, active = $3, updated_at = $4"
    )
    .bind(tenant.id.to_string())
    .bind(&tenant.domain)
    .bind(tenant.active)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    events::emit(
        tx,
        tenant.id,
        None,
        ControlEvent::TenantChanged(TenantState {
            tenant_id: tenant.id,
            domain: tenant.domain.clone(),
            active: tenant.active,
        }),
    )
    .await?;
    Ok(())
}

/// Gives a tenant the `Default` environment the super tenant has (same gateways), read
/// only, unless it has one.
async fn ensure_default_environment(tx: &mut Tx, tenant: TenantId) -> Result<()> {
    let present: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM environments WHERE tenant_id = $1 AND name = $2"
    )
    .bind(tenant.to_string())
    .bind(DEFAULT_ENVIRONMENT)
    .fetch_one(c)
    .await)?;
    if present > 0 {
        return Ok(());
    }
    let body: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT body FROM environments WHERE tenant_id = $1 AND name = $2"
    )
    .bind(TenantId::DEFAULT.to_string())
    .bind(DEFAULT_ENVIRONMENT)
    .fetch_optional(c)
    .await)?;
    let Some(body) = body else {
        return Ok(());
    };
    let now = now_millis();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO environments (id, tenant_id, name, body, is_read_only, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, TRUE, $5, $5)"
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(tenant.to_string())
    .bind(DEFAULT_ENVIRONMENT)
    .bind(&body)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every tenant's state as the AM database holds it (for gateway snapshots).
pub async fn states(am: &Database) -> Result<Vec<TenantState>> {
    let rows: Vec<(String, String, bool)> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT tenant_id, domain, active FROM tenant_states ORDER BY domain"
    )
    .fetch_all(p)
    .await)?;
    rows.into_iter()
        .map(|(id, domain, active)| {
            Ok(TenantState {
                tenant_id: id
                    .parse()
                    .map_err(|e| Error::Corrupt(format!("tenant state `{id}`: {e}")))?,
                domain,
                active,
            })
        })
        .collect()
}

/// Provisions every tenant of the shared database in the AM database (start-up repair;
/// see [`provision`]).
pub async fn provision_all(shared: &Database, am: &Database) -> Result<()> {
    let (all, _) = list(shared, 0, i64::MAX).await?;
    for tenant in &all {
        provision(am, tenant).await?;
    }
    Ok(())
}
