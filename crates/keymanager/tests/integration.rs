//! The key manager's OAuth2/OIDC endpoints served on a real socket over real databases
//! (SQLite and, when reachable, PostgreSQL): every grant, client authentication, scopes,
//! refresh-token rotation, PKCE, revocation, JWKS rotation, rate limiting, secrets
//! that must never be stored in clear, and tenants ([`tenants`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::{DatabaseConfig, SigningAlgorithm};
use tollgate_events::EventKind;
use tollgate_http::cluster::ClusterSecret;
use tollgate_http::rate_limit::RequestLimiter;
use tollgate_keymanager::{KeyManagerState, routes};
use tollgate_model::{NewUser, Role, TenantId, now_millis};
use tollgate_store::applications::{self, ApplicationRow};
use tollgate_store::keys::{self, KeyRow};
use tollgate_store::{Database, DatabaseName, Pool, Tx, connect, users};
use tollgate_testkit::{RunningServer, TestDb, all_engines};
use tollgate_tokens::{KeyManagerSecret, RESIDENT_KEY_MANAGER, TokenService, TokenSettings, random_token};

/// Two tenants with the same names: tokens act in their user's tenant.
#[path = "integration/tenants.rs"]
mod tenants;

const ISSUER: &str = "http://localhost:9443/oauth2/token";
const CALLBACK: &str = "http://127.0.0.1:1/cb";
const CLUSTER_SECRET: &str = "cluster-secret-0123456789";
const ALL_GRANTS: &str = r#"["client_credentials","password","refresh_token","authorization_code"]"#;

/// A registered OAuth2 client.
#[derive(Clone, Debug)]
struct Client {
    id: String,
    secret: String,
}

/// What differs between fixtures.
struct Options {
    access_validity: Duration,
    per_second: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            access_validity: Duration::from_secs(3600),
            per_second: 1000,
        }
    }
}

