//! Users of the management plane and the Developer Portal, and the authenticated
//! principal that REST handlers receive.

use crate::{EpochMillis, Error, FieldError, Role, TenantId, UserId};
use serde::{Deserialize, Serialize};

/// A user as stored (without the password hash, which never leaves the store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Login name, unique per tenant.
    pub username: String,
    /// Optional contact address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Granted roles, sorted.
    pub roles: Vec<Role>,
    /// Role names beyond the built-in ones (a directory's `role_mapping` gives them):
    /// they grant no REST operation, only the shared scopes bound to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_roles: Vec<String>,
    /// Whether the user may sign in.
    pub enabled: bool,
    /// When the user was created.
    pub created_at: EpochMillis,
}

/// The input for creating a user, validated before anything is written.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Owning tenant.
    pub tenant_id: TenantId,
    /// Login name.
    pub username: String,
    /// Plain-text password; hashed with argon2id by the store, never kept.
    pub password: String,
    /// Optional contact address.
    pub email: Option<String>,
    /// Roles to grant.
    pub roles: Vec<Role>,
}

/// The shortest password Tollgate accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

impl NewUser {
    /// Checks every field and reports all problems at once, each naming its field.
    pub fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        if let Err(msg) = validate_username(&self.username) {
            errors.push(FieldError::new("username", msg));
        }
        if self.password.chars().count() < MIN_PASSWORD_LEN {
            errors.push(FieldError::new(
                "password",
                format!("must be at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        if self.password.len() > 1024 {
            errors.push(FieldError::new("password", "must be at most 1024 bytes"));
        }
        if let Some(email) = &self.email {
            let ok = email.len() <= 254
                && email
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
            if !ok {
                errors.push(FieldError::new("email", "must be an address like name@example.com"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }
}

/// Usernames: 1–128 characters of letters, digits and `._@-`, as the reference's default
/// user store allows; no whitespace or `:` (which would break HTTP Basic).
pub fn validate_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err("may contain only letters, digits and . _ @ -".into());
    }
    Ok(())
}

/// Who is calling: the result of authenticating a request, handed to REST handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: UserId,
    /// The user's tenant.
    pub tenant_id: TenantId,
    /// The tenant's domain (`carbon.super`, `acme.com`).
    pub tenant_domain: String,
    /// The user's name inside the tenant (`alice`, without `@domain`).
    pub username: String,
    /// Granted roles.
    pub roles: Vec<Role>,
    /// Role names beyond the built-in ones, for shared scopes bound to them.
    pub custom_roles: Vec<String>,
    /// The scopes of the bearer token the caller presented; `None` for HTTP Basic (all
    /// of the user's roles apply).
    pub scopes: Option<Vec<String>>,
}

impl User {
    /// The caller this user is once authenticated, in the tenant `tenant_domain`, with the
    /// scopes of the token they presented (`None` for a password).
    pub fn into_principal(self, tenant_domain: String, scopes: Option<Vec<String>>) -> Principal {
        Principal {
            user_id: self.id,
            tenant_id: self.tenant_id,
            tenant_domain,
            username: self.username,
            roles: self.roles,
            custom_roles: self.custom_roles,
            scopes,
        }
    }
}

impl Principal {
    /// Whether the principal holds `role` (directly, or through `admin`).
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r.satisfies(role))
    }

    /// The name the user signs in with: `alice@acme.com`, or `alice` in the super tenant.
    pub fn qualified_name(&self) -> String {
        crate::tenant::qualify(&self.tenant_domain, &self.username)
    }

    /// Whether the principal holds any of `roles`.
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has_role(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(username: &str, password: &str, email: Option<&str>) -> NewUser {
        NewUser {
            tenant_id: TenantId::DEFAULT,
            username: username.into(),
            password: password.into(),
            email: email.map(Into::into),
            roles: vec![Role::Subscriber],
        }
    }

    #[test]
    fn validation_names_each_bad_field() {
        let err = new_user("bad name", "short", Some("nope")).validate().unwrap_err();
        let Error::Validation(fields) = err else {
            panic!("expected validation error")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["username", "password", "email"]);
        assert!(
            new_user("alice", "long enough", Some("a@example.com"))
                .validate()
                .is_ok()
        );
        assert!(new_user("a:b", "long enough", None).validate().is_err());
    }

    #[test]
    fn principal_role_checks() {
        let p = Principal {
            user_id: UserId::new(),
            tenant_id: TenantId::DEFAULT,
            tenant_domain: "carbon.super".into(),
            username: "p".into(),
            roles: vec![Role::Creator],
            custom_roles: Vec::new(),
            scopes: None,
        };
        assert!(p.has_role(Role::Creator));
        assert!(!p.has_role(Role::Admin));
        assert!(p.has_any_role(&[Role::Publisher, Role::Creator]));
    }
}
