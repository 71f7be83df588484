//! The guard's front door: the accept loop, request-path normalisation,
//! and the bounds every connection and request body lives under.
//!
//! # Why a hand-written accept loop
//!
//! `axum::serve` (axum 0.7) has no header-read timeout, no connection cap
//! and no way to reject a request before routing. This module drives
//! hyper's HTTP/1 connection builder directly (the way hyper-util's server
//! examples do) so that:
//!
//! - **Half-sent headers and idle keep-alive connections** are closed after
//!   `server.header_timeout_ms`: hyper's `header_read_timeout` starts its
//!   timer whenever the connection waits for a request head, which is both
//!   the slow-headers case (slowloris) and the idle-between-requests case.
//! - **Slow readers** (a client that stops reading its response) are closed
//!   once one write has made no progress for `server.idle_timeout_ms`
//!   ([`StallIo`]). Time spent waiting for the upstream is not "idle": only
//!   a stalled socket write counts.
//! - **Connections are capped** at `server.max_connections`, so a flood of
//!   sockets cannot exhaust the process's file descriptors. At the cap, the
//!   oldest connection with no request in progress (idle, or still sending
//!   its headers) is closed to admit the new one, so clients that send their
//!   request promptly keep being served during an idle-connection flood; only
//!   when every connection is busy does a new one get a best-effort `503`.
//! - **Request bodies** are read here, before routing, within
//!   `server.body_timeout_ms` (the whole body, not per chunk) and
//!   `server.max_body_bytes`, and every byte held is first reserved from one
//!   process-wide budget of `server.max_inflight_body_bytes` (a semaphore
//!   counting KiB). A request that cannot get its reservation before its body
//!   deadline is answered `503`, so a hundred concurrent 1 MB bodies queue
//!   instead of taking gigabytes. The reservation is held until the handler
//!   has produced its response (by then the body has been parsed, screened
//!   and sent upstream).
//! - **Paths are normalised before routing** ([`normalize_path`]), and the
//!   request is routed *and forwarded* with the normalised path, so
//!   `/v2/../v1/chat/completions` is screened as the chat route it is.
//!
//! Only HTTP/1.x is served (OpenAI- and KServe-style clients speak it); a
//! client that opens with the HTTP/2 preface is refused by hyper's parser.
//! These bounds are fixed when the guard starts; a policy reload changes
//! `max_body_bytes` (read per request) but not the connection cap, the body
//! budget or the timeouts.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use axum::Router;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::proxy::GuardState;

/// Why a request path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*`).
    #[error("the request path does not start with `/`")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in the request path")]
    BadEscape,
    /// An encoded `/` or `\`, or a raw `\`: servers disagree on whether it separates segments.
    #[error("encoded slash or backslash in the request path")]
    EncodedSeparator,
    /// A control character (raw or encoded) or NUL.
    #[error("control character in the request path")]
    Control,
    /// An encoded `%` (`%25`): a double-encoded path that a second decoding would change.
    #[error("double-encoded request path")]
    DoubleEncoded,
    /// `..` above the root, `//`, or a dot segment with parameters (`..;x`).
    #[error("ambiguous request path ({0})")]
    Ambiguous(&'static str),
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes the percent-escapes of unreserved characters in one segment
/// (RFC 3986 §6.2.2.2) and upper-cases the rest; refuses escapes that would
/// change the path's structure on a server that decodes them.
fn normalise_segment(seg: &str) -> Result<String, PathError> {
    let b = seg.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::BadEscape);
            };
            let v = (h << 4) | l;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                0..=0x1f | 0x7f => return Err(PathError::Control),
                // An encoded `%` makes the path mean different things to servers that decode
                // once and twice (`%252e`); decoding other escapes can also complete such a
                // pattern (`%25A%45` becomes `%25AE`, found by fuzzing). Refuse them all.
                b'%' => return Err(PathError::DoubleEncoded),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(v as char)
                }
                _ => {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
                }
            }
            i += 3;
            continue;
        }
        match c {
            b'\\' => return Err(PathError::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(PathError::Control),
            _ => {}
        }
        // The path of a parsed `Uri` is ASCII; anything else is passed on verbatim.
        let ch_len = seg[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        out.push_str(&seg[i..i + ch_len]);
        i += ch_len;
    }
    Ok(out)
}

