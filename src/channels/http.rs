//! The HTTP channel: a JSON API under `/v1` (axum), served by `yidi serve`.
//!
//! A thin adapter: every route parses its input, calls the core ([`Assistant`]'s search and
//! guidance, [`Conversations::turn`], the [`Store`]) and renders the result in the JSON forms
//! of `../shared/spec/cli.md`.
//!
//! | route | does |
//! |---|---|
//! | `GET /healthz` | the process is up |
//! | `GET /readyz` | the database answers (503 when it does not) |
//! | `GET /v1/faq/search?q=…&limit=K` | the `search --json` line for `q` (K = 1…20, default 3) |
//! | `GET /v1/faq/{id}` | one entry in the `faq --json` form |
//! | `POST /v1/checklist` | `checklist --json` for a situation object |
//! | `POST /v1/estimate` | `estimate --json` for an estimate input |
//! | `POST /v1/sessions` | a new conversation: `{"session_id", "token", "welcome"}` |
//! | `POST /v1/sessions/{id}/messages` | `{"text"}` → the reply in the `chat --json` form |
//! | `GET /v1/sessions/{id}` | the dialog state and the transcript |
//! | `POST /v1/feedback` | `{"helpful", "faq_id"?, "session_id"?, "comment"?}` |
//! | `GET /v1/openapi.json` | this API as an OpenAPI 3.1 document |
//! | `GET /metrics` | Prometheus metrics (see [`crate::metrics`]) |
//! | `/console`, `/v1/agent/…` | the hotline agents' console and its JSON: see [`console`] |
//!
//! Rate limits ([`crate::limits`]): every `/v1` route except the OpenAPI document, and the
//! console, count against the client IP's bucket (logged-in agents are exempt), and each
//! message against its session's bucket; a refusal is a 429 `rate_limited` with
//! `Retry-After` (whole seconds). The client IP is the peer address, or the last
//! `X-Forwarded-For` entry when `limits.trust_forwarded_for` is set.
//!
//! Sessions are read and written only with their bearer token (`Authorization: Bearer …`),
//! 256 random bits shown once at creation; the store keeps its SHA-256 hash.
//!
//! Every error is `{"error": {"code", "message"}}` (plus `"field"` for `invalid_field`) with a
//! stable snake_case code, a Chinese message and a 4xx status for bad input: bodies over
//! [`MAX_BODY_BYTES`] get 413, a body that is not declared as JSON 415, malformed JSON 400,
//! a field the core rejects 422. Error responses that axum or tower-http make themselves
//! (405, 413, a caught panic) are rewritten into the same shape by one middleware.
//!
//! Logs carry the method, the matched route (never the URI: it holds queries and session
//! ids), status and latency; the core logs session ids only as hashes.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::assistant::Assistant;
use crate::channels::console::{self, AgentAuth};
use crate::conversation::{Conversations, log_id};
use crate::dialog::engine::SessionState;
use crate::guidance::FieldError;
use crate::guidance::checklist::{self, Situation};
use crate::guidance::estimate::{self, EstimateInput};
use crate::limits::{Limited, RateLimits};
use crate::metrics::Metrics;
use crate::search::SearchResult;
use crate::store::{Store, StoreError, random_hex, random_token};

/// Largest request body accepted (bytes); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `limit` of a search.
pub const MAX_SEARCH_LIMIT: usize = 20;
/// Default `limit` of a search (as `yidi search`).
pub const DEFAULT_SEARCH_LIMIT: usize = 3;
/// Longest feedback comment (characters).
pub const MAX_COMMENT_CHARS: usize = 1_000;
/// Longest bearer token looked at; longer ones are wrong without hashing them.
pub(crate) const MAX_TOKEN_CHARS: usize = 256;

/// What every handler shares: the assistant and the store, through [`Conversations`], and
/// the agent tokens of the console.
#[derive(Clone)]
pub struct AppState {
    conversations: Conversations,
    agents: Arc<AgentAuth>,
    /// Connection and request time limits, the connection cap.
    http: crate::config::Http,
    /// The digest of the bearer token `/metrics` requires, if any.
    metrics_token: Option<Arc<AgentAuth>>,
    /// `/metrics` is served on a separate address ([`metrics_app`]), not by [`app`].
    metrics_elsewhere: bool,
}

impl AppState {
    /// With fresh metrics, the default limits and no agent tokens.
    pub fn new(assistant: Arc<Assistant>, store: Store) -> AppState {
        AppState::from_conversations(Conversations::new(assistant, store))
    }

