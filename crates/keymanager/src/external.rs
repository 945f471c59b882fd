//! Third-party key managers' signing keys: the key-manager component fetches each
//! enabled one's JWKS (from `certificates.value`, or the `jwks_uri` of its discovery
//! document), stores it, and writes a `key_manager_upserted` event carrying it whenever
//! it changes, so gateways verify those tokens without calling out themselves.

use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tollgate_events::control::KeyManagerInfo;
use tollgate_events::{ControlEvent, NewEvent};
use tollgate_model::key_manager::KeyManager;
use tollgate_model::{TenantId, now_millis};
use tollgate_store::Database;
use tollgate_store::key_managers::{self, KeyManagerRow};

/// Why one key manager's JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP request failed or answered an error status.
    #[error("fetching {url} failed: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The document was not what it should be.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] tollgate_store::Error),
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, FetchError> {
    let http = |reason: String| FetchError::Http {
        url: url.to_string(),
        reason,
    };
    let res = client.get(url).send().await.map_err(|e| http(e.to_string()))?;
    if !res.status().is_success() {
        return Err(http(format!("status {}", res.status())));
    }
    res.json().await.map_err(|e| http(format!("not JSON: {e}")))
}

/// Fetches the key set of one key manager.
pub async fn fetch_jwks(client: &reqwest::Client, km: &KeyManager) -> Result<Value, FetchError> {
    let url = match (&km.certificates, &km.well_known_endpoint) {
        (Some(c), _) => c.value.clone(),
        (None, Some(well_known)) => {
            let doc = get_json(client, well_known).await?;
            doc["jwks_uri"]
                .as_str()
                .ok_or_else(|| FetchError::Invalid(format!("{well_known} has no jwks_uri")))?
                .to_string()
        }
        (None, None) => return Err(FetchError::Invalid("no JWKS URL or discovery URL".into())),
    };
    let jwks = get_json(client, &url).await?;
    let keys = jwks["keys"]
        .as_array()
        .ok_or_else(|| FetchError::Invalid(format!("{url} is not a JWKS (no `keys` array)")))?;
    if keys.is_empty() {
        return Err(FetchError::Invalid(format!("{url} lists no keys")));
    }
    Ok(jwks)
}

/// Fetches every enabled key manager's JWKS once; stores and announces those that
/// changed. Returns how many changed. One failing provider does not stop the others.
pub async fn refresh_all(am: &Database, client: &reqwest::Client) -> Result<usize, FetchError> {
    let mut changed = 0;
    for (tenant, row) in key_managers::list_enabled(am).await? {
        // Each tenant's key managers are its own: the new keys are announced to that
        // tenant only. A tenant id that does not parse is never taken for the super tenant.
        let tenant: TenantId = match tenant.parse() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(key_manager = %row.name, tenant = %tenant, error = %e, "Stored key manager has an invalid tenant id; skipped.");
                metrics::counter!("tollgate_key_manager_jwks_fetch_failures_total").increment(1);
                continue;
            }
        };
        let km: KeyManager = match serde_json::from_str(&row.body) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(key_manager = %row.name, error = %e, "Stored key manager is unreadable.");
                continue;
            }
        };
        let jwks = match fetch_jwks(client, &km).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(key_manager = %row.name, error = %e, "Cannot refresh a key manager's JWKS; keeping the last one.");
                metrics::counter!("tollgate_key_manager_jwks_fetch_failures_total").increment(1);
                continue;
            }
        };
        let text = jwks.to_string();
        if row.jwks.as_deref() == Some(text.as_str()) {
            continue;
        }
        store(am, tenant, &row, &km, text, jwks).await?;
        changed += 1;
    }
    Ok(changed)
}

async fn store(
    am: &Database,
    tenant: TenantId,
    row: &KeyManagerRow,
    km: &KeyManager,
    text: String,
    jwks: Value,
) -> Result<(), FetchError> {
    let now = now_millis();
    let mut tx = am.begin().await?;
    if key_managers::set_jwks(&mut tx, row, &text, now).await? == 0 {
        // Changed or removed while we fetched; the next round fetches for the new one.
        return Ok(());
    }
    tollgate_store::events::append(
        &mut tx,
        &NewEvent::new(
            tenant,
            None,
            ControlEvent::KeyManagerUpserted(KeyManagerInfo::new(&row.id, km, Some(jwks))),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(key_manager = %row.name, "Fetched a new JWKS for a third-party key manager.");
    Ok(())
}

/// Refreshes every `interval` until `shutdown`; the first run is immediate.
pub async fn refresh_loop(am: Database, interval: Duration, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the JWKS HTTP client; third-party key managers stay unverified.");
            return;
        }
    };
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = refresh_all(&am, &client).await {
                    tracing::warn!(error = %e, "Refreshing third-party key managers failed.");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}
