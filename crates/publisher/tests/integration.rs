//! The Publisher REST API on a real socket over real databases (SQLite and, when
//! reachable, PostgreSQL): bad input on every write changes nothing and writes no event,
//! each role is held to what it may do, and search and pagination work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tollgate_config::DatabaseConfig;
use tollgate_http::Authenticator;
use tollgate_model::{NewUser, Role, TenantId};
use tollgate_publisher::{PublisherState, routes};
use tollgate_store::{Database, DatabaseName, connect, events, users};
use tollgate_testkit::{TestDb, all_engines};

const PETSTORE: &str = r#"{"openapi":"3.0.3","info":{"title":"Petstore","version":"1.0.0"},
  "paths":{"/pets":{"get":{},"post":{}},"/pets/{petId}":{"get":{"security":[]},"delete":{}}}}"#;

struct Server {
    addr: SocketAddr,
    am: Database,
    _server: tollgate_testkit::RunningServer,
    engine: &'static str,
}

async fn start(db: &TestDb, max_revisions: u32) -> Server {
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    tollgate_store::policies::install_defaults(&am, TenantId::DEFAULT)
        .await
        .unwrap();
    let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    shared.migrate().await.unwrap();
    for (name, role) in [
        ("root", Role::Admin),
        ("chris", Role::Creator),
        ("pat", Role::Publisher),
        ("sam", Role::Subscriber),
    ] {
        let new = NewUser {
            tenant_id: TenantId::DEFAULT,
            username: name.into(),
            password: format!("{name}-password"),
            email: None,
            roles: vec![role],
        };
        users::create(&shared, new).await.unwrap();
    }
    let app = tollgate_http::rest_layers(
        routes(PublisherState {
            am: am.clone(),
            shared: shared.clone(),
            authenticator: Authenticator::new(shared.clone()),
            max_revisions_per_api: max_revisions,
            url_import_allow_private: max_revisions == 4,
        }),
        256 * 1024,
    );
    let server = tollgate_testkit::serve(app).await;
    let addr = server.addr;
    Server {
        addr,
        am,
        _server: server,
        engine: db.engine(),
    }
}

impl Server {
    fn req(&self, user: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
        tollgate_testkit::http()
            .request(method, format!("http://{}/api/am/publisher/v4{path}", self.addr))
            .basic_auth(user, Some(format!("{user}-password")))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn call(&self, user: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(user, method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn api_count(&self) -> i64 {
        let (_, body) = self.call("root", Method::GET, "/apis", None).await;
        body["pagination"]["total"].as_i64().unwrap()
    }

    async fn seq(&self) -> i64 {
        events::latest_seq(&self.am).await.unwrap()
    }

    async fn create(&self, name: &str, context: &str, extra: Value) -> String {
        let mut body = json!({"name": name, "context": context, "version": "1.0.0",
            "operations": [{"target": "/items", "verb": "GET"}, {"target": "/items/{id}", "verb": "DELETE"}]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (status, api) = self.call("chris", Method::POST, "/apis", Some(body)).await;
        assert_eq!(status, 201, "[{}] create {name}: {api}", self.engine);
        api["id"].as_str().unwrap().to_string()
    }

    /// A published API with one revision deployed to Default: (api id, revision id).
    async fn deployed(&self, name: &str, context: &str) -> (String, String) {
        let id = self.create(name, context, json!({})).await;
        let (s, rev) = self
            .call("pat", Method::POST, &format!("/apis/{id}/revisions"), Some(json!({})))
            .await;
        assert_eq!(s, 201);
        let rev_id = rev["id"].as_str().unwrap().to_string();
        let (s, _) = self
            .call(
                "pat",
                Method::POST,
                &format!("/apis/{id}/deploy-revision?revisionId={rev_id}"),
                Some(json!([{"name": "Default"}])),
            )
            .await;
        assert_eq!(s, 201);
        (id, rev_id)
    }
}

fn fields(body: &Value) -> Vec<String> {
    body["error"]
        .as_array()
        .map(|a| a.iter().map(|e| e["code"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_role_is_held_to_its_operations() {
    for db in all_engines("pub_roles").await {
        let s = start(&db, 5).await;
        let id = s.create("Orders", "/orders", json!({})).await;
        let (count, seq) = (s.api_count().await, s.seq().await);

        // A subscriber sees nothing of the Publisher.
        for (method, path) in [(Method::GET, "/apis".to_string()), (Method::GET, format!("/apis/{id}"))] {
            assert_eq!(s.call("sam", method, &path, None).await.0, 403, "[{}]", s.engine);
        }
        let (status, body) = s
            .call(
                "sam",
                Method::POST,
                "/apis",
                Some(json!({"name": "X", "context": "/x", "version": "1"})),
            )
            .await;
        assert_eq!((status, body["code"].clone()), (403, json!(900910)));

        // A publisher cannot create or edit APIs…
        let (status, _) = s
            .call(
                "pat",
                Method::POST,
                "/apis",
                Some(json!({"name": "Y", "context": "/y", "version": "1"})),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(s.call("pat", Method::DELETE, &format!("/apis/{id}"), None).await.0, 403);

        // …and a creator cannot change lifecycle or deploy.
        let (status, _) = s
            .call(
                "chris",
                Method::POST,
                &format!("/apis/change-lifecycle?apiId={id}&action=Publish"),
                None,
            )
            .await;
        assert_eq!(status, 403);
        let (_, rev) = s
            .call("chris", Method::POST, &format!("/apis/{id}/revisions"), Some(json!({})))
            .await;
        let rev_id = rev["id"].as_str().unwrap();
        let (status, _) = s
            .call(
                "chris",
                Method::POST,
                &format!("/apis/{id}/deploy-revision?revisionId={rev_id}"),
                Some(json!([{"name": "Default"}])),
            )
            .await;
        assert_eq!(status, 403);

        // Nothing changed: same APIs, still CREATED, nothing deployed, no events.
        assert_eq!(s.api_count().await, count);
        let (_, api) = s.call("root", Method::GET, &format!("/apis/{id}"), None).await;
        assert_eq!(api["lifeCycleStatus"], "CREATED");
        let (_, deps) = s
            .call("root", Method::GET, &format!("/apis/{id}/deployments"), None)
            .await;
        assert_eq!(deps["count"], 0);
        assert_eq!(s.seq().await, seq, "[{}] a forbidden call wrote an event", s.engine);

        // Each role can do its own part.
        let (status, _) = s
            .call(
                "pat",
                Method::POST,
                &format!("/apis/change-lifecycle?apiId={id}&action=Publish"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(s.call("pat", Method::GET, &format!("/apis/{id}"), None).await.0, 200);
        assert_eq!(s.seq().await, seq + 1);
    }
}

#[tokio::test]
async fn bad_api_bodies_are_refused_and_write_nothing() {
    for db in all_engines("pub_bad_api").await {
        let s = start(&db, 5).await;
        let id = s.create("Orders", "/orders", json!({"tags": ["shop"]})).await;
        let (count, seq) = (s.api_count().await, s.seq().await);

        let r = s
            .req("chris", Method::POST, "/apis")
            .header("content-type", "application/json")
            .body("{\"name\":");
        assert_eq!(s.send(r).await.0, 400);
        let r = s.req("chris", Method::POST, "/apis").body("name=x");
        assert_eq!(s.send(r).await.0, 400, "non-JSON content type");
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": 5, "context": "/a", "version": "1"})),
            )
            .await;
        assert_eq!(status, 400);
        assert!(body["description"].as_str().unwrap().starts_with("name"), "{body}");
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"context": "/a", "version": "1"})),
            )
            .await;
        assert_eq!(status, 400);
        assert!(body["description"].as_str().unwrap().contains("name"), "{body}");
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(
                    json!({"name": "B", "context": "b", "version": "1", "policies": ["Platinum"],
                    "operations": [{"target": "/x", "verb": "FETCH"}]}),
                ),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(fields(&body), ["context", "policies[0]", "operations[0].verb"]);
        // Same context as Orders 1.0.0, and the same name and version.
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": "Other", "context": "/orders", "version": "1.0.0"})),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        let (status, _) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": "Other", "context": "/orders", "version": "2.0.0"})),
            )
            .await;
        assert_eq!(status, 409, "another API's base context");
        let (status, _) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": "orders", "context": "/shop", "version": "1.0.0"})),
            )
            .await;
        assert_eq!(status, 409, "name and version, ignoring case");
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis?strict=true",
                Some(json!({"name": "C", "context": "/c", "version": "1", "thumbnail": "x"})),
            )
            .await;
        assert_eq!((status, fields(&body)), (400, vec!["thumbnail".to_string()]));
        // Names that display as something they are not (Trojan Source) or hide characters.
        for name in ["Orders\u{202E}nimda", "Ord\u{200B}ers", "Pay\u{2066}ments"] {
            let (status, body) = s
                .call(
                    "chris",
                    Method::POST,
                    "/apis",
                    Some(json!({"name": name, "context": "/e", "version": "1"})),
                )
                .await;
            assert_eq!(
                (status, fields(&body)),
                (400, vec!["name".to_string()]),
                "{name:?}: {body}"
            );
            assert!(body.to_string().contains("U+"), "{body}");
        }
        let big = json!({"name": "D", "context": "/d", "version": "1", "description": "x".repeat(300 * 1024)});
        assert_eq!(s.call("chris", Method::POST, "/apis", Some(big)).await.0, 413);

        // PUT: fixed fields, invalid content.
        let (_, current) = s.call("chris", Method::GET, &format!("/apis/{id}"), None).await;
        let mut renamed = current.clone();
        renamed["name"] = json!("Renamed");
        renamed["version"] = json!("9");
        let (status, body) = s
            .call("chris", Method::PUT, &format!("/apis/{id}"), Some(renamed))
            .await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["name".to_string(), "version".to_string()])
        );
        let mut broken = current.clone();
        broken["operations"] = json!([{"target": "/a/{", "verb": "GET"}]);
        broken["endpointConfig"] = json!({"endpoint_type": "http", "production_endpoints": {"url": "not a url"}});
        let (status, body) = s.call("chris", Method::PUT, &format!("/apis/{id}"), Some(broken)).await;
        assert_eq!(status, 400);
        assert_eq!(
            fields(&body),
            ["endpointConfig.production_endpoints.url", "operations[0].target"]
        );
        let (status, _) = s
            .call("chris", Method::PUT, "/apis/no-such-api", Some(current.clone()))
            .await;
        assert_eq!(status, 404);
        let (_, after) = s.call("chris", Method::GET, &format!("/apis/{id}"), None).await;
        assert_eq!(after, current, "a refused PUT changed the API");

