//! The commented default configuration file printed by `tollgate config default`.
//! A test checks that it parses to exactly `Config::default()`, so it cannot drift.

/// Every key with its default value and a comment saying what it is for.
pub const DEFAULT_CONFIG_TOML: &str = r#"# Tollgate configuration.
#
# Layers, later ones winning: built-in defaults -> this file (--config FILE or
# TOLLGATE_CONFIG) -> environment variables -> command-line flags.
# Every key can be set from the environment: TOLLGATE_ + the key path in capitals with
# "__" between levels, e.g. TOLLGATE_DATABASE__AM__URL, TOLLGATE_GATEWAY__LISTEN.
# Unknown keys are errors, so a typo never goes unnoticed.

[node]
# Directory for SQLite files, the generated admin password and persisted gateway state.
data_dir = "data"
# Which components this node runs:
#   all-in-one      every component in one process (default; embedded SQLite works)
#   control-plane   publisher, devportal, admin, key-manager, traffic-manager, analytics
#   gateway         the data plane only; opens no database
#   traffic-manager throttling and the event hub only
#   key-manager     the OAuth2/OIDC server only
profile = "all-in-one"
# An explicit component list overrides the profile, e.g.
# components = ["publisher", "devportal", "admin"]
# How long to let in-flight requests finish after SIGTERM/SIGINT before closing.
shutdown_timeout = "30s"
# Seals secrets kept at rest that Tollgate must read back (a tenant directory's bind
# password). Unset: generated on first start into <data_dir>/secrets.key. Every node of
# one deployment needs the same value.
# secrets_key = "…"

# The AM database: APIs, revisions, applications, subscriptions, keys, policies and the
# events outbox. Used by every component except the gateway.
[database.am]
# sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE.
# Unset: a SQLite file at <data_dir>/am.db.
# url = "postgres://tollgate@127.0.0.1:5432/tollgate_am"
# Pool size (PostgreSQL connections; SQLite reader connections, with one writer).
max_connections = 10
# Connections kept open while idle.
min_connections = 0
# How long to wait for the database server when connecting.
connect_timeout = "5s"
# How long a query waits for a free pooled connection.
acquire_timeout = "10s"

# The shared database: users, roles, tenants, API documents. Used by the publisher,
# devportal, admin and key-manager components. May point at the same PostgreSQL
# database as [database.am].
[database.shared]
# Unset: a SQLite file at <data_dir>/shared.db.
# url = "postgres://tollgate@127.0.0.1:5432/tollgate_shared"
max_connections = 10
min_connections = 0
connect_timeout = "5s"
acquire_timeout = "10s"

# The management listener: REST APIs, web portals, key manager, /health and /metrics.
[management]
listen = "127.0.0.1:9443"
# Largest request body the REST APIs accept, in bytes (larger ones get 413).
max_body_bytes = 10485760
# Guessing protection for passwords (HTTP Basic on the REST APIs, the login page, the
# password grant). A username is locked after this many failed checks in a row, and a
# client address (IPv6: its /64) after this many within sign_in_lockout; 0 never locks.
# A locked user or address gets 429 with Retry-After, even with the right password.
max_failed_sign_ins = 5
max_failed_sign_ins_per_address = 20
sign_in_lockout = "5m"
# Password hashes computed at once (argon2id, ~19 MiB each); more wait in a queue (32 per
# slot) and beyond it get 503. 0: one per CPU core.
max_concurrent_password_checks = 0
# Serve HTTPS instead of plain HTTP:
# [management.tls]
# cert = "/etc/tollgate/management.crt"   # PEM chain, leaf first
# key = "/etc/tollgate/management.key"    # PEM private key

