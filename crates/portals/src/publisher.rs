//! The Publisher's pages (`/publisher`): the API list, creating an API from scratch or
//! from an OpenAPI document (file or URL), an API's page with its lifecycle actions
//! (only the allowed ones), revisions and their deployments, and the API's
//! subscriptions with block and unblock. Each action is one Publisher REST API call.

use crate::PortalsState;
use crate::form::{FormData, conflict_on, problem, refused};
use crate::page::merge;
use crate::rest::{ADMIN, PUBLISHER, Payload, RestError, enc};
use crate::session::{Visitor, see_other};
use crate::tryout::ProbeFailure;
use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;

const ROLES: &[Role] = &[Role::Creator, Role::Publisher];

/// The Publisher's routes.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/publisher", get(apis))
        .route("/publisher/", get(apis))
        .route("/publisher/apis/new", get(new_api).post(create_api))
        .route("/publisher/apis/import", get(import_page).post(import))
        .route("/publisher/apis/{api_id}", get(api_page))
        .route("/publisher/apis/{api_id}/edit", get(edit_page).post(edit))
        .route("/publisher/apis/{api_id}/test-endpoint", post(test_endpoint))
        .route("/publisher/apis/{api_id}/lifecycle", post(lifecycle))
        .route("/publisher/apis/{api_id}/revisions", post(create_revision))
        .route("/publisher/apis/{api_id}/deploy", post(deploy))
        .route("/publisher/apis/{api_id}/undeploy", post(undeploy))
        .route("/publisher/apis/{api_id}/subscriptions", get(subscriptions))
        .route("/publisher/apis/{api_id}/subscriptions/block", post(block))
}

/// Every API the user may see.
async fn apis(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, ROLES) {
        return res;
    }
    match state
        .rest()
        .get(visitor.token(), &format!("{PUBLISHER}/apis?limit=1000"))
        .await
    {
        Ok(list) => state
            .pages()
            .render(&visitor, "publisher/apis.html", json!({ "apis": list["list"] })),
        Err(e) => failed(&state, &visitor, e),
    }
}

async fn plans(state: &PortalsState, visitor: &Visitor) -> Value {
    state
        .rest()
        .get(
            visitor.token(),
            &format!("{PUBLISHER}/throttling-policies/subscription"),
        )
        .await
        .map(|p| p["list"].clone())
        .unwrap_or_default()
}

fn chosen_plans(form: &FormData) -> Vec<String> {
    form.all("policies").into_iter().map(String::from).collect()
}

fn endpoint_config(url: &str) -> Value {
    json!({ "endpoint_type": "http", "production_endpoints": { "url": url }, "sandbox_endpoints": { "url": url } })
}

/// The form for an API made from scratch.
async fn new_api(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let plans = plans(&state, &visitor).await;
    state.pages().render(
        &visitor,
        "publisher/create.html",
        json!({ "plans": plans, "values": { "version": "1.0.0", "policies": ["Unlimited"] } }),
    )
}

/// Creates an API from the form (name, version, context, endpoint, plans).
async fn create_api(State(state): State<PortalsState>, visitor: Visitor, form: FormData) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let mut body = json!({
        "name": form.get("name"),
        "version": form.get("version"),
        "context": form.get("context"),
        "description": form.get("description"),
        "policies": chosen_plans(&form),
    });
    if !form.get("endpoint").is_empty() {
        body["endpointConfig"] = endpoint_config(form.get("endpoint"));
    }
    match state
        .rest()
        .post(visitor.token(), &format!("{PUBLISHER}/apis"), body)
        .await
    {
        Ok(api) => see_other(&format!("/publisher/apis/{}", enc(api["id"].as_str().unwrap_or("")))),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            let plans = plans(&state, &visitor).await;
            let mut values = form.values();
            values["policies"] = json!(chosen_plans(&form));
            state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "publisher/create.html",
                merge(
                    refused(values, &conflict_on(rename_endpoint(e), "name")),
                    json!({ "plans": plans }),
                ),
            )
        }
    }
}

