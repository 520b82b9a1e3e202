//! The hotline agents' console (`/console`) and the agent-only JSON endpoints, served by the
//! same router as the API ([`super::http::app`] merges [`routes`]).
//!
//! | route | who | does |
//! |---|---|---|
//! | `GET /console` | agent | the console page; anyone else gets **401** and the login page |
//! | `POST /console/login` | anyone | form `token`: a right token starts an agent session (cookie) and 303 → `/console`; a wrong one is 401 with the login page and a Chinese error |
//! | `POST /console/logout` | anyone | ends the session of the cookie (if any), clears it, 303 → `/console` |
//! | `GET /console/assets/{name}` | see below | the embedded stylesheet (public: the login page needs it) and script (agents only) |
//! | `GET /v1/agent/unanswered?limit=N` | agent | `{"questions": [{id, session_id, question, created_at, kind, handled_at, handled_by}]}`, newest first (N = 1…200, default 50); `kind` tells unanswered from out of scope |
//! | `POST /v1/agent/unanswered/{id}/handled` | agent | `{"handled": true\|false}` → the item: handled now by this agent (the first 12 hex digits of their token digest), or not any more |
//! | `GET /v1/agent/sessions/{id}/transcript` | agent | `{"session_id", "transcript": [{seq, role, text, faq_id, kind, created_at, channel}]}`; 404 when the session has no lines |
//! | `GET /v1/agent/conversations?q=ID` | agent | `{"conversations": [{session_id, channel, lines, first_at, last_at}]}`: the stored conversations of a session id or of a caller's id in a channel (a Telegram chat id, a WeChat OpenID, a `yidi chat --session` id) |
//! | `POST /v1/agent/situation` | agent | `{"text", "known"?}` → `{"slots", "inferred"}`: the situation after `text` is read on top of `known` (`Assistant::understand_after`) |
//! | `POST /v1/agent/call` | agent | `{"slots"}` → the call view ([`call::view`]): missing fields at once, the answer for the situation, the checklist and the estimate's cases, each with a sentence to read out and a text message |
//! | `POST /v1/agent/search` | agent | `{"q", "slots"?}` → entries for the caller's region, plausible ones marked ([`answers::search`]) |
//! | `POST /v1/agent/entry` | agent | `{"id", "slots"?}` → one entry for the caller (a related or plausible one clicked) |
//!
//! "Agent" means either a valid console cookie or `Authorization: Bearer <agent token>`
//! ([`is_agent`], which the rate limiter may use to exempt agents). The JSON endpoints answer
//! in the API's error shape (`{"error": {"code", "message"}}`, 401 with `missing_agent_token`,
//! `invalid_agent_token` or `agents_not_configured`).
//!
//! Decisions:
//! - **Tokens.** Agent tokens are configured as SHA-256 hex digests only ([`AgentAuth`]); a
//!   token is checked by hashing it and comparing with every digest in constant time (no early
//!   exit). [`new_agent_token`] makes a token (256 random bits, hex) and its digest. Without
//!   any configured digest every login is refused, with a message that says so.
//! - **Sessions.** A login creates a random 256-bit session id, sent once in the cookie
//!   `yidi_agent` (`HttpOnly; SameSite=Strict; Path=/`, `Max-Age` 12 h, plus `Secure` when the
//!   request came through a proxy that says `X-Forwarded-Proto: https`); the store keeps only
//!   its SHA-256 hash, with the expiry and the digest of the agent token used
//!   (`migrations/0003_agent_sessions.sql`). A session counts only while that digest is still
//!   configured: removing a token from the configuration logs its agents out. SameSite=Strict
//!   is the CSRF defence for the two POST forms and the cookie-authenticated JSON.
//! - **Pages.** Server-rendered HTML strings (Simplified Chinese); every dynamic value is
//!   escaped ([`escape_html`]); data the script needs (hotline, slot titles) travels in a
//!   `<script type="application/json">` block with `<`, `>` and `&` escaped. The script renders
//!   all data with `textContent`, never `innerHTML`. A strict Content-Security-Policy
//!   (`default-src 'none'`, scripts and styles from this origin only) backs that up. The form's
//!   fields are rendered from the dialogs' slot vocabulary (`dialogs/slots.toml`: titles and
//!   value labels), so the console and the chat use the same words.
//! - **A call (issue 21).** The page is built for an agent on a live call: the caller's story
//!   (typed or pasted) fills the form through the conversation's situation reader; text added
//!   at the end is read on top of what is known from the start of its clause, so only what
//!   it states changes and corrections replace, while a field the agent set by hand stays
//!   (each field is marked 描述, 手填 or 推断). Every change asks `POST /v1/agent/call` for the
//!   whole view: what is still missing (all at once, with one-click answers), the entry
//!   that answers the situation, the checklist and the estimate with the cases that matter
//!   side by side; each has a sentence to read out, a copy button and a text message of at
//!   most 140 characters with the caller's region's hotline (never a number the knowledge
//!   does not have). At 1440×900 the story, the answer, the estimate and the checklist fit
//!   one screen in three columns; the page prints them on one A4 page. `/` focuses the
//!   search, `Esc` clears it, 新来电 (or Alt+N) clears everything of the previous caller.
//! - **Search.** The script calls `POST /v1/agent/search` ([`answers`]): the caller's region
//!   orders each answer's paragraphs (the others folded), related entries are links, and
//!   plausible entries are shown as such with a short warning; "没有可靠答案" with the
//!   hotline only when nothing plausible exists. Scores are never shown.
//! - **Records.** Below the call: a caller's earlier conversations by session or caller id,
//!   transcripts with each line's time and channel, and the inbox of unanswered and
//!   out-of-scope questions, each marked handled by an agent (stored with who and when).
//! - **Assets.** Embedded with `include_str!` and looked up in a fixed table by exact name;
//!   any other name (`..`, encoded dots or slashes, nested paths) is 404 and nothing ever
//!   touches the filesystem.
//! - Login attempts are not throttled here: tokens have 256 bits; the per-IP limits of the
//!   API apply to `/console/login` like any other route.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The agent tokens live below the console and the API (both check them); named here too.
pub use super::api::{AgentAuth, new_agent_token};
use super::api::{
    ApiError, AppState, ErrorBody, MAX_TOKEN_CHARS, RECENT_MAX, RECENT_TTL, bearer, not_found,
};
mod answers;
mod call;

