//! The request-head parser of the gateway's own HTTP/1.1 loop (`server_http1`): any bytes
//! a client sends. A head it serves is consistent with the bytes (its length ends at the
//! blank line, the lent `Authorization`/`Host`/`apikey` values lie inside it, nothing that
//! frames a body or switches protocols is served here), parsing is deterministic and a
//! strict prefix of a served head is never served.
#![no_main]

use axum::body::Body;
use http::{Request, header};
use libfuzzer_sys::fuzz_target;
use tollgate_gateway::fuzzing::{Head, MAX_OWN_HEAD_BYTES, parse_head};

fn lists_close(value: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
}

fuzz_target!(|data: &[u8]| {
    let mut request = Request::new(Body::empty());
    match parse_head(data, &mut request) {
        Head::Served {
            close,
            length,
            authorization,
            host,
            apikey,
        } => {
            assert!(length <= data.len() && length <= MAX_OWN_HEAD_BYTES.max(data.len()));
            let head = &data[..length];
            assert!(
                head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
                "a head ends with a blank line: {head:?}"
            );
            for range in [&authorization, &host, &apikey].into_iter().flatten() {
                assert!(range.end <= length, "a lent value lies inside the head");
                assert!(!data[range.clone()].iter().any(|b| *b == b'\r' || *b == b'\n'));
            }
            // Empty lines before the request line are skipped (RFC 9112 §2.2).
            let line = &head[head.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(0)..];
            assert!(
                line.starts_with(request.method().as_str().as_bytes()),
                "the method is the request line's first word"
            );
            assert!(request.uri().path().starts_with('/'), "origin form only");
            assert_eq!(request.version(), http::Version::HTTP_11);
            let headers = request.headers();
            for name in [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT] {
                assert!(!headers.contains_key(&name), "{name} is hyper's to serve");
            }
            for value in headers.get_all(header::CONTENT_LENGTH) {
                assert!(
                    !value.is_empty() && value.as_bytes().iter().all(|b| *b == b'0'),
                    "only an empty body is served here: {value:?}"
                );
            }
            for name in ["authorization", "host", "apikey"] {
                assert!(!headers.contains_key(name), "{name} is lent, not in the map");
            }
            let asked = headers
                .get_all(header::CONNECTION)
                .iter()
                .any(|v| lists_close(v.as_bytes()));
            assert_eq!(close, asked, "Connection: close noticed exactly when sent");

            // The same bytes parse the same; the head alone is the same request; any
            // strict prefix of it is not yet a request.
            let mut again = Request::new(Body::empty());
            match parse_head(head, &mut again) {
                Head::Served { length: l, .. } => assert_eq!(l, length),
                other => panic!("the head alone is {other:?}"),
            }
            assert_eq!(again.method(), request.method());
            assert_eq!(again.uri(), request.uri());
            assert_eq!(again.headers(), request.headers());
            let mut shorter = Request::new(Body::empty());
            assert!(
                !matches!(parse_head(&head[..length - 1], &mut shorter), Head::Served { .. }),
                "a strict prefix of a head was served"
            );
        }
        Head::Partial => {
            let mut again = Request::new(Body::empty());
            let cut = data.len() / 2;
            assert!(
                !matches!(parse_head(&data[..cut], &mut again), Head::Served { .. }),
                "a prefix of an incomplete head was served"
            );
        }
        Head::NotServed => {}
    }
});