/// The normalised form of a request path (without its query): unreserved
/// escapes decoded, other escapes upper-cased, `.` and `..` segments
/// resolved (RFC 3986 §5.2.4, after decoding `%2e`).
///
/// Refused, because servers disagree on what they mean: encoded `/` or `\`,
/// raw `\`, control characters, malformed escapes, any encoded `%` (`%252e`),
/// `..` above the root, empty segments (`//`), and dot segments carrying
/// parameters (`..;x`, which servlet containers treat as `..`).
///
/// The guard routes on this path and forwards exactly it, so what the
/// upstream receives is what was screened. The path-traversal cases follow
/// the classic reverse-proxy normalisation mismatches (Orange Tsai, "Breaking
/// Parser Logic", Black Hat USA 2018).
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len().saturating_sub(1);
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    // Whether the normalised path ends with `/` (a trailing slash, or a final dot segment).
    let mut trailing = false;
    for (i, part) in parts.iter().enumerate() {
        let seg = normalise_segment(part)?;
        if seg.starts_with(".;") || seg.starts_with("..;") {
            return Err(PathError::Ambiguous("dot segment with parameters"));
        }
        match seg.as_str() {
            "." => trailing = i == last,
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::Ambiguous("`..` above the root"));
                }
                trailing = i == last;
            }
            "" if i == last => trailing = true,
            "" => return Err(PathError::Ambiguous("empty segment")),
            _ => {
                trailing = false;
                out.push(seg);
            }
        }
    }
    let mut path = String::with_capacity(raw.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if trailing || out.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// The connection and body bounds of a running guard (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed for a request head, and for the idle wait before the next one.
    pub header_timeout: Duration,
    /// Time a socket write may stay blocked on a client that does not read.
    pub idle_timeout: Duration,
    /// Time allowed for the whole request body.
    pub body_timeout: Duration,
    /// Most open client connections.
    pub max_connections: usize,
    /// Most request-body bytes held at once, over all requests.
    pub max_inflight_body_bytes: usize,
}

impl Limits {
    /// The bounds a policy's `[server]` section asks for.
    pub fn from_policy(s: &crate::policy::ServerConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            body_timeout: Duration::from_millis(s.body_timeout_ms),
            max_connections: s.max_connections,
            max_inflight_body_bytes: s.max_inflight_body_bytes,
        }
    }
}

/// The body budget counts KiB, so one reservation (a `u32` of permits) can cover any body.
const UNIT: usize = 1024;

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

struct Shared {
    router: Router,
    state: Arc<GuardState>,
    limits: Limits,
    budget: Arc<Semaphore>,
    budget_units: u32,
    /// Open connections by accept order.
    conns: std::sync::Mutex<BTreeMap<u64, Arc<Slot>>>,
    next_conn: AtomicU64,
}

/// One open connection: how many requests it has in progress (body read to
/// response body sent), and how to close it.
#[derive(Default)]
struct Slot {
    busy: AtomicUsize,
    kill: tokio::sync::Notify,
}

/// Marks a connection busy while a request and its response body are in progress.
struct Busy(Arc<Slot>);
impl Busy {
    fn new(slot: &Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::SeqCst);
        Busy(slot.clone())
    }
}
impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = json!({"error": {"type": kind, "message": message}}).to_string();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn reject(state: &GuardState, reason: &'static str, r: Response<Body>) -> Response<Body> {
    state
        .metrics
        .inc("aisec_guard_rejected_total", &[("reason", reason)]);
    r
}

/// Why a body could not be read.
enum BodyError {
    TooLarge(usize),
    Timeout,
    Busy,
    Broken,
}

fn held_units(held: &Option<OwnedSemaphorePermit>) -> u32 {
    held.as_ref()
        .map_or(0, |p| u32::try_from(p.num_permits()).unwrap_or(u32::MAX))
}

/// Grows `held` to `want` units of the body budget, waiting at most until `deadline`.
async fn reserve(
    budget: &Arc<Semaphore>,
    deadline: Instant,
    want: u32,
    held: &mut Option<OwnedSemaphorePermit>,
) -> Result<(), BodyError> {
    let have = held_units(held);
    if want <= have {
        return Ok(());
    }
    let p = match tokio::time::timeout_at(deadline, budget.clone().acquire_many_owned(want - have))
        .await
    {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Err(BodyError::Broken),
        Err(_) => return Err(BodyError::Busy),
    };
    match held.as_mut() {
        Some(h) => h.merge(p),
        None => *held = Some(p),
    }
    Ok(())
}