use crate::dialog::slots::SlotKind;
use crate::store::{StoreError, TranscriptLine, UnansweredQuestion, random_token};

/// The name of the console's session cookie.
pub const COOKIE_NAME: &str = "yidi_agent";
/// How long a console login lasts (milliseconds): 12 hours, a long shift.
pub const AGENT_SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;
/// Largest `limit` of `/v1/agent/unanswered`.
pub const MAX_UNANSWERED_LIMIT: i64 = 200;
/// Default `limit` of `/v1/agent/unanswered`.
pub const DEFAULT_UNANSWERED_LIMIT: i64 = 50;
/// Longest session id looked up for a transcript.
const MAX_SESSION_ID_CHARS: usize = 128;

// ---------------------------------------------------------------------------------------------
// Who is asking

/// Why a request is not an agent's.
enum Denied {
    NotConfigured,
    Missing,
    Invalid,
    Store(StoreError),
}

impl Denied {
    fn api_error(self) -> ApiError {
        match self {
            Denied::NotConfigured => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "agents_not_configured",
                NOT_CONFIGURED_MESSAGE,
            ),
            Denied::Missing => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_agent_token",
                "需要坐席登录：请先在 /console 登录，或在请求头 Authorization 中提供坐席令牌（Bearer 令牌）。",
            ),
            Denied::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_agent_token",
                "坐席令牌无效，或者登录已过期，请重新登录。",
            ),
            Denied::Store(e) => ApiError::from(e),
        }
    }

    /// The login page that answers a request for a console page.
    fn page(self) -> Response {
        match self {
            Denied::NotConfigured => {
                login_page(StatusCode::UNAUTHORIZED, Some(NOT_CONFIGURED_MESSAGE))
            }
            Denied::Missing => login_page(StatusCode::UNAUTHORIZED, None),
            Denied::Invalid => login_page(
                StatusCode::UNAUTHORIZED,
                Some("登录已失效或已过期，请重新输入坐席令牌。"),
            ),
            Denied::Store(e) => store_error_page(e),
        }
    }
}

const CROSS_SITE_MESSAGE: &str = "这个请求来自其他网站，已拒绝。请在本站的坐席控制台页面操作。";

/// A form post whose `Origin` is another site: refused, so a page elsewhere can neither log
/// an agent in (into an account of its choosing) nor out. SameSite=Strict only decides when
/// the cookie is sent; it does not stop such posts. Requests without `Origin` (command-line
/// clients) pass: they carry no victim's browser state.
fn cross_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(scheme, rest)| (scheme, rest.trim_end_matches('/')));
    // the scheme this request reached us by: the proxy's X-Forwarded-Proto (a browser cannot
    // set it on a cross-site form post), else plain HTTP, all this server speaks; so a page
    // on http://host cannot log agents in to https://host
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map_or("http", str::trim);
    match (origin, host) {
        (Some((o_scheme, o_host)), Some(h)) => {
            let other = !o_host.eq_ignore_ascii_case(h) || !o_scheme.eq_ignore_ascii_case(scheme);
            if other && o_host.eq_ignore_ascii_case(h) {
                crate::throttle::refusal(
                    "console login from another scheme (behind an HTTPS proxy, set X-Forwarded-Proto)",
                );
            }
            other
        }
        // "null" (a sandboxed or file page) or no Host: not this site
        _ => true,
    }
}

const NOT_CONFIGURED_MESSAGE: &str =
    "本服务没有配置坐席令牌，坐席控制台暂时无法登录。请联系管理员配置坐席令牌。";

/// Whether the request comes from a hotline agent: a valid console cookie or
/// `Authorization: Bearer <agent token>`. A database error counts as "no".
pub async fn is_agent(state: &AppState, headers: &HeaderMap) -> bool {
    authenticate(state, headers).await.is_ok()
}

/// Whether a request over its IP's limit comes from an agent and may pass. A bearer agent
/// token costs a hash; a console cookie is trusted for [`RECENT_TTL`] once found valid, and
/// otherwise looked up in the database only while the IP's separate lookup allowance lasts, so
/// a flood of forged cookies cannot turn into a flood of database reads.
pub async fn exempt_from_ip_limit(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> bool {
    let agents = state.agents();
    if !agents.is_configured() {
        return false;
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return is_agent(state, headers).await;
    }
    let Some(session) = cookie(headers, COOKIE_NAME) else {
        return false;
    };
    let key: [u8; 32] = Sha256::digest(session.as_bytes()).into();
    let now = Instant::now();
    let fresh = |recent: &HashMap<[u8; 32], Instant>| {
        recent
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < RECENT_TTL)
    };
    if agents.recent.lock().is_ok_and(|r| fresh(&r)) {
        return true;
    }
    if !state.limits().check_lookup(ip) || !is_agent(state, headers).await {
        return false;
    }
    if let Ok(mut recent) = agents.recent.lock() {
        if recent.len() >= RECENT_MAX {
            recent.clear();
        }
        recent.insert(key, now);
    }
    true
}

