//! Users and their roles (shared database): creation with argon2id hashes, lookup,
//! credential checks for HTTP Basic, and the bootstrap administrator.

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx, password};
use tollgate_model::{NewUser, Principal, Role, Tenant, TenantId, User, UserId, now_millis};

/// One row per (user, role) pair; a user without roles yields one row with no role.
struct UserRoleRow {
    id: String,
    tenant_id: String,
    username: String,
    email: Option<String>,
    created_at: i64,
    enabled: bool,
    role_name: Option<String>,
}
crate::db::from_row!(UserRoleRow {
    id,
    tenant_id,
    username,
    email,
    created_at,
    enabled,
    role_name
});

/// Folds joined rows (ordered by user) into users with their sorted roles.
fn fold_users(rows: Vec<UserRoleRow>) -> Result<Vec<User>> {
    let mut users: Vec<User> = Vec::new();
    for r in rows {
        let role = r
            .role_name
            .as_deref()
            .map(|n| n.parse::<Role>().map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()?;
        if users.last().is_none_or(|u| u.id.to_string() != r.id) {
            users.push(User {
                id: r
                    .id
                    .parse::<UserId>()
                    .map_err(|e| Error::Corrupt(format!("user id `{}`: {e}", r.id)))?,
                tenant_id: r
                    .tenant_id
                    .parse::<TenantId>()
                    .map_err(|e| Error::Corrupt(format!("tenant id `{}`: {e}", r.tenant_id)))?,
                username: r.username,
                email: r.email,
                roles: Vec::new(),
                custom_roles: Vec::new(),
                enabled: r.enabled,
                created_at: r.created_at,
            });
        }
        if let (Some(role), Some(user)) = (role, users.last_mut()) {
            user.roles.push(role);
            user.roles.sort();
        }
    }
    Ok(users)
}

/// Creates a user after validating every field; a duplicate username is a conflict and
/// writes nothing.
pub async fn create(db: &Database, new: NewUser) -> Result<User> {
    new.validate()?;
    // `bob@acme.com` of the super tenant could never sign in once `acme.com` is a tenant:
    // the name would reach acme's `bob` (decision 019).
    if new.tenant_id == TenantId::DEFAULT
        && let (_, Some(domain)) = tollgate_model::tenant::split_qualified(&new.username)
        && crate::tenants::find_by_domain(db, domain).await?.is_some()
    {
        return Err(tollgate_model::Error::Validation(vec![tollgate_model::FieldError::new(
            "username",
            format!("`{domain}` is a tenant: `{}` would sign in to it; choose another name, or create the user in `{domain}`", new.username),
        )])
        .into());
    }
    let hash = password::hash(new.password.clone()).await?;
    let mut tx = db.begin().await?;
    let user = insert_in(&mut tx, new, &hash).await?;
    tx.commit().await?;
    Ok(user)
}

/// Inserts a validated user whose password is already hashed, inside `tx` (a new
/// tenant's first administrator is written with the tenant, all or nothing).
pub(crate) async fn insert_in(tx: &mut Tx, new: NewUser, hash: &str) -> Result<User> {
    let id = UserId::new();
    let now = now_millis();
    let mut roles = new.roles.clone();
    roles.sort();
    roles.dedup();
    let inserted = on_tx!(tx, |c| {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, username, password_hash, email, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_string())
        .bind(new.tenant_id.to_string())
        .bind(&new.username)
        .bind(hash)
        .bind(&new.email)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    });
    if let Err(e) = inserted {
        let e = Error::from(e);
        return Err(if e.is_unique_violation() {
            tollgate_model::Error::Conflict(format!("a user named `{}` already exists", new.username)).into()
        } else {
            e
        });
    }
    for role in &roles {
        on_tx!(tx, |c| {
            sqlx::query("INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(new.tenant_id.to_string())
                .bind(role.as_str())
                .execute(c)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(User {
        id,
        tenant_id: new.tenant_id,
        username: new.username,
        email: new.email,
        roles,
        custom_roles: Vec::new(),
        enabled: true,
        created_at: now,
    })
}

/// Finds a user by name within a tenant, ignoring case.
pub async fn find_by_username(db: &Database, tenant: TenantId, username: &str) -> Result<Option<User>> {
    let rows: Vec<UserRoleRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as(
            "SELECT u.id, u.tenant_id, u.username, u.email, u.created_at, u.enabled, r.role_name \
             FROM users u LEFT JOIN user_roles r ON r.user_id = u.id \
             WHERE u.tenant_id = $1 AND lower(u.username) = lower($2)",
        )
        .bind(tenant.to_string())
        .bind(username)
        .fetch_all(p)
        .await
    })?;
    Ok(fold_users(rows)?.into_iter().next())
}

/// Lists a tenant's users by name, with the total count for pagination.
pub async fn list(db: &Database, tenant: TenantId, offset: i64, limit: i64) -> Result<(Vec<User>, i64)> {
    let rows: Vec<UserRoleRow> = on_pool!(db.reader(), |p| {
        sqlx::query_as(
            "SELECT u.id, u.tenant_id, u.username, u.email, u.created_at, u.enabled, r.role_name \
             FROM users u LEFT JOIN user_roles r ON r.user_id = u.id \
             WHERE u.id IN (SELECT id FROM users WHERE tenant_id = $1 \
                            ORDER BY lower(username) LIMIT $2 OFFSET $3) \
             ORDER BY lower(u.username), u.id",
        )
        .bind(tenant.to_string())
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await
    })?;
    let total: i64 = on_pool!(db.reader(), |p| {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1")
            .bind(tenant.to_string())
            .fetch_one(p)
            .await
    })?;
    Ok((fold_users(rows)?, total))
}

/// Checks a username and password; `Ok(None)` for any mismatch. Unknown users cost the
/// same argon2 work as known ones, so timing does not reveal which names exist.
pub async fn authenticate(db: &Database, tenant: &Tenant, username: &str, password: &str) -> Result<Option<Principal>> {
    authenticate_gated(db, tenant, username, password, ()).await
}

/// As [`authenticate`], with the argon2 check admitted by `gate` and its outcome told to
/// it (see [`password::Gate`]); an unknown user's check is a failed one. A refusal is
/// returned as [`crate::Error::Domain`]. Guessing limits use it.
pub async fn authenticate_gated(
    db: &Database,
    tenant: &Tenant,
    username: &str,
    password: &str,
    gate: impl password::Gate,
) -> Result<Option<Principal>> {
    let row: Option<(String, String)> = on_pool!(db.reader(), |p| {
        sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE tenant_id = $1 AND lower(username) = lower($2) AND enabled = TRUE",
        )
            .bind(tenant.id.to_string())
            .bind(username)
            .fetch_optional(p)
            .await
    })?;
    let Some((_, hash)) = row else {
        // The dummy hash matches nothing a caller can send, so the outcome is a failure.
        password::verify_gated(password.to_string(), password::DUMMY_HASH.to_string(), gate).await?;
        return Ok(None);
    };
    if !password::verify_gated(password.to_string(), hash, gate).await? {
        return Ok(None);
    }
    let Some(user) = find_by_username(db, tenant.id, username).await? else {
        return Ok(None);
    };
    Ok(Some(user.into_principal(tenant.domain.clone(), None)))
}

/// What happened to the bootstrap administrator on this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The administrator already existed; nothing was changed.
    Existing,
    /// Created with the configured password.
    Created,
    /// Created with this generated password, which must be shown to the operator once.
    CreatedWithGeneratedPassword(String),
}

