//! The gateway's runtime state: what it serves, built from the event hub's snapshot and
//! then kept current by applying events in order. The request path only reads it; a
//! change builds a new state that replaces the old one atomically (the gateway holds it
//! in an `ArcSwap`), so requests never lock and never touch a database.
//!
//! Events are applied idempotently: one whose sequence the state already includes is
//! skipped, and every event carries the whole entity it changes.

use crate::router::{RouteMatch, RouteTable};
use crate::throttle_policies::ThrottlePolicies;
use foldhash::HashMap;
use std::sync::Arc;
use tollgate_events::snapshot::{
    ApplicationInfo, DeployedApi, KeyMappingInfo, RevocationInfo, Snapshot, SubscriptionInfo,
};
use tollgate_events::{ControlEvent, Event, EventKind};
use tollgate_model::EpochMillis;
use tollgate_model::api::{base_context, resolve_context};
use tollgate_model::block_condition::{BlockCondition, BlockedCall};
use tollgate_model::policy::SubscriptionPolicy;

/// A deployed API revision as the gateway serves it.
#[derive(Debug)]
pub struct ApiEntry {
    /// What was deployed.
    pub deployed: DeployedApi,
    /// Its versioned context and, for the default version, the bare one (no trailing
    /// `/`), computed once: the request path strips them to find the backend path.
    pub contexts: Vec<String>,
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
    /// An entry with its metrics registered.
    pub fn new(deployed: DeployedApi) -> Self {
        let label = format!("{}:{}", deployed.api.name, deployed.api.version);
        let api = &deployed.api;
        let mut contexts = vec![resolve_context(&api.context, &api.version)];
        if deployed.is_default_version {
            contexts.push(base_context(&api.context));
        }
        let contexts = contexts
            .into_iter()
            .map(|c| c.trim_end_matches('/').to_string())
            .collect();
        Self {
            metrics: ApiMetrics::new(&label),
            mocks: api.is_mocked().then(|| crate::mock::prepare(api, &deployed.mocks)),
            contexts,
            websocket: api.is_websocket(),
            deployed,
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
#[derive(Clone, Debug, Default)]
pub struct RuntimeState {
    /// The last event sequence applied.
    pub seq: i64,
    /// The environment served.
    pub environment: String,
    apis: Arc<HashMap<String, Arc<ApiEntry>>>,
    routes: Arc<RouteTable<RouteTarget>>,
    applications: Arc<HashMap<String, ApplicationInfo>>,
    /// By application id, then API id (looked up without allocating).
    subscriptions: Arc<HashMap<String, HashMap<String, SubscriptionInfo>>>,
    key_mappings: Arc<HashMap<String, KeyMappingInfo>>,
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
    /// Third-party key managers by id.
    key_managers: Arc<HashMap<String, serde_json::Value>>,
    /// Revisions whose deployment arrived but could not be applied (reported to the hub).
    failed_revisions: Vec<String>,
    /// Block conditions (deny policies) by id.
    block_conditions: Arc<HashMap<String, BlockCondition>>,
    /// Throttling policies of every level.
    policies: ThrottlePolicies,
    /// Whether any policy limits calls (the request path skips throttling otherwise).
    throttling: bool,
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
    /// The state a snapshot describes.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let apis: HashMap<String, Arc<ApiEntry>> = snapshot
            .apis
            .into_iter()
            .map(|d| (d.api_id.clone(), Arc::new(ApiEntry::new(d))))
            .collect();
        let mut state = RuntimeState {
            seq: snapshot.seq,
            environment: snapshot.environment,
            routes: Arc::new(route_table(&apis)),
            apis: Arc::new(apis),
            applications: Arc::new(snapshot.applications.into_iter().map(|a| (a.id.clone(), a)).collect()),
            subscriptions: Arc::default(),
            key_mappings: Arc::new(
                snapshot
                    .key_mappings
                    .into_iter()
                    .map(|k| (k.consumer_key.clone(), k))
                    .collect(),
            ),
            ..RuntimeState::default()
        };
        for sub in snapshot.subscriptions {
            state.add_subscription(sub);
        }
        for r in snapshot.revocations {
            state.add_revocation(&r);
        }
        for jwk in snapshot.signing_keys {
            if let Some(kid) = jwk.get("kid").and_then(|k| k.as_str()) {
                Arc::make_mut(&mut state.signing_keys).insert(kid.to_string(), jwk);
            }
        }
        for c in snapshot.block_conditions {
            state.add_block_condition(c);
        }
        for p in snapshot.subscription_policies {
            state.policies.add_subscription(p);
        }
        for p in snapshot.application_policies {
            state.policies.add_application(p);
        }
        for p in snapshot.advanced_policies {
            state.policies.add_advanced(p);
        }
        for p in snapshot.custom_policies {
            state.policies.add_custom(p);
        }
        state.throttling = !state.policies.is_empty();
        for km in snapshot.key_managers {
            if let Some(id) = km.get("id").and_then(|k| k.as_str()) {
                Arc::make_mut(&mut state.key_managers).insert(id.to_string(), km);
            }
        }
        state
    }

    fn add_block_condition(&mut self, c: BlockCondition) {
        if let Some(id) = c.condition_id.clone() {
            Arc::make_mut(&mut self.block_conditions).insert(id, c);
        }
    }

    /// The subscription policy (business plan) of that name.
    pub fn subscription_policy(&self, name: &str) -> Option<&Arc<SubscriptionPolicy>> {
        self.policies.subscription_policy(name)
    }

    /// The throttling policies, when any limits calls.
    pub fn throttling(&self) -> Option<&ThrottlePolicies> {
        self.throttling.then_some(&self.policies)
    }

    /// Whether any block condition exists (the request path skips the check otherwise).
    pub fn has_block_conditions(&self) -> bool {
        !self.block_conditions.is_empty()
    }

    /// Whether an enabled block condition refuses the call.
    pub fn blocked(&self, call: &BlockedCall<'_>) -> bool {
        self.block_conditions.values().any(|c| c.blocks(call))
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
            Ok(control) => self.apply_control(event.seq, control),
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

    /// Applies one event of this gateway's environment (or of all). Exhaustive on
    /// purpose: a new kind of event does not compile until gateways say what it does.
    fn apply_control(&mut self, seq: i64, event: ControlEvent) -> Outcome {
        match event {
            ControlEvent::ApiRevisionDeployed(deployment) => {
                let revision = deployment.revision_id.clone();
                let Some(deployed) = deployment.into_deployed() else {
                    tracing::warn!(seq, %revision, "Skipping a deployment without a lifecycle state.");
                    self.failed_revisions.push(revision);
                    return Outcome::Ignored(Ignored::Unreadable);
                };
                self.failed_revisions.retain(|r| *r != deployed.revision_id);
                Arc::make_mut(&mut self.apis).insert(deployed.api_id.clone(), Arc::new(ApiEntry::new(deployed)));
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
                Arc::make_mut(&mut self.apis).insert(change.api_id, Arc::new(ApiEntry::new(deployed)));
                ROUTES_CHANGED
            }
            ControlEvent::ApplicationUpserted(app) => {
                Arc::make_mut(&mut self.applications).insert(app.id.clone(), app);
                APPLIED
            }
            ControlEvent::ApplicationDeleted(app) => {
                let id = app.id.as_str();
                Arc::make_mut(&mut self.applications).remove(id);
                Arc::make_mut(&mut self.subscriptions).remove(id);
                Arc::make_mut(&mut self.key_mappings).retain(|_, k| k.application_id != id);
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
                let mapping = mapping.into_info();
                Arc::make_mut(&mut self.key_mappings).insert(mapping.consumer_key.clone(), mapping);
                APPLIED
            }
            ControlEvent::KeyMappingDeleted(mapping) => {
                Arc::make_mut(&mut self.key_mappings).remove(&mapping.consumer_key);
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
                    km.jwks = self.key_managers.get(&km.id).and_then(|old| old.get("jwks")).cloned();
                }
                match serde_json::to_value(&km) {
                    Ok(value) => {
                        Arc::make_mut(&mut self.key_managers).insert(km.id, value);
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
                let read = self.policies.upsert(change.level, &change.policy);
                self.throttling = !self.policies.is_empty();
                if read {
                    APPLIED
                } else {
                    Outcome::Ignored(Ignored::Unreadable)
                }
            }
            ControlEvent::PolicyDeleted(removal) => {
                self.policies.remove(removal.level, &removal.policy.policy_name);
                self.throttling = !self.policies.is_empty();
                APPLIED
            }
            ControlEvent::BlockConditionUpserted(condition) => {
                self.add_block_condition(condition);
                APPLIED
            }
            ControlEvent::BlockConditionDeleted(condition) => {
                if let Some(id) = condition.condition_id {
                    Arc::make_mut(&mut self.block_conditions).remove(&id);
                }
                APPLIED
            }
            ControlEvent::EnvironmentChanged(_) => Outcome::Ignored(Ignored::NotForGateways),
            // Tenant routing and deactivation on gateways: not yet (issue 27, in progress).
            ControlEvent::TenantChanged(_) => Outcome::Ignored(Ignored::NotForGateways),
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
        self.applications.get(id)
    }

    /// An application's subscription to an API.
    pub fn subscription(&self, application_id: &str, api_id: &str) -> Option<&SubscriptionInfo> {
        self.subscriptions.get(application_id)?.get(api_id)
    }

    /// The application a consumer key belongs to.
    pub fn key_mapping(&self, consumer_key: &str) -> Option<&KeyMappingInfo> {
        self.key_mappings.get(consumer_key)
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

    /// A third-party key manager whose `issuer` is `iss`.
    pub fn key_manager_by_issuer(&self, iss: &str) -> Option<&serde_json::Value> {
        self.key_managers
            .values()
            .find(|km| km.get("issuer").and_then(|i| i.as_str()) == Some(iss))
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
        assert!(state.subscription_policy("Gold").is_some());
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
        assert!(state.subscription_policy("Gold").is_none(), "deleted");
        let tiny = state.subscription_policy("Tiny").expect("added");
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
        assert!(state.blocked(&call("10.0.0.1")));
        assert!(!state.blocked(&call("10.0.0.2")));
        let seq = state.seq;
        state.apply(&[
            event(seq + 1, EventKind::BlockConditionUpserted, None, rule("b2", "10.0.0.2")),
            event(seq + 2, EventKind::BlockConditionDeleted, None, rule("b1", "10.0.0.1")),
        ]);
        assert!(!state.blocked(&call("10.0.0.1")), "deleted");
        assert!(state.blocked(&call("10.0.0.2")), "added");
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
