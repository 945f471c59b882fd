//! The gateway's runtime state: what it serves, built from the event hub's snapshot and
//! then kept current by applying events in order. The request path only reads it; a
//! change builds a new state that replaces the old one atomically (the gateway holds it
//! in an `ArcSwap`), so requests never lock and never touch a database.
//!
//! Events are applied idempotently: one whose sequence the state already includes is
//! skipped, and every event carries the whole entity it changes.
//!
//! Tenants: every API and application belongs to the tenant whose event (or snapshot
//! section) brought it; a tenant's APIs are routed under `/t/{domain}` (the super
//! tenant's without a prefix), and policies and deny policies are held per tenant, so
//! that a name ("Gold") means each tenant's own.

use crate::router::{RouteMatch, RouteTable};
use crate::throttle_policies::ThrottlePolicies;
use foldhash::HashMap;
use std::sync::Arc;
use tollgate_events::control::TenantState;
use tollgate_events::snapshot::{
    ApplicationInfo, DeployedApi, KeyMappingInfo, RevocationInfo, Snapshot, SubscriptionInfo, TenantSnapshot,
};
use tollgate_events::{ControlEvent, Event, EventKind};
use tollgate_model::api::{base_context, resolve_context};
use tollgate_model::block_condition::{BlockCondition, BlockedCall};
use tollgate_model::policy::SubscriptionPolicy;
use tollgate_model::{EpochMillis, Tenant, TenantId};

/// A deployed API revision as the gateway serves it.
#[derive(Debug)]
pub struct ApiEntry {
    /// What was deployed.
    pub deployed: DeployedApi,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// That tenant's domain (empty while the gateway does not know it).
    pub tenant_domain: Arc<str>,
    /// Its versioned context and, for the default version, the bare one (no trailing
    /// `/`), each under its tenant's `/t/{domain}` prefix, computed once: the request path
    /// strips them to find the backend path. None while the tenant's domain is unknown
    /// (the API is then not routed).
    pub contexts: Vec<String>,
    /// How many leading bytes of each context are the tenant prefix (`/t/acme.com`).
    pub prefix_len: usize,
    /// Whether it is a WebSocket API (`type: WS`): the only kind a WebSocket upgrade may
    /// pass through, and which takes nothing else (decision 010).
    pub websocket: bool,
    /// Its request metrics, registered once so that a request only bumps atomics.
    pub metrics: ApiMetrics,
    /// For a mocked API (`MOCKED_OAS`), the answers of each operation (by index), ready
    /// to send: the gateway answers those calls itself (decision 016).
    pub mocks: Option<Vec<Option<crate::mock::MockedOperation>>>,
}

impl PartialEq for ApiEntry {
    fn eq(&self, other: &Self) -> bool {
        self.deployed == other.deployed
    }
}

impl ApiEntry {
    /// An entry of the super tenant, with its metrics registered.
    pub fn new(deployed: DeployedApi) -> Self {
        Self::of_tenant(deployed, TenantId::DEFAULT, Some(Tenant::DEFAULT_DOMAIN))
    }

    /// An entry of `tenant`, whose domain is `domain` (`None`: not known yet, so not
    /// routed), with its metrics registered (`Name:1.0.0`, `Name:1.0.0@acme.com` for a
    /// tenant's API, since two tenants may have the same API).
    pub fn of_tenant(deployed: DeployedApi, tenant: TenantId, domain: Option<&str>) -> Self {
        let prefix = domain.map(|d| tollgate_model::tenant::gateway_prefix(tenant, d));
        let label = match (domain, prefix.as_deref()) {
            (Some(d), Some(p)) if !p.is_empty() => format!("{}:{}@{d}", deployed.api.name, deployed.api.version),
            _ => format!("{}:{}", deployed.api.name, deployed.api.version),
        };
        let api = &deployed.api;
        let contexts = match &prefix {
            None => Vec::new(),
            Some(prefix) => {
                let mut contexts = vec![resolve_context(&api.context, &api.version)];
                if deployed.is_default_version {
                    contexts.push(base_context(&api.context));
                }
                contexts
                    .into_iter()
                    .map(|c| format!("{prefix}{}", c.trim_end_matches('/')))
                    .collect()
            }
        };
        Self {
            metrics: ApiMetrics::new(&label),
            mocks: api.is_mocked().then(|| crate::mock::prepare(api, &deployed.mocks)),
            contexts,
            prefix_len: prefix.as_deref().map_or(0, str::len),
            tenant,
            tenant_domain: Arc::from(domain.unwrap_or("")),
            websocket: api.is_websocket(),
            deployed,
        }
    }

    /// The context a call is described by (the versioned one, with the tenant prefix),
    /// as deny policies and custom rules see it.
    pub fn context(&self) -> &str {
        self.contexts.first().map_or("", String::as_str)
    }
}

/// What the gateway knows of one tenant: whether its APIs may be called, and its deny and
/// throttling policies (policy names are per tenant: every tenant has its own `Gold`).
#[derive(Clone, Debug)]
pub struct TenantEntry {
    /// Its domain, once known (its APIs are routed only then).
    domain: Option<Arc<str>>,
    /// Whether its APIs may be called (false after deactivation).
    active: bool,
    /// Block conditions (deny policies) by id.
    block_conditions: Arc<HashMap<String, BlockCondition>>,
    /// Throttling policies of every level.
    policies: ThrottlePolicies,
    /// Whether any policy limits calls (the request path skips throttling otherwise).
    throttling: bool,
}

impl TenantEntry {
    /// A tenant the gateway has heard of only through its entities: served as active
    /// until its state says otherwise, not routed until its domain is known.
    fn unknown(tenant: TenantId) -> Self {
        let super_tenant = tenant == TenantId::DEFAULT;
        Self {
            domain: super_tenant.then(|| Arc::from(Tenant::DEFAULT_DOMAIN)),
            active: true,
            block_conditions: Arc::default(),
            policies: ThrottlePolicies::for_tenant(tenant),
            throttling: false,
        }
    }

    /// Its domain, once known.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether its APIs may be called.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// How many deny policies and throttling policies it holds.
    pub fn policy_counts(&self) -> (usize, usize) {
        (self.block_conditions.len(), self.policies.len())
    }

    fn add_block_condition(&mut self, c: BlockCondition) {
        if let Some(id) = c.condition_id.clone() {
            Arc::make_mut(&mut self.block_conditions).insert(id, c);
        }
    }
}

/// `tollgate_gateway_requests_total{api,status_class}` and
/// `tollgate_gateway_request_duration_seconds{api}` handles of one API (or of requests
/// that matched none, under `api="none"`).
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// Requests by status class: 2xx, 3xx, 4xx, 5xx.
    pub requests: [metrics::Counter; 4],
    /// Gateway latency, seconds.
    pub duration: metrics::Histogram,
}

impl ApiMetrics {
    /// Registers the handles for `api`.
    pub fn new(api: &str) -> Self {
        let counter = |class: &'static str| metrics::counter!("tollgate_gateway_requests_total", "api" => api.to_string(), "status_class" => class);
        Self {
            requests: [counter("2xx"), counter("3xx"), counter("4xx"), counter("5xx")],
            duration: metrics::histogram!("tollgate_gateway_request_duration_seconds", "api" => api.to_string()),
        }
    }

    /// Counts one request that ended with `status`, after `seconds`.
    pub fn record(&self, status: u16, seconds: f64) {
        let class = match status / 100 {
            2 => 0,
            3 => 1,
            4 => 2,
            _ => 3,
        };
        self.requests[class].increment(1);
        self.duration.record(seconds);
    }
}

/// Where a route leads: an API and one of its operations.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteTarget {
    /// The API.
    pub api: Arc<ApiEntry>,
    /// Index into the API's `operations`.
    pub operation: usize,
    /// How many bytes of a path this route matches are the API context it was reached
    /// by (the versioned one or the default version's): the rest goes to the backend.
    /// Known from the route, not found again in the path, so that the backend gets the
    /// path below exactly the context that was routed (decision 010).
    pub context_len: usize,
}

/// A route lookup's answer.
pub type Lookup<'a> = RouteMatch<'a, RouteTarget>;

