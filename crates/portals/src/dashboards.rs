//! The analytics dashboards: the Publisher's per-API page (traffic, latency, errors, top
//! applications), the Developer Portal's per-application page (usage, and the quota left
//! in each plan's current window) and the Admin's platform page (traffic, per gateway
//! environment, throttled calls, top APIs and errors). Each reads the analytics REST API
//! in-process as the signed-in user, so the REST API's role rules decide what is shown.

use crate::PortalsState;
use crate::charts::{bar_chart, line_chart};
use crate::page::merge;
use crate::rest::{DEVPORTAL, PUBLISHER, RestError, enc};
use crate::session::Visitor;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tollgate_model::throttle_window::{TimeUnit, window};
use tollgate_model::{Role, now_millis, parse_rfc3339, rfc3339};

/// Where the analytics REST API lives.
pub const ANALYTICS: &str = "/api/am/analytics/v1";

/// The time ranges a dashboard offers.
const RANGES: [(&str, &str, i64); 5] = [
    ("1h", "last hour", 3_600_000),
    ("6h", "6 hours", 6 * 3_600_000),
    ("24h", "24 hours", 86_400_000),
    ("7d", "7 days", 7 * 86_400_000),
    ("30d", "30 days", 30 * 86_400_000),
];

/// Chart sizes (px); the SVG scales down on narrow screens.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;

/// The dashboard routes, for the portals this node serves.
pub fn routes(publisher: bool, devportal: bool, admin: bool) -> Router<PortalsState> {
    let mut r = Router::new();
    if publisher {
        r = r.route("/publisher/apis/{api_id}/analytics", get(api_dashboard));
    }
    if devportal {
        r = r.route("/devportal/applications/{app_id}/analytics", get(application_dashboard));
    }
    if admin {
        r = r.route("/admin/analytics", get(platform_dashboard));
    }
    r
}

#[derive(Debug, Default, Deserialize)]
struct RangeQuery {
    range: Option<String>,
}

