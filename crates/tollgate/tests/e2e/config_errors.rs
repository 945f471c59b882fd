//! Bad configuration exits non-zero with one line naming the key or URL and what to do.

use crate::{READY, SECRET, tollgate};

/// The node's `tollgate: error:` line, checking there is exactly one.
fn error_line(output: &str) -> String {
    let lines: Vec<_> = output.lines().filter(|l| l.starts_with("tollgate: error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got:\n{output}");
    lines[0].to_string()
}

#[tokio::test]
async fn unknown_key_exits_64_naming_the_key() {
    let mut node = tollgate()
        .config("[gateway]\nlisten = \"127.0.0.1:0\"\nturbo = 4\n")
        .spawn();
    let status = node.wait_exit(READY);
    assert_eq!(status.code(), Some(64));
    let line = error_line(&node.output());
    assert!(
        line.contains("`gateway.turbo`") && line.contains("tollgate config default"),
        "{line}"
    );
}

#[tokio::test]
async fn malformed_database_url_exits_64_naming_the_key() {
    let mut node = tollgate()
        .env("TOLLGATE_DATABASE__AM__URL", "mysql://root@localhost/am")
        .spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(64));
    let line = error_line(&node.output());
    assert!(
        line.contains("`database.am.url`") && line.contains("postgres://"),
        "{line}"
    );
}

#[tokio::test]
async fn control_plane_with_unreachable_database_exits_69_naming_the_url() {
    let mut node = tollgate()
        .args(["--profile", "control-plane"])
        .env("TOLLGATE_CLUSTER__SECRET", SECRET)
        .env("TOLLGATE_DATABASE__AM__URL", "postgres://tollgate:pw@127.0.0.1:1/am")
        .env(
            "TOLLGATE_DATABASE__SHARED__URL",
            "postgres://tollgate:pw@127.0.0.1:1/shared",
        )
        .spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(69));
    let line = error_line(&node.output());
    assert!(line.contains("postgres://tollgate:***@127.0.0.1:1/am"), "{line}");
    assert!(line.contains("TOLLGATE_DATABASE__AM__URL"), "{line}");
    assert!(!node.output().contains(":pw@"), "password leaked");
}

#[tokio::test]
async fn gateway_without_an_event_hub_is_refused() {
    let mut node = tollgate()
        .args(["--profile", "gateway"])
        .env("TOLLGATE_CLUSTER__SECRET", crate::SECRET)
        .spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(64));
    let line = error_line(&node.output());
    assert!(
        line.contains("`cluster.event_hub_url`") && line.contains("http://traffic-manager:9611"),
        "{line}"
    );
}

#[tokio::test]
async fn partial_profile_without_cluster_secret_is_refused() {
    let mut node = tollgate().args(["--profile", "gateway"]).spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(64));
    let line = error_line(&node.output());
    assert!(
        line.contains("`cluster.secret`") && line.contains("TOLLGATE_CLUSTER__SECRET"),
        "{line}"
    );
}

#[tokio::test]
async fn missing_tls_files_are_named() {
    let mut node = tollgate()
        .config("[management.tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n")
        .spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(64));
    let line = error_line(&node.output());
    assert!(
        line.contains("management.tls.cert") && line.contains("/nonexistent/cert.pem"),
        "{line}"
    );
}

#[tokio::test]
async fn taken_port_exits_71_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut node = tollgate().env("TOLLGATE_MANAGEMENT__LISTEN", addr.to_string()).spawn();
    assert_eq!(node.wait_exit(READY).code(), Some(71));
    let line = error_line(&node.output());
    assert!(
        line.contains("management.listen") && line.contains(&addr.to_string()),
        "{line}"
    );
}
