//! The Admin REST API's request and response bodies, named after the reference's schemas
//! (`EnvironmentList`, `SubscriptionThrottlePolicy`, `BlockingCondition`, `KeyManager`, …)
//! so that the generated OpenAPI document states each operation's real body. Where the
//! model already has the right JSON it is wrapped (`#[serde(transparent)]`) or embedded,
//! never copied.

use serde::{Deserialize, Serialize};
use tollgate_http::PaginationInfo;
use tollgate_model::block_condition::BlockCondition;
use tollgate_model::custom_rule::CustomPolicy;
use tollgate_model::key_manager::KeyManager as KeyManagerSettings;
use tollgate_model::policy::{AdvancedPolicy, ApplicationPolicy, SubscriptionPolicy};
use tollgate_model::{Environment, Role, User};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A user as the Admin API shows it (never with a password or hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// Server-assigned id.
    pub id: String,
    /// Sign-in name, unique in the tenant.
    pub username: String,
    /// Contact address, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// What the user may do.
    pub roles: Vec<Role>,
    /// False: the user cannot sign in and holds no valid token.
    pub enabled: bool,
    /// When the user was created (epoch milliseconds).
    pub created_time: i64,
}

impl From<User> for UserInfo {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username,
            email: u.email,
            roles: u.roles,
            enabled: u.enabled,
            created_time: u.created_at,
        }
    }
}

/// A page of users (`GET /users`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Users in this page.
    pub count: usize,
    /// The users.
    pub list: Vec<UserInfo>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// The body of `POST /users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreateUser {
    /// Sign-in name.
    pub username: String,
    /// Initial password (never answered).
    pub password: String,
    /// Contact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role names (`admin`, `creator`, `publisher`, `subscriber`).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The body of `PATCH /users/{username}`: the fields to change (at least one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UpdateUser {
    /// The user's roles from now on (replaces them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Enables or disables the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// One built-in role, as `GET /roles` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleInfo {
    /// The role's name, as users' `roles` give it.
    pub name: String,
    /// What the role allows.
    pub description: String,
}

/// The built-in roles (`GET /roles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoleList {
    /// Roles listed.
    pub count: usize,
    /// The roles.
    pub list: Vec<RoleInfo>,
}

/// The gateway environments (`GET /environments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentList {
    /// Environments listed.
    pub count: usize,
    /// The environments.
    pub list: Vec<Environment>,
}

/// Declares a named body that is a model type's JSON as it is, under the reference's
/// schema name (the model's own name differs): the same schema, registered as `$name`.
macro_rules! named_model {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl From<$inner> for $name {
            fn from(inner: $inner) -> Self {
                Self(inner)
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                <$inner as PartialSchema>::schema()
            }
        }

        impl ToSchema for $name {
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$inner as ToSchema>::schemas(schemas);
            }
        }
    };
}

named_model!(
    /// A subscription policy (business plan), the body of `/throttling/policies/subscription`.
    SubscriptionThrottlePolicy(SubscriptionPolicy)
);
named_model!(
    /// An application policy, the body of `/throttling/policies/application`.
    ApplicationThrottlePolicy(ApplicationPolicy)
);
named_model!(
    /// An advanced (API or resource) policy, the body of `/throttling/policies/advanced`.
    AdvancedThrottlePolicy(AdvancedPolicy)
);
/// A custom rule (a limit per key template over the requests a condition selects), the
/// body of `/throttling/policies/custom`. Answered with `siddhiQuery` besides the rule's
/// own fields; taken without it (a `siddhiQuery` sent is ignored and named in `Warning`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct CustomRule(pub CustomPolicy);

// The reference's clients require `siddhiQuery`; Tollgate's rules have no Siddhi query,
// so the rule's condition is answered there (empty: every request).
impl Serialize for CustomRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct WithQuery<'a> {
            #[serde(flatten)]
            rule: &'a CustomPolicy,
            siddhi_query: &'a str,
        }
        WithQuery {
            rule: &self.0,
            siddhi_query: self.0.condition.as_deref().unwrap_or(""),
        }
        .serialize(serializer)
    }
}

impl From<CustomPolicy> for CustomRule {
    fn from(inner: CustomPolicy) -> Self {
        Self(inner)
    }
}

// The model's schema with the output-only `siddhiQuery` (the model leaves it out of its
// own schema because it is never read).
impl PartialSchema for CustomRule {
    fn schema() -> RefOr<Schema> {
        let mut schema = <CustomPolicy as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.insert(
                "siddhiQuery".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Output only: the rule's condition (Tollgate's rules have no Siddhi query; the reference's clients require this field). Ignored on input.",
                    ))
                    .read_only(true)
                    .into(),
            );
        }
        schema
    }
}

