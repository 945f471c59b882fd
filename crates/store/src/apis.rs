//! APIs, their lifecycle history, revisions and deployments (AM database). Plain data
//! access: the Publisher component owns the rules (validation, uniqueness messages,
//! lifecycle transitions, outbox events) and calls these inside its transactions.

use crate::db::{on_pool, on_tx};
use crate::{Database, Error, Result, Tx};
use tollgate_model::api::{base_context, resolve_context};
use tollgate_model::{Api, EpochMillis, LifecycleState, TenantId};

/// An API as stored: the resource plus what only the server knows.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredApi {
    /// Id.
    pub id: String,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// The resource (its `id`, `provider`, `lifeCycleStatus` and times are filled from
    /// the columns when read).
    pub api: Api,
    /// The OpenAPI definition (JSON text), when there is one.
    pub definition: Option<String>,
    /// Last revision number handed out (numbers are never reused).
    pub revision_counter: i64,
    /// Creation time.
    pub created_at: EpochMillis,
    /// Last change; also the ETag.
    pub updated_at: EpochMillis,
}

struct ApiRow {
    id: String,
    tenant_id: String,
    provider: String,
    lifecycle_status: String,
    is_default_version: bool,
    body: String,
    definition: Option<String>,
    revision_counter: i64,
    created_at: i64,
    updated_at: i64,
}
crate::db::from_row!(ApiRow {
    id,
    tenant_id,
    provider,
    lifecycle_status,
    is_default_version,
    body,
    definition,
    revision_counter,
    created_at,
    updated_at
});

const API_COLUMNS: &str = "id, tenant_id, provider, lifecycle_status, is_default_version, body, definition, revision_counter, created_at, updated_at";

