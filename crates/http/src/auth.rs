//! REST authentication: HTTP Basic against the user store, or a bearer access token from
//! Tollgate's key manager carrying the reference's REST scopes (`apim:api_create`…), with
//! the required roles declared in the handler's signature:
//! `async fn h(Authenticated(p, ..): Authenticated<AdminRole>)` cannot forget its check.

use crate::directories::Directories;
use crate::error::ApiError;
use crate::rate_limit::{LoginGuard, LoginGuardSettings};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_model::{Error, NewUser, Principal, Role, Tenant, TenantId, User, UserId};
use tollgate_store::{Database, tenants, users};
use tollgate_tokens::TokenService;
use tollgate_userstore::{DirectoryUser, LdapStore, UserStoreError, split_store_domain};

/// How the super tenant's primary directory is named where a store is asked for by name
/// (`GET /users?userStore=PRIMARY`), as in the reference.
pub const PRIMARY_STORE: &str = "PRIMARY";

/// How long a verified username/password pair is trusted without re-hashing. A changed
/// password or removed role takes effect within this time.
pub const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(30);

/// Most credential pairs remembered at once; beyond it, expired entries are dropped and,
/// if still full, the cache starts over (a burst of new callers only costs argon2 time).
const CREDENTIAL_CACHE_CAPACITY: usize = 10_000;

/// Peppered credential hash → the principal it proved, and until when it is trusted.
type VerifiedCredentials = HashMap<[u8; 32], (Principal, Instant)>;

/// Checks credentials against the user store (the shared database). Argon2id costs tens
/// of milliseconds and ~19 MiB per check, so verified pairs are remembered briefly, keyed
/// by a SHA-256 under a per-process random pepper (never the password itself), and failed
/// checks lock the user or the caller's address for a while ([`LoginGuard`]) before any
/// more hashing is spent on them.
#[derive(Clone)]
pub struct Authenticator {
    shared: Database,
    tokens: Option<Arc<TokenService>>,
    verified: Arc<Mutex<VerifiedCredentials>>,
    pepper: Arc<[u8; 32]>,
    guard: Arc<LoginGuard>,
    /// The directories (`[[user_store]]`, and those tenants register) users may also
    /// sign in with.
    directories: Directories,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("shared", &self.shared.name())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over the shared database's users.
    pub fn new(shared: Database) -> Self {
        let mut pepper = [0u8; 32];
        // Without OS randomness a fixed pepper still keys the cache correctly; it only
        // loses the property that cache keys are unguessable from outside the process.
        if getrandom::fill(&mut pepper).is_err() {
            tracing::warn!("No OS randomness for the credential cache pepper.");
        }
        Self {
            shared,
            tokens: None,
            verified: Arc::new(Mutex::new(HashMap::new())),
            pepper: Arc::new(pepper),
            guard: Arc::new(LoginGuard::default()),
            directories: Directories::default(),
        }
    }

    /// Also signs users in with these directories (decision 020): `DOMAIN/alice` with the
    /// store of that domain, and names the built-in store does not have with the primary
    /// directory.
    pub fn with_user_stores(mut self, directories: Directories) -> Self {
        self.directories = directories;
        self
    }

    /// The directories users sign in with (for the Admin API, which registers them).
    pub fn directories(&self) -> &Directories {
        &self.directories
    }

