//! The runtime snapshot: everything a gateway of one environment needs to serve traffic,
//! as of one outbox sequence number. A gateway boots from it and then applies the events
//! after `seq`; every event carries the whole entity it changes, so applying one whose
//! effect the snapshot already shows is harmless.

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
