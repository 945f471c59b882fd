//! Layered loading: defaults → TOML file → `TOLLGATE_` environment → flags, then
//! validation. Every error is one line that names the key, where it came from, and what
//! to do about it.

use crate::{Config, DatabaseName, LogFormat, MIN_CLUSTER_SECRET_LEN, MIN_REQUEST_HEADER_BYTES, engine_of};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tollgate_model::{Component, Profile};

/// Values given on the command line; they win over every other layer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--profile`.
    pub profile: Option<Profile>,
    /// `--components`.
    pub components: Option<Vec<Component>>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Why a configuration was refused. `Display` is the one line printed before exiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that cannot be read.
    #[error("cannot read config file {path}: {reason}; check the path given to --config (or TOLLGATE_CONFIG)")]
    File {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A key that Tollgate does not know.
    #[error(
        "unknown config key `{key}` in {source_name}; known keys here: {expected}; run `tollgate config default` to see every key"
    )]
    UnknownKey {
        /// Dotted key path.
        key: String,
        /// File path or environment variable.
        source_name: String,
        /// The keys allowed at that level.
        expected: String,
    },
    /// A key with a value of the wrong shape or out of range.
    #[error("invalid value for `{key}` in {source_name}: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// File path, environment variable, or `defaults/flags`.
        source_name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            source_name: "the configuration".into(),
            reason: reason.into(),
        }
    }
}

/// Loads and validates the configuration: defaults, then `file` (if given), then the
/// environment (`env` lists `(name, value)` pairs, normally `std::env::vars()`), then
/// `overrides`.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        // figment ignores a missing file; an explicitly named one must exist.
        std::fs::metadata(path).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(env_provider(env));
    if let Some(profile) = overrides.profile {
        figment = figment.merge(Serialized::default("node.profile", profile));
    }
    if let Some(components) = &overrides.components {
        figment = figment.merge(Serialized::default("node.components", components));
    }
    if let Some(format) = overrides.log_format {
        figment = figment.merge(Serialized::default("log.format", format));
    }
    if let Some(dir) = &overrides.data_dir {
        figment = figment.merge(Serialized::default("node.data_dir", dir));
    }
    let config: Config = figment.extract().map_err(describe)?;
    validate(&config)?;
    Ok(config)
}

/// `TOLLGATE_A__B=v` sets `a.b`; `TOLLGATE_ADMIN_PASSWORD` is an alias of
/// `admin.password`; `TOLLGATE_CONFIG` names the file and is not a key.
fn env_provider(vars: impl IntoIterator<Item = (String, String)>) -> impl figment::Provider {
    let mut toml = toml::Table::new();
    let mut names = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        if rest.is_empty() || rest == "CONFIG" {
            continue;
        }
        let key = if rest == "ADMIN_PASSWORD" {
            "admin.password".to_string()
        } else {
            rest.to_ascii_lowercase().replace("__", ".")
        };
        names.push((key.clone(), name.clone()));
        insert_dotted(&mut toml, &key, parse_env_value(&value));
    }
    EnvSource { table: toml, names }
}

/// Reads an environment value as TOML when it is a bare number, boolean or array, else
/// as a string, so that `TOLLGATE_GATEWAY__LISTEN=0.0.0.0:8280` stays a string.
fn parse_env_value(value: &str) -> toml::Value {
    let trimmed = value.trim();
    if let Ok(i) = trimmed.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = trimmed.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if trimmed.starts_with('[')
        && let Ok(table) = toml::from_str::<toml::Table>(&format!("v = {trimmed}"))
        && let Some(v) = table.get("v")
    {
        return v.clone();
    }
    toml::Value::String(value.to_string())
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts = key.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return;
        }
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(t) => current = t,
            _ => return,
        }
    }
}

/// The environment as a figment provider that remembers which variable set which key,
/// so that errors can name the variable.
struct EnvSource {
    table: toml::Table,
    names: Vec<(String, String)>,
}

const ENV_SOURCE_NAME: &str = "TOLLGATE_ environment variables";