    /// The directory that holds the user `username` of `tenant`, and their name in it:
    /// `CORP/bob` is the `CORP` store's `bob` (the tenant's own registered store, or for
    /// the super tenant a configured one); a plain name is the super tenant's primary
    /// directory's when the built-in store has no such user. `None`: the built-in
    /// store's user.
    async fn directory_of<'n>(
        &self,
        tenant: TenantId,
        username: &'n str,
    ) -> Result<Option<(Arc<LdapStore>, &'n str)>, Error> {
        match self.store_for(tenant, username).await? {
            Some((store, name)) if store.domain().is_empty() => {
                let built_in = users::find_by_username(&self.shared, tenant, name).await?;
                Ok(built_in.is_none().then_some((store, name)))
            }
            found => Ok(found),
        }
    }

    /// The directory a name belongs to, and the name in it: `CORP/bob` to `tenant`'s store
    /// `CORP`, a plain name to the super tenant's primary directory (whether or not the
    /// built-in store also has it).
    async fn store_for<'n>(
        &self,
        tenant: TenantId,
        username: &'n str,
    ) -> Result<Option<(Arc<LdapStore>, &'n str)>, Error> {
        if self.directories.is_empty() {
            return Ok(None);
        }
        Ok(match split_store_domain(username) {
            (Some(domain), rest) => self
                .directories
                .secondary(tenant, &domain)
                .await?
                .map(|store| (store, rest)),
            (None, name) => self.directories.primary(tenant).map(|store| (store, name)),
        })
    }

    /// A page of the users of `tenant`'s directory `store` (`PRIMARY` for the super
    /// tenant's primary directory, else a store domain), named as they sign in
    /// (`CORP/alice`), and how many there are; `None` when the tenant has no such store.
    pub async fn directory_users(
        &self,
        tenant: TenantId,
        store: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Option<(Vec<User>, usize)>, Error> {
        let (found, prefix) = if store.eq_ignore_ascii_case(PRIMARY_STORE) {
            (self.directories.primary(tenant), String::new())
        } else {
            (
                self.directories.secondary(tenant, store).await?,
                format!("{}/", store.to_ascii_uppercase()),
            )
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let (page, total) = found.list(offset, limit).await.map_err(directory_error)?;
        let users = page
            .iter()
            .map(|d| directory_user(tenant, &format!("{prefix}{}", d.username), d))
            .collect();
        Ok(Some((users, total)))
    }

    /// Adds the user `new.username` of its tenant to the directory that name belongs to,
    /// if any: `CORP/bob` to the tenant's store `CORP`, a plain name to the super tenant's
    /// primary directory. `Ok(None)`: no directory holds the name, the built-in store
    /// does. A read-only directory is refused with a message saying so (400, `username`);
    /// a writable one gets the entry, its password and the groups `role_mapping` maps to
    /// `new.roles`. The name within the store and the password are validated as the
    /// built-in store's are.
    pub async fn add_directory_user(&self, new: &NewUser) -> Result<Option<User>, Error> {
        let Some((store, in_store)) = self.store_for(new.tenant_id, &new.username).await? else {
            return Ok(None);
        };
        // A plain name the built-in store already holds would sign in as that user, never
        // as the directory's.
        if store.domain().is_empty()
            && users::find_by_username(&self.shared, new.tenant_id, in_store)
                .await?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "a user named `{}` already exists",
                new.username
            )));
        }
        let named = || match store.domain() {
            "" => "the primary user store".to_string(),
            domain => format!("the user store {}", domain.to_ascii_uppercase()),
        };
        if store.read_only() {
            return Err(Error::field(
                "username",
                format!(
                    "{} is read-only: Tollgate cannot add users to it; create them in the directory itself",
                    named()
                ),
            ));
        }
        NewUser {
            username: in_store.to_string(),
            ..new.clone()
        }
        .validate()?;
        let roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
        let added = store
            .create_user(in_store, &new.password, new.email.as_deref(), &roles)
            .await
            .map_err(|e| match e {
                UserStoreError::Exists { .. } => {
                    Error::Conflict(format!("a user named `{}` already exists in {}", new.username, named()))
                }
                UserStoreError::CannotAdd { .. } => Error::field("username", e.to_string()),
                other => directory_error(other),
            })?;
        tracing::info!(user = %new.username, store = %named(), "User added to the directory.");
        Ok(Some(directory_user(new.tenant_id, &new.username, &added)))
    }

    /// The user `username` of `tenant` as they are now (for a token whose subject they
    /// are): from the built-in store, or their directory (roles from their groups, read
    /// again after the store's `cache_ttl`). An unreachable directory is
    /// [`Error::Unavailable`].
    pub async fn find_user(&self, tenant: TenantId, username: &str) -> Result<Option<User>, Error> {
        match self.directory_of(tenant, username).await? {
            Some((store, name)) => {
                let found = store.find(name).await.map_err(directory_error)?;
                Ok(found.map(|d| directory_user(tenant, username, &d)))
            }
            None => Ok(users::find_by_username(&self.shared, tenant, username).await?),
        }
    }

    /// Locks users and addresses after these many failed password checks
    /// (`[management] max_failed_sign_ins…`) instead of the defaults.
    pub fn with_login_guard(mut self, settings: LoginGuardSettings) -> Self {
        self.guard = Arc::new(LoginGuard::new(settings));
        self
    }

    /// The tenant a sign-in name names and the user's name in it (`alice@acme.com` →
    /// `acme.com`, `alice`; see [`tenants::resolve_user`]), refusing a deactivated
    /// tenant's users. The one place where a caller's tenant is decided (decision 019).
    pub async fn resolve_user(&self, name: &str) -> Result<(Tenant, String), Error> {
        let (tenant, user) = self.resolve_any_user(name).await?;
        refuse_inactive(&tenant)?;
        Ok((tenant, user))
    }

    /// [`Self::resolve_user`] without the active check, for a password check that must
    /// not say a tenant is deactivated before the password is known to be right.
    async fn resolve_any_user(&self, name: &str) -> Result<(Tenant, String), Error> {
        tenants::resolve_user(&self.shared, name)
            .await?
            .ok_or_else(|| Error::InvalidCredentials("wrong username or password".into()))
    }

    /// Checks the `password` of the user signing in as `name` (`alice@acme.com`, or
    /// `alice` in the super tenant) for a caller at `ip`: refused with 429 (no argon2
    /// work) while the user or the address is locked, `Ok(None)` for a wrong pair, an
    /// error for a deactivated tenant once the password is right (a wrong one learns
    /// nothing about the tenant). Every path that takes a password (HTTP Basic, the key
    /// manager's login page and password grant) goes through here, so that one lock and
    /// one tenant rule hold on all of them.
    pub async fn check_password(
        &self,
        ip: Option<IpAddr>,
        name: &str,
        password: &str,
    ) -> Result<Option<Principal>, Error> {
        Ok(self.check_password_trusted(ip, name, password).await?.map(|(p, _)| p))
    }

    /// [`Self::check_password`], with how long the answer may be trusted without asking
    /// again: [`CREDENTIAL_CACHE_TTL`], or less for a directory user whose store reads
    /// their groups again sooner (`cache_ttl`), so that a removed group takes effect then.
    async fn check_password_trusted(
        &self,
        ip: Option<IpAddr>,
        name: &str,
        password: &str,
    ) -> Result<Option<(Principal, Duration)>, Error> {
        let (tenant, username) = self.resolve_any_user(name).await?;
        // The lock is per sign-in name, so `admin` and `admin@acme.com` are two users.
        self.guard.check(ip, name)?;
        if let Some((store, in_store)) = self.directory_of(tenant.id, &username).await? {
            // An outage is a 503 and counts against no one; only a wrong password does.
            let Some(found) = store.authenticate(in_store, password).await.map_err(directory_error)? else {
                self.guard.failed(ip, name);
                return Ok(None);
            };
            self.guard.succeeded(name);
            // As for built-in users: a deactivated tenant's, once the password is right.
            refuse_inactive(&tenant)?;
            let user = directory_user(tenant.id, &username, &found);
            let trusted = store.cache_ttl().min(CREDENTIAL_CACHE_TTL);
            return Ok(Some((user.into_principal(tenant.domain, None), trusted)));
        }
        // Checked again once a hashing slot is held, and told the outcome before the slot
        // is freed: attempts that queued while others were failing do not hash past the
        // limit.
        let attempt = GuardedAttempt {
            guard: self.guard.clone(),
            ip,
            username: name.to_string(),
        };
        let principal = users::authenticate_gated(&self.shared, &tenant, &username, password, attempt)
            .await
            .map_err(Error::from)?;
        if principal.is_some() {
            refuse_inactive(&tenant)?;
        }
        Ok(principal.map(|p| (p, CREDENTIAL_CACHE_TTL)))
    }

    /// Also accepts bearer access tokens that `tokens` issued (JWT or opaque).
    pub fn with_tokens(mut self, tokens: Arc<TokenService>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Forgets every verified credential, so that a disabled user or a removed role takes
    /// effect on this node at once (other nodes follow within [`CREDENTIAL_CACHE_TTL`]).
    pub fn forget_all(&self) {
        if let Ok(mut map) = self.verified.lock() {
            map.clear();
        }
    }

    /// Forgets the credentials verified for `tenant`'s users only, after a change to how
    /// they sign in (a directory changed or removed); other tenants' stay trusted.
    pub fn forget_tenant(&self, tenant: TenantId) {
        if let Ok(mut map) = self.verified.lock() {
            map.retain(|_, (p, _)| p.tenant_id != tenant);
        }
    }

    fn cache_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(*self.pepper);
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Principal> {
        let map = self.verified.lock().ok()?;
        match map.get(key) {
            Some((p, until)) if Instant::now() < *until => Some(p.clone()),
            _ => None,
        }
    }

    fn remember(&self, key: [u8; 32], principal: &Principal, trusted: Duration) {
        if trusted.is_zero() {
            return;
        }
        let Ok(mut map) = self.verified.lock() else { return };
        if map.len() >= CREDENTIAL_CACHE_CAPACITY {
            let now = Instant::now();
            map.retain(|_, (_, until)| now < *until);
            if map.len() >= CREDENTIAL_CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (principal.clone(), Instant::now() + trusted));
    }

    async fn authenticate_bearer(&self, token: &str) -> Result<Principal, Error> {
        let Some(tokens) = &self.tokens else {
            return Err(Error::InvalidCredentials(
                "this node runs no key manager and cannot check bearer tokens; use HTTP Basic".into(),
            ));
        };
        let invalid = || Error::InvalidCredentials("the access token is invalid, expired or revoked".into());
        let active = tokens
            .introspect(token)
            .await?
            .filter(|t| t.token_type == "Bearer")
            .ok_or_else(invalid)?;
        // The subject names the user as they sign in (`alice@acme.com`); a token of a
        // deactivated tenant stops working here.
        let (tenant, username) = self.resolve_user(&active.sub).await?;
        let user = self
            .find_user(tenant.id, &username)
            .await?
            .filter(|u| u.enabled)
            .ok_or_else(invalid)?;
        let scopes = active.scope.split_whitespace().map(String::from).collect();
        Ok(user.into_principal(tenant.domain, Some(scopes)))
    }

    /// Resolves an `Authorization` header value to a principal, or says why not, for a
    /// caller whose address is unknown (in-process calls).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        self.authenticate_from(None, authorization).await
    }

    /// Resolves an `Authorization` header value from a caller at `ip` to a principal, or
    /// says why not. Failed Basic passwords count against the user and the address.
    pub async fn authenticate_from(&self, ip: Option<IpAddr>, authorization: Option<&str>) -> Result<Principal, Error> {
        let Some(value) = authorization else {
            return Err(Error::MissingCredentials(
                "send credentials with `Authorization: Basic base64(username:password)`".into(),
            ));
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return self.authenticate_bearer(rest.trim()).await;
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Error::InvalidCredentials(format!(
                "unsupported authorization scheme `{scheme}`; use HTTP Basic"
            )));
        }
        let malformed =
            || Error::InvalidCredentials("malformed Basic credentials; expected base64(username:password)".into());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
        let key = self.cache_key(username, password);
        if let Some(principal) = self.cached(&key) {
            return Ok(principal);
        }
        let (principal, trusted) = self
            .check_password_trusted(ip, username, password)
            .await?
            .ok_or_else(|| Error::InvalidCredentials("wrong username or password".into()))?;
        self.remember(key, &principal, trusted);
        Ok(principal)
    }
}

