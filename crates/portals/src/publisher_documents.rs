//! The Publisher's document pages (`/publisher/apis/{id}/documents…`): add, edit and
//! delete an API's documents (how-tos, samples, forums…) whose content is inline text,
//! Markdown or a link. Each action is one Publisher REST API call; uploaded files stay
//! with the REST API and the CLI.

use crate::PortalsState;
use crate::form::{FormData, conflict_on, refused};
use crate::page::merge;
use crate::rest::{PUBLISHER, Payload, RestError, enc};
use crate::session::{Visitor, see_other};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_model::Role;
use tollgate_model::document::DOCUMENT_TYPES;

/// The content kinds the form offers (FILE needs an upload: REST API or CLI).
const SOURCE_TYPES: [(&str, &str); 3] = [
    ("INLINE", "Inline text"),
    ("MARKDOWN", "Markdown"),
    ("URL", "Link (URL)"),
];

/// The document routes of the Publisher.
pub fn routes() -> Router<PortalsState> {
    Router::new()
        .route(
            "/publisher/apis/{api_id}/documents/new",
            get(new_document).post(create_document),
        )
        .route(
            "/publisher/apis/{api_id}/documents/{document_id}",
            get(edit_document).post(update_document),
        )
        .route(
            "/publisher/apis/{api_id}/documents/{document_id}/delete",
            post(delete_document),
        )
}

fn options() -> Value {
    json!({
        "doc_types": DOCUMENT_TYPES.iter().map(|t| json!({ "value": t, "label": t.replace('_', " ").to_lowercase() })).collect::<Vec<_>>(),
        "source_types": SOURCE_TYPES.iter().map(|(v, l)| json!({ "value": v, "label": l })).collect::<Vec<_>>(),
        "visibilities": [
            { "value": "API_LEVEL", "label": "Same as the API" },
            { "value": "PRIVATE", "label": "Publishers only" },
            { "value": "OWNER_ONLY", "label": "Its author only" },
        ],
    })
}

async fn form_context(state: &PortalsState, visitor: &Visitor, api_id: &str) -> Result<Value, RestError> {
    let api = state
        .rest()
        .get(visitor.token(), &format!("{PUBLISHER}/apis/{}", enc(api_id)))
        .await?;
    Ok(merge(json!({ "api": api }), options()))
}

/// The REST body of a document from the form.
fn document_body(form: &FormData) -> Value {
    let optional = |name: &str| match form.get(name) {
        "" => Value::Null,
        v => json!(v),
    };
    let source = form.get("sourceType");
    json!({
        "name": form.get("name"),
        "type": form.get("type"),
        "otherTypeName": optional("otherTypeName"),
        "summary": optional("summary"),
        "sourceType": source,
        "sourceUrl": if source == "URL" { optional("sourceUrl") } else { Value::Null },
        "inlineContent": if source == "URL" { Value::Null } else { json!(form.raw("inlineContent")) },
        "visibility": form.get("visibility"),
    })
}

/// The empty form for a new document.
async fn new_document(State(state): State<PortalsState>, visitor: Visitor, Path(api_id): Path<String>) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    match form_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "publisher/document.html",
            merge(
                ctx,
                json!({ "values": { "type": "HOWTO", "sourceType": "INLINE", "visibility": "API_LEVEL" } }),
            ),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// The Publisher REST path of one document.
fn document_path(api_id: &str, document_id: &str) -> String {
    format!("{PUBLISHER}/apis/{}/documents/{}", enc(api_id), enc(document_id))
}

/// Back to the API's page, at its documents.
fn back_to_documents(api_id: &str) -> Response {
    see_other(&format!("/publisher/apis/{}#documents", enc(api_id)))
}

/// Adds the document, then shows the API's page at its documents.
async fn create_document(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path(api_id): Path<String>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let path = format!("{PUBLISHER}/apis/{}/documents", enc(&api_id));
    match state.rest().post(visitor.token(), &path, document_body(&form)).await {
        Ok(_) => back_to_documents(&api_id),
        Err(e) if matches!(e.status, 401 | 403 | 404) => failed(&state, &visitor, e),
        Err(e) => refused_form(&state, &visitor, &api_id, None, &form, e).await,
    }
}

