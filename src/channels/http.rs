//! The HTTP channel: a JSON API under `/v1` (axum), served by `yidi serve`.
//!
//! A thin adapter: every route parses its input, calls the core
//! ([`Assistant`](crate::assistant::Assistant)'s search and guidance,
//! [`Conversations::turn`](crate::conversation::Conversations::turn), the
//! [`Store`](crate::store::Store)) and renders the result in the JSON forms
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
//! | `/console`, `/v1/agent/…` | the hotline agents' console and its JSON: see [`console`]; `POST /v1/agent/reload`: see [`super::reload`] |
//! | `GET /`, `/faq…`, `/tools/…`, `/assets/site.*` | the residents' FAQ pages: see [`super::site`] |
//! | `GET /docs` | this document in a browser: see [`super::docs`] |
//!
//! **The document is generated.** Every handler carries its `#[utoipa::path]` (method, path,
//! parameters, body and responses), and the router is built only from those annotations
//! (`utoipa_axum::routes!`), so a route cannot be served undocumented or documented but not
//! served; request and response bodies are Rust types whose schemas come from the same types
//! ([`super::schemas`] for the core's). The integration tests compare the router's actual
//! routes with the served document in both directions.
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

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body as HttpBody;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use super::api::{ApiError, AppState, MAX_BODY_BYTES};
use super::api::{ApiJson, Body, ErrorBody, RequestBody, default_error, not_found};
use crate::assistant::Reply;
use crate::channels::console;
use crate::conversation::log_id;
use crate::dialog::engine::SessionState;
use crate::guidance::FieldError;
use crate::guidance::checklist::{self, Checklist, Situation};
use crate::guidance::estimate::{self, Estimate, EstimateInput};
use crate::search::SearchResult;
use crate::store::{TranscriptLine, random_hex, random_token};

/// Largest `limit` of a search.
pub const MAX_SEARCH_LIMIT: usize = 20;
/// Default `limit` of a search (as `yidi search`).
pub const DEFAULT_SEARCH_LIMIT: usize = 3;
/// Longest feedback comment (characters).
pub const MAX_COMMENT_CHARS: usize = 1_000;

/// The parts of the document that no handler names: title, description, security schemes,
/// the core's schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "yidi API",
        version = "1.0.0",
        description = "异地就医 guidance: FAQ search, filing checklists, reimbursement estimates \
                       and conversations. Errors are `{\"error\": {\"code\", \"message\", \
                       \"field\"?}}` with a stable code and a Chinese message. Every /v1 route \
                       except this document, and the console, is rate limited per client IP \
                       (429 with Retry-After); messages are also limited per session. \
                       Generated from the server's handlers and types."
    ),
    servers((url = "/")),
    components(schemas(ErrorBody)),
    modifiers(&Security)
)]
struct ApiDoc;

/// The ways a request proves who it is.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "sessionToken",
            bearer("the token returned once by POST /v1/sessions"),
        );
        components.add_security_scheme(
            "agentToken",
            bearer("an agent token (configured as its SHA-256 digest); the console's cookie also works"),
        );
        components.add_security_scheme(
            "metricsToken",
            bearer("the token whose SHA-256 digest is `metrics.token_sha256`, when configured"),
        );
        components.add_security_scheme(
            "agentCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                console::COOKIE_NAME,
                "the console's session cookie, set by POST /console/login",
            ))),
        );
    }
}

/// The API as documented routes: the router and its OpenAPI document come from here alone.
fn api(state: &AppState) -> OpenApiRouter<AppState> {
    // the public API, limited per client IP
    let public = OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(faq))
        .routes(routes!(checklist))
        .routes(routes!(estimate))
        .routes(routes!(create_session))
        .routes(routes!(read_session))
        .routes(routes!(post_message))
        .routes(routes!(feedback))
        .merge(console::routes())
        .merge(super::reload::routes())
        .merge(super::site::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), limit_ip));
    // the pages for a browser served from memory (`/`, the site's assets, `/docs`): not
    // limited
    let public = public
        .merge(super::docs::routes())
        .merge(super::site::static_routes());
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz));
    if !state.metrics_elsewhere {
        router = router.routes(routes!(metrics));
    }
    router.routes(routes!(openapi)).merge(public)
}

/// The rendered document, served by [`openapi`].
#[derive(Clone)]
struct OpenApiDocument(Arc<str>);

/// The whole API as a router, shared by `yidi serve` and the tests. Serve it with
/// [`serve`] (or with connect info) so the per-IP limit sees the peer address.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api(&state).split_for_parts();
    let doc = OpenApiDocument(super::document::finish(&doc, &state.assistant()).into());
    let request_timeout = Duration::from_secs(state.http.request_timeout_secs);
    router
        .layer(Extension(doc))
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

