//! Redis for tests: the server named by `TEST_REDIS_URL` (default: the local one). Without
//! one answering, Redis tests are skipped with a printed reason, unless `REQUIRE_REDIS=1`
//! (set by CI), where that is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The server Redis tests use, unless `TEST_REDIS_URL` says otherwise.
pub const DEFAULT_TEST_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// The Redis URL for a test, after checking that the server answers `PING`; `None` with
/// the reason printed when it does not (a panic when `REQUIRE_REDIS` is set).
pub fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_TEST_REDIS_URL.to_string());
    let required = std::env::var("REQUIRE_REDIS").is_ok_and(|v| v == "1" || v == "true");
    match ping(&url) {
        Ok(()) => {
            eprintln!("[redis] test runs against Redis at {url}");
            Some(url)
        }
        Err(reason) if required => panic!("REQUIRE_REDIS is set but Redis at {url} does not answer: {reason}"),
        Err(reason) => {
            eprintln!("[redis] SKIPPED: Redis at {url} does not answer ({reason}); set TEST_REDIS_URL to run it");
            None
        }
    }
}

fn ping(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("redis://").ok_or("not a redis:// URL")?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
    if buf[..n].starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&buf[..n])))
    }
}
