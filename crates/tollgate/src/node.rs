//! A node: open the databases its components need (and no others), bind its listeners,
//! migrate, bootstrap the administrator, serve, and shut down gracefully on a signal.

use crate::cli::NodeArgs;
use crate::{Failure, exit};
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tollgate_config::{Config, DatabaseName};
use tollgate_http::cluster::ClusterSecret;
use tollgate_http::listener::{BoundListener, load_tls};
use tollgate_http::rate_limit::{LoginGuardSettings, RequestLimiter};
use tollgate_http::{Authenticator, Readiness, health_routes, request_metrics};
use tollgate_model::{Component, ComponentSet};
use tollgate_store::{Database, users};
use tollgate_tokens::{KeyManagerSecret, TokenService, TokenSettings};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn load_config(args: &NodeArgs) -> Result<Config, Failure> {
    tollgate_config::load(args.config.as_deref(), std::env::vars(), &args.overrides())
        .map_err(|e| Failure::new(exit::CONFIG, e))
}

/// `tollgate config check`: load, validate, and say what the node would run.
pub fn check_config(args: &NodeArgs) -> Result<(), Failure> {
    let config = load_config(args)?;
    let components = config.components();
    eprintln!("tollgate: configuration is valid; components: {components}");
    for name in databases_needed(&components) {
        eprintln!(
            "tollgate: database.{name}: {}",
            tollgate_config::redact_url(&config.database_url(name))
        );
    }
    Ok(())
}

/// The databases `components` use (docs/architecture.md, "The two databases"): a
/// gateway-only node uses none.
fn databases_needed(components: &ComponentSet) -> Vec<DatabaseName> {
    let mut names = Vec::new();
    if components.needs_am_database() {
        names.push(DatabaseName::Am);
    }
    if components.needs_shared_database() {
        names.push(DatabaseName::Shared);
    }
    names
}

async fn open_databases(config: &Config, components: &ComponentSet) -> Result<Vec<Database>, Failure> {
    let mut dbs = Vec::new();
    for name in databases_needed(components) {
        let db = tollgate_store::connect(name, &config.database_url(name), config.database(name))
            .await
            .map_err(|e| match e {
                tollgate_store::Error::Url { .. } => Failure::new(exit::CONFIG, e),
                _ => Failure::new(exit::UNAVAILABLE, e),
            })?;
        dbs.push(db);
    }
    Ok(dbs)
}

async fn migrate_all(dbs: &[Database]) -> Result<(), Failure> {
    for db in dbs {
        db.migrate().await.map_err(|e| Failure::new(exit::OTHER, e))?;
    }
    Ok(())
}

fn find(dbs: &[Database], name: DatabaseName) -> Option<Database> {
    dbs.iter().find(|d| d.name() == name).cloned()
}

/// `tollgate migrate`: apply the node's migrations and exit.
pub async fn migrate(args: NodeArgs) -> Result<(), Failure> {
    let config = load_config(&args)?;
    init_logging(&config)?;
    private_data_dir(&config.node.data_dir)?;
    let dbs = open_databases(&config, &config.components()).await?;
    migrate_all(&dbs).await?;
    for db in &dbs {
        db.close().await;
    }
    Ok(())
}

/// `tollgate keys rotate`: a new signing key; the old one stays published for `overlap`.
pub async fn rotate_signing_keys(args: NodeArgs, overlap: std::time::Duration) -> Result<(), Failure> {
    let config = load_config(&args)?;
    init_logging(&config)?;
    let components = ComponentSet::parse_list("key-manager").map_err(|e| Failure::new(exit::OTHER, e.to_string()))?;
    let dbs = open_databases(&config, &components).await?;
    migrate_all(&dbs).await?;
    let tokens =
        token_service(&config, &dbs)?.ok_or_else(|| Failure::new(exit::CONFIG, "the AM database is not configured"))?;
    tokens
        .signer()
        .ensure_key()
        .await
        .map_err(|e| Failure::new(exit::OTHER, e.to_string()))?;
    let kid = tokens
        .signer()
        .rotate(overlap)
        .await
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot rotate the signing key: {e}")))?;
    for db in &dbs {
        db.close().await;
    }
    eprintln!(
        "tollgate: new signing key {kid} is active; the previous one stays in /oauth2/jwks for {}.",
        humantime::format_duration(overlap)
    );
    Ok(())
}