/// The form for an existing document, with its current text.
async fn edit_document(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((api_id, document_id)): Path<(String, String)>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let base = document_path(&api_id, &document_id);
    let doc = match state.rest().get(visitor.token(), &base).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &visitor, e),
    };
    let mut values = doc.clone();
    if matches!(doc["sourceType"].as_str(), Some("INLINE" | "MARKDOWN")) {
        match state
            .rest()
            .call_raw(Method::GET, &format!("{base}/content"), visitor.token(), Payload::None)
            .await
        {
            Ok((s, bytes)) if s.is_success() => {
                values["inlineContent"] = json!(String::from_utf8_lossy(&bytes));
            }
            Ok(_) => {}
            Err(e) => return failed(&state, &visitor, e),
        }
    }
    match form_context(&state, &visitor, &api_id).await {
        Ok(ctx) => state.pages().render(
            &visitor,
            "publisher/document.html",
            merge(ctx, json!({ "document": doc, "values": values })),
        ),
        Err(e) => failed(&state, &visitor, e),
    }
}

/// Replaces the document's metadata and text.
async fn update_document(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((api_id, document_id)): Path<(String, String)>,
    form: FormData,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let path = document_path(&api_id, &document_id);
    match state.rest().put(visitor.token(), &path, document_body(&form)).await {
        Ok(_) => back_to_documents(&api_id),
        Err(e) if matches!(e.status, 401 | 403 | 404) => failed(&state, &visitor, e),
        Err(e) => refused_form(&state, &visitor, &api_id, Some(&document_id), &form, e).await,
    }
}

/// The document form again, with what was typed and the REST API's errors.
async fn refused_form(
    state: &PortalsState,
    visitor: &Visitor,
    api_id: &str,
    document_id: Option<&str>,
    form: &FormData,
    e: RestError,
) -> Response {
    let e = conflict_on(e, "name");
    let extra = merge(
        refused(form.values(), &e),
        json!({ "document": document_id.map(|id| json!({ "documentId": id })) }),
    );
    match form_context(state, visitor, api_id).await {
        Ok(ctx) => state.pages().render_status(
            StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_REQUEST),
            visitor,
            "publisher/document.html",
            merge(ctx, extra),
        ),
        Err(e) => failed(state, visitor, e),
    }
}

async fn delete_document(
    State(state): State<PortalsState>,
    visitor: Visitor,
    Path((api_id, document_id)): Path<(String, String)>,
) -> Response {
    if let Err(res) = visitor.require(&state, &[Role::Creator]) {
        return res;
    }
    let path = document_path(&api_id, &document_id);
    match state.rest().delete(visitor.token(), &path).await {
        Ok(_) => back_to_documents(&api_id),
        Err(e) => failed(&state, &visitor, e),
    }
}

fn failed(state: &PortalsState, visitor: &Visitor, e: RestError) -> Response {
    crate::page::failed(state.pages(), visitor, e, "creator")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_document_sends_no_text_and_text_sends_no_link() {
        let form = |source: &str| {
            FormData(vec![
                ("name".into(), "Guide".into()),
                ("type".into(), "HOWTO".into()),
                ("sourceType".into(), source.into()),
                ("sourceUrl".into(), "https://docs.example.com".into()),
                ("inlineContent".into(), "  Hello  ".into()),
                ("visibility".into(), "API_LEVEL".into()),
            ])
        };
        let link = document_body(&form("URL"));
        assert_eq!(link["sourceUrl"], "https://docs.example.com");
        assert!(link["inlineContent"].is_null());
        let text = document_body(&form("MARKDOWN"));
        assert!(text["sourceUrl"].is_null());
        assert_eq!(text["inlineContent"], "  Hello  ", "the text is kept as typed");
        assert!(text["summary"].is_null(), "an empty summary is absent, not empty");
    }
}
