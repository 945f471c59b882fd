//! Issuing, refreshing, introspecting and revoking tokens. JWT access tokens are not
//! stored (they verify offline; only the ids of those in a token family are kept);
//! opaque access tokens, refresh tokens and API keys are stored as peppered hashes. Every
//! revocation is recorded in `revocations` and written to the `events` outbox in the same
//! transaction, so gateways learn it. A reused refresh token or a replayed authorization
//! code revokes its token family (decision 013).

use crate::claims::{AccessClaims, ApplicationClaim, KeyType, TokenKind};
use crate::secret::{KeyManagerSecret, random_token};
use crate::signing::Signer;
use crate::{Error, RESIDENT_KEY_MANAGER, Result};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tollgate_events::control::{Revocation, TenantState};
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_model::tenant::{qualify, split_qualified};
use tollgate_model::{EpochMillis, TenantId, now_millis};
use tollgate_store::applications::ApplicationRow;
use tollgate_store::keys::{self, ClientRow};
use tollgate_store::oauth::{self, ApiKeyRow, RevocationKind, TokenRow};
use tollgate_store::{Database, Tx};

/// The longest lifetime any token or API key gets; keys and requests may ask for less.
/// Revocations of "every token of a client" are kept this long, so none outlives them.
pub const MAX_TOKEN_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// An OAuth2 error response (RFC 6749 §5.2, RFC 7009, RFC 7662).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    /// HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// The RFC error code.
    pub error: &'static str,
    /// What went wrong, for people.
    pub error_description: String,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            error_description: description.into(),
        }
    }
    /// A required parameter is missing or malformed.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", d)
    }
    /// Client authentication failed (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", d)
    }
    /// The grant (code, refresh token, password) is invalid, expired or revoked.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", d)
    }
    /// The client may not use this grant type.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(400, "unauthorized_client", d)
    }
    /// The grant type is not supported.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(400, "unsupported_grant_type", d)
    }
    /// A requested scope is unknown or not allowed.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(400, "invalid_scope", d)
    }
    /// A revocation hint names a token type this server does not know (RFC 7009 §2.2.1).
    pub fn unsupported_token_type(hint: &str) -> Self {
        Self::new(
            400,
            "unsupported_token_type",
            format!("token_type_hint `{hint}` is not supported; use access_token or refresh_token"),
        )
    }
    /// Too many requests from one client or address.
    pub fn slow_down(d: impl Into<String>) -> Self {
        Self::new(429, "slow_down", d)
    }
    /// The server cannot take the request now (too busy); retrying later may work.
    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        Self::new(503, "temporarily_unavailable", d)
    }
    /// The server failed; details are logged, not returned.
    pub fn server_error() -> Self {
        Self::new(500, "server_error", "the key manager failed; see its logs")
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        if let Error::TenantInactive(_) = e {
            return OAuthError::invalid_grant(e.to_string());
        }
        tracing::error!(error = %e, "Key manager failure.");
        OAuthError::server_error()
    }
}

impl From<tollgate_store::Error> for OAuthError {
    fn from(e: tollgate_store::Error) -> Self {
        Error::from(e).into()
    }
}

/// Lifetimes and the issuer.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// `iss` of every token.
    pub issuer: String,
    /// Default access-token lifetime.
    pub access_validity: Duration,
    /// Refresh-token lifetime.
    pub refresh_validity: Duration,
    /// Authorization-code lifetime.
    pub code_validity: Duration,
}

/// What to issue a token for.
#[derive(Clone, Debug)]
pub struct IssueRequest<'a> {
    /// The client (and its application).
    pub client: &'a ClientRow,
    /// The token's subject: the end user, or the application owner, named as they sign in
    /// (`alice@acme.com`; bare in the super tenant). A user of the client's tenant; the
    /// built-in clients' tokens are in their user's tenant.
    pub username: &'a str,
    /// Granted scopes.
    pub scopes: &'a [String],
    /// The grant type that led here.
    pub grant_type: &'a str,
    /// Whether to issue a refresh token too.
    pub with_refresh_token: bool,
    /// A lifetime other than the client's or the default.
    pub validity: Option<Duration>,
    /// The OIDC `nonce` for the ID token (authorization-code grant).
    pub nonce: Option<&'a str>,
}

/// A token response (RFC 6749 §5.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// A refresh token, for grants that get one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// An OIDC ID token, when `openid` was granted to a user (not to client credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The claims of an OIDC ID token (OIDC Core §2).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    /// The authorized party (the same client).
    pub azp: String,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// The client's `nonce`, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// Client credentials as presented (HTTP Basic or form fields).