fn init_logging(config: &Config) -> Result<(), Failure> {
    let json = config.log.format == tollgate_config::LogFormat::Json;
    tollgate_telemetry::init_logging(&config.log.level, json).map_err(|e| Failure::new(exit::CONFIG, e))
}

/// A listener with its router, bound but not yet serving.
struct Planned {
    listener: BoundListener,
    router: Router,
}

/// `tollgate serve`.
pub async fn serve(args: NodeArgs) -> Result<(), Failure> {
    let config = load_config(&args)?;
    init_logging(&config)?;
    // Before the first password is hashed (the bootstrap administrator's).
    tollgate_store::password::limit_concurrency(config.management.max_concurrent_password_checks);
    private_data_dir(&config.node.data_dir)?;
    let metrics = tollgate_telemetry::install_metrics(VERSION).map_err(|e| Failure::new(exit::OTHER, e))?;
    #[cfg(feature = "heap-stats")]
    tollgate_telemetry::report_heap(crate::heap::live_bytes);
    let components = config.components();
    tracing::info!(version = VERSION, components = %components, data_dir = %config.node.data_dir.display(), "Starting node.");
    if config.cluster.secret.is_none() {
        tracing::warn!(
            "No [cluster] secret is configured: internal endpoints refuse every call, so no other node can join this one."
        );
    }

    // TLS files are read before anything else so that a bad path fails fast.
    let management_tls = config
        .management
        .tls
        .as_ref()
        .map(|t| load_tls("management", t, "management.tls"))
        .transpose()
        .map_err(|e| Failure::new(exit::CONFIG, e))?;
    let gateway_tls = match (&config.gateway.tls, components.contains(Component::Gateway)) {
        (Some(t), true) => {
            Some(load_tls("gateway-tls", &t.tls(), "gateway.tls").map_err(|e| Failure::new(exit::CONFIG, e))?)
        }
        _ => None,
    };

    // Traces of API calls, when an OTLP endpoint is configured (exported from this runtime).
    let traces = match &config.tracing.otlp_endpoint {
        Some(endpoint) => Some(
            tollgate_telemetry::traces::Traces::start(&tollgate_telemetry::traces::TraceExport {
                endpoint,
                service_name: &config.tracing.service_name,
                sample_ratio: config.tracing.sample_ratio,
                export_interval: config.tracing.export_interval,
            })
            .map_err(|e| Failure::new(exit::CONFIG, e))?,
        ),
        None => None,
    };
    let call_tracer = traces
        .as_ref()
        .map(|t| Arc::new(tollgate_gateway::traces::CallTracer::new(t.tracer("tollgate-gateway"))));

    let dbs = open_databases(&config, &components).await?;
    let tokens = token_service(&config, &dbs)?;
    let readiness = Readiness::new(dbs.clone(), components.to_string());
    let cluster_secret = ClusterSecret::new(config.cluster.secret.as_ref().map(|s| s.expose()));

    // What the gateway serves; filled from the event hub once the node is up.
    let gateway_state = Arc::new(tollgate_gateway::follow::LiveState::new());
    let shutdown = CancellationToken::new();
    // The event hub, where this node runs the traffic manager: it serves other nodes'
    // watches and this node's own gateway.
    let event_hub = if components.contains(Component::TrafficManager)
        && let Some(am) = find(&dbs, DatabaseName::Am)
    {
        let feed = tollgate_trafficmanager::EventFeed::start(am.clone(), shutdown.clone());
        Some(tollgate_trafficmanager::DatabaseHub::new(
            am,
            feed,
            config.traffic_manager.heartbeat_interval,
        ))
    } else {
        None
    };
    // The analytics component's counts, where this node runs it: gateways' events are
    // added here and written to the AM database every flush interval.
    let aggregator = (components.contains(Component::Analytics) && find(&dbs, DatabaseName::Am).is_some())
        .then(|| Arc::new(tollgate_analytics::Aggregator::new(config.analytics.max_keys)));
    // The shared throttle counters, where this node runs the traffic manager.
    let throttle_counters = if event_hub.is_some() {
        Some(Arc::new(match &config.traffic_manager.redis_url {
            Some(url) => tollgate_trafficmanager::CounterStore::redis(url.expose())
                .await
                .map_err(|e| Failure::new(exit::CONFIG, e))?,
            None => tollgate_trafficmanager::CounterStore::in_memory(),
        }))
    } else {
        None
    };
    // The gateway's throttle counters, shared by its workers and synced with the traffic
    // manager once the node is up.
    let throttler = if components.contains(Component::Gateway) {
        let gateway_id = tollgate_gateway::follow::gateway_id(&config.node.data_dir).map_err(|e| {
            Failure::new(
                exit::OS,
                format!(
                    "cannot keep the gateway id under node.data_dir {}: {e}",
                    config.node.data_dir.display()
                ),
            )
        })?;
        let fallback = match config.gateway.throttle_fallback {
            tollgate_config::ThrottleFallback::LocalShare => tollgate_gateway::throttle::Fallback::LocalShare,
            tollgate_config::ThrottleFallback::FailClosed => tollgate_gateway::throttle::Fallback::FailClosed,
        };
        Some((
            tollgate_gateway::throttle::Throttler::new(
                gateway_id.clone(),
                config.gateway.throttle_sync_interval,
                fallback,
            ),
            gateway_id,
        ))
    } else {
        None
    };
    let mut planned = Vec::new();
    let management = BoundListener::bind(
        "management",
        config.management.listen,
        "management.listen",
        management_tls,
    )
    .await
    .map_err(|e| Failure::new(exit::OS, e))?;
    planned.push(Planned {
        listener: management,
        router: management_router(
            &config,
            &dbs,
            tokens.clone(),
            &cluster_secret,
            readiness.clone(),
            metrics.clone(),
            aggregator.clone(),
        )?,
    });
    let mut gateway_threads = Vec::new();
    if components.contains(Component::Gateway) {
        // Opaque tokens are resolved by this node's key manager when it has one.
        let introspector: Option<Arc<dyn tollgate_gateway::Introspect>> = tokens
            .clone()
            .filter(|_| components.contains(Component::KeyManager))
            .map(|t| Arc::new(InProcessIntrospector(t)) as Arc<dyn tollgate_gateway::Introspect>)
            // Else the key manager named by `cluster.key_manager_url`, over HTTP.
            .or_else(|| {
                let url = config.cluster.key_manager_url.as_deref()?;
                let tls = tollgate_gateway::proxy::backend_tls(None).ok()?;
                let secret = config.cluster.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
                Some(Arc::new(tollgate_gateway::key_manager_client::HttpIntrospector::new(
                    url, secret, tls,
                )) as Arc<dyn tollgate_gateway::Introspect>)
            });
        let backend_ca = match &config.gateway.backend_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                Failure::new(
                    exit::CONFIG,
                    format!("cannot read gateway.backend_ca_file {}: {e}", path.display()),
                )
            })?),
            None => None,
        };
        let backend_tls = tollgate_gateway::proxy::backend_tls(backend_ca.as_deref())
            .map_err(|e| Failure::new(exit::CONFIG, format!("gateway.backend_ca_file: {e}")))?;
        let backend_jwt = if config.gateway.backend_jwt {
            Some(Arc::new(
                tollgate_gateway::backend_jwt::BackendJwtSigner::generate()
                    .map_err(|e| Failure::new(exit::OTHER, e))?,
            ))
        } else {
            None
        };
        // Analytics go to this node's analytics component, else to the one named by
        // `cluster.analytics_url`, and to the JSON log when one is configured.
        let shipper: Option<Arc<dyn tollgate_gateway::analytics::ShipUsage>> =
            match (&aggregator, &config.cluster.analytics_url) {
                (Some(aggregator), _) => Some(Arc::new(InProcessShipper(aggregator.clone()))),
                (None, Some(url)) => Some(Arc::new(tollgate_gateway::analytics_client::HttpShipper::new(
                    url,
                    config.cluster.secret.as_ref().map(|s| s.expose()).unwrap_or_default(),
                    tollgate_gateway::proxy::backend_tls(None).map_err(|e| Failure::new(exit::OTHER, e))?,
                ))),
                (None, None) => None,
            };
        let analytics = (config.gateway.analytics_log.is_some() || shipper.is_some()).then(|| {
            let (queue, rx) = tollgate_gateway::analytics::AnalyticsQueue::new(
                config.gateway.analytics_queue,
                tollgate_gateway::analytics::BATCH,
            );
            tokio::spawn(tollgate_gateway::analytics::run_sinks(
                rx,
                tollgate_gateway::analytics::Sinks {
                    log: config.gateway.analytics_log.clone(),
                    log_format: match config.gateway.analytics_log_format {
                        tollgate_config::AnalyticsLogFormat::Json => tollgate_gateway::analytics::LogFormat::Json,
                        tollgate_config::AnalyticsLogFormat::Elk => tollgate_gateway::analytics::LogFormat::Elk,
                    },
                    live: Some(gateway_state.clone()),
                    shipper,
                    gateway_id: throttler.as_ref().map(|(_, id)| id.clone()).unwrap_or_default(),
                    environment: config.gateway.environment.clone(),
                    max_pending: config.gateway.analytics_queue,
                },
            ));
            queue
        });
        let gateway = {
            let (config, live, introspector, backend_tls) =
                (config.clone(), gateway_state.clone(), introspector, backend_tls);
            let throttler = throttler.as_ref().map(|(t, _)| t.clone());
            move || {
                Arc::new(tollgate_gateway::Gateway {
                    environment: config.gateway.environment.clone(),
                    live,
                    verifier: tollgate_gateway::TokenVerifier::new(),
                    backends: tollgate_gateway::proxy::Backends::new(
                        config.gateway.connect_timeout,
                        config.gateway.read_timeout,
                        backend_tls,
                    ),
                    max_request_body_bytes: config.gateway.max_request_body_bytes,
                    max_request_header_bytes: config.gateway.max_request_header_bytes,
                    keep_alive_timeout: config.gateway.keep_alive_timeout,
                    unmatched: tollgate_gateway::runtime::ApiMetrics::new("none"),
                    introspector,
                    // Each worker batches its own events.
                    analytics: analytics.as_ref().map(|q| q.for_worker()),
                    backend_jwt: backend_jwt.clone(),
                    throttler: throttler.clone(),
                    traces: call_tracer.clone(),
                })
            }
        };
        // Plain HTTP: one thread and single-threaded runtime per worker, like nginx's
        // workers (each with its own backend connection pool).
        let workers = match config.gateway.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let listeners = BoundListener::bind_per_thread("gateway", config.gateway.listen, "gateway.listen", workers)
            .map_err(|e| Failure::new(exit::OS, e))?;
        for listener in listeners {
            let gateway = gateway.clone();
            gateway_threads.push((listener, move || tollgate_gateway::connection_handler(gateway())));
        }
        if let (Some(tls), Some(acceptor)) = (&config.gateway.tls, gateway_tls) {
            let secure = BoundListener::bind("gateway-tls", tls.listen, "gateway.tls.listen", Some(acceptor))
                .await
                .map_err(|e| Failure::new(exit::OS, e))?
                .with_max_header_bytes(config.gateway.max_request_header_bytes);
            planned.push(Planned {
                listener: secure,
                router: tollgate_gateway::routes(gateway(), true),
            });
        }
    }
    if let Some(hub) = &event_hub {
        let router = tollgate_trafficmanager::routes(tollgate_trafficmanager::TrafficManagerState {
            hub: hub.clone(),
            counters: throttle_counters
                .clone()
                .unwrap_or_else(|| Arc::new(tollgate_trafficmanager::CounterStore::in_memory())),
            cluster_secret: cluster_secret.clone(),
        })
        .fallback(not_found)
        .layer(axum::middleware::from_fn(|req, next| {
            request_metrics::record("traffic-manager", req, next)
        }));
        let listener = BoundListener::bind(
            "traffic-manager",
            config.traffic_manager.listen,
            "traffic_manager.listen",
            None,
        )
        .await
        .map_err(|e| Failure::new(exit::OS, e))?;
        planned.push(Planned { listener, router });
    }

    // Serve from here on: /health/live answers while migrations run; ready waits for them.
    let mut servers = JoinSet::new();
    for p in planned {
        servers.spawn(
            p.listener
                .serve(p.router, shutdown.clone(), config.node.shutdown_timeout),
        );
    }
    for (i, (listener, make_router)) in gateway_threads.into_iter().enumerate() {
        servers.spawn(listener.serve_on_own_thread(i, make_router, shutdown.clone(), config.node.shutdown_timeout));
    }

    let startup = async {
        migrate_all(&dbs).await?;
        if let Some(shared) = find(&dbs, DatabaseName::Shared) {
            bootstrap_admin(&config, &shared).await?;
        }
        if let Some(tokens) = &tokens
            && components.contains(Component::KeyManager)
        {
            tokens
                .signer()
                .ensure_key()
                .await
                .map_err(|e| Failure::new(exit::OTHER, format!("cannot create the token signing key: {e}")))?;
        }
        if let Some(am) = find(&dbs, DatabaseName::Am) {
            tollgate_store::policies::install_defaults(&am, tollgate_model::TenantId::DEFAULT)
                .await
                .map_err(|e| Failure::new(exit::OTHER, format!("cannot install the default policies: {e}")))?;
        }
        Ok::<_, Failure>(())
    };
    // A signal during start-up still stops the node cleanly.
    tokio::select! {
        r = startup => r?,
        () = wait_for_signal() => {
            stop(&shutdown, &readiness, servers, &dbs).await;
            return Ok(());
        }
    }
    if let (Some(aggregator), Some(am)) = (&aggregator, find(&dbs, DatabaseName::Am)) {
        tokio::spawn(tollgate_analytics::flush_loop(
            aggregator.clone(),
            am.clone(),
            config.analytics.flush_interval,
            shutdown.clone(),
        ));
        tokio::spawn(tollgate_analytics::retention_loop(
            am,
            analytics_retention(&config),
            shutdown.clone(),
        ));
    }
    if let Some(hub) = &event_hub {
        tokio::spawn(tollgate_trafficmanager::compact_loop(
            hub.am().clone(),
            config.traffic_manager.event_retention,
            shutdown.clone(),
        ));
    }
    // The gateway follows the event hub: in-process when this node runs the traffic
    // manager, else over HTTP (`cluster.event_hub_url`), persisting what it serves under
    // the data directory so that it can serve after a restart while the hub is down.
    if let Some((throttler, gateway_id)) = throttler {
        let (hub, counters): (
            Arc<dyn tollgate_events::Hub>,
            Arc<dyn tollgate_events::throttle::Counters>,
        ) = match (&event_hub, &throttle_counters) {
            (Some(hub), Some(counters)) => (hub.clone(), counters.clone()),
            _ => {
                let remote = Arc::new(tollgate_gateway::hub_client::HttpHub::new(
                    config.cluster.event_hub_url.clone(),
                    config.cluster.secret.as_ref().map(|s| s.expose()).unwrap_or_default(),
                    tollgate_gateway::proxy::backend_tls(None).map_err(|e| Failure::new(exit::OTHER, e))?,
                ));
                (remote.clone(), remote)
            }
        };
        tokio::spawn(throttler.clone().run(counters, shutdown.clone()));
        let persisted = event_hub.is_none().then(|| {
            tollgate_gateway::follow::PersistedState::new(
                config.node.data_dir.join("gateway"),
                &config.gateway.environment,
            )
        });
        let live = gateway_state.clone();
        readiness.set_gateway_check(Box::new(move || {
            let mut report = live.report();
            report["throttling"] = throttler.report();
            (live.is_loaded(), report)
        }));
        tokio::spawn(tollgate_gateway::follow::report_loop(
            hub.clone(),
            gateway_state.clone(),
            gateway_id,
            shutdown.clone(),
        ));
        tokio::spawn(tollgate_gateway::follow::follow(
            hub,
            gateway_state.clone(),
            config.gateway.environment.clone(),
            persisted,
            shutdown.clone(),
        ));
    }
    if components.contains(Component::KeyManager)
        && let Some(am) = find(&dbs, DatabaseName::Am)
    {
        tokio::spawn(tollgate_keymanager::external::refresh_loop(
            am,
            config.key_manager.jwks_refresh_interval,
            shutdown.clone(),
        ));
    }
    readiness.set_migrated();
    tracing::info!(components = %components, "Node ready.");

    wait_for_signal().await;
    stop(&shutdown, &readiness, servers, &dbs).await;
    if let Some(traces) = &traces {
        traces.shutdown();
    }
    Ok(())
}