        // copy-api and change-lifecycle with bad parameters.
        for (path, want) in [
            (format!("/apis/copy-api?apiId={id}"), 400),
            (format!("/apis/copy-api?apiId={id}&newVersion=bad%20version"), 400),
            (format!("/apis/copy-api?apiId={id}&newVersion=1.0.0"), 409),
            ("/apis/copy-api?apiId=nope&newVersion=2".to_string(), 404),
        ] {
            assert_eq!(s.call("chris", Method::POST, &path, None).await.0, want, "{path}");
        }
        let (_, body) = s
            .call(
                "chris",
                Method::POST,
                &format!("/apis/copy-api?apiId={id}&newVersion=bad%20version"),
                None,
            )
            .await;
        assert_eq!(fields(&body), ["newVersion"]);
        for (path, want) in [
            (format!("/apis/change-lifecycle?apiId={id}&action=Explode"), 400),
            (format!("/apis/change-lifecycle?apiId={id}&action=Retire"), 400),
            (format!("/apis/change-lifecycle?apiId={id}"), 400),
            ("/apis/change-lifecycle?apiId=nope&action=Publish".to_string(), 404),
        ] {
            assert_eq!(s.call("pat", Method::POST, &path, None).await.0, want, "{path}");
        }
        let (_, body) = s
            .call(
                "pat",
                Method::POST,
                &format!("/apis/change-lifecycle?apiId={id}&action=Retire"),
                None,
            )
            .await;
        assert!(
            body["error"][0]["message"]
                .as_str()
                .unwrap()
                .contains("Publish, Deploy as a Prototype"),
            "{body}"
        );

        assert_eq!(s.api_count().await, count, "[{}] bad input created an API", s.engine);
        assert_eq!(s.seq().await, seq, "[{}] bad input wrote an event", s.engine);
    }
}

