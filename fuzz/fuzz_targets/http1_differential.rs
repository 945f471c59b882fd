//! Differential: the gateway's HTTP/1 request parsing against `httparse` with the message
//! framing of RFC 9112 §6, on the same bytes.
//!
//! The gateway's side is what a plain-HTTP connection does with the bytes: its own loop
//! (`server_http1`) serves a bodiless HTTP/1.1 request, and hands anything else, with the
//! bytes read so far, to hyper as `tollgate_http::listener::serve_hyper` (the function the
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
use tollgate_fuzz::rfc9112::{dechunk, list};
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
        // §6.1: chunked must be the final coding, and only once; anything else in a
        // request is answered 400 (or 501 for a coding not understood).
        let codings = list(codings);
        let chunked = codings.iter().filter(|c| c.eq_ignore_ascii_case(b"chunked")).count();
        if chunked != 1 || !codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
            return Outcome::Refused("transfer codings not ending in one chunked".into());
        }
        match dechunk(rest) {
            Ok((body, _)) => body,
            Err(why) => return Outcome::Refused(why),
        }
    } else if let Some(values) = all.get("content-length") {
        // §6.3: a list of one repeated decimal length is that length; anything else is
        // unrecoverable.
        let lengths = list(values);
        let Some(first) = lengths.first() else {
            return Outcome::Refused("empty Content-Length".into());
        };
        if lengths.iter().any(|l| l != first || !l.iter().all(u8::is_ascii_digit)) {
            return Outcome::Refused("invalid Content-Length".into());
        }
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
    let serve = tollgate_http::listener::serve_hyper(server, service, &shutdown);
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

/// What the gateway should do with bytes the reference reads as `reference`: the same,
/// unless a documented rule says otherwise (`Err`: the gateway refuses, with the rule).
fn expected(data: &[u8], reference: &Outcome) -> Result<(), &'static str> {
    let Outcome::Accepted(meaning) = reference else {
        return Ok(());
    };
    let _ = data;
    // Rule 1: HTTP/2's preface is answered as HTTP/2 (hyper's auto builder), which
    // httparse does not read; `PRI` requests are refused as HTTP/1.
    if meaning.method == "PRI" {
        return Err("PRI is HTTP/2's preface");
    }
    // Rule 2: a target that `http::Uri` cannot hold (bytes outside RFC 3986's set, such
    // as non-ASCII or `"`, `{`, `}`) is refused with 400; httparse takes any visible byte.
    if http::Uri::try_from(meaning.target.as_str()).is_err() {
        return Err("the target is not a URI http::Uri holds");
    }
    // Rule 3: header values that `http::HeaderValue` refuses cannot be held either.
    if meaning
        .fields
        .values()
        .flatten()
        .any(|v| http::HeaderValue::from_bytes(v).is_err())
    {
        return Err("a header value http::HeaderValue refuses");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let reference = reference(data);
    let gateway = gateway(data);
    match (expected(data, &reference), &gateway) {
        (Ok(()), _) => match (&reference, &gateway) {
            (Outcome::Accepted(r), Outcome::Accepted(g)) => assert_eq!(r, g, "the two read different requests"),
            (Outcome::Refused(_), Outcome::Refused(_)) => {}
            _ => panic!("reference {reference:?}\ngateway {gateway:?}"),
        },
        // A rule says the gateway refuses what the reference accepts.
        (Err(rule), Outcome::Refused(_)) => {
            let _ = rule;
        }
        (Err(rule), Outcome::Accepted(g)) => panic!("refused by rule ({rule}), yet the gateway accepted {g:?}"),
    }
});
