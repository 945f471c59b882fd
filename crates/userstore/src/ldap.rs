//! The LDAP store (and Active Directory, a preset of it): users found with the service
//! account, passwords checked by binding as the user, roles from groups.

use crate::{Result, UserStoreError};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry, dn_escape, ldap_escape};
use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;
use tollgate_config::{GroupMembership, Secret, UserStoreConfig, UserStoreType};

/// LDAP result code for wrong credentials (RFC 4511 §4.1.9), also what a locked or
/// disabled account's bind answers (OpenLDAP's password policy, Active Directory).
const INVALID_CREDENTIALS: u32 = 49;
/// What some directories answer a locked account's bind with.
const UNWILLING_TO_PERFORM: u32 = 53;
/// Active Directory's `userAccountControl` flag of a disabled account.
const AD_ACCOUNTDISABLE: u64 = 0x2;
/// The longest sign-in name sent to a directory.
const MAX_NAME_LEN: usize = 256;
/// Entries asked for per page of a search.
const PAGE_SIZE: i32 = 500;
/// Most entries one search reads (a listing of users, a user's groups).
pub const MAX_ENTRIES: usize = 10_000;

/// A directory user: who they are, their groups and the Tollgate roles those map to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Their entry's DN.
    pub dn: String,
    /// The name they signed in with (without the store's domain).
    pub username: String,
    /// Their email address, when the directory has one.
    pub email: Option<String>,
    /// The names of their groups, as the directory spells them, sorted.
    pub groups: Vec<String>,
    /// The Tollgate roles `role_mapping` gives those groups, sorted, each once.
    pub roles: Vec<String>,
}

/// What adding a user has written so far, so that a failure undoes only that.
#[derive(Default)]
struct Written {
    entry: bool,
    groups: Vec<String>,
}

/// LDAP result code of an add whose DN is taken (RFC 4511).
const ENTRY_ALREADY_EXISTS: u32 = 68;

/// One `[[user_store]]` of type `ldap` or `active_directory`.
pub struct LdapStore {
    /// How errors and logs name it: `the primary store` or `CORP`.
    name: String,
    config: UserStoreConfig,
    bind_password: Secret,
    /// Connections bound as the service account, kept for the next search.
    idle: Mutex<Vec<Ldap>>,
    /// Users looked up, by lower-case name, with when: roles are read again after
    /// `cache_ttl`.
    cache: Mutex<HashMap<String, (Instant, DirectoryUser)>>,
    /// Whether each URL is checked before connecting to refuse internal addresses (a
    /// tenant's directory).
    refuse_internal: bool,
}

impl std::fmt::Debug for LdapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapStore")
            .field("name", &self.name)
            .field("urls", &self.config.urls)
            .finish_non_exhaustive()
    }
}

impl LdapStore {
    /// The store `config` describes (validated by the configuration's loader).
    pub fn new(config: &UserStoreConfig) -> Result<Self> {
        let name = if config.domain.is_empty() {
            "the primary store".to_string()
        } else {
            config.domain.to_ascii_uppercase()
        };
        let bind_password = config
            .bind_password()
            .map_err(|e| UserStoreError::Config {
                store: name.clone(),
                reason: e.to_string(),
            })?
            .filter(|p| !p.expose().is_empty())
            .ok_or_else(|| UserStoreError::Config {
                store: name.clone(),
                reason: "no bind password; an anonymous bind is refused".into(),
            })?;
        Ok(Self {
            name,
            config: config.clone(),
            bind_password,
            idle: Mutex::new(Vec::new()),
            cache: Mutex::new(HashMap::new()),
            refuse_internal: false,
        })
    }

    /// The same store, refusing to connect to this host, link-local or unspecified
    /// addresses ([`crate::address::refuse_internal`]), checked before every connection so
    /// that a name resolving elsewhere later is caught too.
    pub fn refusing_internal(mut self) -> Self {
        self.refuse_internal = true;
        self
    }

    /// The store's domain (`CORP`), empty for the primary store.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// How long a user's groups are kept before the directory is asked again.
    pub fn cache_ttl(&self) -> std::time::Duration {
        self.config.cache_ttl
    }

    /// Whether Tollgate may only read this directory.
    pub fn read_only(&self) -> bool {
        self.config.read_only
    }

