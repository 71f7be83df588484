//! A hub-shaped HTTP server over a local folder, for tests and benchmarks:
//! `ROOT/ORG/NAME/...` are repositories. It answers the parts of the
//! Hugging Face API this crate uses (`/api/models/ORG/NAME/revision/REV`,
//! `/ORG/NAME/resolve/REV/PATH` with `Range`, `ETag`), plain files under
//! `/files/PATH` (for `https://` sources), can answer the first request
//! with a 429, and counts the body bytes it sends.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Counters a test reads.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Body bytes sent.
    pub bytes: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// 429s sent.
    pub throttled: AtomicU64,
    /// File requests being answered now.
    pub in_flight: AtomicU64,
    /// The most file requests answered at once.
    pub max_in_flight: AtomicU64,
    /// Requests that carried an `Authorization: Bearer` header.
    pub with_token: AtomicU64,
    /// The distinct bearer tokens seen.
    pub tokens: std::sync::Mutex<Vec<String>>,
}

/// Counts a file request as in flight until dropped.
struct InFlight<'a>(&'a HubStats);

impl<'a> InFlight<'a> {
    fn enter(s: &'a HubStats) -> Self {
        let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(s)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Hub {
    root: Arc<PathBuf>,
    stats: Arc<HubStats>,
    throttle_once: Arc<AtomicBool>,
    /// Added to every file request (to make concurrency observable).
    delay: std::time::Duration,
}

/// A running server.
#[derive(Debug)]
pub struct HubServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its counters.
    pub stats: Arc<HubStats>,
}

/// Serves `root` on a loopback port on the current tokio runtime; with
/// `throttle_once`, the first request gets `429 Retry-After: 1`.
pub async fn serve(root: &Path, throttle_once: bool) -> std::io::Result<HubServer> {
    serve_on(root, throttle_once, "127.0.0.1:0").await
}

/// As [`serve`], on `addr`.
pub async fn serve_on(root: &Path, throttle_once: bool, addr: &str) -> std::io::Result<HubServer> {
    serve_with(root, throttle_once, addr, std::time::Duration::ZERO).await
}

/// As [`serve_on`], holding every file request for `delay` before it is
/// answered (so that a client's concurrency shows in
/// [`HubStats::max_in_flight`]).
pub async fn serve_with(
    root: &Path,
    throttle_once: bool,
    addr: &str,
    delay: std::time::Duration,
) -> std::io::Result<HubServer> {
    let stats = Arc::new(HubStats::default());
    let hub = Hub {
        root: Arc::new(root.to_path_buf()),
        stats: stats.clone(),
        throttle_once: Arc::new(AtomicBool::new(throttle_once)),
        delay,
    };
    let app = Router::new()
        .route("/api/models/:org/:name/revision/:rev", get(info))
        .route("/:org/:name/resolve/:rev/*path", get(resolve).head(resolve))
        .route("/files/*path", get(file).head(file))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(HubServer { url, stats })
}

fn safe(p: &str) -> bool {
    crate::source::safe_key(p)
}

/// A fixed commit id for a repo (the server has no history).
fn commit(org: &str, name: &str) -> String {
    format!(
        "{:016x}{:016x}",
        crate::stable_hash(org),
        crate::stable_hash(name)
    )
}

fn throttled(hub: &Hub, headers: &HeaderMap) -> Option<Response> {
    hub.stats.requests.fetch_add(1, Ordering::Relaxed);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        hub.stats.with_token.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut seen) = hub.stats.tokens.lock() {
            if !seen.iter().any(|s| s == t) {
                seen.push(t.to_string());
            }
        }
    }
    if hub.throttle_once.swap(false, Ordering::Relaxed) {
        hub.stats.throttled.fetch_add(1, Ordering::Relaxed);
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "slow down",
            )
                .into_response(),
        );
    }
    None
}

async fn info(
    State(hub): State<Hub>,
    headers: HeaderMap,
    UrlPath((org, name, _rev)): UrlPath<(String, String, String)>,
) -> Response {
    if let Some(r) = throttled(&hub, &headers) {
        return r;
    }
    if !safe(&org) || !safe(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let dir = hub.root.join(&org).join(&name);
    if !dir.is_dir() {
        return (StatusCode::NOT_FOUND, "Repository not found").into_response();
    }
    let mut siblings = Vec::new();
    for e in walkdir(&dir) {
        let Ok(rel) = e.strip_prefix(&dir) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&e) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        siblings.push(serde_json::json!({
            "rfilename": rel,
            "size": meta.len(),
            "blobId": format!("{:016x}", crate::stable_hash(&format!("{rel}:{}:{:?}", meta.len(), meta.modified().ok()))),
        }));
    }
    let body = serde_json::json!({
        "id": format!("{org}/{name}"),
        "sha": commit(&org, &name),
        "siblings": siblings,
    });
    axum::Json(body).into_response()
}

/// Regular files below `dir`, sorted.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

async fn resolve(
    State(hub): State<Hub>,
    method: Method,
    headers: HeaderMap,
    UrlPath((org, name, _rev, path)): UrlPath<(String, String, String, String)>,
) -> Response {
    if let Some(r) = throttled(&hub, &headers) {
        return r;
    }
    if !safe(&org) || !safe(&name) || !safe(&path) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let _busy = InFlight::enter(&hub.stats);
    if !hub.delay.is_zero() {
        tokio::time::sleep(hub.delay).await;
    }
    let p = hub.root.join(&org).join(&name).join(&path);
    send_file(&hub, &p, &method, &headers)
}

async fn file(
    State(hub): State<Hub>,
    method: Method,
    headers: HeaderMap,
    UrlPath(path): UrlPath<String>,
) -> Response {
    if let Some(r) = throttled(&hub, &headers) {
        return r;
    }
    if !safe(&path) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let _busy = InFlight::enter(&hub.stats);
    if !hub.delay.is_zero() {
        tokio::time::sleep(hub.delay).await;
    }
    let p = hub.root.join(&path);
    send_file(&hub, &p, &method, &headers)
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` against a size.
fn range(h: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = h.get(header::RANGE) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let spec = v.strip_prefix("bytes=").ok_or(())?;
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().map_err(|_| ())?, size),
        (a, b) => {
            let a: u64 = a.parse().map_err(|_| ())?;
            let b: u64 = b.parse().map_err(|_| ())?;
            (a, b.saturating_add(1).min(size))
        }
    };
    if start >= end {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn send_file(hub: &Hub, p: &Path, method: &Method, headers: &HeaderMap) -> Response {
    let Ok(mut f) = std::fs::File::open(p) else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    let Ok(meta) = f.metadata() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !meta.is_file() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let size = meta.len();
    let etag = format!(
        "\"{:016x}\"",
        crate::stable_hash(&format!(
            "{}:{size}:{:?}",
            p.display(),
            meta.modified().ok()
        ))
    );
    let (status, start, end) = match range(headers, size) {
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Ok(None) => (StatusCode::OK, 0, size),
        Err(()) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response()
        }
    };
    let mut b = Response::builder()
        .status(status)
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", end - 1),
        );
    }
    if method == Method::HEAD {
        return b
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let mut buf = vec![0u8; (end - start) as usize];
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_exact(&mut buf).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    hub.stats
        .bytes
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    b.body(Body::from(buf))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