/// The agent a request comes from: the configured digest of their token.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, Denied> {
    let agents = state.agents();
    if !agents.is_configured() {
        return Err(Denied::NotConfigured);
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // not logged: `is_agent` also sees the session tokens of every public API request
        let token = bearer(value).ok_or(Denied::Invalid)?;
        return agents.verify(token).ok_or(Denied::Invalid);
    }
    let Some(session) = cookie(headers, COOKIE_NAME) else {
        return Err(Denied::Missing);
    };
    if session.is_empty() || session.len() > MAX_TOKEN_CHARS {
        return Err(Denied::Invalid);
    }
    match state.store().agent_session(session).await {
        Ok(Some(agent)) if agents.knows(&agent) => Ok(agent),
        Ok(_) => Err(Denied::Invalid),
        Err(e) => Err(Denied::Store(e)),
    }
}

/// For the agent-only endpoints outside this module ([`super::reload`]): `Ok` for an agent,
/// else the error the `/v1/agent/…` routes answer.
pub(super) async fn require_agent(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    authenticate(state, headers)
        .await
        .map(|_| ())
        .map_err(Denied::api_error)
}

/// The value of the cookie `name` (the first one, if the browser sent several).
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
}

// ---------------------------------------------------------------------------------------------
// Routes

/// The console's routes, merged into [`super::http::app`].
/// Each route is a documented handler (see `http`'s module docs).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(console_page))
        .routes(routes!(console_slash))
        .routes(routes!(login, login_get))
        .routes(routes!(logout))
        .routes(routes!(asset))
        .routes(routes!(unanswered))
        .routes(routes!(transcript))
        .routes(routes!(situation))
        .routes(routes!(call_view))
        .routes(routes!(agent_search))
        .routes(routes!(agent_entry))
        .routes(routes!(conversations))
        .routes(routes!(handled))
}

#[utoipa::path(get, path = "/console", tag = "console", summary = "the console page (HTML)",
    security(("agentCookie" = []), ("agentToken" = [])),
    responses(
        (status = 200, description = "the console", content_type = "text/html", body = String),
        (status = 401, description = "the login page", content_type = "text/html", body = String),
        (status = 503, description = "database unavailable (a page)", content_type = "text/html", body = String),
    ))]
async fn console_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match authenticate(&state, &headers).await {
        Ok(_) => html(StatusCode::OK, console_html(&state)),
        Err(denied) => denied.page(),
    }
}

/// `GET /console/login` (a bookmark, a reload after a failed login): the console decides.
#[utoipa::path(get, path = "/console/login", tag = "console", summary = "to the console",
    responses((status = 303, description = "see /console", headers(("Location" = String)))))]
async fn login_get() -> Response {
    see_other("/console", None)
}

/// `GET /console/`: the console decides.
#[utoipa::path(get, path = "/console/", tag = "console", summary = "to the console",
    responses((status = 303, description = "see /console", headers(("Location" = String)))))]
async fn console_slash() -> Response {
    see_other("/console", None)
}

/// The login form.
#[derive(Deserialize, ToSchema)]
struct LoginForm {
    /// the agent token (`yidi agent-token`)
    #[schema(value_type = String, max_length = 256)]
    token: Option<String>,
}

#[utoipa::path(post, path = "/console/login", tag = "console", summary = "log an agent in",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "logged in: the session cookie, see /console",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = "not a login form (the login page)", content_type = "text/html", body = String),
        (status = 401, description = "wrong or no token, or no agent configured (the login page)", content_type = "text/html", body = String),
        (status = 403, description = "posted from another site (the login page)", content_type = "text/html", body = String),
        (status = 503, description = "database unavailable (a page)", content_type = "text/html", body = String),
    ))]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return login_page(StatusCode::FORBIDDEN, Some(CROSS_SITE_MESSAGE));
    }
    if !state.agents().is_configured() {
        return login_page(StatusCode::UNAUTHORIZED, Some(NOT_CONFIGURED_MESSAGE));
    }
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            Some("登录请求的格式不正确，请在本页输入坐席令牌后登录。"),
        );
    };
    let token = form.token.unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return login_page(StatusCode::UNAUTHORIZED, Some("请输入坐席令牌。"));
    }
    let Some(agent) = state.agents().verify(token) else {
        crate::throttle::refusal("rejected console login");
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("坐席令牌不正确，请检查后重新输入。"),
        );
    };
    let session = random_token();
    if let Err(e) = state
        .store()
        .add_agent_session(&session, &agent, AGENT_SESSION_TTL_MS)
        .await
    {
        return store_error_page(e);
    }
    tracing::info!(agent = &agent[..8], "console login");
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE_NAME}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        AGENT_SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    see_other("/console", Some(cookie))
}