/// Everything the gateway serves, as of `seq`.
#[derive(Clone, Debug)]
pub struct RuntimeState {
    /// The last event sequence applied.
    pub seq: i64,
    /// The environment served.
    pub environment: String,
    /// Every tenant the gateway knows of (the super tenant always).
    tenants: Arc<HashMap<TenantId, TenantEntry>>,
    /// Tenants by domain, for `/t/{domain}/…`.
    domains: Arc<HashMap<Arc<str>, TenantId>>,
    /// Whether any tenant is deactivated (most of the time none is, and calls skip the
    /// check).
    any_inactive: bool,
    apis: Arc<HashMap<String, Arc<ApiEntry>>>,
    routes: Arc<RouteTable<RouteTarget>>,
    /// By id, with the tenant each belongs to.
    applications: Arc<HashMap<String, (TenantId, ApplicationInfo)>>,
    /// By application id, then API id (looked up without allocating).
    subscriptions: Arc<HashMap<String, HashMap<String, SubscriptionInfo>>>,
    /// By consumer key, each with the tenant that mapped it: a third-party key manager's
    /// client id is the provider's, and two tenants may map the same one, each for its
    /// own key manager and application (so no tenant's mapping hides another's).
    key_mappings: Arc<HashMap<String, Vec<(TenantId, KeyMappingInfo)>>>,
    /// Token id → until when the revocation matters.
    revoked_tokens: Arc<HashMap<String, EpochMillis>>,
    /// Consumer key → tokens issued at or before this time are revoked, and until when
    /// that matters (the last of those tokens expires).
    revoked_clients: Arc<HashMap<String, Cutoff>>,
    /// User name → tokens whose subject is that user, issued at or before this time, are
    /// revoked (the user was disabled, deleted or lost a role), and until when that matters.
    revoked_users: Arc<HashMap<String, Cutoff>>,
    /// Published signing keys (public JWKs) by `kid`.
    signing_keys: Arc<HashMap<String, serde_json::Value>>,
    /// Third-party key managers by id, with the tenant that registered each.
    key_managers: Arc<HashMap<String, (TenantId, serde_json::Value)>>,
    /// Revisions whose deployment arrived but could not be applied (reported to the hub).
    failed_revisions: Vec<String>,
}

impl Default for RuntimeState {
    /// An empty state that knows the super tenant.
    fn default() -> Self {
        let mut tenants = HashMap::default();
        tenants.insert(TenantId::DEFAULT, TenantEntry::unknown(TenantId::DEFAULT));
        let mut domains = HashMap::default();
        domains.insert(Arc::from(Tenant::DEFAULT_DOMAIN), TenantId::DEFAULT);
        Self {
            seq: 0,
            environment: String::new(),
            tenants: Arc::new(tenants),
            domains: Arc::new(domains),
            any_inactive: false,
            apis: Arc::default(),
            routes: Arc::default(),
            applications: Arc::default(),
            subscriptions: Arc::default(),
            key_mappings: Arc::default(),
            revoked_tokens: Arc::default(),
            revoked_clients: Arc::default(),
            revoked_users: Arc::default(),
            signing_keys: Arc::default(),
            key_managers: Arc::default(),
            failed_revisions: Vec::new(),
        }
    }
}

/// What a gateway holds of one tenant, for its status report and metrics.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantCounts {
    /// The tenant's domain (its id while the domain is unknown).
    pub domain: String,
    /// Whether its APIs may be called.
    pub active: bool,
    /// API revisions served.
    pub apis: usize,
    /// Applications known.
    pub applications: usize,
    /// Deny policies (block conditions).
    pub block_conditions: usize,
    /// Throttling policies of every level.
    pub policies: usize,
}

/// A revocation of every token of a client or a user issued up to `at`, which matters
/// until `until`, when the last of those tokens has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cutoff {
    at: EpochMillis,
    until: EpochMillis,
}

/// How long past its tokens' expiry a revocation is kept: tokens are checked against the
/// gateway's clock, which may be behind the key manager's.
const REVOCATION_GRACE: EpochMillis = 5 * 60 * 1000;

fn route_table(apis: &HashMap<String, Arc<ApiEntry>>) -> RouteTable<RouteTarget> {
    let mut table = RouteTable::new();
    // Sorted, so that which of two clashing APIs wins does not depend on hash order.
    let mut entries: Vec<&Arc<ApiEntry>> = apis.values().collect();
    entries.sort_by(|a, b| a.deployed.api_id.cmp(&b.deployed.api_id));
    for entry in entries {
        let api = &entry.deployed.api;
        for context in &entry.contexts {
            for (i, op) in api.operations.iter().enumerate() {
                let template = format!("{}/{}", context, op.target.trim_start_matches('/'));
                table.insert(
                    &template,
                    &op.verb,
                    RouteTarget {
                        api: Arc::clone(entry),
                        operation: i,
                        context_len: context.len(),
                    },
                );
            }
        }
    }
    table
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The state now shows the event's effect; `routes` says whether the route table
    /// must be rebuilt.
    Applied {
        /// Whether the APIs served changed.
        routes: bool,
    },
    /// The event changed nothing, for this reason.
    Ignored(Ignored),
}

/// Why an event changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// It deploys to or undeploys from another gateway environment.
    OtherEnvironment,
    /// It concerns an API this gateway does not serve.
    UnknownApi,
    /// Gateways have no use for this kind (environments come with deployments).
    NotForGateways,
    /// Its payload does not fit its kind, or cannot be served (logged).
    Unreadable,
}

const APPLIED: Outcome = Outcome::Applied { routes: false };
const ROUTES_CHANGED: Outcome = Outcome::Applied { routes: true };

