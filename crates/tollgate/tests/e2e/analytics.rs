//! Analytics with real processes: two gateway nodes ship their API-call events to the
//! control plane's analytics component over node-to-node HTTP; after the flush interval
//! the analytics REST API reports exactly the calls the test made, per application,
//! status, error code and gateway environment, and each caller sees only what their role
//! allows. A gateway whose analytics component never answers keeps serving every call and
//! counts the events it drops. The first test runs on PostgreSQL (skipped, with the
//! reason printed, without it); the second on an all-in-one SQLite node.

use crate::distributed::{databases, on};
use crate::gateway_flow::{ADMIN, Client, DEV, backend, prepare, ready_node, standard_operations};
use crate::{READY, SECRET, tollgate};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tollgate_testkit::Node;

/// The resource every call goes to.
const PATH: &str = "/anpets/1.0.0/pets/1";

/// (application id or "", status, error code or 0) → calls.
type Tally = BTreeMap<(String, i64, i64), i64>;

/// A gateway node following the control plane at `cp` (its traffic manager `hub`) and
/// shipping analytics to it.
fn gateway(cp: std::net::SocketAddr, hub: std::net::SocketAddr, environment: &str) -> tollgate_testkit::NodeBuilder {
    tollgate()
        .args(["--profile", "gateway"])
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_CLUSTER__EVENT_HUB_URL", format!("http://{hub}"))
        .env("TOLLGATE_CLUSTER__KEY_MANAGER_URL", format!("http://{cp}"))
        .env("TOLLGATE_CLUSTER__ANALYTICS_URL", format!("http://{cp}"))
        .env("TOLLGATE_GATEWAY__ENVIRONMENT", environment)
}

/// Calls the API `n` times through `c` with `token`, adding what came back to `tally`
/// under `app` (the application the gateway attributes the call to).
async fn calls(c: &Client, token: &str, app: &str, n: usize, tally: &mut Tally) {
    for _ in 0..n {
        let (status, _, body) = c.call(Method::GET, PATH, Some(token)).await;
        let code = body["code"].as_i64().unwrap_or(0);
        let who = if status == 401 { "" } else { app };
        *tally.entry((who.to_string(), i64::from(status), code)).or_default() += 1;
    }
}

