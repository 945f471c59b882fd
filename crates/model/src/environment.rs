//! Gateway environments: named fleets of gateways (`Default`, `internal`, `external`) that
//! API revisions are deployed to.

use crate::FieldError;
use serde::{Deserialize, Serialize};

/// A gateway environment, in the reference Admin API's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique name gateways are configured with (`[gateway] environment`).
    pub name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `production`, `sandbox` or `hybrid`: which key types its gateways accept.
    #[serde(rename = "type", default = "default_type")]
    pub env_type: String,
    /// Host names and ports the gateways are reached at (shown in the Developer Portal).
    #[serde(default)]
    pub vhosts: Vec<Vhost>,
    /// Whether it came with the installation and cannot be removed.
    #[serde(default)]
    pub is_read_only: bool,
}

fn default_type() -> String {
    "hybrid".into()
}

/// How consumers reach an environment's gateways.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Vhost {
    /// Host name (`api.example.com`).
    pub host: String,
    /// Path prefix in front of API contexts, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_context: Option<String>,
    /// Plain HTTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u16>,
    /// HTTPS port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_port: Option<u16>,
}

/// The environment that exists from the start.
pub const DEFAULT_ENVIRONMENT: &str = "Default";

impl Environment {
    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.name.is_empty()
            || self.name.len() > 60
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            e.push(FieldError::new("name", "must be 1 to 60 letters, digits, - _ or ."));
        }
        if !matches!(self.env_type.as_str(), "production" | "sandbox" | "hybrid") {
            e.push(FieldError::new(
                "type",
                format!("`{}` must be production, sandbox or hybrid", self.env_type),
            ));
        }
        // As the reference requires: an environment without a host has no URL to show.
        if self.vhosts.is_empty() {
            e.push(FieldError::new(
                "vhosts",
                "name at least one host: [{\"host\": \"api.example.com\"}]",
            ));
        }
        for (i, v) in self.vhosts.iter().enumerate() {
            if v.host.is_empty() || v.host.contains(['/', ' ', ':']) {
                e.push(FieldError::new(
                    format!("vhosts[{i}].host"),
                    "must be a host name without scheme, port or path",
                ));
            }
            if v.http_port == Some(0) || v.https_port == Some(0) {
                e.push(FieldError::new(format!("vhosts[{i}]"), "ports must be 1 to 65535"));
            }
        }
        e
    }
}
