//! The WeChat Official Account (公众号) channel: the "server configuration" endpoint of an
//! account (developer mode), on the same [`Conversations`] as the HTTP API and Telegram.
//!
//! A thin adapter. Every user is one session, `wechat:{openid}`, stored through
//! [`Conversations`] under a keyed hash of it ([`WeChat::stored_session`]; the database
//! never holds an OpenID), so any replica continues any conversation.
//!
//! | request | answer |
//! |---|---|
//! | `GET {path}?signature&timestamp&nonce&echostr` | `echostr` when the signature matches (WeChat's check of the URL) |
//! | `POST {path}` text message | [`Conversations::turn`] (a bare "1", "2" becomes the label of that choice of the dialog question being asked) |
//! | event `subscribe` | the welcome ([`crate::Assistant::welcome`]) and the menu |
//! | event `CLICK`, keys `filing`, `estimate`, `card` | that dialog at its first question ([`Conversations::start`]) |
//! | event `CLICK`, key `reset` | clears the conversation ([`Conversations::reset`]) |
//! | image, voice, video, location, link, file… | a note that only text is understood |
//! | event `unsubscribe` (and `VIEW`, `SCAN`, `LOCATION`, …) | nothing (`success`) |
//!
//! **Security.** Every request must carry a valid `signature` (plaintext mode) or
//! `msg_signature` (safe mode: the body's `Encrypt` is AES-256-CBC with the EncodingAESKey and
//! must name our app id; see [`crypto`]), a timestamp within five minutes of ours, and a
//! nonce not seen before with another message (WeChat's retries repeat theirs). With an
//! EncodingAESKey configured, plaintext requests are refused. A refused request gets 403 and
//! a log line with the reason, never its content.
//!
//! **Replies.** WeChat waits five seconds for an answer to a POST. The turn runs in a task
//! of its own; when its reply is ready within `reply_deadline` (well inside the window) and
//! fits one message, it is the passive XML reply (encrypted in safe mode). Otherwise the
//! request is answered `success` at once and the reply goes out through the
//! customer-service API ([`api`]; every piece of a long reply, in order). Replies have no
//! buttons: choices and options are numbered lines ([`render`]).
//!
//! **Retries.** WeChat retries a POST that got no answer in time, up to three times, with the
//! same `MsgId` (events: sender + time). The first sight of a message is recorded in the
//! store (`wechat_receipts`, shared by replicas), so a message yields one turn whichever
//! replica each retry reaches; within a process, a retry waits for the same turn's reply.
//! A retry that reaches *another* replica while the first is still working is answered
//! `success`: if the first replica's answer were then lost too, the user would miss that
//! reply (never get two).
//!
//! The per-conversation rate limit (`wechat:{openid}`) applies to messages and menu clicks;
//! turns are counted in the metrics like every channel's, and requests by route and status
//! (`{path}`; refusals are 403s).

pub mod api;
pub mod crypto;
pub mod render;
pub mod xml;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

pub use url::Url;

use crate::assistant::Reply;
use crate::conversation::{Conversations, log_id};
use crate::dialog::engine;
use crate::store::StoreError;

use self::api::Api;
use self::crypto::MessageCrypto;
use self::xml::Incoming;

/// WeChat waits this long for an answer before it retries.
pub const WECHAT_WINDOW: Duration = Duration::from_secs(5);

/// The default wait for a turn before answering `success` and using the customer-service
/// API instead: well inside [`WECHAT_WINDOW`], leaving time for the network.
pub const DEFAULT_REPLY_DEADLINE: Duration = Duration::from_millis(3000);

/// How far a request's timestamp may be from our clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// How long receipts (message keys, nonces) are kept in the store.
const RECEIPT_TTL_MS: i64 = 3_600_000;

/// How long a message's reply is kept in memory for WeChat's retries.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(120);

/// The largest request body read (WeChat's messages are a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

const NOT_TEXT: &str = "抱歉，我目前只能看懂文字消息，暂时看不了图片、语音、视频、位置和文件。\
                        请直接用文字描述您的问题，例如“异地就医备案要带什么材料？”";
const TRY_AGAIN: &str = "抱歉，系统暂时出了点问题，没能处理您的消息。请稍后再发一次。";
const UNKNOWN_MENU: &str =
    "这个菜单项暂时不可用。您可以直接用文字提问，例如“异地就医备案要带什么材料？”";
