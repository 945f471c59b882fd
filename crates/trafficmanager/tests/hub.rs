//! The traffic manager's internal endpoints on a real socket over a real AM database
//! (SQLite and, when reachable, PostgreSQL): only callers with the cluster secret get in,
//! bad query input is a 400 naming the parameter, the SSE watch delivers committed events
//! in order with heartbeats when idle, a watcher behind compaction is told to re-snapshot,
//! and the snapshot carries the latest sequence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_config::DatabaseConfig;
use tollgate_events::snapshot::ApplicationInfo;
use tollgate_events::{ControlEvent, Event, EventKind, NewEvent};
use tollgate_http::cluster::ClusterSecret;
use tollgate_model::TenantId;
use tollgate_store::{Database, DatabaseName, connect, events};
use tollgate_testkit::{RunningServer, TestDb, all_engines};
use tollgate_trafficmanager::{DatabaseHub, EventFeed, TrafficManagerState, routes};

const SECRET: &str = "a-cluster-secret-for-tests";
const HEARTBEAT: Duration = Duration::from_millis(200);
/// Longest wait for anything on a stream before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// One traffic manager at a time per process. Commits wake event feeds through one
/// process-wide signal that wakes a single waiter (one feed per node in production), so
/// with several feeds alive in one process (`cargo test` runs tests on threads; nextest
/// runs each in its own process) the others would wait for their 2-second safety poll.
static ONE_FEED_PER_PROCESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A traffic manager serving the internal routes over a migrated AM database.
struct Manager {
    base: String,
    am: Database,
    engine: &'static str,
    shutdown: CancellationToken,
    _server: RunningServer,
    _alone: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        // Stops the event feed, so that a later engine's feed is the only one waking.
        self.shutdown.cancel();
    }
}

impl Manager {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// `GET path` with `authorization` (if any) as the `Authorization` header.
    async fn get(&self, path_and_query: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = tollgate_testkit::http().get(self.url(path_and_query));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        tokio::time::timeout(WAIT, request.send())
            .await
            .unwrap_or_else(|_| panic!("GET {path_and_query} timed out ({})", self.engine))
            .unwrap()
    }

    /// `GET path` with the cluster secret.
    async fn get_authorized(&self, path_and_query: &str) -> reqwest::Response {
        self.get(path_and_query, Some(&format!("Bearer {SECRET}"))).await
    }

    /// Opens `GET /internal/v1/watch?since=N` with the secret, asserting it is an SSE stream.
    async fn watch(&self, since: i64) -> Sse {
        self.watch_query(&format!("since={since}")).await
    }

    /// Opens `GET /internal/v1/watch?{query}` with the secret, asserting it is an SSE stream.
    async fn watch_query(&self, query: &str) -> Sse {
        let response = self.get_authorized(&format!("/internal/v1/watch?{query}")).await;
        assert_eq!(response.status().as_u16(), 200, "watch?{query} ({})", self.engine);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "watch content type {content_type:?} ({})",
            self.engine
        );
        Sse {
            response,
            buffer: Vec::new(),
            engine: self.engine,
        }
    }

    /// Appends `count` application events, each in its own transaction; their sequences.
    async fn append(&self, count: usize) -> Vec<i64> {
        let mut seqs = Vec::with_capacity(count);
        for _ in 0..count {
            let mut tx = self.am.begin().await.unwrap();
            let seq = events::append(&mut tx, &application_event(seqs.len())).await.unwrap();
            tx.commit().await.unwrap();
            seqs.push(seq);
        }
        seqs
    }
}

async fn start(db: &TestDb) -> Manager {
    start_with(db, HEARTBEAT).await
}

async fn start_with(db: &TestDb, heartbeat: Duration) -> Manager {
    let alone = ONE_FEED_PER_PROCESS.lock().await;
    let am = connect(DatabaseName::Am, db.url(), &DatabaseConfig::default())
        .await
        .unwrap();
    am.migrate().await.unwrap();
    let shutdown = CancellationToken::new();
    let state = TrafficManagerState {
        hub: DatabaseHub::new(am.clone(), EventFeed::start(am.clone(), shutdown.clone()), heartbeat),
        counters: std::sync::Arc::new(tollgate_trafficmanager::CounterStore::in_memory()),
        cluster_secret: ClusterSecret::new(Some(SECRET)),
    };
    let server = tollgate_testkit::serve(routes(state)).await;
    Manager {
        base: format!("http://{}", server.addr),
        am,
        engine: db.engine(),
        shutdown,
        _server: server,
        _alone: alone,
    }
}

