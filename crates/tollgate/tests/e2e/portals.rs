//! The web portals in a real headless Chromium against a real all-in-one node, a real
//! backend and the real gateway, through the pages only (no REST shortcuts): the admin
//! points the Default environment at the test's gateway and adds a publisher, who
//! imports an OpenAPI file, publishes and deploys it; a new user signs up, creates an
//! application, subscribes, generates keys and a test token and gets a 200 from the
//! try-out console; the admin adds an IP deny policy and the console then shows the 403.
//! Also: role checks (403 pages), a cross-site form refused, and bad input shown next to
//! the field without changing anything. Screenshots go to docs/screenshots/.

use crate::{READY, tollgate};
use axum::routing::get;
use std::path::Path;
use tollgate_testkit::Browser;

const ADMIN: (&str, &str) = ("admin", "test-admin-password");
const PUBLISHER: (&str, &str) = ("pat", "pat-password-1");
const DEV: (&str, &str) = ("devon", "devon-password-1");

/// A backend for the imported API, and a page on another origin that posts a form to the
/// portal (the cross-site request forgery attempt).
async fn backend(portal: String) -> tollgate_testkit::RunningServer {
    let forged = format!(
        "<!doctype html><html><body><form id=f method=post action=\"{portal}/devportal/applications\">\
         <input name=name value=Forged><input name=throttlingPolicy value=Unlimited></form>\
         <script>document.getElementById('f').submit()</script></body></html>"
    );
    tollgate_testkit::serve(
        axum::Router::new()
            .route(
                "/pets",
                get(|| async { axum::Json(serde_json::json!([{"id": 1, "name": "Rex"}])) }),
            )
            .route("/forged", get(move || async move { axum::response::Html(forged) })),
    )
    .await
}

async fn sign_in(b: &Browser, base: &str, next: &str, (user, password): (&str, &str)) {
    b.sign_in_to_portals(base, next, user, password).await;
}

async fn sign_out(b: &Browser) {
    b.sign_out_of_portals().await;
}

