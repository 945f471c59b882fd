//! Storage stays bounded: five simulated days of traffic, aggregated and flushed as the
//! component does, then expired as of the last day. Minute rows older than the minute
//! retention go; the same calls are still counted, coarser, in the hour and day rows.
//! Runs on SQLite and, when reachable, on a fresh PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tollgate_analytics::flush::{expire, flush_once};
use tollgate_analytics::{Aggregator, Retention};
use tollgate_config::DatabaseConfig;
use tollgate_model::analytics::{UsageBatch, UsageEvent};
use tollgate_store::analytics::{Granularity, UsageFilter, query, row_count};
use tollgate_store::{DatabaseName, connect};
use tollgate_testkit::all_engines;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

#[tokio::test]
async fn old_minute_rows_are_removed_while_hours_and_days_keep_the_counts() {
    for t in all_engines("analytics_retention").await {
        let am = connect(DatabaseName::Am, t.url(), &DatabaseConfig::default())
            .await
            .unwrap();
        am.migrate().await.unwrap();
        let aggregator = Aggregator::new(1_000_000);
        let start = 1_790_000_000_000 / DAY * DAY; // a UTC midnight
        // Every 10 minutes for five days, two calls (one 200, one 500).
        let mut calls = 0i64;
        for day in 0..5 {
            let events: Vec<UsageEvent> = (0..(DAY / (10 * MINUTE)))
                .flat_map(|i| {
                    let ts = start + day * DAY + i * 10 * MINUTE;
                    [200u16, 500].map(|status| UsageEvent {
                        timestamp: ts,
                        api_id: "api".into(),
                        method: "GET".into(),
                        status,
                        gateway_latency_ms: 3.0,
                        ..UsageEvent::default()
                    })
                })
                .collect();
            calls += events.len() as i64;
            aggregator.add(&UsageBatch {
                gateway_id: "g".into(),
                environment: "Default".into(),
                events,
            });
            // One flush per simulated day, as the component flushes as it goes.
            flush_once(&aggregator, &am).await.unwrap();
        }
        let minutes_before = row_count(&am, Granularity::Minute).await.unwrap();
        assert_eq!(minutes_before, 5 * 144 * 2, "{}", t.engine());
        let retention = Retention {
            minute: Duration::from_secs(2 * 86_400),
            hour: Duration::from_secs(90 * 86_400),
            day: Duration::from_secs(1000 * 86_400),
        };
        let now = start + 5 * DAY;
        let deleted = expire(&am, &retention, now).await.unwrap();
        assert_eq!(deleted[0], (Granularity::Minute, 3 * 144 * 2), "{}", t.engine());
        assert_eq!((deleted[1].1, deleted[2].1), (0, 0), "hours and days are kept");
        assert_eq!(row_count(&am, Granularity::Minute).await.unwrap(), 2 * 144 * 2);
        assert_eq!(row_count(&am, Granularity::Hour).await.unwrap(), 5 * 24 * 2);
        assert_eq!(row_count(&am, Granularity::Day).await.unwrap(), 5 * 2);
        let all = UsageFilter {
            from: start,
            to: now,
            ..UsageFilter::default()
        };
        for g in [Granularity::Hour, Granularity::Day] {
            let total = query(&am, g, &[], &all, 10).await.unwrap();
            assert_eq!(total[0].counts.requests, calls, "{} {}", g.as_str(), t.engine());
            assert_eq!(total[0].server_errors, calls / 2);
        }
        // A year later the hours are gone too; days stay.
        let deleted = expire(&am, &retention, now + 365 * DAY).await.unwrap();
        assert_eq!(deleted[1], (Granularity::Hour, 5 * 24 * 2));
        assert_eq!(row_count(&am, Granularity::Day).await.unwrap(), 5 * 2);
    }
}
