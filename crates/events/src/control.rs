//! [`ControlEvent`]: the typed form of every control event, one variant per
//! [`EventKind`], each with its payload. Producers build one; the outbox stores it as
//! `(kind, payload JSON)` and gateways read it back with [`ControlEvent::from_parts`].
//!
//! The payload JSON is a public contract, like the kind names: gateways of the previous
//! release read what this one writes during a rolling upgrade, and the outbox keeps
//! events written by older nodes. So every payload serialises to the JSON the producers
//! wrote before these types existed (field names and order), except that absent optional
//! fields of the model's types (inside an API, an environment, a condition) are left out
//! rather than written as `null`, which every reader takes as the same thing (decision
//! 018); and it reads no less than the gateway used to: fields a gateway never needed are
//! optional when read.

use crate::EventKind;
use crate::snapshot::{ApplicationInfo, DeployedApi, KeyMappingInfo, RevocationInfo, SubscriptionInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_model::block_condition::BlockCondition;
use tollgate_model::key_manager::{KeyManager, default_consumer_key_claim, default_scopes_claim};
use tollgate_model::mock::OperationMock;
use tollgate_model::policy::PolicyLevel;
use tollgate_model::{Api, Environment, EpochMillis, LifecycleState};

/// Why a control event could not be read from, or written as, its stored form.
#[derive(Debug, thiserror::Error)]
pub enum ControlEventError {
    /// The stored payload does not have the shape its kind requires.
    #[error("the `{kind}` event payload does not fit its kind: {source}")]
    BadPayload {
        /// The kind the payload was stored under.
        kind: EventKind,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The payload could not be written as JSON.
    #[error("cannot write the `{kind}` event payload as JSON: {source}")]
    Unwritable {
        /// The event's kind.
        kind: EventKind,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// Declares [`ControlEvent`] and its conversions from one list, so that every variant is
/// named like its [`EventKind`] and no kind can lack a variant (the `match`es on
/// `EventKind` below are exhaustive).
macro_rules! control_events {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty), )*) => {
        /// A control event with its typed payload: what producers write to the outbox and
        /// what a gateway applies. The variant is the [`EventKind`] of the same name.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ControlEvent {
            $( $(#[$doc])* $variant($payload), )*
        }

        impl ControlEvent {
            /// The stored kind name of this event.
            pub fn kind(&self) -> EventKind {
                match self {
                    $( ControlEvent::$variant(_) => EventKind::$variant, )*
                }
            }

            /// Reads a stored event: its kind and payload JSON. A payload that does not fit
            /// the kind is an error (the caller decides whether to skip the event).
            pub fn from_parts(kind: EventKind, payload: &Value) -> Result<Self, ControlEventError> {
                let bad = |source| ControlEventError::BadPayload { kind, source };
                Ok(match kind {
                    $( EventKind::$variant => ControlEvent::$variant(<$payload>::deserialize(payload).map_err(bad)?), )*
                })
            }

            /// The payload JSON to store under [`ControlEvent::kind`].
            pub fn to_payload(&self) -> Result<Value, ControlEventError> {
                let written = match self {
                    $( ControlEvent::$variant(p) => serde_json::to_value(p), )*
                };
                written.map_err(|source| ControlEventError::Unwritable { kind: self.kind(), source })
            }
        }
    };
}

control_events! {
    /// An API revision was deployed to the event's environment (boxed: it carries a
    /// whole API, many times the size of any other payload).
    ApiRevisionDeployed(Box<RevisionDeployed>),
    /// An API revision was undeployed from the event's environment.
    ApiRevisionUndeployed(RevisionUndeployed),
    /// An API's lifecycle state changed.
    ApiStateChanged(ApiStateChange),
    /// An application was created or updated.
    ApplicationUpserted(ApplicationInfo),
    /// An application was deleted.
    ApplicationDeleted(ApplicationRef),
    /// A subscription was created or its state or plan changed.
    SubscriptionUpserted(SubscriptionInfo),
    /// A subscription was removed.
    SubscriptionDeleted(SubscriptionRef),
    /// A consumer key was mapped to an application.
    KeyMappingUpserted(KeyMappingChange),
    /// A consumer key mapping was removed.
    KeyMappingDeleted(KeyMappingRef),
    /// A throttling policy was created or updated.
    PolicyUpserted(PolicyChange),
    /// A throttling policy was deleted.
    PolicyDeleted(PolicyRemoval),
    /// A block condition was added or changed.
    BlockConditionUpserted(BlockCondition),
    /// A block condition was removed (the payload is the condition as it was).
    BlockConditionDeleted(BlockCondition),
    /// A token, a client's tokens or a user's tokens were revoked.
    TokenRevoked(Revocation),
    /// The key manager published a new signing key.
    SigningKeysChanged(SigningKey),
    /// A gateway environment was created, changed or removed.
    EnvironmentChanged(EnvironmentChange),
    /// A third-party key manager was registered or changed (with its JWKS once fetched).
    KeyManagerUpserted(KeyManagerInfo),
    /// A third-party key manager was removed (the payload is the key manager as it was).
    KeyManagerDeleted(KeyManagerInfo),
    /// A tenant was created, activated or deactivated: gateways learn its domain (for
    /// `/t/{domain}/…` routing) and whether its APIs may be called.
    TenantChanged(TenantState),
}

impl ControlEvent {
    /// The stored form: kind and payload JSON.
    pub fn to_parts(&self) -> Result<(EventKind, Value), ControlEventError> {
        Ok((self.kind(), self.to_payload()?))
    }
}

/// A tenant as gateways see it: the `tenant_changed` payload and a snapshot entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantState {
    /// The tenant's id (the `tenant_id` of its events and rows).
    pub tenant_id: tollgate_model::TenantId,
    /// Its domain (`acme.com`); its APIs are served under `/t/{domain}/…`.
    pub domain: String,
    /// Whether its APIs may be called; a deactivated tenant's are refused.
    pub active: bool,
}

impl TenantState {
    /// The super tenant: always `carbon.super` and active (it can be neither renamed nor
    /// deactivated), so readers need not look it up.
    pub fn super_tenant() -> Self {
        Self {
            tenant_id: tollgate_model::TenantId::DEFAULT,
            domain: tollgate_model::tenant::Tenant::DEFAULT_DOMAIN.into(),
            active: true,
        }
    }
}

/// The `api_revision_deployed` payload: a [`DeployedApi`] plus what the Publisher also
/// says about the deployment; its own type because `lifeCycleStatus` may be `null` and
/// `mocks` is always written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDeployed {
    /// The API.
    pub api_id: String,
    /// The revision deployed.
    pub revision_id: String,
    /// The revision's number.
    #[serde(default)]
    pub revision_number: i64,
    /// The revision the environment served before, if any.
    #[serde(default)]
    pub previous_revision_id: Option<String>,
    /// The environment (also the event's).
    #[serde(default)]
    pub environment: String,
    /// The virtual host it is served on.
    #[serde(default)]
    pub vhost: Option<String>,
    /// The API's name.
    #[serde(default)]
    pub name: String,
    /// The API's version.
    #[serde(default)]
    pub version: String,
    /// The API's context with its version.
    #[serde(default)]
    pub context: String,
    /// The API as the revision captured it.
    pub api: Api,
    /// The API's current lifecycle state (not the revision's).
    #[serde(default)]
    pub life_cycle_status: Option<LifecycleState>,
    /// Whether this version also answers on the context without a version.
    pub is_default_version: bool,
    /// For a mocked API, its compiled responses (decision 016); empty otherwise.
    #[serde(default)]
    pub mocks: Vec<OperationMock>,
}

