//! The isolation suite of issue 27. Two tenants, `acme.com` and `globex.com`, are seeded
//! through the REST APIs with the same names everywhere (API name, context and version,
//! documents, revisions and deployments, applications, subscriptions, keys, environments,
//! every level of throttling policy, deny policies, shared scopes, key managers, users).
//! Then every operation of every OpenAPI document the node serves (Publisher, Developer
//! Portal, Admin, analytics) is called as acme's administrator, and the Developer Portal's
//! also as acme's subscriber, with globex's ids in every path parameter, in the query
//! parameters that name resources, and in bodies that name them; each mix of globex's
//! and acme's ids is tried. Each call must answer 404 — or, for a listing, only acme's
//! own, with acme's counts. Afterwards every GET of globex's resources (read as globex's
//! own callers) answers exactly as before, and the outbox holds no event of either tenant.
//!
//! [`TABLE`] says what each operation must do. An operation the documents have and the
//! table lacks (or the reverse) fails the test, so that a new operation is never left
//! out of the suite. Runs on SQLite and on PostgreSQL (skipped with the reason printed
//! when no server is reachable, unless `REQUIRE_POSTGRES=1`).

use crate::{READY, SECRET, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tollgate_testkit::{DocumentedOperation, TestDb};

/// A caller: the name they sign in with and their password.
#[derive(Clone, Debug)]
struct Who {
    name: String,
    password: String,
}

impl Who {
    fn new(name: &str, password: &str) -> Self {
        Self {
            name: name.to_string(),
            password: password.to_string(),
        }
    }
}

/// No credentials at all (the Developer Portal's anonymous catalogue is the super
/// tenant's).
fn anonymous() -> Who {
    Who::new("", "")
}

/// The super tenant's bootstrap administrator (see `NodeBuilder::serve`).
fn root() -> Who {
    Who::new("admin", "test-admin-password")
}

const ACME: &str = "acme.com";
const GLOBEX: &str = "globex.com";
const ADMIN_PASSWORD: &str = "tenant-admin-password";
const DEV_PASSWORD: &str = "tenant-dev-password";

/// The REST APIs under `/api/am`: (name, base path).
const APIS: [(&str, &str); 4] = [
    ("publisher", "/publisher/v4"),
    ("devportal", "/devportal/v3"),
    ("admin", "/admin/v4"),
    ("analytics", "/analytics/v1"),
];

/// What an operation must do when acme's caller uses it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Probe {
    /// Every mix of globex's and acme's ids in its id parameters (and id-naming body
    /// fields), with at least one of globex's: 404, and nothing changes.
    Foreign,
    /// A filter naming one of globex's resources (query parameter of a listing): 404 or
    /// an empty list.
    ForeignFilter,
    /// A listing of the caller's tenant, without foreign ids: 200, none of globex's ids
    /// or names in it, and the same count and total as globex's caller of the same role
    /// gets (both tenants were seeded alike).
    Own,
    /// Only super-tenant administrators may: 403 for acme's administrator, with acme's
    /// own tenant where the operation names one.
    SuperOnly,
    /// Creates in the caller's tenant from the body alone, so there is no foreign id to
    /// address; that the same names are accepted in both tenants is what seeding checks
    /// (globex is seeded after acme, with every name acme has). Not called here.
    Creates,
    /// Holds no tenant data (the built-in roles; validating a definition): not called.
    Neutral,
}

use Probe::*;