/// A directory's failure as the REST edge says it: 503, naming the store and what to do.
fn directory_error(e: tollgate_userstore::UserStoreError) -> Error {
    tracing::warn!(error = %e, "A user store did not answer.");
    Error::Unavailable(e.public_message())
}

/// The user a directory entry is, as Tollgate holds users: `username` as they sign in
/// (`CORP/bob`), the built-in roles their groups map to (other role names are for
/// scopes, later), and an id derived from the tenant and the entry's DN, the same on
/// every node and every sign-in.
fn directory_user(tenant: TenantId, username: &str, found: &DirectoryUser) -> User {
    // Two stores of one tenant may hold the same DN (one directory under two domains):
    // the store's domain is part of who the user is.
    let domain = split_store_domain(username).0.unwrap_or_default().to_ascii_uppercase();
    let mut hash = Sha256::new();
    hash.update(tenant.to_string().as_bytes());
    hash.update([0]);
    hash.update(domain.as_bytes());
    hash.update([0]);
    hash.update(found.dn.to_lowercase().as_bytes());
    let digest: [u8; 32] = hash.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut roles: Vec<Role> = found.roles.iter().filter_map(|r| r.parse().ok()).collect();
    roles.sort();
    roles.dedup();
    let custom_roles = found
        .roles
        .iter()
        .filter(|r| r.parse::<Role>().is_err())
        .cloned()
        .collect();
    User {
        id: UserId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid()),
        tenant_id: tenant,
        username: username.to_string(),
        email: found.email.clone(),
        roles,
        custom_roles,
        enabled: true,
        created_at: 0,
    }
}