#[utoipa::path(post, path = "/console/logout", tag = "console", summary = "log out",
    responses(
        (status = 303, description = "the cookie cleared, see /console",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 403, description = "posted from another site (the login page)", content_type = "text/html", body = String),
        (status = 503, description = "database unavailable (a page)", content_type = "text/html", body = String),
    ))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if cross_site(&headers) {
        return login_page(StatusCode::FORBIDDEN, Some(CROSS_SITE_MESSAGE));
    }
    if let Some(session) = cookie(&headers, COOKIE_NAME)
        && !session.is_empty()
        && session.len() <= MAX_TOKEN_CHARS
    {
        let key: [u8; 32] = Sha256::digest(session.as_bytes()).into();
        if let Ok(mut recent) = state.agents().recent.lock() {
            recent.remove(&key);
        }
        match state.store().delete_agent_session(session).await {
            Ok(_) => tracing::info!("console logout"),
            Err(e) => return store_error_page(e),
        }
    }
    let clear = format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    see_other("/console", Some(clear))
}

fn see_other(location: &'static str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static(location));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, c);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Assets

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    /// Served without a login (the login page needs it).
    public: bool,
    body: &'static str,
}

/// Every file under `/console/assets/`; nothing else is ever served from there.
const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        public: true,
        body: include_str!("console/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        public: false,
        body: include_str!("console/console.js"),
    },
];

#[utoipa::path(get, path = "/console/assets/{name}", tag = "console",
    summary = "the console's stylesheet (public) and script (agents only)",
    security((), ("agentCookie" = []), ("agentToken" = [])),
    params(("name" = String, Path, description = "console.css or console.js")),
    responses(
        (status = 200, description = "the file", content_type = "text/css", body = String),
        (status = 401, description = "the script needs an agent", body = ErrorBody),
        (status = 404, description = "no such file", body = ErrorBody),
    ))]
async fn asset(
    State(state): State<AppState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(name)) = name else {
        return not_found().await.into_response();
    };
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return not_found().await.into_response();
    };
    if !asset.public
        && let Err(denied) = authenticate(&state, &headers).await
    {
        return denied.api_error().into_response();
    }
    let mut response = asset.body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.public {
            "no-cache"
        } else {
            "private, no-cache"
        }),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Agent JSON

/// The query of `/v1/agent/unanswered` (`limit` read as text for the API's own message).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UnansweredParams {
    /// how many questions at most
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
}

/// The latest unanswered questions.
#[derive(Serialize, ToSchema)]
struct Unanswered {
    /// The most recent unanswered questions, newest first.
    questions: Vec<UnansweredQuestion>,
}

#[utoipa::path(get, path = "/v1/agent/unanswered", tag = "agents",
    summary = "questions the assistant could not answer (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    params(UnansweredParams),
    responses(
        (status = 200, description = "the latest unanswered questions, newest first", body = Unanswered),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 422, description = "bad limit", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn unanswered(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<UnansweredParams>, QueryRejection>,
) -> Result<Json<Unanswered>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let bad_limit = || {
        ApiError::from(crate::guidance::FieldError::new(
            "limit",
            format!("limit 须为 1 到 {MAX_UNANSWERED_LIMIT} 之间的整数。"),
        ))
    };
    let Ok(Query(params)) = params else {
        return Err(bad_limit());
    };
    let limit = match params.limit {
        None => DEFAULT_UNANSWERED_LIMIT,
        Some(l) => match l.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_UNANSWERED_LIMIT).contains(&n) => n,
            _ => return Err(bad_limit()),
        },
    };
    let questions = state.store().unanswered(limit).await?;
    Ok(Json(Unanswered { questions }))
}

/// An agent's notes about a caller.
#[derive(Deserialize, ToSchema)]
struct SituationText {
    /// the caller's situation in free text (or what was added to it)
    #[schema(max_length = 2000)]
    text: String,
    /// what is known already (slot → value): the text is read on top of it, so only the
    /// fields it states change and a correction ("不对，是张家港的") replaces one
    #[serde(default)]
    known: Option<BTreeMap<String, String>>,
}

/// The slots a text states.
#[derive(Serialize, ToSchema)]
struct SituationSlots {
    /// checklist.md / estimate.md slot names and values: `known` with what the text states
    slots: BTreeMap<String, String>,
    /// what follows from them without being said (slot → value): 职工医保 for someone who
    /// is 在职 or 退休, as only that scheme has either
    inferred: BTreeMap<String, String>,
}

/// Most known slots a situation request may carry.
const MAX_KNOWN_SLOTS: usize = 40;

/// The slots that an agent's free text about the caller states, read as a conversation
/// reads them (`Assistant::understand_after`).
#[utoipa::path(post, path = "/v1/agent/situation", tag = "agents",
    summary = "the caller's situation as a text states it (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    request_body = SituationText,
    responses(
        (status = 200, description = "the slots", body = SituationSlots),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "not {\"text\"} or too long", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn situation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SituationText>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SituationSlots>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let body = json_body(body, || {
        ApiError::from(crate::guidance::FieldError::new(
            "text",
            "请求须为 JSON 对象 {\"text\": \"来电者情况描述\"}。",
        ))
    })?;
    if body.text.chars().count() > crate::assistant::MAX_MESSAGE_CHARS {
        return Err(ApiError::from(crate::guidance::FieldError::new(
            "text",
            format!(
                "描述太长了，最多 {} 字。",
                crate::assistant::MAX_MESSAGE_CHARS
            ),
        )));
    }
    let known = body.known.unwrap_or_default();
    if known.len() > MAX_KNOWN_SLOTS
        || known
            .iter()
            .any(|(k, v)| k.chars().count() > 40 || v.chars().count() > 80)
    {
        return Err(ApiError::from(crate::guidance::FieldError::new(
            "known",
            "已知情况的格式不正确：请用“字段名: 值”的对象，最多 40 项。",
        )));
    }
    let slots = state.assistant().understand_after(&known, &body.text);
    let mut inferred = BTreeMap::new();
    if slots.contains_key("employment") && !slots.contains_key("scheme") {
        inferred.insert("scheme".to_string(), "employee".to_string());
    }
    Ok(Json(SituationSlots { slots, inferred }))
}

