//! Profiles open only the databases their components use (docs/architecture.md, "The two
//! databases"), and distributed nodes share one PostgreSQL without racing.

use crate::{READY, SECRET, tollgate};
use tollgate_testkit::postgres;

#[tokio::test]
async fn gateway_profile_never_touches_its_databases() {
    // Both URLs (and the event hub) point at a host that cannot answer: the gateway must
    // not care about the databases, and says it has no state yet.
    let dir = tempfile::tempdir().unwrap();
    let mut node = tollgate()
        .args(["--profile", "gateway"])
        .data_dir(dir.path())
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_CLUSTER__EVENT_HUB_URL", "http://192.0.2.1:9611")
        .env("TOLLGATE_DATABASE__AM__URL", "postgres://tg@192.0.2.1:5432/am")
        .env("TOLLGATE_DATABASE__SHARED__URL", "postgres://tg@192.0.2.1:5432/shared")
        .spawn();
    let mgmt = node.listener("management");
    let mut live = 0;
    for _ in 0..200 {
        live = tollgate_testkit::get_json(format!("http://{mgmt}/health/live")).await.0;
        if live == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(live, 200);
    // Live answers while start-up runs; the gateway's part of readiness is reported from
    // the end of start-up on (marked by the migrations being applied): wait for it.
    let (mut status, mut ready) = (0, serde_json::Value::Null);
    for _ in 0..200 {
        (status, ready) = tollgate_testkit::get_json(format!("http://{mgmt}/health/ready")).await;
        if ready["migrations"] == "applied" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["migrations"], "applied", "{ready}");
    assert_eq!(
        status, 503,
        "no state from the hub and none persisted: not ready; {ready}"
    );
    assert_eq!(ready["components"], "gateway");
    assert_eq!(ready["databases"], serde_json::json!({}));
    assert_eq!(ready["gateway"]["state"], "loading state", "{ready}");
    assert_eq!(ready["gateway"]["hubConnected"], false, "{ready}");
    assert_eq!(ready["gateway"]["hub"], "http://192.0.2.1:9611", "{ready}");
    assert!(!node.output().contains("Database opened."), "{}", node.output());
    // The management listener serves no REST API on a gateway node.
    assert_eq!(
        tollgate_testkit::get_json(format!("http://{mgmt}/api/am/admin/v4/roles"))
            .await
            .0,
        404
    );
    let gw = node.listener("gateway");
    // This call once failed in CI without a trace of why: the error and the node's log
    // are printed together if it fails again.
    match tollgate_testkit::http()
        .get(format!("http://{gw}/anything"))
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 404, "{}", node.output()),
        Err(e) => panic!(
            "GET http://{gw}/anything failed: {e:?}; node output:\n{}",
            node.output()
        ),
    }
}

#[tokio::test]
async fn control_plane_and_traffic_manager_share_postgres_without_racing() {
    let Some(am) = postgres("e2e_cp_tm_am").await else {
        return;
    };
    let Some(shared) = postgres("e2e_cp_tm_shared").await else {
        return;
    };
    let start = |profile: &str| {
        tollgate()
            .args(["--profile", profile])
            .env("TOLLGATE_CLUSTER__SECRET", SECRET)
            .env("TOLLGATE_DATABASE__AM__URL", am.url())
            .env("TOLLGATE_DATABASE__SHARED__URL", shared.url())
            .spawn()
    };
    // Started together, so both race for the same fresh database's migrations.
    let mut cp = start("control-plane");
    let mut tm = start("traffic-manager");
    let cp_mgmt = cp.wait_ready(READY).await;
    let tm_mgmt = tm.wait_ready(READY).await;

    let cp_ready: serde_json::Value = tollgate_testkit::get_json(format!("http://{cp_mgmt}/health/ready"))
        .await
        .1;
    assert_eq!(cp_ready["databases"], serde_json::json!({"am": "ok", "shared": "ok"}));
    // The traffic manager uses the AM database only.
    let tm_ready: serde_json::Value = tollgate_testkit::get_json(format!("http://{tm_mgmt}/health/ready"))
        .await
        .1;
    assert_eq!(tm_ready["databases"], serde_json::json!({"am": "ok"}));
    eprintln!("[postgres] control-plane and traffic-manager both ready on PostgreSQL");

    // The control plane created the administrator in PostgreSQL.
    let client = tollgate_testkit::http();
    let r = client
        .get(format!("http://{cp_mgmt}/api/am/admin/v4/users/admin"))
        .basic_auth("admin", Some("test-admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Internal endpoints answer only with the cluster secret.
    let hub = tm.listener("traffic-manager");
    let url = format!("http://{hub}/internal/v1/events/latest");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 900902);
    let r = client
        .get(&url)
        .bearer_auth("not-the-secret-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client.get(&url).bearer_auth(SECRET).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    // The outbox already holds the default policies' events.
    let am_db = tollgate_store::connect(tollgate_store::DatabaseName::Am, am.url(), &Default::default())
        .await
        .unwrap();
    let latest = tollgate_store::events::latest_seq(&am_db).await.unwrap();
    assert!(latest > 0);
    assert_eq!(body["sequence"], latest);
}

#[tokio::test]
async fn key_manager_profile_opens_both_databases() {
    let Some(am) = postgres("e2e_km_am").await else { return };
    let mut node = tollgate()
        .args(["--profile", "key-manager"])
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_DATABASE__AM__URL", am.url())
        .env("TOLLGATE_DATABASE__SHARED__URL", am.url())
        .spawn();
    let mgmt = node.wait_ready(READY).await;
    let ready: serde_json::Value = tollgate_testkit::get_json(format!("http://{mgmt}/health/ready"))
        .await
        .1;
    assert_eq!(ready["databases"], serde_json::json!({"am": "ok", "shared": "ok"}));
}
