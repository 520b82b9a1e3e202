//! A fake of WeChat for the WeChat channel's tests, both sides of it:
//!
//! - [`FakeWeChat`]: the API server (axum on 127.0.0.1:0) for what yidi calls:
//!   `POST /cgi-bin/stable_token` (checks app id and secret; hands out `TOKEN-1`, `TOKEN-2`…
//!   valid for [`FakeWeChat::set_expires_in`] seconds, after an optional delay),
//!   `POST /cgi-bin/message/custom/send` and `POST /cgi-bin/menu/create` (both refuse an
//!   unknown or revoked access token with errcode 40001, as WeChat does). Everything is
//!   recorded.
//! - [`Pusher`]: WeChat's servers posting to yidi's endpoint: signed (plaintext mode) or
//!   encrypted and signed (safe mode) requests, with this file's own SHA-1 and AES code (from
//!   the crates, not yidi's), so a mistake in yidi's does not cancel out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use url::Url;

pub const APP_ID: &str = "wxfa0e0123456789ab";
pub const APP_SECRET: &str = "fake-app-secret-0123";
pub const TOKEN: &str = "yidiTestToken42";
pub const ACCOUNT: &str = "gh_0123456789ab";
/// An EncodingAESKey (43 characters of Base64).
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// How long [`FakeWeChat::wait_sent`] waits.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A customer-service message yidi sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub touser: String,
    pub content: String,
    pub token: String,
}

#[derive(Default)]
struct Inner {
    issued: Vec<String>,
    /// Tokens WeChat accepts now.
    valid: Vec<String>,
    token_requests: usize,
    sent: Vec<Sent>,
    menus: Vec<Value>,
    expires_in: u64,
    token_delay: Duration,
}

