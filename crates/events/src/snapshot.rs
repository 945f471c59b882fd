//! The runtime snapshot: everything a gateway of one environment needs to serve traffic,
//! as of one outbox sequence number. A gateway boots from it and then applies the events
//! after `seq`; every event carries the whole entity it changes, so applying one whose
//! effect the snapshot already shows is harmless.
//!
//! Tenants: the top-level lists are the super tenant's (plus what belongs to no tenant:
//! signing keys, revocations), which is all a gateway of the previous release reads; every
//! other tenant's entities are in its own [`TenantSnapshot`] under `tenants`, so that
//! nothing of one tenant is ever read as another's (docs/architecture.md, "Event hub").

use serde::{Deserialize, Serialize};
use tollgate_model::{Api, EpochMillis, LifecycleState};

/// The state of one gateway environment at outbox sequence `seq`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The highest event sequence whose effect the snapshot includes (apply events after it).
    pub seq: i64,
    /// The gateway environment.
    pub environment: String,
    /// API revisions deployed to the environment.
    pub apis: Vec<DeployedApi>,
    /// Every application (gateways need the tier and owner of a token's application).
    pub applications: Vec<ApplicationInfo>,
    /// Every subscription.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Every consumer key and the application it belongs to.
    pub key_mappings: Vec<KeyMappingInfo>,
    /// Revocations still in force.
    pub revocations: Vec<RevocationInfo>,
    /// The key manager's published signing keys (public JWKs).
    pub signing_keys: Vec<serde_json::Value>,
    /// Enabled third-party key managers, with their JWKS, each a
    /// [`KeyManagerInfo`](crate::control::KeyManagerInfo) as `key_manager_upserted` carries it.
    pub key_managers: Vec<serde_json::Value>,
    /// Block conditions (deny policies), enabled or not.
    #[serde(default)]
    pub block_conditions: Vec<tollgate_model::block_condition::BlockCondition>,
    /// Subscription policies (business plans), for throttling by tier.
    #[serde(default)]
    pub subscription_policies: Vec<tollgate_model::policy::SubscriptionPolicy>,
    /// Application policies, for throttling per application and end user.
    #[serde(default)]
    pub application_policies: Vec<tollgate_model::policy::ApplicationPolicy>,
    /// Advanced policies, for API- and resource-level throttling.
    #[serde(default)]
    pub advanced_policies: Vec<tollgate_model::policy::AdvancedPolicy>,
    /// Custom rules, for throttling per key template.
    #[serde(default)]
    pub custom_policies: Vec<tollgate_model::custom_rule::CustomPolicy>,
    /// Every tenant the snapshot covers (the super tenant's entry first, with only its state:
    /// its entities are the lists above), each with its own entities. Absent from the JSON of
    /// a hub of the previous release: the super tenant alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantSnapshot>,
}

/// One tenant's state and entities in a [`Snapshot`]. For the super tenant only the state
/// is filled in (its entities are the snapshot's top-level lists, for gateways of the
/// previous release); lists that are empty are left out of the JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    /// The tenant: id, domain (its APIs are served under `/t/{domain}/…`) and whether its
    /// APIs may be called.
    #[serde(flatten)]
    pub state: crate::control::TenantState,
    /// Its API revisions deployed to the environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<DeployedApi>,
    /// Its applications.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<ApplicationInfo>,
    /// Its subscriptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Its applications' consumer keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_mappings: Vec<KeyMappingInfo>,
    /// Its enabled third-party key managers, as in [`Snapshot::key_managers`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_managers: Vec<serde_json::Value>,
    /// Its block conditions (deny policies).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_conditions: Vec<tollgate_model::block_condition::BlockCondition>,
    /// Its subscription policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_policies: Vec<tollgate_model::policy::SubscriptionPolicy>,
    /// Its application policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub application_policies: Vec<tollgate_model::policy::ApplicationPolicy>,
    /// Its advanced policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advanced_policies: Vec<tollgate_model::policy::AdvancedPolicy>,
    /// Its custom rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_policies: Vec<tollgate_model::custom_rule::CustomPolicy>,
}

impl TenantSnapshot {
    /// A tenant's entry with its state only.
    pub fn new(state: crate::control::TenantState) -> Self {
        Self {
            state,
            apis: Vec::new(),
            applications: Vec::new(),
            subscriptions: Vec::new(),
            key_mappings: Vec::new(),
            key_managers: Vec::new(),
            block_conditions: Vec::new(),
            subscription_policies: Vec::new(),
            application_policies: Vec::new(),
            advanced_policies: Vec::new(),
            custom_policies: Vec::new(),
        }
    }

