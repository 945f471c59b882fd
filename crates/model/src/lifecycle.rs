//! The reference system's API lifecycle: states, the actions that move between them,
//! and which actions each state allows. Pure data, so that the Publisher, the portals
//! and the gateway agree on it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an API is in its life. Stored and sent upper-case (`PUBLISHED`), displayed
/// title-case (`Published`) as the reference does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = LifeCycleStatus))]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleState {
    /// Being designed; not visible to consumers.
    #[default]
    Created,
    /// Deployed for trying out without subscriptions.
    Prototyped,
    /// Visible in the Developer Portal and subscribable.
    Published,
    /// Visible but refusing calls (gateways answer 503).
    Blocked,
    /// Existing subscriptions keep working; no new ones.
    Deprecated,
    /// Gone from the portal; gateways refuse calls.
    Retired,
}

/// A lifecycle action, named as the reference's `change-lifecycle?action=` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifecycleAction {
    /// Created/Prototyped → Published.
    Publish,
    /// Created/Published → Prototyped.
    DeployAsPrototype,
    /// Prototyped/Published → Created.
    DemoteToCreated,
    /// Published → Blocked.
    Block,
    /// Published/Blocked → Deprecated.
    Deprecate,
    /// Blocked → Published.
    RePublish,
    /// Deprecated → Retired.
    Retire,
}

impl LifecycleState {
    /// Every state, in lifecycle order.
    pub const ALL: [LifecycleState; 6] = [
        LifecycleState::Created,
        LifecycleState::Prototyped,
        LifecycleState::Published,
        LifecycleState::Blocked,
        LifecycleState::Deprecated,
        LifecycleState::Retired,
    ];

    /// The stored form (`PUBLISHED`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            LifecycleState::Created => "CREATED",
            LifecycleState::Prototyped => "PROTOTYPED",
            LifecycleState::Published => "PUBLISHED",
            LifecycleState::Blocked => "BLOCKED",
            LifecycleState::Deprecated => "DEPRECATED",
            LifecycleState::Retired => "RETIRED",
        }
    }

    /// The display form (`Published`), as the reference's lifecycle-state resource shows it.
    pub const fn display_name(&self) -> &'static str {
        match self {
            LifecycleState::Created => "Created",
            LifecycleState::Prototyped => "Prototyped",
            LifecycleState::Published => "Published",
            LifecycleState::Blocked => "Blocked",
            LifecycleState::Deprecated => "Deprecated",
            LifecycleState::Retired => "Retired",
        }
    }

    /// The actions allowed from this state, in the reference's order.
    pub fn actions(&self) -> &'static [LifecycleAction] {
        use LifecycleAction::*;
        match self {
            LifecycleState::Created => &[Publish, DeployAsPrototype],
            LifecycleState::Prototyped => &[Publish, DemoteToCreated],
            LifecycleState::Published => &[Block, Deprecate, DemoteToCreated, DeployAsPrototype],
            LifecycleState::Blocked => &[RePublish, Deprecate],
            LifecycleState::Deprecated => &[Retire],
            LifecycleState::Retired => &[],
        }
    }

    /// The state `action` leads to from here, or `None` when it is not allowed.
    pub fn apply(&self, action: LifecycleAction) -> Option<LifecycleState> {
        self.actions().contains(&action).then(|| action.target())
    }

    /// Whether consumers can see the API in the Developer Portal.
    pub const fn visible_in_devportal(&self) -> bool {
        matches!(
            self,
            LifecycleState::Published
                | LifecycleState::Prototyped
                | LifecycleState::Blocked
                | LifecycleState::Deprecated
        )
    }
}

impl LifecycleAction {
    /// Every action.
    pub const ALL: [LifecycleAction; 7] = [
        LifecycleAction::Publish,
        LifecycleAction::DeployAsPrototype,
        LifecycleAction::DemoteToCreated,
        LifecycleAction::Block,
        LifecycleAction::Deprecate,
        LifecycleAction::RePublish,
        LifecycleAction::Retire,
    ];

    /// The reference's action name (`Deploy as a Prototype`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            LifecycleAction::Publish => "Publish",
            LifecycleAction::DeployAsPrototype => "Deploy as a Prototype",
            LifecycleAction::DemoteToCreated => "Demote to Created",
            LifecycleAction::Block => "Block",
            LifecycleAction::Deprecate => "Deprecate",
            LifecycleAction::RePublish => "Re-Publish",
            LifecycleAction::Retire => "Retire",
        }
    }

    /// The state this action leads to.
    pub const fn target(&self) -> LifecycleState {
        match self {
            LifecycleAction::Publish | LifecycleAction::RePublish => LifecycleState::Published,
            LifecycleAction::DeployAsPrototype => LifecycleState::Prototyped,
            LifecycleAction::DemoteToCreated => LifecycleState::Created,
            LifecycleAction::Block => LifecycleState::Blocked,
            LifecycleAction::Deprecate => LifecycleState::Deprecated,
            LifecycleAction::Retire => LifecycleState::Retired,
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LifecycleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LifecycleState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown lifecycle state `{s}`"))
    }
}

impl FromStr for LifecycleAction {
    type Err = String;
    /// Accepts the reference's names in any case, with spaces, dashes or underscores.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = |x: &str| {
            x.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let wanted = norm(s);
        LifecycleAction::ALL
            .into_iter()
            .find(|a| norm(a.as_str()) == wanted)
            .ok_or_else(|| format!("unknown lifecycle action `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleAction::*;
    use LifecycleState::*;

    #[test]
    fn transitions_match_the_reference() {
        assert_eq!(Created.apply(Publish), Some(Published));
        assert_eq!(Created.apply(DeployAsPrototype), Some(Prototyped));
        assert_eq!(Prototyped.apply(DemoteToCreated), Some(Created));
        assert_eq!(Published.apply(Block), Some(Blocked));
        assert_eq!(Published.apply(DeployAsPrototype), Some(Prototyped));
        assert_eq!(Blocked.apply(RePublish), Some(Published));
        assert_eq!(Blocked.apply(Deprecate), Some(Deprecated));
        assert_eq!(Deprecated.apply(Retire), Some(Retired));
        assert_eq!(Created.apply(Retire), None);
        assert_eq!(Retired.actions(), &[]);
    }

    #[test]
    fn every_state_is_reachable_from_created() {
        let mut seen = vec![Created];
        let mut i = 0;
        while i < seen.len() {
            for a in seen[i].actions() {
                let next = seen[i].apply(*a).unwrap();
                if !seen.contains(&next) {
                    seen.push(next);
                }
            }
            i += 1;
        }
        assert_eq!(seen.len(), LifecycleState::ALL.len());
    }

    #[test]
    fn names_parse_loosely() {
        assert_eq!(
            "Deploy as a Prototype".parse::<LifecycleAction>().unwrap(),
            DeployAsPrototype
        );
        assert_eq!("re-publish".parse::<LifecycleAction>().unwrap(), RePublish);
        assert_eq!("DEMOTE_TO_CREATED".parse::<LifecycleAction>().unwrap(), DemoteToCreated);
        assert!("Explode".parse::<LifecycleAction>().is_err());
        assert_eq!("published".parse::<LifecycleState>().unwrap(), Published);
    }
}