impl ToSchema for CustomRule {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <CustomPolicy as ToSchema>::schemas(schemas);
    }
}
/// A deny policy: requests to an API, or from an application, user, IP address or range,
/// are refused while it is enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlockingCondition(pub BlockCondition);

impl From<BlockCondition> for BlockingCondition {
    fn from(inner: BlockCondition) -> Self {
        Self(inner)
    }
}

// The model's schema, except that `conditionValue` is a string (`API`, `APPLICATION`,
// `USER`) or an object (`IP`, `IPRANGE`), as answered; the model types it as an object.
impl PartialSchema for BlockingCondition {
    fn schema() -> RefOr<Schema> {
        let mut schema = <BlockCondition as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            let description = match object.properties.get("conditionValue") {
                Some(RefOr::T(Schema::Object(value))) => value.description.clone(),
                _ => None,
            };
            object.properties.insert(
                "conditionValue".into(),
                OneOfBuilder::new()
                    .item(ObjectBuilder::new().schema_type(Type::String))
                    .item(ObjectBuilder::new().schema_type(Type::Object))
                    .description(description)
                    .into(),
            );
        }
        schema
    }
}

impl ToSchema for BlockingCondition {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <BlockCondition as ToSchema>::schemas(schemas);
    }
}

named_model!(
    /// The body of `PATCH /throttling/deny-policy/{conditionId}`: enables or disables a
    /// deny policy.
    BlockingConditionStatus(tollgate_model::block_condition::BlockConditionStatus)
);

/// Declares a `count`/`list` wrapper of a level's policies.
macro_rules! policy_list {
    ($(#[$doc:meta])* $name:ident($item:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            /// Policies listed.
            pub count: usize,
            /// The policies.
            pub list: Vec<$item>,
        }

        impl From<Vec<$item>> for $name {
            fn from(list: Vec<$item>) -> Self {
                Self { count: list.len(), list }
            }
        }
    };
}

policy_list!(
    /// The subscription policies (`GET /throttling/policies/subscription`).
    SubscriptionThrottlePolicyList(SubscriptionThrottlePolicy)
);
policy_list!(
    /// The application policies (`GET /throttling/policies/application`).
    ApplicationThrottlePolicyList(ApplicationThrottlePolicy)
);
policy_list!(
    /// The advanced policies (`GET /throttling/policies/advanced`), in full.
    AdvancedThrottlePolicyList(AdvancedThrottlePolicy)
);
policy_list!(
    /// The custom rules (`GET /throttling/policies/custom`).
    CustomRuleList(CustomRule)
);
policy_list!(
    /// The deny policies (`GET /throttling/deny-policies`).
    BlockingConditionList(BlockingCondition)
);

/// A third-party key manager as the Admin API answers it: its settings and when its key
/// set was last fetched. Also the body `POST` and `PUT /key-managers` take (without the
/// read-only `id` and `jwksFetchedTime`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyManager {
    /// The settings, as registered.
    #[serde(flatten)]
    pub settings: KeyManagerSettings,
    /// When the key set (JWKS) was last fetched (RFC 3339); absent until it has been.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_fetched_time: Option<String>,
}

// The model's schema with `jwksFetchedTime` added: one object, as the reference's
// `KeyManager` is (a derived `#[serde(flatten)]` schema would be an `allOf`).
impl PartialSchema for KeyManager {
    fn schema() -> RefOr<Schema> {
        let mut schema = <KeyManagerSettings as PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.insert(
                "jwksFetchedTime".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "When the key set (JWKS) was last fetched (RFC 3339); absent until it has been.",
                    ))
                    .read_only(true)
                    .into(),
            );
        }
        schema
    }
}

impl ToSchema for KeyManager {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <KeyManagerSettings as ToSchema>::schemas(schemas);
    }
}

/// The third-party key managers (`GET /key-managers`), each in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyManagerList {
    /// Key managers listed.
    pub count: usize,
    /// The key managers.
    pub list: Vec<KeyManager>,
}

/// A tenant (`/tenants`, our extension): an organisation with its own users, APIs,
/// policies and applications on this deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantInfo {
    /// The tenant's domain; its users sign in as `name@domain`.
    pub domain: String,
    /// Display name.
    pub name: String,
    /// Whether its users may sign in and its APIs be called.
    pub active: bool,
    /// When it was created (epoch milliseconds).
    pub created_time: i64,
    /// In the answer to its creation only: super-tenant users named `…@domain`, whose
    /// name now signs in to this tenant, so that they can no longer sign in as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadowed_users: Vec<String>,
}

