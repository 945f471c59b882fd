//! `[management.tls]` and `[gateway.tls]` serve HTTPS with the configured certificate.

use crate::{READY, tollgate};

/// A self-signed certificate for `localhost` written to `dir`: the certificate, and its
/// `cert = …` and `key = …` config lines.
fn localhost_certificate(dir: &std::path::Path) -> (rcgen::CertifiedKey<rcgen::KeyPair>, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let lines = format!("cert = \"{}\"\nkey = \"{}\"\n", cert_path.display(), key_path.display());
    (cert, lines)
}

#[tokio::test]
async fn management_and_gateway_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, files) = localhost_certificate(dir.path());
    let config = format!("[management.tls]\n{files}\n[gateway.tls]\nlisten = \"127.0.0.1:0\"\n{files}");
    let mut node = tollgate().config(&config).spawn();
    let mgmt = node.listener("management");
    let gw_tls = node.listener("gateway-tls");
    let client = tollgate_testkit::https_trusting(&cert.cert.pem());

    let mut ready = false;
    for _ in 0..600 {
        if let Ok(r) = client
            .get(format!("https://localhost:{}/health/ready", mgmt.port()))
            .send()
            .await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "HTTPS management never ready:\n{}", node.output());
    // Over HTTPS, every management answer tells browsers to stay on HTTPS.
    for path in ["/health/ready", "/api/am/admin/v4/users", "/no/such/path"] {
        let r = client
            .get(format!("https://localhost:{}{path}", mgmt.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path} answered {}",
            r.status()
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    // Plain HTTP on the TLS port does not work.
    let plain = tollgate_testkit::http()
        .get(format!("http://{mgmt}/health/live"))
        .send()
        .await;
    assert!(
        !plain.is_ok_and(|r| r.status().is_success()),
        "plain HTTP answered on the TLS port"
    );

    let r = client
        .get(format!("https://localhost:{}/pizzashack/1.0.0/menu", gw_tls.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], 900906);
    let _ = READY;
}

#[tokio::test]
async fn calls_on_the_tls_listener_reach_the_backend_as_https() {
    use crate::gateway_flow::{backend, ready_node};
    let backend = backend().await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, files) = localhost_certificate(dir.path());
    let config = format!("[gateway.tls]\nlisten = \"127.0.0.1:0\"\n{files}");
    let builder = tollgate()
        .config(&config)
        .env("TOLLGATE_GATEWAY__POLL_INTERVAL", "100ms");
    let (mut node, c) = ready_node(builder).await;
    let gw_tls = node.listener("gateway-tls");
    let up = format!("http://{}/v1", backend.addr);
    let token = c
        .serving_open_api(
            "TlsPets",
            "/tlspets",
            &up,
            serde_json::json!([{"target": "/open/*", "verb": "GET", "authType": "None"}]),
        )
        .await;
    // Plain HTTP: `http`.
    let (status, body) = c.eventually("/tlspets/1.0.0/open/plain", &token, |s, _| s == 200).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["headers"]["x-forwarded-proto"], "http", "{body}");

    let r = tollgate_testkit::https_trusting(&cert.cert.pem())
        .get(format!("https://localhost:{}/tlspets/1.0.0/open/secure", gw_tls.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["uri"], "/v1/open/secure");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https", "{body}");
    assert_eq!(
        body["headers"]["x-forwarded-host"],
        format!("localhost:{}", gw_tls.port()),
        "{body}"
    );

    // The request head's limit (gateway.max_request_header_bytes, 64 KiB) holds here too.
    for (size, status) in [(60 * 1024, 200), (70 * 1024, 431)] {
        let r = tollgate_testkit::https_trusting(&cert.cert.pem())
            .get(format!("https://localhost:{}/tlspets/1.0.0/open/big", gw_tls.port()))
            .header("x-big", "a".repeat(size))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "a head of {size} bytes ({:?})", r.version());
    }
}
