//! OAuth2 state of the key manager (AM database): refresh tokens and opaque access
//! tokens, authorization codes, token families, API keys, revocations and signing keys.
//! Every token and code is stored as a peppered hash, never in clear.

use crate::db::{on_pool, on_tx};
use crate::keys::parse_tenant;
use crate::{Database, Result, Tx};
use tollgate_events::control::TenantState;
use tollgate_model::{EpochMillis, TenantId};

/// A refresh token or opaque access token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// Peppered SHA-256 of the token.
    pub token_hash: String,
    /// `access` or `refresh`.
    pub kind: String,
    /// The token's id (the `jti` of tokens issued with it).
    pub jti: String,
    /// The tenant of the user it acts for (a built-in client's tokens are in their
    /// user's tenant, an application's in the application's).
    pub tenant_id: String,
    /// The client it was issued to.
    pub consumer_key: String,
    /// The client's application.
    pub application_id: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// The token's subject: the end user (or the application owner for client
    /// credentials) as they sign in, `alice@acme.com` (bare in the super tenant).
    pub username: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The grant that issued it.
    pub grant_type: String,
    /// When it was issued (epoch ms).
    pub issued_at: i64,
    /// When it expires (epoch ms).
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// The token family (the grant it descends from), for grants with a refresh token.
    pub family_id: Option<String>,
}
crate::db::from_row!(TokenRow {
    token_hash,
    kind,
    jti,
    tenant_id,
    consumer_key,
    application_id,
    key_type,
    username,
    scope,
    grant_type,
    issued_at,
    expires_at,
    revoked_at,
    family_id
});

impl TokenRow {
    /// The token's tenant; a stored id that does not parse is an error, never the super tenant.
    pub fn tenant(&self) -> Result<TenantId> {
        parse_tenant(&self.tenant_id, "token", &self.jti)
    }
}

/// Stores a token.
pub async fn insert_token(tx: &mut Tx, t: &TokenRow) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO oauth_tokens (token_hash, kind, jti, tenant_id, consumer_key, application_id, key_type, username, \
         scope, grant_type, issued_at, expires_at, revoked_at, family_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )
    .bind(&t.token_hash)
    .bind(&t.kind)
    .bind(&t.jti)
    .bind(&t.tenant_id)
    .bind(&t.consumer_key)
    .bind(&t.application_id)
    .bind(&t.key_type)
    .bind(&t.username)
    .bind(&t.scope)
    .bind(&t.grant_type)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(t.revoked_at)
    .bind(&t.family_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

const TOKEN_COLUMNS: &str = "token_hash, kind, jti, tenant_id, consumer_key, application_id, key_type, username, scope, \
                             grant_type, issued_at, expires_at, revoked_at, family_id";

/// A token by its hash.
pub async fn find_token(db: &Database, token_hash: &str) -> Result<Option<TokenRow>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = $1");
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(
        sql.clone()
    ))
    .bind(token_hash)
    .fetch_optional(p)
    .await)?)
}

/// Marks a token revoked unless it already is; returns whether this call revoked it
/// (so that a refresh token is used at most once, even by racing requests).
pub async fn revoke_token(tx: &mut Tx, token_hash: &str, at: EpochMillis) -> Result<bool> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL"
    )
    .bind(token_hash)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Revokes every live token of `tenant`'s client; returns how many.
pub async fn revoke_tokens_of_client(
    tx: &mut Tx,
    tenant: TenantId,
    consumer_key: &str,
    at: EpochMillis,
) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND consumer_key = $2 AND revoked_at IS NULL"
    )
    .bind(tenant.to_string())
    .bind(consumer_key)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Revokes every live stored token (refresh tokens, opaque access tokens) of `tenant`
