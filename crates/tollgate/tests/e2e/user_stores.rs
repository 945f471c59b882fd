//! Directory users end to end (issue 28): an all-in-one node configured with a real
//! OpenLDAP server (`slapd`) as its primary directory and again as the `CORP` store.
//! Directory users sign in with HTTP Basic and the password grant and get the roles their
//! groups map to; the built-in users go on as before. When the directory stops, sign-in
//! answers 503 (never "wrong password"), tokens already issued keep working at the
//! gateway, and sign-in recovers when the directory is back, without a restart.

use crate::gateway_flow::{ADMIN, Client, backend, ready_node};
use crate::tollgate;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_testkit::Slapd;
use tollgate_testkit::ldap::{GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};

/// One `[[user_store]]` entry for `slapd`, under `domain` (empty: the primary store).
fn store_entry(slapd: &Slapd, domain: &str) -> String {
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
role_mapping = {{ apiPublishers = ["publisher", "creator"], apiSubscribers = ["subscriber"] }}
"#,
        url = slapd.url
    )
}

impl Client {
    /// The password grant for `username` through the client `(ck, cs)`: (status, body).
    async fn password_grant_as(&self, client: (&str, &str), username: &str, password: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("http://{}/oauth2/token", self.mgmt))
            .basic_auth(client.0, Some(client.1))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
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
    let config = format!("{}{}", store_entry(&slapd, ""), store_entry(&slapd, "CORP"));
    let (_node, c) = ready_node(
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
    let (status, body) = c.rest(alice, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 403, "alice is no administrator: {body}");
    let (status, body) = c
        .rest(("alice", "bob-password"), Method::GET, "/publisher/v4/apis", None)
        .await;
    assert_eq!(status, 401, "another's password: {body}");
    // A name that tries to rewrite the directory's filter finds nobody.
    let (status, _) = c
        .rest(("*)(uid=*", "alice-password"), Method::GET, "/publisher/v4/apis", None)
        .await;
    assert_eq!(status, 401);
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
    // The built-in administrator is unaffected.
    let (status, body) = c.rest(ADMIN, Method::GET, "/admin/v4/users", None).await;
    assert_eq!(status, 200, "{body}");

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

    // Back up: the same node signs directory users in again.
    slapd.resume();
    let (status, body) = c.rest(dave, Method::GET, "/devportal/v3/applications", None).await;
    assert_eq!(status, 403, "dave signs in, and his groups give him no role: {body}");
    let (status, body) = c.password_grant_as((&ck, &cs), bob.0, bob.1).await;
    assert_eq!(status, 200, "{body}");
}
