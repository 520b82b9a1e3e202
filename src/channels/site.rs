//! The residents' pages (issue 25): FAQ search for people who open yidi's address in a
//! browser, phone first. Server-rendered HTML (maud), a small optional script and one
//! stylesheet (`site/`), served from the binary. Everything works without the script.
//!
//! | route | does |
//! |---|---|
//! | `GET /` | the FAQ home: a search box (search as you type with the script, a plain form `GET /faq?q=` without), the tools, the topics with their questions, the hotlines by region |
//! | `GET /faq?q=…` | the search's answer: the entry that answers, or an honest "no reliable answer" with the closest topics and the region's hotline (the question then lands in the agents' inbox, masked) |
//! | `GET /faq/{id}` | one entry: the brief first, the full text, sources by title with date and tier, related entries, 有用/没用 feedback, a QR code link |
//! | `POST /faq/{id}/feedback` | form `helpful=true\|false` → the feedback store, 303 to the entry with thanks |
//! | `GET /faq/{id}/qr` | a page to print for a counter: the question, the QR code and the address |
//! | `GET /faq/{id}/qr.svg` | a QR code of the entry's absolute address (scheme from `X-Forwarded-Proto`, host from `Host`) |
//! | `GET`/`POST /tools/checklist` | the filing checklist as a form: the filing dialog's questions, the chat's engine and words |
//! | `GET`/`POST /tools/estimate` | the estimate as a form: the estimate dialog's questions, the chat's engine and words |
//! | `GET /assets/site.css`, `GET /assets/site.js` | the stylesheet and the script |
//!
//! Decisions:
//! - **Pre-rendered.** The home page, every entry page and the empty forms depend only on the
//!   loaded data, so they are rendered once per [`Assistant`] (a reload makes new ones) and
//!   served from memory with an `ETag` that is a hash of the page's bytes, so it changes
//!   exactly when the knowledge shown changes; `If-None-Match` gets 304. Entries are
//!   `Cache-Control: public, max-age=300`, the home page `no-cache` (always revalidated).
//! - **Honest search.** The search page uses the FAQ search of `/v1/faq/search` and of the
//!   chat, with its own decision to answer or decline ([`SearchResult::answered`]); no
//!   threshold of its own. A declined question is recorded in the agents' inbox like a chat
//!   question (`Store::add_unanswered`, which masks ID-card, phone and bank-card numbers),
//!   once per ten minutes for the same question from this process; the script's
//!   search-as-you-type asks `/v1/faq/search` and records nothing.
//! - **Safe.** The console's Content-Security-Policy (scripts and styles from this origin
//!   only, no inline script or style), `nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy:
//!   same-origin`. Every value is escaped by maud. The query of `/faq?q=` is in the URL (so a
//!   search can be shared) but never logged: logs carry the matched route only.
//! - **Words.** All text residents read is Simplified Chinese; the tools' field labels are
//!   the dialogs' own questions (chat instructions such as "请回复" cut off) and the slots'
//!   value labels; results are the chat's text ([`crate::render`]) laid out as lists.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::AppState;
use crate::assistant::Assistant;
use crate::dialog::SlotKind;
use crate::knowledge::FaqEntry;
use crate::search::SearchResult;

/// The site's name, in every title.
const SITE_NAME: &str = "异地就医问答";

/// How many entries a search page shows at most.
const SEARCH_LIMIT: usize = 5;

/// The longest query read (the search cuts at 500 characters anyway).
const MAX_QUERY_CHARS: usize = 200;

/// The same question is recorded in the inbox at most once in this span (per process).
const INBOX_REPEAT: Duration = Duration::from_secs(600);

/// The stylesheet and the script, embedded.
const SITE_CSS: &str = include_str!("site/site.css");
const SITE_JS: &str = include_str!("site/site.js");

/// A topic of the home page: a name residents know and the FAQ files whose entries it lists.
pub struct Topic {
    pub id: &'static str,
    pub name: &'static str,
    pub files: &'static [&'static str],
}

/// The five topics, in the order shown. An entry belongs to the first topic that names its
/// file; an entry of no topic is listed under [`OTHER_TOPIC`].
pub const TOPICS: &[Topic] = &[
    Topic {
        id: "filing",
        name: "备案",
        files: &["faq/filing.toml"],
    },
    Topic {
        id: "direct",
        name: "直接结算",
        files: &["faq/hospitals.toml", "faq/policy.toml"],
    },
    Topic {
        id: "manual",
        name: "零星报销",
        files: &["faq/manual.toml"],
    },
    Topic {
        id: "card",
        name: "刷卡问题",
        files: &["faq/card.toml"],
    },
    Topic {
        id: "special",
        name: "特殊情况",
        files: &["faq/special.toml", "faq/contacts.toml"],
    },
];

/// Where entries of no topic are listed.
pub const OTHER_TOPIC: Topic = Topic {
    id: "other",
    name: "其他问题",
    files: &[],
};

/// The topic of an entry.
pub fn topic_of(entry: &FaqEntry) -> &'static Topic {
    let file = entry.file.replace('\\', "/");
    TOPICS
        .iter()
        .find(|t| t.files.iter().any(|f| file.ends_with(f)))
        .unwrap_or(&OTHER_TOPIC)
}

// ---------------------------------------------------------------------------------------------
// Routes

/// The pages that read or write data (search, feedback, the tools): merged into the API's
/// routes limited per client IP.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_page))
        .routes(routes!(entry_page))
        .routes(routes!(feedback))
        .routes(routes!(qr_svg))
        .routes(routes!(qr_page))
        .routes(routes!(checklist_form, checklist_post))
        .routes(routes!(estimate_form, estimate_post))
}

/// The home page and the static files: not limited (served from memory).
pub fn static_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(site_css))
        .routes(routes!(site_js))
}

// ---------------------------------------------------------------------------------------------
// Pages rendered once per assistant

/// A page in memory with its validator.
struct Page {
    body: Bytes,
    etag: HeaderValue,
}

impl Page {
    fn new(markup: Markup) -> Page {
        let body = Bytes::from(markup.into_string());
        Page {
            etag: etag_of(&body),
            body,
        }
    }
}