/// A response: status, headers, body text and (when it is JSON) the parsed body.
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Reply {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A key manager on a loopback port over fresh AM and shared databases. Users `dev`
/// (subscriber) and `pub` (publisher); every application is owned by `dev`.
struct Km {
    addr: SocketAddr,
    am: Database,
    shared: Database,
    service: Arc<TokenService>,
    engine: &'static str,
    http: reqwest::Client,
    /// A JWT application with every grant.
    main: Client,
    /// Another JWT application with every grant.
    other: Client,
    /// An application with opaque (`OAUTH`) access tokens and every grant.
    opaque: Client,
    /// An application whose keys allow client credentials only.
    limited: Client,
    _server: RunningServer,
}

async fn register(tx: &mut Tx, service: &TokenService, name: &str, token_type: &str, grants: &str) -> Client {
    let now = now_millis();
    let app = ApplicationRow {
        id: format!("app-{name}"),
        name: name.into(),
        owner: "dev".into(),
        throttling_policy: "Unlimited".into(),
        description: None,
        token_type: token_type.into(),
        status: "APPROVED".into(),
        attributes: "{}".into(),
    };
    applications::insert(tx, TenantId::DEFAULT, &app, now).await.unwrap();
    let client = Client {
        id: random_token(16).unwrap(),
        secret: random_token(32).unwrap(),
    };
    let key = KeyRow {
        id: format!("keys-{name}"),
        application_id: app.id,
        key_type: "PRODUCTION".into(),
        key_manager: RESIDENT_KEY_MANAGER.into(),
        mode: "CREATED".into(),
        consumer_key: client.id.clone(),
        secret_hash: Some(service.hash(&client.secret)),
        grant_types: grants.into(),
        callback_url: Some(CALLBACK.into()),
        scopes: "[]".into(),
        validity_seconds: 0,
    };
    keys::insert(tx, TenantId::DEFAULT, &key, now).await.unwrap();
    client
}

async fn start(db: &TestDb) -> Km {
    start_with(db, Options::default()).await
}

async fn start_with(db: &TestDb, opts: Options) -> Km {
    let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    shared.migrate().await.unwrap();
    // AM and shared may share one database (separate migration histories).
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    tollgate_store::policies::install_defaults(&am, TenantId::DEFAULT)
        .await
        .unwrap();
    for (name, role) in [("dev", Role::Subscriber), ("pub", Role::Publisher)] {
        users::create(
            &shared,
            NewUser {
                tenant_id: TenantId::DEFAULT,
                username: name.into(),
                password: format!("{name}-password"),
                email: Some(format!("{name}@example.com")),
                roles: vec![role],
            },
        )
        .await
        .unwrap();
    }
    let service = TokenService::open(
        am.clone(),
        KeyManagerSecret::from_secret("test-secret-0123456789"),
        SigningAlgorithm::ES256,
        TokenSettings {
            issuer: ISSUER.into(),
            access_validity: opts.access_validity,
            refresh_validity: Duration::from_secs(86_400),
            code_validity: Duration::from_secs(300),
        },
    );
    service.signer().ensure_key().await.unwrap();
    let mut tx = am.begin().await.unwrap();
    let main = register(&mut tx, &service, "main", "JWT", ALL_GRANTS).await;
    let other = register(&mut tx, &service, "other", "JWT", ALL_GRANTS).await;
    let opaque = register(&mut tx, &service, "opaque", "OAUTH", ALL_GRANTS).await;
    let limited = register(&mut tx, &service, "limited", "JWT", r#"["client_credentials"]"#).await;
    tx.commit().await.unwrap();
    let state = KeyManagerState {
        am: am.clone(),
        shared: shared.clone(),
        tokens: service.clone(),
        limiter: Arc::new(RequestLimiter::new(opts.per_second)),
        authenticator: tollgate_http::Authenticator::new(shared.clone()).with_tokens(service.clone()),
        cluster_secret: ClusterSecret::new(Some(CLUSTER_SECRET)),
    };
    let server = tollgate_testkit::serve(tollgate_http::rest_layers(routes(state), 64 * 1024)).await;
    let _ = tollgate_testkit::http(); // installs the rustls crypto provider
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Km {
        addr: server.addr,
        am,
        shared,
        service,
        engine: db.engine(),
        http,
        main,
        other,
        opaque,
        limited,
        _server: server,
    }
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn password(user: &str) -> String {
    format!("{user}-password")
}

impl Km {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// POSTs a form to `path`, authenticating as `client` with HTTP Basic when given.
    async fn form(&self, path: &str, client: Option<&Client>, params: &[(&str, &str)]) -> Reply {
        let mut req = self.http.post(self.url(path)).form(params);
        if let Some(c) = client {
            req = req.basic_auth(&c.id, Some(&c.secret));
        }
        self.send(req).await
    }

    /// The token endpoint, as `client`.
    async fn token(&self, client: &Client, params: &[(&str, &str)]) -> Reply {
        self.form("/oauth2/token", Some(client), params).await
    }

    /// Introspects `token` as `client`; the body (the call itself must succeed).
    async fn introspect(&self, client: &Client, token: &str) -> Value {
        let r = self.form("/oauth2/introspect", Some(client), &[("token", token)]).await;
        assert_eq!(r.status, 200, "{}: introspection failed: {}", self.engine, r.text);
        r.body
    }

    /// A successful password grant for `user`; the body.
    async fn password_grant(&self, client: &Client, user: &str, scope: &str) -> Value {
        let pw = password(user);
        let r = self
            .token(
                client,
                &[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", &pw),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}: password grant failed: {}", self.engine, r.text);
        r.body
    }

    /// Signs `user` in on the authorization page for `client` (scope `openid`, state
    /// `st-42`) with PKCE S256 over `verifier`; returns the code from the redirect.
    async fn authorization_code(&self, client: &Client, user: &str, verifier: &str) -> String {
        let challenge = challenge(verifier);
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "st-42"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("nonce", "n-0S6_WzA2Mj"),
        ];
        let page = self
            .send(self.http.get(self.url("/oauth2/authorize")).query(&params))
            .await;
        assert_eq!(page.status, 200, "{}: {}", self.engine, page.text);
        assert!(page.header(CONTENT_TYPE).unwrap().starts_with("text/html"));
        assert!(page.text.contains("<form") && page.text.contains("name=\"code_challenge\""));
        let pw = password(user);
        params.extend([("username", user), ("password", pw.as_str())]);
        let r = self
            .send(self.http.post(self.url("/oauth2/authorize")).form(&params))
            .await;
        assert_eq!(r.status, 302, "{}: {}", self.engine, r.text);
        let location = r.header(LOCATION).unwrap();
        assert!(location.starts_with(CALLBACK), "{location}");
        let q: HashMap<String, String> = reqwest::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q.get("state").map(String::as_str), Some("st-42"), "{location}");
        q.get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// Asserts an OAuth2 error response: its status and RFC `error` code.
    #[track_caller]
    fn expect_error(&self, r: &Reply, status: u16, error: &str) {
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(error)),
            "{}: {}",
            self.engine,
            r.text
        );
        assert!(
            r.body["error_description"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: no error_description in {}",
            self.engine,
            r.text
        );
    }

    /// Every byte of the AM (and shared) database that could hold a secret: the SQLite
    /// file and its WAL, or every row of the key manager's PostgreSQL tables as text.
    async fn stored_bytes(&self) -> Vec<u8> {
        match self.am.reader() {
            Pool::Sqlite(_) => {
                let file = self.am.sqlite_file().unwrap();
                let mut bytes = std::fs::read(file).unwrap();
                let wal = format!("{}-wal", file.display());
                bytes.extend(std::fs::read(wal).unwrap_or_default());
                bytes
            }
            Pool::Postgres(p) => {
                let mut bytes = Vec::new();
                for sql in [
                    "SELECT CAST(t AS TEXT) FROM application_keys t",
                    "SELECT CAST(t AS TEXT) FROM oauth_tokens t",
                    "SELECT CAST(t AS TEXT) FROM authorization_codes t",
                    "SELECT CAST(t AS TEXT) FROM signing_keys t",
                    "SELECT CAST(t AS TEXT) FROM events t",
                    "SELECT CAST(t AS TEXT) FROM revocations t",
                ] {
                    let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(p).await.unwrap();
                    for row in rows {
                        bytes.extend(row.into_bytes());
                        bytes.push(b'\n');
                    }
                }
                bytes
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn client_credentials_issue_a_bearer_token_that_introspects_active() {
    for db in all_engines("km_client_credentials").await {
        let km = start(&db).await;
        let r = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.body["token_type"], "Bearer");
        assert_eq!(r.body["expires_in"], 3600);
        assert_eq!(r.header(CACHE_CONTROL), Some("no-store"));
        assert!(
            r.body.get("refresh_token").is_none(),
            "RFC 6749 §4.4.3: no refresh token"
        );
        let token = r.body["access_token"].as_str().unwrap();
        assert_eq!(token.matches('.').count(), 2, "a JWT");

        let i = km.introspect(&km.main, token).await;
        assert_eq!(i["active"], true, "{}: {i}", km.engine);
        assert_eq!(i["client_id"], km.main.id.as_str());
        assert_eq!(i["sub"], "dev", "client credentials act for the application owner");
        assert_eq!(i["application"]["name"], "main");
        assert_eq!(i["keytype"], "PRODUCTION");
        assert_eq!(i["token_type"], "Bearer");
        assert_eq!(i["iss"], ISSUER);

        let r = km.form("/oauth2/introspect", None, &[("token", token)]).await;
        km.expect_error(&r, 401, "invalid_client");
        let wrong = Client {
            id: km.main.id.clone(),
            secret: "not-the-secret".into(),
        };
        let r = km.form("/oauth2/introspect", Some(&wrong), &[("token", token)]).await;
        km.expect_error(&r, 401, "invalid_client");

        // A node of the cluster introspects with the cluster secret.
        let node = |secret: &str| {
            km.http
                .post(km.url("/oauth2/introspect"))
                .bearer_auth(secret)
                .form(&[("token", token)])
        };
        let r = km.send(node(CLUSTER_SECRET)).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.body["active"], true);
        assert_eq!(r.body["client_id"], km.main.id.as_str());
        let r = km.send(node("cluster-secret-wrong-value")).await;
        km.expect_error(&r, 401, "invalid_client");
    }
}

#[tokio::test]
async fn client_authentication_errors_follow_rfc_6749() {
    for db in all_engines("km_client_auth").await {
        let km = start(&db).await;
        let cc = [("grant_type", "client_credentials")];
        let wrong = Client {
            id: km.main.id.clone(),
            secret: "not-the-secret".into(),
        };
        let r = km.token(&wrong, &cc).await;
        km.expect_error(&r, 401, "invalid_client");
        assert!(r.header(WWW_AUTHENTICATE).is_some_and(|v| v.starts_with("Basic")));
        assert_eq!(r.header(CACHE_CONTROL), Some("no-store"));

        let unknown = Client {
            id: "no-such-client".into(),
            secret: km.main.secret.clone(),
        };
        let r = km.token(&unknown, &cc).await;
        km.expect_error(&r, 401, "invalid_client");

        let r = km.form("/oauth2/token", None, &cc).await;
        km.expect_error(&r, 401, "invalid_client");

        // Both in the header and in the body.
        let both = [
            ("grant_type", "client_credentials"),
            ("client_id", km.main.id.as_str()),
            ("client_secret", km.main.secret.as_str()),
        ];
        let r = km.token(&km.main, &both).await;
        km.expect_error(&r, 400, "invalid_request");

        // client_secret_post.
        let r = km.form("/oauth2/token", None, &both).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert!(r.body["access_token"].is_string());
        let r = km
            .form(
                "/oauth2/token",
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", km.main.id.as_str()),
                    ("client_secret", "not-the-secret"),
                ],
            )
            .await;
        km.expect_error(&r, 401, "invalid_client");
    }
}

#[tokio::test]
async fn grant_errors_name_the_rfc_error() {
    for db in all_engines("km_grant_errors").await {
        let km = start(&db).await;
        let r = km.token(&km.main, &[("grant_type", "urn:example:magic")]).await;
        km.expect_error(&r, 400, "unsupported_grant_type");
        let r = km.token(&km.main, &[("scope", "openid")]).await;
        km.expect_error(&r, 400, "invalid_request");

        // The limited client may use client credentials, not the password grant.
        let r = km.token(&km.limited, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let pw = password("dev");
        let r = km
            .token(
                &km.limited,
                &[("grant_type", "password"), ("username", "dev"), ("password", &pw)],
            )
            .await;
        km.expect_error(&r, 400, "unauthorized_client");

        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "password"),
                    ("username", "dev"),
                    ("password", "wrong-password"),
                ],
            )
            .await;
        km.expect_error(&r, 400, "invalid_grant");
        let r = km
            .token(
                &km.main,
                &[("grant_type", "password"), ("username", "nobody"), ("password", &pw)],
            )
            .await;
        km.expect_error(&r, 400, "invalid_grant");
        let r = km
            .token(&km.main, &[("grant_type", "password"), ("username", "dev")])
            .await;
        km.expect_error(&r, 400, "invalid_request");
        let ok = km.password_grant(&km.main, "dev", "").await;
        assert!(ok["access_token"].is_string() && ok["refresh_token"].is_string());

        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "client_credentials"),
                    ("grant_type", "client_credentials"),
                ],
            )
            .await;
        km.expect_error(&r, 400, "invalid_request");
        assert!(r.body["error_description"].as_str().unwrap().contains("grant_type"));

        let r = km
            .send(
                km.http
                    .post(km.url("/oauth2/token"))
                    .basic_auth(&km.main.id, Some(&km.main.secret))
                    .json(&json!({ "grant_type": "client_credentials" })),
            )
            .await;
        km.expect_error(&r, 400, "invalid_request");
    }
}

