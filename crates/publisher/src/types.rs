//! The Publisher API's request and response bodies that are not model types, named after
//! the reference's schemas (`APIInfo`, `APIList`, `APIRevision`, …) so that a client
//! generated from either document sees the same shapes. Optional fields are omitted when
//! absent, never `null`.

use serde::Serialize;
use serde_json::Value;
use tollgate_http::PaginationInfo;
use tollgate_model::LifecycleState;
use tollgate_model::api::Scope;
use tollgate_model::document::Document;
use utoipa::ToSchema;

/// An API in a list (the reference's `APIInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIInfo)]
#[serde(rename_all = "camelCase")]
pub struct ApiInfo {
    /// API id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Base path on the gateway.
    pub context: String,
    /// Version string.
    pub version: String,
    /// Owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `HTTP` or `WS`.
    #[serde(rename = "type")]
    pub api_type: String,
    /// Lifecycle state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub life_cycle_status: Option<LifecycleState>,
    /// Always false: Tollgate keeps no thumbnails.
    pub has_thumbnail: bool,
    /// Accepted credentials.
    pub security_scheme: Vec<String>,
    /// Whether the unversioned context routes to this version.
    pub is_default_version: bool,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_time: Option<String>,
}

/// A page of APIs (the reference's `APIList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIList)]
pub struct ApiList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<ApiInfo>,
    /// Where the page sits in the whole list.
    pub pagination: PaginationInfo,
}

/// A lifecycle transition offered from a state.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleTransition {
    /// The action's name (`Publish`, …), as `change-lifecycle` takes it.
    pub event: String,
    /// The state it leads to.
    pub target_state: String,
}

/// A state and the transitions it allows (the reference's `LifecycleState`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = LifecycleState)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleStateBody {
    /// State name (`Published`, …).
    pub state: String,
    /// Always empty: Tollgate has no checklists.
    pub check_items: Vec<Value>,
    /// The transitions allowed from here.
    pub available_transitions: Vec<LifecycleTransition>,
}

/// The answer of `change-lifecycle` (the reference's `WorkflowResponse`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowResponse {
    /// `APPROVED`: changes apply at once.
    pub workflow_status: String,
    /// The state reached.
    pub lifecycle_state: LifecycleStateBody,
}

/// One lifecycle change (the reference's `LifecycleHistoryItem`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHistoryItem {
    /// The state left (absent for the creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<String>,
    /// The state reached.
    pub post_state: String,
    /// Who changed it.
    pub user: String,
    /// RFC 3339.
    pub updated_time: String,
}

/// An API's lifecycle changes, oldest first (the reference's `LifecycleHistory`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LifecycleHistory {
    /// Items in `list`.
    pub count: usize,
    /// The changes.
    pub list: Vec<LifecycleHistoryItem>,
}

/// Where a revision is deployed (the reference's `APIRevisionDeployment`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[schema(as = APIRevisionDeployment)]
#[serde(rename_all = "camelCase")]
pub struct RevisionDeployment {
    /// Revision id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_uuid: Option<String>,
    /// Environment name.
    pub name: String,
    /// `APPROVED`: deployments apply at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Virtual host the environment serves it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Whether the Developer Portal lists the environment's URLs.
    pub display_on_devportal: bool,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_time: Option<String>,
    /// RFC 3339, when at least one gateway has applied it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_deployed_time: Option<String>,
    /// Gateways of the environment that reported recently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_gateway_count: Option<i64>,
    /// Of those, how many serve this revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_gateway_count: Option<i64>,
    /// Of those, how many failed to apply it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_gateway_count: Option<i64>,
}

/// The API a revision belongs to (the reference's `APIRevisionAPIInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIRevisionAPIInfo)]
pub struct RevisionApiInfo {
    /// API id.
    pub id: String,
}

/// A revision (the reference's `APIRevision`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIRevision)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Revision id.
    pub id: String,
    /// `Revision N`.
    pub display_name: String,
    /// Free text given when it was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339.
    pub created_time: String,
    /// Its API.
    pub api_info: RevisionApiInfo,
    /// Environments serving it.
    pub deployment_info: Vec<RevisionDeployment>,
}

/// An API's revisions (the reference's `APIRevisionList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIRevisionList)]
pub struct RevisionList {
    /// Items in `list`.
    pub count: usize,
    /// The revisions.
    pub list: Vec<Revision>,
}