/// Refuses the users of a deactivated tenant, saying why and who can undo it.
fn refuse_inactive(tenant: &Tenant) -> Result<(), Error> {
    if tenant.active {
        return Ok(());
    }
    Err(Error::InvalidCredentials(format!(
        "the tenant `{}` is deactivated; its users cannot sign in until a super-tenant administrator activates it",
        tenant.domain
    )))
}

/// One password check as the [`LoginGuard`] sees it.
struct GuardedAttempt {
    guard: Arc<LoginGuard>,
    ip: Option<IpAddr>,
    username: String,
}

impl tollgate_store::password::Gate for GuardedAttempt {
    fn admit(&self) -> Result<(), Error> {
        self.guard.check(self.ip, &self.username)
    }

    fn outcome(&self, matched: bool) {
        if matched {
            self.guard.succeeded(&self.username);
        } else {
            self.guard.failed(self.ip, &self.username);
        }
    }
}

/// The roles an operation requires: any one of them suffices (`admin` always does).
pub trait RoleRequirement: Send + Sync + 'static {
    /// Roles that grant access; empty means any authenticated user.
    const ROLES: &'static [Role];
    /// For bearer tokens, the scopes (any one) the token must carry besides the user
    /// holding a role; `apim:admin` always suffices. Empty means any token.
    const SCOPES: &'static [&'static str];
}

