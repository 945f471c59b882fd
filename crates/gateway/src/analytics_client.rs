//! Shipping analytics to the analytics component over HTTP, for gateway nodes that do
//! not run it: `POST {cluster.analytics_url}/internal/v1/analytics/events` with the
//! cluster secret, one JSON batch per call. Never on the request path: the sink task
//! calls it, and keeps the batch for a retry when it fails.

use crate::analytics::ShipUsage;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tollgate_model::analytics::UsageBatchRef;

/// The analytics component's ingest path (the component's `INGEST_PATH`).
pub const INGEST_PATH: &str = "/internal/v1/analytics/events";

/// How long the component may take to accept a batch.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Ships batches to a remote analytics component.
#[derive(Debug)]
pub struct HttpShipper {
    url: String,
    authorization: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpShipper {
    /// A client of the analytics component at `base_url` (`http://cp:9443`), presenting
    /// the cluster `secret`.
    pub fn new(base_url: &str, secret: &str, tls: rustls::ClientConfig) -> Self {
        let connector = crate::proxy::https_or_http(tls, Duration::from_secs(5), false);
        Self {
            url: format!("{}{INGEST_PATH}", base_url.trim_end_matches('/')),
            authorization: format!("Bearer {secret}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn send(&self, batch: &UsageBatchRef<'_>) -> Result<(), String> {
        let body = serde_json::to_vec(batch).map_err(|e| e.to_string())?;
        let req = hyper::Request::post(&self.url)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| format!("{} did not answer within {} s", self.url, ANSWER_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot reach {}: {e}", self.url))?;
        let status = res.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Err(format!(
            "{} answered {status}: {}",
            self.url,
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    }
}

impl ShipUsage for HttpShipper {
    fn ship<'a>(
        &'a self,
        batch: &'a UsageBatchRef<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(self.send(batch))
    }
}