/// Reads a request body within the size limit, the body deadline and the shared budget.
async fn read_body(
    sh: &Shared,
    body: hyper::body::Incoming,
    declared: Option<usize>,
    max: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyError> {
    let deadline = Instant::now() + sh.limits.body_timeout;
    let max_units = units(max).min(sh.budget_units);
    let mut held: Option<OwnedSemaphorePermit> = None;
    if let Some(n) = declared {
        if n > max || units(n) > sh.budget_units {
            return Err(BodyError::TooLarge(max));
        }
        if n > 0 {
            reserve(&sh.budget, deadline, units(n), &mut held).await?;
        }
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = buf.len().saturating_add(data.len());
        if len > max {
            return Err(BodyError::TooLarge(max));
        }
        // Grow the reservation in 64 KiB steps as an undeclared (chunked) body arrives.
        let need = units(len);
        if need > held_units(&held) {
            let step = need.saturating_add(63).min(max_units.max(need));
            reserve(&sh.budget, deadline, step, &mut held).await?;
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), held))
}

async fn handle(
    sh: Arc<Shared>,
    slot: Arc<Slot>,
    addr: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let busy = Busy::new(&slot);
    let (mut parts, body) = req.into_parts();
    let state = &sh.state;
    let path = match normalize_path(parts.uri.path()) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(path = %parts.uri.path(), error = %e, "refused request path");
            return Ok(reject(
                state,
                "path",
                error(StatusCode::BAD_REQUEST, "invalid_path", &e.to_string()),
            ));
        }
    };
    if path != parts.uri.path() {
        state.metrics.inc("aisec_guard_paths_normalised_total", &[]);
        let pq = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut up = parts.uri.clone().into_parts();
        up.path_and_query = match pq.parse() {
            Ok(x) => Some(x),
            Err(_) => {
                return Ok(reject(
                    state,
                    "path",
                    error(
                        StatusCode::BAD_REQUEST,
                        "invalid_path",
                        "request path cannot be normalised",
                    ),
                ))
            }
        };
        parts.uri = Uri::from_parts(up).unwrap_or_else(|_| Uri::from_static("/"));
    }
    let max = state.pipeline().policy.server.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let (bytes, permit) = match read_body(&sh, body, declared, max).await {
        Ok(x) => x,
        Err(BodyError::TooLarge(m)) => {
            return Ok(reject(
                state,
                "body_too_large",
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    &format!("request body over {m} bytes"),
                ),
            ))
        }
        Err(BodyError::Timeout) => {
            let mut r = error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "request body not received in time",
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(reject(state, "body_timeout", r));
        }
        Err(BodyError::Busy) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "guard_busy",
                "too many request bodies in flight; retry shortly",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(reject(state, "body_budget", r));
        }
        Err(BodyError::Broken) => {
            return Ok(reject(
                state,
                "body_error",
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "request body could not be read",
                ),
            ))
        }
    };
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(ConnectInfo(addr));
    let resp = sh.router.clone().oneshot(req).await;
    drop(permit);
    let resp = resp.unwrap_or_else(|e: Infallible| match e {});
    Ok(resp.map(|inner| Body::new(Tracked { inner, _busy: busy })))
}

/// A socket whose writes fail with `TimedOut` once one has been blocked for
/// `limit` (a client that stopped reading its response).
struct StallIo {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl StallIo {
    fn check<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    )));
                }
                Poll::Pending
            }
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl AsyncRead for StallIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, r)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The answer to a connection over the cap (written without blocking, then closed).
const BUSY: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n",
    "content-length: 69\r\nconnection: close\r\n\r\n",
    r#"{"error":{"type":"guard_busy","message":"too many open connections"}}"#
);

