//! Tollgate's configuration: one serde tree with `deny_unknown_fields`, layered
//! defaults → TOML file → `TOLLGATE_` environment variables (`__` nests) → command-line
//! flags, and validated before any port is bound or database opened.
//!
//! The key names here are a public contract (docs/configuration.md): add keys, never
//! rename them. This crate must not depend on storage or HTTP.

mod default_file;
mod load;
mod secret;

pub use default_file::DEFAULT_CONFIG_TOML;
pub use load::{ConfigError, Overrides, load};
pub use secret::Secret;

use serde::{Deserialize, Deserializer, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tollgate_model::{Component, ComponentSet, Profile};

/// The whole configuration of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[node]`: what this node runs and where it keeps its files.
    pub node: NodeConfig,
    /// `[database.am]` and `[database.shared]`.
    pub database: DatabasesConfig,
    /// `[management]`: the REST APIs, portals, key manager, health and metrics listener.
    pub management: ManagementConfig,
    /// `[gateway]`: the data-plane listener.
    pub gateway: GatewayConfig,
    /// `[traffic_manager]`: the event hub and throttling listener.
    pub traffic_manager: TrafficManagerConfig,
    /// `[publisher]`: limits of the Publisher component.
    pub publisher: PublisherConfig,
    /// `[key_manager]`: the OAuth2/OIDC server: issuer, signing, token lifetimes.
    pub key_manager: KeyManagerConfig,
    /// `[devportal]`: the Developer Portal component.
    pub devportal: DevportalConfig,
    /// `[analytics]`: how the analytics component aggregates and keeps API-call data.
    pub analytics: AnalyticsConfig,
    /// `[cluster]`: how nodes find and authenticate each other.
    pub cluster: ClusterConfig,
    /// `[tracing]`: OpenTelemetry traces of API calls, exported over OTLP.
    pub tracing: TracingConfig,
    /// `[admin]`: the bootstrap administrator.
    pub admin: AdminConfig,
    /// `[log]`: log level and format.
    pub log: LogConfig,
    /// `[[user_store]]`: directories (LDAP, Active Directory) whose users sign in beside
    /// the built-in database store. Empty: users live in the shared database only.
    #[serde(rename = "user_store")]
    pub user_stores: Vec<UserStoreConfig>,
}

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where SQLite files, the generated admin password and persisted snapshots live.
    pub data_dir: PathBuf,
    /// The named set of components to run.
    pub profile: Profile,
    /// An explicit set of components; overrides `profile` when set. A list or a
    /// comma-separated string (`"gateway,key-manager"`).
    #[serde(deserialize_with = "optional_component_list")]
    pub components: Option<Vec<Component>>,
    /// How long to wait for in-flight requests after SIGTERM before closing anyway.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Seals what Tollgate keeps for others and must read back (the bind password of a
    /// directory a tenant registers). Unset: generated on first start into
    /// `<data_dir>/secrets.key`. Every node of one deployment needs the same value.
    pub secrets_key: Option<Secret>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            profile: Profile::AllInOne,
            components: None,
            shutdown_timeout: Duration::from_secs(30),
            secrets_key: None,
        }
    }
}

/// `[database]`: the two logical databases (docs/architecture.md, "The two databases").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabasesConfig {
    /// `[database.am]`: APIs, applications, subscriptions, keys, policies, events.
    pub am: DatabaseConfig,
    /// `[database.shared]`: users, roles, tenants, API documents.
    pub shared: DatabaseConfig,
}

/// One database's connection settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`; unset means a SQLite
    /// file under `node.data_dir`.
    pub url: Option<Secret>,
    /// Largest number of pooled connections (PostgreSQL; SQLite readers).
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long to wait for the server when opening a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a query waits for a free pooled connection.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Which of the two logical databases a setting belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatabaseName {
    /// The AM database.
    Am,
    /// The shared database.
    Shared,
}

impl DatabaseName {
    /// `am` or `shared`: the config table name and the default SQLite file stem.
    pub const fn as_str(&self) -> &'static str {
        match self {
            DatabaseName::Am => "am",
            DatabaseName::Shared => "shared",
        }
    }

    /// The config key of this database's URL, for error messages.
    pub const fn url_key(&self) -> &'static str {
        match self {
            DatabaseName::Am => "database.am.url",
            DatabaseName::Shared => "database.shared.url",
        }
    }

    /// The environment variable that overrides this database's URL.
    pub const fn url_env(&self) -> &'static str {
        match self {
            DatabaseName::Am => "TOLLGATE_DATABASE__AM__URL",
            DatabaseName::Shared => "TOLLGATE_DATABASE__SHARED__URL",
        }
    }
}