async fn stop(shutdown: &CancellationToken, readiness: &Readiness, mut servers: JoinSet<()>, dbs: &[Database]) {
    tracing::info!("Shutting down: no new connections; in-flight requests may finish.");
    readiness.set_draining();
    shutdown.cancel();
    // A second signal skips the drain.
    tokio::select! {
        () = async { while servers.join_next().await.is_some() {} } => {}
        () = wait_for_signal() => {
            tracing::warn!("Second signal: exiting without waiting for in-flight requests.");
            servers.abort_all();
        }
    }
    for db in dbs {
        db.close().await;
    }
    tracing::info!("Node stopped.");
}

/// The token service of a node that has the AM database: it issues tokens when the
/// node runs the key manager, and verifies bearer tokens for the REST APIs either way.
fn token_service(config: &Config, dbs: &[Database]) -> Result<Option<Arc<TokenService>>, Failure> {
    let Some(am) = find(dbs, DatabaseName::Am) else {
        return Ok(None);
    };
    let secret = KeyManagerSecret::load_or_create(
        &config.node.data_dir,
        config.key_manager.secret.as_ref().map(|s| s.expose()),
    )
    .map_err(|e| Failure::new(exit::OS, e))?;
    Ok(Some(TokenService::open(
        am,
        secret,
        config.key_manager.signing_algorithm,
        TokenSettings {
            issuer: config.issuer(),
            access_validity: config.key_manager.access_token_validity,
            refresh_validity: config.key_manager.refresh_token_validity,
            code_validity: config.key_manager.authorization_code_validity,
        },
    )))
}