impl RuntimeState {
    /// The state a snapshot describes: its top-level lists are the super tenant's, each
    /// tenant section its tenant's.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let mut state = RuntimeState {
            seq: snapshot.seq,
            environment: snapshot.environment,
            ..RuntimeState::default()
        };
        let super_section = TenantSnapshot {
            apis: snapshot.apis,
            applications: snapshot.applications,
            subscriptions: snapshot.subscriptions,
            key_mappings: snapshot.key_mappings,
            key_managers: snapshot.key_managers,
            block_conditions: snapshot.block_conditions,
            subscription_policies: snapshot.subscription_policies,
            application_policies: snapshot.application_policies,
            advanced_policies: snapshot.advanced_policies,
            custom_policies: snapshot.custom_policies,
            ..TenantSnapshot::new(TenantState::super_tenant())
        };
        let mut sections = Vec::with_capacity(snapshot.tenants.len());
        for section in snapshot.tenants {
            if section.state.tenant_id == TenantId::DEFAULT {
                // Its state is fixed (`carbon.super`, active); its entities are above.
            } else {
                sections.push(section);
            }
        }
        sections.push(super_section);
        // States first, so that every API is built knowing its tenant's domain.
        for section in &sections {
            state.set_tenant_state(&section.state);
        }
        let mut apis = HashMap::default();
        for section in sections {
            let tenant = section.state.tenant_id;
            let domain = state.tenants.get(&tenant).and_then(|t| t.domain.clone());
            for d in section.apis {
                let entry = ApiEntry::of_tenant(d, tenant, domain.as_deref());
                apis.insert(entry.deployed.api_id.clone(), Arc::new(entry));
            }
            let applications = Arc::make_mut(&mut state.applications);
            for a in section.applications {
                applications.insert(a.id.clone(), (tenant, a));
            }
            for k in section.key_mappings {
                state.add_key_mapping(tenant, k);
            }
            for sub in section.subscriptions {
                state.add_subscription(sub);
            }
            for km in section.key_managers {
                if let Some(id) = km.get("id").and_then(|k| k.as_str()) {
                    Arc::make_mut(&mut state.key_managers).insert(id.to_string(), (tenant, km));
                }
            }
            let entry = state.tenant_mut(tenant);
            for c in section.block_conditions {
                entry.add_block_condition(c);
            }
            for p in section.subscription_policies {
                entry.policies.add_subscription(p);
            }
            for p in section.application_policies {
                entry.policies.add_application(p);
            }
            for p in section.advanced_policies {
                entry.policies.add_advanced(p);
            }
            for p in section.custom_policies {
                entry.policies.add_custom(p);
            }
            entry.throttling = !entry.policies.is_empty();
        }
        state.routes = Arc::new(route_table(&apis));
        state.apis = Arc::new(apis);
        for r in snapshot.revocations {
            state.add_revocation(&r);
        }
        for jwk in snapshot.signing_keys {
            if let Some(kid) = jwk.get("kid").and_then(|k| k.as_str()) {
                Arc::make_mut(&mut state.signing_keys).insert(kid.to_string(), jwk);
            }
        }
        state
    }

    /// The entry of `tenant`, made (unknown, active) if the gateway had none.
    fn tenant_mut(&mut self, tenant: TenantId) -> &mut TenantEntry {
        Arc::make_mut(&mut self.tenants)
            .entry(tenant)
            .or_insert_with(|| TenantEntry::unknown(tenant))
    }

    /// Records a tenant's domain and activation; true when the domain is new to the
    /// gateway (its APIs must then be rebuilt under their `/t/{domain}` prefix).
    fn set_tenant_state(&mut self, state: &TenantState) -> bool {
        let entry = self.tenant_mut(state.tenant_id);
        entry.active = state.active;
        let known = entry.domain.as_deref() == Some(state.domain.as_str());
        self.any_inactive = self.tenants.values().any(|t| !t.active);
        if known {
            return false;
        }
        let entry = self.tenant_mut(state.tenant_id);
        let old = entry.domain.replace(Arc::from(state.domain.as_str()));
        let domains = Arc::make_mut(&mut self.domains);
        if let Some(old) = old {
            domains.remove(&old);
        }
        domains.insert(Arc::from(state.domain.as_str()), state.tenant_id);
        true
    }

    /// Builds the entries of `tenant`'s APIs again (its domain became known).
    fn rebuild_apis_of(&mut self, tenant: TenantId) {
        let domain = self.tenants.get(&tenant).and_then(|t| t.domain.clone());
        let ids: Vec<String> = self
            .apis
            .values()
            .filter(|a| a.tenant == tenant)
            .map(|a| a.deployed.api_id.clone())
            .collect();
        let apis = Arc::make_mut(&mut self.apis);
        for id in ids {
            if let Some(old) = apis.get(&id) {
                let rebuilt = ApiEntry::of_tenant(old.deployed.clone(), tenant, domain.as_deref());
                apis.insert(id, Arc::new(rebuilt));
            }
        }
    }

    /// What the gateway knows of a tenant.
    pub fn tenant(&self, tenant: TenantId) -> Option<&TenantEntry> {
        self.tenants.get(&tenant)
    }

    /// The domain of a deactivated tenant that `path` addresses (`/t/{domain}/…`): every
    /// such call is refused before routing, as the reference refuses calls to an inactive
    /// tenant (docs/gateway-tenants.md, "Deactivated tenants").
    pub fn inactive_tenant<'p>(&self, path: &'p str) -> Option<&'p str> {
        if !self.any_inactive {
            return None;
        }
        let rest = path.strip_prefix("/t/")?;
        let domain = rest.split('/').next().filter(|d| !d.is_empty())?;
        let tenant = self.domains.get(domain)?;
        self.tenants.get(tenant).is_some_and(|t| !t.active).then_some(domain)
    }

    /// The subscription policy (business plan) `name` of `tenant`.
    pub fn subscription_policy(&self, tenant: TenantId, name: &str) -> Option<&Arc<SubscriptionPolicy>> {
        self.tenants.get(&tenant)?.policies.subscription_policy(name)
    }

    /// `tenant`'s throttling policies, when any limits calls.
    pub fn throttling(&self, tenant: TenantId) -> Option<&ThrottlePolicies> {
        self.tenants.get(&tenant).filter(|t| t.throttling).map(|t| &t.policies)
    }

    /// Whether `tenant` has any block condition (the request path skips the check otherwise).
    pub fn has_block_conditions(&self, tenant: TenantId) -> bool {
        self.tenants
            .get(&tenant)
            .is_some_and(|t| !t.block_conditions.is_empty())
    }

    /// Whether an enabled block condition of `tenant` refuses the call: a tenant's deny
    /// policies never refuse another tenant's calls.
    pub fn blocked(&self, tenant: TenantId, call: &BlockedCall<'_>) -> bool {
        self.tenants
            .get(&tenant)
            .is_some_and(|t| t.block_conditions.values().any(|c| c.blocks(call)))
    }

    /// How many APIs each known tenant has, by domain (a tenant whose state has not
    /// arrived is named by its id), for the per-tenant gauges.
    pub fn apis_per_tenant(&self) -> HashMap<String, usize> {
        let mut counts: HashMap<TenantId, usize> = self.tenants.keys().map(|id| (*id, 0)).collect();
        for api in self.apis.values() {
            *counts.entry(api.tenant).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(id, n)| {
                let domain = self.tenants.get(&id).and_then(|t| t.domain.as_deref());
                (domain.map_or_else(|| id.to_string(), str::to_string), n)
            })
            .collect()
    }

    /// Whether `other` holds the very same APIs and tenants (nothing was deployed,
    /// undeployed or changed tenant between the two): then counts of them are the same.
    pub fn same_apis_and_tenants(&self, other: &RuntimeState) -> bool {
        Arc::ptr_eq(&self.apis, &other.apis) && Arc::ptr_eq(&self.tenants, &other.tenants)
    }

    /// What the gateway holds of each tenant, the super tenant first, then by domain.
    pub fn tenant_counts(&self) -> Vec<TenantCounts> {
        let mut counts: HashMap<TenantId, TenantCounts> = self
            .tenants
            .iter()
            .map(|(id, t)| {
                let (block_conditions, policies) = t.policy_counts();
                let counts = TenantCounts {
                    domain: t.domain.as_deref().map_or_else(|| id.to_string(), str::to_string),
                    active: t.active,
                    apis: 0,
                    applications: 0,
                    block_conditions,
                    policies,
                };
                (*id, counts)
            })
            .collect();
        for api in self.apis.values() {
            if let Some(c) = counts.get_mut(&api.tenant) {
                c.apis += 1;
            }
        }
        for (tenant, _) in self.applications.values() {
            if let Some(c) = counts.get_mut(tenant) {
                c.applications += 1;
            }
        }
        let mut list: Vec<(TenantId, TenantCounts)> = counts.into_iter().collect();
        list.sort_by(|(a, x), (b, y)| (*a != TenantId::DEFAULT, &x.domain).cmp(&(*b != TenantId::DEFAULT, &y.domain)));
        list.into_iter().map(|(_, c)| c).collect()
    }

    fn add_subscription(&mut self, s: SubscriptionInfo) {
        Arc::make_mut(&mut self.subscriptions)
            .entry(s.application_id.clone())
            .or_default()
            .insert(s.api_id.clone(), s);
    }

    fn add_revocation(&mut self, r: &RevocationInfo) {
        match r.revocation_type.as_str() {
            kind @ ("consumer_key" | "user") => {
                let before = if kind == "user" {
                    &mut self.revoked_users
                } else {
                    &mut self.revoked_clients
                };
                let cutoff = Arc::make_mut(before).entry(r.subject.clone()).or_insert(Cutoff {
                    at: r.revoked_at,
                    until: r.expires_at,
                });
                cutoff.at = cutoff.at.max(r.revoked_at);
                cutoff.until = cutoff.until.max(r.expires_at);
            }
            _ => {
                Arc::make_mut(&mut self.revoked_tokens).insert(r.subject.clone(), r.expires_at);
            }
        }
    }

    /// Forgets revocations whose tokens have all expired (with [`REVOCATION_GRACE`] for
    /// clocks that differ): an expired token is refused anyway, and a gateway that follows
    /// the hub for months would otherwise hold every revocation ever made.
    fn forget_expired_revocations(&mut self, now: EpochMillis) {
        let live = |until: EpochMillis| until.saturating_add(REVOCATION_GRACE) > now;
        if self.revoked_tokens.values().any(|until| !live(*until)) {
            Arc::make_mut(&mut self.revoked_tokens).retain(|_, until| live(*until));
        }
        for map in [&mut self.revoked_clients, &mut self.revoked_users] {
            if map.values().any(|c| !live(c.until)) {
                Arc::make_mut(map).retain(|_, c| live(c.until));
            }
        }
    }

    /// How many revocations are held (tokens, clients, users).
    pub fn revocations_held(&self) -> (usize, usize, usize) {
        (
            self.revoked_tokens.len(),
            self.revoked_clients.len(),
            self.revoked_users.len(),
        )
    }

    /// Applies the events after `self.seq`, in order; returns how many changed the state.
    /// Whether routes must be rebuilt is worked out once for the whole batch.
    pub fn apply(&mut self, events: &[Event]) -> usize {
        let mut applied = 0;
        let mut routes_changed = false;
        for event in events {
            if event.seq <= self.seq {
                continue;
            }
            self.seq = event.seq;
            applied += 1;
            routes_changed |= matches!(self.apply_one(event), Outcome::Applied { routes: true });
        }
        if routes_changed {
            self.routes = Arc::new(route_table(&self.apis));
        }
        applied
    }

    /// Reads one event and applies it. An event whose payload does not fit its kind is
    /// logged and skipped (a deployment's revision is then reported as failed).
    fn apply_one(&mut self, event: &Event) -> Outcome {
        let ours = event.environment.as_deref().is_none_or(|e| e == self.environment);
        if !ours
            && matches!(
                event.kind,
                EventKind::ApiRevisionDeployed | EventKind::ApiRevisionUndeployed
            )
        {
            // Not even read: a deployment carries a whole API.
            return Outcome::Ignored(Ignored::OtherEnvironment);
        }
        match event.control() {
            Ok(control) => self.apply_control(event.seq, event.tenant_id, control),
            Err(e) => {
                tracing::warn!(seq = event.seq, kind = %event.kind, error = %e, "Skipping an event this gateway cannot read.");
                if event.kind == EventKind::ApiRevisionDeployed
                    && let Some(revision) = event.payload.get("revisionId").and_then(|v| v.as_str())
                {
                    self.failed_revisions.push(revision.to_string());
                }
                Outcome::Ignored(Ignored::Unreadable)
            }
        }
    }

    /// Applies one event of this gateway's environment (or of all), written by `tenant`
    /// (its envelope's): what it creates belongs to that tenant. Exhaustive on purpose: a
    /// new kind of event does not compile until gateways say what it does.
    fn apply_control(&mut self, seq: i64, tenant: TenantId, event: ControlEvent) -> Outcome {
        match event {
            ControlEvent::ApiRevisionDeployed(deployment) => {
                let revision = deployment.revision_id.clone();
                let Some(deployed) = deployment.into_deployed() else {
                    tracing::warn!(seq, %revision, "Skipping a deployment without a lifecycle state.");
                    self.failed_revisions.push(revision);
                    return Outcome::Ignored(Ignored::Unreadable);
                };
                self.failed_revisions.retain(|r| *r != deployed.revision_id);
                let domain = self.tenant_mut(tenant).domain.clone();
                let entry = ApiEntry::of_tenant(deployed, tenant, domain.as_deref());
                Arc::make_mut(&mut self.apis).insert(entry.deployed.api_id.clone(), Arc::new(entry));
                ROUTES_CHANGED
            }
            ControlEvent::ApiRevisionUndeployed(undeployed) => {
                if !self.apis.contains_key(&undeployed.api_id) {
                    return Outcome::Ignored(Ignored::UnknownApi);
                }
                Arc::make_mut(&mut self.apis).remove(&undeployed.api_id);
                ROUTES_CHANGED
            }
            ControlEvent::ApiStateChanged(change) => {
                let Some(entry) = self.apis.get(&change.api_id) else {
                    return Outcome::Ignored(Ignored::UnknownApi);
                };
                let mut deployed = entry.deployed.clone();
                deployed.life_cycle_status = change.life_cycle_status;
                let domain = self.tenants.get(&entry.tenant).and_then(|t| t.domain.clone());
                let rebuilt = ApiEntry::of_tenant(deployed, entry.tenant, domain.as_deref());
                Arc::make_mut(&mut self.apis).insert(change.api_id, Arc::new(rebuilt));
                ROUTES_CHANGED
            }
            ControlEvent::ApplicationUpserted(app) => {
                Arc::make_mut(&mut self.applications).insert(app.id.clone(), (tenant, app));
                APPLIED
            }
            ControlEvent::ApplicationDeleted(app) => {
                let id = app.id.as_str();
                Arc::make_mut(&mut self.applications).remove(id);
                Arc::make_mut(&mut self.subscriptions).remove(id);
                Arc::make_mut(&mut self.key_mappings).retain(|_, mapped| {
                    mapped.retain(|(_, k)| k.application_id != id);
                    !mapped.is_empty()
                });
                APPLIED
            }
            ControlEvent::SubscriptionUpserted(sub) => {
                self.add_subscription(sub);
                APPLIED
            }
            ControlEvent::SubscriptionDeleted(sub) => {
                if let Some(of_app) = Arc::make_mut(&mut self.subscriptions).get_mut(&sub.application_id) {
                    of_app.remove(&sub.api_id);
                }
                APPLIED
            }
            ControlEvent::KeyMappingUpserted(mapping) => {
                self.add_key_mapping(tenant, mapping.into_info());
                APPLIED
            }
            ControlEvent::KeyMappingDeleted(mapping) => {
                let mappings = Arc::make_mut(&mut self.key_mappings);
                if let Some(mapped) = mappings.get_mut(&mapping.consumer_key) {
                    mapped.retain(|(t, _)| *t != tenant);
                    if mapped.is_empty() {
                        mappings.remove(&mapping.consumer_key);
                    }
                }
                APPLIED
            }
            ControlEvent::TokenRevoked(revocation) => {
                self.forget_expired_revocations(tollgate_model::now_millis());
                self.add_revocation(&revocation.into_info());
                APPLIED
            }
            ControlEvent::SigningKeysChanged(key) => {
                Arc::make_mut(&mut self.signing_keys).insert(key.kid, key.jwk);
                APPLIED
            }
            ControlEvent::KeyManagerUpserted(mut km) => {
                // An upsert without a key set keeps the one already fetched.
                if km.jwks.is_none() {
                    km.jwks = self
                        .key_managers
                        .get(&km.id)
                        .and_then(|(_, old)| old.get("jwks"))
                        .cloned();
                }
                match serde_json::to_value(&km) {
                    Ok(value) => {
                        Arc::make_mut(&mut self.key_managers).insert(km.id, (tenant, value));
                        APPLIED
                    }
                    Err(e) => {
                        tracing::warn!(seq, key_manager = %km.id, error = %e, "Skipping a key manager this gateway cannot hold.");
                        Outcome::Ignored(Ignored::Unreadable)
                    }
                }
            }
            ControlEvent::KeyManagerDeleted(km) => {
                Arc::make_mut(&mut self.key_managers).remove(&km.id);
                APPLIED
            }
            ControlEvent::PolicyUpserted(change) => {
                // The policy is read by level; one that does not read is logged there.
                let entry = self.tenant_mut(tenant);
                let read = entry.policies.upsert(change.level, &change.policy);
                entry.throttling = !entry.policies.is_empty();
                if read {
                    APPLIED
                } else {
                    Outcome::Ignored(Ignored::Unreadable)
                }
            }
            ControlEvent::PolicyDeleted(removal) => {
                let entry = self.tenant_mut(tenant);
                entry.policies.remove(removal.level, &removal.policy.policy_name);
                entry.throttling = !entry.policies.is_empty();
                APPLIED
            }
            ControlEvent::BlockConditionUpserted(condition) => {
                self.tenant_mut(tenant).add_block_condition(condition);
                APPLIED
            }
            ControlEvent::BlockConditionDeleted(condition) => {
                if let Some(id) = condition.condition_id {
                    Arc::make_mut(&mut self.tenant_mut(tenant).block_conditions).remove(&id);
                }
                APPLIED
            }
            ControlEvent::EnvironmentChanged(_) => Outcome::Ignored(Ignored::NotForGateways),
            ControlEvent::TenantChanged(state) => {
                // The super tenant is always `carbon.super` and active (the control plane
                // refuses to change it): an event saying otherwise is not applied.
                if state.tenant_id == TenantId::DEFAULT && (state.domain != Tenant::DEFAULT_DOMAIN || !state.active) {
                    tracing::warn!(seq, domain = %state.domain, active = state.active, "Skipping a change of the super tenant, which cannot be renamed or deactivated.");
                    return Outcome::Ignored(Ignored::Unreadable);
                }
                // Deactivation takes effect on the next call (checked before routing); a
                // domain the gateway learns puts that tenant's APIs under their prefix.
                if self.set_tenant_state(&state) {
                    self.rebuild_apis_of(state.tenant_id);
                    ROUTES_CHANGED
                } else {
                    APPLIED
                }
            }
        }
    }

    /// The route for a request.
    pub fn route(&self, method: &str, path: &str) -> Lookup<'_> {
        self.routes.find(method, path)
    }

    /// A deployed API by id.
    pub fn api(&self, id: &str) -> Option<&Arc<ApiEntry>> {
        self.apis.get(id)
    }

    /// The revisions served and those that failed to apply, for the deployment report.
    pub fn revisions(&self) -> (Vec<String>, Vec<String>) {
        let mut served: Vec<String> = self.apis.values().map(|a| a.deployed.revision_id.clone()).collect();
        served.sort();
        (served, self.failed_revisions.clone())
    }

    /// How many API revisions are served.
    pub fn api_count(&self) -> usize {
        self.apis.len()
    }

    /// An application by id.
    pub fn application(&self, id: &str) -> Option<&ApplicationInfo> {
        self.applications.get(id).map(|(_, a)| a)
    }

    /// The tenant an application belongs to.
    pub fn application_tenant(&self, id: &str) -> Option<TenantId> {
        self.applications.get(id).map(|(t, _)| *t)
    }

    /// An application's subscription to an API.
    pub fn subscription(&self, application_id: &str, api_id: &str) -> Option<&SubscriptionInfo> {
        self.subscriptions.get(application_id)?.get(api_id)
    }

    /// The mapping of `consumer_key` that `tenant` made for its key manager named
    /// `key_manager`: which of its applications the client's tokens call as.
    pub fn key_mapping(&self, tenant: TenantId, key_manager: &str, consumer_key: &str) -> Option<&KeyMappingInfo> {
        self.key_mappings
            .get(consumer_key)?
            .iter()
            .find(|(t, k)| *t == tenant && k.key_manager == key_manager)
            .map(|(_, k)| k)
    }

    /// The mapping of `consumer_key` to the application `application_id`, if it still
    /// exists (a token names both; the keys may have been removed since).
    pub fn application_key(&self, consumer_key: &str, application_id: &str) -> Option<&KeyMappingInfo> {
        self.key_mappings
            .get(consumer_key)?
            .iter()
            .map(|(_, k)| k)
            .find(|k| k.application_id == application_id)
    }

    /// Adds `tenant`'s mapping, replacing the one it had for the same client and key
    /// manager.
    fn add_key_mapping(&mut self, tenant: TenantId, mapping: KeyMappingInfo) {
        let mapped = Arc::make_mut(&mut self.key_mappings)
            .entry(mapping.consumer_key.clone())
            .or_default();
        match mapped
            .iter_mut()
            .find(|(t, k)| *t == tenant && k.key_manager == mapping.key_manager)
        {
            Some(existing) => existing.1 = mapping,
            None => mapped.push((tenant, mapping)),
        }
    }

    /// Whether a token (by id, client, subject and issue time in ms) has been revoked.
    /// The issue time is asked for only when the client's or the subject's tokens were
    /// revoked (working it out parses the token id), which is not on every call.
    pub fn is_revoked(
        &self,
        jti: &str,
        client_id: &str,
        subject: &str,
        issued_at_ms: impl FnOnce() -> EpochMillis,
    ) -> bool {
        if self.revoked_tokens.contains_key(jti) {
            return true;
        }
        let client = self.revoked_clients.get(client_id).map(|c| c.at);
        let user = self.revoked_users.get(subject).map(|c| c.at);
        match client.into_iter().chain(user).max() {
            Some(before) => issued_at_ms() <= before,
            None => false,
        }
    }

    /// A published signing key (public JWK) by `kid`.
    pub fn signing_key(&self, kid: &str) -> Option<&serde_json::Value> {
        self.signing_keys.get(kid)
    }

    /// Every third-party key manager whose `issuer` is `iss` (tenants may each register
    /// the same provider), in id order, with the tenant that registered it.
    pub fn key_managers_by_issuer<'s>(
        &'s self,
        iss: &'s str,
    ) -> impl Iterator<Item = (TenantId, &'s serde_json::Value)> + 's {
        let mut found: Vec<(&String, &(TenantId, serde_json::Value))> = self
            .key_managers
            .iter()
            .filter(|(_, (_, km))| km.get("issuer").and_then(|i| i.as_str()) == Some(iss))
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        found.into_iter().map(|(_, (tenant, km))| (*tenant, km))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_model::{LifecycleState, TenantId};

    fn api(id: &str, context: &str, version: &str, default: bool) -> DeployedApi {
        DeployedApi {
            api_id: id.into(),
            revision_id: format!("{id}-r1"),
            api: serde_json::from_value(json!({
                "name": id, "context": context, "version": version,
                "operations": [{"target": "/items/{id}", "verb": "GET"}, {"target": "/items", "verb": "POST"}]
            }))
            .unwrap(),
            life_cycle_status: LifecycleState::Published,
            is_default_version: default,
            mocks: Vec::new(),
        }
    }

    fn event(seq: i64, kind: EventKind, environment: Option<&str>, payload: serde_json::Value) -> Event {
        Event {
            seq,
            kind,
            tenant_id: TenantId::DEFAULT,
            environment: environment.map(String::from),
            payload,
            created_at: 0,
        }
    }

    fn target(state: &RuntimeState, method: &str, path: &str) -> Option<(String, usize)> {
        match state.route(method, path) {
            RouteMatch::Found { value, .. } => Some((value.api.deployed.api_id.clone(), value.operation)),
            _ => None,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 10,
            environment: "Default".into(),
            apis: vec![
                api("shop", "/shop", "1.0.0", true),
                api("shop2", "/shop", "2.0.0", false),
            ],
            subscriptions: vec![SubscriptionInfo {
                subscription_id: "s1".into(),
                api_id: "shop".into(),
                application_id: "app".into(),
                throttling_policy: "Gold".into(),
                subscription_status: "UNBLOCKED".into(),
            }],
            revocations: vec![RevocationInfo {
                revocation_type: "consumer_key".into(),
                subject: "ck".into(),
                revoked_at: 1_000,
                expires_at: 9_999_999,
            }],
            ..Snapshot::default()
        }
    }

    fn acme() -> TenantId {
        "00000000-0000-7000-8000-0000000000aa".parse().unwrap()
    }

    fn beta() -> TenantId {
        "00000000-0000-7000-8000-0000000000bb".parse().unwrap()
    }

    fn state_of(tenant: TenantId, domain: &str, active: bool) -> TenantState {
        TenantState {
            tenant_id: tenant,
            domain: domain.into(),
            active,
        }
    }

    fn tenant_event(seq: i64, tenant: TenantId, kind: EventKind, payload: serde_json::Value) -> Event {
        Event {
            tenant_id: tenant,
            ..event(seq, kind, Some("Default"), payload)
        }
    }

    /// The super tenant's `shop`, and acme's and beta's APIs of the same context.
    fn tenants_snapshot() -> Snapshot {
        let mut acme_section = TenantSnapshot::new(state_of(acme(), "acme.com", true));
        acme_section.apis = vec![api("acme-shop", "/shop", "1.0.0", true)];
        acme_section.applications = vec![ApplicationInfo {
            id: "acme-app".into(),
            name: "App".into(),
            owner: "alice@acme.com".into(),
            tier: "Gold".into(),
            token_type: "JWT".into(),
            status: "APPROVED".into(),
        }];
        let mut beta_section = TenantSnapshot::new(state_of(beta(), "beta.org", true));
        beta_section.apis = vec![api("beta-shop", "/shop", "1.0.0", false)];
        Snapshot {
            tenants: vec![
                TenantSnapshot::new(state_of(TenantId::DEFAULT, "carbon.super", true)),
                acme_section,
                beta_section,
            ],
            ..snapshot()
        }
    }

    #[test]
    fn tenant_apis_are_routed_under_their_prefix_beside_the_same_context_elsewhere() {
        let state = RuntimeState::from_snapshot(tenants_snapshot());
        assert_eq!(target(&state, "GET", "/shop/1.0.0/items/7"), Some(("shop".into(), 0)));
        assert_eq!(
            target(&state, "GET", "/t/acme.com/shop/1.0.0/items/7"),
            Some(("acme-shop".into(), 0))
        );
        assert_eq!(
            target(&state, "GET", "/t/acme.com/shop/items/7"),
            Some(("acme-shop".into(), 0)),
            "a tenant's default version"
        );
        assert_eq!(
            target(&state, "GET", "/t/beta.org/shop/1.0.0/items/7"),
            Some(("beta-shop".into(), 0))
        );
        assert_eq!(
            target(&state, "GET", "/t/beta.org/shop/items/7"),
            None,
            "not its default version"
        );
        assert_eq!(target(&state, "GET", "/t/other.net/shop/1.0.0/items/7"), None);
        assert_eq!(target(&state, "GET", "/acme.com/shop/1.0.0/items/7"), None);
        // The backend gets the path below the whole context, prefix included.
        let RouteMatch::Found { value, .. } = state.route("GET", "/t/acme.com/shop/1.0.0/items/7") else {
            panic!("not routed");
        };
        assert_eq!(value.context_len, "/t/acme.com/shop/1.0.0".len());
        assert_eq!(value.api.tenant, acme());
        assert_eq!(&*value.api.tenant_domain, "acme.com");
        assert_eq!(value.api.context(), "/t/acme.com/shop/1.0.0");
        assert_eq!(state.application_tenant("acme-app"), Some(acme()));
        assert_eq!(state.application_tenant("nobody"), None);
        let held = state.tenant_counts();
        let domains: Vec<(&str, usize)> = held.iter().map(|t| (t.domain.as_str(), t.apis)).collect();
        assert_eq!(domains, [("carbon.super", 2), ("acme.com", 1), ("beta.org", 1)]);
    }

    #[test]
    fn two_tenants_mapping_the_same_client_each_keep_their_own_mapping() {
        let mut state = RuntimeState::from_snapshot(tenants_snapshot());
        let mapping = |app: &str, km: &str| {
            json!({"id": format!("m-{app}"), "applicationId": app, "consumerKey": "okta-client",
                "keyType": "PRODUCTION", "keyManager": km})
        };
        let km = |id: &str| json!({"id": id, "name": "Okta", "type": "Okta", "issuer": "https://okta.example", "enabled": true});
        state.apply(&[
            tenant_event(11, acme(), EventKind::KeyManagerUpserted, km("km-acme")),
            tenant_event(12, beta(), EventKind::KeyManagerUpserted, km("km-beta")),
            tenant_event(13, acme(), EventKind::KeyMappingUpserted, mapping("acme-app", "Okta")),
            // Beta maps the same client id later: acme's mapping stays acme's.
            tenant_event(14, beta(), EventKind::KeyMappingUpserted, mapping("beta-app", "Okta")),
        ]);
        let app_of = |state: &RuntimeState, t: TenantId| {
            state
                .key_mapping(t, "Okta", "okta-client")
                .map(|k| k.application_id.clone())
        };
        assert_eq!(app_of(&state, acme()).as_deref(), Some("acme-app"));
        assert_eq!(app_of(&state, beta()).as_deref(), Some("beta-app"));
        assert_eq!(app_of(&state, TenantId::DEFAULT), None);
        assert!(state.key_mapping(acme(), "Other", "okta-client").is_none());
        assert!(state.application_key("okta-client", "acme-app").is_some());
        assert!(state.application_key("okta-client", "nobody").is_none());
        let issuers: Vec<TenantId> = state
            .key_managers_by_issuer("https://okta.example")
            .map(|(t, _)| t)
            .collect();
        assert_eq!(issuers, [acme(), beta()]);
        // Beta deletes its application: acme's mapping is untouched.
        state.apply(&[tenant_event(
            15,
            beta(),
            EventKind::ApplicationDeleted,
            json!({"id": "beta-app"}),
        )]);
        assert_eq!(app_of(&state, beta()), None);
        assert_eq!(app_of(&state, acme()).as_deref(), Some("acme-app"));
        // A removed mapping is removed for its own tenant only.
        state.apply(&[
            tenant_event(16, beta(), EventKind::KeyMappingUpserted, mapping("beta-app2", "Okta")),
            tenant_event(
                17,
                beta(),
                EventKind::KeyMappingDeleted,
                json!({"consumerKey": "okta-client"}),
            ),
        ]);
        assert_eq!(app_of(&state, beta()), None);
        assert_eq!(app_of(&state, acme()).as_deref(), Some("acme-app"));
    }

    #[test]
    fn events_belong_to_their_envelopes_tenant_and_wait_for_its_domain() {
        let mut state = RuntimeState::from_snapshot(tenants_snapshot());
        let newcomer: TenantId = "00000000-0000-7000-8000-0000000000cc".parse().unwrap();
        let mut deployed = serde_json::to_value(api("new-shop", "/shop", "1.0.0", false)).unwrap();
        deployed["lifeCycleStatus"] = json!("PUBLISHED");
        let mut acme_pets = serde_json::to_value(api("acme-pets", "/pets", "1.0.0", false)).unwrap();
        acme_pets["lifeCycleStatus"] = json!("PUBLISHED");
        state.apply(&[
            // A tenant's deployment before the gateway knows its domain: held, not routed.
            tenant_event(11, newcomer, EventKind::ApiRevisionDeployed, deployed),
            tenant_event(12, acme(), EventKind::ApiRevisionDeployed, acme_pets),
            tenant_event(
                13,
                newcomer,
                EventKind::ApplicationUpserted,
                json!({"id": "new-app", "name": "A", "owner": "bob@new.io", "tier": "Unlimited",
                    "tokenType": "JWT", "status": "APPROVED"}),
            ),
        ]);
        assert!(state.api("new-shop").is_some());
        assert_eq!(
            target(&state, "GET", "/shop/1.0.0/items/1"),
            Some(("shop".into(), 0)),
            "not the super tenant's"
        );
        assert_eq!(target(&state, "GET", "/t/new.io/shop/1.0.0/items/1"), None);
        assert_eq!(
            target(&state, "GET", "/t/acme.com/pets/1.0.0/items/1"),
            Some(("acme-pets".into(), 0))
        );
        assert_eq!(target(&state, "GET", "/pets/1.0.0/items/1"), None);
        assert_eq!(state.application_tenant("new-app"), Some(newcomer));
        // Its state arrives: its APIs are routed under its prefix.
        state.apply(&[tenant_event(
            14,
            newcomer,
            EventKind::TenantChanged,
            serde_json::to_value(state_of(newcomer, "new.io", true)).unwrap(),
        )]);
        assert_eq!(
            target(&state, "GET", "/t/new.io/shop/1.0.0/items/1"),
            Some(("new-shop".into(), 0))
        );
        // The super tenant cannot be renamed or deactivated by an event.
        let outcome = state.apply_one(&tenant_event(
            15,
            TenantId::DEFAULT,
            EventKind::TenantChanged,
            serde_json::to_value(state_of(TenantId::DEFAULT, "evil.com", false)).unwrap(),
        ));
        assert_eq!(outcome, Outcome::Ignored(Ignored::Unreadable));
        assert_eq!(target(&state, "GET", "/shop/1.0.0/items/1"), Some(("shop".into(), 0)));
        assert_eq!(state.inactive_tenant("/shop/1.0.0/items/1"), None);
    }

    #[test]
    fn policies_are_keyed_by_tenant_and_name() {
        let plan = |name: &str, count: u64| {
            json!({"policyName": name, "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": count}}, "stopOnQuotaReach": true})
        };
        let mut snap = tenants_snapshot();
        snap.subscription_policies = vec![serde_json::from_value(plan("Gold", 5000)).unwrap()];
        snap.tenants[1].subscription_policies = vec![serde_json::from_value(plan("Gold", 3)).unwrap()];
        let mut state = RuntimeState::from_snapshot(snap);
        let limit = |state: &RuntimeState, tenant: TenantId| {
            state
                .subscription_policy(tenant, "Gold")
                .and_then(|p| p.default_limit.request_count.as_ref().map(|r| r.request_count))
        };
        assert_eq!(limit(&state, TenantId::DEFAULT), Some(5000));
        assert_eq!(limit(&state, acme()), Some(3));
        assert_eq!(limit(&state, beta()), None, "beta has no Gold");
        assert!(state.throttling(acme()).is_some());
        assert!(state.throttling(beta()).is_none(), "nothing limits beta's calls");
        let seq = state.seq;
        state.apply(&[
            tenant_event(
                seq + 1,
                beta(),
                EventKind::PolicyUpserted,
                json!({"level": "subscription", "policyId": "pb", "policy": plan("Gold", 7)}),
            ),
            tenant_event(
                seq + 2,
                acme(),
                EventKind::PolicyDeleted,
                json!({"level": "subscription", "policyId": "pa", "policy": {"policyName": "Gold"}}),
            ),
        ]);
        assert_eq!(limit(&state, TenantId::DEFAULT), Some(5000), "untouched");
        assert_eq!(limit(&state, acme()), None, "acme's deleted");
        assert_eq!(limit(&state, beta()), Some(7), "beta's added");
        // Two tenants' custom rules of one name and template count apart.
        let rule = json!({"policyName": "PerIp", "keyTemplate": "$clientIp", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
            "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5}}});
        state.apply(&[
            tenant_event(
                seq + 3,
                TenantId::DEFAULT,
                EventKind::PolicyUpserted,
                json!({"level": "custom", "policy": rule}),
            ),
            tenant_event(
                seq + 4,
                acme(),
                EventKind::PolicyUpserted,
                json!({"level": "custom", "policy": rule}),
            ),
        ]);
        struct Ip;
        impl tollgate_model::custom_rule::RequestAttributes for Ip {
            fn variable(&self, name: &str) -> &str {
                if name == "clientIp" { "10.0.0.9" } else { "" }
            }
            fn header(&self, _: &str) -> Option<&str> {
                None
            }
            fn query(&self, _: &str) -> Option<&str> {
                None
            }
            fn claim(&self, _: &str) -> Option<&str> {
                None
            }
        }
        let keys = |tenant: TenantId| -> Vec<String> {
            let call = crate::throttle_policies::Call {
                api_id: "x",
                api_policy: None,
                operation: (0, ""),
                consumer: None,
                attributes: &Ip,
            };
            state
                .throttling(tenant)
                .map(|p| p.checks(&call).into_iter().map(|c| c.key).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            keys(TenantId::DEFAULT),
            ["custom:PerIp:10.0.0.9"],
            "the super tenant's keys as before"
        );
        assert_eq!(keys(acme()), [format!("custom:PerIp:{}:10.0.0.9", acme())]);
    }

    #[test]
    fn a_deny_policy_of_one_tenant_never_blocks_another() {
        let rule = |id: &str, ip: &str| json!({"conditionId": id, "conditionType": "IP", "conditionValue": {"fixedIp": ip}, "conditionStatus": true});
        let mut snap = tenants_snapshot();
        snap.tenants[1].block_conditions = vec![serde_json::from_value(rule("acme-b1", "10.0.0.1")).unwrap()];
        let mut state = RuntimeState::from_snapshot(snap);
        let call = BlockedCall {
            api_context: "/shop/1.0.0",
            client_ip: Some("10.0.0.1".parse().unwrap()),
            ..BlockedCall::default()
        };
        assert!(state.blocked(acme(), &call));
        assert!(
            !state.blocked(TenantId::DEFAULT, &call),
            "the super tenant's calls pass"
        );
        assert!(!state.blocked(beta(), &call), "beta's calls pass");
        assert!(!state.has_block_conditions(beta()));
        let seq = state.seq;
        state.apply(&[
            tenant_event(
                seq + 1,
                beta(),
                EventKind::BlockConditionUpserted,
                rule("beta-b1", "10.0.0.2"),
            ),
            // Deleting is the tenant's own business too: beta cannot delete acme's.
            tenant_event(
                seq + 2,
                beta(),
                EventKind::BlockConditionDeleted,
                rule("acme-b1", "10.0.0.1"),
            ),
        ]);
        assert!(state.blocked(acme(), &call), "acme's condition stays");
        let other = BlockedCall {
            client_ip: Some("10.0.0.2".parse().unwrap()),
            ..call
        };
        assert!(state.blocked(beta(), &other));
        assert!(!state.blocked(acme(), &other));
        assert!(!state.blocked(TenantId::DEFAULT, &other));
    }

    #[test]
    fn an_inactive_tenant_is_refused_before_routing_and_restored() {
        let mut state = RuntimeState::from_snapshot(tenants_snapshot());
        assert_eq!(state.inactive_tenant("/t/acme.com/shop/1.0.0/items/1"), None);
        let seq = state.seq;
        let change = |seq: i64, active: bool| {
            tenant_event(
                seq,
                acme(),
                EventKind::TenantChanged,
                serde_json::to_value(state_of(acme(), "acme.com", active)).unwrap(),
            )
        };
        state.apply(&[change(seq + 1, false)]);
        for path in [
            "/t/acme.com/shop/1.0.0/items/1",
            "/t/acme.com/no/such/api",
            "/t/acme.com",
        ] {
            assert_eq!(state.inactive_tenant(path), Some("acme.com"), "{path}");
        }
        assert_eq!(state.inactive_tenant("/t/beta.org/shop/1.0.0/items/1"), None);
        assert_eq!(state.inactive_tenant("/shop/1.0.0/items/1"), None);
        assert_eq!(state.inactive_tenant("/t/unknown.com/x"), None);
        // Nothing was deleted: the routes are there, and come back into use.
        assert_eq!(
            target(&state, "GET", "/t/acme.com/shop/1.0.0/items/7"),
            Some(("acme-shop".into(), 0))
        );
        assert!(!state.tenant(acme()).unwrap().is_active());
        state.apply(&[change(seq + 2, true)]);
        assert_eq!(state.inactive_tenant("/t/acme.com/shop/1.0.0/items/1"), None);
        // A snapshot carries the state too.
        let mut snap = tenants_snapshot();
        snap.tenants[1].state.active = false;
        let state = RuntimeState::from_snapshot(snap);
        assert_eq!(
            state.inactive_tenant("/t/acme.com/shop/1.0.0/items/1"),
            Some("acme.com")
        );
    }

    #[test]
    fn every_kind_of_event_is_applied_or_deliberately_ignored() {
        // The kinds gateways have no use for, and why; every other kind must apply.
        let deliberately_ignored = [(EventKind::EnvironmentChanged, Ignored::NotForGateways)];
        // A state serving the samples' API, so that the events about it apply.
        let ControlEvent::ApiRevisionDeployed(deployment) =
            ControlEvent::sample(EventKind::ApiRevisionDeployed).unwrap()
        else {
            panic!("the deployment sample is another kind");
        };
        let primed = RuntimeState::from_snapshot(Snapshot {
            seq: 10,
            environment: "Default".into(),
            apis: vec![deployment.into_deployed().unwrap()],
            ..Snapshot::default()
        });
        for kind in EventKind::ALL {
            // As the outbox stores it and the hub sends it.
            let (stored, payload) = ControlEvent::sample(kind).unwrap().to_parts().unwrap();
            let mut state = primed.clone();
            let outcome = state.apply_one(&event(11, stored, Some("Default"), payload));
            match deliberately_ignored.iter().find(|(k, _)| *k == kind) {
                Some((_, why)) => assert_eq!(outcome, Outcome::Ignored(*why), "{kind}"),
                None => assert!(
                    matches!(outcome, Outcome::Applied { .. }),
                    "{kind} is not handled by the gateway: {outcome:?}"
                ),
            }
        }
    }

    #[test]
    fn unreadable_events_are_skipped_and_a_deployment_that_cannot_be_read_is_reported_failed() {
        let mut state = RuntimeState::from_snapshot(snapshot());
        let events = [
            event(
                11,
                EventKind::ApiRevisionDeployed,
                Some("Default"),
                json!({"apiId": "pets", "revisionId": "pets-r1"}),
            ),
            // Another environment's deployment is not even read.
            event(
                12,
                EventKind::ApiRevisionDeployed,
                Some("internal"),
                json!({"apiId": "pets", "revisionId": "pets-r2"}),
            ),
            event(13, EventKind::SubscriptionDeleted, None, json!({"apiId": 7})),
            event(14, EventKind::ApplicationDeleted, None, json!({"id": "app"})),
        ];
        assert_eq!(state.apply_one(&events[0]), Outcome::Ignored(Ignored::Unreadable));
        assert_eq!(state.apply_one(&events[1]), Outcome::Ignored(Ignored::OtherEnvironment));
        assert_eq!(state.apply_one(&events[2]), Outcome::Ignored(Ignored::Unreadable));
        let mut state = RuntimeState::from_snapshot(snapshot());
        assert_eq!(state.apply(&events), 4, "every event counts as seen");
        assert_eq!(state.seq, 14);
        assert_eq!(state.revisions().1, vec!["pets-r1".to_string()], "reported as failed");
        assert!(state.subscription("app", "shop").is_none(), "the later events applied");
    }

    #[test]
    fn subscription_policies_come_from_the_snapshot_and_from_events() {
        let plan = |name: &str, count: u64| {
            serde_json::json!({"policyName": name, "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": count}}, "stopOnQuotaReach": true})
        };
        let mut snap = snapshot();
        snap.subscription_policies = vec![serde_json::from_value(plan("Gold", 5000)).unwrap()];
        let mut state = RuntimeState::from_snapshot(snap);
        assert!(state.subscription_policy(TenantId::DEFAULT, "Gold").is_some());
        let seq = state.seq;
        state.apply(&[
            event(
                seq + 1,
                EventKind::PolicyUpserted,
                None,
                serde_json::json!({"level": "subscription", "policyId": "p2", "policy": plan("Tiny", 3)}),
            ),
            event(
                seq + 2,
                EventKind::PolicyDeleted,
                None,
                serde_json::json!({"level": "subscription", "policyId": "p1", "policy": {"policyName": "Gold"}}),
            ),
            // Another level's policy of the same name changes nothing here.
            event(
                seq + 3,
                EventKind::PolicyDeleted,
                None,
                serde_json::json!({"level": "application", "policyId": "p3", "policy": {"policyName": "Tiny"}}),
            ),
        ]);
        assert!(
            state.subscription_policy(TenantId::DEFAULT, "Gold").is_none(),
            "deleted"
        );
        let tiny = state.subscription_policy(TenantId::DEFAULT, "Tiny").expect("added");
        assert_eq!(
            tiny.default_limit.request_count.as_ref().map(|r| r.request_count),
            Some(3)
        );
    }

    #[test]
    fn block_conditions_come_from_the_snapshot_and_from_events() {
        let rule = |id: &str, ip: &str| serde_json::json!({"conditionId": id, "conditionType": "IP", "conditionValue": {"fixedIp": ip}, "conditionStatus": true});
        let mut snap = snapshot();
        snap.block_conditions = vec![serde_json::from_value(rule("b1", "10.0.0.1")).unwrap()];
        let mut state = RuntimeState::from_snapshot(snap);
        let call = |ip: &str| BlockedCall {
            api_context: "/shop/1.0.0",
            client_ip: Some(ip.parse().unwrap()),
            ..BlockedCall::default()
        };
        assert!(state.blocked(TenantId::DEFAULT, &call("10.0.0.1")));
        assert!(!state.blocked(TenantId::DEFAULT, &call("10.0.0.2")));
        let seq = state.seq;
        state.apply(&[
            event(seq + 1, EventKind::BlockConditionUpserted, None, rule("b2", "10.0.0.2")),
            event(seq + 2, EventKind::BlockConditionDeleted, None, rule("b1", "10.0.0.1")),
        ]);
        assert!(!state.blocked(TenantId::DEFAULT, &call("10.0.0.1")), "deleted");
        assert!(state.blocked(TenantId::DEFAULT, &call("10.0.0.2")), "added");
    }

    #[test]
    fn versions_and_the_default_version_route_to_their_revisions() {
        let state = RuntimeState::from_snapshot(snapshot());
        assert_eq!(target(&state, "GET", "/shop/1.0.0/items/7"), Some(("shop".into(), 0)));
        assert_eq!(target(&state, "GET", "/shop/2.0.0/items/7"), Some(("shop2".into(), 0)));
        assert_eq!(
            target(&state, "GET", "/shop/items/7"),
            Some(("shop".into(), 0)),
            "default version"
        );
        assert_eq!(target(&state, "POST", "/shop/items"), Some(("shop".into(), 1)));
        assert_eq!(
            state.route("DELETE", "/shop/1.0.0/items/7"),
            RouteMatch::MethodNotAllowed(vec!["GET".into()])
        );
        assert!(state.subscription("app", "shop").is_some());
        assert!(
            state.is_revoked("any", "ck", "anyone", || 1_000),
            "issued at the revocation instant"
        );
        assert!(!state.is_revoked("any", "ck", "anyone", || 1_001), "issued after it");
    }

    #[test]
    fn events_deploy_undeploy_block_revoke_and_are_applied_once() {
        let mut state = RuntimeState::from_snapshot(snapshot());
        let mut deployed = serde_json::to_value(api("pets", "/pets", "1.0.0", false)).unwrap();
        deployed["lifeCycleStatus"] = json!("PUBLISHED");
        let events = vec![
            // Already in the snapshot: skipped.
            event(
                9,
                EventKind::ApiRevisionUndeployed,
                Some("Default"),
                json!({"apiId": "shop"}),
            ),
            event(11, EventKind::ApiRevisionDeployed, Some("Default"), deployed.clone()),
            event(
                12,
                EventKind::ApiRevisionDeployed,
                Some("internal"),
                json!({"apiId": "other"}),
            ),
            event(
                13,
                EventKind::ApiRevisionUndeployed,
                Some("Default"),
                json!({"apiId": "shop2"}),
            ),
            event(
                14,
                EventKind::ApiStateChanged,
                None,
                json!({"apiId": "shop", "lifeCycleStatus": "BLOCKED"}),
            ),
            event(
                15,
                EventKind::TokenRevoked,
                None,
                json!({"revocationType": "jti", "subject": "t-1",
                "tokenType": "access_token", "consumerKey": "ck2", "revokedAt": 5, "expiresAt": 10}),
            ),
            event(
                16,
                EventKind::SubscriptionUpserted,
                None,
                json!({"subscriptionId": "s1", "apiId": "shop",
                "applicationId": "app", "throttlingPolicy": "Gold", "subscriptionStatus": "BLOCKED"}),
            ),
        ];
        assert_eq!(state.apply(&events), 6);
        assert_eq!(state.seq, 16);
        assert_eq!(target(&state, "GET", "/pets/1.0.0/items/1"), Some(("pets".into(), 0)));
        assert_eq!(target(&state, "GET", "/shop/2.0.0/items/1"), None, "undeployed");
        assert_eq!(target(&state, "GET", "/shop/1.0.0/items/1"), Some(("shop".into(), 0)));
        assert_eq!(
            state.api("shop").unwrap().deployed.life_cycle_status,
            LifecycleState::Blocked
        );
        assert!(state.api("other").is_none(), "another environment's deployment");
        assert!(state.is_revoked("t-1", "ck2", "anyone", || 0));
        assert_eq!(
            state.subscription("app", "shop").unwrap().subscription_status,
            "BLOCKED"
        );
        // Applying the same batch again changes nothing.
        assert_eq!(state.apply(&events), 0);
    }

    #[test]
    fn a_user_revocation_covers_every_token_of_that_subject_issued_until_then() {
        let mut state = RuntimeState::from_snapshot(snapshot());
        let events = vec![event(
            11,
            EventKind::TokenRevoked,
            None,
            json!({"revocationType": "user", "subject": "ida", "tokenType": "all", "consumerKey": null,
                "revokedAt": 2_000, "expiresAt": 9_999_999}),
        )];
        assert_eq!(state.apply(&events), 1);
        assert!(
            state.is_revoked("t-9", "other-ck", "ida", || 2_000),
            "any client's token"
        );
        assert!(!state.is_revoked("t-9", "other-ck", "ida", || 2_001), "issued after it");
        assert!(!state.is_revoked("t-9", "other-ck", "ivy", || 0), "another user");
        // With the client's tokens revoked earlier, the later cut-off holds.
        assert!(state.is_revoked("t-9", "ck", "ida", || 1_500));
        assert!(!state.is_revoked("t-9", "ck", "ivy", || 1_500));
    }

    #[test]
    fn revocations_are_forgotten_once_their_tokens_have_expired() {
        let mut state = RuntimeState::from_snapshot(snapshot());
        let now = tollgate_model::now_millis();
        let revoked = |seq: i64, kind: &str, subject: String, expires_at: i64| {
            event(
                seq,
                EventKind::TokenRevoked,
                None,
                json!({"revocationType": kind, "subject": subject, "tokenType": "all",
                    "consumerKey": null, "revokedAt": now - 1, "expiresAt": expires_at}),
            )
        };
        // A long-running gateway sees revocations come and expire.
        let expired = now - REVOCATION_GRACE - 1;
        let mut events = Vec::new();
        for i in 0..300 {
            let (kind, subject) = match i % 3 {
                0 => ("jti", format!("t-{i}")),
                1 => ("consumer_key", format!("ck-{i}")),
                _ => ("user", format!("u-{i}")),
            };
            events.push(revoked(11 + i, kind, subject, expired));
        }
        state.apply(&events);
        let live = now + 3_600_000;
        state.apply(&[
            revoked(400, "jti", "t-live".into(), live),
            revoked(401, "user", "u-live".into(), live),
        ]);
        assert_eq!(state.revocations_held(), (1, 0, 1), "only the live ones are held");
        assert!(state.is_revoked("t-live", "ck", "x", || 0));
        assert!(state.is_revoked("t-x", "ck-x", "u-live", || now - 1));
        // Within the grace after expiry, a revocation still holds.
        state.apply(&[revoked(402, "jti", "t-just-expired".into(), now - 1_000)]);
        state.apply(&[revoked(403, "jti", "t-other".into(), live)]);
        assert!(state.is_revoked("t-just-expired", "ck", "x", || 0));
    }
}
