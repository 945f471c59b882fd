//! Answers of mocked APIs (`endpointImplementationType: MOCKED_OAS`, decision 016): the
//! gateway answers from the responses compiled from the API's definition, after the same
//! authentication, subscription, throttling and analytics as a proxied call.
//!
//! The responses are turned into `http` types once, when the API is loaded: a call
//! clones a status, a header value and a `Bytes` body (reference counts, no copying). A
//! client picks a response with `Prefer` (RFC 7240): `code=404`, `example=<name>`, or
//! both; what was applied is named in `Preference-Applied`, and a preference that cannot
//! be met is ignored.

use crate::answer::Answer;
use crate::error::GatewayError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tollgate_model::Api;
use tollgate_model::mock::{MockResponse, OperationMock};

/// `Prefer` (RFC 7240 §2).
const PREFER: HeaderName = HeaderName::from_static("prefer");
/// `Preference-Applied` (RFC 7240 §3).
const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The prepared answers of one operation; the first response is the default one.
#[derive(Debug)]
pub struct MockedOperation {
    responses: Vec<Prepared>,
}

/// One response, ready to answer with.
#[derive(Debug)]
struct Prepared {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
    /// Named examples: name and body.
    examples: Vec<(Box<str>, Bytes)>,
}

impl Prepared {
    fn of(r: &MockResponse) -> Option<Self> {
        Some(Self {
            status: StatusCode::from_u16(r.status).ok()?,
            content_type: r.content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok()),
            body: r.body.clone().map(Bytes::from).unwrap_or_default(),
            examples: r
                .examples
                .iter()
                .map(|e| (e.name.as_str().into(), Bytes::from(e.body.clone())))
                .collect(),
        })
    }
}

/// The prepared answers of each of `api`'s operations, by operation index: the compiled
/// mock of the same verb and path template, `None` for an operation the definition does
/// not describe.
pub fn prepare(api: &Api, mocks: &[OperationMock]) -> Vec<Option<MockedOperation>> {
    api.operations
        .iter()
        .map(|op| {
            let mock = mocks
                .iter()
                .find(|m| m.target == op.target && m.verb.eq_ignore_ascii_case(&op.verb))?;
            let responses: Vec<Prepared> = mock.responses.iter().filter_map(Prepared::of).collect();
            (!responses.is_empty()).then_some(MockedOperation { responses })
        })
        .collect()
}

/// What a request's `Prefer` headers ask of a mock.
#[derive(Debug, Default, PartialEq, Eq)]
struct Preferences<'a> {
    code: Option<u16>,
    example: Option<&'a str>,
}

/// Reads `code` and `example` from every `Prefer` header (`Prefer: code=400,
/// example=bad`; parameters after `;` and other preferences are ignored).
fn preferences(headers: &HeaderMap) -> Preferences<'_> {
    let mut out = Preferences::default();
    for value in headers.get_all(PREFER) {
        let Ok(text) = value.to_str() else { continue };
        for preference in text.split(',') {
            let token = preference.split(';').next().unwrap_or("");
            let Some((name, value)) = token.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim() {
                n if n.eq_ignore_ascii_case("code") => out.code = value.parse().ok().or(out.code),
                n if n.eq_ignore_ascii_case("example") && !value.is_empty() => out.example = Some(value),
                _ => {}
            }
        }
    }
    out
}