    /// Checks `password` for `username` by binding as their entry: the user, their
    /// groups and roles when it is right; `None` when it is wrong, the user is unknown,
    /// ambiguous or disabled, or the password is empty (never an anonymous bind).
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<DirectoryUser>> {
        if password.is_empty() || !plausible(username) {
            return Ok(None);
        }
        let Some(entry) = self.search_user(username).await? else {
            return Ok(None);
        };
        if !self.bind_as(&entry.dn, password).await? {
            return Ok(None);
        }
        self.user_of(username, entry).await.map(Some)
    }

    /// The user named `username` with their current groups and roles, without their
    /// password (for a token whose subject they are): read again only after `cache_ttl`.
    pub async fn find(&self, username: &str) -> Result<Option<DirectoryUser>> {
        if !plausible(username) {
            return Ok(None);
        }
        if let Some(user) = self.cached(username) {
            return Ok(Some(user));
        }
        let Some(entry) = self.search_user(username).await? else {
            return Ok(None);
        };
        self.user_of(username, entry).await.map(Some)
    }

    /// Whether the settings work, for an administrator registering the store: a URL
    /// accepts a connection, the service account binds, and both search bases exist.
    pub async fn test_connection(&self) -> Result<()> {
        let mut ldap = self.connect(true).await?;
        let mut bases = vec![self.config.user_search_base.as_str()];
        if self.config.group_search_base() != self.config.user_search_base {
            bases.push(self.config.group_search_base());
        }
        let mut outcome = Ok(());
        for base in bases {
            let found = ldap
                .with_timeout(self.config.operation_timeout)
                .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
                .and_then(|r| r.success());
            if let Err(e) = found {
                outcome = Err(self.failed(
                    e,
                    "reading a search base (user_search_base, group_search_base)",
                    format!("`{base}`: "),
                ));
                break;
            }
        }
        let _ = ldap.unbind().await;
        outcome
    }