    /// Sharing the core (and its metrics and limits) with the other channels.
    /// Without agent tokens, the console refuses every login.
    pub fn from_conversations(conversations: Conversations) -> AppState {
        AppState {
            conversations,
            agents: Arc::new(AgentAuth::default()),
            http: crate::config::Http::default(),
            metrics_token: None,
            metrics_elsewhere: false,
        }
    }

    /// The same state with these connection limits (see [`serve`]).
    pub fn with_http(self, http: crate::config::Http) -> AppState {
        AppState { http, ..self }
    }

    /// `/metrics` only with the bearer token whose SHA-256 digest is `token`, and (with
    /// `elsewhere`) only on the separate listener of [`metrics_app`].
    pub fn with_metrics_access(self, token: Option<AgentAuth>, elsewhere: bool) -> AppState {
        AppState {
            metrics_token: token.map(Arc::new),
            metrics_elsewhere: elsewhere,
            ..self
        }
    }

    pub fn conversations(&self) -> &Conversations {
        &self.conversations
    }

    pub fn metrics(&self) -> &Metrics {
        &self.conversations.metrics
    }

    pub fn limits(&self) -> &RateLimits {
        &self.conversations.limits
    }

    /// The same state with the agent tokens that may log in to the console.
    pub fn with_agents(self, agents: AgentAuth) -> AppState {
        AppState {
            agents: Arc::new(agents),
            ..self
        }
    }

    pub fn agents(&self) -> &AgentAuth {
        &self.agents
    }

    pub fn assistant(&self) -> &Assistant {
        &self.conversations.assistant
    }

    pub fn store(&self) -> &Store {
        &self.conversations.store
    }
}

/// The OpenAPI document of this API (hand-written; a test checks it against the router).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The whole API as a router, shared by `yidi serve` and the tests. Serve it with
/// [`serve`] (or with connect info) so the per-IP limit sees the peer address.
pub fn app(state: AppState) -> Router {
    // the public API, limited per client IP
    let public = Router::new()
        .route("/v1/faq/search", get(search))
        .route("/v1/faq/{id}", get(faq))
        .route("/v1/checklist", post(checklist))
        .route("/v1/estimate", post(estimate))
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/{id}", get(read_session))
        .route("/v1/sessions/{id}/messages", post(post_message))
        .route("/v1/feedback", post(feedback))
        .merge(console::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_ip));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if !state.metrics_elsewhere {
        router = router.route("/metrics", get(metrics));
    }
    let request_timeout = Duration::from_secs(state.http.request_timeout_secs);
    router
        .route("/v1/openapi.json", get(openapi))
        .merge(public)
        .fallback(not_found)
        // axum's own limit for the body extractors, and tower-http's for declared lengths
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::new())
        // a request (its body, the turn, the answer) that takes too long: 503
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::map_response(response_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(
            // one line per request at DEBUG (YIDI_LOG=debug); errors are logged where they
            // happen, and store errors in an outage only once a minute
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("(unmatched)", MatchedPath::as_str);
                    tracing::debug_span!("http", method = %req.method(), route)
                })
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .with_state(state)
}

/// `/metrics` alone, for its own listener (`metrics.listen`).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::map_response(response_headers))
        .with_state(state)
}

/// Headers every response carries unless it set its own: no caching (conversations and
/// agents' data must not stay in a shared or browser cache) and no content sniffing. An
/// early refusal (401, 405, 413, 415) may leave the request body unread, so it also closes
/// the connection, saying so.
async fn response_headers(mut response: Response) -> Response {
    let status = response.status();
    let h = response.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if matches!(
        status,
        StatusCode::UNAUTHORIZED
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
    ) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Serves [`app`] on `listener` until `shutdown` completes; requests in flight then finish
/// before this returns, and connections without one close at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = state.http.clone();
    serve_router(listener, app(state), http, shutdown).await
}

