//! Aggregated API-call analytics (AM database): per time bucket (minute, hour, day) and
//! combination of dimensions, counts, sums and latency histograms. Rows are added to
//! (never replaced), so a bucket may be written by several flushes; queries group them
//! by any dimensions; retention deletes a granularity's rows before a cut-off.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result};
use serde_json::Value;
use std::sync::LazyLock;
use tollgate_model::TenantId;
use tollgate_model::analytics::{LATENCY_BUCKETS, latency_bucket};

/// How long one row's time bucket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Granularity {
    /// Every granularity, finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    /// As stored and as the REST API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// The bucket's length in ms.
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Minute => 60_000,
            Granularity::Hour => 3_600_000,
            Granularity::Day => 86_400_000,
        }
    }

    /// The start of the bucket `ts` (epoch ms) falls in.
    pub fn floor(self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.millis())
    }
}

impl std::str::FromStr for Granularity {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("`{s}` must be minute, hour or day"))
    }
}

/// The dimensions one row is counted under.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UsageKey {
    /// The bucket's start (epoch ms, a multiple of the granularity).
    pub bucket_start: i64,
    /// Gateway environment.
    pub environment: String,
    /// API id ("" when no API matched).
    pub api_id: String,
    /// API name (kept for display after the API is gone).
    pub api_name: String,
    /// API version.
    pub api_version: String,
    /// Resource template.
    pub resource: String,
    /// HTTP method.
    pub method: String,
    /// Application id ("" for unauthenticated calls).
    pub application_id: String,
    /// End user ("" when unknown).
    pub subscriber: String,
    /// Response status.
    pub status: i64,
    /// Gateway error code (0: none).
    pub error_code: i64,
}

/// What the calls under one key add up to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageCounts {
    /// Calls.
    pub requests: i64,
    /// Response bytes (as declared by backends).
    pub response_bytes: i64,
    /// Sum of gateway latencies, ms.
    pub gateway_latency_sum: f64,
    /// Calls that reached the backend.
    pub backend_calls: i64,
    /// Sum of backend latencies, ms.
    pub backend_latency_sum: f64,
    /// Gateway-latency histogram.
    pub gateway_buckets: [i64; LATENCY_BUCKETS],
    /// Backend-latency histogram.
    pub backend_buckets: [i64; LATENCY_BUCKETS],
}

impl UsageCounts {
    /// Counts one call.
    pub fn record(&mut self, gateway_ms: f64, backend_ms: Option<f64>, bytes: Option<u64>) {
        self.requests += 1;
        self.response_bytes += bytes.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX));
        self.gateway_latency_sum += gateway_ms;
        self.gateway_buckets[latency_bucket(gateway_ms)] += 1;
        if let Some(ms) = backend_ms {
            self.backend_calls += 1;
            self.backend_latency_sum += ms;
            self.backend_buckets[latency_bucket(ms)] += 1;
        }
    }

    /// Adds another row's counts.
    pub fn merge(&mut self, other: &UsageCounts) {
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.gateway_latency_sum += other.gateway_latency_sum;
        self.backend_calls += other.backend_calls;
        self.backend_latency_sum += other.backend_latency_sum;
        for i in 0..LATENCY_BUCKETS {
            self.gateway_buckets[i] += other.gateway_buckets[i];
            self.backend_buckets[i] += other.backend_buckets[i];
        }
    }
}

const KEY_COLUMNS: [&str; 11] = [
    "bucket_start",
    "environment",
    "api_id",
    "api_name",
    "api_version",
    "resource",
    "method",
    "application_id",
    "subscriber",
    "status",
    "error_code",
];

const SUM_COLUMNS: [&str; 5] = [
    "requests",
    "response_bytes",
    "gateway_latency_sum",
    "backend_calls",
    "backend_latency_sum",
];

fn bucket_columns() -> Vec<String> {
    (0..LATENCY_BUCKETS)
        .map(|i| format!("gw_b{i}"))
        .chain((0..LATENCY_BUCKETS).map(|i| format!("be_b{i}")))
        .collect()
}

