//! Fields a client sent that Tollgate does not know: ignored, and named in a `Warning`
//! header (RFC 7234 §5.5, code 299) on the response, so that payloads written for the
//! reference system work and typos stay visible. `?strict=true` makes them a 400.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};

/// Where body extractors record the unknown fields of the current request.
#[derive(Clone, Default, Debug)]
pub struct UnknownFields(Arc<Mutex<Vec<String>>>);

impl UnknownFields {
    /// Records more unknown field paths.
    pub fn add(&self, fields: Vec<String>) {
        if let Ok(mut v) = self.0.lock() {
            v.extend(fields);
        }
    }

    fn take(&self) -> Vec<String> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

/// Whether the request asked for `strict=true`.
pub fn is_strict(uri: &axum::http::Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv.eq_ignore_ascii_case("strict=true")))
}

/// Middleware: gives each request an [`UnknownFields`] slot and turns what it collected
/// into a `Warning: 299 tollgate "unknown fields ignored: …"` header.
pub async fn warn_unknown_fields(mut request: Request, next: Next) -> Response {
    let slot = UnknownFields::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let fields = slot.take();
    if !fields.is_empty() {
        let text = format!(
            "299 tollgate \"unknown fields ignored: {}\"",
            fields.join(", ").replace(['"', '\\'], "")
        );
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(axum::http::header::WARNING, v);
        }
    }
    response
}

/// Reports fields a body extractor did not know: a 400 under `strict`, else recorded in
/// `slot` (when the request has one) for the `Warning` header. `prefix` names where in
/// the request the fields sit (`additionalProperties.`), empty for a JSON body.
pub fn report(
    slot: Option<&UnknownFields>,
    strict: bool,
    prefix: &str,
    unknown: Vec<String>,
) -> Result<(), tollgate_model::Error> {
    if unknown.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unknown.into_iter().map(|f| format!("{prefix}{f}")).collect();
    if strict {
        return Err(tollgate_model::Error::Validation(
            named
                .into_iter()
                .map(|f| tollgate_model::FieldError::new(f, "unknown field (strict=true)"))
                .collect(),
        ));
    }
    if let Some(slot) = slot {
        slot.add(named);
    }
    Ok(())
}
