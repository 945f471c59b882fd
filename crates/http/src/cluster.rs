//! Node-to-node authentication: every internal call carries the cluster secret as a
//! bearer token, compared in constant time. Without a configured secret, internal
//! endpoints refuse everything (fail closed).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tollgate_model::Error;

/// The configured cluster secret, if any.
#[derive(Clone, Default)]
pub struct ClusterSecret(Option<Arc<str>>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ClusterSecret(***)"
        } else {
            "ClusterSecret(none)"
        })
    }
}

impl ClusterSecret {
    /// Wraps the configured value (`None`: internal endpoints are closed).
    pub fn new(secret: Option<&str>) -> Self {
        Self(secret.map(Arc::from))
    }

    /// Whether `authorization` is `Bearer <secret>`.
    pub fn verify(&self, authorization: Option<&str>) -> Result<(), Error> {
        let Some(expected) = &self.0 else {
            return Err(Error::InvalidCredentials(
                "internal endpoints are closed: this node has no [cluster] secret configured".into(),
            ));
        };
        let Some(value) = authorization else {
            return Err(Error::MissingCredentials(
                "internal endpoints need `Authorization: Bearer <cluster secret>`".into(),
            ));
        };
        let presented = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or("");
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(Error::InvalidCredentials("wrong cluster secret".into()))
        }
    }
}

/// Middleware for internal routes: 401 unless the request carries the cluster secret.
pub async fn require_cluster_secret(
    State(secret): State<ClusterSecret>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    secret.verify(header)?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_exact_secret() {
        let s = ClusterSecret::new(Some("0123456789abcdef"));
        assert!(s.verify(Some("Bearer 0123456789abcdef")).is_ok());
        assert!(matches!(
            s.verify(Some("Bearer 0123456789abcdeX")),
            Err(Error::InvalidCredentials(_))
        ));
        assert!(matches!(
            s.verify(Some("Bearer 0123")),
            Err(Error::InvalidCredentials(_))
        ));
        assert!(matches!(s.verify(None), Err(Error::MissingCredentials(_))));
        let closed = ClusterSecret::new(None);
        assert!(closed.verify(Some("Bearer anything")).is_err());
        assert_eq!(format!("{s:?}"), "ClusterSecret(***)");
    }
}
