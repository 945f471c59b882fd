//! The command line's own OAuth2 client: a built-in public client with which
//! `tollgate login` trades a user's password once for an access and a refresh token, so
//! that the CLI keeps a token, never the password (as the reference's `apictl` does with
//! the client it registers). Like the portals' client it is not stored and no
//! application owns it; it has no redirect URI, so the authorize endpoint refuses it. It
//! serves every tenant: `alice@acme.com` signs in to `acme.com`, and her tokens are in
//! that tenant (their subject says so), whatever the row's own tenant.

use tollgate_model::TenantId;
use tollgate_store::keys::{ClientRow, KeyRow};

/// The CLI's client id.
pub const CLI_CLIENT_ID: &str = "tollgate-cli";

/// The client row the token service hands out for [`CLI_CLIENT_ID`]: opaque tokens
/// (revocable on `tollgate logout`), password and refresh-token grants only.
pub fn client() -> ClientRow {
    ClientRow {
        key: KeyRow {
            id: CLI_CLIENT_ID.into(),
            application_id: CLI_CLIENT_ID.into(),
            key_type: "PRODUCTION".into(),
            key_manager: crate::RESIDENT_KEY_MANAGER.into(),
            mode: "CREATED".into(),
            consumer_key: CLI_CLIENT_ID.into(),
            secret_hash: None,
            grant_types: r#"["password","refresh_token"]"#.into(),
            callback_url: None,
            scopes: "[]".into(),
            validity_seconds: 0,
        },
        tenant_id: TenantId::DEFAULT.to_string(),
        application_name: "Tollgate CLI".into(),
        application_owner: "admin".into(),
        application_tier: "Unlimited".into(),
        token_type: "OAUTH".into(),
    }
}

/// Whether `client_id` names one of the built-in clients that speak for every user (the
/// portals' and the CLI's), whose token requests are limited per caller address only.
pub fn is_builtin(client_id: &str) -> bool {
    client_id == CLI_CLIENT_ID || client_id == crate::portals_client::PORTALS_CLIENT_ID
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_public_and_allows_only_password_and_refresh() {
        let c = client();
        assert!(c.key.secret_hash.is_none());
        let grants: Vec<String> = serde_json::from_str(&c.key.grant_types).unwrap();
        assert_eq!(grants, ["password", "refresh_token"]);
        assert!(
            c.key.callback_url.is_none(),
            "no redirect: the authorize endpoint cannot use it"
        );
        assert!(is_builtin(CLI_CLIENT_ID) && is_builtin("tollgate-portals") && !is_builtin("other"));
    }
}