fn management_router(
    config: &Config,
    dbs: &[Database],
    tokens: Option<Arc<TokenService>>,
    cluster_secret: &ClusterSecret,
    readiness: Arc<Readiness>,
    metrics: tollgate_telemetry::MetricsHandle,
    aggregator: Option<Arc<tollgate_analytics::Aggregator>>,
) -> Result<Router, Failure> {
    let components = &config.components();
    let mut rest = Router::new();
    let mut portals = None;
    let mut ingest = None;
    let am = find(dbs, DatabaseName::Am);
    let shared = find(dbs, DatabaseName::Shared);
    // REST APIs authenticate against the shared database's users (Basic) or with the
    // key manager's tokens (Bearer); one authenticator (one credential cache) serves all.
    if let (Some(am), Some(shared), Some(tokens)) = (am, shared, tokens) {
        let authenticator = Authenticator::new(shared.clone())
            .with_tokens(tokens.clone())
            .with_login_guard(LoginGuardSettings {
                max_failures_per_user: config.management.max_failed_sign_ins,
                max_failures_per_address: config.management.max_failed_sign_ins_per_address,
                lockout: config.management.sign_in_lockout,
            });
        if components.contains(Component::KeyManager) {
            rest = rest.merge(tollgate_keymanager::routes(tollgate_keymanager::KeyManagerState {
                am: am.clone(),
                shared: shared.clone(),
                tokens: tokens.clone(),
                limiter: Arc::new(RequestLimiter::new(config.key_manager.token_requests_per_second)),
                authenticator: authenticator.clone(),
                cluster_secret: cluster_secret.clone(),
            }));
        }
        if components.contains(Component::Devportal) {
            rest = rest.merge(tollgate_devportal::routes(tollgate_devportal::DevportalState {
                am: am.clone(),
                shared: shared.clone(),
                authenticator: authenticator.clone(),
                tokens: tokens.clone(),
                self_signup: config.devportal.self_signup,
                signup_limiter: Arc::new(RequestLimiter::per_period(
                    config.devportal.self_signups_per_hour,
                    std::time::Duration::from_secs(3600),
                )),
            }));
        }
        if components.contains(Component::Admin) {
            rest = rest.merge(tollgate_admin::routes(tollgate_admin::AdminState {
                authenticator: authenticator.clone(),
                shared: shared.clone(),
                am: am.clone(),
            }));
        }
        if components.contains(Component::Publisher) {
            rest = rest.merge(tollgate_publisher::routes(tollgate_publisher::PublisherState {
                am: am.clone(),
                shared: shared.clone(),
                authenticator: authenticator.clone(),
                max_revisions_per_api: config.publisher.max_revisions_per_api,
                url_import_allow_private: config.publisher.url_import_allow_private,
            }));
        }
        if let Some(aggregator) = aggregator {
            let state = tollgate_analytics::AnalyticsState {
                am: am.clone(),
                aggregator,
                authenticator: authenticator.clone(),
                cluster_secret: cluster_secret.clone(),
                retention: analytics_retention(config),
            };
            rest = rest.merge(tollgate_analytics::routes(state.clone()));
            ingest = Some(tollgate_analytics::ingest_routes(state));
        }
        portals = Some((
            authenticator,
            tollgate_portals::PortalSet {
                publisher: components.contains(Component::Publisher),
                devportal: components.contains(Component::Devportal),
                admin: components.contains(Component::Admin),
            },
        ));
    }
    let rest = tollgate_http::rest_layers(rest, config.management.max_body_bytes);
    let mut router = health_routes(readiness, metrics).merge(rest.clone());
    if let Some(ingest) = ingest {
        router = router.merge(ingest);
    }
    // The web portals call the REST routes above in-process, as the signed-in user.
    if let Some((authenticator, set)) = portals
        && (set.publisher || set.devportal || set.admin)
    {
        let state = tollgate_portals::PortalsState::new(
            rest,
            authenticator,
            set,
            config.management.tls.is_some(),
            config.key_manager.refresh_token_validity,
            config.publisher.url_import_allow_private,
        )
        .map_err(|e| Failure::new(exit::OTHER, e.to_string()))?;
        router = router.merge(tollgate_portals::routes(state));
    }
    let hsts = config.management.tls.is_some();
    Ok(router
        .fallback(not_found)
        .layer(axum::middleware::from_fn(move |req, next| {
            tollgate_http::security_headers(hsts, req, next)
        }))
        .layer(axum::middleware::from_fn(|req, next| {
            request_metrics::record("management", req, next)
        })))
}

