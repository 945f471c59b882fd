//! Application keys (AM database): the OAuth2 clients of applications, one per
//! application, key type and key manager. Secrets are stored as peppered hashes only.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result, Tx};
use tollgate_model::{EpochMillis, TenantId};

/// A key mapping as stored (`keyMappingId` is `id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// The key mapping id.
    pub id: String,
    /// The application it belongs to.
    pub application_id: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// `Resident Key Manager` or a registered third-party key manager's name.
    pub key_manager: String,
    /// `CREATED` (issued here) or `MAPPED` (an external client).
    pub mode: String,
    /// The OAuth2 client id.
    pub consumer_key: String,
    /// Peppered SHA-256 of the client secret (none for mapped keys).
    pub secret_hash: Option<String>,
    /// Allowed grant types, JSON array (text).
    pub grant_types: String,
    /// Redirect URI for the authorization-code grant.
    pub callback_url: Option<String>,
    /// Scopes the keys may request beyond role-bound ones, JSON array (text).
    pub scopes: String,
    /// Access-token lifetime in seconds (0: the key manager's default).
    pub validity_seconds: i64,
}
crate::db::from_row!(KeyRow {
    id,
    application_id,
    key_type,
    key_manager,
    mode,
    consumer_key,
    secret_hash,
    grant_types,
    callback_url,
    scopes,
    validity_seconds
});

const COLUMNS: &str = "id, application_id, key_type, key_manager, mode, consumer_key, secret_hash, grant_types, \
                       callback_url, scopes, validity_seconds";

/// A client with what a token needs to know of its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    /// The keys.
    pub key: KeyRow,
    /// The application's tenant.
    pub tenant_id: String,
    /// The application's name.
    pub application_name: String,
    /// The application's owner (the `sub` of client-credentials tokens).
    pub application_owner: String,
    /// The application's policy (its tier).
    pub application_tier: String,
    /// `JWT` or `OAUTH`.
    pub token_type: String,
}
crate::db::from_row!(ClientRow { tenant_id, application_name, application_owner, application_tier, token_type }; key);

impl ClientRow {
    /// The application's tenant. A stored id that does not parse is corrupt data, never
    /// the super tenant: guessing would hand one tenant's client another tenant's users.
    pub fn tenant(&self) -> Result<TenantId> {
        parse_tenant(&self.tenant_id, "client", &self.key.consumer_key)
    }
}

/// Parses a stored tenant id; `what`/`which` name the row in the error.
pub(crate) fn parse_tenant(id: &str, what: &str, which: &str) -> Result<TenantId> {
    id.parse()
        .map_err(|e| crate::Error::Corrupt(format!("{what} `{which}` has the tenant id `{id}`: {e}")))
}

/// Stores new keys.
pub async fn insert(tx: &mut Tx, tenant: TenantId, key: &KeyRow, at: EpochMillis) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO application_keys (id, tenant_id, application_id, key_type, key_manager, mode, consumer_key, \
         secret_hash, grant_types, callback_url, scopes, validity_seconds, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
    )
    .bind(&key.id)
    .bind(tenant.to_string())
    .bind(&key.application_id)
    .bind(&key.key_type)
    .bind(&key.key_manager)
    .bind(&key.mode)
    .bind(&key.consumer_key)
    .bind(&key.secret_hash)
    .bind(&key.grant_types)
    .bind(&key.callback_url)
    .bind(&key.scopes)
    .bind(key.validity_seconds)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An application's keys.
pub async fn list_for_application(db: &Database, application_id: &str) -> Result<Vec<KeyRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM application_keys WHERE application_id = $1 ORDER BY key_type, key_manager");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(application_id)
    .fetch_all(p)
    .await)?)
}

/// One key mapping of an application.
pub async fn get(db: &Database, application_id: &str, id: &str) -> Result<Option<KeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM application_keys WHERE application_id = $1 AND id = $2");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(application_id)
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// Whether the application already has keys of this type from this key manager.
pub async fn exists_in(tx: &mut Tx, application_id: &str, key_type: &str, key_manager: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM application_keys WHERE application_id = $1 AND key_type = $2 AND key_manager = $3"
    )
    .bind(application_id)
    .bind(key_type)
    .bind(key_manager)
    .fetch_one(c)
    .await)?;
    Ok(n > 0)
}

/// The client with a consumer key issued by `key_manager`, with its application.
pub async fn find_client(db: &Database, key_manager: &str, consumer_key: &str) -> Result<Option<ClientRow>> {
    let sql = "SELECT k.id, k.application_id, k.key_type, k.key_manager, k.mode, k.consumer_key, k.secret_hash, \
               k.grant_types, k.callback_url, k.scopes, k.validity_seconds, a.tenant_id, a.name AS application_name, \
               a.owner AS application_owner, a.throttling_policy AS application_tier, a.token_type \
               FROM application_keys k JOIN applications a ON a.id = k.application_id \
               WHERE k.key_manager = $1 AND k.consumer_key = $2";
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sql)
        .bind(key_manager)
        .bind(consumer_key)
        .fetch_optional(p)
        .await)?)
}

/// Replaces the secret hash of a key mapping; returns rows changed.
pub async fn set_secret_hash(tx: &mut Tx, id: &str, secret_hash: &str, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE application_keys SET secret_hash = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(secret_hash)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}