/// `GET /api/am/analytics/v1/usage?<query>` as `user`.
async fn usage(c: &Client, user: (&str, &str), query: &str) -> Value {
    let (status, body) = c
        .rest(user, Method::GET, &format!("/analytics/v1/usage?{query}"), None)
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

/// The answer's groups as (application, status, error code) → requests.
fn tally_of(answer: &Value) -> Tally {
    answer["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                (
                    g["applicationId"].as_str().unwrap_or("").to_string(),
                    g["status"].as_i64().unwrap(),
                    g["errorCode"].as_i64().unwrap(),
                ),
                g["requests"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_gateways_ship_calls_that_the_rest_api_reports_exactly() {
    let Some(dbs) = databases("analytics").await else {
        return;
    };
    let mut cp = on(&dbs, "control-plane")
        .env("TOLLGATE_ANALYTICS__FLUSH_INTERVAL", "1s")
        .spawn();
    let mgmt = cp.wait_ready(READY).await;
    let hub = cp.listener("traffic-manager");
    let mut gateways: Vec<Node> = ["Default", "Default"]
        .iter()
        .map(|env| gateway(mgmt, hub, env).spawn())
        .collect();
    let mut gws = Vec::new();
    let mut gw_mgmt = Vec::new();
    for g in &mut gateways {
        gw_mgmt.push(g.wait_ready(READY).await);
        gws.push(Client::new(mgmt, g.listener("gateway")));
    }
    let started = tollgate_model::rfc3339(tollgate_model::now_millis() - 60_000);
    prepare(&gws[0]).await;
    let backend = backend().await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});
    // `/ready` needs a token: a 200 there means the gateway holds the application's keys
    // and subscription, not only the API.
    let mut operations = standard_operations();
    operations
        .as_array_mut()
        .unwrap()
        .push(json!({"target": "/ready", "verb": "GET"}));
    let api = gws[0].deploy_api_with("AnPets", "/anpets", endpoint, operations).await;
    // Application B has a policy of 3 calls an hour: its later calls are throttled.
    let (status, body) = gws[0]
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/policies/application",
            Some(
                json!({"policyName": "Tiny", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                "requestCount": {"timeUnit": "hour", "unitTime": 1, "requestCount": 3}}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (app_b, ck, cs, _) = gws[0].app_with_keys_and_policy("AnAppB", "JWT", "Tiny").await;
    gws[0].subscribe_app(&app_b, &api).await;
    let token_b = gws[0].token(&ck, &cs).await;
    // A is set up last: once a gateway admits A's token it has applied every event
    // before it, B's keys and subscription among them (events apply in order). B's own
    // calls are not spent on probing, its quota is the point.
    let (app_a, _, _, token_a) = gws[0].subscribe(&api, "AnAppA").await;
    for (i, c) in gws.iter().enumerate() {
        let (status, body) = c.eventually("/anpets/1.0.0/ready", &token_a, |s, _| s == 200).await;
        assert_eq!(status, 200, "gateway {i} admits application A: {body}");
    }
    // The probes above went to /ready; the analytics of those calls are counted too, so
    // they are read back per resource below and left out of the tally.

    // The mix: successes of A on both gateways, B until it is throttled, bad tokens.
    let mut tally = Tally::new();
    calls(&gws[0], &token_a, &app_a, 4, &mut tally).await;
    calls(&gws[1], &token_a, &app_a, 3, &mut tally).await;
    calls(&gws[0], &token_b, &app_b, 3, &mut tally).await;
    calls(&gws[1], &token_b, &app_b, 3, &mut tally).await;
    calls(&gws[1], "not-a-token", "", 2, &mut tally).await;
    let total: i64 = tally.values().sum();
    assert!(tally.keys().any(|(_, s, _)| *s == 429), "B was throttled: {tally:?}");

    // Only /pets/{petId} is in the tally (the readiness probes went to /ready): group by
    // resource too and keep that one.
    let query = format!("from={started}&groupBy=resource,application,status,errorCode&apiId={api}&limit=1000");
    let deadline = Instant::now() + Duration::from_secs(30);
    let reported = loop {
        let answer = usage(&gws[0], ADMIN, &query).await;
        let only_pets: Tally = answer["list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["resource"] == "/pets/{petId}")
            .map(|g| {
                (
                    (
                        g["applicationId"].as_str().unwrap_or("").to_string(),
                        g["status"].as_i64().unwrap(),
                        g["errorCode"].as_i64().unwrap(),
                    ),
                    g["requests"].as_i64().unwrap(),
                )
            })
            .collect();
        if only_pets.values().sum::<i64>() >= total || Instant::now() > deadline {
            break only_pets;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(reported, tally, "the analytics REST API reports exactly the calls made");

    // Per environment and status class, over both gateways.
    let by_env = usage(
        &gws[0],
        ADMIN,
        &format!("from={started}&groupBy=environment&apiId={api}"),
    )
    .await;
    assert_eq!(by_env["list"][0]["environment"], "Default");
    let answered: i64 = by_env["list"][0]["requests"].as_i64().unwrap();
    assert!(answered >= total, "{by_env}");
    assert_eq!(
        by_env["list"][0]["throttled"].as_i64(),
        Some(tally.iter().filter(|((_, s, _), _)| *s == 429).map(|(_, n)| *n).sum()),
        "{by_env}"
    );
    assert!(by_env["list"][0]["gatewayLatencyMs"]["p99"].as_f64().is_some());

    // Every node exports its part in Prometheus' format: the control plane its REST
    // APIs, key manager, event hub, traffic manager, analytics and database pools; each
    // gateway its requests per API, latency and hub connection.
    let cp_metrics = tollgate_testkit::metrics_text(mgmt).await;
    for series in [
        "tollgate_management_http_requests_total{route=\"/api/am/publisher/v4/apis\"",
        "tollgate_management_http_request_duration_seconds_bucket{",
        "tollgate_key_manager_token_requests_total{outcome=\"issued\"}",
        "tollgate_hub_watches_opened_total",
        "tollgate_hub_events_streamed_total",
        "tollgate_trafficmanager_http_requests_total{",
        "tollgate_trafficmanager_throttle_syncs_total{outcome=\"ok\"}",
        "tollgate_analytics_events_received_total",
        "tollgate_analytics_rows_written_total",
        "tollgate_store_pool_connections{database=\"am\",state=\"open\"}",
        "tollgate_build_info{",
    ] {
        assert!(
            cp_metrics.contains(series),
            "control plane lacks {series}:\n{cp_metrics}"
        );
    }
    let gw_metrics = tollgate_testkit::metrics_text(gw_mgmt[0]).await;
    for series in [
        "tollgate_gateway_requests_total{api=\"AnPets:1.0.0\",status_class=\"2xx\"}",
        "tollgate_gateway_request_duration_seconds_bucket{",
        "tollgate_gateway_hub_connected 1",
        "tollgate_gateway_state_sequence",
    ] {
        assert!(gw_metrics.contains(series), "gateway lacks {series}:\n{gw_metrics}");
    }

    // A subscriber sees only their own applications; another sees none.
    let mine = tally_of(
        &usage(
            &gws[0],
            DEV,
            &format!("from={started}&groupBy=application,status,errorCode"),
        )
        .await,
    );
    assert!(
        mine.keys().all(|(app, _, _)| app == &app_a || app == &app_b),
        "{mine:?}"
    );
    let signup = gws[0]
        .http
        .post(format!("http://{mgmt}/api/am/devportal/v3/signup"))
        .json(&json!({"username": "stranger", "password": "stranger-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status().as_u16(), 201);
    let theirs = usage(&gws[0], ("stranger", "stranger-password"), &format!("from={started}")).await;
    assert_eq!(theirs["count"], 0, "{theirs}");

    // Bad parameters are named, and the ingest route is for cluster nodes only.
    let (status, body) = gws[0]
        .rest(
            ADMIN,
            Method::GET,
            "/analytics/v1/usage?groupBy=colour&from=yesterday",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(text.contains("groupBy") && text.contains("from"), "{body}");
    let r = gws[0]
        .http
        .post(format!("http://{mgmt}/internal/v1/analytics/events"))
        .json(&json!({"gatewayId": "x", "environment": "Default", "events": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = gws[0]
        .http
        .post(format!("http://{mgmt}/internal/v1/analytics/events"))
        .bearer_auth(SECRET)
        .json(&json!({"gatewayId": "x", "events": [{"status": "not a number"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a malformed batch is refused whole");
    drop(gateways);
}

#[tokio::test]
async fn a_gateway_whose_analytics_never_answer_still_serves_every_call() {
    // An analytics component that accepts connections and never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = backend().await;
    let (_node, c) = ready_node(
        tollgate()
            .env(
                "TOLLGATE_NODE__COMPONENTS",
                "publisher,devportal,admin,key-manager,traffic-manager,gateway",
            )
            .env("TOLLGATE_CLUSTER__SECRET", SECRET)
            .env(
                "TOLLGATE_CLUSTER__ANALYTICS_URL",
                format!("http://{}", black_hole.local_addr().unwrap()),
            )
            .env("TOLLGATE_GATEWAY__ANALYTICS_QUEUE", "20"),
    )
    .await;
    let (_, _, token) = c
        .subscribed(
            "HolePets",
            "/holepets",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    let (status, body) = c.eventually("/holepets/1.0.0/pets/1", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    let mut ok = 0;
    for _ in 0..300 {
        let (status, _, _) = c.call(Method::GET, "/holepets/1.0.0/pets/1", Some(&token)).await;
        ok += usize::from(status == 200);
    }
    assert_eq!(ok, 300, "every call is served while analytics cannot be shipped");
    let deadline = Instant::now() + Duration::from_secs(20);
    let dropped = loop {
        let text = tollgate_testkit::metrics_text(c.mgmt).await;
        let n = tollgate_testkit::metric_value(&text, "tollgate_gateway_analytics_dropped_total").unwrap_or(0.0);
        if n >= 250.0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        dropped >= 250.0,
        "the buffer holds 20 events (plus one shipment in flight); the rest are dropped and counted: {dropped}"
    );
}

#[tokio::test]
async fn the_analytics_log_can_be_written_in_the_reference_elk_shape() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("apim_metrics.log");
    let backend = backend().await;
    let (_node, c) = ready_node(
        tollgate()
            .env("TOLLGATE_GATEWAY__ANALYTICS_LOG", log.display().to_string())
            .env("TOLLGATE_GATEWAY__ANALYTICS_LOG_FORMAT", "elk"),
    )
    .await;
    let (api, app, token) = c
        .subscribed(
            "ElkPets",
            "/elkpets",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    let (status, body) = c.eventually("/elkpets/1.0.0/pets/1", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    // Calls made while the deployment was still on its way were logged as faults too; the
    // faulty line looked at is the one of the bad token below, written after the 200's.
    let wait_for = |needle: &'static str, from: usize| {
        let log = log.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.get(from..).is_some_and(|t| t.contains(needle)) {
                    break text;
                }
                assert!(
                    Instant::now() < deadline,
                    "no ELK `{needle}` line after byte {from}: {text}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let before_bad_call = wait_for("apim:response", 0).await.len();
    let _ = c.call(Method::GET, "/elkpets/1.0.0/pets/1", Some("not-a-token")).await;
    let text = wait_for("apim:faulty", before_bad_call).await;
    let properties = |kind: &str, from: usize| -> Value {
        let line = text[from..]
            .lines()
            .find(|l| l.contains(&format!("apimMetrics: {kind}, properties :")))
            .unwrap();
        serde_json::from_str(line.split_once("properties :").unwrap().1).unwrap()
    };
    let ok = properties("apim:response", 0);
    assert_eq!(ok["apiId"], api.as_str());
    assert_eq!(ok["apiName"], "ElkPets");
    assert_eq!(ok["apiResourceTemplate"], "/pets/{petId}");
    assert_eq!(ok["applicationId"], app.as_str());
    assert_eq!(
        ok["applicationName"], "ElkPets",
        "named from the gateway's runtime state"
    );
    assert_eq!(ok["applicationOwner"], DEV.0);
    assert_eq!(ok["proxyResponseCode"], 200);
    let faulty = properties("apim:faulty", before_bad_call);
    assert_eq!(
        (faulty["errorType"].as_str(), faulty["errorCode"].as_i64()),
        (Some("AUTH"), Some(900_901))
    );
}
