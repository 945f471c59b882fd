//! Starting the gateway on a node, from its configuration and what the rest of the node
//! hands it (plain values and trait objects: no database, no `tollgate-http`), in the
//! node's three steps: [`prepare`] (its id and throttle counters, before any listener is
//! bound), [`Prepared::start`] (its workers, analytics sinks and listeners, bound but not
//! yet served) and, once the node has started up, [`Follower::start`] (following the
//! event hub, reporting to it, syncing throttle counters).

use crate::analytics::{AnalyticsQueue, ShipUsage, Sinks};
use crate::follow::{LiveState, PersistedState};
use crate::throttle::{Fallback, Throttler};
use crate::traces::CallTracer;
use crate::{Gateway, Introspect};
use axum::Router;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_config::{AnalyticsLogFormat, ClusterConfig, GatewayConfig, ThrottleFallback};
use tollgate_events::Hub;
use tollgate_events::throttle::Counters;
use tollgate_listener::{BoundListener, ListenerError, ThreadListener};

/// Why the gateway could not start, by what the operator has to fix (the node picks its
/// exit code from it).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured file or value is unusable.
    #[error("{0}")]
    Config(String),
    /// The operating system refused (a file under the data directory).
    #[error("{0}")]
    Os(String),
    /// A listener could not bind.
    #[error(transparent)]
    Listen(#[from] ListenerError),
    /// Anything else (a TLS client or signing key that cannot be built).
    #[error("{0}")]
    Other(String),
}

/// The gateway's identity and shared state, made before any listener is bound.
pub struct Prepared {
    live: Arc<LiveState>,
    gateway_id: String,
    throttler: Arc<Throttler>,
}

/// Keeps (or creates) the gateway id under `data_dir` and makes the throttle counters
/// its workers share.
pub fn prepare(config: &GatewayConfig, data_dir: &Path) -> Result<Prepared, StartError> {
    let gateway_id = crate::follow::gateway_id(data_dir).map_err(|e| {
        StartError::Os(format!(
            "cannot keep the gateway id under node.data_dir {}: {e}",
            data_dir.display()
        ))
    })?;
    let fallback = match config.throttle_fallback {
        ThrottleFallback::LocalShare => Fallback::LocalShare,
        ThrottleFallback::FailClosed => Fallback::FailClosed,
    };
    let throttler = Throttler::new(gateway_id.clone(), config.throttle_sync_interval, fallback);
    Ok(Prepared {
        // What the gateway serves; filled from the event hub once the node is up.
        live: Arc::new(LiveState::new()),
        gateway_id,
        throttler,
    })
}

/// What [`Prepared::start`] needs from the node.
pub struct Inputs<'a> {
    /// `[gateway]`.
    pub gateway: &'a GatewayConfig,
    /// `[cluster]`: the remote key manager, analytics and event hub, and the secret.
    pub cluster: &'a ClusterConfig,
    /// `node.data_dir`, where a gateway without an in-process hub persists what it serves.
    pub data_dir: &'a Path,
    /// The TLS listener's acceptor, loaded by the node before anything else.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The key manager in the same process, if any (else `cluster.key_manager_url`).
    pub introspector: Option<Arc<dyn Introspect>>,
    /// The analytics component in the same process, if any (else `cluster.analytics_url`).
    pub shipper: Option<Arc<dyn ShipUsage>>,
    /// Traces of API calls, when an OTLP endpoint is configured.
    pub traces: Option<Arc<CallTracer>>,
}

/// Builds one worker's [`Gateway`] (called on the worker's own thread).
type WorkerFactory = Arc<dyn Fn() -> Arc<Gateway> + Send + Sync>;

/// The started gateway: its listeners to serve now, and what to run after start-up.
pub struct Started {
    /// The HTTPS listener (served by hyper), when `[gateway.tls]` is configured.
    pub tls: Option<(BoundListener, Router)>,
    /// The plain-HTTP listeners, one per worker thread.
    pub workers: Workers,
    /// Following the event hub, to start once the node has started up.
    pub follower: Follower,
}