impl std::fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[management]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagementConfig {
    /// Address of the REST APIs, portals, key manager, health and metrics.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Largest request body the REST APIs accept (bytes); larger ones get 413.
    pub max_body_bytes: usize,
    /// Failed password checks in a row for one username (HTTP Basic, the login page, the
    /// password grant) before it is locked for `sign_in_lockout`; 0 never locks.
    pub max_failed_sign_ins: u32,
    /// Failed password checks from one client address (IPv6: its /64) within
    /// `sign_in_lockout` before the address is locked for as long; 0 never locks.
    pub max_failed_sign_ins_per_address: u32,
    /// How long a locked user or address is refused (429 with `Retry-After`).
    #[serde(with = "humantime_serde")]
    pub sign_in_lockout: Duration,
    /// Password hashes (argon2id, ~19 MiB each) computed at once; more wait, and beyond a
    /// queue of 32 per slot are refused with 503. 0: one per CPU core.
    pub max_concurrent_password_checks: usize,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            tls: None,
            max_body_bytes: 10 * 1024 * 1024,
            max_failed_sign_ins: 5,
            max_failed_sign_ins_per_address: 20,
            sign_in_lockout: Duration::from_secs(300),
            max_concurrent_password_checks: 0,
        }
    }
}

/// `[publisher]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublisherConfig {
    /// Most revisions one API may keep; delete one to create another.
    pub max_revisions_per_api: u32,
    /// Whether OpenAPI documents may be fetched by URL, and the Publisher portal's "Test
    /// endpoint" may probe, private, loopback or link-local addresses (off: a creator
    /// cannot make the server probe its network).
    pub url_import_allow_private: bool,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            max_revisions_per_api: 5,
            url_import_allow_private: false,
        }
    }
}

/// The algorithm the key manager signs JWT access tokens and API keys with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// ECDSA P-256 with SHA-256 (small keys, fast signing; the default).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys; for clients that only know RSA).
    RS256,
}

/// `[key_manager]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyManagerConfig {
    /// The `iss` of every token and the base of the discovery document. Unset:
    /// `http://localhost:<management port>/oauth2/token`.
    pub issuer: Option<String>,
    /// How new signing keys sign.
    pub signing_algorithm: SigningAlgorithm,
    /// Seals signing keys at rest and peppers stored secret hashes. Unset: generated on
    /// first start into `<data_dir>/key-manager.secret`. Every key-manager node of one
    /// deployment needs the same value.
    pub secret: Option<Secret>,
    /// Lifetime of access tokens unless an application's keys ask for another.
    #[serde(with = "humantime_serde")]
    pub access_token_validity: Duration,
    /// Lifetime of refresh tokens.
    #[serde(with = "humantime_serde")]
    pub refresh_token_validity: Duration,
    /// Lifetime of authorization codes.
    #[serde(with = "humantime_serde")]
    pub authorization_code_validity: Duration,
    /// How often the JWKS of registered third-party key managers is fetched again.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh_interval: Duration,
    /// Token-endpoint requests allowed per second per client IP and per client id
    /// (sustained rate; twice as many in a burst). Guards secrets against guessing.
    pub token_requests_per_second: u32,
}

impl Default for KeyManagerConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            signing_algorithm: SigningAlgorithm::ES256,
            secret: None,
            access_token_validity: Duration::from_secs(3600),
            refresh_token_validity: Duration::from_secs(86_400),
            authorization_code_validity: Duration::from_secs(300),
            jwks_refresh_interval: Duration::from_secs(300),
            token_requests_per_second: 20,
        }
    }
}

/// `[devportal]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevportalConfig {
    /// Whether anyone may sign up (`POST /api/am/devportal/v3/signup`) and get the
    /// `subscriber` role. Off: only administrators create users.
    pub self_signup: bool,
    /// Sign-ups accepted per client address (IPv6: its /64) per hour, all at once if need
    /// be; beyond, 429 with `Retry-After`.
    pub self_signups_per_hour: u32,
}

