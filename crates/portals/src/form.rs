//! Reading a submitted portal form, and what a form page shows after a refused submit:
//! the values the user typed (never lost) and the REST API's errors next to each field.

use crate::rest::RestError;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A submitted `application/x-www-form-urlencoded` form, fields in order (a field may
/// repeat, as checkboxes do).
#[derive(Clone, Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of `name` exactly as sent, untrimmed (passwords, secrets).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The values as a JSON object for re-showing the form (the CSRF field left out).
    pub fn values(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            if k != "csrf" && !m.contains_key(k) {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        }
        Value::Object(m)
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state)
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response())?;
        serde_urlencoded::from_bytes(&bytes)
            .map(FormData)
            .map_err(|_| (StatusCode::BAD_REQUEST, "the form could not be read").into_response())
    }
}

/// The template context of a form after a refused submit: `values`, `error` (the whole
/// form's message) and `errors` (by field).
pub fn refused(values: Value, error: &RestError) -> Value {
    json!({ "values": values, "error": error.message, "errors": error.fields })
}

/// A conflict (409) names no field in the reference envelope; the page shows it next to
/// `field` (the name that is taken).
pub fn conflict_on(mut e: RestError, field: &str) -> RestError {
    if e.status == 409 && e.fields.is_empty() {
        e.fields.insert(field.to_string(), e.message.clone());
    }
    e
}

/// A whole-number field: `None` when empty, else the number, or a problem naming the
/// field with `message` (the REST API could only say "invalid type" for the body).
pub fn whole_number(form: &FormData, name: &str, message: &str) -> Result<Option<i64>, RestError> {
    match form.get(name) {
        "" => Ok(None),
        v => v.parse::<i64>().map(Some).map_err(|_| problem(name, message)),
    }
}

/// A form-level problem found before calling the REST API (say, a missing file).
pub fn problem(field: &str, message: &str) -> RestError {
    RestError {
        status: 400,
        message: message.to_string(),
        fields: [(field.to_string(), message.to_string())].into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_what_was_typed_but_not_the_csrf_token() {
        let f = FormData(vec![
            ("csrf".into(), "t".into()),
            ("name".into(), " My app ".into()),
            ("tag".into(), "a".into()),
            ("tag".into(), "b".into()),
        ]);
        assert_eq!(f.get("name"), "My app");
        assert_eq!(f.all("tag"), vec!["a", "b"]);
        let v = f.values();
        assert!(v.get("csrf").is_none());
        assert_eq!(v["name"], " My app ");
    }
}
