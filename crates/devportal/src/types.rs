//! The bodies the Developer Portal REST API answers, typed after the reference's schemas
//! of the same names, so that the generated OpenAPI document states what is really sent.
//! Optional fields are left out when absent, never sent as `null` (and so are not
//! `nullable` in the schema).

use serde::Serialize;
use serde_json::Value;
use tollgate_http::PaginationInfo;
use tollgate_model::document::Document;
use tollgate_model::{LifecycleState, Role};
use utoipa::ToSchema;

/// An API in the catalogue (the reference's `APIInfo`); also a subscription's `apiInfo`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIInfo)]
#[serde(rename_all = "camelCase")]
pub struct ApiInfo {
    /// API id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text, when the publisher wrote some.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// Base path on the gateway.
    pub context: String,
    /// Version string.
    pub version: String,
    /// `HTTP` or `WS`.
    #[serde(rename = "type")]
    pub api_type: String,
    /// Who published it.
    pub provider: String,
    /// Lifecycle state.
    pub life_cycle_status: LifecycleState,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// The business plans subscribers can choose.
    pub throttling_policies: Vec<String>,
    /// Whether the unversioned context routes to this version.
    pub is_default_version: bool,
    /// RFC 3339.
    pub created_time: String,
}

/// A page of the catalogue (the reference's `APIList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIList)]
pub struct ApiList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<ApiInfo>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// A business plan an API offers (an item of the reference's `API.tiers`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiTier {
    /// The plan's name.
    pub tier_name: String,
    /// `FREE` (Tollgate has no commercial plans).
    pub tier_plan: String,
}

/// The gateway URLs of one environment (`URLs` of the reference's `API.endpointURLs`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiUrls {
    /// Plain HTTP URL, when the environment listens for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub http: Option<String>,
    /// HTTPS URL, when the environment listens for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub https: Option<String>,
}

/// Where an API can be called in one environment (an item of `API.endpointURLs`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiEndpointUrl {
    /// The environment's name.
    pub environment_name: String,
    /// Its label (the name when it has none).
    pub environment_display_name: String,
    /// `hybrid`, `production` or `sandbox`.
    pub environment_type: String,
    /// The URLs.
    #[serde(rename = "URLs")]
    pub urls: ApiUrls,
}

/// An operation of an API as the portal shows it (the reference's `APIOperations`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIOperations)]
#[serde(rename_all = "camelCase")]
pub struct ApiOperation {
    /// Path template.
    pub target: String,
    /// HTTP method.
    pub verb: String,
    /// `Application & Application User`, `None`, …
    pub auth_type: String,
    /// Scopes a token needs to call it.
    pub scopes: Vec<String>,
}

/// One API of the catalogue in full (the reference's `API`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = API)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    /// API id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text, when the publisher wrote some.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// Base path on the gateway.
    pub context: String,
    /// Version string.
    pub version: String,
    /// `HTTP` or `WS`.
    #[serde(rename = "type")]
    pub api_type: String,
    /// Who published it.
    pub provider: String,
    /// Lifecycle state.
    pub life_cycle_status: LifecycleState,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// The business plans subscribers can choose.
    pub throttling_policies: Vec<String>,
    /// Whether the unversioned context routes to this version.
    pub is_default_version: bool,
    /// RFC 3339.
    pub created_time: String,
    /// The plans, as the reference's portal lists them.
    pub tiers: Vec<ApiTier>,
    /// Where it can be called.
    #[serde(rename = "endpointURLs")]
    pub endpoint_urls: Vec<ApiEndpointUrl>,
    /// Header the gateway reads OAuth2 tokens from.
    pub authorization_header: String,
    /// Header the gateway reads API keys from.
    pub api_key_header: String,
    /// Accepted credentials (`oauth2`, `api_key`, …).
    pub security_scheme: Vec<String>,
    /// Its operations.
    pub operations: Vec<ApiOperation>,
    /// Average of its ratings, one decimal (`"0.0"` when unrated).
    pub avg_rating: String,
    /// Always false: Tollgate keeps no thumbnails.
    pub has_thumbnail: bool,
}

/// A page of an API's documents (the reference's `DocumentList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<Document>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// One user's rating of an API (the reference's `Rating`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// Rating id.
    pub rating_id: String,
    /// The rated API.
    pub api_id: String,
    /// Who rated it.
    pub rated_by: String,
    /// 1 to 5.
    pub rating: i32,
}

/// An API's ratings (the reference's `RatingList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RatingList {
    /// Items in `list`.
    pub count: usize,
    /// The ratings, oldest first.
    pub list: Vec<Rating>,
}

/// An OAuth2 scope an application's subscriptions allow (the reference's `ScopeInfo`).
/// Tollgate does not compute them yet, so `Application.subscriptionScopes` is empty.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScopeInfo {
    /// Scope key.
    pub key: String,
    /// Scope name.
    pub name: String,
    /// Roles the scope is bound to.
    pub roles: Vec<String>,
    /// Free text.
    pub description: String,
}

