//! The Developer Portal REST API on a real socket over real databases (SQLite and, when
//! reachable, PostgreSQL): sign-up, the catalogue, applications, keys, API keys and
//! subscriptions. Only an owner sees or changes an application, bad input is refused
//! naming the field and changes nothing (no row, no event), and every change writes its
//! outbox event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tollgate_config::DatabaseConfig;
use tollgate_devportal::{BASE_PATH, DevportalState, routes};
use tollgate_http::Authenticator;
use tollgate_http::rate_limit::RequestLimiter;
use tollgate_model::{LifecycleState, NewUser, Role, TenantId, now_millis};
use tollgate_store::apis::{self, StoredApi};
use tollgate_store::{Database, DatabaseName, connect, events, key_managers, users};
use tollgate_testkit::{RunningServer, TestDb, all_engines};
use tollgate_tokens::{KeyManagerSecret, TokenService, TokenSettings};

struct Server {
    addr: SocketAddr,
    am: Database,
    shared: Database,
    tokens: Arc<TokenService>,
    state: DevportalState,
    /// A PUBLISHED API offering Gold and Bronze.
    published: String,
    /// An API left in CREATED.
    draft: String,
    engine: &'static str,
    _server: RunningServer,
}

#[path = "integration/tenants.rs"]
mod tenants;

/// Inserts an API straight into the store (the Publisher is not under test here).
async fn insert_api(am: &Database, name: &str, context: &str, publish: bool) -> String {
    insert_api_in(am, TenantId::DEFAULT, name, context, publish).await
}