fn application_event(n: usize) -> NewEvent {
    NewEvent::new(
        TenantId::DEFAULT,
        None,
        ControlEvent::ApplicationUpserted(ApplicationInfo {
            id: format!("app-{n}"),
            name: format!("App {n}"),
            owner: "admin".into(),
            tier: "Unlimited".into(),
            token_type: "JWT".into(),
            status: "APPROVED".into(),
        }),
    )
}

/// One Server-Sent Events message (or comment-only block).
#[derive(Debug, Default)]
struct Frame {
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
    comments: Vec<String>,
}

impl Frame {
    /// `N` of a `: heartbeat N` comment, if this frame is one.
    fn heartbeat(&self) -> Option<i64> {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix("heartbeat "))
            .map(|n| n.trim().parse().expect("heartbeat names a sequence"))
    }

    /// `N` of a `: progress N` comment, if this frame is one.
    fn progress(&self) -> Option<i64> {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix("progress "))
            .map(|n| n.trim().parse().expect("progress names a sequence"))
    }

    fn is_message(&self) -> bool {
        self.event.is_some() || self.id.is_some() || !self.data.is_empty()
    }
}

/// Reads an SSE response body incrementally, frame by frame, never waiting past [`WAIT`].
struct Sse {
    response: reqwest::Response,
    /// Bytes received and not yet parsed (a chunk may end mid-frame or mid-character).
    buffer: Vec<u8>,
    engine: &'static str,
}

impl Sse {
    /// Reads the next chunk: `false` when the stream has ended.
    async fn fill(&mut self) -> bool {
        let chunk = tokio::time::timeout(WAIT, self.response.chunk())
            .await
            .unwrap_or_else(|_| panic!("nothing arrived on the watch stream within {WAIT:?} ({})", self.engine))
            .unwrap();
        match chunk {
            Some(bytes) => {
                self.buffer.extend_from_slice(&bytes);
                true
            }
            None => false,
        }
    }

    /// The next frame; fails when the stream ends or stalls.
    async fn next(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return parse_frame(std::str::from_utf8(&block).expect("SSE is UTF-8"));
            }
            assert!(
                self.fill().await,
                "the watch stream ended unexpectedly ({})",
                self.engine
            );
        }
    }

    /// The next frame that is an SSE message (skipping heartbeats); the heartbeats passed
    /// over are returned too.
    async fn next_message(&mut self) -> (Frame, Vec<i64>) {
        let mut heartbeats = Vec::new();
        loop {
            let frame = self.next().await;
            if frame.is_message() {
                return (frame, heartbeats);
            }
            heartbeats.push(
                frame
                    .heartbeat()
                    .unwrap_or_else(|| panic!("unexpected frame {frame:?}")),
            );
        }
    }

    /// The next heartbeat's sequence; fails if a message comes first.
    async fn next_heartbeat(&mut self) -> i64 {
        let frame = self.next().await;
        assert!(
            !frame.is_message(),
            "expected a heartbeat, got {frame:?} ({})",
            self.engine
        );
        frame
            .heartbeat()
            .unwrap_or_else(|| panic!("unexpected frame {frame:?}"))
    }

    /// Whether the server closes the stream (after any remaining frames) within [`WAIT`].
    async fn ends(&mut self) -> bool {
        loop {
            if !self.buffer.trim_ascii().is_empty() {
                return false;
            }
            if !self.fill().await {
                return true;
            }
        }
    }
}

fn parse_frame(block: &str) -> Frame {
    let mut frame = Frame::default();
    for line in block.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comments.push(comment.trim_start().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        match field {
            "event" => frame.event = Some(value),
            "id" => frame.id = Some(value),
            "data" => frame.data.push(value),
            _ => {}
        }
    }
    frame
}

