//! The Admin portal's pages (`/admin`): throttling policies of every level, deny
//! policies (block conditions) and gateway environments. Administrators only; each
//! action is one Admin REST API call.

use crate::PortalsState;
use crate::form::{FormData, refused};
use crate::page::merge;
use crate::rest::{ADMIN, Payload, RestError, enc};
use crate::session::{Visitor, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;

/// The policy levels the Admin REST API stores, as the pages name them.
const LEVELS: &[(&str, &str)] = &[
    ("subscription", "Business plans (subscription)"),
    ("application", "Application"),
    ("advanced", "Advanced (API and resource)"),
    ("custom", "Custom rules"),
];

/// The Admin portal's routes.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route("/admin/policies/{level}", get(policies).post(create_policy))
        .route("/admin/policies/{level}/{policy_id}/delete", post(delete_policy))
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
    state
        .pages()
        .render(&visitor, "admin/home.html", json!({ "levels": levels() }))
}

fn levels() -> Value {
    LEVELS
        .iter()
        .map(|(k, label)| json!({ "key": k, "label": label }))
        .collect()
}

async fn policies_context(state: &PortalsState, visitor: &Visitor, level: &str) -> Result<Value, RestError> {
    let list = state
        .rest()
        .get(visitor.token(), &format!("{ADMIN}/throttling/policies/{}", enc(level)))
        .await?;
    let label = LEVELS
        .iter()
        .find(|(k, _)| *k == level)
        .map(|(_, l)| *l)
        .unwrap_or(level);
    Ok(json!({ "level": level, "label": label, "levels": levels(), "policies": list["list"] }))
}

/// The policies of one level, with a form for a new request-count policy.
async fn policies(State(state): State<PortalsState>, visitor: Visitor, Path(level): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match policies_context(&state, &visitor, &level).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "admin/policies.html",
            merge(ctx, json!({ "values": { "timeUnit": "min", "unitTime": "1" } })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

fn number_or_text(s: &str) -> Value {
    s.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Creates a request-count policy of the level (subscription or application).
async fn create_policy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(level): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    // A number the JSON body cannot carry is named here (the REST API would only say
    // "invalid type" for the whole body).
    for (name, label) in [("requestCount", "Requests"), ("unitTime", "Per")] {
        if form.get(name).parse::<u64>().is_err() {
            let e = crate::form::problem(name, &format!("{label} must be a whole number, e.g. 100"));
            return redraw(
                &state,
                &visitor,
                "admin/policies.html",
                policies_context(&state, &visitor, &level).await,
                refused(form.values(), &e),
            );
        }
    }
    let body = json!({
        "policyName": form.get("policyName"),
        "displayName": form.get("policyName"),
        "description": form.get("description"),
        "defaultLimit": {
            "type": "REQUESTCOUNTLIMIT",
            "requestCount": {
                "requestCount": number_or_text(form.get("requestCount")),
                "timeUnit": form.get("timeUnit"),
                "unitTime": number_or_text(form.get("unitTime")),
            }
        }
    });
    match state
        .rest()
        .post(
            visitor.token(),
            &format!("{ADMIN}/throttling/policies/{}", enc(&level)),
            body,
        )
        .await
    {
        Ok(_) => see_other(&format!("/admin/policies/{}", enc(&level))),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            // The REST API names nested fields by path; the form by their last segment.
            let e = e.with_short_field_names();
            redraw(
                &state,
                &visitor,
                "admin/policies.html",
                policies_context(&state, &visitor, &level).await,
                refused(form.values(), &e),
            )
        }
    }
}

async fn delete_policy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((level, policy_id)): Path<(String, String)>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    let path = format!("{ADMIN}/throttling/policies/{}/{}", enc(&level), enc(&policy_id));
    match state.rest().delete(visitor.token(), &path).await {
        Ok(_) => see_other(&format!("/admin/policies/{}", enc(&level))),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => redraw(
            &state,
            &visitor,
            "admin/policies.html",
            policies_context(&state, &visitor, &level).await,
            json!({ "delete_error": e.message }),
        ),
    }
}

async fn deny_context(state: &PortalsState, visitor: &Visitor) -> Result<Value, RestError> {
    let list = state
        .rest()
        .get(visitor.token(), &format!("{ADMIN}/throttling/deny-policies"))
        .await?;
    Ok(json!({ "conditions": list["list"] }))
}

/// Deny policies: requests from an IP, IP range, user, application or to an API that
/// every gateway refuses.
async fn deny_policies(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match deny_context(&state, &visitor).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "admin/deny_policies.html",
            merge(ctx, json!({ "values": { "conditionType": "IP" } })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
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
    let list = state
        .rest()
        .get(visitor.token(), &format!("{ADMIN}/environments"))
        .await?;
    Ok(json!({ "environments": list["list"] }))
}

/// Gateway environments, with the gateway URL (first virtual host) of each editable.
async fn environments(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Admin]) {
        return res;
    }
    match environments_context(&state, &visitor).await {
        Ok(ctx) => state.pages().render(&visitor, "admin/environments.html", ctx),
        Err(e) => failed(&state, &visitor, e),
    }
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
    match users_context(&state, &visitor).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "admin/users.html",
            merge(ctx, json!({ "values": { "roles": ["subscriber"] } })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
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
        Err(e) => match users_context(&state, &visitor).await {
            Ok(ctx) => state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "admin/users.html",
                merge(
                    ctx,
                    json!({ "update_error": { "username": username, "message": e.message } }),
                ),
            ),
            Err(e) => failed(&state, &visitor, e),
        },
    }
}

/// The page for a REST failure on this portal's pages.
fn failed(state: &PortalsState, visitor: &Visitor, e: RestError) -> Response {
    crate::page::failed(state.pages(), visitor, e, "admin")
}

/// A form page of this portal drawn again after a refused submit.
fn redraw(
    state: &PortalsState,
    visitor: &Visitor,
    template: &str,
    ctx: Result<Value, RestError>,
    extra: Value,
) -> Response {
    crate::page::redraw(state.pages(), visitor, template, "admin", ctx, extra)
}
