//! The Developer Portal's pages (`/devportal`): the anonymous API catalogue and API
//! pages, sign-up, applications, subscriptions, keys, test tokens, API keys and the
//! try-out console. Each action is one call to the Developer Portal REST API.
//!
//! `/devportal?tenant=acme.com` is acme.com's portal: an anonymous visitor browses its
//! catalogue and signs up into it (links and forms keep `?tenant=`, and the REST calls
//! carry it); a signed-in visitor always sees their own tenant's.

use crate::form::{FormData, conflict_on, refused, whole_number};
use crate::page::merge;
use crate::rest::{DEVPORTAL, RestError, enc};
use crate::session::{Visitor, see_other};
use crate::{PortalsState, tryout};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_http::auth::ClientIp;
use tollgate_model::Role;

/// The Developer Portal's routes.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route("/devportal", get(catalogue))
        .route("/devportal/", get(catalogue))
        .route("/devportal/apis/{api_id}", get(api_page))
        .route("/devportal/apis/{api_id}/subscribe", post(subscribe))
        .route("/devportal/apis/{api_id}/rating", post(rate))
        .route("/devportal/apis/{api_id}/try", post(try_out))
        .route("/devportal/apis/{api_id}/documents/{document_id}", get(document))
        .route("/devportal/signup", get(signup_page).post(signup))
        .route("/devportal/applications", get(applications).post(create_application))
        .route("/devportal/applications/new", get(new_application))
        .route("/devportal/applications/{app_id}", get(application))
        .route(
            "/devportal/applications/{app_id}/edit",
            get(edit_application).post(update_application),
        )
        .route("/devportal/applications/{app_id}/delete", post(delete_application))
        .route("/devportal/applications/{app_id}/keys", post(generate_keys))
        .route("/devportal/applications/{app_id}/token", post(generate_token))
        .route("/devportal/applications/{app_id}/api-key", post(generate_api_key))
        .route("/devportal/subscriptions/{sub_id}/delete", post(unsubscribe))
}

#[derive(Deserialize, Default)]
struct CatalogueQuery {
    q: Option<String>,
    tag: Option<String>,
}