impl RevisionDeployed {
    /// What a gateway serves; `None` when the lifecycle state is unknown (the gateway
    /// cannot tell whether to refuse calls, so it does not serve the revision).
    pub fn into_deployed(self) -> Option<DeployedApi> {
        Some(DeployedApi {
            life_cycle_status: self.life_cycle_status?,
            api_id: self.api_id,
            revision_id: self.revision_id,
            api: self.api,
            is_default_version: self.is_default_version,
            mocks: self.mocks,
        })
    }
}

/// The `api_revision_undeployed` payload: which API an environment stops serving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionUndeployed {
    /// The API.
    pub api_id: String,
    /// The revision it served.
    #[serde(default)]
    pub revision_id: String,
    /// The environment (also the event's).
    #[serde(default)]
    pub environment: String,
    /// `api_deleted` when the API itself was deleted; absent for a plain undeployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The `api_state_changed` payload: an API's new lifecycle state (every environment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiStateChange {
    /// The API.
    pub api_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: String,
    /// Its context with its version.
    #[serde(default)]
    pub context: String,
    /// The state it left.
    #[serde(default)]
    pub previous_state: LifecycleState,
    /// The state it is in now.
    pub life_cycle_status: LifecycleState,
}

/// The `application_deleted` payload: only the id, since the application is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationRef {
    /// The deleted application.
    pub id: String,
}

/// The `subscription_deleted` payload: the removed subscription's keys, since it is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRef {
    /// The removed subscription.
    #[serde(default)]
    pub subscription_id: String,
    /// Its application.
    pub application_id: String,
    /// Its API.
    pub api_id: String,
}