#[tokio::test]
async fn bad_definitions_are_refused_and_write_nothing() {
    for db in all_engines("pub_bad_definitions").await {
        let s = start(&db, 5).await;
        let id = s.create("Orders", "/orders", json!({})).await;
        let (count, seq) = (s.api_count().await, s.seq().await);
        let form = |parts: &[(&str, &str)]| {
            parts.iter().fold(reqwest::multipart::Form::new(), |f, (k, v)| {
                f.text(k.to_string(), v.to_string())
            })
        };
        let import = |f: reqwest::multipart::Form| s.req("chris", Method::POST, "/apis/import-openapi").multipart(f);
        let props = r#"{"context": "/pets"}"#;

        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("additionalProperties", props)], "file"),
            (
                vec![
                    ("url", "http://example.com/openapi.json"),
                    ("additionalProperties", props),
                ],
                "url",
            ),
            (
                vec![
                    ("file", "openapi: 3.0.0\ninfo: {title: ''}\npaths: {}\n"),
                    ("additionalProperties", props),
                ],
                "definition.info.title",
            ),
            (
                vec![("file", "{not json"), ("additionalProperties", props)],
                "definition",
            ),
            (vec![("file", PETSTORE)], "additionalProperties.context"),
            (
                vec![("file", PETSTORE), ("additionalProperties", "{oops")],
                "additionalProperties",
            ),
            (
                vec![("file", PETSTORE), ("additionalProperties", r#"{"context": "pets"}"#)],
                "context",
            ),
            (
                vec![
                    ("file", PETSTORE),
                    (
                        "additionalProperties",
                        r#"{"context": "/orders", "name": "Orders", "version": "1.0.0"}"#,
                    ),
                ],
                "",
            ),
        ];
        for (parts, field) in cases {
            let (status, body) = s.send(import(form(&parts))).await;
            if field.is_empty() {
                assert_eq!(status, 409, "duplicate import: {body}");
            } else {
                assert_eq!(status, 400, "[{}] {parts:?}: {body}", s.engine);
                assert!(fields(&body).iter().any(|f| f == field), "expected {field} in {body}");
            }
        }
        let (status, body) = s
            .send(s.req("chris", Method::POST, "/apis/import-openapi").json(&json!({})))
            .await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["Content-Type".to_string()]),
            "import needs multipart"
        );
        // A form without a boundary, or a broken one, is refused in the JSON error envelope.
        for (content_type, body, field) in [
            ("multipart/form-data", "x", Some("Content-Type")),
            ("multipart/form-data; boundary=", "x", None),
            ("multipart/form-data; boundary=X", "--X\r\nno blank line", None),
        ] {
            let r = s
                .req("chris", Method::POST, "/apis/import-openapi")
                .header("content-type", content_type)
                .body(body);
            let (status, body) = s.send(r).await;
            assert_eq!(status, 400, "{content_type}: {body}");
            assert_eq!(body["code"], 400, "{content_type}: the JSON envelope, got {body}");
            if let Some(field) = field {
                assert_eq!(fields(&body), [field], "{body}");
            }
        }
        let (status, _) = s
            .send(
                s.req("chris", Method::POST, "/apis/validate-openapi")
                    .multipart(form(&[])),
            )
            .await;
        assert_eq!(status, 400);

        // Replacing the definition with a broken one, or one naming an unknown policy.
        let (_, before) = s.call("chris", Method::GET, &format!("/apis/{id}/swagger"), None).await;
        let put = |text: &str| {
            s.req("chris", Method::PUT, &format!("/apis/{id}/swagger"))
                .multipart(form(&[("apiDefinition", text)]))
        };
        let (status, body) = s.send(put("swagger: '1.2'")).await;
        assert_eq!((status, fields(&body)), (400, vec!["definition.swagger".to_string()]));
        let unknown_tier = r#"{"openapi":"3.0.0","info":{"title":"T","version":"1"},"paths":{"/a":{"get":{"x-throttling-tier":"Huge"}}}}"#;
        let (status, body) = s.send(put(unknown_tier)).await;
        assert_eq!(status, 400);
        assert!(fields(&body)[0].contains("operations[0].throttlingPolicy"), "{body}");
        let (_, after) = s.call("chris", Method::GET, &format!("/apis/{id}/swagger"), None).await;
        assert_eq!(after, before);

        // A good replacement works and the operations follow it.
        let (status, _) = s.send(put(PETSTORE)).await;
        assert_eq!(status, 200);
        let (_, api) = s.call("chris", Method::GET, &format!("/apis/{id}"), None).await;
        assert_eq!(api["operations"].as_array().unwrap().len(), 4);

        assert_eq!(s.api_count().await, count);
        assert_eq!(s.seq().await, seq);
    }
}

#[tokio::test]
async fn bad_revision_and_deployment_calls_change_nothing() {
    for db in all_engines("pub_bad_revisions").await {
        let s = start(&db, 2).await;
        let (id, rev_id) = s.deployed("Orders", "/orders").await;
        let seq = s.seq().await;
        let deploy = format!("/apis/{id}/deploy-revision?revisionId={rev_id}");
        let undeploy = format!("/apis/{id}/undeploy-revision?revisionId={rev_id}");
        let cases: Vec<(String, Value, u16, &str)> = vec![
            (deploy.clone(), json!([]), 400, "body"),
            (
                deploy.clone(),
                json!([{"name": "Default"}, {"name": "Default"}]),
                400,
                "[1].name",
            ),
            (deploy.clone(), json!([{"name": "Mars"}]), 400, "[0].name"),
            (deploy.clone(), json!({"name": "Default"}), 400, ""),
            (
                format!("/apis/{id}/deploy-revision?revisionId=nope"),
                json!([{"name": "Default"}]),
                404,
                "",
            ),
            (
                format!("/apis/{id}/deploy-revision"),
                json!([{"name": "Default"}]),
                400,
                "",
            ),
            (undeploy.clone(), json!([{"name": "internal"}]), 400, "[0].name"),
            (undeploy.clone(), json!([]), 400, "body"),
            (
                format!("/apis/{id}/restore-revision?revisionId=nope"),
                json!({}),
                404,
                "",
            ),
            (
                format!("/apis/{id}/revisions"),
                json!({"description": "d".repeat(300)}),
                400,
                "description",
            ),
            (format!("/apis/{id}/revisions"), json!({"description": 7}), 400, ""),
        ];
        for (path, body, want, field) in cases {
            let user = if path.contains("revisions") || path.contains("restore") {
                "chris"
            } else {
                "pat"
            };
            let (status, resp) = s.call(user, Method::POST, &path, Some(body.clone())).await;
            assert_eq!(status, want, "[{}] {path} {body}: {resp}", s.engine);
            if !field.is_empty() {
                assert!(
                    fields(&resp).iter().any(|f| f == field),
                    "{path}: expected {field} in {resp}"
                );
            }
        }
        // An unknown environment is named with the ones that exist.
        let (_, resp) = s
            .call(
                "pat",
                Method::POST,
                &deploy,
                Some(json!([{"name": "Default"}, {"name": "Mars"}])),
            )
            .await;
        assert_eq!(
            resp["error"][0]["message"], "no gateway environment named `Mars`; the environments are `Default`",
            "{resp}"
        );
        // The revision limit (2 here): one more fits, the next is refused.
        assert_eq!(
            s.call("chris", Method::POST, &format!("/apis/{id}/revisions"), Some(json!({})))
                .await
                .0,
            201
        );
        let (status, body) = s
            .call("chris", Method::POST, &format!("/apis/{id}/revisions"), Some(json!({})))
            .await;
        assert_eq!(status, 409);
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("max_revisions_per_api = 2"),
            "{body}"
        );
        // A deployed revision cannot be deleted.
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("/apis/{id}/revisions/{rev_id}"), None)
                .await
                .0,
            409
        );

        let (_, deps) = s
            .call("pat", Method::GET, &format!("/apis/{id}/deployments"), None)
            .await;
        assert_eq!(deps["count"], 1);
        assert_eq!(deps["list"][0]["revisionUuid"], rev_id);
        assert_eq!(s.seq().await, seq, "[{}] a refused call wrote an event", s.engine);

        // Deleting the API tells the environment that served it.
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("/apis/{id}"), None).await.0,
            200
        );
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].kind, tollgate_events::EventKind::ApiRevisionUndeployed);
        assert_eq!(evs[0].environment.as_deref(), Some("Default"));
        assert_eq!(s.call("chris", Method::GET, &format!("/apis/{id}"), None).await.0, 404);
    }
}