/// Serves `router` over HTTP/1.1 with the limits of `http`:
///
/// - at most `max_connections` connections at once, so idle sockets cannot use up the
///   process's file descriptors; at the cap the oldest connection with no request being
///   handled is closed to make room (else the new one waits in the listen backlog until one
///   closes), so they cannot starve the health checks either;
/// - a connection must send a request's complete headers within `header_timeout_secs` of
///   opening or of the previous response (hyper's header-read timer runs while a keep-alive
///   connection waits for its next request, so it is also the idle keep-alive timeout); a
///   slow or silent one is closed;
/// - on `shutdown`, the listener closes, idle and half-sent connections close at once, and
///   requests in flight finish.
///
/// Each request carries the peer address as [`ConnectInfo`] (for the per-IP limit).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    http: crate::config::Http,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let max = http
        .max_connections
        .clamp(1, tokio::sync::Semaphore::MAX_PERMITS) as u32;
    let permits = Arc::new(tokio::sync::Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_timeout_secs.max(1)));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    // open connections, oldest first: at the cap, the oldest one without a request being
    // handled (idle, or still sending its headers) is closed to make room, so that idle
    // sockets cannot lock out a health check or a real client
    let open: Arc<std::sync::Mutex<std::collections::VecDeque<OpenConn>>> = Arc::default();
    let mut next_id = 0u64;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                evict_idle(&open);
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors, a connection reset before accept: wait a little
                    crate::throttle::store_error(&e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // requests of this connection being handled: at shutdown, a connection with none
        // (idle, or half-way through sending its headers) is closed at once
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = in_flight.clone();
        let evicted = Arc::new(tokio::sync::Notify::new());
        next_id += 1;
        let id = next_id;
        if let Ok(mut open) = open.lock() {
            open.push_back(OpenConn {
                id,
                in_flight: in_flight.clone(),
                evict: evicted.clone(),
            });
        }
        let registry = open.clone();
        let router = router.clone();
        let service =
            tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let guard = InFlight::enter(&counter);
                let router = router.clone();
                async move {
                    let _guard = guard;
                    router.oneshot(req).await
                }
            });
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let finished = tokio::select! {
                r = conn.as_mut() => Some(Some(r)),
                () = stopping => None,
                // closed to make room for a new connection
                () = evicted.notified() => Some(None),
            };
            let result = match finished {
                Some(Some(r)) => r,
                Some(None) => Ok(()),
                None => {
                    conn.as_mut().graceful_shutdown();
                    loop {
                        tokio::select! {
                            r = conn.as_mut() => break r,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {
                                if in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                                    break Ok(());
                                }
                            }
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            if let Ok(mut open) = registry.lock() {
                open.retain(|c| c.id != id);
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // every connection gives its permit back when it closes
    let _all = permits.acquire_many(max).await;
    Ok(())
}

/// An open connection of [`serve_router`], as its accept loop sees it.
struct OpenConn {
    id: u64,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    evict: Arc<tokio::sync::Notify>,
}

/// Closes the oldest open connection that has no request being handled, if any.
fn evict_idle(open: &std::sync::Mutex<std::collections::VecDeque<OpenConn>>) {
    let Ok(mut open) = open.lock() else {
        return;
    };
    let idle = open
        .iter()
        .position(|c| c.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0);
    if let Some(i) = idle
        && let Some(c) = open.remove(i)
    {
        tracing::debug!("connection cap reached: closing the oldest idle connection");
        c.evict.notify_one();
    }
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<std::sync::atomic::AtomicUsize>) -> InFlight {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    fn missing_token() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "请在请求头 Authorization 中提供会话令牌（Bearer 令牌）。",
        )
    }

    fn invalid_token() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "会话令牌无效，或者这个会话不存在。",
        )
    }

    fn store(e: StoreError) -> ApiError {
        crate::throttle::store_error(&e, "store error");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "服务暂时无法访问数据库，请稍后再试。",
        )
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: e.message,
            field: Some(e.field),
            retry_after: None,
        }
    }
}

