//! Third-party key managers end to end: an administrator registers an OIDC provider, the
//! node's key manager fetches its JWKS (from a real HTTP server standing in for the
//! provider) and announces it in the outbox for gateways; an application maps its
//! existing client id from that provider.

use crate::{READY, tollgate};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_config::DatabaseConfig;
use tollgate_events::EventKind;
use tollgate_store::DatabaseName;

const ADMIN: (&str, &str) = ("admin", "test-admin-password");

#[tokio::test]
async fn a_registered_provider_s_keys_reach_the_outbox_and_clients_map_to_it() {
    // The "provider": a JWKS document and a discovery document pointing at it.
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256", "use": "sig",
        "x": "LrAyNAL7EmNT_RtdU2H5GmcQtiMx30jR_1mL8hGijIo", "y": "U3jVQDgvYLLQoDTZ9uex3x2YBhJsdVrruN9gGm4thos"}]});
    let served = jwks.clone();
    let idp = tollgate_testkit::serve(axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let body = served.clone();
            async move { axum::Json(body) }
        }),
    ))
    .await;

    let mut node = tollgate()
        .env("TOLLGATE_KEY_MANAGER__JWKS_REFRESH_INTERVAL", "1s")
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let client = tollgate_testkit::http();
    let admin = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("http://{mgmt}/api/am/admin/v4{path}"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
    };

    // Bad input is refused, naming the field, and stores nothing.
    let bad = admin(reqwest::Method::POST, "/key-managers")
        .json(&json!({"name": "Keycloak", "type": "Keycloak", "issuer": "not a url"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.unwrap();
    let fields: Vec<&str> = body["error"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(fields.contains(&"issuer") && fields.contains(&"certificates"), "{body}");

    let created = admin(reqwest::Method::POST, "/key-managers")
        .json(
            &json!({"name": "Keycloak", "type": "Keycloak", "issuer": "https://idp.example.com/realms/a",
            "certificates": {"type": "JWKS", "value": format!("http://{}/certs", idp.addr)},
            "consumerKeyClaim": "azp"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let km: Value = created.json().await.unwrap();
    assert_eq!(km["name"], "Keycloak");
    assert_eq!(km["enabled"], true);
    let dup = admin(reqwest::Method::POST, "/key-managers")
        .json(&json!({"name": "keycloak", "type": "x", "issuer": "https://a.example", "wellKnownEndpoint": "https://a.example/.well-known/openid-configuration"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status().as_u16(), 409);

    // The key manager fetches the JWKS and announces it.
    let url = format!("sqlite://{}/am.db", node.data_dir().display());
    let am = tollgate_store::connect(DatabaseName::Am, &url, &DatabaseConfig::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let announced = loop {
        let events = tollgate_store::events::read_since(&am, 0, 1000).await.unwrap();
        if let Some(e) = events
            .iter()
            .find(|e| e.kind == EventKind::KeyManagerUpserted && e.payload.get("jwks").is_some())
        {
            break e.payload.clone();
        }
        assert!(Instant::now() < deadline, "no key_manager_upserted event with the JWKS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(announced["jwks"], jwks);
    assert_eq!(announced["issuer"], "https://idp.example.com/realms/a");
    assert_eq!(announced["consumerKeyClaim"], "azp");
    let (status, _) = tollgate_testkit::get_json(format!("http://{mgmt}/api/am/admin/v4/key-managers")).await;
    assert_eq!(status, 401, "listing key managers needs credentials");
    let shown: Value = admin(reqwest::Method::GET, "/key-managers/Keycloak")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(shown["jwksFetchedTime"].is_string(), "{shown}");

    // A subscriber maps an existing client of that provider to an application.
    let signup = client
        .post(format!("http://{mgmt}/api/am/devportal/v3/signup"))
        .json(&json!({"username": "mapper", "password": "mapper-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status().as_u16(), 201);
    let apps: Value = client
        .get(format!("http://{mgmt}/api/am/devportal/v3/applications"))
        .basic_auth("mapper", Some("mapper-password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = apps["list"][0]["applicationId"].as_str().unwrap().to_string();
    let mapped = client
        .post(format!(
            "http://{mgmt}/api/am/devportal/v3/applications/{app_id}/map-keys"
        ))
        .basic_auth("mapper", Some("mapper-password"))
        .json(&json!({"consumerKey": "kc-client-1", "keyManager": "Keycloak", "keyType": "PRODUCTION"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mapped.status().as_u16(), 200);
    let mapped: Value = mapped.json().await.unwrap();
    assert_eq!(mapped["mode"], "MAPPED");
    assert_eq!(mapped["keyManager"], "Keycloak");
    let events = tollgate_store::events::read_since(&am, 0, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::KeyMappingUpserted
        && e.payload["consumerKey"] == "kc-client-1"
        && e.payload["keyManager"] == "Keycloak"));

    // A provider with mapped keys cannot be removed.
    let del = admin(reqwest::Method::DELETE, "/key-managers/Keycloak")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 409);
}