#[tokio::test]
async fn search_and_pagination() {
    for db in all_engines("pub_search").await {
        let s = start(&db, 5).await;
        let a = s
            .create("Weather", "/weather", json!({"tags": ["forecast", "public"]}))
            .await;
        s.create("Maps", "/maps/{version}", json!({"tags": ["geo"]})).await;
        s.create("Weather_Alerts", "/alerts", json!({"tags": ["public"]})).await;
        let (status, _) = s
            .call(
                "pat",
                Method::POST,
                &format!("/apis/change-lifecycle?apiId={a}&action=Publish"),
                None,
            )
            .await;
        assert_eq!(status, 200);

        let names = |body: &Value| -> Vec<String> {
            body["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_string())
                .collect()
        };
        for (query, want) in [
            ("weather", vec!["Weather", "Weather_Alerts"]),
            ("name:alerts", vec!["Weather_Alerts"]),
            ("name:r_a", vec!["Weather_Alerts"]),
            ("tag:public", vec!["Weather", "Weather_Alerts"]),
            ("tag:forecast", vec!["Weather"]),
            ("tag:fore", vec![]),
            ("context:/maps/1.0.0", vec!["Maps"]),
            ("status:PUBLISHED", vec!["Weather"]),
            ("name:weather tag:public status:CREATED", vec!["Weather_Alerts"]),
        ] {
            let (status, body) = s
                .call(
                    "chris",
                    Method::GET,
                    &format!("/apis?query={}", query.replace(' ', "%20")),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(names(&body), want, "[{}] query {query}", s.engine);
        }
        let (_, page) = s.call("chris", Method::GET, "/apis?limit=2&offset=1", None).await;
        assert_eq!(names(&page), ["Weather", "Weather_Alerts"]);
        assert_eq!(page["pagination"], json!({"offset": 1, "limit": 2, "total": 3}));
        assert_eq!(page["count"], 2);
        assert_eq!(page["list"][0]["lifeCycleStatus"], "PUBLISHED");
        let (status, tiers) = s
            .call("pat", Method::GET, "/throttling-policies/subscription", None)
            .await;
        assert_eq!(status, 200);
        let tier_names: Vec<&str> = tiers["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tier_names, ["Bronze", "Gold", "Silver", "Unlimited"]);
        assert_eq!(tiers["list"][1]["requestCount"], 5000);
        assert_eq!(tiers["list"][1]["policyLevel"], "subscription");
        let (_, api_tiers) = s.call("pat", Method::GET, "/throttling-policies/api", None).await;
        assert_eq!(api_tiers["count"], 4);
        assert_eq!(
            s.call("pat", Method::GET, "/throttling-policies/application", None)
                .await
                .0,
            400
        );
        for bad in [
            "query=colour:red",
            "query=name:",
            "query=status:ASLEEP",
            "limit=0",
            "offset=-5",
        ] {
            let (status, body) = s.call("chris", Method::GET, &format!("/apis?{bad}"), None).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
    }
}

#[tokio::test]
async fn shared_scopes() {
    for db in all_engines("pub_scopes").await {
        let s = start(&db, 5).await;
        for (body, field) in [
            (json!({"name": "has space"}), "name"),
            (json!({"name": "ok", "bindings": [""]}), "bindings[0]"),
            (json!({"displayName": "no name"}), ""),
        ] {
            let (status, resp) = s.call("chris", Method::POST, "/scopes", Some(body.clone())).await;
            assert_eq!(status, 400, "{body}: {resp}");
            if !field.is_empty() {
                assert_eq!(fields(&resp), [field]);
            }
        }
        assert_eq!(
            s.call("sam", Method::POST, "/scopes", Some(json!({"name": "x"})))
                .await
                .0,
            403
        );
        let (status, scope) = s
            .call(
                "chris",
                Method::POST,
                "/scopes",
                Some(json!({"name": "read:orders", "displayName": "Read orders", "bindings": ["subscriber", "admin"]})),
            )
            .await;
        assert_eq!(status, 201, "{scope}");
        assert_eq!(scope["bindings"], json!(["admin", "subscriber"]));
        let id = scope["id"].as_str().unwrap().to_string();
        assert_eq!(
            s.call("chris", Method::POST, "/scopes", Some(json!({"name": "read:orders"})))
                .await
                .0,
            409
        );
        // HEAD answers as GET would (status and content type), without a body.
        for (name, status) in [("read:orders", 200), ("write:orders", 404)] {
            for method in [Method::HEAD, Method::GET] {
                let r = s
                    .req("chris", method.clone(), &format!("/scopes/{name}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), status, "{method} {name}");
                assert_eq!(
                    r.headers().get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/json"),
                    "{method} {name}"
                );
                let body = r.bytes().await.unwrap();
                assert_eq!(body.is_empty(), method == Method::HEAD, "{method} {name}");
            }
        }

        // An API may use it as a shared scope; an unknown shared scope is refused.
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": "Orders", "context": "/orders", "version": "1",
                "scopes": [{"scope": {"name": "write:orders"}, "shared": true}]})),
            )
            .await;
        assert_eq!((status, fields(&body)), (400, vec!["scopes[0].scope.name".to_string()]));
        let api_id = s
            .create(
                "Orders",
                "/orders",
                json!({"scopes": [{"scope": {"name": "read:orders"}, "shared": true}],
                "operations": [{"target": "/orders", "verb": "GET", "scopes": ["read:orders"]}]}),
            )
            .await;
        let (_, got) = s.call("pat", Method::GET, &format!("/scopes/{id}"), None).await;
        assert_eq!(got["usageCount"], 1);
        let (_, usage) = s.call("pat", Method::GET, &format!("/scopes/{id}/usage"), None).await;
        assert_eq!(usage["usedApiList"][0]["id"], api_id);

        // In use: no delete; renaming is refused; editing the bindings works.
        let (status, body) = s.call("chris", Method::DELETE, &format!("/scopes/{id}"), None).await;
        assert_eq!(status, 409);
        assert!(
            body["description"].as_str().unwrap().contains("API `Orders` 1"),
            "{body}"
        );
        assert_eq!(
            s.call(
                "chris",
                Method::PUT,
                &format!("/scopes/{id}"),
                Some(json!({"name": "renamed"}))
            )
            .await
            .0,
            400
        );
        let (status, body) = s
            .call(
                "chris",
                Method::PUT,
                &format!("/scopes/{id}"),
                Some(json!({"name": "read:orders", "bindings": ["creator"]})),
            )
            .await;
        assert_eq!((status, body["bindings"].clone()), (200, json!(["creator"])));
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("/apis/{api_id}"), None)
                .await
                .0,
            200
        );
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("/scopes/{id}"), None).await.0,
            200
        );
        let (_, list) = s.call("chris", Method::GET, "/scopes", None).await;
        assert_eq!(list["count"], 0, "{}", s.engine);
    }
}