/// Every documented operation: (API, METHOD, path template, what it must do).
const TABLE: &[(&str, &str, &str, &[Probe])] = &[
    // Publisher.
    ("publisher", "GET", "/apis", &[Own]),
    ("publisher", "POST", "/apis", &[Creates]),
    ("publisher", "POST", "/apis/change-lifecycle", &[Foreign]),
    ("publisher", "POST", "/apis/copy-api", &[Foreign]),
    ("publisher", "POST", "/apis/import-openapi", &[Creates]),
    ("publisher", "GET", "/apis/export", &[Foreign]),
    ("publisher", "POST", "/apis/import", &[Creates]),
    ("publisher", "POST", "/apis/validate-openapi", &[Neutral]),
    ("publisher", "GET", "/apis/{apiId}", &[Foreign]),
    ("publisher", "PUT", "/apis/{apiId}", &[Foreign]),
    ("publisher", "DELETE", "/apis/{apiId}", &[Foreign]),
    ("publisher", "POST", "/apis/{apiId}/deploy-revision", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/deployments", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/documents", &[Foreign]),
    ("publisher", "POST", "/apis/{apiId}/documents", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/documents/{documentId}", &[Foreign]),
    ("publisher", "PUT", "/apis/{apiId}/documents/{documentId}", &[Foreign]),
    (
        "publisher",
        "DELETE",
        "/apis/{apiId}/documents/{documentId}",
        &[Foreign],
    ),
    (
        "publisher",
        "GET",
        "/apis/{apiId}/documents/{documentId}/content",
        &[Foreign],
    ),
    (
        "publisher",
        "POST",
        "/apis/{apiId}/documents/{documentId}/content",
        &[Foreign],
    ),
    ("publisher", "POST", "/apis/{apiId}/generate-mock-scripts", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/generated-mock-scripts", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/lifecycle-history", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/lifecycle-state", &[Foreign]),
    ("publisher", "POST", "/apis/{apiId}/restore-revision", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/revisions", &[Foreign]),
    ("publisher", "POST", "/apis/{apiId}/revisions", &[Foreign]),
    ("publisher", "GET", "/apis/{apiId}/revisions/{revisionId}", &[Foreign]),
    (
        "publisher",
        "DELETE",
        "/apis/{apiId}/revisions/{revisionId}",
        &[Foreign],
    ),
    ("publisher", "GET", "/apis/{apiId}/swagger", &[Foreign]),
    ("publisher", "PUT", "/apis/{apiId}/swagger", &[Foreign]),
    ("publisher", "POST", "/apis/{apiId}/undeploy-revision", &[Foreign]),
    ("publisher", "GET", "/scopes", &[Own]),
    ("publisher", "POST", "/scopes", &[Creates]),
    ("publisher", "GET", "/scopes/{scopeId}", &[Foreign]),
    ("publisher", "HEAD", "/scopes/{scopeId}", &[Foreign]),
    ("publisher", "PUT", "/scopes/{scopeId}", &[Foreign]),
    ("publisher", "DELETE", "/scopes/{scopeId}", &[Foreign]),
    ("publisher", "GET", "/scopes/{scopeId}/usage", &[Foreign]),
    ("publisher", "GET", "/subscriptions", &[Own, Foreign]),
    ("publisher", "POST", "/subscriptions/block-subscription", &[Foreign]),
    ("publisher", "POST", "/subscriptions/unblock-subscription", &[Foreign]),
    ("publisher", "GET", "/throttling-policies/{policyLevel}", &[Own]),
    // Developer Portal.
    ("devportal", "GET", "/apis", &[Own]),
    ("devportal", "GET", "/apis/{apiId}", &[Foreign]),
    ("devportal", "GET", "/apis/{apiId}/documents", &[Foreign]),
    ("devportal", "GET", "/apis/{apiId}/documents/{documentId}", &[Foreign]),
    (
        "devportal",
        "GET",
        "/apis/{apiId}/documents/{documentId}/content",
        &[Foreign],
    ),
    ("devportal", "GET", "/apis/{apiId}/ratings", &[Foreign]),
    ("devportal", "GET", "/apis/{apiId}/swagger", &[Foreign]),
    ("devportal", "PUT", "/apis/{apiId}/user-rating", &[Foreign]),
    ("devportal", "GET", "/applications", &[Own]),
    ("devportal", "GET", "/applications/export", &[Foreign]),
    ("devportal", "POST", "/applications/import", &[Creates]),
    ("devportal", "POST", "/applications", &[Creates]),
    ("devportal", "GET", "/applications/{applicationId}", &[Foreign]),
    ("devportal", "PUT", "/applications/{applicationId}", &[Foreign]),
    ("devportal", "DELETE", "/applications/{applicationId}", &[Foreign]),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/api-keys/{keyType}/generate",
        &[Foreign],
    ),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/api-keys/{keyType}/revoke",
        &[Foreign],
    ),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/generate-keys",
        &[Foreign],
    ),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/map-keys",
        &[Foreign],
    ),
    (
        "devportal",
        "GET",
        "/applications/{applicationId}/oauth-keys",
        &[Foreign],
    ),
    (
        "devportal",
        "GET",
        "/applications/{applicationId}/oauth-keys/{keyMappingId}",
        &[Foreign],
    ),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/oauth-keys/{keyMappingId}/generate-token",
        &[Foreign],
    ),
    (
        "devportal",
        "POST",
        "/applications/{applicationId}/oauth-keys/{keyMappingId}/regenerate-secret",
        &[Foreign],
    ),
    ("devportal", "POST", "/signup", &[Creates]),
    ("devportal", "GET", "/subscriptions", &[Own, ForeignFilter]),
    ("devportal", "POST", "/subscriptions", &[Foreign]),
    ("devportal", "GET", "/subscriptions/{subscriptionId}", &[Foreign]),
    ("devportal", "PUT", "/subscriptions/{subscriptionId}", &[Foreign]),
    ("devportal", "DELETE", "/subscriptions/{subscriptionId}", &[Foreign]),
    ("devportal", "GET", "/throttling-policies/{policyLevel}", &[Own]),
    // Admin.
    ("admin", "GET", "/environments", &[Own]),
    ("admin", "POST", "/environments", &[Creates]),
    ("admin", "GET", "/environments/{environmentId}", &[Foreign]),
    ("admin", "PUT", "/environments/{environmentId}", &[Foreign]),
    ("admin", "DELETE", "/environments/{environmentId}", &[Foreign]),
    ("admin", "GET", "/key-managers", &[Own]),
    ("admin", "POST", "/key-managers", &[Creates]),
    ("admin", "GET", "/key-managers/{keyManagerId}", &[Foreign]),
    ("admin", "PUT", "/key-managers/{keyManagerId}", &[Foreign]),
    ("admin", "DELETE", "/key-managers/{keyManagerId}", &[Foreign]),
    ("admin", "GET", "/roles", &[Neutral]),
    ("admin", "GET", "/tenants", &[Own]),
    ("admin", "POST", "/tenants", &[SuperOnly]),
    ("admin", "GET", "/tenants/{domain}", &[Foreign]),
    ("admin", "POST", "/tenants/{domain}/activate", &[Foreign, SuperOnly]),
    ("admin", "POST", "/tenants/{domain}/deactivate", &[Foreign, SuperOnly]),
    ("admin", "GET", "/user-stores", &[Own]),
    ("admin", "POST", "/user-stores", &[Creates]),
    ("admin", "POST", "/user-stores/test-connection", &[Neutral]),
    ("admin", "GET", "/user-stores/{userStoreId}", &[Foreign]),
    ("admin", "PUT", "/user-stores/{userStoreId}", &[Foreign]),
    ("admin", "DELETE", "/user-stores/{userStoreId}", &[Foreign]),
    ("admin", "GET", "/throttling/deny-policies", &[Own]),
    ("admin", "POST", "/throttling/deny-policies", &[Creates]),
    ("admin", "GET", "/throttling/deny-policy/{conditionId}", &[Foreign]),
    ("admin", "DELETE", "/throttling/deny-policy/{conditionId}", &[Foreign]),
    ("admin", "PATCH", "/throttling/deny-policy/{conditionId}", &[Foreign]),
    ("admin", "GET", "/throttling/policies/advanced", &[Own]),
    ("admin", "POST", "/throttling/policies/advanced", &[Creates]),
    ("admin", "GET", "/throttling/policies/advanced/{policyId}", &[Foreign]),
    ("admin", "PUT", "/throttling/policies/advanced/{policyId}", &[Foreign]),
    (
        "admin",
        "DELETE",
        "/throttling/policies/advanced/{policyId}",
        &[Foreign],
    ),
    ("admin", "GET", "/throttling/policies/application", &[Own]),
    ("admin", "POST", "/throttling/policies/application", &[Creates]),
    (
        "admin",
        "GET",
        "/throttling/policies/application/{policyId}",
        &[Foreign],
    ),
    (
        "admin",
        "PUT",
        "/throttling/policies/application/{policyId}",
        &[Foreign],
    ),
    (
        "admin",
        "DELETE",
        "/throttling/policies/application/{policyId}",
        &[Foreign],
    ),
    ("admin", "GET", "/throttling/policies/custom", &[Own]),
    ("admin", "POST", "/throttling/policies/custom", &[Creates]),
    ("admin", "GET", "/throttling/policies/custom/{ruleId}", &[Foreign]),
    ("admin", "PUT", "/throttling/policies/custom/{ruleId}", &[Foreign]),
    ("admin", "DELETE", "/throttling/policies/custom/{ruleId}", &[Foreign]),
    ("admin", "GET", "/throttling/policies/subscription", &[Own]),
    ("admin", "GET", "/throttling/policies/export", &[Foreign]),
    ("admin", "POST", "/throttling/policies/import", &[Creates]),
    ("admin", "POST", "/throttling/policies/subscription", &[Creates]),
    (
        "admin",
        "GET",
        "/throttling/policies/subscription/{policyId}",
        &[Foreign],
    ),
    (
        "admin",
        "PUT",
        "/throttling/policies/subscription/{policyId}",
        &[Foreign],
    ),
    (
        "admin",
        "DELETE",
        "/throttling/policies/subscription/{policyId}",
        &[Foreign],
    ),
    ("admin", "GET", "/users", &[Own]),
    ("admin", "POST", "/users", &[Creates]),
    ("admin", "GET", "/users/{username}", &[Foreign]),
    ("admin", "DELETE", "/users/{username}", &[Foreign]),
    ("admin", "PATCH", "/users/{username}", &[Foreign]),
    // Analytics: a filter on another tenant's API or application finds nothing (history
    // of deleted resources stays queryable, so an unknown id is not a 404).
    ("analytics", "GET", "/usage", &[Own, ForeignFilter]),
];

/// Query parameters that name a resource (and so take the other tenant's id).
const ID_QUERY_PARAMS: [&str; 5] = ["apiId", "applicationId", "revisionId", "subscriptionId", "policyId"];

/// Values for parameters that name no resource.
fn fixed_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "keyType" => "PRODUCTION",
        "policyLevel" => "subscription",
        "action" => "Deprecate",
        "newVersion" => "9.9.9",
        "blockState" => "BLOCKED",
        _ => return None,
    })
}

/// Body fields that name resources (and so take either tenant's id, like parameters).
fn body_slots(api: &str, method: &str, path: &str) -> &'static [&'static str] {
    match (api, method, path) {
        ("devportal", "POST", "/subscriptions") => &["applicationId", "apiId"],
        _ => &[],
    }
}

/// A request body.
#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    /// multipart/form-data text fields.
    Form(Vec<(&'static str, String)>),
}

/// A small OpenAPI definition of the seeded API.
fn definition() -> String {
    json!({"openapi": "3.0.1", "info": {"title": "Pets", "version": "1.0.0"},
        "paths": {"/pets": {"get": {"responses": {"200": {"description": "ok"}}}}}})
    .to_string()
}

fn limit() -> Value {
    json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 100}})
}