/// whose subject is `username` (qualified: `alice@acme.com`, bare in the super tenant) as
/// resource owner or end user; returns how many.
pub async fn revoke_tokens_of_user(tx: &mut Tx, tenant: TenantId, username: &str, at: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND username = $2 AND revoked_at IS NULL"
    )
    .bind(tenant.to_string())
    .bind(username)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// An authorization code as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRow {
    /// Peppered SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub consumer_key: String,
    /// The user who approved it, as they sign in (`alice@acme.com`; bare in the super
    /// tenant): the code carries its user's tenant in the name.
    pub username: String,
    /// The redirect URI it was issued for (must match at the token endpoint).
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The OIDC `nonce` to put in the ID token, when the client sent one.
    pub nonce: Option<String>,
    /// When it expires (epoch ms).
    pub expires_at: i64,
}
crate::db::from_row!(CodeRow {
    code_hash,
    consumer_key,
    username,
    redirect_uri,
    scope,
    code_challenge,
    nonce,
    expires_at
});

/// Stores an authorization code.
pub async fn insert_code(db: &Database, code: &CodeRow) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO authorization_codes (code_hash, consumer_key, username, redirect_uri, scope, code_challenge, \
         nonce, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(&code.code_hash)
    .bind(&code.consumer_key)
    .bind(&code.username)
    .bind(&code.redirect_uri)
    .bind(&code.scope)
    .bind(&code.code_challenge)
    .bind(&code.nonce)
    .bind(code.expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Takes an authorization code: marks it used, records the token family its exchange
/// starts, and returns it; `None` when it does not exist or was already used (a code
/// works once, even under racing requests).
pub async fn take_code(tx: &mut Tx, code_hash: &str, at: EpochMillis, family_id: &str) -> Result<Option<CodeRow>> {
    let used = on_tx!(tx, |c| sqlx::query(
        "UPDATE authorization_codes SET used_at = $2, family_id = $3 WHERE code_hash = $1 AND used_at IS NULL"
    )
    .bind(code_hash)
    .bind(at)
    .bind(family_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if used != 1 {
        return Ok(None);
    }
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT code_hash, consumer_key, username, redirect_uri, scope, code_challenge, nonce, expires_at \
         FROM authorization_codes WHERE code_hash = $1"
    )
    .bind(code_hash)
    .fetch_optional(c)
    .await)?)
}

/// An authorization code that was already used: who it was issued to and the token
/// family its first exchange started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpentCode {
    /// The client it was issued to.
    pub consumer_key: String,
    /// The family of the tokens its first exchange issued (none issued if that failed).
    pub family_id: Option<String>,
}
crate::db::from_row!(SpentCode {
    consumer_key,
    family_id
});

/// A code that was already used, by its hash.
pub async fn spent_code(tx: &mut Tx, code_hash: &str) -> Result<Option<SpentCode>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT consumer_key, family_id FROM authorization_codes WHERE code_hash = $1 AND used_at IS NOT NULL"
    )
    .bind(code_hash)
    .fetch_optional(c)
    .await)?)
}

/// An access token (JWT or opaque) of a token family, by `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyAccess {
    /// The token's id.
    pub jti: String,
    /// Its family.
    pub family_id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The client it was issued to.
    pub consumer_key: String,
    /// When it expires (epoch ms).
    pub expires_at: i64,
}
crate::db::from_row!(FamilyAccess {
    jti,
    family_id,
    tenant_id,
    consumer_key,
    expires_at
});

impl FamilyAccess {
    /// The token's tenant; a stored id that does not parse is an error, never the super tenant.
    pub fn tenant(&self) -> Result<TenantId> {
        parse_tenant(&self.tenant_id, "token", &self.jti)
    }
}

/// Records an access token as a member of its family.
pub async fn insert_family_access(tx: &mut Tx, a: &FamilyAccess) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO token_family_access (jti, family_id, tenant_id, consumer_key, expires_at) \
         VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(&a.jti)
    .bind(&a.family_id)
    .bind(&a.tenant_id)
    .bind(&a.consumer_key)
    .bind(a.expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Revokes a token family: marks its stored tokens (refresh tokens, opaque access tokens)
/// revoked, and returns its access tokens that were still live and not yet revoked with
/// it, for the caller to announce (each is returned once, even to racing callers).
pub async fn revoke_family(tx: &mut Tx, family_id: &str, at: EpochMillis) -> Result<Vec<FamilyAccess>> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL"
    )
    .bind(family_id)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "UPDATE token_family_access SET revoked_at = $2 \
         WHERE family_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         RETURNING jti, family_id, tenant_id, consumer_key, expires_at"
    )
    .bind(family_id)
    .bind(at)
    .fetch_all(c)
    .await)?)
}

