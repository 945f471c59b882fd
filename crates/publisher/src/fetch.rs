//! Fetching OpenAPI documents by URL, guarded: http(s) only, a timeout, a size cap, and
//! no private, loopback or link-local destinations unless the operator allows them. The
//! address that passed the check is the one connected to (no DNS rebinding).

use std::time::Duration;
use tollgate_model::{Error, FieldError};

fn bad(field: &str, m: impl Into<String>) -> Error {
    Error::Validation(vec![FieldError::new(field, m)])
}

/// Downloads the document at `url` (the multipart field `field`), at most `max_bytes`.
pub(crate) async fn fetch_definition(
    field: &str,
    url: &str,
    allow_private: bool,
    max_bytes: usize,
) -> Result<Vec<u8>, Error> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(field, format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(field, "must be an http:// or https:// URL"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad(field, "names no host"))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addr = tollgate_http::destination::resolve_allowed(&host, port, allow_private)
        .await
        .map_err(|e| bad(field, e.to_string()))?;
    // The client needs a TLS crypto provider; the binary installs one at start, and this
    // makes library users (tests) safe too. An error only means one is already there.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host again and defeat the address check above.
        .no_proxy()
        .resolve(&host, addr)
        .build()
        .map_err(|e| Error::Internal(format!("cannot build an HTTP client: {e}")))?;
    let mut response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| bad(field, format!("could not be fetched: {e}")))?;
    if !response.status().is_success() {
        return Err(bad(
            field,
            format!("answered {} instead of the document", response.status()),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| bad(field, format!("download failed: {e}")))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(bad(field, format!("the document is larger than {max_bytes} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