/// A strong validator from the bytes served.
fn etag_of(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
}

/// The pages of one loaded assistant.
struct Site {
    assistant: Weak<Assistant>,
    home: Page,
    /// Each entry's page, and the same page after feedback was sent.
    entries: HashMap<String, (Page, Page)>,
    checklist: Page,
    estimate: Page,
}

static SITE: Mutex<Option<Arc<Site>>> = Mutex::new(None);

/// The pages of the assistant in force, rendered on first use after a load or reload.
fn site(assistant: &Arc<Assistant>) -> Arc<Site> {
    let mut cached = SITE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(site) = cached.as_ref()
        && std::ptr::eq(site.assistant.as_ptr(), Arc::as_ptr(assistant))
    {
        return site.clone();
    }
    let site = Arc::new(build_site(assistant));
    *cached = Some(site.clone());
    site
}

fn build_site(a: &Arc<Assistant>) -> Site {
    let entries = a
        .knowledge
        .faqs
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                (
                    Page::new(entry_html(a, e, false)),
                    Page::new(entry_html(a, e, true)),
                ),
            )
        })
        .collect();
    Site {
        assistant: Arc::downgrade(a),
        home: Page::new(home_html(a)),
        entries,
        checklist: Page::new(tool_html(a, Tool::Checklist, &Filled::default())),
        estimate: Page::new(tool_html(a, Tool::Estimate, &Filled::default())),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// The console's headers (its CSP, nosniff, no framing, same-origin referrers) on an HTML
/// body.
fn html_response(
    status: StatusCode,
    body: impl Into<axum::body::Body>,
    cache: &'static str,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::console::CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Whether the request's `If-None-Match` names `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(tag) = etag.to_str().ok() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// A pre-rendered page, or 304 when the client has it.
fn cached_page(headers: &HeaderMap, page: &Page, cache: &'static str) -> Response {
    let mut response = if not_modified(headers, &page.etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        security_headers(r.headers_mut());
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        r
    } else {
        html_response(StatusCode::OK, page.body.clone(), cache)
    };
    response
        .headers_mut()
        .insert(header::ETAG, page.etag.clone());
    response
}

/// A static file with its validator.
fn asset(headers: &HeaderMap, body: &'static str, content_type: &'static str) -> Response {
    static TAGS: std::sync::OnceLock<(HeaderValue, HeaderValue)> = std::sync::OnceLock::new();
    let (css, js) =
        TAGS.get_or_init(|| (etag_of(SITE_CSS.as_bytes()), etag_of(SITE_JS.as_bytes())));
    let etag = if std::ptr::eq(body, SITE_CSS) {
        css
    } else {
        js
    };
    let mut response = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600, must-revalidate"),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Handlers

#[utoipa::path(get, path = "/", tag = "pages",
    summary = "the residents' FAQ home (HTML): search, topics, tools, hotlines",
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
    ))]
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let site = site(&state.assistant());
    cached_page(&headers, &site.home, "no-cache")
}

#[utoipa::path(get, path = "/assets/site.css", tag = "pages", summary = "the residents' pages' stylesheet",
    responses((status = 200, description = "the stylesheet", content_type = "text/css", body = String)))]
async fn site_css(headers: HeaderMap) -> Response {
    asset(&headers, SITE_CSS, "text/css; charset=utf-8")
}

#[utoipa::path(get, path = "/assets/site.js", tag = "pages", summary = "the residents' pages' script (optional: search as you type, 大字, copy link, print)",
    responses((status = 200, description = "the script", content_type = "text/javascript", body = String)))]
async fn site_js(headers: HeaderMap) -> Response {
    asset(&headers, SITE_JS, "text/javascript; charset=utf-8")
}

/// The query of the search page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// the question
    q: Option<String>,
}

#[utoipa::path(get, path = "/faq", tag = "pages",
    summary = "the FAQ search for residents (HTML); a question nothing answers lands in the agents' inbox",
    params(SearchQuery),
    responses(
        (status = 200, description = "the results page", content_type = "text/html", body = String),
        (status = 303, description = "no question: to the home page", headers(("Location" = String))),
        (status = 429, description = "rate limited; see Retry-After"),
    ))]
async fn search_page(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let q = query
        .ok()
        .and_then(|Query(p)| p.q)
        .map(|q| q.trim().chars().take(MAX_QUERY_CHARS).collect::<String>())
        .unwrap_or_default();
    if q.is_empty() {
        return see_other("/");
    }
    let assistant = state.assistant();
    let result = assistant.search.search(&q, SEARCH_LIMIT);
    if !result.answered && first_time(&q) {
        let kind = if result.out_of_scope.is_some() {
            "out_of_scope"
        } else {
            "unanswered"
        };
        if let Err(e) = state.store().add_unanswered(&q, kind).await {
            // the page is still useful; the store error is logged once a minute
            crate::throttle::store_error(&e, "recording an unanswered search");
        }
    }
    html_response(
        StatusCode::OK,
        search_html(&assistant, &q, &result).into_string(),
        "private, no-store",
    )
}

/// Whether `q` was not recorded in the inbox in the last [`INBOX_REPEAT`] (a reload, a
/// shared link opened twice); remembers it.
fn first_time(q: &str) -> bool {
    static SEEN: Mutex<Option<HashMap<[u8; 32], Instant>>> = Mutex::new(None);
    let key: [u8; 32] = Sha256::digest(crate::text::normalize(q).as_bytes()).into();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    if seen.len() > 10_000 {
        seen.retain(|_, at| now.duration_since(*at) < INBOX_REPEAT);
        if seen.len() > 10_000 {
            // a flood of distinct questions: forget them rather than grow
            seen.clear();
        }
    }
    match seen.get(&key) {
        Some(at) if now.duration_since(*at) < INBOX_REPEAT => false,
        _ => {
            seen.insert(key, now);
            true
        }
    }
}

/// The query of an entry page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EntryQuery {
    /// `thanks` after feedback was sent
    feedback: Option<String>,
}

#[utoipa::path(get, path = "/faq/{id}", tag = "pages", summary = "one FAQ entry for residents (HTML)",
    params(("id" = String, Path, description = "the entry's id"), EntryQuery),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
        (status = 404, description = "no such entry (a page)", content_type = "text/html", body = String),
    ))]
async fn entry_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<EntryQuery>, QueryRejection>,
) -> Response {
    let site = site(&state.assistant());
    let Some((page, thanked)) = id.ok().and_then(|Path(id)| site.entries.get(&id)) else {
        return not_found_page(&state.assistant());
    };
    let thanks = query
        .ok()
        .and_then(|Query(q)| q.feedback)
        .is_some_and(|f| f == "thanks");
    if thanks {
        return cached_page(&headers, thanked, "no-store");
    }
    cached_page(&headers, page, "public, max-age=300")
}

/// The feedback form.
#[derive(Deserialize, utoipa::ToSchema)]
struct FeedbackForm {
    /// `true` (有用) or `false` (没用)
    #[schema(value_type = String)]
    helpful: Option<String>,
}

#[utoipa::path(post, path = "/faq/{id}/feedback", tag = "pages", summary = "有用/没用 for an entry (a form)",
    params(("id" = String, Path, description = "the entry's id")),
    request_body(content = FeedbackForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "stored: back to the entry, with thanks", headers(("Location" = String))),
        (status = 400, description = "not a feedback form (a page)", content_type = "text/html", body = String),
        (status = 404, description = "no such entry (a page)", content_type = "text/html", body = String),
        (status = 429, description = "rate limited; see Retry-After"),
        (status = 503, description = "database unavailable (a page)", content_type = "text/html", body = String),
    ))]
async fn feedback(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    form: Result<Form<FeedbackForm>, FormRejection>,
) -> Response {
    let assistant = state.assistant();
    let Some(entry) = id.ok().and_then(|Path(id)| assistant.knowledge.faq(&id)) else {
        return not_found_page(&assistant);
    };
    let helpful = match form.ok().and_then(|Form(f)| f.helpful).as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return message_page(
                &assistant,
                StatusCode::BAD_REQUEST,
                "没有收到您的评价",
                "请回到问答页面，点“有用”或“没用”。",
                Some(&entry.id),
            );
        }
    };
    match state
        .store()
        .add_feedback(None, Some(&entry.id), helpful, None)
        .await
    {
        Ok(_) => see_other(&format!("/faq/{}?feedback=thanks#feedback", entry.id)),
        Err(e) => {
            crate::throttle::store_error(&e, "storing feedback from the FAQ page");
            message_page(
                &assistant,
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时没能记下您的评价",
                "服务暂时无法保存，请稍后再试。",
                Some(&entry.id),
            )
        }
    }
}

#[utoipa::path(get, path = "/faq/{id}/qr.svg", tag = "pages", summary = "a QR code of the entry's address (SVG)",
    params(("id" = String, Path, description = "the entry's id")),
    responses(
        (status = 200, description = "the QR code", content_type = "image/svg+xml", body = String),
        (status = 400, description = "a Host header that is not a host name (a page)", content_type = "text/html", body = String),
        (status = 404, description = "no such entry (a page)", content_type = "text/html", body = String),
    ))]
async fn qr_svg(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let assistant = state.assistant();
    let Some(entry) = id.ok().and_then(|Path(id)| assistant.knowledge.faq(&id)) else {
        return not_found_page(&assistant);
    };
    let Some(base) = public_base(&headers) else {
        return message_page(
            &assistant,
            StatusCode::BAD_REQUEST,
            "无法生成二维码",
            "请求的网址不正确，请从本站页面点击“二维码”。",
            Some(&entry.id),
        );
    };
    let url = format!("{base}/faq/{}", entry.id);
    let Ok(code) = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
    else {
        return not_found_page(&assistant);
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let mut response = svg.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    security_headers(h);
    // the address comes from the request's Host: never from a shared cache
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

#[utoipa::path(get, path = "/faq/{id}/qr", tag = "pages", summary = "the entry's QR code on a page to print (HTML)",
    params(("id" = String, Path, description = "the entry's id")),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 404, description = "no such entry (a page)", content_type = "text/html", body = String),
    ))]
async fn qr_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let assistant = state.assistant();
    let Some(e) = id.ok().and_then(|Path(id)| assistant.knowledge.faq(&id)) else {
        return not_found_page(&assistant);
    };
    // the address as the QR code encodes it (nothing when the Host is not a host name)
    let url = public_base(&headers).map(|base| format!("{base}/faq/{}", e.id));
    let content = html! {
        nav.crumbs.no-print aria-label="位置" {
            a href="/" { "首页" } " › " a href=(format!("/faq/{}", e.id)) { "返回问答" }
        }
        section.qr-sheet {
            h1 { (e.question) }
            p.lead { "用手机微信或相机扫描下面的二维码，查看这个问题的解答。" }
            img #qr-image src=(format!("/faq/{}/qr.svg", e.id)) width="240" height="240"
                alt=(format!("二维码：{}", url.as_deref().unwrap_or("本页地址")));
            @if let Some(url) = &url { p.qr-url { (url) } }
            p.brief-line { (e.brief) }
        }
        p.no-print { button #print type="button" hidden { "打印" } }
    };
    html_response(
        StatusCode::OK,
        layout(
            &format!("二维码 · {}", e.question),
            &e.brief,
            content,
            false,
        )
        .into_string(),
        "private, no-cache",
    )
}

/// This server's address as the client reached it: `X-Forwarded-Proto` (behind an HTTPS
/// proxy) or `http`, and the `Host` header when it is a plain host name or address with an
/// optional port.
pub fn public_base(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        return None;
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------------------------
// The tools

/// Which tool a form is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Checklist,
    Estimate,
}

impl Tool {
    fn path(self) -> &'static str {
        match self {
            Tool::Checklist => "/tools/checklist",
            Tool::Estimate => "/tools/estimate",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Tool::Checklist => "备案材料清单",
            Tool::Estimate => "医保报销估算",
        }
    }

    /// The dialog whose questions the form asks.
    fn dialog(self) -> &'static str {
        match self {
            Tool::Checklist => "filing",
            Tool::Estimate => "estimate",
        }
    }

    /// The form's fields (slots) beyond the dialog's own questions.
    fn extra(self) -> &'static [&'static str] {
        match self {
            Tool::Checklist => &[],
            Tool::Estimate => &["class_b", "admissions_before", "cumulative_eligible_before"],
        }
    }
}

/// A hint shown under a field's label.
fn hint(tool: Tool, slot: &str) -> Option<&'static str> {
    Some(match (tool, slot) {
        (Tool::Estimate, "employment") => "参加职工医保的填写。",
        (Tool::Estimate, "category") => "参加城乡居民医保的填写。",
        (Tool::Estimate, "filed") => "没有备案的，选“还没有备案”。",
        (Tool::Estimate, "emergency") => "已经备案的可以不填。",
        (Tool::Estimate, "self_pay") => "不清楚可以不填，按 0 计算。",
        (Tool::Estimate, "class_b") => "不清楚可以不填，按 0 计算。",
        (Tool::Estimate, "admissions_before") => "只估算住院时需要；不清楚可以不填。",
        (Tool::Estimate, "cumulative_eligible_before") => {
            "今年之前住过院的才需要填；不清楚可以不填。"
        }
        (Tool::Estimate, "total") => "例如 50000 或 5万。",
        (Tool::Estimate, "outpatient_eligible_before") => {
            "估算门诊、今年之前看过门诊的才需要填；不清楚可以不填。"
        }
        (Tool::Checklist, "stage") => "还没去看病、正在住院，或已经出院自己垫付了。",
        _ => return None,
    })
}

/// A field that applies only after another answer (`slot=value`): the script hides it
/// while that answer is something else; without the script every field shows.
fn show_if(tool: Tool, slot: &str) -> Option<&'static str> {
    match (tool, slot) {
        (Tool::Estimate, "employment") => Some("scheme=employee"),
        (Tool::Estimate, "category") => Some("scheme=resident"),
        (Tool::Estimate, "emergency") => Some("filed=false"),
        (Tool::Estimate, "cumulative_eligible_before" | "admissions_before") => {
            Some("visit=inpatient")
        }
        (Tool::Estimate, "outpatient_eligible_before") => Some("visit=outpatient"),
        _ => None,
    }
}

/// One field of a tool's form.
struct Field {
    slot: String,
    /// The slot's short title (the summary of the answers above a result).
    title: String,
    label: String,
    kind: SlotKind,
    /// (value, label) of a choice.
    options: Vec<(String, String)>,
    hint: Option<&'static str>,
}

/// A dialog's question as a form label: the question without instructions meant for a chat
/// ("不清楚请回复…").
fn plain_question(ask: &str) -> String {
    let mut out = String::new();
    for sentence in ask.split_inclusive(['。', '？', '！']) {
        if sentence.contains("回复") || sentence.contains("告诉我") {
            break;
        }
        out.push_str(sentence);
    }
    let out = out.trim();
    // an example in brackets is the field's hint, not its label
    let out = match out.find("（例如") {
        Some(at) => &out[..at],
        None => out,
    };
    out.to_string()
}

/// The fields of a tool: the dialog's questions in its order, then the extra ones.
fn fields(a: &Assistant, tool: Tool) -> Vec<Field> {
    let slots = &a.dialogs.slots;
    let mut out: Vec<Field> = Vec::new();
    let mut add = |slot: &str, ask: Option<&str>, accept: Option<&[String]>| {
        if out.iter().any(|f| f.slot == slot) {
            return;
        }
        let Some(def) = slots.get(slot) else {
            return;
        };
        let label = ask
            .map(plain_question)
            .filter(|l| !l.is_empty() && l.chars().count() <= 40)
            .unwrap_or_else(|| def.title.clone());
        let options = def
            .values
            .iter()
            .filter(|v| !v.hidden && accept.is_none_or(|a| a.contains(&v.value)))
            .map(|v| (v.value.clone(), v.label.clone()))
            .collect();
        out.push(Field {
            slot: slot.to_string(),
            title: def.title.clone(),
            label,
            kind: def.kind,
            options,
            hint: hint(tool, slot),
        });
    };
    if let Some(dialog) = a.dialogs.get(tool.dialog()) {
        for step in &dialog.steps {
            if let Some(slot) = &step.slot {
                add(slot, Some(&step.ask), step.accept.as_deref());
            }
        }
    }
    for slot in tool.extra() {
        add(slot, None, None);
    }
    out
}

/// What a form was filled with, and what was wrong with it.
#[derive(Default)]
struct Filled {
    values: BTreeMap<String, String>,
    /// Errors by field ("" for the form as a whole).
    errors: BTreeMap<String, String>,
    /// The result's text (the chat's words), when there is one.
    result: Option<String>,
    /// Whom to ask, under the result.
    contact: Option<String>,
}

#[utoipa::path(get, path = "/tools/checklist", tag = "pages", summary = "the filing checklist as a form (HTML)",
    responses(
        (status = 200, description = "the form", content_type = "text/html", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
    ))]
async fn checklist_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let site = site(&state.assistant());
    cached_page(&headers, &site.checklist, "no-cache")
}

#[utoipa::path(get, path = "/tools/estimate", tag = "pages", summary = "the estimate as a form (HTML)",
    responses(
        (status = 200, description = "the form", content_type = "text/html", body = String),
        (status = 304, description = "not modified (If-None-Match)"),
    ))]
async fn estimate_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let site = site(&state.assistant());
    cached_page(&headers, &site.estimate, "no-cache")
}

#[utoipa::path(post, path = "/tools/checklist", tag = "pages",
    summary = "the checklist for the form's answers (HTML; fields as the filing dialog's slots)",
    request_body(content = BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the checklist, or the form with a message next to each field to fix", content_type = "text/html", body = String),
        (status = 429, description = "rate limited; see Retry-After"),
    ))]
async fn checklist_post(
    State(state): State<AppState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    tool_post(&state.assistant(), Tool::Checklist, form)
}

#[utoipa::path(post, path = "/tools/estimate", tag = "pages",
    summary = "the estimate for the form's answers (HTML; fields as the estimate dialog's slots)",
    request_body(content = BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the estimate, or the form with a message next to each field to fix", content_type = "text/html", body = String),
        (status = 429, description = "rate limited; see Retry-After"),
    ))]
async fn estimate_post(
    State(state): State<AppState>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    tool_post(&state.assistant(), Tool::Estimate, form)
}

fn tool_post(
    a: &Arc<Assistant>,
    tool: Tool,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let filled = match form {
        Ok(Form(pairs)) => fill(a, tool, &pairs),
        Err(_) => Filled {
            errors: BTreeMap::from([(
                String::new(),
                "没有收到表格内容，请在下面填写后再提交。".to_string(),
            )]),
            ..Filled::default()
        },
    };
    html_response(
        StatusCode::OK,
        tool_html(a, tool, &filled).into_string(),
        "private, no-store",
    )
}

/// Reads the form's answers (only the tool's own fields), checks each, then asks the engine.
fn fill(a: &Assistant, tool: Tool, pairs: &[(String, String)]) -> Filled {
    let fields = fields(a, tool);
    let mut filled = Filled::default();
    let mut slots: BTreeMap<String, String> = BTreeMap::new();
    for field in &fields {
        let Some((_, raw)) = pairs.iter().find(|(k, _)| *k == field.slot) else {
            continue;
        };
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let raw: String = raw.chars().take(40).collect();
        filled.values.insert(field.slot.clone(), raw.clone());
        match field.kind {
            SlotKind::Choice => {
                if field.options.iter().any(|(v, _)| *v == raw) {
                    slots.insert(field.slot.clone(), raw);
                } else {
                    filled.errors.insert(
                        field.slot.clone(),
                        format!("请从列表里选择“{}”。", field.label.trim_end_matches('？')),
                    );
                }
            }
            SlotKind::Money => match crate::dialog::money::parse_amount(&raw) {
                Ok(amount) => {
                    slots.insert(field.slot.clone(), amount.to_string());
                }
                Err(e) => {
                    filled.errors.insert(field.slot.clone(), e.to_string());
                }
            },
            SlotKind::Integer | SlotKind::Text => {
                slots.insert(field.slot.clone(), raw);
            }
        }
    }
    if !filled.errors.is_empty() {
        return filled;
    }
    // what the dialogs set on the way (estimate.toml's `set`): no filing means not filed,
    // and filed means not an emergency admission
    if tool == Tool::Estimate {
        if slots.get("filing_type").is_some_and(|t| t == "none") {
            slots
                .entry("filed".to_string())
                .or_insert_with(|| "false".to_string());
        }
        if slots.get("filed").is_some_and(|f| f == "true") {
            slots
                .entry("emergency".to_string())
                .or_insert_with(|| "false".to_string());
        }
    }
    let outcome = match tool {
        Tool::Checklist => a.checklist_for(&slots).map(|(_, text)| text),
        Tool::Estimate => a
            .estimate_for(&slots)
            .map(|e| crate::render::estimate_text(&e)),
    };
    match outcome {
        Ok(text) => {
            filled.result = Some(text);
            filled.contact = Some(a.contact_for(&slots));
        }
        Err(e) => {
            let field = if fields.iter().any(|f| f.slot == e.field) {
                e.field.clone()
            } else {
                String::new()
            };
            let message = match tool {
                Tool::Checklist => format!("还缺少信息，没法列出清单：{}", e.message),
                Tool::Estimate => format!(
                    "这种情况暂时没法估算：{}具体报销金额请咨询{}。",
                    e.message,
                    a.contact_for(&slots)
                ),
            };
            filled.errors.insert(field, message);
        }
    }
    filled
}

// ---------------------------------------------------------------------------------------------
// HTML

/// The page around `content`.
fn layout(title: &str, description: &str, content: Markup, og: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                meta name="description" content=(description);
                @if og {
                    meta property="og:type" content="article";
                    meta property="og:title" content=(title);
                    meta property="og:description" content=(description);
                    meta property="og:site_name" content=(SITE_NAME);
                }
                link rel="stylesheet" href="/assets/site.css";
                script src="/assets/site.js" {}
            }
            body {
                a.skip href="#main" { "跳到正文" }
                header.site-header {
                    div.bar {
                        a.brand href="/" { (SITE_NAME) }
                        button #big-toggle .big-toggle type="button" aria-pressed="false" hidden { "大字" }
                    }
                }
                main #main { (content) }
                footer.site-footer {
                    p { "本站内容依据公开的医保政策文件整理，仅供参考，办理时以参保地医保部门的答复为准。" }
                    p.footer-links {
                        a #docs-link href="/docs" { "接口文档" }
                        " · "
                        a #console-link href="/console" { "热线坐席入口" }
                    }
                }
            }
        }
    }
}

/// The search box: a plain GET form; the script adds results as you type.
fn search_box(q: &str) -> Markup {
    html! {
        form #search-form .search action="/faq" method="get" role="search" {
            label for="q" { "输入您的问题" }
            div.search-row {
                input #q type="search" name="q" value=(q) maxlength="200" autocomplete="off"
                    placeholder="例如：异地就医备案要带什么材料";
                button type="submit" { "搜索" }
            }
            div #live-results .live aria-live="polite" {}
        }
    }
}

/// The contact lines of the regions (`hotline`, `counters` of `knowledge/regions/`), or of
/// one region; a region without a hotline says whom to ask.
fn contacts(a: &Assistant, only: Option<&str>) -> Markup {
    html! {
        ul.contacts {
            @for r in a.checklist_texts.regions.iter().filter(|r| only.is_none_or(|o| o == r.id)) {
                li {
                    strong { (r.label) "参保" }
                    "："
                    @if let Some(h) = &r.hotline {
                        (r.name) "医保咨询电话 "
                        a.tel href=(format!("tel:{}", h.replace('-', ""))) { (h) }
                    } @else {
                        "请咨询" (r.name) "医保经办机构（本站暂无核实过的咨询电话）"
                    }
                    @if let Some(c) = &r.counters {
                        "；窗口：" (c)
                    }
                }
            }
        }
    }
}

/// The entries of the home page, by topic.
fn topics_of(a: &Assistant) -> Vec<(&'static Topic, Vec<&FaqEntry>)> {
    let mut out: Vec<(&'static Topic, Vec<&FaqEntry>)> =
        TOPICS.iter().map(|t| (t, Vec::new())).collect();
    let mut other = Vec::new();
    for e in &a.knowledge.faqs {
        let t = topic_of(e);
        match out.iter_mut().find(|(x, _)| x.id == t.id) {
            Some((_, list)) => list.push(e),
            None => other.push(e),
        }
    }
    if !other.is_empty() {
        out.push((&OTHER_TOPIC, other));
    }
    out
}

fn home_html(a: &Assistant) -> Markup {
    let content = html! {
        h1 { (SITE_NAME) }
        p.lead { "为苏州、张家港参保人解答异地就医问题：备案、直接结算、零星（手工）报销、刷卡问题。" }
        (search_box(""))
        section.tools aria-labelledby="tools-title" {
            h2 #tools-title { "办事小工具" }
            ul.tool-links {
                li { a href="/tools/checklist" { strong { "备案材料清单" } span { "按您的情况列出要准备的材料和办理渠道" } } }
                li { a href="/tools/estimate" { strong { "医保报销估算" } span { "估算住院、门诊费用医保大概能报多少" } } }
            }
        }
        nav.topic-nav aria-label="问题分类" {
            @for (t, _) in topics_of(a) {
                a href=(format!("#topic-{}", t.id)) { (t.name) }
            }
            a.phone href="#hotlines" { "咨询电话" }
        }
        @for (t, entries) in topics_of(a) {
            section.topic #(format!("topic-{}", t.id)) aria-labelledby=(format!("topic-{}-title", t.id)) {
                h2 #(format!("topic-{}-title", t.id)) { (t.name) }
                ul.questions {
                    @for e in entries {
                        li { a href=(format!("/faq/{}", e.id)) { (e.question) } }
                    }
                }
            }
        }
        section #hotlines .hotlines aria-labelledby="hotlines-title" {
            h2 #hotlines-title { "咨询电话" }
            (contacts(a, None))
            @if let Some(e) = a.knowledge.faq("contacts") {
                p { a href=(format!("/faq/{}", e.id)) { "更多电话和窗口地址：" (e.question) } }
            }
        }
    };
    layout(
        SITE_NAME,
        "苏州、张家港参保人异地就医问答：备案、直接结算、零星报销、刷卡问题，备案材料清单和报销估算。",
        content,
        true,
    )
}

/// A paragraph of an answer: its lines.
fn paragraph(p: &str) -> Markup {
    let lines: Vec<&str> = p.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    html! {
        p {
            @for (i, line) in lines.iter().enumerate() {
                @if i > 0 { br; }
                (line)
            }
        }
    }
}

/// A document an entry cites, once, with the places cited in it.
struct Cited {
    title: String,
    places: Vec<String>,
    date: Option<String>,
    tier: crate::knowledge::Tier,
    url: Option<String>,
}

/// The documents an entry cites, each once with its places.
fn sources(a: &Assistant, e: &FaqEntry) -> Vec<Cited> {
    let mut out: Vec<Cited> = Vec::new();
    for p in a.knowledge.provenance(e) {
        let place = p
            .source
            .split_once(' ')
            .map(|(_, place)| place.trim().to_string())
            .filter(|p| !p.is_empty());
        match out.iter_mut().find(|d| d.title == p.document) {
            Some(d) => {
                if let Some(place) = place
                    && !d.places.contains(&place)
                {
                    d.places.push(place);
                }
            }
            None => out.push(Cited {
                title: p.document,
                places: place.into_iter().collect(),
                date: p.date.map(|d| d.to_string()),
                tier: p.tier,
                url: p.url,
            }),
        }
    }
    out
}

fn entry_html(a: &Assistant, e: &FaqEntry, thanked: bool) -> Markup {
    let topic = topic_of(e);
    let content = html! {
        nav.crumbs aria-label="位置" {
            a href="/" { "首页" }
            " › "
            a href=(format!("/#topic-{}", topic.id)) { (topic.name) }
        }
        article.entry {
            h1 { (e.question) }
            section.brief aria-label="简要回答" {
                p { (e.brief) }
            }
            section.full aria-labelledby="full-title" {
                h2 #full-title { "详细解答" }
                @for p in e.answer.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
                    (paragraph(p))
                }
            }
            section.sources aria-labelledby="sources-title" {
                h2 #sources-title { "依据" }
                ul {
                    @for Cited { title, places, date, tier, url } in sources(a, e) {
                        li {
                            @if let Some(url) = url {
                                a href=(url) rel="noopener noreferrer" { "《" (title) "》" }
                            } @else {
                                "《" (title) "》"
                            }
                            @if !places.is_empty() { " " (places.join("、")) }
                            span.meta {
                                "（"
                                @if let Some(d) = date { (d) "，" }
                                (tier.label())
                                "）"
                            }
                        }
                    }
                }
                p.meta { "本条最近核对：" (e.as_of.to_string()) }
                @if a.knowledge.tier(e) == crate::knowledge::Tier::Secondary {
                    p.warn { "本条只找到网络资料，未见官方原文，办理前请向参保地医保部门确认。" }
                }
            }
            @let related: Vec<&FaqEntry> = e.related.iter().filter_map(|id| a.knowledge.faq(id)).collect();
            @if !related.is_empty() {
                section.related aria-labelledby="related-title" {
                    h2 #related-title { "相关问题" }
                    ul.questions {
                        @for r in related {
                            li { a href=(format!("/faq/{}", r.id)) { (r.question) } }
                        }
                    }
                }
            }
            section #feedback .feedback aria-labelledby="feedback-title" {
                h2 #feedback-title { "这个回答对您有用吗？" }
                @if thanked {
                    p #feedback-thanks role="status" { "谢谢您的反馈！我们会根据大家的评价改进回答。" }
                } @else {
                    form method="post" action=(format!("/faq/{}/feedback", e.id)) {
                        button #helpful type="submit" name="helpful" value="true" { "有用" }
                        button #not-helpful type="submit" name="helpful" value="false" { "没用" }
                    }
                }
            }
            section.share aria-labelledby="share-title" {
                h2 #share-title { "分享" }
                p #page-url-line hidden {
                    "本页地址：" span #page-url {}
                }
                p.share-actions {
                    a #qr-link .button-link href=(format!("/faq/{}/qr", e.id)) { "二维码（打印贴在窗口）" }
                    button #copy-link type="button" hidden { "复制链接" }
                    span #copy-status role="status" {}
                }
            }
            section.ask aria-labelledby="ask-title" {
                h2 #ask-title { "还有问题？" }
                (contacts(a, None))
            }
        }
    };
    layout(
        &format!("{} · {SITE_NAME}", e.question),
        &e.brief,
        content,
        true,
    )
}

fn search_html(a: &Assistant, q: &str, result: &SearchResult) -> Markup {
    let hits: Vec<&FaqEntry> = result
        .hits
        .iter()
        .filter_map(|h| a.knowledge.faq(&h.id))
        .collect();
    // the region the question names, for its hotline
    let region = a
        .checklist_texts
        .regions
        .iter()
        .filter(|r| q.contains(&r.label))
        .map(|r| r.id.as_str())
        .collect::<Vec<_>>();
    let region = (region.len() == 1).then(|| region[0]);
    // the topics of the nearest entries (all topics when none is near)
    let mut closest: Vec<&'static Topic> = Vec::new();
    for e in &hits {
        let t = topic_of(e);
        if !closest.iter().any(|x| x.id == t.id) {
            closest.push(t);
        }
    }
    if closest.is_empty() {
        closest = TOPICS.iter().collect();
    }
    closest.truncate(3);
    let content = html! {
        h1 { "搜索结果" }
        (search_box(q))
        @if result.answered && !hits.is_empty() {
            section #answer .answer aria-labelledby="answer-title" {
                h2 #answer-title { "最符合的回答" }
                @let top = hits[0];
                h3 { a href=(format!("/faq/{}", top.id)) { (top.question) } }
                p { (top.brief) }
                p { a.more href=(format!("/faq/{}", top.id)) { "查看详细解答" } }
            }
            @let also: Vec<&FaqEntry> = result.also.iter().filter_map(|h| a.knowledge.faq(&h.id)).chain(hits[1..].iter().copied()).collect();
            @if !also.is_empty() {
                section.related aria-labelledby="also-title" {
                    h2 #also-title { "其他相关问题" }
                    ul.questions {
                        @for e in also {
                            li { a href=(format!("/faq/{}", e.id)) { (e.question) } }
                        }
                    }
                }
            }
        } @else {
            section #no-answer .no-answer aria-labelledby="no-answer-title" {
                h2 #no-answer-title { "抱歉，没有找到可靠的答案" }
                @if let Some(topic) = result.out_of_scope.as_deref().and_then(|t| a.knowledge.out_of_scope_topic(t)) {
                    p #referral { (topic.referral) }
                } @else {
                    p { "这个问题我们的问答库暂时回答不了。您的问题已经记下，我们会据此补充问答。" }
                }
                h3 { "可以看看这些分类" }
                ul #closest-topics .topic-links {
                    @for t in &closest {
                        li { a href=(format!("/#topic-{}", t.id)) { (t.name) } }
                    }
                }
                h3 { "也可以打电话咨询" }
                (contacts(a, region))
            }
        }
    };
    layout(
        &format!("搜索结果 · {SITE_NAME}"),
        "在异地就医问答中搜索。",
        content,
        false,
    )
}

/// The chat's text of a checklist or estimate as lists: numbered lines in an ordered list,
/// "· " lines in a list, other lines as paragraphs (a line ending in "：" as a heading).
fn text_html(text: &str) -> Markup {
    enum Block<'a> {
        Ol(Vec<&'a str>),
        Ul(Vec<&'a str>),
        P(&'a str),
        H(&'a str),
        Basis(Vec<&'a str>),
        Key(&'a str),
    }
    let mut blocks: Vec<Block> = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "医保报销估算（仅供参考）")
    {
        let numbered = line
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .map(|(_, rest)| rest);
        if let Some(item) = numbered {
            match blocks.last_mut() {
                Some(Block::Ol(items)) => items.push(item),
                _ => blocks.push(Block::Ol(vec![item])),
            }
        } else if let Some(item) = line.strip_prefix("· ") {
            match blocks.last_mut() {
                Some(Block::Ul(items)) => items.push(item),
                _ => blocks.push(Block::Ul(vec![item])),
            }
        } else if let Some(channels) = line.strip_prefix("可以在这些地方办理：") {
            blocks.push(Block::H("可以在这些地方办理："));
            blocks.push(Block::Ul(channels.split('；').map(str::trim).collect()));
        } else if line.starts_with("医保基金支付：") || line.starts_with("个人负担：") {
            blocks.push(Block::Key(line));
        } else if let Some(rules) = line.strip_prefix("依据：") {
            // an estimate's basis: every rule, folded
            blocks.push(Block::Basis(rules.split('；').map(str::trim).collect()));
        } else if line.ends_with('：') {
            blocks.push(Block::H(line));
        } else {
            blocks.push(Block::P(line));
        }
    }
    html! {
        @for b in &blocks {
            @match b {
                Block::Ol(items) => ol { @for i in items { li { (i) } } },
                Block::Ul(items) => ul { @for i in items { li { (i) } } },
                Block::H(t) => h3 { (t) },
                Block::P(t) => p { (t) },
                Block::Key(t) => p.key { (t) },
                Block::Basis(rules) => details.basis {
                    summary { "计算依据（" (rules.len()) " 条）" }
                    ul { @for r in rules { li { (r) } } }
                },
            }
        }
    }
}

fn tool_html(a: &Assistant, tool: Tool, filled: &Filled) -> Markup {
    let fields = fields(a, tool);
    let intro = match tool {
        Tool::Checklist => {
            "回答下面几个问题，列出办理异地就医备案（或回参保地零星报销）要准备的材料和办理渠道。"
        }
        Tool::Estimate => {
            "填写下面的情况和费用，估算医保大概能报多少。结果仅供参考，以医保部门实际结算为准。"
        }
    };
    let content = html! {
        nav.crumbs aria-label="位置" { a href="/" { "首页" } " › " (tool.title()) }
        h1 { (tool.title()) }
        @if let Some(text) = &filled.result {
            section #result .result aria-labelledby="result-title" {
                h2 #result-title { (if tool == Tool::Checklist { "您的材料清单" } else { "医保报销估算（仅供参考）" }) }
                p #answers-summary .summary {
                    "按您填写的情况："
                    @for (i, f) in fields.iter().filter(|f| filled.values.contains_key(&f.slot)).enumerate() {
                        @if i > 0 { "；" }
                        @let value = &filled.values[&f.slot];
                        (f.title) " "
                        (f.options.iter().find(|(v, _)| v == value).map_or(value.as_str(), |(_, l)| l.as_str()))
                    }
                }
                (text_html(text))
                @if let Some(c) = &filled.contact {
                    p.contact { "咨询：" (c) }
                }
                p.no-print {
                    button #print type="button" hidden { "打印" }
                    " "
                    a href=(tool.path()) { "重新填写" }
                }
            }
        }
        p.intro.no-print { (intro) }
        @if let Some(e) = filled.errors.get("") {
            p #form-error .error role="alert" { (e) }
        } @else if !filled.errors.is_empty() {
            div #form-error .error-summary role="alert" {
                p { "有 " (filled.errors.len()) " 处需要修改：" }
                ul {
                    @for f in fields.iter().filter(|f| filled.errors.contains_key(&f.slot)) {
                        li { a href=(format!("#f-{}", f.slot)) { (f.label.trim_end_matches('？')) } "：" (filled.errors[&f.slot]) }
                    }
                }
            }
        }
        form #tool-form .tool.no-print method="post" action=(tool.path()) novalidate {
            @for f in &fields {
                @let id = format!("f-{}", f.slot);
                @let error = filled.errors.get(&f.slot);
                @let value = filled.values.get(&f.slot).map(String::as_str).unwrap_or("");
                @let described = match (f.hint.is_some(), error.is_some()) {
                    (true, true) => Some(format!("{id}-hint {id}-error")),
                    (true, false) => Some(format!("{id}-hint")),
                    (false, true) => Some(format!("{id}-error")),
                    (false, false) => None,
                };
                div.field.invalid[error.is_some()] data-show-if=[show_if(tool, &f.slot)] {
                    label for=(id) { (f.label) }
                    @if let Some(h) = f.hint { span.hint #(format!("{id}-hint")) { (h) } }
                    @match f.kind {
                        SlotKind::Choice => {
                            select #(id) name=(f.slot) aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")] {
                                option value="" { "请选择" }
                                @for (v, l) in &f.options {
                                    option value=(v) selected[v == value] { (l) }
                                }
                            }
                        }
                        SlotKind::Money => {
                            input #(id) name=(f.slot) type="text" inputmode="decimal" maxlength="20"
                                autocomplete="off" value=(value) aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")];
                        }
                        _ => {
                            input #(id) name=(f.slot) type="text" maxlength="40" autocomplete="off"
                                value=(value) aria-describedby=[described.as_deref()] aria-invalid=[error.map(|_| "true")];
                        }
                    }
                    @if let Some(e) = error { span.error #(format!("{id}-error")) { (e) } }
                }
            }
            button #submit type="submit" { (if tool == Tool::Checklist { "列出清单" } else { "开始估算" }) }
        }
    };
    layout(
        &format!("{} · {SITE_NAME}", tool.title()),
        intro,
        content,
        true,
    )
}

/// A short page with a message (404, a bad form, a store error).
fn message_page(
    a: &Assistant,
    status: StatusCode,
    title: &str,
    text: &str,
    entry: Option<&str>,
) -> Response {
    let content = html! {
        h1 { (title) }
        p { (text) }
        @if let Some(id) = entry { p { a href=(format!("/faq/{id}")) { "返回问答页面" } } }
        p { a href="/" { "回到首页搜索问题" } }
        (search_box(""))
        h2 { "咨询电话" }
        (contacts(a, None))
    };
    html_response(
        status,
        layout(&format!("{title} · {SITE_NAME}"), text, content, false).into_string(),
        "no-store",
    )
}

/// The page of a request over the per-IP limit (429 with `Retry-After`).
pub fn limited_page(a: &Assistant, message: &str, retry_after_secs: u64) -> Response {
    let mut response = message_page(
        a,
        StatusCode::TOO_MANY_REQUESTS,
        "请求太频繁了",
        message,
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn not_found_page(a: &Assistant) -> Response {
    message_page(
        a,
        StatusCode::NOT_FOUND,
        "没有找到这个问题",
        "这个问答可能已经调整或合并。您可以在首页搜索，或按分类查找。",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_instructions_are_cut_from_labels() {
        assert_eq!(
            plain_question(
                "其中医保目录外、需要全自费的金额大概多少？不清楚请回复“不清楚”（按0计算）。"
            ),
            "其中医保目录外、需要全自费的金额大概多少？"
        );
        assert_eq!(
            plain_question("医疗总费用是多少？（例如：50000、5万）"),
            "医疗总费用是多少？"
        );
    }

    #[test]
    fn validators_match_with_or_without_weakness() {
        let tag = etag_of(b"page");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &tag));
        let weak = format!("\"x\", W/{}", tag.to_str().unwrap());
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&weak).unwrap());
        assert!(not_modified(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&h, &tag));
    }

    #[test]
    fn the_base_address_is_a_host_or_nothing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("Yidi.example.cn:8443"),
        );
        assert_eq!(public_base(&h).unwrap(), "http://yidi.example.cn:8443");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(public_base(&h).unwrap(), "https://yidi.example.cn:8443");
        h.insert(header::HOST, HeaderValue::from_static("evil.cn/<svg>"));
        assert_eq!(public_base(&h), None);
    }

    #[test]
    fn text_becomes_lists() {
        let html = text_html("办理需要准备：\n1. 身份证\n2. 社保卡\n请注意：\n· 早办\n结尾。")
            .into_string();
        assert_eq!(
            html,
            "<h3>办理需要准备：</h3><ol><li>身份证</li><li>社保卡</li></ol>\
             <h3>请注意：</h3><ul><li>早办</li></ul><p>结尾。</p>"
        );
    }
}
