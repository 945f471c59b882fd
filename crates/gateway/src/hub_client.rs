//! The event hub over HTTP, for gateways on other nodes: `GET /internal/v1/snapshot` and
//! the `GET /internal/v1/watch` Server-Sent-Events stream of a traffic manager, with the
//! cluster secret. With several hub URLs (`[cluster] event_hub_url`, for HA) each call
//! tries them in turn, starting after the one that failed last.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tollgate_events::throttle::{Counters, SyncRequest, SyncResponse};
use tollgate_events::{Event, GatewayReport, Hub, HubError, HubFuture, Snapshot, TenantFilter, Watch, WatchItem};

/// How long a hub may take to answer a request's headers.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Path of the internal API on a traffic manager.
const INTERNAL: &str = "/internal/v1";

/// A traffic manager's event hub, reached over HTTP(S).
#[derive(Debug)]
pub struct HttpHub {
    urls: Vec<String>,
    authorization: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    next: AtomicUsize,
}

impl HttpHub {
    /// A client of the hubs at `urls` (base URLs such as `http://tm1:9611`), presenting
    /// `secret`; `tls` verifies `https://` hubs.
    pub fn new(urls: Vec<String>, secret: &str, tls: rustls::ClientConfig) -> Self {
        let connector = crate::proxy::https_or_http(tls, Duration::from_secs(5), false);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            urls: urls.into_iter().map(|u| u.trim_end_matches('/').to_string()).collect(),
            authorization: format!("Bearer {secret}"),
            client,
            next: AtomicUsize::new(0),
        }
    }

    /// GETs `path_and_query` from the hubs in turn; the first 200 answer wins.
    async fn get(&self, path_and_query: &str) -> Result<hyper::Response<Incoming>, HubError> {
        self.send(hyper::Method::GET, path_and_query, None).await
    }

    /// Sends a request to the hubs in turn; the first 2xx answer wins.
    async fn send(
        &self,
        method: hyper::Method,
        path_and_query: &str,
        json: Option<Bytes>,
    ) -> Result<hyper::Response<Incoming>, HubError> {
        let start = self.next.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..self.urls.len() {
            let index = (start + i) % self.urls.len();
            let url = format!("{}{INTERNAL}{path_and_query}", self.urls[index]);
            match self.send_one(method.clone(), &url, json.clone()).await {
                Ok(res) => {
                    self.next.store(index, Ordering::Relaxed);
                    return Ok(res);
                }
                Err(e) => errors.push(format!("{}: {e}", self.urls[index])),
            }
        }
        self.next.store(start.wrapping_add(1), Ordering::Relaxed);
        Err(HubError(errors.join("; ")))
    }

    async fn send_one(
        &self,
        method: hyper::Method,
        url: &str,
        json: Option<Bytes>,
    ) -> Result<hyper::Response<Incoming>, String> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header(hyper::header::AUTHORIZATION, &self.authorization);
        if json.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(json.unwrap_or_default()))
            .map_err(|e| format!("not a usable URL: {e}"))?;
        let res = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot connect: {e}"))?;
        match res.status().as_u16() {
            200..=299 => Ok(res),
            401 => Err("refused the cluster secret (check `[cluster] secret` on both nodes)".into()),
            status => {
                let body = res
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Err(format!(
                    "answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ))
            }
        }
    }
}

impl Hub for HttpHub {
    fn snapshot<'a>(&'a self, environment: &'a str, tenants: &'a TenantFilter) -> HubFuture<'a, Snapshot> {
        Box::pin(async move {
            let mut params = vec![("environment", environment.to_string())];
            params.extend(tenants.to_query().map(|t| ("tenants", t)));
            let query = serde_urlencoded::to_string(params).map_err(|e| HubError(e.to_string()))?;
            let res = self.get(&format!("/snapshot?{query}")).await?;
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| HubError(format!("snapshot cut off: {e}")))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| HubError(format!("unreadable snapshot: {e}")))
        })
    }

    fn watch<'a>(&'a self, since: i64, tenants: &'a TenantFilter) -> HubFuture<'a, Watch> {
        Box::pin(async move {
            let mut query = format!("/watch?since={since}");
            if let Some(list) = tenants.to_query() {
                let encoded = serde_urlencoded::to_string([("tenants", list)]).map_err(|e| HubError(e.to_string()))?;
                query.push('&');
                query.push_str(&encoded);
            }
            let res = self.get(&query).await?;
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(read_stream(res.into_body(), tx));
            Ok(rx)
        })
    }

    fn report<'a>(&'a self, report: &'a GatewayReport) -> HubFuture<'a, ()> {
        Box::pin(async move {
            let body = serde_json::to_vec(report).map_err(|e| HubError(e.to_string()))?;
            self.send(hyper::Method::POST, "/gateway-status", Some(Bytes::from(body)))
                .await
                .map(|_| ())
        })
    }

    fn describe(&self) -> String {
        self.urls.join(", ")
    }
}

/// The same traffic managers hold the shared throttle counters:
/// `POST /internal/v1/throttle/sync`.
impl Counters for HttpHub {
    fn sync(&self, request: SyncRequest) -> HubFuture<'_, SyncResponse> {
        Box::pin(async move {
            let body = serde_json::to_vec(&request).map_err(|e| HubError(e.to_string()))?;
            let res = self
                .send(hyper::Method::POST, "/throttle/sync", Some(Bytes::from(body)))
                .await?;
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| HubError(format!("throttle sync cut off: {e}")))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| HubError(format!("unreadable throttle sync answer: {e}")))
        })
    }

    fn describe(&self) -> String {
        format!("traffic manager {}", self.urls.join(", "))
    }
}

