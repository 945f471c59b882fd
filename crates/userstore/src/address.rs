//! Where a directory that a tenant's administrator names may be: not this host, not a
//! link-local address (a cloud metadata endpoint), not an unspecified one. Checked when
//! the store is saved or tried, and again before each connection (decision 021).

use std::net::{IpAddr, Ipv4Addr};
use url::Url;

/// Why `url` may not be used as a tenant's directory, if it may not: it is not a plain
/// `ldap://host[:port]` or `ldaps://…` URL, its host does not resolve, or any address it
/// resolves to is internal.
pub async fn refuse_internal(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "ldap" | "ldaps") {
        return Err(format!("`{url}` is not an ldap:// or ldaps:// URL"));
    }
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !matches!(parsed.path(), "" | "/")
    {
        return Err(format!(
            "`{url}` must be only ldap://host[:port] (no user, path, query or fragment)"
        ));
    }
    let host = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{url}` names no host"))?;
    let port = parsed
        .port()
        .unwrap_or(if parsed.scheme() == "ldaps" { 636 } else { 389 });
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("`{host}` does not resolve from this node: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("`{host}` does not resolve from this node"));
    }
    match addresses.into_iter().find(|ip| internal(*ip)) {
        Some(ip) => Err(format!(
            "`{url}` points at this host or a link-local address ({ip}); a tenant's directory must be elsewhere (an operator may allow it with [admin] tenant_directory_internal_addresses)"
        )),
        None => Ok(()),
    }
}

/// Loopback, link-local, unspecified, broadcast or multicast, also when written as an
/// IPv4-mapped or NAT64 (64:ff9b::/96) IPv6 address.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return internal_v4(Ipv4Addr::new(a, b, c, d));
            }
            v6.is_loopback() || v6.is_unspecified() || v6.is_unicast_link_local() || v6.is_multicast()
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_addresses_are_refused_however_they_are_written() {
        for url in [
            "ldap://127.0.0.1",
            "ldap://127.1.2.3:1389",
            "ldap://localhost",
            "ldap://[::1]:389",
            "ldaps://169.254.169.254",
            "ldap://0.0.0.0",
            "ldap://[::ffff:127.0.0.1]",
            "ldap://[64:ff9b::7f00:1]",
            "ldap://2130706433",
            "ldap://x@192.0.2.10",
            "ldap://192.0.2.10/?x",
            "ldap://192.0.2.10#x",
            "ldap:///",
            "ldap://:389",
            "http://192.0.2.10",
        ] {
            assert!(refuse_internal(url).await.is_err(), "{url}");
        }
        for url in ["ldap://192.0.2.10:389", "ldaps://10.0.0.5", "ldap://[2001:db8::1]:389"] {
            assert!(refuse_internal(url).await.is_ok(), "{url}");
        }
    }
}
