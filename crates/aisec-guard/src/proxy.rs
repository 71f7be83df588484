//! The reverse proxy: axum in front, reqwest towards the model server.
//!
//! Routes: `POST /v1/chat/completions`, `POST /v1/completions` (scanned),
//! `GET /v1/models` (passed through), `POST /v2/models/{name}/infer` and other
//! `/v2/...` KServe v2 paths (passed through with behaviour monitoring),
//! `GET /healthz`, `GET /metrics`, `GET /guard/alerts`, `GET /guard/findings`.
//!
//! Decisions: an input `block` answers 403 with
//! `{"error":{"type":"guard_blocked","stage":"input",...}}` and never reaches
//! the upstream; `redact` rewrites the offending strings in the JSON body;
//! `flag` only logs, counts and records. On non-streamed responses the same
//! holds for the output stage. On streamed (SSE) responses every event is
//! scanned (incrementally, on the accumulated text) *before* it is
//! forwarded; if an output scanner whose action is `block` or `redact`
//! fires, the event that completed the match is withheld, the client gets one
//! `data: {"error":{"type":"guard_blocked","stage":"output",...}}` event
//! followed by `data: [DONE]`, and the upstream stream is dropped. (Text
//! already forwarded cannot be recalled, so mid-stream `redact` ends the
//! stream like `block`.)
//!
//! Upstream failures: connection refused or DNS failure answers 502
//! `upstream_unreachable`; a non-streamed exchange not complete (headers and
//! whole body) within `upstream_timeout_ms`, or, streaming, no next chunk
//! within it, answers 504 `upstream_timeout` (or an error event
//! mid-stream). A client that disconnects mid-stream drops the relay task,
//! which drops the upstream response and so its connection.
//!
//! Encodings: the upstream is asked for `Accept-Encoding: identity`; a
//! `gzip`/`deflate` response is decoded within the response bound
//! ([`crate::decode`]) and scanned, any other coding answers 502
//! `upstream_encoding`. A successful response that is not the OpenAI JSON
//! shape is scanned as text (and blocked rather than redacted).
//!
//! Paths, connection and body bounds are enforced before routing, in
//! [`crate::serve`].

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aisec_core::{Finding, Location};
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::audit::AuditLog;
use crate::metrics::Metrics;
use crate::monitor::{fnv64, simhash, Event, Monitor};
use crate::policy::{Action, Policy, PolicyError};
use crate::scan::{redact, size_of, Detection, Pipeline};
use crate::text::truncate_bytes;

/// Most decision findings kept for `/guard/findings`.
const MAX_FINDINGS: usize = 2000;
/// Most bytes of one pending SSE event.
const MAX_SSE_EVENT: usize = 1 << 20;
/// Overlap (bytes) between successive incremental output scans.
const SCAN_OVERLAP: usize = 2048;

/// Which API a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

impl RouteKind {
    fn name(self) -> &'static str {
        match self {
            RouteKind::Chat => "chat",
            RouteKind::Completion => "completions",
        }
    }
}

/// Shared state of a running guard.
pub struct GuardState {
    pipeline: RwLock<Arc<Pipeline>>,
    client: RwLock<reqwest::Client>,
    /// Metrics registry.
    pub metrics: Metrics,
    monitor: Mutex<Monitor>,
    findings: Mutex<VecDeque<Finding>>,
    policy_path: Option<PathBuf>,
    hasher: std::collections::hash_map::RandomState,
    next_id: AtomicU64,
    /// The JSON audit log.
    pub audit: AuditLog,
    /// Drift / OOD / adversarial monitor of the KServe model, if the policy names one.
    model_monitor: Option<Mutex<crate::modelmon::KServeMonitor>>,
    model_alerts: Mutex<VecDeque<Finding>>,
}

/// Reloads the policy on a blocking thread: compiling and warming a pipeline
/// takes tens of milliseconds (more with a second stage to load), which an
/// async worker serving requests should not spend. Errors are logged by
/// [`GuardState::reload`].
async fn reload_off_runtime(st: &Arc<GuardState>) {
    let st = st.clone();
    let _ = tokio::task::spawn_blocking(move || st.reload()).await;
}

/// A pipeline whose lazily built regex automata are filled before it serves
/// ([`Pipeline::warm_up`]).
fn warm(p: Pipeline) -> Pipeline {
    p.warm_up();
    p
}

fn build_client(p: &Policy) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(p.server.connect_timeout_ms))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

impl GuardState {
    /// State for `policy`; `policy_path` is re-read on reload.
    pub fn new(policy: Policy, policy_path: Option<PathBuf>) -> Arc<GuardState> {
        let level = policy.audit.decisions;
        let audit = AuditLog::open(&policy.audit.path, level).unwrap_or_else(|e| {
            tracing::error!(path = %policy.audit.path, error = %e, "cannot open the audit log; writing it to stderr");
            AuditLog::stderr(level)
        });
        GuardState::with_audit(policy, policy_path, audit)
    }

    /// State for `policy` with the audit log `audit` (the policy's `[audit]` section is not used).
    pub fn with_audit(
        policy: Policy,
        policy_path: Option<PathBuf>,
        audit: AuditLog,
    ) -> Arc<GuardState> {
        let client = build_client(&policy);
        let model_monitor = policy.model_monitor.as_ref().and_then(|cfg| {
            match crate::modelmon::KServeMonitor::from_config(cfg) {
                Ok(m) => Some(Mutex::new(m)),
                Err(e) => {
                    tracing::error!(error = %e, "model monitor disabled");
                    audit.write(
                        "model_monitor",
                        json!({"result": "error", "error": e.to_string()}),
                    );
                    None
                }
            }
        });
        Arc::new(GuardState {
            pipeline: RwLock::new(Arc::new(warm(Pipeline::new(policy)))),
            client: RwLock::new(client),
            metrics: Metrics::default(),
            monitor: Mutex::new(Monitor::default()),
            findings: Mutex::new(VecDeque::new()),
            policy_path,
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
            audit,
            model_monitor,
            model_alerts: Mutex::new(VecDeque::new()),
        })
    }