/// The field names of an error body's `error` list.
fn error_fields(body: &Value) -> Vec<String> {
    body["error"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn internal_endpoints_refuse_callers_without_the_cluster_secret() {
    for t in all_engines("tm_secret").await {
        let tm = start(&t).await;
        for path in [
            "/internal/v1/snapshot?environment=Default",
            "/internal/v1/watch?since=0",
        ] {
            for authorization in [
                None,
                Some("Bearer a-wrong-secret-of-the-same-size"),
                Some("Bearer a-cluster-secret-for-tests-plus"),
                Some("Bearer "),
                Some(SECRET), // the secret without the scheme
                Some("Basic YWRtaW46YWRtaW4="),
            ] {
                let response = tm.get(path, authorization).await;
                assert_eq!(
                    response.status().as_u16(),
                    401,
                    "{path} with Authorization {authorization:?} ({})",
                    tm.engine
                );
                let body: Value = response.json().await.unwrap();
                assert!(body["code"].is_i64(), "error envelope {body} ({})", tm.engine);
            }
        }
        // Control: the same requests with the secret get in.
        let snapshot = tm.get_authorized("/internal/v1/snapshot?environment=Default").await;
        assert_eq!(snapshot.status().as_u16(), 200, "{}", tm.engine);
        let watch = tm.watch(0).await;
        drop(watch);
    }
}

#[tokio::test]
async fn bad_query_input_is_a_400_naming_the_parameter() {
    for t in all_engines("tm_bad_input").await {
        let tm = start(&t).await;
        for path in [
            "/internal/v1/snapshot",
            "/internal/v1/snapshot?environment=",
            "/internal/v1/snapshot?environment=%20",
        ] {
            let response = tm.get_authorized(path).await;
            assert_eq!(response.status().as_u16(), 400, "{path} ({})", tm.engine);
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_fields(&body), ["environment"], "{path}: {body} ({})", tm.engine);
        }
        for path in ["/internal/v1/watch", "/internal/v1/watch?since=-1"] {
            let response = tm.get_authorized(path).await;
            assert_eq!(response.status().as_u16(), 400, "{path} ({})", tm.engine);
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_fields(&body), ["since"], "{path}: {body} ({})", tm.engine);
        }
        // Not a number: rejected while parsing the query, before our validation.
        for path in ["/internal/v1/watch?since=abc", "/internal/v1/watch?since=1.5"] {
            let response = tm.get_authorized(path).await;
            assert_eq!(response.status().as_u16(), 400, "{path} ({})", tm.engine);
            let body: Value = response.json().await.unwrap();
            assert!(
                body.to_string().contains("since"),
                "{path}: the 400 should name `since`: {body} ({})",
                tm.engine
            );
        }
    }
}