/// The REST API names the endpoint field `endpointConfig`; the form calls it `endpoint`.
fn rename_endpoint(mut e: RestError) -> RestError {
    let moved: Vec<(String, String)> = e
        .fields
        .iter()
        .filter(|(k, _)| k.starts_with("endpointConfig"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in moved {
        e.fields.remove(&k);
        e.fields.insert("endpoint".into(), v);
    }
    e
}

/// The OpenAPI import form.
async fn import_page(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let plans = plans(&state, &visitor).await;
    state.pages().render(
        &visitor,
        "publisher/import.html",
        json!({ "plans": plans, "values": { "policies": ["Unlimited"] } }),
    )
}

/// One part of a multipart body.
struct Part {
    name: String,
    file_name: Option<String>,
    bytes: bytes::Bytes,
}

fn multipart_body(parts: &[Part]) -> (String, bytes::Bytes) {
    let boundary = format!("tollgate-{}", crate::csrf::random_token());
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match &p.file_name {
            Some(f) => out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    p.name,
                    f.replace(['"', '\r', '\n'], "_")
                )
                .as_bytes(),
            ),
            None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", p.name).as_bytes()),
        }
        out.extend_from_slice(&p.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out.into())
}

/// Creates an API from an uploaded OpenAPI file or a URL, with the context, endpoint and
/// plans from the form.
async fn import(State(state): State<PortalsState>, visitor: Visitor, mut multipart: Multipart) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let mut form = FormData::default();
    let mut file: Option<(String, bytes::Bytes)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let file_name = field.file_name().map(String::from);
                let Ok(bytes) = field.bytes().await else {
                    return state.pages().error(
                        StatusCode::BAD_REQUEST,
                        "The upload failed",
                        "The file could not be read; try again.",
                    );
                };
                match (name.as_str(), file_name) {
                    ("file", Some(f)) if !bytes.is_empty() => file = Some((f, bytes)),
                    ("file", _) => {}
                    _ => form.0.push((name, String::from_utf8_lossy(&bytes).into_owned())),
                }
            }
            Ok(None) => break,
            Err(e) => {
                return state
                    .pages()
                    .error(StatusCode::BAD_REQUEST, "The upload failed", &e.body_text());
            }
        }
    }
    let mut props = json!({ "context": form.get("context"), "policies": chosen_plans(&form) });
    if !form.get("endpoint").is_empty() {
        props["endpointConfig"] = endpoint_config(form.get("endpoint"));
    }
    let mut parts = vec![Part {
        name: "additionalProperties".into(),
        file_name: None,
        bytes: props.to_string().into(),
    }];
    let mut values = form.values();
    values["policies"] = json!(chosen_plans(&form));
    let result = match (&file, form.get("url")) {
        (Some((name, bytes)), _) => {
            parts.push(Part {
                name: "file".into(),
                file_name: Some(name.clone()),
                bytes: bytes.clone(),
            });
            Ok(())
        }
        (None, url) if !url.is_empty() => {
            parts.push(Part {
                name: "url".into(),
                file_name: None,
                bytes: bytes::Bytes::copy_from_slice(url.as_bytes()),
            });
            Ok(())
        }
        _ => Err(problem("file", "choose an OpenAPI file (JSON or YAML) or give its URL")),
    };
    let outcome = match result {
        Ok(()) => {
            let (content_type, body) = multipart_body(&parts);
            state
                .rest()
                .call(
                    Method::POST,
                    &format!("{PUBLISHER}/apis/import-openapi"),
                    visitor.token(),
                    Payload::Raw(content_type, body),
                )
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(api) => see_other(&format!("/publisher/apis/{}", enc(api["id"].as_str().unwrap_or("")))),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            let mut e = rename_endpoint(e);
            // The REST API names the document `inlineAPIDefinition` or `file`; one field here.
            if let Some(m) = e.fields.remove("inlineAPIDefinition") {
                e.fields.insert("file".into(), m);
            }
            if let Some(m) = e.fields.remove("additionalProperties") {
                e.fields.entry("context".into()).or_insert(m);
            }
            let plans = plans(&state, &visitor).await;
            state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "publisher/import.html",
                merge(refused(values, &e), json!({ "plans": plans })),
            )
        }
    }
}

