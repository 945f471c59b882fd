//! Differential: the gateway's HTTP/1 request parsing against `httparse` with the message
//! framing of RFC 9112 §6, on the same bytes.
//!
//! The gateway's side is what a plain-HTTP connection does with the bytes: its own loop
//! (`server_http1`) serves a bodiless HTTP/1.1 request, and hands anything else, with the
//! bytes read so far, to hyper as `tollgate_listener::serve_hyper` (the function the
//! loop calls), whose request and body (chunked or by length) a recording service reads.
//! The reference side parses the head with `httparse` (hyper's header limit of 100) and
//! frames the body as RFC 9112 §6.3 says, chunked bodies with `httparse::parse_chunk_size`.
//!
//! Both must accept with the same meaning (method, target, version, header fields, body
//! bytes) or both refuse. The cases where they differ on purpose are the rules in
//! [`expected`], each with its reason; everything else is a finding.
#![no_main]

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tollgate_fuzz::rfc9112::list;
use tollgate_gateway::fuzzing::{Head, MAX_OWN_HEAD_BYTES, parse_head};

/// Header fields by lowercase name, each with its values in order.
type Fields = BTreeMap<String, Vec<Vec<u8>>>;

/// What a request means.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meaning {
    method: String,
    target: String,
    /// The minor version: HTTP/1.0 or HTTP/1.1.
    minor: u8,
    fields: Fields,
    body: Vec<u8>,
}

/// What a parser made of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted(Meaning),
    Refused(String),
}

/// The names whose first value only the gateway's own loop keeps (it lends them from its
/// buffer to authentication and the backend's `X-Forwarded-Host`): compared by that first
/// value on both sides.
const LENT: [&str; 3] = ["authorization", "host", "apikey"];

fn add_field(fields: &mut Fields, name: &[u8], value: &[u8]) {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let values = fields.entry(name.clone()).or_default();
    if !(LENT.contains(&name.as_str()) && !values.is_empty()) {
        values.push(value.to_vec());
    }
}

// ---- the reference: httparse and RFC 9112 framing ------------------------------------

fn reference(data: &[u8]) -> Outcome {
    let mut lines = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut lines);
    let length = match parsed.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Outcome::Refused("incomplete head".into()),
        Err(e) => return Outcome::Refused(format!("head: {e}")),
    };
    let mut all = Fields::new();
    let mut fields = Fields::new();
    for h in parsed.headers.iter() {
        all.entry(h.name.to_ascii_lowercase())
            .or_default()
            .push(h.value.to_vec());
        add_field(&mut fields, h.name.as_bytes(), h.value);
    }
    let rest = &data[length..];
    let body = if let Some(codings) = all.get("transfer-encoding") {
        // §6.1: in a request chunked must be the final coding, or the length cannot be
        // determined (400). With it, Content-Length means nothing (§6.3), and is left out.
        let codings = list(codings);
        if !codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return Outcome::Refused("transfer codings not ending in chunked".into());
        }
        fields.remove("content-length");
        match dechunk(rest) {
            Ok(body) => body,
            Err(why) => return Outcome::Refused(why),
        }
    } else if let Some(values) = all.get("content-length") {
        // §6.3: a list of one repeated decimal length is that length; anything else is
        // unrecoverable.
        let lengths = list(values);
        let Some(first) = lengths.first() else {
            return Outcome::Refused("empty Content-Length".into());
        };
        // Equal as numbers: hyper takes `0` and `00` as one length (the first line's), and
        // every reader of either line frames the same body.
        let number = |l: &[u8]| {
            Some(l)
                .filter(|l| l.iter().all(u8::is_ascii_digit))
                .and_then(|l| std::str::from_utf8(l).ok()?.parse::<u64>().ok())
        };
        if lengths.iter().any(|l| number(l).is_none() || number(l) != number(first)) {
            return Outcome::Refused("invalid Content-Length".into());
        }
        // One length, however often it was repeated.
        fields.insert("content-length".into(), vec![first.to_vec()]);
        let Some(n) = std::str::from_utf8(first).ok().and_then(|s| s.parse::<u64>().ok()) else {
            return Outcome::Refused("Content-Length out of range".into());
        };
        if (rest.len() as u64) < n {
            return Outcome::Refused("incomplete body".into());
        }
        rest[..n as usize].to_vec()
    } else {
        Vec::new()
    };
    Outcome::Accepted(Meaning {
        method: parsed.method.unwrap_or_default().to_string(),
        target: parsed.path.unwrap_or_default().to_string(),
        minor: parsed.version.unwrap_or_default(),
        fields,
        body,
    })
}