#[tokio::test]
async fn watch_streams_committed_events_in_order_with_heartbeats_when_idle() {
    for t in all_engines("tm_watch").await {
        let tm = start(&t).await;
        let mut stream = tm.watch(0).await;
        // Idle on an empty outbox: a heartbeat saying nothing is pending. Seeing it first
        // proves the stream is open before anything is appended.
        assert_eq!(stream.next_heartbeat().await, 0, "{}", tm.engine);

        let mut delivered: Vec<i64> = Vec::new();
        for round in 0..2 {
            let appended = tm.append(3).await;
            assert!(appended.windows(2).all(|w| w[0] < w[1]), "{appended:?}");
            for &seq in &appended {
                let (frame, heartbeats) = stream.next_message().await;
                // A heartbeat N means everything up to N was sent: never more, never less.
                for n in heartbeats {
                    assert_eq!(Some(&n), delivered.last().or(Some(&0)), "heartbeat {n} ({})", tm.engine);
                }
                assert_eq!(
                    frame.id.as_deref(),
                    Some(seq.to_string().as_str()),
                    "round {round}: {frame:?} ({})",
                    tm.engine
                );
                assert_eq!(
                    frame.event.as_deref(),
                    Some(EventKind::ApplicationUpserted.as_str()),
                    "{frame:?} ({})",
                    tm.engine
                );
                assert_eq!(frame.data.len(), 1, "{frame:?}");
                let event: Event = serde_json::from_str(&frame.data[0]).unwrap();
                assert_eq!(event.seq, seq, "{}", tm.engine);
                assert_eq!(event.kind, EventKind::ApplicationUpserted);
                assert_eq!(event.tenant_id, TenantId::DEFAULT);
                let index = appended.iter().position(|&s| s == seq).unwrap();
                assert_eq!(
                    event.control().unwrap(),
                    application_event(index).event,
                    "{}",
                    tm.engine
                );
                if let Some(&last) = delivered.last() {
                    assert!(seq > last, "seq {seq} after {last} ({})", tm.engine);
                }
                delivered.push(seq);
            }
            // Idle again: the heartbeat names the last sequence delivered.
            assert_eq!(
                stream.next_heartbeat().await,
                *delivered.last().unwrap(),
                "round {round} ({})",
                tm.engine
            );
        }
        assert_eq!(delivered, (1..=6).collect::<Vec<i64>>(), "{}", tm.engine);

        // A watch from the middle gets only what follows, then idles at the newest.
        let mut later = tm.watch(delivered[3]).await;
        for &seq in &delivered[4..] {
            let (frame, heartbeats) = later.next_message().await;
            assert!(heartbeats.is_empty(), "heartbeat before pending events ({})", tm.engine);
            assert_eq!(frame.id.as_deref(), Some(seq.to_string().as_str()), "{}", tm.engine);
        }
        assert_eq!(later.next_heartbeat().await, 6, "{}", tm.engine);
    }
}

#[tokio::test]
async fn watch_wakes_on_commit_without_waiting_for_a_heartbeat() {
    for t in all_engines("tm_wake").await {
        // Heartbeats far apart: only the event feed's wake-up on commit can deliver in time.
        let tm = start_with(&t, Duration::from_secs(60)).await;
        let mut stream = tm.watch(0).await;
        let started = std::time::Instant::now();
        for _ in 0..5 {
            let appended = tm.append(1).await;
            let one = std::time::Instant::now();
            let (frame, heartbeats) = stream.next_message().await;
            assert!(heartbeats.is_empty(), "{heartbeats:?} ({})", tm.engine);
            assert_eq!(frame.id, Some(appended[0].to_string()), "{frame:?} ({})", tm.engine);
            assert!(
                one.elapsed() < Duration::from_secs(5),
                "event {} took {:?} to arrive ({})",
                appended[0],
                one.elapsed(),
                tm.engine
            );
        }
        // Were deliveries left to the feed's 2-second safety poll, five in a row would
        // almost surely take longer than this.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "five events, each appended after the previous arrived, took {:?} ({})",
            started.elapsed(),
            tm.engine
        );
    }
}

#[tokio::test]
async fn watching_from_before_what_compaction_kept_answers_resnapshot() {
    for t in all_engines("tm_resnapshot").await {
        let tm = start(&t).await;
        let appended = tm.append(4).await;
        let newest = *appended.last().unwrap();
        let far_future = tollgate_model::now_millis() + 86_400_000;
        let deleted = events::compact(&tm.am, far_future).await.unwrap();
        assert_eq!(deleted, 3, "compaction keeps only the newest event ({})", tm.engine);
        assert_eq!(events::oldest_seq(&tm.am).await.unwrap(), Some(newest));

        for since in [0, newest - 2] {
            let mut stream = tm.watch(since).await;
            let (frame, _) = stream.next_message().await;
            assert_eq!(
                frame.event.as_deref(),
                Some("resnapshot"),
                "watch?since={since} after compaction: {frame:?} ({})",
                tm.engine
            );
            assert!(frame.id.is_none(), "{frame:?}");
            assert!(
                stream.ends().await,
                "the stream closes after resnapshot ({})",
                tm.engine
            );
        }

        // Just behind what is kept: nothing is missing, so the events come normally.
        let mut stream = tm.watch(newest - 1).await;
        let (frame, _) = stream.next_message().await;
        assert_eq!(
            frame.id.as_deref(),
            Some(newest.to_string().as_str()),
            "{frame:?} ({})",
            tm.engine
        );
        assert_eq!(frame.event.as_deref(), Some(EventKind::ApplicationUpserted.as_str()));
        assert_eq!(stream.next_heartbeat().await, newest, "{}", tm.engine);

        // Ahead of the outbox (the database was replaced): only a snapshot is consistent.
        let mut stream = tm.watch(newest + 10).await;
        let (frame, _) = stream.next_message().await;
        assert_eq!(frame.event.as_deref(), Some("resnapshot"), "{frame:?} ({})", tm.engine);
    }
}

