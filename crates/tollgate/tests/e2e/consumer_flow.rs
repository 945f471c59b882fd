//! The API consumer's story through REST on a real node, on SQLite and on PostgreSQL:
//! sign up → default application → subscribe to a published API with Gold → production
//! keys → client-credentials token → the token verifies against `/oauth2/jwks` (checked by
//! jsonwebtoken from the published JWK alone) → introspects active with the right
//! claims → revoke → introspects inactive, with a revocation row in `events`. Then checks
//! that no secret or token was written in clear to the logs or the databases.

use crate::{READY, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tollgate_config::DatabaseConfig;
use tollgate_events::EventKind;
use tollgate_store::{Database, DatabaseName, events};

const PETSTORE: &str = include_str!("fixtures/petstore.yaml");
const ADMIN: (&str, &str) = ("admin", "test-admin-password");
const DEV: (&str, &str) = ("devon", "devon-password-1");

struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Rest {
    fn new(mgmt: SocketAddr) -> Self {
        Self {
            base: format!("http://{mgmt}"),
            client: tollgate_testkit::http(),
        }
    }

    async fn call(&self, who: Option<(&str, &str)>, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some((u, p)) = who {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn form(&self, client: (&str, &str), path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Publishes the petstore with the Gold and Unlimited plans; returns its id.
async fn publish_petstore(rest: &Rest) -> String {
    publish_petstore_as(&rest.client, &rest.base, ADMIN).await
}

/// Imports the petstore at `/petstore` with the Gold and Unlimited plans through the
/// Publisher REST API at `base` as `who`, and publishes it; returns its id.
pub(crate) async fn publish_petstore_as(client: &reqwest::Client, base: &str, who: (&str, &str)) -> String {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(PETSTORE.as_bytes().to_vec()).file_name("petstore.yaml"),
        )
        .text(
            "additionalProperties",
            json!({"context": "/petstore", "policies": ["Gold", "Unlimited"]}).to_string(),
        );
    let r = client
        .post(format!("{base}/api/am/publisher/v4/apis/import-openapi"))
        .basic_auth(who.0, Some(who.1))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let api: Value = r.json().await.unwrap();
    let id = api["id"].as_str().unwrap().to_string();
    let r = client
        .post(format!(
            "{base}/api/am/publisher/v4/apis/change-lifecycle?apiId={id}&action=Publish"
        ))
        .basic_auth(who.0, Some(who.1))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    id
}

/// Verifies `token` against the JWKS served at `/oauth2/jwks` (the header parsed here, the
/// signature checked by jsonwebtoken on aws-lc); returns its claims.
async fn verify_independently(rest: &Rest, token: &str) -> Value {
    let (status, jwks) = rest.call(None, Method::GET, "/oauth2/jwks", None).await;
    assert_eq!(status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header_b64 = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&base64_url_decode(header_b64)).unwrap();
    let kid = header["kid"].as_str().expect("kid in the JWT header");
    assert_eq!(header["alg"], "ES256");
    let keys: Vec<_> = set
        .keys
        .iter()
        .filter(|k| k.common.key_id.as_deref() == Some(kid))
        .collect();
    assert_eq!(keys.len(), 1, "the token's kid {kid} is published exactly once: {jwks}");
    let key = jsonwebtoken::DecodingKey::from_jwk(keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("signature verifies")
        .claims;
    // A tampered token must not verify.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = parts[1].chars().rev().collect();
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &validation).is_err());
    claims
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    // Small and local on purpose: the point of this file is not to trust our own code.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Every row of every table of a PostgreSQL database, as text.
async fn postgres_text(url: &str) -> String {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut text = String::new();
    for t in tables {
        let sql = format!("SELECT string_agg(t::text, '|') FROM \"{t}\" t");
        let dump: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        text.push_str(&dump.unwrap_or_default());
    }
    text
}

/// The bytes of every SQLite file (with WAL) in the data directory, as text.
fn sqlite_text(data_dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().contains(".db") {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

async fn run_flow(mgmt: SocketAddr, am: &Database, engine: &str) -> Vec<String> {
    let rest = Rest::new(mgmt);
    let api_id = publish_petstore(&rest).await;

    // Sign up: a subscriber with a DefaultApplication.
    let (status, user) = rest
        .call(
            None,
            Method::POST,
            "/api/am/devportal/v3/signup",
            Some(json!({"username": DEV.0, "password": DEV.1, "email": "devon@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "[{engine}] {user}");
    assert_eq!(user["roles"], json!(["subscriber"]));
    let (_, apps) = rest
        .call(Some(DEV), Method::GET, "/api/am/devportal/v3/applications", None)
        .await;
    assert_eq!(apps["count"], 1, "{apps}");
    let app = &apps["list"][0];
    assert_eq!(app["name"], "DefaultApplication");
    let app_id = app["applicationId"].as_str().unwrap().to_string();

    // The published API is in the anonymous catalogue; subscribe with Gold.
    let (_, catalogue) = rest.call(None, Method::GET, "/api/am/devportal/v3/apis", None).await;
    assert!(
        catalogue["list"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == api_id.as_str())
    );
    let (status, sub) = rest
        .call(
            Some(DEV),
            Method::POST,
            "/api/am/devportal/v3/subscriptions",
            Some(json!({"applicationId": app_id, "apiId": api_id, "throttlingPolicy": "Gold"})),
        )
        .await;
    assert_eq!(status, 201, "[{engine}] {sub}");
    assert_eq!(sub["status"], "UNBLOCKED");
    assert_eq!(sub["throttlingPolicy"], "Gold");

    // Production keys; the secret is shown once.
    let (status, keys) = rest
        .call(
            Some(DEV),
            Method::POST,
            &format!("/api/am/devportal/v3/applications/{app_id}/generate-keys"),
            Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials", "refresh_token"]})),
        )
        .await;
    assert_eq!(status, 200, "[{engine}] {keys}");
    let ck = keys["consumerKey"].as_str().unwrap().to_string();
    let cs = keys["consumerSecret"].as_str().unwrap().to_string();
    let (_, listed) = rest
        .call(
            Some(DEV),
            Method::GET,
            &format!("/api/am/devportal/v3/applications/{app_id}/oauth-keys"),
            None,
        )
        .await;
    assert_eq!(
        listed["list"][0]["consumerSecret"],
        Value::Null,
        "the secret is never shown again"
    );

    // A client-credentials token.
    let (status, tok) = rest
        .form(
            (&ck, &cs),
            "/oauth2/token",
            &[("grant_type", "client_credentials"), ("scope", "apim:subscribe")],
        )
        .await;
    assert_eq!(status, 200, "[{engine}] {tok}");
    let token = tok["access_token"].as_str().unwrap().to_string();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["scope"], "apim:subscribe");

    // It verifies with an independent library against the published keys.
    let (_, discovery) = rest
        .call(None, Method::GET, "/.well-known/openid-configuration", None)
        .await;
    let claims = verify_independently(&rest, &token).await;
    assert_eq!(claims["iss"], discovery["issuer"], "{claims}");
    assert_eq!(claims["aud"], ck.as_str());
    assert_eq!(claims["client_id"], ck.as_str());
    assert_eq!(claims["sub"], DEV.0);
    assert_eq!(claims["scope"], "apim:subscribe");
    assert_eq!(claims["keytype"], "PRODUCTION");
    assert_eq!(claims["application"]["id"], app_id.as_str());
    assert_eq!(claims["application"]["name"], "DefaultApplication");
    assert_eq!(claims["application"]["tier"], "Unlimited");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(claims["exp"].as_i64().unwrap() > now && claims["iat"].as_i64().unwrap() <= now + 5);

    // The REST API takes it as a bearer token.
    let r = rest
        .client
        .get(format!("{}/api/am/devportal/v3/applications", rest.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Introspection: active, with the right claims.
    let (status, active) = rest.form((&ck, &cs), "/oauth2/introspect", &[("token", &token)]).await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], ck.as_str());
    assert_eq!(active["username"], DEV.0);
    assert_eq!(active["application"]["id"], app_id.as_str());
    assert_eq!(active["jti"], claims["jti"]);

    // Revoke: inactive from now on, and the outbox says so.
    let seen = events::latest_seq(am).await.unwrap();
    let (status, _) = rest.form((&ck, &cs), "/oauth2/revoke", &[("token", &token)]).await;
    assert_eq!(status, 200);
    let (_, inactive) = rest.form((&ck, &cs), "/oauth2/introspect", &[("token", &token)]).await;
    assert_eq!(inactive, json!({"active": false}));
    let revoked: Vec<_> = events::read_since(am, seen, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::TokenRevoked)
        .collect();
    assert_eq!(revoked.len(), 1, "[{engine}] one revocation event");
    assert_eq!(revoked[0].payload["subject"], claims["jti"]);
    assert_eq!(revoked[0].payload["consumerKey"], ck.as_str());
    let r = rest
        .client
        .get(format!("{}/api/am/devportal/v3/applications", rest.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a revoked token no longer opens the REST API");
    eprintln!("[{engine}] consumer flow passed");
    vec![cs, token, DEV.1.to_string()]
}

fn assert_never_in_clear(secrets: &[String], text: &str, what: &str) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret or token appears in clear in {what}"
        );
    }
}

#[tokio::test]
async fn consumer_flow_on_sqlite() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let dir = node.data_dir().to_path_buf();
    let am = tollgate_store::connect(
        DatabaseName::Am,
        &format!("sqlite://{}/am.db", dir.display()),
        &DatabaseConfig::default(),
    )
    .await
    .unwrap();
    let secrets = run_flow(mgmt, &am, "sqlite").await;
    am.close().await;
    assert_never_in_clear(&secrets, &sqlite_text(&dir), "the SQLite files");
    assert_never_in_clear(&secrets, &node.output(), "the logs");
}

#[tokio::test]
async fn consumer_flow_on_postgres() {
    let Some((node, mgmt, am, dbs)) = crate::control_plane_on_postgres("e2e_consumer").await else {
        return;
    };
    let secrets = run_flow(mgmt, &am, "postgres").await;
    let mut text = String::new();
    for db in &dbs {
        text.push_str(&postgres_text(db.url()).await);
    }
    assert_never_in_clear(&secrets, &text, "the PostgreSQL databases");
    assert_never_in_clear(&secrets, &node.output(), "the logs");
}
