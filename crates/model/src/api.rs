//! The API resource as the reference's Publisher v4 API shapes it (`name`, `context`,
//! `version`, `endpointConfig`, `operations`…), with the validation rules every writer
//! (REST, import, copy) applies before anything is stored.
//!
//! Server-owned fields (`id`, `provider`, `lifeCycleStatus`, times) are accepted on
//! input, so that a client can GET, edit and PUT a whole API as with the reference, and
//! overwritten by the server.

use crate::{FieldError, LifecycleState};
use serde::{Deserialize, Serialize};

/// An API: what the Publisher edits, revisions snapshot and gateways serve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Api {
    /// Server-assigned id (UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name; with `version`, unique per tenant.
    pub name: String,
    /// Optional friendlier name for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text shown in the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Base path on the gateway (`/pizzashack` or `/pizzashack/{version}`).
    pub context: String,
    /// Version string (`1.0.0`).
    pub version: String,
    /// The user who owns the API (set by the server on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Lifecycle state (changed only through `change-lifecycle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_cycle_status: Option<LifecycleState>,
    /// API type: `HTTP` (REST) or `WS` (WebSocket: the gateway takes only WebSocket
    /// handshakes on its resources, decision 010).
    #[serde(rename = "type", default = "default_type")]
    pub api_type: String,
    /// Transports the gateway accepts (`http`, `https`).
    #[serde(default = "default_transport")]
    pub transport: Vec<String>,
    /// Free-form tags for search.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Business plans (subscription policies) consumers may subscribe with.
    #[serde(default)]
    pub policies: Vec<String>,
    /// API-level advanced throttling policy (overrides per-operation policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_throttling_policy: Option<String>,
    /// Header carrying the OAuth2 token (default `Authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<String>,
    /// Header carrying the API key (default `apikey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// Accepted credentials: `oauth2`, `api_key`, `basic_auth`, and `*_mandatory` markers.
    #[serde(default = "default_security_scheme")]
    pub security_scheme: Vec<String>,
    /// `PUBLIC`, `PRIVATE` or `RESTRICTED` (with `visibleRoles`).
    #[serde(default = "default_visibility")]
    pub visibility: String,
    /// Roles that may see a `RESTRICTED` API.
    #[serde(default)]
    pub visible_roles: Vec<String>,
    /// CORS answered by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors_configuration: Option<CorsConfiguration>,
    /// Backends per key type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_config: Option<EndpointConfig>,
    /// How calls are answered: `ENDPOINT` (proxied to `endpointConfig`, the default) or
    /// `MOCKED_OAS` (answered by the gateway from the OpenAPI definition's examples,
    /// decision 016). The reference's `INLINE` (a mediation script) is refused.
    #[serde(default = "default_implementation_type")]
    pub endpoint_implementation_type: String,
    /// Whether `/{context}/…` without a version routes to this version.
    #[serde(default)]
    pub is_default_version: bool,
    /// Resources: path template and verb, with their auth and throttling.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// OAuth2 scopes operations may require.
    #[serde(default)]
    pub scopes: Vec<ApiScope>,
    /// Name/value pairs for the portals (`additionalProperties` of the reference).
    #[serde(default)]
    pub additional_properties: Vec<AdditionalProperty>,
    /// When the API was created (RFC 3339, server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// When the API last changed (RFC 3339, server-set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_time: Option<String>,
}

fn default_type() -> String {
    "HTTP".into()
}
fn default_transport() -> Vec<String> {
    vec!["http".into(), "https".into()]
}
fn default_security_scheme() -> Vec<String> {
    vec!["oauth2".into()]
}
fn default_implementation_type() -> String {
    ENDPOINT_IMPLEMENTATION_TYPES[0].into()
}
fn default_visibility() -> String {
    "PUBLIC".into()
}
fn default_auth_type() -> String {
    "Application & Application User".into()
}
fn default_operation_policy() -> String {
    "Unlimited".into()
}