    /// The pipeline in force.
    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn http(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the policy (the listen address stays as it was).
    pub fn apply(&self, policy: Policy) {
        let client = build_client(&policy);
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
        let pipeline = Arc::new(warm(Pipeline::new(policy)));
        *self.pipeline.write().unwrap_or_else(|p| p.into_inner()) = pipeline;
    }

    /// Re-reads the policy file. An invalid file keeps the old policy and returns the error (also logged).
    pub fn reload(&self) -> Result<(), PolicyError> {
        let Some(path) = &self.policy_path else {
            return Ok(());
        };
        match Policy::load(path) {
            Ok(p) => {
                self.apply(p);
                self.metrics
                    .inc("aisec_guard_policy_reloads_total", &[("result", "ok")]);
                self.audit.write(
                    "policy_reload",
                    json!({"result": "ok", "path": path.display().to_string()}),
                );
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .inc("aisec_guard_policy_reloads_total", &[("result", "error")]);
                tracing::error!(error = %e, "invalid policy; keeping the previous one");
                self.audit.write(
                    "policy_reload",
                    json!({"result": "error", "path": path.display().to_string(), "error": e.to_string()}),
                );
                Err(e)
            }
        }
    }

    /// Behaviour alerts raised so far.
    pub fn alerts(&self) -> Vec<Finding> {
        let mut a = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .alerts();
        a.extend(
            self.model_alerts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        a
    }

    /// Runs the KServe model monitor (if configured) on one inference request body.
    fn observe_model(&self, client: &str, body: &Value) {
        let Some(m) = &self.model_monitor else {
            return;
        };
        let found = m
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe_kserve(body, &self.metrics);
        match found {
            Ok(fs) => {
                let mut g = self.model_alerts.lock().unwrap_or_else(|p| p.into_inner());
                for f in fs {
                    self.metrics
                        .inc("aisec_guard_alerts_total", &[("rule", f.rule_id.as_str())]);
                    self.audit.write(
                        "alert",
                        json!({"rule": f.rule_id, "client": client, "evidence": f.evidence, "atlas": f.atlas, "location": f.location.to_string()}),
                    );
                    if g.len() >= crate::monitor::MAX_ALERTS {
                        g.pop_front();
                    }
                    g.push_back(f.metric("client", client));
                }
            }
            Err(e) => {
                self.metrics
                    .inc("aisec_guard_model_monitor_errors_total", &[]);
                tracing::debug!(error = %e, "model monitor skipped a request");
            }
        }
    }

    /// Decision findings recorded so far (most recent last).
    pub fn findings(&self) -> Vec<Finding> {
        self.findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, route: &str, id: u64, client: &str, stage: &str, dets: &[Detection]) {
        let mut g = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        for d in dets {
            self.metrics.inc(
                "aisec_guard_detections_total",
                &[
                    ("scanner", d.scanner),
                    ("rule", d.rule.id),
                    ("action", d.action.as_str()),
                ],
            );
            let mut f = d
                .rule
                .finding(
                    Location::path(format!("guard:{route}"))
                        .with_member(format!("request-{id}/{stage}")),
                    d.evidence.clone(),
                )
                .metric("action", d.action.as_str())
                .metric("client", client);
            if let Some(s) = d.score {
                f = f.metric("score", (s as f64 * 1000.0).round() / 1000.0);
            }
            if g.len() >= MAX_FINDINGS {
                g.pop_front();
            }
            g.push_back(f);
        }
    }

    fn client_id(&self, headers: &HeaderMap, addr: Option<SocketAddr>, header: &str) -> String {
        if let Some(v) = headers
            .get(header)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            return format!("key:{:016x}", self.hasher.hash_one(v));
        }
        match addr {
            Some(a) => format!("ip:{}", a.ip()),
            None => "ip:unknown".into(),
        }
    }

    fn observe(
        &self,
        client: &str,
        text: &str,
        blocked: bool,
        injection: bool,
    ) -> crate::monitor::Verdict {
        let p = self.pipeline();
        if !p.policy.monitor.enabled {
            return Default::default();
        }
        let ev = Event {
            fingerprint: simhash(text),
            exact: fnv64(text.as_bytes()),
            blocked,
            injection,
        };
        let v = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(&p.policy.monitor, client, ev, Instant::now());
        for a in &v.alerts {
            self.metrics
                .inc("aisec_guard_alerts_total", &[("rule", a.rule_id.as_str())]);
            self.audit.write(
                "alert",
                json!({"rule": a.rule_id, "client": client, "evidence": a.evidence, "atlas": a.atlas, "owasp": a.owasp}),
            );
        }
        v
    }
}

/// The axum router for `state`.
pub fn router(state: Arc<GuardState>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/metrics", get(metrics_handler))
        .route(
            "/guard/alerts",
            get(|State(s): State<Arc<GuardState>>| async move {
                axum::Json(json!({"alerts": s.alerts()}))
            }),
        )
        .route(
            "/guard/findings",
            get(|State(s): State<Arc<GuardState>>| async move {
                axum::Json(json!({"findings": s.findings()}))
            }),
        )
        .route(
            "/v1/chat/completions",
            post(
                |s: State<Arc<GuardState>>, c: ConnectInfo<SocketAddr>, h: HeaderMap, b: Bytes| {
                    openai(s, c, h, b, RouteKind::Chat)
                },
            ),
        )
        .route(
            "/v1/completions",
            post(
                |s: State<Arc<GuardState>>, c: ConnectInfo<SocketAddr>, h: HeaderMap, b: Bytes| {
                    openai(s, c, h, b, RouteKind::Completion)
                },
            ),
        )
        .route("/v1/models", get(passthrough))
        .route("/v2", any(passthrough))
        .route("/v2/*rest", any(passthrough))
        .fallback(|| async {
            json_error(
                StatusCode::NOT_FOUND,
                "not_found",
                "aisec guard does not serve this path",
            )
        })
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

async fn metrics_handler(State(s): State<Arc<GuardState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
        .into_response()
}

fn json_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn blocked_response(stage: &str, dets: &[Detection]) -> Response {
    let list: Vec<Value> = dets
        .iter()
        .filter(|d| d.action != Action::Flag)
        .map(|d| json!({"rule": d.rule.id, "scanner": d.scanner, "evidence": d.evidence, "atlas": d.rule.atlas, "owasp": d.rule.owasp}))
        .collect();
    let body = json!({"error": {"type": "guard_blocked", "stage": stage, "message": format!("request blocked by aisec guard ({stage} scanners)"), "findings": list}});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// One request decision, as an audit-log line and a debug-level `tracing` event.
pub(crate) struct Decision<'a> {
    pub id: u64,
    pub client: &'a str,
    pub route: &'a str,
    pub decision: &'a str,
    pub status: u16,
    pub dets: &'a [Detection],
    pub scan: Duration,
    pub total: Duration,
}

/// One request in flight: its id, client, route and start. Every way a
/// handler ends goes through [`Request::finish`].
#[derive(Clone)]
struct Request {
    state: Arc<GuardState>,
    id: u64,
    client: String,
    route: &'static str,
    t0: Instant,
}

impl Request {
    /// Numbers the request and names its client (the policy's client-key
    /// header, else the peer address).
    fn new(
        state: &Arc<GuardState>,
        p: &Pipeline,
        headers: &HeaderMap,
        addr: SocketAddr,
        route: &'static str,
    ) -> Request {
        let t0 = Instant::now();
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        let client = state.client_id(headers, Some(addr), &p.policy.server.client_key_header);
        Request {
            state: state.clone(),
            id,
            client,
            route,
            t0,
        }
    }

    /// Counts the request under its route and decision, times it, and
    /// writes the decision to the audit log.
    fn finish(&self, decision: &str, status: StatusCode, dets: &[Detection], scan: Duration) {
        let (state, route) = (&self.state, self.route);
        state.metrics.inc(
            "aisec_guard_requests_total",
            &[("route", route), ("decision", decision)],
        );
        state.metrics.observe(
            "aisec_guard_request_seconds",
            &[("route", route)],
            self.t0.elapsed().as_secs_f64(),
        );
        audit(
            &state.audit,
            Decision {
                id: self.id,
                client: &self.client,
                route,
                decision,
                status: status.as_u16(),
                dets,
                scan,
                total: self.t0.elapsed(),
            },
        );
    }
}

/// `r` with the upstream's (filtered) response headers.
fn with_headers(mut r: Response, headers: HeaderMap) -> Response {
    *r.headers_mut() = headers;
    r
}

fn audit(log: &AuditLog, d: Decision<'_>) {
    tracing::debug!(
        target: "aisec_guard::audit",
        event = "decision",
        request_id = d.id,
        decision = %d.decision,
        status = d.status,
        detections = d.dets.len(),
    );
    if !log.wants_decision(d.decision, d.dets.len()) {
        return;
    }
    let list: Vec<Value> = d
        .dets
        .iter()
        .map(|x| {
            let mut o = json!({"rule": x.rule.id, "scanner": x.scanner, "action": x.action.as_str(), "evidence": x.evidence, "atlas": x.rule.atlas, "owasp": x.rule.owasp});
            if let Some(s) = x.score {
                o["score"] = json!((s as f64 * 1000.0).round() / 1000.0);
            }
            o
        })
        .collect();
    log.write(
        "decision",
        json!({
            "request_id": d.id,
            "client": d.client,
            "route": d.route,
            "decision": d.decision,
            "status": d.status,
            "detections": list,
            "scan_us": d.scan.as_micros() as u64,
            "total_ms": (d.total.as_secs_f64() * 1e6).round() / 1e3,
        }),
    );
}

fn forward_headers(src: &HeaderMap) -> reqwest::header::HeaderMap {
    let mut out = reqwest::header::HeaderMap::new();
    for (k, v) in src {
        let n = k.as_str();
        if matches!(
            n,
            "host"
                | "content-length"
                | "connection"
                | "transfer-encoding"
                | "keep-alive"
                | "upgrade"
                | "te"
                | "trailer"
                | "proxy-connection"
                | "accept-encoding"
        ) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_ref()),
            reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out.append(k, v);
        }
    }
    out
}

