//! The reference's main Publisher flow through REST on a real node, on SQLite and on
//! PostgreSQL: import an OpenAPI document, edit, publish, revise, deploy to two
//! environments, undeploy from one, restore, copy to a new version. Every step is
//! checked through GET and through the outbox rows it produced.

use crate::{READY, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tollgate_config::DatabaseConfig;
use tollgate_events::EventKind;
use tollgate_store::{Database, DatabaseName, events};

const PETSTORE: &str = include_str!("fixtures/petstore.yaml");

struct Rest {
    base: String,
    client: reqwest::Client,
}

impl Rest {
    fn new(mgmt: SocketAddr) -> Self {
        Self {
            base: format!("http://{mgmt}/api/am"),
            client: tollgate_testkit::http(),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth("admin", Some("test-admin-password"))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (s, b, _) = self.send(req).await;
        (s, b)
    }
}

/// Checks that the outbox rows after `seen` are exactly `want` (kind, environment), in
/// increasing sequence order, and moves `seen` past them.
async fn expect_events(am: &Database, seen: &mut i64, want: &[(EventKind, Option<&str>)], step: &str, engine: &str) {
    let got = events::read_since(am, *seen, 1000).await.unwrap();
    let kinds: Vec<(EventKind, Option<String>)> = got.iter().map(|e| (e.kind, e.environment.clone())).collect();
    let want: Vec<(EventKind, Option<String>)> = want.iter().map(|(k, e)| (*k, e.map(String::from))).collect();
    assert_eq!(kinds, want, "[{engine}] events after {step}");
    assert!(
        got.windows(2).all(|w| w[0].seq < w[1].seq),
        "[{engine}] sequences out of order"
    );
    if let Some(last) = got.last() {
        *seen = last.seq;
    }
}

async fn run_flow(mgmt: SocketAddr, am: Database, engine: &str) {
    let rest = Rest::new(mgmt);
    let mut seen = events::latest_seq(&am).await.unwrap();
    // 1. Validate a broken document: reported, nothing created.
    let form = reqwest::multipart::Form::new().text("inlineAPIDefinition", "openapi: 3.0.0\ninfo: {}\n");
    let (status, body, _) = rest
        .send(
            rest.req(Method::POST, "/publisher/v4/apis/validate-openapi")
                .multipart(form),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["isValid"], false, "{body}");

    // 2. Import the petstore.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(PETSTORE.as_bytes().to_vec()).file_name("petstore.yaml"),
        )
        .text(
            "additionalProperties",
            json!({"context": "/petstore", "policies": ["Gold", "Unlimited"]}).to_string(),
        );
    let (status, api, _) = rest
        .send(
            rest.req(Method::POST, "/publisher/v4/apis/import-openapi")
                .multipart(form),
        )
        .await;
    assert_eq!(status, 201, "[{engine}] import: {api}");
    let api_id = api["id"].as_str().unwrap().to_string();
    assert_eq!(api["name"], "Swagger Petstore");
    assert_eq!(api["version"], "1.0.0");
    assert_eq!(api["lifeCycleStatus"], "CREATED");
    assert_eq!(api["operations"].as_array().unwrap().len(), 5);
    assert_eq!(
        api["endpointConfig"]["production_endpoints"]["url"],
        "http://petstore.example.com/v1"
    );
    expect_events(&am, &mut seen, &[], "import", engine).await;

    // 3. Edit: GET, change, PUT with If-Match; a stale ETag is refused.
    let (_, mut body, headers) = rest
        .send(rest.req(Method::GET, &format!("/publisher/v4/apis/{api_id}")))
        .await;
    let etag = headers["etag"].to_str().unwrap().to_string();
    body["description"] = json!("Pets, edited.");
    body["operations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"target": "/owners", "verb": "GET", "authType": "None"}));
    let (status, edited, new_headers) = rest
        .send(
            rest.req(Method::PUT, &format!("/publisher/v4/apis/{api_id}"))
                .header("If-Match", &etag)
                .json(&body),
        )
        .await;
    assert_eq!(status, 200, "[{engine}] edit: {edited}");
    assert_eq!(edited["operations"].as_array().unwrap().len(), 6);
    assert_ne!(new_headers["etag"].to_str().unwrap(), etag);
    let (status, _, _) = rest
        .send(
            rest.req(Method::PUT, &format!("/publisher/v4/apis/{api_id}"))
                .header("If-Match", &etag)
                .json(&body),
        )
        .await;
    assert_eq!(status, 412);
    let (_, swagger) = rest
        .json(Method::GET, &format!("/publisher/v4/apis/{api_id}/swagger"), None)
        .await;
    assert!(
        swagger["paths"]["/owners"]["get"].is_object(),
        "definition follows the operations: {swagger}"
    );
    expect_events(&am, &mut seen, &[], "edit", engine).await;

    // 4. Publish; an illegal action is refused and names the allowed ones.
    let lc = |action: &str| {
        format!(
            "/publisher/v4/apis/change-lifecycle?apiId={api_id}&action={}",
            action.replace(' ', "%20")
        )
    };
    let (status, body) = rest.json(Method::POST, &lc("Publish"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lifecycleState"]["state"], "Published");
    let (status, body) = rest.json(Method::POST, &lc("Retire"), None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Block, Deprecate"),
        "{body}"
    );
    let (_, state) = rest
        .json(
            Method::GET,
            &format!("/publisher/v4/apis/{api_id}/lifecycle-state"),
            None,
        )
        .await;
    assert_eq!(state["state"], "Published");
    let (_, history) = rest
        .json(
            Method::GET,
            &format!("/publisher/v4/apis/{api_id}/lifecycle-history"),
            None,
        )
        .await;
    assert_eq!(history["count"], 2);
    expect_events(&am, &mut seen, &[(EventKind::ApiStateChanged, None)], "publish", engine).await;

    // 5. A revision, and a second gateway environment.
    let (status, rev1) = rest
        .json(
            Method::POST,
            &format!("/publisher/v4/apis/{api_id}/revisions"),
            Some(json!({"description": "first"})),
        )
        .await;
    assert_eq!(status, 201, "{rev1}");
    assert_eq!(rev1["displayName"], "Revision 1");
    let rev1_id = rev1["id"].as_str().unwrap().to_string();
    let (status, env) = rest
        .json(
            Method::POST,
            "/admin/v4/environments",
            Some(json!({"name": "internal", "displayName": "Internal", "type": "hybrid", "vhosts": [{"host": "internal.example.com", "httpPort": 8280}]})),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    expect_events(
        &am,
        &mut seen,
        &[(EventKind::EnvironmentChanged, Some("internal"))],
        "revision + environment",
        engine,
    )
    .await;

    // 6. Deploy to both environments; an unknown environment is refused, changing nothing.
    let deploy = format!("/publisher/v4/apis/{api_id}/deploy-revision?revisionId={rev1_id}");
    let (status, body) = rest
        .json(Method::POST, &deploy, Some(json!([{"name": "nowhere"}])))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"][0]["code"], "[0].name");
    let (status, body) = rest
        .json(
            Method::POST,
            &deploy,
            Some(json!([{"name": "Default", "displayOnDevportal": true}, {"name": "internal"}])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[1]["vhost"], "internal.example.com");
    expect_events(
        &am,
        &mut seen,
        &[
            (EventKind::ApiRevisionDeployed, Some("Default")),
            (EventKind::ApiRevisionDeployed, Some("internal")),
        ],
        "deploy",
        engine,
    )
    .await;
    // Deploying the same revision again changes nothing gateways see.
    let (status, _) = rest
        .json(Method::POST, &deploy, Some(json!([{"name": "Default"}])))
        .await;
    assert_eq!(status, 201);
    expect_events(&am, &mut seen, &[], "redeploy of the same revision", engine).await;

    // 7. Undeploy from one environment: the other keeps serving.
    let (status, body) = rest
        .json(
            Method::POST,
            &format!("/publisher/v4/apis/{api_id}/undeploy-revision?revisionId={rev1_id}"),
            Some(json!([{"name": "internal"}])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, deps) = rest
        .json(Method::GET, &format!("/publisher/v4/apis/{api_id}/deployments"), None)
        .await;
    let envs: Vec<&str> = deps["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["Default"], "[{engine}] undeploying internal touched Default");
    expect_events(
        &am,
        &mut seen,
        &[(EventKind::ApiRevisionUndeployed, Some("internal"))],
        "undeploy",
        engine,
    )
    .await;

    // 8. Edit, revise, then restore the first revision.
    let (_, mut body) = rest
        .json(Method::GET, &format!("/publisher/v4/apis/{api_id}"), None)
        .await;
    body["description"] = json!("Pets, edited twice.");
    let (status, _) = rest
        .json(Method::PUT, &format!("/publisher/v4/apis/{api_id}"), Some(body))
        .await;
    assert_eq!(status, 200);
    let (status, _) = rest
        .json(
            Method::POST,
            &format!("/publisher/v4/apis/{api_id}/revisions"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, restored) = rest
        .json(
            Method::POST,
            &format!("/publisher/v4/apis/{api_id}/restore-revision?revisionId={rev1_id}"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["description"], "Pets, edited.");
    assert_eq!(restored["lifeCycleStatus"], "PUBLISHED");
    let (_, revs) = rest
        .json(
            Method::GET,
            &format!("/publisher/v4/apis/{api_id}/revisions?query=deployed:true"),
            None,
        )
        .await;
    assert_eq!(revs["count"], 1);
    expect_events(&am, &mut seen, &[], "restore", engine).await;

    // 9. Copy to a new version.
    let (status, copy) = rest
        .json(
            Method::POST,
            &format!("/publisher/v4/apis/copy-api?apiId={api_id}&newVersion=2.0.0&defaultVersion=true"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["version"], "2.0.0");
    assert_eq!(copy["lifeCycleStatus"], "CREATED");
    assert_eq!(copy["isDefaultVersion"], true);
    assert_eq!(copy["context"], "/petstore");
    let copy_id = copy["id"].as_str().unwrap();
    let (_, swagger) = rest
        .json(Method::GET, &format!("/publisher/v4/apis/{copy_id}/swagger"), None)
        .await;
    assert_eq!(swagger["info"]["version"], "2.0.0");
    let (_, list) = rest
        .json(Method::GET, "/publisher/v4/apis?query=name:petstore", None)
        .await;
    assert_eq!(list["count"], 2);
    expect_events(&am, &mut seen, &[], "copy", engine).await;
    eprintln!("[{engine}] publisher main flow passed");
}

#[tokio::test]
async fn main_flow_on_sqlite() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;
    let url = format!("sqlite://{}/am.db", node.data_dir().display());
    let am = tollgate_store::connect(DatabaseName::Am, &url, &DatabaseConfig::default())
        .await
        .unwrap();
    run_flow(mgmt, am, "sqlite").await;
}

#[tokio::test]
async fn main_flow_on_postgres() {
    let Some((_node, mgmt, am, _dbs)) = crate::control_plane_on_postgres("e2e_flow").await else {
        return;
    };
    run_flow(mgmt, am, "postgres").await;
}