/// An API's page: overview, lifecycle state and allowed actions, revisions and where
/// each is deployed, environments to deploy to.
async fn api_context(state: &PortalsState, visitor: &Visitor, api_id: &str) -> Result<Value, RestError> {
    let rest = state.rest();
    let token = visitor.token();
    let id = enc(api_id);
    let api = rest.get(token, &format!("{PUBLISHER}/apis/{id}")).await?;
    let lifecycle = rest
        .get(token, &format!("{PUBLISHER}/apis/{id}/lifecycle-state"))
        .await?;
    let revisions = rest.get(token, &format!("{PUBLISHER}/apis/{id}/revisions")).await?;
    let deployments = rest.get(token, &format!("{PUBLISHER}/apis/{id}/deployments")).await?;
    let documents = rest.get(token, &format!("{PUBLISHER}/apis/{id}/documents")).await?;
    let environments = rest
        .get(token, &format!("{ADMIN}/environments"))
        .await
        .map(|e| e["list"].clone())
        .unwrap_or_default();
    Ok(json!({
        "api": api,
        "lifecycle": lifecycle,
        "revisions": revisions["list"],
        "deployments": deployments["list"],
        "environments": environments,
        "documents": documents["list"],
    }))
}

async fn api_page(State(state): State<PortalsState>, visitor: Visitor, Path(api_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, ROLES) {
        return res;
    }
    match api_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(&visitor, "publisher/api.html", ctx),
        Err(e) => failed(&state, &visitor, e),
    }
}

async fn api_page_with(state: &PortalsState, visitor: &Visitor, api_id: &str, extra: Value) -> Response {
    match api_context(state, visitor, api_id).await {
        Ok(ctx) => state.pages().render_status(
            StatusCode::BAD_REQUEST,
            visitor,
            "publisher/api.html",
            merge(ctx, extra),
        ),
        Err(e) => failed(state, visitor, e),
    }
}

/// After a successful action: back to the API's page (a GET, so reloading repeats nothing).
/// After an action on the API's page: back to the page at `anchor`, or the page again
/// with the form `form_key` showing what was sent and why it was refused.
async fn after_action(
    state: &PortalsState,
    visitor: &Visitor,
    api_id: &str,
    outcome: Result<Value, RestError>,
    anchor: &str,
    form_key: &str,
    form: &FormData,
) -> Response {
    crate::page::answer_form(
        state.pages(),
        visitor,
        "publisher",
        outcome,
        |_| async move { see_other(&format!("/publisher/apis/{}#{anchor}", enc(api_id))) },
        form_key,
        form.values(),
        |extra| api_page_with(state, visitor, api_id, extra),
    )
    .await
}

/// Applies a lifecycle action (Publish, Block…).
async fn lifecycle(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Publisher]) {
        return res;
    }
    let path = format!(
        "{PUBLISHER}/apis/change-lifecycle?apiId={}&action={}",
        enc(&api_id),
        enc(form.get("action"))
    );
    let outcome = state
        .rest()
        .call(Method::POST, &path, visitor.token(), Payload::None)
        .await;
    after_action(&state, &visitor, &api_id, outcome, "lifecycle", "lifecycle_form", &form).await
}

/// Snapshots the API as a new revision.
async fn create_revision(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, ROLES) {
        return res;
    }
    let body = json!({ "description": form.get("description") });
    let outcome = state
        .rest()
        .post(
            visitor.token(),
            &format!("{PUBLISHER}/apis/{}/revisions", enc(&api_id)),
            body,
        )
        .await;
    after_action(&state, &visitor, &api_id, outcome, "revisions", "revision_form", &form).await
}