/// The most bytes of chunk extensions a body may carry, and of trailer fields: hyper's
/// limits (16 KiB each), which RFC 9112 leaves to the recipient.
const CHUNK_LIMIT: usize = 16 * 1024;

/// Decodes a chunked request body at the start of `data` as RFC 9112 §7.1 writes it:
/// `1*HEXDIG` (a value that fits 64 bits, any number of digits), optional whitespace, an
/// optional `;` extension, CRLF; the data and CRLF; after the last chunk, trailer field
/// lines up to an empty line, every line ended by CRLF. (Not `httparse::parse_chunk_size`,
/// which is no validator: it reads an empty size line as 0, takes any byte, LF included,
/// in an extension, and refuses more than 16 digits.) Three choices are hyper's, which
/// the RFC leaves open: extensions are not parsed (any bytes but CR and LF, 16 KiB in
/// all), a bare LF inside a trailer line is a byte of it (its fields are then read with
/// `httparse::parse_headers`), and trailers hold at most 100 fields in 16 KiB.
fn dechunk(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut at = 0;
    let mut body = Vec::new();
    let mut extensions = 0;
    let byte = |i: usize| {
        data.get(i)
            .copied()
            .ok_or_else(|| "incomplete chunked body".to_string())
    };
    loop {
        let mut size: u64 = 0;
        let mut digits = 0;
        while let Some(d) = data.get(at).and_then(|b| (*b as char).to_digit(16)) {
            size = size
                .checked_mul(16)
                .and_then(|s| s.checked_add(u64::from(d)))
                .ok_or("chunk size overflows")?;
            digits += 1;
            at += 1;
        }
        if digits == 0 {
            return Err("no chunk size".into());
        }
        while matches!(byte(at)?, b' ' | b'\t') {
            at += 1;
        }
        if byte(at)? == b';' {
            at += 1;
            while !matches!(byte(at)?, b'\r' | b'\n') {
                extensions += 1;
                if extensions >= CHUNK_LIMIT {
                    return Err("chunk extensions over the limit".into());
                }
                at += 1;
            }
        }
        if byte(at)? != b'\r' || byte(at + 1)? != b'\n' {
            return Err("chunk-size line not ended by CRLF".into());
        }
        at += 2;
        if size == 0 {
            break;
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .filter(|e| *e <= data.len())
            .ok_or("incomplete chunk")?;
        body.extend_from_slice(&data[at..end]);
        at = end;
        if byte(at)? != b'\r' || byte(at + 1)? != b'\n' {
            return Err("chunk data not followed by CRLF".into());
        }
        at += 2;
    }
    // Trailer lines, each ended by CRLF, up to an empty line.
    let start = at;
    let mut count = 0;
    loop {
        if byte(at)? == b'\r' {
            if byte(at + 1)? != b'\n' {
                return Err("a lone CR".into());
            }
            break;
        }
        loop {
            let b = byte(at)?;
            at += 1;
            if b == b'\r' {
                if byte(at)? != b'\n' {
                    return Err("a lone CR".into());
                }
                at += 1;
                break;
            }
        }
        count += 1;
        if count > 100 || at - start > CHUNK_LIMIT {
            return Err("trailers over the limit".into());
        }
    }
    if count > 0 {
        let section = &data[start..at + 2];
        let mut fields = vec![httparse::EMPTY_HEADER; count];
        match httparse::parse_headers(section, &mut fields) {
            Ok(httparse::Status::Complete((_, fields))) => {
                if fields.iter().any(|f| {
                    http::HeaderName::from_bytes(f.name.as_bytes()).is_err()
                        || http::HeaderValue::from_bytes(f.value).is_err()
                }) {
                    return Err("a trailer field http cannot hold".into());
                }
            }
            other => return Err(format!("trailers: {other:?}")),
        }
    }
    Ok(body)
}

// ---- the gateway: its own loop, then hyper as the loop hands over --------------------

fn gateway(data: &[u8]) -> Outcome {
    let mut request = Request::new(Body::empty());
    match parse_head(data, &mut request) {
        Head::Served {
            authorization,
            host,
            apikey,
            ..
        } => {
            let mut fields = Fields::new();
            for (name, value) in request.headers() {
                add_field(&mut fields, name.as_str().as_bytes(), value.as_bytes());
            }
            for (name, range) in LENT.iter().zip([authorization, host, apikey]) {
                if let Some(range) = range {
                    add_field(&mut fields, name.as_bytes(), &data[range]);
                }
            }
            Outcome::Accepted(Meaning {
                method: request.method().to_string(),
                target: request.uri().to_string(),
                minor: 1,
                fields,
                body: Vec::new(),
            })
        }
        // At the end of the bytes the loop closes the connection, unanswered.
        Head::Partial if data.len() <= MAX_OWN_HEAD_BYTES => Outcome::Refused("incomplete head".into()),
        Head::Partial | Head::NotServed => tollgate_fuzz::block_on(hyper(data)),
    }
}

/// What the recording service saw of the first request.
#[derive(Default)]
struct Seen {
    head: Option<(String, String, u8, Fields)>,
    body: Option<Result<Vec<u8>, String>>,
}

async fn hyper(data: &[u8]) -> Outcome {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(tokio::sync::Notify::new());
    let service = {
        let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
            async move {
                let first = seen.lock().map(|s| s.head.is_none()).unwrap_or(false);
                let (parts, body) = req.into_parts();
                if first {
                    let mut fields = Fields::new();
                    for (name, value) in &parts.headers {
                        add_field(&mut fields, name.as_str().as_bytes(), value.as_bytes());
                    }
                    let minor = match parts.version {
                        http::Version::HTTP_10 => 0,
                        http::Version::HTTP_11 => 1,
                        _ => 9,
                    };
                    if let Ok(mut s) = seen.lock() {
                        s.head = Some((parts.method.to_string(), parts.uri.to_string(), minor, fields));
                    }
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes().to_vec())
                        .map_err(|e| e.to_string());
                    if let Ok(mut s) = seen.lock() {
                        s.body = Some(body);
                    }
                    done.notify_one();
                }
                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::new())))
            }
        })
    };
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let shutdown = tokio_util::sync::CancellationToken::new();
    // The head limit is the gateway's default (`gateway.max_request_header_bytes`).
    let serve = tollgate_listener::serve_hyper(server, service, &shutdown, 64 * 1024);
    // The client sends the bytes and keeps the connection open until the first request
    // has been read to its end, or nothing more happens (the runtime's clock is paused:
    // the timeout passes as soon as every task waits).
    let client = async {
        let _ = client.write_all(data).await;
        tokio::select! {
            () = done.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let _ = client.shutdown().await;
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer).await;
        answer
    };
    let ((), answer) = tokio::join!(serve, client);
    let seen = seen.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    match seen {
        Seen {
            head: Some((method, target, minor, fields)),
            body: Some(Ok(body)),
        } => Outcome::Accepted(Meaning {
            method,
            target,
            minor,
            fields,
            body,
        }),
        Seen { head: Some(_), body } => Outcome::Refused(format!("body: {body:?}")),
        Seen { head: None, .. } => Outcome::Refused(format!(
            "hyper answered {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        )),
    }
}

// ---- where the two differ on purpose ---------------------------------------------------

/// What the gateway should make of bytes the reference reads as `reference`: the same
/// (`Ok`, the meaning put in the form hyper gives it), or a refusal a documented rule
/// calls for (`Err`, the rule). Each rule is a place where RFC 9110/9112 allow both
/// readings, or where the gateway's types cannot hold what httparse takes.
fn expected(data: &[u8], reference: Outcome) -> Result<Outcome, &'static str> {
    let Outcome::Accepted(mut meaning) = reference else {
        return Ok(reference);
    };
    // Rule 1: a target that `http::Uri` cannot hold (bytes outside RFC 3986's set, such as
    // non-ASCII, `"`, `{` or `}`) is refused with 400; httparse takes any visible byte. A
    // target it holds is compared in the form it gives (the same URI: a lower-case
    // scheme, `/` for an empty path, no fragment).
    match http::Uri::try_from(meaning.target.as_str()) {
        Ok(uri) => meaning.target = uri.to_string(),
        Err(_) => return Err("1: the target is not a URI http::Uri holds"),
    }
    // Rule 2: a field value `http::HeaderValue` refuses (a control byte other than tab)
    // cannot be held either: refused with 400.
    if meaning
        .fields
        .values()
        .flatten()
        .any(|v| http::HeaderValue::from_bytes(v).is_err())
    {
        return Err("2: a field value http::HeaderValue refuses");
    }
    // The head's field lines in order, as hyper reads them.
    let mut lines = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut lines);
    let _ = parsed.parse(data);
    let mut saw_te = false;
    let mut last_te: Option<&[u8]> = None;
    let mut first_length: Option<Option<u64>> = None;
    for line in parsed.headers.iter() {
        if line.name.eq_ignore_ascii_case("transfer-encoding") {
            saw_te = true;
            last_te = Some(line.value);
        } else if line.name.eq_ignore_ascii_case("content-length") && !saw_te {
            if line.value.is_empty() || !line.value.iter().all(u8::is_ascii_digit) {
                // Rule 3: each Content-Length line before any Transfer-Encoding must be one
                // decimal number; a list of equal lengths (`5, 5`), which RFC 9110 §8.6 lets
                // a recipient either take as one or refuse, is refused with 400.
                return Err("3: a Content-Length line that is not one number");
            }
            // ... and those lines must agree, even when a Transfer-Encoding follows and
            // would make them meaningless (hyper refuses differing lengths as it reads them).
            let n = std::str::from_utf8(line.value).ok().and_then(|v| v.parse::<u64>().ok());
            if *first_length.get_or_insert(n) != n {
                return Err("3: Content-Length lines that differ");
            }
        }
    }
    if let Some(last) = last_te {
        // Rule 4: Transfer-Encoding in an HTTP/1.0 request is refused with 400 (RFC 9112
        // §6.1: its framing is faulty).
        if meaning.minor == 0 {
            return Err("4: Transfer-Encoding in HTTP/1.0");
        }
        // Rule 5: whether the body is chunked is decided by the last Transfer-Encoding
        // line alone, its last element taken as it is: a last line that is empty, ends in
        // an empty element or is not visible ASCII is refused with 400, where RFC 9110
        // §5.6.1 would skip the empty elements (the stricter reading is the safe one).
        let chunked = std::str::from_utf8(last)
            .ok()
            .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        if !chunked {
            return Err("5: the last Transfer-Encoding line does not end in chunked");
        }
    }
    Ok(Outcome::Accepted(meaning))
}

fuzz_target!(|data: &[u8]| {
    let reference = reference(data);
    let gateway = gateway(data);
    match (expected(data, reference.clone()), &gateway) {
        (Ok(Outcome::Accepted(want)), Outcome::Accepted(got)) => {
            assert_eq!(&want, got, "the two read different requests")
        }
        (Ok(Outcome::Refused(_)), Outcome::Refused(_)) | (Err(_), Outcome::Refused(_)) => {}
        (Ok(want), _) => panic!("reference {reference:?}\nexpected {want:?}\ngateway {gateway:?}"),
        (Err(rule), Outcome::Accepted(got)) => panic!("rule {rule} refuses, yet the gateway accepted {got:?}"),
    }
});