impl Default for DevportalConfig {
    fn default() -> Self {
        Self {
            self_signup: true,
            self_signups_per_hour: 10,
        }
    }
}

/// `[tracing]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// Where spans go: an OTLP/HTTP traces URL such as
    /// `http://otel-collector:4318/v1/traces` (JSON encoding). Unset: no tracing, at no
    /// cost to the request path.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` the spans carry.
    pub service_name: String,
    /// The share of calls traced when the caller sent no trace context (0.0 to 1.0); a
    /// caller's sampled `traceparent` is always followed.
    pub sample_ratio: f64,
    /// How often finished spans are sent.
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "tollgate".into(),
            sample_ratio: 1.0,
            export_interval: Duration::from_secs(5),
        }
    }
}

/// `[analytics]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// How often received events are written to the AM database (the REST API and
    /// dashboards see calls this long after they happen, at most).
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How long per-minute rows are kept.
    #[serde(with = "humantime_serde")]
    pub minute_retention: Duration,
    /// How long per-hour rows are kept.
    #[serde(with = "humantime_serde")]
    pub hour_retention: Duration,
    /// How long per-day rows are kept.
    #[serde(with = "humantime_serde")]
    pub day_retention: Duration,
    /// Distinct (minute, API, resource, application, user, status…) combinations held
    /// between flushes; events of further ones are dropped and counted
    /// (`tollgate_analytics_dropped_total`).
    pub max_keys: usize,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(10),
            minute_retention: Duration::from_secs(2 * 86_400),
            hour_retention: Duration::from_secs(90 * 86_400),
            day_retention: Duration::from_secs(3 * 365 * 86_400),
            max_keys: 100_000,
        }
    }
}

/// A PEM certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[gateway]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Plain-HTTP address for API traffic.
    pub listen: SocketAddr,
    /// The gateway environment this node serves (revisions are deployed per environment).
    pub environment: String,
    /// An additional HTTPS listener for API traffic.
    pub tls: Option<GatewayTlsConfig>,
    /// How long to wait for a backend connection before trying the next endpoint.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long to wait for a backend's response headers, unless the endpoint's
    /// `config.actionDuration` says otherwise (504 after it).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// How long a client's keep-alive connection may sit without a request (or with a
    /// request head that never completes) before the gateway closes it: between this and
    /// a quarter more.
    #[serde(with = "humantime_serde")]
    pub keep_alive_timeout: Duration,
    /// Unused since gateways watch the event hub's stream (changes arrive as they are
    /// committed); still accepted so that existing files load.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Largest request body the gateway forwards, in bytes (413 beyond it). Bodies are
    /// streamed, never buffered, whatever their size.
    pub max_request_body_bytes: u64,
    /// Largest request head (request line and headers) the gateway reads, in bytes (431
    /// beyond it), on every listener; at least 8192.
    pub max_request_header_bytes: usize,
    /// Threads serving plain-HTTP API traffic, each with its own runtime and backend
    /// connections (0: one per CPU).
    pub workers: usize,
    /// Append one JSON line per API call (the analytics event) to this file. Unset: no
    /// analytics log.
    pub analytics_log: Option<PathBuf>,
    /// Analytics events queued at most; beyond it events are dropped and counted, never
    /// waited for.
    pub analytics_queue: usize,
    /// The analytics log's line shape: `json` (Tollgate's event) or `elk` (the
    /// reference's ELK analytics lines, for its Logstash pipeline and Kibana dashboards).
    pub analytics_log_format: AnalyticsLogFormat,
    /// A PEM file of CA certificates `https://` backends may also be signed by (besides
    /// the Mozilla roots). Unset: the Mozilla roots only.
    pub backend_ca_file: Option<PathBuf>,
    /// Send authenticated calls to the backend with an `X-JWT-Assertion` header (who
    /// called, signed by the gateway; its key at `/.well-known/gateway-jwks.json`).
    pub backend_jwt: bool,
    /// How often the gateway syncs its throttle counters with the traffic manager (and
    /// how soon it asks for permits near a limit); the error bound of shared limits grows
    /// with it (decision 009).
    #[serde(with = "humantime_serde")]
    pub throttle_sync_interval: Duration,
    /// What the gateway does while the traffic manager cannot be reached: admit its share
    /// of each limit (`local_share`) or refuse limited calls (`fail_closed`).
    pub throttle_fallback: ThrottleFallback,
    /// The tenants this gateway serves, by domain (`carbon.super` for the super tenant);
    /// empty: every tenant. The event hub then sends it only those tenants' state.
    pub tenants: Vec<String>,
}

