//! Starting the traffic manager on a node, in the node's three steps: [`start`] (the
//! event feed, hub and shared throttle counters, before any listener is bound),
//! [`TrafficManager::bind`] (its listener and routes) and, once the node has started up,
//! [`TrafficManager::start_compaction`].

use crate::{CounterStore, CounterStoreError, DatabaseHub, EventFeed, TrafficManagerState};
use axum::Router;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tollgate_config::TrafficManagerConfig;
use tollgate_http::cluster::ClusterSecret;
use tollgate_http::listener::{BoundListener, ListenerError};
use tollgate_store::Database;

/// The running traffic manager: what this node's gateway follows in-process and what
/// its listener serves.
pub struct TrafficManager {
    /// The event hub, serving other nodes' watches and this node's own gateway.
    pub hub: Arc<DatabaseHub>,
    /// The shared throttle counters (Redis, else in memory).
    pub counters: Arc<CounterStore>,
    config: TrafficManagerConfig,
}

/// Starts the event feed over `am` (until `shutdown`) and opens the throttle counters:
/// Redis when `traffic_manager.redis_url` is set, else in memory.
pub async fn start(
    am: Database,
    config: &TrafficManagerConfig,
    shutdown: &CancellationToken,
) -> Result<TrafficManager, CounterStoreError> {
    let feed = EventFeed::start(am.clone(), shutdown.clone());
    let hub = DatabaseHub::new(am, feed, config.heartbeat_interval);
    let counters = Arc::new(match &config.redis_url {
        Some(url) => CounterStore::redis(url.expose()).await?,
        None => CounterStore::in_memory(),
    });
    Ok(TrafficManager {
        hub,
        counters,
        config: config.clone(),
    })
}

impl TrafficManager {
    /// Binds `traffic_manager.listen`; returns it with the internal routes (the node adds
    /// its fallback and request metrics).
    pub async fn bind(&self, cluster_secret: ClusterSecret) -> Result<(BoundListener, Router), ListenerError> {
        let router = crate::routes(TrafficManagerState {
            hub: self.hub.clone(),
            counters: self.counters.clone(),
            cluster_secret,
        });
        let listener =
            BoundListener::bind("traffic-manager", self.config.listen, "traffic_manager.listen", None).await?;
        Ok((listener, router))
    }

    /// Spawns the compaction of old events (after migrations), until `shutdown`.
    pub fn start_compaction(&self, shutdown: &CancellationToken) {
        tokio::spawn(crate::compact_loop(
            self.hub.am().clone(),
            self.config.event_retention,
            shutdown.clone(),
        ));
    }
}
