//! The distributed deployment patterns with real processes on PostgreSQL: gateways on
//! their own nodes follow the traffic manager's event hub over HTTP (snapshot + SSE
//! watch), survive control-plane outages from their persisted snapshot, catch up after a
//! stalled connection, and serve only their own gateway environment. Skipped, with the
//! reason printed, when no PostgreSQL server is reachable.

use crate::gateway_flow::{ADMIN, Client, backend, prepare, standard_operations};
use crate::{READY, SECRET, tollgate};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tollgate_testkit::{Node, NodeBuilder, TestDb};

/// The AM and shared databases of one test.
pub(crate) async fn databases(label: &str) -> Option<[TestDb; 2]> {
    let am = tollgate_testkit::postgres(&format!("{label}_am")).await?;
    let shared = tollgate_testkit::postgres(&format!("{label}_shared")).await?;
    Some([am, shared])
}

/// A node of `profile` on the test's databases, with the cluster secret.
pub(crate) fn on(dbs: &[TestDb; 2], profile: &str) -> NodeBuilder {
    tollgate()
        .args(["--profile", profile])
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_DATABASE__AM__URL", dbs[0].url())
        .env("TOLLGATE_DATABASE__SHARED__URL", dbs[1].url())
}

/// A free loopback port (bound, noted, released), for a node that must come back on the
/// same address after a restart.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The control plane without the traffic manager.
fn control_plane(dbs: &[TestDb; 2]) -> NodeBuilder {
    on(dbs, "control-plane").env("TOLLGATE_NODE__COMPONENTS", "publisher,devportal,admin,key-manager")
}

/// A traffic manager on a fixed port.
fn traffic_manager(dbs: &[TestDb; 2], port: u16) -> NodeBuilder {
    on(dbs, "traffic-manager").env("TOLLGATE_TRAFFIC_MANAGER__LISTEN", format!("127.0.0.1:{port}"))
}

/// A gateway node of `environment` following the hub at `hub`, persisting under `dir`
/// (opaque tokens go to the key manager at `key_manager_url`, when given).
fn gateway(hub: &str, environment: &str, dir: &Path) -> NodeBuilder {
    tollgate()
        .args(["--profile", "gateway"])
        .data_dir(dir)
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_CLUSTER__EVENT_HUB_URL", hub)
        .env("TOLLGATE_GATEWAY__ENVIRONMENT", environment)
}