/// Any authenticated user.
pub struct AnyRole;
impl RoleRequirement for AnyRole {
    const ROLES: &'static [Role] = &[];
    const SCOPES: &'static [&'static str] = &[];
}

/// Administrators only.
pub struct AdminRole;
impl RoleRequirement for AdminRole {
    const ROLES: &'static [Role] = &[Role::Admin];
    const SCOPES: &'static [&'static str] = &["apim:admin"];
}

/// API creators (and administrators).
pub struct CreatorRole;
impl RoleRequirement for CreatorRole {
    const ROLES: &'static [Role] = &[Role::Creator];
    const SCOPES: &'static [&'static str] = &["apim:api_create", "apim:api_manage"];
}

/// API creators or publishers (reading Publisher resources).
pub struct CreatorOrPublisherRole;
impl RoleRequirement for CreatorOrPublisherRole {
    const ROLES: &'static [Role] = &[Role::Creator, Role::Publisher];
    const SCOPES: &'static [&'static str] = &[
        "apim:api_view",
        "apim:api_create",
        "apim:api_manage",
        "apim:api_publish",
        "apim:subscription_view",
    ];
}

/// Publishers (and administrators).
pub struct PublisherRole;
impl RoleRequirement for PublisherRole {
    const ROLES: &'static [Role] = &[Role::Publisher];
    const SCOPES: &'static [&'static str] = &["apim:api_publish", "apim:subscription_block"];
}

