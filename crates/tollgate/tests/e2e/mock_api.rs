//! Mocked APIs (`endpointImplementationType: MOCKED_OAS`) through an all-in-one node's
//! gateway: an OpenAPI 3.0 and a Swagger 2.0 document imported as mocked APIs, published,
//! deployed and subscribed to, are answered by the gateway from their examples and
//! schemas, with no backend anywhere. `Prefer` picks another documented response; the
//! calls are authenticated and throttled as proxied ones are.

use crate::gateway_flow::{ADMIN, Client, node_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PETSTORE: &str = include_str!("fixtures/mock-petstore.yaml");
const ORDERS: &str = include_str!("fixtures/mock-orders-swagger.json");

/// Imports `document` as a mocked API with the other API fields in `props`, publishes it
/// and deploys a revision to Default; its id.
async fn import_mocked(c: &Client, document: &str, file_name: &str, mut props: Value) -> String {
    props["endpointImplementationType"] = json!("MOCKED_OAS");
    props["policies"] = json!(["Gold"]);
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(document.as_bytes().to_vec()).file_name(file_name.to_string()),
        )
        .text("additionalProperties", props.to_string());
    let r = c
        .http
        .post(format!("http://{}/api/am/publisher/v4/apis/import-openapi", c.mgmt))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let api: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{api}");
    assert_eq!(api["endpointImplementationType"], "MOCKED_OAS");
    let id = api["id"].as_str().unwrap().to_string();
    c.publish_and_deploy(&id).await;
    id
}

