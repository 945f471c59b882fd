//! The Publisher's multipart form reader, exposed for the fuzz targets in `fuzz/` (the
//! `fuzzing` feature): the OpenAPI import and validation read their forms with it.

use axum::extract::Multipart;
use std::collections::HashMap;

/// Reads every part of a multipart body as `POST /apis/import-openapi` does: the parts by
/// name, or the error its answer would carry.
pub async fn read_multipart(form: Multipart) -> Result<HashMap<String, Vec<u8>>, tollgate_model::Error> {
    crate::openapi::read_form(tollgate_http::ApiMultipart(form))
        .await
        .map_err(|e| e.0)
}
