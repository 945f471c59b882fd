//! Throttling through an all-in-one node's gateway: each kind of limit refuses with the
//! reference's code once its window is used up, with `Retry-After` and `X-RateLimit-*`
//! headers; a plan that does not stop on quota counts without refusing; and Admin changes
//! to a policy take effect through the event hub without a restart.

use crate::gateway_flow::{ADMIN, Client, backend, ready_node, standard_operations};
use crate::tollgate;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// A request-count limit of `n` per `seconds`-second window.
fn per_seconds(n: u64, seconds: u32) -> Value {
    json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "sec", "unitTime": seconds, "requestCount": n}})
}

/// Effectively no limit (the reference's `Integer.MAX_VALUE`).
fn unlimited() -> Value {
    json!({"type": "REQUESTCOUNTLIMIT", "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 2_147_483_647u64}})
}

/// Replaces the policy `name` of `level` with `body` (plus its name).
async fn put_policy(c: &Client, level: &str, name: &str, mut body: Value) {
    body["policyName"] = json!(name);
    let (status, answer) = c
        .rest(
            ADMIN,
            Method::PUT,
            &format!("/admin/v4/throttling/policies/{level}/{name}"),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "PUT {level}/{name}: {answer}");
    // The event reaches the in-process gateway within milliseconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Sleeps until 50 ms into the next window of `seconds` seconds (aligned to the epoch).
async fn next_window(seconds: u64) {
    let now = tollgate_model::now_millis() as u64;
    let len = seconds * 1000;
    tokio::time::sleep(Duration::from_millis(len - now % len + 50)).await;
}

/// What `n` calls in one fresh window got: how many passed, the `X-RateLimit-Remaining`
/// of each pass, and the first refusal (status, headers, body).
struct Round {
    admitted: usize,
    remaining: Vec<u64>,
    refusal: Option<(u16, reqwest::header::HeaderMap, Value)>,
}

async fn round(c: &Client, path: &str, token: &str, window_seconds: u64, n: usize) -> Round {
    next_window(window_seconds).await;
    let mut round = Round {
        admitted: 0,
        remaining: Vec::new(),
        refusal: None,
    };
    for _ in 0..n {
        let (status, headers, body) = c.call(Method::GET, path, Some(token)).await;
        if status == 200 {
            round.admitted += 1;
            if let Some(r) = headers.get("x-ratelimit-remaining") {
                round.remaining.push(r.to_str().unwrap().parse().unwrap());
            }
        } else if round.refusal.is_none() {
            round.refusal = Some((status, headers, body));
        }
    }
    round
}

/// Asserts a round admitted `limit` calls and was then refused with `code`.
fn assert_refused(round: &Round, limit: usize, code: i64, window_seconds: u64) {
    assert_eq!(round.admitted, limit, "admitted");
    let (status, headers, body) = round.refusal.as_ref().expect("a refusal");
    assert_eq!((*status, body["code"].clone()), (429, json!(code)), "{body}");
    assert_eq!(body["message"], "Message throttled out");
    let header = |name: &str| -> u64 {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{name} on the 429"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let retry = header("retry-after");
    assert!((1..=window_seconds).contains(&retry), "Retry-After {retry}");
    assert_eq!(header("x-ratelimit-limit"), limit as u64);
    assert_eq!(header("x-ratelimit-remaining"), 0);
    assert!(header("x-ratelimit-reset") <= window_seconds);
}

#[tokio::test]
async fn every_kind_of_limit_refuses_with_its_code_and_rate_limit_headers() {
    let backend = backend().await;
    let (_node, c) = ready_node(tollgate()).await;
    let (_, _, token) = c
        .subscribed(
            "Throttled",
            "/throttled",
            &format!("http://{}/v1", backend.addr),
            standard_operations(),
        )
        .await;
    let path = "/throttled/1.0.0/pets/1";
    let (status, body) = c.eventually(path, &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");

    // The subscription's plan: 5 per 10 s. Passes count down X-RateLimit-Remaining.
    put_policy(&c, "subscription", "Gold", json!({"defaultLimit": per_seconds(5, 10)})).await;
    let r = round(&c, path, &token, 10, 8).await;
    assert_refused(&r, 5, 900_804, 10);
    assert_eq!(r.remaining, [4, 3, 2, 1, 0]);

    // Burst control on top of a large quota: 2 per second.
    put_policy(
        &c,
        "subscription",
        "Gold",
        json!({"defaultLimit": per_seconds(100_000, 60), "rateLimitCount": 2, "rateLimitTimeUnit": "sec"}),
    )
    .await;
    let r = round(&c, path, &token, 1, 4).await;
    assert_refused(&r, 2, 900_807, 1);

    // A plan that does not stop on quota: every call passes and the excess is counted.
    put_policy(
        &c,
        "subscription",
        "Gold",
        json!({"defaultLimit": per_seconds(2, 10), "stopOnQuotaReach": false}),
    )
    .await;
    let over_before = over_quota(&c).await;
    let r = round(&c, path, &token, 10, 6).await;
    assert_eq!((r.admitted, r.refusal.is_none()), (6, true), "never refused");
    assert_eq!(
        over_quota(&c).await - over_before,
        4.0,
        "the 4 calls beyond the quota are counted"
    );
    put_policy(&c, "subscription", "Gold", json!({"defaultLimit": unlimited()})).await;

    // The application's policy (the application has Unlimited): 3 per 10 s.
    put_policy(
        &c,
        "application",
        "Unlimited",
        json!({"defaultLimit": per_seconds(3, 10)}),
    )
    .await;
    let r = round(&c, path, &token, 10, 5).await;
    assert_refused(&r, 3, 900_803, 10);
    put_policy(&c, "application", "Unlimited", json!({"defaultLimit": unlimited()})).await;

    // The resource's advanced policy (Unlimited by default): 2 per 10 s.
    put_policy(&c, "advanced", "Unlimited", json!({"defaultLimit": per_seconds(2, 10)})).await;
    let r = round(&c, path, &token, 10, 4).await;
    assert_refused(&r, 2, 900_802, 10);
    put_policy(&c, "advanced", "Unlimited", json!({"defaultLimit": unlimited()})).await;

    // A custom rule per client address, for GET calls only.
    let (status, rule) = c
        .rest(
            ADMIN,
            Method::POST,
            "/admin/v4/throttling/policies/custom",
            Some(
                json!({"policyName": "PerClient", "keyTemplate": "$clientIp", "condition": "$method == 'GET'",
                        "defaultLimit": per_seconds(3, 10)}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = round(&c, path, &token, 10, 5).await;
    assert_refused(&r, 3, 900_806, 10);
    // Other methods are not counted by the rule.
    let (status, _, body) = c.call(Method::POST, "/throttled/1.0.0/pets", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
}

/// `tollgate_gateway_throttle_over_quota_total` from the node's `/metrics`.
async fn over_quota(c: &Client) -> f64 {
    let text = tollgate_testkit::metrics_text(c.mgmt).await;
    tollgate_testkit::metric_value(&text, "tollgate_gateway_throttle_over_quota_total").unwrap_or(0.0)
}