/// Revokes `token` at the key manager.
async fn revoke(c: &Client, ck: &str, cs: &str, token: &str) {
    let r = c
        .http
        .post(format!("http://{}/oauth2/revoke", c.mgmt))
        .basic_auth(ck, Some(cs))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Undeploys every revision of `api` from `environment`.
async fn undeploy(c: &Client, api: &str, environment: &str) {
    let (status, revisions) = c
        .rest(
            ADMIN,
            reqwest::Method::GET,
            &format!("/publisher/v4/apis/{api}/revisions"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{revisions}");
    let rev = revisions["list"][0]["id"].as_str().unwrap();
    let (status, body) = c
        .rest(
            ADMIN,
            reqwest::Method::POST,
            &format!("/publisher/v4/apis/{api}/undeploy-revision?revisionId={rev}"),
            Some(json!([{ "name": environment }])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Asserts that `path` answers `expected` through every gateway (waiting for events).
async fn through_all(gateways: &[&Client], path: &str, token: &str, expected: u16) {
    for (i, c) in gateways.iter().enumerate() {
        let (status, body) = c.eventually(path, token, |s, _| s == expected).await;
        assert_eq!(status, expected, "gateway {i} at {}: {body}", c.gw);
    }
}

/// `/health/ready` of a node.
async fn ready(mgmt: SocketAddr) -> (u16, Value) {
    tollgate_testkit::get_json(format!("http://{mgmt}/health/ready")).await
}

/// The outbox's newest sequence, asked of the traffic manager.
async fn hub_sequence(tm: SocketAddr) -> i64 {
    let r = tollgate_testkit::http()
        .get(format!("http://{tm}/internal/v1/events/latest"))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["sequence"].as_i64().unwrap()
}

/// Waits until the gateway at `mgmt` holds sequence `seq`.
async fn wait_for_sequence(mgmt: SocketAddr, seq: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = ready(mgmt).await;
        if body["gateway"]["sequence"].as_i64() >= Some(seq) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sequences in a gateway's persisted event journal, in file order.
fn journal(dir: &Path, environment: &str) -> Vec<i64> {
    std::fs::read_to_string(dir.join("gateway").join(format!("{environment}.events.jsonl")))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_i64().unwrap())
        .collect()
}

/// Starts a control plane, a traffic manager on `tm_port` and two gateways; returns them
/// with a client per gateway and the gateways' data directories.
struct Cluster {
    cp: Node,
    tm: Node,
    gateways: Vec<Node>,
    dirs: Vec<tempfile::TempDir>,
    hub_url: String,
}

async fn cluster(dbs: &[TestDb; 2]) -> Cluster {
    let tm_port = free_port();
    let hub_url = format!("http://127.0.0.1:{tm_port}");
    let mut cp = control_plane(dbs).spawn();
    let mut tm = traffic_manager(dbs, tm_port).spawn();
    let cp_mgmt = cp.wait_ready(READY).await;
    tm.wait_ready(READY).await;
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut gateways: Vec<Node> = dirs
        .iter()
        .map(|d| {
            gateway(&hub_url, "Default", d.path())
                .env("TOLLGATE_CLUSTER__KEY_MANAGER_URL", format!("http://{cp_mgmt}"))
                .spawn()
        })
        .collect();
    for g in &mut gateways {
        g.wait_ready(READY).await;
    }
    Cluster {
        cp,
        tm,
        gateways,
        dirs,
        hub_url,
    }
}

#[tokio::test]
async fn two_gateways_follow_the_traffic_manager_and_catch_up_after_a_stall() {
    let Some(dbs) = databases("e2e_dist_flow").await else {
        return;
    };
    let mut k = cluster(&dbs).await;
    let mgmt = k.cp.listener("management");
    let tm = k.tm.listener("traffic-manager");
    let gws: Vec<Client> = k
        .gateways
        .iter_mut()
        .map(|g| Client::new(mgmt, g.listener("gateway")))
        .collect();
    let all: Vec<&Client> = gws.iter().collect();
    prepare(&gws[0]).await;
    let backend = backend().await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});

    // Publish, deploy, subscribe, get a token: both gateways serve it.
    let api = gws[0].deploy_api("DistPets", "/distpets", endpoint.clone()).await;
    let (_, ck, cs, token) = gws[0].subscribe(&api, "DistApp").await;
    through_all(&all, "/distpets/1.0.0/pets/1", &token, 200).await;
    // "Deployed" means served: both gateways report the revision.
    let deadline = Instant::now() + Duration::from_secs(15);
    let deployment = loop {
        let (status, deps) = gws[0]
            .rest(
                ADMIN,
                reqwest::Method::GET,
                &format!("/publisher/v4/apis/{api}/deployments"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{deps}");
        let d = deps["list"][0].clone();
        if d["deployedGatewayCount"] == 2 || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (
            &deployment["liveGatewayCount"],
            &deployment["deployedGatewayCount"],
            &deployment["failedGatewayCount"]
        ),
        (&json!(2), &json!(2), &json!(0)),
        "{deployment}"
    );

    // An opaque token (an OAUTH application) is introspected at the control plane's key
    // manager by both gateways.
    let (opaque_app, ock, ocs, _) = gws[0].app_with_keys_of_type("DistOpaque", "OAUTH").await;
    gws[0].subscribe_app(&opaque_app, &api).await;
    let opaque = gws[0].token(&ock, &ocs).await;
    assert_eq!(opaque.matches('.').count(), 0, "an opaque token, not a JWT: {opaque}");
    through_all(&all, "/distpets/1.0.0/pets/1", &opaque, 200).await;
    through_all(&all, "/distpets/1.0.0/pets/1", "not-a-token-anyone-issued", 401).await;

    // Gateway 0 stalls (SIGSTOP) while a token is revoked and another API is deployed;
    // gateway 1 follows at once, gateway 0 catches up when it resumes.
    k.gateways[0].signal(Signal::SIGSTOP);
    revoke(&gws[0], &ck, &cs, &token).await;
    let api2 = gws[0].deploy_api("DistBirds", "/distbirds", endpoint.clone()).await;
    let (_, _, _, token2) = gws[0].subscribe(&api2, "DistApp2").await;
    through_all(&[&gws[1]], "/distpets/1.0.0/pets/1", &token, 401).await;
    k.gateways[0].signal(Signal::SIGCONT);
    through_all(&all, "/distpets/1.0.0/pets/1", &token, 401).await;
    through_all(&all, "/distbirds/1.0.0/pets/1", &token2, 200).await;

    // Undeploy: both 404.
    undeploy(&gws[0], &api2, "Default").await;
    through_all(&all, "/distbirds/1.0.0/pets/1", &token2, 404).await;

    // Each gateway holds the hub's sequence, and applied every event in order, none missing.
    let latest = hub_sequence(tm).await;
    for (i, g) in k.gateways.iter_mut().enumerate() {
        let report = wait_for_sequence(g.listener("management"), latest).await;
        assert_eq!(report["gateway"]["sequence"], latest, "gateway {i}: {report}");
        assert_eq!(report["gateway"]["hubConnected"], true, "gateway {i}: {report}");
        let seqs = journal(k.dirs[i].path(), "Default");
        let first = *seqs.first().expect("events journaled");
        let expected: Vec<i64> = (first..=latest).collect();
        assert_eq!(seqs, expected, "gateway {i} journal: in order, none missing");
    }
}

#[tokio::test]
async fn gateways_keep_serving_through_a_control_plane_outage_and_restart_from_their_snapshot() {
    let Some(dbs) = databases("e2e_dist_outage").await else {
        return;
    };
    let mut k = cluster(&dbs).await;
    let mgmt = k.cp.listener("management");
    let tm_addr = k.tm.listener("traffic-manager");
    let gw_addrs: Vec<SocketAddr> = k.gateways.iter_mut().map(|g| g.listener("gateway")).collect();
    let c = Client::new(mgmt, gw_addrs[0]);
    prepare(&c).await;
    let backend = backend().await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});
    let api = c.deploy_api("OutPets", "/outpets", endpoint.clone()).await;
    let (_, _, _, token) = c.subscribe(&api, "OutApp").await;
    let gws: Vec<Client> = gw_addrs.iter().map(|gw| Client::new(mgmt, *gw)).collect();
    through_all(&gws.iter().collect::<Vec<_>>(), "/outpets/1.0.0/pets/1", &token, 200).await;

    // The control plane and the traffic manager die: both gateways keep serving.
    for node in [&mut k.cp, &mut k.tm] {
        node.signal(Signal::SIGKILL);
        node.wait_exit(READY);
    }
    for g in &gws {
        let (status, _, body) = g
            .call(reqwest::Method::GET, "/outpets/1.0.0/pets/1", Some(&token))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // One gateway restarts while they are down: it serves from its persisted snapshot.
    k.gateways[1].signal(Signal::SIGTERM);
    assert!(k.gateways[1].wait_exit(READY).success());
    let mut restarted = gateway(&k.hub_url, "Default", k.dirs[1].path()).spawn();
    let restarted_mgmt = restarted.wait_ready(READY).await;
    let (_, report) = ready(restarted_mgmt).await;
    assert_eq!(report["gateway"]["state"], "serving the persisted snapshot", "{report}");
    assert_eq!(report["gateway"]["hubConnected"], false, "{report}");
    let restarted_client = Client::new(mgmt, restarted.listener("gateway"));
    let (status, _, body) = restarted_client
        .call(reqwest::Method::GET, "/outpets/1.0.0/pets/1", Some(&token))
        .await;
    assert_eq!(status, 200, "served from the persisted snapshot: {body}");
    k.gateways[1] = restarted;

    // The control plane and the traffic manager come back (the hub on the same address):
    // a change made now reaches both gateways without restarting them.
    let mut cp = control_plane(&dbs).spawn();
    let mgmt = cp.wait_ready(READY).await;
    let mut tm = traffic_manager(&dbs, tm_addr.port()).spawn();
    tm.wait_ready(READY).await;
    let c = Client::new(mgmt, gw_addrs[0]);
    undeploy(&c, &api, "Default").await;
    let gws = [Client::new(mgmt, gw_addrs[0]), restarted_client];
    through_all(&gws.iter().collect::<Vec<_>>(), "/outpets/1.0.0/pets/1", &token, 404).await;
    let (_, report) = ready(restarted_mgmt).await;
    assert_eq!(report["gateway"]["state"], "state loaded", "{report}");
    assert_eq!(report["gateway"]["hubConnected"], true, "{report}");
    k.cp = cp;
    k.tm = tm;
}

#[tokio::test]
async fn two_all_in_one_nodes_on_one_database_serve_each_others_changes() {
    let Some(dbs) = databases("e2e_dist_active").await else {
        return;
    };
    let all_in_one = || {
        tollgate()
            .env("TOLLGATE_DATABASE__AM__URL", dbs[0].url())
            .env("TOLLGATE_DATABASE__SHARED__URL", dbs[1].url())
    };
    let mut a = all_in_one().spawn();
    let a_mgmt = a.wait_ready(READY).await;
    let mut b = all_in_one().spawn();
    b.wait_ready(READY).await;
    // Changes go through A; calls go through B's gateway.
    let c = Client::new(a_mgmt, b.listener("gateway"));
    prepare(&c).await;
    let backend = backend().await;
    let (_, _, token) = c
        .subscribed(
            "ActivePets",
            "/activepets",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    through_all(&[&c], "/activepets/1.0.0/pets/1", &token, 200).await;
}

#[tokio::test]
async fn an_api_deployed_to_the_internal_environment_is_not_served_by_the_external_gateway() {
    let Some(dbs) = databases("e2e_dist_envs").await else {
        return;
    };
    // Control plane with the traffic manager in it; one gateway per environment.
    let mut cp = on(&dbs, "control-plane").spawn();
    let mgmt = cp.wait_ready(READY).await;
    let hub = format!("http://{}", cp.listener("traffic-manager"));
    let c = Client::new(mgmt, mgmt);
    let (status, env) = c
        .rest(
            ADMIN,
            reqwest::Method::POST,
            "/admin/v4/environments",
            Some(json!({"name": "internal", "displayName": "Internal", "type": "hybrid",
                "vhosts": [{"host": "internal.example.com", "httpPort": 8280}]})),
        )
        .await;
    assert_eq!(status, 201, "{env}");
    let (dir_ext, dir_int) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut external = gateway(&hub, "Default", dir_ext.path()).spawn();
    // The internal gateway lists a dead hub first (HA): it moves on to the live one.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut internal = gateway(&format!("{dead},{hub}"), "internal", dir_int.path()).spawn();
    external.wait_ready(READY).await;
    internal.wait_ready(READY).await;
    let ext = Client::new(mgmt, external.listener("gateway"));
    let int = Client::new(mgmt, internal.listener("gateway"));
    prepare(&ext).await;

    let backend = backend().await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});
    let api = ext.deploy_api("EnvPets", "/envpets", endpoint).await;
    let (_, _, _, token) = ext.subscribe(&api, "EnvApp").await;
    through_all(&[&ext], "/envpets/1.0.0/pets/1", &token, 200).await;
    // Move it: deploy to internal, undeploy from Default.
    let (_, revisions) = ext
        .rest(
            ADMIN,
            reqwest::Method::GET,
            &format!("/publisher/v4/apis/{api}/revisions"),
            None,
        )
        .await;
    let rev = revisions["list"][0]["id"].as_str().unwrap();
    let (status, body) = ext
        .rest(
            ADMIN,
            reqwest::Method::POST,
            &format!("/publisher/v4/apis/{api}/deploy-revision?revisionId={rev}"),
            Some(json!([{"name": "internal"}])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    undeploy(&ext, &api, "Default").await;
    through_all(&[&int], "/envpets/1.0.0/pets/1", &token, 200).await;
    through_all(&[&ext], "/envpets/1.0.0/pets/1", &token, 404).await;
}
