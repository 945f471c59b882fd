//! The claims of access tokens and API keys: everything a gateway needs to authorise a
//! call without asking the key manager (docs/architecture.md, "Self-contained tokens").
//! Here, in the model, so that the key manager that signs them and the gateway that checks
//! them share one definition.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Production or sandbox keys (they route to different backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyType {
    /// Production keys and endpoints.
    Production,
    /// Sandbox keys and endpoints.
    Sandbox,
}

impl KeyType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyType::Production => "PRODUCTION",
            KeyType::Sandbox => "SANDBOX",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PRODUCTION" => Ok(KeyType::Production),
            "SANDBOX" => Ok(KeyType::Sandbox),
            _ => Err(format!("`{s}` is not a key type; use PRODUCTION or SANDBOX")),
        }
    }
}

/// What a signed token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    /// An OAuth2 access token.
    #[serde(rename = "access_token")]
    AccessToken,
    /// An API key.
    #[serde(rename = "apiKey")]
    ApiKey,
}

/// The application a token was issued to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationClaim {
    /// Application id.
    pub id: String,
    /// Application name.
    pub name: String,
    /// Its application throttling policy.
    pub tier: String,
    /// Its owner.
    pub owner: String,
}

/// Claims of Tollgate's JWT access tokens and API keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The end user, or the application owner for client credentials and API keys.
    pub sub: String,
    /// The consumer key the token was issued to.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch.
    pub nbf: i64,
    /// Token id (revocations name it).
    pub jti: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The consumer key (OAuth2 `client_id`).
    pub client_id: String,
    /// The application.
    pub application: ApplicationClaim,
    /// Production or sandbox.
    pub keytype: KeyType,
    /// Access token or API key.
    pub token_type: TokenKind,
}

impl AccessClaims {
    /// When the token was issued, in milliseconds: from its `jti` (a UUIDv7, whose first
    /// 48 bits are the issue time in ms), else `iat`. Revocations of every token of a
    /// consumer key compare against this, so a token issued in the same second as a
    /// secret regeneration, but after it, stays valid.
    pub fn issued_at_millis(&self) -> i64 {
        uuid::Uuid::parse_str(&self.jti)
            .ok()
            .filter(|u| u.get_version_num() == 7)
            .and_then(|u| u.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                secs as i64 * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(self.iat * 1000)
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

/// An active token as introspection reports it (RFC 7662 §2.2, plus the application).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveToken {
    /// Always true (inactive tokens are reported as `{"active": false}`).
    pub active: bool,
    /// Granted scopes.
    pub scope: String,
    /// The consumer key.
    pub client_id: String,
    /// The end user.
    pub username: String,
    /// `Bearer`, `refresh_token` or `apiKey`.
    pub token_type: String,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Not before (seconds).
    pub nbf: i64,
    /// Subject.
    pub sub: String,
    /// Audience (the consumer key).
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Token id.
    pub jti: String,
    /// Production or sandbox.
    pub keytype: String,
    /// The application.
    pub application: ApplicationClaim,
}

impl ActiveToken {
    /// The access-token claims this introspection describes, for a gateway that resolved
    /// an opaque token; `None` unless it is an active access token.
    pub fn into_access_claims(self) -> Option<AccessClaims> {
        if !self.active || self.token_type != "Bearer" {
            return None;
        }
        Some(AccessClaims {
            iss: self.iss,
            sub: self.sub,
            aud: self.aud,
            exp: self.exp,
            iat: self.iat,
            nbf: self.nbf,
            jti: self.jti,
            scope: self.scope,
            client_id: self.client_id,
            application: self.application,
            keytype: self.keytype.parse().ok()?,
            token_type: TokenKind::AccessToken,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_time_comes_from_the_uuid_v7_jti_in_milliseconds() {
        let before = crate::now_millis();
        let jti = uuid::Uuid::now_v7().to_string();
        let after = crate::now_millis();
        let mut claims = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            exp: 0,
            iat: 7,
            nbf: 0,
            jti,
            scope: String::new(),
            client_id: "c".into(),
            application: ApplicationClaim {
                id: "1".into(),
                name: "n".into(),
                tier: "t".into(),
                owner: "o".into(),
            },
            keytype: KeyType::Production,
            token_type: TokenKind::AccessToken,
        };
        let ms = claims.issued_at_millis();
        assert!(before <= ms && ms <= after, "{before} <= {ms} <= {after}");
        claims.jti = "not-a-uuid".into();
        assert_eq!(claims.issued_at_millis(), 7000);
    }
}
