//! Reads a gateway environment's runtime [`Snapshot`] from the AM database (the event
//! hub serves it). The outbox sequence is read first and the tables after it, without a
//! shared transaction: anything written in between is also in an event after `seq`, and
//! gateways apply events idempotently, so the result converges.
//!
//! Every row is placed by its `tenant_id`: the super tenant's in the snapshot's top-level
//! lists (what a gateway of the previous release reads), each other tenant's in its own
//! [`TenantSnapshot`]; a gateway limited to some tenants ([`TenantFilter`]) gets only
//! theirs. Revocations and signing keys belong to no tenant and always go.

use crate::db::on_pool;
use crate::{Database, Error, Result};
use std::collections::BTreeMap;
use tollgate_events::TenantFilter;
use tollgate_events::control::KeyManagerInfo;
use tollgate_events::snapshot::{
    ApplicationInfo, DeployedApi, KeyMappingInfo, RevocationInfo, Snapshot, SubscriptionInfo, TenantSnapshot,
};
use tollgate_model::{Api, EpochMillis, TenantId};

struct DeployedRow {
    tenant_id: String,
    api_id: String,
    revision_id: String,
    body: String,
    definition: Option<String>,
    lifecycle_status: String,
    is_default_version: bool,
}
crate::db::from_row!(DeployedRow {
    tenant_id,
    api_id,
    revision_id,
    body,
    definition,
    lifecycle_status,
    is_default_version
});

struct AppRow {
    tenant_id: String,
    id: String,
    name: String,
    owner: String,
    throttling_policy: String,
    token_type: String,
    status: String,
}
crate::db::from_row!(AppRow {
    tenant_id,
    id,
    name,
    owner,
    throttling_policy,
    token_type,
    status
});

struct SubRow {
    tenant_id: String,
    id: String,
    api_id: String,
    application_id: String,
    throttling_policy: String,
    status: String,
}
crate::db::from_row!(SubRow {
    tenant_id,
    id,
    api_id,
    application_id,
    throttling_policy,
    status
});

struct KeyRow {
    tenant_id: String,
    consumer_key: String,
    application_id: String,
    key_type: String,
    key_manager: String,
}
crate::db::from_row!(KeyRow {
    tenant_id,
    consumer_key,
    application_id,
    key_type,
    key_manager
});

struct RevocationRow {
    kind: String,
    subject: String,
    revoked_at: i64,
    expires_at: i64,
}
crate::db::from_row!(RevocationRow {
    kind,
    subject,
    revoked_at,
    expires_at
});

/// The snapshot of `environment` at `now`, for every tenant.
pub async fn read(am: &Database, environment: &str, now: EpochMillis) -> Result<Snapshot> {
    read_for(am, environment, now, &TenantFilter::all()).await
}

/// Where each tenant's rows go while a snapshot is read: the tenants in scope, by id.
struct Sections {
    by_tenant: BTreeMap<TenantId, TenantSnapshot>,
}

impl Sections {
    /// The section of the tenant whose id is stored as `id`; `None` when that tenant is out
    /// of scope, or has no state (a row the AM database cannot place, left out).
    fn of(&mut self, id: &str) -> Result<Option<&mut TenantSnapshot>> {
        let id: TenantId = id
            .parse()
            .map_err(|e| Error::Corrupt(format!("tenant id `{id}`: {e}")))?;
        Ok(self.by_tenant.get_mut(&id))
    }
}