fn copy_response_headers(src: &reqwest::header::HeaderMap, dst: &mut HeaderMap) {
    for (k, v) in src {
        let n = k.as_str();
        if matches!(
            n,
            "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_ref()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            dst.append(k, v);
        }
    }
}

fn upstream_url(p: &Pipeline, path_and_query: &str) -> String {
    format!(
        "{}{}",
        p.policy.server.upstream.trim_end_matches('/'),
        path_and_query
    )
}

enum UpstreamError {
    Unreachable(String),
    Timeout,
    Other(String),
    /// The upstream URL would not carry the screened path verbatim.
    Path,
}

impl UpstreamError {
    fn response(&self, state: &GuardState) -> Response {
        match self {
            UpstreamError::Unreachable(m) => {
                state.metrics.inc(
                    "aisec_guard_upstream_errors_total",
                    &[("kind", "unreachable")],
                );
                json_error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unreachable",
                    &format!("cannot reach the model server: {m}"),
                )
            }
            UpstreamError::Timeout => {
                state
                    .metrics
                    .inc("aisec_guard_upstream_errors_total", &[("kind", "timeout")]);
                json_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "the model server did not answer in time",
                )
            }
            UpstreamError::Path => {
                state
                    .metrics
                    .inc("aisec_guard_rejected_total", &[("reason", "path")]);
                json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    "the request path would not reach the model server unchanged",
                )
            }
            UpstreamError::Other(m) => {
                state
                    .metrics
                    .inc("aisec_guard_upstream_errors_total", &[("kind", "other")]);
                json_error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    &format!("model server error: {m}"),
                )
            }
        }
    }
}

