//! SIGTERM lets in-flight requests finish, then the node exits 0.

use crate::{READY, tollgate};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[tokio::test]
async fn sigterm_during_a_request_lets_it_finish_and_exits_zero() {
    let mut node = tollgate().spawn();
    let mgmt = node.wait_ready(READY).await;

    // A request whose body arrives in two parts: it is in flight when SIGTERM lands.
    let body = r#"{"username":"late-user","password":"late-user-password","roles":["subscriber"]}"#;
    let (first, rest) = body.split_at(20);
    let auth = "YWRtaW46dGVzdC1hZG1pbi1wYXNzd29yZA=="; // admin:test-admin-password
    let mut stream = TcpStream::connect(mgmt).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST /api/am/admin/v4/users HTTP/1.1\r\nHost: {mgmt}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));

    node.signal(nix::sys::signal::Signal::SIGTERM);
    node.wait_for_line(Duration::from_secs(10), |l| l.contains("Shutting down"))
        .expect("node did not start shutting down");
    // New connections are refused while the old request drains.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(mgmt).is_err(),
        "listener still accepting after SIGTERM"
    );

    stream.write_all(rest.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "in-flight request did not complete:\n{response}"
    );
    assert!(response.contains("late-user"));

    let status = node.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", node.output());
    assert!(node.output().contains("Node stopped."));
}

#[tokio::test]
async fn sigterm_closes_idle_gateway_connections_at_once() {
    let mut node = tollgate().spawn();
    node.wait_ready(READY).await;
    let gateway = node.listener("gateway");
    // A keep-alive connection the gateway's own HTTP/1.1 loop served once and now waits
    // on for its next request (the drain must not wait for it).
    let mut stream = TcpStream::connect(gateway).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET /nothing/here HTTP/1.1\r\nHost: {gateway}\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 404", "the gateway answers an unknown path");

    let signalled = std::time::Instant::now();
    node.signal(nix::sys::signal::Signal::SIGTERM);
    // The rest of the 404, then the end of the connection.
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the idle connection is closed, not left open");
    let closed_after = signalled.elapsed();
    assert!(
        closed_after < Duration::from_secs(5),
        "an idle keep-alive connection held the shutdown for {closed_after:?}"
    );
    let status = node.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", node.output());
}