/// The chosen range (key, length in ms) and the links to the others.
fn range(q: &RangeQuery) -> ((&'static str, i64), Value) {
    let chosen = RANGES
        .iter()
        .find(|(k, _, _)| Some(*k) == q.range.as_deref())
        .unwrap_or(&RANGES[0]);
    let links: Vec<Value> = RANGES
        .iter()
        .map(|(k, label, _)| json!({ "key": k, "label": label, "current": k == &chosen.0 }))
        .collect();
    ((chosen.0, chosen.2), Value::Array(links))
}

/// `GET /usage` with these parameters, as the visitor.
async fn usage(state: &PortalsState, visitor: &Visitor, params: &[(&str, &str)]) -> Result<Value, RestError> {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    state
        .rest()
        .get(visitor.token(), &format!("{ANALYTICS}/usage?{query}"))
        .await
}

/// Every bucket start of an answer's range, and its label.
fn buckets(answer: &Value) -> (Vec<i64>, Vec<String>) {
    let step = match answer["granularity"].as_str() {
        Some("hour") => 3_600_000,
        Some("day") => 86_400_000,
        _ => 60_000,
    };
    let from = answer["from"].as_str().and_then(parse_rfc3339).unwrap_or(0);
    let to = answer["to"].as_str().and_then(parse_rfc3339).unwrap_or(from);
    let starts: Vec<i64> = (0..)
        .map(|i| from + i * step)
        .take_while(|t| *t < to)
        .take(2_000)
        .collect();
    let labels = starts
        .iter()
        .map(|t| {
            let s = rfc3339(*t);
            // 2026-11-24T17:30:00Z → 17:30 for minutes and hours, 11-24 for days.
            let part = if step >= 86_400_000 {
                s.get(5..10)
            } else {
                s.get(11..16)
            };
            part.unwrap_or(&s).to_string()
        })
        .collect();
    (starts, labels)
}

/// A series per value of `key` (`None`: one series) of `measure` per bucket.
fn series(
    answer: &Value,
    starts: &[i64],
    key: Option<&str>,
    name: impl Fn(&Value) -> String,
    measure: impl Fn(&Value) -> f64,
) -> Vec<(String, Vec<f64>)> {
    let index: BTreeMap<i64, usize> = starts.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for g in answer["list"].as_array().into_iter().flatten() {
        let Some(i) = g["time"].as_str().and_then(parse_rfc3339).and_then(|t| index.get(&t)) else {
            continue;
        };
        let series_name = key.map_or_else(String::new, |k| name(&g[k]));
        out.entry(series_name).or_insert_with(|| vec![0.0; starts.len()])[*i] += measure(g);
    }
    out.into_iter().collect()
}

fn class_name(v: &Value) -> String {
    v.as_i64().map_or_else(|| "other".into(), |c| format!("{c}xx"))
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Traffic by status class and gateway latency over time, from `time,statusClass` and
/// `time` answers.
fn time_charts(by_class: &Value, by_time: &Value) -> Value {
    let (starts, labels) = buckets(by_time);
    let traffic = series(by_class, &starts, Some("statusClass"), class_name, |g| {
        number(&g["requests"])
    });
    let mut latency = Vec::new();
    for (name, path) in [
        ("gateway p50", ("gatewayLatencyMs", "p50")),
        ("gateway p95", ("gatewayLatencyMs", "p95")),
        ("backend p95", ("backendLatencyMs", "p95")),
    ] {
        let mut s = series(
            by_time,
            &starts,
            None,
            |_| String::new(),
            |g| number(&g[path.0][path.1]),
        );
        if let Some((_, values)) = s.pop() {
            latency.push((name.to_string(), values));
        }
    }
    let throttled = series(by_time, &starts, None, |_| String::new(), |g| number(&g["throttled"]))
        .into_iter()
        .map(|(_, v)| ("throttled (429)".to_string(), v))
        .collect::<Vec<_>>();
    json!({
        "traffic": line_chart(&labels, &traffic, WIDTH, HEIGHT),
        "latency": line_chart(&labels, &latency, WIDTH, HEIGHT),
        "throttled": line_chart(&labels, &throttled, WIDTH, HEIGHT),
    })
}

/// The totals of an ungrouped answer.
fn totals(answer: &Value) -> Value {
    answer["list"]
        .get(0)
        .cloned()
        .unwrap_or_else(|| json!({ "requests": 0 }))
}

/// Error rows (status ≥ 400) of a `status,errorCode` answer.
fn errors(answer: &Value) -> Vec<Value> {
    answer["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["status"].as_i64().unwrap_or(0) >= 400)
        .cloned()
        .collect()
}

/// A bar chart of the top groups of an answer, labelled by `label`.
fn top(answer: &Value, label: impl Fn(&Value) -> String) -> Value {
    let items: Vec<(String, f64)> = answer["list"]
        .as_array()
        .into_iter()
        .flatten()
        .take(10)
        .map(|g| (label(g), number(&g["requests"])))
        .collect();
    json!(bar_chart(&items, WIDTH))
}

/// The page when the analytics REST API is not on this node, or refused.
fn unavailable(state: &PortalsState, visitor: &Visitor, e: RestError, role: &str) -> Response {
    if e.status == 404 {
        return state.pages().error(
            axum::http::StatusCode::NOT_FOUND,
            "Analytics are not available here",
            "This node does not run the analytics component; open the portal on a node that does (all-in-one or control-plane).",
        );
    }
    crate::page::failed(state.pages(), visitor, e, role)
}

/// The Publisher's dashboard of one API.
async fn api_dashboard(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator, Role::Publisher]) {
        return res;
    }
    let ((key, ms), ranges) = range(&q);
    let from = rfc3339(now_millis() - ms);
    let api = match state
        .rest()
        .get(visitor.token(), &format!("{PUBLISHER}/apis/{}", enc(&api_id)))
        .await
    {
        Ok(a) => a,
        Err(e) => return crate::page::failed(state.pages(), &visitor, e, "publisher"),
    };
    let base = [("from", from.as_str()), ("apiId", api_id.as_str())];
    let answers = async {
        let by_class = usage(&state, &visitor, &[base[0], base[1], ("groupBy", "time,statusClass")]).await?;
        let by_time = usage(&state, &visitor, &[base[0], base[1], ("groupBy", "time")]).await?;
        let total = usage(&state, &visitor, &base).await?;
        let errs = usage(&state, &visitor, &[base[0], base[1], ("groupBy", "status,errorCode")]).await?;
        let apps = usage(&state, &visitor, &[base[0], base[1], ("groupBy", "application")]).await?;
        let resources = usage(&state, &visitor, &[base[0], base[1], ("groupBy", "resource")]).await?;
        Ok::<_, RestError>((by_class, by_time, total, errs, apps, resources))
    }
    .await;
    match answers {
        Ok((by_class, by_time, total, errs, apps, resources)) => state.pages().render(
            &visitor,
            "publisher/analytics.html",
            merge(
                time_charts(&by_class, &by_time),
                json!({
                    "api": api, "range": key, "ranges": ranges, "totals": totals(&total),
                    "granularity": by_time["granularity"], "errors": errors(&errs),
                    "top_applications": top(&apps, |g| g["applicationName"].as_str()
                        .or(g["applicationId"].as_str()).filter(|s| !s.is_empty())
                        .unwrap_or("(no application)").to_string()),
                    "resources": resources["list"],
                }),
            ),
        ),
        Err(e) => unavailable(&state, &visitor, e, "publisher"),
    }
}

/// The Admin's dashboard of the whole platform.
async fn platform_dashboard(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Query(q): Query<RangeQuery>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let ((key, ms), ranges) = range(&q);
    let from = rfc3339(now_millis() - ms);
    let f = ("from", from.as_str());
    let answers = async {
        let by_class = usage(&state, &visitor, &[f, ("groupBy", "time,statusClass")]).await?;
        let by_time = usage(&state, &visitor, &[f, ("groupBy", "time")]).await?;
        let total = usage(&state, &visitor, &[f]).await?;
        let envs = usage(&state, &visitor, &[f, ("groupBy", "environment")]).await?;
        let apis = usage(&state, &visitor, &[f, ("groupBy", "api")]).await?;
        let errs = usage(&state, &visitor, &[f, ("groupBy", "status,errorCode")]).await?;
        Ok::<_, RestError>((by_class, by_time, total, envs, apis, errs))
    }
    .await;
    match answers {
        Ok((by_class, by_time, total, envs, apis, errs)) => state.pages().render(
            &visitor,
            "admin/analytics.html",
            merge(
                time_charts(&by_class, &by_time),
                json!({
                    "range": key, "ranges": ranges, "totals": totals(&total),
                    "granularity": by_time["granularity"], "environments": envs["list"],
                    "top_apis": top(&apis, |g| match (g["apiName"].as_str(), g["apiVersion"].as_str()) {
                        (Some(n), Some(v)) if !n.is_empty() => format!("{n} {v}"),
                        _ => "(no API matched)".into(),
                    }),
                    "errors": errors(&errs),
                }),
            ),
        ),
        Err(e) => unavailable(&state, &visitor, e, "admin"),
    }
}

/// Calls that used quota in a `status,errorCode` answer: all but those the gateway itself
/// refused with a 4xx (bad credentials, deny policies, throttling), which never reach the
/// throttle counters or are refused by them.
fn admitted(answer: &Value) -> i64 {
    answer["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| {
            let status = g["status"].as_i64().unwrap_or(0);
            !((400..500).contains(&status) && g["errorCode"].as_i64().unwrap_or(0) != 0)
        })
        .map(|g| g["requests"].as_i64().unwrap_or(0))
        .sum()
}