/// Developer Portal subscribers (and administrators), for reading their own resources.
pub struct SubscriberRole;
impl RoleRequirement for SubscriberRole {
    const ROLES: &'static [Role] = &[Role::Subscriber];
    const SCOPES: &'static [&'static str] = &["apim:subscribe", "apim:app_manage", "apim:sub_manage", "apim:api_key"];
}

/// Developer Portal writes to applications and their keys (`apim:app_manage`).
pub struct AppManageRole;
impl RoleRequirement for AppManageRole {
    const ROLES: &'static [Role] = &[Role::Subscriber];
    const SCOPES: &'static [&'static str] = &["apim:app_manage"];
}

/// Developer Portal subscription writes (`apim:subscribe` or `apim:sub_manage`).
pub struct SubscribeRole;
impl RoleRequirement for SubscribeRole {
    const ROLES: &'static [Role] = &[Role::Subscriber];
    const SCOPES: &'static [&'static str] = &["apim:subscribe", "apim:sub_manage"];
}

/// Developer Portal API-key operations (`apim:api_key`).
pub struct ApiKeyRole;
impl RoleRequirement for ApiKeyRole {
    const ROLES: &'static [Role] = &[Role::Subscriber];
    const SCOPES: &'static [&'static str] = &["apim:api_key"];
}

/// An authenticated caller holding one of `R::ROLES`; extracting it answers 401 or 403
/// in the envelope otherwise.
pub struct Authenticated<R: RoleRequirement = AnyRole>(pub Principal, pub PhantomData<R>);

impl<R: RoleRequirement> Authenticated<R> {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<S, R> FromRequestParts<S> for Authenticated<R>
where
    S: Send + Sync,
    R: RoleRequirement,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authenticator = Authenticator::from_ref(state);
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let principal = authenticator.authenticate_from(client_ip(parts), header).await?;
        if !R::ROLES.is_empty() && !principal.has_any_role(R::ROLES) {
            let names: Vec<_> = R::ROLES.iter().map(|r| r.as_str()).collect();
            return Err(Error::Forbidden(format!(
                "this operation requires the role {}; `{}` does not have it",
                names.join(" or "),
                principal.username
            ))
            .into());
        }
        check_scopes::<R>(&principal)?;
        Ok(Authenticated(principal, PhantomData))
    }
}

/// Whether `principal` meets `R`: holds one of its roles and, with a bearer token, one
/// of its scopes. For operations whose answer depends on who asks (analytics).
pub fn grants<R: RoleRequirement>(principal: &Principal) -> bool {
    (R::ROLES.is_empty() || principal.has_any_role(R::ROLES)) && check_scopes::<R>(principal).is_ok()
}

