//! Where the server may be sent by its users: URLs a creator types (an OpenAPI document to
//! import, an endpoint to test) must not make the server reach its own network (SSRF).
//! Private, loopback, link-local and reserved addresses are refused unless the operator
//! allows them (`[publisher] url_import_allow_private`). The caller connects to the address
//! that passed the check, so a second DNS answer cannot change it (no DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a destination is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DestinationError {
    /// The host did not resolve within 5 seconds.
    #[error("host `{0}` did not resolve in time")]
    Timeout(String),
    /// The host does not resolve.
    #[error("host `{0}` does not resolve: {1}")]
    Unresolvable(String, String),
    /// Every address of the host is private.
    #[error(
        "`{0}` is a private, loopback or link-local address; set [publisher] url_import_allow_private = true to allow it"
    )]
    Private(String),
    /// The host has a public address and a private one: a rebinding trick, or a mistake.
    #[error("`{0}` resolves to a private address as well; refusing")]
    AlsoPrivate(String),
}

/// Resolves `host` (a name or an address, IPv6 with or without brackets) and returns the
/// one address to connect to, refusing private ones unless `allow_private`.
pub async fn resolve_allowed(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, DestinationError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((bare, port)))
        .await
        .map_err(|_| DestinationError::Timeout(host.to_string()))?
        .map_err(|e| DestinationError::Unresolvable(host.to_string(), e.to_string()))?
        .collect();
    let Some(addr) = addrs.iter().copied().find(|a| allow_private || !is_private(a.ip())) else {
        return Err(DestinationError::Private(host.to_string()));
    };
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(DestinationError::AlsoPrivate(host.to_string()));
    }
    Ok(addr)
}

/// Whether an address is on the operator's own network (or the host itself).
pub fn is_private(ip: IpAddr) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_destinations_are_refused_unless_allowed() {
        assert_eq!(
            resolve_allowed("127.0.0.1", 80, false).await,
            Err(DestinationError::Private("127.0.0.1".into()))
        );
        assert_eq!(
            resolve_allowed("[::1]", 80, false).await,
            Err(DestinationError::Private("[::1]".into()))
        );
        assert!(
            DestinationError::Private("x".into())
                .to_string()
                .contains("url_import_allow_private")
        );
        assert_eq!(
            resolve_allowed("127.0.0.1", 8080, true).await,
            Ok("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            resolve_allowed("8.8.8.8", 80, false).await,
            Ok("8.8.8.8:80".parse().unwrap())
        );
    }

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
