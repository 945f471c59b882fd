//! The seam between gateways and the event hub: a gateway boots from a [`Snapshot`] and
//! then watches the events after it. In all-in-one the traffic manager implements this
//! in-process over the AM database; across processes the same trait is implemented over
//! HTTP (snapshot + SSE watch), so the gateway's code is the same either way.

use crate::{Event, Snapshot};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// Why the hub could not answer.
#[derive(Debug, thiserror::Error)]
#[error("event hub unavailable: {0}")]
pub struct HubError(pub String);

/// A boxed future, so the trait can be used as `dyn Hub`.
pub type HubFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, HubError>> + Send + 'a>>;

/// What a watch delivers, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchItem {
    /// The next events after everything delivered before, in sequence order.
    Events(Vec<Event>),
    /// Everything up to `seq` has been delivered and nothing newer exists yet. A watcher
    /// whose state is older than `seq` has missed something and must catch up.
    Heartbeat {
        /// The sequence the hub has delivered up to.
        seq: i64,
    },
    /// The hub no longer holds the events after the sequence asked for (compacted away):
    /// load a new snapshot.
    Resnapshot,
    /// Everything up to `seq` that the watch asked for has been delivered: the events
    /// between concerned tenants the watch leaves out ([`TenantFilter`]). Sent only to
    /// watches limited to some tenants, so that their sequence keeps up with the hub's
    /// and a heartbeat does not read as missed events.
    Progress {
        /// The sequence delivered up to.
        seq: i64,
    },
}

/// Which tenants a gateway serves (`gateway.tenants`): all of them, or those named by
/// domain (`carbon.super` for the super tenant). The hub sends a limited gateway only
/// those tenants' snapshot entries and events, plus what belongs to no tenant (signing
/// keys and revocations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantFilter {
    /// `None`: every tenant.
    domains: Option<std::collections::BTreeSet<String>>,
}

impl TenantFilter {
    /// Every tenant.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only the tenants of these domains; no domain at all means every tenant (as an
    /// empty `gateway.tenants` does).
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(domains: I) -> Self {
        let domains: std::collections::BTreeSet<String> = domains
            .into_iter()
            .map(Into::into)
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect();
        Self {
            domains: (!domains.is_empty()).then_some(domains),
        }
    }

    /// Whether every tenant is included.
    pub fn is_all(&self) -> bool {
        self.domains.is_none()
    }

    /// Whether the tenant of `domain` is included.
    pub fn includes(&self, domain: &str) -> bool {
        self.domains.as_ref().is_none_or(|d| d.contains(domain))
    }

    /// The domains named, when limited.
    pub fn domains(&self) -> Option<impl Iterator<Item = &str>> {
        self.domains.as_ref().map(|d| d.iter().map(String::as_str))
    }

    /// The `tenants` query parameter's value (domains joined by `,`), when limited.
    pub fn to_query(&self) -> Option<String> {
        self.domains
            .as_ref()
            .map(|d| d.iter().map(String::as_str).collect::<Vec<_>>().join(","))
    }

    /// Reads a `tenants` query parameter: domains separated by `,`; each must be a tenant
    /// domain or `carbon.super`, else the error names the first that is not.
    pub fn from_query(value: &str) -> Result<Self, String> {
        let domains: Vec<&str> = value.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
        for domain in &domains {
            check_domain(domain).map_err(|why| format!("`{domain}` {why}"))?;
        }
        Ok(Self::only(domains))
    }
}

impl std::fmt::Display for TenantFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_query() {
            None => f.write_str("every tenant"),
            Some(list) => write!(f, "tenants {list}"),
        }
    }
}

/// Decides, event by event, what a watch limited by a [`TenantFilter`] gets: the events
/// of its tenants (learning the id of a tenant created later from its `tenant_changed`),
/// and those that concern every gateway whatever tenant wrote them (signing keys and
/// revocations: a revocation missed is a hole, one too many costs a map entry).
#[derive(Clone, Debug)]
pub struct TenantScope {
    filter: TenantFilter,
    ids: std::collections::HashSet<tollgate_model::TenantId>,
}

