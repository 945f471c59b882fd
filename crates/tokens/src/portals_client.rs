//! The web portals' own OAuth2 client: a built-in public client (PKCE, no secret) that
//! signs people in to the Publisher, Developer Portal and Admin through the key manager's
//! login page, as the reference's portals do with their system applications. It is not
//! stored: every key manager knows it, and no application owns it. It serves every
//! tenant: a user's session tokens are in the user's tenant, not the row's.

use tollgate_model::{Role, TenantId};
use tollgate_store::keys::{ClientRow, KeyRow};

/// The portals' client id.
pub const PORTALS_CLIENT_ID: &str = "tollgate-portals";

/// Where the key manager sends the browser back with the code: a path on the same origin
/// as the login page, so the portals need to know no public URL.
pub const PORTALS_CALLBACK: &str = "/portals/callback";

/// The client row the token service hands out for [`PORTALS_CLIENT_ID`]: opaque tokens
/// (small enough for a cookie, revocable on sign-out), authorization code and refresh.
pub fn client() -> ClientRow {
    ClientRow {
        key: KeyRow {
            id: PORTALS_CLIENT_ID.into(),
            application_id: PORTALS_CLIENT_ID.into(),
            key_type: "PRODUCTION".into(),
            key_manager: crate::RESIDENT_KEY_MANAGER.into(),
            mode: "CREATED".into(),
            consumer_key: PORTALS_CLIENT_ID.into(),
            secret_hash: None,
            grant_types: r#"["authorization_code","refresh_token"]"#.into(),
            callback_url: Some(PORTALS_CALLBACK.into()),
            scopes: "[]".into(),
            validity_seconds: 0,
        },
        tenant_id: TenantId::DEFAULT.to_string(),
        application_name: "Tollgate portals".into(),
        application_owner: "admin".into(),
        application_tier: "Unlimited".into(),
        token_type: "OAUTH".into(),
    }
}

/// The scopes a portal session gets: every REST scope the user's roles bind, so that the
/// pages can do what the same user could do with the CLI, and no more.
pub fn session_scopes(roles: &[Role]) -> Vec<String> {
    crate::scopes::REST_SCOPES
        .iter()
        .filter(|(_, bound)| roles.iter().any(|r| bound.iter().any(|b| r.satisfies(*b))))
        .map(|(name, _)| (*name).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_session_holds_only_subscriber_scopes() {
        let s = session_scopes(&[Role::Subscriber]);
        assert!(s.contains(&"apim:subscribe".to_string()));
        assert!(!s.iter().any(|x| x == "apim:api_create" || x == "apim:admin"));
        let a = session_scopes(&[Role::Admin]);
        assert_eq!(a.len(), crate::scopes::REST_SCOPES.len());
    }

    #[test]
    fn the_client_is_public_and_allows_the_code_grant() {
        let c = client();
        assert!(c.key.secret_hash.is_none());
        assert!(c.key.grant_types.contains("authorization_code"));
        assert_eq!(c.key.callback_url.as_deref(), Some(PORTALS_CALLBACK));
    }
}
