//! Components and profiles: what a node runs. One binary, any set of components; a
//! profile is a named set (docs/architecture.md, "Components and profiles").

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One of Tollgate's components. Each is a crate; a node runs a set of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// Publisher REST API.
    Publisher,
    /// Developer Portal REST API.
    Devportal,
    /// Admin REST API.
    Admin,
    /// OAuth2/OIDC server, application keys, API keys.
    KeyManager,
    /// Distributed throttling and the event hub.
    TrafficManager,
    /// The data plane.
    Gateway,
    /// Usage aggregation and dashboards.
    Analytics,
}

impl Component {
    /// Every component, in a stable order.
    pub const ALL: [Component; 7] = [
        Component::Publisher,
        Component::Devportal,
        Component::Admin,
        Component::KeyManager,
        Component::TrafficManager,
        Component::Gateway,
        Component::Analytics,
    ];

    /// The name used in config and on the command line.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Component::Publisher => "publisher",
            Component::Devportal => "devportal",
            Component::Admin => "admin",
            Component::KeyManager => "key-manager",
            Component::TrafficManager => "traffic-manager",
            Component::Gateway => "gateway",
            Component::Analytics => "analytics",
        }
    }

    /// Whether this component reads or writes the AM database (docs/architecture.md, "The
    /// two databases").
    pub const fn uses_am_database(&self) -> bool {
        !matches!(self, Component::Gateway)
    }

    /// Whether this component reads or writes the shared database (users, roles,
    /// tenants, API documents) (docs/architecture.md, "The two databases").
    pub const fn uses_shared_database(&self) -> bool {
        matches!(
            self,
            Component::Publisher | Component::Devportal | Component::Admin | Component::KeyManager
        )
    }

    /// Whether this component is served on the management listener.
    pub const fn serves_management_api(&self) -> bool {
        matches!(
            self,
            Component::Publisher
                | Component::Devportal
                | Component::Admin
                | Component::KeyManager
                | Component::Analytics
        )
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown component `{0}`; expected one of publisher, devportal, admin, key-manager, traffic-manager, gateway, analytics"
)]
pub struct UnknownComponent(pub String);

impl FromStr for Component {
    type Err = UnknownComponent;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.as_str().replace('-', "") == s)
            .ok_or(UnknownComponent(s))
    }
}

/// A named set of components, matching the reference system's profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Everything in one process on embedded SQLite.
    #[default]
    AllInOne,
    /// Everything except the gateway.
    ControlPlane,
    /// Only the gateway: no database at all.
    Gateway,
    /// Only the traffic manager and event hub.
    TrafficManager,
    /// Only the key manager (fully distributed pattern).
    KeyManager,
}

impl Profile {
    /// Every profile, in a stable order.
    pub const ALL: [Profile; 5] = [
        Profile::AllInOne,
        Profile::ControlPlane,
        Profile::Gateway,
        Profile::TrafficManager,
        Profile::KeyManager,
    ];

    /// The name used in config and on the command line.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Profile::AllInOne => "all-in-one",
            Profile::ControlPlane => "control-plane",
            Profile::Gateway => "gateway",
            Profile::TrafficManager => "traffic-manager",
            Profile::KeyManager => "key-manager",
        }
    }

    /// The components this profile runs.
    pub fn components(&self) -> ComponentSet {
        match self {
            Profile::AllInOne => ComponentSet::all(),
            Profile::ControlPlane => Component::ALL
                .into_iter()
                .filter(|c| *c != Component::Gateway)
                .collect(),
            Profile::Gateway => [Component::Gateway].into_iter().collect(),
            Profile::TrafficManager => [Component::TrafficManager].into_iter().collect(),
            Profile::KeyManager => [Component::KeyManager].into_iter().collect(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}`; expected one of all-in-one, control-plane, gateway, traffic-manager, key-manager")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == norm)
            .ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

/// The set of components a node runs, ordered so that start-up and logs are stable.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ComponentSet(BTreeSet<Component>);

impl ComponentSet {
    /// Every component (the all-in-one set).
    pub fn all() -> Self {
        Component::ALL.into_iter().collect()
    }

    /// Whether `component` runs on this node.
    pub fn contains(&self, component: Component) -> bool {
        self.0.contains(&component)
    }

    /// Whether this node runs every component.
    pub fn is_all(&self) -> bool {
        self.0.len() == Component::ALL.len()
    }

    /// Whether no component runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The components, in order.
    pub fn iter(&self) -> impl Iterator<Item = Component> + '_ {
        self.0.iter().copied()
    }

    /// Whether any component needs the AM database.
    pub fn needs_am_database(&self) -> bool {
        self.iter().any(|c| c.uses_am_database())
    }

    /// Whether any component needs the shared database.
    pub fn needs_shared_database(&self) -> bool {
        self.iter().any(|c| c.uses_shared_database())
    }

    /// Parses a comma-separated list (`publisher,admin`).
    pub fn parse_list(list: &str) -> Result<Self, UnknownComponent> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromIterator<Component> for ComponentSet {
    fn from_iter<I: IntoIterator<Item = Component>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for ComponentSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(|c| c.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_match_the_architecture_table() {
        assert!(Profile::AllInOne.components().is_all());
        let cp = Profile::ControlPlane.components();
        assert!(!cp.contains(Component::Gateway));
        assert_eq!(cp.iter().count(), 6);
        assert_eq!(Profile::Gateway.components().to_string(), "gateway");
        assert_eq!(Profile::KeyManager.components().to_string(), "key-manager");
    }

    #[test]
    fn database_needs_follow_the_architecture_table() {
        let gw = Profile::Gateway.components();
        assert!(!gw.needs_am_database() && !gw.needs_shared_database());
        let tm = Profile::TrafficManager.components();
        assert!(tm.needs_am_database() && !tm.needs_shared_database());
        let km = Profile::KeyManager.components();
        assert!(km.needs_am_database() && km.needs_shared_database());
        let cp = Profile::ControlPlane.components();
        assert!(cp.needs_am_database() && cp.needs_shared_database());
    }

    #[test]
    fn parses_names_and_lists() {
        assert_eq!("control-plane".parse::<Profile>().unwrap(), Profile::ControlPlane);
        assert_eq!("all_in_one".parse::<Profile>().unwrap(), Profile::AllInOne);
        assert!("edge".parse::<Profile>().is_err());
        let set = ComponentSet::parse_list("gateway, key-manager").unwrap();
        assert!(set.contains(Component::Gateway) && set.contains(Component::KeyManager));
        assert!(ComponentSet::parse_list("gateway,bogus").is_err());
        assert_eq!("keymanager".parse::<Component>().unwrap(), Component::KeyManager);
    }
}
