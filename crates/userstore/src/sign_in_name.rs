//! Which user store a sign-in name names: `CORP/alice` is `alice` of the store whose
//! domain is `CORP`, `alice` is of the primary store, as in the reference.

/// Splits `DOMAIN/rest` into the store's domain (upper-cased, as the reference compares
/// it) and the rest (`alice`, or `alice@acme.com` in a tenant); a name without `/`, or
/// whose part before it cannot be a store's domain, is the primary store's (`None`).
pub fn split_store_domain(name: &str) -> (Option<String>, &str) {
    match name.split_once('/') {
        Some((domain, rest)) if !rest.is_empty() && tollgate_config::is_store_domain(domain) => {
            (Some(domain.to_ascii_uppercase()), rest)
        }
        _ => (None, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_prefix_names_a_secondary_store() {
        assert_eq!(split_store_domain("CORP/bob"), (Some("CORP".into()), "bob"));
        assert_eq!(
            split_store_domain("corp/bob@acme.com"),
            (Some("CORP".into()), "bob@acme.com")
        );
        assert_eq!(split_store_domain("alice"), (None, "alice"));
        assert_eq!(split_store_domain("alice@acme.com"), (None, "alice@acme.com"));
        for odd in ["/bob", "CORP/", "a b/bob", "*/bob"] {
            assert_eq!(split_store_domain(odd), (None, odd), "{odd}");
        }
    }
}