/// Sends one request upstream; the response headers must arrive by `deadline`.
///
/// `path` (already normalised by [`crate::serve`]) must survive URL parsing
/// unchanged, so the upstream is asked for exactly the path that was routed
/// and screened; otherwise the request is refused.
async fn send(
    state: &GuardState,
    p: &Pipeline,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    deadline: tokio::time::Instant,
) -> Result<reqwest::Response, UpstreamError> {
    let url = reqwest::Url::parse(&upstream_url(p, path)).map_err(|_| UpstreamError::Path)?;
    let want = path.split('?').next().unwrap_or(path);
    if !url.path().ends_with(want) {
        return Err(UpstreamError::Path);
    }
    let req = state
        .http()
        .request(method, url)
        .headers(forward_headers(headers))
        .header(reqwest::header::ACCEPT_ENCODING, "identity")
        .body(body);
    match tokio::time::timeout_at(deadline, req.send()).await {
        Err(_) => Err(UpstreamError::Timeout),
        Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Unreachable(e.to_string())),
        Ok(Err(e)) if e.is_timeout() => Err(UpstreamError::Timeout),
        Ok(Err(e)) => Err(UpstreamError::Other(e.to_string())),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Reads a whole upstream body, bounded in size and finished by `deadline`
/// (the same deadline as the request, so headers then a byte a second still
/// ends at `upstream_timeout_ms`).
async fn read_body(
    resp: reqwest::Response,
    max: usize,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, UpstreamError> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => return Err(UpstreamError::Other(e.to_string())),
            Ok(Some(Ok(b))) => {
                if out.len() + b.len() > max {
                    return Err(UpstreamError::Other(format!(
                        "response larger than {max} bytes"
                    )));
                }
                out.extend_from_slice(&b);
            }
        }
    }
}

/// Where a request text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// The application's system or developer message (trusted for injection purposes).
    System,
    /// The user's own prompt (and earlier turns).
    User,
    /// A tool or function result, or other content the policy marks as retrieved (indirect injection).
    Tool,
}