async fn not_found() -> impl IntoResponse {
    let err = tollgate_model::Error::NotFound {
        resource: "resource",
        id: "requested path".into(),
    };
    (StatusCode::NOT_FOUND, tollgate_http::ApiError(err))
}

/// Creates the administrator on first start; a generated password is printed once and
/// written to `data_dir/admin-password` (mode 0600), never logged.
async fn bootstrap_admin(config: &Config, shared: &Database) -> Result<(), Failure> {
    let configured = config.admin.password.as_ref().map(|s| s.expose());
    let outcome = users::ensure_admin(shared, &config.admin.username, configured)
        .await
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot create the administrator: {e}")))?;
    match outcome {
        users::Bootstrap::Existing => {}
        users::Bootstrap::Created => {
            tracing::info!(user = %config.admin.username, "Administrator created with the configured password.");
        }
        users::Bootstrap::CreatedWithGeneratedPassword(password) => {
            let path = config.node.data_dir.join("admin-password");
            write_secret_file(&path, &password)
                .map_err(|e| Failure::new(exit::OS, format!("cannot write {}: {e}", path.display())))?;
            tracing::warn!(user = %config.admin.username, file = %path.display(), "Administrator created with a generated password; it is shown once on stderr and kept in the file.");
            eprintln!(
                "\n  Tollgate administrator created.\n  username: {}\n  password: {password}\n  (also in {}, readable only by this user; set TOLLGATE_ADMIN_PASSWORD to choose one)\n",
                config.admin.username,
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates `node.data_dir` readable by this user only (0700), or tightens an existing one
/// that others may enter; what the node writes inside is 0600 (the umask set in `main`).
fn private_data_dir(dir: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let failed =
        |e: std::io::Error| Failure::new(exit::OS, format!("cannot prepare node.data_dir {}: {e}", dir.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let mode = std::fs::metadata(dir).map_err(failed)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
        tracing::warn!(data_dir = %dir.display(), was = format!("{:o}", mode & 0o777), "The data directory was open to other users; it is now 0700.");
    }
    Ok(())
}

fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// Resolves on SIGTERM or SIGINT.
async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; only SIGINT stops the node.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Opaque-token introspection for a gateway in the same process as the key manager.
/// The analytics retention periods from `[analytics]`.
fn analytics_retention(config: &Config) -> tollgate_analytics::Retention {
    tollgate_analytics::Retention {
        minute: config.analytics.minute_retention,
        hour: config.analytics.hour_retention,
        day: config.analytics.day_retention,
    }
}

/// Hands a gateway's analytics to this node's analytics component.
struct InProcessShipper(Arc<tollgate_analytics::Aggregator>);

impl tollgate_gateway::analytics::ShipUsage for InProcessShipper {
    fn ship<'a>(
        &'a self,
        batch: &'a tollgate_model::analytics::UsageBatchRef<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        self.0.add_events(batch.environment, batch.events.iter().copied());
        Box::pin(std::future::ready(Ok(())))
    }

    /// Counts the events straight from the gateway's batches (no batch of borrowed
    /// events is built in between).
    fn take_held(&self, environment: &str, events: &[Vec<tollgate_gateway::analytics::AnalyticsEvent>]) -> bool {
        self.0.add_events(
            environment,
            events
                .iter()
                .flatten()
                .map(tollgate_gateway::analytics::AnalyticsEvent::usage),
        );
        true
    }
}

#[derive(Debug)]
struct InProcessIntrospector(Arc<TokenService>);

impl tollgate_gateway::Introspect for InProcessIntrospector {
    fn introspect<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<tollgate_model::token::AccessClaims>> + Send + 'a>>
    {
        Box::pin(async move {
            match self.0.introspect(token).await {
                Ok(active) => active.and_then(tollgate_tokens::ActiveToken::into_access_claims),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot introspect an opaque token.");
                    None
                }
            }
        })
    }
}