#[tokio::test]
async fn documents_and_their_content() {
    for db in all_engines("pub_documents").await {
        let s = start(&db, 5).await;
        let api = s.create("Orders", "/orders", json!({})).await;
        let docs = format!("/apis/{api}/documents");
        for (body, field) in [
            (json!({"name": "", "type": "HOWTO", "sourceType": "INLINE"}), "name"),
            (json!({"name": "G", "type": "NOVEL", "sourceType": "INLINE"}), "type"),
            (
                json!({"name": "G", "type": "OTHER", "sourceType": "INLINE"}),
                "otherTypeName",
            ),
            (
                json!({"name": "G", "type": "HOWTO", "sourceType": "URL", "sourceUrl": "ftp://x"}),
                "sourceUrl",
            ),
            (
                json!({"name": "G", "type": "HOWTO", "sourceType": "PIGEON"}),
                "sourceType",
            ),
            (
                json!({"name": "G", "type": "HOWTO", "sourceType": "INLINE", "visibility": "EVERYONE"}),
                "visibility",
            ),
        ] {
            let (status, resp) = s.call("chris", Method::POST, &docs, Some(body.clone())).await;
            assert_eq!((status, fields(&resp)), (400, vec![field.to_string()]), "{body}");
        }
        assert_eq!(
            s.call(
                "chris",
                Method::POST,
                "/apis/nope/documents",
                Some(json!({"name": "G", "type": "HOWTO", "sourceType": "INLINE"}))
            )
            .await
            .0,
            404
        );
        assert_eq!(
            s.call(
                "pat",
                Method::POST,
                &docs,
                Some(json!({"name": "G", "type": "HOWTO", "sourceType": "INLINE"}))
            )
            .await
            .0,
            403
        );

        // Markdown, uploaded as content.
        let (status, md) = s
            .call("chris", Method::POST, &docs, Some(json!({"name": "Getting started", "type": "HOWTO", "sourceType": "MARKDOWN", "summary": "Start here"})))
            .await;
        assert_eq!(status, 201, "{md}");
        assert_eq!(md["createdBy"], "chris");
        let md_id = md["documentId"].as_str().unwrap().to_string();
        assert_eq!(
            s.call(
                "chris",
                Method::POST,
                &docs,
                Some(json!({"name": "Getting started", "type": "SAMPLES", "sourceType": "INLINE"}))
            )
            .await
            .0,
            409
        );
        let content = format!("{docs}/{md_id}/content");
        let form = reqwest::multipart::Form::new().text("inlineContent", "# Orders\n\nCall `GET /orders`.");
        assert_eq!(
            s.send(s.req("chris", Method::POST, &content).multipart(form)).await.0,
            201
        );
        let r = s.req("pat", Method::GET, &content).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/markdown; charset=utf-8");
        assert_eq!(r.text().await.unwrap(), "# Orders\n\nCall `GET /orders`.");
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.bin"),
        );
        assert_eq!(
            s.send(s.req("chris", Method::POST, &content).multipart(form)).await.0,
            400,
            "a Markdown document takes text"
        );

        // A file.
        let (_, file_doc) = s
            .call(
                "chris",
                Method::POST,
                &docs,
                Some(json!({"name": "Spec", "type": "OTHER", "otherTypeName": "Spec", "sourceType": "FILE"})),
            )
            .await;
        let file_content = format!("{docs}/{}/content", file_doc["documentId"].as_str().unwrap());
        let pdf = b"%PDF-1.4 not really".to_vec();
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(pdf.clone())
                .file_name("spec.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
        let (status, updated) = s
            .send(s.req("chris", Method::POST, &file_content).multipart(form))
            .await;
        assert_eq!((status, updated["fileName"].clone()), (201, json!("spec.pdf")));
        let r = s.req("pat", Method::GET, &file_content).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/pdf");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("spec.pdf")
        );
        assert_eq!(r.bytes().await.unwrap().to_vec(), pdf, "[{}] file bytes", s.engine);

        // A URL answers with a redirect.
        let (_, url_doc) = s.call("chris", Method::POST, &docs, Some(json!({"name": "Forum", "type": "PUBLIC_FORUM", "sourceType": "URL", "sourceUrl": "https://forum.example.com/orders"}))).await;
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = no_redirects
            .get(format!(
                "http://{}/api/am/publisher/v4{docs}/{}/content",
                s.addr,
                url_doc["documentId"].as_str().unwrap()
            ))
            .basic_auth("pat", Some("pat-password"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "https://forum.example.com/orders");

        // A PUT with bad fields changes nothing.
        let (status, body) = s
            .call(
                "chris",
                Method::PUT,
                &format!("{docs}/{md_id}"),
                Some(json!({"name": "", "type": "HOWTO", "sourceType": "FTP"})),
            )
            .await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["name".to_string(), "sourceType".to_string()])
        );
        let (status, body) = s
            .call(
                "chris",
                Method::PUT,
                &format!("{docs}/{md_id}"),
                Some(json!({"name": "Spec", "type": "HOWTO", "sourceType": "INLINE"})),
            )
            .await;
        assert_eq!(status, 409, "renaming onto another document's name: {body}");
        let (_, unchanged) = s.call("chris", Method::GET, &format!("{docs}/{md_id}"), None).await;
        assert_eq!(unchanged["name"], "Getting started");

        // Edit, list, delete; deleting the API removes its documents.
        let mut edited = md.clone();
        edited["summary"] = json!("Start here, edited");
        let (status, body) = s
            .call("chris", Method::PUT, &format!("{docs}/{md_id}"), Some(edited))
            .await;
        assert_eq!((status, body["summary"].clone()), (200, json!("Start here, edited")));
        let (_, list) = s.call("pat", Method::GET, &format!("{docs}?limit=2"), None).await;
        assert_eq!(list["pagination"]["total"], 3);
        assert_eq!(list["count"], 2);
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("{docs}/{md_id}"), None)
                .await
                .0,
            200
        );
        assert_eq!(
            s.call("chris", Method::GET, &format!("{docs}/{md_id}"), None).await.0,
            404
        );
        assert_eq!(
            s.call("chris", Method::DELETE, &format!("/apis/{api}"), None).await.0,
            200
        );
        let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
            .await
            .unwrap();
        let (left, _) = tollgate_store::documents::list(&shared, TenantId::DEFAULT, &api, 0, 10)
            .await
            .unwrap();
        assert!(left.is_empty(), "[{}] documents outlived their API", s.engine);
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_locked_and_true_to_the_routes() {
    let generated = tollgate_publisher::api_doc::document_json();
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = tollgate_testkit::check_openapi_document(&generated, &snapshot);
    let typed: oas3::OpenApiV3Spec = oas3::from_json(&generated).expect("oas3 parses the document");
    assert!(typed.paths.as_ref().is_some_and(|p| p.len() >= 20));

    // Served by the API itself, without credentials.
    let db = tollgate_testkit::sqlite("pub_openapi");
    let s = start(&db, 5).await;
    let base = format!("http://{}/api/am/publisher/v4", s.addr);
    tollgate_testkit::check_served_openapi(&base, &generated).await;

    // Every documented operation exists: without credentials it is 401, never 404/405.
    let answers = tollgate_testkit::call_documented_operations(&base, &doc).await;
    assert_eq!(answers.len(), 43, "documented operations");
    for (method, path, status, _) in answers {
        assert_eq!(status, 401, "{method} {path} is documented but not routed");
    }
}