fn api_body() -> Value {
    json!({
        "name": "Pets", "context": "/pets", "version": "1.0.0",
        "policies": ["Unlimited", "Premium"],
        "securityScheme": ["oauth2", "api_key"],
        "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": "http://127.0.0.1:9/v1"}},
        "operations": [{"target": "/pets", "verb": "GET"}],
        "scopes": [{"scope": {"name": "pets_read", "bindings": ["subscriber"]}, "shared": true}]
    })
}

fn environment_body(name: &str) -> Value {
    json!({"name": name, "displayName": name, "type": "hybrid",
        "vhosts": [{"host": format!("{}.example.com", name.to_lowercase())}]})
}

fn key_manager_body(name: &str) -> Value {
    json!({"name": name, "type": "Okta", "issuer": format!("https://{}.example.com", name.to_lowercase()),
        "wellKnownEndpoint": format!("https://{}.example.com/w", name.to_lowercase())})
}

fn document_body() -> Value {
    json!({"name": "Guide", "type": "HOWTO", "sourceType": "INLINE", "visibility": "API_LEVEL"})
}

/// The body acme's caller sends to an operation, valid for it, with `id` giving each
/// id-naming field (from whichever tenant the call's mix picks).
fn body_for(api: &str, method: &str, path: &str, id: &dyn Fn(&str) -> String) -> Body {
    let j = Body::Json;
    match (api, method, path) {
        ("publisher", "PUT", "/apis/{apiId}") => j(api_body()),
        ("publisher", "POST", "/apis/{apiId}/deploy-revision" | "/apis/{apiId}/undeploy-revision") => {
            j(json!([{"name": "Default", "displayOnDevportal": true}]))
        }
        ("publisher", "POST" | "PUT", "/apis/{apiId}/documents" | "/apis/{apiId}/documents/{documentId}") => {
            j(document_body())
        }
        ("publisher", "POST", "/apis/{apiId}/documents/{documentId}/content") => {
            Body::Form(vec![("inlineContent", "Rewritten by another tenant".into())])
        }
        ("publisher", "POST", "/apis/{apiId}/revisions") => j(json!({"description": "another tenant's"})),
        ("publisher", "PUT", "/apis/{apiId}/swagger") => Body::Form(vec![("apiDefinition", definition())]),
        ("publisher", "PUT", "/scopes/{scopeId}") => {
            j(json!({"name": "pets_read", "description": "changed", "bindings": ["admin"]}))
        }
        ("devportal", "PUT", "/apis/{apiId}/user-rating") => j(json!({"rating": 1})),
        ("devportal", "PUT", "/applications/{applicationId}") => {
            j(json!({"name": "Shop", "throttlingPolicy": "Unlimited", "description": "changed"}))
        }
        ("devportal", "POST", "/applications/{applicationId}/api-keys/{keyType}/generate") => j(json!({})),
        ("devportal", "POST", "/applications/{applicationId}/api-keys/{keyType}/revoke") => {
            j(json!({"apikey": id("apikey")}))
        }
        ("devportal", "POST", "/applications/{applicationId}/generate-keys") => j(json!({
            "keyType": "SANDBOX", "grantTypesToBeSupported": ["client_credentials"]})),
        ("devportal", "POST", "/applications/{applicationId}/map-keys") => j(json!({
            "consumerKey": "another-tenants-client", "keyType": "SANDBOX", "keyManager": "Auth"})),
        ("devportal", "POST", "/applications/{applicationId}/oauth-keys/{keyMappingId}/generate-token") => {
            j(json!({"consumerSecret": id("consumerSecret")}))
        }
        ("devportal", "POST", "/subscriptions") => j(json!({
            "applicationId": id("applicationId"), "apiId": id("apiId"), "throttlingPolicy": "Premium"})),
        ("devportal", "PUT", "/subscriptions/{subscriptionId}") => j(json!({
            "applicationId": id("applicationId"), "apiId": id("apiId"), "throttlingPolicy": "Unlimited"})),
        ("admin", "POST", "/tenants") => j(json!({
            "domain": "initech.com", "adminUsername": "admin", "adminPassword": ADMIN_PASSWORD,
            "email": "admin@initech.com"})),
        ("admin", "PUT", "/environments/{environmentId}") => j(json!({
            "name": "Staging", "displayName": "Changed", "type": "hybrid",
            "vhosts": [{"host": "changed.example.com"}]})),
        ("admin", "PUT", "/key-managers/{keyManagerId}") => j(json!({
            "name": "Auth", "type": "Okta", "issuer": "https://changed.example.com",
            "wellKnownEndpoint": "https://changed.example.com/w", "enabled": false})),
        ("admin", "PATCH", "/throttling/deny-policy/{conditionId}") => j(json!({"conditionStatus": false})),
        ("admin", "PUT", "/throttling/policies/advanced/{policyId}") => {
            j(json!({"policyName": "AdvGold", "description": "changed", "defaultLimit": limit()}))
        }
        ("admin", "PUT", "/throttling/policies/application/{policyId}") => {
            j(json!({"policyName": "AppGold", "description": "changed", "defaultLimit": limit()}))
        }
        ("admin", "PUT", "/throttling/policies/custom/{ruleId}") => j(json!({
            "policyName": "RuleGold", "description": "changed", "keyTemplate": "$userId", "defaultLimit": limit()})),
        ("admin", "PUT", "/throttling/policies/subscription/{policyId}") => {
            j(json!({"policyName": "Premium", "description": "changed", "defaultLimit": limit()}))
        }
        ("admin", "PATCH", "/users/{username}") => j(json!({"enabled": false})),
        ("admin", "PUT", "/user-stores/{userStoreId}") => j(user_store_body("ldap://192.0.2.11:389")),
        _ => Body::None,
    }
}

/// Answers of the REST APIs.
struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// A client of the node's REST APIs (`http://addr/api/am…`).
struct Rest {
    http: reqwest::Client,
    mgmt: std::net::SocketAddr,
}

impl Rest {
    async fn call(&self, who: &Who, method: &str, path: &str, query: &[(String, String)], body: &Body) -> Answer {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("http://{}/api/am{path}", self.mgmt))
            .query(query);
        if !who.name.is_empty() {
            req = req.basic_auth(&who.name, Some(&who.password));
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Form(fields) => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in fields {
                    form = form.text(*k, v.clone());
                }
                req.multipart(form)
            }
        };
        let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Answer {
            status: r.status().as_u16(),
            text: r.text().await.unwrap_or_default(),
        }
    }

    /// A seeding call that must answer `want`; its JSON.
    async fn must(&self, who: &Who, method: &str, path: &str, body: Body, want: u16) -> Value {
        let a = self.call(who, method, path, &[], &body).await;
        assert_eq!(a.status, want, "{} {method} {path}: {}", who.name, a.text);
        a.json()
    }
}

/// What one tenant was seeded with: its callers, the ids of its resources by the
/// parameter names that address them, and every string that identifies it.
struct Tenant {
    domain: &'static str,
    admin: Who,
    dev: Who,
    /// Parameter name (`apiId`, `policyId:advanced`, `dev:applicationId`…) → value.
    ids: BTreeMap<String, String>,
}

impl Tenant {
    fn id(&self, key: &str) -> String {
        self.ids
            .get(key)
            .unwrap_or_else(|| panic!("{} was seeded without `{key}`", self.domain))
            .clone()
    }
}

/// A directory registration (never connected to: registering does not connect).
fn user_store_body(url: &str) -> Value {
    json!({"domain": "CORPDIR", "urls": [url], "bindDn": "cn=tollgate,dc=example,dc=com",
        "bindPassword": "directory-password", "userSearchBase": "ou=people,dc=example,dc=com"})
}