/// The `key_mapping_upserted` payload: a [`KeyMappingInfo`] with the mapping's own id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMappingChange {
    /// The key mapping's id.
    #[serde(default)]
    pub id: String,
    /// The application.
    pub application_id: String,
    /// The OAuth2 client id.
    pub consumer_key: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// Which key manager issued it.
    pub key_manager: String,
}

impl KeyMappingChange {
    /// What a gateway keeps of it.
    pub fn into_info(self) -> KeyMappingInfo {
        KeyMappingInfo {
            consumer_key: self.consumer_key,
            application_id: self.application_id,
            key_type: self.key_type,
            key_manager: self.key_manager,
        }
    }
}

/// The `key_mapping_deleted` payload: only the consumer key, since the mapping is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMappingRef {
    /// The consumer key no longer mapped.
    pub consumer_key: String,
}

/// The `policy_upserted` payload: a throttling policy of any level, whose body's shape
/// depends on `level` (so it stays JSON here and is read by level).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyChange {
    /// Which kind of policy.
    pub level: PolicyLevel,
    /// The policy's id.
    #[serde(default)]
    pub policy_id: String,
    /// The policy as the Admin API stores it (`SubscriptionPolicy`, `ApplicationPolicy`…).
    pub policy: Value,
}

/// The `policy_deleted` payload: which policy of which level is gone, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRemoval {
    /// Which kind of policy.
    pub level: PolicyLevel,
    /// The policy's id.
    #[serde(default)]
    pub policy_id: String,
    /// The deleted policy's name.
    pub policy: PolicyName,
}

/// A policy named, as `policy_deleted` carries it (`{"policyName": …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyName {
    /// The policy's unique name within its level.
    pub policy_name: String,
}

/// The `token_revoked` payload: a [`RevocationInfo`] with what was revoked, for logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// `jti`, `consumer_key` or `user`.
    pub revocation_type: String,
    /// The token id, consumer key or user name.
    pub subject: String,
    /// `access_token`, `refresh_token`, `api_key` or `all`.
    #[serde(default)]
    pub token_type: String,
    /// The client the token was issued to, when known.
    #[serde(default)]
    pub consumer_key: Option<String>,
    /// When it was revoked.
    pub revoked_at: EpochMillis,
    /// When the tokens it covers have all expired.
    pub expires_at: EpochMillis,
}

impl Revocation {
    /// What a gateway keeps of it.
    pub fn into_info(self) -> RevocationInfo {
        RevocationInfo {
            revocation_type: self.revocation_type,
            subject: self.subject,
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
        }
    }
}

/// The `signing_keys_changed` payload: one newly published signing key; the JWK stays
/// JSON so that this crate does not depend on a JOSE library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The key id tokens name in their header.
    pub kid: String,
    /// Its algorithm (`ES256`, `RS256`…).
    #[serde(default)]
    pub alg: String,
    /// The public key, as a JWK.
    pub jwk: Value,
}

/// The `environment_changed` payload: what happened to which environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentChange {
    /// What happened.
    pub change: EnvironmentChangeKind,
    /// The environment, as it is now (or was, when deleted).
    pub environment: Environment,
}

/// What happened to an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentChangeKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was removed.
    Deleted,
}

fn default_true() -> bool {
    true
}

/// The `key_manager_upserted` and `key_manager_deleted` payload, and the shape of the
/// snapshot's `keyManagers`: what a gateway needs to accept a third-party key manager's
/// tokens (the Admin API's [`KeyManager`] has more, and no JWKS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyManagerInfo {
    /// The key manager's id.
    pub id: String,
    /// Its unique name (key mappings name it).
    #[serde(default)]
    pub name: String,
    /// The `iss` its tokens carry.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The claim that carries the client id.
    #[serde(default = "default_consumer_key_claim")]
    pub consumer_key_claim: String,
    /// The claim that carries the scopes.
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Whether gateways accept its tokens.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Its key set, once fetched; absent otherwise (a gateway keeps the one it has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
}