/// Deploys a revision to the chosen environments.
async fn deploy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Publisher]) {
        return res;
    }
    let environments: Vec<Value> = form
        .all("environment")
        .into_iter()
        .map(|name| json!({ "name": name, "displayOnDevportal": true }))
        .collect();
    let outcome = if environments.is_empty() {
        Err(problem("environment", "choose at least one gateway environment"))
    } else {
        let path = format!(
            "{PUBLISHER}/apis/{}/deploy-revision?revisionId={}",
            enc(&api_id),
            enc(form.get("revisionId"))
        );
        state
            .rest()
            .call(
                Method::POST,
                &path,
                visitor.token(),
                Payload::Json(Value::Array(environments)),
            )
            .await
    };
    after_action(&state, &visitor, &api_id, outcome, "revisions", "deploy_form", &form).await
}

/// Undeploys a revision from one environment.
async fn undeploy(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Publisher]) {
        return res;
    }
    let path = format!(
        "{PUBLISHER}/apis/{}/undeploy-revision?revisionId={}",
        enc(&api_id),
        enc(form.get("revisionId"))
    );
    let body = json!([{ "name": form.get("environment") }]);
    let outcome = state
        .rest()
        .call(Method::POST, &path, visitor.token(), Payload::Json(body))
        .await;
    after_action(&state, &visitor, &api_id, outcome, "revisions", "deploy_form", &form).await
}

/// The API's subscriptions, with block and unblock.
async fn subscriptions_context(state: &PortalsState, visitor: &Visitor, api_id: &str) -> Result<Value, RestError> {
    let token = visitor.token();
    let api = state
        .rest()
        .get(token, &format!("{PUBLISHER}/apis/{}", enc(api_id)))
        .await?;
    let subs = state
        .rest()
        .get(
            token,
            &format!("{PUBLISHER}/subscriptions?apiId={}&limit=1000", enc(api_id)),
        )
        .await?;
    Ok(json!({ "api": api, "subscriptions": subs["list"] }))
}