/// The plain-HTTP listeners, one per worker thread, with what builds each worker.
pub struct Workers {
    listeners: Vec<ThreadListener>,
    make: WorkerFactory,
}

impl Workers {
    /// One future per worker thread, serving its listener until `shutdown` (then draining
    /// for up to `drain_timeout`).
    pub fn serve(
        self,
        shutdown: &CancellationToken,
        drain_timeout: Duration,
    ) -> Vec<impl Future<Output = ()> + Send + 'static> {
        let make = self.make;
        self.listeners
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let make = make.clone();
                listener.serve_on_own_thread(
                    i,
                    move || crate::connection_handler(make()),
                    shutdown.clone(),
                    drain_timeout,
                )
            })
            .collect()
    }
}

impl Prepared {
    /// Builds the workers (backend TLS, backend JWT signer, introspection, analytics
    /// queue and its sinks, spawned here) and binds the gateway's listeners.
    pub async fn start(self, inputs: Inputs<'_>) -> Result<Started, StartError> {
        let Inputs {
            gateway: config,
            cluster,
            data_dir,
            tls,
            introspector,
            shipper,
            traces,
        } = inputs;
        let secret = || cluster.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
        // Opaque tokens are resolved by this node's key manager when it has one, else by
        // the key manager named by `cluster.key_manager_url`, over HTTP.
        let introspector = introspector.or_else(|| {
            let url = cluster.key_manager_url.as_deref()?;
            let tls = crate::proxy::backend_tls(None).ok()?;
            Some(Arc::new(crate::key_manager_client::HttpIntrospector::new(url, secret(), tls)) as Arc<dyn Introspect>)
        });
        let backend_ca = match &config.backend_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                StartError::Config(format!("cannot read gateway.backend_ca_file {}: {e}", path.display()))
            })?),
            None => None,
        };
        let backend_tls = crate::proxy::backend_tls(backend_ca.as_deref())
            .map_err(|e| StartError::Config(format!("gateway.backend_ca_file: {e}")))?;
        let backend_jwt = if config.backend_jwt {
            Some(Arc::new(
                crate::backend_jwt::BackendJwtSigner::generate().map_err(StartError::Other)?,
            ))
        } else {
            None
        };
        // Analytics go to this node's analytics component, else to the one named by
        // `cluster.analytics_url`, and to the JSON log when one is configured.
        let shipper: Option<Arc<dyn ShipUsage>> = match (shipper, &cluster.analytics_url) {
            (Some(shipper), _) => Some(shipper),
            (None, Some(url)) => Some(Arc::new(crate::analytics_client::HttpShipper::new(
                url,
                secret(),
                crate::proxy::backend_tls(None).map_err(StartError::Other)?,
            ))),
            (None, None) => None,
        };
        let analytics = (config.analytics_log.is_some() || shipper.is_some()).then(|| {
            let (queue, rx) = AnalyticsQueue::new(config.analytics_queue, crate::analytics::BATCH);
            tokio::spawn(crate::analytics::run_sinks(
                rx,
                Sinks {
                    log: config.analytics_log.clone(),
                    log_format: match config.analytics_log_format {
                        AnalyticsLogFormat::Json => crate::analytics::LogFormat::Json,
                        AnalyticsLogFormat::Elk => crate::analytics::LogFormat::Elk,
                    },
                    live: Some(self.live.clone()),
                    shipper,
                    gateway_id: self.gateway_id.clone(),
                    environment: config.environment.clone(),
                    max_pending: config.analytics_queue,
                },
            ));
            queue
        });
        let make: WorkerFactory = {
            let (config, live, throttler) = (config.clone(), self.live.clone(), self.throttler.clone());
            Arc::new(move || {
                Arc::new(Gateway {
                    environment: config.environment.clone(),
                    live: live.clone(),
                    verifier: crate::TokenVerifier::new(),
                    backends: crate::proxy::Backends::new(
                        config.connect_timeout,
                        config.read_timeout,
                        backend_tls.clone(),
                    ),
                    max_request_body_bytes: config.max_request_body_bytes,
                    max_request_header_bytes: config.max_request_header_bytes,
                    keep_alive_timeout: config.keep_alive_timeout,
                    unmatched: crate::runtime::ApiMetrics::new("none"),
                    introspector: introspector.clone(),
                    // Each worker batches its own events.
                    analytics: analytics.as_ref().map(AnalyticsQueue::for_worker),
                    backend_jwt: backend_jwt.clone(),
                    throttler: Some(throttler.clone()),
                    traces: traces.clone(),
                })
            })
        };
        // Plain HTTP: one thread and single-threaded runtime per worker, like nginx's
        // workers (each with its own backend connection pool).
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let listeners = BoundListener::bind_per_thread("gateway", config.listen, "gateway.listen", workers)?;
        let tls = match (&config.tls, tls) {
            (Some(tls), Some(acceptor)) => {
                let secure = BoundListener::bind("gateway-tls", tls.listen, "gateway.tls.listen", Some(acceptor))
                    .await?
                    .with_max_header_bytes(config.max_request_header_bytes);
                Some((secure, crate::routes(make(), true)))
            }
            _ => None,
        };
        Ok(Started {
            tls,
            workers: Workers { listeners, make },
            follower: Follower {
                live: self.live,
                gateway_id: self.gateway_id,
                throttler: self.throttler,
                environment: config.environment.clone(),
                tenants: tollgate_events::TenantFilter::only(config.tenants.iter().cloned()),
                state_dir: data_dir.join("gateway"),
                cluster: cluster.clone(),
            },
        })
    }
}