#[tokio::test]
async fn snapshot_carries_the_latest_sequence() {
    for t in all_engines("tm_snapshot").await {
        let tm = start(&t).await;
        let path = "/internal/v1/snapshot?environment=Default";
        let response = tm.get_authorized(path).await;
        assert_eq!(response.status().as_u16(), 200, "{}", tm.engine);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["seq"], 0, "empty outbox: {body} ({})", tm.engine);

        let appended = tm.append(3).await;
        let newest = *appended.last().unwrap();
        let response = tm.get_authorized(path).await;
        assert_eq!(response.status().as_u16(), 200, "{}", tm.engine);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["seq"], newest, "{body} ({})", tm.engine);
        assert_eq!(body["environment"], "Default", "{body} ({})", tm.engine);
        let snapshot: tollgate_events::Snapshot = serde_json::from_value(body).unwrap();
        assert_eq!(snapshot.seq, newest);

        let latest = tm.get_authorized("/internal/v1/events/latest").await;
        assert_eq!(latest.status().as_u16(), 200, "{}", tm.engine);
        let latest: Value = latest.json().await.unwrap();
        assert_eq!(latest["sequence"], newest, "{latest} ({})", tm.engine);
    }
}

impl Manager {
    /// `POST /internal/v1/throttle/sync` with `body` and `authorization`.
    async fn sync(&self, body: &Value, authorization: Option<&str>) -> reqwest::Response {
        let mut request = tollgate_testkit::http()
            .post(self.url("/internal/v1/throttle/sync"))
            .json(body);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        tokio::time::timeout(WAIT, request.send())
            .await
            .expect("sync answered")
            .unwrap()
    }
}

#[tokio::test]
async fn throttle_sync_grants_up_to_the_limit_and_refuses_bad_batches() {
    let db = tollgate_testkit::sqlite("tm_sync");
    let tm = start(&db).await;
    let secret = format!("Bearer {SECRET}");
    let item = |used: u64, want: u64| {
        json!({"key": "sub:Tiny:app:api", "windowStart": 60_000, "windowEnd": 120_000, "limit": 10,
               "used": used, "want": want})
    };
    // Without the secret: 401, and nothing is counted.
    let refused = tm.sync(&json!({"gatewayId": "g1", "items": [item(5, 0)]}), None).await;
    assert_eq!(refused.status().as_u16(), 401);
    let first: Value = tm
        .sync(&json!({"gatewayId": "g1", "items": [item(2, 3)]}), Some(&secret))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"][0]["granted"], 3, "{first}");
    assert_eq!(first["items"][0]["count"], 5, "{first}");
    let second: Value = tm
        .sync(&json!({"gatewayId": "g2", "items": [item(0, 8)]}), Some(&secret))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["granted"], 5, "only what the limit leaves: {second}");
    assert_eq!(second["items"][0]["count"], 10);
    assert_eq!(second["liveGateways"], 2);
    // Bad batches: 400 naming the field, and they change nothing.
    for (body, field) in [
        (json!({"gatewayId": "", "items": [item(1, 1)]}), "gatewayId"),
        (
            json!({"gatewayId": "g1", "items": [{"key": "k", "windowStart": 5, "windowEnd": 5, "limit": 1}]}),
            "items[0].windowEnd",
        ),
        (
            json!({"gatewayId": "g1", "items": [item(1, 1), {"key": "", "windowStart": 0, "windowEnd": 5, "limit": 1}]}),
            "items[1].key",
        ),
        (
            json!({"gatewayId": "g1", "items": [{"key": "k", "windowStart": 0, "windowEnd": 5, "limit": 0}]}),
            "items[0].limit",
        ),
    ] {
        let response = tm.sync(&body, Some(&secret)).await;
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_fields(&answer), [field], "{answer}");
    }
    let unreadable = tm
        .sync(&json!({"gatewayId": "g1", "items": "many"}), Some(&secret))
        .await;
    assert_eq!(unreadable.status().as_u16(), 400);
    let after: Value = tm
        .sync(&json!({"gatewayId": "g1", "items": [item(0, 0)]}), Some(&secret))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["items"][0]["count"], 10, "bad batches counted nothing: {after}");
}