impl figment::Provider for EnvSource {
    fn metadata(&self) -> figment::Metadata {
        let names = self.names.clone();
        figment::Metadata::named(ENV_SOURCE_NAME).interpolater(move |_profile, keys| {
            let key = keys.join(".");
            names
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, n)| n.clone())
                .unwrap_or_else(|| format!("TOLLGATE_{}", key.to_ascii_uppercase().replace('.', "__")))
        })
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::defaults(&self.table).data()
    }
}

fn describe(err: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let key = err.path.join(".");
    let source_name = match &err.metadata {
        Some(meta) if meta.name == ENV_SOURCE_NAME => {
            format!(
                "environment variable {}",
                meta.interpolate(&err.profile.clone().unwrap_or_default(), &err.path)
            )
        }
        Some(meta) => match &meta.source {
            Some(figment::Source::File(p)) => p.display().to_string(),
            _ => meta.name.to_string(),
        },
        None => "the configuration".to_string(),
    };
    match &err.kind {
        Kind::UnknownField(field, expected) => {
            // figment's path already ends with the unknown field.
            let full = if key.is_empty() { field.clone() } else { key };
            let source_name = match &err.metadata {
                Some(meta) if meta.name == ENV_SOURCE_NAME => format!(
                    "environment variable TOLLGATE_{}",
                    full.to_ascii_uppercase().replace('.', "__")
                ),
                _ => source_name,
            };
            ConfigError::UnknownKey {
                key: full,
                source_name,
                expected: expected.join(", "),
            }
        }
        kind => ConfigError::Invalid {
            key: if key.is_empty() { "(top level)".into() } else { key },
            source_name,
            reason: kind.to_string(),
        },
    }
}

