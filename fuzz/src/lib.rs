//! What the fuzz targets share: a runtime to drive async code on, and a connected pair of
//! sockets whose far end the target plays (a client or a backend).

use std::future::Future;
use std::os::fd::OwnedFd;

/// Runs `future` to its end on this thread's single-threaded runtime (one per fuzzing
/// process, as the gateway's workers run one per thread).
pub fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Time stands still and jumps to the next timer when every task waits: a
            // connection waiting for bytes that will never come ends at once.
            .start_paused(true)
            .build()
            .unwrap_or_else(|e| panic!("a runtime: {e}"));
    }
    RUNTIME.with(|rt| rt.block_on(future))
}

/// A connected pair of stream sockets: the end the code under test reads, typed as the
/// `TcpStream` it takes, and the far end. A Unix socket pair, so that millions of runs
/// use no TCP ports (no TIME_WAIT); the code under test only reads and writes bytes.
/// Call inside [`block_on`].
pub fn socket_pair() -> (tokio::net::TcpStream, tokio::net::UnixStream) {
    let (near, far) = std::os::unix::net::UnixStream::pair().unwrap_or_else(|e| panic!("socketpair: {e}"));
    near.set_nonblocking(true)
        .unwrap_or_else(|e| panic!("nonblocking: {e}"));
    far.set_nonblocking(true).unwrap_or_else(|e| panic!("nonblocking: {e}"));
    let near = std::net::TcpStream::from(OwnedFd::from(near));
    let near = tokio::net::TcpStream::from_std(near).unwrap_or_else(|e| panic!("register: {e}"));
    let far = tokio::net::UnixStream::from_std(far).unwrap_or_else(|e| panic!("register: {e}"));
    (near, far)
}

/// Splits `data` into pieces at the offsets `cuts` names (each taken modulo the length,
/// sorted): how the bytes arrive in separate reads.
pub fn pieces<'a>(data: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    if data.is_empty() {
        return vec![data];
    }
    let mut at: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % data.len()).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// HTTP/1.1 message framing as RFC 9112 says, for the targets' reference readers.
pub mod rfc9112 {
    /// The elements of a list-valued field (RFC 9110 §5.6.1): its values split at commas,
    /// trimmed, empty ones left out.
    pub fn list(values: &[Vec<u8>]) -> Vec<&[u8]> {
        values
            .iter()
            .flat_map(|v| v.split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Decodes a chunked body at the start of `data` (§7.1) as leniently as `httparse`'s
    /// chunk-size reader takes the size lines, trailer lines skipped up to an empty one
    /// (what is not passed on need not be valid): the body and how many bytes it took, or
    /// why it cannot.
    pub fn dechunk(data: &[u8]) -> Result<(Vec<u8>, usize), String> {
        let mut at = 0;
        let mut body = Vec::new();
        loop {
            let (used, size) = match httparse::parse_chunk_size(&data[at..]) {
                Ok(httparse::Status::Complete(c)) => c,
                Ok(httparse::Status::Partial) => return Err("incomplete chunk size".into()),
                Err(_) => return Err("invalid chunk size".into()),
            };
            at += used;
            if size == 0 {
                break;
            }
            let rest = &data[at..];
            if (rest.len() as u64) < size.saturating_add(2) {
                return Err("incomplete chunk".into());
            }
            let size = size as usize;
            body.extend_from_slice(&rest[..size]);
            if &rest[size..size + 2] != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
            at += size + 2;
        }
        // The trailer section: field lines, then an empty line.
        loop {
            let Some(end) = data[at..].windows(2).position(|w| w == b"\r\n") else {
                return Err("incomplete trailers".into());
            };
            at += end + 2;
            if end == 0 {
                return Ok((body, at));
            }
        }
    }
}

pub use hyper_util::rt::TokioIo;