/// The additive upsert, built once from the column lists.
static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let added: Vec<String> = SUM_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(bucket_columns())
        .collect();
    let columns: Vec<String> = std::iter::once("granularity".to_string())
        .chain(KEY_COLUMNS.iter().map(|c| c.to_string()))
        .chain(added.iter().cloned())
        .collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = added
        .iter()
        .map(|c| format!("{c} = analytics_usage.{c} + excluded.{c}"))
        .chain([
            "api_name = excluded.api_name".into(),
            "api_version = excluded.api_version".into(),
        ])
        .collect();
    format!(
        "INSERT INTO analytics_usage ({}) VALUES ({}) ON CONFLICT (granularity, bucket_start, environment, api_id, \
         resource, method, application_id, subscriber, status, error_code) DO UPDATE SET {}",
        columns.join(", "),
        placeholders.join(", "),
        updates.join(", ")
    )
});

/// Rows of one granularity, as [`add`] takes them.
pub type Rows = (Granularity, Vec<(UsageKey, UsageCounts)>);

/// Adds rows of any granularities to what is stored, in one transaction (all or none).
pub async fn add(db: &Database, batches: &[Rows]) -> Result<()> {
    let mut tx = db.begin().await?;
    for (granularity, rows) in batches {
        for (k, c) in rows {
            upsert(&mut tx, *granularity, k, c).await?;
        }
    }
    tx.commit().await
}

async fn upsert(tx: &mut crate::Tx, granularity: Granularity, k: &UsageKey, c: &UsageCounts) -> Result<()> {
    {
        on_tx!(tx, |conn| {
            let mut q = sqlx::query(UPSERT.as_str())
                .bind(granularity.as_str())
                .bind(k.bucket_start)
                .bind(&k.environment)
                .bind(&k.api_id)
                .bind(&k.api_name)
                .bind(&k.api_version)
                .bind(&k.resource)
                .bind(&k.method)
                .bind(&k.application_id)
                .bind(&k.subscriber)
                .bind(k.status)
                .bind(k.error_code)
                .bind(c.requests)
                .bind(c.response_bytes)
                .bind(c.gateway_latency_sum)
                .bind(c.backend_calls)
                .bind(c.backend_latency_sum);
            for n in c.gateway_buckets.iter().chain(c.backend_buckets.iter()) {
                q = q.bind(*n);
            }
            q.execute(conn).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Deletes the rows of `granularity` whose bucket started before `before` (epoch ms);
/// returns how many went.
pub async fn delete_before(db: &Database, granularity: Granularity, before: i64) -> Result<u64> {
    Ok(on_pool!(db.writer(), |p| sqlx::query(
        "DELETE FROM analytics_usage WHERE granularity = $1 AND bucket_start < $2"
    )
    .bind(granularity.as_str())
    .bind(before)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?)
}

/// How many rows of `granularity` are stored (for retention checks and tests).
pub async fn row_count(db: &Database, granularity: Granularity) -> Result<i64> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM analytics_usage WHERE granularity = $1"
    )
    .bind(granularity.as_str())
    .fetch_one(p)
    .await)?)
}

/// SQL expressions with the names their values are reported under.
type Columns = &'static [(&'static str, &'static str)];

/// What a query may group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// The time bucket.
    Time,
    /// The API (id, with its name and version).
    Api,
    /// The resource template and method.
    Resource,
    /// The application (id, with its name).
    Application,
    /// The end user.
    Subscriber,
    /// The gateway environment.
    Environment,
    /// The status class (2, 3, 4 or 5 for 2xx…).
    StatusClass,
    /// The status code.
    Status,
    /// The gateway error code (0: none).
    ErrorCode,
}

impl Dimension {
    /// Every dimension.
    pub const ALL: [Dimension; 9] = [
        Dimension::Time,
        Dimension::Api,
        Dimension::Resource,
        Dimension::Application,
        Dimension::Subscriber,
        Dimension::Environment,
        Dimension::StatusClass,
        Dimension::Status,
        Dimension::ErrorCode,
    ];