impl TryFrom<ApiRow> for StoredApi {
    type Error = Error;
    fn try_from(r: ApiRow) -> Result<Self> {
        let mut api: Api =
            serde_json::from_str(&r.body).map_err(|e| Error::Corrupt(format!("API {} body: {e}", r.id)))?;
        api.id = Some(r.id.clone());
        api.provider = Some(r.provider);
        api.life_cycle_status = Some(r.lifecycle_status.parse().map_err(Error::Corrupt)?);
        api.is_default_version = r.is_default_version;
        api.created_time = Some(tollgate_model::rfc3339(r.created_at));
        api.last_updated_time = Some(tollgate_model::rfc3339(r.updated_at));
        Ok(StoredApi {
            tenant_id: r
                .tenant_id
                .parse()
                .map_err(|e| Error::Corrupt(format!("API {} tenant: {e}", r.id)))?,
            id: r.id,
            api,
            definition: r.definition,
            revision_counter: r.revision_counter,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// The JSON stored in `body`: the resource without the fields kept in columns.
fn body_json(api: &Api) -> Result<String> {
    let mut a = api.clone();
    a.id = None;
    a.provider = None;
    a.life_cycle_status = None;
    a.created_time = None;
    a.last_updated_time = None;
    serde_json::to_string(&a).map_err(|e| Error::Corrupt(e.to_string()))
}

fn tags_column(api: &Api) -> String {
    let mut s = String::from(",");
    for t in &api.tags {
        s.push_str(&t.to_lowercase());
        s.push(',');
    }
    s
}

/// The name of the lock ([`crate::lock_named`]) that API writes, and deletes of what APIs
/// refer to (policies, shared scopes), take, so that a reference cannot appear between
/// an in-use check and the delete it allows.
pub fn references_lock(tenant: TenantId) -> String {
    format!("tollgate:api-references:{tenant}")
}

/// Inserts a new API.
pub async fn insert(tx: &mut Tx, stored: &StoredApi) -> Result<()> {
    let api = &stored.api;
    let body = body_json(api)?;
    let status = api.life_cycle_status.unwrap_or_default();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO apis (id, tenant_id, name, version, context, resolved_context, base_context, provider, \
         lifecycle_status, is_default_version, tags, body, definition, revision_counter, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    )
    .bind(&stored.id)
    .bind(stored.tenant_id.to_string())
    .bind(&api.name)
    .bind(&api.version)
    .bind(&api.context)
    .bind(resolve_context(&api.context, &api.version))
    .bind(base_context(&api.context))
    .bind(api.provider.as_deref().unwrap_or(""))
    .bind(status.as_str())
    .bind(api.is_default_version)
    .bind(tags_column(api))
    .bind(&body)
    .bind(&stored.definition)
    .bind(stored.revision_counter)
    .bind(stored.created_at)
    .bind(stored.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces an API's editable content (name, version, context, body, definition).
/// Lifecycle state, provider and revision counter are not touched here.
pub async fn update(tx: &mut Tx, stored: &StoredApi) -> Result<()> {
    let api = &stored.api;
    let body = body_json(api)?;
    on_tx!(tx, |c| sqlx::query(
        "UPDATE apis SET name = $2, version = $3, context = $4, resolved_context = $5, base_context = $6, \
         is_default_version = $7, tags = $8, body = $9, definition = $10, updated_at = $11 WHERE id = $1"
    )
    .bind(&stored.id)
    .bind(&api.name)
    .bind(&api.version)
    .bind(&api.context)
    .bind(resolve_context(&api.context, &api.version))
    .bind(base_context(&api.context))
    .bind(api.is_default_version)
    .bind(tags_column(api))
    .bind(&body)
    .bind(&stored.definition)
    .bind(stored.updated_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Reads one API of a tenant.
pub async fn get(db: &Database, tenant: TenantId, id: &str) -> Result<Option<StoredApi>> {
    let sql = format!("SELECT {API_COLUMNS} FROM apis WHERE tenant_id = $1 AND id = $2");
    let row: Option<ApiRow> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(StoredApi::try_from).transpose()
}

/// Finds a tenant's API by name (any case) and version, as the reference's export and
/// import name them, inside a transaction (its row locked as by [`get_in`]).
pub async fn find_by_name_in(tx: &mut Tx, tenant: TenantId, name: &str, version: &str) -> Result<Option<StoredApi>> {
    let id: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT id FROM apis WHERE tenant_id = $1 AND lower(name) = lower($2) AND version = $3"
    )
    .bind(tenant.to_string())
    .bind(name)
    .bind(version)
    .fetch_optional(c)
    .await)?;
    match id {
        Some(id) => get_in(tx, tenant, &id).await,
        None => Ok(None),
    }
}

/// Finds a tenant's API by name (any case) and version.
pub async fn find_by_name(db: &Database, tenant: TenantId, name: &str, version: &str) -> Result<Option<StoredApi>> {
    let sql =
        format!("SELECT {API_COLUMNS} FROM apis WHERE tenant_id = $1 AND lower(name) = lower($2) AND version = $3");
    let row: Option<ApiRow> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(name)
        .bind(version)
        .fetch_optional(p)
        .await)?;
    row.map(StoredApi::try_from).transpose()
}

/// Reads one API inside a transaction, first taking its row lock (a no-op UPDATE, which
/// works on both engines): every writer of one API then runs one after the other, and
/// what this returns stays current until the transaction ends. On PostgreSQL (READ
/// COMMITTED) that is what makes `If-Match`, lifecycle transitions and revision limits
/// safe against concurrent requests; SQLite has a single writer anyway.
pub async fn get_in(tx: &mut Tx, tenant: TenantId, id: &str) -> Result<Option<StoredApi>> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE apis SET revision_counter = revision_counter WHERE tenant_id = $1 AND id = $2"
    )
    .bind(tenant.to_string())
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let sql = format!("SELECT {API_COLUMNS} FROM apis WHERE tenant_id = $1 AND id = $2");
    let row: Option<ApiRow> = on_tx!(tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(c)
        .await)?;
    row.map(StoredApi::try_from).transpose()
}

/// Filters for listing APIs (all optional; all must match).
#[derive(Clone, Debug, Default)]
pub struct ApiFilter {
    /// Substring of the name (case-insensitive).
    pub name: Option<String>,
    /// Substring of the resolved context (case-insensitive).
    pub context: Option<String>,
    /// A whole tag.
    pub tag: Option<String>,
    /// Exact version.
    pub version: Option<String>,
    /// Only APIs in one of these states (empty: any).
    pub states: Vec<LifecycleState>,
}

impl ApiFilter {
    /// Parses the reference's `query` search parameter: `name:`, `context:`, `tag:`,
    /// `version:` and `status:` terms, or bare words matched against names.
    pub fn parse(query: &str) -> Result<ApiFilter, tollgate_model::Error> {
        use tollgate_model::Error as E;
        let mut filter = ApiFilter::default();
        for term in query.split_whitespace() {
            let (key, value) = term.split_once(':').unwrap_or(("name", term));
            if value.is_empty() {
                return Err(E::field("query", format!("`{term}` has no value")));
            }
            match key.to_ascii_lowercase().as_str() {
                "name" => filter.name = Some(value.to_string()),
                "context" => filter.context = Some(value.to_string()),
                "tag" | "tags" => filter.tag = Some(value.to_string()),
                "version" => filter.version = Some(value.to_string()),
                "status" => filter
                    .states
                    .push(value.parse().map_err(|e: String| E::field("query", e))?),
                other => {
                    return Err(E::field(
                        "query",
                        format!("unknown search key `{other}`; use name, context, tag, version or status"),
                    ));
                }
            }
        }
        Ok(filter)
    }
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Lists a tenant's APIs matching `filter`, by name then version, with the total count.
pub async fn list(
    db: &Database,
    tenant: TenantId,
    filter: &ApiFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<StoredApi>, i64)> {
    let name = filter.name.as_deref().map(like_pattern);
    let context = filter.context.as_deref().map(like_pattern);
    let tag = filter.tag.as_deref().map(|t| {
        format!(
            "%,{},%",
            t.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let states: Option<String> = (!filter.states.is_empty()).then(|| {
        format!(
            ",{},",
            filter.states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
        )
    });
    let filter_sql = "tenant_id = $1 \
         AND ($2 IS NULL OR lower(name) LIKE $2 ESCAPE '\\') \
         AND ($3 IS NULL OR lower(resolved_context) LIKE $3 ESCAPE '\\') \
         AND ($4 IS NULL OR tags LIKE $4 ESCAPE '\\') \
         AND ($5 IS NULL OR version = $5) \
         AND ($6 IS NULL OR $6 LIKE '%,' || lifecycle_status || ',%')";
    let list_sql =
        format!("SELECT {API_COLUMNS} FROM apis WHERE {filter_sql} ORDER BY lower(name), version LIMIT $7 OFFSET $8");
    let count_sql = format!("SELECT COUNT(*) FROM apis WHERE {filter_sql}");
    let rows: Vec<ApiRow> = on_pool!(db.reader(), |p| sqlx::query_as(sqlx::AssertSqlSafe(list_sql.clone()))
        .bind(tenant.to_string())
        .bind(&name)
        .bind(&context)
        .bind(&tag)
        .bind(&filter.version)
        .bind(&states)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
    let total: i64 = on_pool!(db.reader(), |p| sqlx::query_scalar(sqlx::AssertSqlSafe(
        count_sql.clone()
    ))
    .bind(tenant.to_string())
    .bind(&name)
    .bind(&context)
    .bind(&tag)
    .bind(&filter.version)
    .bind(&states)
    .fetch_one(p)
    .await)?;
    Ok((rows.into_iter().map(StoredApi::try_from).collect::<Result<_>>()?, total))
}

/// Another API of the tenant that already uses `name`+`version`, or the resolved
/// context, or the same base context under a different name: `(id, name, version)`.
pub async fn find_clash(
    tx: &mut Tx,
    tenant: TenantId,
    api: &Api,
    exclude_id: Option<&str>,
) -> Result<Option<(String, String, String, &'static str)>> {
    let row: Option<(String, String, String, String, String)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, name, version, resolved_context, base_context FROM apis \
         WHERE tenant_id = $1 AND ($2 IS NULL OR id <> $2) \
         AND ((lower(name) = lower($3) AND version = $4) OR resolved_context = $5 \
              OR (base_context = $6 AND lower(name) <> lower($3))) \
         LIMIT 1"
    )
    .bind(tenant.to_string())
    .bind(exclude_id)
    .bind(&api.name)
    .bind(&api.version)
    .bind(resolve_context(&api.context, &api.version))
    .bind(base_context(&api.context))
    .fetch_optional(c)
    .await)?;
    Ok(row.map(|(id, name, version, resolved, _)| {
        let what = if name.eq_ignore_ascii_case(&api.name) && version == api.version {
            "name and version"
        } else if resolved == resolve_context(&api.context, &api.version) {
            "context"
        } else {
            "base context"
        };
        (id, name, version, what)
    }))
}

/// Makes `id` the only default version among the tenant's APIs named `name`.
pub async fn clear_other_default_versions(tx: &mut Tx, tenant: TenantId, name: &str, id: &str) -> Result<u64> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE apis SET is_default_version = FALSE WHERE tenant_id = $1 AND lower(name) = lower($2) AND id <> $3 \
         AND is_default_version = TRUE"
    )
    .bind(tenant.to_string())
    .bind(name)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n)
}

/// Deletes an API with its history, revisions and deployments.
pub async fn delete(tx: &mut Tx, id: &str) -> Result<()> {
    for sql in [
        "DELETE FROM api_ratings WHERE api_id = $1",
        "DELETE FROM api_deployments WHERE api_id = $1",
        "DELETE FROM api_revisions WHERE api_id = $1",
        "DELETE FROM api_lifecycle_history WHERE api_id = $1",
        "DELETE FROM apis WHERE id = $1",
    ] {
        on_tx!(tx, |c| sqlx::query(sql)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Sets an API's lifecycle state and records the change in its history.
pub async fn set_lifecycle(
    tx: &mut Tx,
    id: &str,
    from: LifecycleState,
    to: LifecycleState,
    user: &str,
    at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "UPDATE apis SET lifecycle_status = $2, updated_at = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(to.as_str())
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    record_lifecycle(tx, id, Some(from), to, user, at).await
}

/// Appends a lifecycle history entry (`from` is `None` for creation).
pub async fn record_lifecycle(
    tx: &mut Tx,
    id: &str,
    from: Option<LifecycleState>,
    to: LifecycleState,
    user: &str,
    at: EpochMillis,
) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO api_lifecycle_history (id, api_id, previous_state, post_state, username, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(id)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(user)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// One lifecycle change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleEntry {
    /// State before (`None` at creation).
    pub previous_state: Option<String>,
    /// State after.
    pub post_state: String,
    /// Who changed it.
    pub username: String,
    /// When.
    pub updated_at: i64,
}
crate::db::from_row!(LifecycleEntry {
    previous_state,
    post_state,
    username,
    updated_at
});

/// An API's lifecycle history, oldest first.
pub async fn lifecycle_history(db: &Database, id: &str) -> Result<Vec<LifecycleEntry>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT previous_state, post_state, username, updated_at FROM api_lifecycle_history \
         WHERE api_id = $1 ORDER BY updated_at, id"
    )
    .bind(id)
    .fetch_all(p)
    .await)?)
}

/// A stored revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionRow {
    /// Id.
    pub id: String,
    /// The API it snapshots.
    pub api_id: String,
    /// Per-API number (1, 2, …; never reused).
    pub number: i64,
    /// Free text.
    pub description: Option<String>,
    /// The API resource at the time (JSON).
    pub body: String,
    /// The OpenAPI definition at the time.
    pub definition: Option<String>,
    /// When it was made.
    pub created_at: i64,
}
crate::db::from_row!(RevisionRow {
    id,
    api_id,
    number,
    description,
    body,
    definition,
    created_at
});

/// Takes the next revision number of an API (inside the transaction that uses it).
pub async fn next_revision_number(tx: &mut Tx, api_id: &str) -> Result<i64> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "UPDATE apis SET revision_counter = revision_counter + 1 WHERE id = $1 RETURNING revision_counter"
    )
    .bind(api_id)
    .fetch_one(c)
    .await)?;
    Ok(n)
}