/// One resource of an API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Optional id (the reference's clients send one; Tollgate does not need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Path template relative to the context: `/menu`, `/order/{orderId}`, `/files/*`.
    pub target: String,
    /// HTTP method.
    pub verb: String,
    /// `Application & Application User` (default), `Application`, `Application User`,
    /// `Any`, or `None` (no authentication).
    #[serde(default = "default_auth_type")]
    pub auth_type: String,
    /// Advanced policy for this resource (ignored when the API sets `apiThrottlingPolicy`).
    #[serde(default = "default_operation_policy")]
    pub throttling_policy: String,
    /// Scopes a token must carry to call this resource.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A scope attached to an API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiScope {
    /// The scope.
    pub scope: Scope,
    /// Whether it is a shared scope defined under `/scopes`.
    #[serde(default)]
    pub shared: bool,
}

/// An OAuth2 scope and the roles that may obtain it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Server-assigned id for shared scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The scope string tokens carry.
    pub name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Roles allowed to obtain the scope.
    #[serde(default)]
    pub bindings: Vec<String>,
}

/// CORS settings the gateway applies for this API.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", default)]
pub struct CorsConfiguration {
    /// Whether the gateway answers CORS at all for this API.
    pub cors_configuration_enabled: bool,
    /// Allowed origins (`*` for any).
    pub access_control_allow_origins: Vec<String>,
    /// Whether credentials may be sent.
    pub access_control_allow_credentials: bool,
    /// Allowed request headers.
    pub access_control_allow_headers: Vec<String>,
    /// Allowed methods.
    pub access_control_allow_methods: Vec<String>,
}

/// A display property.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdditionalProperty {
    /// Property name.
    pub name: String,
    /// Property value.
    pub value: String,
    /// Whether the Developer Portal shows it.
    #[serde(default)]
    pub display: bool,
}

/// Backends, in the reference's `endpointConfig` shape (snake_case keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointConfig {
    /// `http` (one endpoint), `load_balance` (round robin), or `failover`.
    pub endpoint_type: String,
    /// Production backend(s): one `{url}` or a list for load balancing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_endpoints: Option<Endpoints>,
    /// Sandbox backend(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_endpoints: Option<Endpoints>,
    /// Production backends tried in order when the primary fails (`failover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub production_failovers: Vec<Endpoint>,
    /// Sandbox backends tried in order when the primary fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_failovers: Vec<Endpoint>,
    /// The reference's load-balancing algorithm name (round robin is what Tollgate does).
    #[serde(rename = "algoCombo", default, skip_serializing_if = "Option::is_none")]
    pub algo_combo: Option<String>,
}

/// One endpoint or several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Endpoints {
    /// A single backend.
    One(Endpoint),
    /// Several backends (load balancing).
    Many(Vec<Endpoint>),
}

impl Endpoints {
    /// The endpoints as a list.
    pub fn as_vec(&self) -> Vec<&Endpoint> {
        self.as_slice().iter().collect()
    }

    /// The endpoints as a slice, borrowed (what the gateway walks on every call).
    pub fn as_slice(&self) -> &[Endpoint] {
        match self {
            Endpoints::One(e) => std::slice::from_ref(e),
            Endpoints::Many(v) => v,
        }
    }
}

/// A backend URL with its per-endpoint settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    /// `http://` or `https://` base URL of the backend.
    pub url: String,
    /// The reference's endpoint settings; Tollgate reads `actionDuration` (read timeout,
    /// milliseconds) and keeps the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Endpoint {
    /// The read timeout from `config.actionDuration`, in milliseconds, if set.
    pub fn read_timeout_ms(&self) -> Result<Option<u64>, String> {
        let Some(v) = self.config.as_ref().and_then(|c| c.get("actionDuration")) else {
            return Ok(None);
        };
        match v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| "must be a whole number of milliseconds".into()),
            serde_json::Value::String(s) => s
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| "must be a whole number of milliseconds".into()),
            _ => Err("must be a whole number of milliseconds".into()),
        }
    }
}