#[tokio::test]
async fn scopes_beyond_the_users_roles_are_refused() {
    for db in all_engines("km_scopes").await {
        let km = start(&db).await;
        for scope in ["apim:admin", "apim:api_publish", "no:such-scope", "openid apim:admin"] {
            let r = km
                .token(&km.main, &[("grant_type", "client_credentials"), ("scope", scope)])
                .await;
            km.expect_error(&r, 400, "invalid_scope");
            let pw = password("dev");
            let r = km
                .token(
                    &km.main,
                    &[
                        ("grant_type", "password"),
                        ("username", "dev"),
                        ("password", &pw),
                        ("scope", scope),
                    ],
                )
                .await;
            km.expect_error(&r, 400, "invalid_scope");
        }

        let r = km
            .token(
                &km.main,
                &[("grant_type", "client_credentials"), ("scope", "apim:subscribe openid")],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let mut granted: Vec<&str> = r.body["scope"].as_str().unwrap().split(' ').collect();
        granted.sort();
        assert_eq!(granted, ["apim:subscribe", "openid"]);
        let i = km.introspect(&km.main, r.body["access_token"].as_str().unwrap()).await;
        assert!(i["scope"].as_str().unwrap().contains("apim:subscribe"));

        let body = km.password_grant(&km.main, "dev", "openid").await;
        assert_eq!(body["scope"], "openid");
        // The publisher's role binds the publishing scope; the subscriber's does not.
        let body = km.password_grant(&km.main, "pub", "apim:api_publish").await;
        assert_eq!(body["scope"], "apim:api_publish");
        let pw = password("pub");
        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "password"),
                    ("username", "pub"),
                    ("password", &pw),
                    ("scope", "apim:subscribe"),
                ],
            )
            .await;
        km.expect_error(&r, 400, "invalid_scope");
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_work_once() {
    for db in all_engines("km_refresh").await {
        let km = start(&db).await;
        let first = km.password_grant(&km.main, "dev", "openid apim:subscribe").await;
        let rt1 = first["refresh_token"].as_str().unwrap();

        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", rt1)])
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.header(CACHE_CONTROL), Some("no-store"));
        let second = r.body;
        let rt2 = second["refresh_token"].as_str().unwrap();
        assert_ne!(rt2, rt1, "the refresh token rotates");
        assert_ne!(second["access_token"], first["access_token"]);
        assert_eq!(second["scope"], first["scope"]);
        let i = km.introspect(&km.main, second["access_token"].as_str().unwrap()).await;
        assert_eq!((i["active"].clone(), i["sub"].clone()), (json!(true), json!("dev")));

        // Another client cannot use it (and that does not burn it).
        let r = km
            .token(&km.other, &[("grant_type", "refresh_token"), ("refresh_token", rt2)])
            .await;
        km.expect_error(&r, 400, "invalid_grant");
        // Nor can a broader scope be asked.
        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt2),
                    ("scope", "openid apim:app_manage"),
                ],
            )
            .await;
        km.expect_error(&r, 400, "invalid_scope");

        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt2),
                    ("scope", "openid"),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.body["scope"], "openid", "a narrower scope may be asked");
        let rt3 = r.body["refresh_token"].as_str().unwrap();
        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt3),
                    ("scope", "apim:subscribe"),
                ],
            )
            .await;
        km.expect_error(&r, 400, "invalid_scope");
        // A rotated one works no more (and its reuse revokes its family, see
        // `a_reused_refresh_token_revokes_its_family`).
        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", rt1)])
            .await;
        km.expect_error(&r, 400, "invalid_grant");

        let r = km
            .token(
                &km.main,
                &[("grant_type", "refresh_token"), ("refresh_token", "garbage")],
            )
            .await;
        km.expect_error(&r, 400, "invalid_grant");
        let r = km.token(&km.main, &[("grant_type", "refresh_token")]).await;
        km.expect_error(&r, 400, "invalid_request");

        // A user who loses a role, or is disabled, cannot renew what it granted.
        let fresh = km.password_grant(&km.main, "dev", "apim:subscribe").await;
        let rt = fresh["refresh_token"].as_str().unwrap();
        let dev = users::find_by_username(&km.shared, TenantId::DEFAULT, "dev")
            .await
            .unwrap()
            .unwrap();
        users::update_access(&km.shared, &dev, Some(&[Role::Creator]), None)
            .await
            .unwrap();
        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await;
        km.expect_error(&r, 400, "invalid_grant");
        users::update_access(&km.shared, &dev, Some(&[Role::Subscriber]), Some(false))
            .await
            .unwrap();
        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await;
        km.expect_error(&r, 400, "invalid_grant");
    }
}