const MENU_HINT: &str = "也可以点下方菜单：“备案清单”按您的情况列出材料，“报销估算”估算能报多少，\
                         “更多”里有刷卡失败排查和重新开始。";

/// The menu's click keys and what they do (see [`menu`]).
const CLICKS: [(&str, Click); 4] = [
    ("filing", Click::Start("filing")),
    ("estimate", Click::Start("estimate")),
    ("card", Click::Start("card_failure")),
    ("reset", Click::Reset),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Click {
    Start(&'static str),
    Reset,
}

/// The account's custom menu (`menu/create`): the keys of [`CLICKS`]. Top-level names are
/// at most four Chinese characters, as WeChat requires.
pub fn menu() -> Value {
    json!({
        "button": [
            { "type": "click", "name": "备案清单", "key": "filing" },
            { "type": "click", "name": "报销估算", "key": "estimate" },
            {
                "name": "更多",
                "sub_button": [
                    { "type": "click", "name": "刷卡失败排查", "key": "card" },
                    { "type": "click", "name": "重新开始", "key": "reset" }
                ]
            }
        ]
    })
}

/// How the channel is configured (from `[wechat]`; see `yidi.example.toml`).
#[derive(Clone)]
pub struct WeChatSettings {
    /// The Token of the account's server configuration.
    pub token: String,
    pub app_id: String,
    pub app_secret: String,
    /// Safe mode: the EncodingAESKey (43 characters). Without it, plaintext mode.
    pub encoding_aes_key: Option<String>,
    /// WeChat's API server (tests point it at a fake one).
    pub api_url: Url,
    /// The route of the endpoint (`/wechat`).
    pub path: String,
    /// How long a POST waits for its turn before answering `success` (zero: never waits).
    pub reply_deadline: Duration,
    /// How long a request may take in all (`http.request_timeout_secs`): then 503.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for WeChatSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatSettings")
            .field("token", &"<redacted>")
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field(
                "encoding_aes_key",
                &self.encoding_aes_key.as_ref().map(|_| "<redacted>"),
            )
            .field("api_url", &self.api_url.as_str())
            .field("path", &self.path)
            .field("reply_deadline", &self.reply_deadline)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Why the channel cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("wechat.encoding_aes_key: {0}")]
    Key(#[from] crypto::CryptoError),
    #[error("cannot build the HTTP client for WeChat: {0}")]
    Api(#[from] api::ApiError),
}

/// The channel: cheap to clone, shared by the route's handlers and its background tasks.
#[derive(Clone)]
pub struct WeChat {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    path: String,
    reply_deadline: Duration,
    request_timeout: Duration,
    crypto: Option<MessageCrypto>,
    api: Api,
    conversations: Conversations,
    /// Messages whose reply is being made or was made lately, by dedup key.
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// Turns and customer-service sends that outlive their request.
    tasks: TaskTracker,
    last_prune: Mutex<Instant>,
}

struct InFlight {
    delivery: Arc<watch::Sender<Delivery>>,
    since: Instant,
}

/// Where a message's reply goes.
#[derive(Debug, Clone, PartialEq)]
enum Delivery {
    /// Not ready yet.
    Pending,
    /// Ready in time: the passive reply's text.
    Passive(String),
    /// Sent (or being sent) through the customer-service API, or nothing to say: requests
    /// answer `success`.
    Async,
}

/// The session of a WeChat user.
pub fn session_id(openid: &str) -> String {
    format!("wechat:{openid}")
}

impl WeChat {
    pub fn new(
        settings: WeChatSettings,
        conversations: Conversations,
    ) -> Result<WeChat, SetupError> {
        let crypto = settings
            .encoding_aes_key
            .as_deref()
            .map(|key| MessageCrypto::new(key, &settings.app_id))
            .transpose()?;
        let api = Api::new(settings.api_url, &settings.app_id, &settings.app_secret)?;
        Ok(WeChat {
            inner: Arc::new(Inner {
                token: settings.token,
                path: settings.path,
                reply_deadline: settings.reply_deadline,
                request_timeout: settings.request_timeout,
                crypto,
                api,
                conversations: conversations.on_channel("wechat"),
                in_flight: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                last_prune: Mutex::new(Instant::now()),
            }),
        })
    }

    /// Whether messages are encrypted (safe mode).
    pub fn safe_mode(&self) -> bool {
        self.inner.crypto.is_some()
    }

    /// The endpoint as a router, to be merged with the HTTP API's (WeChat wants plain text
    /// and XML, not the API's JSON errors). Requests are counted in the metrics by route.
    pub fn router(&self) -> Router {
        Router::new()
            .route(&self.inner.path, get(verify).post(receive))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(CatchPanicLayer::new())
            // as every route of the server: a request that takes too long is a 503
            .layer(TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                self.inner.request_timeout,
            ))
            .layer(middleware::map_response(response_headers))
            .layer(middleware::from_fn_with_state(self.clone(), observe))
            .with_state(self.clone())
    }

    /// Waits for the turns and customer-service sends still running (call after the HTTP
    /// server stopped taking requests).
    pub async fn shutdown(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    /// Starts (or joins, for a retry) the reply to `msg`.
    fn dispatch(&self, msg: Incoming) -> Arc<watch::Sender<Delivery>> {
        let key = msg.dedup_key();
        let mut map = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.retain(|_, f| f.since.elapsed() < IN_FLIGHT_TTL);
        if let Some(f) = map.get(&key) {
            tracing::info!(session = %log_id(&self.stored_session(&msg.from_user)), "wechat: retry of a message in progress");
            return f.delivery.clone();
        }
        let delivery = Arc::new(watch::Sender::new(Delivery::Pending));
        map.insert(
            key.clone(),
            InFlight {
                delivery: delivery.clone(),
                since: Instant::now(),
            },
        );
        drop(map);
        let this = self.clone();
        let sender = delivery.clone();
        self.inner
            .tasks
            .spawn(async move { this.deliver(key, msg, sender).await });
        delivery
    }

    /// Makes the reply (once across replicas) and delivers it: passively when a request is
    /// still waiting and it fits one message, else through the customer-service API.
    async fn deliver(self, key: String, msg: Incoming, delivery: Arc<watch::Sender<Delivery>>) {
        let session = self.stored_session(&msg.from_user);
        match self
            .inner
            .conversations
            .store
            .claim_receipt(&self.receipt(&key), "")
            .await
        {
            Ok(None) => {}
            Ok(Some(_)) => {
                tracing::info!(session = %log_id(&session), "wechat: message already handled (retry)");
                delivery.send_replace(Delivery::Async);
                return;
            }
            Err(e) => {
                // better a reply than none: the turn itself will tell whether the store works
                tracing::warn!(error = %e, "wechat: cannot record the message id");
            }
        }
        let this = self.clone();
        let openid = msg.from_user.clone();
        // a panic (a bug) costs this message, not the channel
        let pieces = match tokio::spawn(async move { this.respond(msg).await }).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(panic = e.is_panic(), "wechat: a message handler failed");
                vec![TRY_AGAIN.to_string()]
            }
        };
        let mut by_api = Vec::new();
        delivery.send_modify(|d| match d {
            Delivery::Pending if pieces.len() == 1 => *d = Delivery::Passive(pieces[0].clone()),
            Delivery::Pending | Delivery::Async => {
                by_api = pieces;
                *d = Delivery::Async;
            }
            Delivery::Passive(_) => {}
        });
        if by_api.is_empty() {
            return;
        }
        tracing::info!(session = %log_id(&session), pieces = by_api.len(), "wechat: reply by customer-service message");
        for piece in by_api {
            if let Err(e) = self.inner.api.send_text(&openid, &piece).await {
                tracing::error!(session = %log_id(&session), error = %e, "wechat: customer-service message failed");
                return;
            }
        }
    }

    /// Waits up to the deadline for `delivery`: the passive reply, or `None` to answer
    /// `success` (and leave the reply to the customer-service API).
    async fn await_passive(&self, delivery: &watch::Sender<Delivery>) -> Option<String> {
        let deadline = self.inner.reply_deadline;
        if !deadline.is_zero() {
            let mut rx = delivery.subscribe();
            let _ = tokio::time::timeout(deadline, rx.wait_for(|d| *d != Delivery::Pending)).await;
        }
        delivery.send_if_modified(|d| {
            let late = *d == Delivery::Pending;
            if late {
                *d = Delivery::Async;
            }
            late
        });
        match &*delivery.borrow() {
            Delivery::Passive(text) => Some(text.clone()),
            _ => None,
        }
    }

    /// The messages that answer `msg` (none: nothing to say).
    async fn respond(&self, msg: Incoming) -> Vec<String> {
        let c = &self.inner.conversations;
        let session = self.stored_session(&msg.from_user);
        let result = match (msg.msg_type.as_str(), msg.event.as_deref()) {
            ("text", _) => {
                if let Some(note) = self.limited(&session) {
                    return note;
                }
                let text = msg.content.as_deref().unwrap_or("");
                self.answer_text(&session, text).await
            }
            ("event", Some("subscribe")) => {
                tracing::info!(session = %log_id(&session), "wechat: subscribed");
                return vec![format!("{}\n\n{MENU_HINT}", c.assistant().welcome().text)];
            }
            ("event", Some(e)) if e.eq_ignore_ascii_case("click") => {
                if let Some(note) = self.limited(&session) {
                    return note;
                }
                let key = msg.event_key.as_deref().unwrap_or("");
                let click = CLICKS.iter().find(|(k, _)| *k == key).map(|(_, c)| *c);
                tracing::info!(session = %log_id(&session), ?click, "wechat: menu click");
                match click {
                    Some(Click::Start(dialog)) => c.start(&session, dialog).await,
                    Some(Click::Reset) => c.reset(&session).await,
                    None => return vec![UNKNOWN_MENU.to_string()],
                }
            }
            ("event", event) => {
                // unsubscribe ends nothing stored; views, scans and locations need no answer
                tracing::debug!(session = %log_id(&session), ?event, "wechat: event ignored");
                return Vec::new();
            }
            _ => {
                if let Some(note) = self.limited(&session) {
                    return note;
                }
                tracing::info!(session = %log_id(&session), "wechat: non-text message");
                return vec![NOT_TEXT.to_string()];
            }
        };
        match result {
            Ok(reply) => render::pieces(&reply),
            Err(e) => {
                tracing::error!(session = %log_id(&session), error = %e, "store error, the user was asked to try again");
                vec![TRY_AGAIN.to_string()]
            }
        }
    }

    /// Over the conversation's rate limit: `Some` with the note the first time in a while,
    /// with nothing after that.
    fn limited(&self, session: &str) -> Option<Vec<String>> {
        let c = &self.inner.conversations;
        let limited = c.admit(session).err()?;
        Some(if c.limits.should_notify(session) {
            vec![limited.message()]
        } else {
            Vec::new()
        })
    }

    /// A text message: a bare number picks that choice of the dialog question being asked
    /// (the numbered lines of [`render::text`]) and is sent as the choice's label, as if
    /// typed (the transcript shows it so); anything else is a turn as it is. (A clarifying
    /// question's options are picked by number in the core itself.)
    ///
    /// The label rather than [`Conversations::choose`] with the value: the core reads a
    /// label exactly, while values with `_` (`resettled_retiree`) do not survive its
    /// normalisation. Should the question have moved on between the read and the turn (two
    /// messages at once), the label is read in the new context like any typed words.
    async fn answer_text(&self, session: &str, text: &str) -> Result<Reply, StoreError> {
        let c = &self.inner.conversations;
        if let Some(n) = ordinal(text)
            && let Some(state) = c.state(session).await?
            && let Some(active) = state.active
            && let Some((_, label)) = n.checked_sub(1).and_then(|i| {
                engine::choices(&c.assistant().dialogs, &active.dialog, &active.step)
                    .into_iter()
                    .nth(i)
            })
        {
            return c.turn(session, &label).await;
        }
        c.turn(session, text).await
    }

    /// The id `openid`'s conversation is stored under: never the OpenID itself, a keyed hash
    /// of its session ([`crate::store::Store::caller_session_id`], as Telegram's chats).
    pub fn stored_session(&self, openid: &str) -> String {
        self.inner
            .conversations
            .store
            .caller_session_id(&session_id(openid))
    }

    /// How a receipt key (which may name an OpenID) is stored: keyed-hashed the same way.
    fn receipt(&self, key: &str) -> String {
        self.inner
            .conversations
            .store
            .caller_session_id(&format!("wechat-receipt:{key}"))
    }

    /// Deletes old receipts now and then.
    fn maybe_prune(&self) {
        {
            let mut last = self
                .inner
                .last_prune
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < Duration::from_secs(600) {
                return;
            }
            *last = Instant::now();
        }
        let store = self.inner.conversations.store.clone();
        self.inner.tasks.spawn(async move {
            match store.prune_receipts(RECEIPT_TTL_MS).await {
                Ok(n) => tracing::debug!(deleted = n, "wechat: old receipts deleted"),
                Err(e) => tracing::warn!(error = %e, "wechat: cannot delete old receipts"),
            }
        });
    }
}

/// A bare choice number: "2", "２", "2.", "2、".
fn ordinal(text: &str) -> Option<usize> {
    let t = crate::text::normalize(text);
    let t = t
        .trim()
        .trim_end_matches(['.', '、', '。', ')', '）'])
        .trim();
    if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok().filter(|&n| n >= 1)
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    signature: Option<String>,
    msg_signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
    encrypt_type: Option<String>,
}

/// A refused request: logged with its reason, never its content.
fn refuse(status: StatusCode, reason: &'static str) -> Response {
    Refused::new(status, reason).into_response()
}

/// A refusal not yet turned into a response (logged when made).
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    reason: &'static str,
}