/// `gateway.analytics_log_format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AnalyticsLogFormat {
    /// One JSON event per line.
    #[default]
    Json,
    /// The reference's ELK analytics lines.
    Elk,
}

/// `gateway.throttle_fallback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleFallback {
    /// Admit `limit / live gateways` per window at each gateway.
    #[default]
    LocalShare,
    /// Refuse every call a limit applies to (429).
    FailClosed,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8280)),
            environment: "Default".into(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            max_request_body_bytes: 100 * 1024 * 1024,
            max_request_header_bytes: 64 * 1024,
            workers: 0,
            analytics_log: None,
            analytics_queue: 10_000,
            analytics_log_format: AnalyticsLogFormat::Json,
            backend_ca_file: None,
            backend_jwt: false,
            throttle_sync_interval: Duration::from_millis(50),
            throttle_fallback: ThrottleFallback::LocalShare,
            tenants: Vec::new(),
        }
    }
}

/// `[gateway.tls]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayTlsConfig {
    /// HTTPS address for API traffic.
    #[serde(default = "default_gateway_tls_listen")]
    pub listen: SocketAddr,
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
}

fn default_gateway_tls_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8243))
}

impl GatewayTlsConfig {
    /// The certificate and key as a plain [`TlsConfig`].
    pub fn tls(&self) -> TlsConfig {
        TlsConfig {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

/// `[traffic_manager]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficManagerConfig {
    /// Address of the event hub and throttling endpoints that other nodes call.
    pub listen: SocketAddr,
    /// How often an idle event-hub watch sends a heartbeat (gateways reconnect after 20 s
    /// without one, so keep it well below that).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long events stay in the outbox; a gateway away for longer loads a new
    /// snapshot instead of the events it missed.
    #[serde(with = "humantime_serde")]
    pub event_retention: Duration,
    /// Keep throttle counters in this Redis (`redis://host:6379/0`), so that several
    /// traffic managers share them instead of each granting a whole limit. Unset: in this
    /// process (run one traffic manager).
    pub redis_url: Option<Secret>,
}

impl Default for TrafficManagerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9611)),
            heartbeat_interval: Duration::from_secs(5),
            event_retention: Duration::from_secs(7 * 24 * 3600),
            redis_url: None,
        }
    }
}

/// `[cluster]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Shared secret every node presents to every other; required when the node does
    /// not run every component.
    pub secret: Option<Secret>,
    /// The event hub(s) a gateway follows: one URL or a list (for HA).
    #[serde(deserialize_with = "one_or_many")]
    pub event_hub_url: Vec<String>,
    /// The key manager a gateway asks to introspect opaque tokens.
    pub key_manager_url: Option<String>,
    /// The node running the analytics component that a gateway ships its API-call
    /// events to (its management URL). Unset: this node's own analytics component, if
    /// it runs one; else events are not shipped.
    pub analytics_url: Option<String>,
}

/// Shortest accepted cluster secret, in bytes.
pub const MIN_CLUSTER_SECRET_LEN: usize = 16;

/// Smallest accepted `gateway.max_request_header_bytes`: hyper's smallest read buffer.
pub const MIN_REQUEST_HEADER_BYTES: usize = 8192;

/// `[admin]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The bootstrap administrator's user name.
    pub username: String,
    /// The bootstrap administrator's password, used only when that user is first
    /// created. Also `TOLLGATE_ADMIN_PASSWORD`. Unset: a random one is generated.
    pub password: Option<Secret>,
    /// Whether a tenant's administrator (not the super tenant's) may register a directory
    /// at a loopback, link-local or unspecified address: this host's own services or a
    /// cloud metadata endpoint. Private networks are always allowed.
    pub tenant_directory_internal_addresses: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            username: "admin".into(),
            password: None,
            tenant_directory_internal_addresses: false,
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `tollgate_store=debug,info`… (`RUST_LOG` wins).
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format `{other}`; expected text or json")),
        }
    }
}