/// Request texts: (pointer into the JSON, its channel).
fn request_texts(kind: RouteKind, body: &Value, p: &Pipeline) -> Vec<(String, Channel)> {
    let mut out = Vec::new();
    match kind {
        RouteKind::Chat => {
            if let Some(msgs) = body.get("messages").and_then(Value::as_array) {
                for (i, m) in msgs.iter().enumerate().take(10_000) {
                    let role = m.get("role").and_then(Value::as_str).unwrap_or("");
                    let channel = match role {
                        "system" | "developer" => Channel::System,
                        r if p.is_indirect_role(r) => Channel::Tool,
                        _ => Channel::User,
                    };
                    match m.get("content") {
                        Some(Value::String(_)) => {
                            out.push((format!("/messages/{i}/content"), channel))
                        }
                        Some(Value::Array(parts)) => {
                            for (j, part) in parts.iter().enumerate().take(1000) {
                                if part.get("text").is_some_and(Value::is_string) {
                                    out.push((format!("/messages/{i}/content/{j}/text"), channel));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        RouteKind::Completion => match body.get("prompt") {
            Some(Value::String(_)) => out.push(("/prompt".into(), Channel::User)),
            Some(Value::Array(items)) => {
                for (i, it) in items.iter().enumerate().take(10_000) {
                    if it.is_string() {
                        out.push((format!("/prompt/{i}"), Channel::User));
                    }
                }
            }
            _ => {}
        },
    }
    out
}

/// Response texts of a non-streamed OpenAI response, as JSON pointers.
fn response_texts(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(choices) = body.get("choices").and_then(Value::as_array) {
        for (i, c) in choices.iter().enumerate().take(1000) {
            if c.pointer("/message/content").is_some_and(Value::is_string) {
                out.push(format!("/choices/{i}/message/content"));
            }
            if c.get("text").is_some_and(Value::is_string) {
                out.push(format!("/choices/{i}/text"));
            }
        }
    }
    out
}

/// What the input stage found in one parsed request body.
pub struct InputScreen {
    texts: Vec<(String, Channel)>,
    /// The system/developer messages, joined (trusted context for the output scanners).
    pub system: String,
    /// Every input detection, the size limit's included.
    pub detections: Vec<Detection>,
    per_text: Vec<(String, Vec<Detection>)>,
}

/// Runs the input scanners over the texts of a parsed `kind` request body:
/// the entry point of request screening (used by the proxy and the fuzz target).
pub fn screen_input(p: &Pipeline, kind: RouteKind, json: &Value) -> InputScreen {
    let texts = request_texts(kind, json, p);
    let system: String = texts
        .iter()
        .filter(|(_, c)| *c == Channel::System)
        .map(|(ptr, _)| str_at(json, ptr))
        .collect::<Vec<_>>()
        .join("\n");
    let mut all = Vec::new();
    let mut per_text = Vec::new();
    for (ptr, channel) in &texts {
        let t = str_at(json, ptr);
        let d = match channel {
            // The application's own system prompt is trusted for injection purposes.
            Channel::System => p.scan_system(t),
            Channel::Tool => p.scan_indirect(t, &format!("tool content {ptr}")),
            Channel::User => p.scan_input(t),
        };
        all.extend(d.iter().cloned());
        per_text.push((ptr.clone(), d));
    }
    let (chars, tokens) = size_of(texts.iter().map(|(ptr, _)| str_at(json, ptr)));
    if let Some(d) = p.scan_limits(chars, tokens) {
        all.push(d);
    }
    InputScreen {
        texts,
        system,
        detections: all,
        per_text,
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

async fn openai(
    State(state): State<Arc<GuardState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
    kind: RouteKind,
) -> Response {
    let p = state.pipeline();
    let route = kind.name();
    let req = Request::new(&state, &p, &headers, addr, route);
    let (id, client) = (req.id, req.client.as_str());
    let finish = |decision: &str, status: StatusCode, dets: &[Detection], scan: Duration| {
        req.finish(decision, status, dets, scan);
    };
    // An upstream failure: recorded with the input stage's detections.
    let failed = |r: Response, all: &[Detection], scan: Duration| {
        finish("upstream_error", r.status(), all, scan);
        r
    };
    if body.len() > p.policy.server.max_body_bytes {
        finish("reject", StatusCode::PAYLOAD_TOO_LARGE, &[], Duration::ZERO);
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            &format!("request body over {} bytes", p.policy.server.max_body_bytes),
        );
    }
    // Bounded by structure as well as bytes: an object-bomb body takes ~90x
    // its size once parsed (issue 19).
    let limits = aisec_core::json::JsonLimits::BODY.with_max_bytes(p.policy.server.max_body_bytes);
    let json: Value = match aisec_core::json::from_slice(&body, &limits) {
        Ok(v @ Value::Object(_)) => v,
        Err(e) if e.is_limit() => {
            finish("reject", StatusCode::PAYLOAD_TOO_LARGE, &[], Duration::ZERO);
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_complex",
                &format!("request body not parsed: {e}"),
            );
        }
        _ => {
            finish("reject", StatusCode::BAD_REQUEST, &[], Duration::ZERO);
            return json_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "request body is not a JSON object",
            );
        }
    };
    // ---- input stage
    let ts = Instant::now();
    // With the second stage, on the blocking pool: its encoder passes (tens
    // of milliseconds on the texts in its band and on tool content) must not
    // hold one of the runtime's few worker threads. The fast path alone
    // (well under a millisecond) stays inline.
    let screened = if p.second_stage_status().0 {
        let p = Arc::clone(&p);
        tokio::task::spawn_blocking(move || {
            let s = screen_input(&p, kind, &json);
            (s, json)
        })
        .await
    } else {
        Ok((screen_input(&p, kind, &json), json))
    };
    let (
        InputScreen {
            texts,
            system,
            detections: all,
            per_text,
        },
        mut json,
    ) = match screened {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "input scan did not finish");
            finish(
                "error",
                StatusCode::INTERNAL_SERVER_ERROR,
                &[],
                ts.elapsed(),
            );
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "scan_failed",
                "the input scan did not finish",
            );
        }
    };
    let blocked = all.iter().any(|d| d.action == Action::Block);
    let injection = all
        .iter()
        .any(|d| d.scanner == "injection" || d.scanner == "indirect");
    let user_text: String = texts
        .iter()
        .filter(|(_, c)| *c == Channel::User)
        .map(|(ptr, _)| str_at(&json, ptr))
        .collect::<Vec<_>>()
        .join("\n");
    let verdict = state.observe(
        client,
        truncate_bytes(&user_text, 64 * 1024),
        blocked,
        injection,
    );
    state.record(route, id, client, "input", &all);
    let scan_in = ts.elapsed();
    state.metrics.observe(
        "aisec_guard_scan_seconds",
        &[("stage", "input")],
        scan_in.as_secs_f64(),
    );
    if verdict.over_rate && p.policy.monitor.rate_action == Action::Block {
        finish("rate_limited", StatusCode::TOO_MANY_REQUESTS, &all, scan_in);
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "client over its request rate",
        );
    }
    if blocked {
        finish("block", StatusCode::FORBIDDEN, &all, scan_in);
        return blocked_response("input", &all);
    }
    let mut changed = false;
    for (ptr, d) in &per_text {
        if d.iter().any(|d| d.action == Action::Redact) {
            let new = redact(str_at(&json, ptr), d);
            if let Some(slot) = json.pointer_mut(ptr) {
                *slot = Value::String(new);
                changed = true;
            }
        }
    }
    let out_body = if changed {
        Bytes::from(serde_json::to_vec(&json).unwrap_or_default())
    } else {
        body
    };
    let streaming = json.get("stream").and_then(Value::as_bool).unwrap_or(false);
    // ---- upstream
    let path = match kind {
        RouteKind::Chat => "/v1/chat/completions",
        RouteKind::Completion => "/v1/completions",
    };
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(p.policy.server.upstream_timeout_ms);
    let resp = match send(&state, &p, Method::POST, path, &headers, out_body, deadline).await {
        Ok(r) => r,
        Err(e) => return failed(e.response(&state), &all, scan_in),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut rh = HeaderMap::new();
    copy_response_headers(resp.headers(), &mut rh);
    // A compressed body is decoded (bounded) and scanned; one the guard cannot decode is refused.
    let coding = match crate::decode::coding_of(
        resp.headers()
            .get_all(reqwest::header::CONTENT_ENCODING)
            .iter()
            .map(|v| v.as_bytes()),
    ) {
        Ok(c) => c,
        Err(e) => return failed(decode_error_response(&state, &e), &all, scan_in),
    };
    if coding.is_some() {
        rh.remove(axum::http::header::CONTENT_ENCODING);
        rh.remove(axum::http::header::CONTENT_LENGTH);
    }
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let sys_opt = if system.is_empty() {
        None
    } else {
        Some(system)
    };
    if is_sse && streaming && status.is_success() {
        let decision = if all.is_empty() {
            "allow"
        } else if changed {
            "redact"
        } else {
            "flag"
        };
        finish(decision, status, &all, scan_in);
        return stream_response(req.clone(), p, resp, status, rh, sys_opt, coding);
    }
    let bytes = match read_body(resp, p.policy.server.max_response_bytes, deadline).await {
        Ok(b) => b,
        Err(e) => return failed(e.response(&state), &all, scan_in),
    };
    let bytes = match crate::decode::BodyDecoder::decode_all(
        coding,
        &bytes,
        p.policy.server.max_response_bytes,
    ) {
        Ok(b) => b,
        Err(e) => return failed(decode_error_response(&state, &e), &all, scan_in),
    };
    // ---- output stage
    let ts = Instant::now();
    let mut rjson: Value = match serde_json::from_slice(&bytes) {
        Ok(v) if status.is_success() => v,
        _ if status.is_success() => {
            // Not the JSON shape the output scanners walk: scan it as text, and since text
            // of unknown structure cannot be redacted in place, anything but `flag` blocks.
            let text = String::from_utf8_lossy(&bytes);
            let d = p.scan_output(&text, sys_opt.as_deref());
            state.record(route, id, client, "output", &d);
            let scan_out = ts.elapsed();
            let mut every = all.clone();
            every.extend(d.iter().cloned());
            if d.iter().any(|d| d.action != Action::Flag) {
                finish("block", StatusCode::FORBIDDEN, &every, scan_in + scan_out);
                return blocked_response("output", &d);
            }
            finish(
                if every.is_empty() { "allow" } else { "flag" },
                status,
                &every,
                scan_in + scan_out,
            );
            return with_headers((status, bytes).into_response(), rh);
        }
        _ => {
            finish(
                if all.is_empty() { "allow" } else { "flag" },
                status,
                &all,
                scan_in,
            );
            return with_headers((status, bytes).into_response(), rh);
        }
    };
    let mut out_all = Vec::new();
    let mut out_changed = false;
    for ptr in response_texts(&rjson) {
        let t = str_at(&rjson, &ptr).to_string();
        let d = p.scan_output(&t, sys_opt.as_deref());
        if d.iter().any(|d| d.action == Action::Redact) {
            if let Some(slot) = rjson.pointer_mut(&ptr) {
                *slot = Value::String(redact(&t, &d));
                out_changed = true;
            }
        }
        out_all.extend(d);
    }
    state.record(route, id, client, "output", &out_all);
    let scan_out = ts.elapsed();
    state.metrics.observe(
        "aisec_guard_scan_seconds",
        &[("stage", "output")],
        scan_out.as_secs_f64(),
    );
    let mut every = all.clone();
    every.extend(out_all.iter().cloned());
    if out_all.iter().any(|d| d.action == Action::Block) {
        finish("block", StatusCode::FORBIDDEN, &every, scan_in + scan_out);
        return blocked_response("output", &out_all);
    }
    let decision = if changed || out_changed {
        "redact"
    } else if every.is_empty() {
        "allow"
    } else {
        "flag"
    };
    finish(decision, status, &every, scan_in + scan_out);
    let body = if out_changed {
        Bytes::from(serde_json::to_vec(&rjson).unwrap_or_default())
    } else {
        Bytes::from(bytes)
    };
    with_headers((status, body).into_response(), rh)
}

fn decode_error_response(state: &GuardState, e: &crate::decode::DecodeError) -> Response {
    state
        .metrics
        .inc("aisec_guard_upstream_errors_total", &[("kind", "encoding")]);
    json_error(
        StatusCode::BAD_GATEWAY,
        "upstream_encoding",
        &format!("the model server's response cannot be scanned: {e}"),
    )
}

fn sse_error(kind: &str, message: &str, dets: &[Detection]) -> Bytes {
    let list: Vec<Value> = dets
        .iter()
        .map(|d| json!({"rule": d.rule.id, "scanner": d.scanner, "evidence": d.evidence}))
        .collect();
    let ev =
        json!({"error": {"type": kind, "stage": "output", "message": message, "findings": list}});
    Bytes::from(format!("data: {ev}\n\ndata: [DONE]\n\n"))
}

/// Splits off one complete SSE event (terminated by a blank line) from `buf`.
fn take_event(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let pos = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| p + 2)
        .or_else(|| buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4))?;
    let rest = buf.split_off(pos);
    Some(std::mem::replace(buf, rest))
}

/// The text an SSE event adds to the response.
fn event_text(ev: &[u8]) -> String {
    let s = String::from_utf8_lossy(ev);
    let mut out = String::new();
    for line in s.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim_start();
        if data == "[DONE]" {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            for ptr in ["/choices/0/delta/content", "/choices/0/text"] {
                if let Some(t) = v.pointer(ptr).and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
        }
    }
    out
}

fn stream_response(
    req: Request,
    p: Arc<Pipeline>,
    resp: reqwest::Response,
    status: StatusCode,
    headers: HeaderMap,
    system: Option<String>,
    coding: Option<&'static str>,
) -> Response {
    let Request {
        state, id, client, ..
    } = req;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    // The text relayed is bounded by `max` below and the pending event by MAX_SSE_EVENT; what one
    // compressed chunk may expand to is bounded here.
    let mut decoder =
        crate::decode::BodyDecoder::new(coding, usize::MAX).with_chunk_limit(4 * MAX_SSE_EVENT);
    let idle = Duration::from_millis(p.policy.server.upstream_timeout_ms);
    let max = p.policy.server.max_response_bytes;
    tokio::spawn(async move {
        let mut upstream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut acc = String::new();
        let mut scanned_to = 0usize;
        let mut seen: HashSet<(&'static str, String)> = HashSet::new();
        let mut scan_time = Duration::ZERO;
        let mut eof = false;
        let outcome: &str = 'relay: loop {
            let chunk = match tokio::time::timeout(idle, upstream.next()).await {
                Err(_) => {
                    state
                        .metrics
                        .inc("aisec_guard_upstream_errors_total", &[("kind", "timeout")]);
                    let _ = tx
                        .send(sse_error(
                            "upstream_timeout",
                            "the model server stopped sending",
                            &[],
                        ))
                        .await;
                    break 'relay "upstream_timeout";
                }
                Ok(None) => {
                    match std::mem::replace(
                        &mut decoder,
                        crate::decode::BodyDecoder::new(None, usize::MAX),
                    )
                    .finish()
                    {
                        Ok(rest) => buf.extend_from_slice(&rest),
                        Err(e) => {
                            let _ = tx
                                .send(sse_error("upstream_encoding", &e.to_string(), &[]))
                                .await;
                            break 'relay "upstream_error";
                        }
                    }
                    // An unterminated last event is scanned like any other, not relayed raw.
                    if !buf.is_empty() {
                        buf.extend_from_slice(b"\n\n");
                    }
                    eof = true;
                    Bytes::new()
                }
                Ok(Some(Err(_))) => {
                    state
                        .metrics
                        .inc("aisec_guard_upstream_errors_total", &[("kind", "stream")]);
                    let _ = tx
                        .send(sse_error(
                            "upstream_error",
                            "the model server's stream failed",
                            &[],
                        ))
                        .await;
                    break 'relay "upstream_error";
                }
                Ok(Some(Ok(b))) => b,
            };
            if decoder.is_identity() || eof {
                buf.extend_from_slice(&chunk);
            } else {
                match decoder.push(&chunk) {
                    Ok(d) => buf.extend_from_slice(&d),
                    Err(e) => {
                        let _ = tx
                            .send(sse_error("upstream_encoding", &e.to_string(), &[]))
                            .await;
                        break 'relay "upstream_error";
                    }
                }
            }
            while let Some(ev) = take_event(&mut buf) {
                let delta = event_text(&ev);
                if !delta.is_empty() {
                    if acc.len() + delta.len() > max {
                        let _ = tx
                            .send(sse_error(
                                "response_too_large",
                                "response exceeded the guard's size limit",
                                &[],
                            ))
                            .await;
                        break 'relay "too_large";
                    }
                    acc.push_str(&delta);
                    let ts = Instant::now();
                    let mut start = scanned_to.saturating_sub(SCAN_OVERLAP);
                    while !acc.is_char_boundary(start) {
                        start -= 1;
                    }
                    // Scan the new text plus an overlap with the previous scan, so matches that span
                    // events are seen and the cost stays linear in the response length.
                    let dets = p.scan_output(&acc[start..], system.as_deref());
                    scanned_to = acc.len();
                    scan_time += ts.elapsed();
                    let fresh: Vec<Detection> = dets
                        .into_iter()
                        .filter(|d| seen.insert((d.rule.id, d.evidence.clone())))
                        .collect();
                    if !fresh.is_empty() {
                        state.record("stream", id, &client, "output", &fresh);
                    }
                    let stop: Vec<Detection> = fresh
                        .into_iter()
                        .filter(|d| d.action != Action::Flag)
                        .collect();
                    if !stop.is_empty() {
                        state.audit.write(
                            "stream_blocked",
                            json!({"request_id": id, "client": client, "rules": stop.iter().map(|d| d.rule.id).collect::<Vec<_>>()}),
                        );
                        let _ = tx
                            .send(sse_error(
                                "guard_blocked",
                                "response stopped by aisec guard (output scanners)",
                                &stop,
                            ))
                            .await;
                        break 'relay "blocked";
                    }
                }
                if tx.send(Bytes::from(ev)).await.is_err() {
                    break 'relay "client_gone";
                }
            }
            if eof {
                break 'relay "complete";
            }
            if buf.len() > MAX_SSE_EVENT {
                let _ = tx
                    .send(sse_error(
                        "upstream_error",
                        "oversized server-sent event",
                        &[],
                    ))
                    .await;
                break 'relay "oversized_event";
            }
        };
        state
            .metrics
            .inc("aisec_guard_streams_total", &[("outcome", outcome)]);
        state.metrics.observe(
            "aisec_guard_scan_seconds",
            &[("stage", "stream_output")],
            scan_time.as_secs_f64(),
        );
        state.audit.write(
            "stream_end",
            json!({"request_id": id, "client": client, "outcome": outcome, "chars": acc.len()}),
        );
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    with_headers(r, headers)
}

/// Passes a request through unchanged (models list, KServe v2), with
/// behaviour monitoring of KServe inference inputs.
async fn passthrough(
    State(state): State<Arc<GuardState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = state.pipeline();
    let path = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let route = if uri.path().ends_with("/infer") {
        "kserve_infer"
    } else if uri.path().starts_with("/v2") {
        "kserve"
    } else {
        "models"
    };
    let req = Request::new(&state, &p, &headers, addr, route);
    let client = req.client.as_str();
    if body.len() > p.policy.server.max_body_bytes {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "request body too large",
        );
    }
    if route == "kserve_infer" {
        let limits =
            aisec_core::json::JsonLimits::BODY.with_max_bytes(p.policy.server.max_body_bytes);
        let parsed = aisec_core::json::from_slice::<Value>(&body, &limits).ok();
        let fp_text = parsed
            .as_ref()
            .and_then(|v| v.get("inputs"))
            .map(quantised)
            .unwrap_or_default();
        if let (Some(v), true) = (parsed, state.model_monitor.is_some()) {
            // The model runs off the request path: it adds no latency to the request.
            let (st, c) = (state.clone(), client.to_string());
            tokio::task::spawn_blocking(move || st.observe_model(&c, &v));
        }
        let v = state.observe(client, &fp_text, false, false);
        if v.over_rate && p.policy.monitor.rate_action == Action::Block {
            state.metrics.inc(
                "aisec_guard_requests_total",
                &[("route", route), ("decision", "rate_limited")],
            );
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "client over its request rate",
            );
        }
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(p.policy.server.upstream_timeout_ms);
    let resp = match send(&state, &p, method, path, &headers, body, deadline).await {
        Ok(r) => r,
        Err(e) => {
            state.metrics.inc(
                "aisec_guard_requests_total",
                &[("route", route), ("decision", "upstream_error")],
            );
            return e.response(&state);
        }
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut rh = HeaderMap::new();
    copy_response_headers(resp.headers(), &mut rh);
    let bytes = match read_body(resp, p.policy.server.max_response_bytes, deadline).await {
        Ok(b) => b,
        Err(e) => return e.response(&state),
    };
    req.finish("allow", status, &[], Duration::ZERO);
    with_headers((status, Bytes::from(bytes)).into_response(), rh)
}

/// A text form of KServe inputs with numbers rounded to one decimal, so
/// slightly perturbed queries fingerprint alike. Bounded to 20k values.
fn quantised(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String, n: &mut usize) {
        if *n > 20_000 {
            return;
        }
        *n += 1;
        match v {
            Value::Number(x) => {
                let f = x.as_f64().unwrap_or(0.0);
                out.push_str(&format!("{:.1} ", f));
            }
            Value::String(s) => {
                out.push_str(truncate_bytes(s, 256));
                out.push(' ');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out, n)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                out.push_str(k);
                out.push(' ');
                walk(x, out, n)
            }),
            _ => {}
        }
    }
    let mut s = String::new();
    let mut n = 0;
    walk(v, &mut s, &mut n);
    s
}

