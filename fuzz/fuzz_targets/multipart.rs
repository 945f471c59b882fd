//! Multipart form data as the REST APIs accept it (`POST /apis/import-openapi` and
//! `validate-openapi`, read by the Publisher's form reader through axum's `Multipart`;
//! document uploads and the portal's import use the same parser): any `Content-Type` and
//! body. Nothing panics; a refusal is a 400 (or 413) with the JSON error envelope's code;
//! and a form encoded as RFC 7578 says reads back part for part.
#![no_main]

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::extract::FromRequest;
use tollgate_http::ApiMultipart;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use tollgate_publisher::fuzzing::read_multipart;

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// A body as sent, with a boundary or a whole `Content-Type` of the fuzzer's.
    Raw {
        content_type: ContentType<'a>,
        body: &'a [u8],
    },
    /// Parts encoded here, read back.
    Parts {
        boundary: u64,
        parts: Vec<(&'a str, Option<&'a str>, &'a [u8])>,
    },
}

#[derive(Arbitrary, Debug)]
enum ContentType<'a> {
    Boundary(&'a str),
    Whole(&'a str),
}

fn read(content_type: &[u8], body: Vec<u8>) -> Result<HashMap<String, Vec<u8>>, u16> {
    let request = http::Request::builder()
        .method("POST")
        .uri("/apis/import-openapi")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Body::from(body));
    let Ok(request) = request else { return Err(0) };
    tollgate_fuzz::block_on(async {
        let form = match ApiMultipart::from_request(request, &()).await {
            Ok(ApiMultipart(form)) => form,
            Err(rejection) => {
                // In the JSON error envelope, naming the header.
                assert_eq!(rejection.0.status(), 400, "a rejected form");
                assert_eq!(rejection.0.field_errors()[0].field, "Content-Type");
                let response = axum::response::IntoResponse::into_response(rejection);
                assert_eq!(response.status(), http::StatusCode::BAD_REQUEST, "a rejected form");
                assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/json");
                return Err(400);
            }
        };
        read_multipart(form).await.map_err(|e| {
            assert!(
                matches!(e.status(), 400 | 413),
                "a malformed form answers {}",
                e.status()
            );
            e.status()
        })
    })
}

/// A name or file name that goes into a quoted-string as it is.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fuzz_target!(|input: Input<'_>| match input {
    Input::Raw { content_type, body } => {
        let content_type = match content_type {
            ContentType::Boundary(b) => format!("multipart/form-data; boundary={b}"),
            ContentType::Whole(t) => t.to_string(),
        };
        let _ = read(content_type.as_bytes(), body.to_vec());
    }
    Input::Parts { boundary, parts } => {
        let boundary = format!("fuzz{boundary:016x}");
        let mut body = Vec::new();
        let mut want = HashMap::new();
        for (name, file_name, bytes) in parts {
            if !plain(name) || file_name.is_some_and(|f| !plain(f)) {
                continue;
            }
            if bytes.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
                continue;
            }
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"").as_bytes());
            if let Some(f) = file_name {
                body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
            want.insert(name.to_string(), bytes.to_vec());
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let got = read(format!("multipart/form-data; boundary={boundary}").as_bytes(), body);
        assert_eq!(got, Ok(want), "the form read back differs");
    }
});