    /// How many entities of the tenant it holds (its state aside).
    pub fn entity_count(&self) -> usize {
        self.apis.len()
            + self.applications.len()
            + self.subscriptions.len()
            + self.key_mappings.len()
            + self.key_managers.len()
            + self.block_conditions.len()
            + self.subscription_policies.len()
            + self.application_policies.len()
            + self.advanced_policies.len()
            + self.custom_policies.len()
    }
}

/// One deployed API revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedApi {
    /// The API.
    pub api_id: String,
    /// The revision deployed.
    pub revision_id: String,
    /// The API as that revision captured it.
    pub api: Api,
    /// The API's current lifecycle state (blocked and retired APIs refuse calls).
    pub life_cycle_status: LifecycleState,
    /// Whether this version also answers on the context without a version.
    pub is_default_version: bool,
    /// For a `MOCKED_OAS` API, the responses compiled from the revision's definition,
    /// which the gateway answers with instead of calling a backend (decision 016);
    /// empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mocks: Vec<tollgate_model::mock::OperationMock>,
}

/// What a gateway knows of an application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Application throttling policy.
    pub tier: String,
    /// `JWT` or `OAUTH`.
    pub token_type: String,
    /// `APPROVED`…
    pub status: String,
}

/// What a gateway knows of a subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionInfo {
    /// Id.
    pub subscription_id: String,
    /// The subscribed API.
    pub api_id: String,
    /// The subscribing application.
    pub application_id: String,
    /// The business plan.
    pub throttling_policy: String,
    /// `UNBLOCKED`, `BLOCKED`, `PROD_ONLY_BLOCKED`…
    pub subscription_status: String,
}

/// A consumer key of an application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMappingInfo {
    /// The OAuth2 client id.
    pub consumer_key: String,
    /// The application.
    pub application_id: String,
    /// `PRODUCTION` or `SANDBOX`.
    pub key_type: String,
    /// Which key manager issued it.
    pub key_manager: String,
}

/// A revocation: of one token id (`jti`), of every token of a consumer key issued
/// before `revokedAt` (`consumer_key`), or of every token whose subject is a user, issued
/// before `revokedAt` (`user`: the user was disabled, deleted or lost a role).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationInfo {
    /// `jti`, `consumer_key` or `user`.
    pub revocation_type: String,
    /// The token id, consumer key or user name.
    pub subject: String,
    /// When it was revoked.
    pub revoked_at: EpochMillis,
    /// When the tokens it covers have all expired.
    pub expires_at: EpochMillis,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::TenantState;
    use serde_json::json;
    use tollgate_model::TenantId;

    #[test]
    fn a_snapshot_of_the_previous_release_reads_as_the_super_tenants() {
        let old = json!({"seq": 4, "environment": "Default", "apis": [], "applications": [
            {"id": "a1", "name": "App", "owner": "bob", "tier": "Gold", "tokenType": "JWT", "status": "APPROVED"}],
            "subscriptions": [], "keyMappings": [], "revocations": [], "signingKeys": [], "keyManagers": []});
        let read: Snapshot = serde_json::from_value(old).unwrap();
        assert_eq!(read.applications.len(), 1);
        assert!(read.tenants.is_empty());
    }

    #[test]
    fn tenant_sections_round_trip_and_leave_out_what_they_lack() {
        let acme: TenantId = "00000000-0000-7000-8000-0000000000aa".parse().unwrap();
        let mut section = TenantSnapshot::new(TenantState {
            tenant_id: acme,
            domain: "acme.com".into(),
            active: false,
        });
        section.applications.push(ApplicationInfo {
            id: "a2".into(),
            name: "App".into(),
            owner: "alice@acme.com".into(),
            tier: "Gold".into(),
            token_type: "JWT".into(),
            status: "APPROVED".into(),
        });
        assert_eq!(section.entity_count(), 1);
        let snapshot = Snapshot {
            seq: 9,
            environment: "Default".into(),
            tenants: vec![section],
            ..Snapshot::default()
        };
        let written = serde_json::to_value(&snapshot).unwrap();
        // The state is flat in the section; empty lists are left out.
        assert_eq!(
            written["tenants"][0],
            json!({"tenantId": acme, "domain": "acme.com", "active": false, "applications": [
                {"id": "a2", "name": "App", "owner": "alice@acme.com", "tier": "Gold", "tokenType": "JWT", "status": "APPROVED"}]})
        );
        // What the previous release reads of it: the top-level lists, empty here.
        assert_eq!(written["applications"], json!([]));
        let read: Snapshot = serde_json::from_value(written).unwrap();
        assert_eq!(read, snapshot);
        // Without tenants, the field is left out altogether.
        let plain = serde_json::to_value(Snapshot::default()).unwrap();
        assert!(plain.get("tenants").is_none());
    }
}