/// What a key mapping records besides its grant types (`ApplicationKey.additionalProperties`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyProperties {
    /// Scopes tokens of these keys may carry.
    pub scopes: Vec<String>,
    /// Token validity in seconds (0: the server's default).
    pub validity_time: i64,
}

/// An application's OAuth2 client at one key manager (the reference's `ApplicationKey`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationKey {
    /// Key mapping id.
    pub key_mapping_id: String,
    /// The key manager holding the client.
    pub key_manager: String,
    /// OAuth2 client id.
    pub consumer_key: String,
    /// The client secret: only in the answer that made it (it is stored as a hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub consumer_secret: Option<String>,
    /// Grant types the client may use.
    pub supported_grant_types: Vec<String>,
    /// Redirect URI, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub callback_url: Option<String>,
    /// Always `COMPLETED` (keys need no approval).
    pub key_state: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// `CREATED` (generated here) or `MAPPED` (a client of another key manager).
    pub mode: String,
    /// Scopes and token validity.
    pub additional_properties: KeyProperties,
}

/// An application's keys (the reference's `ApplicationKeyList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationKeyList {
    /// Items in `list`.
    pub count: usize,
    /// The keys (never their secrets).
    pub list: Vec<ApplicationKey>,
}

/// A new consumer secret (the reference's `ApplicationKeyReGenerateResponse`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationKeyReGenerateResponse {
    /// OAuth2 client id.
    pub consumer_key: String,
    /// The new secret, shown only here.
    pub consumer_secret: String,
}

/// An access token made for an application's keys (the reference's `ApplicationToken`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationToken {
    /// The token.
    pub access_token: String,
    /// The scopes it carries.
    pub token_scopes: Vec<String>,
    /// Seconds it is valid for.
    pub validity_time: u64,
}

/// A new API key (the reference's `APIKey`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIKey)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's label.
    pub key_name: String,
    /// The key itself, shown only here.
    pub apikey: String,
    /// Seconds it is valid for (-1: no expiry).
    pub validity_period: i64,
}

/// An application (the reference's `Application`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Application id.
    pub application_id: String,
    /// Unique among the owner's applications.
    pub name: String,
    /// The application policy (its rate limit across APIs).
    pub throttling_policy: String,
    /// Free text, when the owner wrote some.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// `JWT` or `OAUTH`: the kind of access tokens its keys get.
    pub token_type: String,
    /// `APPROVED` (no approval workflow).
    pub status: String,
    /// Always empty: applications are not shared with groups.
    pub groups: Vec<String>,
    /// How many subscriptions it holds.
    pub subscription_count: i64,
    /// Free-form string attributes.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub attributes: serde_json::Map<String, Value>,
    /// Always empty (see [`ScopeInfo`]).
    pub subscription_scopes: Vec<ScopeInfo>,
    /// The user who created it.
    pub owner: String,
    /// Always true: consumer secrets are stored hashed.
    pub hash_enabled: bool,
    /// RFC 3339.
    pub created_time: String,
    /// RFC 3339.
    pub updated_time: String,
    /// Its keys (never their secrets), in the answers that show them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub keys: Option<Vec<ApplicationKey>>,
}

/// A page of the caller's applications (the reference's `ApplicationList`; its items are
/// whole `Application`s, a superset of the reference's `ApplicationInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplicationList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<Application>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// The application of a subscription (the reference's `ApplicationInfo`, in part).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    /// Application id.
    pub application_id: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub subscriber: String,
}

/// An application's subscription to an API (the reference's `Subscription`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Subscription id.
    pub subscription_id: String,
    /// The subscribed application.
    pub application_id: String,
    /// The API.
    pub api_id: String,
    /// The API, unless it was deleted meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub api_info: Option<ApiInfo>,
    /// The application.
    pub application_info: ApplicationInfo,
    /// The business plan.
    pub throttling_policy: String,
    /// The plan asked for (the same: plan changes need no approval).
    pub requested_throttling_policy: String,
    /// `UNBLOCKED`, `BLOCKED` or `PROD_ONLY_BLOCKED`.
    pub status: String,
}

/// A page of the caller's subscriptions (the reference's `SubscriptionList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<Subscription>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// The account a sign-up made (Tollgate's own: the reference has no sign-up operation).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedUpUser {
    /// The name the new user signs in with: `alice@acme.com` in a tenant, `alice` in the
    /// super tenant.
    pub username: String,
    /// The tenant the user was created in (`carbon.super`, `acme.com`).
    pub tenant_domain: String,
    /// Their address, when they gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub email: Option<String>,
    /// Always `subscriber`.
    pub roles: Vec<Role>,
}

/// What an application project import did. The reference answers with the application;
/// Tollgate says what it created or changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationImportOutcome {
    /// The application's id.
    pub application_id: String,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// `CREATED`, `UPDATED` or `UNCHANGED`.
    pub status: String,
    /// What was created or changed, one line each.
    pub changes: Vec<String>,
    /// What the project holds that Tollgate did not import.
    pub warnings: Vec<String>,
}
