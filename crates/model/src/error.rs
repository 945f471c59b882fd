//! The error type shared by every layer. Each variant maps to one HTTP status and one
//! constant code in the reference system's envelope (`{code, message, description}`), so
//! that the HTTP edge needs no per-handler error mapping.

use serde::{Deserialize, Serialize};

/// A problem with one input field: the REST edge lists these under `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as the client sent it (`username`, `endpointConfig.production_endpoints`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why an operation failed, in terms a client can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is malformed; nothing was changed.
    #[error("invalid input: {}", join_fields(.0))]
    Validation(Vec<FieldError>),
    /// The request body or query could not be parsed at all.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// No credentials were presented.
    #[error("missing credentials: {0}")]
    MissingCredentials(String),
    /// Credentials were presented but are wrong, expired or revoked.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// The caller is known but lacks the role or scope for this operation.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The named resource does not exist (or is not visible to the caller).
    #[error("{resource} `{id}` not found")]
    NotFound {
        /// What kind of thing was looked up (`user`, `API`).
        resource: &'static str,
        /// The id or name that was asked for.
        id: String,
    },
    /// The change conflicts with existing state (a duplicate name, a resource in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The client's copy is stale (`If-Match` no longer matches).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The request body exceeds the configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The caller has made too many attempts (failed sign-ins, sign-ups) and must wait
    /// `retry_after_secs` seconds; answered 429 with `Retry-After`.
    #[error("too many requests: {description}")]
    TooManyRequests {
        /// What was limited and why.
        description: String,
        /// Seconds until another attempt may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// A dependency (database, peer node) is not answering; retrying later may work.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join_fields(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shorthand used across Tollgate's library crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `Ok` when `errors` is empty, else a validation error listing them all: the one way
    /// handlers turn a validator's findings into a 400.
    pub fn check_fields(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(errors))
        }
    }

    /// The same error with each field of a validation error prefixed by `prefix` (where
    /// the fields came from, e.g. `api.yaml#data.`); other errors unchanged.
    pub fn with_field_prefix(self, prefix: &str) -> Self {
        match self {
            Error::Validation(fields) => Error::Validation(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(format!("{prefix}{}", f.field), f.message))
                    .collect(),
            ),
            other => other,
        }
    }

    /// `resource` `id` does not exist (or is not visible to the caller).
    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            resource,
            id: id.into(),
        }
    }

    /// A validation error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Validation(_) | Error::BadRequest(_) => 400,
            Error::MissingCredentials(_) | Error::InvalidCredentials(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound { .. } => 404,
            Error::Conflict(_) => 409,
            Error::PreconditionFailed(_) => 412,
            Error::PayloadTooLarge(_) => 413,
            Error::TooManyRequests { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The constant code in the error envelope. Authentication and authorization use the
    /// reference's 9009xx codes (clients match on them); the rest use the HTTP status, as
    /// the reference's REST APIs do.
    pub fn code(&self) -> i64 {
        match self {
            Error::InvalidCredentials(_) => 900_901,
            Error::MissingCredentials(_) => 900_902,
            Error::Forbidden(_) => 900_910,
            other => i64::from(other.status()),
        }
    }

    /// The short, stable message of the envelope.
    pub fn message(&self) -> &'static str {
        match self {
            Error::Validation(_) | Error::BadRequest(_) => "Bad Request",
            Error::MissingCredentials(_) => "Missing Credentials",
            Error::InvalidCredentials(_) => "Invalid Credentials",
            Error::Forbidden(_) => "Forbidden",
            Error::NotFound { .. } => "Not Found",
            Error::Conflict(_) => "Conflict",
            Error::PreconditionFailed(_) => "Precondition Failed",
            Error::PayloadTooLarge(_) => "Payload Too Large",
            Error::TooManyRequests { .. } => "Too Many Requests",
            Error::Unavailable(_) => "Service Unavailable",
            Error::Internal(_) => "Internal Server Error",
        }
    }

    /// The human description of the envelope. Internal details are not exposed.
    pub fn description(&self) -> String {
        match self {
            Error::Validation(fields) => join_fields(fields),
            Error::BadRequest(d)
            | Error::MissingCredentials(d)
            | Error::InvalidCredentials(d)
            | Error::Forbidden(d)
            | Error::Conflict(d)
            | Error::PreconditionFailed(d)
            | Error::PayloadTooLarge(d)
            | Error::Unavailable(d) => d.clone(),
            Error::NotFound { resource, id } => format!("{resource} `{id}` not found"),
            Error::TooManyRequests { description, .. } => description.clone(),
            Error::Internal(_) => "An unexpected error occurred; see the server log.".into(),
        }
    }

    /// Too many attempts: wait `retry_after` (rounded up to whole seconds, at least 1).
    pub fn too_many(description: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Error::TooManyRequests {
            description: description.into(),
            retry_after_secs: secs.max(1),
        }
    }

    /// Seconds a client should wait before retrying, for the `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The per-field problems, when there are any.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Validation(fields) => fields,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_are_constant_per_kind() {
        assert_eq!(Error::field("name", "required").status(), 400);
        assert_eq!(Error::field("name", "required").code(), 400);
        assert_eq!(Error::InvalidCredentials("x".into()).code(), 900_901);
        assert_eq!(Error::MissingCredentials("x".into()).code(), 900_902);
        assert_eq!(Error::Forbidden("x".into()).status(), 403);
        assert_eq!(
            Error::NotFound {
                resource: "user",
                id: "u".into()
            }
            .status(),
            404
        );
    }

    #[test]
    fn too_many_requests_rounds_its_wait_up_to_whole_seconds() {
        let e = Error::too_many("slow down", std::time::Duration::from_millis(1500));
        assert_eq!((e.status(), e.code(), e.retry_after_secs()), (429, 429, Some(2)));
        assert_eq!(
            Error::too_many("x", std::time::Duration::ZERO).retry_after_secs(),
            Some(1)
        );
        assert_eq!(Error::Conflict("x".into()).retry_after_secs(), None);
    }

    #[test]
    fn internal_details_are_not_described() {
        let e = Error::Internal("pool timed out at 10.0.0.5".into());
        assert!(!e.description().contains("10.0.0.5"));
    }

    #[test]
    fn validation_description_names_fields() {
        let e = Error::Validation(vec![
            FieldError::new("username", "required"),
            FieldError::new("password", "too short"),
        ]);
        assert_eq!(e.description(), "username: required; password: too short");
    }
}