/// The policy names an API may refer to; supplied by the caller from the policy store.
#[derive(Clone, Debug, Default)]
pub struct KnownPolicies {
    /// Subscription policies (business plans).
    pub subscription: Vec<String>,
    /// Advanced (API and resource) policies.
    pub advanced: Vec<String>,
}

/// The HTTP methods an operation may use.
pub const VERBS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The values of `endpointImplementationType` Tollgate accepts: `ENDPOINT` (the
/// default) and `MOCKED_OAS`.
pub const ENDPOINT_IMPLEMENTATION_TYPES: [&str; 2] = ["ENDPOINT", "MOCKED_OAS"];

/// The operation auth types the reference defines.
pub const AUTH_TYPES: [&str; 5] = [
    "Application & Application User",
    "Application",
    "Application User",
    "Any",
    "None",
];

/// The security schemes Tollgate understands.
pub const SECURITY_SCHEMES: [&str; 7] = [
    "oauth2",
    "api_key",
    "basic_auth",
    "oauth_basic_auth_api_key_mandatory",
    "mutualssl",
    "mutualssl_mandatory",
    "api_key_header",
];

impl Scope {
    /// Checks the name (a word without spaces, at most 100 characters), the display name,
    /// the description (at most 512 characters) and the role bindings, naming each bad field.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.name.is_empty() || self.name.len() > 100 || self.name.contains(char::is_whitespace) {
            e.push(FieldError::new(
                "name",
                "must be 1 to 100 characters without spaces, e.g. read:orders",
            ));
        }
        if self.display_name.as_ref().is_some_and(|d| d.len() > 255) {
            e.push(FieldError::new("displayName", "must be at most 255 characters"));
        }
        if let Some(c) = self
            .display_name
            .as_deref()
            .and_then(crate::text::hidden_or_reordering_char)
        {
            e.push(FieldError::new("displayName", crate::text::hidden_char_message(c)));
        }
        // The reference's limit: a longer one would not round-trip through its clients.
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 512) {
            e.push(FieldError::new("description", "must be at most 512 characters"));
        }
        for (i, role) in self.bindings.iter().enumerate() {
            if role.trim().is_empty() || role.len() > 100 {
                e.push(FieldError::new(format!("bindings[{i}]"), "must be a role name"));
            }
        }
        e
    }
}

impl Api {
    /// The context with `{version}` substituted, or with `/version` appended when the
    /// template has none: the path prefix gateways route on.
    pub fn resolved_context(&self) -> String {
        resolve_context(&self.context, &self.version)
    }

