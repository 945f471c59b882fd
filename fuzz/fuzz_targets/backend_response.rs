//! The gateway's reader of backend responses (`backend_http1`): whatever a backend sends
//! back to a `GET` or `HEAD`, arriving in pieces the fuzzer chooses, on a real socket.
//!
//! The answer read does not depend on how the bytes were cut into reads; the header lines
//! passed on are well-formed, hold no hop-by-hop field and convert to `http` headers one
//! for one; a passed `Content-Length` is the body's length; and status and body are what
//! `httparse` with RFC 9112 §6.3 framing reads from the same bytes.
#![no_main]

use arbitrary::Arbitrary;
use http::Method;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;
use tollgate_fuzz::rfc9112::{dechunk, list};
use tollgate_gateway::fuzzing::{BackendAnswer, call_backend};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    head: bool,
    cuts: Vec<u16>,
    response: &'a [u8],
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The backend sends `pieces` (a read's worth each) and closes its side.
async fn exchange(method: Method, pieces: &[&[u8]]) -> Result<BackendAnswer, String> {
    let (near, mut far) = tollgate_fuzz::socket_pair();
    let backend = async {
        for piece in pieces {
            if far.write_all(piece).await.is_err() {
                break;
            }
            // Let the gateway read this piece on its own.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        }
        let _ = far.shutdown().await;
        far
    };
    let (answer, _far) = tokio::join!(call_backend(near, method), backend);
    answer
}

/// What the response means by RFC 9112: its final status and body.
fn reference(head_request: bool, data: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut data = data;
    loop {
        let mut lines = [httparse::EMPTY_HEADER; 100];
        let mut parsed = httparse::Response::new(&mut lines);
        let length = match parsed.parse(data) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Err("incomplete head".into()),
            Err(e) => return Err(format!("head: {e}")),
        };
        let status = parsed.code.unwrap_or_default();
        if !(100..=999).contains(&status) {
            return Err("status".into());
        }
        if status == 101 {
            return Err("101 unasked".into());
        }
        if status < 200 {
            data = &data[length..];
            continue;
        }
        let field = |name: &str| -> Vec<Vec<u8>> {
            parsed
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value.to_vec())
                .collect()
        };
        let rest = &data[length..];
        if head_request || status == 204 || status == 304 {
            return Ok((status, Vec::new()));
        }
        let codings = field("transfer-encoding");
        if !codings.is_empty() {
            let codings = list(&codings);
            // §6.3: chunked last: chunked; otherwise the body ends with the connection.
            return if codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
                dechunk(rest).map(|(body, _)| (status, body))
            } else {
                Ok((status, rest.to_vec()))
            };
        }
        let lengths = field("content-length");
        if lengths.is_empty() {
            return Ok((status, rest.to_vec()));
        }
        let lengths: Vec<&[u8]> = lengths.iter().map(|v| v.trim_ascii()).collect();
        if lengths.iter().any(|l| *l != lengths[0]) {
            return Err("differing lengths".into());
        }
        let n = std::str::from_utf8(lengths[0])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or("invalid length")?;
        if (rest.len() as u64) < n {
            return Err("body shorter than its length".into());
        }
        return Ok((status, rest[..n as usize].to_vec()));
    }
}

fn check(head_request: bool, answer: &BackendAnswer) {
    assert!(answer.status >= 200, "interim answers are skipped: {}", answer.status);
    let lines = &answer.lines;
    assert!(lines.is_empty() || lines.ends_with(b"\r\n"));
    let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
    text.extend_from_slice(lines);
    text.extend_from_slice(b"\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 256];
    let mut parsed = httparse::Response::new(&mut fields);
    match parsed.parse(&text) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, text.len(), "the lines are one head"),
        other => panic!(
            "the passed lines do not parse: {other:?} {:?}",
            String::from_utf8_lossy(lines)
        ),
    }
    for h in parsed.headers.iter() {
        assert!(
            !HOP_BY_HOP.iter().any(|n| h.name.eq_ignore_ascii_case(n)),
            "hop-by-hop {} passed on",
            h.name
        );
    }
    assert_eq!(
        answer.headers.len(),
        parsed.headers.len(),
        "every line converts to an http header"
    );
    let lengths = parsed
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .count();
    // A length passed on where it frames a body is the body's own: one the gateway
    // frames it by (a HEAD, 204 or 304 answer's lengths frame nothing and go on as sent).
    let frames_body = !head_request && answer.status != 204 && answer.status != 304;
    assert!(
        lengths == 0 || !frames_body || answer.length.is_some(),
        "a Content-Length passed on beside a body framed otherwise"
    );
    if let (Some(n), Ok(body)) = (answer.length, &answer.body)
        && !head_request
        && answer.status != 204
        && answer.status != 304
    {
        assert_eq!(body.len() as u64, n, "the passed Content-Length is the body's");
    }
}

fuzz_target!(|input: Input<'_>| {
    let method = if input.head { Method::HEAD } else { Method::GET };
    let whole = tollgate_fuzz::block_on(exchange(method.clone(), &[input.response]));
    let pieces = tollgate_fuzz::pieces(input.response, &input.cuts);
    let cut = tollgate_fuzz::block_on(exchange(method, &pieces));
    match (&whole, &cut) {
        (Ok(a), Ok(b)) => {
            assert_eq!(
                (a.status, &a.lines, a.has_date, a.length, a.body.as_ref().ok()),
                (b.status, &b.lines, b.has_date, b.length, b.body.as_ref().ok()),
                "the answer depends on how it was cut"
            );
            check(input.head, a);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?}\ncut {cut:?}"),
    }
    let expected = reference(input.head, input.response);
    match (&whole, &expected) {
        (Ok(a), Ok((status, body))) => {
            assert_eq!(a.status, *status);
            assert_eq!(a.body.as_ref(), Ok(body), "the body differs from RFC 9112's reading");
        }
        (Ok(a), Err(why)) => assert!(a.body.is_err(), "read {a:?}, which RFC 9112 refuses: {why}"),
        (Err(e), Ok(_)) => panic!("refused ({e}) what RFC 9112 reads: {expected:?}"),
        (Err(_), Err(_)) => {}
    }
});