/// Stores a revision.
pub async fn insert_revision(tx: &mut Tx, rev: &RevisionRow) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO api_revisions (id, api_id, number, description, body, definition, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(&rev.id)
    .bind(&rev.api_id)
    .bind(rev.number)
    .bind(&rev.description)
    .bind(&rev.body)
    .bind(&rev.definition)
    .bind(rev.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// An API's revisions, oldest first.
pub async fn revisions(db: &Database, api_id: &str) -> Result<Vec<RevisionRow>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, api_id, number, description, body, definition, created_at FROM api_revisions \
         WHERE api_id = $1 ORDER BY number"
    )
    .bind(api_id)
    .fetch_all(p)
    .await)?)
}

/// An API's revisions, oldest first, inside a transaction.
pub async fn revisions_in(tx: &mut Tx, api_id: &str) -> Result<Vec<RevisionRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, api_id, number, description, body, definition, created_at FROM api_revisions \
         WHERE api_id = $1 ORDER BY number"
    )
    .bind(api_id)
    .fetch_all(c)
    .await)?)
}

/// Counts an API's revisions (inside a transaction, for the limit check).
pub async fn count_revisions(tx: &mut Tx, api_id: &str) -> Result<i64> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_revisions WHERE api_id = $1"
    )
    .bind(api_id)
    .fetch_one(c)
    .await)?)
}