/// Creates the bootstrap administrator in the default tenant if it does not exist yet.
/// Safe when several nodes start at once: the loser of the insert race sees `Existing`.
pub async fn ensure_admin(db: &Database, username: &str, configured_password: Option<&str>) -> Result<Bootstrap> {
    if find_by_username(db, TenantId::DEFAULT, username).await?.is_some() {
        return Ok(Bootstrap::Existing);
    }
    let (password, generated) = match configured_password {
        Some(p) => (p.to_string(), false),
        None => (password::generate(24)?, true),
    };
    let new = NewUser {
        tenant_id: TenantId::DEFAULT,
        username: username.to_string(),
        password: password.clone(),
        email: None,
        roles: vec![Role::Admin],
    };
    match create(db, new).await {
        Ok(_) if generated => Ok(Bootstrap::CreatedWithGeneratedPassword(password)),
        Ok(_) => Ok(Bootstrap::Created),
        Err(Error::Domain(tollgate_model::Error::Conflict(_))) => Ok(Bootstrap::Existing),
        Err(e) => Err(e),
    }
}

/// Takes the tenant's administrators lock and refuses (409) when `user` is its last
/// enabled administrator, who is about to stop being one: the count and the change that
/// follows in `tx` happen under one lock, so two administrators demoting each other at
/// once cannot leave none.
async fn keep_an_administrator(tx: &mut Tx, user: &User) -> Result<()> {
    crate::lock_named(tx, &format!("tollgate:admins:{}", user.tenant_id)).await?;
    // The tenant's enabled administrators, and whether `user` is one of them.
    let (admins, is_admin): (i64, i64) = on_tx!(tx, |c| sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN u.id = $2 THEN 1 ELSE 0 END), 0) \
         FROM users u JOIN user_roles r ON r.user_id = u.id \
         WHERE u.tenant_id = $1 AND u.enabled = TRUE AND r.role_name = 'admin'"
    )
    .bind(user.tenant_id.to_string())
    .bind(user.id.to_string())
    .fetch_one(c)
    .await)?;
    if is_admin > 0 && admins <= 1 {
        return Err(tollgate_model::Error::Conflict(format!(
            "`{}` is the last enabled administrator; make another user an administrator first",
            user.username
        ))
        .into());
    }
    Ok(())
}

