//! Directory users end to end (issue 28): an all-in-one node configured with a real
//! OpenLDAP server (`slapd`) as its primary directory and again as the `CORP` store.
//! Directory users sign in with HTTP Basic and the password grant and get the roles their
//! groups map to; the built-in users go on as before. When the directory stops, sign-in
//! answers 503 (never "wrong password"), tokens already issued keep working at the
//! gateway, and sign-in recovers when the directory is back, without a restart.

use crate::gateway_flow::{ADMIN, Client, DEV, backend, create_test_scope, ready_node};
use crate::{READY, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_testkit::Browser;
use tollgate_testkit::Slapd;
use tollgate_testkit::ldap::{GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};

/// One `[[user_store]]` entry for `slapd`, under `domain` (empty: the primary store).
fn store_entry(slapd: &Slapd, domain: &str) -> String {
    store_entry_with(slapd, domain, "")
}

/// [`store_entry`] with more settings (`cache_ttl = "1s"`).
fn store_entry_with(slapd: &Slapd, domain: &str, more: &str) -> String {
    format!(
        r#"
[[user_store]]
domain = "{domain}"
urls = ["{url}"]
bind_dn = "{SERVICE_DN}"
bind_password = "{SERVICE_PASSWORD}"
user_search_base = "{PEOPLE_DN}"
group_search_base = "{GROUPS_DN}"
connect_timeout = "1s"
role_mapping = {{ apiPublishers = ["publisher", "creator", "petsAdmin"], apiSubscribers = ["subscriber"] }}
{more}
"#,
        url = slapd.url
    )
}

/// A node configured for the directory `slapd`, and a client of it, as
/// [`ready_node`] makes them, except that DEV (`gwdev`) is a user of the directory (in
/// `apiSubscribers`) instead of signing up: a read-only primary directory refuses
/// sign-up, which is what a node with one must do.
async fn directory_node(slapd: &Slapd, builder: tollgate_testkit::NodeBuilder) -> (tollgate_testkit::Node, Client) {
    slapd.modify(&format!(
        "dn: uid={dev},{PEOPLE_DN}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {dev}\ncn: Dev\nsn: Dev\nuserPassword: {password}\n\n\
         dn: cn=apiSubscribers,{GROUPS_DN}\nchangetype: modify\nadd: member\nmember: uid={dev},{PEOPLE_DN}\n",
        dev = DEV.0,
        password = DEV.1
    ));
    let mut node = builder.spawn();
    let mgmt = node.wait_ready(READY).await;
    let c = Client::new(mgmt, node.listener("gateway"));
    create_test_scope(&c).await;
    (node, c)
}

impl Client {
    /// Self sign-up as `username` (into `tenant`, by the reference's header): (status, body).
    async fn sign_up(&self, username: &str, tenant: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("http://{}/api/am/devportal/v3/signup", self.mgmt))
            .json(&json!({"username": username, "password": "new-password-1", "email": "new@example.com"}));
        if let Some(tenant) = tenant {
            req = req.header("X-WSO2-Tenant", tenant);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The password grant for `username` through the client `(ck, cs)`: (status, body).
    async fn password_grant_as(&self, client: (&str, &str), username: &str, password: &str) -> (u16, Value) {
        self.password_grant_scoped(client, username, password, "").await
    }

    /// [`Self::password_grant_as`] asking for `scope` (none when empty).
    async fn password_grant_scoped(
        &self,
        client: (&str, &str),
        username: &str,
        password: &str,
        scope: &str,
    ) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let r = self
            .http
            .post(format!("http://{}/oauth2/token", self.mgmt))
            .basic_auth(client.0, Some(client.1))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn directory_users_sign_in_with_their_groups_roles_and_an_outage_is_a_503_not_a_wrong_password() {
    let Some(mut slapd) = Slapd::start() else { return };
    let backend = backend().await;
    // CORP also finds people by their email address (as Active Directory's preset finds
    // them by userPrincipalName).
    let corp = store_entry_with(
        &slapd,
        "CORP",
        "user_filter = \"(&(objectClass=person)(|(uid={username})(mail={username})))\"",
    );
    let config = format!("{}{corp}", store_entry(&slapd, ""));
    let (_node, c) = directory_node(
        &slapd,
        tollgate()
            .env("TOLLGATE_GATEWAY__POLL_INTERVAL", "100ms")
            .config(&config),
    )
    .await;

    // alice of the primary directory is a publisher and creator: she creates an API but
    // does not administer.
    let alice = ("alice", "alice-password");
    let (status, body) = c
        .rest(
            alice,
            Method::POST,
            "/publisher/v4/apis",
            Some(json!({"name": "Directory", "context": "/directory", "version": "1.0.0",
                "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": "http://127.0.0.1:9/"}},
                "operations": [{"target": "/x", "verb": "GET"}]})),
        )
        .await;
    assert_eq!(status, 201, "alice creates an API: {body}");
    let created = body["id"].as_str().unwrap().to_string();
    let (status, body) = c
        .rest(
            alice,
            Method::POST,
            &format!("/publisher/v4/apis/change-lifecycle?apiId={created}&action=Publish"),
            None,
        )
        .await;
    assert_eq!(status, 200, "and publishes it: {body}");
    let (status, body) = c.rest(alice, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 403, "alice is no administrator: {body}");
    let (status, body) = c
        .rest(("alice", "bob-password"), Method::GET, "/publisher/v4/apis", None)
        .await;
    assert_eq!(status, 401, "another's password: {body}");
    // Names that try to rewrite the directory's filter find nobody.
    for name in ["*)(uid=*", "admin)(|(objectClass=*", "*", "alice)(uid=*"] {
        let (status, body) = c
            .rest((name, "alice-password"), Method::GET, "/publisher/v4/apis", None)
            .await;
        assert_eq!(status, 401, "{name}: {body}");
    }
    // A locked directory account is refused like a wrong password.
    let (status, _) = c
        .rest(
            ("carol", "carol-password"),
            Method::GET,
            "/devportal/v3/applications",
            None,
        )
        .await;
    assert_eq!(status, 401);

    // CORP/bob of the secondary store is a subscriber only.
    let bob = ("CORP/bob", "bob-password");
    let (status, body) = c.rest(bob, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 200, "CORP/bob uses the Developer Portal: {body}");
    let (status, _) = c.rest(bob, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(status, 403, "CORP/bob is no publisher");
    // A name with `@` that is no tenant's: the super tenant's CORP/bob@example.com, whom
    // CORP finds by email address.
    let (status, body) = c
        .rest(
            ("CORP/bob@example.com", "bob-password"),
            Method::GET,
            "/devportal/v3/applications",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The built-in administrator is unaffected.
    let (status, body) = c.rest(ADMIN, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 200, "{body}");

    // The administrator lists a directory's users (names as they sign in, roles from
    // groups) and reads one; an unknown store is a bad parameter.
    let (status, listed) = c
        .rest(ADMIN, Method::GET, "/admin/v4/users?userStore=CORP&limit=2", None)
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["pagination"]["total"], 5,
        "alice, bob, carol, dave and gwdev: {listed}"
    );
    let names: Vec<_> = listed["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, [json!("CORP/alice"), json!("CORP/bob")], "{listed}");
    assert!(
        listed["list"][0]["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("publisher")),
        "{listed}"
    );
    let (_, listed) = c
        .rest(ADMIN, Method::GET, "/admin/v4/users?userStore=PRIMARY&offset=3", None)
        .await;
    assert_eq!(listed["list"][0]["username"], "dave", "{listed}");
    let (status, body) = c.rest(ADMIN, Method::GET, "/admin/v4/users?userStore=NOPE", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("userStore"), "{body}");
    let (status, bob_info) = c.rest(ADMIN, Method::GET, "/admin/v4/users/CORP%2Fbob", None).await;
    assert_eq!(status, 200, "{bob_info}");
    assert_eq!(
        (&bob_info["username"], &bob_info["roles"]),
        (&json!("CORP/bob"), &json!(["subscriber"]))
    );

    // CORP/bob gets a token with the password grant and calls an API through the gateway.
    let api = c
        .deploy_api_with(
            "DirPets",
            "/dirpets",
            json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}}),
            json!([{"target": "/pets/*", "verb": "GET"}]),
        )
        .await;
    let (app, ck, cs, _) = c
        .app_with_grants("DirApp", "JWT", "Unlimited", &["password", "client_credentials"])
        .await;
    c.subscribe_app(&app, &api).await;
    let (status, body) = c.password_grant_as((&ck, &cs), bob.0, bob.1).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let (status, body) = c.eventually("/dirpets/1.0.0/pets/1", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = c.password_grant_as((&ck, &cs), bob.0, "alice-password").await;
    assert_eq!(status, 400, "a wrong password is invalid_grant");

    // A custom role from role_mapping (`petsAdmin`, alice's through apiPublishers) binds
    // a shared scope: alice is granted it, bob is not.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/publisher/v4/scopes",
            Some(json!({"name": "pets_admin", "bindings": ["petsAdmin"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = c
        .password_grant_scoped((&ck, &cs), "alice", "alice-password", "pets_admin")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["scope"].as_str().unwrap().contains("pets_admin"), "{body}");
    let (status, body) = c.password_grant_scoped((&ck, &cs), bob.0, bob.1, "pets_admin").await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_scope")), "{body}");

    // The directory goes down: sign-in is unavailable, the token keeps working. (dave has
    // not signed in yet, so no verified credentials of his are remembered.)
    slapd.stop();
    let dave = ("dave", "dave-password");
    let (status, body) = c.rest(dave, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("cannot be reached"), "{body}");
    let (status, body) = c.password_grant_as((&ck, &cs), bob.0, bob.1).await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable")),
        "{body}"
    );
    let (status, _, body) = c.call(Method::GET, "/dirpets/1.0.0/pets/2", Some(&token)).await;
    assert_eq!(status, 200, "an issued token is checked without the directory: {body}");
    // The built-in users sign in as before.
    let (status, _) = c.rest(ADMIN, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 200);
    // And the node stays ready: a directory is not something it needs to serve.
    let ready = c
        .http
        .get(format!("http://{}/health/ready", c.mgmt))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200, "ready during the directory's outage");

    // Back up: the same node signs directory users in again.
    slapd.resume();
    let (status, body) = c.rest(dave, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 403, "dave signs in, and his groups give him no role: {body}");
    let (status, body) = c.password_grant_as((&ck, &cs), bob.0, bob.1).await;
    assert_eq!(status, 200, "{body}");
}

/// Polls `check` every 100 ms for up to 15 s until it says yes; how long it took.
async fn within_15s<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn a_user_removed_from_a_group_loses_its_role_once_the_store_reads_groups_again() {
    let Some(slapd) = Slapd::start() else { return };
    let (_node, c) = directory_node(
        &slapd,
        tollgate().config(&store_entry_with(&slapd, "", "cache_ttl = \"1s\"")),
    )
    .await;
    let alice = ("alice", "alice-password");
    let (app, ck, cs, _) = c.app_with_grants("GroupApp", "JWT", "Unlimited", &["password"]).await;
    let _ = app;
    let r = c
        .http
        .post(format!("http://{}/oauth2/token", c.mgmt))
        .basic_auth(&ck, Some(&cs))
        .form(&[
            ("grant_type", "password"),
            ("username", alice.0),
            ("password", alice.1),
            ("scope", "apim:api_view apim:api_create"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let with_token = || async {
        c.http
            .get(format!("http://{}/api/am/publisher/v4/apis", c.mgmt))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // A publisher now, with her password and with her token.
    for _ in 0..3 {
        let (status, body) = c.rest(alice, Method::GET, "/publisher/v4/apis", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(with_token().await, 200);
    }

    // Out of the group in the directory: within the store's cache_ttl (1 s) and the
    // credential cache it bounds, both ways of signing in lose the role; nothing else
    // has to happen on the node.
    slapd.remove_member("apiPublishers", "alice");
    let basic = within_15s(|| async { c.rest(alice, Method::GET, "/publisher/v4/apis", None).await.0 == 403 }).await;
    assert!(basic.is_some(), "the password still gives the publisher role");
    let bearer = within_15s(|| async { with_token().await == 403 }).await;
    assert!(bearer.is_some(), "the token still carries the publisher role");
    // She still signs in (her password is right), as a subscriber only.
    let (status, body) = c.rest(alice, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_tenants_own_directory_serves_only_that_tenant() {
    let Some(slapd) = Slapd::start() else { return };
    // The test's slapd listens on loopback, which tenants may not use by default.
    let (_node, c) = ready_node(
        tollgate()
            .env("TOLLGATE_ADMIN__TENANT_DIRECTORY_INTERNAL_ADDRESSES", "true")
            .config(&store_entry(&slapd, "CORP")),
    )
    .await;
    for domain in ["acme.com", "globex.com"] {
        let (status, body) = c
            .rest(
                ADMIN,
                Method::POST,
                "/admin/v4/tenants",
                Some(
                    json!({"domain": domain, "adminUsername": "admin", "adminPassword": "tenant-admin-password",
                    "email": format!("admin@{domain}")}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let acme_admin = ("admin@acme.com", "tenant-admin-password");
    let globex_admin = ("admin@globex.com", "tenant-admin-password");
    let registration = json!({
        "domain": "ACMEDIR",
        "urls": [slapd.url],
        "bindDn": SERVICE_DN,
        "bindPassword": SERVICE_PASSWORD,
        "userSearchBase": PEOPLE_DN,
        "groupSearchBase": GROUPS_DN,
        "connectTimeoutSeconds": 1,
        "roleMapping": {"apiPublishers": ["publisher", "creator"], "apiSubscribers": ["subscriber"]},
    });
    let (status, tried) = c
        .rest(
            acme_admin,
            Method::POST,
            "/admin/v4/user-stores/test-connection",
            Some(registration.clone()),
        )
        .await;
    assert_eq!((status, &tried["connection"]), (200, &json!(true)), "{tried}");
    let (status, store) = c
        .rest(acme_admin, Method::POST, "/admin/v4/user-stores", Some(registration))
        .await;
    assert_eq!(status, 201, "{store}");

    // acme's directory users sign in to acme, with their groups' roles there.
    let alice = ("ACMEDIR/alice@acme.com", "alice-password");
    let (status, created) = c
        .rest(
            alice,
            Method::POST,
            "/publisher/v4/apis",
            Some(
                json!({"name": "AcmeDirectory", "context": "/acmedir", "version": "1.0.0",
                "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": "http://127.0.0.1:9/"}},
                "operations": [{"target": "/x", "verb": "GET"}]}),
            ),
        )
        .await;
    assert_eq!(
        status, 201,
        "alice of acme's directory creates an API in acme: {created}"
    );
    let (_, apis) = c.rest(acme_admin, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(apis["count"], 1, "the API is acme's: {apis}");
    let (_, apis) = c.rest(ADMIN, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(apis["count"], 0, "and not the super tenant's: {apis}");
    let (status, _) = c.rest(alice, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 403, "alice does not administer acme");
    let (status, _) = c
        .rest(
            ("ACMEDIR/bob@acme.com", "bob-password"),
            Method::GET,
            "/devportal/v3/applications",
            None,
        )
        .await;
    assert_eq!(status, 200);

    // The same names in another tenant, or in the super tenant, find nothing.
    for name in [
        "ACMEDIR/alice@globex.com",
        "ACMEDIR/alice",
        "ACMEDIR/alice@carbon.super",
    ] {
        let (status, body) = c
            .rest((name, "alice-password"), Method::GET, "/devportal/v3/apis", None)
            .await;
        assert_eq!(status, 401, "{name}: {body}");
    }
    let (_, list) = c.rest(globex_admin, Method::GET, "/admin/v4/user-stores", None).await;
    assert_eq!(list["count"], 0, "globex sees no store of acme's: {list}");
    let id = store["id"].as_str().unwrap();
    let (status, _) = c
        .rest(
            globex_admin,
            Method::DELETE,
            &format!("/admin/v4/user-stores/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "globex cannot remove acme's store");
    // The super tenant's configured CORP is not acme's either.
    let (status, _) = c
        .rest(
            ("CORP/bob@acme.com", "bob-password"),
            Method::GET,
            "/devportal/v3/apis",
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = c
        .rest(
            ("CORP/bob", "bob-password"),
            Method::GET,
            "/devportal/v3/applications",
            None,
        )
        .await;
    assert_eq!(status, 200, "the super tenant's CORP/bob is unaffected");

    // The directory is read-only: sign-up into it and new users in it are refused.
    let (status, body) = c.sign_up("ACMEDIR/zed", Some("acme.com")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("read-only"), "{body}");
    let (status, body) = c
        .rest(
            acme_admin,
            Method::POST,
            "/admin/v4/users",
            Some(json!({"username": "ACMEDIR/zed", "password": "zed-password-1", "roles": ["subscriber"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("read-only"), "{body}");

    // While acme is deactivated, its directory's users cannot sign in either.
    let bob_of_acme = ("ACMEDIR/bob@acme.com", "bob-password");
    let (status, body) = c
        .rest(ADMIN, Method::POST, "/admin/v4/tenants/acme.com/deactivate", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .rest(bob_of_acme, Method::GET, "/devportal/v3/applications", None)
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("deactivated"), "{body}");
    let (status, body) = c
        .rest(ADMIN, Method::POST, "/admin/v4/tenants/acme.com/activate", None)
        .await;
    assert_eq!(status, 200, "{body}");

    // Removed: its users no longer sign in.
    let (status, _) = c
        .rest(acme_admin, Method::DELETE, &format!("/admin/v4/user-stores/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .rest(
            ("ACMEDIR/bob@acme.com", "bob-password"),
            Method::GET,
            "/devportal/v3/applications",
            None,
        )
        .await;
    assert_eq!(status, 401, "a removed directory signs no one in");
}

#[tokio::test]
async fn directory_users_sign_in_to_the_portals_in_a_browser() {
    let Some(b) = Browser::start().await else { return };
    let Some(slapd) = Slapd::start() else { return };
    let config = format!("{}{}", store_entry(&slapd, ""), store_entry(&slapd, "CORP"));
    let mut node = tollgate().config(&config).spawn();
    let mgmt = node.wait_ready(READY).await;
    let base = format!("http://{mgmt}");

    // alice of the primary directory, through the key manager's login page: a wrong
    // password is refused, hers opens the Publisher.
    b.goto(&format!("{base}/publisher")).await;
    assert!(b.url().await.contains("/oauth2/authorize"), "anonymous → login page");
    b.fill("#username", "alice").await;
    b.fill("#password", "bob-password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Wrong username or password").await;
    b.fill("#password", "alice-password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Signed in as alice").await;
    b.goto(&format!("{base}/publisher")).await;
    b.wait_for_text("Signed in as alice").await;
    assert!(
        !b.page_text().await.contains("You cannot open this page"),
        "{}",
        b.whereabouts().await
    );
    b.sign_out_of_portals().await;

    // CORP/bob of the secondary store uses the Developer Portal, and is no publisher.
    b.sign_in_to_portals(&base, "/devportal/applications", "CORP/bob", "bob-password")
        .await;
    b.goto(&format!("{base}/devportal/applications")).await;
    b.wait_for_text("Signed in as CORP/bob").await;
    b.goto(&format!("{base}/publisher")).await;
    b.wait_for_text("You cannot open this page").await;
}

#[tokio::test]
async fn a_writable_directory_gets_new_users_and_a_read_only_one_refuses_them() {
    let Some(slapd) = Slapd::start() else { return };
    // The primary directory is read-only (the default); RW is the same directory, bound
    // as its manager and writable.
    let writable = format!(
        "{}read_only = false\n",
        store_entry(&slapd, "RW")
            .replace(", \"petsAdmin\"", "")
            .replace(SERVICE_DN, tollgate_testkit::ldap::MANAGER_DN)
            .replace(SERVICE_PASSWORD, tollgate_testkit::ldap::MANAGER_PASSWORD)
    );
    let config = format!("{}{writable}", store_entry(&slapd, ""));
    let (_node, c) = directory_node(&slapd, tollgate().config(&config)).await;
    // Self sign-up into the writable directory: the entry is made, in the group that
    // gives the subscriber role, and the new user uses the Developer Portal at once.
    let (status, body) = c.sign_up("RW/erin", None).await;
    assert_eq!(status, 201, "{body}");
    let stored = slapd.search(&format!("uid=erin,{PEOPLE_DN}"), "userPassword");
    assert!(!stored.contains("new-password-1"), "the directory hashed it: {stored}");
    let erin = ("RW/erin", "new-password-1");
    let (status, apps) = c.rest(erin, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 200, "{apps}");
    assert_eq!(apps["list"][0]["name"], "DefaultApplication", "{apps}");
    let (status, _) = c.rest(erin, Method::GET, "/publisher/v4/apis", None).await;
    assert_eq!(status, 403, "a subscriber only");
    // The same name again is a conflict.
    let (status, body) = c.sign_up("RW/erin", None).await;
    assert_eq!(status, 409, "{body}");

    // The administrator adds a publisher there: the groups mapped to the roles asked for.
    let (status, frank) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/users",
            Some(json!({"username": "RW/frank", "password": "frank-password-1", "roles": ["publisher", "creator"]})),
        )
        .await;
    assert_eq!(status, 201, "{frank}");
    assert_eq!(frank["username"], "RW/frank");
    let (status, body) = c
        .rest(
            ("RW/frank", "frank-password-1"),
            Method::GET,
            "/publisher/v4/apis",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A role no group maps to is refused and adds nothing.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/users",
            Some(json!({"username": "RW/gina", "password": "gina-password-1", "roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("role_mapping"), "{body}");
    let (status, _) = c.rest(ADMIN, Method::GET, "/admin/v4/users/RW%2Fgina", None).await;
    assert_eq!(status, 404);

    // The read-only primary directory refuses sign-up and new users, saying so; nothing
    // is added to the built-in store either.
    for name in ["newbie", "RW2/newbie"] {
        let (status, body) = c.sign_up(name, None).await;
        if name == "newbie" {
            assert_eq!(status, 400, "{body}");
            assert!(body.to_string().contains("read-only"), "{body}");
        } else {
            assert_eq!(status, 400, "no store RW2, and `/` is no built-in name: {body}");
        }
    }
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/users",
            Some(json!({"username": "newbie", "password": "newbie-password", "roles": ["subscriber"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("read-only"), "{body}");
    let (_, users) = c.rest(ADMIN, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(
        users["pagination"]["total"], 1,
        "only the bootstrap administrator: {users}"
    );
}