/// Which revision each environment serves (the reference's
/// `APIRevisionDeploymentList`, with `count`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = APIRevisionDeploymentList)]
pub struct RevisionDeploymentList {
    /// Items in `list`.
    pub count: usize,
    /// The deployments.
    pub list: Vec<RevisionDeployment>,
}

/// A shared scope with how many APIs use it (the reference's `Scope`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedScope {
    /// The scope.
    #[serde(flatten)]
    pub scope: Scope,
    /// APIs using it.
    pub usage_count: usize,
}

/// A page of shared scopes (the reference's `ScopeList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScopeList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<SharedScope>,
    /// Where the page sits in the whole list.
    pub pagination: PaginationInfo,
}

/// An API using a shared scope (the reference's `SharedScopeUsedAPIInfo`, in part).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SharedScopeUsedApiInfo {
    /// API id.
    pub id: String,
    /// API name.
    pub name: String,
    /// API version.
    pub version: String,
}

/// The APIs using a shared scope (the reference's `SharedScopeUsage`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedScopeUsage {
    /// Scope id.
    pub id: String,
    /// Scope name.
    pub name: String,
    /// The APIs.
    pub used_api_list: Vec<SharedScopeUsedApiInfo>,
}

/// The application of a subscription (the reference's `ApplicationInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationInfo {
    /// Application id.
    pub application_id: String,
    /// Application name.
    pub name: String,
    /// Its owner.
    pub subscriber: String,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A subscription to one of the publisher's APIs (the reference's `Subscription`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Subscription id.
    pub subscription_id: String,
    /// The subscribing application.
    pub application_info: ApplicationInfo,
    /// The subscribed API.
    pub api_id: String,
    /// The business plan.
    pub throttling_policy: String,
    /// The plan asked for (the same: plan changes apply at once).
    pub requested_throttling_policy: String,
    /// `UNBLOCKED`, `BLOCKED`, `PROD_ONLY_BLOCKED`, …
    pub subscription_status: String,
    /// RFC 3339.
    pub created_time: String,
}

/// A page of subscriptions (the reference's `SubscriptionList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<Subscription>,
    /// Where the page sits in the whole list.
    pub pagination: PaginationInfo,
}

/// A page of an API's documents (the reference's `DocumentList`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentList {
    /// Items in `list`.
    pub count: usize,
    /// The page.
    pub list: Vec<Document>,
    /// Where the page sits in the whole list.
    pub pagination: PaginationInfo,
}

/// One operation's generated mock responses (the reference's `MockResponsePayloadInfo`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MockResponsePayloadInfo {
    /// Path template.
    pub path: String,
    /// HTTP method.
    pub verb: String,
    /// The JSON of the operation's mock responses.
    pub content: String,
}

/// Every operation's mock responses (the reference's `MockResponsePayloadList`, with
/// `count`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MockResponsePayloadList {
    /// Items in `list`.
    pub count: usize,
    /// The operations.
    pub list: Vec<MockResponsePayloadInfo>,
}

/// An operation of a validated definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DefinitionOperation {
    /// HTTP method.
    pub verb: String,
    /// Path template.
    pub target: String,
}

/// What a validated definition says about itself.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionInfo {
    /// `info.title`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `info.version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `info.description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `3.0.3`, `swagger 2.0`, …
    #[serde(rename = "openAPIVersion")]
    pub open_api_version: String,
    /// Server URLs.
    pub endpoints: Vec<String>,
    /// Operations.
    pub operations: Vec<DefinitionOperation>,
}

/// A validation problem (the reference's `ErrorListItem`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorListItem {
    /// The field or location.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// The answer of `validate-openapi` (the reference's
/// `OpenAPIDefinitionValidationResponse`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = OpenAPIDefinitionValidationResponse)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionValidation {
    /// Whether the document is usable.
    pub is_valid: bool,
    /// What it says about itself, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<DefinitionInfo>,
    /// The document as JSON text, with `returnContent=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The problems, when invalid.
    pub errors: Vec<ErrorListItem>,
}

/// What an API project import did (or, with `dryRun`, would do). The reference answers
/// an import with an empty 200; Tollgate says what it changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    /// The API's id (for a dry run of a new API, the id it would have had).
    pub id: String,
    /// API name.
    pub name: String,
    /// API version.
    pub version: String,
    /// `CREATED`, `UPDATED` or `UNCHANGED`.
    pub status: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// What was (or would be) created or changed, one line each; empty when unchanged.
    pub changes: Vec<String>,
    /// What the project holds that Tollgate did not import (unsupported fields, files).
    pub warnings: Vec<String>,
}