impl TenantScope {
    /// The scope of `filter`, given the tenants known now.
    pub fn new<'s>(filter: TenantFilter, known: impl IntoIterator<Item = &'s crate::control::TenantState>) -> Self {
        let ids = known
            .into_iter()
            .filter(|t| filter.includes(&t.domain))
            .map(|t| t.tenant_id)
            .collect();
        Self { filter, ids }
    }

    /// Whether the scope includes every tenant (nothing is ever left out).
    pub fn is_all(&self) -> bool {
        self.filter.is_all()
    }

    /// Whether the tenant `id` is in scope.
    pub fn includes(&self, id: tollgate_model::TenantId) -> bool {
        self.filter.is_all() || self.ids.contains(&id)
    }

    /// Whether the watch gets `event`.
    pub fn admits(&mut self, event: &Event) -> bool {
        if self.filter.is_all() {
            return true;
        }
        match event.kind {
            crate::EventKind::SigningKeysChanged | crate::EventKind::TokenRevoked => true,
            crate::EventKind::TenantChanged => {
                match serde_json::from_value::<crate::control::TenantState>(event.payload.clone()) {
                    Ok(state) if self.filter.includes(&state.domain) => {
                        self.ids.insert(state.tenant_id);
                        true
                    }
                    Ok(_) => false,
                    // Unreadable here is unreadable at the gateway too: let it say so.
                    Err(_) => self.ids.contains(&event.tenant_id),
                }
            }
            _ => self.ids.contains(&event.tenant_id),
        }
    }
}

/// Whether `domain` can name a tenant in a [`TenantFilter`]: the super tenant's
/// `carbon.super`, or a valid tenant domain.
pub fn check_domain(domain: &str) -> Result<(), String> {
    if domain == tollgate_model::Tenant::DEFAULT_DOMAIN {
        return Ok(());
    }
    tollgate_model::tenant::validate_domain(domain).map_err(|why| format!("is not a tenant domain: {why}"))
}

/// How often a gateway reports what it serves when nothing changes; a gateway whose last
/// report is older than three of these no longer counts as live.
pub const GATEWAY_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What a gateway reports it serves (deployment acknowledgements), every
/// [`GATEWAY_REPORT_INTERVAL`] and soon after its state changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayReport {
    /// The gateway node's stable id (kept under its data directory).
    pub gateway_id: String,
    /// The gateway environment it serves.
    pub environment: String,
    /// The event sequence its state is current to.
    pub sequence: i64,
    /// The API revisions it serves.
    pub revisions: Vec<String>,
    /// Revisions whose deployment it received but could not apply.
    pub failed: Vec<String>,
    /// The revisions are those of its previous report and are not repeated (empty lists):
    /// only the sequence and the time are new. A hub that has no previous report refuses
    /// it, and the gateway sends a full one.
    #[serde(default)]
    pub unchanged: bool,
}

/// An open watch: items arrive in order; the channel closes when the hub goes away.
pub type Watch = mpsc::Receiver<WatchItem>;