/// What the gateway runs once the node has started up.
pub struct Follower {
    live: Arc<LiveState>,
    gateway_id: String,
    throttler: Arc<Throttler>,
    environment: String,
    /// `gateway.tenants`: what the hub is asked for.
    tenants: tollgate_events::TenantFilter,
    state_dir: PathBuf,
    cluster: ClusterConfig,
}

/// Whether the gateway has loaded what it serves, and its report (for readiness).
pub type ReadinessCheck = Box<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

impl Follower {
    /// Spawns the throttle-sync, report and follow loops until `shutdown`. The gateway
    /// follows `local` (this node's traffic manager: hub and counters) when given, else
    /// the hub over HTTP (`cluster.event_hub_url`), persisting what it serves under the
    /// data directory so that it can serve after a restart while the hub is down. Returns
    /// the check readiness waits for.
    pub fn start(
        self,
        local: Option<(Arc<dyn Hub>, Arc<dyn Counters>)>,
        shutdown: &CancellationToken,
    ) -> Result<ReadinessCheck, StartError> {
        let in_process = local.is_some();
        let (hub, counters) = match local {
            Some(local) => local,
            None => {
                let remote = Arc::new(crate::hub_client::HttpHub::new(
                    self.cluster.event_hub_url.clone(),
                    self.cluster.secret.as_ref().map(|s| s.expose()).unwrap_or_default(),
                    crate::proxy::backend_tls(None).map_err(StartError::Other)?,
                ));
                (remote.clone() as Arc<dyn Hub>, remote as Arc<dyn Counters>)
            }
        };
        tokio::spawn(self.throttler.clone().run(counters, shutdown.clone()));
        let persisted = (!in_process).then(|| PersistedState::new(self.state_dir, &self.environment));
        let check: ReadinessCheck = {
            let (live, throttler) = (self.live.clone(), self.throttler);
            Box::new(move || {
                let mut report = live.report();
                report["throttling"] = throttler.report();
                (live.is_loaded(), report)
            })
        };
        tokio::spawn(crate::follow::report_loop(
            hub.clone(),
            self.live.clone(),
            self.gateway_id,
            shutdown.clone(),
        ));
        tokio::spawn(crate::follow::follow(
            hub,
            self.live,
            self.environment,
            self.tenants,
            persisted,
            shutdown.clone(),
        ));
        Ok(check)
    }
}
