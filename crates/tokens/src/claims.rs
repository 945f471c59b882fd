//! The claims of access tokens and API keys: everything a gateway needs to authorise a
//! call without asking the key manager (ARCHITECTURE.md §6).

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
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}