/// What a revocation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationKind {
    /// One token (JWT access token or API key) by its `jti`.
    TokenId,
    /// Every token of a consumer key issued before the revocation time.
    ConsumerKey,
    /// Every token whose subject is a user (by name), issued before the revocation time:
    /// the user was disabled, deleted or lost a role.
    User,
}

impl RevocationKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RevocationKind::TokenId => "jti",
            RevocationKind::ConsumerKey => "consumer_key",
            RevocationKind::User => "user",
        }
    }
}

/// Records a revocation that gateways and introspection must honour until `expires_at`.
pub async fn insert_revocation(
    tx: &mut Tx,
    tenant: TenantId,
    kind: RevocationKind,
    subject: &str,
    at: EpochMillis,
    expires_at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO revocations (id, tenant_id, kind, subject, revoked_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(tenant.to_string())
    .bind(kind.as_str())
    .bind(subject)
    .bind(at)
    .bind(expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether a token with this `jti`, issued to `consumer_key` for the user `subject` at
/// `issued_at` (epoch ms), has been revoked.
pub async fn is_revoked(
    db: &Database,
    jti: &str,
    consumer_key: &str,
    subject: &str,
    issued_at: EpochMillis,
) -> Result<bool> {
    let n: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM revocations WHERE (kind = 'jti' AND subject = $1) \
         OR (kind = 'consumer_key' AND subject = $2 AND revoked_at >= $3) \
         OR (kind = 'user' AND subject = $4 AND revoked_at >= $3)"
    )
    .bind(jti)
    .bind(consumer_key)
    .bind(issued_at)
    .bind(subject)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

/// An API key as stored (the key itself is a signed JWT; only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// The key's id (its `jti`).
    pub id: String,
    /// The application it is bound to.
    pub application_id: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// A label.
    pub key_name: String,
    /// Peppered SHA-256 of the key.
    pub key_hash: String,
    /// When it was issued (epoch ms).
    pub issued_at: i64,
    /// When it expires, if it does.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}
crate::db::from_row!(ApiKeyRow {
    id,
    application_id,
    key_type,
    key_name,
    key_hash,
    issued_at,
    expires_at,
    revoked_at
});

/// Stores an API key.
pub async fn insert_api_key(tx: &mut Tx, tenant: TenantId, k: &ApiKeyRow) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, application_id, key_type, key_name, key_hash, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(&k.id)
    .bind(tenant.to_string())
    .bind(&k.application_id)
    .bind(&k.key_type)
    .bind(&k.key_name)
    .bind(&k.key_hash)
    .bind(k.issued_at)
    .bind(k.expires_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An application's API key of one key type, by its hash.
pub async fn find_api_key(
    tx: &mut Tx,
    application_id: &str,
    key_type: &str,
    key_hash: &str,
) -> Result<Option<ApiKeyRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, application_id, key_type, key_name, key_hash, issued_at, expires_at, revoked_at FROM api_keys \
         WHERE application_id = $1 AND key_type = $2 AND key_hash = $3"
    )
    .bind(application_id)
    .bind(key_type)
    .bind(key_hash)
    .fetch_optional(c)
    .await)?)
}

/// Marks an API key revoked; returns whether this call revoked it.
pub async fn revoke_api_key(tx: &mut Tx, id: &str, at: EpochMillis) -> Result<bool> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
    )
    .bind(id)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The AM database's copy of a tenant (`tenant_states`, kept by `tenants::provision`)
/// by id: what a token's tenant needs to be checked without the shared database
/// (introspection on key-manager and gateway nodes). `None` for a tenant never provisioned.
pub async fn tenant_state(db: &Database, id: TenantId) -> Result<Option<TenantState>> {
    let row: Option<(String, bool)> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT domain, active FROM tenant_states WHERE tenant_id = $1"
    )
    .bind(id.to_string())
    .fetch_optional(p)
    .await)?;
    Ok(row.map(|(domain, active)| TenantState {
        tenant_id: id,
        domain,
        active,
    }))
}

