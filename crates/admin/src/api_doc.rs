//! The Admin REST API's own OpenAPI document, generated from the handlers' annotations
//! and served at `/api/am/admin/v4/openapi.json`.

use tollgate_http::openapi_doc::BasicAuth;
use utoipa::{OpenApi, ToSchema};

/// Multipart body of `POST /throttling/policies/import`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PolicyImportForm {
    /// The policy file (YAML or JSON), as `GET /throttling/policies/export` or the
    /// reference writes it.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate Admin API", version = "v4", description = "Users and roles, gateway environments, throttling policies, deny policies, third-party key managers, tenants and their directories (our extensions). Shaped like the reference's Admin v4 API."),
    servers((url = "/api/am/admin/v4")),
    modifiers(&BasicAuth),
    paths(
        crate::users::list_users, crate::users::create_user, crate::users::get_user, crate::users::update_user, crate::users::delete_user, crate::users::list_roles,
        crate::environments::list, crate::environments::get_one, crate::environments::create, crate::environments::update, crate::environments::delete,
        crate::policies::list_subscription, crate::policies::create_subscription, crate::policies::get_subscription, crate::policies::update_subscription, crate::policies::delete_subscription,
        crate::policies::list_application, crate::policies::create_application, crate::policies::get_application, crate::policies::update_application, crate::policies::delete_application,
        crate::policies::list_advanced, crate::policies::create_advanced, crate::policies::get_advanced, crate::policies::update_advanced, crate::policies::delete_advanced,
        crate::policies::list_custom, crate::policies::create_custom, crate::policies::get_custom, crate::policies::update_custom, crate::policies::delete_custom,
        crate::deny_policies::list, crate::deny_policies::get_one, crate::deny_policies::create, crate::deny_policies::set_status, crate::deny_policies::delete,
        crate::key_managers::list, crate::key_managers::get_one, crate::key_managers::create, crate::key_managers::update, crate::key_managers::delete,
        crate::tenants::list, crate::tenants::create, crate::tenants::get_one, crate::tenants::activate, crate::tenants::deactivate,
        crate::user_stores::list, crate::user_stores::create, crate::user_stores::get_one, crate::user_stores::update, crate::user_stores::delete, crate::user_stores::test_connection,
        crate::policies::transfer::export, crate::policies::transfer::import,
    ),
    components(schemas(tollgate_http::error::ErrorBody))
)]
pub struct AdminApiDoc;

/// The document as pretty JSON, as served and as committed in `openapi.json`.
pub fn document_json() -> String {
    AdminApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