/// A caller's situation as the console's form holds it.
#[derive(Deserialize, ToSchema)]
struct CallRequest {
    /// slot → value (checklist.md and estimate.md names; amounts as typed, "3万2" too)
    slots: BTreeMap<String, String>,
}

fn slots_problem() -> ApiError {
    ApiError::from(crate::guidance::FieldError::new(
        "slots",
        "请求须为 JSON 对象 {\"slots\": {\"字段名\": \"值\"}}，最多 40 项。",
    ))
}

fn read_slots(slots: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if slots.len() > MAX_KNOWN_SLOTS
        || slots
            .iter()
            .any(|(k, v)| k.chars().count() > 40 || v.chars().count() > 80)
    {
        return Err(slots_problem());
    }
    Ok(slots)
}

/// What the console shows for a call: missing fields (all at once, in the agent's words),
/// the answer for the situation, the checklist and the estimate with their cases, each
/// with a sentence to read out and a text message.
#[utoipa::path(post, path = "/v1/agent/call", tag = "agents",
    summary = "the answer, checklist and estimate for a caller's situation (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    request_body = CallRequest,
    responses(
        (status = 200, description = "the call view", body = call::CallView),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "not {\"slots\": {…}}", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn call_view(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CallRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<call::CallView>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let slots = read_slots(json_body(body, slots_problem)?.slots)?;
    Ok(Json(call::view(&state.assistant(), &slots)))
}

/// An agent endpoint's JSON body: too large is 413, as on every other route; anything else
/// that is not the expected object is `problem`, which says in Chinese what to send.
fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    problem: impl FnOnce() -> ApiError,
) -> Result<T, ApiError> {
    match body {
        Ok(Json(body)) => Ok(body),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::of_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(_) => Err(problem()),
    }
}

/// An agent's search.
#[derive(Deserialize, ToSchema)]
struct AgentSearchRequest {
    /// the question or keywords ("门特", "张家港 窗口 地址")
    #[schema(max_length = 500)]
    q: String,
    /// the caller's situation (its region orders each answer's paragraphs)
    #[serde(default)]
    slots: BTreeMap<String, String>,
}

/// Search for agents: in the cross-region context the hotline is about, plausible entries
/// shown as such, each answer for the caller's region.
#[utoipa::path(post, path = "/v1/agent/search", tag = "agents",
    summary = "search the FAQ for a caller (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    request_body = AgentSearchRequest,
    responses(
        (status = 200, description = "what was found", body = answers::AgentSearch),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "not {\"q\", \"slots\"}", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn agent_search(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AgentSearchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<answers::AgentSearch>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let problem = || {
        ApiError::from(crate::guidance::FieldError::new(
            "q",
            "请求须为 JSON 对象 {\"q\": \"问题\", \"slots\": {…}}，问题最多 500 字。",
        ))
    };
    let body = json_body(body, problem)?;
    if body.q.chars().count() > 500 {
        return Err(problem());
    }
    let slots = read_slots(body.slots)?;
    Ok(Json(answers::search(&state.assistant(), &body.q, &slots)))
}

/// One entry for a caller.
#[derive(Deserialize, ToSchema)]
struct AgentEntryRequest {
    /// the entry's id
    id: String,
    /// the caller's situation (its lead and region)
    #[serde(default)]
    slots: BTreeMap<String, String>,
}

/// One FAQ entry for a caller's situation (a related entry or a plausible one clicked).
#[utoipa::path(post, path = "/v1/agent/entry", tag = "agents",
    summary = "one FAQ entry for a caller (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    request_body = AgentEntryRequest,
    responses(
        (status = 200, description = "the entry", body = answers::AgentEntry),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 404, description = "no such entry (faq_not_found)", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "not {\"id\", \"slots\"}", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
    ))]
async fn agent_entry(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AgentEntryRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<answers::AgentEntry>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let body = json_body(body, || {
        ApiError::from(crate::guidance::FieldError::new(
            "id",
            "请求须为 JSON 对象 {\"id\": \"条目编号\", \"slots\": {…}}。",
        ))
    })?;
    let slots = read_slots(body.slots)?;
    let a = state.assistant();
    let Some(entry) = a.knowledge.faq(&body.id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "faq_not_found",
            "没有这个编号的问答条目。",
        ));
    };
    Ok(Json(answers::agent_entry(&a, entry, &slots)))
}

/// The query of `/v1/agent/conversations`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConversationsParams {
    /// a session id, or a caller's id: a Telegram chat id, a WeChat OpenID, the id given to
    /// `yidi chat --session` (with or without `telegram:`/`wechat:` before it)
    #[param(required = true, value_type = String, max_length = 128)]
    q: Option<String>,
}