#[tokio::test]
async fn subscriptions_are_listed_blocked_and_unblocked() {
    use tollgate_store::subscriptions::{self, ApplicationRow};
    for db in all_engines("pub_subscriptions").await {
        let s = start(&db, 5).await;
        let api = s.create("Orders", "/orders", json!({"policies": ["Gold"]})).await;
        // The Developer Portal will create these; the store stands in for it here.
        let mut tx = s.am.begin().await.unwrap();
        let app = ApplicationRow {
            id: "app-1".into(),
            name: "Shop".into(),
            owner: "sam".into(),
            throttling_policy: "10PerMin".into(),
            description: Some("Sam's shop".into()),
            token_type: "JWT".into(),
            status: "APPROVED".into(),
            attributes: "{}".into(),
        };
        subscriptions::insert_application(&mut tx, TenantId::DEFAULT, &app, 1)
            .await
            .unwrap();
        subscriptions::insert(
            &mut tx,
            TenantId::DEFAULT,
            "sub-1",
            "app-1",
            &api,
            "Gold",
            "UNBLOCKED",
            2,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let seq = s.seq().await;

        let (status, list) = s
            .call("pat", Method::GET, &format!("/subscriptions?apiId={api}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(list["count"], 1);
        assert_eq!(list["list"][0]["applicationInfo"]["subscriber"], "sam");
        assert_eq!(list["list"][0]["subscriptionStatus"], "UNBLOCKED");
        assert_eq!(
            s.call("pat", Method::GET, "/subscriptions?apiId=nope", None).await.0,
            404
        );

        // Bad input and the wrong role change nothing.
        for (user, path, want) in [
            (
                "pat",
                "/subscriptions/block-subscription?subscriptionId=sub-1&blockState=FROZEN",
                400,
            ),
            ("pat", "/subscriptions/block-subscription?subscriptionId=sub-1", 400),
            (
                "pat",
                "/subscriptions/block-subscription?subscriptionId=nope&blockState=BLOCKED",
                404,
            ),
            (
                "chris",
                "/subscriptions/block-subscription?subscriptionId=sub-1&blockState=BLOCKED",
                403,
            ),
        ] {
            assert_eq!(s.call(user, Method::POST, path, None).await.0, want, "{user} {path}");
        }
        assert_eq!(s.seq().await, seq);

        let (status, body) = s
            .call(
                "pat",
                Method::POST,
                "/subscriptions/block-subscription?subscriptionId=sub-1&blockState=PROD_ONLY_BLOCKED",
                None,
            )
            .await;
        assert_eq!(
            (status, body["subscriptionStatus"].clone()),
            (200, json!("PROD_ONLY_BLOCKED"))
        );
        let (status, body) = s
            .call(
                "pat",
                Method::POST,
                "/subscriptions/unblock-subscription?subscriptionId=sub-1",
                None,
            )
            .await;
        assert_eq!((status, body["subscriptionStatus"].clone()), (200, json!("UNBLOCKED")));
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        assert_eq!(evs.len(), 2, "[{}]", s.engine);
        assert!(
            evs.iter()
                .all(|e| e.kind == tollgate_events::EventKind::SubscriptionUpserted)
        );
        assert_eq!(evs[0].payload["subscriptionStatus"], "PROD_ONLY_BLOCKED");

        // An API with subscriptions cannot be deleted.
        let (status, body) = s.call("chris", Method::DELETE, &format!("/apis/{api}"), None).await;
        assert_eq!(status, 409);
        assert!(
            body["description"].as_str().unwrap().contains("1 subscription"),
            "{body}"
        );
    }
}

/// Serves `body` at every path of a loopback HTTP server (404 for paths containing
/// "missing"); returns its base URL.
async fn serve_document(body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let reply = if request.contains("missing") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn import_by_url_is_guarded() {
    let base = serve_document(PETSTORE).await;
    let form = |url: &str| {
        reqwest::multipart::Form::new()
            .text("url", url.to_string())
            .text("additionalProperties", r#"{"context": "/pets"}"#)
    };
    // Default: loopback and private addresses are refused.
    let db = tollgate_testkit::sqlite("pub_url_default");
    let s = start(&db, 5).await;
    let (status, body) = s
        .send(
            s.req("chris", Method::POST, "/apis/import-openapi")
                .multipart(form(&format!("{base}/openapi.json"))),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["url"]);
    assert!(
        body["error"][0]["message"]
            .as_str()
            .unwrap()
            .contains("url_import_allow_private"),
        "{body}"
    );
    assert_eq!(s.api_count().await, 0);

    // Allowed by the operator (this server is started with url_import_allow_private).
    let db = tollgate_testkit::sqlite("pub_url_allowed");
    let s = start(&db, 4).await;
    let (status, api) = s
        .send(
            s.req("chris", Method::POST, "/apis/import-openapi")
                .multipart(form(&format!("{base}/openapi.json"))),
        )
        .await;
    assert_eq!(status, 201, "{api}");
    assert_eq!(api["operations"].as_array().unwrap().len(), 4);
    for (url, why) in [
        (format!("{base}/missing.json"), "404"),
        ("ftp://example.com/x.json".to_string(), "http"),
        ("not a url".to_string(), "not a URL"),
    ] {
        let (status, body) = s
            .send(
                s.req("chris", Method::POST, "/apis/import-openapi")
                    .multipart(form(&url)),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["error"][0]["message"].as_str().unwrap().contains(why),
            "{url}: {body}"
        );
    }
    let validate = reqwest::multipart::Form::new().text("url", format!("{base}/openapi.json"));
    let (status, body) = s
        .send(
            s.req("chris", Method::POST, "/apis/validate-openapi")
                .multipart(validate),
        )
        .await;
    assert_eq!((status, body["isValid"].clone()), (200, json!(true)));
    assert_eq!(s.api_count().await, 1);
}

#[tokio::test]
async fn concurrent_writers_of_one_api_do_not_lose_updates() {
    for db in all_engines("pub_concurrency").await {
        let s = start(&db, 5).await;
        let id = s.create("Orders", "/orders", json!({})).await;
        let seq = s.seq().await;
        // Eight publishers press "Publish" at once: one wins, the rest see it published.
        let path = format!("/apis/change-lifecycle?apiId={id}&action=Publish");
        let calls = (0..8).map(|_| s.call("pat", Method::POST, &path, None));
        let statuses: Vec<u16> = futures_join_all(calls).await.into_iter().map(|(st, _)| st).collect();
        assert_eq!(
            statuses.iter().filter(|st| **st == 200).count(),
            1,
            "[{}] {statuses:?}",
            s.engine
        );
        assert!(statuses.iter().all(|st| *st == 200 || *st == 400), "{statuses:?}");
        assert_eq!(
            events::read_since(&s.am, seq, 100).await.unwrap().len(),
            1,
            "[{}] one event",
            s.engine
        );

        // Two edits with the same If-Match: one wins, the other gets 412.
        let r = s
            .req("chris", Method::GET, &format!("/apis/{id}"))
            .send()
            .await
            .unwrap();
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        let put = |desc: &str| {
            let mut b = body.clone();
            b["description"] = json!(desc);
            s.send(
                s.req("chris", Method::PUT, &format!("/apis/{id}"))
                    .header("If-Match", &etag)
                    .json(&b),
            )
        };
        let (a, b) = tokio::join!(put("first"), put("second"));
        let mut got = [a.0, b.0];
        got.sort();
        assert_eq!(got, [200, 412], "[{}]", s.engine);
    }
}

async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Poll them together: start all, then await in order.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let results = std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out.len() <= i {
                out.resize_with(i + 1, || None);
            }
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    });
    results.await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// A definition whose responses document examples, for the mock tests.
const MOCKED_PETSTORE: &str = r##"{"openapi":"3.0.3","info":{"title":"Mocked","version":"1.0.0"},
  "paths":{"/pets":{"get":{"responses":{
      "200":{"content":{"application/json":{"example":[{"id":1,"name":"Rex"}],
                                            "examples":{"none":{"value":[]}}}}},
      "404":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}}}}},
    "/pets/{petId}":{"delete":{"responses":{"204":{"description":"gone"}}}}},
  "components":{"schemas":{"Error":{"type":"object","properties":{"code":{"type":"integer","example":404},
    "message":{"type":"string"}}}}}}"##;

