//! Reads a gateway environment's runtime [`Snapshot`] from the AM database (the event
//! hub serves it). The outbox sequence is read first and the tables after it, without a
//! shared transaction: anything written in between is also in an event after `seq`, and
//! gateways apply events idempotently, so the result converges.

use crate::db::on_pool;
use crate::{Database, Error, Result};
use tollgate_events::control::KeyManagerInfo;
use tollgate_events::snapshot::{
    ApplicationInfo, DeployedApi, KeyMappingInfo, RevocationInfo, Snapshot, SubscriptionInfo,
};
use tollgate_model::{Api, EpochMillis};

struct DeployedRow {
    api_id: String,
    revision_id: String,
    body: String,
    definition: Option<String>,
    lifecycle_status: String,
    is_default_version: bool,
}
crate::db::from_row!(DeployedRow {
    api_id,
    revision_id,
    body,
    definition,
    lifecycle_status,
    is_default_version
});

struct AppRow {
    id: String,
    name: String,
    owner: String,
    throttling_policy: String,
    token_type: String,
    status: String,
}
crate::db::from_row!(AppRow {
    id,
    name,
    owner,
    throttling_policy,
    token_type,
    status
});

struct SubRow {
    id: String,
    api_id: String,
    application_id: String,
    throttling_policy: String,
    status: String,
}
crate::db::from_row!(SubRow {
    id,
    api_id,
    application_id,
    throttling_policy,
    status
});

struct KeyRow {
    consumer_key: String,
    application_id: String,
    key_type: String,
    key_manager: String,
}
crate::db::from_row!(KeyRow {
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

/// The snapshot of `environment` at `now`.
pub async fn read(am: &Database, environment: &str, now: EpochMillis) -> Result<Snapshot> {
    let seq = crate::events::latest_seq(am).await?;
    let deployed: Vec<DeployedRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT d.api_id, d.revision_id, r.body, r.definition, a.lifecycle_status, a.is_default_version \
         FROM api_deployments d JOIN api_revisions r ON r.id = d.revision_id JOIN apis a ON a.id = d.api_id \
         WHERE d.environment = $1 ORDER BY d.api_id"
    )
    .bind(environment)
    .fetch_all(p)
    .await)?;
    let mut apis = Vec::with_capacity(deployed.len());
    for d in deployed {
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
        apis.push(DeployedApi {
            mocks,
            api_id: d.api_id,
            revision_id: d.revision_id,
            api,
            life_cycle_status: d.lifecycle_status.parse().map_err(Error::Corrupt)?,
            is_default_version: d.is_default_version,
        });
    }
    let applications: Vec<AppRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT id, name, owner, throttling_policy, token_type, status FROM applications ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
    let subscriptions: Vec<SubRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT id, api_id, application_id, throttling_policy, status FROM subscriptions ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
    let keys: Vec<KeyRow> = on_pool!(am.reader(), |p| sqlx::query_as(
        "SELECT consumer_key, application_id, key_type, key_manager FROM application_keys ORDER BY id"
    )
    .fetch_all(p)
    .await)?;
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
    let mut key_managers = Vec::new();
    for (_, km) in crate::key_managers::list_enabled(am).await? {
        let resource: tollgate_model::key_manager::KeyManager =
            serde_json::from_str(&km.body).map_err(|e| Error::Corrupt(format!("key manager {}: {e}", km.id)))?;
        let jwks: Option<serde_json::Value> = km.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok());
        let info = KeyManagerInfo::new(&km.id, &resource, jwks);
        key_managers
            .push(serde_json::to_value(&info).map_err(|e| Error::Corrupt(format!("key manager {}: {e}", km.id)))?);
    }
    // Single-tenant today: the default tenant's conditions.
    let block_conditions = crate::block_conditions::list(am, tollgate_model::TenantId::DEFAULT).await?;
    use tollgate_model::policy::PolicyLevel;
    let subscription_policies = policies_of(am, PolicyLevel::Subscription).await?;
    let application_policies = policies_of(am, PolicyLevel::Application).await?;
    let advanced_policies = policies_of(am, PolicyLevel::Advanced).await?;
    let custom_policies = policies_of(am, PolicyLevel::Custom).await?;
    Ok(Snapshot {
        seq,
        block_conditions,
        subscription_policies,
        application_policies,
        advanced_policies,
        custom_policies,
        environment: environment.to_string(),
        apis,
        applications: applications
            .into_iter()
            .map(|a| ApplicationInfo {
                id: a.id,
                name: a.name,
                owner: a.owner,
                tier: a.throttling_policy,
                token_type: a.token_type,
                status: a.status,
            })
            .collect(),
        subscriptions: subscriptions
            .into_iter()
            .map(|s| SubscriptionInfo {
                subscription_id: s.id,
                api_id: s.api_id,
                application_id: s.application_id,
                throttling_policy: s.throttling_policy,
                subscription_status: s.status,
            })
            .collect(),
        key_mappings: keys
            .into_iter()
            .map(|k| KeyMappingInfo {
                consumer_key: k.consumer_key,
                application_id: k.application_id,
                key_type: k.key_type,
                key_manager: k.key_manager,
            })
            .collect(),
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
        key_managers,
    })
}

/// The default tenant's policies of one level, in their REST shape.
async fn policies_of<T: serde::de::DeserializeOwned>(
    am: &Database,
    level: tollgate_model::policy::PolicyLevel,
) -> Result<Vec<T>> {
    crate::policies::list(am, tollgate_model::TenantId::DEFAULT, level)
        .await?
        .into_iter()
        .map(|p| serde_json::from_value(p.body).map_err(|e| Error::Corrupt(format!("{level} policy {}: {e}", p.name))))
        .collect()
}
