//! What a person holds once an administrator or a publisher takes something away, end to
//! end on an all-in-one node: a user who is disabled, deleted or loses a role loses every
//! token issued to them, at the gateway (which checks JWTs offline, so it must learn of it
//! from the outbox) and at introspection; a rotated refresh token presented again revokes
//! the tokens descended from it; and a blocked subscription stays blocked.

use crate::gateway_flow::{ADMIN, Client, DEV, backend, ready_node};
use crate::tollgate;
use reqwest::Method;
use serde_json::{Value, json};

/// A user's tokens from the password grant.
struct Held {
    access: String,
    refresh: String,
}

impl Client {
    /// Creates a user through the Admin API with these roles.
    async fn create_user(&self, name: &str, roles: &[&str]) {
        let (status, body) = self
            .rest(
                ADMIN,
                Method::POST,
                "/admin/v4/users",
                Some(json!({"username": name, "password": format!("{name}-password"), "roles": roles})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// An OAuth2 form post to the key manager as the client `(ck, cs)`.
    async fn oauth(&self, client: (&str, &str), path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("http://{}{path}", self.mgmt))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The password grant for `user` through the client `(ck, cs)`.
    async fn password_grant(&self, client: (&str, &str), user: &str) -> Held {
        let password = format!("{user}-password");
        let (status, body) = self
            .oauth(
                client,
                "/oauth2/token",
                &[("grant_type", "password"), ("username", user), ("password", &password)],
            )
            .await;
        assert_eq!(status, 200, "{user}: {body}");
        Held {
            access: body["access_token"].as_str().unwrap().to_string(),
            refresh: body["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// Whether introspection says `token` is active.
    async fn active(&self, client: (&str, &str), token: &str) -> bool {
        let (status, body) = self.oauth(client, "/oauth2/introspect", &[("token", token)]).await;
        assert_eq!(status, 200, "{body}");
        body["active"] == true
    }

    /// The refresh grant with `refresh_token`: (status, body).
    async fn refresh(&self, client: (&str, &str), refresh_token: &str) -> (u16, Value) {
        self.oauth(
            client,
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        )
        .await
    }

    /// Asserts that `held` is refused everywhere: 401 900901 at the gateway (once the
    /// revocation event has arrived), inactive at introspection, and not renewable.
    async fn assert_revoked(&self, client: (&str, &str), path: &str, who: &str, held: &Held) {
        let (status, body) = self.eventually(path, &held.access, |s, _| s == 401).await;
        assert_eq!(
            (status, body["code"].clone()),
            (401, json!(900901)),
            "{who}: the gateway still accepts the token: {body}"
        );
        assert!(!self.active(client, &held.access).await, "{who}: still active");
        let (status, body) = self.refresh(client, &held.refresh).await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("invalid_grant")),
            "{who}: {body}"
        );
    }
}

#[tokio::test]
async fn a_disabled_deleted_or_demoted_user_loses_every_token_and_a_reused_refresh_token_its_family() {
    let backend = backend().await;
    let (_node, c) = ready_node(tollgate().env("TOLLGATE_GATEWAY__POLL_INTERVAL", "100ms")).await;
    let api = c
        .deploy_api(
            "IdPets",
            "/idpets",
            json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}}),
        )
        .await;
    // DEV's application lets its users sign in with the password grant and refresh.
    let (app, ck, cs, _) = c
        .app_with_grants(
            "IdShop",
            "JWT",
            "Unlimited",
            &["password", "refresh_token", "client_credentials"],
        )
        .await;
    let client = (ck.as_str(), cs.as_str());
    c.subscribe_app(&app, &api).await;

    for name in ["ida", "ivo", "ina", "ivy", "ike"] {
        c.create_user(name, &["subscriber"]).await;
    }
    let path = "/idpets/1.0.0/pets/1";
    let ida = c.password_grant(client, "ida").await;
    let ivo = c.password_grant(client, "ivo").await;
    let ina = c.password_grant(client, "ina").await;
    let ivy = c.password_grant(client, "ivy").await;
    let ike = c.password_grant(client, "ike").await;
    let owner = c.token(&ck, &cs).await;
    let (status, body) = c.eventually(path, &ida.access, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    for (who, token) in [
        ("ivo", &ivo.access),
        ("ina", &ina.access),
        ("ike", &ike.access),
        ("dev", &owner),
    ] {
        let (status, _, body) = c.call(Method::GET, path, Some(token)).await;
        assert_eq!(status, 200, "{who}: {body}");
    }

    // Disabled.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::PATCH,
            "/admin/v4/users/ida",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.assert_revoked(client, path, "disabled ida", &ida).await;

    // Deleted.
    let (status, body) = c.rest(ADMIN, Method::DELETE, "/admin/v4/users/ivo", None).await;
    assert_eq!(status, 200, "{body}");
    c.assert_revoked(client, path, "deleted ivo", &ivo).await;

    // A role taken away (the scopes its tokens carry may rest on it).
    let (status, body) = c
        .rest(
            ADMIN,
            Method::PATCH,
            "/admin/v4/users/ina",
            Some(json!({"roles": ["creator"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.assert_revoked(client, path, "demoted ina", &ina).await;

    // A rotated refresh token presented again revokes what descends from it: the access
    // and refresh tokens its rotation issued (RFC 9700 §4.14.2).
    let (status, rotated) = c.refresh(client, &ivy.refresh).await;
    assert_eq!(status, 200, "{rotated}");
    let rotated = Held {
        access: rotated["access_token"].as_str().unwrap().to_string(),
        refresh: rotated["refresh_token"].as_str().unwrap().to_string(),
    };
    let (status, _, body) = c.call(Method::GET, path, Some(&rotated.access)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.refresh(client, &ivy.refresh).await;
    assert_eq!((status, body["error"].clone()), (400, json!("invalid_grant")), "{body}");
    c.assert_revoked(client, path, "ivy's rotated tokens", &rotated).await;
    c.assert_revoked(client, path, "ivy's first tokens", &ivy).await;

    // Everyone else keeps theirs.
    for (who, token) in [("ike", &ike.access), ("dev", &owner)] {
        let (status, _, body) = c.call(Method::GET, path, Some(token)).await;
        assert_eq!(status, 200, "{who}: {body}");
        assert!(c.active(client, token).await, "{who}");
    }
    let (status, body) = c.refresh(client, &ike.refresh).await;
    assert_eq!(status, 200, "{body}");

    // The owner's client-credentials tokens speak for the owner: they go with the owner.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::PATCH,
            &format!("/admin/v4/users/{}", DEV.0),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.eventually(path, &owner, |s, _| s == 401).await;
    assert_eq!((status, body["code"].clone()), (401, json!(900901)), "{body}");
    assert!(!c.active(client, &owner).await);
}

#[tokio::test]
async fn a_blocked_subscription_cannot_be_removed_and_taken_out_again() {
    let backend = backend().await;
    let (_node, c) = ready_node(tollgate().env("TOLLGATE_GATEWAY__POLL_INTERVAL", "100ms")).await;
    let (api, app, token) = c
        .subscribed(
            "IdBlocked",
            "/idblocked",
            &format!("http://{}/v1", backend.addr),
            crate::gateway_flow::standard_operations(),
        )
        .await;
    let path = "/idblocked/1.0.0/pets/1";
    let (status, body) = c.eventually(path, &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let (_, subs) = c
        .rest(
            DEV,
            Method::GET,
            &format!("/devportal/v3/subscriptions?applicationId={app}"),
            None,
        )
        .await;
    let sub = subs["list"][0]["subscriptionId"].as_str().unwrap().to_string();
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            &format!("/publisher/v4/subscriptions/block-subscription?subscriptionId={sub}&blockState=BLOCKED"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.eventually(path, &token, |s, _| s == 403).await;
    assert_eq!((status, body["code"].clone()), (403, json!(900907)), "{body}");

    // The subscriber cannot remove the blocked subscription to subscribe afresh.
    let (status, body) = c
        .rest(DEV, Method::DELETE, &format!("/devportal/v3/subscriptions/{sub}"), None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["description"].as_str().is_some_and(|d| d.contains("BLOCKED")),
        "{body}"
    );
    let (status, body) = c
        .rest(
            DEV,
            Method::POST,
            "/devportal/v3/subscriptions",
            Some(json!({"applicationId": app, "apiId": api, "throttlingPolicy": "Gold"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _, body) = c.call(Method::GET, path, Some(&token)).await;
    assert_eq!(
        (status, body["code"].clone()),
        (403, json!(900907)),
        "still blocked: {body}"
    );

    // Once the publisher unblocks it, the subscriber may remove it as any other.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            &format!("/publisher/v4/subscriptions/unblock-subscription?subscriptionId={sub}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .rest(DEV, Method::DELETE, &format!("/devportal/v3/subscriptions/{sub}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
}