    /// As the REST API names it (`groupBy=api,statusClass`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Time => "time",
            Dimension::Api => "api",
            Dimension::Resource => "resource",
            Dimension::Application => "application",
            Dimension::Subscriber => "subscriber",
            Dimension::Environment => "environment",
            Dimension::StatusClass => "statusClass",
            Dimension::Status => "status",
            Dimension::ErrorCode => "errorCode",
        }
    }

    /// The grouped expressions and, after them, the displayed ones (aggregated), with
    /// the names they are reported under.
    fn columns(self) -> (Columns, Columns) {
        match self {
            Dimension::Time => (&[("bucket_start", "time")], &[]),
            Dimension::Api => (
                &[("api_id", "apiId")],
                &[("MAX(api_name)", "apiName"), ("MAX(api_version)", "apiVersion")],
            ),
            Dimension::Resource => (&[("resource", "resource"), ("method", "method")], &[]),
            Dimension::Application => (
                &[("application_id", "applicationId")],
                &[(
                    "MAX((SELECT a.name FROM applications a WHERE a.id = analytics_usage.application_id))",
                    "applicationName",
                )],
            ),
            Dimension::Subscriber => (&[("subscriber", "subscriber")], &[]),
            Dimension::Environment => (&[("environment", "environment")], &[]),
            Dimension::StatusClass => (&[("(status / 100)", "statusClass")], &[]),
            Dimension::Status => (&[("status", "status")], &[]),
            Dimension::ErrorCode => (&[("error_code", "errorCode")], &[]),
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Dimension::ALL.iter().map(|d| d.as_str()).collect();
            format!("`{s}` is not a dimension; use {}", names.join(", "))
        })
    }
}

/// Which rows a query reads.
#[derive(Clone, Debug, Default)]
pub struct UsageFilter {
    /// First bucket start included (epoch ms).
    pub from: i64,
    /// First bucket start excluded (epoch ms).
    pub to: i64,
    /// Only this API.
    pub api_id: Option<String>,
    /// Only this application.
    pub application_id: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only calls to APIs of this tenant (publishers).
    pub tenant_apis: Option<TenantId>,
    /// Only calls from applications this user owns in `tenant_apis`' tenant or the
    /// default one (subscribers).
    pub application_owner: Option<(TenantId, String)>,
}

/// One group of a query's answer: the dimension values (by their reported names) and
/// the measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageGroup {
    /// Dimension values, in the order asked, as JSON (numbers for time and statuses).
    pub dimensions: Vec<(&'static str, Value)>,
    /// What the calls add up to.
    pub counts: UsageCounts,
    /// Calls answered 4xx.
    pub client_errors: i64,
    /// Calls answered 5xx.
    pub server_errors: i64,
    /// Calls refused by throttling (429).
    pub throttled: i64,
}

enum Arg {
    Int(i64),
    Text(String),
}