/// The conversations found for an id.
#[derive(Serialize, ToSchema)]
struct Conversations {
    /// Each stored conversation the id leads to (none when there is none).
    conversations: Vec<crate::store::ConversationSummary>,
}

/// The ids under which a conversation of `q` may be stored: `q` itself (a session id as the
/// inbox shows it), and the keyed hash of each channel's caller id (see
/// `Store::caller_session_id`).
fn caller_candidates(state: &AppState, q: &str) -> Vec<String> {
    let store = state.store();
    let mut ids = vec![q.to_string()];
    if q.starts_with("telegram:") || q.starts_with("wechat:") {
        ids.push(store.caller_session_id(q));
    } else {
        for channel in ["telegram", "wechat"] {
            ids.push(store.caller_session_id(&format!("{channel}:{q}")));
        }
        // `yidi chat --session ID`
        ids.push(store.caller_session_id(q));
    }
    ids
}

#[utoipa::path(get, path = "/v1/agent/conversations", tag = "agents",
    summary = "look up a caller's earlier conversations (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    params(ConversationsParams),
    responses(
        (status = 200, description = "the conversations found", body = Conversations),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 422, description = "no q, or too long", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn conversations(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ConversationsParams>, QueryRejection>,
) -> Result<Json<Conversations>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let q = params
        .ok()
        .and_then(|Query(p)| p.q)
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty() && q.chars().count() <= MAX_SESSION_ID_CHARS)
        .ok_or_else(|| {
            ApiError::from(crate::guidance::FieldError::new(
                "q",
                "请输入会话号或来电者ID（Telegram 对话号、微信 OpenID），最多 128 个字符。",
            ))
        })?;
    let ids = caller_candidates(&state, &q);
    let conversations = state.store().conversations(&ids).await?;
    Ok(Json(Conversations { conversations }))
}

/// Whether an inbox item is handled.
#[derive(Deserialize, ToSchema)]
struct HandledRequest {
    /// true: handled now by this agent; false: not handled (again)
    handled: bool,
}

/// How many hex digits of an agent's token digest name them in the inbox.
const AGENT_TAG_CHARS: usize = 12;

#[utoipa::path(post, path = "/v1/agent/unanswered/{id}/handled", tag = "agents",
    summary = "mark an inbox item handled or not (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    params(("id" = String, Path, description = "the question's id")),
    request_body = HandledRequest,
    responses(
        (status = 200, description = "the item as stored now", body = UnansweredQuestion),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 404, description = "no such question", body = ErrorBody),
        (status = 422, description = "not {\"handled\": true|false}", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn handled(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<HandledRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<UnansweredQuestion>, ApiError> {
    let agent = authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let no_item = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "question_not_found",
            "没有这个待处理问题，可能已被清理。",
        )
    };
    let Ok(Path(id)) = id else {
        return Err(no_item());
    };
    let Ok(Json(body)) = body else {
        return Err(ApiError::from(crate::guidance::FieldError::new(
            "handled",
            "请求须为 JSON 对象 {\"handled\": true} 或 {\"handled\": false}。",
        )));
    };
    if id.is_empty() || id.chars().count() > MAX_SESSION_ID_CHARS + 24 {
        return Err(no_item());
    }
    let tag: String = agent.chars().take(AGENT_TAG_CHARS).collect();
    match state
        .store()
        .set_unanswered_handled(&id, &tag, body.handled)
        .await?
    {
        Some(item) => Ok(Json(item)),
        None => Err(no_item()),
    }
}

/// A stored conversation, for agents.
#[derive(Serialize, ToSchema)]
struct Transcript {
    /// The conversation's id.
    session_id: String,
    /// What was said, in order (personal numbers masked).
    transcript: Vec<TranscriptLine>,
}

#[utoipa::path(get, path = "/v1/agent/sessions/{id}/transcript", tag = "agents",
    summary = "a conversation's transcript (agents only)",
    security(("agentToken" = []), ("agentCookie" = [])),
    params(("id" = String, Path, description = "the session id")),
    responses(
        (status = 200, description = "the transcript", body = Transcript),
        (status = 401, description = "not an agent", body = ErrorBody),
        (status = 404, description = "no lines for this session", body = ErrorBody),
        (status = 429, description = "rate limited; see Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Transcript>, ApiError> {
    authenticate(&state, &headers)
        .await
        .map_err(Denied::api_error)?;
    let no_session = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "没有这个会话的对话记录。",
        )
    };
    let Ok(Path(id)) = id else {
        return Err(no_session());
    };
    if id.is_empty() || id.chars().count() > MAX_SESSION_ID_CHARS {
        return Err(no_session());
    }
    let lines = state.store().transcript(&id).await?;
    if lines.is_empty() {
        return Err(no_session());
    }
    Ok(Json(Transcript {
        session_id: id,
        transcript: lines,
    }))
}

