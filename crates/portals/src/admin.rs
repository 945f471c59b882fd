//! The Admin portal's pages (`/admin`): its home, deny policies (block conditions),
//! gateway environments and users (throttling policies: `admin_policies`, key managers:
//! `admin_key_managers`). Administrators only; each
//! action is one Admin REST API call.

use crate::PortalsState;
use crate::admin_policies::{self, number_or_text};
use crate::form::{FormData, refused};
use crate::rest::{ADMIN, Payload, RestError, enc};
use crate::session::{Visitor, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;

/// The Admin portal's routes.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route("/admin/deny-policies", get(deny_policies).post(create_deny_policy))
        .route("/admin/deny-policies/{condition_id}/delete", post(delete_deny_policy))
        .route("/admin/deny-policies/{condition_id}/status", post(toggle_deny_policy))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{username}", post(update_user))
        .route("/admin/environments", get(environments))
        .route("/admin/environments/{environment_id}", post(update_environment))
}

async fn home(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    state.pages().render(
        &visitor,
        "admin/home.html",
        json!({ "levels": admin_policies::levels() }),
    )
}

/// An Admin REST list (`{ADMIN}{path}`) as a page context holding its entries under `key`.
pub(crate) async fn list_context(
    state: &PortalsState,
    visitor: &Visitor,
    path: &str,
    key: &str,
) -> Result<Value, RestError> {
    let mut list = state.rest().get(visitor.token(), &format!("{ADMIN}{path}")).await?;
    let mut ctx = serde_json::Map::new();
    ctx.insert(key.to_string(), list["list"].take());
    Ok(Value::Object(ctx))
}

async fn deny_context(state: &PortalsState, visitor: &Visitor) -> Result<Value, RestError> {
    list_context(state, visitor, "/throttling/deny-policies", "conditions").await
}

/// Deny policies: requests from an IP, IP range, user, application or to an API that
/// every gateway refuses.
async fn deny_policies(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    show(
        &state,
        &visitor,
        "admin/deny_policies.html",
        deny_context(&state, &visitor).await,
        json!({ "values": { "conditionType": "IP" } }),
    )
}

fn deny_body(form: &FormData) -> Value {
    let invert = form.get("invert") == "on";
    let kind = form.get("conditionType");
    let value = match kind {
        "IP" => json!({ "fixedIp": form.get("fixedIp"), "invert": invert }),
        "IPRANGE" => {
            json!({ "startingIp": form.get("startingIp"), "endingIp": form.get("endingIp"), "invert": invert })
        }
        _ => json!(form.get("conditionValue")),
    };
    json!({ "conditionType": kind, "conditionValue": value, "conditionStatus": true })
}

async fn create_deny_policy(State(state): State<PortalsState>, visitor: Visitor, form: FormData) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match state
        .rest()
        .post(
            visitor.token(),
            &format!("{ADMIN}/throttling/deny-policies"),
            deny_body(&form),
        )
        .await
    {
        Ok(_) => see_other("/admin/deny-policies"),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            let e = e.with_short_field_names();
            redraw(
                &state,
                &visitor,
                "admin/deny_policies.html",
                deny_context(&state, &visitor).await,
                refused(form.values(), &e),
            )
        }
    }
}

async fn delete_deny_policy(State(state): State<PortalsState>, visitor: Visitor, Path(id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match state
        .rest()
        .delete(visitor.token(), &format!("{ADMIN}/throttling/deny-policy/{}", enc(&id)))
        .await
    {
        Ok(_) => see_other("/admin/deny-policies"),
        Err(e) => failed(&state, &visitor, e),
    }
}

async fn toggle_deny_policy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let body = json!({ "conditionStatus": form.get("enabled") == "true" });
    match state
        .rest()
        .call(
            Method::PATCH,
            &format!("{ADMIN}/throttling/deny-policy/{}", enc(&id)),
            visitor.token(),
            Payload::Json(body),
        )
        .await
    {
        Ok(_) => see_other("/admin/deny-policies"),
        Err(e) => failed(&state, &visitor, e),
    }
}

async fn environments_context(state: &PortalsState, visitor: &Visitor) -> Result<Value, RestError> {
    list_context(state, visitor, "/environments", "environments").await
}

/// Gateway environments, with the gateway URL (first virtual host) of each editable.
async fn environments(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    show(
        &state,
        &visitor,
        "admin/environments.html",
        environments_context(&state, &visitor).await,
        json!({}),
    )
}