/// The catalogue: every API the visitor may see, with search and tag filter.
async fn catalogue(State(state): State<PortalsState>, visitor: Visitor, Query(q): Query<CatalogueQuery>) -> Response {
    let search = q.q.clone().unwrap_or_default();
    let tag = q.tag.clone().unwrap_or_default();
    let query = match (search.trim(), tag.trim()) {
        ("", "") => String::new(),
        (s, "") => s.to_string(),
        ("", t) => format!("tag:{t}"),
        (s, t) => format!("{s} tag:{t}"),
    };
    let path = if query.is_empty() {
        format!("{DEVPORTAL}/apis?limit=1000")
    } else {
        format!("{DEVPORTAL}/apis?limit=1000&query={}", enc(&query))
    };
    let (apis, error, status) = match state.rest().get(visitor.token(), &visitor.in_tenant(&path)).await {
        Ok(v) => (v, None, StatusCode::OK),
        Err(e) if e.status == 400 => (json!({"list": []}), Some(e.message), StatusCode::OK),
        // An unknown or deactivated tenant: the page says so, with the way back.
        Err(e) if e.status == 404 => (json!({"list": []}), Some(e.message), StatusCode::NOT_FOUND),
        Err(e) => return failed(&state, &visitor, e),
    };
    // Tags of everything visible, for the filter (a second, unfiltered call when filtered).
    let all = if query.is_empty() {
        apis.clone()
    } else {
        state
            .rest()
            .get(
                visitor.token(),
                &visitor.in_tenant(&format!("{DEVPORTAL}/apis?limit=1000")),
            )
            .await
            .unwrap_or_default()
    };
    let mut tags: Vec<String> = all["list"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    tags.sort();
    tags.dedup();
    state.pages().render_status(
        status,
        &visitor,
        "devportal/apis.html",
        json!({ "apis": apis["list"], "q": search, "tag": tag, "tags": tags, "error": error }),
    )
}

/// What the API page needs besides the API: documents, ratings, and for a signed-in
/// subscriber the applications, subscriptions and plans.
async fn api_context(state: &PortalsState, visitor: &Visitor, api_id: &str) -> Result<Value, RestError> {
    let rest = state.rest();
    let token = visitor.token();
    let api = rest
        .get(token, &visitor.in_tenant(&format!("{DEVPORTAL}/apis/{}", enc(api_id))))
        .await?;
    let documents = rest
        .get(
            token,
            &visitor.in_tenant(&format!("{DEVPORTAL}/apis/{}/documents", enc(api_id))),
        )
        .await
        .map(|d| d["list"].clone())
        .unwrap_or_default();
    let mut ctx = json!({ "api": api, "documents": documents, "applications": [], "subscriptions": [] });
    if visitor.has(Role::Subscriber) {
        let apps = rest.get(token, &format!("{DEVPORTAL}/applications?limit=1000")).await?;
        let subs = rest
            .get(
                token,
                &format!("{DEVPORTAL}/subscriptions?apiId={}&limit=1000", enc(api_id)),
            )
            .await?;
        ctx["applications"] = apps["list"].clone();
        ctx["subscriptions"] = subs["list"].clone();
    }
    Ok(ctx)
}

/// An API's page: description, operations, gateway URLs, documents, rating,
/// subscribing and the try-out console.
async fn api_page(State(state): State<PortalsState>, visitor: Visitor, Path(api_id): Path<String>) -> Response {
    match api_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(&visitor, "devportal/api.html", ctx),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Draws the API page again after a form on it was refused (status 400, what was typed
/// kept under `form`).
async fn api_page_with(
    state: &PortalsState,
    visitor: &Visitor,
    api_id: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match api_context(state, visitor, api_id).await {
        Ok(ctx) => state
            .pages()
            .render_status(status, visitor, "devportal/api.html", merge(ctx, extra)),
        Err(e) => failed(state, visitor, e),
    }
}

/// Subscribes an application to the API with a business plan.
async fn subscribe(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let body = json!({
        "apiId": api_id,
        "applicationId": form.get("applicationId"),
        "throttlingPolicy": form.get("throttlingPolicy"),
    });
    let outcome = state
        .rest()
        .post(visitor.token(), &format!("{DEVPORTAL}/subscriptions"), body)
        .await;
    let done = format!("/devportal/apis/{}?subscribed=1", enc(&api_id));
    after_api_form(&state, &visitor, &api_id, outcome, &done, "subscribe", &form).await
}

/// After a form on an API's page: to `done`, or the page again with the form `form_key`
/// showing what was sent and why it was refused.
async fn after_api_form(
    state: &PortalsState,
    visitor: &Visitor,
    api_id: &str,
    outcome: Result<Value, RestError>,
    done: &str,
    form_key: &str,
    form: &FormData,
) -> Response {
    crate::page::answer_form(
        state.pages(),
        visitor,
        "subscriber",
        outcome,
        |_| async move { see_other(done) },
        form_key,
        form.values(),
        |extra| api_page_with(state, visitor, api_id, StatusCode::BAD_REQUEST, extra),
    )
    .await
}

/// Rates the API (1–5).
async fn rate(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[]) {
        return res;
    }
    let result = async {
        let rating = whole_number(&form, "rating", "must be a whole number from 1 to 5")?;
        state
            .rest()
            .put(
                visitor.token(),
                &format!("{DEVPORTAL}/apis/{}/user-rating", enc(&api_id)),
                json!({ "rating": rating }),
            )
            .await
    }
    .await;
    let done = format!("/devportal/apis/{}", enc(&api_id));
    after_api_form(&state, &visitor, &api_id, result, &done, "rating", &form).await
}

/// The try-out console: sends the request through the gateway and shows the answer.
async fn try_out(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    let api = match state
        .rest()
        .get(
            visitor.token(),
            &visitor.in_tenant(&format!("{DEVPORTAL}/apis/{}", enc(&api_id))),
        )
        .await
    {
        Ok(a) => a,
        Err(e) => return failed(&state, &visitor, e),
    };
    let outcome = tryout::send(state.tryout_client(), &api, &form).await;
    let (status, extra) = match outcome {
        Ok(answer) => (
            StatusCode::OK,
            json!({ "tryout": { "values": form.values(), "answer": answer } }),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, json!({ "tryout": refused(form.values(), &e) })),
    };
    api_page_with(&state, &visitor, &api_id, status, extra).await
}

/// One document, shown inline (inline text and Markdown as text; links as links).
async fn document(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((api_id, document_id)): Path<(String, String)>,
) -> Response {
    let base = format!("{DEVPORTAL}/apis/{}/documents/{}", enc(&api_id), enc(&document_id));
    let doc = match state.rest().get(visitor.token(), &visitor.in_tenant(&base)).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &visitor, e),
    };
    let content = match state
        .rest()
        .call_raw(
            axum::http::Method::GET,
            &visitor.in_tenant(&format!("{base}/content")),
            visitor.token(),
            crate::rest::Payload::None,
        )
        .await
    {
        Ok((s, bytes)) if s.is_success() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    };
    match api_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "devportal/api.html",
            merge(ctx, json!({ "document": doc, "document_content": content })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// The sign-up form.
async fn signup_page(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    state.pages().render(&visitor, "devportal/signup.html", json!({}))
}

/// Creates the account, then sends the new user to sign in.
async fn signup(
    State(state): State<PortalsState>,
    ClientIp(client): ClientIp,
    visitor: Visitor,
    form: FormData,
) -> Response {
    let body = json!({
        "username": form.get("username"),
        "password": form.raw("password"),
        "email": form.get("email"),
        "firstName": form.get("firstName"),
        "lastName": form.get("lastName"),
    });
    // The visitor's address, so that the REST API's per-address limit holds here too;
    // the page's tenant, so that a sign-up on acme.com's portal is one into acme.com.
    match state
        .rest()
        .post_from(client, &visitor.in_tenant(&format!("{DEVPORTAL}/signup")), body)
        .await
    {
        Ok(_) => crate::session::sign_in_redirect("/devportal/applications?welcome=1"),
        Err(e) => {
            // Never echo the password back into the page.
            let mut values = form.values();
            if let Some(m) = values.as_object_mut() {
                m.remove("password");
            }
            let status = if e.status == 429 {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            state
                .pages()
                .render_status(status, &visitor, "devportal/signup.html", refused(values, &e))
        }
    }
}

/// The visitor's applications.
async fn applications(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match state
        .rest()
        .get(visitor.token(), &format!("{DEVPORTAL}/applications?limit=1000"))
        .await
    {
        Ok(apps) => state.pages().render(
            &visitor,
            "devportal/applications.html",
            json!({ "applications": apps["list"] }),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

async fn application_plans(state: &PortalsState, visitor: &Visitor) -> Value {
    state
        .rest()
        .get(visitor.token(), &format!("{DEVPORTAL}/throttling-policies/application"))
        .await
        .map(|p| p["list"].clone())
        .unwrap_or_default()
}

/// The form for a new application.
async fn new_application(State(state): State<PortalsState>, visitor: Visitor) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let plans = application_plans(&state, &visitor).await;
    state.pages().render(
        &visitor,
        "devportal/application_form.html",
        json!({ "plans": plans, "values": { "throttlingPolicy": "Unlimited", "tokenType": "JWT" } }),
    )
}

fn application_body(form: &FormData) -> Value {
    json!({
        "name": form.get("name"),
        "throttlingPolicy": form.get("throttlingPolicy"),
        "description": form.get("description"),
        "tokenType": form.get("tokenType"),
    })
}

/// Creates an application.
async fn create_application(State(state): State<PortalsState>, visitor: Visitor, form: FormData) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match state
        .rest()
        .post(
            visitor.token(),
            &format!("{DEVPORTAL}/applications"),
            application_body(&form),
        )
        .await
    {
        Ok(app) => see_other(&format!(
            "/devportal/applications/{}",
            enc(app["applicationId"].as_str().unwrap_or(""))
        )),
        Err(e) if e.status == 401 => failed(&state, &visitor, e),
        Err(e) => {
            let plans = application_plans(&state, &visitor).await;
            state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "devportal/application_form.html",
                merge(
                    refused(form.values(), &conflict_on(e, "name")),
                    json!({ "plans": plans }),
                ),
            )
        }
    }
}

/// An application: details, subscriptions, OAuth keys and API keys.
async fn application_context(state: &PortalsState, visitor: &Visitor, app_id: &str) -> Result<Value, RestError> {
    let rest = state.rest();
    let token = visitor.token();
    let app = rest
        .get(token, &format!("{DEVPORTAL}/applications/{}", enc(app_id)))
        .await?;
    let subs = rest
        .get(
            token,
            &format!("{DEVPORTAL}/subscriptions?applicationId={}&limit=1000", enc(app_id)),
        )
        .await?;
    let keys = rest
        .get(token, &format!("{DEVPORTAL}/applications/{}/oauth-keys", enc(app_id)))
        .await?;
    Ok(json!({ "application": app, "subscriptions": subs["list"], "keys": keys["list"] }))
}

async fn application(State(state): State<PortalsState>, visitor: Visitor, Path(app_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match application_context(&state, &visitor, &app_id).await {
        Ok(ctx) => state.pages().render(&visitor, "devportal/application.html", ctx),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// The application page again, with what a refused or successful key action produced.
async fn application_with(
    state: &PortalsState,
    visitor: &Visitor,
    app_id: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match application_context(state, visitor, app_id).await {
        Ok(ctx) => state
            .pages()
            .render_status(status, visitor, "devportal/application.html", merge(ctx, extra)),
        Err(e) => failed(state, visitor, e),
    }
}

async fn edit_application(State(state): State<PortalsState>, visitor: Visitor, Path(app_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let app = match state
        .rest()
        .get(visitor.token(), &format!("{DEVPORTAL}/applications/{}", enc(&app_id)))
        .await
    {
        Ok(a) => a,
        Err(e) => return failed(&state, &visitor, e),
    };
    let plans = application_plans(&state, &visitor).await;
    state.pages().render(
        &visitor,
        "devportal/application_form.html",
        json!({ "plans": plans, "values": app, "application_id": app_id }),
    )
}

async fn update_application(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match state
        .rest()
        .put(
            visitor.token(),
            &format!("{DEVPORTAL}/applications/{}", enc(&app_id)),
            application_body(&form),
        )
        .await
    {
        Ok(_) => see_other(&format!("/devportal/applications/{}", enc(&app_id))),
        Err(e) if e.status == 401 || e.status == 404 => failed(&state, &visitor, e),
        Err(e) => {
            let plans = application_plans(&state, &visitor).await;
            state.pages().render_status(
                StatusCode::BAD_REQUEST,
                &visitor,
                "devportal/application_form.html",
                merge(
                    refused(form.values(), &conflict_on(e, "name")),
                    json!({ "plans": plans, "application_id": app_id }),
                ),
            )
        }
    }
}

async fn delete_application(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match state
        .rest()
        .delete(visitor.token(), &format!("{DEVPORTAL}/applications/{}", enc(&app_id)))
        .await
    {
        Ok(_) => see_other("/devportal/applications"),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Generates OAuth keys; the page shows the consumer secret this once.
async fn generate_keys(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let grants: Vec<&str> = form.all("grantType");
    let mut values = form.values();
    values["grantType"] = json!(grants);
    let mut body = json!({
        "keyType": form.get("keyType"),
        "grantTypesToBeSupported": grants,
    });
    if !form.get("callbackUrl").is_empty() {
        body["callbackUrl"] = json!(form.get("callbackUrl"));
    }
    let outcome = state
        .rest()
        .post(
            visitor.token(),
            &format!("{DEVPORTAL}/applications/{}/generate-keys", enc(&app_id)),
            body,
        )
        .await;
    after_key_action(
        &state,
        &visitor,
        &app_id,
        outcome,
        |keys| json!({ "new_keys": keys }),
        "keys_form",
        values,
    )
    .await
}

/// After a key action on the application's page: the page with what it produced
/// (`shown`), or with the form `form_key` showing `values` and why it was refused.
async fn after_key_action(
    state: &PortalsState,
    visitor: &Visitor,
    app_id: &str,
    outcome: Result<Value, RestError>,
    shown: impl FnOnce(Value) -> Value,
    form_key: &str,
    values: Value,
) -> Response {
    crate::page::answer_form(
        state.pages(),
        visitor,
        "subscriber",
        outcome,
        |v| application_with(state, visitor, app_id, StatusCode::OK, shown(v)),
        form_key,
        values,
        |extra| application_with(state, visitor, app_id, StatusCode::BAD_REQUEST, extra),
    )
    .await
}

/// Generates a test token with the keys' consumer secret (which Tollgate does not keep).
async fn generate_token(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let path = format!(
        "{DEVPORTAL}/applications/{}/oauth-keys/{}/generate-token",
        enc(&app_id),
        enc(form.get("keyMappingId"))
    );
    let mut values = form.values();
    if let Some(m) = values.as_object_mut() {
        m.remove("consumerSecret");
    }
    let outcome = async {
        let validity = whole_number(&form, "validityPeriod", "must be a whole number of seconds, e.g. 3600")?;
        let body = json!({
            "consumerSecret": form.raw("consumerSecret"),
            "validityPeriod": validity.unwrap_or(3600),
            "scopes": form.get("scopes").split_whitespace().collect::<Vec<_>>(),
        });
        state.rest().post(visitor.token(), &path, body).await
    }
    .await;
    let kept = values.clone();
    after_key_action(
        &state,
        &visitor,
        &app_id,
        outcome,
        |token| json!({ "new_token": token, "token_form": { "values": kept } }),
        "token_form",
        values,
    )
    .await
}

/// Generates an API key (shown once).
async fn generate_api_key(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    let path = format!(
        "{DEVPORTAL}/applications/{}/api-keys/{}/generate",
        enc(&app_id),
        enc(form.get("keyType"))
    );
    let outcome = async {
        let validity = whole_number(
            &form,
            "validityPeriod",
            "must be a whole number of seconds (-1: the key never expires)",
        )?;
        let body = json!({ "validityPeriod": validity.unwrap_or(-1) });
        state.rest().post(visitor.token(), &path, body).await
    }
    .await;
    after_key_action(
        &state,
        &visitor,
        &app_id,
        outcome,
        |key| json!({ "new_api_key": key }),
        "api_key_form",
        form.values(),
    )
    .await
}

/// Removes a subscription, back to where the form was.
async fn unsubscribe(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(sub_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Subscriber]) {
        return res;
    }
    match state
        .rest()
        .delete(visitor.token(), &format!("{DEVPORTAL}/subscriptions/{}", enc(&sub_id)))
        .await
    {
        Ok(_) => see_other(crate::session::local_path(form.get("back")).unwrap_or(state.home())),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// The page for a REST failure on this portal's pages.
fn failed(state: &PortalsState, visitor: &Visitor, e: RestError) -> Response {
    crate::page::failed(state.pages(), visitor, e, "subscriber")
}
