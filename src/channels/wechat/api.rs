//! The few calls yidi makes to WeChat's API (reqwest): the access token, the
//! customer-service message (`message/custom/send`) for replies that missed the passive
//! window, and the menu (`menu/create`).
//!
//! The access token comes from `cgi-bin/stable_token` (the app secret goes in the JSON body,
//! never in a URL), is cached, and is refreshed before it expires (five minutes early, or at
//! half its life for short-lived ones). The cache sits behind one async mutex, so concurrent
//! requests wait for a single refresh instead of each fetching a token. The "stable" token is
//! the same for every caller while it is valid, so several replicas do not invalidate each
//! other's tokens (which `cgi-bin/token` would). A call refused for an invalid or expired
//! token drops the cached one and is tried once more with a fresh token.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use url::Url;

/// WeChat's API server.
pub const DEFAULT_API_URL: &str = "https://api.weixin.qq.com/";

/// How long one API call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How often a call is tried when the network fails.
const ATTEMPTS: u32 = 3;

/// `errcode`s that mean "fetch a new access token".
const TOKEN_ERRORS: [i64; 3] = [40001, 40014, 42001];

/// A failed API call. Never carries the access token or the app secret.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("network error: {0}")]
    Http(reqwest::Error),
    #[error("WeChat refused the call: errcode {code} ({message})")]
    WeChat { code: i64, message: String },
    #[error("unexpected answer from WeChat: {0}")]
    Unexpected(String),
}

impl From<reqwest::Error> for ApiError {
    fn from(e: reqwest::Error) -> ApiError {
        // the URL may hold the access token
        ApiError::Http(e.without_url())
    }
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// A client of WeChat's API for one account.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    app_id: String,
    app_secret: String,
    token: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base.as_str())
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl Api {
    pub fn new(base: Url, app_id: &str, app_secret: &str) -> Result<Api, ApiError> {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Api {
            http,
            base,
            app_id: app_id.to_string(),
            app_secret: app_secret.to_string(),
            token: Mutex::new(None),
        })
    }

    /// The cached access token, fetched first when there is none or it is about to expire.
    pub async fn access_token(&self) -> Result<String, ApiError> {
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let answer = self
            .post(
                "cgi-bin/stable_token",
                None,
                &json!({
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self.app_secret,
                    "force_refresh": false,
                }),
            )
            .await?;
        let (Some(token), Some(expires_in)) = (answer.access_token, answer.expires_in) else {
            return Err(ApiError::Unexpected("no access_token in the answer".into()));
        };
        let life = Duration::from_secs(expires_in);
        let early = (life / 2).min(Duration::from_secs(300));
        *cached = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + life - early,
        });
        tracing::info!(expires_in, "wechat: access token fetched");
        Ok(token)
    }

    /// Forgets `token` if it is the cached one (WeChat said it is no longer valid).
    async fn invalidate(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }

    /// Sends a customer-service text message to `openid`.
    pub async fn send_text(&self, openid: &str, content: &str) -> Result<(), ApiError> {
        let body = json!({ "touser": openid, "msgtype": "text", "text": { "content": content } });
        self.call_with_token("cgi-bin/message/custom/send", &body)
            .await
    }

    /// Creates the account's menu (`menu` is the JSON of [`super::menu`]).
    pub async fn create_menu(&self, menu: &Value) -> Result<(), ApiError> {
        self.call_with_token("cgi-bin/menu/create", menu).await
    }

    async fn call_with_token(&self, path: &str, body: &Value) -> Result<(), ApiError> {
        let mut retried = false;
        loop {
            let token = self.access_token().await?;
            match self.post(path, Some(&token), body).await {
                Err(ApiError::WeChat { code, .. }) if TOKEN_ERRORS.contains(&code) && !retried => {
                    tracing::warn!(code, "wechat: access token refused, fetching a new one");
                    self.invalidate(&token).await;
                    retried = true;
                }
                other => return other.map(drop),
            }
        }
    }

    /// POSTs JSON to `path`, with the access token when given; network failures are tried
    /// again. WeChat answers errors with HTTP 200 and an `errcode`.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Answer, ApiError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| ApiError::Unexpected(e.to_string()))?;
        if let Some(token) = token {
            url.query_pairs_mut().append_pair("access_token", token);
        }
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let sent = self
                .http
                .post(url.clone())
                // WeChat reads JSON as UTF-8 and wants Chinese unescaped
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(r) => break r,
                Err(e) if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout()) => {
                    tracing::debug!(attempt, "wechat: network error, retrying");
                    tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let status = response.status();
        let text = response.text().await?;
        let answer: Answer = serde_json::from_str(&text)
            .map_err(|_| ApiError::Unexpected(format!("HTTP {status}, not JSON")))?;
        if answer.errcode != 0 {
            return Err(ApiError::WeChat {
                code: answer.errcode,
                message: answer.errmsg.chars().take(200).collect(),
            });
        }
        Ok(answer)
    }
}