/// Provisions the tenant `domain` on the AM side (its state with a `tenant_changed` event,
/// its `Default` environment and default policies), as tenant creation does.
async fn provision(am: &Database, domain: &str) -> TenantId {
    let tenant = tollgate_model::Tenant {
        id: TenantId::new(),
        domain: domain.into(),
        name: domain.into(),
        active: true,
        created_at: 0,
    };
    tollgate_store::tenants::provision(am, &tenant).await.unwrap();
    tenant.id
}

/// An application event of `tenant`.
async fn append_for(am: &Database, tenant: TenantId, event: ControlEvent) -> i64 {
    let mut tx = am.begin().await.unwrap();
    let seq = events::append(&mut tx, &NewEvent::new(tenant, None, event))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    seq
}

fn app_of(id: &str) -> ControlEvent {
    ControlEvent::ApplicationUpserted(ApplicationInfo {
        id: id.into(),
        name: id.into(),
        owner: "owner".into(),
        tier: "Unlimited".into(),
        token_type: "JWT".into(),
        status: "APPROVED".into(),
    })
}

/// The domains of a snapshot's tenant sections, and how many subscription policies each has.
fn sections(snapshot: &Value) -> Vec<(String, usize)> {
    snapshot["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let policies = t["subscriptionPolicies"].as_array().map_or(0, Vec::len);
            (t["domain"].as_str().unwrap().to_string(), policies)
        })
        .collect()
}