/// A call through the gateway: status, headers and the body as text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn call(c: &Client, method: Method, path: &str, token: Option<&str>, prefer: Option<&str>) -> Answer {
    let mut req = c.http.request(method, format!("http://{}{path}", c.gw));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(p) = prefer {
        req = req.header("prefer", p);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

/// Calls `path` until the gateway serves it (the deployment's event has arrived).
async fn until_served(c: &Client, path: &str, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = call(c, Method::GET, path, Some(token), None).await;
        if a.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{path} not served: {} {}", a.status, a.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts a call's status, content type and JSON body (or, for non-JSON types, text).
fn assert_answer(a: &Answer, status: u16, content_type: Option<&str>, body: Value, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert_eq!(a.header("content-type"), content_type, "{what}");
    match body {
        Value::Null => assert_eq!(a.body, "", "{what}: no body"),
        Value::String(text) if content_type.is_some_and(|c| !c.contains("json")) => assert_eq!(a.body, text, "{what}"),
        json => assert_eq!(a.json(), json, "{what}"),
    }
    assert!(a.header("x-backend").is_none());
}

#[tokio::test]
async fn mocked_apis_answer_their_documented_examples_through_the_gateway() {
    let (_node, c) = node_with(&[]).await;
    // An API-level policy for the throttling check: 3 calls per 5 s.
    let (status, body) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/policies/advanced",
            Some(
                json!({"policyName": "MockThree", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                "requestCount": {"timeUnit": "sec", "unitTime": 5, "requestCount": 3}}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let pets = import_mocked(&c, PETSTORE, "mock-petstore.yaml", json!({"context": "/mockpets"})).await;
    let orders = import_mocked(
        &c,
        ORDERS,
        "mock-orders-swagger.json",
        json!({"context": "/mockorders", "apiThrottlingPolicy": "MockThree"}),
    )
    .await;
    let (app, ck, cs, _) = c.app_with_keys("MockApp").await;
    c.subscribe_app(&app, &pets).await;
    c.subscribe_app(&app, &orders).await;
    let token = c.token(&ck, &cs).await;
    let t = Some(token.as_str());
    until_served(&c, "/mockpets/1.0.0/health", &token).await;

    // Every documented operation of the OpenAPI 3.0 document: its default response.
    let json_type = Some("application/json");
    for (method, path, status, content_type, body) in [
        (
            Method::GET,
            "/mockpets/1.0.0/pets",
            200,
            json_type,
            json!([{"id": 1, "name": "Rex"}, {"id": 2, "name": "Tom"}]),
        ),
        (
            Method::POST,
            "/mockpets/1.0.0/pets",
            201,
            json_type,
            json!({"name": "Rex", "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "born": "2024-01-01", "tags": ["small"]}),
        ),
        (
            Method::GET,
            "/mockpets/1.0.0/pets/7",
            200,
            json_type,
            json!({"id": 1, "name": "Rex"}),
        ),
        (Method::DELETE, "/mockpets/1.0.0/pets/7", 204, None, Value::Null),
        (
            Method::GET,
            "/mockpets/1.0.0/health",
            200,
            Some("text/plain"),
            json!("OK"),
        ),
    ] {
        let what = format!("{method} {path}");
        let a = call(&c, method, path, t, None).await;
        assert_answer(&a, status, content_type, body, &what);
        assert!(a.header("preference-applied").is_none(), "{what}");
    }

    // Prefer: another status, a named example, both; an unsatisfiable one is ignored.
    let a = call(&c, Method::GET, "/mockpets/1.0.0/pets/7", t, Some("code=404")).await;
    assert_answer(
        &a,
        404,
        Some("application/problem+json"),
        json!({"title": "Not Found", "status": 404}),
        "code=404",
    );
    assert_eq!(a.header("preference-applied"), Some("code=404"));
    let a = call(&c, Method::GET, "/mockpets/1.0.0/pets", t, Some("example=empty")).await;
    assert_answer(&a, 200, json_type, json!([]), "example=empty");
    assert_eq!(a.header("preference-applied"), Some("example=empty"));
    let a = call(
        &c,
        Method::GET,
        "/mockpets/1.0.0/pets",
        t,
        Some("code=400, example=bad"),
    )
    .await;
    assert_answer(&a, 400, json_type, json!({"code": 400, "message": "bad query"}), "both");
    assert_eq!(a.header("preference-applied"), Some("code=400, example=bad"));
    for unsatisfiable in ["code=418", "example=nope"] {
        let a = call(&c, Method::GET, "/mockpets/1.0.0/pets/7", t, Some(unsatisfiable)).await;
        assert_answer(&a, 200, json_type, json!({"id": 1, "name": "Rex"}), unsatisfiable);
        assert!(a.header("preference-applied").is_none(), "{unsatisfiable}");
    }

    // Authentication applies as for any API: no token, a bad token.
    let a = call(&c, Method::GET, "/mockpets/1.0.0/pets", None, None).await;
    assert_eq!(
        (a.status, a.json()["code"].clone()),
        (401, json!(900_902)),
        "{}",
        a.body
    );
    let a = call(&c, Method::GET, "/mockpets/1.0.0/pets", Some("not-a-token"), None).await;
    assert_eq!(a.status, 401, "{}", a.body);
    // An undocumented method is not a resource.
    let a = call(&c, Method::PATCH, "/mockpets/1.0.0/pets", t, None).await;
    assert_eq!(a.status, 405, "{}", a.body);

    // The Swagger 2.0 document, in a fresh window of its API-level policy (3 per 5 s)
    // after an empty one: its examples, a response generated from a schema, Prefer, and
    // then the fourth call is throttled.
    until_served(&c, "/mockorders/1.0.0/orders/o-1", &token).await;
    next_window(5).await;
    next_window(5).await;
    let a = call(&c, Method::GET, "/mockorders/1.0.0/orders/o-1", t, None).await;
    assert_answer(
        &a,
        200,
        json_type,
        json!({"id": "o-1", "total": 12.5, "paid": false}),
        "2.0 example",
    );
    assert_eq!(a.header("x-ratelimit-remaining"), Some("2"), "counted as any call");
    let a = call(&c, Method::POST, "/mockorders/1.0.0/orders", t, None).await;
    assert_answer(
        &a,
        201,
        json_type,
        json!({"id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "total": 0, "paid": true}),
        "2.0 schema",
    );
    let a = call(&c, Method::GET, "/mockorders/1.0.0/orders/o-9", t, Some("code=404")).await;
    assert_answer(
        &a,
        404,
        json_type,
        json!({"code": 404, "message": "no such order"}),
        "2.0 code=404",
    );
    assert_eq!(a.header("preference-applied"), Some("code=404"));
    let a = call(&c, Method::GET, "/mockorders/1.0.0/orders/o-1", t, None).await;
    assert_eq!(
        (a.status, a.json()["code"].clone()),
        (429, json!(900_800)),
        "{}",
        a.body
    );
}

/// Sleeps until 50 ms into the next window of `seconds` seconds (aligned to the epoch).
async fn next_window(seconds: u64) {
    let now = tollgate_model::now_millis() as u64;
    let len = seconds * 1000;
    tokio::time::sleep(Duration::from_millis(len - now % len + 50)).await;
}