impl KeyManagerInfo {
    /// The payload for the key manager `km` stored under `id`, with its key set if fetched.
    pub fn new(id: &str, km: &KeyManager, jwks: Option<Value>) -> Self {
        Self {
            id: id.to_string(),
            name: km.name.clone(),
            issuer: km.issuer.clone(),
            consumer_key_claim: km.consumer_key_claim.clone(),
            scopes_claim: km.scopes_claim.clone(),
            enabled: km.enabled,
            jwks,
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl ControlEvent {
    /// A plausible event of `kind`, for tests that must cover every kind. The samples
    /// name the same entities (API `sample-api`, application `sample-app`…), so that the
    /// deletions and changes concern what the upserts create.
    pub fn sample(kind: EventKind) -> Result<Self, serde_json::Error> {
        use serde_json::json;
        let api: Api = serde_json::from_value(json!({
            "name": "Sample", "context": "/sample", "version": "1.0.0",
            "operations": [{"target": "/items", "verb": "GET"}]
        }))?;
        let condition: BlockCondition = serde_json::from_value(json!({
            "conditionId": "sample-condition", "conditionType": "IP",
            "conditionValue": {"fixedIp": "10.0.0.1"}, "conditionStatus": true
        }))?;
        Ok(match kind {
            EventKind::ApiRevisionDeployed => ControlEvent::ApiRevisionDeployed(Box::new(RevisionDeployed {
                api_id: "sample-api".into(),
                revision_id: "sample-revision".into(),
                revision_number: 1,
                previous_revision_id: None,
                environment: "Default".into(),
                vhost: Some("localhost".into()),
                name: api.name.clone(),
                version: api.version.clone(),
                context: api.resolved_context(),
                api,
                life_cycle_status: Some(LifecycleState::Published),
                is_default_version: true,
                mocks: Vec::new(),
            })),
            EventKind::ApiRevisionUndeployed => ControlEvent::ApiRevisionUndeployed(RevisionUndeployed {
                api_id: "sample-api".into(),
                revision_id: "sample-revision".into(),
                environment: "Default".into(),
                reason: None,
            }),
            EventKind::ApiStateChanged => ControlEvent::ApiStateChanged(ApiStateChange {
                api_id: "sample-api".into(),
                name: api.name.clone(),
                version: api.version.clone(),
                context: api.resolved_context(),
                previous_state: LifecycleState::Published,
                life_cycle_status: LifecycleState::Blocked,
            }),
            EventKind::ApplicationUpserted => ControlEvent::ApplicationUpserted(ApplicationInfo {
                id: "sample-app".into(),
                name: "Sample".into(),
                owner: "admin".into(),
                tier: "Unlimited".into(),
                token_type: "JWT".into(),
                status: "APPROVED".into(),
            }),
            EventKind::ApplicationDeleted => ControlEvent::ApplicationDeleted(ApplicationRef {
                id: "sample-app".into(),
            }),
            EventKind::SubscriptionUpserted => ControlEvent::SubscriptionUpserted(SubscriptionInfo {
                subscription_id: "sample-subscription".into(),
                api_id: "sample-api".into(),
                application_id: "sample-app".into(),
                throttling_policy: "Gold".into(),
                subscription_status: "UNBLOCKED".into(),
            }),
            EventKind::SubscriptionDeleted => ControlEvent::SubscriptionDeleted(SubscriptionRef {
                subscription_id: "sample-subscription".into(),
                application_id: "sample-app".into(),
                api_id: "sample-api".into(),
            }),
            EventKind::KeyMappingUpserted => ControlEvent::KeyMappingUpserted(KeyMappingChange {
                id: "sample-mapping".into(),
                application_id: "sample-app".into(),
                consumer_key: "sample-ck".into(),
                key_type: "PRODUCTION".into(),
                key_manager: "Resident Key Manager".into(),
            }),
            EventKind::KeyMappingDeleted => ControlEvent::KeyMappingDeleted(KeyMappingRef {
                consumer_key: "sample-ck".into(),
            }),
            EventKind::PolicyUpserted => ControlEvent::PolicyUpserted(PolicyChange {
                level: PolicyLevel::Subscription,
                policy_id: "sample-policy".into(),
                policy: json!({"policyName": "Gold", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
                    "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 10}}, "stopOnQuotaReach": true}),
            }),
            EventKind::PolicyDeleted => ControlEvent::PolicyDeleted(PolicyRemoval {
                level: PolicyLevel::Subscription,
                policy_id: "sample-policy".into(),
                policy: PolicyName {
                    policy_name: "Gold".into(),
                },
            }),
            EventKind::BlockConditionUpserted => ControlEvent::BlockConditionUpserted(condition),
            EventKind::BlockConditionDeleted => ControlEvent::BlockConditionDeleted(condition),
            EventKind::TokenRevoked => ControlEvent::TokenRevoked(Revocation {
                revocation_type: "jti".into(),
                subject: "sample-token".into(),
                token_type: "access_token".into(),
                consumer_key: Some("sample-ck".into()),
                revoked_at: 1_000,
                expires_at: EpochMillis::MAX / 2,
            }),
            EventKind::SigningKeysChanged => ControlEvent::SigningKeysChanged(SigningKey {
                kid: "sample-kid".into(),
                alg: "ES256".into(),
                jwk: json!({"kty": "EC", "crv": "P-256", "kid": "sample-kid", "use": "sig",
                    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            }),
            EventKind::EnvironmentChanged => ControlEvent::EnvironmentChanged(EnvironmentChange {
                change: EnvironmentChangeKind::Created,
                environment: serde_json::from_value(json!({"name": "Default", "vhosts": []}))?,
            }),
            EventKind::KeyManagerUpserted => ControlEvent::KeyManagerUpserted(KeyManagerInfo {
                id: "sample-km".into(),
                name: "Sample IdP".into(),
                issuer: Some("https://idp.example.com".into()),
                consumer_key_claim: default_consumer_key_claim(),
                scopes_claim: default_scopes_claim(),
                enabled: true,
                jwks: Some(json!({"keys": []})),
            }),
            EventKind::KeyManagerDeleted => ControlEvent::KeyManagerDeleted(KeyManagerInfo {
                id: "sample-km".into(),
                name: "Sample IdP".into(),
                issuer: Some("https://idp.example.com".into()),
                consumer_key_claim: default_consumer_key_claim(),
                scopes_claim: default_scopes_claim(),
                enabled: true,
                jwks: None,
            }),
            EventKind::TenantChanged => ControlEvent::TenantChanged(TenantState {
                tenant_id: serde_json::from_value(json!("00000000-0000-7000-8000-0000000000aa"))?,
                domain: "acme.com".into(),
                active: false,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    //! One test per kind: the typed payload, built from the values a producer has, must
    //! write exactly the JSON that producer's `json!` wrote before (copied here as it
    //! was), and that JSON must read back as the same variant.

    use super::*;
    use serde_json::json;

    /// The typed event writes `old`, byte for byte, and `old` reads back as the event.
    fn same_wire(typed: ControlEvent, old: Value) {
        let kind = typed.kind();
        let (stored_kind, written) = typed.to_parts().unwrap();
        assert_eq!(stored_kind, kind);
        assert_eq!(written, old, "{kind}: the typed payload writes other JSON");
        assert_eq!(
            serde_json::to_string(&written).unwrap(),
            serde_json::to_string(&old).unwrap(),
            "{kind}: stored text differs"
        );
        let read = ControlEvent::from_parts(kind, &old).unwrap();
        assert_eq!(read, typed, "{kind}: the old JSON reads as another event");
    }

    fn api() -> Api {
        serde_json::from_value(json!({
            "name": "Shop", "context": "/shop", "version": "1.0.0", "provider": "alice",
            "lifeCycleStatus": "PUBLISHED", "isDefaultVersion": true,
            "operations": [{"target": "/items/{id}", "verb": "GET"}]
        }))
        .unwrap()
    }

    fn mock() -> OperationMock {
        serde_json::from_value(json!({
            "verb": "GET", "target": "/items/{id}",
            "responses": [{"code": "200", "status": 200, "contentType": "application/json", "body": "{\"id\":1}"}]
        }))
        .unwrap()
    }

    #[test]
    fn api_revision_deployed_as_the_publisher_wrote_it() {
        // publisher/src/revisions.rs `deploy`, with and without a previous revision and mocks.
        let snapshot = api();
        let live = api();
        for (previous, vhost, mocks) in [
            (None, None, Vec::new()),
            (Some("r0".to_string()), Some("gw.example.com".to_string()), vec![mock()]),
        ] {
            let old = json!({
                "apiId": "a1",
                "revisionId": "r1",
                "revisionNumber": 3,
                "previousRevisionId": previous,
                "environment": "Default",
                "vhost": vhost,
                "name": snapshot.name,
                "version": snapshot.version,
                "context": snapshot.resolved_context(),
                "api": snapshot,
                "lifeCycleStatus": live.life_cycle_status,
                "isDefaultVersion": live.is_default_version,
                "mocks": mocks,
            });
            let typed = ControlEvent::ApiRevisionDeployed(Box::new(RevisionDeployed {
                api_id: "a1".into(),
                revision_id: "r1".into(),
                revision_number: 3,
                previous_revision_id: previous.clone(),
                environment: "Default".into(),
                vhost: vhost.clone(),
                name: snapshot.name.clone(),
                version: snapshot.version.clone(),
                context: snapshot.resolved_context(),
                api: snapshot.clone(),
                life_cycle_status: live.life_cycle_status,
                is_default_version: live.is_default_version,
                mocks,
            }));
            same_wire(typed, old);
        }
    }

    #[test]
    fn a_deployment_reads_as_leniently_as_the_gateway_read_it() {
        // The gateway read a deployment as a `DeployedApi`: only those fields count.
        let deployed = DeployedApi {
            api_id: "a1".into(),
            revision_id: "r1".into(),
            api: api(),
            life_cycle_status: LifecycleState::Published,
            is_default_version: false,
            mocks: Vec::new(),
        };
        let ControlEvent::ApiRevisionDeployed(read) = ControlEvent::from_parts(
            EventKind::ApiRevisionDeployed,
            &serde_json::to_value(&deployed).unwrap(),
        )
        .unwrap() else {
            panic!("another variant");
        };
        assert_eq!(read.into_deployed(), Some(deployed));
        // A `null` lifecycle state reads, but is not served.
        let null_state = json!({"apiId": "a1", "revisionId": "r1", "api": api(), "lifeCycleStatus": null,
            "isDefaultVersion": false});
        let ControlEvent::ApiRevisionDeployed(read) =
            ControlEvent::from_parts(EventKind::ApiRevisionDeployed, &null_state).unwrap()
        else {
            panic!("another variant");
        };
        assert_eq!(read.into_deployed(), None);
    }

    #[test]
    fn api_revision_undeployed_as_the_publisher_wrote_it() {
        // publisher/src/revisions.rs `undeploy`.
        same_wire(
            ControlEvent::ApiRevisionUndeployed(RevisionUndeployed {
                api_id: "a1".into(),
                revision_id: "r1".into(),
                environment: "Default".into(),
                reason: None,
            }),
            json!({ "apiId": "a1", "revisionId": "r1", "environment": "Default" }),
        );
        // publisher/src/apis.rs `delete`.
        same_wire(
            ControlEvent::ApiRevisionUndeployed(RevisionUndeployed {
                api_id: "a1".into(),
                revision_id: "r1".into(),
                environment: "Default".into(),
                reason: Some("api_deleted".into()),
            }),
            json!({ "apiId": "a1", "revisionId": "r1", "environment": "Default", "reason": "api_deleted" }),
        );
    }

    #[test]
    fn api_state_changed_as_the_publisher_wrote_it() {
        // publisher/src/lifecycle.rs `change`.
        let current = api();
        let (from, to) = (LifecycleState::Published, LifecycleState::Blocked);
        same_wire(
            ControlEvent::ApiStateChanged(ApiStateChange {
                api_id: "a1".into(),
                name: current.name.clone(),
                version: current.version.clone(),
                context: current.resolved_context(),
                previous_state: from,
                life_cycle_status: to,
            }),
            json!({
                "apiId": "a1",
                "name": current.name,
                "version": current.version,
                "context": current.resolved_context(),
                "previousState": from,
                "lifeCycleStatus": to,
            }),
        );
    }

    #[test]
    fn application_events_as_the_devportal_wrote_them() {
        // devportal/src/applications.rs `application_event` and `delete`.
        same_wire(
            ControlEvent::ApplicationUpserted(ApplicationInfo {
                id: "app1".into(),
                name: "Mine".into(),
                owner: "bob".into(),
                tier: "10PerMin".into(),
                token_type: "JWT".into(),
                status: "APPROVED".into(),
            }),
            json!({
                "id": "app1",
                "name": "Mine",
                "owner": "bob",
                "tier": "10PerMin",
                "tokenType": "JWT",
                "status": "APPROVED",
            }),
        );
        same_wire(
            ControlEvent::ApplicationDeleted(ApplicationRef { id: "app1".into() }),
            json!({ "id": "app1" }),
        );
    }

    #[test]
    fn subscription_events_as_the_store_and_devportal_wrote_them() {
        // store/src/subscriptions.rs `event_payload` (Publisher and Devportal).
        same_wire(
            ControlEvent::SubscriptionUpserted(SubscriptionInfo {
                subscription_id: "s1".into(),
                api_id: "a1".into(),
                application_id: "app1".into(),
                throttling_policy: "Gold".into(),
                subscription_status: "BLOCKED".into(),
            }),
            json!({
                "subscriptionId": "s1",
                "apiId": "a1",
                "applicationId": "app1",
                "throttlingPolicy": "Gold",
                "subscriptionStatus": "BLOCKED",
            }),
        );
        // devportal/src/subscriptions.rs `delete`.
        same_wire(
            ControlEvent::SubscriptionDeleted(SubscriptionRef {
                subscription_id: "s1".into(),
                application_id: "app1".into(),
                api_id: "a1".into(),
            }),
            json!({ "subscriptionId": "s1", "applicationId": "app1", "apiId": "a1" }),
        );
    }

    #[test]
    fn key_mapping_events_as_the_devportal_and_gateway_wrote_and_read_them() {
        // devportal/src/keys.rs `key_event`.
        same_wire(
            ControlEvent::KeyMappingUpserted(KeyMappingChange {
                id: "k1".into(),
                application_id: "app1".into(),
                consumer_key: "ck1".into(),
                key_type: "PRODUCTION".into(),
                key_manager: "Resident Key Manager".into(),
            }),
            json!({
                "id": "k1",
                "applicationId": "app1",
                "consumerKey": "ck1",
                "keyType": "PRODUCTION",
                "keyManager": "Resident Key Manager",
            }),
        );
        // Nothing writes `key_mapping_deleted` yet; the gateway read `consumerKey`.
        same_wire(
            ControlEvent::KeyMappingDeleted(KeyMappingRef {
                consumer_key: "ck1".into(),
            }),
            json!({ "consumerKey": "ck1" }),
        );
    }

    #[test]
    fn policy_events_as_the_admin_api_and_store_wrote_them() {
        // admin/src/policies.rs `emit` (and store/src/policies.rs `install_defaults`).
        let policy = json!({"policyName": "Gold", "defaultLimit": {"type": "REQUESTCOUNTLIMIT",
            "requestCount": {"timeUnit": "min", "unitTime": 1, "requestCount": 5000}}});
        for level in PolicyLevel::ALL {
            same_wire(
                ControlEvent::PolicyUpserted(PolicyChange {
                    level,
                    policy_id: "p1".into(),
                    policy: policy.clone(),
                }),
                json!({ "level": level, "policyId": "p1", "policy": policy }),
            );
            same_wire(
                ControlEvent::PolicyDeleted(PolicyRemoval {
                    level,
                    policy_id: "p1".into(),
                    policy: PolicyName {
                        policy_name: "Gold".into(),
                    },
                }),
                json!({ "level": level, "policyId": "p1", "policy": &json!({ "policyName": "Gold" }) }),
            );
        }
    }

    #[test]
    fn block_condition_events_as_the_admin_api_wrote_them() {
        // admin/src/deny_policies.rs `emit`: the condition itself.
        let cond: BlockCondition = serde_json::from_value(json!({"conditionId": "b1", "conditionType": "IP",
            "conditionValue": {"fixedIp": "10.0.0.1", "invert": false}, "conditionStatus": true}))
        .unwrap();
        same_wire(
            ControlEvent::BlockConditionUpserted(cond.clone()),
            serde_json::to_value(&cond).unwrap(),
        );
        same_wire(
            ControlEvent::BlockConditionDeleted(cond.clone()),
            serde_json::to_value(&cond).unwrap(),
        );
    }

    #[test]
    fn token_revoked_as_the_token_service_wrote_it() {
        // tokens/src/service.rs `record_revocation`, with and without a consumer key.
        for (kind, subject, token_type, consumer_key) in [
            ("jti", "t-1", "access_token", Some("ck1")),
            ("consumer_key", "ck1", "all", Some("ck1")),
            ("user", "ida", "all", None),
        ] {
            same_wire(
                ControlEvent::TokenRevoked(Revocation {
                    revocation_type: kind.into(),
                    subject: subject.into(),
                    token_type: token_type.into(),
                    consumer_key: consumer_key.map(String::from),
                    revoked_at: 1_000,
                    expires_at: 2_000,
                }),
                json!({
                    "revocationType": kind,
                    "subject": subject,
                    "tokenType": token_type,
                    "consumerKey": consumer_key,
                    "revokedAt": 1_000,
                    "expiresAt": 2_000,
                }),
            );
        }
    }

    #[test]
    fn signing_keys_changed_as_the_key_manager_wrote_it() {
        // tokens/src/signing.rs `rotate`: the JWK as jsonwebtoken writes it.
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        same_wire(
            ControlEvent::SigningKeysChanged(SigningKey {
                kid: "k1".into(),
                alg: "ES256".into(),
                jwk: jwk.clone(),
            }),
            json!({ "kid": "k1", "alg": "ES256", "jwk": jwk }),
        );
    }

    #[test]
    fn environment_changed_as_the_admin_api_wrote_it() {
        // admin/src/environments.rs `emit`.
        let env: Environment = serde_json::from_value(json!({"id": "e1", "name": "internal",
            "displayName": "Internal", "vhosts": [{"host": "internal.example.com"}]}))
        .unwrap();
        for (change, name) in [
            (EnvironmentChangeKind::Created, "created"),
            (EnvironmentChangeKind::Updated, "updated"),
            (EnvironmentChangeKind::Deleted, "deleted"),
        ] {
            same_wire(
                ControlEvent::EnvironmentChanged(EnvironmentChange {
                    change,
                    environment: env.clone(),
                }),
                json!({ "change": name, "environment": env }),
            );
        }
    }

    /// `KeyManager::event_payload` as it was (model/src/key_manager.rs).
    fn old_key_manager_payload(km: &KeyManager, id: &str, jwks: Option<&Value>) -> Value {
        let mut payload = json!({
            "id": id,
            "name": km.name,
            "issuer": km.issuer,
            "consumerKeyClaim": km.consumer_key_claim,
            "scopesClaim": km.scopes_claim,
            "enabled": km.enabled,
        });
        if let Some(jwks) = jwks {
            payload["jwks"] = jwks.clone();
        }
        payload
    }

    #[test]
    fn key_manager_events_as_the_admin_api_and_key_manager_wrote_them() {
        let with_issuer: KeyManager = serde_json::from_value(json!({"name": "okta", "type": "Okta",
            "issuer": "https://okta.example.com", "consumerKeyClaim": "cid", "enabled": false}))
        .unwrap();
        let without_issuer: KeyManager = serde_json::from_value(json!({"name": "kc", "type": "Keycloak"})).unwrap();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB"}]});
        for km in [&with_issuer, &without_issuer] {
            // admin/src/key_managers.rs `emit` (upserted and deleted): no key set.
            let old = old_key_manager_payload(km, "km1", None);
            same_wire(
                ControlEvent::KeyManagerUpserted(KeyManagerInfo::new("km1", km, None)),
                old.clone(),
            );
            same_wire(
                ControlEvent::KeyManagerDeleted(KeyManagerInfo::new("km1", km, None)),
                old,
            );
            // keymanager/src/external.rs `store`: with the fetched key set.
            same_wire(
                ControlEvent::KeyManagerUpserted(KeyManagerInfo::new("km1", km, Some(jwks.clone()))),
                old_key_manager_payload(km, "km1", Some(&jwks)),
            );
        }
    }

    #[test]
    fn tenant_changed_as_the_admin_api_writes_it() {
        // admin/src/tenants.rs: a new kind, so this JSON is the contract from now on.
        let tenant: tollgate_model::TenantId = "00000000-0000-7000-8000-0000000000aa".parse().unwrap();
        same_wire(
            ControlEvent::TenantChanged(TenantState {
                tenant_id: tenant,
                domain: "acme.com".into(),
                active: true,
            }),
            json!({"tenantId": "00000000-0000-7000-8000-0000000000aa", "domain": "acme.com", "active": true}),
        );
    }

    /// The wire test of each kind: a new kind does not compile until it has one.
    fn wire_test(kind: EventKind) -> fn() {
        match kind {
            EventKind::ApiRevisionDeployed => api_revision_deployed_as_the_publisher_wrote_it,
            EventKind::ApiRevisionUndeployed => api_revision_undeployed_as_the_publisher_wrote_it,
            EventKind::ApiStateChanged => api_state_changed_as_the_publisher_wrote_it,
            EventKind::ApplicationUpserted | EventKind::ApplicationDeleted => {
                application_events_as_the_devportal_wrote_them
            }
            EventKind::SubscriptionUpserted | EventKind::SubscriptionDeleted => {
                subscription_events_as_the_store_and_devportal_wrote_them
            }
            EventKind::KeyMappingUpserted | EventKind::KeyMappingDeleted => {
                key_mapping_events_as_the_devportal_and_gateway_wrote_and_read_them
            }
            EventKind::PolicyUpserted | EventKind::PolicyDeleted => policy_events_as_the_admin_api_and_store_wrote_them,
            EventKind::BlockConditionUpserted | EventKind::BlockConditionDeleted => {
                block_condition_events_as_the_admin_api_wrote_them
            }
            EventKind::TokenRevoked => token_revoked_as_the_token_service_wrote_it,
            EventKind::SigningKeysChanged => signing_keys_changed_as_the_key_manager_wrote_it,
            EventKind::EnvironmentChanged => environment_changed_as_the_admin_api_wrote_it,
            EventKind::KeyManagerUpserted | EventKind::KeyManagerDeleted => {
                key_manager_events_as_the_admin_api_and_key_manager_wrote_them
            }
            EventKind::TenantChanged => tenant_changed_as_the_admin_api_writes_it,
        }
    }

    #[test]
    fn every_kind_has_a_wire_test() {
        for kind in EventKind::ALL {
            wire_test(kind)();
        }
    }

    #[test]
    fn every_kind_has_a_sample_that_survives_storage() {
        for kind in EventKind::ALL {
            let sample = ControlEvent::sample(kind).unwrap();
            assert_eq!(sample.kind(), kind);
            let (stored, payload) = sample.to_parts().unwrap();
            assert_eq!(ControlEvent::from_parts(stored, &payload).unwrap(), sample, "{kind}");
        }
    }

    #[test]
    fn a_payload_that_does_not_fit_its_kind_is_an_error_naming_the_kind() {
        let err = ControlEvent::from_parts(EventKind::SubscriptionDeleted, &json!({"apiId": 7})).unwrap_err();
        assert!(matches!(
            err,
            ControlEventError::BadPayload {
                kind: EventKind::SubscriptionDeleted,
                ..
            }
        ));
        assert!(err.to_string().contains("subscription_deleted"), "{err}");
        assert!(ControlEvent::from_parts(EventKind::ApplicationUpserted, &json!("nope")).is_err());
    }
}