/// Creates the tenant with its administrator (as the super tenant's administrator).
async fn create_tenant(rest: &Rest, domain: &'static str) -> Tenant {
    rest.must(
        &root(),
        "POST",
        "/admin/v4/tenants",
        Body::Json(
            json!({"domain": domain, "adminUsername": "admin", "adminPassword": ADMIN_PASSWORD,
            "email": format!("admin@{domain}")}),
        ),
        201,
    )
    .await;
    Tenant {
        domain,
        admin: Who::new(&format!("admin@{domain}"), ADMIN_PASSWORD),
        dev: Who::new(&format!("dev@{domain}"), DEV_PASSWORD),
        ids: BTreeMap::from([("domain".to_string(), domain.to_string())]),
    }
}

/// Seeds a tenant through the REST APIs, as its own administrator and subscriber: the
/// same names in every tenant (plus one user named after the tenant, the only resource
/// addressed by name alone). Every create must answer 201/200, which is the check that
/// the other tenant's identical names do not clash.
async fn seed(rest: &Rest, t: &mut Tenant) {
    let admin = t.admin.clone();
    let a = &admin;
    let mut ids = BTreeMap::new();
    let mut put = |k: &str, v: &Value| {
        let v = v.as_str().unwrap_or_else(|| panic!("{k}: {v}")).to_string();
        ids.insert(k.to_string(), v);
    };
    // Admin: users, an environment, policies of every level, deny policies, a key manager.
    for (name, roles) in [
        ("dev", json!(["subscriber"])),
        (t.domain.split('.').next().unwrap(), json!(["creator"])),
    ] {
        let password = if name == "dev" { DEV_PASSWORD } else { ADMIN_PASSWORD };
        rest.must(
            a,
            "POST",
            "/admin/v4/users",
            Body::Json(json!({"username": name, "password": password, "roles": roles})),
            201,
        )
        .await;
    }
    put("username", &json!(t.domain.split('.').next().unwrap()));
    let env = rest
        .must(
            a,
            "POST",
            "/admin/v4/environments",
            Body::Json(environment_body("Staging")),
            201,
        )
        .await;
    put("environmentId", &env["id"]);
    for (level, name, key, extra) in [
        ("subscription", "Premium", "policyId:subscription", json!({})),
        ("application", "AppGold", "policyId:application", json!({})),
        ("advanced", "AdvGold", "policyId:advanced", json!({})),
        ("custom", "RuleGold", "ruleId", json!({"keyTemplate": "$userId"})),
    ] {
        let mut body = json!({"policyName": name, "defaultLimit": limit()});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let p = rest
            .must(
                a,
                "POST",
                &format!("/admin/v4/throttling/policies/{level}"),
                Body::Json(body),
                201,
            )
            .await;
        put(key, &p["policyId"]);
    }
    let deny = rest
        .must(
            a,
            "POST",
            "/admin/v4/throttling/deny-policies",
            Body::Json(json!({"conditionType": "USER", "conditionValue": "mallory"})),
            201,
        )
        .await;
    put("conditionId", &deny["conditionId"]);
    rest.must(
        a,
        "POST",
        "/admin/v4/throttling/deny-policies",
        Body::Json(json!({"conditionType": "IPRANGE",
        "conditionValue": {"startingIp": "10.0.0.1", "endingIp": "10.0.0.9"}})),
        201,
    )
    .await;
    let km = rest
        .must(
            a,
            "POST",
            "/admin/v4/key-managers",
            Body::Json(key_manager_body("Auth")),
            201,
        )
        .await;
    put("keyManagerId", &km["id"]);
    let store = rest
        .must(
            a,
            "POST",
            "/admin/v4/user-stores",
            Body::Json(user_store_body("ldap://192.0.2.10:389")),
            201,
        )
        .await;
    put("userStoreId", &store["id"]);

    // Publisher: a shared scope, an API using it, published, two revisions (the first
    // deployed to Default and Staging), a document with content.
    let scope = rest
        .must(
            a,
            "POST",
            "/publisher/v4/scopes",
            Body::Json(json!({"name": "pets_read",
        "displayName": "Read pets", "bindings": ["subscriber"]})),
            201,
        )
        .await;
    put("scopeId", &scope["id"]);
    let api = rest
        .must(a, "POST", "/publisher/v4/apis", Body::Json(api_body()), 201)
        .await;
    let api_id = api["id"].as_str().unwrap().to_string();
    put("apiId", &api["id"]);
    let p = format!("/publisher/v4/apis/{api_id}");
    rest.must(
        a,
        "POST",
        &format!("/publisher/v4/apis/change-lifecycle?apiId={api_id}&action=Publish"),
        Body::None,
        200,
    )
    .await;
    let rev = rest
        .must(
            a,
            "POST",
            &format!("{p}/revisions"),
            Body::Json(json!({"description": "first"})),
            201,
        )
        .await;
    let deployed = rev["id"].as_str().unwrap().to_string();
    rest.must(
        a,
        "POST",
        &format!("{p}/deploy-revision?revisionId={deployed}"),
        Body::Json(json!([{"name": "Default"}, {"name": "Staging"}])),
        201,
    )
    .await;
    let spare = rest
        .must(
            a,
            "POST",
            &format!("{p}/revisions"),
            Body::Json(json!({"description": "spare"})),
            201,
        )
        .await;
    put("revisionId", &spare["id"]);
    let doc = rest
        .must(a, "POST", &format!("{p}/documents"), Body::Json(document_body()), 201)
        .await;
    put("documentId", &doc["documentId"]);
    rest.must(
        a,
        "POST",
        &format!("{p}/documents/{}/content", doc["documentId"].as_str().unwrap()),
        Body::Form(vec![("inlineContent", format!("How to use {}'s pets", "the tenant"))]),
        201,
    )
    .await;
    rest.must(a, "POST", &format!("{p}/generate-mock-scripts"), Body::None, 200)
        .await;

    // Developer Portal, once as the administrator and once as the subscriber (both are
    // owners of the same-named application in each tenant): an application subscribed
    // to the API with OAuth2 keys, mapped keys of the key manager and an API key; a
    // rating.
    for (who, prefix) in [(t.admin.clone(), ""), (t.dev.clone(), "dev:")] {
        let w = &who;
        let app = rest
            .must(
                w,
                "POST",
                "/devportal/v3/applications",
                Body::Json(json!({"name": "Shop", "throttlingPolicy": "AppGold"})),
                201,
            )
            .await;
        let app_id = app["applicationId"].as_str().unwrap().to_string();
        put(&format!("{prefix}applicationId"), &app["applicationId"]);
        let sub = rest
            .must(
                w,
                "POST",
                "/devportal/v3/subscriptions",
                Body::Json(json!({
            "applicationId": app_id, "apiId": api_id, "throttlingPolicy": "Premium"})),
                201,
            )
            .await;
        put(&format!("{prefix}subscriptionId"), &sub["subscriptionId"]);
        let d = format!("/devportal/v3/applications/{app_id}");
        let keys = rest
            .must(
                w,
                "POST",
                &format!("{d}/generate-keys"),
                Body::Json(json!({
            "keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials", "password"]})),
                200,
            )
            .await;
        put(&format!("{prefix}keyMappingId"), &keys["keyMappingId"]);
        put(&format!("{prefix}consumerSecret"), &keys["consumerSecret"]);
        put(&format!("{prefix}consumerKey"), &keys["consumerKey"]);
        // (A consumer key of the same-named key manager in both tenants: `namesakes_in_use`.)
        rest.must(
            w,
            "POST",
            &format!("{d}/map-keys"),
            Body::Json(json!({
            "consumerKey": format!("{prefix}shop-web-{}", t.domain).replace(':', "-"), "keyType": "SANDBOX",
            "keyManager": "Auth"})),
            200,
        )
        .await;
        let key = rest
            .must(
                w,
                "POST",
                &format!("{d}/api-keys/PRODUCTION/generate"),
                Body::Json(json!({})),
                200,
            )
            .await;
        put(&format!("{prefix}apikey"), &key["apikey"]);
        rest.must(
            w,
            "PUT",
            &format!("/devportal/v3/apis/{api_id}/user-rating"),
            Body::Json(json!({"rating": if prefix.is_empty() { 4 } else { 5 }})),
            200,
        )
        .await;
    }
    t.ids.extend(ids);
}