impl Refused {
    fn new(status: StatusCode, reason: &'static str) -> Refused {
        crate::throttle::refusal_with("wechat: request refused", &format!("{status} {reason}"));
        Refused { status, reason }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The timestamp and nonce of a request whose timestamp is fresh.
fn fresh(p: &Params) -> Result<(&str, &str), Refused> {
    let (Some(timestamp), Some(nonce)) = (p.timestamp.as_deref(), p.nonce.as_deref()) else {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            "missing timestamp or nonce",
        ));
    };
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(Refused::new(StatusCode::BAD_REQUEST, "malformed nonce"));
    }
    // abs_diff cannot overflow, whatever i64 the request names
    match timestamp.parse::<i64>() {
        Ok(t) if t.abs_diff(now_secs()) <= MAX_CLOCK_SKEW_SECS.unsigned_abs() => {
            Ok((timestamp, nonce))
        }
        _ => Err(Refused::new(StatusCode::FORBIDDEN, "stale timestamp")),
    }
}

impl WeChat {
    /// Records the request's nonce (with the key of what it carried): a nonce seen before
    /// with something else is a replay. WeChat's own retries repeat nonce and message.
    async fn check_nonce(&self, timestamp: &str, nonce: &str, key: &str) -> Result<(), Refused> {
        let id = format!("nonce:{timestamp}:{nonce}");
        let (id, key) = (self.receipt(&id), self.receipt(key));
        match self
            .inner
            .conversations
            .store
            .claim_receipt(&id, &key)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(seen)) if seen == key => Ok(()),
            Ok(Some(_)) => Err(Refused::new(StatusCode::FORBIDDEN, "replayed nonce")),
            Err(e) => {
                tracing::error!(error = %e, "wechat: cannot check the nonce");
                Err(Refused::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable",
                ))
            }
        }
    }
}