/// Forgets a connection when its task ends.
struct Open(Arc<Shared>, u64);
impl Drop for Open {
    fn drop(&mut self) {
        self.0
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

/// Admits a new connection: under the cap it is registered; at the cap the
/// oldest connection with no request in progress (idle keep-alive, or still
/// sending its headers) is closed to make room; if every connection is busy
/// the new one is refused.
fn admit(sh: &Shared, slot: &Arc<Slot>) -> Option<u64> {
    let mut m = sh.conns.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= sh.limits.max_connections {
        let victim = m
            .iter()
            .find(|(_, s)| s.busy.load(Ordering::SeqCst) == 0)
            .map(|(k, _)| *k);
        if let Some(s) = victim.and_then(|k| m.remove(&k)) {
            s.kill.notify_one();
            sh.state
                .metrics
                .inc("aisec_guard_connections_evicted_total", &[]);
        }
    }
    if m.len() >= sh.limits.max_connections {
        return None;
    }
    let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
    m.insert(id, slot.clone());
    Some(id)
}

/// Serves `router` on `listener` under `limits` until `shutdown` fires, then
/// lets in-flight connections finish their current request and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    state: Arc<GuardState>,
    limits: Limits,
    shutdown: oneshot::Receiver<()>,
) -> io::Result<()> {
    let budget_units = units(limits.max_inflight_body_bytes.max(UNIT)).min(u32::MAX >> 3);
    let sh = Arc::new(Shared {
        router,
        state,
        limits,
        budget: Arc::new(Semaphore::new(budget_units as usize)),
        budget_units,
        conns: std::sync::Mutex::new(BTreeMap::new()),
        next_conn: AtomicU64::new(0),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = shutdown;
    loop {
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    sh.state.metrics.inc("aisec_guard_accept_errors_total", &[]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = Arc::new(Slot::default());
        let Some(id) = admit(&sh, &slot) else {
            sh.state
                .metrics
                .inc("aisec_guard_rejected_total", &[("reason", "connections")]);
            // Best effort, never blocking: the socket is closed when dropped.
            let _ = stream.try_write(BUSY.as_bytes());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let guard = Open(sh.clone(), id);
        let io = hyper_util::rt::TokioIo::new(StallIo {
            inner: stream,
            limit: sh.limits.idle_timeout,
            stalled: None,
        });
        let sh2 = sh.clone();
        let slot2 = slot.clone();
        let svc =
            hyper::service::service_fn(move |req| handle(sh2.clone(), slot2.clone(), addr, req));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(sh.limits.header_timeout)
            .serve_connection(io, svc);
        let fut = graceful.watch(conn);
        tokio::spawn(async move {
            let _guard = guard;
            tokio::select! {
                r = fut => if let Err(e) = r {
                    tracing::debug!(error = %e, "client connection ended with an error");
                },
                // Evicted to make room: dropping the connection closes the socket.
                _ = slot.kill.notified() => {}
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_well_formed() {
        let (head, body) = BUSY.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/",
            "/v1/chat/completions",
            "/v2/models/m-1.x_y~z/infer",
            "/v2/",
            "/v2/models/a%20b",
        ] {
            assert_eq!(normalize_path(p).as_deref(), Ok(p), "{p}");
        }
    }

    #[test]
    fn dot_segments_resolve_after_decoding() {
        let cases = [
            ("/v2/../v1/chat/completions", "/v1/chat/completions"),
            ("/v2/%2e%2e/v1/chat/completions", "/v1/chat/completions"),
            ("/v2/%2E./v1/completions", "/v1/completions"),
            (
                "/v2/models/x/../../../v1/chat/completions",
                "/v1/chat/completions",
            ),
            ("/v1/./chat/./completions", "/v1/chat/completions"),
            ("/v2/models/..", "/v2/"),
            ("/v2/models/.", "/v2/models/"),
            ("/%76%31/%63hat/completions", "/v1/chat/completions"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        // Encoded slashes are refused, not decoded.
        assert_eq!(
            normalize_path("/v2/models/a%2fb"),
            Err(PathError::EncodedSeparator)
        );
        // Other escapes are kept, upper-cased.
        assert_eq!(
            normalize_path("/v2/models/a%3ab").as_deref(),
            Ok("/v2/models/a%3Ab")
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let cases: [(&str, PathError); 13] = [
            ("/v2/..%2fv1/chat/completions", PathError::EncodedSeparator),
            ("/v2/..%5cv1", PathError::EncodedSeparator),
            ("/v2\\..\\v1", PathError::EncodedSeparator),
            ("/v2/%252e%252e/v1", PathError::DoubleEncoded),
            ("/v2/%25u002e", PathError::DoubleEncoded),
            ("/A%25A%45E/", PathError::DoubleEncoded),
            ("/v2/100%25", PathError::DoubleEncoded),
            ("/v2/%2", PathError::BadEscape),
            ("/v2/%zz", PathError::BadEscape),
            ("/v2/%00", PathError::Control),
            ("/../v1", PathError::Ambiguous("`..` above the root")),
            ("/v2//v1", PathError::Ambiguous("empty segment")),
            (
                "/v2/..;x/v1/chat/completions",
                PathError::Ambiguous("dot segment with parameters"),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
        assert_eq!(normalize_path("*"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn normalising_is_idempotent() {
        for p in [
            "/v2/../v1/chat/completions",
            "/a/%7e/./b/../c/",
            "/x/%41%3a",
        ] {
            let once = normalize_path(p).unwrap();
            assert_eq!(normalize_path(&once).as_deref(), Ok(once.as_str()));
        }
    }
}