impl From<tollgate_model::Tenant> for TenantInfo {
    fn from(t: tollgate_model::Tenant) -> Self {
        Self {
            domain: t.domain,
            name: t.name,
            active: t.active,
            created_time: t.created_at,
            shadowed_users: Vec::new(),
        }
    }
}

/// A page of tenants (`GET /tenants`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    /// Tenants in this page.
    pub count: usize,
    /// The tenants.
    pub list: Vec<TenantInfo>,
    /// Where the page lies in the whole list.
    pub pagination: PaginationInfo,
}

/// The body of `POST /tenants`: the tenant and its first administrator, who then signs in
/// as `adminUsername@domain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTenant {
    /// Lower-case DNS name (`acme.com`); cannot be changed later.
    pub domain: String,
    /// The first administrator's name, without `@domain`.
    pub admin_username: String,
    /// Their initial password (never answered).
    pub admin_password: String,
    /// Their email address.
    pub email: String,
    /// Display name (the domain when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What kind of directory a registered user store is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryType {
    /// An LDAP directory (OpenLDAP, 389 DS…): users by `uid`, groups by `member`.
    #[default]
    Ldap,
    /// Active Directory: users by `sAMAccountName` or `userPrincipalName`, groups by
    /// `memberOf`, disabled accounts refused.
    ActiveDirectory,
}

/// How a directory records group membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryMembership {
    /// Groups list their members' DNs in `member`.
    Member,
    /// Groups list their members' DNs in `uniqueMember`.
    UniqueMember,
    /// Users list their groups' DNs in `memberOf`.
    MemberOf,
}

/// A directory a tenant registers (`/user-stores`, our extension): a secondary user store
/// whose users sign in as `DOMAIN/alice@tenant`. Optional settings answer with their
/// defaults; the bind password is written, never answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStore {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub id: Option<String>,
    /// The store's domain (letters, digits, `-`, `_`, `.`), answered upper-cased; users
    /// sign in as `DOMAIN/name`. Cannot be changed.
    pub domain: String,
    /// `ldap` or `active_directory`.
    #[serde(rename = "type", default)]
    pub kind: DirectoryType,
    /// The directory's URLs, tried in order (`ldap://` or `ldaps://`).
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    #[serde(default)]
    pub start_tls: bool,
    /// The DN the store binds as to search.
    pub bind_dn: String,
    /// Its password: required to register, kept when absent from an update, never
    /// answered.
    #[serde(default, skip_serializing)]
    #[schema(write_only, value_type = Option<String>)]
    pub bind_password: Option<tollgate_config::Secret>,
    /// Where users are searched.
    pub user_search_base: String,
    /// The filter that finds one user; `{username}` stands for the escaped name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// Where groups are searched (the user search base when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_search_base: Option<String>,
    /// The filter that finds a user's groups; `{member}` stands for the escaped user DN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// How membership is recorded (by type when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<DirectoryMembership>,
    /// The attribute that names a group (`cn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name_attribute: Option<String>,
    /// The attribute that holds a user's email address (`mail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attribute: Option<String>,
    /// Whether Tollgate may only read the directory (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Connections kept to the directory (1–32, default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Seconds to wait to connect to one URL before trying the next (1–60, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_seconds: Option<u64>,
    /// Seconds one operation may take (1–60, default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout_seconds: Option<u64>,
    /// Seconds a user's roles are kept before the directory is asked again (0–86400,
    /// default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_seconds: Option<u64>,
    /// Directory group name → Tollgate roles.
    #[serde(default)]
    pub role_mapping: std::collections::BTreeMap<String, Vec<String>>,
}

/// The tenant's registered directories (`GET /user-stores`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserStoreList {
    /// Stores listed.
    pub count: usize,
    /// The stores.
    pub list: Vec<UserStore>,
}

/// What `POST /user-stores/test-connection` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserStoreConnection {
    /// Whether a URL accepted the connection, the service account bound and both search
    /// bases exist.
    pub connection: bool,
    /// What happened, and what to fix when it failed.
    pub message: String,
}

/// What a throttling policy import did. The reference answers an empty 200; Tollgate
/// says what it created or changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyImportOutcome {
    /// The policy's id.
    pub policy_id: String,
    /// The policy's name.
    pub policy_name: String,
    /// Its level, in the reference's words (`subscription policy`, …).
    pub subtype: String,
    /// `CREATED`, `UPDATED` or `UNCHANGED`.
    pub status: String,
    /// Fields of the file Tollgate did not import.
    pub warnings: Vec<String>,
}