impl From<Limited> for ApiError {
    fn from(l: Limited) -> ApiError {
        ApiError {
            retry_after: Some(l.retry_after_secs()),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", l.message())
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // the database is fine: this session is busy (other turns of it queue or another
            // replica keeps writing it); the client should try again in a moment
            StoreError::Busy | StoreError::Conflict(_) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "session_busy",
                    "这个会话正在处理其他消息，请稍后再发送。",
                )
            },
            e => ApiError::store(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = Value::String(field);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The code and message of an error response made outside the handlers (by axum or
/// tower-http), by status.
fn default_error(status: StatusCode) -> (&'static str, String) {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "请求的格式不正确。"),
        StatusCode::UNAUTHORIZED => ("missing_token", "需要有效的会话令牌。"),
        StatusCode::NOT_FOUND => ("not_found", "没有这个地址。"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "这个地址不支持该请求方法。"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                "payload_too_large",
                format!("请求内容太大了（上限 {} KiB）。", MAX_BODY_BYTES / 1024),
            );
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "请求内容须为 JSON，并带有请求头 Content-Type: application/json。",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid_field", "请求中的字段有误。"),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "请求太频繁了，请稍后再试。"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "服务暂时不可用，请稍后再试。"),
        s if s.is_client_error() => ("bad_request", "请求无法处理。"),
        _ => ("internal_error", "服务出现内部错误，请稍后再试。"),
    };
    (code, message.to_string())
}

/// Rewrites error responses that are not JSON (axum's 405, tower-http's 413, a caught panic)
/// into the API's error shape, keeping status and headers (e.g. `Allow`).
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // JSON errors pass, and so do the console's HTML pages (its 401 login page)
    let is_json_or_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_page {
        return response;
    }
    if status.is_server_error() {
        tracing::error!(%status, "internal error response");
    }
    let (code, message) = default_error(status);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// Counts every request in the metrics, by matched route and status.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state
        .metrics()
        .request(&route, response.status().as_u16(), started.elapsed());
    response
}

/// The client's IP: the peer address, or the last `X-Forwarded-For` entry (the one our own
/// proxy appended) when configured to trust it. A request without either (a router driven
/// without connect info) shares one bucket, the unspecified address.
fn client_ip(state: &AppState, req: &Request) -> IpAddr {
    if state.limits().trust_forwarded_for()
        && let Some(ip) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The per-IP limit of the public API and the console. Agents are exempt (a call centre's
/// agents share one IP); who is an agent is asked only once a request is over the limit, and
/// then within limits of its own (see [`console::exempt_from_ip_limit`]).
async fn limit_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_ip(&state, &req);
    if let Err(limited) = state.limits().check_ip(ip)
        && !console::exempt_from_ip_limit(&state, req.headers(), ip).await
    {
        state.conversations.refused(limited, &ip.to_string());
        return ApiError::from(limited).into_response();
    }
    next.run(req).await
}

pub(crate) async fn not_found() -> ApiError {
    let (code, message) = default_error(StatusCode::NOT_FOUND);
    ApiError::new(StatusCode::NOT_FOUND, code, message)
}

// ---------------------------------------------------------------------------------------------
// Extractors

/// A JSON request body, with the API's errors: 415 when it is not declared as JSON, 400 when
/// it does not parse, 413 when it is too large.
pub struct ApiJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ApiJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<ApiJson, ApiError> {
        match Json::<Value>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            let (code, message) = default_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message)
        }
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "请求内容不是有效的 JSON。",
        ),
        other => {
            let status = other.status();
            let (code, message) = default_error(status);
            ApiError::new(status, code, message)
        }
    }
}

/// The session a request may touch: the bearer token must be the one issued for it.
/// The token of an `Authorization: Bearer …` value: non-empty and at most
/// [`MAX_TOKEN_CHARS`] long (longer ones are wrong without hashing them).
pub(crate) fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_CHARS)
        .then_some(token)
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    session_id: &str,
) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_token());
    };
    let token = bearer(value).ok_or_else(ApiError::invalid_token)?;
    if state.store().check_session_token(session_id, token).await? {
        Ok(())
    } else {
        tracing::info!(session = %log_id(session_id), "rejected session token");
        Err(ApiError::invalid_token())
    }
}

/// The body as a JSON object, or a 422 naming no field.
fn object(v: Value) -> Result<Map<String, Value>, ApiError> {
    match v {
        Value::Object(map) => Ok(map),
        _ => Err(FieldError::new("input", "请求内容须为一个 JSON 对象。").into()),
    }
}

/// An optional string field (`null` counts as absent).
fn optional_string(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(field, format!("字段 {field} 须为字符串。")).into()),
    }
}

fn reject_unknown_fields(map: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(FieldError::new(
            k.as_str(),
            format!("不认识的字段 {k}，可用的字段有：{}。", known.join("、")),
        )
        .into()),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(auth) = &state.metrics_token {
        let token = headers.get(header::AUTHORIZATION).and_then(bearer);
        if token.and_then(|t| auth.verify(t)).is_none() {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "读取监控指标需要有效的令牌（Bearer 令牌）。",
            )
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok(Json(json!({ "status": "ready" }))),
        Err(e) => {
            crate::throttle::store_error(&e, "database not ready");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "数据库暂时无法连接。",
            ))
        }
    }
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResult>, ApiError> {
    let Query(params) = params.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "查询参数的格式不正确，请使用 ?q=问题&limit=条数。",
        )
    })?;
    let Some(q) = params.q else {
        return Err(FieldError::new("q", "请用参数 q 提供要搜索的问题。").into());
    };
    let limit = match params.limit {
        None => DEFAULT_SEARCH_LIMIT,
        Some(l) => match l.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_SEARCH_LIMIT).contains(&n) => n,
            _ => {
                return Err(FieldError::new(
                    "limit",
                    format!("limit 须为 1 到 {MAX_SEARCH_LIMIT} 之间的整数。"),
                )
                .into());
            }
        },
    };
    Ok(Json(state.assistant().search.search(&q, limit)))
}

