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
use tokio_rustls::TlsAcceptor;
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
    let (management_tls, gateway_tls) = load_tls_files(&config, &components)?;
    let traces = start_traces(&config)?;
    let call_tracer = traces
        .as_ref()
        .map(|t| Arc::new(tollgate_gateway::traces::CallTracer::new(t.tracer("tollgate-gateway"))));

    // The shared context: databases, tokens, readiness, the cluster secret, shutdown.
    let dbs = open_databases(&config, &components).await?;
    let am = find(&dbs, DatabaseName::Am);
    let tokens = token_service(&config, &dbs)?;
    let readiness = Readiness::new(dbs.clone(), components.to_string());
    let cluster_secret = ClusterSecret::new(config.cluster.secret.as_ref().map(|s| s.expose()));
    let shutdown = CancellationToken::new();

    // Each component this node runs, from the context (each needs the AM database but
    // the gateway, which opens none).
    let traffic_manager = match am.clone().filter(|_| components.contains(Component::TrafficManager)) {
        Some(am) => Some(
            tollgate_trafficmanager::node::start(am, &config.traffic_manager, &shutdown)
                .await
                .map_err(|e| Failure::new(exit::CONFIG, e))?,
        ),
        None => None,
    };
    let analytics = am
        .clone()
        .filter(|_| components.contains(Component::Analytics))
        .map(|am| tollgate_analytics::node::start(am, &config.analytics));
    let gateway = components
        .contains(Component::Gateway)
        .then(|| tollgate_gateway::node::prepare(&config.gateway, &config.node.data_dir))
        .transpose()
        .map_err(gateway_failure)?;
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
            analytics.as_ref(),
        )?,
    });
    let (gateway_workers, gateway_follower) = match gateway {
        Some(gateway) => {
            let started = gateway
                .start(tollgate_gateway::node::Inputs {
                    gateway: &config.gateway,
                    cluster: &config.cluster,
                    data_dir: &config.node.data_dir,
                    tls: gateway_tls,
                    // Opaque tokens are resolved by this node's key manager when it has one.
                    introspector: tokens
                        .clone()
                        .filter(|_| components.contains(Component::KeyManager))
                        .map(|t| Arc::new(InProcessIntrospector(t)) as Arc<dyn tollgate_gateway::Introspect>),
                    // Analytics go to this node's analytics component when it has one.
                    shipper: analytics.as_ref().map(|a| {
                        Arc::new(InProcessShipper(a.aggregator.clone()))
                            as Arc<dyn tollgate_gateway::analytics::ShipUsage>
                    }),
                    traces: call_tracer,
                })
                .await
                .map_err(gateway_failure)?;
            if let Some((listener, router)) = started.tls {
                planned.push(Planned { listener, router });
            }
            (Some(started.workers), Some(started.follower))
        }
        None => (None, None),
    };
    if let Some(traffic_manager) = &traffic_manager {
        let (listener, router) = traffic_manager
            .bind(cluster_secret.clone())
            .await
            .map_err(|e| Failure::new(exit::OS, e))?;
        let router = router.fallback(not_found).layer(axum::middleware::from_fn(|req, next| {
            request_metrics::record("traffic-manager", req, next)
        }));
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
    for worker in gateway_workers
        .map(|w| w.serve(&shutdown, config.node.shutdown_timeout))
        .unwrap_or_default()
    {
        servers.spawn(worker);
    }

    // A signal during start-up still stops the node cleanly.
    tokio::select! {
        r = start_up(&config, &components, &dbs, tokens.as_deref()) => r?,
        () = wait_for_signal() => {
            stop(&shutdown, &readiness, servers, &dbs).await;
            return Ok(());
        }
    }
    // What runs once the databases are migrated.
    if let Some(analytics) = &analytics {
        analytics.start_loops(&shutdown);
    }
    if let Some(traffic_manager) = &traffic_manager {
        traffic_manager.start_compaction(&shutdown);
    }
    // The gateway follows this node's traffic manager in-process, else the hub over HTTP.
    if let Some(follower) = gateway_follower {
        let local = traffic_manager.as_ref().map(|tm| {
            (
                tm.hub.clone() as Arc<dyn tollgate_events::Hub>,
                tm.counters.clone() as Arc<dyn tollgate_events::throttle::Counters>,
            )
        });
        readiness.set_gateway_check(follower.start(local, &shutdown).map_err(gateway_failure)?);
    }
    if let Some(am) = am.filter(|_| components.contains(Component::KeyManager)) {
        tollgate_keymanager::start_refresh(am, &config.key_manager, &shutdown);
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

/// The management listener's TLS, and the gateway's when this node runs it.
fn load_tls_files(
    config: &Config,
    components: &ComponentSet,
) -> Result<(Option<TlsAcceptor>, Option<TlsAcceptor>), Failure> {
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
    Ok((management_tls, gateway_tls))
}

/// Traces of API calls, when an OTLP endpoint is configured (exported from this runtime).
fn start_traces(config: &Config) -> Result<Option<tollgate_telemetry::traces::Traces>, Failure> {
    let Some(endpoint) = &config.tracing.otlp_endpoint else {
        return Ok(None);
    };
    tollgate_telemetry::traces::Traces::start(&tollgate_telemetry::traces::TraceExport {
        endpoint,
        service_name: &config.tracing.service_name,
        sample_ratio: config.tracing.sample_ratio,
        export_interval: config.tracing.export_interval,
    })
    .map(Some)
    .map_err(|e| Failure::new(exit::CONFIG, e))
}

/// The exit code for why the gateway could not start.
fn gateway_failure(e: tollgate_gateway::node::StartError) -> Failure {
    use tollgate_gateway::node::StartError;
    let code = match &e {
        StartError::Config(_) => exit::CONFIG,
        StartError::Os(_) | StartError::Listen(_) => exit::OS,
        StartError::Other(_) => exit::OTHER,
    };
    Failure::new(code, e)
}

/// Start-up, while the listeners already serve: migrations, the bootstrap administrator,
/// the token signing key (on a key manager) and every tenant's AM side (default policies).
async fn start_up(
    config: &Config,
    components: &ComponentSet,
    dbs: &[Database],
    tokens: Option<&TokenService>,
) -> Result<(), Failure> {
    migrate_all(dbs).await?;
    if let Some(shared) = find(dbs, DatabaseName::Shared) {
        bootstrap_admin(config, &shared).await?;
    }
    if let Some(tokens) = tokens
        && components.contains(Component::KeyManager)
    {
        tokens
            .signer()
            .ensure_key()
            .await
            .map_err(|e| Failure::new(exit::OTHER, format!("cannot create the token signing key: {e}")))?;
    }
    match (find(dbs, DatabaseName::Shared), find(dbs, DatabaseName::Am)) {
        // Every tenant's AM side (state, `Default` environment, default policies), which
        // also repairs a tenant creation that stopped between the two databases.
        (Some(shared), Some(am)) => tollgate_store::tenants::provision_all(&shared, &am)
            .await
            .map_err(|e| Failure::new(exit::OTHER, format!("cannot provision the tenants: {e}")))?,
        (None, Some(am)) => {
            tollgate_store::policies::install_defaults(&am, tollgate_model::TenantId::DEFAULT)
                .await
                .map_err(|e| Failure::new(exit::OTHER, format!("cannot install the default policies: {e}")))?;
        }
        _ => {}
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
    analytics: Option<&tollgate_analytics::node::Analytics>,
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
        // Directories users also sign in with (`[[user_store]]`, decision 020).
        let directories = tollgate_userstore::UserStores::from_config(&config.user_stores)
            .map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
        if !directories.is_empty() {
            tracing::info!(
                stores = config.user_stores.len(),
                "Users also sign in with the configured directories."
            );
        }
        // Directories tenants register (decision 021): their bind passwords are sealed
        // under `[node] secrets_key`, or a key generated once into the data directory.
        if config.node.secrets_key.is_none() && !components.is_all() {
            tracing::warn!(
                "No [node] secrets_key is configured on a node that runs only some components: a directory registered on another node cannot be opened here. Set the same value on every node."
            );
        }
        let secrets_key = tollgate_sealing::load_or_create_secret(
            &config.node.data_dir,
            SECRETS_KEY_FILE,
            config.node.secrets_key.as_ref().map(|s| s.expose()),
        )
        .map_err(|e| Failure::new(exit::OS, e.to_string()))?;
        let directories = tollgate_http::directories::Directories::configured(Arc::new(directories)).with_registered(
            shared.clone(),
            tollgate_userstore::registered::bind_password_key(&secrets_key),
            config.admin.tenant_directory_internal_addresses,
        );
        let authenticator = Authenticator::new(shared.clone())
            .with_user_stores(directories)
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
        if let Some(analytics) = analytics {
            let state = analytics.state(authenticator.clone(), cluster_secret.clone());
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

/// Where the generated secrets key is kept when `[node] secrets_key` is not set.
const SECRETS_KEY_FILE: &str = "secrets.key";

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

/// Opaque-token introspection for a gateway in the same process as the key manager.
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