fn optional_component_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Component>>, D::Error> {
    let Some(list) = Option::<OneOrMany>::deserialize(d)? else {
        return Ok(None);
    };
    list.into_vec()
        .iter()
        .map(|n| n.parse::<Component>().map_err(serde::de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A list written either as a TOML array or as one comma-separated string (the only
/// shape an environment variable can carry).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            OneOrMany::Many(v) => v,
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(OneOrMany::deserialize(d)?.into_vec())
}

impl Config {
    /// The components this node runs: `node.components` when set, else the profile's.
    pub fn components(&self) -> ComponentSet {
        match &self.node.components {
            Some(list) => list.iter().copied().collect(),
            None => self.node.profile.components(),
        }
    }

    /// The settings of one database.
    pub fn database(&self, name: DatabaseName) -> &DatabaseConfig {
        match name {
            DatabaseName::Am => &self.database.am,
            DatabaseName::Shared => &self.database.shared,
        }
    }

    /// The key manager's `iss`: the configured one, or derived from the management
    /// listener's port (the reference's shape, `…/oauth2/token`).
    pub fn issuer(&self) -> String {
        match &self.key_manager.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.management.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://localhost:{}/oauth2/token", self.management.listen.port())
            }
        }
    }

    /// The URL of one database: the configured one, or a SQLite file under `data_dir`.
    pub fn database_url(&self, name: DatabaseName) -> String {
        match &self.database(name).url {
            Some(url) => url.expose().to_string(),
            None => default_sqlite_url(&self.node.data_dir, name),
        }
    }
}

/// `sqlite://DATA_DIR/NAME.db`: where a database lives when no URL is configured.
pub fn default_sqlite_url(data_dir: &Path, name: DatabaseName) -> String {
    format!("sqlite://{}/{}.db", data_dir.display(), name.as_str())
}

/// The database engines Tollgate speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite (default).
    Sqlite,
    /// PostgreSQL (distributed deployments).
    Postgres,
}

/// Classifies a database URL by scheme, or says what is wrong with it.
pub fn engine_of(url: &str) -> Result<Engine, String> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err("is not a URL; use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = rest.trim_start_matches("//");
            if path.is_empty() || path.starts_with('?') {
                Err("names no file; use sqlite://PATH (for example sqlite://data/am.db)".into())
            } else if path.contains(":memory:") || path.contains("mode=memory") {
                // A node's readers and its writer are separate connections; in memory
                // each would see its own empty database.
                Err("is an in-memory database, which Tollgate cannot share between its connections; use a file such as sqlite://data/am.db".into())
            } else {
                Ok(Engine::Sqlite)
            }
        }
        "postgres" | "postgresql" => {
            let Some(after) = rest.strip_prefix("//") else {
                return Err(
                    "must start with postgres:// (for example postgres://tollgate@127.0.0.1:5432/tollgate_am)".into(),
                );
            };
            let authority = after.split(['/', '?']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() {
                Err("names no host; use postgres://USER@HOST:PORT/DATABASE".into())
            } else {
                Ok(Engine::Postgres)
            }
        }
        other => Err(format!(
            "has unsupported scheme `{other}`; use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
        )),
    }
}

/// A URL with any password replaced by `***`, safe to log and print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{userinfo}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_are_recognised_and_bad_urls_explained() {
        assert_eq!(engine_of("sqlite://data/am.db"), Ok(Engine::Sqlite));
        assert!(engine_of("sqlite::memory:").unwrap_err().contains("in-memory"));
        assert_eq!(engine_of("postgres://u:p@127.0.0.1:5432/x"), Ok(Engine::Postgres));
        assert_eq!(engine_of("postgresql://db.internal/x"), Ok(Engine::Postgres));
        assert!(
            engine_of("mysql://x/y")
                .unwrap_err()
                .contains("unsupported scheme `mysql`")
        );
        assert!(engine_of("postgres:///x").unwrap_err().contains("no host"));
        assert!(engine_of("nonsense").unwrap_err().contains("not a URL"));
        assert!(engine_of("sqlite://").unwrap_err().contains("no file"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://tg:hunter2@db:5432/am?sslmode=require"),
            "postgres://tg:***@db:5432/am?sslmode=require"
        );
        assert_eq!(redact_url("postgres://tg@db/am"), "postgres://tg@db/am");
        assert_eq!(redact_url("sqlite://data/am.db"), "sqlite://data/am.db");
    }

    #[test]
    fn components_come_from_profile_unless_listed() {
        let mut c = Config::default();
        assert!(c.components().is_all());
        c.node.profile = Profile::Gateway;
        assert_eq!(c.components().to_string(), "gateway");
        c.node.components = Some(vec![Component::Publisher, Component::Admin]);
        assert_eq!(c.components().to_string(), "publisher,admin");
    }

    #[test]
    fn default_urls_live_under_data_dir() {
        let c = Config::default();
        assert_eq!(c.database_url(DatabaseName::Am), "sqlite://data/am.db");
        assert_eq!(c.database_url(DatabaseName::Shared), "sqlite://data/shared.db");
    }
}