    /// Checks every field, reporting all problems at once, each naming its field.
    pub fn validate(&self, policies: &KnownPolicies) -> Vec<FieldError> {
        let mut e = Vec::new();
        validate_name(&self.name, &mut e);
        if let Err(m) = validate_context(&self.context) {
            e.push(FieldError::new("context", m));
        }
        validate_version(&self.version, &mut e);
        let websocket = self.is_websocket();
        if !websocket && !self.api_type.eq_ignore_ascii_case("HTTP") {
            e.push(FieldError::new(
                "type",
                format!(
                    "`{}` is not supported; Tollgate serves HTTP and WS (WebSocket) APIs",
                    self.api_type
                ),
            ));
        }
        if self.transport.is_empty() {
            e.push(FieldError::new("transport", "name at least one of http, https"));
        }
        for (i, t) in self.transport.iter().enumerate() {
            if !matches!(t.as_str(), "http" | "https") {
                e.push(FieldError::new(
                    format!("transport[{i}]"),
                    format!("`{t}` must be http or https"),
                ));
            }
        }
        for (i, t) in self.tags.iter().enumerate() {
            if t.trim().is_empty() || t.len() > 50 || t.contains(',') {
                e.push(FieldError::new(
                    format!("tags[{i}]"),
                    "must be 1 to 50 characters without commas",
                ));
            }
        }
        for (i, p) in self.policies.iter().enumerate() {
            if !policies.subscription.iter().any(|k| k == p) {
                e.push(FieldError::new(
                    format!("policies[{i}]"),
                    format!(
                        "unknown subscription policy `{p}`; known: {}",
                        policies.subscription.join(", ")
                    ),
                ));
            }
        }
        if let Some(p) = &self.api_throttling_policy
            && !policies.advanced.iter().any(|k| k == p)
        {
            e.push(FieldError::new(
                "apiThrottlingPolicy",
                format!("unknown advanced policy `{p}`; known: {}", policies.advanced.join(", ")),
            ));
        }
        if self.security_scheme.is_empty() {
            e.push(FieldError::new(
                "securityScheme",
                "name at least one scheme, e.g. oauth2",
            ));
        }
        for (i, s) in self.security_scheme.iter().enumerate() {
            if !SECURITY_SCHEMES.contains(&s.as_str()) {
                e.push(FieldError::new(
                    format!("securityScheme[{i}]"),
                    format!("unknown scheme `{s}`; known: {}", SECURITY_SCHEMES.join(", ")),
                ));
            }
        }
        match self.visibility.as_str() {
            "PUBLIC" | "PRIVATE" => {}
            "RESTRICTED" if !self.visible_roles.is_empty() => {}
            "RESTRICTED" => e.push(FieldError::new(
                "visibleRoles",
                "a RESTRICTED API must name at least one role",
            )),
            other => e.push(FieldError::new(
                "visibility",
                format!("`{other}` must be PUBLIC, PRIVATE or RESTRICTED"),
            )),
        }
        for (name, header) in [
            ("authorizationHeader", &self.authorization_header),
            ("apiKeyHeader", &self.api_key_header),
        ] {
            if let Some(h) = header
                && (h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            {
                e.push(FieldError::new(
                    name,
                    "must be a header name (letters, digits, - and _)",
                ));
            }
        }
        if let Some(cfg) = &self.endpoint_config {
            validate_endpoints(cfg, &mut e);
        }
        if !ENDPOINT_IMPLEMENTATION_TYPES.contains(&self.endpoint_implementation_type.as_str()) {
            let inline = if self.endpoint_implementation_type == "INLINE" {
                " (INLINE mediation scripts are not supported)"
            } else {
                ""
            };
            e.push(FieldError::new(
                "endpointImplementationType",
                format!(
                    "`{}` is not accepted{inline}; use one of {}",
                    self.endpoint_implementation_type,
                    ENDPOINT_IMPLEMENTATION_TYPES.join(", ")
                ),
            ));
        } else if websocket && self.is_mocked() {
            e.push(FieldError::new(
                "endpointImplementationType",
                "a WS API cannot be MOCKED_OAS: mocks answer HTTP calls, not WebSocket handshakes",
            ));
        }
        let scope_names: Vec<&str> = self.scopes.iter().map(|s| s.scope.name.as_str()).collect();
        for (i, s) in self.scopes.iter().enumerate() {
            if s.scope.name.trim().is_empty() || s.scope.name.contains(char::is_whitespace) {
                e.push(FieldError::new(
                    format!("scopes[{i}].scope.name"),
                    "must be a non-empty word without spaces",
                ));
            } else if scope_names.iter().filter(|n| **n == s.scope.name).count() > 1 {
                e.push(FieldError::new(
                    format!("scopes[{i}].scope.name"),
                    format!("`{}` is listed twice", s.scope.name),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, op) in self.operations.iter().enumerate() {
            let f = |field: &str| format!("operations[{i}].{field}");
            let verb = op.verb.to_ascii_uppercase();
            if !VERBS.contains(&verb.as_str()) {
                e.push(FieldError::new(
                    f("verb"),
                    format!("`{}` must be one of {}", op.verb, VERBS.join(", ")),
                ));
            } else if websocket && verb != "GET" {
                e.push(FieldError::new(
                    f("verb"),
                    format!(
                        "`{}`: the resources of a WS API are WebSocket handshakes, which are GET",
                        op.verb
                    ),
                ));
            }
            if let Err(m) = validate_target(&op.target) {
                e.push(FieldError::new(f("target"), m));
            }
            if !seen.insert((op.target.clone(), verb.clone())) {
                e.push(FieldError::new(
                    f("target"),
                    format!("{verb} {} is defined twice", op.target),
                ));
            }
            if !AUTH_TYPES.contains(&op.auth_type.as_str()) {
                e.push(FieldError::new(
                    f("authType"),
                    format!("`{}` must be one of {}", op.auth_type, AUTH_TYPES.join(", ")),
                ));
            }
            if !policies.advanced.contains(&op.throttling_policy) {
                e.push(FieldError::new(
                    f("throttlingPolicy"),
                    format!(
                        "unknown advanced policy `{}`; known: {}",
                        op.throttling_policy,
                        policies.advanced.join(", ")
                    ),
                ));
            }
            for (j, s) in op.scopes.iter().enumerate() {
                if !scope_names.contains(&s.as_str()) {
                    e.push(FieldError::new(
                        format!("operations[{i}].scopes[{j}]"),
                        format!("scope `{s}` is not defined in `scopes`"),
                    ));
                }
            }
        }
        e
    }

    /// Whether the gateway answers this API itself from its definition's examples
    /// (`endpointImplementationType: MOCKED_OAS`) instead of calling a backend.
    pub fn is_mocked(&self) -> bool {
        self.endpoint_implementation_type == "MOCKED_OAS"
    }

    /// Whether this is a WebSocket API (`type: WS`): the only kind whose resources the
    /// gateway lets a WebSocket upgrade through.
    pub fn is_websocket(&self) -> bool {
        self.api_type.eq_ignore_ascii_case("WS")
    }

    /// Upper-cases verbs and trims the context, so that stored APIs compare equal however
    /// they were written.
    pub fn normalize(&mut self) {
        self.context = normalize_context(&self.context);
        self.api_type = self.api_type.to_ascii_uppercase();
        self.endpoint_implementation_type = self.endpoint_implementation_type.trim().to_ascii_uppercase();
        for op in &mut self.operations {
            op.verb = op.verb.to_ascii_uppercase();
        }
    }
}

/// Trims whitespace and trailing slashes (`/pizza/` → `/pizza`).
pub fn normalize_context(context: &str) -> String {
    let t = context.trim();
    let trimmed = t.trim_end_matches('/');
    if trimmed.is_empty() {
        t.to_string()
    } else {
        trimmed.to_string()
    }
}

/// See [`Api::resolved_context`].
pub fn resolve_context(context: &str, version: &str) -> String {
    let context = normalize_context(context);
    if context.contains("{version}") {
        context.replace("{version}", version)
    } else {
        format!("{context}/{version}")
    }
}

/// The context without its `{version}` segment: what all versions of one API share.
pub fn base_context(context: &str) -> String {
    let c = normalize_context(context);
    let without: Vec<&str> = c.split('/').filter(|s| *s != "{version}").collect();
    let joined = without.join("/");
    if joined.is_empty() { "/".into() } else { joined }
}

fn validate_name(name: &str, e: &mut Vec<FieldError>) {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 60 {
        e.push(FieldError::new("name", "must be 1 to 60 characters"));
    } else if let Some(c) = n.chars().find(|c| "~!@#;:%^*()+={}|\\<>\"',&$[]/".contains(*c)) {
        e.push(FieldError::new("name", format!("must not contain `{c}`")));
    } else if let Some(c) = crate::text::hidden_or_reordering_char(name) {
        e.push(FieldError::new("name", crate::text::hidden_char_message(c)));
    }
}

fn validate_version(version: &str, e: &mut Vec<FieldError>) {
    if version.is_empty() || version.len() > 30 {
        e.push(FieldError::new("version", "must be 1 to 30 characters"));
    } else if !version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        e.push(FieldError::new("version", "may contain only letters, digits and . - _"));
    }
}

/// A context: starts with `/`, segments of letters, digits and `._-~`, `{version}` at
/// most once as a whole segment, and not just `/`.
pub fn validate_context(context: &str) -> Result<(), String> {
    let c = normalize_context(context);
    if !c.starts_with('/') {
        return Err("must start with /".into());
    }
    if c == "/" || c.len() > 200 {
        return Err("must name a path of 2 to 200 characters, e.g. /pizzashack".into());
    }
    let segments: Vec<&str> = c[1..].split('/').collect();
    if segments.iter().filter(|s| **s == "{version}").count() > 1 {
        return Err("may hold {version} only once".into());
    }
    for s in &segments {
        if s.is_empty() {
            return Err("must not contain empty segments (//)".into());
        }
        if *s != "{version}"
            && !s
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '~'))
        {
            return Err(format!(
                "segment `{s}` may contain only letters, digits and . _ - ~ (or be {{version}})"
            ));
        }
    }
    if segments.first() == Some(&"{version}") {
        return Err("must not start with {version}; put a name first, e.g. /pizzashack/{version}".into());
    }
    Ok(())
}

/// A resource template: starts with `/`, `{param}` segments with names, `*` only as the
/// last segment (`/files/*`).
pub fn validate_target(target: &str) -> Result<(), String> {
    if !target.starts_with('/') {
        return Err("must start with /".into());
    }
    if target.len() > 500 {
        return Err("must be at most 500 characters".into());
    }
    let segments: Vec<&str> = target[1..].split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        if *s == "*" {
            if i + 1 != segments.len() {
                return Err("* may only be the last segment".into());
            }
            continue;
        }
        if s.contains('{') || s.contains('}') {
            let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
                return Err(format!("segment `{s}` must be a whole {{parameter}}"));
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(format!("parameter `{s}` needs a name of letters, digits, _ - ."));
            }
            continue;
        }
        if s.chars().any(|c| c.is_whitespace() || matches!(c, '?' | '#' | '%')) {
            return Err(format!(
                "segment `{s}` contains a character not allowed in a path template"
            ));
        }
    }
    Ok(())
}

