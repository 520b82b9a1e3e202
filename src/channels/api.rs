//! What the HTTP API ([`super::http`]) and the agent console ([`super::console`]) share,
//! below both: the handlers' state ([`AppState`]), the agent tokens ([`AgentAuth`]), the one
//! error shape ([`ApiError`]), the typed JSON body extractor ([`Body`]) and bearer tokens.
//!
//! `http` builds the router and merges the console's routes; `console` imports only this
//! module, never `http`.
//!
//! Request bodies are Rust types ([`RequestBody`]: serde plus a utoipa schema). They are
//! read in two stages so that every refusal keeps the API's Chinese wording: the body must
//! be JSON (415/400/413 as axum reports them), then an object (422 `input`), then have only
//! the fields its type declares (422 naming the first unknown field and listing the known
//! ones, taken from the type's schema), and only then is it deserialized, a wrong value
//! being a 422 that names its field ([`RequestBody::invalid`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::assistant::Assistant;
use crate::conversation::Conversations;
use crate::guidance::FieldError;
use crate::limits::{Limited, RateLimits};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, random_token};

/// Largest request body accepted (bytes); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest bearer token looked at; longer ones are wrong without hashing them.
pub(crate) const MAX_TOKEN_CHARS: usize = 256;

// ---------------------------------------------------------------------------------------------
// State

/// What every handler shares: the assistant and the store, through [`Conversations`], and
/// the agent tokens of the console.
#[derive(Clone)]
pub struct AppState {
    pub(crate) conversations: Conversations,
    agents: Arc<AgentAuth>,
    /// Connection and request time limits, the connection cap.
    pub(crate) http: crate::config::Http,
    /// The digest of the bearer token `/metrics` requires, if any.
    pub(crate) metrics_token: Option<Arc<AgentAuth>>,
    /// `/metrics` is served on a separate address (`http::metrics_app`), not by `http::app`.
    pub(crate) metrics_elsewhere: bool,
    /// `/metrics` answers without a token when none is configured (`metrics.open`, and the
    /// separate listener); otherwise it refuses everyone.
    pub(crate) metrics_open: bool,
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
            // the API's own turns (the other channels keep theirs)
            conversations: conversations.on_channel("http"),
            agents: Arc::new(AgentAuth::default()),
            http: crate::config::Http::default(),
            metrics_token: None,
            metrics_elsewhere: false,
            metrics_open: false,
        }
    }

    /// The same state with these connection limits (see `http::serve`).
    pub fn with_http(self, http: crate::config::Http) -> AppState {
        AppState { http, ..self }
    }

    /// `/metrics` only with the bearer token whose SHA-256 digest is `token`, and (with
    /// `elsewhere`) only on the separate listener of `http::metrics_app`.
    pub fn with_metrics_access(self, token: Option<AgentAuth>, elsewhere: bool) -> AppState {
        AppState {
            metrics_token: token.map(Arc::new),
            metrics_elsewhere: elsewhere,
            ..self
        }
    }

    /// `/metrics` for anyone who reaches the address (`metrics.open = true`) when no token
    /// is configured; by default it needs a token or its own listener.
    pub fn with_open_metrics(self) -> AppState {
        AppState {
            metrics_open: true,
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

    /// The assistant in force now (see [`crate::live`]).
    pub fn assistant(&self) -> Arc<Assistant> {
        self.conversations.assistant()
    }

    pub fn store(&self) -> &Store {
        &self.conversations.store
    }
}

// ---------------------------------------------------------------------------------------------
// Agent tokens

/// The agent tokens that may use the console, as SHA-256 digests. The default has none: every
/// login is refused.
#[derive(Clone, Default)]
pub struct AgentAuth {
    digests: Vec<[u8; 32]>,
    /// Console sessions recently found valid, for the rate limiter only (see
    /// `console::exempt_from_ip_limit`).
    pub(crate) recent: Arc<Mutex<HashMap<[u8; 32], Instant>>>,
}

/// How long the rate limiter trusts a console session it has looked up. Pages and agent
/// endpoints always look the session up; only the exemption from the per-IP limit may outlive
/// a logout by this long.
pub(crate) const RECENT_TTL: Duration = Duration::from_secs(30);
/// Most sessions remembered; beyond it the memory is cleared (a flood cannot grow it).
pub(crate) const RECENT_MAX: usize = 10_000;

impl fmt::Debug for AgentAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentAuth")
            .field("tokens", &self.digests.len())
            .finish()
    }
}

impl AgentAuth {
    /// Reads configured digests: each the SHA-256 of a token as 64 hexadecimal digits (either
    /// case; surrounding whitespace ignored). The error names the digest (1-based) and what is
    /// wrong with it. An empty list configures no agent.
    pub fn from_sha256_hex(digests: &[String]) -> Result<AgentAuth, String> {
        Ok(AgentAuth {
            digests: crate::config::parse_sha256_hex_list(digests)?,
            recent: Arc::default(),
        })
    }

    /// Whether any agent token is configured.
    pub fn is_configured(&self) -> bool {
        !self.digests.is_empty()
    }

    /// The digest (lower-case hex) of the configured token equal to `token`, if any. Every
    /// configured digest is compared, each in constant time.
    pub(crate) fn verify(&self, token: &str) -> Option<String> {
        if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for configured in &self.digests {
            if constant_time_eq(configured, &digest) {
                found = Some(*configured);
            }
        }
        found.map(|d| hex(&d))
    }

    /// Whether `digest` (lower-case hex, as stored with a session) is still configured.
    pub(crate) fn knows(&self, digest: &str) -> bool {
        let Ok(digest) = crate::config::parse_sha256_hex(digest) else {
            return false;
        };
        self.digests
            .iter()
            .fold(false, |acc, d| acc | constant_time_eq(d, &digest))
    }
}