/// Changes an environment's display name, description and first virtual host.
async fn update_environment(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let path = format!("{ADMIN}/environments/{}", enc(&id));
    let mut env = match state.rest().get(visitor.token(), &path).await {
        Ok(e) => e,
        Err(e) => return failed(&state, &visitor, e),
    };
    env["displayName"] = json!(form.get("displayName"));
    env["description"] = json!(form.get("description"));
    for name in ["httpPort", "httpsPort"] {
        let p = form.get(name);
        if !p.is_empty() && !p.parse::<u16>().is_ok_and(|n| n > 0) {
            let e = crate::form::problem(name, "must be a port number from 1 to 65535, or empty");
            return redraw(
                &state,
                &visitor,
                "admin/environments.html",
                environments_context(&state, &visitor).await,
                json!({ "edit": { "id": id, "values": form.values(), "error": e.message, "errors": e.fields } }),
            );
        }
    }
    let port = |name: &str| match form.get(name) {
        "" => Value::Null,
        p => number_or_text(p),
    };
    let vhost = json!({ "host": form.get("host"), "httpPort": port("httpPort"), "httpsPort": port("httpsPort") });
    match env["vhosts"].as_array_mut() {
        Some(v) if !v.is_empty() => {
            if let (Some(first), Value::Object(new)) = (v[0].as_object_mut(), vhost) {
                first.extend(new);
            }
        }
        _ => env["vhosts"] = json!([vhost]),
    }
    if let Some(m) = env.as_object_mut() {
        m.remove("id");
    }
    match state.rest().put(visitor.token(), &path, env).await {
        Ok(_) => see_other("/admin/environments"),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => {
            let e = e.with_short_field_names();
            redraw(
                &state,
                &visitor,
                "admin/environments.html",
                environments_context(&state, &visitor).await,
                json!({ "edit": { "id": id, "values": form.values(), "error": e.message, "errors": e.fields } }),
            )
        }
    }
}

async fn users_context(state: &PortalsState, visitor: &Visitor) -> Result<Value, RestError> {
    let list = state
        .rest()
        .get(visitor.token(), &format!("{ADMIN}/users?limit=1000"))
        .await?;
    let roles = state.rest().get(visitor.token(), &format!("{ADMIN}/roles")).await?;
    Ok(json!({ "users": list["list"], "roles": roles["list"] }))
}

/// Users and their roles, with a form for a new user.
async fn users(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    show(
        &state,
        &visitor,
        "admin/users.html",
        users_context(&state, &visitor).await,
        json!({ "values": { "roles": ["subscriber"] } }),
    )
}

/// Creates a user with the chosen roles.
async fn create_user(State(state): State<PortalsState>, visitor: Visitor, form: FormData) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let password = form.raw("password");
    let mut body = json!({ "username": form.get("username"), "password": password, "roles": form.all("roles") });
    if !form.get("email").is_empty() {
        body["email"] = json!(form.get("email"));
    }
    match state
        .rest()
        .post(visitor.token(), &format!("{ADMIN}/users"), body)
        .await
    {
        Ok(_) => see_other("/admin/users"),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            let mut values = form.values();
            if let Some(m) = values.as_object_mut() {
                m.remove("password");
            }
            values["roles"] = json!(form.all("roles"));
            redraw(
                &state,
                &visitor,
                "admin/users.html",
                users_context(&state, &visitor).await,
                refused(values, &crate::form::conflict_on(e, "username")),
            )
        }
    }
}

/// Replaces a user's roles and enables or disables them.
async fn update_user(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(username): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let body = json!({ "roles": form.all("roles"), "enabled": form.get("enabled") == "on" });
    match state
        .rest()
        .call(
            Method::PATCH,
            &format!("{ADMIN}/users/{}", enc(&username)),
            visitor.token(),
            Payload::Json(body),
        )
        .await
    {
        Ok(_) => see_other("/admin/users"),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => redraw(
            &state,
            &visitor,
            "admin/users.html",
            users_context(&state, &visitor).await,
            json!({ "update_error": {
                        "username": username, "message": e.message,
                        "roles": form.all("roles"), "enabled": form.get("enabled") == "on",
                    } }),
        ),
    }
}

/// The page for a REST failure on this portal's pages.
pub(crate) fn failed(state: &PortalsState, visitor: &Visitor, e: RestError) -> Response {
    crate::page::failed(state.pages(), visitor, e, "admin")
}

/// A page of this portal drawn from `ctx` with `extra` (status 200).
pub(crate) fn show(
    state: &PortalsState,
    visitor: &Visitor,
    template: &str,
    ctx: Result<Value, RestError>,
    extra: Value,
) -> Response {
    crate::page::show(state.pages(), visitor, template, "admin", StatusCode::OK, ctx, extra)
}

/// A form page of this portal drawn again after a refused submit.
pub(crate) fn redraw(
    state: &PortalsState,
    visitor: &Visitor,
    template: &str,
    ctx: Result<Value, RestError>,
    extra: Value,
) -> Response {
    crate::page::redraw(state.pages(), visitor, template, "admin", ctx, extra)
}
