//! The Admin portal's key-manager page (`/admin/key-managers`): the third-party OIDC
//! providers (Keycloak, Okta, Auth0…) whose tokens gateways accept, with a form to
//! register one, and enable, disable or remove each. One Admin REST API call per action.

use crate::PortalsState;
use crate::admin::{failed, redraw, show};
use crate::form::{FormData, conflict_on, refused};
use crate::rest::{ADMIN, RestError, enc};
use crate::session::{Visitor, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;

/// The key-manager routes of the Admin portal.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/admin/key-managers", get(key_managers).post(create_key_manager))
        .route("/admin/key-managers/{key_manager_id}/status", post(toggle_key_manager))
        .route("/admin/key-managers/{key_manager_id}/delete", post(delete_key_manager))
}

async fn context(state: &PortalsState, visitor: &Visitor) -> Result<Value, RestError> {
    crate::admin::list_context(state, visitor, "/key-managers", "key_managers").await
}

/// The registered key managers, with a form for a new one.
async fn key_managers(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    show(
        &state,
        &visitor,
        "admin/key_managers.html",
        context(&state, &visitor).await,
        json!({ "values": { "type": "Keycloak", "consumerKeyClaim": "azp", "scopesClaim": "scope" } }),
    )
}

/// The Admin REST body of a key manager from the form (the JWKS URL as its certificates,
/// or the discovery URL alone).
fn key_manager_body(form: &FormData) -> Value {
    let optional = |name: &str| match form.get(name) {
        "" => Value::Null,
        v => json!(v),
    };
    let certificates = match form.get("jwksUrl") {
        "" => Value::Null,
        url => json!({ "type": "JWKS", "value": url }),
    };
    json!({
        "name": form.get("name"),
        "displayName": optional("name"),
        "type": form.get("type"),
        "description": optional("description"),
        "issuer": optional("issuer"),
        "wellKnownEndpoint": optional("wellKnownEndpoint"),
        "certificates": certificates,
        "consumerKeyClaim": form.get("consumerKeyClaim"),
        "scopesClaim": form.get("scopesClaim"),
        "enabled": true,
    })
}

/// The form field a REST error path belongs to (the JWKS URL is `certificates…`).
fn form_field(path: &str) -> String {
    if path.starts_with("certificates") {
        "jwksUrl".into()
    } else {
        path.to_string()
    }
}

/// Registers a key manager.
async fn create_key_manager(State(state): State<PortalsState>, visitor: Visitor, form: FormData) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match state
        .rest()
        .post(
            visitor.token(),
            &format!("{ADMIN}/key-managers"),
            key_manager_body(&form),
        )
        .await
    {
        Ok(_) => see_other("/admin/key-managers"),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(mut e) => {
            e.fields = e.fields.into_iter().map(|(k, v)| (form_field(&k), v)).collect();
            redraw(
                &state,
                &visitor,
                "admin/key_managers.html",
                context(&state, &visitor).await,
                refused(form.values(), &conflict_on(e, "name")),
            )
        }
    }
}

/// Enables or disables a key manager (gateways stop or start accepting its tokens).
async fn toggle_key_manager(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let path = format!("{ADMIN}/key-managers/{}", enc(&id));
    let mut km = match state.rest().get(visitor.token(), &path).await {
        Ok(km) => km,
        Err(e) => return failed(&state, &visitor, e),
    };
    km["enabled"] = json!(form.get("enabled") == "true");
    if let Some(m) = km.as_object_mut() {
        m.remove("id");
        m.remove("jwksFetchedTime");
    }
    match state.rest().put(visitor.token(), &path, km).await {
        Ok(_) => see_other("/admin/key-managers"),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Removes a key manager; refused (and said why) while application keys map from it.
async fn delete_key_manager(State(state): State<PortalsState>, visitor: Visitor, Path(id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match state
        .rest()
        .delete(visitor.token(), &format!("{ADMIN}/key-managers/{}", enc(&id)))
        .await
    {
        Ok(_) => see_other("/admin/key-managers"),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => redraw(
            &state,
            &visitor,
            "admin/key_managers.html",
            context(&state, &visitor).await,
            json!({ "delete_error": e.message }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_url_becomes_certificates_and_back() {
        let f = FormData(vec![
            ("name".into(), "Keycloak".into()),
            ("type".into(), "Keycloak".into()),
            ("issuer".into(), "https://idp.example.com/realms/a".into()),
            ("jwksUrl".into(), "https://idp.example.com/certs".into()),
            ("wellKnownEndpoint".into(), "".into()),
        ]);
        let b = key_manager_body(&f);
        assert_eq!(b["certificates"]["value"], "https://idp.example.com/certs");
        assert!(b["wellKnownEndpoint"].is_null());
        assert_eq!(form_field("certificates.value"), "jwksUrl");
        assert_eq!(form_field("issuer"), "issuer");
    }
}
