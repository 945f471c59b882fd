//! Distributed throttling with real processes on PostgreSQL: three gateway nodes share
//! each limit through the traffic manager (or two traffic managers sharing Redis), so the
//! cluster admits the limit per window and not a multiple of it; a deny policy reaches
//! every gateway within a second; and while the traffic manager is down each gateway
//! falls back to its local share (or refuses, `fail_closed`), resuming shared limits
//! when it comes back. Skipped, with the reason printed, when PostgreSQL (or, for the
//! Redis test, Redis) is not reachable.

use crate::distributed::{databases, free_port, on};
use crate::gateway_flow::{ADMIN, Client, backend, prepare, standard_operations};
use crate::{READY, SECRET, tollgate};
use nix::sys::signal::Signal;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tollgate_model::now_millis;
use tollgate_testkit::{Node, NodeBuilder, RunningServer, TestDb};

/// The resource every test calls.
const PATH: &str = "/tdpets/1.0.0/pets/1";

/// Codes of the refusals.
const QUOTA: i64 = 900_804;
const BURST: i64 = 900_807;
const DENIED: i64 = 900_805;

/// A traffic manager on `port`, with its counters in Redis at `redis` when given.
fn traffic_manager(dbs: &[TestDb; 2], port: u16, redis: Option<&str>) -> NodeBuilder {
    let tm = on(dbs, "traffic-manager").env("TOLLGATE_TRAFFIC_MANAGER__LISTEN", format!("127.0.0.1:{port}"));
    match redis {
        Some(url) => tm.env("TOLLGATE_TRAFFIC_MANAGER__REDIS_URL", url),
        None => tm,
    }
}

/// `/health/ready` of a node (the body whatever the status).
async fn ready(mgmt: SocketAddr) -> Value {
    tollgate_testkit::get_json(format!("http://{mgmt}/health/ready"))
        .await
        .1
}

/// The throttling part of a gateway node's readiness report.
async fn throttling(mgmt: SocketAddr) -> Value {
    ready(mgmt).await["gateway"]["throttling"].clone()
}