/// The key of `param` in a tenant's ids, for a call by `dev` (the subscriber) or not:
/// `None` for parameters that name no resource.
fn slot_key(path: &str, param: &str, dev: bool) -> Option<String> {
    if fixed_value(param).is_some() {
        return None;
    }
    let key = match param {
        "policyId" => {
            // The export finds a policy of any level by its id.
            let level = ["subscription", "application", "advanced"]
                .into_iter()
                .find(|l| {
                    path.contains(&format!("/policies/{l}/")) || (path.ends_with("/export") && *l == "subscription")
                })
                .unwrap_or_else(|| panic!("which policy level is {path}?"));
            format!("policyId:{level}")
        }
        other => other.to_string(),
    };
    let owned = [
        "applicationId",
        "subscriptionId",
        "keyMappingId",
        "consumerSecret",
        "consumerKey",
        "apikey",
    ];
    Some(if dev && owned.contains(&key.as_str()) {
        format!("dev:{key}")
    } else {
        key
    })
}

/// One call of the table: the path and query filled in, and its body.
struct Call {
    label: String,
    path: String,
    query: Vec<(String, String)>,
    body: Body,
}

/// Whose ids a call mixes: the caller's tenant's, another's, and whether the caller is
/// the subscriber (whose applications, subscriptions and keys it then names).
struct Sides<'a> {
    mine: &'a Tenant,
    other: &'a Tenant,
    dev: bool,
}

/// The call of `op` for one mix: `foreign` holds the slots that take the other tenant's
/// ids (the others take the caller's). Slots are path parameters naming resources, query
/// parameters in [`ID_QUERY_PARAMS`] and the operation's [`body_slots`].
fn build_call(
    api: &str,
    base: &str,
    op: &DocumentedOperation,
    slots: &[String],
    foreign: &BTreeSet<String>,
    sides: &Sides,
) -> Call {
    let (acme, dev) = (sides.mine, sides.dev);
    let pick = |slot: &str| if foreign.contains(slot) { sides.other } else { acme };
    // Values that follow the call's first slot (a consumer secret goes with its
    // application).
    let owner = slots.first().map(|s| pick(s)).unwrap_or(acme);
    let value = |name: &str| -> String {
        match slot_key(&op.path, name, dev) {
            None => fixed_value(name).unwrap().to_string(),
            Some(key) if slots.contains(&name.to_string()) => pick(name).id(&key),
            Some(key) => owner.id(&key),
        }
    };
    let mut path = op.path.clone();
    for p in op.params_in("path") {
        path = path.replace(&format!("{{{p}}}"), &value(p));
    }
    let mut query = Vec::new();
    for (name, at, required) in &op.params {
        if at != "query" {
            continue;
        }
        if slots.contains(name) || (*required && fixed_value(name).is_some()) {
            query.push((name.clone(), value(name)));
        } else if *required {
            panic!(
                "{api} {} {}: required query parameter `{name}` has no value in the suite",
                op.method, op.path
            );
        }
    }
    let body = body_for(api, &op.method, &op.path, &value);
    let whose = slots
        .iter()
        .map(|s| format!("{s}={}", if foreign.contains(s) { "other" } else { "own" }))
        .collect::<Vec<_>>()
        .join(",");
    Call {
        label: format!("{api} {} {} [{whose}]", op.method, op.path),
        path: format!("{base}{path}"),
        query,
        body,
    }
}

/// The id slots of an operation (see [`build_call`]).
fn slots_of(api: &str, op: &DocumentedOperation, dev: bool) -> Vec<String> {
    let mut slots: Vec<String> = op
        .params
        .iter()
        .filter(|(name, at, _)| match at.as_str() {
            "path" => slot_key(&op.path, name, dev).is_some(),
            "query" => ID_QUERY_PARAMS.contains(&name.as_str()),
            _ => false,
        })
        .map(|(name, _, _)| name.clone())
        .collect();
    slots.extend(body_slots(api, &op.method, &op.path).iter().map(|s| s.to_string()));
    slots
}

/// Every non-empty subset of `slots` (the ones that take globex's ids).
fn mixes(slots: &[String]) -> Vec<BTreeSet<String>> {
    (1..(1u32 << slots.len()))
        .map(|bits| {
            slots
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, s)| s.clone())
                .collect()
        })
        .collect()
}

/// The node's served documents: API name → (base path, operations).
async fn documents(rest: &Rest) -> Vec<(&'static str, &'static str, Vec<DocumentedOperation>)> {
    let mut out = Vec::new();
    for (api, base) in APIS {
        let (status, doc) = tollgate_testkit::get_json(format!("http://{}/api/am{base}/openapi.json", rest.mgmt)).await;
        assert_eq!(status, 200, "{api}'s document is served");
        out.push((api, base, tollgate_testkit::documented_operations(&doc)));
    }
    out
}

/// Keys of answers that change with time alone (gateway liveness, JWKS refreshes),
/// left out of fingerprints.
const VOLATILE: [&str; 5] = [
    "liveGatewayCount",
    "deployedGatewayCount",
    "failedGatewayCount",
    "successDeployedTime",
    "jwksFetchedTime",
];

fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in VOLATILE {
                m.remove(k);
            }
            m.values_mut().for_each(strip_volatile);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_volatile),
        _ => {}
    }
}

/// What a tenant's own callers read: every documented GET, with the tenant's ids, as
/// its administrator (and the Developer Portal's also as its subscriber); analytics
/// over the fixed window `window`. Status and body (JSON without [`VOLATILE`] keys).
async fn fingerprint(
    rest: &Rest,
    docs: &[(&'static str, &'static str, Vec<DocumentedOperation>)],
    t: &Tenant,
    window: &[(String, String)],
) -> BTreeMap<String, (u16, Value)> {
    let mut out = BTreeMap::new();
    for (api, base, ops) in docs {
        for op in ops.iter().filter(|o| o.method == "GET") {
            let callers: &[bool] = if *api == "devportal" { &[false, true] } else { &[false] };
            for &dev in callers {
                let who = if dev { &t.dev } else { &t.admin };
                let mut path = op.path.clone();
                for p in op.params_in("path") {
                    let v = match slot_key(&op.path, p, dev) {
                        Some(key) => t.id(&key),
                        None => fixed_value(p).unwrap().to_string(),
                    };
                    path = path.replace(&format!("{{{p}}}"), &v);
                }
                let mut query = if *api == "analytics" {
                    window.to_vec()
                } else {
                    Vec::new()
                };
                // Ids a GET takes in its query (`/apis/export?apiId=`) are the tenant's own.
                for (name, at, _) in &op.params {
                    if at == "query"
                        && ID_QUERY_PARAMS.contains(&name.as_str())
                        && let Some(key) = slot_key(&op.path, name, dev)
                    {
                        query.push((name.clone(), t.id(&key)));
                    }
                }
                let a = rest
                    .call(who, "GET", &format!("{base}{path}"), &query, &Body::None)
                    .await;
                let mut v = serde_json::from_str(&a.text).unwrap_or(Value::String(a.text.clone()));
                strip_volatile(&mut v);
                out.insert(format!("{api} GET {path} as {}", who.name), (a.status, v));
            }
        }
    }
    // The tenant as the platform's administrator sees it.
    let a = rest
        .call(
            &root(),
            "GET",
            &format!("/admin/v4/tenants/{}", t.domain),
            &[],
            &Body::None,
        )
        .await;
    out.insert(format!("admin GET /tenants/{} as root", t.domain), (a.status, a.json()));
    out
}

