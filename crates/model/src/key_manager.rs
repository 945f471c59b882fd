//! Third-party key managers: external OIDC providers (Keycloak, Okta, Auth0…) whose
//! access tokens gateways accept, found by issuer and verified with their JWKS.

use crate::FieldError;
use serde::{Deserialize, Serialize};

/// The name under which Tollgate's own key manager appears (the reference's).
pub const RESIDENT_KEY_MANAGER: &str = "Resident Key Manager";

/// Where a key manager's signing keys come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyManagerCertificates {
    /// `JWKS` (a URL serving the key set).
    #[serde(rename = "type")]
    pub cert_type: String,
    /// The JWKS URL.
    pub value: String,
}

/// The claim that names the client, when a key manager's settings name none.
pub fn default_consumer_key_claim() -> String {
    "azp".into()
}

/// The claim that carries the scopes, when a key manager's settings name none.
pub fn default_scopes_claim() -> String {
    "scope".into()
}

fn default_true() -> bool {
    true
}

/// A registered key manager, as the Admin REST API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyManager {
    /// Server-assigned id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Unique name; applications map keys "from" it by this name.
    pub name: String,
    /// Label for the portals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The provider kind (`Keycloak`, `Okta`, `custom`…); informational.
    #[serde(rename = "type")]
    pub km_type: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `iss` its tokens carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Its OIDC discovery URL (used to find `jwks_uri` when `certificates` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub well_known_endpoint: Option<String>,
    /// Its JWKS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<KeyManagerCertificates>,
    /// The claim that carries the client id (`azp`, `client_id`, `cid`…).
    #[serde(default = "default_consumer_key_claim")]
    pub consumer_key_claim: String,
    /// The claim that carries the scopes (`scope`, `scp`…).
    #[serde(default = "default_scopes_claim")]
    pub scopes_claim: String,
    /// Whether gateways accept its tokens.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && s.len() > "http://".len() + 1
}

impl KeyManager {
    /// Checks every field, naming each bad one.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 100
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
            && self.name.trim() == self.name;
        if !name_ok {
            errors.push(FieldError::new(
                "name",
                "must be 1-100 letters, digits, spaces, '-', '_' or '.', without surrounding spaces",
            ));
        } else if self.name.eq_ignore_ascii_case(RESIDENT_KEY_MANAGER) {
            errors.push(FieldError::new("name", "is reserved for Tollgate's own key manager"));
        }
        if self.km_type.trim().is_empty() {
            errors.push(FieldError::new("type", "is required (Keycloak, Okta, custom…)"));
        }
        match &self.issuer {
            Some(i) if is_http_url(i) => {}
            _ => errors.push(FieldError::new(
                "issuer",
                "is required: the http(s) URL its tokens carry as `iss`",
            )),
        }
        if let Some(w) = &self.well_known_endpoint
            && !is_http_url(w)
        {
            errors.push(FieldError::new("wellKnownEndpoint", "must be an http(s) URL"));
        }
        match &self.certificates {
            Some(c) if c.cert_type != "JWKS" => {
                errors.push(FieldError::new(
                    "certificates.type",
                    "must be JWKS (PEM certificates are not supported)",
                ));
            }
            Some(c) if !is_http_url(&c.value) => {
                errors.push(FieldError::new(
                    "certificates.value",
                    "must be the http(s) URL of the JWKS",
                ));
            }
            None if self.well_known_endpoint.is_none() => errors.push(FieldError::new(
                "certificates",
                "give the JWKS URL here, or a wellKnownEndpoint to discover it from",
            )),
            _ => {}
        }
        for (field, value) in [
            ("consumerKeyClaim", &self.consumer_key_claim),
            ("scopesClaim", &self.scopes_claim),
        ] {
            if value.trim().is_empty() || value.len() > 100 {
                errors.push(FieldError::new(field, "must be a claim name (1-100 characters)"));
            }
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 1024) {
            errors.push(FieldError::new("description", "must be at most 1024 characters"));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn km() -> KeyManager {
        serde_json::from_value(serde_json::json!({
            "name": "Keycloak", "type": "Keycloak", "issuer": "https://idp.example.com/realms/a",
            "certificates": {"type": "JWKS", "value": "https://idp.example.com/realms/a/certs"}
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        let k = km();
        assert!(k.enabled);
        assert_eq!(k.consumer_key_claim, "azp");
        assert!(k.validate().is_empty());
        let mut bad = km();
        bad.name = RESIDENT_KEY_MANAGER.into();
        bad.issuer = Some("idp".into());
        bad.certificates = Some(KeyManagerCertificates {
            cert_type: "PEM".into(),
            value: "x".into(),
        });
        let fields: Vec<_> = bad.validate().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["name", "issuer", "certificates.type"]);
        bad.certificates = None;
        let fields: Vec<_> = bad.validate().into_iter().map(|f| f.field).collect();
        assert!(fields.contains(&"certificates".to_string()));
    }
}