/// WeChat's check of the server URL: `echostr` back when the signature matches.
async fn verify(State(w): State<WeChat>, Query(p): Query<Params>) -> Response {
    let (timestamp, nonce) = match fresh(&p) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let (Some(signature), Some(echostr)) = (p.signature.as_deref(), p.echostr.as_deref()) else {
        return refuse(StatusCode::BAD_REQUEST, "missing signature or echostr");
    };
    if !crypto::verify(signature, &[&w.inner.token, timestamp, nonce]) {
        return refuse(StatusCode::FORBIDDEN, "bad signature");
    }
    if let Err(r) = w.check_nonce(timestamp, nonce, "verify").await {
        return r.into_response();
    }
    tracing::info!("wechat: server URL verified");
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        echostr.to_string(),
    )
        .into_response()
}

/// A message or event. Everything the query string proves (a fresh timestamp, the
/// `signature` over token, timestamp and nonce, which WeChat sends in both modes) is checked
/// before the body is read, so an unsigned request cannot hold the connection by trickling a
/// body; safe mode's `msg_signature` covers the body and is checked once it is read.
async fn receive(
    State(w): State<WeChat>,
    Query(p): Query<Params>,
    body: axum::body::Body,
) -> Response {
    let (timestamp, nonce) = match fresh(&p) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let token = w.inner.token.as_str();
    let Some(signature) = p.signature.as_deref() else {
        return refuse(StatusCode::BAD_REQUEST, "missing signature");
    };
    if !crypto::verify(signature, &[token, timestamp, nonce]) {
        return refuse(StatusCode::FORBIDDEN, "bad signature");
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
            Ok(text) => text,
            Err(_) => return refuse(StatusCode::BAD_REQUEST, "body is not UTF-8"),
        },
        Err(e) if is_too_large(&e) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        // the connection's body deadline ran out, or the client went away
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "body not received in time"),
    };
    let encrypted = p.encrypt_type.as_deref() == Some("aes");
    let plain_xml;
    let xml = match (&w.inner.crypto, encrypted) {
        (Some(crypto), true) => {
            let Some(signature) = p.msg_signature.as_deref() else {
                return refuse(StatusCode::BAD_REQUEST, "missing msg_signature");
            };
            let Some(encrypt) = xml::parse_envelope(&body).ok().and_then(|e| e.encrypt) else {
                return refuse(StatusCode::BAD_REQUEST, "malformed encrypted envelope");
            };
            if !crypto::verify(signature, &[token, timestamp, nonce, &encrypt]) {
                return refuse(StatusCode::FORBIDDEN, "bad msg_signature");
            }
            plain_xml = match crypto.decrypt(&encrypt) {
                Ok(x) => x,
                Err(crypto::CryptoError::AppId) => {
                    return refuse(StatusCode::FORBIDDEN, "message for another app id");
                }
                Err(_) => return refuse(StatusCode::BAD_REQUEST, "cannot decrypt"),
            };
            plain_xml.as_str()
        }
        (None, true) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "encrypted message without encoding_aes_key",
            );
        }
        (Some(_), false) => return refuse(StatusCode::FORBIDDEN, "plaintext message in safe mode"),
        // the query string's signature, checked above, is plaintext mode's whole proof
        (None, false) => body.as_str(),
    };
    let msg = match xml::parse(xml) {
        Ok(m) => m,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "malformed message"),
    };
    if !valid_openid(&msg.from_user) {
        return refuse(StatusCode::BAD_REQUEST, "malformed FromUserName");
    }
    if let Err(r) = w.check_nonce(timestamp, nonce, &msg.dedup_key()).await {
        return r.into_response();
    }
    w.maybe_prune();
    let (user, account) = (msg.from_user.clone(), msg.to_user.clone());
    let delivery = w.dispatch(msg);
    let Some(text) = w.await_passive(&delivery).await else {
        return success();
    };
    let reply = xml::text_reply(&user, &account, now_secs(), &text);
    let body = match &w.inner.crypto {
        None => reply,
        Some(crypto) => {
            let encrypt = crypto.encrypt(&reply);
            let timestamp = now_secs().to_string();
            let nonce = crate::store::random_hex::<8>();
            let signature = crypto::signature(&[token, &timestamp, &nonce, &encrypt]);
            xml::encrypted_reply(&encrypt, &signature, &timestamp, &nonce)
        }
    };
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Whether reading a body failed because it was over the limit.
fn is_too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// The answer that tells WeChat "received, nothing to add" (and not to retry).
fn success() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "success",
    )
        .into_response()
}

