//! Opaque-token introspection over HTTP, for gateway nodes that do not run the key
//! manager: `POST {cluster.key_manager_url}/oauth2/introspect` with the cluster secret
//! (the key manager lets cluster nodes introspect any token). The gateway caches the
//! answer until the token expires, so each opaque token costs one call.

use crate::authenticate::Introspect;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tollgate_model::token::{AccessClaims, ActiveToken};

/// How long the key manager may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks a remote key manager about opaque tokens.
#[derive(Debug)]
pub struct HttpIntrospector {
    url: String,
    authorization: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpIntrospector {
    /// A client of the key manager at `base_url` (`http://km:9443`), presenting `secret`.
    pub fn new(base_url: &str, secret: &str, tls: rustls::ClientConfig) -> Self {
        let connector = crate::proxy::https_or_http(tls, Duration::from_secs(5), false);
        Self {
            url: format!("{}/oauth2/introspect", base_url.trim_end_matches('/')),
            authorization: format!("Bearer {secret}"),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn ask(&self, token: &str) -> Result<Option<AccessClaims>, String> {
        let form = serde_urlencoded::to_string([("token", token)]).map_err(|e| e.to_string())?;
        let req = hyper::Request::post(&self.url)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot connect: {e}"))?;
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        if status != 200 {
            return Err(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        // `{"active": false}` has none of the other fields: not an active token.
        Ok(serde_json::from_slice::<ActiveToken>(&body)
            .ok()
            .and_then(ActiveToken::into_access_claims))
    }
}

impl Introspect for HttpIntrospector {
    fn introspect<'a>(&'a self, token: &'a str) -> Pin<Box<dyn Future<Output = Option<AccessClaims>> + Send + 'a>> {
        Box::pin(async move {
            match self.ask(token).await {
                Ok(claims) => claims,
                Err(e) => {
                    tracing::warn!(key_manager = %self.url, error = %e, "Cannot introspect an opaque token.");
                    None
                }
            }
        })
    }
}
