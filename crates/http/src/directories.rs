//! Which directory holds a user: the configured ones (`[[user_store]]`, the super
//! tenant's) and those a tenant registers through the Admin API (decision 021). A
//! tenant's registered directory serves only that tenant: it is looked up by the tenant
//! the sign-in name resolved to, never by domain alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_model::{Error, TenantId};
use tollgate_sealing::SealingKey;
use tollgate_store::{Database, user_stores};
use tollgate_userstore::registered::{self, SealedSettings};
use tollgate_userstore::{LdapStore, UserStores};

/// How long a node trusts what it read of a tenant's registered directory before reading
/// the row again: another node's change takes effect here within this time (this node's
/// own at once).
pub const REGISTERED_RECHECK: Duration = Duration::from_secs(5);

/// Most (tenant, domain) lookups remembered; beyond, the memory starts over.
const CAPACITY: usize = 10_000;

/// What a node knows of one (tenant, domain): the store, built from the row of this
/// version, or that there is none.
struct Known {
    checked: Instant,
    store: Option<(i64, Arc<LdapStore>)>,
}

/// The directories users sign in with.
#[derive(Clone, Default)]
pub struct Directories {
    configured: Arc<UserStores>,
    registered: Option<Arc<Registered>>,
}

struct Registered {
    shared: Database,
    key: SealingKey,
    known: Mutex<HashMap<(TenantId, String), Known>>,
}

impl std::fmt::Debug for Directories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directories")
            .field("configured", &self.configured)
            .field("registered", &self.registered.is_some())
            .finish()
    }
}

impl Directories {
    /// The configured directories only.
    pub fn configured(configured: Arc<UserStores>) -> Self {
        Self {
            configured,
            registered: None,
        }
    }

    /// Also the directories tenants register, read from the shared database and opened
    /// with `key` (`[node] secrets_key`).
    pub fn with_registered(mut self, shared: Database, key: SealingKey) -> Self {
        self.registered = Some(Arc::new(Registered {
            shared,
            key,
            known: Mutex::new(HashMap::new()),
        }));
        self
    }

    /// The super tenant's primary directory (asked for names the built-in store lacks).
    pub fn primary(&self, tenant: TenantId) -> Option<Arc<LdapStore>> {
        (tenant == TenantId::DEFAULT)
            .then(|| self.configured.primary())
            .flatten()
    }

    /// The secondary store `domain` of `tenant`: for the super tenant a configured one
    /// first, then the tenant's registered one. An unreadable registered store (its
    /// password sealed under another secrets key) is [`Error::Unavailable`].
    pub async fn secondary(&self, tenant: TenantId, domain: &str) -> Result<Option<Arc<LdapStore>>, Error> {
        if tenant == TenantId::DEFAULT
            && let Some(store) = self.configured.secondary(domain)
        {
            return Ok(Some(store));
        }
        match &self.registered {
            Some(registered) => registered.find(tenant, domain).await,
            None => Ok(None),
        }
    }

    /// Whether the super tenant's configuration has a store of this domain (a tenant
    /// cannot register one that would never be asked).
    pub fn configured_domain(&self, domain: &str) -> bool {
        self.configured.secondary(domain).is_some()
    }

    /// The key registered directories' bind passwords are sealed with; `None` when this
    /// node does not read registered directories.
    pub fn sealing_key(&self) -> Option<&SealingKey> {
        self.registered.as_ref().map(|r| &r.key)
    }

    /// Forgets what this node read of `tenant`'s directory `domain`, after a change here.
    pub fn forget(&self, tenant: TenantId, domain: &str) {
        if let Some(registered) = &self.registered
            && let Ok(mut known) = registered.known.lock()
        {
            known.remove(&(tenant, domain.to_ascii_uppercase()));
        }
    }

    /// Whether nothing but the built-in store can hold users.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty() && self.registered.is_none()
    }
}

impl Registered {
    async fn find(&self, tenant: TenantId, domain: &str) -> Result<Option<Arc<LdapStore>>, Error> {
        let key = (tenant, domain.to_ascii_uppercase());
        let seen = {
            let known = self
                .known
                .lock()
                .map_err(|_| Error::Internal("directory registry lock".into()))?;
            match known.get(&key) {
                Some(k) if k.checked.elapsed() < REGISTERED_RECHECK => {
                    return Ok(k.store.as_ref().map(|(_, s)| s.clone()));
                }
                Some(k) => k.store.clone(),
                None => None,
            }
        };
        let row = user_stores::find_by_domain(&self.shared, tenant, &key.1).await?;
        let store = match row {
            None => None,
            // Unchanged since built: keep the store, its pool and its cached users.
            Some(row) if seen.as_ref().is_some_and(|(v, _)| *v == row.updated_at) => seen,
            Some(row) => {
                let sealed = SealedSettings {
                    settings: row.settings,
                    bind_password_sealed: row.bind_password_sealed,
                };
                let store = registered::open(&sealed, &self.key).map_err(|e| {
                    tracing::warn!(%tenant, domain = %key.1, error = %e, "A registered directory cannot be opened.");
                    Error::Unavailable(e.to_string())
                })?;
                Some((row.updated_at, Arc::new(store)))
            }
        };
        let found = store.as_ref().map(|(_, s)| s.clone());
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= CAPACITY {
                known.clear();
            }
            known.insert(
                key,
                Known {
                    checked: Instant::now(),
                    store,
                },
            );
        }
        Ok(found)
    }
}
