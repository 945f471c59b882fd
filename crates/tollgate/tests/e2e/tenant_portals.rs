//! A tenant's portals in a real headless Chromium against a real all-in-one node and its
//! gateway: the super-tenant administrator creates `acme.com` (Admin REST API); its
//! administrator signs in to the Publisher as `admin@acme.com`, imports, publishes and
//! deploys an API; a visitor browses `/devportal?tenant=acme.com`, signs up there, signs
//! in as `devon@acme.com`, subscribes, generates keys and a token, and calls the API
//! through the gateway at `/t/acme.com/petstore/1.0.0/…`. The super tenant's portal,
//! anonymous or signed in, never shows the API, and an unknown tenant's portal says so.

use crate::{READY, tollgate};
use axum::routing::get;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tollgate_testkit::Browser;

const ADMIN: (&str, &str) = ("admin", "test-admin-password");
const ACME_ADMIN: (&str, &str) = ("admin@acme.com", "acme-admin-password");
const DEV: &str = "devon";
const DEV_PASSWORD: &str = "devon-password-1";

async fn sign_in(b: &Browser, base: &str, next: &str, (user, password): (&str, &str)) {
    b.sign_in_to_portals(base, next, user, password).await;
}

async fn sign_out(b: &Browser) {
    b.sign_out_of_portals().await;
}