/// Where a gateway's runtime state comes from.
pub trait Hub: Send + Sync {
    /// Everything `environment` serves of the `tenants`, as of some sequence number.
    fn snapshot<'a>(&'a self, environment: &'a str, tenants: &'a TenantFilter) -> HubFuture<'a, Snapshot>;
    /// Every event after `since` of the `tenants` (and of no tenant), as it is committed,
    /// until the watch closes; a watch of some tenants only also gets
    /// [`WatchItem::Progress`].
    fn watch<'a>(&'a self, since: i64, tenants: &'a TenantFilter) -> HubFuture<'a, Watch>;
    /// Records what a gateway serves (for the Publisher's deployment counts).
    fn report<'a>(&'a self, report: &'a GatewayReport) -> HubFuture<'a, ()>;
    /// Where the hub is, for logs and health reports.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::TenantState;
    use crate::{ControlEvent, EventKind};
    use tollgate_model::TenantId;

    fn id(n: u128) -> TenantId {
        format!("00000000-0000-7000-8000-{n:012x}").parse().unwrap()
    }

    fn event(seq: i64, tenant: TenantId, control: ControlEvent) -> Event {
        let (kind, payload) = control.to_parts().unwrap();
        Event {
            seq,
            kind,
            tenant_id: tenant,
            environment: None,
            payload,
            created_at: 0,
        }
    }

    fn sample(seq: i64, tenant: TenantId, kind: EventKind) -> Event {
        event(seq, tenant, ControlEvent::sample(kind).unwrap())
    }

    #[test]
    fn filters_read_and_write_the_tenants_parameter() {
        assert!(TenantFilter::all().is_all());
        assert!(
            TenantFilter::only(Vec::<String>::new()).is_all(),
            "no domain: every tenant"
        );
        let f = TenantFilter::from_query("beta.org, acme.com,,carbon.super").unwrap();
        assert_eq!(f.to_query().as_deref(), Some("acme.com,beta.org,carbon.super"));
        assert!(f.includes("acme.com") && f.includes("carbon.super") && !f.includes("other.net"));
        assert_eq!(TenantFilter::from_query(&f.to_query().unwrap()).unwrap(), f);
        assert_eq!(TenantFilter::from_query("").unwrap(), TenantFilter::all());
        let err = TenantFilter::from_query("acme.com,Not A Domain").unwrap_err();
        assert!(err.contains("`Not A Domain`"), "{err}");
        assert!(check_domain("carbon.super").is_ok());
        assert!(check_domain("acme").is_err());
        assert_eq!(f.to_string(), "tenants acme.com,beta.org,carbon.super");
    }

    #[test]
    fn a_scope_admits_its_tenants_events_and_those_of_no_tenant() {
        let (acme, beta, later) = (id(0xaa), id(0xbb), id(0xcc));
        let known = [
            TenantState {
                tenant_id: acme,
                domain: "acme.com".into(),
                active: true,
            },
            TenantState {
                tenant_id: beta,
                domain: "beta.org".into(),
                active: true,
            },
        ];
        let mut scope = TenantScope::new(TenantFilter::only(["acme.com", "later.io"]), &known);
        assert!(scope.includes(acme) && !scope.includes(beta) && !scope.includes(TenantId::DEFAULT));
        assert!(scope.admits(&sample(1, acme, EventKind::ApplicationUpserted)));
        assert!(!scope.admits(&sample(2, beta, EventKind::ApplicationUpserted)));
        assert!(!scope.admits(&sample(3, TenantId::DEFAULT, EventKind::PolicyUpserted)));
        // What concerns every gateway goes whoever wrote it.
        assert!(scope.admits(&sample(4, beta, EventKind::TokenRevoked)));
        assert!(scope.admits(&sample(5, TenantId::DEFAULT, EventKind::SigningKeysChanged)));
        // A tenant created later is learned from its state change.
        assert!(!scope.admits(&sample(6, later, EventKind::ApiRevisionDeployed)));
        let created = TenantState {
            tenant_id: later,
            domain: "later.io".into(),
            active: true,
        };
        assert!(scope.admits(&event(7, later, ControlEvent::TenantChanged(created))));
        assert!(scope.admits(&sample(8, later, EventKind::ApiRevisionDeployed)));
        let other = TenantState {
            tenant_id: beta,
            domain: "beta.org".into(),
            active: false,
        };
        assert!(!scope.admits(&event(9, beta, ControlEvent::TenantChanged(other))));
        // Unlimited: everything.
        let mut all = TenantScope::new(TenantFilter::all(), &known);
        assert!(all.is_all() && all.admits(&sample(10, beta, EventKind::ApplicationUpserted)));
    }
}