    /// The directory's users, sorted by name (ignoring case): those from `offset`, at most
    /// `limit`, each with groups and roles, and how many there are (at most
    /// [`MAX_ENTRIES`] are read). Disabled Active Directory accounts are left out.
    pub async fn list(&self, offset: usize, limit: usize) -> Result<(Vec<DirectoryUser>, usize)> {
        let Some(attribute) = username_attribute(self.config.user_filter()) else {
            return Err(UserStoreError::Directory {
                store: self.name.clone(),
                operation: "listing users",
                reason: "user_filter has no `(attribute={username})` to list names by".into(),
            });
        };
        let filter = self.config.user_filter().replace("{username}", "*");
        let mut attrs = self.user_attributes();
        attrs.push(attribute.as_str());
        let entries = self.search(&self.config.user_search_base, &filter, &attrs).await?;
        let mut named: Vec<(String, SearchEntry)> = entries
            .into_iter()
            .filter(|e| !disabled(e))
            .filter_map(|e| {
                let name = e
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&attribute))
                    .and_then(|(_, v)| v.first().cloned())?;
                Some((name, e))
            })
            .collect();
        named.sort_by_key(|(name, _)| name.to_lowercase());
        let total = named.len();
        let mut page = Vec::new();
        for (name, entry) in named.into_iter().skip(offset).take(limit) {
            page.push(self.user_of(&name, entry).await?);
        }
        Ok((page, total))
    }

    /// Adds the user `username` to a writable LDAP directory with the roles `roles`: an
    /// `inetOrgPerson` entry under `user_search_base`, named by the attribute `user_filter`
    /// matches, its password set with the password-modify operation (RFC 3062, so that the
    /// directory hashes it as it does its own), and a member of a group that `role_mapping`
    /// maps to each role. All or nothing: a step that fails undoes the earlier ones.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        roles: &[&str],
    ) -> Result<DirectoryUser> {
        let cannot = |reason: String| UserStoreError::CannotAdd {
            store: self.name.clone(),
            username: username.to_string(),
            reason,
        };
        if self.config.read_only {
            return Err(cannot("the store is read-only (read_only = true)".into()));
        }
        if self.config.kind == UserStoreType::ActiveDirectory {
            return Err(cannot(
                "Tollgate does not add users to Active Directory; add them there".into(),
            ));
        }
        if password.is_empty() || !plausible(username) {
            return Err(cannot("the name or the password is empty or not allowed".into()));
        }
        let Some(attribute) = username_attribute(self.config.user_filter()) else {
            return Err(cannot(
                "user_filter has no `(attribute={username})` to name the entry by".into(),
            ));
        };
        // The groups first, each one that maps to a role asked for and to nothing else
        // (a sign-up asking for `subscriber` never lands in a group that also makes
        // administrators); a role no such group gives is refused before anything is written.
        let asked = |r: &String| roles.iter().any(|a| a.eq_ignore_ascii_case(r));
        let mut groups = Vec::new();
        for role in roles {
            let Some((group, _)) =
                self.config.role_mapping.iter().find(|(_, mapped)| {
                    mapped.iter().any(|r| r.eq_ignore_ascii_case(role)) && mapped.iter().all(asked)
                })
            else {
                return Err(cannot(format!(
                    "no group maps to the role `{role}` without also giving a role not asked for (role_mapping); map one, or leave the role out"
                )));
            };
            if !groups.contains(group) {
                groups.push(group.clone());
            }
        }
        if self.search_user(username).await?.is_some() {
            return Err(UserStoreError::Exists {
                store: self.name.clone(),
                username: username.to_string(),
            });
        }
        let mut group_dns = Vec::new();
        for group in &groups {
            let filter = format!("({}={})", self.config.group_name_attribute, ldap_escape(group));
            let found = self.search(self.config.group_search_base(), &filter, &["1.1"]).await?;
            let [entry] = found.as_slice() else {
                return Err(cannot(format!(
                    "the group `{group}` is not exactly one entry under group_search_base"
                )));
            };
            group_dns.push(entry.dn.clone());
        }

        let dn = format!("{attribute}={},{}", dn_escape(username), self.config.user_search_base);
        let mut entry: Vec<(&str, HashSet<&str>)> = vec![
            (
                "objectClass",
                HashSet::from(["top", "person", "organizationalPerson", "inetOrgPerson"]),
            ),
            ("cn", HashSet::from([username])),
            ("sn", HashSet::from([username])),
        ];
        if !matches!(attribute.to_ascii_lowercase().as_str(), "cn" | "sn") {
            entry.push((attribute.as_str(), HashSet::from([username])));
        }
        if let Some(email) = email.filter(|e| !e.is_empty()) {
            entry.push((self.config.email_attribute.as_str(), HashSet::from([email])));
        }
        let mut written = Written::default();
        let mut ldap = self.connect(true).await?;
        let outcome = self
            .write_user(&mut ldap, &dn, entry, password, &group_dns, &mut written)
            .await;
        let _ = ldap.unbind().await;
        let outcome = match outcome {
            // Someone else's entry (a name the filter does not find, or a sign-up racing
            // this one): nothing of it is touched.
            Err(LdapError::LdapResult { result }) if result.rc == ENTRY_ALREADY_EXISTS && !written.entry => {
                return Err(UserStoreError::Exists {
                    store: self.name.clone(),
                    username: username.to_string(),
                });
            }
            Err(e) => Err(UserStoreError::Directory {
                store: self.name.clone(),
                operation: "adding a user (may the service account write?)",
                reason: e.to_string(),
            }),
            Ok(()) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&username.to_lowercase());
                }
                match self.find(username).await {
                    Ok(Some(user)) => Ok(user),
                    Ok(None) => Err(cannot(
                        "the entry added is not found by user_filter; make the filter match inetOrgPerson entries"
                            .into(),
                    )),
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = &outcome {
            self.undo(&dn, &written).await;
            tracing::warn!(store = %self.name, error = %e, "Adding a user to the directory failed; what was written is undone.");
        }
        outcome
    }

    /// Removes what [`Self::write_user`] wrote, and only that, on a connection of its own
    /// (the one that failed may be gone).
    async fn undo(&self, dn: &str, written: &Written) {
        if !written.entry {
            return;
        }
        let Ok(mut ldap) = self.connect(true).await else {
            tracing::error!(store = %self.name, dn, "Cannot reach the directory to undo a half-added user; remove the entry by hand.");
            return;
        };
        let timeout = self.config.operation_timeout;
        let member = self.member_attribute();
        for group_dn in &written.groups {
            let _ = ldap
                .with_timeout(timeout)
                .modify(group_dn, vec![Mod::Delete(member, HashSet::from([dn]))])
                .await;
        }
        if let Err(e) = ldap.with_timeout(timeout).delete(dn).await.and_then(|r| r.success()) {
            tracing::error!(store = %self.name, dn, error = %e, "Cannot undo a half-added user; remove the entry by hand.");
        }
        let _ = ldap.unbind().await;
    }

    /// Writes the user: the entry `attrs` at `dn`, its password, its memberships, noting
    /// each step in `written` as it succeeds.
    async fn write_user(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        attrs: Vec<(&str, HashSet<&str>)>,
        password: &str,
        group_dns: &[String],
        written: &mut Written,
    ) -> Result<(), LdapError> {
        let timeout = self.config.operation_timeout;
        ldap.with_timeout(timeout).add(dn, attrs).await?.success()?;
        written.entry = true;
        ldap.with_timeout(timeout)
            .extended(PasswordModify {
                user_id: Some(dn),
                old_pass: None,
                new_pass: Some(password),
            })
            .await?
            .success()?;
        let member = self.member_attribute();
        for group_dn in group_dns {
            ldap.with_timeout(timeout)
                .modify(group_dn, vec![Mod::Add(member, HashSet::from([dn]))])
                .await?
                .success()?;
            written.groups.push(group_dn.clone());
        }
        Ok(())
    }

    /// The attributes read of a user's entry: the email address, `memberOf` when groups
    /// are read from it, and Active Directory's account flags.
    fn user_attributes(&self) -> Vec<&str> {
        let mut attrs = vec![self.config.email_attribute.as_str()];
        if self.config.membership() == GroupMembership::MemberOf {
            attrs.push("memberOf");
        }
        if self.config.kind == UserStoreType::ActiveDirectory {
            attrs.push("userAccountControl");
        }
        attrs
    }

    /// The attribute a group lists its members in.
    fn member_attribute(&self) -> &'static str {
        match self.config.membership() {
            GroupMembership::UniqueMember => "uniqueMember",
            _ => "member",
        }
    }

    fn cached(&self, username: &str) -> Option<DirectoryUser> {
        let cache = self.cache.lock().ok()?;
        let (at, user) = cache.get(&username.to_lowercase())?;
        (at.elapsed() < self.config.cache_ttl).then(|| user.clone())
    }

    fn remember(&self, user: &DirectoryUser) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= 10_000 {
                let ttl = self.config.cache_ttl;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            cache.insert(user.username.to_lowercase(), (Instant::now(), user.clone()));
        }
    }

    /// The user `username`'s entry, found with the service account: `None` unless
    /// exactly one entry matches (and, in Active Directory, it is enabled).
    async fn search_user(&self, username: &str) -> Result<Option<SearchEntry>> {
        let filter = self.config.user_filter().replace("{username}", &ldap_escape(username));
        let entries = self
            .search(&self.config.user_search_base, &filter, &self.user_attributes())
            .await?;
        if entries.len() != 1 {
            if entries.len() > 1 {
                tracing::warn!(store = %self.name, "A sign-in name matched several directory entries; refused. Make user_filter match one entry.");
            }
            return Ok(None);
        }
        Ok(entries.into_iter().next().filter(|e| !disabled(e)))
    }

    /// The user of the entry found, with their groups and roles, remembered for `find`.
    async fn user_of(&self, username: &str, entry: SearchEntry) -> Result<DirectoryUser> {
        let mut groups = match self.config.membership() {
            GroupMembership::MemberOf => entry
                .attrs
                .get("memberOf")
                .into_iter()
                .flatten()
                .filter_map(|dn| first_rdn_value(dn))
                .collect(),
            GroupMembership::Member | GroupMembership::UniqueMember => self.search_groups(&entry.dn).await?,
        };
        groups.sort();
        groups.dedup();
        let mut roles: Vec<String> = groups
            .iter()
            .flat_map(|g| {
                self.config
                    .role_mapping
                    .iter()
                    .filter(move |(mapped, _)| mapped.eq_ignore_ascii_case(g))
                    .flat_map(|(_, roles)| roles.iter().cloned())
            })
            .collect();
        roles.sort();
        roles.dedup();
        let user = DirectoryUser {
            email: entry
                .attrs
                .get(&self.config.email_attribute)
                .and_then(|v| v.first())
                .cloned(),
            dn: entry.dn,
            username: username.to_string(),
            groups,
            roles,
        };
        self.remember(&user);
        Ok(user)
    }

    /// The names of the groups that list `member_dn`.
    async fn search_groups(&self, member_dn: &str) -> Result<Vec<String>> {
        let filter = self.config.group_filter().replace("{member}", &ldap_escape(member_dn));
        let attribute = self.config.group_name_attribute.as_str();
        let entries = self
            .search(self.config.group_search_base(), &filter, &[attribute])
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| e.attrs.get(attribute).and_then(|v| v.first()).cloned())
            .collect())
    }

    /// A subtree search under `base` as the service account, on an idle connection or a
    /// new one. A kept connection that fails (the directory restarted since) is dropped
    /// and the search tried once more on a new one.
    async fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<Vec<SearchEntry>> {
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let (mut ldap, was_kept) = match kept {
            Some(ldap) => (ldap, true),
            None => (self.connect(true).await?, false),
        };
        let mut outcome = self.search_on(&mut ldap, base, filter, attrs).await;
        if was_kept && outcome.as_ref().is_err_and(lost) {
            ldap = self.connect(true).await?;
            outcome = self.search_on(&mut ldap, base, filter, attrs).await;
        }
        match outcome {
            Ok((entries, whole)) => {
                if whole
                    && let Ok(mut idle) = self.idle.lock()
                    && idle.len() < self.config.pool_size
                {
                    idle.push(ldap);
                }
                Ok(entries)
            }
            Err(e) => Err(self.failed(e, "a search", String::new())),
        }
    }

    /// What a failed operation means: the directory is gone or did not answer in time
    /// ([`UserStoreError::Unavailable`]), or it refused `operation` (its settings are
    /// wrong); `about` says what the operation was on.
    fn failed(&self, e: LdapError, operation: &'static str, about: String) -> UserStoreError {
        if lost(&e) {
            UserStoreError::Unavailable {
                store: self.name.clone(),
                reason: e.to_string(),
            }
        } else {
            UserStoreError::Directory {
                store: self.name.clone(),
                operation,
                reason: format!("{about}{e}"),
            }
        }
    }

    /// A subtree search in pages of [`PAGE_SIZE`] (the paged-results control, RFC 2696),
    /// so that a directory's size limit per answer (Active Directory's 1 000) does not cut
    /// a long answer short; at most [`MAX_ENTRIES`] entries are read. The flag says
    /// whether the search ran to its end (else the connection must not be reused).
    async fn search_on(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<SearchEntry>, bool), LdapError> {
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
        let mut stream = ldap
            .with_timeout(self.config.operation_timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs.to_vec())
            .await?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await? {
            entries.push(SearchEntry::construct(entry));
            if entries.len() >= MAX_ENTRIES {
                // The rest is not read; the connection, with the search still going on
                // it, is closed rather than kept.
                tracing::warn!(store = %self.name, base, "A search matched more than {MAX_ENTRIES} entries; the rest are not read.");
                return Ok((entries, false));
            }
        }
        stream.finish().await.success()?;
        Ok((entries, true))
    }

    /// Whether `password` binds as `dn`, on a connection of its own (a bind changes
    /// who a connection is).
    async fn bind_as(&self, dn: &str, password: &str) -> Result<bool> {
        let mut ldap = self.connect(false).await?;
        let outcome = ldap
            .with_timeout(self.config.operation_timeout)
            .simple_bind(dn, password)
            .await;
        let _ = ldap.unbind().await;
        match outcome {
            Ok(result) if result.rc == 0 => Ok(true),
            Ok(result) if matches!(result.rc, INVALID_CREDENTIALS | UNWILLING_TO_PERFORM) => Ok(false),
            Ok(result) => Err(UserStoreError::Directory {
                store: self.name.clone(),
                operation: "a user's bind",
                reason: format!("result code {}: {}", result.rc, result.text),
            }),
            Err(e) => Err(UserStoreError::Unavailable {
                store: self.name.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// A connection to the first URL that accepts one in time, bound as the service
    /// account when `as_service`.
    async fn connect(&self, as_service: bool) -> Result<Ldap> {
        let mut last = String::from("no URL configured");
        for url in &self.config.urls {
            if self.refuse_internal
                && let Err(why) = crate::address::refuse_internal(url).await
            {
                tracing::warn!(store = %self.name, %url, reason = %why, "Not connecting to a tenant's directory URL.");
                last = why;
                continue;
            }
            let settings = LdapConnSettings::new()
                .set_conn_timeout(self.config.connect_timeout)
                .set_starttls(self.config.start_tls && url.starts_with("ldap://"));
            let (conn, mut ldap) = match LdapConnAsync::with_settings(settings, url).await {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(store = %self.name, %url, error = %e, "Directory unreachable; trying the next URL.");
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let store = self.name.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(%store, error = %e, "Directory connection ended.");
                }
            });
            if !as_service {
                return Ok(ldap);
            }
            match ldap
                .with_timeout(self.config.operation_timeout)
                .simple_bind(&self.config.bind_dn, self.bind_password.expose())
                .await
            {
                Ok(result) if result.rc == 0 => return Ok(ldap),
                Ok(result) => {
                    return Err(UserStoreError::Directory {
                        store: self.name.clone(),
                        operation: "the service account's bind (bind_dn, bind_password)",
                        reason: format!("result code {}: {}", result.rc, result.text),
                    });
                }
                Err(e) => {
                    tracing::warn!(store = %self.name, %url, error = %e, "Directory did not answer the bind; trying the next URL.");
                    last = format!("{url}: {e}");
                }
            }
        }
        Err(UserStoreError::Unavailable {
            store: self.name.clone(),
            reason: last,
        })
    }
}

/// Whether `e` says the connection is gone or the directory did not answer in time
/// (rather than that it answered with an error).
fn lost(e: &LdapError) -> bool {
    !matches!(
        e,
        LdapError::LdapResult { .. } | LdapError::FilterParsing | LdapError::DecodingUTF8
    )
}

/// The attribute a user filter matches the name against: `uid` in
/// `(&(objectClass=person)(uid={username}))`.
fn username_attribute(filter: &str) -> Option<String> {
    let at = filter.find("={username}")?;
    let start = filter[..at].rfind('(')? + 1;
    let attribute = filter[start..at].trim();
    (!attribute.is_empty()
        && attribute
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';'))
    .then(|| attribute.to_string())
}