/// A call to the node's REST API as the super-tenant administrator; the status and body.
async fn admin_rest(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = tollgate_testkit::http()
        .request(method, url)
        .basic_auth(ADMIN.0, Some(ADMIN.1));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_tenant_publishes_and_its_own_developers_subscribe_and_call() {
    let Some(b) = Browser::start().await else { return };
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let gateway = node.listener("gateway");
    let base = format!("http://{mgmt}");
    let backend = tollgate_testkit::serve(
        axum::Router::new().route("/pets", get(|| async { axum::Json(json!([{"id": 1, "name": "Rex"}])) })),
    )
    .await;
    let admin_api = format!("{base}/api/am/admin/v4");

    // 1. The super tenant's Default environment points at this test's gateway (a new
    //    tenant's Default environment is a copy of it), then acme.com is created.
    let (status, envs) = admin_rest(reqwest::Method::GET, &format!("{admin_api}/environments"), None).await;
    assert_eq!(status, 200, "{envs}");
    let id = envs["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Default")
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("no Default environment: {envs}"))
        .to_string();
    let (status, mut default) = admin_rest(reqwest::Method::GET, &format!("{admin_api}/environments/{id}"), None).await;
    assert_eq!(status, 200, "{default}");
    default["vhosts"][0]["host"] = json!(gateway.ip().to_string());
    default["vhosts"][0]["httpPort"] = json!(gateway.port());
    let (status, body) = admin_rest(
        reqwest::Method::PUT,
        &format!("{admin_api}/environments/{id}"),
        Some(default),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin_rest(
        reqwest::Method::POST,
        &format!("{admin_api}/tenants"),
        Some(
            json!({"domain": "acme.com", "adminUsername": "admin", "adminPassword": ACME_ADMIN.1,
                    "email": "admin@acme.example"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // 2. acme's administrator signs in to the Publisher as admin@acme.com, imports the
    //    OpenAPI file, publishes it and deploys it to acme's Default environment.
    sign_in(&b, &base, "/publisher", ACME_ADMIN).await;
    assert_eq!(
        b.text_of("#tenant").await,
        "Tenant: acme.com",
        "{}",
        b.whereabouts().await
    );
    b.goto(&format!("{base}/publisher/apis/import")).await;
    b.fill("#f-context", "/petstore").await;
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/petstore.yaml");
    b.wait_for("#f-file")
        .await
        .send_keys(&spec.display().to_string())
        .await
        .unwrap();
    b.fill("#f-endpoint", &format!("http://{}", backend.addr)).await;
    b.click("input[name=policies][value=Gold]").await;
    b.click("#import-form button[type=submit]").await;
    b.wait_for_text("Swagger Petstore").await;
    b.click("form[action$='/lifecycle'] input[value=Publish] + button")
        .await;
    b.wait_for_text("State: Published").await;
    b.fill("#f-rev-description", "first").await;
    b.click("#revision-form button").await;
    b.wait_for("#revisions-table").await;
    b.click(".deploy-form button").await;
    b.wait_for_text("live gateway").await;
    sign_out(&b).await;

    // 3. Anonymous visitors: acme's portal shows the API under acme's name; the super
    //    tenant's does not; an unknown tenant's portal says it does not exist.
    b.goto(&format!("{base}/devportal?tenant=acme.com")).await;
    b.wait_for_text("Swagger Petstore").await;
    assert_eq!(b.text_of("#tenant").await, "Tenant: acme.com (leave)");
    b.screenshot("devportal-tenant-catalogue").await;
    b.click("#api-list h2 a").await;
    b.wait_for_text("Gateway URLs").await;
    assert!(
        b.url().await.contains("tenant=acme.com"),
        "the tenant is kept: {}",
        b.url().await
    );
    assert_eq!(
        b.text_of(".gateway-url").await,
        format!("http://{gateway}/t/acme.com/petstore/1.0.0"),
        "the gateway URL carries the tenant's prefix"
    );
    b.click("#tenant-leave").await;
    b.wait_for_text("No APIs are published yet").await;
    assert!(
        !b.page_text().await.contains("Swagger Petstore"),
        "{}",
        b.whereabouts().await
    );
    b.fill("#f-tenant", "nope.example").await;
    b.click("#tenant-form button").await;
    b.wait_for_text("`nope.example` not found").await;

    // 4. A visitor signs up on acme's portal, into acme.com, and signs in as devon@acme.com.
    b.goto(&format!("{base}/devportal?tenant=acme.com")).await;
    b.click("#sign-up").await;
    b.wait_for_text("Create your account in acme.com").await;
    b.fill("#f-username", DEV).await;
    b.fill("#f-password", DEV_PASSWORD).await;
    b.fill("#f-email", "devon@example.com").await;
    b.click("#signup-form button").await;
    b.fill("#username", &format!("{DEV}@acme.com")).await;
    b.fill("#password", DEV_PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text(&format!("Signed in as {DEV}@acme.com")).await;
    let (status, users) = admin_rest(reqwest::Method::GET, &format!("{admin_api}/users?limit=1000"), None).await;
    assert_eq!(status, 200, "{users}");
    assert!(
        !users.to_string().contains(DEV),
        "devon is not a super-tenant user: {users}"
    );

    // 5. Signed in, their own tenant's catalogue; they subscribe the application sign-up
    //    made with Gold, generate keys and a test token.
    b.goto(&format!("{base}/devportal")).await;
    b.wait_for_text("Swagger Petstore").await;
    b.click("#api-list h2 a").await;
    b.wait_for_text("Gateway URLs").await;
    b.select_by_label("#f-applicationId", "DefaultApplication").await;
    b.select_by_label("#f-throttlingPolicy", "Gold").await;
    b.click("#subscribe-form button").await;
    b.wait_for_text("DefaultApplication – plan Gold").await;
    b.goto(&format!("{base}/devportal/applications")).await;
    b.click("#main table a").await;
    b.click("#keys-form button").await;
    let secret = b.text_of("#consumer-secret").await;
    b.fill("#f-consumerSecret", &secret).await;
    b.click("#token-form button").await;
    let token = b.text_of("#access-token").await;
    assert!(token.len() > 20, "{}", b.whereabouts().await);

    // 6. The super tenant's portal never shows acme's API: anonymous, or signed in as the
    //    super tenant's administrator, even when the page names acme.com.
    sign_out(&b).await;
    b.goto(&format!("{base}/devportal")).await;
    b.wait_for_text("No APIs are published yet").await;
    sign_in(&b, &base, "%2Fdevportal%3Ftenant%3Dacme.com", ADMIN).await;
    b.wait_for("#tenant-notice").await;
    assert!(
        !b.page_text().await.contains("Swagger Petstore"),
        "{}",
        b.whereabouts().await
    );
    b.goto(&format!("{base}/publisher")).await;
    b.wait_for_text("Signed in as admin").await;
    assert!(
        !b.page_text().await.contains("Swagger Petstore"),
        "{}",
        b.whereabouts().await
    );
    b.close().await;

    // 7. The call through the gateway, under acme's prefix (the deployment reaches the
    //    gateway through the event hub within moments); not under the super tenant's path.
    let http = tollgate_testkit::http();
    let url = format!("http://{gateway}/t/acme.com/petstore/1.0.0/pets");
    let mut last = (0, String::new());
    for _ in 0..50 {
        let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
        last = (r.status().as_u16(), r.text().await.unwrap_or_default());
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 200, "{url}: {}", last.1);
    assert!(last.1.contains("Rex"), "{}", last.1);
    let r = http
        .get(format!("http://{gateway}/petstore/1.0.0/pets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(
        status != 200 && !body.contains("Rex"),
        "acme's API is not the super tenant's /petstore: {status} {body}"
    );
}
