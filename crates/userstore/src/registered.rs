//! How a directory a tenant registers is kept: its settings as JSON without the bind
//! password, and the password sealed under the node's secrets key (decision 021). The
//! Admin API writes this form and every node that signs users in reads it, so the format
//! lives here, once.

use crate::{LdapStore, Result, UserStoreError};
use tollgate_config::{Secret, UserStoreConfig};
use tollgate_sealing::{SealingKey, derive};

/// Where the sealing secret is configured, for the error that says it differs.
const SETTING: &str = "[node] secrets_key";

/// The key that seals registered directories' bind passwords, from `[node] secrets_key`
/// (or the generated `secrets.key`).
pub fn bind_password_key(secret: &str) -> SealingKey {
    SealingKey::new(derive("tollgate-secrets", "user-store bind password", secret), SETTING)
}

/// A registered directory in its stored form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSettings {
    /// The settings as JSON text, without the bind password.
    pub settings: String,
    /// The bind password, sealed.
    pub bind_password_sealed: String,
}

/// What a store's sealed password is bound to: its owner (the tenant) and its domain, so
/// that it opens in no other row.
fn context(owner: &str, config: &UserStoreConfig) -> Vec<u8> {
    format!("{owner}\0{}", config.domain.to_ascii_uppercase()).into_bytes()
}

/// The stored form of `config` with `bind_password`, for the tenant `owner` (a password
/// `config` itself holds is left out of the settings).
pub fn seal(config: &UserStoreConfig, bind_password: &str, key: &SealingKey, owner: &str) -> Result<SealedSettings> {
    let mut plain = config.clone();
    plain.bind_password = None;
    plain.bind_password_env = None;
    plain.bind_password_file = None;
    let settings = serde_json::to_string(&plain).map_err(|e| config_error(config, e.to_string()))?;
    let bind_password_sealed = key
        .seal_for(bind_password.as_bytes(), &context(owner, config))
        .map_err(|e| config_error(config, e.to_string()))?;
    Ok(SealedSettings {
        settings,
        bind_password_sealed,
    })
}

/// The settings of a stored directory, without its password (for the Admin API's answers).
pub fn settings(stored: &SealedSettings) -> Result<UserStoreConfig> {
    serde_json::from_str(&stored.settings).map_err(|e| UserStoreError::Config {
        store: "a registered store".into(),
        reason: format!("its stored settings do not read: {e}"),
    })
}

/// The bind password of the tenant `owner`'s stored directory, opened.
pub fn bind_password(stored: &SealedSettings, key: &SealingKey, owner: &str) -> Result<Secret> {
    opened_password(stored, &settings(stored)?, key, owner)
}

/// [`bind_password`] with the settings already read.
fn opened_password(stored: &SealedSettings, config: &UserStoreConfig, key: &SealingKey, owner: &str) -> Result<Secret> {
    let plain = key
        .open_for(&stored.bind_password_sealed, &context(owner, config), "bind password")
        .map_err(|e| config_error(config, e.to_string()))?;
    let plain = String::from_utf8(plain).map_err(|_| config_error(config, "its bind password is not UTF-8".into()))?;
    Ok(Secret::new(plain))
}

/// The store a stored directory describes, ready to sign users in; refusing internal
/// addresses when `refuse_internal` (a tenant's directory, unless the operator allows
/// them).
pub fn open(stored: &SealedSettings, key: &SealingKey, owner: &str, refuse_internal: bool) -> Result<LdapStore> {
    let mut config = settings(stored)?;
    config.bind_password = Some(opened_password(stored, &config, key, owner)?);
    let store = LdapStore::new(&config)?;
    Ok(if refuse_internal {
        store.refusing_internal()
    } else {
        store
    })
}

fn config_error(config: &UserStoreConfig, reason: String) -> UserStoreError {
    UserStoreError::Config {
        store: config.domain.to_ascii_uppercase(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_stored_sealed_and_opens_only_with_the_same_key() {
        let key = bind_password_key("a-secrets-key-of-some-length");
        let config = UserStoreConfig {
            domain: "ACME".into(),
            urls: vec!["ldap://127.0.0.1:389".into()],
            bind_dn: "cn=svc".into(),
            bind_password: Some(Secret::new("must-not-appear")),
            user_search_base: "ou=people".into(),
            ..Default::default()
        };
        let stored = seal(&config, "service-password", &key, "tenant-1").unwrap();
        assert!(!stored.settings.contains("must-not-appear"));
        assert!(!stored.settings.contains("service-password"));
        assert!(!stored.bind_password_sealed.contains("service-password"));
        assert_eq!(
            bind_password(&stored, &key, "tenant-1").unwrap().expose(),
            "service-password"
        );
        assert!(bind_password(&stored, &key, "tenant-2").is_err(), "bound to its tenant");
        assert_eq!(settings(&stored).unwrap().bind_dn, "cn=svc");
        assert!(open(&stored, &key, "tenant-1", true).is_ok());
        let other = bind_password_key("another-secrets-key-value");
        let err = open(&stored, &other, "tenant-1", false).unwrap_err().to_string();
        assert!(err.contains("[node] secrets_key"), "{err}");
    }
}