/// A plan's limit as the quota view shows it.
#[derive(Clone, Debug, PartialEq)]
enum Quota {
    /// No effective limit.
    Unlimited,
    /// So many calls per window; the current window.
    Counted {
        limit: i64,
        label: String,
        window: tollgate_model::throttle_window::Window,
    },
}

/// The quota of a plan (a Developer Portal policy summary) at `now`, or `None` when it has
/// no request-count limit of at least a minute to show.
fn quota_of(policy: &Value, now: i64) -> Option<Quota> {
    if policy["quotaPolicyType"] != "REQUESTCOUNT" {
        return None;
    }
    let limit = policy["requestCount"].as_i64()?;
    if limit >= i64::from(i32::MAX) {
        return Some(Quota::Unlimited);
    }
    let unit: TimeUnit = policy["timeUnit"].as_str()?.parse().ok()?;
    let unit_time = u32::try_from(policy["unitTime"].as_i64().unwrap_or(1)).unwrap_or(1);
    let window = window(unit, unit_time, now);
    (window.len() >= 60_000).then(|| Quota::Counted {
        limit,
        label: format!("{unit_time} {unit}"),
        window,
    })
}

/// What the page shows of a quota with `used` calls admitted in its window.
fn quota_json(quota: Option<&Quota>, used: i64) -> Value {
    match quota {
        None => Value::Null,
        Some(Quota::Unlimited) => json!({ "unlimited": true }),
        Some(Quota::Counted { limit, label, window }) => json!({
            "limit": limit, "used": used, "left": (limit - used).max(0),
            "percent": (used.min(*limit) * 100).checked_div(*limit).unwrap_or(0),
            "window": label, "resets": rfc3339(window.end),
        }),
    }
}