/// `/metrics` alone, for its own listener (`metrics.listen`): open there unless a token is
/// configured (the address itself is the access control).
pub fn metrics_app(state: AppState) -> Router {
    let request_timeout = Duration::from_secs(state.http.request_timeout_secs);
    let (router, _) = OpenApiRouter::new()
        .routes(routes!(metrics))
        .split_for_parts();
    router
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::map_response(response_headers))
        .with_state(state.with_open_metrics())
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

pub use super::server::serve_router;

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
        // a timeout (503) or a caught panic (500): logged once a minute with the count
        crate::throttle::refusal_with("error response (a timeout or an internal error)", &status);
    }
    let (code, message) = default_error(status);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = ErrorBody::new(code, message, None);
    let body = serde_json::to_string(&body).unwrap_or_default();
    Response::from_parts(parts, HttpBody::from(body))
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
        // a resident's page (`/faq`, the tools) gets a page that says so, not JSON
        let path = req.uri().path();
        if path.starts_with("/faq") || path.starts_with("/tools/") {
            return super::site::limited_page(
                &state.assistant(),
                &limited.message(),
                limited.retry_after_secs(),
            );
        }
        return ApiError::from(limited).into_response();
    }
    next.run(req).await
}

// ---------------------------------------------------------------------------------------------
// Handlers and their types

/// `{"status"}` of the health checks.
#[derive(Serialize, ToSchema)]
struct Status {
    /// `ok` (healthz) or `ready` (readyz)
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", summary = "the process is up",
    responses((status = 200, description = "up", body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

#[utoipa::path(get, path = "/metrics", summary = "Prometheus metrics (OpenMetrics text)",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "metrics", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "a token is configured and this is not it", body = ErrorBody),
    ))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match &state.metrics_token {
        Some(auth) => {
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(super::api::bearer);
            if token.and_then(|t| auth.verify(t)).is_none() {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    "读取监控指标需要有效的令牌（Bearer 令牌）。",
                )
                .into_response();
            }
        }
        None if !state.metrics_open => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "metrics_closed",
                "监控指标默认不公开：请配置 metrics.token_sha256（令牌）、metrics.listen（单独地址）或 metrics.open = true。",
            )
            .into_response();
        }
        None => {}
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

#[utoipa::path(get, path = "/v1/openapi.json", summary = "this document",
    responses((status = 200, description = "the OpenAPI 3.1 document of this server",
        content_type = "application/json", body = Object)))]
