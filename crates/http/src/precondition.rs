//! Optimistic concurrency for PUT: resources carry an `ETag` derived from their last
//! update; a PUT with `If-Match` that no longer matches is refused with 412, so two
//! editors cannot silently overwrite each other.

use axum::http::{HeaderMap, HeaderValue, header};
use tollgate_model::Error;

/// The entity tag for a resource last updated at `version` (any stable token).
pub fn etag(version: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// Refuses the request when it carries `If-Match` and none of its tags is `version`'s.
pub fn check_if_match(headers: &HeaderMap, version: &str) -> Result<(), Error> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let value = value.to_str().unwrap_or("");
    let current = format!("\"{version}\"");
    let matches = value
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == current);
    if matches {
        Ok(())
    } else {
        Err(Error::PreconditionFailed(
            "the resource changed since you read it (If-Match does not match its ETag); GET it again and reapply your change"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_checked_only_when_sent() {
        let mut h = HeaderMap::new();
        assert!(check_if_match(&h, "5").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"5\""));
        assert!(check_if_match(&h, "5").is_ok());
        assert!(matches!(check_if_match(&h, "6"), Err(Error::PreconditionFailed(_))));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(check_if_match(&h, "6").is_ok());
    }
}