/// A random UUID (an id no tenant has).
fn uuid_v4() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `text` with each of the tenant's ids replaced by its name (`<apiId>`), so that answers
/// about two tenants' resources compare.
fn masked(text: &str, t: &Tenant) -> String {
    let mut out = text.to_string();
    // Longest first: no id is a part of a longer one by then.
    let mut ids: Vec<(&String, &String)> = t.ids.iter().collect();
    ids.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (k, v) in ids {
        out = out.replace(v.as_str(), &format!("<{k}>"));
    }
    out
}

/// Every UUID-shaped string in `text`.
fn uuids(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut out = BTreeSet::new();
    let shape = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    for i in 0..b.len().saturating_sub(35) {
        if shape(&b[i..i + 36]) {
            out.insert(text[i..i + 36].to_string());
        }
    }
    out
}

/// The strings that identify a tenant's resources: every id its callers read, its
/// domain, its own user's name, its consumer keys and API keys.
fn identifying(t: &Tenant, print: &BTreeMap<String, (u16, Value)>) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = print.values().flat_map(|(_, v)| uuids(&v.to_string())).collect();
    out.extend(
        t.ids
            .iter()
            .filter(|(k, _)| !k.ends_with("consumerSecret"))
            .map(|(_, v)| v.clone()),
    );
    out
}

/// `count` and `pagination.total` of a listing.
fn counts(v: &Value) -> (Value, Value, usize) {
    (
        v["count"].clone(),
        v["pagination"]["total"].clone(),
        v["list"].as_array().map_or(0, Vec::len),
    )
}

/// Ships `n` calls of the tenant's application to the tenant's API to the analytics
/// component, as a gateway would.
async fn ship_calls(rest: &Rest, t: &Tenant, n: usize) {
    let now = tollgate_model::now_millis();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({"timestamp": now - 1000 - i as i64, "apiId": t.id("apiId"), "api": "Pets", "apiVersion": "1.0.0",
                "resource": "/pets", "method": "GET", "applicationId": t.id("applicationId"),
                "subscriber": "admin", "keyType": "PRODUCTION", "status": 200, "gatewayLatencyMs": 2.0,
                "backendLatencyMs": 1.0})
        })
        .collect();
    let r = rest
        .http
        .post(format!("http://{}/internal/v1/analytics/events", rest.mgmt))
        .bearer_auth(SECRET)
        .json(&json!({"gatewayId": "isolation-gw", "environment": "Default", "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
}

/// Sum of `requests` over an analytics answer's groups.
fn requests(v: &Value) -> i64 {
    v["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["requests"].as_i64())
        .sum()
}

/// A ready all-in-one node on these AM and shared databases, with a REST client.
async fn start(am: &TestDb, shared: &TestDb) -> (tollgate_testkit::Node, Rest) {
    let mut node = tollgate()
        .env("TOLLGATE_DATABASE__AM__URL", am.url())
        .env("TOLLGATE_DATABASE__SHARED__URL", shared.url())
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_ANALYTICS__FLUSH_INTERVAL", "1s")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    (
        node,
        Rest {
            http: tollgate_testkit::http(),
            mgmt,
        },
    )
}

async fn connect_am(am: &TestDb) -> tollgate_store::Database {
    tollgate_store::connect(
        tollgate_store::DatabaseName::Am,
        am.url(),
        &tollgate_config::DatabaseConfig::default(),
    )
    .await
    .unwrap()
}

/// The search term of a listing's `query` parameter, for its [`Probe::Own`] call.
fn search_term(api: &str, path: &str) -> &'static str {
    match (api, path) {
        ("publisher", "/apis") => "name:Pets",
        ("devportal", "/apis") => "Pets",
        ("devportal", "/applications") => "Shop",
        _ => panic!("{api} {path} has a `query` parameter: give the suite a search term for it"),
    }
}

/// The table's calls and what they found.
struct Run<'a> {
    rest: &'a Rest,
    acme: &'a Tenant,
    globex: &'a Tenant,
    /// globex's ids replaced by ones that never existed.
    ghost: &'a Tenant,
    /// The analytics query's time range and grouping.
    window: &'a [(String, String)],
    /// What identifies globex's resources: none may appear in acme's answers.
    globex_strings: &'a BTreeSet<String>,
    calls: usize,
    failures: Vec<String>,
}

impl Run<'_> {
    /// [`Probe::Foreign`] and [`Probe::ForeignFilter`]: `op` as `me` (of the tenant
    /// `mine`) with each of `mixes` of globex's ids, and with ids that never existed in
    /// their place. Both must answer alike (so that nothing tells whether globex has
    /// the resource), and that answer is 404; or, for a filter, an empty list; or, for
    /// an id in the body, the field's 400.
    #[allow(clippy::too_many_arguments)]
    async fn foreign(
        &mut self,
        api: &str,
        base: &str,
        op: &DocumentedOperation,
        probe: Probe,
        me: &Who,
        mine: &Tenant,
        dev: bool,
        mixes: Vec<BTreeSet<String>>,
    ) {
        let slots = slots_of(api, op, dev);
        for foreign in mixes {
            let mut answers = Vec::new();
            for other in [self.globex, self.ghost] {
                let mut c = build_call(api, base, op, &slots, &foreign, &Sides { mine, other, dev });
                if api == "analytics" {
                    c.query.extend(self.window.iter().cloned());
                }
                let a = self.rest.call(me, &op.method, &c.path, &c.query, &c.body).await;
                self.calls += 1;
                answers.push((c.label, a.status, masked(&a.text, other), a.json()));
            }
            let (label, status, text, json) = &answers[0];
            let (_, ghost_status, ghost_text, _) = &answers[1];
            let empty = *status == 200 && requests(json) == 0 && counts(json).2 == 0;
            let in_body = body_slots(api, &op.method, &op.path)
                .iter()
                .any(|s| foreign.contains(*s));
            let fine = *status == 404
                || (probe == ForeignFilter && empty)
                || (in_body && *status == 400)
                || (me.name.is_empty() && *status == 401);
            if !fine || status != ghost_status || text != ghost_text {
                let who = if me.name.is_empty() { "anonymous" } else { &me.name };
                self.failures.push(format!(
                    "{label} as {who}: {status} {text}\n    (for ids that never existed: {ghost_status} {ghost_text})"
                ));
            }
        }
    }

    /// [`Probe::Own`]: the listing as acme's and as globex's caller of the same role
    /// (and again with a search term where it takes one). acme's holds none of globex's
    /// ids and the same count and total as globex's; analytics count 3 calls for acme
    /// and 5 for globex.
    async fn own(&mut self, api: &str, base: &str, op: &DocumentedOperation, dev: bool) {
        let (me, them) = if dev {
            (&self.acme.dev, &self.globex.dev)
        } else {
            (&self.acme.admin, &self.globex.admin)
        };
        let sides = Sides {
            mine: self.acme,
            other: self.globex,
            dev,
        };
        let mut c = build_call(api, base, op, &[], &BTreeSet::new(), &sides);
        c.query.retain(|(k, _)| !ID_QUERY_PARAMS.contains(&k.as_str()));
        if api == "analytics" {
            c.query.extend(self.window.iter().cloned());
        }
        let mut queries = vec![c.query.clone()];
        if op.params_in("query").contains(&"query") {
            let mut searched = c.query.clone();
            searched.push(("query".into(), search_term(api, &op.path).into()));
            queries.push(searched);
        }
        for query in queries {
            let mine = self.rest.call(me, &op.method, &c.path, &query, &c.body).await;
            let theirs = self.rest.call(them, &op.method, &c.path, &query, &c.body).await;
            self.calls += 2;
            let label = format!("{} {query:?} as {}", c.label, me.name);
            let leaked: Vec<_> = self.globex_strings.iter().filter(|s| mine.text.contains(*s)).collect();
            let (mine, theirs) = (mine.json(), theirs.json());
            let problem = if !leaked.is_empty() {
                Some(format!("shows globex's {leaked:?}"))
            } else if api == "analytics" {
                (requests(&mine) != 3 || requests(&theirs) != 5)
                    .then(|| format!("acme's calls are 3 and globex's 5; answered {mine} and {theirs}"))
            } else {
                (counts(&mine) != counts(&theirs) || counts(&mine).2 == 0).then(|| {
                    format!(
                        "acme counts {:?}, globex (seeded alike) {:?}",
                        counts(&mine),
                        counts(&theirs)
                    )
                })
            };
            if let Some(p) = problem {
                self.failures.push(format!("{label}: {p}: {mine}"));
            }
        }
    }

    /// [`Probe::SuperOnly`]: acme's administrator on acme's own tenant (or none): 403.
    async fn super_only(&mut self, api: &str, base: &str, op: &DocumentedOperation) {
        let sides = Sides {
            mine: self.acme,
            other: self.globex,
            dev: false,
        };
        let c = build_call(api, base, op, &[], &BTreeSet::new(), &sides);
        let me = &self.acme.admin;
        let a = self.rest.call(me, &op.method, &c.path, &c.query, &c.body).await;
        self.calls += 1;
        if a.status != 403 {
            self.failures.push(format!(
                "{} as {} (own tenant): {} {}",
                c.label, me.name, a.status, a.text
            ));
        }
    }
}

