//! The Admin REST API served on a real socket over real databases (SQLite and, when
//! reachable, PostgreSQL): authentication, role checks, and bad input that changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tollgate_admin::{AdminState, routes};
use tollgate_config::DatabaseConfig;
use tollgate_events::EventKind;
use tollgate_http::Authenticator;
use tollgate_http::directories::Directories;
use tollgate_model::{NewUser, Role, TenantId};
use tollgate_store::keys::ClientRow;
use tollgate_store::{DatabaseName, connect, events, users};
use tollgate_testkit::{TestDb, all_engines};
use tollgate_tokens::{IssueRequest, KeyManagerSecret, TokenService, TokenSettings};
use tollgate_userstore::registered::bind_password_key;

struct Server {
    addr: SocketAddr,
    am: tollgate_store::Database,
    shared: tollgate_store::Database,
    _server: tollgate_testkit::RunningServer,
    engine: &'static str,
}

/// The secrets key the test node seals directories' bind passwords with.
const SECRETS_KEY: &str = "admin-test-secrets-key";

async fn start(db: &TestDb) -> Server {
    let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    shared.migrate().await.unwrap();
    for (name, role) in [("root", Role::Admin), ("carol", Role::Creator)] {
        users::create(
            &shared,
            NewUser {
                tenant_id: TenantId::DEFAULT,
                username: name.into(),
                password: format!("{name}-password"),
                email: None,
                roles: vec![role],
            },
        )
        .await
        .unwrap();
    }
    // AM and shared may share one database (separate migration histories).
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    tollgate_store::policies::install_defaults(&am, TenantId::DEFAULT)
        .await
        .unwrap();
    let app =
        tollgate_http::rest_layers(
            routes(AdminState {
                authenticator: Authenticator::new(shared.clone()).with_user_stores(
                    Directories::default().with_registered(shared.clone(), bind_password_key(SECRETS_KEY), false),
                ),
                shared: shared.clone(),
                am: am.clone(),
            }),
            64 * 1024,
        );
    let server = tollgate_testkit::serve(app).await;
    let addr = server.addr;
    Server {
        addr,
        am,
        shared,
        _server: server,
        engine: db.engine(),
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}/api/am/admin/v4{path}", self.addr)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn as_root(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = tollgate_testkit::http()
            .request(method, self.url(path))
            .basic_auth("root", Some("root-password"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn user_count(&self) -> i64 {
        let (_, body) = self.as_root(reqwest::Method::GET, "/users", None).await;
        body["pagination"]["total"].as_i64().unwrap()
    }
}

#[tokio::test]
async fn authentication_and_roles_are_enforced() {
    for db in all_engines("admin_auth").await {
        let s = start(&db).await;
        let client = tollgate_testkit::http();

        let r = client.get(s.url("/users")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{}", s.engine);
        assert!(
            r.headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], 900902);

        let (status, body) = s
            .send(client.get(s.url("/users")).basic_auth("root", Some("nope")))
            .await;
        assert_eq!((status, body["code"].clone()), (401, json!(900901)));
        let (status, body) = s
            .send(client.get(s.url("/users")).header("Authorization", "Basic !!!"))
            .await;
        assert_eq!((status, body["code"].clone()), (401, json!(900901)));
        let (status, _) = s.send(client.get(s.url("/users")).bearer_auth("some-token")).await;
        assert_eq!(status, 401);

        // A creator is authenticated but not allowed.
        let (status, body) = s
            .send(client.get(s.url("/users")).basic_auth("carol", Some("carol-password")))
            .await;
        assert_eq!(status, 403);
        assert_eq!(body["code"], 900910);
        assert!(body["description"].as_str().unwrap().contains("admin"));
        let (status, _) = s
            .send(
                client
                    .post(s.url("/users"))
                    .basic_auth("carol", Some("carol-password"))
                    .json(&json!({
                        "username": "sneaky", "password": "sneaky-password", "roles": ["admin"]
                    })),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(s.user_count().await, 2);
    }
}

#[tokio::test]
async fn users_are_created_read_and_listed() {
    for db in all_engines("admin_users").await {
        let s = start(&db).await;
        let r = tollgate_testkit::http()
            .post(s.url("/users"))
            .basic_auth("root", Some("root-password"))
            .json(&json!({"username": "dana", "password": "dana-password", "email": "dana@example.com", "roles": ["Internal/subscriber", "creator"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", s.engine);
        assert_eq!(r.headers()["location"], "/api/am/admin/v4/users/dana");
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["roles"], json!(["creator", "subscriber"]));
        assert!(created.get("password").is_none() && !created.to_string().contains("dana-password"));

        let (status, got) = s.as_root(reqwest::Method::GET, "/users/DANA", None).await;
        assert_eq!(status, 200);
        assert_eq!(got["id"], created["id"]);

        let (status, page) = s.as_root(reqwest::Method::GET, "/users?offset=1&limit=1", None).await;
        assert_eq!(status, 200);
        assert_eq!(page["count"], 1);
        assert_eq!(page["list"][0]["username"], "dana");
        assert_eq!(page["pagination"], json!({"offset": 1, "limit": 1, "total": 3}));

        let (status, roles) = s.as_root(reqwest::Method::GET, "/roles", None).await;
        assert_eq!(status, 200);
        assert_eq!(roles["list"][0]["name"], "admin");

        let (status, body) = s.as_root(reqwest::Method::GET, "/users/ghost", None).await;
        assert_eq!((status, body["code"].clone()), (404, json!(404)));
    }
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing() {
    for db in all_engines("admin_bad_input").await {
        let s = start(&db).await;
        let before = s.user_count().await;
        let post = |body: Value| s.as_root(reqwest::Method::POST, "/users", Some(body));

        let (status, body) =
            post(json!({"username": "bad name!", "password": "short", "email": "x", "roles": ["root"]})).await;
        assert_eq!(status, 400, "{}", s.engine);
        let fields: Vec<&str> = body["error"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["username", "password", "email", "roles[0]"]);

        let (status, body) = post(json!({"username": 7, "password": "long-enough-pw"})).await;
        assert_eq!(status, 400);
        assert!(body["description"].as_str().unwrap().contains("username"), "{body}");

        let (status, body) = post(json!({"password": "long-enough-pw"})).await;
        assert_eq!(status, 400);
        assert!(body["description"].as_str().unwrap().contains("username"), "{body}");

        // Unknown fields: a 400 under strict=true, naming the field.
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/users?strict=true",
                Some(json!({"username": "eve", "password": "long-enough-pw", "isAdmin": true})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"][0]["code"], "isAdmin", "{body}");

        // Oversized bodies are refused with 413.
        let (status, body) = post(json!({"username": "big", "password": "x".repeat(100_000)})).await;
        assert_eq!((status, body["code"].clone()), (413, json!(413)));
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("management.max_body_bytes"),
            "the setting to change is named: {body}"
        );

        let r = tollgate_testkit::http()
            .post(s.url("/users"))
            .basic_auth("root", Some("root-password"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        let (status, body) = post(json!({"username": "ROOT", "password": "long-enough-pw"})).await;
        assert_eq!(status, 409);
        assert!(body["description"].as_str().unwrap().contains("ROOT"));

        for query in ["limit=0", "offset=-1", "limit=abc", "limit=5000"] {
            let (status, body) = s.as_root(reqwest::Method::GET, &format!("/users?{query}"), None).await;
            let param = query.split('=').next().unwrap();
            assert_eq!(status, 400, "{query}");
            assert!(body.to_string().contains(param), "{query}: {body}");
        }

        assert_eq!(s.user_count().await, before, "bad input wrote a row on {}", s.engine);
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_named_in_a_warning() {
    let db = tollgate_testkit::sqlite("admin_warning");
    let s = start(&db).await;
    let r = tollgate_testkit::http()
        .post(s.url("/users"))
        .basic_auth("root", Some("root-password"))
        .json(&json!({"username": "frank", "password": "frank-password", "isAdmin": true, "claims": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let warning = r.headers()["warning"].to_str().unwrap().to_string();
    assert!(
        warning.starts_with("299 tollgate") && warning.contains("isAdmin") && warning.contains("claims"),
        "{warning}"
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["roles"], json!([]));
}

#[tokio::test]
async fn environments_are_managed_by_admins_with_bad_input_refused() {
    for db in all_engines("admin_environments").await {
        let s = start(&db).await;
        let (status, list) = s.as_root(reqwest::Method::GET, "/environments", None).await;
        assert_eq!(status, 200);
        assert_eq!(list["list"][0]["name"], "Default", "{}", s.engine);
        assert_eq!(list["list"][0]["isReadOnly"], true);
        let default_id = list["list"][0]["id"].as_str().unwrap().to_string();

        let post = |body: Value| s.as_root(reqwest::Method::POST, "/environments", Some(body));
        let (status, body) =
            post(json!({"name": "bad name", "type": "staging", "vhosts": [{"host": "http://x"}]})).await;
        assert_eq!(status, 400);
        let fields: Vec<&str> = body["error"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["name", "type", "vhosts[0].host"]);
        assert_eq!(post(json!({"type": "hybrid"})).await.0, 400, "name is required");
        assert_eq!(
            post(json!({"name": "Default", "vhosts": [{"host": "x.example.com"}]}))
                .await
                .0,
            409
        );
        let (status, body) = post(json!({"name": "nohost", "type": "hybrid"})).await;
        assert_eq!(
            (status, body["error"][0]["code"].as_str()),
            (400, Some("vhosts")),
            "{body}"
        );

        // A creator may read environments but not change them.
        let (status, _) = s
            .send(
                tollgate_testkit::http()
                    .post(s.url("/environments"))
                    .basic_auth("carol", Some("carol-password"))
                    .json(&json!({"name": "sneaky"})),
            )
            .await;
        assert_eq!(status, 403);
        let (status, _) = s
            .send(
                tollgate_testkit::http()
                    .get(s.url("/environments"))
                    .basic_auth("carol", Some("carol-password")),
            )
            .await;
        assert_eq!(status, 200);

        let (status, created) = post(
            json!({"name": "external", "displayName": "External", "type": "production",
            "vhosts": [{"host": "api.example.com", "httpsPort": 443}]}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let ext_id = created["id"].as_str().unwrap().to_string();
        let mut renamed = created.clone();
        renamed["name"] = json!("outside");
        let (status, _) = s
            .as_root(reqwest::Method::PUT, &format!("/environments/{ext_id}"), Some(renamed))
            .await;
        assert_eq!(status, 400);
        let mut edited = created.clone();
        edited["displayName"] = json!("Public gateways");
        let (status, body) = s
            .as_root(reqwest::Method::PUT, &format!("/environments/{ext_id}"), Some(edited))
            .await;
        assert_eq!((status, body["displayName"].clone()), (200, json!("Public gateways")));

        assert_eq!(
            s.as_root(reqwest::Method::DELETE, &format!("/environments/{default_id}"), None)
                .await
                .0,
            409
        );
        assert_eq!(
            s.as_root(reqwest::Method::DELETE, &format!("/environments/{ext_id}"), None)
                .await
                .0,
            200
        );
        assert_eq!(
            s.as_root(reqwest::Method::GET, &format!("/environments/{ext_id}"), None)
                .await
                .0,
            404
        );
        let (_, list) = s.as_root(reqwest::Method::GET, "/environments", None).await;
        assert_eq!(list["count"], 1, "{}", s.engine);
    }
}

#[tokio::test]
async fn throttling_policies_of_every_level() {
    use tollgate_store::{apis, events};
    for db in all_engines("admin_policies").await {
        let s = start(&db).await;
        let base = "/throttling/policies";
        let (status, subs) = s
            .as_root(reqwest::Method::GET, &format!("{base}/subscription"), None)
            .await;
        assert_eq!(status, 200);
        let names: Vec<&str> = subs["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["policyName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Bronze", "Gold", "Silver", "Unlimited"], "{}", s.engine);
        assert_eq!(subs["list"][0]["defaultLimit"]["requestCount"]["requestCount"], 1000);
        assert_eq!(subs["list"][0]["type"], "SubscriptionThrottlePolicy");
        for level in ["application", "advanced"] {
            let (_, list) = s.as_root(reqwest::Method::GET, &format!("{base}/{level}"), None).await;
            assert_eq!(list["count"], 4, "{level}");
        }
        let (status, custom) = s.as_root(reqwest::Method::GET, &format!("{base}/custom"), None).await;
        assert_eq!((status, custom["count"].clone()), (200, json!(0)));
        assert_eq!(
            s.as_root(reqwest::Method::GET, &format!("{base}/weird"), None).await.0,
            404
        );
        let seq = events::latest_seq(&s.am).await.unwrap();

        // Bad input on every level, nothing written.
        let bad = [
            ("subscription", json!({"policyName": "Platinum"}), "defaultLimit"),
            (
                "subscription",
                json!({"policyName": "P", "defaultLimit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}}, "rateLimitCount": 5}),
                "rateLimitTimeUnit",
            ),
            (
                "application",
                json!({"policyName": "A b", "defaultLimit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}}}),
                "policyName",
            ),
            (
                "advanced",
                json!({"policyName": "Adv", "defaultLimit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}},
                "conditionalGroups": [{"conditions": [{"type": "IPCONDITION", "ipCondition": {"ipConditionType": "IPSPECIFIC", "specificIP": "999.1.1.1"}}],
                "limit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 1}}}]}),
                "conditionalGroups[0].conditions[0].ipCondition.specificIP",
            ),
            (
                "advanced",
                json!({"policyName": "Gold", "defaultLimit": {"type": "BANDWIDTHLIMIT"}}),
                "defaultLimit.bandwidth",
            ),
        ];
        for (level, body, field) in bad {
            let (status, resp) = s
                .as_root(reqwest::Method::POST, &format!("{base}/{level}"), Some(body))
                .await;
            assert_eq!(status, 400, "{level}: {resp}");
            let text = resp.to_string();
            assert!(text.contains(field), "{level}: expected {field} in {resp}");
        }
        let gold = json!({"policyName": "Gold", "defaultLimit": {"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 1}}});
        assert_eq!(
            s.as_root(reqwest::Method::POST, &format!("{base}/subscription"), Some(gold))
                .await
                .0,
            409
        );
        assert_eq!(
            events::latest_seq(&s.am).await.unwrap(),
            seq,
            "bad input wrote an event"
        );

        // Create, read, update, delete; each change is one event.
        let policy = json!({"policyName": "Partner", "description": "For partners",
            "defaultLimit": {"type": "BANDWIDTHLIMIT", "bandwidth": {"timeUnit": "hour", "unitTime": 1, "dataAmount": 500, "dataUnit": "MB"}},
            "rateLimitCount": 20, "rateLimitTimeUnit": "sec", "stopOnQuotaReach": false, "billingPlan": "COMMERCIAL"});
        let (status, created) = s
            .as_root(reqwest::Method::POST, &format!("{base}/subscription"), Some(policy))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["policyId"].as_str().unwrap().to_string();
        assert_eq!(created["stopOnQuotaReach"], false);
        let mut edited = created.clone();
        edited["description"] = json!("For partners, edited");
        let (status, body) = s
            .as_root(
                reqwest::Method::PUT,
                &format!("{base}/subscription/{id}"),
                Some(edited.clone()),
            )
            .await;
        assert_eq!(
            (status, body["description"].clone()),
            (200, json!("For partners, edited"))
        );
        edited["policyName"] = json!("Renamed");
        assert_eq!(
            s.as_root(reqwest::Method::PUT, &format!("{base}/subscription/{id}"), Some(edited))
                .await
                .0,
            400
        );
        let (status, got) = s
            .as_root(reqwest::Method::GET, &format!("{base}/subscription/{id}"), None)
            .await;
        assert_eq!((status, got["policyName"].clone()), (200, json!("Partner")));
        assert_eq!(
            s.as_root(reqwest::Method::DELETE, &format!("{base}/subscription/{id}"), None)
                .await
                .0,
            200
        );
        let kinds: Vec<_> = events::read_since(&s.am, seq, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        use tollgate_events::EventKind::{PolicyDeleted, PolicyUpserted};
        assert_eq!(kinds, [PolicyUpserted, PolicyUpserted, PolicyDeleted], "{}", s.engine);

        // A policy in use cannot be deleted, and the error names its user; built-ins stay.
        let api: tollgate_model::Api =
            serde_json::from_value(json!({"name": "Shop", "context": "/shop", "version": "1",
            "policies": ["Gold"], "operations": [{"target": "/a", "verb": "GET", "throttlingPolicy": "10KPerMin"}]}))
            .unwrap();
        let stored = apis::StoredApi {
            id: "api-1".into(),
            tenant_id: TenantId::DEFAULT,
            api,
            definition: None,
            revision_counter: 0,
            created_at: 0,
            updated_at: 0,
        };
        let mut tx = s.am.begin().await.unwrap();
        apis::insert(&mut tx, &stored).await.unwrap();
        tx.commit().await.unwrap();
        for (level, name) in [("subscription", "Gold"), ("advanced", "10KPerMin")] {
            let (status, body) = s
                .as_root(reqwest::Method::DELETE, &format!("{base}/{level}/{name}"), None)
                .await;
            assert_eq!(status, 409, "{level}");
            assert!(body["description"].as_str().unwrap().contains("API `Shop` 1"), "{body}");
        }
        // Applications and subscriptions count as users too.
        let mut tx = s.am.begin().await.unwrap();
        let app = tollgate_store::subscriptions::ApplicationRow {
            id: "app-1".into(),
            name: "Shop".into(),
            owner: "carol".into(),
            throttling_policy: "20PerMin".into(),
            description: None,
            token_type: "JWT".into(),
            status: "APPROVED".into(),
            attributes: "{}".into(),
        };
        tollgate_store::subscriptions::insert_application(&mut tx, TenantId::DEFAULT, &app, 1)
            .await
            .unwrap();
        tollgate_store::subscriptions::insert(
            &mut tx,
            TenantId::DEFAULT,
            "sub-1",
            "app-1",
            "api-1",
            "Silver",
            "UNBLOCKED",
            1,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        for (level, name, who) in [
            ("application", "20PerMin", "1 application"),
            ("subscription", "Silver", "1 subscription"),
        ] {
            let (status, body) = s
                .as_root(reqwest::Method::DELETE, &format!("{base}/{level}/{name}"), None)
                .await;
            assert_eq!(status, 409, "{level}");
            assert!(body["description"].as_str().unwrap().contains(who), "{body}");
        }
        let (status, _) = s
            .as_root(reqwest::Method::DELETE, &format!("{base}/application/Unlimited"), None)
            .await;
        assert_eq!(status, 409);

        // Only admins manage policies.
        let (status, _) = s
            .send(
                tollgate_testkit::http()
                    .get(s.url(&format!("{base}/subscription")))
                    .basic_auth("carol", Some("carol-password")),
            )
            .await;
        assert_eq!(status, 403);
    }
}

#[tokio::test]
async fn deny_policies_block_and_unblock() {
    use tollgate_events::EventKind::{BlockConditionDeleted, BlockConditionUpserted};
    use tollgate_store::events;
    for db in all_engines("admin_deny").await {
        let s = start(&db).await;
        let seq = events::latest_seq(&s.am).await.unwrap();
        let post = |body: Value| s.as_root(reqwest::Method::POST, "/throttling/deny-policies", Some(body));
        for (body, field) in [
            (
                json!({"conditionType": "COUNTRY", "conditionValue": "NZ"}),
                "conditionType",
            ),
            (
                json!({"conditionType": "API", "conditionValue": "pizza"}),
                "conditionValue",
            ),
            (
                json!({"conditionType": "IP", "conditionValue": {"fixedIp": "300.1.1.1"}}),
                "conditionValue.fixedIp",
            ),
            (
                json!({"conditionType": "IPRANGE", "conditionValue": {"startingIp": "10.0.0.9", "endingIp": "10.0.0.1"}}),
                "conditionValue",
            ),
            (json!({"conditionValue": "x"}), ""),
        ] {
            let (status, resp) = post(body.clone()).await;
            assert_eq!(status, 400, "{body}: {resp}");
            if !field.is_empty() {
                assert_eq!(resp["error"][0]["code"], field, "{resp}");
            }
        }
        assert_eq!(events::latest_seq(&s.am).await.unwrap(), seq);

        let (status, ip) = post(json!({"conditionType": "IPRANGE", "conditionValue": {"startingIp": "10.0.0.1", "endingIp": "10.0.0.255", "invert": true}})).await;
        assert_eq!(status, 201, "{ip}");
        assert_eq!(ip["conditionStatus"], true);
        let (status, user) = post(json!({"conditionType": "USER", "conditionValue": "mallory"})).await;
        assert_eq!(status, 201);
        assert_eq!(
            post(json!({"conditionType": "USER", "conditionValue": "Mallory"}))
                .await
                .0,
            409
        );
        let id = user["conditionId"].as_str().unwrap().to_string();

        let path = format!("/throttling/deny-policy/{id}");
        let (status, off) = s
            .as_root(reqwest::Method::PATCH, &path, Some(json!({"conditionStatus": false})))
            .await;
        assert_eq!((status, off["conditionStatus"].clone()), (200, json!(false)));
        assert_eq!(
            s.as_root(reqwest::Method::PATCH, &path, Some(json!({"conditionStatus": "no"})))
                .await
                .0,
            400
        );
        let (_, got) = s.as_root(reqwest::Method::GET, &path, None).await;
        assert_eq!(got["conditionStatus"], false);
        assert_eq!(s.as_root(reqwest::Method::DELETE, &path, None).await.0, 200);
        assert_eq!(s.as_root(reqwest::Method::GET, &path, None).await.0, 404);
        let (_, list) = s.as_root(reqwest::Method::GET, "/throttling/deny-policies", None).await;
        assert_eq!(list["count"], 1, "{}", s.engine);

        let kinds: Vec<_> = events::read_since(&s.am, seq, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                BlockConditionUpserted,
                BlockConditionUpserted,
                BlockConditionUpserted,
                BlockConditionDeleted
            ]
        );
    }
}

#[tokio::test]
async fn admins_change_roles_and_disable_users() {
    for db in all_engines("admin_user_update").await {
        let s = start(&db).await;
        let carol = |pw: &str| {
            tollgate_testkit::http()
                .get(s.url("/roles"))
                .basic_auth("carol", Some(pw.to_string()))
        };
        assert_eq!(
            s.send(carol("carol-password")).await.0,
            403,
            "a creator is not an admin"
        );

        let (status, body) = s
            .as_root(
                reqwest::Method::PATCH,
                "/users/carol",
                Some(json!({"roles": ["admin", "creator"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["roles"], json!(["admin", "creator"]));
        assert_eq!(
            s.send(carol("carol-password")).await.0,
            200,
            "the new role applies at once"
        );

        let (status, body) = s
            .as_root(reqwest::Method::PATCH, "/users/carol", Some(json!({"enabled": false})))
            .await;
        assert_eq!((status, body["enabled"].clone()), (200, json!(false)));
        assert_eq!(
            s.send(carol("carol-password")).await.0,
            401,
            "a disabled user cannot sign in"
        );

        // Bad input changes nothing.
        for (body, want) in [
            (json!({"roles": ["wizard"]}), 400),
            (json!({}), 400),
            (json!({"enabled": "no"}), 400),
        ] {
            assert_eq!(
                s.as_root(reqwest::Method::PATCH, "/users/carol", Some(body.clone()))
                    .await
                    .0,
                want,
                "{body}"
            );
        }
        assert_eq!(
            s.as_root(reqwest::Method::PATCH, "/users/ghost", Some(json!({"enabled": true})))
                .await
                .0,
            404
        );
        let (_, got) = s.as_root(reqwest::Method::GET, "/users/carol", None).await;
        assert_eq!(
            (got["enabled"].clone(), got["roles"].clone()),
            (json!(false), json!(["admin", "creator"]))
        );

        // The last enabled administrator stays one.
        let (status, body) = s
            .as_root(
                reqwest::Method::PATCH,
                "/users/root",
                Some(json!({"roles": ["creator"]})),
            )
            .await;
        assert_eq!(status, 409, "{}: {body}", s.engine);
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("last enabled administrator")
        );
        assert_eq!(
            s.as_root(reqwest::Method::PATCH, "/users/root", Some(json!({"enabled": false})))
                .await
                .0,
            409
        );
        assert_eq!(s.as_root(reqwest::Method::GET, "/roles", None).await.0, 200);
    }
}

/// The tokens a user holds: a JWT access token of one client, an opaque one of another,
/// and a refresh token.
struct Held {
    jwt: String,
    opaque: String,
    refresh: String,
}

/// Issues `user` a JWT (with a refresh token) and an opaque access token through the
/// portals' built-in client, which needs no stored application.
async fn hold(tokens: &TokenService, user: &str) -> Held {
    fn issue<'a>(client: &'a ClientRow, username: &'a str, with_refresh_token: bool) -> IssueRequest<'a> {
        IssueRequest {
            client,
            username,
            scopes: &[],
            grant_type: "authorization_code",
            with_refresh_token,
            validity: None,
            nonce: None,
        }
    }
    let opaque_client = tollgate_tokens::portals_client::client();
    let mut jwt_client = opaque_client.clone();
    jwt_client.token_type = "JWT".into();
    let jwt = tokens.issue(issue(&jwt_client, user, true)).await.unwrap();
    let opaque = tokens.issue(issue(&opaque_client, user, false)).await.unwrap();
    Held {
        jwt: jwt.access_token,
        opaque: opaque.access_token,
        refresh: jwt.refresh_token.unwrap(),
    }
}

/// Which of `held`'s tokens are still good: each access token active at introspection,
/// and the refresh token still usable.
async fn still_good(tokens: &TokenService, held: &Held) -> [bool; 3] {
    let client = tollgate_tokens::portals_client::client();
    [
        tokens.introspect(&held.jwt).await.unwrap().is_some(),
        tokens.introspect(&held.opaque).await.unwrap().is_some(),
        tokens.refresh_token_grant(&client, &held.refresh).await.is_ok(),
    ]
}

#[tokio::test]
async fn disabling_deleting_or_demoting_a_user_revokes_every_token_they_hold() {
    for db in all_engines("admin_user_revoke").await {
        let s = start(&db).await;
        let e = s.engine;
        let tokens = TokenService::open(
            s.am.clone(),
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
        for name in ["dana", "erin", "finn", "gus", "owen"] {
            let (status, body) = s
                .as_root(
                    reqwest::Method::POST,
                    "/users",
                    Some(json!({"username": name, "password": format!("{name}-password"), "roles": ["subscriber"]})),
                )
                .await;
            assert_eq!(status, 201, "[{e}] {body}");
        }
        let mut held = std::collections::HashMap::new();
        for name in ["dana", "erin", "finn", "gus"] {
            held.insert(name, hold(&tokens, name).await);
            assert_eq!(still_good(&tokens, &held[name]).await, [true; 3], "[{e}] {name}");
        }
        let revoked_users = async || -> Vec<String> {
            events::read_since(&s.am, 0, 1000)
                .await
                .unwrap()
                .iter()
                .filter(|ev| ev.kind == EventKind::TokenRevoked && ev.payload["revocationType"] == "user")
                .map(|ev| ev.payload["subject"].as_str().unwrap().to_string())
                .collect()
        };

        let (status, body) = s
            .as_root(reqwest::Method::PATCH, "/users/dana", Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(
            still_good(&tokens, &held["dana"]).await,
            [false; 3],
            "[{e}] disabled dana"
        );
        assert_eq!(
            revoked_users().await,
            ["dana"],
            "[{e}] gateways learn it from the outbox"
        );

        // Taking a role away revokes; adding one does not.
        let (status, body) = s
            .as_root(
                reqwest::Method::PATCH,
                "/users/erin",
                Some(json!({"roles": ["creator"]})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(
            still_good(&tokens, &held["erin"]).await,
            [false; 3],
            "[{e}] demoted erin"
        );
        let (status, body) = s
            .as_root(
                reqwest::Method::PATCH,
                "/users/gus",
                Some(json!({"roles": ["subscriber", "creator"], "enabled": true})),
            )
            .await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(still_good(&tokens, &held["gus"]).await, [true; 3], "[{e}] promoted gus");

        let (status, body) = s.as_root(reqwest::Method::DELETE, "/users/finn", None).await;
        assert_eq!(status, 200, "[{e}] {body}");
        assert_eq!(
            s.as_root(reqwest::Method::GET, "/users/finn", None).await.0,
            404,
            "[{e}]"
        );
        assert_eq!(
            still_good(&tokens, &held["finn"]).await,
            [false; 3],
            "[{e}] deleted finn"
        );
        assert_eq!(revoked_users().await, ["dana", "erin", "finn"], "[{e}]");
        assert_eq!(
            still_good(&tokens, &held["gus"]).await,
            [true; 3],
            "[{e}] gus is untouched"
        );

        // Enabled again, dana starts afresh: old tokens stay revoked, new ones work.
        let (status, _) = s
            .as_root(reqwest::Method::PATCH, "/users/dana", Some(json!({"enabled": true})))
            .await;
        assert_eq!(status, 200, "[{e}]");
        assert_eq!(still_good(&tokens, &held["dana"]).await, [false; 3], "[{e}]");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let fresh = hold(&tokens, "dana").await;
        assert_eq!(still_good(&tokens, &fresh).await, [true; 3], "[{e}] dana's new tokens");

        // Deletions that are refused change nothing.
        let (user_count, seq) = (s.user_count().await, events::latest_seq(&s.am).await.unwrap());
        let (status, body) = s.as_root(reqwest::Method::DELETE, "/users/ghost", None).await;
        assert_eq!(status, 404, "[{e}] {body}");
        let (status, body) = s.as_root(reqwest::Method::DELETE, "/users/root", None).await;
        assert_eq!(status, 409, "[{e}] {body}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("last enabled administrator"),
            "[{e}] {body}"
        );
        // A user who owns applications: deleting them would leave the applications to
        // whoever signs up with the name next.
        let mut tx = s.am.begin().await.unwrap();
        let app = tollgate_store::applications::ApplicationRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: "OwensApp".into(),
            owner: "owen".into(),
            throttling_policy: "Unlimited".into(),
            description: None,
            token_type: "JWT".into(),
            status: "APPROVED".into(),
            attributes: "{}".into(),
        };
        tollgate_store::applications::insert(&mut tx, TenantId::DEFAULT, &app, tollgate_model::now_millis())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (status, body) = s.as_root(reqwest::Method::DELETE, "/users/owen", None).await;
        assert_eq!(status, 409, "[{e}] {body}");
        let description = body["description"].as_str().unwrap();
        assert!(
            description.contains("application") && description.contains("disable"),
            "[{e}] {body}"
        );
        assert_eq!(s.user_count().await, user_count, "[{e}]");
        assert_eq!(
            events::latest_seq(&s.am).await.unwrap(),
            seq,
            "[{e}] a refusal wrote an event"
        );
        // Only administrators delete users.
        let r = tollgate_testkit::http()
            .delete(s.url("/users/gus"))
            .basic_auth("carol", Some("carol-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "[{e}]");
        assert_eq!(s.user_count().await, user_count, "[{e}]");
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_locked_and_true_to_the_routes() {
    let generated = tollgate_admin::api_doc::document_json();
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = tollgate_testkit::check_openapi_document(&generated, &snapshot);
    oas3::from_json(&generated).expect("oas3 parses the document");

    let db = tollgate_testkit::sqlite("admin_openapi");
    let s = start(&db).await;
    tollgate_testkit::check_served_openapi(&s.url(""), &generated).await;
    let answers = tollgate_testkit::call_documented_operations(&s.url(""), &doc).await;
    assert_eq!(answers.len(), 54, "documented operations");
    for (method, path, status, _) in answers {
        assert_eq!(status, 401, "{method} {path} is documented but not routed");
    }
}

#[tokio::test]
async fn custom_rules_parse_their_template_and_condition() {
    let db = tollgate_testkit::sqlite("admin_custom_rules");
    let s = start(&db).await;
    let limit =
        json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 100}});
    let post = |body: Value| s.as_root(reqwest::Method::POST, "/throttling/policies/custom", Some(body));
    for (body, field) in [
        (
            json!({"policyName": "R", "keyTemplate": "fixed", "defaultLimit": limit}),
            "keyTemplate",
        ),
        (
            json!({"policyName": "R", "keyTemplate": "$userId", "condition": "$userId = 'x'", "defaultLimit": limit}),
            "condition",
        ),
        (
            json!({"policyName": "R", "keyTemplate": "$who", "defaultLimit": limit}),
            "keyTemplate",
        ),
    ] {
        let (status, resp) = post(body).await;
        assert_eq!(
            (status, resp["error"][0]["code"].clone()),
            (400, json!(field)),
            "{resp}"
        );
    }
    let r = tollgate_testkit::http()
        .post(s.url("/throttling/policies/custom"))
        .basic_auth("root", Some("root-password"))
        .json(
            &json!({"policyName": "PerUserPizza", "keyTemplate": "$userId:$apiContext",
            "condition": "$apiContext =~ '/pizza/*' && header('X-Tier') != 'gold'", "defaultLimit": limit,
            "siddhiQuery": "FROM RequestStream SELECT ..."}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["warning"].to_str().unwrap().contains("siddhiQuery"),
        "Siddhi is not ours: ignored with a warning"
    );
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["type"], "CustomRule");
    assert_eq!(created["keyTemplate"], "$userId:$apiContext");
    // What the reference's clients read as the rule: ours, not the Siddhi text sent.
    assert_eq!(created["siddhiQuery"], created["condition"]);
    let id = created["policyId"].as_str().unwrap();
    assert_eq!(
        s.as_root(
            reqwest::Method::DELETE,
            &format!("/throttling/policies/custom/{id}"),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn racing_deletes_emit_one_event() {
    use tollgate_store::events;
    for db in all_engines("admin_racing_deletes").await {
        let s = start(&db).await;
        let (status, cond) = s
            .as_root(
                reqwest::Method::POST,
                "/throttling/deny-policies",
                Some(json!({"conditionType": "USER", "conditionValue": "eve"})),
            )
            .await;
        assert_eq!(status, 201);
        let path = format!("/throttling/deny-policy/{}", cond["conditionId"].as_str().unwrap());
        let seq = events::latest_seq(&s.am).await.unwrap();
        let del = || s.as_root(reqwest::Method::DELETE, &path, None);
        let (a, b, c, d) = tokio::join!(del(), del(), del(), del());
        let oks = [a.0, b.0, c.0, d.0].iter().filter(|st| **st == 200).count();
        assert_eq!(oks, 1, "[{}] {:?}", s.engine, [a.0, b.0, c.0, d.0]);
        assert_eq!(
            events::read_since(&s.am, seq, 10).await.unwrap().len(),
            1,
            "[{}] one event",
            s.engine
        );
    }
}

#[tokio::test]
async fn key_managers_reject_bad_input_and_non_admins_and_change_nothing() {
    for db in all_engines("admin_key_managers").await {
        let s = start(&db).await;
        let good = json!({"name": "Okta", "type": "Okta", "issuer": "https://okta.example.com",
            "wellKnownEndpoint": "https://okta.example.com/.well-known/openid-configuration", "scopesClaim": "scp"});
        let (status, km) = s
            .as_root(reqwest::Method::POST, "/key-managers", Some(good.clone()))
            .await;
        assert_eq!(status, 201, "{}: {km}", s.engine);
        assert_eq!(km["consumerKeyClaim"], "azp");
        assert_eq!(km["scopesClaim"], "scp");
        let seq = tollgate_store::events::latest_seq(&s.am).await.unwrap();

        let bad_bodies = [
            (
                json!({"name": "Okta", "type": "Okta", "issuer": "ftp://x", "wellKnownEndpoint": "https://o.example/w"}),
                "issuer",
            ),
            (
                json!({"name": "Okta", "type": "", "issuer": "https://o.example", "wellKnownEndpoint": "https://o.example/w"}),
                "type",
            ),
            (
                json!({"name": "Okta", "type": "Okta", "issuer": "https://o.example", "certificates": {"type": "PEM", "value": "x"}}),
                "certificates.type",
            ),
            (
                json!({"name": "Okta", "type": "Okta", "issuer": "https://o.example", "wellKnownEndpoint": "https://o.example/w", "consumerKeyClaim": ""}),
                "consumerKeyClaim",
            ),
            (
                json!({"name": "Renamed", "type": "Okta", "issuer": "https://o.example", "wellKnownEndpoint": "https://o.example/w"}),
                "name",
            ),
        ];
        for (body, field) in bad_bodies {
            let (status, err) = s.as_root(reqwest::Method::PUT, "/key-managers/Okta", Some(body)).await;
            assert_eq!(status, 400, "{}: {err}", s.engine);
            assert!(
                err["error"].as_array().unwrap().iter().any(|e| e["code"] == field),
                "{field} not named: {err}"
            );
        }
        let (status, err) = s
            .as_root(
                reqwest::Method::POST,
                "/key-managers",
                Some(json!({"name": "Resident Key Manager", "type": "x",
                "issuer": "https://a.example", "wellKnownEndpoint": "https://a.example/w"})),
            )
            .await;
        assert_eq!(status, 400, "{err}");
        let (status, _) = s.as_root(reqwest::Method::GET, "/key-managers/nope", None).await;
        assert_eq!(status, 404);
        let (status, _) = s
            .send(
                tollgate_testkit::http()
                    .get(s.url("/key-managers"))
                    .basic_auth("carol", Some("carol-password")),
            )
            .await;
        assert_eq!(status, 403, "creators do not manage key managers");
        let (_, unchanged) = s.as_root(reqwest::Method::GET, "/key-managers/Okta", None).await;
        assert_eq!(unchanged["issuer"], "https://okta.example.com");
        assert_eq!(
            tollgate_store::events::latest_seq(&s.am).await.unwrap(),
            seq,
            "no events for refused changes"
        );

        let (status, updated) = s
            .as_root(reqwest::Method::PUT, "/key-managers/Okta", Some(json!({"name": "Okta", "type": "Okta",
                "issuer": "https://okta2.example.com", "wellKnownEndpoint": "https://okta2.example.com/w", "enabled": false})))
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["enabled"], false);
        let (status, _) = s.as_root(reqwest::Method::DELETE, "/key-managers/Okta", None).await;
        assert_eq!(status, 200);
        let (_, list) = s.as_root(reqwest::Method::GET, "/key-managers", None).await;
        assert_eq!(list["count"], 0);
    }
}

#[tokio::test]
async fn super_tenant_admins_manage_tenants_whose_admins_see_only_their_own() {
    for db in all_engines("admin_tenants").await {
        let s = start(&db).await;
        let engine = s.engine;
        let client = tollgate_testkit::http();
        let as_user = |method: reqwest::Method, path: &str, user: &str, password: &str| {
            client.request(method, s.url(path)).basic_auth(user, Some(password))
        };
        let acme = json!({"domain": "acme.com", "adminUsername": "root", "adminPassword": "acme-root-password", "email": "root@acme.com"});

        // Bad input names its fields and creates nothing; a creator may not create.
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/tenants",
                Some(json!({"domain": "Acme", "adminUsername": "x y", "adminPassword": "short", "email": "root@acme.com"})),
            )
            .await;
        assert_eq!(status, 400, "{engine}: {body}");
        let text = body.to_string();
        for field in ["domain", "adminUsername", "adminPassword"] {
            assert!(text.contains(field), "{engine}: {text} names {field}");
        }
        let (status, _) = s
            .send(as_user(reqwest::Method::POST, "/tenants", "carol", "carol-password").json(&acme))
            .await;
        assert_eq!(status, 403, "{engine}");
        let (_, list) = s.as_root(reqwest::Method::GET, "/tenants", None).await;
        assert_eq!(list["count"], 1, "{engine}: only carbon.super: {list}");

        // Created; the domain is unique; the first administrator signs in as root@acme.com.
        let (status, created) = s.as_root(reqwest::Method::POST, "/tenants", Some(acme.clone())).await;
        assert_eq!(status, 201, "{engine}: {created}");
        assert_eq!(
            (created["domain"].clone(), created["active"].clone()),
            (json!("acme.com"), json!(true))
        );
        let (status, _) = s.as_root(reqwest::Method::POST, "/tenants", Some(acme.clone())).await;
        assert_eq!(status, 409, "{engine}");
        let (status, users) = s
            .send(as_user(
                reqwest::Method::GET,
                "/users",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert_eq!(status, 200, "{engine}: {users}");
        assert_eq!(users["count"], 1, "{engine}: acme has only its administrator: {users}");
        // The super tenant's root keeps its own password; acme's root is another user.
        let (status, _) = s
            .send(as_user(reqwest::Method::GET, "/users", "root", "acme-root-password"))
            .await;
        assert_eq!(status, 401, "{engine}");

        // The new tenant has its own default policies and Default environment.
        let (_, plans) = s
            .send(as_user(
                reqwest::Method::GET,
                "/throttling/policies/subscription",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert!(plans.to_string().contains("Gold"), "{engine}: {plans}");
        let (_, envs) = s
            .send(as_user(
                reqwest::Method::GET,
                "/environments",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert_eq!(envs["list"][0]["name"], "Default", "{engine}: {envs}");

        // acme's administrator sees only acme, manages no tenant, and no other exists.
        let (_, own) = s
            .send(as_user(
                reqwest::Method::GET,
                "/tenants",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert_eq!(own["count"], 1, "{engine}: {own}");
        assert_eq!(own["list"][0]["domain"], "acme.com");
        for (method, path, expected) in [
            (reqwest::Method::GET, "/tenants/carbon.super", 404),
            (reqwest::Method::POST, "/tenants/carbon.super/deactivate", 404),
            (reqwest::Method::POST, "/tenants/acme.com/deactivate", 403),
            (reqwest::Method::POST, "/tenants", 403),
        ] {
            let mut req = as_user(method.clone(), path, "root@acme.com", "acme-root-password");
            if path == "/tenants" {
                req = req.json(&json!({"domain": "globex.com", "adminUsername": "a", "adminPassword": "a-long-password", "email": "a@globex.com"}));
            }
            let (status, body) = s.send(req).await;
            assert_eq!(status, expected, "{engine}: {method} {path}: {body}");
        }
        let (status, _) = s.as_root(reqwest::Method::GET, "/tenants/globex.com", None).await;
        assert_eq!(status, 404, "{engine}");

        // Deactivation: acme's users cannot sign in; the super tenant cannot be deactivated;
        // reactivation restores everything.
        let before = events::latest_seq(&s.am).await.unwrap();
        let (status, body) = s
            .as_root(reqwest::Method::POST, "/tenants/acme.com/deactivate", None)
            .await;
        assert_eq!(
            (status, body["active"].clone()),
            (200, json!(false)),
            "{engine}: {body}"
        );
        let changed = events::read_since(&s.am, before, 10).await.unwrap();
        assert!(changed.iter().any(|e| e.kind == EventKind::TenantChanged), "{engine}");
        // Sending it again (as after a failure halfway) answers the same and tells the
        // gateways nothing new.
        let again = events::latest_seq(&s.am).await.unwrap();
        let (status, body) = s
            .as_root(reqwest::Method::POST, "/tenants/acme.com/deactivate", None)
            .await;
        assert_eq!(
            (status, body["active"].clone()),
            (200, json!(false)),
            "{engine}: {body}"
        );
        let repeated = events::read_since(&s.am, again, 10).await.unwrap();
        assert!(
            !repeated.iter().any(|e| e.kind == EventKind::TenantChanged),
            "{engine}: {repeated:?}"
        );
        let (status, body) = s
            .send(as_user(
                reqwest::Method::GET,
                "/users",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert_eq!(status, 401, "{engine}: {body}");
        assert!(body.to_string().contains("deactivated"), "{engine}: {body}");
        // A wrong password learns nothing about the tenant: the usual refusal.
        let (status, body) = s
            .send(as_user(
                reqwest::Method::GET,
                "/users",
                "root@acme.com",
                "a-wrong-password",
            ))
            .await;
        assert_eq!(status, 401, "{engine}: {body}");
        assert!(!body.to_string().contains("deactivated"), "{engine}: {body}");
        assert!(
            body.to_string().contains("wrong username or password"),
            "{engine}: {body}"
        );
        let (status, _) = s
            .as_root(reqwest::Method::POST, "/tenants/carbon.super/deactivate", None)
            .await;
        assert_eq!(status, 409, "{engine}");
        let (status, _) = s
            .as_root(reqwest::Method::POST, "/tenants/acme.com/activate", None)
            .await;
        assert_eq!(status, 200, "{engine}");
        let (status, _) = s
            .send(as_user(
                reqwest::Method::GET,
                "/users",
                "root@acme.com",
                "acme-root-password",
            ))
            .await;
        assert_eq!(status, 200, "{engine}");
    }
}

#[tokio::test]
async fn a_super_tenant_user_named_after_a_tenant_is_refused_and_a_tenant_named_after_one_is_reported() {
    for db in all_engines("admin_shadowed").await {
        let s = start(&db).await;
        let engine = s.engine;
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/tenants",
                Some(json!({"domain": "acme.com", "adminUsername": "boss", "adminPassword": "boss-password", "email": ""})),
            )
            .await;
        assert_eq!(status, 201, "{engine}: {body}");
        let before = s.user_count().await;
        // `eve@acme.com` would sign in to acme's `eve`: refused, naming the field.
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/users",
                Some(json!({"username": "eve@acme.com", "password": "eve-password", "roles": ["subscriber"]})),
            )
            .await;
        assert_eq!(status, 400, "{engine}: {body}");
        assert_eq!(body["error"][0]["code"], "username", "{engine}: {body}");
        assert!(body.to_string().contains("acme.com"), "{engine}: {body}");
        assert_eq!(s.user_count().await, before, "{engine}: nothing was created");
        // An email-like name whose domain is no tenant is a super-tenant user as before.
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/users",
                Some(json!({"username": "eve@mail.example", "password": "eve-password", "roles": ["subscriber"]})),
            )
            .await;
        assert_eq!(status, 201, "{engine}: {body}");
        // Inside a tenant every name is qualified with its domain: `eve@acme.com` of acme
        // signs in as `eve@acme.com@acme.com`, and is allowed.
        let (status, body) = s
            .send(
                tollgate_testkit::http()
                    .post(s.url("/users"))
                    .basic_auth("boss@acme.com", Some("boss-password"))
                    .json(&json!({"username": "eve@acme.com", "password": "eve-password", "roles": ["subscriber"]})),
            )
            .await;
        assert_eq!(status, 201, "{engine}: {body}");
        // A tenant named like a super-tenant user's domain is still created (whoever signs
        // up first cannot keep a tenant out), and the answer names the user it shadows.
        let (status, body) = s
            .as_root(
                reqwest::Method::POST,
                "/tenants",
                Some(json!({"domain": "mail.example", "adminUsername": "boss", "adminPassword": "boss-password", "email": ""})),
            )
            .await;
        assert_eq!(status, 201, "{engine}: {body}");
        assert_eq!(body["shadowedUsers"], json!(["eve@mail.example"]), "{engine}: {body}");
        let (status, body) = s.as_root(reqwest::Method::GET, "/tenants/mail.example", None).await;
        assert_eq!(status, 200, "{engine}: {body}");
        assert!(body.get("shadowedUsers").is_none(), "{engine}: {body}");
    }
}

/// A directory registration for `url` (the testkit's slapd layout), as JSON.
fn directory(domain: &str, url: &str, password: Option<&str>) -> Value {
    let mut body = json!({
        "domain": domain,
        "urls": [url],
        "bindDn": tollgate_testkit::ldap::SERVICE_DN,
        "userSearchBase": tollgate_testkit::ldap::PEOPLE_DN,
        "groupSearchBase": tollgate_testkit::ldap::GROUPS_DN,
        "connectTimeoutSeconds": 1,
        "roleMapping": {"apiPublishers": ["publisher"]},
    });
    if let Some(p) = password {
        body["bindPassword"] = json!(p);
    }
    body
}

#[tokio::test]
async fn user_stores_keep_the_password_sealed_refuse_bad_input_and_stay_in_their_tenant() {
    let slapd = tollgate_testkit::Slapd::start();
    for db in all_engines("admin_user_stores").await {
        let s = start(&db).await;
        let engine = s.engine;
        let post = reqwest::Method::POST;
        let remote = "ldap://192.0.2.10:389";
        let password = "the-service-password";

        // Bad input: 400 naming the field, and nothing is registered.
        let good = directory("corp", remote, Some(password));
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body[field] = value;
            body
        };
        let mut no_password = good.clone();
        no_password.as_object_mut().unwrap().remove("bindPassword");
        for (body, field) in [
            (with("domain", json!("")), "domain"),
            (with("domain", json!("a b")), "domain"),
            (with("urls", json!([])), "urls"),
            (with("urls", json!(["http://ldap.example.com"])), "urls"),
            (with("bindDn", json!(" ")), "bindDn"),
            (with("userSearchBase", json!("")), "userSearchBase"),
            (with("userFilter", json!("(uid=alice)")), "userFilter"),
            (with("bindPassword", json!("")), "bindPassword"),
            (no_password.clone(), "bindPassword"),
            (with("connectTimeoutSeconds", json!(0)), "connectTimeoutSeconds"),
            (with("cacheTtlSeconds", json!(100_000)), "cacheTtlSeconds"),
            (with("poolSize", json!(0)), "poolSize"),
            (with("roleMapping", json!({"apiPublishers": [""]})), "roleMapping"),
        ] {
            let (status, answer) = s.as_root(post.clone(), "/user-stores", Some(body.clone())).await;
            assert_eq!(status, 400, "{engine}: {body}: {answer}");
            assert!(answer.to_string().contains(field), "{engine}: names {field}: {answer}");
        }
        let (status, answer) = s
            .as_root(post.clone(), "/user-stores", Some(json!({"domain": 7})))
            .await;
        assert_eq!(status, 400, "{engine}: {answer}");
        let (_, list) = s.as_root(reqwest::Method::GET, "/user-stores", None).await;
        assert_eq!(list["count"], 0, "{engine}: {list}");

        // Only administrators register directories.
        let (status, _) = s
            .send(
                tollgate_testkit::http()
                    .post(s.url("/user-stores"))
                    .basic_auth("carol", Some("carol-password"))
                    .json(&good),
            )
            .await;
        assert_eq!(status, 403, "{engine}");

        // Registered: the domain upper-cased, defaults answered, the password never.
        let (status, created) = s.as_root(post.clone(), "/user-stores", Some(good.clone())).await;
        assert_eq!(status, 201, "{engine}: {created}");
        assert_eq!(created["domain"], "CORP");
        assert_eq!(created["readOnly"], true);
        assert_eq!(created["membership"], "member");
        assert!(created.get("bindPassword").is_none(), "{engine}: {created}");
        assert!(!created.to_string().contains(password));
        let id = created["id"].as_str().unwrap().to_string();
        // At rest the password is sealed: neither column holds it.
        let rows = tollgate_store::user_stores::list(&s.shared, TenantId::DEFAULT)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].settings.contains(password), "{engine}");
        assert!(!rows[0].bind_password_sealed.contains(password), "{engine}");
        let sealed = |row: &tollgate_store::user_stores::UserStoreRow| tollgate_userstore::registered::SealedSettings {
            settings: row.settings.clone(),
            bind_password_sealed: row.bind_password_sealed.clone(),
        };
        let key = bind_password_key(SECRETS_KEY);
        assert_eq!(
            tollgate_userstore::registered::bind_password(&sealed(&rows[0]), &key, &TenantId::DEFAULT.to_string())
                .unwrap()
                .expose(),
            password
        );
        // One domain once per tenant, in any case.
        let (status, _) = s
            .as_root(post.clone(), "/user-stores", Some(with("domain", json!("Corp"))))
            .await;
        assert_eq!(status, 409, "{engine}");
        let (status, got) = s
            .as_root(reqwest::Method::GET, &format!("/user-stores/{id}"), None)
            .await;
        assert_eq!((status, &got), (200, &created), "{engine}");

        // An update without the password keeps it, unless it would send it elsewhere; the
        // domain cannot change.
        let mut unsent = no_password.clone();
        unsent["cacheTtlSeconds"] = json!(5);
        let (status, updated) = s
            .as_root(
                reqwest::Method::PUT,
                &format!("/user-stores/{id}"),
                Some(unsent.clone()),
            )
            .await;
        assert_eq!(status, 200, "{engine}: {updated}");
        for (field, value) in [
            ("urls", json!(["ldap://192.0.2.11:389"])),
            ("bindDn", json!("cn=other")),
            ("startTls", json!(true)),
        ] {
            let mut moved = unsent.clone();
            moved[field] = value;
            let (status, answer) = s
                .as_root(reqwest::Method::PUT, &format!("/user-stores/{id}"), Some(moved))
                .await;
            assert_eq!(status, 400, "{engine}: {field}: {answer}");
            assert!(answer.to_string().contains("bindPassword"), "{answer}");
        }
        assert_eq!(updated["cacheTtlSeconds"], 5);
        let rows = tollgate_store::user_stores::list(&s.shared, TenantId::DEFAULT)
            .await
            .unwrap();
        assert_eq!(
            tollgate_userstore::registered::bind_password(&sealed(&rows[0]), &key, &TenantId::DEFAULT.to_string())
                .unwrap()
                .expose(),
            password,
            "{engine}: kept"
        );
        let (status, answer) = s
            .as_root(
                reqwest::Method::PUT,
                &format!("/user-stores/{id}"),
                Some(with("domain", json!("OTHER"))),
            )
            .await;
        assert_eq!(status, 400, "{engine}: {answer}");
        assert!(answer.to_string().contains("domain"));
        let (status, _) = s
            .as_root(reqwest::Method::PUT, "/user-stores/no-such-store", Some(good.clone()))
            .await;
        assert_eq!(status, 404, "{engine}");

        // A tenant's administrator sees only the tenant's own directories, may reuse the
        // domain, and may not point one at this host or a link-local address.
        let acme = json!({"domain": "acme.com", "adminUsername": "root", "adminPassword": "acme-root-password", "email": "root@acme.com"});
        let (status, _) = s.as_root(post.clone(), "/tenants", Some(acme)).await;
        assert_eq!(status, 201, "{engine}");
        let as_acme = |method: reqwest::Method, path: &str| {
            tollgate_testkit::http()
                .request(method, s.url(path))
                .basic_auth("root@acme.com", Some("acme-root-password"))
        };
        let (status, list) = s.send(as_acme(reqwest::Method::GET, "/user-stores")).await;
        assert_eq!((status, list["count"].clone()), (200, json!(0)), "{engine}: {list}");
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let (status, _) = s.send(as_acme(method, &format!("/user-stores/{id}"))).await;
            assert_eq!(status, 404, "{engine}: another tenant's store does not exist for acme");
        }
        for url in [
            "ldap://127.0.0.1:389",
            "ldap://localhost",
            "ldap://[::1]:389",
            "ldaps://169.254.169.254",
            "ldap://0.0.0.0",
        ] {
            let (status, answer) = s
                .send(as_acme(post.clone(), "/user-stores").json(&directory("CORP", url, Some(password))))
                .await;
            assert_eq!(status, 400, "{engine}: {url}: {answer}");
            assert!(
                answer.to_string().contains("tenant_directory_internal_addresses"),
                "{answer}"
            );
        }
        let (status, own) = s
            .send(as_acme(post.clone(), "/user-stores").json(&directory("CORP", remote, Some(password))))
            .await;
        assert_eq!(status, 201, "{engine}: {own}");
        assert_ne!(own["id"], created["id"]);
        let (_, list) = s.as_root(reqwest::Method::GET, "/user-stores", None).await;
        assert_eq!(
            list["count"], 1,
            "{engine}: the super tenant still sees its one: {list}"
        );

        // Names of a read-only directory are refused for new users: the error says so.
        let (status, answer) = s
            .as_root(
                post.clone(),
                "/users",
                Some(json!({"username": "CORP/newbie", "password": "newbie-password", "roles": ["subscriber"]})),
            )
            .await;
        assert_eq!(status, 400, "{engine}: {answer}");
        assert!(answer.to_string().contains("read-only"), "{engine}: {answer}");

        // Trying settings: a live directory connects; a wrong password or base is said.
        if let Some(slapd) = &slapd {
            let (status, tried) = s
                .as_root(
                    post.clone(),
                    "/user-stores/test-connection",
                    Some(directory(
                        "TRY",
                        &slapd.url,
                        Some(tollgate_testkit::ldap::SERVICE_PASSWORD),
                    )),
                )
                .await;
            assert_eq!(
                (status, tried["connection"].clone()),
                (200, json!(true)),
                "{engine}: {tried}"
            );
            let (_, tried) = s
                .as_root(
                    post.clone(),
                    "/user-stores/test-connection",
                    Some(directory("TRY", &slapd.url, Some("wrong-password"))),
                )
                .await;
            assert_eq!(tried["connection"], false, "{engine}: {tried}");
            assert!(tried["message"].as_str().unwrap().contains("bind"), "{tried}");
            let mut bad_base = directory("TRY", &slapd.url, Some(tollgate_testkit::ldap::SERVICE_PASSWORD));
            bad_base["userSearchBase"] = json!("ou=nowhere,dc=example,dc=com");
            let (_, tried) = s
                .as_root(post.clone(), "/user-stores/test-connection", Some(bad_base))
                .await;
            assert_eq!(tried["connection"], false, "{engine}: {tried}");
            assert!(tried["message"].as_str().unwrap().contains("ou=nowhere"), "{tried}");
            let (_, list) = s.as_root(reqwest::Method::GET, "/user-stores", None).await;
            assert_eq!(list["count"], 1, "{engine}: trying registers nothing");
        }

        let (status, _) = s
            .as_root(reqwest::Method::DELETE, &format!("/user-stores/{id}"), None)
            .await;
        assert_eq!(status, 200, "{engine}");
        let (status, _) = s
            .as_root(reqwest::Method::GET, &format!("/user-stores/{id}"), None)
            .await;
        assert_eq!(status, 404, "{engine}");
        let (status, _) = s
            .as_root(reqwest::Method::DELETE, &format!("/user-stores/{id}"), None)
            .await;
        assert_eq!(status, 404, "{engine}");
    }
}