/// A new agent token and the SHA-256 hex digest to configure for it: `(token, digest)`. The
/// token is 256 random bits in lower-case hex, shown once to whoever creates it.
pub fn new_agent_token() -> (String, String) {
    let token = random_token();
    let digest = hex(&Sha256::digest(token.as_bytes()));
    (token, digest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer …` value: non-empty and at most
/// [`MAX_TOKEN_CHARS`] long (longer ones are wrong without hashing them).
pub(crate) fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= MAX_TOKEN_CHARS)
        .then_some(token)
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

    /// The response axum or tower-http would give for `status`, in the API's shape.
    pub fn of_status(status: StatusCode) -> ApiError {
        let (code, message) = default_error(status);
        ApiError::new(status, code, message)
    }

    pub(crate) fn missing_token() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "请在请求头 Authorization 中提供会话令牌（Bearer 令牌）。",
        )
    }

    pub(crate) fn invalid_token() -> ApiError {
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

/// The body of every error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong: a stable code, a Chinese message, the field when one is at fault.
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// stable snake_case code, e.g. `bad_request`, `malformed_json`, `invalid_query`,
    /// `invalid_field`, `missing_token`, `invalid_token`, `not_found`, `faq_not_found`,
    /// `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `session_busy`, `invalid_idempotency_key`, `database_unavailable`,
    /// `service_unavailable`, `internal_error`, `missing_agent_token`, `invalid_agent_token`,
    /// `agents_not_configured`, `session_not_found`, `reload_unavailable` (and `invalid_data`
    /// in a refused reload's own body)
    code: &'static str,
    /// the input field at fault (`invalid_field`)
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Chinese, for people
    message: String,
}

impl ErrorBody {
    pub fn new(code: &'static str, message: String, field: Option<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code,
                field,
                message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message, self.field);
        let mut response = (self.status, Json(body)).into_response();
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
pub(crate) fn default_error(status: StatusCode) -> (&'static str, String) {
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

/// The 404 of an unknown address (the router's fallback, the console's unknown assets).
pub(crate) async fn not_found() -> ApiError {
    ApiError::of_status(StatusCode::NOT_FOUND)
}

// ---------------------------------------------------------------------------------------------
// Request bodies

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
            ApiError::of_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        }
        JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "请求内容不是有效的 JSON。",
        ),
        other => ApiError::of_status(other.status()),
    }
}

/// A request body type of the API: its serde form is what it accepts, its schema is what the
/// OpenAPI document says and names the fields it knows.
pub trait RequestBody: DeserializeOwned + utoipa::ToSchema {
    /// The 422 for a value of `field` that does not fit its type.
    fn invalid(field: &str) -> FieldError {
        FieldError::new(field, format!("字段 {field} 须为字符串。"))
    }
}

/// A typed JSON body (see [`RequestBody`]); refusals in the API's error shape.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: RequestBody> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let ApiJson(value) = ApiJson::from_request(req, state).await?;
        parse_body(value).map(Body)
    }
}

/// The names of the properties of `T`'s schema, in declaration order.
pub fn field_names<T: utoipa::ToSchema>() -> Vec<String> {
    use utoipa::openapi::{RefOr, Schema};
    match T::schema() {
        RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Reads `value` as a `T`: an object, with only `T`'s fields, each of the right type.
pub fn parse_body<T: RequestBody>(value: Value) -> Result<T, ApiError> {
    let Value::Object(map) = &value else {
        return Err(FieldError::new("input", "请求内容须为一个 JSON 对象。").into());
    };
    let known = field_names::<T>();
    if let Some(k) = map.keys().find(|k| !known.contains(k)) {
        return Err(FieldError::new(
            k.as_str(),
            format!("不认识的字段 {k}，可用的字段有：{}。", known.join("、")),
        )
        .into());
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().iter().next().map_or_else(
            || "input".to_string(),
            |segment| segment.to_string().trim_start_matches('.').to_string(),
        );
        T::invalid(&field).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        text: Option<String>,
        flag: Option<bool>,
    }

    impl RequestBody for Sample {
        fn invalid(field: &str) -> FieldError {
            match field {
                "flag" => FieldError::new("flag", "flag 须为 true 或 false。"),
                f => FieldError::new(f, format!("字段 {f} 须为字符串。")),
            }
        }
    }

    #[test]
    fn bodies_are_read_in_stages_with_the_field_named() {
        assert_eq!(field_names::<Sample>(), ["text", "flag"]);
        let ok: Sample = parse_body(json!({"text": "x", "flag": null})).unwrap();
        assert_eq!(ok.text.as_deref(), Some("x"));
        assert!(ok.flag.is_none());
        let e = parse_body::<Sample>(json!([1])).err().unwrap();
        assert_eq!(e.field.as_deref(), Some("input"));
        assert_eq!(e.message, "请求内容须为一个 JSON 对象。");
        let e = parse_body::<Sample>(json!({"zzz": 1, "text": 2}))
            .err()
            .unwrap();
        assert_eq!(e.field.as_deref(), Some("zzz"));
        assert_eq!(e.message, "不认识的字段 zzz，可用的字段有：text、flag。");
        let e = parse_body::<Sample>(json!({"text": 2})).err().unwrap();
        assert_eq!(
            (e.status, e.field.as_deref(), e.message.as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("text"),
                "字段 text 须为字符串。"
            )
        );
        let e = parse_body::<Sample>(json!({"flag": "yes"})).err().unwrap();
        assert_eq!(e.message, "flag 须为 true 或 false。");
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer(&HeaderValue::from_static("Bearer  t ")), Some("t"));
        assert_eq!(bearer(&HeaderValue::from_static("Basic t")), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer")), None);
    }
}