#[tokio::test]
async fn endpoint_implementation_type_is_checked_and_mocks_are_generated_and_deployed() {
    for db in all_engines("pub_mocks").await {
        let s = start(&db, 5).await;
        let plain = s.create("Plain", "/plain", json!({})).await;
        let (_, got) = s.call("chris", Method::GET, &format!("/apis/{plain}"), None).await;
        assert_eq!(got["endpointImplementationType"], "ENDPOINT", "the default");
        let (count, seq) = (s.api_count().await, s.seq().await);

        // Bad values on create, update and import: 400 naming the field, nothing written.
        for bad in ["INLINE", "PROXY", ""] {
            let (status, body) = s
                .call(
                    "chris",
                    Method::POST,
                    "/apis",
                    Some(json!({"name": "Bad", "context": "/bad", "version": "1.0.0", "endpointImplementationType": bad})),
                )
                .await;
            assert_eq!(status, 400, "[{}] {bad}: {body}", s.engine);
            assert_eq!(fields(&body), ["endpointImplementationType"], "{body}");
            assert!(
                body["error"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("ENDPOINT, MOCKED_OAS"),
                "{body}"
            );
        }
        let (status, body) = s
            .call(
                "chris",
                Method::POST,
                "/apis",
                Some(json!({"name": "Bad", "context": "/bad", "version": "1.0.0", "endpointImplementationType": 5})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .starts_with("endpointImplementationType"),
            "{body}"
        );
        let mut edited = got.clone();
        edited["endpointImplementationType"] = json!("INLINE");
        let (status, body) = s
            .call("chris", Method::PUT, &format!("/apis/{plain}"), Some(edited))
            .await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["endpointImplementationType".to_string()]),
            "{body}"
        );
        let import = |props: &str| {
            let form = reqwest::multipart::Form::new()
                .text("inlineAPIDefinition", MOCKED_PETSTORE)
                .text("additionalProperties", props.to_string());
            s.req("chris", Method::POST, "/apis/import-openapi").multipart(form)
        };
        let (status, body) = s
            .send(import(
                r#"{"context": "/mocked", "endpointImplementationType": "INLINE"}"#,
            ))
            .await;
        assert_eq!(
            (status, fields(&body)),
            (400, vec!["endpointImplementationType".to_string()]),
            "{body}"
        );
        assert_eq!(s.api_count().await, count, "nothing created");
        assert_eq!(s.seq().await, seq, "no event");
        let (_, unchanged) = s.call("chris", Method::GET, &format!("/apis/{plain}"), None).await;
        assert_eq!(unchanged, got, "nothing changed");

        // MOCKED_OAS needs no endpointConfig, on update and import.
        let mut mocked = got.clone();
        mocked["endpointImplementationType"] = json!("MOCKED_OAS");
        mocked["endpointConfig"] = Value::Null;
        let (status, body) = s
            .call("chris", Method::PUT, &format!("/apis/{plain}"), Some(mocked))
            .await;
        assert_eq!(
            (status, &body["endpointImplementationType"]),
            (200, &json!("MOCKED_OAS")),
            "{body}"
        );
        let (status, api) = s
            .send(import(
                r#"{"context": "/mocked", "endpointImplementationType": "MOCKED_OAS"}"#,
            ))
            .await;
        assert_eq!(status, 201, "{api}");
        assert_eq!(api["endpointImplementationType"], "MOCKED_OAS");
        let id = api["id"].as_str().unwrap();

        // The generated mock responses, per operation.
        let (status, scripts) = s
            .call(
                "chris",
                Method::GET,
                &format!("/apis/{id}/generated-mock-scripts"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{scripts}");
        assert_eq!(scripts["count"], 2, "{scripts}");
        let script = |verb: &str, path: &str| -> Value {
            let entry = scripts["list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["verb"] == verb && e["path"] == path)
                .unwrap_or_else(|| panic!("{verb} {path} in {scripts}"));
            serde_json::from_str(entry["content"].as_str().unwrap()).unwrap()
        };
        let get = script("GET", "/pets");
        assert_eq!(get[0]["status"], 200);
        assert_eq!(get[0]["contentType"], "application/json");
        assert_eq!(get[0]["body"], r#"[{"id":1,"name":"Rex"}]"#);
        assert_eq!(get[0]["examples"][0], json!({"name": "none", "body": "[]"}));
        assert_eq!(get[1]["body"], r#"{"code":404,"message":"string"}"#, "from the schema");
        assert_eq!(
            script("DELETE", "/pets/{petId}")[0],
            json!({"code": "204", "status": 204})
        );
        let (status, doc) = s
            .call(
                "chris",
                Method::POST,
                &format!("/apis/{id}/generate-mock-scripts"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{doc}");
        let inline: Value =
            serde_json::from_str(doc["paths"]["/pets"]["get"]["x-mediation-script"].as_str().unwrap()).unwrap();
        assert_eq!(inline, get, "the same responses in the definition");
        let (_, stored) = s.call("chris", Method::GET, &format!("/apis/{id}/swagger"), None).await;
        assert!(
            stored["paths"]["/pets"]["get"].get("x-mediation-script").is_none(),
            "nothing stored"
        );

        // Unknown API, a subscriber, an API without a definition.
        for method in [Method::GET, Method::POST] {
            let path = if method == Method::GET {
                "generated-mock-scripts"
            } else {
                "generate-mock-scripts"
            };
            let (status, body) = s
                .call("chris", method.clone(), &format!("/apis/nope/{path}"), None)
                .await;
            assert_eq!(status, 404, "{body}");
            let (status, _) = s.call("sam", method.clone(), &format!("/apis/{id}/{path}"), None).await;
            assert_eq!(status, 403);
        }
        let mut tx = s.am.begin().await.unwrap();
        let mut bare = tollgate_store::apis::get_in(&mut tx, TenantId::DEFAULT, &plain)
            .await
            .unwrap()
            .unwrap();
        bare.definition = None;
        tollgate_store::apis::update(&mut tx, &bare).await.unwrap();
        tx.commit().await.unwrap();
        let (status, body) = s
            .call(
                "chris",
                Method::GET,
                &format!("/apis/{plain}/generated-mock-scripts"),
                None,
            )
            .await;
        assert_eq!(status, 404, "{body}");
        assert!(body["description"].as_str().unwrap().contains("definition"), "{body}");

        // A deployed revision carries the compiled mocks to gateways: in its event and in
        // the environment's snapshot.
        let seq = s.seq().await;
        let (_, rev) = s
            .call("pat", Method::POST, &format!("/apis/{id}/revisions"), Some(json!({})))
            .await;
        let rev_id = rev["id"].as_str().unwrap();
        let (status, _) = s
            .call(
                "pat",
                Method::POST,
                &format!("/apis/{id}/deploy-revision?revisionId={rev_id}"),
                Some(json!([{"name": "Default"}])),
            )
            .await;
        assert_eq!(status, 201);
        let evs = events::read_since(&s.am, seq, 10).await.unwrap();
        let deployed = evs
            .iter()
            .find(|e| e.kind == tollgate_events::EventKind::ApiRevisionDeployed)
            .unwrap();
        let mocks: Vec<tollgate_model::mock::OperationMock> =
            serde_json::from_value(deployed.payload["mocks"].clone()).unwrap();
        assert_eq!(mocks.len(), 2, "{}", deployed.payload);
        let snapshot = tollgate_store::snapshot::read(&s.am, "Default", tollgate_model::now_millis())
            .await
            .unwrap();
        let served = snapshot.apis.iter().find(|a| a.api_id == id).unwrap();
        assert_eq!(served.mocks, mocks, "the snapshot compiles the same answers");
    }
}
