//! The roles of the reference system's default permission model. A role grants a set of
//! REST operations; `admin` implies every other role.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A built-in role, as the reference system names them (`admin`, `Internal/creator`,
/// `Internal/publisher`, `Internal/subscriber`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages the platform: policies, environments, key managers, users.
    Admin,
    /// Creates and edits APIs in the Publisher.
    Creator,
    /// Changes API lifecycle and deploys revisions.
    Publisher,
    /// Uses the Developer Portal: applications, subscriptions, keys.
    Subscriber,
}

impl Role {
    /// Every built-in role, in a stable order (for seeding and listing).
    pub const ALL: [Role; 4] = [Role::Admin, Role::Creator, Role::Publisher, Role::Subscriber];

    /// The role's stored and displayed name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Creator => "creator",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }

    /// A one-line description, shown by the Admin REST API.
    pub const fn description(&self) -> &'static str {
        match self {
            Role::Admin => "Manages the platform; implies every other role.",
            Role::Creator => "Creates and edits APIs.",
            Role::Publisher => "Publishes APIs and deploys their revisions.",
            Role::Subscriber => "Subscribes applications to APIs in the Developer Portal.",
        }
    }

    /// Whether a holder of `self` may act as `required` (`admin` may act as anyone).
    pub fn satisfies(&self, required: Role) -> bool {
        *self == required || *self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the built-in roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; expected one of admin, creator, publisher, subscriber")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    /// Accepts Tollgate's names and the reference's `Internal/…` spellings, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("internal/").unwrap_or(&lower);
        match name {
            "admin" => Ok(Role::Admin),
            "creator" => Ok(Role::Creator),
            "publisher" => Ok(Role::Publisher),
            "subscriber" => Ok(Role::Subscriber),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_spellings() {
        assert_eq!("Internal/creator".parse::<Role>().unwrap(), Role::Creator);
        assert_eq!("ADMIN".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn admin_satisfies_everything_others_only_themselves() {
        for role in Role::ALL {
            assert!(Role::Admin.satisfies(role));
        }
        assert!(Role::Creator.satisfies(Role::Creator));
        assert!(!Role::Creator.satisfies(Role::Publisher));
        assert!(!Role::Subscriber.satisfies(Role::Admin));
    }
}