fn validate_endpoints(cfg: &EndpointConfig, e: &mut Vec<FieldError>) {
    let kind = cfg.endpoint_type.as_str();
    if !matches!(kind, "http" | "address" | "load_balance" | "failover") {
        e.push(FieldError::new(
            "endpointConfig.endpoint_type",
            format!("`{kind}` must be http, load_balance or failover"),
        ));
    }
    if cfg.production_endpoints.is_none() && cfg.sandbox_endpoints.is_none() {
        e.push(FieldError::new(
            "endpointConfig",
            "name production_endpoints, sandbox_endpoints or both",
        ));
    }
    let check = |e: &mut Vec<FieldError>, field: String, ep: &Endpoint| {
        let url = ep.url.trim();
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !ok {
            e.push(FieldError::new(
                format!("{field}.url"),
                format!("`{url}` must be an http:// or https:// URL with a host"),
            ));
        }
        if let Err(m) = ep.read_timeout_ms() {
            e.push(FieldError::new(format!("{field}.config.actionDuration"), m));
        }
    };
    for (name, eps) in [
        ("production_endpoints", &cfg.production_endpoints),
        ("sandbox_endpoints", &cfg.sandbox_endpoints),
    ] {
        match eps {
            Some(Endpoints::One(ep)) => check(e, format!("endpointConfig.{name}"), ep),
            Some(Endpoints::Many(list)) => {
                if list.is_empty() {
                    e.push(FieldError::new(
                        format!("endpointConfig.{name}"),
                        "must not be an empty list",
                    ));
                }
                for (i, ep) in list.iter().enumerate() {
                    check(e, format!("endpointConfig.{name}[{i}]"), ep);
                }
            }
            None => {}
        }
    }
    for (name, list) in [
        ("production_failovers", &cfg.production_failovers),
        ("sandbox_failovers", &cfg.sandbox_failovers),
    ] {
        for (i, ep) in list.iter().enumerate() {
            check(e, format!("endpointConfig.{name}[{i}]"), ep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies() -> KnownPolicies {
        KnownPolicies {
            subscription: vec!["Gold".into(), "Unlimited".into()],
            advanced: vec!["Unlimited".into(), "10KPerMin".into()],
        }
    }

    fn api(json: serde_json::Value) -> Api {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_minimal_api_gets_the_reference_defaults() {
        let a = api(serde_json::json!({"name": "Pizza", "context": "/pizza", "version": "1.0.0"}));
        assert_eq!(a.api_type, "HTTP");
        assert_eq!(a.transport, ["http", "https"]);
        assert_eq!(a.security_scheme, ["oauth2"]);
        assert_eq!(a.visibility, "PUBLIC");
        assert!(a.validate(&policies()).is_empty());
        assert_eq!(a.resolved_context(), "/pizza/1.0.0");
    }

    #[test]
    fn the_endpoint_implementation_type_is_endpoint_or_mocked_oas() {
        let a = api(serde_json::json!({"name": "Pizza", "context": "/pizza", "version": "1.0.0"}));
        assert_eq!(a.endpoint_implementation_type, "ENDPOINT");
        assert!(!a.is_mocked());
        let mut mocked = api(
            serde_json::json!({"name": "Pizza", "context": "/pizza", "version": "1.0.0",
            "endpointImplementationType": "mocked_oas"}),
        );
        mocked.normalize();
        assert!(mocked.is_mocked());
        assert!(mocked.validate(&policies()).is_empty(), "no endpointConfig needed");
        for (bad, says) in [
            ("INLINE", "INLINE mediation scripts"),
            ("PROXY", "ENDPOINT, MOCKED_OAS"),
        ] {
            let a = api(
                serde_json::json!({"name": "Pizza", "context": "/pizza", "version": "1.0.0",
                "endpointImplementationType": bad}),
            );
            let errors = a.validate(&policies());
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, "endpointImplementationType");
            assert!(errors[0].message.contains(says), "{}", errors[0].message);
        }
        let ws = api(
            serde_json::json!({"name": "Chat", "context": "/chat", "version": "1.0.0", "type": "WS",
            "endpointImplementationType": "MOCKED_OAS"}),
        );
        let errors = ws.validate(&policies());
        assert_eq!(errors[0].field, "endpointImplementationType", "{errors:?}");
    }

    #[test]
    fn contexts_resolve_and_validate() {
        assert_eq!(resolve_context("/pizza/{version}/v", "2"), "/pizza/2/v");
        assert_eq!(resolve_context("/pizza/", "2"), "/pizza/2");
        assert_eq!(base_context("/pizza/{version}"), "/pizza");
        assert!(validate_context("pizza").is_err());
        assert!(validate_context("/").is_err());
        assert!(validate_context("/a//b").is_err());
        assert!(validate_context("/{version}/x").is_err());
        assert!(validate_context("/a/{version}/{version}").is_err());
        assert!(validate_context("/a b").is_err());
        assert!(validate_context("/shop/{version}").is_ok());
    }

    #[test]
    fn targets_validate() {
        assert!(validate_target("/order/{orderId}").is_ok());
        assert!(validate_target("/files/*").is_ok());
        assert!(validate_target("/*/x").is_err());
        assert!(validate_target("/order/{}").is_err());
        assert!(validate_target("/order/x{id}").is_err());
        assert!(validate_target("order").is_err());
    }

    #[test]
    fn every_bad_field_is_named() {
        let a = api(serde_json::json!({
            "name": "Bad/Name", "context": "nope", "version": "1 0",
            "type": "GRAPHQL", "transport": ["ftp"], "policies": ["Platinum"],
            "apiThrottlingPolicy": "Huge", "securityScheme": ["magic"], "visibility": "RESTRICTED",
            "endpointConfig": {"endpoint_type": "carrier_pigeon", "production_endpoints": {"url": "ftp://x", "config": {"actionDuration": "soon"}}},
            "scopes": [{"scope": {"name": "read"}}],
            "operations": [
                {"target": "/a", "verb": "FETCH", "authType": "Maybe", "throttlingPolicy": "Huge", "scopes": ["write"]},
                {"target": "a", "verb": "GET"},
                {"target": "/b", "verb": "get"}, {"target": "/b", "verb": "GET"}
            ]
        }));
        let fields: Vec<String> = a.validate(&policies()).into_iter().map(|f| f.field).collect();
        for expected in [
            "name",
            "context",
            "version",
            "type",
            "transport[0]",
            "policies[0]",
            "apiThrottlingPolicy",
            "securityScheme[0]",
            "visibleRoles",
            "endpointConfig.endpoint_type",
            "endpointConfig.production_endpoints.url",
            "endpointConfig.production_endpoints.config.actionDuration",
            "operations[0].verb",
            "operations[0].authType",
            "operations[0].throttlingPolicy",
            "operations[0].scopes[0]",
            "operations[1].target",
            "operations[3].target",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} not reported in {fields:?}"
            );
        }
    }

    #[test]
    fn websocket_apis_are_served_and_their_resources_are_get_handshakes() {
        let a = api(serde_json::json!({
            "name": "Chat", "context": "/chat", "version": "1.0.0", "type": "ws",
            "operations": [{"target": "/rooms/{room}", "verb": "GET"}]
        }));
        assert!(a.is_websocket());
        assert!(a.validate(&policies()).is_empty(), "{:?}", a.validate(&policies()));
        let a = api(serde_json::json!({
            "name": "Chat", "context": "/chat", "version": "1.0.0", "type": "WS",
            "operations": [{"target": "/rooms", "verb": "GET"}, {"target": "/rooms", "verb": "POST"}]
        }));
        let errors = a.validate(&policies());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "operations[1].verb");
        assert!(errors[0].message.contains("WebSocket handshakes"), "{errors:?}");
        assert!(!api(serde_json::json!({"name": "P", "context": "/p", "version": "1"})).is_websocket());
    }

    #[test]
    fn load_balanced_endpoints_parse_as_lists() {
        let a = api(serde_json::json!({
            "name": "LB", "context": "/lb", "version": "v1",
            "endpointConfig": {"endpoint_type": "load_balance", "algoCombo": "org.apache.synapse.endpoints.algorithms.RoundRobin",
                "production_endpoints": [{"url": "http://a:1"}, {"url": "http://b:2", "config": {"actionDuration": 3000}}]}
        }));
        assert!(a.validate(&policies()).is_empty(), "{:?}", a.validate(&policies()));
        let cfg = a.endpoint_config.unwrap();
        let eps = cfg.production_endpoints.unwrap();
        assert_eq!(eps.as_vec().len(), 2);
        assert_eq!(eps.as_vec()[1].read_timeout_ms().unwrap(), Some(3000));
    }

    #[test]
    fn scope_descriptions_are_capped_at_the_references_512_characters() {
        let mut scope = Scope {
            id: None,
            name: "read:orders".into(),
            display_name: None,
            description: Some("é".repeat(512)),
            bindings: vec!["admin".into()],
        };
        assert!(scope.validate().is_empty());
        scope.description = Some("é".repeat(513));
        let errors = scope.validate();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "description");
    }
}