/// The snapshot of `environment` at `now` for the tenants `tenants` names.
pub async fn read_for(am: &Database, environment: &str, now: EpochMillis, tenants: &TenantFilter) -> Result<Snapshot> {
    let seq = crate::events::latest_seq(am).await?;
    let mut sections = Sections {
        by_tenant: crate::tenants::states(am)
            .await?
            .into_iter()
            .filter(|t| tenants.includes(&t.domain))
            .map(|t| (t.tenant_id, TenantSnapshot::new(t)))
            .collect(),
    };
    let deployed: Vec<DeployedRow> = on_pool!(am.reader(), |p| {
        sqlx::query_as(
        "SELECT a.tenant_id, d.api_id, d.revision_id, r.body, r.definition, a.lifecycle_status, a.is_default_version \
         FROM api_deployments d JOIN api_revisions r ON r.id = d.revision_id JOIN apis a ON a.id = d.api_id \
         WHERE d.environment = $1 ORDER BY d.api_id"
    )
    .bind(environment)
    .fetch_all(p)
    .await
    })?;
    for d in deployed {
        let Some(section) = sections.of(&d.tenant_id)? else {
            continue;
        };
        let api: Api = serde_json::from_str(&d.body)
            .map_err(|e| Error::Corrupt(format!("revision {} body: {e}", d.revision_id)))?;
        // A mocked API's answers are compiled from the revision's definition here, as the
        // Publisher does for its deploy event (decision 016).
        let mocks = match (&d.definition, api.is_mocked()) {
            (Some(text), true) => serde_json::from_str::<serde_json::Value>(text)
                .map(|doc| tollgate_model::mock::compile(&doc))
                .map_err(|e| Error::Corrupt(format!("revision {} definition: {e}", d.revision_id)))?,
            _ => Vec::new(),
        };
        section.apis.push(DeployedApi {
            mocks,
            api_id: d.api_id,
            revision_id: d.revision_id,
            api,
            life_cycle_status: d.lifecycle_status.parse().map_err(Error::Corrupt)?,
            is_default_version: d.is_default_version,
        });
    }
    let applications: Vec<AppRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT tenant_id, id, name, owner, throttling_policy, token_type, status FROM applications ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
    for a in applications {
        if let Some(section) = sections.of(&a.tenant_id)? {
            section.applications.push(ApplicationInfo {
                id: a.id,
                name: a.name,
                owner: a.owner,
                tier: a.throttling_policy,
                token_type: a.token_type,
                status: a.status,
            });
        }
    }
    let subscriptions: Vec<SubRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT tenant_id, id, api_id, application_id, throttling_policy, status FROM subscriptions ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
    for s in subscriptions {
        if let Some(section) = sections.of(&s.tenant_id)? {
            section.subscriptions.push(SubscriptionInfo {
                subscription_id: s.id,
                api_id: s.api_id,
                application_id: s.application_id,
                throttling_policy: s.throttling_policy,
                subscription_status: s.status,
            });
        }
    }
    let keys: Vec<KeyRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT tenant_id, consumer_key, application_id, key_type, key_manager FROM application_keys ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
    for k in keys {
        if let Some(section) = sections.of(&k.tenant_id)? {
            section.key_mappings.push(KeyMappingInfo {
                consumer_key: k.consumer_key,
                application_id: k.application_id,
                key_type: k.key_type,
                key_manager: k.key_manager,
            });
        }
    }
    // Revocations belong to no gateway's tenant choice: every gateway gets them all.
    let revocations: Vec<RevocationRow> = on_pool!(am.reader(), |p| {
        sqlx::query_as(
        "SELECT kind, subject, revoked_at, expires_at FROM revocations WHERE expires_at > $1 ORDER BY revoked_at, id"
    )
    .bind(now)
    .fetch_all(p)
    .await
    })?;
    let signing_keys = crate::oauth::published_signing_keys(am, now)
        .await?
        .into_iter()
        .map(|k| serde_json::from_str(&k.public_jwk).map_err(|e| Error::Corrupt(format!("key {}: {e}", k.kid))))
        .collect::<Result<Vec<serde_json::Value>>>()?;
    for (tenant, km) in crate::key_managers::list_enabled(am).await? {
        let Some(section) = sections.of(&tenant)? else {
            continue;
        };
        let resource: tollgate_model::key_manager::KeyManager =
            serde_json::from_str(&km.body).map_err(|e| Error::Corrupt(format!("key manager {}: {e}", km.id)))?;
        let jwks: Option<serde_json::Value> = km.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok());
        let info = KeyManagerInfo::new(&km.id, &resource, jwks);
        section
            .key_managers
            .push(serde_json::to_value(&info).map_err(|e| Error::Corrupt(format!("key manager {}: {e}", km.id)))?);
    }
    use tollgate_model::policy::PolicyLevel;
    for (tenant, section) in &mut sections.by_tenant {
        section.block_conditions = crate::block_conditions::list(am, *tenant).await?;
        section.subscription_policies = policies_of(am, *tenant, PolicyLevel::Subscription).await?;
        section.application_policies = policies_of(am, *tenant, PolicyLevel::Application).await?;
        section.advanced_policies = policies_of(am, *tenant, PolicyLevel::Advanced).await?;
        section.custom_policies = policies_of(am, *tenant, PolicyLevel::Custom).await?;
    }
    // The super tenant's entities go in the top-level lists; its entry keeps its state.
    let mut snapshot = Snapshot {
        seq,
        environment: environment.to_string(),
        revocations: revocations
            .into_iter()
            .map(|r| RevocationInfo {
                revocation_type: r.kind,
                subject: r.subject,
                revoked_at: r.revoked_at,
                expires_at: r.expires_at,
            })
            .collect(),
        signing_keys,
        ..Snapshot::default()
    };
    let mut others = Vec::with_capacity(sections.by_tenant.len());
    for (tenant, section) in sections.by_tenant {
        if tenant != TenantId::DEFAULT {
            others.push(section);
            continue;
        }
        let TenantSnapshot {
            state,
            apis,
            applications,
            subscriptions,
            key_mappings,
            key_managers,
            block_conditions,
            subscription_policies,
            application_policies,
            advanced_policies,
            custom_policies,
        } = section;
        snapshot.apis = apis;
        snapshot.applications = applications;
        snapshot.subscriptions = subscriptions;
        snapshot.key_mappings = key_mappings;
        snapshot.key_managers = key_managers;
        snapshot.block_conditions = block_conditions;
        snapshot.subscription_policies = subscription_policies;
        snapshot.application_policies = application_policies;
        snapshot.advanced_policies = advanced_policies;
        snapshot.custom_policies = custom_policies;
        snapshot.tenants.push(TenantSnapshot::new(state));
    }
    others.sort_by(|a, b| a.state.domain.cmp(&b.state.domain));
    snapshot.tenants.extend(others);
    Ok(snapshot)
}

/// A tenant's policies of one level, in their REST shape.
async fn policies_of<T: serde::de::DeserializeOwned>(
    am: &Database,
    tenant: TenantId,
    level: tollgate_model::policy::PolicyLevel,
) -> Result<Vec<T>> {
    crate::policies::list(am, tenant, level)
        .await?
        .into_iter()
        .map(|p| serde_json::from_value(p.body).map_err(|e| Error::Corrupt(format!("{level} policy {}: {e}", p.name))))
        .collect()
}