/// The Developer Portal's dashboard of one application.
async fn application_dashboard(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let ((key, ms), ranges) = range(&q);
    let now = now_millis();
    let from = rfc3339(now - ms);
    let token = visitor.token();
    let rest = state.rest();
    let context = async {
        let app = rest
            .get(token, &format!("{DEVPORTAL}/applications/{}", enc(&app_id)))
            .await?;
        let subs = rest
            .get(
                token,
                &format!("{DEVPORTAL}/subscriptions?applicationId={}&limit=1000", enc(&app_id)),
            )
            .await?;
        let app_plans = rest
            .get(token, &format!("{DEVPORTAL}/throttling-policies/application"))
            .await?;
        let sub_plans = rest
            .get(token, &format!("{DEVPORTAL}/throttling-policies/subscription"))
            .await?;
        let a = ("applicationId", app_id.as_str());
        let by_class = usage(&state, &visitor, &[("from", &from), a, ("groupBy", "time,statusClass")]).await?;
        let by_time = usage(&state, &visitor, &[("from", &from), a, ("groupBy", "time")]).await?;
        let total = usage(&state, &visitor, &[("from", &from), a]).await?;
        let apis = usage(&state, &visitor, &[("from", &from), a, ("groupBy", "api")]).await?;
        let plan = |list: &Value, name: &str| {
            list["list"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        // Each plan's quota: the application's policy (all APIs), then each subscription's.
        let mut plans: Vec<(String, String, Option<Quota>)> = vec![(
            format!("Application policy {}", app["throttlingPolicy"].as_str().unwrap_or("")),
            String::new(),
            quota_of(&plan(&app_plans, app["throttlingPolicy"].as_str().unwrap_or("")), now),
        )];
        for s in subs["list"].as_array().into_iter().flatten() {
            plans.push((
                format!(
                    "{} {} – plan {}",
                    s["apiInfo"]["name"].as_str().or(s["apiId"].as_str()).unwrap_or(""),
                    s["apiInfo"]["version"].as_str().unwrap_or(""),
                    s["throttlingPolicy"].as_str().unwrap_or("")
                ),
                s["apiId"].as_str().unwrap_or("").to_string(),
                quota_of(&plan(&sub_plans, s["throttlingPolicy"].as_str().unwrap_or("")), now),
            ));
        }
        // Calls that used each quota in its current window.
        let mut quotas = Vec::new();
        for (what, api, q) in &plans {
            let used = match q {
                Some(Quota::Counted { window, .. }) => {
                    let since = rfc3339(window.start);
                    let mut params = vec![("from", since.as_str()), a];
                    if !api.is_empty() {
                        params.push(("apiId", api.as_str()));
                    }
                    params.push(("groupBy", "status,errorCode"));
                    admitted(&usage(&state, &visitor, &params).await?)
                }
                _ => 0,
            };
            quotas.push(json!({ "what": what, "quota": quota_json(q.as_ref(), used) }));
        }
        Ok::<_, RestError>(merge(
            time_charts(&by_class, &by_time),
            json!({
                "application": app, "range": key, "ranges": ranges, "totals": totals(&total),
                "granularity": by_time["granularity"], "apis": apis["list"], "quotas": quotas,
            }),
        ))
    }
    .await;
    match context {
        Ok(ctx) => state.pages().render(&visitor, "devportal/analytics.html", ctx),
        Err(e) => unavailable(&state, &visitor, e, "subscriber"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_counts_the_current_window_only_and_skips_what_it_cannot_show() {
        let plan = |count: i64, unit: &str| json!({"quotaPolicyType": "REQUESTCOUNT", "requestCount": count, "unitTime": 1, "timeUnit": unit});
        let now = 1_790_000_070_000; // 30 s into a minute
        let q = quota_of(&plan(10, "min"), now);
        let Some(Quota::Counted { window, .. }) = &q else {
            panic!("{q:?}");
        };
        assert_eq!(window.start, now - 30_000, "the minute's window");
        let shown = quota_json(q.as_ref(), 4);
        assert_eq!((shown["left"].as_i64(), shown["percent"].as_i64()), (Some(6), Some(40)));
        assert_eq!(quota_json(q.as_ref(), 12)["left"], 0);
        assert!(
            quota_of(&plan(5, "sec"), now).is_none(),
            "per-second windows are not shown"
        );
        assert_eq!(quota_of(&plan(i64::from(i32::MAX), "min"), now), Some(Quota::Unlimited));
        assert!(quota_of(&Value::Null, now).is_none());
    }

    #[test]
    fn refusals_by_the_gateway_use_no_quota_but_backend_errors_do() {
        let answer = json!({"list": [
            {"status": 200, "errorCode": 0, "requests": 5},
            {"status": 404, "errorCode": 0, "requests": 2},
            {"status": 429, "errorCode": 900804, "requests": 3},
            {"status": 403, "errorCode": 900805, "requests": 1},
            {"status": 502, "errorCode": 101503, "requests": 1},
        ]});
        assert_eq!(admitted(&answer), 8);
    }

    #[test]
    fn series_fill_every_bucket_of_the_range() {
        let answer = json!({
            "granularity": "minute", "from": rfc3339(0), "to": rfc3339(180_000),
            "list": [
                {"time": rfc3339(60_000), "statusClass": 2, "requests": 5},
                {"time": rfc3339(60_000), "statusClass": 4, "requests": 1},
                {"time": rfc3339(120_000), "statusClass": 2, "requests": 3},
            ]
        });
        let (starts, labels) = buckets(&answer);
        assert_eq!(labels, ["00:00", "00:01", "00:02"]);
        let s = series(&answer, &starts, Some("statusClass"), class_name, |g| {
            number(&g["requests"])
        });
        assert_eq!(
            s,
            [
                ("2xx".to_string(), vec![0.0, 5.0, 3.0]),
                ("4xx".to_string(), vec![0.0, 1.0, 0.0])
            ]
        );
    }
}
