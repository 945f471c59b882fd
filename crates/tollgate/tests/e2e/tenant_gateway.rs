//! Tenants at the gateway, with real processes on PostgreSQL: a control plane (with the
//! traffic manager's event hub) and two separate gateway nodes that follow it over HTTP,
//! one serving every tenant and one limited to `acme.com` (`gateway.tenants`). Two tenants
//! and the super tenant publish an API of the same context; each is answered under its
//! own prefix (`/t/{domain}/…`), tokens and API keys of one tenant are refused at another's
//! API, a deactivated tenant's APIs are refused by every gateway until it is activated
//! again, and the limited gateway holds nothing of the other tenants. Skipped, with the
//! reason printed, when no PostgreSQL server is reachable.

use crate::distributed::{databases, free_port, on};
use crate::gateway_flow::{ADMIN, Client, backend};
use crate::{READY, SECRET, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The password of each tenant's first administrator.
const TENANT_ADMIN_PASSWORD: &str = "Tenant-admin-2026";

/// How long a change may take to reach a gateway before the test fails.
const PROPAGATION: Duration = Duration::from_secs(20);

/// A gateway node following the hub at `hub`, persisting under `dir`, limited to
/// `tenants` (a TOML list) when given.
fn gateway(hub: &str, key_manager: SocketAddr, dir: &Path, tenants: Option<&str>) -> tollgate_testkit::NodeBuilder {
    let mut builder = tollgate()
        .args(["--profile", "gateway"])
        .data_dir(dir)
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_CLUSTER__EVENT_HUB_URL", hub)
        .env("TOLLGATE_CLUSTER__KEY_MANAGER_URL", format!("http://{key_manager}"));
    if let Some(list) = tenants {
        builder = builder.env("TOLLGATE_GATEWAY__TENANTS", list);
    }
    builder
}

/// Who acts, and what they were given: their API, a token and an API key of their
/// application subscribed to it.
struct Tenant {
    /// `None` for the super tenant.
    domain: Option<&'static str>,
    user: String,
    api: String,
    token: String,
    apikey: String,
}

impl Tenant {
    /// The path of `/pets/{id}` of this tenant's `Shop` API.
    fn pets(&self, id: u32) -> String {
        let prefix = self.domain.map(|d| format!("/t/{d}")).unwrap_or_default();
        format!("{prefix}/shop/1.0.0/pets/{id}")
    }
}

/// Creates the tenant `domain` with the Admin REST API; its administrator signs in as
/// `admin@{domain}`.
async fn create_tenant(c: &Client, domain: &str) {
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/tenants",
            Some(
                json!({"domain": domain, "adminUsername": "admin", "adminPassword": TENANT_ADMIN_PASSWORD,
                "email": format!("admin@{domain}")}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Activates or deactivates `domain` with the Admin REST API.
async fn set_active(c: &Client, domain: &str, active: bool) {
    let action = if active { "activate" } else { "deactivate" };
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            &format!("/admin/v4/tenants/{domain}/{action}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{action} {domain}: {body}");
    assert_eq!(body["active"], active, "{body}");
}

/// As `who`: publishes `Shop` at `/shop` 1.0.0 (OAuth2 and API keys) with `backend` and
/// deploys it to `Default`; then an application of theirs with keys, subscribed to it,
/// a token and an API key.
async fn publish_and_subscribe(
    c: &Client,
    domain: Option<&'static str>,
    user: &str,
    password: &'static str,
    backend: SocketAddr,
) -> Tenant {
    let who = (user, password);
    let (status, api) = c
        .rest(
            who,
            Method::POST,
            "/publisher/v4/apis",
            Some(json!({
                "name": "Shop", "context": "/shop", "version": "1.0.0", "policies": ["Gold"],
                "securityScheme": ["oauth2", "api_key"],
                "corsConfiguration": {"corsConfigurationEnabled": true,
                    "accessControlAllowOrigins": [ORIGIN], "accessControlAllowMethods": ["GET"]},
                "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": format!("http://{backend}/v1")}},
                "operations": [{"target": "/pets/{petId}", "verb": "GET"}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{user}: {api}");
    let api = api["id"].as_str().unwrap().to_string();
    let (status, body) = c
        .rest(
            who,
            Method::POST,
            &format!("/publisher/v4/apis/change-lifecycle?apiId={api}&action=Publish"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{user}: {body}");
    let (status, rev) = c
        .rest(
            who,
            Method::POST,
            &format!("/publisher/v4/apis/{api}/revisions"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{user}: {rev}");
    let rev = rev["id"].as_str().unwrap();
    let (status, body) = c
        .rest(
            who,
            Method::POST,
            &format!("/publisher/v4/apis/{api}/deploy-revision?revisionId={rev}"),
            Some(json!([{"name": "Default", "displayOnDevportal": true}])),
        )
        .await;
    assert_eq!(status, 201, "{user}: {body}");
    let (status, app) = c
        .rest(
            who,
            Method::POST,
            "/devportal/v3/applications",
            Some(json!({"name": "ShopApp", "throttlingPolicy": "Unlimited", "tokenType": "JWT"})),
        )
        .await;
    assert_eq!(status, 201, "{user}: {app}");
    let app = app["applicationId"].as_str().unwrap().to_string();
    let (status, keys) = c
        .rest(
            who,
            Method::POST,
            &format!("/devportal/v3/applications/{app}/generate-keys"),
            Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]})),
        )
        .await;
    assert_eq!(status, 200, "{user}: {keys}");
    let (status, sub) = c
        .rest(
            who,
            Method::POST,
            "/devportal/v3/subscriptions",
            Some(json!({"applicationId": app, "apiId": api, "throttlingPolicy": "Gold"})),
        )
        .await;
    assert_eq!(status, 201, "{user}: {sub}");
    let token = c
        .token(
            keys["consumerKey"].as_str().unwrap(),
            keys["consumerSecret"].as_str().unwrap(),
        )
        .await;
    let (status, key) = c
        .rest(
            who,
            Method::POST,
            &format!("/devportal/v3/applications/{app}/api-keys/PRODUCTION/generate"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{user}: {key}");
    Tenant {
        domain,
        user: user.to_string(),
        api,
        token,
        apikey: key["apikey"].as_str().unwrap().to_string(),
    }
}

/// A credential sent with a call.
#[derive(Clone, Copy)]
enum Credential<'a> {
    Token(&'a str),
    ApiKey(&'a str),
}

/// GET `path` through the gateway of `c` with `credential`: status and body.
async fn call(c: &Client, path: &str, credential: Credential<'_>) -> (u16, Value) {
    let req = c.http.get(format!("http://{}{path}", c.gw));
    let req = match credential {
        Credential::Token(t) => req.bearer_auth(t),
        Credential::ApiKey(k) => req.header("apikey", k),
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The origin every tenant's `Shop` API lets call it from a browser.
const ORIGIN: &str = "https://shop.example";

/// A CORS preflight of a GET of `path`: the status and the `Access-Control-Allow-Origin`
/// the gateway answers with, and the body.
async fn preflight(c: &Client, path: &str) -> (u16, Option<String>, Value) {
    let r = c
        .http
        .request(Method::OPTIONS, format!("http://{}{path}", c.gw))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let allowed = r
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, allowed, r.json().await.unwrap_or(Value::Null))
}

/// Calls until the answer's status is `expected` (or the deadline passes); the last answer.
async fn until(c: &Client, path: &str, credential: Credential<'_>, expected: u16) -> (u16, Value) {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let (status, body) = call(c, path, credential).await;
        if status == expected || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the answer's status and error code.
fn refused(answer: (u16, Value), status: u16, code: i64, what: &str) {
    assert_eq!(
        (answer.0, &answer.1["code"]),
        (status, &json!(code)),
        "{what}: {}",
        answer.1
    );
}

/// What a gateway node reports it holds of each tenant (`/health/ready`), by domain.
async fn held(mgmt: SocketAddr) -> (Value, Vec<(String, Value)>) {
    let (_, body) = tollgate_testkit::get_json(format!("http://{mgmt}/health/ready")).await;
    let tenants = body["gateway"]["tenants"].clone();
    let held = tenants["held"]
        .as_array()
        .unwrap_or_else(|| panic!("no tenants in the report: {body}"))
        .iter()
        .map(|t| (t["domain"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    (tenants["served"].clone(), held)
}

#[tokio::test]
async fn tenants_are_served_apart_by_gateways_fed_by_the_event_hub() {
    let Some(dbs) = databases("e2e_tenant_gw").await else {
        return;
    };
    let tm_port = free_port();
    let hub = format!("http://127.0.0.1:{tm_port}");
    let mut cp = on(&dbs, "control-plane")
        .env("TOLLGATE_TRAFFIC_MANAGER__LISTEN", format!("127.0.0.1:{tm_port}"))
        .spawn();
    let mgmt = cp.wait_ready(READY).await;
    let (dir_all, dir_acme) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut gw_all = gateway(&hub, mgmt, dir_all.path(), None).spawn();
    let mut gw_acme = gateway(&hub, mgmt, dir_acme.path(), Some(r#"["acme.com"]"#)).spawn();
    let all_mgmt = gw_all.wait_ready(READY).await;
    let acme_mgmt = gw_acme.wait_ready(READY).await;
    let all = Client::new(mgmt, gw_all.listener("gateway"));
    let only_acme = Client::new(mgmt, gw_acme.listener("gateway"));
    let backend = backend().await;

    // Two tenants and the super tenant, each with a `Shop` API at `/shop`.
    create_tenant(&all, "acme.com").await;
    create_tenant(&all, "beta.org").await;
    let acme = publish_and_subscribe(
        &all,
        Some("acme.com"),
        "admin@acme.com",
        TENANT_ADMIN_PASSWORD,
        backend.addr,
    )
    .await;
    let beta = publish_and_subscribe(
        &all,
        Some("beta.org"),
        "admin@beta.org",
        TENANT_ADMIN_PASSWORD,
        backend.addr,
    )
    .await;
    let root = publish_and_subscribe(&all, None, ADMIN.0, "test-admin-password", backend.addr).await;
    assert!(acme.api != beta.api && beta.api != root.api);

    // Each tenant's API under its own prefix, the super tenant's without; the backend gets
    // the path below the context.
    for t in [&acme, &beta, &root] {
        let (status, body) = until(&all, &t.pets(7), Credential::Token(&t.token), 200).await;
        assert_eq!(status, 200, "{} with its token: {body}", t.pets(7));
        assert_eq!(body["uri"], "/v1/pets/7", "{body}");
        let (status, body) = call(&all, &t.pets(8), Credential::ApiKey(&t.apikey)).await;
        assert_eq!(status, 200, "{} with its API key: {body}", t.pets(8));
    }
    // A path that names no tenant's API matches nothing.
    refused(
        call(
            &all,
            "/t/acme.com/t/acme.com/shop/1.0.0/pets/1",
            Credential::Token(&acme.token),
        )
        .await,
        404,
        900_906,
        "a doubled prefix",
    );
    refused(
        call(&all, "/t/gamma.net/shop/1.0.0/pets/1", Credential::Token(&acme.token)).await,
        404,
        900_906,
        "no such tenant",
    );

    // A token or API key of one tenant never authorises a call to another tenant's API.
    for (holder, target) in [
        (&acme, &beta),
        (&beta, &acme),
        (&acme, &root),
        (&root, &acme),
        (&root, &beta),
    ] {
        let what = format!("{} credentials at {}", holder.user, target.pets(1));
        refused(
            call(&all, &target.pets(1), Credential::Token(&holder.token)).await,
            403,
            900_908,
            &what,
        );
        refused(
            call(&all, &target.pets(1), Credential::ApiKey(&holder.apikey)).await,
            403,
            900_908,
            &what,
        );
    }
    // The same calls through the gateway of acme.com alone.
    let (status, body) = until(&only_acme, &acme.pets(3), Credential::Token(&acme.token), 200).await;
    assert_eq!(status, 200, "{body}");
    refused(
        call(&only_acme, &beta.pets(3), Credential::Token(&beta.token)).await,
        404,
        900_906,
        "beta on acme's gateway",
    );
    refused(
        call(&only_acme, &root.pets(3), Credential::Token(&root.token)).await,
        404,
        900_906,
        "the super tenant on acme's gateway",
    );

    // A browser's preflight is answered by the gateway itself while the tenant is active.
    let (status, allowed, body) = preflight(&all, &acme.pets(4)).await;
    assert!(
        (200..300).contains(&status),
        "preflight of {}: {status} {body}",
        acme.pets(4)
    );
    assert_eq!(allowed.as_deref(), Some(ORIGIN));

    // Deactivating acme.com: every gateway refuses its calls as the reference does, and
    // the other tenants' calls go on.
    set_active(&all, "acme.com", false).await;
    for (name, gw) in [("all tenants", &all), ("acme.com only", &only_acme)] {
        for credential in [Credential::Token(&acme.token), Credential::ApiKey(&acme.apikey)] {
            let (status, body) = until(gw, &acme.pets(4), credential, 500).await;
            assert_eq!((status, &body["code"]), (500, &json!(500)), "gateway of {name}: {body}");
            assert_eq!(
                body["description"], "Trying to access inactive tenant domain : acme.com",
                "{body}"
            );
        }
        // Its preflights too: the browser is not told the API takes its calls.
        let (status, allowed, body) = preflight(gw, &acme.pets(4)).await;
        assert_eq!(
            (status, allowed),
            (500, None),
            "preflight on the gateway of {name}: {body}"
        );
        assert_eq!(
            body["description"], "Trying to access inactive tenant domain : acme.com",
            "{body}"
        );
        // Even a path that matches no API of the tenant.
        let (status, _) = call(gw, "/t/acme.com/nothing/here", Credential::Token(&acme.token)).await;
        assert_eq!(status, 500, "gateway of {name}");
    }
    for t in [&beta, &root] {
        let (status, body) = call(&all, &t.pets(5), Credential::Token(&t.token)).await;
        assert_eq!(status, 200, "{} while acme.com is deactivated: {body}", t.pets(5));
    }
    // Reactivation restores its calls, with the same credentials: nothing was deleted.
    set_active(&all, "acme.com", true).await;
    for gw in [&all, &only_acme] {
        let (status, body) = until(gw, &acme.pets(6), Credential::Token(&acme.token), 200).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(gw, &acme.pets(6), Credential::ApiKey(&acme.apikey)).await;
        assert_eq!(status, 200, "{body}");
    }

    // The limited gateway holds acme.com's state and nothing of the others'.
    let (served, tenants) = held(acme_mgmt).await;
    assert_eq!(served, json!(["acme.com"]));
    let acme_held = &tenants.iter().find(|(d, _)| d == "acme.com").expect("acme.com held").1;
    assert_eq!(acme_held["apis"], 1, "{acme_held}");
    assert!(acme_held["applications"].as_u64() >= Some(1), "{acme_held}");
    assert!(
        acme_held["policies"].as_u64() > Some(0),
        "its default policies: {acme_held}"
    );
    assert!(!tenants.iter().any(|(d, _)| d == "beta.org"), "{tenants:?}");
    for (domain, t) in &tenants {
        if domain != "acme.com" {
            assert_eq!(
                (&t["apis"], &t["applications"], &t["policies"]),
                (&json!(0), &json!(0), &json!(0)),
                "{domain} on acme's gateway: {t}"
            );
        }
    }
    let metrics = tollgate_testkit::metrics_text(acme_mgmt).await;
    assert_eq!(
        tollgate_testkit::metric_value(&metrics, "tollgate_gateway_tenant_apis{tenant=\"acme.com\"}"),
        Some(1.0)
    );
    assert!(
        !metrics.contains("beta.org"),
        "nothing of beta.org in acme's gateway's metrics"
    );
    // The other gateway holds every tenant.
    let (served, tenants) = held(all_mgmt).await;
    assert_eq!(served, "all");
    for domain in ["carbon.super", "acme.com", "beta.org"] {
        let t = &tenants
            .iter()
            .find(|(d, _)| d == domain)
            .unwrap_or_else(|| panic!("{domain}: {tenants:?}"))
            .1;
        assert_eq!(t["apis"], 1, "{domain}: {t}");
        assert_eq!(t["active"], true, "{domain}: {t}");
    }
}