# The gateway: where API consumers send their calls.
[gateway]
listen = "0.0.0.0:8280"
# The gateway environment this node serves; revisions are deployed per environment.
environment = "Default"
# Backend connect timeout; a refused or timed-out connection moves on to the next endpoint
# (idempotent requests without a body only).
connect_timeout = "5s"
# How long a backend may take to answer (504 after it), and the longest it may then pause
# while sending the body (cut off after it); an endpoint's config.actionDuration
# (milliseconds) overrides it.
read_timeout = "60s"
# How long a client connection may sit idle between requests (or trickle a request head
# that never completes) before the gateway closes it; closed between this and a quarter more.
keep_alive_timeout = "60s"
# Unused: gateways watch the event hub's stream and apply changes as they are committed.
# Still accepted so that existing files load.
poll_interval = "250ms"
# Largest request body forwarded, in bytes (413 beyond it); bodies are streamed either way.
max_request_body_bytes = 104857600
# Largest request head (request line and headers) read, in bytes (431 beyond it); at least 8192.
max_request_header_bytes = 65536
# Threads serving plain-HTTP API traffic, each with its own runtime and backend
# connection pool, like nginx workers (0: one per CPU).
workers = 0
# Append one JSON line per API call (its analytics event) to this file:
# analytics_log = "/var/log/tollgate/analytics.jsonl"
# The log's lines: "json" (Tollgate's event) or "elk" (the reference's ELK analytics lines,
# "apimMetrics: apim:response, properties :{...}", for its Logstash and Kibana dashboards).
analytics_log_format = "json"
# Analytics events queued at most; beyond it they are dropped and counted
# (tollgate_gateway_analytics_dropped_total), never waited for.
analytics_queue = 10000
# CA certificates (PEM) https:// backends may be signed by, besides the Mozilla roots:
# backend_ca_file = "/etc/tollgate/backend-ca.pem"
# Send authenticated calls to backends with an X-JWT-Assertion header: subscriber,
# application, tier and key type, signed by this gateway (public key at
# /.well-known/gateway-jwks.json on the gateway listener). Costs one ES256 signature a call.
backend_jwt = false
# How often throttle counters are synced with the traffic manager; near a limit a gateway
# asks at once. Shorter: tighter shared limits, more node-to-node calls (decision 009).
throttle_sync_interval = "50ms"
# While the traffic manager is unreachable: "local_share" admits limit / live gateways
# per window at each gateway; "fail_closed" refuses every limited call (429).
throttle_fallback = "local_share"
# The tenants this gateway serves, by domain ("carbon.super" for the super tenant); empty:
# every tenant. The event hub then sends this gateway only those tenants' state and events
# (their APIs under /t/{domain}/..., applications, subscriptions, policies); a call to any
# other tenant's API answers 404 (900906). Example: tenants = ["acme.com", "carbon.super"]
tenants = []
# An HTTPS listener in addition to the plain one:
# [gateway.tls]
# listen = "0.0.0.0:8243"
# cert = "/etc/tollgate/gateway.crt"
# key = "/etc/tollgate/gateway.key"

# The traffic manager: the event hub and throttling endpoints other nodes call.
[traffic_manager]
listen = "127.0.0.1:9611"
# How often an idle event-hub watch sends a heartbeat (gateways reconnect after 20 s
# without one).
heartbeat_interval = "5s"
# How long events stay in the outbox; a gateway away for longer loads a new snapshot.
event_retention = "7d"
# Share throttle counters through Redis, so that two or more traffic managers never grant
# the same limit twice (the reference's product-apim#11462). Unset: counters are kept in
# this process; run one traffic manager.
# redis_url = "redis://127.0.0.1:6379/0"

# The Publisher component.
[publisher]
# Most revisions one API may keep (the reference's default); delete one to create another.
max_revisions_per_api = 5
# Allow importing OpenAPI documents by URL, and the Publisher portal's "Test endpoint", to
# reach private, loopback and link-local addresses. Off by default, so that API creators
# cannot make the server probe its own network.
url_import_allow_private = false

# The key manager: the OAuth2/OIDC server (/oauth2/token, /oauth2/jwks, ...).
[key_manager]
# The "iss" of every token and the base of /.well-known/openid-configuration. Unset:
# http://localhost:<management port>/oauth2/token.
# issuer = "https://apim.example.com/oauth2/token"
# "ES256" (default) or "RS256" for new signing keys; `tollgate keys rotate` makes one.
signing_algorithm = "ES256"
# Seals signing keys at rest and peppers stored client-secret, API-key and token hashes.
# Unset: generated on first start into <data_dir>/key-manager.secret (mode 0600). Every
# key-manager node of one deployment needs the same value.
# secret = "output of: openssl rand -hex 32"
access_token_validity = "1h"
refresh_token_validity = "24h"
authorization_code_validity = "5m"
# How often the JWKS of third-party key managers (Admin API /key-managers) is fetched.
jwks_refresh_interval = "5m"
# Token-endpoint requests per second per client IP and per client id (bursts of twice as
# many), against secret guessing.
token_requests_per_second = 20