async fn faq(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(e) = state.assistant().knowledge.faq(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "faq_not_found",
            "没有这个编号的问答条目。",
        ));
    };
    Ok(Json(json!({
        "id": e.id, "question": e.question, "variants": e.variants,
        "answer": e.answer, "sources": e.sources, "tags": e.tags,
    })))
}

async fn checklist(
    State(state): State<AppState>,
    ApiJson(body): ApiJson,
) -> Result<Json<checklist::Checklist>, ApiError> {
    let situation = Situation::from_json(&body)?;
    let list = checklist::checklist(&situation, &state.assistant().checklist_texts)?;
    Ok(Json(list))
}

async fn estimate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson,
) -> Result<Json<estimate::Estimate>, ApiError> {
    let input = EstimateInput::from_json(&body)?;
    let estimate = estimate::estimate(&state.assistant().policies, &input)?;
    Ok(Json(estimate))
}

async fn create_session(State(state): State<AppState>) -> Result<Response, ApiError> {
    let session_id = random_hex::<16>();
    let token = random_token();
    state.store().add_session_token(&session_id, &token).await?;
    tracing::info!(session = %log_id(&session_id), "session created");
    let body = json!({
        "session_id": session_id,
        "token": token,
        "welcome": state.assistant().welcome(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &id).await?;
    let map = object(body?.0)?;
    reject_unknown_fields(&map, &["text"])?;
    state.conversations.admit(&format!("session:{id}"))?;
    let Some(text) = optional_string(&map, "text")? else {
        return Err(FieldError::new("text", "请用字段 text 提供要发送的消息。").into());
    };
    // the one rendering of a reply, also stored for a retry with the same Idempotency-Key
    let render = |reply: &crate::assistant::Reply| serde_json::to_string(reply).unwrap_or_default();
    let Some(key) = idempotency_key(&headers)? else {
        let reply = state.conversations.turn(&id, &text).await?;
        return Ok(json_text(render(&reply), false));
    };
    let (response, repeat) = state
        .conversations
        .turn_once(&id, &text, key, &render)
        .await?;
    Ok(json_text(response, repeat))
}

/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// The `Idempotency-Key` header, if sent: 1 to 200 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(k)
            if !k.trim().is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_CHARS
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(k.trim()))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            format!(
                "请求头 Idempotency-Key 须为 1 到 {MAX_IDEMPOTENCY_KEY_CHARS} 个可见的 ASCII 字符。"
            ),
        )),
    }
}

/// A JSON body already rendered; a repeat (an Idempotency-Key seen before) says so in
/// `Idempotent-Replayed: true`.
fn json_text(body: String, repeat: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if repeat {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn read_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, &id).await?;
    let session = state
        .conversations
        .state(&id)
        .await?
        .unwrap_or_else(SessionState::new);
    let transcript = state.store().transcript(&id).await?;
    let active = session.active.as_ref();
    Ok(Json(json!({
        "session_id": id,
        "dialog": active.map(|a| a.dialog.as_str()),
        "step": active.map(|a| a.step.as_str()),
        "slots": session.slots,
        "transcript": transcript,
    })))
}

async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson, ApiError>,
) -> Result<Response, ApiError> {
    let map = object(body?.0)?;
    reject_unknown_fields(&map, &["helpful", "faq_id", "session_id", "comment"])?;
    let helpful = match map.get("helpful") {
        Some(Value::Bool(b)) => *b,
        _ => {
            return Err(FieldError::new(
                "helpful",
                "请用字段 helpful 说明回答是否有帮助（true 或 false）。",
            )
            .into());
        }
    };
    let faq_id = optional_string(&map, "faq_id")?;
    if let Some(id) = &faq_id
        && state.assistant().knowledge.faq(id).is_none()
    {
        return Err(FieldError::new("faq_id", "没有这个编号的问答条目。").into());
    }
    let comment = optional_string(&map, "comment")?;
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(FieldError::new(
            "comment",
            format!("意见太长了，请控制在 {MAX_COMMENT_CHARS} 字以内。"),
        )
        .into());
    }
    let session_id = optional_string(&map, "session_id")?;
    if let Some(id) = &session_id {
        // feedback about a conversation is accepted only from its owner
        authorize(&state, &headers, id).await?;
    }
    let id = state
        .store()
        .add_feedback(
            session_id.as_deref(),
            faq_id.as_deref(),
            helpful,
            comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}
