//! The analytics REST API on a real server over SQLite (and PostgreSQL when reachable):
//! what each role sees of the same stored calls, bad parameters named, and the OpenAPI
//! document true to the routes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tollgate_analytics::{Aggregator, AnalyticsState, Retention, flush::flush_once, routes};
use tollgate_config::DatabaseConfig;
use tollgate_http::Authenticator;
use tollgate_http::cluster::ClusterSecret;
use tollgate_model::analytics::{UsageBatch, UsageEvent};
use tollgate_model::{NewUser, Role, TenantId};
use tollgate_store::{DatabaseName, connect, users};
use tollgate_testkit::{RunningServer, TestDb, all_engines};

const RETENTION: Retention = Retention {
    minute: Duration::from_secs(2 * 86_400),
    hour: Duration::from_secs(90 * 86_400),
    day: Duration::from_secs(1000 * 86_400),
};

/// The analytics routes over `db`, users root (admin), pia (creator), ann and bob
/// (subscribers), and calls from ann's application `app-ann` and from `app-other`.
async fn start(db: &TestDb) -> RunningServer {
    start_with(db, no_setup).await
}

fn no_setup<'a>(
    _: &'a tollgate_store::Database,
    _: &'a tollgate_store::Database,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<UsageEvent>> + Send + 'a>> {
    Box::pin(async { Vec::new() })
}

/// Extra setup before the calls are counted: given the shared and AM databases, the
/// further calls to count.
type Setup = for<'a> fn(
    &'a tollgate_store::Database,
    &'a tollgate_store::Database,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<UsageEvent>> + Send + 'a>>;