/// Reads an SSE body into watch items until it ends or the receiver goes away. Events
/// that arrive in one read are delivered as one batch. A receiver that gives up on a
/// silent stream (a half-open connection) ends the reading at once, with its connection:
/// waiting for the next frame would keep both for as long as the socket stays open.
async fn read_stream(mut body: Incoming, tx: mpsc::Sender<WatchItem>) {
    let mut parser = SseParser::default();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = tx.closed() => return,
        };
        let Some(frame) = frame else { return };
        let Ok(frame) = frame else { return };
        let Ok(data) = frame.into_data() else { continue };
        for item in parser.feed(&data) {
            if tx.send(item).await.is_err() {
                return;
            }
        }
    }
}

/// An incremental parser of the hub's SSE stream.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: BytesMut,
    event: Option<String>,
    data: String,
}

impl SseParser {
    /// Feeds bytes; returns the items completed by them (events batched together).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<WatchItem> {
        self.buffer.extend_from_slice(bytes);
        let mut items = Vec::new();
        let mut batch: Vec<Event> = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line = self.buffer.split_to(end + 1);
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                let event = self.event.take();
                let data = std::mem::take(&mut self.data);
                match event.as_deref() {
                    Some("resnapshot") => {
                        flush(&mut batch, &mut items);
                        items.push(WatchItem::Resnapshot);
                    }
                    _ if data.is_empty() => {}
                    _ => match serde_json::from_str::<Event>(&data) {
                        Ok(e) => batch.push(e),
                        Err(e) => {
                            tracing::warn!(error = %e, "Unreadable event from the hub; skipped (the next heartbeat will catch it up).")
                        }
                    },
                }
            } else if let Some(comment) = line.strip_prefix(':') {
                let comment = comment.trim();
                if let Some(seq) = comment.strip_prefix("heartbeat ").and_then(|s| s.trim().parse().ok()) {
                    flush(&mut batch, &mut items);
                    items.push(WatchItem::Heartbeat { seq });
                } else if let Some(seq) = comment.strip_prefix("progress ").and_then(|s| s.trim().parse().ok()) {
                    flush(&mut batch, &mut items);
                    items.push(WatchItem::Progress { seq });
                }
            } else if let Some(value) = line.strip_prefix("event:") {
                self.event = Some(value.trim().to_string());
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        flush(&mut batch, &mut items);
        items
    }
}

fn flush(batch: &mut Vec<Event>, items: &mut Vec<WatchItem>) {
    if !batch.is_empty() {
        items.push(WatchItem::Events(std::mem::take(batch)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_given_up_on_closes_its_connection() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A hub that answers the watch and then says nothing, as over a half-open connection.
        let hub_side = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            // Closed by the gateway (0 bytes or a reset) within the time, or kept open.
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut buf)).await;
            matches!(read, Ok(Ok(0) | Err(_)))
        });
        let hub = HttpHub::new(
            vec![format!("http://{addr}")],
            "secret",
            crate::proxy::backend_tls(None).unwrap(),
        );
        let watch = hub.watch(0, &TenantFilter::all()).await.unwrap();
        // The follower presumes a silent watch dead and drops it.
        drop(watch);
        assert!(hub_side.await.unwrap(), "the dropped watch's connection is still open");
    }

    fn event_json(seq: i64) -> String {
        serde_json::json!({
            "seq": seq, "kind": "application_deleted", "tenant_id": "00000000-0000-7000-8000-000000000001",
            "environment": null, "payload": {"id": "a"}, "created_at": 1
        })
        .to_string()
    }

    #[test]
    fn events_heartbeats_and_resnapshots_are_parsed_across_chunk_boundaries() {
        let stream = format!(
            "id: 1\nevent: application_deleted\ndata: {}\n\nid: 2\nevent: application_deleted\ndata: {}\n\n: progress 4\n\n: heartbeat 4\n\nevent: resnapshot\ndata: {{}}\n\n",
            event_json(1),
            event_json(2)
        );
        for split in [1, 7, 40, stream.len() - 3] {
            let mut parser = SseParser::default();
            let mut items = parser.feed(&stream.as_bytes()[..split]);
            items.extend(parser.feed(&stream.as_bytes()[split..]));
            let seqs: Vec<i64> = items
                .iter()
                .flat_map(|i| match i {
                    WatchItem::Events(b) => b.iter().map(|e| e.seq).collect(),
                    _ => vec![],
                })
                .collect();
            assert_eq!(seqs, [1, 2], "split at {split}");
            assert!(items.contains(&WatchItem::Progress { seq: 4 }), "split at {split}");
            assert!(items.contains(&WatchItem::Heartbeat { seq: 4 }), "split at {split}");
            assert_eq!(items.last(), Some(&WatchItem::Resnapshot), "split at {split}");
        }
    }

    #[test]
    fn garbage_is_skipped_not_fatal() {
        let mut parser = SseParser::default();
        let items = parser.feed(format!("data: {{not json\n\n: heartbeat x\n\ndata: {}\n\n", event_json(5)).as_bytes());
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], WatchItem::Events(b) if b[0].seq == 5));
    }
}