async fn openapi(Extension(doc): Extension<OpenApiDocument>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/readyz", summary = "the database answers",
    responses(
        (status = 200, description = "ready", body = Status),
        (status = 503, description = "the database does not answer", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    match state.store().ping().await {
        Ok(()) => Ok(Json(Status { status: "ready" })),
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

/// The query of a search. `limit` is read as text so that a bad one gets the API's own
/// message.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// the question
    #[param(required = true, value_type = String)]
    q: Option<String>,
    /// how many entries at most
    #[param(value_type = Option<u32>, minimum = 1, maximum = 20, default = 3)]
    limit: Option<String>,
}

#[utoipa::path(get, path = "/v1/faq/search", summary = "search the FAQ", params(SearchParams),
    responses(
        (status = 200, description = "the hits", body = SearchResult),
        (status = 400, description = "malformed query", body = ErrorBody),
        (status = 422, description = "missing q or bad limit", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
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

/// One FAQ entry, the `faq --json` form.
#[derive(Serialize, ToSchema)]
struct FaqEntry {
    /// The entry's id (faq-coverage.md).
    id: String,
    /// The entry's main question.
    question: String,
    /// other phrasings of the question
    variants: Vec<String>,
    /// The answer, in the knowledge base's words.
    answer: String,
    /// ids of the cited documents (full titles in the console)
    sources: Vec<String>,
    /// Topics of the entry (the first is its main topic).
    tags: Vec<String>,
    /// The day the entry was last checked against its sources (YYYY-MM-DD).
    #[schema(example = "2026-12-07")]
    as_of: String,
    /// The strongest tier among its sources: `official` (an official text read in full),
    /// `quoted` (an official text or statement quoted by a report) or `secondary` (neither:
    /// the answer rests on secondary sources only).
    #[schema(example = "official")]
    tier: String,
    /// Each of `sources`, with its document's title, date and tier.
    provenance: Vec<SourceRef>,
}

/// One citation of an entry and the document it names.
#[derive(Serialize, ToSchema)]
struct SourceRef {
    /// The citation as the entry writes it: document id, then the place in it.
    #[schema(example = "004 第八条")]
    source: String,
    /// The document's full title.
    document: String,
    /// When the document was issued or published, as precise as known (YYYY, YYYY-MM or
    /// YYYY-MM-DD); absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    /// `official`, `quoted` or `secondary`.
    tier: String,
    /// The page that was read, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[utoipa::path(get, path = "/v1/faq/{id}", summary = "one FAQ entry",
    params(("id" = String, Path, description = "the entry's id")),
    responses(
        (status = 200, description = "the entry", body = FaqEntry),
        (status = 404, description = "no such entry (faq_not_found)", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn faq(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<FaqEntry>, ApiError> {
    let assistant = state.assistant();
    let knowledge = &assistant.knowledge;
    let Some(e) = knowledge.faq(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "faq_not_found",
            "没有这个编号的问答条目。",
        ));
    };
    let provenance = knowledge
        .provenance(e)
        .into_iter()
        .map(|p| SourceRef {
            source: p.source,
            document: p.document,
            date: p.date.map(|d| d.to_string()),
            tier: p.tier.as_str().to_string(),
            url: p.url,
        })
        .collect();
    Ok(Json(FaqEntry {
        id: e.id.clone(),
        question: e.question.clone(),
        variants: e.variants.clone(),
        answer: e.answer.clone(),
        sources: e.sources.clone(),
        tags: e.tags.clone(),
        as_of: e.as_of.to_string(),
        tier: knowledge.tier(e).as_str().to_string(),
        provenance,
    }))
}

#[utoipa::path(post, path = "/v1/checklist", summary = "the checklist for a situation",
    request_body = Situation,
    responses(
        (status = 200, description = "the checklist", body = Checklist),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "a slot is invalid or a rule needs a missing one (field names it)", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn checklist(
    State(state): State<AppState>,
    ApiJson(body): ApiJson,
) -> Result<Json<Checklist>, ApiError> {
    let situation = Situation::from_json(&body)?;
    let list = checklist::checklist(&situation, &state.assistant().checklist_texts)?;
    Ok(Json(list))
}

#[utoipa::path(post, path = "/v1/estimate", summary = "a reimbursement estimate",
    request_body = EstimateInput,
    responses(
        (status = 200, description = "the estimate", body = Estimate),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "an input is invalid or missing (field names it)", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn estimate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson,
) -> Result<Json<Estimate>, ApiError> {
    let input = EstimateInput::from_json(&body)?;
    let estimate = estimate::estimate(&state.assistant().policies, &input)?;
    Ok(Json(estimate))
}

/// A new conversation.
#[derive(Serialize, ToSchema)]
struct NewSession {
    /// The conversation's id, for /v1/sessions/{id}/messages.
    session_id: String,
    /// shown once; only its SHA-256 is stored
    token: String,
    /// The assistant's first message.
    welcome: Reply,
}

#[utoipa::path(post, path = "/v1/sessions", summary = "start a conversation",
    responses(
        (status = 201, description = "the session, its token and the welcome", body = NewSession),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn create_session(State(state): State<AppState>) -> Result<Response, ApiError> {
    let session_id = random_hex::<16>();
    let token = random_token();
    state.store().add_session_token(&session_id, &token).await?;
    tracing::info!(session = %log_id(&session_id), "session created");
    let body = NewSession {
        session_id,
        token,
        welcome: state.assistant().welcome(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A message of the user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Message {
    /// the user's message; over 2000 characters gets a friendly reply asking for a shorter
    /// one
    #[schema(required = true, value_type = String)]
    text: Option<String>,
}

impl RequestBody for Message {}

#[utoipa::path(post, path = "/v1/sessions/{id}/messages", summary = "send a message, get the reply",
    security(("sessionToken" = [])),
    params(
        ("id" = String, Path, description = "the session id"),
        ("Idempotency-Key" = Option<String>, Header, max_length = 200,
            description = "1 to 200 visible ASCII characters chosen by the client per message: \
                           a retry with the same key gets the stored reply (with \
                           Idempotent-Replayed: true) and stores nothing"),
    ),
    request_body = Message,
    responses(
        (status = 200, description = "the assistant's reply", body = Reply,
            headers(("Idempotent-Replayed" = String, description = "`true` on a repeat of an Idempotency-Key"))),
        (status = 400, description = "malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 409, description = "other messages of this session are being handled; retry after Retry-After seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "missing text or unknown field", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Body<Message>, ApiError>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, &id).await?;
    let Body(message) = body?;
    let key = idempotency_key(&headers)?;
    // a retry of a message already answered gets its reply, and is not charged to the
    // session's rate limit (it adds nothing)
    if let Some(key) = key
        && let Some(stored) = state.store().request_reply(&id, key).await?
    {
        return Ok(json_text(stored, true));
    }
    state.conversations.admit(&format!("session:{id}"))?;
    let Some(text) = message.text else {
        return Err(FieldError::new("text", "请用字段 text 提供要发送的消息。").into());
    };
    // the one rendering of a reply, also stored for a retry with the same Idempotency-Key
    let render = |reply: &Reply| serde_json::to_string(reply).unwrap_or_default();
    let Some(key) = key else {
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

/// The session a request may touch: the bearer token must be the one issued for it.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    session_id: &str,
) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_token());
    };
    let token = super::api::bearer(value).ok_or_else(ApiError::invalid_token)?;
    if state.store().check_session_token(session_id, token).await? {
        Ok(())
    } else {
        crate::throttle::refusal("rejected session token");
        Err(ApiError::invalid_token())
    }
}

/// A conversation as stored.
#[derive(Serialize, ToSchema)]
struct Session {
    /// The conversation's id.
    session_id: String,
    /// the active dialog, if any
    dialog: Option<String>,
    /// its current step
    step: Option<String>,
    /// what the conversation knows of the user's situation
    slots: BTreeMap<String, String>,
    /// What was said, in order (personal numbers masked).
    transcript: Vec<TranscriptLine>,
}

#[utoipa::path(get, path = "/v1/sessions/{id}", summary = "the dialog state and the transcript",
    security(("sessionToken" = [])),
    params(("id" = String, Path, description = "the session id")),
    responses(
        (status = 200, description = "the session", body = Session),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn read_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Session>, ApiError> {
    authorize(&state, &headers, &id).await?;
    let session = state
        .conversations
        .state(&id)
        .await?
        .unwrap_or_else(SessionState::new);
    let transcript = state.store().transcript(&id).await?;
    let active = session.active.as_ref();
    Ok(Json(Session {
        dialog: active.map(|a| a.dialog.clone()),
        step: active.map(|a| a.step.clone()),
        session_id: id,
        slots: session.slots,
        transcript,
    }))
}

/// Whether an answer helped.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Feedback {
    /// Whether the answer helped.
    #[schema(required = true, value_type = bool)]
    helpful: Option<bool>,
    /// the FAQ entry concerned
    faq_id: Option<String>,
    /// the conversation concerned; needs that session's bearer token
    session_id: Option<String>,
    /// at most 1000 characters
    #[schema(max_length = 1000)]
    comment: Option<String>,
}

impl RequestBody for Feedback {
    fn invalid(field: &str) -> FieldError {
        match field {
            "helpful" => Feedback::no_helpful(),
            f => FieldError::new(f, format!("字段 {f} 须为字符串。")),
        }
    }
}

impl Feedback {
    fn no_helpful() -> FieldError {
        FieldError::new(
            "helpful",
            "请用字段 helpful 说明回答是否有帮助（true 或 false）。",
        )
    }
}

/// The id of stored feedback.
#[derive(Serialize, ToSchema)]
struct FeedbackCreated {
    /// The stored feedback's id.
    id: String,
}

#[utoipa::path(post, path = "/v1/feedback", summary = "whether an answer helped",
    security((), ("sessionToken" = [])),
    request_body = Feedback,
    responses(
        (status = 201, description = "stored", body = FeedbackCreated),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "session_id without its token", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "a field is missing, invalid or unknown (field names it)", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Body<Feedback>, ApiError>,
) -> Result<Response, ApiError> {
    let Body(f) = body?;
    let helpful = f.helpful.ok_or_else(Feedback::no_helpful)?;
    if let Some(id) = &f.faq_id
        && state.assistant().knowledge.faq(id).is_none()
    {
        return Err(FieldError::new("faq_id", "没有这个编号的问答条目。").into());
    }
    if f.comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(FieldError::new(
            "comment",
            format!("意见太长了，请控制在 {MAX_COMMENT_CHARS} 字以内。"),
        )
        .into());
    }
    if let Some(id) = &f.session_id {
        // feedback about a conversation is accepted only from its owner
        authorize(&state, &headers, id).await?;
    }
    let id = state
        .store()
        .add_feedback(
            f.session_id.as_deref(),
            f.faq_id.as_deref(),
            helpful,
            f.comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(FeedbackCreated { id })).into_response())
}
