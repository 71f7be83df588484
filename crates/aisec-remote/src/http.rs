//! The HTTP side: one `reqwest` client with timeouts, retries with
//! exponential backoff (429 and 503 honour `Retry-After`), a per-host
//! concurrency limit, and ranged reads whose bodies are cut at the length
//! asked for, whatever the server sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_RANGE, ETAG, RANGE, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

use crate::{RemoteError, RemoteOptions};

/// The longest `Retry-After` honoured; longer waits are capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A bounded, retrying HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    retries: u32,
    backoff: Duration,
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// What a HEAD (or a one-byte GET) says about an object.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) size: u64,
    pub(crate) etag: Option<String>,
}

impl Http {
    pub(crate) fn new(opts: &RemoteOptions) -> Result<Http, RemoteError> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .user_agent(concat!("aisec/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                RemoteError::Http(format!(
                    "cannot build the HTTP client: {}",
                    crate::chain(&e)
                ))
            })?;
        Ok(Http {
            client,
            retries: opts.retries,
            backoff: opts.backoff,
            per_host: opts.per_host.max(1),
            hosts: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The semaphore of `url`'s host (one per host:port).
    pub(crate) fn host_slot(&self, url: &str) -> Arc<Semaphore> {
        let host = reqwest::Url::parse(url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or(""),
                    u.port_or_known_default().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        let mut m = match self.hosts.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// Sends a request, retrying connection errors, timeouts, 429 and 5xx
    /// with exponential backoff (or the server's `Retry-After`).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<reqwest::Response, RemoteError> {
        let slot = self.host_slot(url);
        let mut attempt = 0u32;
        loop {
            let permit = slot
                .acquire()
                .await
                .map_err(|_| RemoteError::Http("connection limiter closed".into()))?;
            let res = self
                .client
                .request(method.clone(), url)
                .headers(headers.clone())
                .send()
                .await;
            drop(permit);
            let (wait, why) = match res {
                Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED => {
                    return Ok(r)
                }
                Ok(r) => {
                    let st = r.status();
                    let retryable = st == StatusCode::TOO_MANY_REQUESTS
                        || st == StatusCode::REQUEST_TIMEOUT
                        || st.is_server_error();
                    if !retryable {
                        return Err(RemoteError::Status {
                            url: url.to_string(),
                            status: st.as_u16(),
                        });
                    }
                    let after = retry_after(r.headers());
                    (after, format!("HTTP {}", st.as_u16()))
                }
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    (None, crate::chain(&e))
                }
                Err(e) => return Err(RemoteError::Http(format!("{url}: {}", crate::chain(&e)))),
            };
            if attempt >= self.retries {
                return Err(RemoteError::Http(format!(
                    "{url}: gave up after {} attempts (last: {why})",
                    attempt + 1
                )));
            }
            let backoff = self.backoff.saturating_mul(1 << attempt.min(16));
            let wait = wait.unwrap_or(backoff).min(MAX_RETRY_AFTER);
            tracing::debug!(url, attempt, ?wait, why, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// GETs a whole (small) document, at most `limit` bytes.
    pub(crate) async fn get_limited(
        &self,
        url: &str,
        token: Option<&str>,
        limit: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        let r = self.send(Method::GET, url, &auth(token)).await?;
        let (body, _) = read_capped(url, r, limit).await?;
        if body.len() as u64 >= limit {
            return Err(RemoteError::TooLarge {
                what: url.to_string(),
                limit,
            });
        }
        Ok(body)
    }

    /// Size and ETag of the object at `url`: HEAD, or a one-byte ranged
    /// GET when HEAD gives no length.
    pub(crate) async fn head(&self, url: &str, token: Option<&str>) -> Result<Head, RemoteError> {
        let h = auth(token);
        if let Ok(r) = self.send(Method::HEAD, url, &h).await {
            if let Some(size) = r.content_length().filter(|&n| n > 0) {
                return Ok(Head {
                    size,
                    etag: etag(r.headers()),
                });
            }
        }
        let mut h = h;
        h.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
        let r = self.send(Method::GET, url, &h).await?;
        let etag = etag(r.headers());
        let total = r
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|n| n.trim().parse::<u64>().ok());
        match (r.status(), total) {
            (StatusCode::PARTIAL_CONTENT, Some(size)) => Ok(Head { size, etag }),
            (_, _) if r.status() == StatusCode::OK => match r.content_length() {
                Some(size) => Ok(Head { size, etag }),
                None => Err(RemoteError::Http(format!(
                    "{url}: the server gives no object size"
                ))),
            },
            _ => Err(RemoteError::Http(format!(
                "{url}: the server gives no object size"
            ))),
        }
    }

    /// Bytes `start..end` of the object at `url`. A server that ignores
    /// the range (200) is read only up to `end` and cut; returns the bytes
    /// and how many travelled.
    pub(crate) async fn get_range(
        &self,
        url: &str,
        token: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<(Vec<u8>, u64), RemoteError> {
        if end <= start {
            return Ok((Vec::new(), 0));
        }
        let mut h = auth(token);
        let v = HeaderValue::from_str(&format!("bytes={start}-{}", end - 1))
            .map_err(|e| RemoteError::Http(e.to_string()))?;
        h.insert(RANGE, v);
        let r = self.send(Method::GET, url, &h).await?;
        let want = end - start;
        if r.status() == StatusCode::PARTIAL_CONTENT {
            let first = content_range_start(r.headers());
            if first != Some(start) {
                return Err(RemoteError::Http(format!(
                    "{url}: asked for bytes from {start}, the server sent a different range"
                )));
            }
            let (body, moved) = read_capped(url, r, want).await?;
            if (body.len() as u64) < want {
                return Err(RemoteError::Http(format!(
                    "{url}: short read at {start}: {} of {want} bytes",
                    body.len()
                )));
            }
            return Ok((body, moved));
        }
        // 200: the whole object follows; keep only what was asked for.
        let (mut body, moved) = read_capped(url, r, end).await?;
        if (body.len() as u64) < end {
            return Err(RemoteError::Http(format!(
                "{url}: object shorter than {end} bytes"
            )));
        }
        body.drain(..start as usize);
        Ok((body, moved))
    }
}

/// Reads at most `limit` bytes of a response body; returns them and the
/// bytes received (the last chunk may run past `limit`).
async fn read_capped(
    url: &str,
    r: reqwest::Response,
    limit: u64,
) -> Result<(Vec<u8>, u64), RemoteError> {
    let mut out = Vec::with_capacity(limit.min(1 << 20) as usize);
    let mut moved = 0u64;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RemoteError::Http(format!("{url}: {}", crate::chain(&e))))?;
        moved += chunk.len() as u64;
        let room = (limit as usize).saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() as u64 >= limit {
            break;
        }
    }
    Ok((out, moved))
}

pub(crate) fn auth(token: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
        let mut v = v;
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    h
}

fn etag(h: &HeaderMap) -> Option<String> {
    h.get(ETAG)
        .or_else(|| h.get(reqwest::header::LAST_MODIFIED))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_matches('"').to_string())
}

/// `Retry-After` in seconds (HTTP dates are not honoured: backoff instead).
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    h.get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The first byte a `206 Partial Content` answer says it carries
/// (`Content-Range: bytes FIRST-LAST/SIZE`), if the header is there and reads.
pub(crate) fn content_range_start(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|n| n.trim().parse::<u64>().ok())
}