/// Whether `domain` can name a secondary user store: letters, digits, `-`, `_` and `.`
/// (its users sign in as `DOMAIN/alice`, so it holds no `/`).
pub fn is_store_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What kind of directory a `[[user_store]]` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStoreType {
    /// The built-in store: users in the shared database.
    Database,
    /// An LDAP directory (OpenLDAP, 389 DS…): users found by `uid`, groups by `member`.
    #[default]
    Ldap,
    /// Active Directory: the LDAP store with AD's defaults (`sAMAccountName`, `memberOf`,
    /// paged search, the account-disabled flag honoured).
    ActiveDirectory,
}

/// How a directory says which groups a user is in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupMembership {
    /// Each group lists its members' DNs in `member` (groupOfNames).
    #[default]
    Member,
    /// Each group lists its members' DNs in `uniqueMember` (groupOfUniqueNames).
    UniqueMember,
    /// Each user lists its groups' DNs in `memberOf` (Active Directory, OpenLDAP's
    /// memberof overlay).
    MemberOf,
}

/// `[[user_store]]`: one directory users sign in with. The one without `domain` is the
/// primary store (tried for plain names); each other store has a domain, and its users
/// sign in as `DOMAIN/alice` (`DOMAIN/alice@acme.com` in a tenant), as in the reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserStoreConfig {
    /// The store's domain name (`CORP`), upper-cased when compared; empty for the
    /// primary store.
    pub domain: String,
    /// `database`, `ldap` or `active_directory`.
    #[serde(rename = "type")]
    pub kind: UserStoreType,
    /// The directory's URLs, tried in order: `ldap://`, `ldaps://`.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    pub start_tls: bool,
    /// The DN the store binds as to search (never anonymously).
    pub bind_dn: String,
    /// Its password. Better from `bind_password_env` or `bind_password_file`.
    pub bind_password: Option<Secret>,
    /// The environment variable holding the bind password.
    pub bind_password_env: Option<String>,
    /// A file holding the bind password (its trailing newline ignored).
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched (`ou=people,dc=example,dc=com`).
    pub user_search_base: String,
    /// The filter that finds one user; `{username}` is replaced by the escaped name.
    /// Default: `(&(objectClass=person)(uid={username}))`; for Active Directory,
    /// `sAMAccountName` or `userPrincipalName`.
    pub user_filter: Option<String>,
    /// Where groups are searched; the user search base when empty.
    pub group_search_base: String,
    /// The filter that finds groups; `{member}` is replaced by the escaped user DN.
    /// Default by `membership`: `(member={member})`, `(uniqueMember={member})`.
    pub group_filter: Option<String>,
    /// How membership is recorded.
    pub membership: Option<GroupMembership>,
    /// The attribute that names a group (`cn`).
    pub group_name_attribute: String,
    /// The attribute that holds a user's email address.
    pub email_attribute: String,
    /// Whether Tollgate may only read the directory (sign-up and user creation refused).
    pub read_only: bool,
    /// How many connections to the directory are kept.
    pub pool_size: usize,
    /// How long to wait to connect to one URL before trying the next.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one operation (bind, search) may take.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// How long a user's roles, read from their groups, are kept before the directory is
    /// asked again.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Directory group name → Tollgate roles (`apiPublishers = ["publisher", "creator"]`).
    pub role_mapping: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for UserStoreConfig {
    fn default() -> Self {
        Self {
            domain: String::new(),
            kind: UserStoreType::Ldap,
            urls: Vec::new(),
            start_tls: false,
            bind_dn: String::new(),
            bind_password: None,
            bind_password_env: None,
            bind_password_file: None,
            user_search_base: String::new(),
            user_filter: None,
            group_search_base: String::new(),
            group_filter: None,
            membership: None,
            group_name_attribute: "cn".into(),
            email_attribute: "mail".into(),
            read_only: true,
            pool_size: 4,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(60),
            role_mapping: std::collections::BTreeMap::new(),
        }
    }
}

