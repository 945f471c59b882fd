//! What the request path answers a call with: a response in `http`'s types, or a plain
//! HTTP/1.1 backend's answer whose header lines are kept as they were read, so that the
//! gateway's own HTTP/1.1 loop (`server_http1`) writes them out without building a
//! header map for them and then taking it apart again (decision 007).

use crate::backend_http1::{PassedHead, ResponseBody};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Body as _;

/// The answer to one API call.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A response in `http`'s types: the gateway's own answers (errors, CORS preflights,
    /// the backend JWT's keys) and backends reached through hyper.
    Built(Response),
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

    /// Changes the response's headers with `f`. A backend's kept lines become a header
    /// map first: only calls whose answer the gateway decorates (CORS, rate-limit
    /// headers) pay for one.
    pub(crate) fn with_headers(&mut self, f: impl FnOnce(&mut HeaderMap)) {
        match self {
            Self::Built(res) => f(res.headers_mut()),
            Self::Passed(..) => {
                let mut res = std::mem::replace(self, Self::Built(Response::default())).into_response();
                f(res.headers_mut());
                *self = Self::Built(res);
            }
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

impl From<Response> for Answer {
    fn from(res: Response) -> Self {
        Self::Built(res)
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Built(res) => res,
            Self::Passed(head, body) => Response::from_parts(head.into_parts(), Body::new(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend_http1::passed_answer;
    use axum::http::HeaderValue;
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
    async fn decorating_a_passed_answer_keeps_its_lines_and_replaces_what_it_sets() {
        let (head, body) = passed_answer(ANSWER).await;
        let mut answer = Answer::Passed(head, body);
        answer.with_headers(|headers| {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("https://app"),
            );
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        });
        let Answer::Built(res) = &answer else {
            panic!("a decorated answer is built: {answer:?}");
        };
        assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app");
        let vary: Vec<_> = res.headers().get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["Accept", "Origin"]);
        assert_eq!(res.headers()["x-kept"], "k");
        assert_eq!(answer.content_length(), Some(4));
        assert_eq!(
            answer.into_response().into_body().collect().await.unwrap().to_bytes(),
            "nope"
        );
    }
}