/// Deletes a user (and their roles), keeping at least one enabled administrator per
/// tenant as [`update_access`] does; returns whether the user was still there.
pub async fn delete(db: &Database, user: &User) -> Result<bool> {
    let mut tx = db.begin().await?;
    keep_an_administrator(&mut tx, user).await?;
    let mut removed = 0;
    for sql in [
        "DELETE FROM user_roles WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        removed = on_tx!(&mut tx, |c| sqlx::query(sql)
            .bind(user.id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(removed == 1)
}

/// Changes a user's roles and/or enabled state in one transaction, keeping at least one
/// enabled administrator per tenant: the count and the change happen under one lock, so
/// two administrators demoting each other at once cannot leave none.
pub async fn update_access(db: &Database, user: &User, roles: Option<&[Role]>, enabled: Option<bool>) -> Result<()> {
    let mut tx = db.begin().await?;
    let loses_admin = enabled == Some(false) || roles.is_some_and(|r| !r.contains(&Role::Admin));
    if loses_admin {
        keep_an_administrator(&mut tx, user).await?;
    }
    let now = now_millis();
    if let Some(roles) = roles {
        on_tx!(&mut tx, |c| sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(user.id.to_string())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        for role in roles {
            on_tx!(&mut tx, |c| sqlx::query(
                "INSERT INTO user_roles (user_id, tenant_id, role_name) VALUES ($1, $2, $3)"
            )
            .bind(user.id.to_string())
            .bind(user.tenant_id.to_string())
            .bind(role.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        }
    }
    if let Some(enabled) = enabled {
        on_tx!(&mut tx, |c| sqlx::query("UPDATE users SET enabled = $2 WHERE id = $1")
            .bind(user.id.to_string())
            .bind(enabled)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    on_tx!(&mut tx, |c| sqlx::query(
        "UPDATE users SET updated_at = $2 WHERE id = $1"
    )
    .bind(user.id.to_string())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await
}