/// One revision of an API.
pub async fn revision(db: &Database, api_id: &str, revision_id: &str) -> Result<Option<RevisionRow>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, api_id, number, description, body, definition, created_at FROM api_revisions \
         WHERE api_id = $1 AND id = $2"
    )
    .bind(api_id)
    .bind(revision_id)
    .fetch_optional(p)
    .await)?)
}

/// Deletes a revision.
pub async fn delete_revision(tx: &mut Tx, revision_id: &str) -> Result<()> {
    on_tx!(tx, |c| sqlx::query("DELETE FROM api_revisions WHERE id = $1")
        .bind(revision_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Which revision an environment serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentRow {
    /// The API.
    pub api_id: String,
    /// The gateway environment.
    pub environment: String,
    /// The revision it serves.
    pub revision_id: String,
    /// The host consumers use.
    pub vhost: Option<String>,
    /// Whether the Developer Portal lists this environment's URL.
    pub display_on_devportal: bool,
    /// When it was deployed.
    pub deployed_at: i64,
}
crate::db::from_row!(DeploymentRow {
    api_id,
    environment,
    revision_id,
    vhost,
    display_on_devportal,
    deployed_at
});

/// An API's deployments, by environment.
pub async fn deployments(db: &Database, api_id: &str) -> Result<Vec<DeploymentRow>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT api_id, environment, revision_id, vhost, display_on_devportal, deployed_at FROM api_deployments \
         WHERE api_id = $1 ORDER BY environment"
    )
    .bind(api_id)
    .fetch_all(p)
    .await)?)
}