/// A guard listening on a socket.
pub struct RunningGuard {
    /// The bound address.
    pub addr: SocketAddr,
    /// Shared state (metrics, alerts, reload).
    pub state: Arc<GuardState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningGuard {
    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) -> Result<(), crate::error::GuardError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for w in &self.watchers {
            w.abort();
        }
        (&mut self.handle)
            .await?
            .map_err(crate::error::GuardError::io("serve connections"))
    }
}

/// Options for [`start`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Listen here instead of `server.listen`.
    pub listen: Option<SocketAddr>,
    /// Policy file to re-read on SIGHUP.
    pub policy_path: Option<PathBuf>,
    /// Poll the policy file's modification time every this often and reload on change.
    pub watch: Option<Duration>,
}

/// Binds the listener and serves until [`RunningGuard::shutdown`].
pub async fn start(
    policy: Policy,
    opts: StartOptions,
) -> Result<RunningGuard, crate::error::GuardError> {
    use crate::error::GuardError;
    let listen: SocketAddr = match opts.listen {
        Some(a) => a,
        None => policy
            .server
            .listen
            .parse()
            .map_err(|source| GuardError::ListenAddress {
                value: policy.server.listen.clone(),
                source,
            })?,
    };
    let state = GuardState::new(policy, opts.policy_path.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(GuardError::io(format!("bind {listen}")))?;
    let addr = listener
        .local_addr()
        .map_err(GuardError::io("read the bound address"))?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone());
    let limits = crate::serve::Limits::from_policy(&state.pipeline().policy.server);
    let handle = tokio::spawn(crate::serve::serve(
        listener,
        app,
        state.clone(),
        limits,
        rx,
    ));
    let mut watchers = Vec::new();
    if opts.policy_path.is_some() {
        #[cfg(unix)]
        {
            let st = state.clone();
            if let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                watchers.push(tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        reload_off_runtime(&st).await;
                    }
                }));
            }
        }
        if let (Some(every), Some(path)) = (opts.watch, opts.policy_path.clone()) {
            let st = state.clone();
            watchers.push(tokio::spawn(async move {
                let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                let mut last = mtime(&path);
                loop {
                    tokio::time::sleep(every).await;
                    let now = mtime(&path);
                    if now != last {
                        last = now;
                        reload_off_runtime(&st).await;
                    }
                }
            }));
        }
    }
    let pl = state.pipeline();
    let classifier = match &pl.policy.input.injection.model {
        Some(path) => path.display().to_string(),
        None => "built-in".to_string(),
    };
    // which second stage runs: "built-in", the model folder, "off", or why it did not load
    let st = &pl.policy.input.second_stage;
    let second_stage = match (st.enabled, pl.second_stage_status()) {
        (false, _) => "off".to_string(),
        (true, (true, _)) => st
            .model_dir
            .as_ref()
            .map_or_else(|| "built-in".to_string(), |d| d.display().to_string()),
        (true, (false, why)) => format!("not loaded: {}", why.unwrap_or("unknown error")),
    };
    state.audit.write(
        "start",
        json!({"listen": addr.to_string(), "classifier": classifier, "second_stage": second_stage}),
    );
    Ok(RunningGuard {
        addr,
        state,
        shutdown: Some(tx),
        handle,
        watchers,
    })
}