/// [`insert_api`] in `tenant`.
async fn insert_api_in(am: &Database, tenant: TenantId, name: &str, context: &str, publish: bool) -> String {
    let api: tollgate_model::Api = serde_json::from_value(json!({
        "name": name, "context": context, "version": "1.0.0", "provider": "chris",
        "tags": ["animals"], "policies": ["Gold", "Bronze"],
        "operations": [{"target": "/pets", "verb": "GET"}],
    }))
    .unwrap();
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_millis();
    let stored = StoredApi {
        id: id.clone(),
        tenant_id: tenant,
        api,
        definition: None,
        revision_counter: 0,
        created_at: now,
        updated_at: now,
    };
    let mut tx = am.begin().await.unwrap();
    apis::insert(&mut tx, &stored).await.unwrap();
    if publish {
        apis::set_lifecycle(
            &mut tx,
            &id,
            LifecycleState::Created,
            LifecycleState::Published,
            "pat",
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    id
}

async fn serve(state: DevportalState) -> RunningServer {
    tollgate_testkit::serve(tollgate_http::rest_layers(routes(state), 64 * 1024)).await
}

async fn start(db: &TestDb) -> Server {
    // AM and shared may share one database (separate migration histories).
    let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    shared.migrate().await.unwrap();
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    tollgate_store::policies::install_defaults(&am, TenantId::DEFAULT)
        .await
        .unwrap();
    for name in ["alice", "bob"] {
        let new = NewUser {
            tenant_id: TenantId::DEFAULT,
            username: name.into(),
            password: format!("{name}-password"),
            email: None,
            roles: vec![Role::Subscriber],
        };
        users::create(&shared, new).await.unwrap();
    }
    let published = insert_api(&am, "Pets", "/pets", true).await;
    let draft = insert_api(&am, "Draft", "/draft", false).await;
    let tokens = TokenService::open(
        am.clone(),
        KeyManagerSecret::from_secret("test-secret-0123456789"),
        tollgate_config::SigningAlgorithm::ES256,
        TokenSettings {
            issuer: "http://localhost:9443/oauth2/token".into(),
            access_validity: Duration::from_secs(3600),
            refresh_validity: Duration::from_secs(86_400),
            code_validity: Duration::from_secs(300),
        },
    );
    tokens.signer().ensure_key().await.unwrap();
    let state = DevportalState {
        am: am.clone(),
        shared: shared.clone(),
        authenticator: Authenticator::new(shared.clone()).with_tokens(tokens.clone()),
        tokens: tokens.clone(),
        self_signup: true,
        signup_limiter: Arc::new(RequestLimiter::per_period(1000, Duration::from_secs(3600))),
    };
    let server = serve(state.clone()).await;
    Server {
        addr: server.addr,
        am,
        shared,
        tokens,
        state,
        published,
        draft,
        engine: db.engine(),
        _server: server,
    }
}

/// The field names of a validation error (`error[].code`).
fn fields(body: &Value) -> Vec<String> {
    body["error"]
        .as_array()
        .map(|a| a.iter().map(|e| e["code"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// The decoded payload of a JWT.
fn jwt_payload(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The paths of the `null`s in a body: the reference's schemas type no field as nullable,
/// so an absent value is left out rather than sent as `null`.
fn nulls(v: &Value) -> Vec<String> {
    fn walk(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::Null => out.push(path),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, format!("{path}[{i}]"), out)),
            Value::Object(map) => map.iter().for_each(|(k, x)| walk(x, format!("{path}.{k}"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{BASE_PATH}{path}", self.addr)
    }

    /// A request as `user` (password `<user>-password`), or anonymous.
    fn req(&self, user: Option<&str>, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = tollgate_testkit::http().request(method, self.url(path));
        match user {
            Some(u) => req.basic_auth(u, Some(format!("{u}-password"))),
            None => req,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, user: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(user, method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn by(&self, user: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(Some(user), method, path, body).await
    }

    async fn seq(&self) -> i64 {
        events::latest_seq(&self.am).await.unwrap()
    }

    /// The kinds of the events written after `seq`.
    async fn kinds_since(&self, seq: i64) -> Vec<&'static str> {
        events::read_since(&self.am, seq, 1000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect()
    }

    async fn app_count(&self, user: &str) -> i64 {
        let (status, body) = self.by(user, Method::GET, "/applications", None).await;
        assert_eq!(status, 200, "{body}");
        body["pagination"]["total"].as_i64().unwrap()
    }

    async fn sub_count(&self, user: &str) -> i64 {
        let (status, body) = self.by(user, Method::GET, "/subscriptions", None).await;
        assert_eq!(status, 200, "{body}");
        body["pagination"]["total"].as_i64().unwrap()
    }

    async fn key_count(&self, user: &str, app: &str) -> i64 {
        let (status, body) = self
            .by(user, Method::GET, &format!("/applications/{app}/oauth-keys"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["count"].as_i64().unwrap()
    }

    async fn create_app(&self, user: &str, name: &str) -> String {
        let (status, body) = self
            .by(
                user,
                Method::POST,
                "/applications",
                Some(json!({"name": name, "throttlingPolicy": "Unlimited"})),
            )
            .await;
        assert_eq!(status, 201, "[{}] create application {name}: {body}", self.engine);
        text(&body["applicationId"])
    }

    /// Resident PRODUCTION keys for client credentials: (keyMappingId, consumerKey, secret).
    async fn generate_keys(&self, user: &str, app: &str) -> (String, String, String) {
        let (status, body) = self
            .by(
                user,
                Method::POST,
                &format!("/applications/{app}/generate-keys"),
                Some(json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"]})),
            )
            .await;
        assert_eq!(status, 200, "[{}] generate-keys: {body}", self.engine);
        (
            text(&body["keyMappingId"]),
            text(&body["consumerKey"]),
            text(&body["consumerSecret"]),
        )
    }

    async fn generate_token(&self, user: &str, app: &str, km: &str, body: Value) -> (u16, Value) {
        self.by(
            user,
            Method::POST,
            &format!("/applications/{app}/oauth-keys/{km}/generate-token"),
            Some(body),
        )
        .await
    }

    async fn subscribe(&self, user: &str, app: &str, api: &str, policy: &str) -> (u16, Value) {
        self.by(
            user,
            Method::POST,
            "/subscriptions",
            Some(json!({"applicationId": app, "apiId": api, "throttlingPolicy": policy})),
        )
        .await
    }

    async fn user_total(&self) -> i64 {
        users::list(&self.shared, TenantId::DEFAULT, 0, 1000).await.unwrap().1
    }
}

#[tokio::test]
async fn sign_up_creates_a_subscriber_with_a_default_application() {
    for db in all_engines("dp_signup").await {
        let s = start(&db).await;
        let e = s.engine;
        let seq = s.seq().await;
        let (status, body) = s
            .call(
                None,
                Method::POST,
                "/signup",
                Some(json!({"username": "dave", "password": "dave-password", "email": "dave@example.com"})),
            )
            .await;
        assert_eq!(status, 201, "[{e}] {body}");
        assert_eq!(body["username"], "dave");
        assert_eq!(body["roles"], json!(["subscriber"]));
        assert!(!body.to_string().contains("dave-password"));
        let user = users::find_by_username(&s.shared, TenantId::DEFAULT, "dave")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.roles, vec![Role::Subscriber]);
        let (status, apps) = s.by("dave", Method::GET, "/applications", None).await;
        assert_eq!(status, 200, "[{e}] {apps}");
        assert_eq!(apps["count"], 1);
        assert_eq!(apps["list"][0]["name"], "DefaultApplication");
        assert_eq!(apps["list"][0]["throttlingPolicy"], "Unlimited");
        assert_eq!(apps["list"][0]["owner"], "dave");
        assert_eq!(s.kinds_since(seq).await, ["application_upserted"]);

        // Bad input: 400 naming the field, no user, no event.
        let (users_before, seq) = (s.user_total().await, s.seq().await);
        for (input, field) in [
            (json!({"username": "erin", "password": "short"}), "password"),
            (
                json!({"username": "bad name!", "password": "long-enough-pw"}),
                "username",
            ),
            (json!({"username": "", "password": "long-enough-pw"}), "username"),
            (
                json!({"username": "erin", "password": "long-enough-pw", "email": "nope"}),
                "email",
            ),
        ] {
            let (status, body) = s.call(None, Method::POST, "/signup", Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        for (input, missing) in [
            (json!({"username": "erin"}), "password"),
            (json!({"password": "long-enough-pw"}), "username"),
            (json!({"username": 5, "password": "long-enough-pw"}), "username"),
        ] {
            let (status, body) = s.call(None, Method::POST, "/signup", Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert!(body["description"].as_str().unwrap().contains(missing), "[{e}] {body}");
        }
        let form = s
            .req(None, Method::POST, "/signup")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=erin&password=long-enough-pw");
        assert_eq!(s.send(form).await.0, 400, "[{e}] non-JSON body");
        let broken = s
            .req(None, Method::POST, "/signup")
            .header("content-type", "application/json")
            .body("{\"username\":");
        assert_eq!(s.send(broken).await.0, 400, "[{e}] broken JSON");
        assert!(
            users::find_by_username(&s.shared, TenantId::DEFAULT, "erin")
                .await
                .unwrap()
                .is_none()
        );

        // Duplicates (in any case) conflict.
        for name in ["dave", "DAVE", "alice"] {
            let (status, body) = s
                .call(
                    None,
                    Method::POST,
                    "/signup",
                    Some(json!({"username": name, "password": "another-password"})),
                )
                .await;
            assert_eq!(status, 409, "[{e}] {name}: {body}");
        }
        assert_eq!(s.user_total().await, users_before, "[{e}]");
        assert_eq!(s.seq().await, seq, "[{e}] a refused sign-up wrote an event");
        assert_eq!(s.app_count("dave").await, 1);

        // With self sign-up off, nobody may sign up.
        let closed = serve(DevportalState {
            self_signup: false,
            ..s.state.clone()
        })
        .await;
        let r = tollgate_testkit::http()
            .post(format!("http://{}{BASE_PATH}/signup", closed.addr))
            .json(&json!({"username": "frank", "password": "frank-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "[{e}]");
        assert!(
            users::find_by_username(&s.shared, TenantId::DEFAULT, "frank")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.user_total().await, users_before);
        assert_eq!(s.seq().await, seq);
    }
}

#[tokio::test]
async fn sign_ups_beyond_the_rate_per_address_get_429_and_create_nobody() {
    for db in all_engines("dp_signup_rate").await {
        let s = start(&db).await;
        let e = s.engine;
        let limited = serve(DevportalState {
            signup_limiter: Arc::new(RequestLimiter::per_period(3, Duration::from_secs(3600))),
            ..s.state.clone()
        })
        .await;
        let signup = |name: &str| {
            tollgate_testkit::http()
                .post(format!("http://{}{BASE_PATH}/signup", limited.addr))
                .json(&json!({"username": name, "password": format!("{name}-password")}))
                .send()
        };
        // Refused attempts count too.
        let r = signup("bad name!").await.unwrap();
        assert_eq!(r.status(), 400, "[{e}]");
        for name in ["gina", "hank"] {
            assert_eq!(signup(name).await.unwrap().status(), 201, "[{e}] {name}");
        }
        let users_before = s.user_total().await;
        let r = signup("ivan").await.unwrap();
        assert_eq!(r.status(), 429, "[{e}]");
        let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=1200).contains(&retry_after), "[{e}] {retry_after}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], 429, "[{e}] {body}");
        assert!(
            body["description"].as_str().unwrap().contains("self_signups_per_hour"),
            "[{e}] {body}"
        );
        assert_eq!(s.user_total().await, users_before, "[{e}] nobody was created");
    }
}

#[tokio::test]
async fn the_catalogue_shows_published_apis_and_keeps_one_rating_per_user() {
    for db in all_engines("dp_catalogue").await {
        let s = start(&db).await;
        let e = s.engine;
        let (pub_id, draft) = (s.published.clone(), s.draft.clone());

        let (status, list) = s.call(None, Method::GET, "/apis", None).await;
        assert_eq!(status, 200, "[{e}] {list}");
        let ids: Vec<String> = list["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| text(&a["id"]))
            .collect();
        assert_eq!(ids, std::slice::from_ref(&pub_id), "[{e}] {list}");
        assert_eq!(list["pagination"]["total"], 1);
        assert_eq!(list["list"][0]["lifeCycleStatus"], "PUBLISHED");

        let (status, api) = s.call(None, Method::GET, &format!("/apis/{pub_id}"), None).await;
        assert_eq!(status, 200, "[{e}] {api}");
        assert_eq!(api["name"], "Pets");
        assert_eq!(api["throttlingPolicies"], json!(["Gold", "Bronze"]));
        assert_eq!(api["avgRating"], "0.0");
        // No description was written: it is left out, as are other absent values.
        assert_eq!(nulls(&list), Vec::<String>::new(), "[{e}] {list}");
        assert_eq!(nulls(&api), Vec::<String>::new(), "[{e}] {api}");
        for user in [None, Some("alice")] {
            let (status, _) = s.call(user, Method::GET, &format!("/apis/{draft}"), None).await;
            assert_eq!(status, 404, "[{e}] {user:?} sees a CREATED API");
        }
        assert_eq!(s.call(None, Method::GET, "/apis/nope", None).await.0, 404);

        for (query, expected) in [
            ("name:Pets", 1),
            ("name:pet", 1),
            ("Pets", 1),
            ("name:Nope", 0),
            ("name:Draft", 0),
            ("tag:animals", 1),
            ("tag:x", 0),
        ] {
            let (status, body) = s
                .send(s.req(None, Method::GET, "/apis").query(&[("query", query)]))
                .await;
            assert_eq!(status, 200, "[{e}] {query}: {body}");
            assert_eq!(body["count"], expected, "[{e}] {query}: {body}");
            if expected == 1 {
                assert_eq!(body["list"][0]["id"], pub_id.as_str(), "[{e}] {query}");
            }
        }
        let (status, body) = s
            .send(s.req(None, Method::GET, "/apis").query(&[("query", "status:CREATED")]))
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(
            body["count"], 0,
            "[{e}] unlisted states are never in the catalogue: {body}"
        );
        for query in ["bogus:x", "name:"] {
            let (status, body) = s
                .send(s.req(None, Method::GET, "/apis").query(&[("query", query)]))
                .await;
            assert_eq!(status, 400, "[{e}] {query}: {body}");
            assert_eq!(fields(&body), ["query"], "[{e}] {query}: {body}");
        }

        // Ratings: one per user, 1–5, signed in only.
        let ratings = format!("/apis/{pub_id}/ratings");
        let rate = format!("/apis/{pub_id}/user-rating");
        let (status, body) = s.call(None, Method::GET, &ratings, None).await;
        assert_eq!((status, body["count"].clone()), (200, json!(0)), "[{e}] {body}");
        for stars in [4, 5] {
            let (status, body) = s.by("alice", Method::PUT, &rate, Some(json!({"rating": stars}))).await;
            assert_eq!(status, 200, "[{e}] {body}");
            assert_eq!(body["rating"], stars);
            assert_eq!(body["ratedBy"], "alice");
        }
        for stars in [0, 6, -1] {
            let (status, body) = s.by("alice", Method::PUT, &rate, Some(json!({"rating": stars}))).await;
            assert_eq!(status, 400, "[{e}] {stars}: {body}");
            assert_eq!(fields(&body), ["rating"], "[{e}] {body}");
        }
        let (status, _) = s.by("alice", Method::PUT, &rate, Some(json!({"rating": "five"}))).await;
        assert_eq!(status, 400, "[{e}]");
        let (status, body) = s.call(None, Method::PUT, &rate, Some(json!({"rating": 3}))).await;
        assert_eq!(status, 401, "[{e}] {body}");
        let (status, _) = s
            .by(
                "alice",
                Method::PUT,
                &format!("/apis/{draft}/user-rating"),
                Some(json!({"rating": 3})),
            )
            .await;
        assert_eq!(status, 404, "[{e}] rated a CREATED API");
        let (_, body) = s.call(None, Method::GET, &ratings, None).await;
        assert_eq!(body["count"], 1, "[{e}] {body}");
        assert_eq!(body["list"][0]["rating"], 5);
        assert_eq!(body["list"][0]["ratedBy"], "alice");
        let (_, api) = s.call(None, Method::GET, &format!("/apis/{pub_id}"), None).await;
        assert_eq!(api["avgRating"], "5.0");
        assert_eq!(
            s.call(None, Method::GET, &format!("/apis/{draft}/ratings"), None)
                .await
                .0,
            404
        );
    }
}

#[tokio::test]
async fn applications_are_validated_unique_per_owner_and_evented() {
    for db in all_engines("dp_apps").await {
        let s = start(&db).await;
        let e = s.engine;
        let seq = s.seq().await;
        let r = s
            .req(Some("alice"), Method::POST, "/applications")
            .json(&json!({"name": "Shop", "throttlingPolicy": "10PerMin", "description": "the shop"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "[{e}]");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let app: Value = r.json().await.unwrap();
        let id = text(&app["applicationId"]);
        assert_eq!(location, format!("{BASE_PATH}/applications/{id}"));
        assert_eq!(app["tokenType"], "JWT");
        assert_eq!(app["throttlingPolicy"], "10PerMin");
        assert_eq!(app["owner"], "alice");
        assert_eq!(app["status"], "APPROVED");
        assert_eq!(app["keys"], json!([]));
        assert_eq!(s.kinds_since(seq).await, ["application_upserted"]);

        // Bad input changes nothing.
        let (count, seq) = (s.app_count("alice").await, s.seq().await);
        let ok = |extra: Value| {
            let mut b = json!({"name": "Other", "throttlingPolicy": "Unlimited"});
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            b
        };
        for (input, field) in [
            (ok(json!({"name": ""})), "name"),
            (ok(json!({"name": "   "})), "name"),
            (ok(json!({"name": " Other "})), "name"),
            (ok(json!({"name": "x".repeat(101)})), "name"),
            (ok(json!({"name": "tab\there"})), "name"),
            (ok(json!({"name": "Shop\u{202E}nimda"})), "name"),
            (ok(json!({"name": "Sh\u{200B}op"})), "name"),
            (ok(json!({"throttlingPolicy": "Nope"})), "throttlingPolicy"),
            (ok(json!({"throttlingPolicy": "Gold"})), "throttlingPolicy"),
            (ok(json!({"throttlingPolicy": ""})), "throttlingPolicy"),
            (ok(json!({"tokenType": "SAML"})), "tokenType"),
            (ok(json!({"attributes": {"x": 1}})), "attributes.x"),
            (ok(json!({"description": "d".repeat(1025)})), "description"),
        ] {
            let (status, body) = s.by("alice", Method::POST, "/applications", Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        for (input, missing) in [
            (json!({"name": "Other"}), "throttlingPolicy"),
            (json!({"throttlingPolicy": "Unlimited"}), "name"),
            (json!({"name": 7, "throttlingPolicy": "Unlimited"}), "name"),
        ] {
            let (status, body) = s.by("alice", Method::POST, "/applications", Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert!(body["description"].as_str().unwrap().contains(missing), "[{e}] {body}");
        }
        let form = s
            .req(Some("alice"), Method::POST, "/applications")
            .body("name=Other&throttlingPolicy=Unlimited");
        assert_eq!(s.send(form).await.0, 400, "[{e}] non-JSON body");
        // The same name in another case is the same application for one owner.
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                "/applications",
                Some(json!({"name": "SHOP", "throttlingPolicy": "Unlimited"})),
            )
            .await;
        assert_eq!(status, 409, "[{e}] {body}");
        let (status, _) = s
            .call(
                None,
                Method::POST,
                "/applications",
                Some(json!({"name": "Anon", "throttlingPolicy": "Unlimited"})),
            )
            .await;
        assert_eq!(status, 401, "[{e}]");
        assert_eq!(s.app_count("alice").await, count, "[{e}]");
        assert_eq!(s.seq().await, seq, "[{e}] refused input wrote an event");

        // Another owner may use the name; 100 characters are fine.
        let bobs = s.create_app("bob", "shop").await;
        assert_ne!(bobs, id);
        s.create_app("alice", &"y".repeat(100)).await;
        let other = s.create_app("alice", "Other").await;
        let (_, bob_list) = s.by("bob", Method::GET, "/applications", None).await;
        assert_eq!(bob_list["count"], 1, "[{e}] {bob_list}");

        // PUT changes name and policy, with an event.
        let seq = s.seq().await;
        let path = format!("/applications/{id}");
        let (status, body) = s
            .by(
                "alice",
                Method::PUT,
                &path,
                Some(json!({"name": "Shop Renamed", "throttlingPolicy": "20PerMin", "tokenType": "OAUTH"})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(body["name"], "Shop Renamed");
        assert_eq!(body["throttlingPolicy"], "20PerMin");
        assert_eq!(body["tokenType"], "OAUTH");
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1, "[{e}]");
        assert_eq!(evs[0].kind.as_str(), "application_upserted");
        assert_eq!(evs[0].payload["id"], id.as_str());
        assert_eq!(evs[0].payload["tier"], "20PerMin");
        assert_eq!(evs[0].payload["name"], "Shop Renamed");

        // A bad or clashing PUT changes nothing.
        let seq = s.seq().await;
        for (input, status_expected) in [
            (json!({"name": "other", "throttlingPolicy": "Unlimited"}), 409),
            (json!({"name": "Shop Renamed", "throttlingPolicy": "Gold"}), 400),
            (json!({"name": "", "throttlingPolicy": "Unlimited"}), 400),
        ] {
            let (status, body) = s.by("alice", Method::PUT, &path, Some(input.clone())).await;
            assert_eq!(status, status_expected, "[{e}] {input}: {body}");
        }
        let (_, got) = s.by("alice", Method::GET, &path, None).await;
        assert_eq!(
            (got["name"].clone(), got["throttlingPolicy"].clone()),
            (json!("Shop Renamed"), json!("20PerMin"))
        );
        assert_eq!(s.seq().await, seq, "[{e}]");

        // DELETE removes the application with its subscriptions.
        let (status, sub) = s.subscribe("alice", &id, &s.published, "Gold").await;
        assert_eq!(status, 201, "[{e}] {sub}");
        let sub_id = text(&sub["subscriptionId"]);
        let (status, _) = s.subscribe("alice", &other, &s.published, "Bronze").await;
        assert_eq!(status, 201);
        assert_eq!(s.sub_count("alice").await, 2);
        let (_, got) = s.by("alice", Method::GET, &path, None).await;
        assert_eq!(got["subscriptionCount"], 1);
        let seq = s.seq().await;
        let (status, body) = s.by("alice", Method::DELETE, &path, None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        // Its API keys (client id = the application's id) are revoked with it.
        assert_eq!(
            s.kinds_since(seq).await,
            ["token_revoked", "application_deleted"],
            "[{e}]"
        );
        assert_eq!(s.by("alice", Method::GET, &path, None).await.0, 404);
        assert_eq!(s.by("alice", Method::DELETE, &path, None).await.0, 404);
        assert_eq!(
            s.by("alice", Method::GET, &format!("/subscriptions/{sub_id}"), None)
                .await
                .0,
            404
        );
        assert_eq!(
            s.sub_count("alice").await,
            1,
            "[{e}] the other application's subscription stays"
        );
        assert!(
            tollgate_store::subscriptions::get(&s.am, TenantId::DEFAULT, &sub_id)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.app_count("alice").await, count + 1);
        assert_eq!(s.app_count("bob").await, 1);
    }
}

#[tokio::test]
async fn another_subscriber_cannot_see_or_touch_an_application() {
    for db in all_engines("dp_isolation").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let (km, ck, secret) = s.generate_keys("alice", &app).await;
        let (status, sub) = s.subscribe("alice", &app, &s.published, "Gold").await;
        assert_eq!(status, 201);
        let sub_id = text(&sub["subscriptionId"]);
        let (status, key) = s
            .by(
                "alice",
                Method::POST,
                &format!("/applications/{app}/api-keys/PRODUCTION/generate"),
                None,
            )
            .await;
        assert_eq!(status, 200, "[{e}] {key}");
        let apikey = text(&key["apikey"]);
        let (_, before) = s.by("alice", Method::GET, &format!("/applications/{app}"), None).await;
        let (_, keys_before) = s
            .by("alice", Method::GET, &format!("/applications/{app}/oauth-keys"), None)
            .await;
        let seq = s.seq().await;

        let a = format!("/applications/{app}");
        let sub_body = json!({"applicationId": app, "apiId": s.published, "throttlingPolicy": "Bronze"});
        let cases: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, a.clone(), None),
            (
                Method::PUT,
                a.clone(),
                Some(json!({"name": "Stolen", "throttlingPolicy": "10PerMin"})),
            ),
            (Method::DELETE, a.clone(), None),
            (Method::GET, format!("{a}/oauth-keys"), None),
            (Method::GET, format!("{a}/oauth-keys/{km}"), None),
            (
                Method::POST,
                format!("{a}/generate-keys"),
                Some(json!({"keyType": "SANDBOX", "grantTypesToBeSupported": ["client_credentials"]})),
            ),
            (
                Method::POST,
                format!("{a}/map-keys"),
                Some(json!({"consumerKey": "x", "keyType": "SANDBOX", "keyManager": "Okta"})),
            ),
            (Method::POST, format!("{a}/oauth-keys/{km}/regenerate-secret"), None),
            (
                Method::POST,
                format!("{a}/oauth-keys/{km}/generate-token"),
                Some(json!({"consumerSecret": secret})),
            ),
            (Method::POST, format!("{a}/api-keys/PRODUCTION/generate"), None),
            (
                Method::POST,
                format!("{a}/api-keys/PRODUCTION/revoke"),
                Some(json!({"apikey": apikey})),
            ),
            (Method::GET, format!("/subscriptions/{sub_id}"), None),
            (Method::PUT, format!("/subscriptions/{sub_id}"), Some(sub_body.clone())),
            (Method::DELETE, format!("/subscriptions/{sub_id}"), None),
            (Method::GET, format!("/subscriptions?applicationId={app}"), None),
        ];
        for (method, path, body) in cases {
            let (status, resp) = s.by("bob", method.clone(), &path, body).await;
            assert_eq!(status, 404, "[{e}] bob {method} {path}: {resp}");
            assert!(!resp.to_string().contains(&ck), "[{e}] {path} leaked the consumer key");
        }
        let (status, body) = s.subscribe("bob", &app, &s.published, "Bronze").await;
        assert!(status == 400 || status == 404, "[{e}] {status} {body}");
        if status == 400 {
            assert_eq!(fields(&body), ["applicationId"], "[{e}] {body}");
        }
        let (_, bobs) = s.by("bob", Method::GET, "/applications", None).await;
        assert_eq!(bobs["count"], 0, "[{e}] {bobs}");
        let (_, bob_subs) = s.by("bob", Method::GET, "/subscriptions", None).await;
        assert_eq!(bob_subs["count"], 0, "[{e}] {bob_subs}");

        // Nothing of alice's changed.
        assert_eq!(s.seq().await, seq, "[{e}] bob's calls wrote events");
        let (_, after) = s.by("alice", Method::GET, &a, None).await;
        assert_eq!(after, before, "[{e}]");
        let (_, keys_after) = s.by("alice", Method::GET, &format!("{a}/oauth-keys"), None).await;
        assert_eq!(keys_after, keys_before, "[{e}]");
        let (status, got) = s
            .by("alice", Method::GET, &format!("/subscriptions/{sub_id}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(got["throttlingPolicy"], "Gold");
        assert_eq!(s.sub_count("alice").await, 1);
        let (status, body) = s
            .generate_token("alice", &app, &km, json!({"consumerSecret": secret}))
            .await;
        assert_eq!(status, 200, "[{e}] the original secret stopped working: {body}");
        let active = s.tokens.introspect(&apikey).await.unwrap();
        assert!(active.is_some(), "[{e}] bob revoked alice's API key");
    }
}

#[tokio::test]
async fn keys_are_generated_once_and_tokens_follow_the_secret() {
    for db in all_engines("dp_keys").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let a = format!("/applications/{app}");
        let seq = s.seq().await;
        let request = json!({"keyType": "PRODUCTION", "grantTypesToBeSupported": ["client_credentials"],
            "validityTime": "1800", "scopes": ["read"]});
        let (status, keys) = s
            .by(
                "alice",
                Method::POST,
                &format!("{a}/generate-keys"),
                Some(request.clone()),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {keys}");
        let (km, ck, secret) = (
            text(&keys["keyMappingId"]),
            text(&keys["consumerKey"]),
            text(&keys["consumerSecret"]),
        );
        assert!(secret.len() >= 32, "[{e}] {secret}");
        assert_eq!(keys["keyManager"], "Resident Key Manager");
        assert_eq!(keys["mode"], "CREATED");
        assert_eq!(keys["keyType"], "PRODUCTION");
        assert_eq!(keys["additionalProperties"]["validityTime"], 1800);
        assert_eq!(s.kinds_since(seq).await, ["key_mapping_upserted"]);

        // The secret is shown once.
        let (status, listed) = s.by("alice", Method::GET, &format!("{a}/oauth-keys"), None).await;
        assert_eq!(status, 200);
        assert_eq!(listed["count"], 1);
        assert_eq!(listed["list"][0]["consumerKey"], ck.as_str());
        assert_eq!(listed["list"][0]["consumerSecret"], Value::Null);
        let (_, one) = s.by("alice", Method::GET, &format!("{a}/oauth-keys/{km}"), None).await;
        assert_eq!(one["consumerSecret"], Value::Null);
        let (_, got) = s.by("alice", Method::GET, &a, None).await;
        assert_eq!(got["keys"][0]["consumerSecret"], Value::Null);
        for body in [&keys, &listed, &one, &got] {
            assert_eq!(nulls(body), Vec::<String>::new(), "[{e}] {body}");
        }
        assert!(!got.to_string().contains(&secret) && !listed.to_string().contains(&secret));
        assert_eq!(
            s.by("alice", Method::GET, &format!("{a}/oauth-keys/nope"), None)
                .await
                .0,
            404
        );

        // Bad input: 400 naming the field, no keys, no event.
        let seq = s.seq().await;
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &format!("{a}/generate-keys"),
                Some(request.clone()),
            )
            .await;
        assert_eq!(status, 409, "[{e}] {body}");
        let sandbox = |extra: Value| {
            let mut b = json!({"keyType": "SANDBOX", "grantTypesToBeSupported": ["client_credentials"]});
            b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            b
        };
        for (input, field) in [
            (sandbox(json!({"keyType": "TEST"})), "keyType"),
            (
                sandbox(json!({"grantTypesToBeSupported": []})),
                "grantTypesToBeSupported",
            ),
            (
                sandbox(json!({"grantTypesToBeSupported": ["implicit"]})),
                "grantTypesToBeSupported",
            ),
            (
                sandbox(json!({"grantTypesToBeSupported": ["authorization_code"]})),
                "callbackUrl",
            ),
            (sandbox(json!({"callbackUrl": "ftp://x"})), "callbackUrl"),
            (sandbox(json!({"validityTime": "-5"})), "validityTime"),
            (sandbox(json!({"validityTime": -5})), "validityTime"),
            (sandbox(json!({"validityTime": "soon"})), "validityTime"),
            (sandbox(json!({"validityTime": "99999999999"})), "validityTime"),
            (
                sandbox(json!({"callbackUrl": "https://app.example/cb#frag"})),
                "callbackUrl",
            ),
            (sandbox(json!({"keyManager": "Other"})), "keyManager"),
            (sandbox(json!({"scopes": ["has space"]})), "scopes"),
        ] {
            let (status, body) = s
                .by(
                    "alice",
                    Method::POST,
                    &format!("{a}/generate-keys"),
                    Some(input.clone()),
                )
                .await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &format!("{a}/generate-keys"),
                Some(json!({"keyType": "SANDBOX"})),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("grantTypesToBeSupported")
        );
        assert_eq!(s.key_count("alice", &app).await, 1, "[{e}]");
        assert_eq!(s.seq().await, seq, "[{e}] refused keys wrote an event");

        // Tokens with the secret.
        let (status, t) = s
            .generate_token("alice", &app, &km, json!({"consumerSecret": secret, "scopes": []}))
            .await;
        assert_eq!(status, 200, "[{e}] {t}");
        let token = text(&t["accessToken"]);
        assert_eq!(t["tokenScopes"], json!(["default"]));
        assert_eq!(t["validityTime"], 1800, "[{e}] the keys' validity applies");
        let claims = jwt_payload(&token);
        assert_eq!(claims["client_id"], ck.as_str(), "[{e}] {claims}");
        assert_eq!(claims["application"]["name"], "Shop");
        assert_eq!(claims["application"]["id"], app.as_str());
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["keytype"], "PRODUCTION");
        assert_eq!(claims["token_type"], "access_token");
        assert!(s.tokens.introspect(&token).await.unwrap().is_some());
        let (status, t) = s
            .generate_token(
                "alice",
                &app,
                &km,
                json!({"consumerSecret": secret, "validityPeriod": 60}),
            )
            .await;
        assert_eq!((status, t["validityTime"].clone()), (200, json!(60)), "[{e}] {t}");

        let seq = s.seq().await;
        for (input, field) in [
            (json!({"consumerSecret": "wrong"}), "consumerSecret"),
            (json!({"consumerSecret": ""}), "consumerSecret"),
            (
                json!({"consumerSecret": secret, "validityPeriod": -1}),
                "validityPeriod",
            ),
            (json!({"consumerSecret": secret, "grantType": "PASSWORD"}), "grantType"),
            (json!({"consumerSecret": secret, "scopes": ["apim:admin"]}), "scopes"),
            (json!({"consumerSecret": secret, "scopes": ["no-such-scope"]}), "scopes"),
        ] {
            let (status, body) = s.generate_token("alice", &app, &km, input.clone()).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        let (status, body) = s.generate_token("alice", &app, &km, json!({})).await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert!(body["description"].as_str().unwrap().contains("consumerSecret"));
        assert_eq!(s.seq().await, seq);

        // A new secret: the old one and its tokens stop working.
        let seq = s.seq().await;
        let (status, regen) = s
            .by(
                "alice",
                Method::POST,
                &format!("{a}/oauth-keys/{km}/regenerate-secret"),
                None,
            )
            .await;
        assert_eq!(status, 200, "[{e}] {regen}");
        assert_eq!(regen["consumerKey"], ck.as_str());
        let new_secret = text(&regen["consumerSecret"]);
        assert_ne!(new_secret, secret);
        assert!(
            s.tokens.introspect(&token).await.unwrap().is_none(),
            "[{e}] a token of the old secret is still active"
        );
        let revoked = events::read_since(&s.am, seq, 10).await.unwrap();
        assert!(
            revoked
                .iter()
                .any(|ev| ev.kind.as_str() == "token_revoked" && ev.payload["consumerKey"] == ck.as_str()),
            "[{e}] {revoked:?}"
        );
        let (status, body) = s
            .generate_token("alice", &app, &km, json!({"consumerSecret": secret}))
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["consumerSecret"]);
        let (status, body) = s
            .generate_token("alice", &app, &km, json!({"consumerSecret": new_secret}))
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(jwt_payload(&text(&body["accessToken"]))["client_id"], ck.as_str());

        // map-keys needs a registered third-party key manager.
        let seq = s.seq().await;
        let map = json!({"consumerKey": "okta-client", "consumerSecret": "okta-secret",
            "keyType": "PRODUCTION", "keyManager": "Okta"});
        let (status, body) = s
            .by("alice", Method::POST, &format!("{a}/map-keys"), Some(map.clone()))
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["keyManager"], "[{e}] {body}");
        for (input, field) in [
            (
                json!({"consumerKey": "okta-client", "keyType": "PRODUCTION"}),
                "keyManager",
            ),
            (
                json!({"consumerKey": "okta-client", "keyType": "PRODUCTION", "keyManager": "Resident Key Manager"}),
                "keyManager",
            ),
        ] {
            let (status, body) = s
                .by("alice", Method::POST, &format!("{a}/map-keys"), Some(input.clone()))
                .await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        assert_eq!(s.key_count("alice", &app).await, 1);
        assert_eq!(s.seq().await, seq);

        let mut tx = s.am.begin().await.unwrap();
        key_managers::insert(
            &mut tx,
            TenantId::DEFAULT,
            &key_managers::KeyManagerRow {
                id: uuid::Uuid::now_v7().to_string(),
                name: "Okta".into(),
                body: "{}".into(),
                enabled: true,
                jwks: None,
                jwks_fetched_at: None,
            },
            now_millis(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        for (input, field) in [
            (
                json!({"consumerKey": "", "keyType": "PRODUCTION", "keyManager": "Okta"}),
                "consumerKey",
            ),
            (
                json!({"consumerKey": "okta-client", "keyType": "TEST", "keyManager": "Okta"}),
                "keyType",
            ),
        ] {
            let (status, body) = s
                .by("alice", Method::POST, &format!("{a}/map-keys"), Some(input.clone()))
                .await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        let (status, mapped) = s
            .by("alice", Method::POST, &format!("{a}/map-keys"), Some(map.clone()))
            .await;
        assert_eq!(status, 200, "[{e}] {mapped}");
        assert_eq!(mapped["mode"], "MAPPED");
        assert_eq!(mapped["keyManager"], "Okta");
        assert_eq!(mapped["consumerKey"], "okta-client");
        assert_eq!(mapped["consumerSecret"], Value::Null);
        assert_eq!(s.kinds_since(seq).await, ["key_mapping_upserted"]);
        let (status, _) = s
            .by("alice", Method::POST, &format!("{a}/map-keys"), Some(map.clone()))
            .await;
        assert_eq!(status, 409, "[{e}]");
        // Tokens and secrets of mapped keys are the other key manager's business.
        let mkm = text(&mapped["keyMappingId"]);
        let (status, body) = s
            .generate_token("alice", &app, &mkm, json!({"consumerSecret": "okta-secret"}))
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["keyMappingId"]);
        let (status, _) = s
            .by(
                "alice",
                Method::POST,
                &format!("{a}/oauth-keys/{mkm}/regenerate-secret"),
                None,
            )
            .await;
        assert_eq!(status, 400, "[{e}]");
        assert_eq!(s.key_count("alice", &app).await, 2);
    }
}

/// A revocation by consumer key covers tokens issued before it, to the millisecond: a
/// token issued in the same second, after regenerate-secret, is active at once.
#[tokio::test]
async fn a_token_of_a_regenerated_secret_is_active_at_once() {
    for db in all_engines("dp_regen_fresh").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let (km, _, _) = s.generate_keys("alice", &app).await;
        // Start just after a second boundary, so regeneration and the token share a second.
        let into_second = u64::try_from(now_millis() % 1000).unwrap();
        tokio::time::sleep(Duration::from_millis(1020 - into_second)).await;
        let (status, regen) = s
            .by(
                "alice",
                Method::POST,
                &format!("/applications/{app}/oauth-keys/{km}/regenerate-secret"),
                None,
            )
            .await;
        assert_eq!(status, 200, "[{e}] {regen}");
        let (status, t) = s
            .generate_token(
                "alice",
                &app,
                &km,
                json!({"consumerSecret": regen["consumerSecret"], "scopes": ["apim:subscribe"]}),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {t}");
        let token = text(&t["accessToken"]);
        assert!(
            s.tokens.introspect(&token).await.unwrap().is_some(),
            "[{e}] a token of the new secret is inactive"
        );
        let (status, body) = s
            .send(s.req(None, Method::GET, "/applications").bearer_auth(&token))
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
    }
}

#[tokio::test]
async fn api_keys_are_signed_and_revocable() {
    for db in all_engines("dp_api_keys").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let generate = format!("/applications/{app}/api-keys/PRODUCTION/generate");
        let revoke = format!("/applications/{app}/api-keys/PRODUCTION/revoke");

        let (status, body) = s.by("alice", Method::POST, &generate, None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        let default_key = text(&body["apikey"]);
        assert_eq!(body["keyName"], "Shop-PRODUCTION");
        assert_eq!(body["validityPeriod"], 365 * 86_400);
        let claims = jwt_payload(&default_key);
        assert_eq!(claims["token_type"], "apiKey", "[{e}] {claims}");
        assert_eq!(claims["application"]["id"], app.as_str());
        assert_eq!(claims["sub"], "alice");

        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &generate,
                Some(json!({"keyName": "ci", "validityPeriod": 3600})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(body["keyName"], "ci");
        assert_eq!(body["validityPeriod"], 3600);
        let key = text(&body["apikey"]);
        let claims = jwt_payload(&key);
        assert_eq!(claims["token_type"], "apiKey");
        assert_eq!(claims["keytype"], "PRODUCTION");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
        let active = s.tokens.introspect(&key).await.unwrap().unwrap();
        assert_eq!(active.token_type, "apiKey");
        // An API key is not a bearer token for the REST API.
        let (status, _) = s
            .send(s.req(None, Method::GET, "/applications").bearer_auth(&key))
            .await;
        assert_eq!(status, 401, "[{e}]");

        // Bad input writes nothing.
        let seq = s.seq().await;
        for (input, field) in [
            (json!({"validityPeriod": 1_000_000_000}), "validityPeriod"),
            (json!({"validityPeriod": -7}), "validityPeriod"),
            (json!({"keyName": ""}), "keyName"),
            (json!({"keyName": "k".repeat(101)}), "keyName"),
        ] {
            let (status, body) = s.by("alice", Method::POST, &generate, Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &format!("/applications/{app}/api-keys/bogus/generate"),
                None,
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["keyType"]);
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &format!("/applications/{app}/api-keys/bogus/revoke"),
                Some(json!({"apikey": key})),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["keyType"]);
        for input in [
            json!({"apikey": "not-a-key"}),
            json!({"apikey": ""}),
            json!({"apikey": tollgate_tokens::random_token(16).unwrap()}),
        ] {
            let (status, body) = s.by("alice", Method::POST, &revoke, Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), ["apikey"], "[{e}] {input}: {body}");
        }
        // The key is PRODUCTION; as SANDBOX it is unknown.
        let (status, body) = s
            .by(
                "alice",
                Method::POST,
                &format!("/applications/{app}/api-keys/SANDBOX/revoke"),
                Some(json!({"apikey": key})),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["apikey"]);
        assert_eq!(s.seq().await, seq, "[{e}] refused API key calls wrote events");
        assert!(s.tokens.introspect(&key).await.unwrap().is_some());

        // Revoking works, with an event, and only for that key.
        let (status, body) = s.by("alice", Method::POST, &revoke, Some(json!({"apikey": key}))).await;
        assert_eq!(status, 200, "[{e}] {body}");
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1, "[{e}] {evs:?}");
        assert_eq!(evs[0].kind.as_str(), "token_revoked");
        assert_eq!(evs[0].payload["subject"], claims["jti"]);
        assert!(s.tokens.introspect(&key).await.unwrap().is_none(), "[{e}]");
        assert!(s.tokens.introspect(&default_key).await.unwrap().is_some(), "[{e}]");

        // Deleting the application ends its remaining API keys too.
        let (status, _) = s
            .by("alice", Method::DELETE, &format!("/applications/{app}"), None)
            .await;
        assert_eq!(status, 200, "[{e}]");
        assert!(s.tokens.introspect(&default_key).await.unwrap().is_none(), "[{e}]");
    }
}

#[tokio::test]
async fn subscriptions_need_a_published_api_and_an_offered_plan() {
    for db in all_engines("dp_subs").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let app2 = s.create_app("alice", "Other").await;
        let (pub_id, draft) = (s.published.clone(), s.draft.clone());

        let seq = s.seq().await;
        let r = s
            .req(Some("alice"), Method::POST, "/subscriptions")
            .json(&json!({"applicationId": app, "apiId": pub_id, "throttlingPolicy": "Gold"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "[{e}]");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let sub: Value = r.json().await.unwrap();
        let id = text(&sub["subscriptionId"]);
        assert_eq!(location, format!("{BASE_PATH}/subscriptions/{id}"));
        assert_eq!(sub["status"], "UNBLOCKED");
        assert_eq!(sub["throttlingPolicy"], "Gold");
        assert_eq!(sub["apiInfo"]["name"], "Pets");
        assert_eq!(sub["applicationInfo"]["subscriber"], "alice");
        assert_eq!(nulls(&sub), Vec::<String>::new(), "[{e}] {sub}");
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1, "[{e}]");
        assert_eq!(evs[0].kind.as_str(), "subscription_upserted");
        assert_eq!(evs[0].payload["throttlingPolicy"], "Gold");
        assert_eq!(evs[0].payload["subscriptionStatus"], "UNBLOCKED");
        assert_eq!(evs[0].payload["apiId"], pub_id.as_str());

        // Refusals change nothing.
        let (count, seq) = (s.sub_count("alice").await, s.seq().await);
        let (status, body) = s.subscribe("alice", &app, &pub_id, "Bronze").await;
        assert_eq!(status, 409, "[{e}] {body}");
        for (app_id, api_id, policy, field) in [
            (app2.as_str(), pub_id.as_str(), "Unlimited", "throttlingPolicy"),
            (app2.as_str(), pub_id.as_str(), "gold", "throttlingPolicy"),
            (app2.as_str(), draft.as_str(), "Gold", "apiId"),
            (app2.as_str(), "no-such-api", "Gold", "apiId"),
            ("no-such-app", pub_id.as_str(), "Gold", "applicationId"),
        ] {
            let (status, body) = s.subscribe("alice", app_id, api_id, policy).await;
            assert_eq!(status, 400, "[{e}] {api_id} {policy}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {api_id} {policy}: {body}");
        }
        let (status, body) = s.subscribe("alice", "", " ", "").await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["applicationId", "apiId", "throttlingPolicy"]);
        for input in [
            json!({"applicationId": app2}),
            json!({"applicationId": app2, "apiId": pub_id}),
            json!({"apiId": pub_id, "throttlingPolicy": "Gold"}),
        ] {
            let (status, body) = s.by("alice", Method::POST, "/subscriptions", Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert!(
                body["description"].as_str().unwrap().contains("missing field"),
                "{body}"
            );
        }
        assert_eq!(s.sub_count("alice").await, count, "[{e}]");
        assert_eq!(s.seq().await, seq, "[{e}] a refused subscription wrote an event");

        // Listing.
        let (status, list) = s
            .by(
                "alice",
                Method::GET,
                &format!("/subscriptions?applicationId={app}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "[{e}] {list}");
        assert_eq!(list["count"], 1);
        assert_eq!(list["list"][0]["subscriptionId"], id.as_str());
        let (_, list) = s
            .by(
                "alice",
                Method::GET,
                &format!("/subscriptions?applicationId={app2}"),
                None,
            )
            .await;
        assert_eq!(list["count"], 0, "[{e}] {list}");
        let (_, list) = s
            .by("alice", Method::GET, &format!("/subscriptions?apiId={pub_id}"), None)
            .await;
        assert_eq!(list["count"], 1, "[{e}] {list}");
        let (status, _) = s
            .by("alice", Method::GET, "/subscriptions?applicationId=no-such-app", None)
            .await;
        assert_eq!(status, 404, "[{e}]");

        // PUT changes the plan only.
        let path = format!("/subscriptions/{id}");
        let seq = s.seq().await;
        let (status, body) = s
            .by(
                "alice",
                Method::PUT,
                &path,
                Some(json!({"applicationId": app, "apiId": pub_id, "throttlingPolicy": "Bronze"})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(body["throttlingPolicy"], "Bronze");
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].kind.as_str(), "subscription_upserted");
        assert_eq!(evs[0].payload["throttlingPolicy"], "Bronze");
        let seq = s.seq().await;
        for (input, field) in [
            (
                json!({"applicationId": app, "apiId": draft, "throttlingPolicy": "Gold"}),
                "apiId",
            ),
            (
                json!({"applicationId": app2, "apiId": pub_id, "throttlingPolicy": "Gold"}),
                "applicationId",
            ),
            (
                json!({"applicationId": app, "apiId": pub_id, "throttlingPolicy": "Unlimited"}),
                "throttlingPolicy",
            ),
        ] {
            let (status, body) = s.by("alice", Method::PUT, &path, Some(input.clone())).await;
            assert_eq!(status, 400, "[{e}] {input}: {body}");
            assert_eq!(fields(&body), [field], "[{e}] {input}: {body}");
        }
        let (_, got) = s.by("alice", Method::GET, &path, None).await;
        assert_eq!(got["throttlingPolicy"], "Bronze");
        assert_eq!(got["apiId"], pub_id.as_str());
        assert_eq!(s.seq().await, seq);

        // DELETE.
        let (status, body) = s.by("alice", Method::DELETE, &path, None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].kind.as_str(), "subscription_deleted");
        assert_eq!(evs[0].payload["subscriptionId"], id.as_str());
        assert_eq!(s.by("alice", Method::GET, &path, None).await.0, 404);
        assert_eq!(s.by("alice", Method::DELETE, &path, None).await.0, 404);
        assert_eq!(s.sub_count("alice").await, count - 1);
        // And it can be subscribed again.
        let (status, body) = s.subscribe("alice", &app, &pub_id, "Bronze").await;
        assert_eq!(status, 201, "[{e}] {body}");
    }
}

#[tokio::test]
async fn a_blocked_subscription_cannot_be_removed_by_its_subscriber() {
    for db in all_engines("dp_subs_blocked").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Blocked").await;
        let (status, sub) = s.subscribe("alice", &app, &s.published, "Gold").await;
        assert_eq!(status, 201, "[{e}] {sub}");
        let id = text(&sub["subscriptionId"]);
        let path = format!("/subscriptions/{id}");
        for block in ["BLOCKED", "PROD_ONLY_BLOCKED"] {
            // The publisher blocks it (the Publisher is not under test here).
            let mut tx = s.am.begin().await.unwrap();
            tollgate_store::subscriptions::set_status(&mut tx, &id, block, now_millis())
                .await
                .unwrap();
            tx.commit().await.unwrap();

            let seq = s.seq().await;
            let (status, body) = s.by("alice", Method::DELETE, &path, None).await;
            assert_eq!(status, 409, "[{e}] {block}: {body}");
            let description = body["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(block) && description.contains("publisher"),
                "[{e}] the refusal says why and who can lift it: {body}"
            );
            assert_eq!(s.seq().await, seq, "[{e}] {block}: a refused removal wrote an event");
            let (status, got) = s.by("alice", Method::GET, &path, None).await;
            assert_eq!((status, got["status"].clone()), (200, json!(block)), "[{e}] {got}");
            // Subscribing again finds the blocked subscription still there.
            let (status, body) = s.subscribe("alice", &app, &s.published, "Bronze").await;
            assert_eq!(status, 409, "[{e}] {block}: {body}");
        }

        // Unblocked, it goes like any other.
        let mut tx = s.am.begin().await.unwrap();
        tollgate_store::subscriptions::set_status(&mut tx, &id, "UNBLOCKED", now_millis())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (status, body) = s.by("alice", Method::DELETE, &path, None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(s.by("alice", Method::GET, &path, None).await.0, 404, "[{e}]");
    }
}

#[tokio::test]
async fn bearer_tokens_need_a_subscriber_scope() {
    for db in all_engines("dp_bearer").await {
        let s = start(&db).await;
        let e = s.engine;
        let app = s.create_app("alice", "Shop").await;
        let (km, _, secret) = s.generate_keys("alice", &app).await;
        let bearer = |token: &str| s.req(None, Method::GET, "/applications").bearer_auth(token);

        let (status, t) = s
            .generate_token("alice", &app, &km, json!({"consumerSecret": secret}))
            .await;
        assert_eq!(status, 200, "[{e}] {t}");
        assert_eq!(t["tokenScopes"], json!(["default"]));
        let (status, body) = s.send(bearer(&text(&t["accessToken"]))).await;
        assert_eq!(status, 403, "[{e}] {body}");
        assert_eq!(body["code"], 900910);

        let (status, t) = s
            .generate_token(
                "alice",
                &app,
                &km,
                json!({"consumerSecret": secret, "scopes": ["apim:subscribe"]}),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {t}");
        assert_eq!(t["tokenScopes"], json!(["apim:subscribe"]));
        let token = text(&t["accessToken"]);
        let (status, body) = s.send(bearer(&token)).await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(body["count"], 1);
        assert_eq!(body["list"][0]["applicationId"], app.as_str());
        // A token that may only subscribe cannot manage keys, nor mint a broader token.
        let (status, body) = s
            .send(
                s.req(None, Method::POST, &format!("/applications/{app}/generate-keys"))
                    .bearer_auth(&token)
                    .json(&json!({"keyType": "SANDBOX", "grantTypesToBeSupported": ["client_credentials"]})),
            )
            .await;
        assert_eq!((status, body["code"].clone()), (403, json!(900910)), "[{e}] {body}");
        let (status, t) = s
            .generate_token(
                "alice",
                &app,
                &km,
                json!({"consumerSecret": secret, "scopes": ["apim:app_manage"]}),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {t}");
        let manager = text(&t["accessToken"]);
        let (status, body) = s
            .send(
                s.req(
                    None,
                    Method::POST,
                    &format!("/applications/{app}/oauth-keys/{km}/generate-token"),
                )
                .bearer_auth(&manager)
                .json(&json!({"consumerSecret": secret, "scopes": ["apim:subscribe"]})),
            )
            .await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["scopes"], "[{e}] {body}");
        let (status, body) = s
            .send(
                s.req(
                    None,
                    Method::POST,
                    &format!("/applications/{app}/oauth-keys/{km}/generate-token"),
                )
                .bearer_auth(&manager)
                .json(&json!({"consumerSecret": secret, "scopes": ["apim:app_manage"]})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        // The token acts as alice only: bob's applications stay invisible.
        let bobs = s.create_app("bob", "Bobs").await;
        let (status, _) = s
            .send(
                s.req(None, Method::GET, &format!("/applications/{bobs}"))
                    .bearer_auth(&token),
            )
            .await;
        assert_eq!(status, 404, "[{e}]");

        for garbage in ["not-a-token", "a.b.c", ""] {
            let (status, body) = s.send(bearer(garbage)).await;
            assert_eq!(status, 401, "[{e}] {garbage:?}: {body}");
        }
        let (status, _) = s
            .send(s.req(None, Method::GET, "/apis").bearer_auth("not-a-token"))
            .await;
        assert_eq!(status, 401, "[{e}] credentials that are sent must be valid");
        assert_eq!(s.call(None, Method::GET, "/applications", None).await.0, 401);
        let (status, body) = s
            .send(
                tollgate_testkit::http()
                    .get(s.url("/applications"))
                    .basic_auth("alice", Some("wrong")),
            )
            .await;
        assert_eq!((status, body["code"].clone()), (401, json!(900901)), "[{e}]");

        // Deleting the application ends its tokens.
        assert_eq!(
            s.by("alice", Method::DELETE, &format!("/applications/{app}"), None)
                .await
                .0,
            200
        );
        assert_eq!(s.send(bearer(&token)).await.0, 401, "[{e}]");
        assert!(s.tokens.introspect(&token).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn throttling_policies_are_listed_by_level() {
    for db in all_engines("dp_policies").await {
        let s = start(&db).await;
        let e = s.engine;
        let names = |body: &Value| -> Vec<String> {
            body["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| text(&p["name"]))
                .collect()
        };
        let (status, body) = s
            .call(None, Method::GET, "/throttling-policies/subscription", None)
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        let subs = names(&body);
        for n in ["Gold", "Silver", "Bronze", "Unlimited"] {
            assert!(subs.iter().any(|s| s == n), "[{e}] {n} missing from {subs:?}");
        }
        assert_eq!(body["count"], subs.len());
        assert_eq!(nulls(&body), Vec::<String>::new(), "[{e}] {body}");
        let (status, body) = s
            .by("alice", Method::GET, "/throttling-policies/application", None)
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        let apps = names(&body);
        assert!(apps.iter().any(|s| s == "Unlimited"), "[{e}] {apps:?}");
        assert!(!apps.iter().any(|s| s == "Gold"), "[{e}] {apps:?}");
        let (status, body) = s.call(None, Method::GET, "/throttling-policies/bogus", None).await;
        assert_eq!(status, 400, "[{e}] {body}");
        assert_eq!(fields(&body), ["policyLevel"]);
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_locked_and_true_to_the_routes() {
    let generated = tollgate_devportal::api_doc::document_json();
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = tollgate_testkit::check_openapi_document(&generated, &snapshot);
    oas3::from_json(&generated).expect("oas3 parses the document");

    let db = tollgate_testkit::sqlite("devportal_openapi");
    let s = start(&db).await;
    let base = format!("http://{}{BASE_PATH}", s.addr);
    tollgate_testkit::check_served_openapi(&base, &generated).await;

    // Every documented operation is routed: anonymous calls get 401 or a handler's own
    // answer, never the router's empty 404/405.
    let answers = tollgate_testkit::call_documented_operations(&base, &doc).await;
    assert_eq!(answers.len(), 30, "documented operations");
    for (method, path, status, body) in answers {
        assert!(
            status != 405 && !(status == 404 && body.is_empty()),
            "{method} {path} is documented but not routed ({status})"
        );
    }
}