// ---------------------------------------------------------------------------------------------
// Pages

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside a `<script type="application/json">` element.
fn script_json(v: &Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The pages' Content-Security-Policy (the residents' pages of `site` use it too).
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` with the
    // console's own form posts, which `cross_site` must refuse
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/console/assets/console.css\">\n\
         </head>\n<body>\n{body}\n</body>\n</html>\n",
        escape_html(title)
    )
}

/// The login page with an optional error; answered with `status`.
fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error.map_or_else(String::new, |e| {
        format!(
            "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>\n",
            escape_html(e)
        )
    });
    let body = format!(
        "<main class=\"login\" id=\"login-page\">\n<h1>异地就医坐席工作台</h1>\n\
         <p>请输入坐席令牌登录。令牌由管理员发放，请勿外传。</p>\n{error}\
         <form method=\"post\" action=\"/console/login\">\n\
         <label for=\"token\">坐席令牌</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         maxlength=\"256\" required autofocus>\n\
         <button type=\"submit\" id=\"login\">登录</button>\n</form>\n</main>"
    );
    html(status, page("坐席登录 · 异地就医", &body))
}

fn store_error_page(e: StoreError) -> Response {
    tracing::error!(error = %e, "store error");
    let body = "<main class=\"login\">\n<h1>异地就医坐席工作台</h1>\n\
                <p class=\"error\" role=\"alert\">服务暂时无法访问数据库，请稍后刷新重试。</p>\n</main>";
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page("暂时不可用 · 异地就医", body),
    )
}

/// The fields of the situation form, in the order a caller tells them (`dialogs/slots.toml`
/// gives their titles and values). `call::view` maps them to the checklist's and the
/// estimate's inputs; missing fields are listed in this order too.
const MAIN_FIELDS: &[&str] = &[
    "insured_region",
    "scheme",
    "employment",
    "category",
    "care_location",
    "visit",
    "stage",
    "filed",
    "filing_type",
    "hospital_level",
    "total",
    "self_pay",
];

/// Fields a call seldom needs: folded until one of them is filled or missing.
const MORE_FIELDS: &[&str] = &[
    "by_proxy",
    "emergency",
    "class_b",
    "admissions_before",
    "mentions_chronic",
];

fn form_fields(state: &AppState, fields: &[&str]) -> String {
    let slots = &state.assistant().dialogs.slots;
    let mut out = String::new();
    for slot in fields {
        let Some(def) = slots.get(slot) else {
            continue;
        };
        let slot = escape_html(slot);
        let id = format!("f-{slot}");
        out.push_str(&format!(
            "<div class=\"field\" data-slot=\"{slot}\"><label for=\"{id}\">{}</label>",
            escape_html(&def.title)
        ));
        match def.kind {
            SlotKind::Choice => {
                out.push_str(&format!(
                    "<select id=\"{id}\" name=\"{slot}\"><option value=\"\">未选择</option>"
                ));
                for v in &def.values {
                    out.push_str(&format!(
                        "<option value=\"{}\">{}</option>",
                        escape_html(&v.value),
                        escape_html(&v.label)
                    ));
                }
                out.push_str("</select>");
            }
            SlotKind::Money => out.push_str(&format!(
                "<input id=\"{id}\" name=\"{slot}\" type=\"text\" inputmode=\"decimal\" \
                 maxlength=\"16\" placeholder=\"元，如 32000 或 3万2\" autocomplete=\"off\">"
            )),
            SlotKind::Integer => out.push_str(&format!(
                "<input id=\"{id}\" name=\"{slot}\" type=\"number\" min=\"0\" max=\"366\" step=\"1\" \
                 inputmode=\"numeric\" autocomplete=\"off\">"
            )),
            SlotKind::Text => out.push_str(&format!(
                "<input id=\"{id}\" name=\"{slot}\" type=\"text\" maxlength=\"40\" \
                 autocomplete=\"off\">"
            )),
        }
        out.push_str("<span class=\"mark\" aria-hidden=\"true\"></span></div>\n");
    }
    out
}

fn console_html(state: &AppState) -> String {
    let assistant = state.assistant();
    let knowledge = &assistant.knowledge;
    // the slots' titles and value labels: the summary, the missing fields and the marks
    let slots: serde_json::Map<String, Value> = assistant
        .dialogs
        .slots
        .defs
        .iter()
        .map(|(name, def)| {
            let values: serde_json::Map<String, Value> = def
                .values
                .iter()
                .map(|v| (v.value.clone(), json!(v.label)))
                .collect();
            (
                name.clone(),
                json!({ "title": def.title, "values": values }),
            )
        })
        .collect();
    let data = json!({
        "hotline": knowledge.hotline(),
        "slots": slots,
    });
    let body = format!(
        r##"<header class="top no-print">
<h1>异地就医坐席工作台</h1>
<button type="button" id="new-call" class="primary" title="清空上一位来电者的全部信息（Alt+N）">新来电</button>
<p class="keys" id="keys"><kbd>/</kbd> 搜索　<kbd>Esc</kbd> 清空搜索　<kbd>Alt</kbd>+<kbd>N</kbd> 新来电</p>
<a href="#records" id="records-link">来电记录与待处理</a>
<form method="post" action="/console/logout"><button type="submit" id="logout">退出登录</button></form>
</header>
<main class="call" id="console">
<section class="panel no-print" id="situation-panel" aria-labelledby="situation-title">
<h2 id="situation-title">来电者情况</h2>
<div class="caller"><label for="caller-text">来电者怎么说（粘贴或边听边记，自动填写下面的表格）</label>
<textarea id="caller-text" rows="3" maxlength="2000" placeholder="例如：我爸张家港退休的，在上海住院了，没备案，现在出院了自己垫了三万多"></textarea>
<p id="caller-status" class="status" aria-live="polite"></p></div>
<div id="missing" class="missing" aria-live="polite" hidden></div>
<form id="situation" class="situation" autocomplete="off">
<div class="fields">
{main}</div>
<details id="more-fields"><summary>更多情况（代办、急诊、乙类、住院次数、慢特病）</summary>
<div class="fields">
{more}</div></details>
<p class="legend"><span class="mark-text">描述</span> 由描述填写　<span class="mark-hand">手填</span> 坐席填写或修改　<span class="mark-inferred">推断</span> 由其他情况推断</p>
<button type="reset" id="clear-form">清空表格</button>
</form>
</section>
<div class="column" id="answer-column">
<section class="panel no-print" id="search-panel" aria-labelledby="search-title">
<div class="search-row"><h2 id="search-title">答复</h2>
<input id="q" type="search" maxlength="500" autocomplete="off" aria-label="搜索问题或关键词（按 / 键），结果按来电者的参保地排列" placeholder="搜索问题或关键词（按 / 键）：门特、窗口地址、转外…"></div>
<p id="search-status" class="status" aria-live="polite"></p>
<div id="answers" class="answers"></div>
<div id="situation-answer" class="situation-answer"><p class="placeholder">输入来电者的情况后，这里显示该怎么答复。</p></div>
</section>
<section class="panel" id="estimate-panel" aria-label="报销估算">
<section id="estimate" class="estimate" aria-live="polite"><h3>报销估算</h3><p class="placeholder">说了费用，这里就显示医保大概能报多少。</p></section>
</section>
</div>
<section class="panel" id="result" aria-labelledby="result-title">
<div class="result-actions no-print"><h2 id="result-title">材料清单</h2><button type="button" id="print" title="打印情况、答复、清单和估算（一页 A4）">打印</button></div>
<h2 class="print-only">异地就医办理清单与报销估算</h2>
<p id="situation-summary" class="summary print-only"></p>
<p id="print-answer" class="print-only"></p>
<section id="checklist" class="checklist" aria-live="polite"><p class="placeholder">这里显示来电者要准备的材料和办理渠道。</p></section>
</section>
</main>
<section class="records no-print" id="records" aria-label="来电记录与待处理">
<section class="panel" id="history-panel" aria-labelledby="history-title">
<h2 id="history-title">来电记录</h2>
<form id="history-form" class="inline-form"><label for="history-q">会话号或来电者ID（Telegram 对话号、微信 OpenID）</label>
<input id="history-q" type="search" maxlength="128" autocomplete="off"><button type="submit" id="history-search">查找</button></form>
<p id="history-status" class="status" aria-live="polite"></p>
<ol id="history" class="history"></ol>
</section>
<section class="panel" id="unanswered-panel" aria-labelledby="unanswered-title">
<h2 id="unanswered-title">待处理问题</h2>
<p class="hint">用户问过、助手没能回答或不属于异地就医的问题（最新在前），处理后请标记。</p>
<button type="button" id="refresh-unanswered">刷新</button>
<p id="unanswered-status" class="status" aria-live="polite"></p>
<ol id="unanswered" class="unanswered"></ol>
</section>
<section class="panel" id="transcript" hidden></section>
</section>
<script type="application/json" id="console-data">{data}</script>
<script src="/console/assets/console.js"></script>"##,
        main = form_fields(state, MAIN_FIELDS),
        more = form_fields(state, MORE_FIELDS),
        data = script_json(&data),
    );
    page("坐席工作台 · 异地就医", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_or_say_what_is_wrong() {
        let (token, digest) = new_agent_token();
        assert_eq!(token.len(), 64);
        let auth = AgentAuth::from_sha256_hex(std::slice::from_ref(&digest)).unwrap();
        assert!(auth.is_configured());
        assert_eq!(auth.verify(&token), Some(digest.clone()));
        assert_eq!(auth.verify("wrong"), None);
        assert_eq!(auth.verify(""), None);
        assert!(auth.knows(&digest));
        assert!(!auth.knows(&"0".repeat(64)));
        assert!(!auth.knows("not hex"));
        // upper case and whitespace are accepted
        let upper = AgentAuth::from_sha256_hex(&[format!(" {} ", digest.to_uppercase())]).unwrap();
        assert_eq!(upper.verify(&token), Some(digest.clone()));

        let short = AgentAuth::from_sha256_hex(&[digest.clone(), "abc".into()]).unwrap_err();
        assert!(short.contains("#2") && short.contains("64"), "{short}");
        let bad = format!("{}g", &digest[..63]);
        let e = AgentAuth::from_sha256_hex(&[bad]).unwrap_err();
        assert!(e.contains("#1") && e.contains("character 64"), "{e}");
        let e = AgentAuth::from_sha256_hex(&["é".repeat(64)]).unwrap_err();
        assert!(e.contains("character 1"), "{e}");
        assert!(!AgentAuth::from_sha256_hex(&[]).unwrap().is_configured());
        assert!(!AgentAuth::default().is_configured());
        assert_eq!(
            format!("{:?}", AgentAuth::from_sha256_hex(&[digest]).unwrap()),
            "AgentAuth { tokens: 1 }"
        );
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read_strictly() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; yidi_agent=abc ; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie(&h, "yidi"), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer  t ")), Some("t"));
        assert_eq!(bearer(&HeaderValue::from_static("Basic t")), None);
        assert_eq!(bearer(&HeaderValue::from_static("Bearer")), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let v = json!({"x": "</script><b>&"});
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
    }

    #[test]
    fn assets_are_a_fixed_table() {
        for name in ["console.css", "console.js"] {
            assert!(ASSETS.iter().any(|a| a.name == name));
        }
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
    }
}
