//! Starting the analytics component on a node: [`start`] makes the in-memory counts
//! (before anything is served, since the management routes and an in-process gateway
//! add to them), and [`Analytics::start_loops`] flushes and expires them once the node has
//! started up (after migrations).

use crate::{Aggregator, AnalyticsState, Retention};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_config::AnalyticsConfig;
use tollgate_http::Authenticator;
use tollgate_http::cluster::ClusterSecret;
use tollgate_store::Database;

/// The running analytics component.
pub struct Analytics {
    /// Gateways' events are added here and written to the AM database every flush.
    pub aggregator: Arc<Aggregator>,
    am: Database,
    flush_interval: Duration,
    retention: Retention,
}

/// Makes the component's counts over `am`, from `[analytics]`.
pub fn start(am: Database, config: &AnalyticsConfig) -> Analytics {
    Analytics {
        aggregator: Arc::new(Aggregator::new(config.max_keys)),
        am,
        flush_interval: config.flush_interval,
        retention: Retention {
            minute: config.minute_retention,
            hour: config.hour_retention,
            day: config.day_retention,
        },
    }
}

impl Analytics {
    /// What its REST and ingest routes need.
    pub fn state(&self, authenticator: Authenticator, cluster_secret: ClusterSecret) -> AnalyticsState {
        AnalyticsState {
            am: self.am.clone(),
            aggregator: self.aggregator.clone(),
            authenticator,
            cluster_secret,
            retention: self.retention,
        }
    }

    /// Spawns the flush and retention loops, until `shutdown`.
    pub fn start_loops(&self, shutdown: &CancellationToken) {
        tokio::spawn(crate::flush_loop(
            self.aggregator.clone(),
            self.am.clone(),
            self.flush_interval,
            shutdown.clone(),
        ));
        tokio::spawn(crate::retention_loop(self.am.clone(), self.retention, shutdown.clone()));
    }
}