# The Developer Portal.
[devportal]
# Let anyone sign up with the subscriber role (POST /api/am/devportal/v3/signup).
self_signup = true
# Sign-ups accepted per client address (IPv6: its /64) per hour; beyond, 429.
self_signups_per_hour = 10

# The analytics component: aggregates the gateways' API-call events per minute, hour and
# day in the AM database and serves them at /api/am/analytics/v1 and in the portals.
[analytics]
# How often received events are written (calls show up in the REST API this late, at most).
flush_interval = "10s"
# How long per-minute, per-hour and per-day rows are kept.
minute_retention = "2days"
hour_retention = "90days"
day_retention = "1095days"
# Distinct (minute, API, resource, application, user, status...) combinations held between
# flushes; events of further ones are dropped and counted (tollgate_analytics_dropped_total).
max_keys = 100000

# How nodes find and trust each other.
[cluster]
# Shared secret presented on every node-to-node call (at least 16 characters; the same
# on every node). Required when a node runs only some components.
# secret = "output of: openssl rand -hex 32"
# The event hub(s) a gateway node follows (traffic managers' base URLs, such as
# "http://traffic-manager:9611"); a list gives high availability. Required on a node that
# runs the gateway without the traffic manager.
event_hub_url = []
# The key manager a gateway asks to introspect opaque tokens.
# key_manager_url = "http://control-plane:9443"
# The node running the analytics component that a gateway ships its API-call events to
# (batched, off the request path). Unset: this node's own analytics component, if any.
# analytics_url = "http://control-plane:9443"

# OpenTelemetry traces of API calls: a gateway span per call with a child span for the
# backend call; W3C trace context is read from callers and passed on to backends.
[tracing]
# An OTLP/HTTP traces URL (JSON encoding), e.g. an OpenTelemetry Collector. Unset: no tracing.
# otlp_endpoint = "http://otel-collector:4318/v1/traces"
service_name = "tollgate"
# Share of calls traced when the caller sent no sampled traceparent (0.0 to 1.0).
sample_ratio = 1.0
# How often finished spans are sent.
export_interval = "5s"

# The bootstrap administrator, created on first start.
[admin]
username = "admin"
# Also TOLLGATE_ADMIN_PASSWORD. Unset: a random password is generated on first start,
# printed once and written to <data_dir>/admin-password (mode 0600).
# password = "..."
# Whether a tenant's administrator may register a directory (Admin API, /user-stores) at
# a loopback, link-local or unspecified address (this host's own services, cloud
# metadata). Private networks are always allowed; the super tenant's administrators are
# never limited.
tenant_directory_internal_addresses = false

[log]
# A tracing filter such as "info" or "tollgate_gateway=debug,info"; RUST_LOG wins.
level = "info"
# "text" for people, "json" for log pipelines (also --log-format).
format = "text"
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Overrides, load};
    use std::io::Write;

    #[test]
    fn default_file_parses_to_the_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(DEFAULT_CONFIG_TOML.as_bytes()).unwrap();
        let parsed = load(Some(f.path()), Vec::new(), &Overrides::default()).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn default_file_mentions_every_section() {
        for section in [
            "[node]",
            "[database.am]",
            "[database.shared]",
            "[management]",
            "[management.tls]",
            "[gateway]",
            "[gateway.tls]",
            "[traffic_manager]",
            "[publisher]",
            "[key_manager]",
            "[devportal]",
            "[analytics]",
            "[tracing]",
            "[cluster]",
            "[admin]",
            "[log]",
        ] {
            assert!(DEFAULT_CONFIG_TOML.contains(section), "{section} missing");
        }
    }
}