/// Checks what serde cannot: URL shapes, required secrets, non-empty sets.
/// Each `[[user_store]]`: a directory Tollgate can reach and search, named uniquely.
fn validate_user_stores(stores: &[crate::UserStoreConfig]) -> Result<(), ConfigError> {
    use crate::UserStoreType;
    let mut domains = std::collections::BTreeSet::new();
    for store in stores {
        let name = if store.domain.is_empty() {
            "the primary store".to_string()
        } else {
            format!("`{}`", store.domain)
        };
        if !store.domain.is_empty() && !crate::is_store_domain(&store.domain) {
            return Err(ConfigError::invalid(
                "user_store.domain",
                format!("{name} may hold only letters, digits, `-`, `_` and `.` (users sign in as DOMAIN/name)"),
            ));
        }
        if !domains.insert(store.domain.to_ascii_uppercase()) {
            return Err(ConfigError::invalid(
                "user_store.domain",
                format!("{name} is configured twice; give each store its own domain (one may have none: the primary)"),
            ));
        }
        if store.kind == UserStoreType::Database {
            continue;
        }
        store
            .check(&name)
            .map_err(|(field, message)| ConfigError::invalid(&format!("user_store.{field}"), message))?;
        if store.bind_password()?.is_none_or(|p| p.expose().is_empty()) {
            return Err(ConfigError::invalid(
                "user_store.bind_password",
                format!(
                    "{name} needs a bind password (bind_password_env or bind_password_file); an anonymous bind is refused"
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate(config: &Config) -> Result<(), ConfigError> {
    for name in [DatabaseName::Am, DatabaseName::Shared] {
        if let Some(url) = &config.database(name).url {
            engine_of(url.expose()).map_err(|why| {
                ConfigError::invalid(
                    name.url_key(),
                    format!(
                        "`{}` {why} (set it in the config file or {})",
                        crate::redact_url(url.expose()),
                        name.url_env()
                    ),
                )
            })?;
        }
        let db = config.database(name);
        if db.max_connections == 0 {
            return Err(ConfigError::invalid(
                &format!("database.{name}.max_connections"),
                "must be at least 1",
            ));
        }
        if db.min_connections > db.max_connections {
            return Err(ConfigError::invalid(
                &format!("database.{name}.min_connections"),
                "must not exceed max_connections",
            ));
        }
    }
    let components = config.components();
    if components.is_empty() {
        return Err(ConfigError::invalid(
            "node.components",
            "names no component; list at least one, or remove it to use node.profile",
        ));
    }
    match &config.cluster.secret {
        Some(secret) if secret.expose().len() < MIN_CLUSTER_SECRET_LEN => {
            return Err(ConfigError::invalid(
                "cluster.secret",
                format!(
                    "must be at least {MIN_CLUSTER_SECRET_LEN} characters; generate one with `openssl rand -hex 32`"
                ),
            ));
        }
        None if !components.is_all() => {
            return Err(ConfigError::invalid(
                "cluster.secret",
                format!(
                    "is required when a node runs only some components ({components}); set the same value on every node ([cluster] secret or TOLLGATE_CLUSTER__SECRET), e.g. from `openssl rand -hex 32`"
                ),
            ));
        }
        _ => {}
    }
    if components.contains(Component::Gateway)
        && !components.contains(Component::TrafficManager)
        && config.cluster.event_hub_url.is_empty()
    {
        return Err(ConfigError::invalid(
            "cluster.event_hub_url",
            "is required on a gateway node without the traffic manager: give the traffic manager's URL, e.g. \"http://traffic-manager:9611\" (several for high availability)",
        ));
    }
    let urls = config
        .cluster
        .event_hub_url
        .iter()
        .map(|u| ("cluster.event_hub_url", u))
        .chain(
            config
                .cluster
                .key_manager_url
                .iter()
                .map(|u| ("cluster.key_manager_url", u)),
        )
        .chain(
            config
                .cluster
                .analytics_url
                .iter()
                .map(|u| ("cluster.analytics_url", u)),
        )
        .chain(
            config
                .tracing
                .otlp_endpoint
                .iter()
                .map(|u| ("tracing.otlp_endpoint", u)),
        );
    for (key, url) in urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                key,
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
    }
    for (key, secret) in [
        ("key_manager.secret", &config.key_manager.secret),
        ("node.secrets_key", &config.node.secrets_key),
    ] {
        if let Some(secret) = secret
            && secret.expose().len() < MIN_CLUSTER_SECRET_LEN
        {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "must be at least {MIN_CLUSTER_SECRET_LEN} characters; generate one with `openssl rand -hex 32`"
                ),
            ));
        }
    }
    if let Some(issuer) = &config.key_manager.issuer
        && !(issuer.starts_with("http://") || issuer.starts_with("https://"))
    {
        return Err(ConfigError::invalid(
            "key_manager.issuer",
            format!("`{issuer}` must be an http:// or https:// URL (OIDC discovery requires it)"),
        ));
    }
    if config.management.sign_in_lockout < Duration::from_secs(1) {
        return Err(ConfigError::invalid(
            "management.sign_in_lockout",
            "must be at least 1s, e.g. \"5m\"",
        ));
    }
    if config.devportal.self_signups_per_hour == 0 {
        return Err(ConfigError::invalid(
            "devportal.self_signups_per_hour",
            "must be at least 1 (turn sign-up off with devportal.self_signup = false)",
        ));
    }
    if config.key_manager.token_requests_per_second == 0 {
        return Err(ConfigError::invalid(
            "key_manager.token_requests_per_second",
            "must be at least 1",
        ));
    }
    for (key, d) in [
        (
            "key_manager.access_token_validity",
            config.key_manager.access_token_validity,
        ),
        (
            "key_manager.refresh_token_validity",
            config.key_manager.refresh_token_validity,
        ),
        (
            "key_manager.authorization_code_validity",
            config.key_manager.authorization_code_validity,
        ),
        (
            "key_manager.jwks_refresh_interval",
            config.key_manager.jwks_refresh_interval,
        ),
    ] {
        if d.as_secs() == 0 {
            return Err(ConfigError::invalid(key, "must be at least 1s"));
        }
    }
    for url in &config.cluster.event_hub_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "cluster.event_hub_url",
                format!("`{url}` must be an http:// or https:// URL of a traffic-manager node"),
            ));
        }
    }
    if let Some(url) = &config.traffic_manager.redis_url
        && !(url.expose().starts_with("redis://") || url.expose().starts_with("rediss://"))
    {
        // The URL may hold a password: name the key, not the value.
        return Err(ConfigError::invalid(
            "traffic_manager.redis_url",
            "must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0",
        ));
    }
    if let Some(url) = &config.cluster.key_manager_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::invalid(
            "cluster.key_manager_url",
            format!("`{url}` must be an http:// or https:// URL"),
        ));
    }
    if !(0.0..=1.0).contains(&config.tracing.sample_ratio) {
        return Err(ConfigError::invalid(
            "tracing.sample_ratio",
            "must be from 0.0 (no call traced) to 1.0 (every call)",
        ));
    }
    if config.analytics.flush_interval < std::time::Duration::from_millis(100) {
        return Err(ConfigError::invalid(
            "analytics.flush_interval",
            "must be at least 100ms",
        ));
    }
    if config.management.max_body_bytes < 1024 {
        return Err(ConfigError::invalid(
            "management.max_body_bytes",
            "must be at least 1024",
        ));
    }
    if config.publisher.max_revisions_per_api == 0 {
        return Err(ConfigError::invalid(
            "publisher.max_revisions_per_api",
            "must be at least 1",
        ));
    }
    if config.gateway.max_request_header_bytes < MIN_REQUEST_HEADER_BYTES {
        return Err(ConfigError::invalid(
            "gateway.max_request_header_bytes",
            format!("must be at least {MIN_REQUEST_HEADER_BYTES}"),
        ));
    }
    if config.gateway.environment.trim().is_empty() {
        return Err(ConfigError::invalid("gateway.environment", "must not be empty"));
    }
    validate_user_stores(&config.user_stores)?;
    for domain in &config.gateway.tenants {
        if domain != tollgate_model::Tenant::DEFAULT_DOMAIN
            && let Err(why) = tollgate_model::tenant::validate_domain(domain)
        {
            return Err(ConfigError::invalid(
                "gateway.tenants",
                format!(
                    "`{domain}` is not a tenant domain ({why}); list domains such as [\"acme.com\"], or `carbon.super` for the super tenant"
                ),
            ));
        }
    }
    for (key, d) in [
        ("gateway.connect_timeout", config.gateway.connect_timeout),
        ("gateway.read_timeout", config.gateway.read_timeout),
        ("gateway.keep_alive_timeout", config.gateway.keep_alive_timeout),
        ("gateway.poll_interval", config.gateway.poll_interval),
        ("gateway.throttle_sync_interval", config.gateway.throttle_sync_interval),
        (
            "traffic_manager.heartbeat_interval",
            config.traffic_manager.heartbeat_interval,
        ),
        (
            "traffic_manager.event_retention",
            config.traffic_manager.event_retention,
        ),
    ] {
        if d.is_zero() {
            return Err(ConfigError::invalid(key, "must be more than 0"));
        }
    }
    if let Err(why) = tollgate_model::user::validate_username(&config.admin.username) {
        return Err(ConfigError::invalid("admin.username", why));
    }
    if let Some(pw) = &config.admin.password
        && pw.expose().chars().count() < tollgate_model::user::MIN_PASSWORD_LEN
    {
        return Err(ConfigError::invalid(
            "admin.password",
            format!(
                "must be at least {} characters (also settable as TOLLGATE_ADMIN_PASSWORD)",
                tollgate_model::user::MIN_PASSWORD_LEN
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn no_file_no_env_is_the_default() {
        let c = load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn layers_apply_in_order() {
        let f = file(
            "[gateway]\nlisten = \"127.0.0.1:1000\"\nenvironment = \"internal\"\n[database.am]\nmax_connections = 3\n",
        );
        let c = load(
            Some(f.path()),
            env(&[
                ("TOLLGATE_GATEWAY__LISTEN", "127.0.0.1:2000"),
                ("TOLLGATE_DATABASE__AM__URL", "postgres://u@db/am"),
                ("TOLLGATE_ADMIN_PASSWORD", "from-the-env-1"),
                ("TOLLGATE_CONFIG", "ignored.toml"),
                ("UNRELATED", "x"),
            ]),
            &Overrides {
                profile: Some(Profile::AllInOne),
                log_format: Some(LogFormat::Json),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.gateway.listen.to_string(), "127.0.0.1:2000");
        assert_eq!(c.gateway.environment, "internal");
        assert_eq!(c.database.am.max_connections, 3);
        assert_eq!(c.database_url(DatabaseName::Am), "postgres://u@db/am");
        assert_eq!(c.admin.password.as_ref().unwrap().expose(), "from-the-env-1");
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn guessing_limits_load_from_the_environment_and_are_checked() {
        let c = load(
            None,
            env(&[
                ("TOLLGATE_MANAGEMENT__MAX_FAILED_SIGN_INS", "3"),
                ("TOLLGATE_MANAGEMENT__SIGN_IN_LOCKOUT", "15m"),
                ("TOLLGATE_DEVPORTAL__SELF_SIGNUPS_PER_HOUR", "2"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.management.max_failed_sign_ins, 3);
        assert_eq!(c.management.sign_in_lockout, Duration::from_secs(900));
        assert_eq!(c.devportal.self_signups_per_hour, 2);
        for (var, key) in [
            ("TOLLGATE_MANAGEMENT__SIGN_IN_LOCKOUT", "management.sign_in_lockout"),
            (
                "TOLLGATE_DEVPORTAL__SELF_SIGNUPS_PER_HOUR",
                "devportal.self_signups_per_hour",
            ),
        ] {
            let err = load(None, env(&[(var, "0")]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn gateway_tenants_are_domains_from_a_file_or_the_environment() {
        assert!(Config::default().gateway.tenants.is_empty(), "every tenant by default");
        let f = file("[gateway]\ntenants = [\"acme.com\", \"carbon.super\"]\n");
        let c = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.gateway.tenants, ["acme.com", "carbon.super"]);
        let c = load(
            None,
            env(&[("TOLLGATE_GATEWAY__TENANTS", "[\"beta.org\"]")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.gateway.tenants, ["beta.org"]);
        for bad in ["[\"Acme.com\"]", "[\"acme\"]", "[\"t/acme.com\"]", "[\"\"]"] {
            let f = file(&format!("[gateway]\ntenants = {bad}\n"));
            let err = load(Some(f.path()), env(&[]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("`gateway.tenants`") && err.contains("is not a tenant domain"),
                "{bad}: {err}"
            );
        }
        let f = file("[gateway]\ntenants = \"acme.com\"\n");
        let err = load(Some(f.path()), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.tenants"), "not a list: {err}");
    }

    #[test]
    fn user_stores_load_with_their_defaults_and_bad_ones_name_the_key() {
        assert!(
            Config::default().user_stores.is_empty(),
            "the database store alone by default"
        );
        let secret = file("from-a-file\n");
        let f = file(&format!(
            r#"
[[user_store]]
urls = ["ldap://127.0.0.1:389", "ldaps://ldap2.example.com"]
bind_dn = "cn=tollgate,dc=example,dc=com"
bind_password_file = "{}"
user_search_base = "ou=people,dc=example,dc=com"
role_mapping = {{ apiPublishers = ["publisher", "creator"] }}

[[user_store]]
domain = "CORP"
type = "active_directory"
urls = ["ldaps://ad.corp.example"]
bind_dn = "CN=svc,DC=corp,DC=example"
bind_password = "ad-password"
user_search_base = "DC=corp,DC=example"
cache_ttl = "5m"
"#,
            secret.path().display()
        ));
        let c = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap();
        let [primary, corp] = &c.user_stores[..] else {
            panic!("{:?}", c.user_stores)
        };
        assert_eq!(primary.kind, crate::UserStoreType::Ldap);
        assert_eq!(primary.user_filter(), "(&(objectClass=person)(uid={username}))");
        assert_eq!(primary.membership(), crate::GroupMembership::Member);
        assert_eq!(primary.group_filter(), "(member={member})");
        assert_eq!(primary.group_search_base(), "ou=people,dc=example,dc=com");
        assert_eq!(primary.bind_password().unwrap().unwrap().expose(), "from-a-file");
        assert_eq!(primary.role_mapping["apiPublishers"], ["publisher", "creator"]);
        assert!(primary.read_only, "read-only unless said otherwise");
        assert_eq!(
            corp.user_filter(),
            "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
        );
        assert_eq!(corp.membership(), crate::GroupMembership::MemberOf);
        assert_eq!(corp.cache_ttl, Duration::from_secs(300));
        // The password never reaches a printed configuration.
        assert!(!format!("{c:?}").contains("ad-password"));

        let good = "urls = [\"ldap://h\"]\nbind_dn = \"cn=a\"\nbind_password = \"p\"\nuser_search_base = \"dc=x\"\n";
        for (bad, key) in [
            (
                "bind_dn = \"cn=a\"\nbind_password = \"p\"\nuser_search_base = \"dc=x\"\n",
                "user_store.urls",
            ),
            (
                "urls = [\"http://h\"]\nbind_dn = \"cn=a\"\nbind_password = \"p\"\nuser_search_base = \"dc=x\"\n",
                "user_store.urls",
            ),
            (
                "urls = [\"ldap://h\"]\nbind_dn = \"cn=a\"\nuser_search_base = \"dc=x\"\n",
                "user_store.bind_password",
            ),
            (
                "urls = [\"ldap://h\"]\nbind_dn = \"cn=a\"\nbind_password = \"\"\nuser_search_base = \"dc=x\"\n",
                "user_store.bind_password",
            ),
            (
                "urls = [\"ldap://h\"]\nbind_dn = \"cn=a\"\nbind_password_env = \"TOLLGATE_TEST_NO_SUCH_VAR\"\nuser_search_base = \"dc=x\"\n",
                "user_store.bind_password_env",
            ),
            (
                "urls = [\"ldap://h\"]\nbind_password = \"p\"\nuser_search_base = \"dc=x\"\n",
                "user_store.bind_dn",
            ),
            (
                &format!("{good}user_filter = \"(uid=alice)\"\n"),
                "user_store.user_filter",
            ),
            (&format!("{good}domain = \"CO/RP\"\n"), "user_store.domain"),
            (&format!("{good}pool_size = 0\n"), "user_store.pool_size"),
            (
                &format!("{good}role_mapping = {{ admins = [\"\"] }}\n"),
                "user_store.role_mapping",
            ),
            (&format!("{good}bind_pasword = \"typo\"\n"), "bind_pasword"),
        ] {
            let f = file(&format!("[[user_store]]\n{bad}"));
            let err = load(Some(f.path()), env(&[]), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let f = file(&format!(
            "[[user_store]]\n{good}domain = \"corp\"\n[[user_store]]\n{good}domain = \"CORP\"\n"
        ));
        let err = load(Some(f.path()), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("configured twice"), "{err}");
    }

    #[test]
    fn unknown_key_in_file_names_key_and_file() {
        let f = file("[database.am]\nurl = \"sqlite://x.db\"\npool = 4\n");
        let err = load(Some(f.path()), env(&[]), &Overrides::default()).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("`database.am.pool`"), "{line}");
        assert!(line.contains(&f.path().display().to_string()), "{line}");
        assert!(line.contains("max_connections"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_request_header_limit_is_64_kib_unless_set_and_never_below_8_kib() {
        assert_eq!(Config::default().gateway.max_request_header_bytes, 65536);
        let c = load(
            None,
            env(&[("TOLLGATE_GATEWAY__MAX_REQUEST_HEADER_BYTES", "16384")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.gateway.max_request_header_bytes, 16384);
        let err = load(
            None,
            env(&[("TOLLGATE_GATEWAY__MAX_REQUEST_HEADER_BYTES", "4096")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("gateway.max_request_header_bytes") && err.contains("8192"),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_in_env_names_the_variable() {
        let err = load(None, env(&[("TOLLGATE_GATEWAY__LISTN", "x")]), &Overrides::default()).unwrap_err();
        let line = err.to_string();
        assert!(line.contains("`gateway.listn`"), "{line}");
        assert!(line.contains("TOLLGATE_GATEWAY__LISTN"), "{line}");
    }

    #[test]
    fn malformed_values_name_the_key() {
        let err = load(
            None,
            env(&[("TOLLGATE_MANAGEMENT__LISTEN", "not-an-address")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`management.listen`") && err.contains("TOLLGATE_MANAGEMENT__LISTEN"),
            "{err}"
        );
        let err = load(
            None,
            env(&[("TOLLGATE_DATABASE__SHARED__URL", "mysql://x/y")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`database.shared.url`") && err.contains("TOLLGATE_DATABASE__SHARED__URL"),
            "{err}"
        );
        let f = file("[node]\nprofile = \"edge\"\n");
        let err = load(Some(f.path()), env(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`node.profile`"), "{err}");
    }

    #[test]
    fn partial_nodes_need_a_cluster_secret() {
        let over = Overrides {
            profile: Some(Profile::Gateway),
            ..Default::default()
        };
        let err = load(None, env(&[]), &over).unwrap_err().to_string();
        assert!(err.contains("`cluster.secret`"), "{err}");
        let err = load(None, env(&[("TOLLGATE_CLUSTER__SECRET", "short")]), &over)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 16"), "{err}");
        let ok = load(
            None,
            env(&[
                ("TOLLGATE_CLUSTER__SECRET", "0123456789abcdef0123"),
                ("TOLLGATE_CLUSTER__EVENT_HUB_URL", "http://tm:9611"),
            ]),
            &over,
        )
        .unwrap();
        assert_eq!(ok.components().to_string(), "gateway");
    }

    #[test]
    fn a_gateway_without_a_traffic_manager_needs_an_event_hub_url() {
        let over = Overrides {
            profile: Some(Profile::Gateway),
            ..Default::default()
        };
        let secret = ("TOLLGATE_CLUSTER__SECRET", "0123456789abcdef0123");
        let err = load(None, env(&[secret]), &over).unwrap_err().to_string();
        assert!(err.contains("`cluster.event_hub_url`"), "{err}");
        let err = load(
            None,
            env(&[secret, ("TOLLGATE_CLUSTER__EVENT_HUB_URL", "tm:9611")]),
            &over,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`tm:9611` is not an http"), "{err}");
        let ok = load(
            None,
            env(&[secret, ("TOLLGATE_CLUSTER__EVENT_HUB_URL", "https://tm:9611")]),
            &over,
        )
        .unwrap();
        assert_eq!(ok.cluster.event_hub_url, ["https://tm:9611"]);
    }

    #[test]
    fn throttling_keys_are_checked_and_the_redis_url_is_never_echoed() {
        let none = Overrides::default();
        let err = load(
            None,
            env(&[("TOLLGATE_TRAFFIC_MANAGER__REDIS_URL", "http://user:hunter2@cache:6379")]),
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`traffic_manager.redis_url`"), "{err}");
        assert!(!err.contains("hunter2"), "the URL's password must not be echoed: {err}");
        let err = load(None, env(&[("TOLLGATE_GATEWAY__THROTTLE_FALLBACK", "open")]), &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("throttle_fallback"), "{err}");
        let err = load(None, env(&[("TOLLGATE_GATEWAY__THROTTLE_SYNC_INTERVAL", "0s")]), &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`gateway.throttle_sync_interval`"), "{err}");
        for bad in ["0s", "soon"] {
            let err = load(None, env(&[("TOLLGATE_GATEWAY__KEEP_ALIVE_TIMEOUT", bad)]), &none)
                .unwrap_err()
                .to_string();
            assert!(err.contains("keep_alive_timeout"), "{bad}: {err}");
        }
        let ok = load(
            None,
            env(&[
                ("TOLLGATE_TRAFFIC_MANAGER__REDIS_URL", "redis://127.0.0.1:6379/0"),
                ("TOLLGATE_GATEWAY__THROTTLE_FALLBACK", "fail_closed"),
                ("TOLLGATE_GATEWAY__THROTTLE_SYNC_INTERVAL", "20ms"),
                ("TOLLGATE_GATEWAY__KEEP_ALIVE_TIMEOUT", "75s"),
            ]),
            &none,
        )
        .unwrap();
        assert_eq!(ok.gateway.keep_alive_timeout, std::time::Duration::from_secs(75));
        assert_eq!(ok.gateway.throttle_fallback, crate::ThrottleFallback::FailClosed);
        assert_eq!(ok.gateway.throttle_sync_interval, std::time::Duration::from_millis(20));
        assert!(ok.traffic_manager.redis_url.is_some());
    }

    #[test]
    fn components_accept_a_comma_list_from_env() {
        let c = load(
            None,
            env(&[
                ("TOLLGATE_NODE__COMPONENTS", "gateway,key-manager"),
                ("TOLLGATE_CLUSTER__SECRET", "0123456789abcdef0123"),
                ("TOLLGATE_CLUSTER__EVENT_HUB_URL", "http://a:9611, http://b:9611"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.components().to_string(), "key-manager,gateway");
        assert_eq!(c.cluster.event_hub_url, ["http://a:9611", "http://b:9611"]);
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load(
            Some(Path::new("/nonexistent/tollgate.toml")),
            env(&[]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }));
    }
}