pub struct FakeWeChat {
    /// What yidi is pointed at (`wechat.api_url`).
    pub api_url: Url,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWeChat {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeWeChat {
    pub async fn start() -> FakeWeChat {
        let inner = Arc::new(Mutex::new(Inner {
            expires_in: 7200,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/menu/create", post(menu_create))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeWeChat {
            api_url,
            inner,
            server,
        }
    }

    pub fn set_expires_in(&self, secs: u64) {
        self.inner.lock().unwrap().expires_in = secs;
    }

    /// Makes the token endpoint answer only after `delay`.
    pub fn set_token_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().token_delay = delay;
    }

    /// Revokes every token handed out so far (as a token fetched elsewhere would).
    pub fn revoke_tokens(&self) {
        self.inner.lock().unwrap().valid.clear();
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }

    pub fn sent(&self, openid: &str) -> Vec<Sent> {
        let inner = self.inner.lock().unwrap();
        inner
            .sent
            .iter()
            .filter(|s| s.touser == openid)
            .cloned()
            .collect()
    }

    pub fn menus(&self) -> Vec<Value> {
        self.inner.lock().unwrap().menus.clone()
    }

    /// Waits until `openid` got at least `n` customer-service messages.
    pub async fn wait_sent(&self, openid: &str, n: usize) -> Vec<Sent> {
        let start = tokio::time::Instant::now();
        loop {
            let sent = self.sent(openid);
            if sent.len() >= n {
                return sent;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{openid} got {} customer-service messages, expected {n}: {sent:?}",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn stable_token(State(inner): Shared, Json(body): Json<Value>) -> Json<Value> {
    let delay = inner.lock().unwrap().token_delay;
    tokio::time::sleep(delay).await;
    let mut inner = inner.lock().unwrap();
    inner.token_requests += 1;
    if body["grant_type"] != "client_credential" || body["appid"] != APP_ID {
        return Json(json!({ "errcode": 40013, "errmsg": "invalid appid" }));
    }
    if body["secret"] != APP_SECRET {
        return Json(json!({ "errcode": 40125, "errmsg": "invalid appsecret" }));
    }
    let token = format!("TOKEN-{}", inner.issued.len() + 1);
    inner.issued.push(token.clone());
    inner.valid.push(token.clone());
    Json(json!({ "access_token": token, "expires_in": inner.expires_in }))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    access_token: String,
}

async fn custom_send(
    State(inner): Shared,
    Query(q): Query<TokenQuery>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut inner = inner.lock().unwrap();
    if !inner.valid.contains(&q.access_token) {
        return Json(json!({ "errcode": 40001, "errmsg": "invalid credential" }));
    }
    if body["msgtype"] != "text" {
        return Json(json!({ "errcode": 40008, "errmsg": "invalid message type" }));
    }
    let content = body["text"]["content"].as_str().unwrap_or_default();
    if content.len() > 2048 {
        return Json(json!({ "errcode": 45002, "errmsg": "content size out of limit" }));
    }
    inner.sent.push(Sent {
        touser: body["touser"].as_str().unwrap_or_default().to_string(),
        content: content.to_string(),
        token: q.access_token,
    });
    Json(json!({ "errcode": 0, "errmsg": "ok" }))
}

async fn menu_create(
    State(inner): Shared,
    Query(q): Query<TokenQuery>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut inner = inner.lock().unwrap();
    if !inner.valid.contains(&q.access_token) {
        return Json(json!({ "errcode": 40001, "errmsg": "invalid credential" }));
    }
    inner.menus.push(body);
    Json(json!({ "errcode": 0, "errmsg": "ok" }))
}

// ---------------------------------------------------------------------------------------------
// WeChat's side of the endpoint

pub fn sha1_hex(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort();
    Sha1::digest(sorted.concat().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn aes_key() -> [u8; 32] {
    // an EncodingAESKey's last character may carry bits past the 32 bytes
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    lenient
        .decode(format!("{AES_KEY}="))
        .unwrap()
        .try_into()
        .unwrap()
}

/// Encrypts as WeChat does: random(16) + length(4, big-endian) + msg + app id, padded to 32.
pub fn encrypt(msg: &str, app_id: &str) -> String {
    let key = aes_key();
    let mut plain = b"0123456789abcdef".to_vec();
    plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    plain.extend_from_slice(msg.as_bytes());
    plain.extend_from_slice(app_id.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let data = cbc::Encryptor::<aes::Aes256>::new(&key.into(), key[..16].into())
        .encrypt_padded_vec_mut::<NoPadding>(&plain);
    STANDARD.encode(data)
}

/// Decrypts a reply's `Encrypt`: (message, app id).
pub fn decrypt(encrypted: &str) -> (String, String) {
    let key = aes_key();
    let data = STANDARD.decode(encrypted).unwrap();
    let plain = cbc::Decryptor::<aes::Aes256>::new(&key.into(), key[..16].into())
        .decrypt_padded_vec_mut::<NoPadding>(&data)
        .unwrap();
    let pad = *plain.last().unwrap() as usize;
    assert!((1..=32).contains(&pad), "padding {pad}");
    let plain = &plain[..plain.len() - pad];
    let len = u32::from_be_bytes(plain[16..20].try_into().unwrap()) as usize;
    (
        String::from_utf8(plain[20..20 + len].to_vec()).unwrap(),
        String::from_utf8(plain[20 + len..].to_vec()).unwrap(),
    )
}

/// The text of element `name` in a flat WeChat XML document (CDATA or not).
pub fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    let inner = &xml[start..end];
    Some(
        inner
            .split("<![CDATA[")
            .map(|p| p.trim_end_matches("]]>"))
            .collect::<String>(),
    )
}

pub fn text_xml(openid: &str, content: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId></xml>",
        now()
    )
}

pub fn event_xml(openid: &str, event: &str, key: Option<&str>, create_time: i64) -> String {
    let key = key.map_or(String::new(), |k| {
        format!("<EventKey><![CDATA[{k}]]></EventKey>")
    });
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>{key}</xml>"
    )
}

pub fn image_xml(openid: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://x/y.jpg]]></PicUrl>\
         <MediaId><![CDATA[m]]></MediaId><MsgId>{msg_id}</MsgId></xml>",
        now()
    )
}

/// WeChat's servers posting to yidi's endpoint at `url`.
#[derive(Clone)]
pub struct Pusher {
    pub url: String,
    pub safe_mode: bool,
    client: reqwest::Client,
}

/// What yidi answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The passive reply's text (decrypted in safe mode), `None` for `success`.
    pub fn content(&self) -> Option<String> {
        assert_eq!(self.status, 200, "{}", self.body);
        if self.body == "success" {
            return None;
        }
        let xml = match element(&self.body, "Encrypt") {
            None => self.body.clone(),
            Some(encrypted) => {
                // the envelope's signature, checked as WeChat checks it
                let sig = element(&self.body, "MsgSignature").unwrap();
                let ts = element(&self.body, "TimeStamp").unwrap();
                let nonce = element(&self.body, "Nonce").unwrap();
                assert_eq!(sig, sha1_hex(&[TOKEN, &ts, &nonce, &encrypted]));
                let (xml, app_id) = decrypt(&encrypted);
                assert_eq!(app_id, APP_ID);
                xml
            }
        };
        assert_eq!(element(&xml, "MsgType").as_deref(), Some("text"), "{xml}");
        assert_eq!(element(&xml, "FromUserName").as_deref(), Some(ACCOUNT));
        Some(element(&xml, "Content").expect("Content"))
    }
}

/// Distinct nonces for every request of the test binary.
pub fn nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Pusher {
    pub fn new(url: String, safe_mode: bool) -> Pusher {
        Pusher {
            url,
            safe_mode,
            client: reqwest::Client::new(),
        }
    }

    /// Posts `xml` as WeChat would, with a fresh timestamp and nonce.
    pub async fn post(&self, xml: &str) -> Answer {
        self.post_with(xml, now(), &nonce(), TOKEN).await
    }

    /// Posts `xml` signed with `token` at `timestamp` with `nonce`.
    pub async fn post_with(&self, xml: &str, timestamp: i64, nonce: &str, token: &str) -> Answer {
        let ts = timestamp.to_string();
        let signature = sha1_hex(&[token, &ts, nonce]);
        let mut query = vec![
            ("signature", signature),
            ("timestamp", ts.clone()),
            ("nonce", nonce.to_string()),
            ("openid", "ignored".to_string()),
        ];
        let body = if self.safe_mode {
            let encrypted = encrypt(xml, APP_ID);
            query.push(("encrypt_type", "aes".into()));
            query.push(("msg_signature", sha1_hex(&[token, &ts, nonce, &encrypted])));
            format!(
                "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
            )
        } else {
            xml.to_string()
        };
        self.raw(&query, body).await
    }

    pub async fn raw(&self, query: &[(&str, String)], body: String) -> Answer {
        let response = self
            .client
            .post(&self.url)
            .query(query)
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    /// The server-URL check: GET with signature, timestamp, nonce and echostr.
    pub async fn verify(&self, signature: &str, timestamp: i64, nonce: &str) -> Answer {
        let response = self
            .client
            .get(&self.url)
            .query(&[
                ("signature", signature),
                ("timestamp", &timestamp.to_string()),
                ("nonce", nonce),
                ("echostr", "8422910737447061155"),
            ])
            .send()
            .await
            .unwrap();
        Answer {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }
}