/// As [`start`], with `setup` run before the calls are counted and its calls added.
async fn start_with(db: &TestDb, setup: Setup) -> RunningServer {
    let shared = connect(DatabaseName::Shared, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    shared.migrate().await.unwrap();
    for (name, role) in [
        ("root", Role::Admin),
        ("pia", Role::Creator),
        ("ann", Role::Subscriber),
        ("bob", Role::Subscriber),
    ] {
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
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    // ann's application, as the Developer Portal stores it.
    let mut tx = am.begin().await.unwrap();
    tollgate_store::applications::insert(
        &mut tx,
        TenantId::DEFAULT,
        &tollgate_store::applications::ApplicationRow {
            id: "app-ann".into(),
            name: "Ann's shop".into(),
            owner: "ann".into(),
            throttling_policy: "Unlimited".into(),
            description: None,
            token_type: "JWT".into(),
            status: "APPROVED".into(),
            attributes: "{}".into(),
        },
        0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let aggregator = Arc::new(Aggregator::new(1000));
    let now = tollgate_model::now_millis();
    let event = |app: &str, status: u16| UsageEvent {
        timestamp: now - 60_000,
        api_id: "api-1".into(),
        api: "Pets".into(),
        api_version: "1.0".into(),
        resource: "/pets".into(),
        method: "GET".into(),
        application_id: Some(app.into()),
        status,
        gateway_latency_ms: 2.0,
        ..UsageEvent::default()
    };
    let mut events = vec![event("app-ann", 200), event("app-ann", 429), event("app-other", 200)];
    events.extend(setup(&shared, &am).await);
    aggregator.add(&UsageBatch {
        gateway_id: "g".into(),
        environment: "Default".into(),
        events,
    });
    flush_once(&aggregator, &am).await.unwrap();
    let app = tollgate_http::rest_layers(
        routes(AnalyticsState {
            am,
            aggregator,
            authenticator: Authenticator::new(shared),
            cluster_secret: ClusterSecret::new(None),
            retention: RETENTION,
        }),
        64 * 1024,
    );
    tollgate_testkit::serve(app).await
}

async fn get(server: &RunningServer, user: &str, query: &str) -> (u16, Value) {
    let r = tollgate_testkit::http()
        .get(format!("http://{}/api/am/analytics/v1/usage?{query}", server.addr))
        .basic_auth(user, Some(format!("{user}-password")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn requests(answer: &Value) -> i64 {
    answer["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["requests"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn each_role_sees_its_share_and_bad_parameters_are_named() {
    for t in all_engines("analytics_rest").await {
        let s = start(&t).await;
        let (status, all) = get(&s, "root", "groupBy=application").await;
        assert_eq!(status, 200, "{all}");
        assert_eq!(requests(&all), 3, "the administrator sees every call: {all}");
        let names: Vec<_> = all["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["applicationName"].clone())
            .collect();
        assert!(names.contains(&Value::from("Ann's shop")), "{all}");
        let (_, ann) = get(&s, "ann", "groupBy=application,status").await;
        assert_eq!(requests(&ann), 2, "ann sees her application's calls only: {ann}");
        assert!(
            ann["list"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["applicationId"] == "app-ann")
        );
        let (_, bob) = get(&s, "bob", "").await;
        assert_eq!(bob["count"], 0, "bob owns no application: {bob}");
        // The creator sees calls to the tenant's APIs; none is stored in this test.
        let (status, pia) = get(&s, "pia", "").await;
        assert_eq!((status, pia["count"].clone()), (200, Value::from(0)), "{pia}");
        let (_, totals) = get(&s, "root", "").await;
        assert_eq!(totals["list"][0]["throttled"], 1, "{totals}");
        assert_eq!(totals["granularity"], "minute");

        for (query, field) in [
            ("groupBy=colour", "groupBy"),
            ("from=yesterday", "from"),
            ("granularity=week", "granularity"),
            ("limit=0", "limit"),
            ("from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", "from"),
        ] {
            let (status, body) = get(&s, "root", query).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert!(body.to_string().contains(field), "{query} names {field}: {body}");
        }
        let r = tollgate_testkit::http()
            .get(format!("http://{}/api/am/analytics/v1/usage", s.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{}", t.engine());
    }
}

#[tokio::test]
async fn the_openapi_document_is_valid_locked_and_true_to_the_routes() {
    let generated = tollgate_analytics::api_doc::document_json();
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let doc = tollgate_testkit::check_openapi_document(&generated, &snapshot);
    oas3::from_json(&generated).expect("oas3 parses the document");
    let db = tollgate_testkit::sqlite("analytics_openapi");
    let s = start(&db).await;
    let base = format!("http://{}/api/am/analytics/v1", s.addr);
    tollgate_testkit::check_served_openapi(&base, &generated).await;
    let answers = tollgate_testkit::call_documented_operations(&base, &doc).await;
    assert_eq!(answers.len(), 1, "documented operations");
    for (method, path, status, _) in answers {
        assert_eq!(status, 401, "{method} {path} is documented but not routed");
    }
}

/// Tenants `acme.com` (administrator `boss`) and `globex.com`, an API in each, and calls:
/// 2 to acme's API, 3 to globex's (besides the 3 of [`start`], to an API id no tenant
/// has).
fn two_tenants<'a>(
    shared: &'a tollgate_store::Database,
    am: &'a tollgate_store::Database,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<UsageEvent>> + Send + 'a>> {
    Box::pin(async move {
        let mut events = Vec::new();
        for (domain, calls) in [("acme.com", 2), ("globex.com", 3)] {
            let (tenant, _) = tollgate_store::tenants::create(
                shared,
                tollgate_store::tenants::NewTenant {
                    domain: domain.into(),
                    name: String::new(),
                    admin_username: "boss".into(),
                    admin_password: "boss-password".into(),
                    admin_email: None,
                },
            )
            .await
            .unwrap();
            tollgate_store::tenants::provision(am, &tenant).await.unwrap();
            let api_id = format!("api-{domain}");
            let api: tollgate_model::Api = serde_json::from_value(serde_json::json!({
                "name": "Pets", "context": "/pets", "version": "1.0.0"}))
            .unwrap();
            let mut tx = am.begin().await.unwrap();
            tollgate_store::apis::insert(
                &mut tx,
                &tollgate_store::apis::StoredApi {
                    id: api_id.clone(),
                    tenant_id: tenant.id,
                    api,
                    definition: None,
                    revision_counter: 0,
                    created_at: 0,
                    updated_at: 0,
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            let now = tollgate_model::now_millis();
            events.extend((0..calls).map(|_| UsageEvent {
                timestamp: now - 60_000,
                api_id: api_id.clone(),
                api: "Pets".into(),
                api_version: "1.0.0".into(),
                resource: "/pets".into(),
                method: "GET".into(),
                status: 200,
                gateway_latency_ms: 1.0,
                ..UsageEvent::default()
            }));
        }
        events
    })
}

#[tokio::test]
async fn a_tenants_administrator_sees_the_tenant_and_the_platform_sees_each_tenant() {
    for t in all_engines("analytics_tenants").await {
        let e = t.engine();
        let s = start_with(&t, two_tenants).await;
        let get_as = |user: &'static str, password: &'static str, query: &'static str| {
            let url = format!("http://{}/api/am/analytics/v1/usage?{query}", s.addr);
            async move {
                let r = tollgate_testkit::http()
                    .get(url)
                    .basic_auth(user, Some(password))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (status, all) = get(&s, "root", "").await;
        assert_eq!((status, requests(&all)), (200, 8), "[{e}] the platform: {all}");
        let (status, per) = get(&s, "root", "groupBy=tenant").await;
        assert_eq!(status, 200, "[{e}] {per}");
        assert_eq!(per["groupBy"], serde_json::json!(["tenant"]), "[{e}] {per}");
        let shares: Vec<(String, i64)> = per["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["tenant"].as_str().unwrap().to_string(),
                    g["requests"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shares,
            [("globex.com".to_string(), 3), ("acme.com".to_string(), 2)],
            "[{e}] busiest first; calls to no tenant's API are only in the platform's totals: {per}"
        );
        let (status, by_api) = get(&s, "root", "groupBy=tenant,api&limit=1").await;
        assert_eq!(status, 200, "[{e}] {by_api}");
        assert_eq!(by_api["count"], 1, "[{e}] the limit holds across tenants: {by_api}");
        assert_eq!(by_api["list"][0]["apiId"], "api-globex.com", "[{e}] {by_api}");

        // A tenant's administrator: the tenant's calls only, and no comparison.
        let (status, acme) = get_as("boss@acme.com", "boss-password", "groupBy=api").await;
        assert_eq!((status, requests(&acme)), (200, 2), "[{e}] {acme}");
        assert!(
            acme.to_string().contains("api-acme.com") && !acme.to_string().contains("globex"),
            "[{e}] {acme}"
        );
        let (status, other) = get_as("boss@acme.com", "boss-password", "apiId=api-globex.com").await;
        assert_eq!((status, other["count"].clone()), (200, Value::from(0)), "[{e}] {other}");
        let (status, refused) = get_as("boss@acme.com", "boss-password", "groupBy=tenant").await;
        assert_eq!(status, 403, "[{e}] {refused}");
        assert!(
            refused.to_string().contains("acme.com"),
            "[{e}] says whose view it is: {refused}"
        );
        let (status, bad) = get(&s, "root", "groupBy=tenant,tenants").await;
        assert_eq!(status, 400, "[{e}] {bad}");
        assert!(bad.to_string().contains("or tenant"), "[{e}] {bad}");
    }
}
