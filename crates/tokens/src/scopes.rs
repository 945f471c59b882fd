//! Which scopes a user may be granted: the REST APIs' scopes (the reference's names)
//! bound to Tollgate's roles, shared scopes bound by the Publisher, and the OIDC ones
//! anyone may ask for.

use crate::service::OAuthError;
use tollgate_model::{Role, TenantId};
use tollgate_store::Database;

/// Scopes any user may be granted.
pub const OPEN_SCOPES: &[&str] = &["openid", "default", "profile", "email"];

/// The REST APIs' scopes and the roles that may hold them (`admin` may hold every one).
pub const REST_SCOPES: &[(&str, &[Role])] = &[
    ("apim:api_view", &[Role::Creator, Role::Publisher]),
    ("apim:api_create", &[Role::Creator]),
    ("apim:api_manage", &[Role::Creator]),
    ("apim:api_publish", &[Role::Publisher]),
    ("apim:subscription_view", &[Role::Creator, Role::Publisher]),
    ("apim:subscription_block", &[Role::Publisher]),
    ("apim:subscribe", &[Role::Subscriber]),
    ("apim:app_manage", &[Role::Subscriber]),
    ("apim:sub_manage", &[Role::Subscriber]),
    ("apim:api_key", &[Role::Subscriber]),
    ("apim:admin", &[Role::Admin]),
];

fn holds(roles: &[Role], required: &[Role]) -> bool {
    roles.iter().any(|r| required.iter().any(|q| r.satisfies(*q)))
}

/// Checks every requested scope against the user's roles and returns the granted list
/// (`default` when nothing was asked). An unknown scope, or one the user's roles do not
/// bind, is `invalid_scope` (RFC 6749 §5.2) naming it: Tollgate never silently narrows a
/// request, so a client cannot mistake a narrower token for the one it asked for.
pub async fn grant(
    am: &Database,
    tenant: TenantId,
    roles: &[Role],
    custom_roles: &[String],
    requested: &str,
) -> Result<Vec<String>, OAuthError> {
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.split_whitespace() {
        if granted.iter().any(|g| g == scope) {
            continue;
        }
        if OPEN_SCOPES.contains(&scope) {
            granted.push(scope.to_string());
            continue;
        }
        if let Some((_, bound)) = REST_SCOPES.iter().find(|(name, _)| *name == scope) {
            if !holds(roles, bound) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope `{scope}` is not granted to this user's roles"
                )));
            }
            granted.push(scope.to_string());
            continue;
        }
        let shared = tollgate_store::scopes::get(am, tenant, scope)
            .await
            .map_err(crate::Error::from)?;
        match shared {
            Some(s) if s.name == scope => {
                // A binding names a built-in role (which `admin` satisfies too) or a custom
                // one a directory's role_mapping gives (compared ignoring case).
                let allowed = s.bindings.is_empty()
                    || s.bindings.iter().any(|b| match b.parse::<Role>() {
                        Ok(r) => holds(roles, &[r]),
                        Err(_) => custom_roles.iter().any(|c| c.eq_ignore_ascii_case(b)),
                    });
                if !allowed {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope `{scope}` is bound to roles this user does not have"
                    )));
                }
                granted.push(scope.to_string());
            }
            _ => return Err(OAuthError::invalid_scope(format!("unknown scope `{scope}`"))),
        }
    }
    if granted.is_empty() {
        granted.push("default".into());
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_rest_scope_and_others_only_theirs() {
        for (_, bound) in REST_SCOPES {
            assert!(holds(&[Role::Admin], bound));
        }
        let publish = REST_SCOPES.iter().find(|(n, _)| *n == "apim:api_publish").unwrap().1;
        assert!(!holds(&[Role::Subscriber], publish));
        assert!(holds(&[Role::Publisher], publish));
    }
}