#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
}

pub use tollgate_model::token::ActiveToken;

/// The key manager's token operations.
pub struct TokenService {
    am: Database,
    secret: Arc<KeyManagerSecret>,
    signer: Arc<Signer>,
    settings: TokenSettings,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

fn secs(ms: EpochMillis) -> i64 {
    ms / 1000
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// The tenant a subject's `@domain` names, found by `lookup`; any other name (`alice`,
/// or `bob@mail.com` when `mail.com` is no tenant) is the super tenant's: the rule the
/// REST APIs' `Authenticator::resolve_user` applies to the same `sub` (decision 019).
async fn tenant_named(
    subject: &str,
    lookup: impl AsyncFnOnce(&str) -> tollgate_store::Result<Option<TenantState>>,
) -> Result<TenantState> {
    match split_qualified(subject) {
        (_, Some(domain)) => Ok(lookup(domain).await?.unwrap_or_else(TenantState::super_tenant)),
        (_, None) => Ok(TenantState::super_tenant()),
    }
}

/// The name `username` of `tenant` signs in with (the subject of its tokens), inside `tx`.
async fn qualified_in(tx: &mut Tx, tenant: TenantId, username: &str) -> Result<(TenantState, String)> {
    let state = if tenant == TenantId::DEFAULT {
        TenantState::super_tenant()
    } else {
        oauth::tenant_state_in(tx, tenant)
            .await?
            .ok_or_else(|| Error::UnknownTenant(tenant.to_string()))?
    };
    let name = qualify(&state.domain, username);
    Ok((state, name))
}

/// Whether `client` is one of the built-in clients that serve every tenant's users.
fn is_builtin(client: &ClientRow) -> bool {
    crate::cli_client::is_builtin(&client.key.consumer_key)
}

fn application_claim(client: &ClientRow) -> ApplicationClaim {
    ApplicationClaim {
        id: client.key.application_id.clone(),
        name: client.application_name.clone(),
        tier: client.application_tier.clone(),
        owner: client.application_owner.clone(),
    }
}

impl TokenService {
    /// A service over the AM database.
    pub fn new(am: Database, secret: Arc<KeyManagerSecret>, signer: Arc<Signer>, settings: TokenSettings) -> Self {
        Self {
            am,
            secret,
            signer,
            settings,
        }
    }

    /// The whole stack over the AM database: a [`Signer`] with `algorithm` for new keys,
    /// sealing keys under `secret`. What a node (or a test) builds at start-up.
    pub fn open(
        am: Database,
        secret: KeyManagerSecret,
        algorithm: tollgate_config::SigningAlgorithm,
        settings: TokenSettings,
    ) -> Arc<Self> {
        let secret = Arc::new(secret);
        let signer = Arc::new(Signer::new(am.clone(), secret.clone(), algorithm));
        Arc::new(Self::new(am, secret, signer, settings))
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The configured lifetimes.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The signer (JWKS, verification).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The peppered hash secrets are stored as.
    pub fn hash(&self, value: &str) -> String {
        self.secret.hash(value)
    }

    /// Finds a resident client by its consumer key and checks its secret in constant
    /// time. Every failure is the same `invalid_client`, so it tells a guesser nothing.
    pub async fn authenticate_client(&self, auth: &ClientAuth) -> Result<ClientRow, OAuthError> {
        let found = keys::find_client(&self.am, RESIDENT_KEY_MANAGER, &auth.client_id).await?;
        let presented = self.secret.hash(&auth.client_secret);
        let ok =
            match &found {
                Some(c) => c.key.secret_hash.as_deref().is_some_and(|stored| {
                    subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), stored.as_bytes()).into()
                }),
                None => false,
            };
        match found {
            Some(client) if ok => Ok(client),
            _ => Err(OAuthError::invalid_client("client authentication failed")),
        }
    }

    /// The tenant a token's subject (`alice@acme.com`, bare `alice` in the super tenant)
    /// belongs to, as the AM database knows the tenants.
    pub async fn subject_tenant(&self, subject: &str) -> Result<TenantState> {
        tenant_named(subject, async |d| oauth::tenant_state_by_domain(&self.am, d).await).await
    }

    /// Whether the tenant's tokens may be used: the super tenant always; another while the
    /// AM database's copy says it is active (a tenant it does not know is not).
    async fn tenant_active(&self, tenant: TenantId) -> Result<bool> {
        if tenant == TenantId::DEFAULT {
            return Ok(true);
        }
        Ok(oauth::tenant_state(&self.am, tenant).await?.is_some_and(|t| t.active))
    }

    /// A resident client by consumer key, without authenticating it (PKCE public clients,
    /// the authorize endpoint).
    pub async fn find_client(&self, client_id: &str) -> Result<Option<ClientRow>> {
        if client_id == crate::portals_client::PORTALS_CLIENT_ID {
            return Ok(Some(crate::portals_client::client()));
        }
        if client_id == crate::cli_client::CLI_CLIENT_ID {
            return Ok(Some(crate::cli_client::client()));
        }
        Ok(keys::find_client(&self.am, RESIDENT_KEY_MANAGER, client_id).await?)
    }

    /// Issues an access token (JWT, or opaque when the application's token type is
    /// `OAUTH`) and optionally a refresh token, in its own transaction.
    pub async fn issue(&self, req: IssueRequest<'_>) -> Result<IssuedTokens> {
        let mut tx = self.am.begin().await?;
        let issued = self.issue_in(&mut tx, req).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// [`issue`](Self::issue) inside the caller's transaction. A grant that brings a
    /// refresh token starts a token family (RFC 9700 §4.14.2).
    pub async fn issue_in(&self, tx: &mut Tx, req: IssueRequest<'_>) -> Result<IssuedTokens> {
        let family = req.with_refresh_token.then(|| uuid::Uuid::now_v7().to_string());
        self.issue_in_family(tx, req, family.as_deref()).await
    }

    /// Issues into the token family `family` (when there is one): every token records it,
    /// and the access token's `jti` is recorded with it, so that the family's live access
    /// tokens can be found and revoked although JWTs are not stored.
    async fn issue_in_family(&self, tx: &mut Tx, req: IssueRequest<'_>, family: Option<&str>) -> Result<IssuedTokens> {
        let client = req.client;
        let tenant = token_tenant_in(tx, client, req.username).await?.tenant_id.to_string();
        let now = now_millis();
        let validity = req
            .validity
            .or_else(|| {
                (client.key.validity_seconds > 0).then(|| Duration::from_secs(client.key.validity_seconds as u64))
            })
            .unwrap_or(self.settings.access_validity)
            .min(MAX_TOKEN_VALIDITY);
        let expires_at = now.saturating_add(duration_ms(validity));
        let scope = req.scopes.join(" ");
        let jti = uuid::Uuid::now_v7().to_string();
        let key_type: KeyType = client.key.key_type.parse().map_err(Error::Corrupt)?;
        let row = |token: &str, kind: &str, jti: &str, expires_at: i64| TokenRow {
            token_hash: self.secret.hash(token),
            kind: kind.into(),
            jti: jti.into(),
            tenant_id: tenant.clone(),
            consumer_key: client.key.consumer_key.clone(),
            application_id: client.key.application_id.clone(),
            key_type: client.key.key_type.clone(),
            username: req.username.into(),
            scope: scope.clone(),
            grant_type: req.grant_type.into(),
            issued_at: now,
            expires_at,
            revoked_at: None,
            family_id: family.map(String::from),
        };
        if let Some(family) = family {
            let member = oauth::FamilyAccess {
                jti: jti.clone(),
                family_id: family.into(),
                tenant_id: tenant.clone(),
                consumer_key: client.key.consumer_key.clone(),
                expires_at,
            };
            oauth::insert_family_access(tx, &member).await?;
        }
        let access_token = if client.token_type.eq_ignore_ascii_case("OAUTH") {
            let token = random_token(32)?;
            oauth::insert_token(tx, &row(&token, "access", &jti, expires_at)).await?;
            token
        } else {
            let claims = AccessClaims {
                iss: self.settings.issuer.clone(),
                sub: req.username.into(),
                aud: client.key.consumer_key.clone(),
                exp: secs(expires_at),
                iat: secs(now),
                nbf: secs(now),
                jti: jti.clone(),
                scope: scope.clone(),
                client_id: client.key.consumer_key.clone(),
                application: application_claim(client),
                keytype: key_type,
                token_type: TokenKind::AccessToken,
            };
            self.signer.sign(&claims).await?
        };
        let refresh_token = if req.with_refresh_token {
            let token = random_token(32)?;
            let refresh_expires = now.saturating_add(duration_ms(self.settings.refresh_validity));
            let refresh_jti = uuid::Uuid::now_v7().to_string();
            oauth::insert_token(tx, &row(&token, "refresh", &refresh_jti, refresh_expires)).await?;
            Some(token)
        } else {
            None
        };
        let id_token = if req.grant_type != "client_credentials" && req.scopes.iter().any(|s| s == "openid") {
            let claims = IdTokenClaims {
                iss: self.settings.issuer.clone(),
                sub: req.username.into(),
                aud: client.key.consumer_key.clone(),
                azp: client.key.consumer_key.clone(),
                exp: secs(expires_at),
                iat: secs(now),
                nonce: req.nonce.map(String::from),
            };
            Some(self.signer.sign(&claims).await?)
        } else {
            None
        };
        Ok(IssuedTokens {
            access_token,
            token_type: "Bearer",
            expires_in: validity.as_secs(),
            refresh_token,
            scope,
            id_token,
        })
    }

    /// The tenant, user and scopes a refresh token was issued for, if it is usable by
    /// `client` (so that the caller can check the user still exists, in that tenant, and
    /// holds those scopes). A refresh token already rotated or revoked, presented again by
    /// its client, revokes its whole family: either an attacker or the legitimate client
    /// holds a stolen copy, and nobody can tell which (RFC 9700 §4.14.2).
    pub async fn refresh_token_grant(
        &self,
        client: &ClientRow,
        refresh_token: &str,
    ) -> Result<RefreshGrant, OAuthError> {
        let row = self.usable_refresh_token(client, refresh_token).await?;
        Ok(RefreshGrant {
            tenant: row.tenant().map_err(Error::from)?,
            scopes: row.scope.split_whitespace().map(String::from).collect(),
            subject: row.username,
        })
    }

    /// The stored refresh token `client` presents, if usable; revokes its family when it
    /// was already spent.
    async fn usable_refresh_token(&self, client: &ClientRow, refresh_token: &str) -> Result<TokenRow, OAuthError> {
        let row = oauth::find_token(&self.am, &self.secret.hash(refresh_token))
            .await?
            .filter(|r| r.kind == "refresh" && r.consumer_key == client.key.consumer_key)
            .ok_or_else(refresh_invalid)?;
        if row.revoked_at.is_some() {
            let mut tx = self.am.begin().await?;
            self.reused(&mut tx, &row).await?;
            tx.commit().await?;
            return Err(refresh_invalid());
        }
        if row.expires_at <= now_millis() {
            return Err(refresh_invalid());
        }
        Ok(row)
    }

    /// A spent refresh token was presented again: revokes its family.
    async fn reused(&self, tx: &mut Tx, row: &TokenRow) -> Result<()> {
        let Some(family) = &row.family_id else {
            return Ok(());
        };
        let revoked = revoke_family(tx, family).await?;
        if revoked > 0 {
            tracing::warn!(client = %row.consumer_key, user = %row.username, revoked,
                "A spent refresh token was presented again; the tokens of its grant are revoked.");
        }
        Ok(())
    }

    /// The refresh-token grant with rotation: the presented refresh token is revoked and
    /// a new one issued with the new access token, in the same family; presenting a
    /// rotated one again revokes the family.
    pub async fn refresh(
        &self,
        client: &ClientRow,
        refresh_token: &str,
        requested_scope: Option<&str>,
    ) -> Result<IssuedTokens, OAuthError> {
        let row = self.usable_refresh_token(client, refresh_token).await?;
        let original: Vec<String> = row.scope.split_whitespace().map(String::from).collect();
        let scopes = match requested_scope {
            Some(req) if !req.trim().is_empty() => {
                let mut scopes = Vec::new();
                for s in req.split_whitespace() {
                    if !original.iter().any(|o| o == s) {
                        return Err(OAuthError::invalid_scope(format!(
                            "scope `{s}` was not granted with this refresh token"
                        )));
                    }
                    scopes.push(s.to_string());
                }
                scopes
            }
            _ => original,
        };
        let mut tx = self.am.begin().await?;
        if !oauth::revoke_token(&mut tx, &row.token_hash, now_millis()).await? {
            // A racing request rotated it first: a reuse all the same.
            self.reused(&mut tx, &row).await?;
            tx.commit().await?;
            return Err(refresh_invalid());
        }
        // Tokens from before families existed start one here.
        let family = row
            .family_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let issued = self
            .issue_in_family(
                &mut tx,
                IssueRequest {
                    client,
                    username: &row.username,
                    scopes: &scopes,
                    grant_type: "refresh_token",
                    with_refresh_token: true,
                    validity: None,
                    nonce: None,
                },
                Some(&family),
            )
            .await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// RFC 7662: the token's claims when it is active, `None` when it is not (unknown,
    /// expired, revoked, badly signed).
    pub async fn introspect(&self, token: &str) -> Result<Option<ActiveToken>> {
        if looks_like_jwt(token) {
            let claims: AccessClaims = match self.signer.verify(token, &self.settings.issuer, false).await {
                Ok(c) => c,
                Err(Error::InvalidToken(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            if oauth::is_revoked(
                &self.am,
                &claims.jti,
                &claims.client_id,
                &claims.sub,
                claims.issued_at_millis(),
            )
            .await?
            {
                return Ok(None);
            }
            // A deactivated tenant's tokens are inactive until it is activated again.
            let tenant = self.subject_tenant(&claims.sub).await?;
            if !tenant.active {
                return Ok(None);
            }
            if claims.token_type == TokenKind::AccessToken {
                match self.find_client(&claims.client_id).await? {
                    // The application or its keys were deleted.
                    None => return Ok(None),
                    Some(c) if !is_builtin(&c) && c.tenant()? != tenant.tenant_id => {
                        tracing::warn!(client = %claims.client_id, sub = %claims.sub,
                            "A signed token names a user of another tenant than its client's; treated as inactive.");
                        return Ok(None);
                    }
                    Some(_) => {}
                }
            }
            return Ok(Some(ActiveToken {
                active: true,
                scope: claims.scope.clone(),
                client_id: claims.client_id.clone(),
                username: claims.sub.clone(),
                token_type: match claims.token_type {
                    TokenKind::AccessToken => "Bearer".into(),
                    TokenKind::ApiKey => "apiKey".into(),
                },
                exp: claims.exp,
                iat: claims.iat,
                nbf: claims.nbf,
                sub: claims.sub,
                aud: claims.aud,
                iss: claims.iss,
                jti: claims.jti,
                keytype: claims.keytype.as_str().into(),
                application: claims.application,
            }));
        }
        let Some(row) = oauth::find_token(&self.am, &self.secret.hash(token)).await? else {
            return Ok(None);
        };
        if row.revoked_at.is_some() || row.expires_at <= now_millis() {
            return Ok(None);
        }
        if oauth::is_revoked(&self.am, &row.jti, &row.consumer_key, &row.username, row.issued_at).await? {
            return Ok(None);
        }
        if !self.tenant_active(row.tenant()?).await? {
            return Ok(None);
        }
        let Some(client) = self.find_client(&row.consumer_key).await? else {
            return Ok(None);
        };
        Ok(Some(ActiveToken {
            active: true,
            scope: row.scope,
            client_id: row.consumer_key.clone(),
            username: row.username.clone(),
            token_type: if row.kind == "refresh" {
                "refresh_token".into()
            } else {
                "Bearer".into()
            },
            exp: secs(row.expires_at),
            iat: secs(row.issued_at),
            nbf: secs(row.issued_at),
            sub: row.username,
            aud: row.consumer_key,
            iss: self.settings.issuer.clone(),
            jti: row.jti,
            keytype: row.key_type,
            application: application_claim(&client),
        }))
    }

    /// RFC 7009: revokes an access or refresh token issued to `client`. Unknown and
    /// already-invalid tokens are not an error (the RFC's 200); a token of another client
    /// is refused.
    pub async fn revoke(&self, client: &ClientRow, token: &str) -> Result<(), OAuthError> {
        let now = now_millis();
        if looks_like_jwt(token) {
            let claims: AccessClaims = match self.signer.verify(token, &self.settings.issuer, true).await {
                Ok(c) => c,
                Err(Error::InvalidToken(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            if claims.client_id != client.key.consumer_key {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
            // The revocation goes to the token's tenant (a built-in client's token is in its
            // user's tenant).
            let tenant = self.subject_tenant(&claims.sub).await?.tenant_id;
            let mut tx = self.am.begin().await?;
            record_revocation(
                &mut tx,
                tenant,
                RevocationKind::TokenId,
                &claims.jti,
                "access_token",
                Some(&claims.client_id),
                claims.exp * 1000,
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        let hash = self.secret.hash(token);
        let Some(row) = oauth::find_token(&self.am, &hash).await? else {
            return Ok(());
        };
        if row.consumer_key != client.key.consumer_key {
            return Err(OAuthError::unauthorized_client(
                "the token was not issued to this client",
            ));
        }
        let tenant = row.tenant().map_err(Error::from)?;
        let mut tx = self.am.begin().await?;
        if oauth::revoke_token(&mut tx, &hash, now).await? {
            let kind = if row.kind == "refresh" {
                "refresh_token"
            } else {
                "access_token"
            };
            record_revocation(
                &mut tx,
                tenant,
                RevocationKind::TokenId,
                &row.jti,
                kind,
                Some(&row.consumer_key),
                row.expires_at,
            )
            .await?;
        }
        if row.kind == "refresh"
            && let Some(family) = &row.family_id
        {
            // RFC 7009 §2.1: the access tokens of the same grant go with it.
            revoke_family(&mut tx, family).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every token issued to a consumer key so far (all tokens of an
    /// application's keys; a regenerated secret), within the caller's transaction.
    pub async fn revoke_all_for_client(&self, tx: &mut Tx, tenant: TenantId, consumer_key: &str) -> Result<()> {
        let now = now_millis();
        oauth::revoke_tokens_of_client(tx, tenant, consumer_key, now).await?;
        let longest = MAX_TOKEN_VALIDITY.max(self.settings.refresh_validity);
        record_revocation(
            tx,
            tenant,
            RevocationKind::ConsumerKey,
            consumer_key,
            "all",
            Some(consumer_key),
            now.saturating_add(duration_ms(longest)),
        )
        .await
    }

    /// Issues an API key: a signed JWT bound to the application (`aud` is its id),
    /// stored only as a hash. `validity` of `None` means the longest lifetime Tollgate
    /// gives (one year), so a key never outlives every signing key.
    pub async fn issue_api_key(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        app: &ApplicationRow,
        key_type: KeyType,
        key_name: &str,
        validity: Option<Duration>,
    ) -> Result<(String, ApiKeyRow)> {
        let now = now_millis();
        let validity = validity.unwrap_or(MAX_TOKEN_VALIDITY).min(MAX_TOKEN_VALIDITY);
        let expires_at = now.saturating_add(duration_ms(validity));
        let jti = uuid::Uuid::now_v7().to_string();
        // The key acts for the owner as they sign in: `owner@domain` outside the super tenant.
        let (state, owner) = qualified_in(tx, tenant, &app.owner).await?;
        if !state.active {
            return Err(Error::TenantInactive(state.domain));
        }
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: owner,
            aud: app.id.clone(),
            exp: secs(expires_at),
            iat: secs(now),
            nbf: secs(now),
            jti: jti.clone(),
            scope: String::new(),
            client_id: app.id.clone(),
            application: ApplicationClaim {
                id: app.id.clone(),
                name: app.name.clone(),
                tier: app.throttling_policy.clone(),
                owner: app.owner.clone(),
            },
            keytype: key_type,
            token_type: TokenKind::ApiKey,
        };
        let key = self.signer.sign(&claims).await?;
        let row = ApiKeyRow {
            id: jti,
            application_id: app.id.clone(),
            key_type: key_type.as_str().into(),
            key_name: key_name.into(),
            key_hash: self.secret.hash(&key),
            issued_at: now,
            expires_at: Some(expires_at),
            revoked_at: None,
        };
        oauth::insert_api_key(tx, tenant, &row).await?;
        Ok((key, row))
    }

    /// Revokes an application's API key; `false` when it has no such key.
    pub async fn revoke_api_key(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        application_id: &str,
        key_type: KeyType,
        key: &str,
    ) -> Result<bool> {
        let hash = self.secret.hash(key);
        let Some(row) = oauth::find_api_key(tx, application_id, key_type.as_str(), &hash).await? else {
            return Ok(false);
        };
        if oauth::revoke_api_key(tx, &row.id, now_millis()).await? {
            let expires_at = row.expires_at.unwrap_or(i64::MAX / 4);
            record_revocation(
                tx,
                tenant,
                RevocationKind::TokenId,
                &row.id,
                "api_key",
                Some(application_id),
                expires_at,
            )
            .await?;
        }
        Ok(true)
    }
    /// Stores a single-use authorization code for a user's approval (`username` as they
    /// sign in: `alice@acme.com`, bare in the super tenant); returns the code.
    pub async fn create_code(
        &self,
        client: &ClientRow,
        username: &str,
        redirect_uri: &str,
        scopes: &[String],
        code_challenge: &str,
        nonce: Option<&str>,
    ) -> Result<String> {
        let code = random_token(32)?;
        oauth::insert_code(
            &self.am,
            &oauth::CodeRow {
                code_hash: self.secret.hash(&code),
                consumer_key: client.key.consumer_key.clone(),
                username: username.into(),
                redirect_uri: redirect_uri.into(),
                scope: scopes.join(" "),
                code_challenge: code_challenge.into(),
                nonce: nonce.map(String::from),
                expires_at: now_millis().saturating_add(duration_ms(self.settings.code_validity)),
            },
        )
        .await?;
        Ok(code)
    }

    /// The authorization-code grant with PKCE (S256): the code works once, for the
    /// client and redirect URI it was issued to, with the verifier of its challenge.
    /// `user_may_hold` is asked, with the code's user and scopes, whether that user may
    /// still get them (the user may have been disabled or lost a role since approving).
    /// A second use of the code by its client revokes the tokens its first use issued,
    /// and every refresh after it (RFC 6749 §4.1.2).
    pub async fn exchange_code(
        &self,
        client: &ClientRow,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        with_refresh_token: bool,
        user_may_hold: impl AsyncFnOnce(&str, &[String]) -> Result<(), OAuthError>,
    ) -> Result<IssuedTokens, OAuthError> {
        let hash = self.secret.hash(code);
        let family = uuid::Uuid::now_v7().to_string();
        // The code is spent by the first attempt, whatever its outcome (RFC 6749 §4.1.2),
        // and its tokens are issued in the same transaction: a replay racing the first use
        // waits for it (the code's row is locked), then finds its tokens to revoke.
        let mut tx = self.am.begin().await?;
        let Some(row) = oauth::take_code(&mut tx, &hash, now_millis(), &family).await? else {
            if let Some(spent) = oauth::spent_code(&mut tx, &hash).await?
                && spent.consumer_key == client.key.consumer_key
                && let Some(family) = spent.family_id
            {
                let revoked = revoke_family(&mut tx, &family).await?;
                if revoked > 0 {
                    tracing::warn!(client = %client.key.consumer_key, revoked,
                        "An authorization code was used again; the tokens issued from it are revoked.");
                }
            }
            tx.commit().await?;
            return Err(code_invalid("is invalid or was already used"));
        };
        let checked = match check_code(&row, client, redirect_uri, code_verifier) {
            Ok(scopes) => user_may_hold(&row.username, &scopes).await.map(|()| scopes),
            Err(e) => Err(e),
        };
        let scopes = match checked {
            Ok(scopes) => scopes,
            Err(e) => {
                tx.commit().await?;
                return Err(e);
            }
        };
        let issued = self
            .issue_in_family(
                &mut tx,
                IssueRequest {
                    client,
                    username: &row.username,
                    scopes: &scopes,
                    grant_type: "authorization_code",
                    with_refresh_token,
                    validity: None,
                    nonce: row.nonce.as_deref(),
                },
                Some(&family),
            )
            .await?;
        tx.commit().await?;
        Ok(issued)
    }
}

/// What a usable refresh token was issued for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshGrant {
    /// The token's tenant (its user's).
    pub tenant: TenantId,
    /// The user, as they sign in (`alice@acme.com`; bare in the super tenant).
    pub subject: String,
    /// The scopes granted with it.
    pub scopes: Vec<String>,
}

/// The tenant a token for `subject` from `client` is issued in: the subject's, which must
/// be the application's (a built-in client serves every tenant), and active. Checked on
/// every issue so that no caller can mint a token that acts in another tenant.
async fn token_tenant_in(tx: &mut Tx, client: &ClientRow, subject: &str) -> Result<TenantState> {
    let tenant = tenant_named(subject, async |d| oauth::tenant_state_by_domain_in(tx, d).await).await?;
    if !is_builtin(client) && client.tenant()? != tenant.tenant_id {
        return Err(Error::WrongTenant(format!(
            "`{subject}` is no user of the tenant of client `{}`; name a tenant's users as they sign in (`name@domain`)",
            client.key.consumer_key
        )));
    }
    if !tenant.active {
        return Err(Error::TenantInactive(tenant.domain));
    }
    Ok(tenant)
}

/// The answer to any refresh token that cannot be used, whatever the reason.
fn refresh_invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired, revoked or already used")
}

fn code_invalid(why: &str) -> OAuthError {
    OAuthError::invalid_grant(format!("the authorization code {why}"))
}

/// Whether a code just taken may be exchanged by `client` with `redirect_uri` and
/// `code_verifier`; its scopes when it may.
fn check_code(
    row: &oauth::CodeRow,
    client: &ClientRow,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<Vec<String>, OAuthError> {
    if row.consumer_key != client.key.consumer_key {
        return Err(code_invalid("was issued to another client"));
    }
    if row.expires_at <= now_millis() {
        return Err(code_invalid("has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(code_invalid("was issued for another redirect_uri"));
    }
    let verifier_ok = (43..=128).contains(&code_verifier.len())
        && code_verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !verifier_ok {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
        ));
    }
    if !pkce_s256_matches(code_verifier, &row.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(row.scope.split_whitespace().map(String::from).collect())
}

/// Revokes a token family within `tx`: its refresh and opaque access tokens at once, and
/// each of its access tokens still live by a `jti` revocation that gateways receive as an
/// event, like any other revoked token. Returns how many access tokens it revoked.
async fn revoke_family(tx: &mut Tx, family: &str) -> Result<usize> {
    let live = oauth::revoke_family(tx, family, now_millis()).await?;
    for token in &live {
        let tenant = token.tenant()?;
        record_revocation(
            tx,
            tenant,
            RevocationKind::TokenId,
            &token.jti,
            "access_token",
            Some(&token.consumer_key),
            token.expires_at,
        )
        .await?;
    }
    Ok(live.len())
}

/// Revokes everything `username` (the name inside `tenant`, without `@domain`) holds,
/// within the caller's transaction: their refresh tokens and opaque access tokens at once,
/// and every token whose subject they are (`username@domain`, bare in the super tenant)
/// and that was issued until now (JWT access tokens, which are not stored, including the
/// client-credentials tokens of their own applications, and their applications' API keys)
/// by a `user` revocation that gateways receive as a `token_revoked` event. For a user who
/// is disabled, deleted or loses a role; tokens issued afterwards are not affected.
pub async fn revoke_user_tokens(tx: &mut Tx, tenant: TenantId, username: &str) -> Result<()> {
    let now = now_millis();
    let (_, subject) = qualified_in(tx, tenant, username).await?;
    oauth::revoke_tokens_of_user(tx, tenant, &subject, now).await?;
    record_revocation(
        tx,
        tenant,
        RevocationKind::User,
        &subject,
        "all",
        None,
        now.saturating_add(duration_ms(MAX_TOKEN_VALIDITY)),
    )
    .await
}

/// Records a revocation and announces it as a `token_revoked` event in the same
/// transaction, so that introspection and every gateway honour it.
async fn record_revocation(
    tx: &mut Tx,
    tenant: TenantId,
    kind: RevocationKind,
    subject: &str,
    token_type: &str,
    consumer_key: Option<&str>,
    expires_at: EpochMillis,
) -> Result<()> {
    let now = now_millis();
    oauth::insert_revocation(tx, tenant, kind, subject, now, expires_at).await?;
    tollgate_store::events::append(
        tx,
        &NewEvent::new(
            tenant,
            None,
            ControlEvent::TokenRevoked(Revocation {
                revocation_type: kind.as_str().to_string(),
                subject: subject.to_string(),
                token_type: token_type.to_string(),
                consumer_key: consumer_key.map(String::from),
                revoked_at: now,
                expires_at,
            }),
        ),
    )
    .await?;
    Ok(())
}

/// Whether `BASE64URL(SHA256(verifier)) == challenge` (RFC 7636 §4.6), in constant time.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    use sha2::Digest as _;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subject_names_its_tenant_by_domain_and_any_other_name_is_the_super_tenants() {
        let acme = TenantState {
            tenant_id: "00000000-0000-7000-8000-0000000000aa".parse().unwrap(),
            domain: "acme.com".into(),
            active: false,
        };
        let lookup = async |subject: &str| {
            let mut asked = None;
            let found = tenant_named(subject, async |d: &str| {
                asked = Some(d.to_string());
                Ok((d == "acme.com").then(|| acme.clone()))
            })
            .await
            .unwrap();
            (found.tenant_id, asked)
        };
        assert_eq!(
            lookup("alice@acme.com").await,
            (acme.tenant_id, Some("acme.com".into()))
        );
        assert_eq!(
            lookup("bob@mail.com@acme.com").await,
            (acme.tenant_id, Some("acme.com".into())),
            "split at the last @"
        );
        // The super tenant's names: bare, or naming no tenant (looked up, not found).
        assert_eq!(
            lookup("alice").await,
            (TenantId::DEFAULT, None),
            "no lookup for a bare name"
        );
        assert_eq!(
            lookup("bob@mail.com").await,
            (TenantId::DEFAULT, Some("mail.com".into()))
        );
        for malformed in ["@acme.com", "alice@"] {
            assert_eq!(lookup(malformed).await, (TenantId::DEFAULT, None), "{malformed}");
        }
        assert!(TenantState::super_tenant().active && TenantState::super_tenant().domain == "carbon.super");
    }

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
    }
}