/// The suite on one engine.
async fn isolation_suite(am_db: TestDb, shared_db: TestDb) {
    let started = Instant::now();
    let engine = am_db.engine();
    let (node, rest) = start(&am_db, &shared_db).await;
    let am = connect_am(&am_db).await;

    // The table covers exactly the documented operations.
    let docs = documents(&rest).await;
    let documented: BTreeSet<(String, String, String)> = docs
        .iter()
        .flat_map(|(api, _, ops)| {
            ops.iter()
                .map(move |o| (api.to_string(), o.method.clone(), o.path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String, String)> = TABLE
        .iter()
        .map(|(api, m, p, _)| (api.to_string(), m.to_string(), p.to_string()))
        .collect();
    assert_eq!(TABLE.len(), tabled.len(), "an operation is listed twice in TABLE");
    let untabled: Vec<_> = documented.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        untabled.is_empty() && stale.is_empty(),
        "TABLE must list every documented operation and nothing else.\n\
         Documented but not in TABLE (add each with what it must do to another tenant's resources): {untabled:?}\n\
         In TABLE but not documented: {stale:?}"
    );

    // Two tenants seeded alike; then each tenant's calls for analytics, 3 and 5.
    let mut acme = create_tenant(&rest, ACME).await;
    let mut globex = create_tenant(&rest, GLOBEX).await;
    seed(&rest, &mut acme).await;
    seed(&rest, &mut globex).await;
    let from = tollgate_model::rfc3339(tollgate_model::now_millis() - 600_000);
    let to = tollgate_model::rfc3339(tollgate_model::now_millis() + 600_000);
    let window = vec![
        ("from".to_string(), from.clone()),
        ("to".to_string(), to.clone()),
        ("groupBy".to_string(), "api,application".to_string()),
    ];
    ship_calls(&rest, &acme, 3).await;
    ship_calls(&rest, &globex, 5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = rest
            .call(&root(), "GET", "/analytics/v1/usage", &window, &Body::None)
            .await;
        if requests(&a.json()) >= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shipped calls were never flushed: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seeded_in = started.elapsed();
    // The same ids as globex's, none of which exists.
    let ghost = Tenant {
        domain: "nowhere.example",
        admin: Who::new("admin@nowhere.example", ADMIN_PASSWORD),
        dev: Who::new("dev@nowhere.example", DEV_PASSWORD),
        ids: globex
            .ids
            .keys()
            .map(|k| {
                let v = match k.as_str() {
                    "domain" => "nowhere.example".to_string(),
                    "username" => "nobody".to_string(),
                    _ => uuid_v4(),
                };
                (k.clone(), v)
            })
            .collect(),
    };

    let globex_before = fingerprint(&rest, &docs, &globex, &window).await;
    let acme_before = fingerprint(&rest, &docs, &acme, &window).await;
    let not_ok: Vec<_> = globex_before.iter().filter(|(_, (s, _))| *s != 200).collect();
    assert!(
        not_ok.is_empty(),
        "every GET of globex's own resources answers 200 to globex: {not_ok:?}"
    );
    let globex_strings = identifying(&globex, &globex_before);
    let acme_strings = identifying(&acme, &acme_before);
    // Each tenant's own reads show only its own ids (else one already sees the other's).
    let shared: Vec<String> = globex_strings
        .intersection(&acme_strings)
        .map(|id| {
            let seen_in = |print: &BTreeMap<String, (u16, Value)>| -> Vec<String> {
                print
                    .iter()
                    .filter(|(_, (_, v))| v.to_string().contains(id.as_str()))
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            format!("{id}: in {:?} and {:?}", seen_in(&acme_before), seen_in(&globex_before))
        })
        .collect();
    assert!(
        shared.is_empty(),
        "[{engine}] the tenants' own reads share ids (one tenant's answers show the other's resources):\n{}",
        shared.join("\n")
    );
    let seq_before = tollgate_store::events::latest_seq(&am).await.unwrap();

    // The table: as acme's administrator (the Developer Portal's also as acme's
    // subscriber), every mix of ids; as the super tenant's administrator, globex's ids
    // (it manages tenants, but acts in its own tenant like anyone else).
    let mut run = Run {
        rest: &rest,
        acme: &acme,
        globex: &globex,
        ghost: &ghost,
        window: &window,
        globex_strings: &globex_strings,
        calls: 0,
        failures: Vec::new(),
    };
    for (api, base, ops) in &docs {
        for op in ops {
            let probes = TABLE
                .iter()
                .find(|(a, m, p, _)| a == api && *m == op.method && *p == op.path)
                .map(|(_, _, _, probes)| *probes)
                .unwrap();
            let callers: &[bool] = if *api == "devportal" { &[false, true] } else { &[false] };
            for probe in probes {
                for &dev in callers {
                    let me = if dev { &acme.dev } else { &acme.admin };
                    match probe {
                        Foreign | ForeignFilter => {
                            let slots = slots_of(api, op, dev);
                            run.foreign(api, base, op, *probe, me, &acme, dev, mixes(&slots)).await;
                        }
                        Own => run.own(api, base, op, dev).await,
                        SuperOnly => run.super_only(api, base, op).await,
                        Creates | Neutral => {}
                    }
                }
                // The platform's administrator manages every tenant and sees every
                // tenant's analytics, nothing more.
                let platform_wide = op.path.starts_with("/tenants") || *api == "analytics";
                if matches!(probe, Foreign | ForeignFilter) {
                    let slots = slots_of(api, op, false);
                    let all: BTreeSet<String> = slots.iter().cloned().collect();
                    if !platform_wide {
                        run.foreign(api, base, op, *probe, &root(), &globex, false, vec![all.clone()])
                            .await;
                    }
                    // Nor does anyone who does not sign in (401, or 404 where reading is
                    // anonymous).
                    run.foreign(api, base, op, *probe, &anonymous(), &globex, false, vec![all])
                        .await;
                }
            }
        }
    }
    let calls = run.calls;
    assert!(
        run.failures.is_empty(),
        "[{engine}] {} of {calls} calls reached globex's resources (or acme's own answers leaked):\n{}",
        run.failures.len(),
        run.failures.join("\n")
    );

    // Nothing changed: globex's (and acme's) resources read the same, and no event was
    // written (every change gateways must know of is one).
    let events = tollgate_store::events::read_since(&am, seq_before, 1000).await.unwrap();
    let written: Vec<String> = events
        .iter()
        .map(|e| format!("{} {:?} of tenant {}: {}", e.seq, e.kind, e.tenant_id, e.payload))
        .collect();
    assert!(
        written.is_empty(),
        "[{engine}] the table's calls wrote events: {written:?}"
    );
    for (t, before) in [(&globex, &globex_before), (&acme, &acme_before)] {
        let after = fingerprint(&rest, &docs, t, &window).await;
        let changed: Vec<String> = before
            .iter()
            .filter(|(k, v)| after.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}:\n  before {v:?}\n  after  {:?}", after.get(k)))
            .collect();
        assert!(
            changed.is_empty(),
            "[{engine}] {}'s resources changed:\n{}",
            t.domain,
            changed.join("\n")
        );
    }

    // The platform's administrator sees every tenant's calls, and per tenant.
    let mut by_tenant = window.clone();
    by_tenant.retain(|(k, _)| k != "groupBy");
    by_tenant.push(("groupBy".into(), "tenant".into()));
    let all = rest
        .call(&root(), "GET", "/analytics/v1/usage", &by_tenant, &Body::None)
        .await;
    assert_eq!(all.status, 200, "{}", all.text);
    let per: BTreeMap<String, i64> = all.json()["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["tenant"].as_str().unwrap_or("").to_string(),
                g["requests"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(per.get(ACME), Some(&3), "{}", all.text);
    assert_eq!(per.get(GLOBEX), Some(&5), "{}", all.text);
    let a = rest
        .call(&acme.admin, "GET", "/analytics/v1/usage", &by_tenant, &Body::None)
        .await;
    assert_eq!(
        a.status, 403,
        "only the platform's administrators see other tenants: {}",
        a.text
    );

    drop(node);
    eprintln!(
        "[{engine}] isolation suite: {calls} calls over {} documented operations; seeding {:.1?}, all {:.1?}",
        documented.len(),
        seeded_in,
        started.elapsed()
    );
}

#[tokio::test]
async fn another_tenants_resources_do_not_exist_for_any_operation_on_sqlite() {
    let am = tollgate_testkit::sqlite("iso_am");
    let shared = am.sibling("iso_shared").await;
    isolation_suite(am, shared).await;
}

#[tokio::test]
async fn another_tenants_resources_do_not_exist_for_any_operation_on_postgres() {
    let Some(am) = tollgate_testkit::postgres("iso_am").await else {
        return;
    };
    let shared = am.sibling("iso_shared").await;
    isolation_suite(am, shared).await;
}

/// Checks that deleting acme's environment, key manager, subscription policy and shared
/// scope is not refused because globex's namesakes are in use (deployments, mapped keys,
/// an API's plan and scope): what another tenant does with the same names must neither
/// block a tenant nor be counted in its answers.
async fn namesakes_in_use(am_db: TestDb, shared_db: TestDb) {
    let engine = am_db.engine();
    let (_node, rest) = start(&am_db, &shared_db).await;
    let acme = create_tenant(&rest, ACME).await;
    let globex = create_tenant(&rest, GLOBEX).await;
    for t in [&acme, &globex] {
        let a = &t.admin;
        rest.must(
            a,
            "POST",
            "/admin/v4/environments",
            Body::Json(environment_body("Spare")),
            201,
        )
        .await;
        rest.must(
            a,
            "POST",
            "/admin/v4/key-managers",
            Body::Json(key_manager_body("Spare IdP")),
            201,
        )
        .await;
        rest.must(
            a,
            "POST",
            "/admin/v4/throttling/policies/subscription",
            Body::Json(json!({"policyName": "Premium", "defaultLimit": limit()})),
            201,
        )
        .await;
        rest.must(
            a,
            "POST",
            "/publisher/v4/scopes",
            Body::Json(json!({"name": "pets_read", "bindings": []})),
            201,
        )
        .await;
    }
    // globex uses its namesakes: an API on the Premium plan with the shared scope, deployed
    // to Spare; an application's keys mapped from Spare IdP.
    let g = &globex.admin;
    let api = rest
        .must(g, "POST", "/publisher/v4/apis", Body::Json(api_body()), 201)
        .await;
    let api_id = api["id"].as_str().unwrap();
    let rev = rest
        .must(
            g,
            "POST",
            &format!("/publisher/v4/apis/{api_id}/revisions"),
            Body::Json(json!({})),
            201,
        )
        .await;
    rest.must(
        g,
        "POST",
        &format!(
            "/publisher/v4/apis/{api_id}/deploy-revision?revisionId={}",
            rev["id"].as_str().unwrap()
        ),
        Body::Json(json!([{"name": "Spare"}])),
        201,
    )
    .await;
    let mut refused = Vec::new();
    // Both tenants map the same client of their same-named key manager (each tenant's
    // `Spare IdP` is its own registration; globex's mapping must not make acme's clash).
    let mut acme_app = String::new();
    for t in [&globex, &acme] {
        let app = rest
            .must(
                &t.admin,
                "POST",
                "/devportal/v3/applications",
                Body::Json(json!({"name": "Shop", "throttlingPolicy": "Unlimited"})),
                201,
            )
            .await;
        acme_app = app["applicationId"].as_str().unwrap().to_string();
        let path = format!("/devportal/v3/applications/{acme_app}/map-keys");
        let body =
            Body::Json(json!({"consumerKey": "spare-client", "keyType": "PRODUCTION", "keyManager": "Spare IdP"}));
        let r = rest.call(&t.admin, "POST", &path, &[], &body).await;
        if r.status != 200 {
            refused.push(format!("POST {path} as {}: {} {}", t.admin.name, r.status, r.text));
        }
    }
    // acme's own namesakes are then unused (its application, with its mapped keys, goes):
    // it may delete them.
    let a = &acme.admin;
    rest.must(
        a,
        "DELETE",
        &format!("/devportal/v3/applications/{acme_app}"),
        Body::None,
        200,
    )
    .await;
    for path in [
        "/admin/v4/environments/Spare",
        "/admin/v4/key-managers/Spare IdP",
        "/admin/v4/throttling/policies/subscription/Premium",
        "/publisher/v4/scopes/pets_read",
    ] {
        let r = rest.call(a, "DELETE", path, &[], &Body::None).await;
        if r.status != 200 {
            refused.push(format!("DELETE {path} as {}: {} {}", a.name, r.status, r.text));
        }
    }
    assert!(
        refused.is_empty(),
        "[{engine}] globex's namesakes in use blocked acme's own deletes:\n{}",
        refused.join("\n")
    );
    // globex's are untouched and still refuse (they are in use).
    for path in ["/admin/v4/environments/Spare", "/admin/v4/key-managers/Spare IdP"] {
        let r = rest.call(g, "DELETE", path, &[], &Body::None).await;
        assert_eq!(r.status, 409, "[{engine}] {path}: {}", r.text);
    }
}

#[tokio::test]
async fn another_tenants_namesakes_in_use_do_not_block_deletes_on_sqlite() {
    let am = tollgate_testkit::sqlite("iso_names_am");
    let shared = am.sibling("iso_names_shared").await;
    namesakes_in_use(am, shared).await;
}

#[tokio::test]
async fn another_tenants_namesakes_in_use_do_not_block_deletes_on_postgres() {
    let Some(am) = tollgate_testkit::postgres("iso_names_am").await else {
        return;
    };
    let shared = am.sibling("iso_names_shared").await;
    namesakes_in_use(am, shared).await;
}
