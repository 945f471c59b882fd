//! Shared test fixtures, written once: fresh databases on each engine, and a driver for
//! real `tollgate` processes (spawn, read their JSON logs for bound addresses, wait for
//! readiness, signal, collect exit status).
//!
//! Test-only: nothing in the product depends on this crate. It must not depend on
//! Tollgate's own crates, so that every crate can use it without a dependency cycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod db;
pub mod node;

pub use db::{TestDb, all_engines, postgres, sqlite};
pub use node::{Node, NodeBuilder};

/// An HTTP client for tests. Installs the process's rustls crypto provider first, as the
/// binary does, since the client is built without a default one.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// An HTTP client that trusts `ca_pem` in addition to nothing else.
pub fn https_trusting(ca_pem: &str) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("PEM certificate"))
        .build()
        .expect("HTTPS client")
}

/// `GET url` → (status, JSON body or `null`).
pub async fn get_json(url: impl AsRef<str>) -> (u16, serde_json::Value) {
    let r = http().get(url.as_ref()).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