async fn subscriptions(State(state): State<PortalsState>, visitor: Visitor, Path(api_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, ROLES) {
        return res;
    }
    match subscriptions_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(&visitor, "publisher/subscriptions.html", ctx),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Blocks or unblocks one subscription.
async fn block(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Publisher]) {
        return res;
    }
    let id = enc(form.get("subscriptionId"));
    let path = match form.get("action") {
        "unblock" => format!("{PUBLISHER}/subscriptions/unblock-subscription?subscriptionId={id}"),
        _ => format!(
            "{PUBLISHER}/subscriptions/block-subscription?subscriptionId={id}&blockState={}",
            enc(match form.get("blockState") {
                "" => "BLOCKED",
                s => s,
            })
        ),
    };
    match state
        .rest()
        .call(Method::POST, &path, visitor.token(), Payload::None)
        .await
    {
        Ok(_) => see_other(&format!("/publisher/apis/{}/subscriptions", enc(&api_id))),
        Err(e) if matches!(e.status, 401 | 403 | 404) => failed(&state, &visitor, e),
        Err(e) => crate::page::redraw(
            state.pages(),
            &visitor,
            "publisher/subscriptions.html",
            "publisher",
            subscriptions_context(&state, &visitor, &api_id).await,
            json!({ "block_error": e.message }),
        ),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// The edit form's values from the API as stored.
fn edit_values(api: &Value) -> Value {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let cors = &api["corsConfiguration"];
    json!({
        "description": api["description"],
        "tags": list(&api["tags"]),
        "endpoint": api["endpointConfig"]["production_endpoints"]["url"],
        "sandboxEndpoint": api["endpointConfig"]["sandbox_endpoints"]["url"],
        "policies": api["policies"],
        "corsEnabled": if cors["corsConfigurationEnabled"] == true { "on" } else { "" },
        "corsOrigins": list(&cors["accessControlAllowOrigins"]),
    })
}

async fn edit_context(state: &PortalsState, visitor: &Visitor, api_id: &str) -> Result<(Value, Value), RestError> {
    let api = state
        .rest()
        .get(visitor.token(), &format!("{PUBLISHER}/apis/{}", enc(api_id)))
        .await?;
    let plans = plans(state, visitor).await;
    let op_plans = state
        .rest()
        .get(visitor.token(), &format!("{PUBLISHER}/throttling-policies/api"))
        .await
        .map(|p| p["list"].clone())
        .unwrap_or_default();
    Ok((
        api.clone(),
        json!({ "api": api, "plans": plans, "operation_plans": op_plans }),
    ))
}

/// The edit form: description, tags, endpoints, business plans, CORS and each
/// resource's security and throttling.
async fn edit_page(State(state): State<PortalsState>, visitor: Visitor, Path(api_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    match edit_context(&state, &visitor, &api_id).await {
        Ok((api, ctx)) => state.pages().render(
            &visitor,
            "publisher/edit.html",
            merge(ctx, json!({ "values": edit_values(&api) })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Applies the edit form to the stored API and replaces it.
async fn edit(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let (mut api, ctx) = match edit_context(&state, &visitor, &api_id).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    api["description"] = json!(form.get("description"));
    api["tags"] = json!(split_list(form.get("tags")));
    api["policies"] = json!(chosen_plans(&form));
    let endpoint = |url: &str| {
        if url.is_empty() {
            Value::Null
        } else {
            json!({ "url": url })
        }
    };
    api["endpointConfig"] = json!({
        "endpoint_type": "http",
        "production_endpoints": endpoint(form.get("endpoint")),
        "sandbox_endpoints": endpoint(form.get("sandboxEndpoint")),
    });
    let mut cors = api["corsConfiguration"].take();
    if !cors.is_object() {
        cors = json!({});
    }
    cors["corsConfigurationEnabled"] = json!(form.get("corsEnabled") == "on");
    cors["accessControlAllowOrigins"] = json!(split_list(form.get("corsOrigins")));
    api["corsConfiguration"] = cors;
    if let Some(ops) = api["operations"].as_array_mut() {
        for (i, op) in ops.iter_mut().enumerate() {
            let auth = form.get(&format!("op{i}.authType"));
            if !auth.is_empty() {
                op["authType"] = json!(auth);
            }
            let plan = form.get(&format!("op{i}.throttlingPolicy"));
            if !plan.is_empty() {
                op["throttlingPolicy"] = json!(plan);
            }
        }
    }
    match state
        .rest()
        .put(visitor.token(), &format!("{PUBLISHER}/apis/{}", enc(&api_id)), api)
        .await
    {
        Ok(_) => see_other(&format!("/publisher/apis/{}", enc(&api_id))),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => {
            let mut e = rename_endpoint(e);
            if let Some(m) = e.fields.remove("corsConfiguration.accessControlAllowOrigins") {
                e.fields.insert("corsOrigins".into(), m);
            }
            let mut values = form.values();
            values["policies"] = json!(chosen_plans(&form));
            state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "publisher/edit.html",
                merge(ctx, refused(values, &e)),
            )
        }
    }
}

/// The page for a REST failure on this portal's pages.
fn failed(state: &PortalsState, visitor: &Visitor, e: RestError) -> Response {
    crate::page::failed(state.pages(), visitor, e, "creator or publisher")
}

/// "Test endpoint": probes the endpoint URL typed in the edit form and shows the form
/// again with the result, keeping everything typed (nothing is saved).
async fn test_endpoint(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let (_, ctx) = match edit_context(&state, &visitor, &api_id).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    let url = form.get("endpoint");
    let (status, result) =
        match crate::tryout::probe(state.tryout_client(), url, state.endpoint_test_allow_private()).await {
            Ok(status) => (
                StatusCode::OK,
                json!({ "url": url, "reachable": true, "status": status }),
            ),
            Err(ProbeFailure::Unreachable(reason)) => (
                StatusCode::OK,
                json!({ "url": url, "reachable": false, "reason": reason }),
            ),
            // A URL that cannot be tested is the form's fault: refused like a bad field.
            Err(ProbeFailure::Unusable(reason)) => (
                StatusCode::BAD_REQUEST,
                json!({ "url": url, "reachable": false, "reason": reason }),
            ),
        };
    let mut values = form.values();
    values["policies"] = json!(chosen_plans(&form));
    state.pages().render_status(
        status,
        &visitor,
        "publisher/edit.html",
        merge(ctx, json!({ "values": values, "endpoint_test": result })),
    )
}
