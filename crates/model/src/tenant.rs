//! Tenants (organisations). The super tenant `carbon.super` always exists; others are
//! created by its administrators. Every tenant-owned row carries the tenant's id, and a
//! user names their tenant as the reference does: `alice@acme.com` signs in to
//! `acme.com`, a bare `alice` to the super tenant (decision 019).

use crate::{EpochMillis, TenantId};
use serde::{Deserialize, Serialize};

/// A tenant as stored in the shared database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable id.
    pub id: TenantId,
    /// The tenant domain, as in the reference (`carbon.super` for the super tenant).
    pub domain: String,
    /// Display name.
    pub name: String,
    /// Whether its users may sign in and its APIs be called. Deactivation deletes nothing.
    pub active: bool,
    /// When the tenant was created.
    pub created_at: EpochMillis,
}

impl Tenant {
    /// The super tenant's domain, as the reference system spells it.
    pub const DEFAULT_DOMAIN: &'static str = "carbon.super";

    /// Whether this is the super tenant, whose administrators manage every tenant.
    pub fn is_super(&self) -> bool {
        self.id == TenantId::DEFAULT
    }

    /// The gateway path prefix of this tenant's APIs: `/t/acme.com`, empty for the super
    /// tenant (whose APIs are served without one).
    pub fn path_prefix(&self) -> String {
        gateway_prefix(self.id, &self.domain)
    }

    /// How a user of this tenant signs in: `alice@acme.com`, or `alice` in the super tenant.
    pub fn qualify(&self, username: &str) -> String {
        qualify(&self.domain, username)
    }
}

/// `alice@acme.com` for a user of `acme.com`, `alice` for one of the super tenant: the
/// name a user signs in with and the subject of their tokens.
pub fn qualify(domain: &str, username: &str) -> String {
    if domain == Tenant::DEFAULT_DOMAIN {
        username.to_string()
    } else {
        format!("{username}@{domain}")
    }
}

/// The gateway path prefix of a tenant's APIs (`/t/{domain}`), empty for the super tenant.
pub fn gateway_prefix(tenant: TenantId, domain: &str) -> String {
    if tenant == TenantId::DEFAULT {
        String::new()
    } else {
        format!("/t/{domain}")
    }
}

/// Splits a sign-in name at its last `@` into the user's name and the tenant domain it
/// may name (`alice@acme.com` → `("alice", Some("acme.com"))`). Whether the domain is a
/// tenant is for the caller to find out: a super-tenant user may be named like an email.
pub fn split_qualified(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((user, domain)) if !user.is_empty() && !domain.is_empty() => (user, Some(domain)),
        _ => (name, None),
    }
}

/// Checks a new tenant's domain: a lower-case DNS name of at least two labels, each 1 to
/// 63 letters, digits or inner hyphens, 253 characters at most; `carbon.super` is taken.
pub fn validate_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() || domain.len() > 253 {
        return Err("must be a DNS name of 1 to 253 characters, such as `acme.com`".into());
    }
    if domain == Tenant::DEFAULT_DOMAIN {
        return Err("`carbon.super` is the super tenant's domain".into());
    }
    if domain.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("must be lower case: `{}`", domain.to_ascii_lowercase()));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("must have at least two labels, such as `acme.com`".into());
    }
    for label in labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "label `{label}` must be 1 to 63 lower-case letters, digits or inner hyphens"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_case_dns_names() {
        for good in ["acme.com", "a.b", "x-1.example.org", "123.io"] {
            assert_eq!(validate_domain(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "acme",
            "Acme.com",
            "acme..com",
            "-acme.com",
            "acme-.com",
            "acme.com.",
            "ac me.com",
            "acme_x.com",
            "carbon.super",
            "t/acme.com",
            "acme.com/x",
            "é.com",
        ] {
            assert!(validate_domain(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_domain(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(validate_domain(&format!("{}.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_split_at_the_last_at_sign() {
        assert_eq!(split_qualified("alice"), ("alice", None));
        assert_eq!(split_qualified("alice@acme.com"), ("alice", Some("acme.com")));
        assert_eq!(
            split_qualified("bob@mail.com@acme.com"),
            ("bob@mail.com", Some("acme.com"))
        );
        assert_eq!(split_qualified("@acme.com"), ("@acme.com", None));
        assert_eq!(split_qualified("alice@"), ("alice@", None));
    }

    #[test]
    fn the_super_tenant_has_no_prefix_and_bare_names() {
        let acme: TenantId = "00000000-0000-7000-8000-0000000000aa".parse().unwrap();
        assert_eq!(gateway_prefix(TenantId::DEFAULT, "carbon.super"), "");
        assert_eq!(gateway_prefix(acme, "acme.com"), "/t/acme.com");
        assert_eq!(qualify("carbon.super", "admin"), "admin");
        assert_eq!(qualify("acme.com", "admin"), "admin@acme.com");
    }
}
