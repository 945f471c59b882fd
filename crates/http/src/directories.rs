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

/// Most tenants whose directories are remembered; beyond, the memory starts over.
const CAPACITY: usize = 10_000;

/// What a node knows of one tenant's registered directories: each store, built from
/// its row of that version, and the domains whose store cannot be opened here.
struct Known {
    checked: Instant,
    stores: HashMap<String, (i64, Arc<LdapStore>)>,
    unreadable: HashMap<String, String>,
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
    /// Whether tenants' (not the super tenant's) directories may be at internal
    /// addresses (`[admin] tenant_directory_internal_addresses`).
    allow_internal: bool,
    /// By tenant: a name of an unknown domain adds nothing, so made-up names cannot grow
    /// this or push other tenants' stores out.
    known: Mutex<HashMap<TenantId, Known>>,
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
    /// with `key` (`[node] secrets_key`); tenants' directories at internal addresses are
    /// refused unless `allow_internal`.
    pub fn with_registered(mut self, shared: Database, key: SealingKey, allow_internal: bool) -> Self {
        self.registered = Some(Arc::new(Registered {
            shared,
            key,
            allow_internal,
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

    /// Whether `tenant`'s directories must stay off internal addresses: every tenant's
    /// but the super tenant's, unless the operator allows them.
    pub fn refuses_internal(&self, tenant: TenantId) -> bool {
        match &self.registered {
            Some(registered) => registered.refuses_internal(tenant),
            None => tenant != TenantId::DEFAULT,
        }
    }

    /// Forgets what this node read of `tenant`'s directories, after a change here.
    pub fn forget(&self, tenant: TenantId) {
        if let Some(registered) = &self.registered
            && let Ok(mut known) = registered.known.lock()
        {
            known.remove(&tenant);
        }
    }

    /// Whether nothing but the built-in store can hold users.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty() && self.registered.is_none()
    }
}

impl Registered {
    /// Whether `tenant`'s directories must stay off internal addresses.
    fn refuses_internal(&self, tenant: TenantId) -> bool {
        tenant != TenantId::DEFAULT && !self.allow_internal
    }

    async fn find(&self, tenant: TenantId, domain: &str) -> Result<Option<Arc<LdapStore>>, Error> {
        let domain = domain.to_ascii_uppercase();
        let answer = |known: &Known| match known.unreadable.get(&domain) {
            Some(why) => Err(Error::Unavailable(why.clone())),
            None => Ok(known.stores.get(&domain).map(|(_, s)| s.clone())),
        };
        let previous = {
            let known = self
                .known
                .lock()
                .map_err(|_| Error::Internal("directory registry lock".into()))?;
            match known.get(&tenant) {
                Some(k) if k.checked.elapsed() < REGISTERED_RECHECK => return answer(k),
                Some(k) => k.stores.clone(),
                None => HashMap::new(),
            }
        };
        // Read the tenant's stores again; keep each one whose row has not changed (its
        // pool and cached users with it).
        let mut fresh = Known {
            checked: Instant::now(),
            stores: HashMap::new(),
            unreadable: HashMap::new(),
        };
        for row in user_stores::list(&self.shared, tenant).await? {
            if let Some(kept) = previous.get(&row.domain).filter(|(v, _)| *v == row.updated_at) {
                fresh.stores.insert(row.domain, kept.clone());
                continue;
            }
            let sealed = SealedSettings {
                settings: row.settings,
                bind_password_sealed: row.bind_password_sealed,
            };
            match registered::open(&sealed, &self.key, &tenant.to_string(), self.refuses_internal(tenant)) {
                Ok(store) => {
                    fresh.stores.insert(row.domain, (row.updated_at, Arc::new(store)));
                }
                Err(e) => {
                    tracing::warn!(%tenant, domain = %row.domain, error = %e, "A registered directory cannot be opened.");
                    fresh.unreadable.insert(row.domain, e.public_message());
                }
            }
        }
        let found = answer(&fresh);
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= CAPACITY {
                known.clear();
            }
            known.insert(tenant, fresh);
        }
        found
    }
}
