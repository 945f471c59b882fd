//! What the request path answers a call with: a response in `http`'s types, or a plain
//! HTTP/1.1 backend's answer whose header lines are kept as they were read, so that the
//! gateway's own HTTP/1.1 loop (`server_http1`) writes them out without building a
//! header map for them and then taking it apart again (decision 007).

use crate::backend_http1::{PassedHead, ResponseBody};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;

/// The answer to one API call.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response in `http`'s types: the gateway's own answers (errors, CORS preflights,
    /// the backend JWT's keys) and backends reached through hyper. Boxed, so that the
    /// answer every layer of the request path hands back is the size of a passed one.
    Built(Box<Response>),
    /// A plain HTTP/1.1 backend's answer, its body read from the backend as it is sent.
    Passed(PassedHead, ResponseBody),
}

impl Answer {
    /// The response's status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Built(res) => res.status(),
            Self::Passed(head, _) => head.status,
        }
    }

    /// The body's declared length (`Content-Length`), when it has one.
    pub(crate) fn content_length(&self) -> Option<u64> {
        match self {
            Self::Built(res) => res
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            Self::Passed(head, body) => head.length.or_else(|| body.size_hint().exact()),
        }
    }
}

/// What the gateway sets headers of its own on (CORS, rate-limit headers): an `http`
/// header map, or an answer whose backend lines are kept as read, which then stays
/// without a map (building one per call cost more than the rest of the call).
pub(crate) trait SetHeaders {
    /// Sets each `name` to its `value`, replacing the headers of that name.
    fn set(&mut self, headers: &[(HeaderName, &[u8])]);
    /// Adds a `name` header after those of that name.
    fn add(&mut self, name: HeaderName, value: &[u8]);
}

impl SetHeaders for HeaderMap {
    fn set(&mut self, headers: &[(HeaderName, &[u8])]) {
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                self.insert(name.clone(), value);
            }
        }
    }

    fn add(&mut self, name: HeaderName, value: &[u8]) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            self.append(name, value);
        }
    }
}

impl SetHeaders for Answer {
    fn set(&mut self, headers: &[(HeaderName, &[u8])]) {
        match self {
            Self::Built(res) => res.headers_mut().set(headers),
            Self::Passed(head, _) => head.set(headers),
        }
    }

    fn add(&mut self, name: HeaderName, value: &[u8]) {
        match self {
            Self::Built(res) => res.headers_mut().add(name, value),
            Self::Passed(head, _) => head.add(name.as_str(), value),
        }
    }
}

impl From<Response> for Answer {
    fn from(res: Response) -> Self {
        Self::Built(Box::new(res))
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Built(res) => *res,
            Self::Passed(head, body) => Response::from_parts(head.into_parts(), Body::new(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend_http1::passed_answer;
    use axum::http::header;
    use http_body_util::BodyExt;

    const ANSWER: &[u8] = b"HTTP/1.1 404 Not Found\r\nAccess-Control-Allow-Origin: *\r\nVary: Accept\r\n\
        Connection: keep-alive\r\nContent-Length: 4\r\nX-Kept: k\r\n\r\nnope";

    #[tokio::test]
    async fn a_passed_answer_tells_its_status_and_length_without_a_header_map() {
        let (head, body) = passed_answer(ANSWER).await;
        let answer = Answer::Passed(head, body);
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        assert_eq!(answer.content_length(), Some(4));
        let res = answer.into_response();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()["x-kept"], "k");
        assert!(
            !res.headers().contains_key(header::CONNECTION),
            "hop-by-hop headers stay behind"
        );
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "nope");
    }

    #[tokio::test]
    async fn headers_set_on_a_passed_answer_replace_its_lines_of_that_name_and_build_no_map() {
        let (head, body) = passed_answer(ANSWER).await;
        let mut answer = Answer::Passed(head, body);
        answer.set(&[(header::ACCESS_CONTROL_ALLOW_ORIGIN, b"https://app")]);
        answer.add(header::VARY, b"Origin");
        crate::throttle::rate_limit_headers(&mut answer, 100, 7, 30);
        // Set again: the gateway's own earlier line is replaced too.
        crate::throttle::rate_limit_headers(&mut answer, 100, 6, 29);
        let Answer::Passed(head, _) = &answer else {
            panic!("setting headers kept the backend's lines as they were: {answer:?}");
        };
        assert_eq!(
            String::from_utf8_lossy(&head.lines),
            "Vary: Accept\r\nContent-Length: 4\r\nX-Kept: k\r\naccess-control-allow-origin: https://app\r\n\
             vary: Origin\r\nx-ratelimit-limit: 100\r\nx-ratelimit-remaining: 6\r\nx-ratelimit-reset: 29\r\n"
        );
        assert_eq!(answer.content_length(), Some(4));
        let res = answer.into_response();
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app");
        let vary: Vec<_> = res.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept", "Origin"]);
        assert_eq!(res.headers()["x-ratelimit-remaining"], "6");
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "nope");
    }

    #[test]
    fn headers_set_on_a_built_answer_replace_those_of_that_name() {
        let mut answer = Answer::from(
            axum::http::Response::builder()
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
                .header(header::VARY, "Accept")
                .body(Body::empty())
                .unwrap(),
        );
        crate::cors::decorate(
            &tollgate_model::api::CorsConfiguration {
                cors_configuration_enabled: true,
                access_control_allow_origins: vec!["https://app".into()],
                access_control_allow_credentials: true,
                access_control_allow_headers: vec![],
                access_control_allow_methods: vec![],
            },
            "https://app",
            &mut answer,
        );
        let res = answer.into_response();
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app");
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let vary: Vec<_> = res.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept", "Origin"]);
    }
}