/// The answer of a mocked operation to a request with `headers`; 501 when the operation
/// has no mock (the definition does not describe it).
pub(crate) fn answer(operation: Option<&MockedOperation>, headers: &HeaderMap) -> Result<Answer, GatewayError> {
    let operation = operation.ok_or_else(|| {
        GatewayError::NotImplemented(
            "this API is mocked and its OpenAPI definition describes no response for this resource".into(),
        )
    })?;
    let (response, body, applied) = choose(operation, &preferences(headers));
    let mut res = Response::new(Body::from(body.clone()));
    *res.status_mut() = response.status;
    let h = res.headers_mut();
    if let Some(ct) = &response.content_type
        && !body.is_empty()
    {
        h.insert(header::CONTENT_TYPE, ct.clone());
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Some(applied) = applied.and_then(|a| HeaderValue::from_str(&a).ok()) {
        h.insert(PREFERENCE_APPLIED, applied);
    }
    Ok(res.into())
}

/// The response and body the preferences pick, and the `Preference-Applied` value when
/// any was applied. `code` picks the response of that status; `example` a named example
/// of the picked response or, without `code`, of the first response that has one.
fn choose<'m>(op: &'m MockedOperation, asked: &Preferences<'_>) -> (&'m Prepared, &'m Bytes, Option<String>) {
    let by_code = asked
        .code
        .and_then(|code| op.responses.iter().find(|r| r.status.as_u16() == code));
    let example_in = |r: &'m Prepared| {
        asked
            .example
            .and_then(|name| r.examples.iter().find(|(n, _)| &**n == name))
            .map(|(_, body)| (r, body))
    };
    let (response, example) = match by_code {
        Some(r) => (r, example_in(r)),
        None => match op.responses.iter().find_map(example_in) {
            Some((r, body)) => (r, Some((r, body))),
            None => (&op.responses[0], None),
        },
    };
    let applied = match (by_code.map(|r| r.status.as_u16()), example.and(asked.example)) {
        (None, None) => None,
        (Some(code), None) => Some(format!("code={code}")),
        (None, Some(name)) => Some(format!("example={name}")),
        (Some(code), Some(name)) => Some(format!("code={code}, example={name}")),
    };
    let body = example.map_or(&response.body, |(_, body)| body);
    (response, body, applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tollgate_model::mock::compile;

    fn operation() -> MockedOperation {
        let doc = serde_json::json!({"openapi": "3.0.0", "paths": {"/pets": {"get": {"responses": {
            "200": {"content": {"application/json": {"example": [{"id": 1}],
                "examples": {"empty": {"value": []}}}}},
            "400": {"content": {"application/json": {"examples": {
                "bad": {"value": {"why": "bad"}}, "worse": {"value": {"why": "worse"}}}}}},
            "404": {"content": {"text/plain": {"example": "no pets"}}},
            "204": {}
        }}}}});
        let api: Api = serde_json::from_value(serde_json::json!({"name": "P", "context": "/p", "version": "1",
            "operations": [{"target": "/pets", "verb": "GET"}, {"target": "/other", "verb": "GET"}]}))
        .unwrap();
        let mut prepared = prepare(&api, &compile(&doc));
        assert!(prepared[1].is_none(), "an operation the definition does not describe");
        prepared.swap_remove(0).unwrap()
    }

    async fn call(prefer: &[&str]) -> (u16, Option<String>, Option<String>, String) {
        let mut headers = HeaderMap::new();
        for p in prefer {
            headers.append("prefer", p.parse().unwrap());
        }
        let op = operation();
        let res = axum::response::IntoResponse::into_response(answer(Some(&op), &headers).unwrap());
        let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (status, ct, applied) = (
            res.status().as_u16(),
            header("content-type"),
            header("preference-applied"),
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ct, applied, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn prefer_picks_a_status_an_example_or_both_and_says_so() {
        let json = Some("application/json".to_string());
        assert_eq!(call(&[]).await, (200, json.clone(), None, r#"[{"id":1}]"#.into()));
        assert_eq!(
            call(&["code=404"]).await,
            (
                404,
                Some("text/plain".into()),
                Some("code=404".into()),
                "no pets".into()
            )
        );
        assert_eq!(
            call(&["example=empty"]).await,
            (200, json.clone(), Some("example=empty".into()), "[]".into())
        );
        assert_eq!(
            call(&["code=400, example=worse"]).await,
            (
                400,
                json.clone(),
                Some("code=400, example=worse".into()),
                r#"{"why":"worse"}"#.into()
            )
        );
        assert_eq!(
            call(&["example=\"bad\"; x=1"]).await,
            (400, json.clone(), Some("example=bad".into()), r#"{"why":"bad"}"#.into()),
            "an example of another response, found without a code"
        );
        assert_eq!(
            call(&["code=204"]).await,
            (204, None, Some("code=204".into()), String::new())
        );
    }

    #[tokio::test]
    async fn unsatisfiable_or_malformed_preferences_are_ignored() {
        let default = (
            200,
            Some("application/json".to_string()),
            None,
            r#"[{"id":1}]"#.to_string(),
        );
        for prefer in [
            &["code=500"][..],
            &["example=nope"],
            &["code=abc"],
            &["return=minimal", "respond-async"],
            &["code", "example="],
        ] {
            assert_eq!(call(prefer).await, default, "{prefer:?}");
        }
        // A code that exists with an example it lacks: the code alone is applied.
        let (status, _, applied, _) = call(&["code=404", "example=empty"]).await;
        assert_eq!((status, applied.as_deref()), (404, Some("code=404")));
    }

    #[test]
    fn an_operation_without_a_mock_is_not_implemented() {
        assert!(matches!(
            answer(None, &HeaderMap::new()),
            Err(GatewayError::NotImplemented(_))
        ));
    }
}