/// An API's deployments read inside a transaction.
pub async fn deployments_in(tx: &mut Tx, api_id: &str) -> Result<Vec<DeploymentRow>> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT api_id, environment, revision_id, vhost, display_on_devportal, deployed_at FROM api_deployments \
         WHERE api_id = $1 ORDER BY environment"
    )
    .bind(api_id)
    .fetch_all(c)
    .await)?)
}

/// Deploys a revision to an environment, replacing whatever it served.
pub async fn upsert_deployment(tx: &mut Tx, d: &DeploymentRow) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO api_deployments (api_id, environment, revision_id, vhost, display_on_devportal, deployed_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (api_id, environment) DO UPDATE SET revision_id = excluded.revision_id, \
         vhost = excluded.vhost, display_on_devportal = excluded.display_on_devportal, deployed_at = excluded.deployed_at"
    )
    .bind(&d.api_id)
    .bind(&d.environment)
    .bind(&d.revision_id)
    .bind(&d.vhost)
    .bind(d.display_on_devportal)
    .bind(d.deployed_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Removes one environment's deployment of an API.
pub async fn delete_deployment(tx: &mut Tx, api_id: &str, environment: &str) -> Result<()> {
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM api_deployments WHERE api_id = $1 AND environment = $2"
    )
    .bind(api_id)
    .bind(environment)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