impl Km {
    /// The refresh grant with `refresh_token` as `client`.
    async fn refresh(&self, client: &Client, refresh_token: &str) -> Reply {
        self.token(
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
        )
        .await
    }

    /// The `jti` of an active token.
    async fn jti(&self, client: &Client, token: &str) -> String {
        let i = self.introspect(client, token).await;
        assert_eq!(i["active"], true, "{}: {i}", self.engine);
        i["jti"].as_str().unwrap().to_string()
    }

    /// The subjects of the `token_revoked` events written after `seq`.
    async fn revoked_since(&self, seq: i64) -> Vec<String> {
        tollgate_store::events::read_since(&self.am, seq, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::TokenRevoked)
            .map(|e| e.payload["subject"].as_str().unwrap().to_string())
            .collect()
    }

    /// Exchanges `code` (PKCE `verifier`) as `client`.
    async fn exchange(&self, client: &Client, code: &str, verifier: &str) -> Reply {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("redirect_uri", CALLBACK),
                ("code", code),
                ("code_verifier", verifier),
            ],
        )
        .await
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family() {
    for db in all_engines("km_refresh_family").await {
        let km = start(&db).await;
        let e = km.engine;
        // JWT access tokens (not stored) and opaque ones (stored) alike.
        for client in [&km.main, &km.opaque] {
            let first = km.password_grant(client, "dev", "openid").await;
            let (at1, rt1) = (text(&first["access_token"]), text(&first["refresh_token"]));
            let second = km.refresh(client, &rt1).await;
            assert_eq!(second.status, 200, "{e}: {}", second.text);
            let (at2, rt2) = (text(&second.body["access_token"]), text(&second.body["refresh_token"]));
            let third = km.refresh(client, &rt2).await;
            assert_eq!(third.status, 200, "{e}: {}", third.text);
            let (at3, rt3) = (text(&third.body["access_token"]), text(&third.body["refresh_token"]));
            let mut jtis = Vec::new();
            for at in [&at1, &at2, &at3] {
                jtis.push(km.jti(client, at).await);
            }
            // Another sign-in of the same user with the same client is another family.
            let apart = km.password_grant(client, "dev", "openid").await;

            // rt1 again: whoever holds it now, the family is compromised.
            let seq = tollgate_store::events::latest_seq(&km.am).await.unwrap();
            let r = km.refresh(client, &rt1).await;
            km.expect_error(&r, 400, "invalid_grant");
            for at in [&at1, &at2, &at3] {
                assert_eq!(km.introspect(client, at).await, json!({ "active": false }), "{e}: {at}");
            }
            let r = km.refresh(client, &rt3).await;
            km.expect_error(&r, 400, "invalid_grant");
            let mut revoked = km.revoked_since(seq).await;
            revoked.sort();
            jtis.sort();
            assert_eq!(
                revoked, jtis,
                "{e}: one revocation event per live access token of the family"
            );

            assert_eq!(
                km.introspect(client, apart["access_token"].as_str().unwrap()).await["active"],
                true
            );
            let r = km.refresh(client, apart["refresh_token"].as_str().unwrap()).await;
            assert_eq!(r.status, 200, "{e}: another family is untouched: {}", r.text);

            // Presented again, it revokes nothing more.
            let seq = tollgate_store::events::latest_seq(&km.am).await.unwrap();
            let r = km.refresh(client, &rt1).await;
            km.expect_error(&r, 400, "invalid_grant");
            assert_eq!(km.revoked_since(seq).await, Vec::<String>::new(), "{e}");
        }

        // Two requests racing with one refresh token: one rotates it, the other is a
        // reuse, so what the first got is revoked whichever came first.
        for _ in 0..3 {
            let body = km.password_grant(&km.main, "dev", "openid").await;
            let rt = text(&body["refresh_token"]);
            let (a, b) = tokio::join!(km.refresh(&km.main, &rt), km.refresh(&km.main, &rt));
            let won: Vec<&Reply> = [&a, &b].into_iter().filter(|r| r.status == 200).collect();
            assert_eq!(won.len(), 1, "{e}: {} and {}", a.text, b.text);
            for r in [&a, &b].into_iter().filter(|r| r.status != 200) {
                km.expect_error(r, 400, "invalid_grant");
            }
            for r in won {
                let at = r.body["access_token"].as_str().unwrap();
                assert_eq!(km.introspect(&km.main, at).await, json!({ "active": false }), "{e}");
                let r = km.refresh(&km.main, r.body["refresh_token"].as_str().unwrap()).await;
                km.expect_error(&r, 400, "invalid_grant");
            }
        }

        // A spent refresh token presented by another client (which could not use it)
        // is refused and revokes nothing.
        let first = km.password_grant(&km.main, "dev", "openid").await;
        let rt1 = text(&first["refresh_token"]);
        let second = km.refresh(&km.main, &rt1).await;
        assert_eq!(second.status, 200, "{e}: {}", second.text);
        let r = km.refresh(&km.other, &rt1).await;
        km.expect_error(&r, 400, "invalid_grant");
        assert_eq!(
            km.introspect(&km.main, second.body["access_token"].as_str().unwrap())
                .await["active"],
            true,
            "{e}"
        );

        // Revoking a refresh token (RFC 7009 §2.1) takes the access tokens of its grant too.
        let body = km.password_grant(&km.main, "dev", "openid").await;
        let r = km
            .form(
                "/oauth2/revoke",
                Some(&km.main),
                &[("token", body["refresh_token"].as_str().unwrap())],
            )
            .await;
        assert_eq!(r.status, 200, "{e}: {}", r.text);
        assert_eq!(
            km.introspect(&km.main, body["access_token"].as_str().unwrap()).await,
            json!({ "active": false }),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_replayed_authorization_code_revokes_the_tokens_it_issued() {
    for db in all_engines("km_code_replay").await {
        let km = start(&db).await;
        let e = km.engine;
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = km.exchange(&km.main, &code, &verifier).await;
        assert_eq!(r.status, 200, "{e}: {}", r.text);
        let (at1, rt1) = (text(&r.body["access_token"]), text(&r.body["refresh_token"]));
        let r = km.refresh(&km.main, &rt1).await;
        assert_eq!(r.status, 200, "{e}: {}", r.text);
        let (at2, rt2) = (text(&r.body["access_token"]), text(&r.body["refresh_token"]));
        let mut jtis = vec![km.jti(&km.main, &at1).await, km.jti(&km.main, &at2).await];
        let apart = km.password_grant(&km.main, "dev", "openid").await;

        let seq = tollgate_store::events::latest_seq(&km.am).await.unwrap();
        let r = km.exchange(&km.main, &code, &verifier).await;
        km.expect_error(&r, 400, "invalid_grant");
        for at in [&at1, &at2] {
            assert_eq!(km.introspect(&km.main, at).await, json!({ "active": false }), "{e}");
        }
        let r = km.refresh(&km.main, &rt2).await;
        km.expect_error(&r, 400, "invalid_grant");
        let mut revoked = km.revoked_since(seq).await;
        revoked.sort();
        jtis.sort();
        assert_eq!(revoked, jtis, "{e}");
        assert_eq!(
            km.introspect(&km.main, apart["access_token"].as_str().unwrap()).await["active"],
            true
        );

        // A code whose first exchange failed issued nothing; replaying it revokes nothing.
        let code = km.authorization_code(&km.main, "dev", &verifier).await;
        let wrong = format!("verifier-{}", random_token(32).unwrap());
        let r = km.exchange(&km.main, &code, &wrong).await;
        km.expect_error(&r, 400, "invalid_grant");
        let seq = tollgate_store::events::latest_seq(&km.am).await.unwrap();
        let r = km.exchange(&km.main, &code, &verifier).await;
        km.expect_error(&r, 400, "invalid_grant");
        assert_eq!(km.revoked_since(seq).await, Vec::<String>::new(), "{e}");

        // Another client presenting a spent code is refused and revokes nothing.
        let code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = km.exchange(&km.main, &code, &verifier).await;
        assert_eq!(r.status, 200, "{e}: {}", r.text);
        let at = text(&r.body["access_token"]);
        let r = km.exchange(&km.other, &code, &verifier).await;
        km.expect_error(&r, 400, "invalid_grant");
        assert_eq!(km.introspect(&km.main, &at).await["active"], true, "{e}");
    }
}

#[tokio::test]
async fn a_code_approved_before_its_user_lost_access_gets_no_tokens() {
    for db in all_engines("km_code_user").await {
        let km = start(&db).await;
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let user = async |name: &str| {
            users::find_by_username(&km.shared, TenantId::DEFAULT, name)
                .await
                .unwrap()
                .unwrap()
        };
        // Disabled since.
        let code = km.authorization_code(&km.main, "pub", &verifier).await;
        users::update_access(&km.shared, &user("pub").await, None, Some(false))
            .await
            .unwrap();
        let r = km.exchange(&km.main, &code, &verifier).await;
        km.expect_error(&r, 400, "invalid_grant");
        // No longer holding a scope it approved.
        let ch = challenge(&verifier);
        let params = [
            ("response_type", "code"),
            ("client_id", km.main.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid apim:subscribe"),
            ("state", "st-1"),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
            ("username", "dev"),
            ("password", "dev-password"),
        ];
        let r = km.send(km.http.post(km.url("/oauth2/authorize")).form(&params)).await;
        assert_eq!(r.status, 302, "{}: {}", km.engine, r.text);
        let location = reqwest::Url::parse(r.header(LOCATION).unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"));
        users::update_access(&km.shared, &user("dev").await, Some(&[Role::Creator]), None)
            .await
            .unwrap();
        let r = km.exchange(&km.main, &code, &verifier).await;
        km.expect_error(&r, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn expired_tokens_introspect_inactive() {
    for db in all_engines("km_expiry").await {
        let km = start_with(
            &db,
            Options {
                access_validity: Duration::from_secs(1),
                ..Options::default()
            },
        )
        .await;
        let jwt = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(jwt.body["expires_in"], 1, "{}: {}", km.engine, jwt.text);
        let jwt = jwt.body["access_token"].as_str().unwrap().to_string();
        let opaque = km.token(&km.opaque, &[("grant_type", "client_credentials")]).await;
        let opaque = opaque.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(km.introspect(&km.main, &jwt).await["active"], true);
        assert_eq!(km.introspect(&km.opaque, &opaque).await["active"], true);

        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            km.introspect(&km.main, &jwt).await,
            json!({ "active": false }),
            "{}",
            km.engine
        );
        assert_eq!(km.introspect(&km.opaque, &opaque).await, json!({ "active": false }));
        let r = km.send(km.http.get(km.url("/oauth2/userinfo")).bearer_auth(&jwt)).await;
        assert_eq!(r.status, 401, "{}: {}", km.engine, r.text);
    }
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    for db in all_engines("km_pkce").await {
        let km = start(&db).await;
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let code = km.authorization_code(&km.main, "pub", &verifier).await;
        let exchange = async |client: Option<&Client>, params: &[(&str, &str)]| {
            let mut all = vec![("grant_type", "authorization_code"), ("redirect_uri", CALLBACK)];
            all.extend_from_slice(params);
            km.form("/oauth2/token", client, &all).await
        };
        let main = Some(&km.main);

        let r = exchange(main, &[("code", &code), ("code_verifier", &verifier)]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.header(CACHE_CONTROL), Some("no-store"));
        assert!(r.body["refresh_token"].is_string());
        assert_eq!(r.body["scope"], "openid");
        let i = km.introspect(&km.main, r.body["access_token"].as_str().unwrap()).await;
        assert_eq!(i["sub"], "pub", "the token acts for the user who signed in");
        // `openid` brings an ID token for the client, echoing the nonce.
        let id_token = r.body["id_token"].as_str().expect("an id_token for the openid scope");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(claims["aud"], km.main.id.as_str());
        assert_eq!(claims["sub"], "pub");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");

        // The code works once.
        let r = exchange(main, &[("code", &code), ("code_verifier", &verifier)]).await;
        km.expect_error(&r, 400, "invalid_grant");

        let code = km.authorization_code(&km.main, "pub", &verifier).await;
        let wrong = format!("verifier-{}", random_token(32).unwrap());
        let r = exchange(main, &[("code", &code), ("code_verifier", &wrong)]).await;
        km.expect_error(&r, 400, "invalid_grant");
        // The failed attempt spent the code.
        let r = exchange(main, &[("code", &code), ("code_verifier", &verifier)]).await;
        km.expect_error(&r, 400, "invalid_grant");

        let code = km.authorization_code(&km.main, "pub", &verifier).await;
        let r = exchange(main, &[("code", &code)]).await;
        km.expect_error(&r, 400, "invalid_request");
        // Another client cannot exchange it.
        let r = exchange(Some(&km.other), &[("code", &code), ("code_verifier", &verifier)]).await;
        km.expect_error(&r, 400, "invalid_grant");

        // A confidential client must authenticate even with PKCE.
        let code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = exchange(
            None,
            &[
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", &km.main.id),
            ],
        )
        .await;
        km.expect_error(&r, 401, "invalid_client");
        // A public client (keys without a secret): client_id and the verifier suffice.
        let public = {
            let mut tx = km.am.begin().await.unwrap();
            let c = register(&mut tx, &km.service, "public", "JWT", ALL_GRANTS).await;
            tx.commit().await.unwrap();
            c
        };
        let sql = "UPDATE application_keys SET secret_hash = NULL WHERE consumer_key = $1";
        match km.am.writer() {
            Pool::Sqlite(p) => {
                sqlx::query(sql).bind(&public.id).execute(p).await.unwrap();
            }
            Pool::Postgres(p) => {
                sqlx::query(sql).bind(&public.id).execute(p).await.unwrap();
            }
        }
        let code = km.authorization_code(&public, "dev", &verifier).await;
        let r = exchange(
            None,
            &[("code", &code), ("code_verifier", &verifier), ("client_id", &public.id)],
        )
        .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        // It may refresh with its client_id alone, too (RFC 6749 §6).
        let refresh = r.body["refresh_token"].as_str().unwrap().to_string();
        let r = km
            .form(
                "/oauth2/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &public.id),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        // A verifier outside RFC 7636's syntax is refused as such.
        let code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = exchange(main, &[("code", &code), ("code_verifier", "short")]).await;
        km.expect_error(&r, 400, "invalid_request");

        // Errors about the redirect URI are shown, never redirected.
        let ch = challenge(&verifier);
        let base = [
            ("response_type", "code"),
            ("client_id", km.main.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "st-42"),
            ("code_challenge", ch.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let with = |key: &str, value: &'static str| {
            base.iter()
                .map(|(k, v)| (*k, if *k == key { value } else { *v }))
                .collect::<Vec<_>>()
        };
        let authorize = |params: Vec<(&str, &str)>| km.http.get(km.url("/oauth2/authorize")).query(&params);
        let r = km.send(authorize(with("redirect_uri", "http://evil.example/cb"))).await;
        assert_eq!(r.status, 400, "{}: {}", km.engine, r.text);
        assert!(r.header(LOCATION).is_none());
        assert!(r.header(CONTENT_TYPE).unwrap().starts_with("text/html"));
        assert!(r.text.contains("redirect_uri"), "{}", r.text);
        let r = km.send(authorize(with("client_id", "no-such-client"))).await;
        assert_eq!((r.status, r.header(LOCATION)), (400, None), "{}", r.text);

        // Other errors go back to the client.
        let r = km.send(authorize(with("code_challenge_method", "plain"))).await;
        assert_eq!(r.status, 302, "{}: {}", km.engine, r.text);
        let location = reqwest::Url::parse(r.header(LOCATION).unwrap()).unwrap();
        assert!(location.as_str().starts_with(CALLBACK));
        let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
        assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"));
        assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
        assert!(!q.contains_key("code"));

        // A wrong password shows the page again, with no redirect and no code.
        let mut form = base.to_vec();
        form.extend([("username", "dev"), ("password", "wrong-password")]);
        let r = km.send(km.http.post(km.url("/oauth2/authorize")).form(&form)).await;
        assert_eq!(r.status, 401, "{}: {}", km.engine, r.text);
        assert!(r.header(LOCATION).is_none());
        assert!(r.text.contains("<form"));
    }
}

#[tokio::test]
async fn revocation_follows_rfc_7009_and_reaches_the_outbox() {
    for db in all_engines("km_revoke").await {
        let km = start(&db).await;
        let r = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        let token = r.body["access_token"].as_str().unwrap().to_string();
        let jti = km.introspect(&km.main, &token).await["jti"]
            .as_str()
            .unwrap()
            .to_string();

        let r = km
            .form(
                "/oauth2/revoke",
                Some(&km.main),
                &[("token", &token), ("token_type_hint", "access_token")],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(km.introspect(&km.main, &token).await, json!({ "active": false }));
        let events = tollgate_store::events::read_since(&km.am, 0, 100).await.unwrap();
        let revoked = events
            .iter()
            .find(|e| e.kind == EventKind::TokenRevoked && e.payload["subject"] == jti.as_str())
            .unwrap_or_else(|| panic!("{}: no token_revoked event for {jti}", km.engine));
        assert_eq!(revoked.payload["consumerKey"], km.main.id.as_str());
        let r = km
            .send(km.http.get(km.url("/oauth2/userinfo")).bearer_auth(&token))
            .await;
        assert_eq!(r.status, 401);

        // Unknown tokens are not an error.
        for unknown in ["no-such-token", "a.b.c"] {
            let r = km.form("/oauth2/revoke", Some(&km.main), &[("token", unknown)]).await;
            assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        }
        // Revocation needs client authentication.
        let r = km.form("/oauth2/revoke", None, &[("token", &token)]).await;
        km.expect_error(&r, 401, "invalid_client");

        // Another client's token.
        let theirs = km.token(&km.other, &[("grant_type", "client_credentials")]).await;
        let theirs = theirs.body["access_token"].as_str().unwrap().to_string();
        let r = km.form("/oauth2/revoke", Some(&km.main), &[("token", &theirs)]).await;
        km.expect_error(&r, 400, "unauthorized_client");
        assert_eq!(km.introspect(&km.other, &theirs).await["active"], true);

        // A refresh token.
        let body = km.password_grant(&km.main, "dev", "openid").await;
        let rt = body["refresh_token"].as_str().unwrap();
        let r = km
            .form(
                "/oauth2/revoke",
                Some(&km.main),
                &[("token", rt), ("token_type_hint", "refresh_token")],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await;
        km.expect_error(&r, 400, "invalid_grant");

        let r = km
            .form(
                "/oauth2/revoke",
                Some(&km.main),
                &[("token", &token), ("token_type_hint", "id_token")],
            )
            .await;
        km.expect_error(&r, 400, "unsupported_token_type");
    }
}

#[tokio::test]
async fn opaque_tokens_introspect_and_revoke() {
    for db in all_engines("km_opaque").await {
        let km = start(&db).await;
        let r = km.token(&km.opaque, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let token = r.body["access_token"].as_str().unwrap().to_string();
        assert_ne!(token.matches('.').count(), 2, "not a JWT: {token}");

        let i = km.introspect(&km.opaque, &token).await;
        assert_eq!(i["active"], true, "{}: {i}", km.engine);
        assert_eq!(i["client_id"], km.opaque.id.as_str());
        assert_eq!(i["application"]["name"], "opaque");
        assert_eq!(i["token_type"], "Bearer");
        let r = km
            .send(km.http.get(km.url("/oauth2/userinfo")).bearer_auth(&token))
            .await;
        assert_eq!(r.status, 403, "userinfo needs the openid scope: {}", r.text);
        assert_eq!(r.body["error"], "insufficient_scope");

        // Another client may not revoke it.
        let r = km.form("/oauth2/revoke", Some(&km.main), &[("token", &token)]).await;
        km.expect_error(&r, 400, "unauthorized_client");
        assert_eq!(km.introspect(&km.opaque, &token).await["active"], true);

        let r = km.form("/oauth2/revoke", Some(&km.opaque), &[("token", &token)]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(km.introspect(&km.opaque, &token).await, json!({ "active": false }));
        let jti = i["jti"].as_str().unwrap();
        let events = tollgate_store::events::read_since(&km.am, 0, 100).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.kind == EventKind::TokenRevoked && e.payload["subject"] == jti),
            "{}: no token_revoked event",
            km.engine
        );
    }
}

#[tokio::test]
async fn jwks_discovery_and_key_rotation() {
    for db in all_engines("km_jwks").await {
        let km = start(&db).await;
        let r = km.send(km.http.get(km.url("/oauth2/jwks"))).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let keys = r.body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{}", r.text);
        let key = &keys[0];
        let old_kid = key["kid"].as_str().unwrap().to_string();
        assert!(!old_kid.is_empty());
        assert_eq!(
            (&key["kty"], &key["alg"], &key["use"], &key["crv"]),
            (&json!("EC"), &json!("ES256"), &json!("sig"), &json!("P-256")),
            "{}",
            r.text
        );
        assert!(key.get("d").is_none(), "no private part in the JWKS");

        for path in [
            "/.well-known/openid-configuration",
            "/oauth2/token/.well-known/openid-configuration",
        ] {
            let r = km.send(km.http.get(km.url(path))).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            let d = &r.body;
            assert_eq!(d["issuer"], ISSUER);
            assert_eq!(d["token_endpoint"], "http://localhost:9443/oauth2/token");
            assert_eq!(d["jwks_uri"], "http://localhost:9443/oauth2/jwks");
            assert_eq!(d["authorization_endpoint"], "http://localhost:9443/oauth2/authorize");
            assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        }

        let before = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        let before = before.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(jwt_header(&before)["kid"], old_kid.as_str());
        assert_eq!(jwt_header(&before)["alg"], "ES256");

        let new_kid = km.service.signer().rotate(Duration::from_secs(3600)).await.unwrap();
        assert_ne!(new_kid, old_kid);
        let r = km.send(km.http.get(km.url("/oauth2/jwks"))).await;
        let mut kids: Vec<&str> = r.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        kids.sort();
        let mut expected = vec![old_kid.as_str(), new_kid.as_str()];
        expected.sort();
        assert_eq!(kids, expected, "{}", km.engine);

        assert_eq!(km.introspect(&km.main, &before).await["active"], true, "{}", km.engine);
        let after = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        let after = after.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(jwt_header(&after)["kid"], new_kid.as_str());
        assert_eq!(km.introspect(&km.main, &after).await["active"], true);
    }
}

#[tokio::test]
async fn userinfo_needs_a_valid_bearer_token() {
    for db in all_engines("km_userinfo").await {
        let km = start(&db).await;
        let body = km.password_grant(&km.main, "pub", "openid email").await;
        let token = body["access_token"].as_str().unwrap();
        let r = km
            .send(km.http.get(km.url("/oauth2/userinfo")).bearer_auth(token))
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.body["sub"], "pub");
        assert_eq!(r.body["email"], "pub@example.com");
        // Without the email scope, no email.
        let body = km.password_grant(&km.main, "pub", "openid").await;
        let r = km
            .send(
                km.http
                    .get(km.url("/oauth2/userinfo"))
                    .bearer_auth(body["access_token"].as_str().unwrap()),
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        assert_eq!(r.body["email"], Value::Null);

        let no_token = km.http.get(km.url("/oauth2/userinfo"));
        let garbage = km.http.get(km.url("/oauth2/userinfo")).bearer_auth("garbage");
        let fake_jwt = km.http.get(km.url("/oauth2/userinfo")).bearer_auth("e30.e30.c2ln");
        let basic = km
            .http
            .get(km.url("/oauth2/userinfo"))
            .basic_auth("pub", Some("pub-password"));
        // A refresh token is not an access token.
        let refresh = km
            .http
            .get(km.url("/oauth2/userinfo"))
            .bearer_auth(body["refresh_token"].as_str().unwrap());
        for req in [no_token, garbage, fake_jwt, basic, refresh] {
            let r = km.send(req).await;
            assert_eq!(r.status, 401, "{}: {}", km.engine, r.text);
            assert!(
                r.header(WWW_AUTHENTICATE).is_some_and(|v| v.contains("invalid_token")),
                "{:?}",
                r.headers
            );
        }
    }
}

#[tokio::test]
async fn token_requests_beyond_the_rate_slow_down() {
    for db in all_engines("km_rate_limit").await {
        let km = start_with(
            &db,
            Options {
                per_second: 1,
                ..Options::default()
            },
        )
        .await;
        let cc = [("grant_type", "client_credentials")];
        for _ in 0..2 {
            let r = km.token(&km.main, &cc).await;
            assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        }
        let r = km.token(&km.main, &cc).await;
        km.expect_error(&r, 429, "slow_down");
    }
}

#[tokio::test]
async fn failed_passwords_lock_the_user_on_the_password_grant_and_the_login_page() {
    for db in all_engines("km_lockout").await {
        let km = start(&db).await;
        // Five failures in a row (the default limit), on either path.
        for i in 0..3 {
            let guess = format!("guess-{i}");
            let r = km
                .token(
                    &km.main,
                    &[("grant_type", "password"), ("username", "dev"), ("password", &guess)],
                )
                .await;
            km.expect_error(&r, 400, "invalid_grant");
        }
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let base = [
            ("response_type", "code"),
            ("client_id", km.main.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_challenge", &challenge(&verifier)),
            ("code_challenge_method", "S256"),
        ];
        for i in 3..5 {
            let guess = format!("guess-{i}");
            let mut form = base.to_vec();
            form.extend([("username", "dev"), ("password", guess.as_str())]);
            let r = km.send(km.http.post(km.url("/oauth2/authorize")).form(&form)).await;
            assert_eq!(r.status, 401, "{}: {}", km.engine, r.text);
        }
        // Now even the right password is refused, on both paths, and says for how long.
        let pw = password("dev");
        let r = km
            .token(
                &km.main,
                &[("grant_type", "password"), ("username", "dev"), ("password", &pw)],
            )
            .await;
        km.expect_error(&r, 429, "slow_down");
        let mut form = base.to_vec();
        form.extend([("username", "dev"), ("password", pw.as_str())]);
        let r = km.send(km.http.post(km.url("/oauth2/authorize")).form(&form)).await;
        assert_eq!(r.status, 429, "{}: {}", km.engine, r.text);
        assert!(r.header(LOCATION).is_none(), "no code for a locked user");
        assert!(
            r.header("retry-after")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0))
        );
        assert!(r.text.contains("Too many failed sign-in attempts"), "{}", r.text);
        // Another user is not locked.
        let ok = km.password_grant(&km.main, "pub", "").await;
        assert!(ok["access_token"].is_string());
    }
}

#[tokio::test]
async fn secrets_are_never_stored_in_clear() {
    for db in all_engines("km_secrets_at_rest").await {
        let km = start(&db).await;
        let first = km.password_grant(&km.main, "dev", "openid").await;
        let rt_old = first["refresh_token"].as_str().unwrap().to_string();
        let r = km
            .token(&km.main, &[("grant_type", "refresh_token"), ("refresh_token", &rt_old)])
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let rt_new = r.body["refresh_token"].as_str().unwrap().to_string();
        let opaque = km.password_grant(&km.opaque, "dev", "openid").await;
        let opaque_access = opaque["access_token"].as_str().unwrap().to_string();
        let opaque_refresh = opaque["refresh_token"].as_str().unwrap().to_string();
        let verifier = format!("verifier-{}", random_token(32).unwrap());
        let used_code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = km
            .token(
                &km.main,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &used_code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let code_refresh = r.body["refresh_token"].as_str().unwrap().to_string();
        let unused_code = km.authorization_code(&km.main, "dev", &verifier).await;
        let r = km
            .form("/oauth2/revoke", Some(&km.opaque), &[("token", &opaque_access)])
            .await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);

        let stored = km.stored_bytes().await;
        // The dump holds the rows (consumer keys, hashes): it would show a secret if one were there.
        assert!(
            contains(&stored, &km.main.id),
            "{}: the dump misses the keys",
            km.engine
        );
        assert!(
            contains(&stored, &km.service.hash(&rt_new)),
            "{}: the dump misses tokens",
            km.engine
        );
        assert!(
            contains(&stored, &km.service.hash(&unused_code)),
            "{}: the dump misses codes",
            km.engine
        );
        let secrets = [
            ("main client secret", km.main.secret.as_str()),
            ("other client secret", km.other.secret.as_str()),
            ("opaque client secret", km.opaque.secret.as_str()),
            ("limited client secret", km.limited.secret.as_str()),
            ("rotated refresh token", rt_old.as_str()),
            ("refresh token", rt_new.as_str()),
            ("opaque access token", opaque_access.as_str()),
            ("opaque refresh token", opaque_refresh.as_str()),
            ("refresh token of a code", code_refresh.as_str()),
            ("used authorization code", used_code.as_str()),
            ("unused authorization code", unused_code.as_str()),
            ("PKCE verifier", verifier.as_str()),
            ("user password", "dev-password"),
        ];
        for (what, secret) in secrets {
            assert!(
                !contains(&stored, secret),
                "{}: the {what} is stored in clear",
                km.engine
            );
        }
    }
}

#[tokio::test]
async fn a_client_introspects_only_its_own_tokens() {
    for db in all_engines("km_introspect_own").await {
        let km = start(&db).await;
        let r = km.token(&km.main, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status, 200, "{}: {}", km.engine, r.text);
        let token = r.body["access_token"].as_str().unwrap().to_string();
        assert_eq!(km.introspect(&km.main, &token).await["active"], true);
        // Another client learns nothing about it.
        assert_eq!(km.introspect(&km.other, &token).await, json!({"active": false}));
        // A cluster node (a gateway) may introspect any token.
        let r = km
            .send(
                km.http
                    .post(km.url("/oauth2/introspect"))
                    .bearer_auth(CLUSTER_SECRET)
                    .form(&[("token", token.as_str())]),
            )
            .await;
        assert_eq!(r.body["active"], true, "{}: {}", km.engine, r.text);
    }
}
