//! Fetching OpenAPI documents by URL, guarded: http(s) only, a timeout, a size cap, and
//! no private, loopback or link-local destinations unless the operator allows them. The
//! address that passed the check is the one connected to (no DNS rebinding).

use std::net::IpAddr;
use std::time::Duration;
use tollgate_model::{Error, FieldError};

fn bad(field: &str, m: impl Into<String>) -> Error {
    Error::Validation(vec![FieldError::new(field, m)])
}

/// Whether an address is on the operator's own network (or the host itself).
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]) // CGNAT 100.64/10
                || v4.octets()[0] == 198 && (18..20).contains(&v4.octets()[1]) // benchmarking 198.18/15
                || v4.octets()[0] >= 240 // reserved 240/4
                || v4.octets()[0] == 0 // "this network" 0/8
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (v6.segments()[0] & 0xffc0) == 0xfec0 // site local fec0::/10
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
                // Addresses that embed an IPv4 one: NAT64 64:ff9b::/96, 6to4 2002::/16,
                // and the deprecated IPv4-compatible ::/96.
                || embedded_v4(v6).is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// The IPv4 address inside a NAT64, 6to4 or IPv4-compatible IPv6 address.
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let from = |hi: u16, lo: u16| std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        Some(from(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(from(s[1], s[2]))
    } else if s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1) {
        Some(from(s[6], s[7]))
    } else {
        None
    }
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
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port)),
    )
    .await
    .map_err(|_| bad(field, format!("host `{host}` did not resolve in time")))?
    .map_err(|e| bad(field, format!("host `{host}` does not resolve: {e}")))?
    .collect();
    let Some(addr) = addrs.iter().copied().find(|a| allow_private || !is_private(a.ip())) else {
        return Err(bad(
            field,
            format!(
                "`{host}` is a private, loopback or link-local address; set [publisher] url_import_allow_private = true to allow it"
            ),
        ));
    };
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(bad(
            field,
            format!("`{host}` resolves to a private address as well; refusing"),
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::a00:1",
            "fec0::1",
            "198.18.0.1",
            "250.0.0.1",
        ];
        for ip in private {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860::8888",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