/// Whether a sign-in name may be sent to a directory at all.
fn plausible(username: &str) -> bool {
    !username.is_empty() && username.len() <= MAX_NAME_LEN && !username.chars().any(char::is_control)
}

/// Whether an Active Directory entry is disabled (`userAccountControl` has
/// ACCOUNTDISABLE); entries without the attribute are not.
fn disabled(entry: &SearchEntry) -> bool {
    entry
        .attrs
        .get("userAccountControl")
        .and_then(|v| v.first())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|flags| flags & AD_ACCOUNTDISABLE != 0)
}

/// The value of a DN's first RDN (`cn=apiPublishers,ou=groups,…` → `apiPublishers`),
/// with RFC 4514 escapes undone.
fn first_rdn_value(dn: &str) -> Option<String> {
    let mut value = String::new();
    let mut chars = dn.chars();
    // Up to the first unescaped `=`.
    let mut escaped = false;
    for c in chars.by_ref() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '=') => break,
            _ => escaped = false,
        }
    }
    let mut escaped = false;
    for c in chars {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, ',' | '+') => break,
            (_, c) => {
                value.push(c);
                escaped = false;
            }
        }
    }
    let value = value.trim().to_string();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_named_by_its_dns_first_value() {
        assert_eq!(
            first_rdn_value("cn=apiPublishers,ou=groups,dc=example,dc=com").as_deref(),
            Some("apiPublishers")
        );
        assert_eq!(
            first_rdn_value("CN=Sales\\, EMEA,OU=Groups,DC=corp").as_deref(),
            Some("Sales, EMEA")
        );
        assert_eq!(first_rdn_value("cn=a+sn=b,dc=x").as_deref(), Some("a"));
        assert_eq!(first_rdn_value("nonsense"), None);
        assert_eq!(first_rdn_value("cn=,dc=x"), None);
    }

    #[test]
    fn names_are_listed_by_the_attribute_the_filter_matches() {
        assert_eq!(
            username_attribute("(&(objectClass=person)(uid={username}))").as_deref(),
            Some("uid")
        );
        assert_eq!(
            username_attribute("(&(objectClass=user)(sAMAccountName={username}))").as_deref(),
            Some("sAMAccountName")
        );
        assert_eq!(username_attribute("(uid=x{username})"), None);
        assert_eq!(username_attribute("(|(a=*)(={username}))"), None);
    }

    #[test]
    fn implausible_names_are_not_sent() {
        assert!(plausible("alice"));
        for bad in ["", "a\nb", "a\0b", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(!plausible(bad), "{bad:?}");
        }
    }
}