/// Reloads a dashboard until it counts at least `min` calls (the analytics flush
/// interval is one second in this test).
async fn assert_calls_shown(b: &Browser, min: u64) {
    for _ in 0..40 {
        let n: u64 = b.text_of("#figure-requests").await.parse().unwrap_or(0);
        if n >= min {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let url = b.url().await;
        b.goto(&url).await;
    }
    panic!("no calls shown: {}", b.whereabouts().await);
}

/// The text of the first field error on the page.
async fn field_error(b: &Browser) -> String {
    b.text_of(".field-error").await
}

#[tokio::test]
async fn the_whole_story_through_the_pages() {
    let Some(b) = Browser::start().await else { return };
    let mut node = tollgate()
        .env("TOLLGATE_ANALYTICS__FLUSH_INTERVAL", "1s")
        // "Test endpoint" is tried on the test's own backend, on loopback.
        .env("TOLLGATE_PUBLISHER__URL_IMPORT_ALLOW_PRIVATE", "true")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let gateway = node.listener("gateway");
    let base = format!("http://{mgmt}");
    let backend = backend(base.clone()).await;

    // 1. The admin signs in through the key manager's login page and points the Default
    //    environment at this test's gateway.
    b.goto(&format!("{base}/admin")).await;
    assert!(b.url().await.contains("/oauth2/authorize"), "anonymous → login page");
    b.screenshot("key-manager-login").await;
    b.fill("#username", ADMIN.0).await;
    b.fill("#password", "wrong-password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Wrong username or password").await;
    b.fill("#password", ADMIN.1).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Administration").await;
    b.goto(&format!("{base}/admin/environments")).await;
    b.fill("form[data-environment=Default] input[name=httpPort]", "not-a-port")
        .await;
    b.click("form[data-environment=Default] button").await;
    assert!(field_error(&b).await.contains("port number"), "bad port named");
    b.fill(
        "form[data-environment=Default] input[name=host]",
        &gateway.ip().to_string(),
    )
    .await;
    b.fill(
        "form[data-environment=Default] input[name=httpPort]",
        &gateway.port().to_string(),
    )
    .await;
    b.click("form[data-environment=Default] button").await;
    // The refused save rendered at the form's URL; a stored one redirects to the list.
    for _ in 0..100 {
        if b.url().await.ends_with("/admin/environments") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.goto(&format!("{base}/admin/environments")).await; // read back what was stored
    let port_now = b.value_of("form[data-environment=Default] input[name=httpPort]").await;
    assert_eq!(port_now, gateway.port().to_string());

    // 2. The admin adds a publisher (a short password first).
    b.goto(&format!("{base}/admin/users")).await;
    b.fill("#f-username", PUBLISHER.0).await;
    b.fill("#f-password", "short").await;
    b.click("#user-form input[value=creator]").await;
    b.click("#user-form input[value=publisher]").await;
    b.click("#user-form input[value=subscriber]").await; // checked by default: now off
    b.click("#user-form button[type=submit]").await;
    assert!(field_error(&b).await.contains("8 characters"), "password rule named");
    assert!(!b.text_of("#users").await.contains(PUBLISHER.0), "nothing was created");
    b.fill("#f-password", PUBLISHER.1).await;
    b.click("#user-form button[type=submit]").await;
    b.wait_for(&format!("form[data-user={}]", PUBLISHER.0)).await;
    sign_out(&b).await;

    // 3. The publisher imports the OpenAPI file, publishes and deploys it; the Admin
    //    portal is not theirs.
    sign_in(&b, &base, "/publisher", PUBLISHER).await;
    b.goto(&format!("{base}/admin")).await;
    b.wait_for_text("You cannot open this page").await;
    b.goto(&format!("{base}/publisher/apis/import")).await;
    b.fill("#f-context", "/petstore").await;
    b.click("#import-form button[type=submit]").await;
    assert!(
        field_error(&b).await.contains("OpenAPI file"),
        "a missing file is named"
    );
    assert_eq!(
        Some(b.value_of("#f-context").await.as_str()),
        Some("/petstore"),
        "what was typed is kept"
    );
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
    assert_eq!(b.text_of("#lifecycle-state").await, "Created");
    b.click("#edit-api").await;
    b.fill("#f-endpoint", "ftp://backend.example").await;
    b.fill("#f-tags", "pets, demo").await;
    b.click("#save-api").await;
    assert!(field_error(&b).await.contains("http"), "the endpoint's scheme is named");
    assert_eq!(
        Some(b.value_of("#f-tags").await.as_str()),
        Some("pets, demo"),
        "what was typed is kept"
    );
    b.fill("#f-endpoint", &format!("http://{}/pets", backend.addr)).await;
    b.click("#test-endpoint").await;
    assert!(
        b.text_of("#endpoint-test").await.contains("answered HTTP 200"),
        "{}",
        b.whereabouts().await
    );
    assert_eq!(
        b.value_of("#f-tags").await,
        "pets, demo",
        "testing saves nothing and keeps the form"
    );
    b.fill("#f-endpoint", &format!("http://{}", backend.addr)).await;
    b.click("#save-api").await;
    b.wait_for("#lifecycle-state").await;
    b.click("#add-document").await;
    b.fill("#f-name", "Feeding guide").await;
    b.select_by_label("#f-sourceType", "Link (URL)").await;
    b.click("#document-form button[type=submit]").await;
    assert!(field_error(&b).await.contains("URL"), "a link without a URL is named");
    assert_eq!(b.value_of("#f-name").await, "Feeding guide", "what was typed is kept");
    b.select_by_label("#f-sourceType", "Markdown").await;
    b.fill("#f-inlineContent", "Feed the pets twice a day.").await;
    b.screenshot("publisher-document").await;
    b.click("#document-form button[type=submit]").await;
    b.wait_for("#documents-table").await;
    assert!(b.text_of("#documents-table").await.contains("Feeding guide"));
    b.click("form[action$='/lifecycle'] input[value=Publish] + button")
        .await;
    b.wait_for_text("State: Published").await;
    b.fill("#f-rev-description", "first").await;
    b.click("#revision-form button").await;
    b.wait_for("#revisions-table").await;
    b.click(".deploy-form input[name=environment]").await; // unchecks Default
    b.click(".deploy-form button").await;
    b.wait_for_text("choose at least one gateway environment").await;
    b.click(".deploy-form button").await; // the page drew Default checked again
    b.wait_for_text("live gateway").await;
    b.screenshot("publisher-api").await;
    sign_out(&b).await;

    // 4. A new user signs up (a bad password first), signs in, creates an application.
    b.goto(&format!("{base}/devportal/signup")).await;
    b.fill("#f-username", DEV.0).await;
    b.fill("#f-password", "short").await;
    b.fill("#f-email", "devon@example.com").await;
    b.click("#signup-form button").await;
    assert!(field_error(&b).await.contains("8 characters"), "password rule shown");
    assert_eq!(Some(b.value_of("#f-username").await.as_str()), Some(DEV.0));
    b.fill("#f-password", DEV.1).await;
    b.click("#signup-form button").await;
    b.fill("#username", DEV.0).await;
    b.fill("#password", DEV.1).await;
    b.click("button[type=submit]").await;
    b.wait_for_text(&format!("Signed in as {}", DEV.0)).await;
    b.goto(&format!("{base}/devportal/applications/new")).await;
    b.fill("#f-name", "DefaultApplication").await; // sign-up made one of that name
    b.click("#application-form button").await;
    let error = field_error(&b).await; // waits for the refused form's page
    let url = b.url().await;
    assert!(url.ends_with("/devportal/applications"), "{url}");
    assert!(
        error.contains("already") || error.contains("exists"),
        "duplicate name named: {error}"
    );
    b.fill("#f-name", "Pet shop").await;
    b.click("#application-form button").await;
    b.wait_for_text("OAuth2 keys").await;
    let app_url = b.url().await;

    // 5. The catalogue, the API page, subscribing with Gold.
    b.goto(&format!("{base}/devportal")).await;
    b.wait_for_text("Swagger Petstore").await;
    b.screenshot("devportal-catalogue").await;
    b.click(".tags a[href='/devportal?tag=pets']").await;
    b.wait_for("a.tag[aria-current]").await;
    b.fill("#q", "no-such-api").await;
    b.click(".search button").await;
    b.wait_for_text("No APIs match this search").await;
    b.goto(&format!("{base}/devportal?q=petstore")).await;
    b.click("#api-list h2 a").await;
    b.wait_for_text("Gateway URLs").await;
    let gw_url = b.text_of(".gateway-url").await;
    assert!(
        b.page_text().await.contains("Feeding guide"),
        "the publisher's document is listed"
    );
    assert_eq!(gw_url, format!("http://{gateway}/petstore/1.0.0"));
    b.select_by_label("#f-applicationId", "Pet shop").await;
    b.select_by_label("#f-throttlingPolicy", "Gold").await;
    b.click("#subscribe-form button").await;
    b.wait_for_text("Pet shop – plan Gold").await;
    let api_url = b.url().await;

    // 6. Keys (the secret shown once), then a test token.
    b.goto(&app_url).await;
    b.click("#keys-form button").await;
    let secret = b.text_of("#consumer-secret").await;
    assert!(secret.len() >= 20, "the consumer secret is shown: {secret}");
    b.screenshot("devportal-keys").await;
    b.fill("#f-consumerSecret", "not-the-secret").await;
    b.click("#token-form button").await;
    assert!(
        field_error(&b).await.contains("does not match"),
        "a wrong secret is named"
    );
    b.fill("#f-consumerSecret", &secret).await;
    b.click("#token-form button").await;
    let token = b.text_of("#access-token").await;
    assert!(token.len() > 20);
    b.goto(&app_url).await;
    assert!(!b.page_text().await.contains(&secret), "the secret is not shown again");

    // 7. The try-out console: the token is offered from this tab's storage; 200 with the
    //    backend's body through the gateway.
    b.goto(&api_url).await;
    let offered = b.value_of("#f-credential").await;
    assert_eq!(offered, token, "the console offers the test token just generated");
    b.fill("#f-path", "/pets").await;
    b.click("#tryout-send").await;
    b.wait_for("#tryout-answer").await;
    assert_eq!(b.text_of("#tryout-status").await, "200", "{}", b.whereabouts().await);
    assert!(b.text_of("#tryout-body").await.contains("Rex"));
    b.screenshot("devportal-tryout").await;

    // 8. A subscriber cannot reach the Publisher or Admin pages.
    for page in ["/publisher", "/admin", "/admin/deny-policies"] {
        b.goto(&format!("{base}{page}")).await;
        b.wait_for_text("You cannot open this page").await;
    }

    // 9. A form posted from another site is refused, and nothing is created.
    b.goto(&format!("http://{}/forged", backend.addr)).await;
    b.wait_for_text("This form cannot be accepted").await;
    b.goto(&format!("{base}/devportal/applications")).await;
    assert!(
        !b.page_text().await.contains("Forged"),
        "the forged form created nothing"
    );
    sign_out(&b).await;

    // 10. The admin adds an IP deny policy (a bad address first); the console shows 403.
    sign_in(&b, &base, "/admin/users", ADMIN).await;
    b.click("form[data-user=admin] input[value=admin]").await; // the last administrator
    b.click("form[data-user=admin] button").await;
    b.wait_for_text("admin:").await;
    assert!(
        b.page_text().await.to_lowercase().contains("administrator"),
        "{}",
        b.whereabouts().await
    );
    b.goto(&format!("{base}/admin/policies/subscription")).await;
    b.wait_for_text("Signed in as admin").await;
    b.fill("#f-policyName", "Tiny").await;
    b.fill("#f-requestCount", "lots").await;
    b.click("#policy-form button[type=submit]").await;
    assert!(field_error(&b).await.contains("whole number"), "a non-number is named");
    b.fill("#f-requestCount", "0").await;
    b.click("#policy-form button[type=submit]").await;
    b.wait_for_text("must be at least 1").await;
    assert!(!b.text_of("#policies").await.contains("Tiny"), "nothing was added");
    b.goto(&format!("{base}/admin/policies/advanced")).await;
    b.fill("#f-policyName", "partners").await;
    b.fill("#f-requestCount", "100").await;
    b.select_by_label("#f-conditionType", "Header equals").await;
    b.fill("#f-conditionValue", "gold").await;
    b.fill("#f-groupRequestCount", "1000").await;
    b.click("#policy-form button[type=submit]").await;
    assert!(
        field_error(&b).await.contains("must not be empty"),
        "{}",
        b.whereabouts().await
    );
    b.wait_for("#f-conditionName[aria-invalid=true]").await; // next to the header name
    assert_eq!(b.value_of("#f-conditionValue").await, "gold", "what was typed is kept");
    assert!(!b.page_text().await.contains("partners"), "nothing was added");
    b.fill("#f-conditionName", "X-Partner").await;
    b.screenshot("admin-advanced-policy").await;
    b.click("#policy-form button[type=submit]").await;
    b.wait_for("#policies").await;
    assert!(b.text_of("#policies").await.contains("partners"));
    b.goto(&format!("{base}/admin/policies/custom")).await;
    b.fill("#f-policyName", "per-user").await;
    b.fill("#f-keyTemplate", "$nobody").await;
    b.fill("#f-requestCount", "5").await;
    b.click("#policy-form button[type=submit]").await;
    assert!(
        field_error(&b).await.contains("nobody"),
        "the unknown variable is named"
    );
    assert!(!b.page_text().await.contains("per-user"), "nothing was added");
    b.goto(&format!("{base}/admin/key-managers")).await;
    b.fill("#f-name", "Keycloak").await;
    b.fill("#f-issuer", "ftp://idp.example.com/realms/main").await;
    b.fill("#f-jwksUrl", "http://127.0.0.1:9/certs").await;
    b.click("#key-manager-form button[type=submit]").await;
    assert!(
        field_error(&b).await.contains("http(s) URL"),
        "the issuer's scheme is named"
    );
    assert!(
        b.page_text().await.contains("No third-party key managers"),
        "nothing was added"
    );
    b.fill("#f-issuer", "https://idp.example.com/realms/main").await;
    b.click("#key-manager-form button[type=submit]").await;
    b.wait_for("#key-managers").await;
    b.click("#key-managers form[action$='/status'] button").await;
    b.wait_for_text("Enable").await;
    assert!(b.text_of("#key-managers").await.contains("disabled"));
    b.screenshot("admin-key-managers").await;
    b.goto(&format!("{base}/admin/deny-policies")).await;
    b.fill("#f-fixedIp", "300.1.1.1").await;
    b.click("#deny-form button").await;
    assert!(field_error(&b).await.contains("IP address"), "bad IP named");
    assert!(!b.page_text().await.contains("enabled"), "nothing was added");
    b.fill("#f-fixedIp", "127.0.0.1").await;
    b.click("#deny-form button").await;
    b.wait_for("#deny-policies").await;
    b.screenshot("admin-deny-policies").await;
    sign_out(&b).await;
    sign_in(&b, &base, &api_url.replace(&base, ""), DEV).await;
    b.fill("#f-path", "/pets").await;
    let mut status = String::new();
    for _ in 0..20 {
        b.click("#tryout-send").await;
        status = b.text_of("#tryout-status").await;
        if status == "403" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, "403", "{}", b.whereabouts().await);
    assert!(b.text_of("#tryout-body").await.contains("900805"));

    // 11. The dashboards show the calls above: the subscriber's usage and quota, the
    //     platform and the API's analytics.
    b.goto(&format!("{app_url}/analytics")).await;
    b.wait_for_text("Quota left").await;
    assert_calls_shown(&b, 2).await;
    assert!(b.text_of("#quotas").await.contains("Gold"), "{}", b.whereabouts().await);
    b.wait_for("#traffic-chart svg polyline").await;
    b.screenshot("devportal-analytics").await;
    sign_out(&b).await;
    sign_in(&b, &base, "/admin/analytics", ADMIN).await;
    assert_calls_shown(&b, 2).await;
    b.wait_for("#traffic-chart svg polyline").await;
    assert!(b.text_of("#environments-table").await.contains("Default"));
    b.screenshot("admin-analytics").await;
    let api_id = api_url
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    b.goto(&format!("{base}/publisher/apis/{api_id}/analytics")).await;
    assert_calls_shown(&b, 2).await;
    assert!(
        b.text_of("#top-applications").await.contains("Pet shop"),
        "{}",
        b.whereabouts().await
    );
    b.screenshot("publisher-analytics").await;

    // 11. The same pages on a phone.
    b.resize(390, 844).await;
    b.goto(&format!("{base}/devportal")).await;
    b.screenshot("devportal-catalogue-phone").await;
    b.close().await;
}
