//! The request-head parser of the gateway's own HTTP/1.1 loop, for the fuzz targets.

use super::{MAX_HEAD_BYTES, Parsed, ParsedRequest, parse_request};
use axum::body::Body;
use axum::http::Request;
use std::ops::Range;

/// The longest head the loop reads itself before it hands the connection to hyper.
pub const MAX_OWN_HEAD_BYTES: usize = MAX_HEAD_BYTES;

/// What the loop made of the start of its read buffer.
#[derive(Debug)]
pub enum Head {
    /// A request the loop serves: its method, target and headers (but the lent ones)
    /// are in the request passed to [`parse_head`].
    Served {
        /// Whether the client asked to close the connection after it.
        close: bool,
        /// The head's length: the next request starts there.
        length: usize,
        /// Where the first `Authorization` value is in the buffer.
        authorization: Option<Range<usize>>,
        /// Where the first `Host` value is in the buffer.
        host: Option<Range<usize>>,
        /// Where the first `apikey` value is in the buffer.
        apikey: Option<Range<usize>>,
    },
    /// Not yet a whole head.
    Partial,
    /// Handed over to hyper, with every byte read so far.
    NotServed,
}

/// Parses the request head at the start of `read` as the loop does, into `request`.
pub fn parse_head(read: &[u8], request: &mut Request<Body>) -> Head {
    match parse_request(read, request) {
        Parsed::Request(ParsedRequest {
            close,
            length,
            authorization,
            host,
            apikey,
        }) => Head::Served {
            close,
            length,
            authorization,
            host,
            apikey,
        },
        Parsed::Partial => Head::Partial,
        Parsed::NotServed => Head::NotServed,
    }
}