/// A bearer token must carry one of the operation's scopes (or `apim:admin`).
fn check_scopes<R: RoleRequirement>(principal: &Principal) -> Result<(), ApiError> {
    let Some(scopes) = &principal.scopes else {
        return Ok(());
    };
    if R::SCOPES.is_empty()
        || scopes
            .iter()
            .any(|s| s == "apim:admin" || R::SCOPES.contains(&s.as_str()))
    {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "the access token lacks the scope this operation requires: one of {}",
        R::SCOPES.join(", ")
    ))
    .into())
}

/// The caller when credentials were sent, `None` for anonymous requests (Developer
/// Portal browsing); credentials that are sent must be valid.
pub struct MaybeAuthenticated(pub Option<Principal>);

impl<S> FromRequestParts<S> for MaybeAuthenticated
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Ok(MaybeAuthenticated(None));
        };
        let header = header.to_str().ok();
        let authenticator = Authenticator::from_ref(state);
        Ok(MaybeAuthenticated(Some(
            authenticator.authenticate_from(client_ip(parts), header).await?,
        )))
    }
}

/// The caller's address, as the listener recorded it (`None` for in-process calls).
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The caller's address as a handler argument (`None` for in-process calls), for limits
/// per client address.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use tollgate_model::NewUser;
    use tollgate_model::TenantId;
    use tollgate_store::DatabaseName;

    fn basic(user: &str, pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_but_wrong_ones_never_are() {
        let t = tollgate_testkit::sqlite("auth_cache");
        let db = tollgate_store::connect(DatabaseName::Shared, t.url(), &Default::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let new = NewUser {
            tenant_id: TenantId::DEFAULT,
            username: "erin".into(),
            password: "erin-password".into(),
            email: None,
            roles: vec![Role::Publisher],
        };
        users::create(&db, new).await.unwrap();
        let auth = Authenticator::new(db.clone());

        let first = auth.authenticate(Some(&basic("erin", "erin-password"))).await.unwrap();
        assert!(first.has_role(Role::Publisher));
        let wrong = auth.authenticate(Some(&basic("erin", "not-her-password"))).await;
        assert!(matches!(wrong, Err(Error::InvalidCredentials(_))));

        // With the database gone, only the verified pair still authenticates.
        db.close().await;
        let again = auth.authenticate(Some(&basic("erin", "erin-password"))).await.unwrap();
        assert_eq!(again, first);
        assert!(
            auth.authenticate(Some(&basic("erin", "not-her-password")))
                .await
                .is_err()
        );
        assert!(auth.authenticate(Some(&basic("erin", "erin-password2"))).await.is_err());
    }

    async fn users_db(label: &str, names: &[&str]) -> (tollgate_testkit::TestDb, Database) {
        let t = tollgate_testkit::sqlite(label);
        let db = tollgate_store::connect(DatabaseName::Shared, t.url(), &Default::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        for name in names {
            let new = NewUser {
                tenant_id: TenantId::DEFAULT,
                username: (*name).into(),
                password: format!("{name}-password"),
                email: None,
                roles: vec![Role::Subscriber],
            };
            users::create(&db, new).await.unwrap();
        }
        (t, db)
    }

    fn guarded(db: &Database, per_user: u32, per_address: u32) -> Authenticator {
        Authenticator::new(db.clone()).with_login_guard(LoginGuardSettings {
            max_failures_per_user: per_user,
            max_failures_per_address: per_address,
            lockout: Duration::from_secs(60),
        })
    }

    fn hashes_started() -> u64 {
        tollgate_store::password::stats().started
    }

    #[tokio::test]
    async fn failed_guesses_lock_the_user_and_then_not_even_its_password_is_hashed() {
        let (_t, db) = users_db("auth_lock_user", &["erin", "frank"]).await;
        let auth = guarded(&db, 3, 0);
        let ip = Some(IpAddr::from([198, 51, 100, 7]));
        for i in 0..3 {
            let wrong = auth
                .authenticate_from(ip, Some(&basic("erin", &format!("guess-{i}"))))
                .await;
            assert!(matches!(wrong, Err(Error::InvalidCredentials(_))), "{wrong:?}");
        }
        let before = hashes_started();
        // The right password, from another address: the user is locked.
        let locked = auth
            .authenticate_from(
                Some(IpAddr::from([203, 0, 113, 9])),
                Some(&basic("erin", "erin-password")),
            )
            .await
            .unwrap_err();
        assert_eq!(locked.status(), 429, "{locked:?}");
        assert!(
            locked.retry_after_secs().is_some_and(|s| s > 0 && s <= 60),
            "{locked:?}"
        );
        assert_eq!(hashes_started(), before, "a locked user costs no argon2 work");
        // Any spelling of the name is the same user; an unknown name is locked the same way.
        assert_eq!(
            auth.authenticate_from(ip, Some(&basic("ERIN", "erin-password")))
                .await
                .unwrap_err()
                .status(),
            429
        );
        assert_eq!(hashes_started(), before);
        // Other users are not affected.
        assert!(
            auth.authenticate_from(ip, Some(&basic("frank", "frank-password")))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn failed_guesses_from_one_address_lock_it_for_every_user() {
        let (_t, db) = users_db("auth_lock_address", &["erin"]).await;
        let auth = guarded(&db, 100, 3);
        let attacker = Some(IpAddr::from([198, 51, 100, 7]));
        for name in ["alice", "bob", "carol"] {
            let wrong = auth.authenticate_from(attacker, Some(&basic(name, "password1"))).await;
            assert!(matches!(wrong, Err(Error::InvalidCredentials(_))), "{wrong:?}");
        }
        let before = hashes_started();
        let locked = auth
            .authenticate_from(attacker, Some(&basic("erin", "erin-password")))
            .await
            .unwrap_err();
        assert_eq!(locked.status(), 429, "{locked:?}");
        assert_eq!(hashes_started(), before, "a locked address costs no argon2 work");
        // Another address signs in as usual.
        let other = Some(IpAddr::from([198, 51, 100, 8]));
        assert!(
            auth.authenticate_from(other, Some(&basic("erin", "erin-password")))
                .await
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_guesses_hash_at_most_the_cap_at_once_and_stop_at_the_lock() {
        assert!(tollgate_store::password::limit_concurrency(2));
        let (_t, db) = users_db("auth_parallel", &["erin"]).await;
        let auth = guarded(&db, 5, 0);
        let before = hashes_started();
        let guesses: Vec<_> = (0..40)
            .map(|i| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    let ip = Some(IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]));
                    auth.authenticate_from(ip, Some(&basic("erin", &format!("guess-{i}"))))
                        .await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for g in guesses {
            statuses.push(g.await.unwrap().unwrap_err().status());
        }
        let stats = tollgate_store::password::stats();
        assert!(
            stats.peak_in_flight <= 2,
            "never more hashes at once than slots: {stats:?}"
        );
        let hashed = stats.started - before;
        // The lock is checked again once a slot is free: at most the limit, plus the
        // attempts already hashing when it was reached.
        assert!(hashed <= 5 + 1, "{hashed} hashes for 40 parallel guesses");
        assert_eq!(statuses.iter().filter(|s| **s == 401).count() as u64, hashed);
        assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    }

    #[tokio::test]
    async fn malformed_headers_are_refused_before_any_lookup() {
        let t = tollgate_testkit::sqlite("auth_malformed");
        let db = tollgate_store::connect(DatabaseName::Shared, t.url(), &Default::default())
            .await
            .unwrap();
        let auth = Authenticator::new(db);
        for header in ["Basic", "Basic !!!", "Basic bm9jb2xvbg==", "Digest abc"] {
            assert!(
                matches!(auth.authenticate(Some(header)).await, Err(Error::InvalidCredentials(_))),
                "{header}"
            );
        }
        assert!(matches!(
            auth.authenticate(None).await,
            Err(Error::MissingCredentials(_))
        ));
    }
}