/// Polls every gateway's readiness until its throttling mode is `modes[i]` (sending a
/// call through each meanwhile, so that it syncs), for up to `limit`; returns how long
/// each took, from `since`.
async fn wait_for_modes(k: &Cluster, modes: [&str; 3], since: Instant, limit: Duration) -> Vec<Duration> {
    let mut took: Vec<Option<Duration>> = vec![None; 3];
    while took.iter().any(Option::is_none) && since.elapsed() < limit + Duration::from_secs(10) {
        for i in 0..3 {
            if took[i].is_none() {
                let _ = k.call(i).await;
                if throttling(k.gw_mgmt[i]).await["mode"] == modes[i] {
                    took[i] = Some(since.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut out = Vec::new();
    for (i, t) in took.into_iter().enumerate() {
        let report = throttling(k.gw_mgmt[i]).await;
        let t = t.unwrap_or_else(|| panic!("gateway {i} never reported mode {}: {report}", modes[i]));
        assert!(
            t <= limit,
            "gateway {i} took {t:?} (more than {limit:?}) to report {}: {report}",
            modes[i]
        );
        out.push(t);
    }
    out
}

/// Sleeps until the epoch millisecond `at`.
async fn sleep_until_ms(at: i64) {
    let now = now_millis();
    if at > now {
        tokio::time::sleep(Duration::from_millis((at - now) as u64)).await;
    }
}

/// Sleeps until the next window of `len` ms (aligned to the epoch) begins; returns its start.
async fn next_window(len: i64) -> i64 {
    let start = (now_millis() / len + 1) * len;
    sleep_until_ms(start).await;
    start
}

/// The nodes of one test: a control plane, traffic managers, three gateways, a backend,
/// and an application subscribed (Gold) to one deployed API.
struct Cluster {
    _gateways: Vec<Node>,
    tms: Vec<Node>,
    tm_ports: Vec<u16>,
    _cp: Node,
    gws: Vec<Client>,
    gw_mgmt: Vec<SocketAddr>,
    api: String,
    token: String,
    _backend: RunningServer,
}

/// Starts the cluster: gateway `i` follows traffic manager `follows[i]` only (there are
/// as many traffic managers as `follows` names, each with its counters in `redis` when
/// given) and falls back as `fallback[i]` says. Returns once every gateway serves the API.
async fn cluster(dbs: &[TestDb; 2], redis: Option<&str>, follows: [usize; 3], fallback: [&str; 3]) -> Cluster {
    let tm_count = follows.iter().max().unwrap() + 1;
    let tm_ports: Vec<u16> = (0..tm_count).map(|_| free_port()).collect();
    let mut cp = on(dbs, "control-plane")
        .env("TOLLGATE_NODE__COMPONENTS", "publisher,devportal,admin,key-manager")
        .spawn();
    let mut tms: Vec<Node> = tm_ports
        .iter()
        .map(|port| traffic_manager(dbs, *port, redis).spawn())
        .collect();
    let mgmt = cp.wait_ready(READY).await;
    for tm in &mut tms {
        tm.wait_ready(READY).await;
    }
    let mut gateways: Vec<Node> = (0..3)
        .map(|i| {
            tollgate()
                .args(["--profile", "gateway"])
                .env("TOLLGATE_CLUSTER__SECRET", SECRET)
                .env(
                    "TOLLGATE_CLUSTER__EVENT_HUB_URL",
                    format!("http://127.0.0.1:{}", tm_ports[follows[i]]),
                )
                .env("TOLLGATE_CLUSTER__KEY_MANAGER_URL", format!("http://{mgmt}"))
                .env("TOLLGATE_GATEWAY__THROTTLE_FALLBACK", fallback[i])
                .spawn()
        })
        .collect();
    let mut gw_mgmt = Vec::new();
    let mut gws = Vec::new();
    for g in &mut gateways {
        gw_mgmt.push(g.wait_ready(READY).await);
        gws.push(Client::new(mgmt, g.listener("gateway")));
    }
    prepare(&gws[0]).await;
    let backend = backend().await;
    let endpoint =
        json!({"endpoint_type": "http", "production_endpoints": {"url": format!("http://{}/v1", backend.addr)}});
    let api = gws[0]
        .deploy_api_with("TdPets", "/tdpets", endpoint, standard_operations())
        .await;
    let (_, _, _, token) = gws[0].subscribe(&api, "TdApp").await;
    for (i, c) in gws.iter().enumerate() {
        let (status, body) = c.eventually(PATH, &token, |s, _| s == 200).await;
        assert_eq!(status, 200, "gateway {i} at {} serves the API: {body}", c.gw);
    }
    Cluster {
        _gateways: gateways,
        tms,
        tm_ports,
        _cp: cp,
        gws,
        gw_mgmt,
        api,
        token,
        _backend: backend,
    }
}

impl Cluster {
    /// Calls the API through gateway `i`.
    async fn call(&self, i: usize) -> (u16, HeaderMap, Value) {
        self.gws[i].call(Method::GET, PATH, Some(&self.token)).await
    }

    /// Replaces the Gold subscription policy with `body`, then waits until every gateway
    /// holds the hub's newest event (so the new limits are in force everywhere).
    async fn set_gold(&self, mut body: Value) {
        body["policyName"] = json!("Gold");
        let (status, answer) = self.gws[0]
            .rest(
                ADMIN,
                Method::PUT,
                "/admin/v4/throttling/policies/subscription/Gold",
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "PUT Gold: {answer}");
        let r = tollgate_testkit::http()
            .get(format!(
                "http://127.0.0.1:{}/internal/v1/events/latest",
                self.tm_ports[0]
            ))
            .bearer_auth(SECRET)
            .send()
            .await
            .unwrap();
        let latest = r.json::<Value>().await.unwrap()["sequence"].as_i64().unwrap();
        for (i, mgmt) in self.gw_mgmt.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let report = ready(*mgmt).await;
                if report["gateway"]["sequence"].as_i64() >= Some(latest) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "gateway {i} never reached sequence {latest}: {report}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Sends `per_window` calls with `token` per window of `len` ms, for `windows` whole
    /// windows, evenly spaced (each at its own moment, whatever the others' latency),
    /// round-robin over the gateways. The first window is the next one, or with
    /// `fresh_key` (no call of this token was counted yet) the current one when its first
    /// slot is still ahead. Asserts that every call was admitted or refused with 429,
    /// `code` and a `Retry-After` of at most the window; counts what was admitted per
    /// window, by the moment each call was sent.
    async fn paced(&self, token: &str, len: i64, windows: i64, per_window: i64, code: i64, fresh_key: bool) -> Tally {
        let spacing = len / per_window;
        let now = now_millis();
        let (start, offset) = match now % len {
            x if fresh_key && x + 150 < spacing - 100 => (now - x, x + 150),
            _ if fresh_key => (next_window(len).await, 100),
            _ => (next_window(len).await, spacing / 2),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..windows * per_window {
            let at = start + offset + n * len / per_window;
            let gateway = (n % 3) as usize;
            let url = format!("http://{}{PATH}", self.gws[gateway].gw);
            let (http, token) = (self.gws[0].http.clone(), token.to_string());
            tasks.spawn(async move {
                sleep_until_ms(at).await;
                let sent = now_millis();
                let r = http.get(url).bearer_auth(token).send().await.unwrap();
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = r.json::<Value>().await.unwrap_or(Value::Null);
                (sent, gateway, status, headers, body)
            });
        }
        let windows = usize::try_from(windows).unwrap();
        let mut tally = Tally {
            admitted: vec![0; windows],
            sent: vec![0; windows],
            by_gateway: [0; 3],
            late: 0,
        };
        while let Some(result) = tasks.join_next().await {
            let (sent, gateway, status, headers, body) = result.unwrap();
            if status != 200 {
                assert_eq!((status, body["code"].clone()), (429, json!(code)), "{body}");
                assert_eq!(body["message"], "Message throttled out", "{body}");
                let retry: i64 = headers
                    .get("retry-after")
                    .unwrap_or_else(|| panic!("Retry-After on the 429: {headers:?}"))
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=len / 1000).contains(&retry), "Retry-After {retry}");
            }
            // A call the test sent too late for its slot's window is not counted in any.
            let Some(window) = usize::try_from((sent - start) / len).ok().filter(|w| *w < windows) else {
                tally.late += 1;
                continue;
            };
            tally.sent[window] += 1;
            if status == 200 {
                tally.admitted[window] += 1;
                tally.by_gateway[gateway] += 1;
            }
        }
        for (w, n) in tally.sent.iter().enumerate() {
            assert!(
                *n as i64 >= per_window - 2,
                "window {w} got only {n} of its {per_window} calls: {tally:?}"
            );
        }
        tally
    }
}

/// What [`Cluster::paced`] saw.
#[derive(Debug)]
struct Tally {
    /// Admitted per window.
    admitted: Vec<usize>,
    /// Sent per window.
    sent: Vec<usize>,
    /// Admitted (in the windows) per gateway.
    by_gateway: [usize; 3],
    /// Sent after the last window (the test process was late).
    late: usize,
}

#[tokio::test]
async fn a_subscription_of_10_per_minute_admits_10_to_11_per_window_across_three_gateways() {
    let Some(dbs) = databases("e2e_tdist_quota").await else {
        return;
    };
    let began = Instant::now();
    let k = cluster(&dbs, None, [0, 0, 0], ["local_share"; 3]).await;
    // An application not called yet, so that the current minute can be the first window
    // when it has only just begun (nextest ends a test after 240 s).
    let (_, _, _, token) = k.gws[0].subscribe(&k.api, "TdQuota").await;
    k.set_gold(json!({"defaultLimit": {"type": "REQUESTCOUNTLIMIT",
        "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 10}}}))
        .await;
    // 3× the limit: 30 calls a minute (one every 2 s), for 3 whole windows.
    let tally = k.paced(&token, 60_000, 3, 30, QUOTA, true).await;
    let admitted = &tally.admitted;
    eprintln!(
        "[throttling_distributed] 10/min over 3 gateways at 30 calls/min: admitted per window {admitted:?} \
         (sent {:?}, per gateway {:?}; test took {:?})",
        tally.sent,
        tally.by_gateway,
        began.elapsed()
    );
    for (w, n) in admitted.iter().enumerate() {
        assert!(
            (10..=11).contains(n),
            "window {w} admitted {n}, not 10 to 11: {admitted:?}"
        );
    }
}

#[tokio::test]
async fn a_burst_limit_of_5_per_second_holds_across_gateways() {
    let Some(dbs) = databases("e2e_tdist_burst").await else {
        return;
    };
    let began = Instant::now();
    let k = cluster(&dbs, None, [0, 0, 0], ["local_share"; 3]).await;
    k.set_gold(json!({"defaultLimit": {"type": "REQUESTCOUNTLIMIT",
            "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 100_000}},
        "rateLimitCount": 5, "rateLimitTimeUnit": "sec"}))
        .await;
    // 15 calls a second (one every ~66 ms) for 5 whole seconds.
    let tally = k.paced(&k.token, 1_000, 5, 15, BURST, false).await;
    let admitted = &tally.admitted;
    eprintln!(
        "[throttling_distributed] burst 5/s over 3 gateways at 15 calls/s: admitted per second {admitted:?} \
         (sent {:?}, late {}; test took {:?})",
        tally.sent,
        tally.late,
        began.elapsed()
    );
    for (s, n) in admitted.iter().enumerate() {
        assert!(*n <= 6, "second {s} admitted {n}, more than 5 (+1): {admitted:?}");
    }
    let full = admitted.iter().filter(|n| **n >= 4).count();
    assert!(
        full >= 4,
        "only {full} of 5 seconds admitted at least 4 calls: {admitted:?}"
    );
}

#[tokio::test]
async fn an_ip_deny_policy_reaches_every_gateway_within_a_second() {
    let Some(dbs) = databases("e2e_tdist_deny").await else {
        return;
    };
    let began = Instant::now();
    let k = cluster(&dbs, None, [0, 0, 0], ["local_share"; 3]).await;
    for i in 0..3 {
        let (status, _, body) = k.call(i).await;
        assert_eq!(status, 200, "gateway {i} before the deny policy: {body}");
    }

    let posted = Instant::now();
    let (status, rule) = k.gws[0]
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/deny-policies",
            Some(json!({"conditionType": "IP", "conditionValue": {"fixedIp": "127.0.0.1", "invert": false}})),
        )
        .await;
    let post_took = posted.elapsed();
    assert_eq!(status, 201, "{rule}");
    // Every gateway polled every 20 ms, concurrently, until it refuses.
    let mut polls = tokio::task::JoinSet::new();
    for i in 0..3 {
        let url = format!("http://{}{PATH}", k.gws[i].gw);
        let (http, token) = (k.gws[0].http.clone(), k.token.clone());
        polls.spawn(async move {
            loop {
                let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.json::<Value>().await.unwrap_or(Value::Null);
                if status != 200 || posted.elapsed() > Duration::from_secs(15) {
                    return (i, posted.elapsed(), status, body);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let mut took = [Duration::ZERO; 3];
    while let Some(result) = polls.join_next().await {
        let (i, elapsed, status, body) = result.unwrap();
        assert_eq!(
            (status, body["code"].clone()),
            (403, json!(DENIED)),
            "gateway {i} after {elapsed:?}: {body}"
        );
        took[i] = elapsed;
    }
    eprintln!(
        "[throttling_distributed] IP deny policy: POST answered in {post_took:?}; gateways refused after {took:?} (from the POST being sent; test took {:?})",
        began.elapsed()
    );
    for (i, t) in took.iter().enumerate() {
        assert!(*t < Duration::from_secs(1), "gateway {i} refused only after {t:?}");
    }
}

#[tokio::test]
async fn two_traffic_managers_sharing_redis_hold_the_limit() {
    let Some(redis) = tollgate_testkit::redis_url() else {
        return;
    };
    let Some(dbs) = databases("e2e_tdist_redis").await else {
        return;
    };
    let began = Instant::now();
    // Gateways 0 and 1 follow traffic manager A, gateway 2 follows B.
    let k = cluster(&dbs, Some(&redis), [0, 0, 1], ["local_share"; 3]).await;
    for i in 0..3 {
        let report = throttling(k.gw_mgmt[i]).await;
        assert_eq!(report["mode"], "shared", "gateway {i}: {report}");
    }
    // 10 per 10-second window (counter keys name the application and API, fresh here).
    k.set_gold(json!({"defaultLimit": {"type": "REQUESTCOUNTLIMIT",
        "requestCount": {"timeUnit": "sec", "unitTime": 10, "requestCount": 10}}}))
        .await;
    let tally = k.paced(&k.token, 10_000, 3, 30, QUOTA, false).await;
    let admitted = &tally.admitted;
    eprintln!(
        "[throttling_distributed] 10/10s, two traffic managers on Redis, 3 gateways at 30 calls/window: \
         admitted per window {admitted:?} (sent {:?}, per gateway {:?}; test took {:?})",
        tally.sent,
        tally.by_gateway,
        began.elapsed()
    );
    for (w, n) in admitted.iter().enumerate() {
        assert!(
            (10..=11).contains(n),
            "window {w} admitted {n}, not 10 to 11 (each traffic manager granting the whole limit would give ~20): {admitted:?}"
        );
    }
}

#[tokio::test]
async fn killing_the_traffic_manager_switches_gateways_to_fallback_and_restoring_it_resumes_shared_limits() {
    let Some(dbs) = databases("e2e_tdist_fallback").await else {
        return;
    };
    let began = Instant::now();
    // Gateway 2 refuses limited calls while the traffic manager is away.
    let mut k = cluster(&dbs, None, [0, 0, 0], ["local_share", "local_share", "fail_closed"]).await;
    k.set_gold(json!({"defaultLimit": {"type": "REQUESTCOUNTLIMIT",
        "requestCount": {"timeUnit": "sec", "unitTime": 10, "requestCount": 30}}}))
        .await;

    // Shared, and each gateway knows of all three (the share is computed from that).
    let deadline = Instant::now() + Duration::from_secs(15);
    for i in 0..3 {
        loop {
            let (status, headers, body) = k.call(i).await;
            let report = throttling(k.gw_mgmt[i]).await;
            assert_eq!(
                status,
                200,
                "gateway {i} at {}: {body} {headers:?} {report}",
                now_millis()
            );
            if report["mode"] == "shared" && report["liveGateways"] == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gateway {i} not shared with 3 live gateways: {}",
                ready(k.gw_mgmt[i]).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "[throttling_distributed] gateway readiness: {}",
        ready(k.gw_mgmt[0]).await
    );

    // The traffic manager dies: every gateway notices within 3 s.
    let killed = Instant::now();
    k.tms[0].signal(Signal::SIGKILL);
    k.tms[0].wait_exit(READY);
    let to_fallback = wait_for_modes(
        &k,
        ["fallback_local_share", "fallback_local_share", "fallback_fail_closed"],
        killed,
        Duration::from_secs(3),
    )
    .await;
    for i in 0..3 {
        let report = throttling(k.gw_mgmt[i]).await;
        assert_eq!(report["liveGateways"], 3, "gateway {i}: {report}");
    }

    // In a fresh window gateway 0 admits at most its share, ceil(30 / 3) = 10; gateway 2
    // admits nothing.
    next_window(10_000).await;
    let mut share = 0;
    for _ in 0..20 {
        let (status, _, body) = k.call(0).await;
        if status == 200 {
            share += 1;
        } else {
            assert_eq!((status, body["code"].clone()), (429, json!(QUOTA)), "{body}");
        }
    }
    for _ in 0..3 {
        let (status, _, body) = k.call(2).await;
        assert_eq!(
            (status, body["code"].clone()),
            (429, json!(QUOTA)),
            "fail_closed gateway: {body}"
        );
    }
    assert!(
        (1..=10).contains(&share),
        "gateway 0 admitted {share} of 20 in fallback, not 1 to 10"
    );

    // The traffic manager comes back on the same address: shared again within 5 s.
    let mut tm = traffic_manager(&dbs, k.tm_ports[0], None).spawn();
    tm.wait_ready(READY).await;
    k.tms[0] = tm;
    let restored = Instant::now();
    let to_shared = wait_for_modes(&k, ["shared"; 3], restored, Duration::from_secs(5)).await;

    // In a fresh window 60 calls round-robin: the shared limit again, no burst.
    let tally = k.paced(&k.token, 10_000, 1, 60, QUOTA, false).await;
    let (admitted, by_gateway) = (&tally.admitted, tally.by_gateway);
    eprintln!(
        "[throttling_distributed] fallback: modes after the kill {to_fallback:?}; gateway 0 admitted {share} of 20 \
         in fallback; shared again after {to_shared:?} (from the restarted traffic manager being ready); \
         after recovery admitted {admitted:?} of 60 (limit 30; per gateway {by_gateway:?}); test took {:?}",
        began.elapsed()
    );
    assert!(
        (30..=31).contains(&admitted[0]),
        "after recovery the window admitted {}, not 30 to 31",
        admitted[0]
    );
    assert!(
        by_gateway.iter().all(|n| *n >= 1),
        "every gateway (the fail_closed one too) admits again: {by_gateway:?}"
    );
}