/// Adds a bound argument and gives its placeholder.
fn placeholder(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// The rows of `granularity` matching `filter`, grouped by `group_by`, busiest first
/// (by time when grouped by time), at most `limit` groups.
pub async fn query(
    db: &Database,
    granularity: Granularity,
    group_by: &[Dimension],
    filter: &UsageFilter,
    limit: i64,
) -> Result<Vec<UsageGroup>> {
    let mut args = vec![
        Arg::Text(granularity.as_str().into()),
        Arg::Int(filter.from),
        Arg::Int(filter.to),
    ];
    let mut conditions = vec![
        "granularity = $1".to_string(),
        "bucket_start >= $2".into(),
        "bucket_start < $3".into(),
    ];
    if let Some(v) = &filter.api_id {
        conditions.push(format!("api_id = {}", placeholder(&mut args, Arg::Text(v.clone()))));
    }
    if let Some(v) = &filter.application_id {
        conditions.push(format!(
            "application_id = {}",
            placeholder(&mut args, Arg::Text(v.clone()))
        ));
    }
    if let Some(v) = &filter.environment {
        conditions.push(format!(
            "environment = {}",
            placeholder(&mut args, Arg::Text(v.clone()))
        ));
    }
    if let Some(t) = filter.tenant_apis {
        let tenant = placeholder(&mut args, Arg::Text(t.to_string()));
        conditions.push(format!("api_id IN (SELECT id FROM apis WHERE tenant_id = {tenant})"));
    }
    if let Some((t, owner)) = &filter.application_owner {
        let tenant = placeholder(&mut args, Arg::Text(t.to_string()));
        let owner = placeholder(&mut args, Arg::Text(owner.clone()));
        conditions.push(format!(
            "application_id IN (SELECT id FROM applications WHERE tenant_id = {tenant} AND owner = {owner})"
        ));
    }
    let mut grouped = Vec::new();
    let mut selected = Vec::new();
    for d in group_by {
        let (keys, shown) = d.columns();
        for (expr, _) in keys {
            grouped.push(expr.to_string());
        }
        selected.extend(keys.iter().chain(shown.iter()).map(|(e, n)| (*e, *n)));
    }
    let mut select: Vec<String> = selected.iter().map(|(e, _)| e.to_string()).collect();
    select.extend(
        SUM_COLUMNS
            .iter()
            .map(|c| {
                if c.ends_with("_sum") {
                    format!("SUM({c})")
                } else {
                    format!("CAST(SUM({c}) AS BIGINT)")
                }
            })
            .chain(bucket_columns().iter().map(|c| format!("CAST(SUM({c}) AS BIGINT)")))
            .chain([
                "CAST(SUM(CASE WHEN status >= 400 AND status < 500 THEN requests ELSE 0 END) AS BIGINT)".to_string(),
                "CAST(SUM(CASE WHEN status >= 500 THEN requests ELSE 0 END) AS BIGINT)".into(),
                "CAST(SUM(CASE WHEN status = 429 THEN requests ELSE 0 END) AS BIGINT)".into(),
            ]),
    );
    let order = if group_by.contains(&Dimension::Time) {
        "bucket_start".to_string()
    } else {
        "SUM(requests) DESC".to_string()
    };
    let mut sql = format!(
        "SELECT {} FROM analytics_usage WHERE {}",
        select.join(", "),
        conditions.join(" AND ")
    );
    if !grouped.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", grouped.join(", ")));
    }
    // An ungrouped query over no rows still answers one row of NULL sums: none wanted.
    sql.push_str(&format!(" HAVING COUNT(*) > 0 ORDER BY {order} LIMIT {}", limit.max(1)));
    let shown = selected.len();
    let names: Vec<&'static str> = selected.iter().map(|(_, n)| *n).collect();
    on_pool!(db.reader(), |p| {
        // Safe: every identifier comes from the fixed lists above; values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for a in &args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(s) => q.bind(s.as_str()),
            };
        }
        let rows = q.fetch_all(p).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            use sqlx::Row;
            let mut g = UsageGroup::default();
            for (i, name) in names.iter().enumerate() {
                let v = match *name {
                    "time" | "statusClass" | "status" | "errorCode" => {
                        Value::from(row.try_get::<Option<i64>, _>(i)?.unwrap_or_default())
                    }
                    _ => row
                        .try_get::<Option<String>, _>(i)?
                        .map(Value::String)
                        .unwrap_or(Value::Null),
                };
                g.dimensions.push((name, v));
            }
            let int = |i: usize| -> std::result::Result<i64, sqlx::Error> {
                Ok(row.try_get::<Option<i64>, _>(i)?.unwrap_or_default())
            };
            let float = |i: usize| -> std::result::Result<f64, sqlx::Error> {
                Ok(row.try_get::<Option<f64>, _>(i)?.unwrap_or_default())
            };
            let c = &mut g.counts;
            c.requests = int(shown)?;
            c.response_bytes = int(shown + 1)?;
            c.gateway_latency_sum = float(shown + 2)?;
            c.backend_calls = int(shown + 3)?;
            c.backend_latency_sum = float(shown + 4)?;
            for b in 0..LATENCY_BUCKETS {
                c.gateway_buckets[b] = int(shown + 5 + b)?;
                c.backend_buckets[b] = int(shown + 5 + LATENCY_BUCKETS + b)?;
            }
            let rest = shown + 5 + 2 * LATENCY_BUCKETS;
            g.client_errors = int(rest)?;
            g.server_errors = int(rest + 1)?;
            g.throttled = int(rest + 2)?;
            out.push(g);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_to_their_granularity() {
        let t = 1_700_000_123_456; // 2023-11-14T22:15:23.456Z
        assert_eq!(Granularity::Minute.floor(t), 1_700_000_100_000);
        assert_eq!(Granularity::Hour.floor(t), 1_699_999_200_000);
        assert_eq!(Granularity::Day.floor(t) % 86_400_000, 0);
        assert_eq!("hour".parse::<Granularity>(), Ok(Granularity::Hour));
        assert!("week".parse::<Granularity>().is_err());
    }

    #[test]
    fn the_upsert_adds_every_measure() {
        let sql = UPSERT.as_str();
        assert!(sql.contains("requests = analytics_usage.requests + excluded.requests"));
        assert!(sql.contains("be_b13 = analytics_usage.be_b13 + excluded.be_b13"));
        assert!(sql.contains(&format!(
            "${}",
            1 + KEY_COLUMNS.len() + SUM_COLUMNS.len() + 2 * LATENCY_BUCKETS
        )));
    }
}