/// An OpenID as WeChat makes them (28 characters of Base64url today).
fn valid_openid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What every answer of the endpoint carries: no caching, no content sniffing (a reply
/// echoes what users typed).
async fn response_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(header::HeaderValue::from_static("nosniff"));
    response
}

/// Counts every request in the metrics under the endpoint's route.
async fn observe(State(w): State<WeChat>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    w.inner.conversations.metrics.request(
        &w.inner.path,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_uses_exactly_the_handled_keys_within_wechats_limits() {
        let menu = menu();
        let mut keys = Vec::new();
        let top = menu["button"].as_array().unwrap();
        assert!(top.len() <= 3);
        for b in top {
            assert!(b["name"].as_str().unwrap().len() <= 16, "{b}");
            let subs = b["sub_button"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![b.clone()]);
            assert!(subs.len() <= 5);
            for s in subs {
                assert!(s["name"].as_str().unwrap().len() <= 60);
                keys.push(s["key"].as_str().unwrap().to_string());
            }
        }
        let handled: Vec<String> = CLICKS.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, handled);
        // every dialog a click starts exists
        let a = crate::assistant::shipped();
        for (_, click) in CLICKS {
            if let Click::Start(d) = click {
                assert!(a.dialogs.get(d).is_some(), "{d}");
            }
        }
    }

    #[test]
    fn ordinals_are_bare_numbers() {
        assert_eq!(ordinal("1"), Some(1));
        assert_eq!(ordinal(" ２ "), Some(2));
        assert_eq!(ordinal("3."), Some(3));
        assert_eq!(ordinal("2、"), Some(2));
        assert_eq!(ordinal("0"), None);
        assert_eq!(ordinal("5万"), None);
        assert_eq!(ordinal("50000"), None);
        assert_eq!(ordinal("第一个"), None);
    }

    #[test]
    fn openids_are_checked() {
        assert!(valid_openid("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"));
        assert!(!valid_openid(""));
        assert!(!valid_openid("o:x"));
        assert!(!valid_openid(&"o".repeat(200)));
    }
}
