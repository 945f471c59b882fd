//! User stores: the directories users sign in with beside the built-in database store.
//! An organisation keeps its people and groups in LDAP or Active Directory; Tollgate
//! checks their passwords there and gives them roles from their groups
//! (`role_mapping`), as the reference's user stores do (decision 020).
//!
//! This crate knows directories only: which store a sign-in name goes to, and the
//! roles a directory user has, are decided by its callers.

pub mod address;
mod ldap;
pub mod registered;
mod sign_in_name;

pub use ldap::{DirectoryUser, LdapStore};
pub use sign_in_name::split_store_domain;

/// Why a directory could not answer. None of these means "wrong password": a sign-in
/// that meets one is answered 503, so that an outage never counts as failed attempts.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// No URL of the store accepted a connection and the service account's bind in time.
    #[error(
        "the user store {store} cannot be reached ({reason}); sign-in with it is unavailable until it answers again"
    )]
    Unavailable {
        /// The store: `the primary store` or `CORP`.
        store: String,
        /// The last URL's error.
        reason: String,
    },
    /// The directory answered an operation with an error other than wrong credentials
    /// (a bad search base, a refused service account…): its configuration is wrong.
    #[error("the user store {store} refused {operation}: {reason}; check its [[user_store]] settings")]
    Directory {
        /// The store.
        store: String,
        /// What was asked.
        operation: &'static str,
        /// What the directory said.
        reason: String,
    },
    /// The directory already has a user of that name (adding one).
    #[error("the user store {store} already has a user `{username}`")]
    Exists {
        /// The store.
        store: String,
        /// The name taken.
        username: String,
    },
    /// Adding this user is not possible with this store's settings (no group maps to a
    /// role asked for, a preset Tollgate does not write).
    #[error("the user store {store} cannot add `{username}`: {reason}")]
    CannotAdd {
        /// The store.
        store: String,
        /// The name asked for.
        username: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The configuration cannot make a store (a bind password that cannot be read).
    #[error("the user store {store} is misconfigured: {reason}")]
    Config {
        /// The store.
        store: String,
        /// Why.
        reason: String,
    },
}

impl UserStoreError {
    /// What a caller who is not (yet) signed in may be told: the store and what to do,
    /// without its URLs or what the directory said (those go to the node's log).
    pub fn public_message(&self) -> String {
        match self {
            UserStoreError::Unavailable { store, .. } => format!(
                "the user store {store} cannot be reached; sign-in with it is unavailable until it answers again"
            ),
            UserStoreError::Directory { store, operation, .. } => format!(
                "the user store {store} refused {operation}; an administrator should check its settings (the node's log says more)"
            ),
            UserStoreError::Config { store, .. } => {
                format!("the user store {store} is misconfigured; the node's log says more")
            }
            UserStoreError::Exists { .. } | UserStoreError::CannotAdd { .. } => self.to_string(),
        }
    }
}

/// A user store's result.
pub type Result<T, E = UserStoreError> = std::result::Result<T, E>;

/// The directories of a node's configuration: the primary one (for names without a
/// store domain) and the secondary ones by domain.
#[derive(Debug, Default)]
pub struct UserStores {
    primary: Option<std::sync::Arc<LdapStore>>,
    by_domain: std::collections::HashMap<String, std::sync::Arc<LdapStore>>,
}

impl UserStores {
    /// The stores `configs` describe; `database` entries are the built-in store, which
    /// needs nothing here.
    pub fn from_config(configs: &[tollgate_config::UserStoreConfig]) -> Result<Self> {
        let mut stores = Self::default();
        for config in configs {
            if config.kind == tollgate_config::UserStoreType::Database {
                continue;
            }
            let store = LdapStore::new(config)?;
            if config.domain.is_empty() {
                stores.primary = Some(std::sync::Arc::new(store));
            } else {
                stores
                    .by_domain
                    .insert(config.domain.to_ascii_uppercase(), std::sync::Arc::new(store));
            }
        }
        Ok(stores)
    }

    /// Whether any directory is configured.
    pub fn is_empty(&self) -> bool {
        self.primary.is_none() && self.by_domain.is_empty()
    }

    /// The primary directory, asked for names the built-in store does not have.
    pub fn primary(&self) -> Option<std::sync::Arc<LdapStore>> {
        self.primary.clone()
    }

    /// The secondary store whose domain is `domain` (compared upper-cased).
    pub fn secondary(&self, domain: &str) -> Option<std::sync::Arc<LdapStore>> {
        self.by_domain.get(&domain.to_ascii_uppercase()).cloned()
    }
}
