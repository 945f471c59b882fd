//! The gateway's private HTTP/1 parsers, exposed for the fuzz targets in `fuzz/` (the
//! `fuzzing` feature): what the fuzzers feed is what a client or a backend could send.

pub use crate::backend_http1::fuzzing::{BackendAnswer, call_backend};
pub use crate::server_http1::fuzzing::{Head, MAX_OWN_HEAD_BYTES, parse_head};