/// [`tenant_state`] inside a transaction (issuing tokens and API keys).
pub async fn tenant_state_in(tx: &mut Tx, id: TenantId) -> Result<Option<TenantState>> {
    let row: Option<(String, bool)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT domain, active FROM tenant_states WHERE tenant_id = $1"
    )
    .bind(id.to_string())
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(domain, active)| TenantState {
        tenant_id: id,
        domain,
        active,
    }))
}

/// The AM database's copy of the tenant with `domain`: how a token's qualified subject
/// (`alice@acme.com`) finds its tenant.
pub async fn tenant_state_by_domain(db: &Database, domain: &str) -> Result<Option<TenantState>> {
    let row: Option<(String, bool)> = on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT tenant_id, active FROM tenant_states WHERE domain = $1"
    )
    .bind(domain)
    .fetch_optional(p)
    .await)?;
    row.map(|(id, active)| by_domain(id, domain, active)).transpose()
}

/// [`tenant_state_by_domain`] inside a transaction.
pub async fn tenant_state_by_domain_in(tx: &mut Tx, domain: &str) -> Result<Option<TenantState>> {
    let row: Option<(String, bool)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT tenant_id, active FROM tenant_states WHERE domain = $1"
    )
    .bind(domain)
    .fetch_optional(c)
    .await)?;
    row.map(|(id, active)| by_domain(id, domain, active)).transpose()
}

fn by_domain(id: String, domain: &str, active: bool) -> Result<TenantState> {
    Ok(TenantState {
        tenant_id: parse_tenant(&id, "tenant", domain)?,
        domain: domain.to_string(),
        active,
    })
}

/// A signing key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// Key id (the JWT header's `kid`).
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    /// The public JWK (JSON text).
    pub public_jwk: String,
    /// The sealed PKCS#8 private key (base64).
    pub private_sealed: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stopped signing, if it did.
    pub retired_at: Option<i64>,
    /// Until when a retired key is still published.
    pub publish_until: Option<i64>,
}
crate::db::from_row!(SigningKeyRow {
    kid,
    alg,
    public_jwk,
    private_sealed,
    created_at,
    retired_at,
    publish_until
});

/// Keys still published at `now`: the active one(s) and retired ones within overlap,
/// newest first.
pub async fn published_signing_keys(db: &Database, now: EpochMillis) -> Result<Vec<SigningKeyRow>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT kid, alg, public_jwk, private_sealed, created_at, retired_at, publish_until FROM signing_keys \
         WHERE retired_at IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid DESC"
    )
    .bind(now)
    .fetch_all(p)
    .await)?)
}

/// Stores a new signing key.
pub async fn insert_signing_key(tx: &mut Tx, k: &SigningKeyRow) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at, publish_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.public_jwk)
    .bind(&k.private_sealed)
    .bind(k.created_at)
    .bind(k.retired_at)
    .bind(k.publish_until)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many signing keys are active (not retired).
pub async fn active_signing_key_count(tx: &mut Tx) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL"
    )
    .fetch_one(c)
    .await)?)
}

/// Retires every active signing key: they stop signing at `at` and stay published until
/// `publish_until`, so tokens they signed keep verifying. Returns how many.
pub async fn retire_signing_keys(tx: &mut Tx, at: EpochMillis, publish_until: EpochMillis) -> Result<u64> {
    Ok(on_tx!(tx, |c| sqlx::query(
        "UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE retired_at IS NULL"
    )
    .bind(at)
    .bind(publish_until)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?)
}

/// When the last live API key expires (a retired signing key must stay published until
/// then, or those keys stop verifying).
pub async fn latest_api_key_expiry(tx: &mut Tx, now: EpochMillis) -> Result<Option<i64>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT MAX(expires_at) FROM api_keys WHERE revoked_at IS NULL AND expires_at > $1"
    )
    .bind(now)
    .fetch_one(c)
    .await)?)
}