#[tokio::test]
async fn a_gateway_limited_to_some_tenants_gets_only_their_snapshot_entries() {
    for t in all_engines("tm_tenant_snapshot").await {
        let tm = start(&t).await;
        tollgate_store::policies::install_defaults(&tm.am, TenantId::DEFAULT)
            .await
            .unwrap();
        provision(&tm.am, "acme.com").await;
        provision(&tm.am, "beta.org").await;
        let everything: Value = tm
            .get_authorized("/internal/v1/snapshot?environment=Default")
            .await
            .json()
            .await
            .unwrap();
        let all = sections(&everything);
        let domains: Vec<&str> = all.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(domains, ["carbon.super", "acme.com", "beta.org"], "{}", t.engine());
        assert_eq!(all[0].1, 0, "the super tenant's policies are the top-level ones");
        assert!(
            all[1].1 > 0 && all[2].1 > 0,
            "each tenant has its own defaults: {all:?}"
        );
        let top = everything["subscriptionPolicies"].as_array().map_or(0, Vec::len);
        assert!(top > 0);

        let acme: Value = tm
            .get_authorized("/internal/v1/snapshot?environment=Default&tenants=acme.com")
            .await
            .json()
            .await
            .unwrap();
        let only = sections(&acme);
        assert_eq!(only.len(), 1, "{only:?} ({})", t.engine());
        assert_eq!(only[0].0, "acme.com");
        assert!(only[0].1 > 0);
        for key in ["subscriptionPolicies", "applicationPolicies", "apis", "applications"] {
            assert_eq!(
                acme[key],
                json!([]),
                "{key}: nothing of the super tenant ({})",
                t.engine()
            );
        }
        assert!(!acme.to_string().contains("beta.org"));

        let with_super: Value = tm
            .get_authorized("/internal/v1/snapshot?environment=Default&tenants=carbon.super,beta.org")
            .await
            .json()
            .await
            .unwrap();
        let domains: Vec<String> = sections(&with_super).into_iter().map(|(d, _)| d).collect();
        assert_eq!(domains, ["carbon.super", "beta.org"]);
        assert_eq!(with_super["subscriptionPolicies"], everything["subscriptionPolicies"]);

        for bad in ["Acme.com", "acme.com,not-a-domain", "t/acme.com"] {
            let response = tm
                .get_authorized(&format!("/internal/v1/snapshot?environment=Default&tenants={bad}"))
                .await;
            assert_eq!(response.status().as_u16(), 400, "{bad}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_fields(&body), ["tenants"], "{bad}: {body}");
            let response = tm
                .get_authorized(&format!("/internal/v1/watch?since=0&tenants={bad}"))
                .await;
            assert_eq!(response.status().as_u16(), 400, "watch with {bad}");
        }
    }
}

#[tokio::test]
async fn a_watch_limited_to_some_tenants_gets_only_their_events_and_keeps_up() {
    for t in all_engines("tm_tenant_watch").await {
        let tm = start(&t).await;
        let acme = provision(&tm.am, "acme.com").await;
        let beta = provision(&tm.am, "beta.org").await;
        let since = events::latest_seq(&tm.am).await.unwrap();
        let mut stream = tm
            .watch_query(&format!("since={since}&tenants=acme.com,later.io"))
            .await;
        let beta_app = append_for(&tm.am, beta, app_of("beta-app")).await;
        let acme_app = append_for(&tm.am, acme, app_of("acme-app")).await;
        let revocation = tollgate_events::control::Revocation {
            revocation_type: "jti".into(),
            subject: "beta-token".into(),
            token_type: "access_token".into(),
            consumer_key: None,
            revoked_at: 1,
            expires_at: i64::MAX / 2,
        };
        let revoked = append_for(&tm.am, beta, ControlEvent::TokenRevoked(revocation)).await;
        let last = append_for(&tm.am, beta, app_of("beta-app-2")).await;
        let mut delivered = Vec::new();
        let mut progress = Vec::new();
        // Reads frames until `done` says so, recording events and progress.
        async fn read_until(
            stream: &mut Sse,
            delivered: &mut Vec<(i64, TenantId, EventKind)>,
            progress: &mut Vec<i64>,
            done: impl Fn(&Frame) -> bool,
        ) {
            loop {
                let frame = stream.next().await;
                if frame.is_message() {
                    let event: Event = serde_json::from_str(&frame.data.join("\n")).unwrap();
                    delivered.push((event.seq, event.tenant_id, event.kind));
                }
                if let Some(seq) = frame.progress() {
                    progress.push(seq);
                }
                if done(&frame) {
                    return;
                }
            }
        }
        // The last event written is beta's: the watch says it is past it.
        read_until(&mut stream, &mut delivered, &mut progress, |f| {
            f.progress().is_some_and(|seq| seq >= last)
        })
        .await;
        assert_eq!(progress.last(), Some(&last), "{}", t.engine());
        // A tenant created while the watch is open, and named by it.
        let later = provision(&tm.am, "later.io").await;
        let newest = events::latest_seq(&tm.am).await.unwrap();
        read_until(&mut stream, &mut delivered, &mut progress, |f| {
            f.heartbeat().is_some_and(|seq| seq >= newest)
        })
        .await;
        let seqs: Vec<i64> = delivered.iter().map(|(seq, _, _)| *seq).collect();
        assert!(
            !seqs.contains(&beta_app) && !seqs.contains(&last),
            "beta's events: {delivered:?}"
        );
        assert!(seqs.contains(&acme_app), "{delivered:?} ({})", t.engine());
        assert!(
            seqs.contains(&revoked),
            "revocations go to every gateway: {delivered:?}"
        );
        assert!(
            delivered
                .iter()
                .any(|(_, tenant, kind)| *tenant == later && *kind == EventKind::TenantChanged),
            "the new tenant's state: {delivered:?}"
        );
        assert!(
            delivered
                .iter()
                .any(|(_, tenant, kind)| *tenant == later && *kind == EventKind::PolicyUpserted),
            "then its events: {delivered:?}"
        );
        let beta_events: Vec<i64> = delivered
            .iter()
            .filter(|(_, tenant, _)| *tenant == beta)
            .map(|(seq, _, _)| *seq)
            .collect();
        assert_eq!(beta_events, [revoked], "only beta's revocation ({})", t.engine());
        assert_eq!(stream.next_heartbeat().await, newest, "{}", t.engine());
    }
}