impl UserStoreConfig {
    /// The filter that finds a user, with `{username}` to replace.
    pub fn user_filter(&self) -> &str {
        match (&self.user_filter, self.kind) {
            (Some(f), _) => f,
            (None, UserStoreType::ActiveDirectory) => {
                "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
            }
            (None, _) => "(&(objectClass=person)(uid={username}))",
        }
    }

    /// Checks a directory's settings (all but its bind password, which the caller
    /// reads), naming the store `name` in messages: the first problem as (field, message).
    /// The configuration file and the Admin REST API share this one rule.
    pub fn check(&self, name: &str) -> Result<(), (&'static str, String)> {
        if self.urls.is_empty() {
            return Err((
                "urls",
                format!("{name} needs at least one URL, such as [\"ldap://ldap.example.com:389\"]"),
            ));
        }
        if let Some(url) = self
            .urls
            .iter()
            .find(|u| !(u.starts_with("ldap://") || u.starts_with("ldaps://")) || u.chars().any(char::is_whitespace))
        {
            return Err(("urls", format!("`{url}` of {name} is not an ldap:// or ldaps:// URL")));
        }
        for (key, value) in [("bind_dn", &self.bind_dn), ("user_search_base", &self.user_search_base)] {
            if value.trim().is_empty() {
                return Err((key, format!("{name} needs it")));
            }
        }
        if !self.user_filter().contains("{username}") {
            return Err((
                "user_filter",
                format!("the filter of {name} must hold `{{username}}`, where the escaped sign-in name goes"),
            ));
        }
        if self.membership() != GroupMembership::MemberOf && !self.group_filter().contains("{member}") {
            return Err((
                "group_filter",
                format!("the group filter of {name} must hold `{{member}}`, where the escaped user DN goes"),
            ));
        }
        if self.pool_size == 0 {
            return Err(("pool_size", "must be at least 1".into()));
        }
        if let Some((group, _)) = self
            .role_mapping
            .iter()
            .find(|(g, roles)| g.trim().is_empty() || roles.iter().any(|r| r.trim().is_empty()))
        {
            return Err((
                "role_mapping",
                format!("`{group}` of {name} maps to an empty role name, or is empty itself"),
            ));
        }
        Ok(())
    }

    /// How group membership is read.
    pub fn membership(&self) -> GroupMembership {
        match (self.membership, self.kind) {
            (Some(m), _) => m,
            (None, UserStoreType::ActiveDirectory) => GroupMembership::MemberOf,
            (None, _) => GroupMembership::Member,
        }
    }

    /// The filter that finds a user's groups, with `{member}` to replace (unused with
    /// `memberOf`).
    pub fn group_filter(&self) -> String {
        match (&self.group_filter, self.membership()) {
            (Some(f), _) => f.clone(),
            (None, GroupMembership::UniqueMember) => "(uniqueMember={member})".into(),
            (None, _) => "(member={member})".into(),
        }
    }

    /// Where groups are searched.
    pub fn group_search_base(&self) -> &str {
        if self.group_search_base.is_empty() {
            &self.user_search_base
        } else {
            &self.group_search_base
        }
    }

    /// The bind password, from the first of `bind_password`, `bind_password_env` and
    /// `bind_password_file` that is set; an error names the key when it cannot be read.
    pub fn bind_password(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(p) = &self.bind_password {
            return Ok(Some(p.clone()));
        }
        if let Some(var) = &self.bind_password_env {
            return std::env::var(var).map(|v| Some(Secret::new(v))).map_err(|_| {
                ConfigError::invalid(
                    "user_store.bind_password_env",
                    format!("the environment variable `{var}` is not set"),
                )
            });
        }
        if let Some(path) = &self.bind_password_file {
            return std::fs::read_to_string(path)
                .map(|v| Some(Secret::new(v.trim_end_matches(['\r', '\n']))))
                .map_err(|e| {
                    ConfigError::invalid(
                        "user_store.bind_password_file",
                        format!("cannot read `{}`: {e}", path.display()),
                    )
                });
        }
        Ok(None)
    }
}
