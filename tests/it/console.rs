//! The agent console (`/console`) and the agent-only endpoints: plain HTTP (reqwest, raw TCP
//! for paths a client would normalise) against the real server, on SQLite and PostgreSQL,
//! and a real headless browser (Debian's chromium through chromedriver and fantoccini) that
//! takes issue 21's call at 1440×900 and 390×844 (counting its actions, saving screenshots
//! in `target/screenshots/`), searches, and reads the caller history and the inbox.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use yidi::channels::console::{self, AgentAuth, new_agent_token};
use yidi::channels::http::{self, AppState};
use yidi::store::Store;

use crate::db::TestDb;
use crate::helpers::{assistant, repo};

/// The real app on 127.0.0.1:0 with one configured agent token (or none); stopped on drop.
struct Console {
    addr: SocketAddr,
    base: String,
    token: String,
    client: reqwest::Client,
    store: Store,
    db_url: String,
    /// The configured digest of `token`.
    digest: String,
    /// What the console posted to the agent routes and got back: (path, request, response).
    posted: Posted,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

type Posted = Arc<std::sync::Mutex<Vec<(String, Value, Value)>>>;

impl Console {
    async fn start(db: TestDb, with_agent: bool) -> Console {
        let store = Store::connect(&db.url).await.expect("connect + migrate");
        let (token, digest) = new_agent_token();
        let mut state = AppState::new(assistant(), store.clone());
        if with_agent {
            state = state
                .with_agents(AgentAuth::from_sha256_hex(std::slice::from_ref(&digest)).unwrap());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        // what the console posts to the agent routes and what it gets back, kept to check
        // both against the API document
        let posted: Posted = Arc::default();
        let record = posted.clone();
        let app = http::app(state).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let record = record.clone();
                async move {
                    let path = req.uri().path().to_string();
                    if req.method() != axum::http::Method::POST || !path.starts_with("/v1/agent/") {
                        return next.run(req).await;
                    }
                    let (parts, body) = req.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    let sent = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
                    let req =
                        axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
                    let response = next.run(req).await;
                    let (parts, body) = response.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    if parts.status.is_success() {
                        let got = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
                        record.lock().unwrap().push((path, sent, got));
                    }
                    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
                }
            },
        ));
        tokio::spawn(async move {
            http::serve_router(listener, app, Default::default(), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Console {
            addr,
            base: format!("http://{addr}"),
            token,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            db_url: db.url.clone(),
            digest,
            posted,
            shutdown: Some(tx),
            _db: db,
        }
    }

    async fn sqlite() -> Console {
        Console::start(TestDb::sqlite(), true).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, auth: Auth<'_>) -> reqwest::Response {
        let request = self.client.get(self.url(path));
        auth.apply(request).send().await.unwrap()
    }

    async fn login(&self, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/console/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
}

impl Auth<'_> {
    fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(t) => request.bearer_auth(t),
            Auth::Cookie(c) => request.header("cookie", format!("yidi_agent={c}")),
        }
    }
}

fn set_cookie(headers: &HeaderMap) -> String {
    headers
        .get("set-cookie")
        .expect("Set-Cookie")
        .to_str()
        .unwrap()
        .to_string()
}

fn set_cookie_value(headers: &HeaderMap) -> Option<String> {
    let c = set_cookie(headers);
    let (pair, _) = c.split_once(';')?;
    let (name, value) = pair.split_once('=')?;
    (name == console::COOKIE_NAME && !value.is_empty()).then(|| value.to_string())
}

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A 401 answered with the HTML login page; returns the page.
async fn login_page(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        content_type(&r).starts_with("text/html"),
        "{}",
        content_type(&r)
    );
    let csp = r.headers().get("content-security-policy").unwrap();
    assert!(csp.to_str().unwrap().contains("default-src 'none'"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("id=\"login-page\"") && body.contains("坐席令牌"),
        "{body}"
    );
    assert!(!body.contains("id=\"q\""), "no console without a login");
    body
}

/// An error in the API's shape with the given status; returns the code.
async fn api_error(r: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    assert!(content_type(&r).starts_with("application/json"));
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{body}"
    );
    body["error"]["code"].as_str().unwrap().to_string()
}

async fn json_ok(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// One chat turn on a new HTTP session; returns the session id.
async fn chat(console: &Console, text: &str) -> String {
    let created: Value = console
        .client
        .post(console.url("/v1/sessions"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap();
    let r = console
        .client
        .post(console.url(&format!("/v1/sessions/{id}/messages")))
        .bearer_auth(token)
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    id
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP

#[tokio::test]
async fn without_an_agent_login_everything_is_401() {
    let c = Console::sqlite().await;
    let body = login_page(c.get("/console", Auth::None).await).await;
    assert!(
        !body.contains("id=\"login-error\""),
        "no error before a try"
    );

    let paths = [
        "/v1/agent/unanswered",
        "/v1/agent/unanswered?limit=5",
        "/v1/agent/sessions/abc/transcript",
        "/console/assets/console.js",
    ];
    for path in paths {
        let code = api_error(c.get(path, Auth::None).await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(code, "missing_agent_token", "{path}");
        for bad in [
            Auth::Bearer("wrong"),
            Auth::Bearer(&"x".repeat(5000)),
            Auth::Cookie("0123"),
            Auth::Cookie(&"f".repeat(64)),
        ] {
            let code = api_error(c.get(path, bad).await, StatusCode::UNAUTHORIZED).await;
            assert_eq!(code, "invalid_agent_token", "{path}");
        }
    }
    // a bad cookie or bearer token on the page: the login page, saying the login is gone
    let body = login_page(c.get("/console", Auth::Cookie("bogus")).await).await;
    assert!(body.contains("登录已失效"), "{body}");
    login_page(c.get("/console", Auth::Bearer("bogus")).await).await;
    // a malformed Authorization header is refused, not a panic
    let r = c
        .client
        .get(c.url("/v1/agent/unanswered"))
        .header(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(r, StatusCode::UNAUTHORIZED).await,
        "invalid_agent_token"
    );
    // the bearer agent token opens the page and the JSON
    let r = c.get("/console", Auth::Bearer(&c.token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("id=\"q\""));
    let body = json_ok(c.get("/v1/agent/unanswered", Auth::Bearer(&c.token)).await).await;
    assert_eq!(body, json!({ "questions": [] }));
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 0);
}

async fn login_and_logout(db: TestDb) {
    let c = Console::start(db, true).await;
    // wrong and empty tokens: the login page with a Chinese error, no session
    let body = login_page(c.login("not-the-token").await).await;
    assert!(
        body.contains("id=\"login-error\"") && body.contains("坐席令牌不正确"),
        "{body}"
    );
    let body = login_page(c.login("   ").await).await;
    assert!(body.contains("请输入坐席令牌"), "{body}");
    login_page(c.login(&"t".repeat(10_000)).await).await;
    // a body that is not a form
    let r = c
        .client
        .post(c.url("/console/login"))
        .json(&json!({ "token": c.token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&r).starts_with("text/html"));
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 0);

    // the right token: 303 to /console with a strict cookie
    let r = c.login(&c.token).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console");
    let cookie = set_cookie(r.headers());
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = set_cookie_value(r.headers()).unwrap();
    assert_eq!(session.len(), 64);
    assert_ne!(session, c.token);
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 1);
    // only a hash is stored
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&c.db_url).await.unwrap();
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT id_hash, agent FROM agent_sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, yidi::store::token_hash(&session));
    assert_eq!(stored[0].1, yidi::store::token_hash(&c.token));
    pool.close().await;

    let r = c.get("/console", Auth::Cookie(&session)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    for id in [
        "id=\"q\"",
        "id=\"situation\"",
        "id=\"print\"",
        "id=\"unanswered\"",
        "name=\"insured_region\"",
        "name=\"total\"",
        "id=\"console-data\"",
    ] {
        assert!(page.contains(id), "{id}");
    }
    json_ok(c.get("/v1/agent/unanswered", Auth::Cookie(&session)).await).await;
    let r = c
        .get("/console/assets/console.js", Auth::Cookie(&session))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // behind a TLS proxy the cookie is Secure
    let r = c
        .client
        .post(c.url("/console/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", c.token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(set_cookie(r.headers()).contains("; Secure"));

    // logout ends the session and clears the cookie
    let r = c
        .client
        .post(c.url("/console/logout"))
        .header("cookie", format!("yidi_agent={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(r.headers()).contains("Max-Age=0"));
    let body = login_page(c.get("/console", Auth::Cookie(&session)).await).await;
    assert!(body.contains("登录已失效"));
    let code = api_error(
        c.get("/v1/agent/unanswered", Auth::Cookie(&session)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "invalid_agent_token");
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 1);
    // logging out again, or without a cookie, is harmless
    let r = c
        .client
        .post(c.url("/console/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // GET /console/login and /console/ go back to the console
    for path in ["/console/login", "/console/"] {
        let r = c.get(path, Auth::None).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/console");
    }
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused() {
    let c = Console::sqlite().await;
    let post = |path: &str, origin: &str, session: Option<&str>| {
        let mut request = c
            .client
            .post(c.url(path))
            .header("origin", origin)
            .form(&[("token", c.token.as_str())]);
        if let Some(s) = session {
            request = request.header("cookie", format!("yidi_agent={s}"));
        }
        request.send()
    };
    // a page elsewhere cannot log a browser in with a token of its choosing
    // (issue 23: the scheme counts too: a plain-HTTP page on the same host cannot post to
    // the console served over HTTPS, nor an HTTPS page to this plain-HTTP one)
    let same_host_other_scheme = c.base.replacen("http://", "https://", 1);
    for origin in [
        "http://evil.example",
        "null",
        "https://127.0.0.1.evil.example",
        same_host_other_scheme.as_str(),
    ] {
        let r = post("/console/login", origin, None).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(r.text().await.unwrap().contains("来自其他网站"));
    }
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 0);
    // behind an HTTPS proxy that says so, the HTTPS origin is this site and plain HTTP is not
    let via_proxy = |origin: &str| {
        c.client
            .post(c.url("/console/login"))
            .header("origin", origin)
            .header("x-forwarded-proto", "https")
            .form(&[("token", c.token.as_str())])
            .send()
    };
    let r = via_proxy(&c.base).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = via_proxy(&same_host_other_scheme).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 1);
    // the console's own origin logs in
    let r = post("/console/login", &c.base, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie_value(r.headers()).unwrap();
    // nor log it out
    let r = post("/console/logout", "http://evil.example", Some(&session))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c.get("/console", Auth::Cookie(&session)).await;
    assert_eq!(r.status(), StatusCode::OK, "still logged in");
}

#[tokio::test]
async fn login_and_logout_on_sqlite() {
    login_and_logout(TestDb::sqlite()).await;
}

#[tokio::test]
async fn login_and_logout_on_postgres() {
    login_and_logout(TestDb::postgres().await).await;
}

#[tokio::test]
async fn agents_read_unanswered_questions_and_transcripts() {
    let c = Console::sqlite().await;
    let answered = chat(&c, "社保卡在外地医院刷不了怎么办").await;
    let unanswered = chat(&c, "养老金什么时候涨").await;
    let agent = Auth::Bearer(&c.token);

    let body = json_ok(c.get("/v1/agent/unanswered?limit=10", agent).await).await;
    let questions = body["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 1, "{body}");
    assert_eq!(questions[0]["question"], "养老金什么时候涨");
    assert_eq!(questions[0]["session_id"], unanswered.as_str());
    assert!(questions[0]["created_at"].is_i64());

    let body = json_ok(
        c.get(&format!("/v1/agent/sessions/{answered}/transcript"), agent)
            .await,
    )
    .await;
    assert_eq!(body["session_id"], answered.as_str());
    let lines = body["transcript"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["role"], "user");
    assert_eq!(lines[0]["text"], "社保卡在外地医院刷不了怎么办");
    assert_eq!(lines[1]["role"], "assistant");
    assert_eq!(lines[0]["kind"], Value::Null);
    assert_eq!(lines[1]["kind"], "dialog");

    // the situation an agent's free text states, as a conversation reads it
    let situation = c
        .client
        .post(c.url("/v1/agent/situation"))
        .bearer_auth(&c.token)
        .json(&json!({"text": "我爸张家港退休的，在上海住院，出院了才想起没备案"}))
        .send()
        .await
        .unwrap();
    let body = json_ok(situation).await;
    for (slot, value) in [
        ("insured_region", "zhangjiagang"),
        ("employment", "retired"),
        ("care_location", "shanghai"),
        ("filed", "false"),
    ] {
        assert_eq!(body["slots"][slot], value, "{body}");
    }
    let refused = c
        .client
        .post(c.url("/v1/agent/situation"))
        .json(&json!({"text": "苏州"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let bad = c
        .client
        .post(c.url("/v1/agent/situation"))
        .bearer_auth(&c.token)
        .json(&json!({"words": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api_error(bad, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_field"
    );
    // an oversized body is a 413 as on every other route (issue 23; it was a 422). Sent in
    // chunks, without a Content-Length, so that it is the route's own reading that finds it
    // too large (a declared length is refused before any route runs)
    let big = json!({ "text": "苏".repeat(yidi::channels::http::MAX_BODY_BYTES) }).to_string();
    let (mut read, mut stream) = tokio::net::TcpStream::connect(c.addr)
        .await
        .unwrap()
        .into_split();
    // read as the answer comes: a reset after it must not lose it
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    });
    let head = format!(
        "POST /v1/agent/situation HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
        c.addr, c.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.as_bytes().chunks(8192) {
        let sent = async {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await
        };
        // the server may answer and close before the whole body is sent
        if sent.await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let answer = reader.await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    for path in [
        "/v1/agent/sessions/no-such-session/transcript".to_string(),
        format!("/v1/agent/sessions/{}/transcript", "a".repeat(500)),
    ] {
        let code = api_error(c.get(&path, agent).await, StatusCode::NOT_FOUND).await;
        assert_eq!(code, "session_not_found", "{path}");
    }
    // encoded dots and slashes are ids like any other (reqwest would normalise them)
    for path in [
        "/v1/agent/sessions/%2e%2e/transcript",
        "/v1/agent/sessions/..%2f..%2fetc/transcript",
        "/v1/agent/sessions/%ff/transcript",
    ] {
        let (status, text) = raw_get(c.addr, path, &c.token).await;
        assert_eq!(status, 404, "{path}: {text}");
        assert!(text.contains("\"session_not_found\""), "{path}: {text}");
    }
    for limit in ["0", "201", "-1", "abc", "1.5"] {
        let path = format!("/v1/agent/unanswered?limit={limit}");
        let code = api_error(c.get(&path, agent).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(code, "invalid_field", "{limit}");
    }
    // the session's own token is not an agent token
    let code = api_error(
        c.get(
            "/v1/agent/unanswered",
            Auth::Bearer("0".repeat(64).as_str()),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "invalid_agent_token");
}

impl Console {
    /// POST `body` as JSON with the agent's bearer token (or none).
    async fn post_agent(&self, path: &str, body: &Value, agent: bool) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if agent {
            request = request.bearer_auth(&self.token);
        }
        request.send().await.unwrap()
    }
}

/// Issue 21, item 6: inbox items are labelled (unanswered or out of scope, also for rows
/// stored before the kind was) and marked handled with who and when, stored in the
/// database; transcripts carry each line's channel; a caller's conversations are found by
/// session id or by the caller's id in a channel.
async fn inbox_history_and_channels(db: TestDb) {
    let c = Console::start(db, true).await;
    let pension = chat(&c, "养老金什么时候涨").await;
    c.store
        .save_turn(&yidi::store::TurnRecord {
            session_id: "s-old",
            state: "{}",
            expected_revision: None,
            user_text: "回执单丢了要紧吗",
            reply_text: "抱歉……",
            faq_id: None,
            dialog: None,
            kind: "unanswered",
            unanswered: true,
            request: None,
            channel: None,
        })
        .await
        .unwrap();
    // a row as stored before migration 0010: no kind of its own
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&c.db_url).await.unwrap();
    sqlx::query("UPDATE unanswered SET kind = NULL WHERE session_id = 's-old'")
        .execute(&pool)
        .await
        .unwrap();
    let agent = Auth::Bearer(&c.token);
    let body = json_ok(c.get("/v1/agent/unanswered", agent).await).await;
    let items = body["questions"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let by_question = |q: &str| {
        items
            .iter()
            .find(|i| i["question"] == q)
            .unwrap_or_else(|| panic!("{q} in {body}"))
            .clone()
    };
    let old = by_question("回执单丢了要紧吗");
    assert_eq!(old["kind"], "unanswered", "read from its transcript line");
    let out = by_question("养老金什么时候涨");
    assert_eq!(out["kind"], "out_of_scope");
    assert_eq!(out["handled_at"], Value::Null);
    assert_eq!(out["handled_by"], Value::Null);

    // marked handled: by this agent, now; stored
    let id = out["id"].as_str().unwrap().to_string();
    let path = format!("/v1/agent/unanswered/{id}/handled");
    let before = yidi_now_ms();
    let marked = json_ok(c.post_agent(&path, &json!({"handled": true}), true).await).await;
    assert_eq!(marked["handled_by"], &c.digest[..12]);
    let at = marked["handled_at"].as_i64().unwrap();
    assert!(at >= before && at <= yidi_now_ms() + 1000, "{marked}");
    let row: (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT handled_at, handled_by FROM unanswered WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row, (Some(at), Some(c.digest[..12].to_string())));
    let body = json_ok(c.get("/v1/agent/unanswered", agent).await).await;
    assert!(
        body["questions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str() && i["handled_at"] == at)
    );
    // and back
    let unmarked = json_ok(c.post_agent(&path, &json!({"handled": false}), true).await).await;
    assert_eq!(unmarked["handled_at"], Value::Null);
    assert_eq!(unmarked["handled_by"], Value::Null);
    // refusals: no agent, no such item, not a body
    assert_eq!(
        api_error(
            c.post_agent(&path, &json!({"handled": true}), false).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "missing_agent_token"
    );
    assert_eq!(
        api_error(
            c.post_agent(
                "/v1/agent/unanswered/no-such/handled",
                &json!({"handled": true}),
                true
            )
            .await,
            StatusCode::NOT_FOUND
        )
        .await,
        "question_not_found"
    );
    assert_eq!(
        api_error(
            c.post_agent(&path, &json!({"handled": "yes"}), true).await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_field"
    );

    // every transcript line names its channel (HTTP here)
    let t = json_ok(
        c.get(&format!("/v1/agent/sessions/{pension}/transcript"), agent)
            .await,
    )
    .await;
    for line in t["transcript"].as_array().unwrap() {
        assert_eq!(line["channel"], "http", "{line}");
    }
    // a Telegram chat's conversation, found by the chat id or the prefixed id
    let telegram =
        yidi::conversation::Conversations::new(assistant(), c.store.clone()).on_channel("telegram");
    let stored = c.store.caller_session_id("telegram:987654");
    telegram.turn(&stored, "起付线是什么").await.unwrap();
    telegram.turn(&stored, "那住院呢").await.unwrap();
    for q in ["987654", "telegram:987654", " 987654 "] {
        let found = json_ok(
            c.get(
                &format!("/v1/agent/conversations?q={}", urlencode(q)),
                agent,
            )
            .await,
        )
        .await;
        let list = found["conversations"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{q}: {found}");
        assert_eq!(list[0]["session_id"], stored.as_str());
        assert_eq!(list[0]["channel"], "telegram");
        assert_eq!(list[0]["lines"], 4);
        assert!(list[0]["first_at"].as_i64() <= list[0]["last_at"].as_i64());
    }
    let found = json_ok(
        c.get(&format!("/v1/agent/conversations?q={pension}"), agent)
            .await,
    )
    .await;
    assert_eq!(found["conversations"][0]["channel"], "http", "{found}");
    let none = json_ok(c.get("/v1/agent/conversations?q=nobody", agent).await).await;
    assert_eq!(none, json!({"conversations": []}));
    for bad in ["/v1/agent/conversations", "/v1/agent/conversations?q=%20"] {
        assert_eq!(
            api_error(c.get(bad, agent).await, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_field",
            "{bad}"
        );
    }
    assert_eq!(
        api_error(
            c.get("/v1/agent/conversations?q=987654", Auth::None).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "missing_agent_token"
    );
    pool.close().await;
}

fn yidi_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn inbox_history_and_channels_on_sqlite() {
    inbox_history_and_channels(TestDb::sqlite()).await;
}

#[tokio::test]
async fn inbox_history_and_channels_on_postgres() {
    inbox_history_and_channels(TestDb::postgres().await).await;
}

/// Issue 21, items 2 and 5: the situation is read on top of what is known (corrections
/// replace, the rest stays), and the call view names every missing field at once.
#[tokio::test]
async fn the_situation_and_the_call_view_over_http() {
    let c = Console::sqlite().await;
    let known = json!({"insured_region": "suzhou", "stage": "in_hospital", "total": "30000"});
    let read = json_ok(
        c.post_agent(
            "/v1/agent/situation",
            &json!({"text": "不对，是张家港的", "known": known}),
            true,
        )
        .await,
    )
    .await;
    assert_eq!(read["slots"]["insured_region"], "zhangjiagang", "{read}");
    assert_eq!(read["slots"]["stage"], "in_hospital", "{read}");
    assert_eq!(read["slots"]["total"], "30000", "{read}");
    let read = json_ok(
        c.post_agent(
            "/v1/agent/situation",
            &json!({"text": "自费3万2，他退休了"}),
            true,
        )
        .await,
    )
    .await;
    assert_eq!(read["slots"]["self_pay"], "32000", "{read}");
    assert_eq!(read["inferred"], json!({"scheme": "employee"}), "{read}");
    let too_many: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        api_error(
            c.post_agent(
                "/v1/agent/situation",
                &json!({"text": "x", "known": too_many}),
                true
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_field"
    );

    let call = json!({"slots": {
        "insured_region": "zhangjiagang", "employment": "retired", "scheme": "employee",
        "care_location": "shanghai", "filed": "false", "stage": "discharged_self_paid",
        "visit": "inpatient", "total": "3万"
    }});
    let view = json_ok(c.post_agent("/v1/agent/call", &call, true).await).await;
    let missing: Vec<&str> = view["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["备案类型", "医院等级"], "{view}");
    assert_eq!(view["answer"]["id"], "backfill-after-discharge");
    assert_eq!(
        api_error(
            c.post_agent("/v1/agent/call", &call, false).await,
            StatusCode::UNAUTHORIZED
        )
        .await,
        "missing_agent_token"
    );
    assert_eq!(
        api_error(
            c.post_agent("/v1/agent/call", &json!({"slots": [1]}), true)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "invalid_field"
    );
    let found = json_ok(
        c.post_agent(
            "/v1/agent/search",
            &json!({"q": "门特", "slots": {"insured_region": "zhangjiagang"}}),
            true,
        )
        .await,
    )
    .await;
    assert_eq!(found["status"], "answered", "{found}");
    assert_eq!(found["entries"][0]["id"], "chronic-special-drugs");
    let entry = json_ok(
        c.post_agent("/v1/agent/entry", &json!({"id": "contacts"}), true)
            .await,
    )
    .await;
    assert!(
        entry["say"].as_str().unwrap().contains("0512-12333"),
        "{entry}"
    );
    assert_eq!(
        api_error(
            c.post_agent("/v1/agent/entry", &json!({"id": "nope"}), true)
                .await,
            StatusCode::NOT_FOUND
        )
        .await,
        "faq_not_found"
    );
}

/// A raw HTTP/1.1 GET (no client-side path normalisation): status and body.
async fn raw_get(addr: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

#[tokio::test]
async fn assets_come_from_a_fixed_table_and_never_from_the_filesystem() {
    let c = Console::sqlite().await;
    // the stylesheet is public (the login page uses it), the script is for agents
    let r = c.get("/console/assets/console.css", Auth::None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(content_type(&r), "text/css; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let css = r.text().await.unwrap();
    assert!(css.contains("@media print"));
    let r = c
        .get("/console/assets/console.js", Auth::Bearer(&c.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(content_type(&r), "text/javascript; charset=utf-8");
    let js = r.text().await.unwrap();
    assert!(js.contains("textContent") && !js.contains("innerHTML ="));

    for path in [
        "/console/assets/../../Cargo.toml",
        "/console/assets/../console.rs",
        "/console/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/console/assets/%2e%2e%2f%2e%2e%2fCargo.toml",
        "/console/assets/..%2F..%2FCargo.toml",
        "/console/assets/%2E%2E",
        "/console/assets/..",
        "/console/assets/.",
        "/console/assets/",
        "/console/assets",
        "/console/assets/console.js/",
        "/console/assets/console.js%00",
        "/console/assets/console.js%2f..%2f..%2fCargo.toml",
        "/console/assets/CONSOLE.CSS",
        "/console/assets/console.rs",
        "/console/assets/%ff%fe",
        "/console/assets//etc/passwd",
        "/console/assets/%2fetc%2fpasswd",
        "/console/assets/..\\..\\Cargo.toml",
        "/console/../Cargo.toml",
        "/console/assets/console.css?../../Cargo.toml=1",
    ] {
        let (status, text) = raw_get(c.addr, path, &c.token).await;
        if path.starts_with("/console/assets/console.css?") {
            // a query string does not change which file is served
            assert_eq!(status, 200, "{path}");
            assert!(text.contains("@media print"));
            continue;
        }
        assert_eq!(status, 404, "{path}: {text}");
        assert!(
            !text.contains("[package]") && !text.contains("root:"),
            "{path}"
        );
        assert!(text.contains("\"not_found\""), "{path}: {text}");
    }
}

#[tokio::test]
async fn without_configured_tokens_every_login_is_refused() {
    let c = Console::start(TestDb::sqlite(), false).await;
    let body = login_page(c.get("/console", Auth::None).await).await;
    assert!(body.contains("没有配置坐席令牌"), "{body}");
    let body = login_page(c.login(&c.token).await).await;
    assert!(body.contains("没有配置坐席令牌"), "{body}");
    let code = api_error(
        c.get("/v1/agent/unanswered", Auth::Bearer(&c.token)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(code, "agents_not_configured");
    assert_eq!(c.store.count("agent_sessions").await.unwrap(), 0);
}

#[tokio::test]
async fn is_agent_accepts_a_live_cookie_or_the_bearer_token() {
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    let (token, digest) = new_agent_token();
    let state = AppState::new(assistant(), store.clone())
        .with_agents(AgentAuth::from_sha256_hex(std::slice::from_ref(&digest)).unwrap());
    let headers = |name: &'static str, value: String| {
        let mut h = axum::http::HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    };
    assert!(!console::is_agent(&state, &axum::http::HeaderMap::new()).await);
    assert!(console::is_agent(&state, &headers("authorization", format!("Bearer {token}"))).await);
    assert!(!console::is_agent(&state, &headers("authorization", "Bearer nope".into())).await);
    store
        .add_agent_session("a-session", &digest, 60_000)
        .await
        .unwrap();
    let cookie = headers("cookie", "other=1; yidi_agent=a-session".into());
    assert!(console::is_agent(&state, &cookie).await);
    // a token removed from the configuration ends its sessions
    let (_, other) = new_agent_token();
    let rotated = state
        .clone()
        .with_agents(AgentAuth::from_sha256_hex(&[other]).unwrap());
    assert!(!console::is_agent(&rotated, &cookie).await);
    // no agents configured: nobody is an agent
    let none = AppState::new(assistant(), store.clone());
    assert!(!console::is_agent(&none, &headers("authorization", format!("Bearer {token}"))).await);
    // a database outage counts as "not an agent" rather than an error
    store.close().await;
    assert!(!console::is_agent(&state, &cookie).await);
}

// ---------------------------------------------------------------------------------------------
// The browser

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether fontconfig knows a Simplified Chinese font (else screenshots show empty boxes).
fn has_cjk_font() -> bool {
    Command::new("fc-list")
        .args([":lang=zh", "family"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
}

/// Installs chromium, chromedriver and a Chinese font with the project's script when they
/// are missing. A failure is a test failure.
fn ensure_browser() {
    // the browser tests run at once: one installs, the others wait for it (two apt-gets at
    // once fail on apt's lock)
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() && has_cjk_font() {
        return;
    }
    let status = Command::new("bash")
        .arg(repo().join(".ci/install-browser"))
        .status()
        .expect(".ci/install-browser runs");
    assert!(status.success(), ".ci/install-browser failed: {status}");
    assert!(Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists());
    assert!(has_cjk_font(), "a Chinese font for the screenshots");
}

/// chromedriver on a free port; killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        ensure_browser();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // its own process group, so that drop also ends the chromium it started
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/status", driver.url)).await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    pub(crate) async fn browser(&self, profile: &Path) -> Client {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1024",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        // two rustls providers are compiled in (ring for reqwest, aws-lc-rs for hyper-rustls):
        // pick one for the process, or rustls refuses to guess
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's group: itself and the browser (also after a failed test that never
        // closed its session)
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Chrome DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
pub(crate) struct Cdp(pub(crate) &'static str, pub(crate) Value);

/// `"print"`, or `""` for the screen again.
fn print_media(media: &'static str) -> Cdp {
    Cdp("Emulation.setEmulatedMedia", json!({ "media": media }))
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Generous: the machine is shared and chromium is slow to start.
const DEADLINE: Duration = Duration::from_secs(45);

pub(crate) async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(DEADLINE)
        .every(Duration::from_millis(100))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| {
            panic!("no element `{css}` within {DEADLINE:?}: {e}");
        })
}

/// Waits until the element's text contains `needle`; returns the text.
pub(crate) async fn wait_for_text(browser: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(e) = browser.find(Locator::Css(css)).await
            && let Ok(text) = e.text().await
            && text.contains(needle)
        {
            return text;
        }
        if Instant::now() > deadline {
            let source = browser.source().await.unwrap_or_default();
            panic!("`{css}` never contained {needle:?}; page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn select(browser: &Client, slot: &str, value: &str) {
    browser
        .find(Locator::Css(&format!("#f-{slot}")))
        .await
        .unwrap()
        .select_by_value(value)
        .await
        .unwrap();
}

/// Where the browser tests leave their screenshots for a person to look at:
/// `target/screenshots/` (beside the tests' own temporary folder).
pub(crate) fn screenshots() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A PNG of the whole page (not only what fits the window), through chromedriver's CDP
/// bridge.
pub(crate) async fn full_page_png(
    browser: &Client,
) -> Result<Vec<u8>, fantoccini::error::CmdError> {
    use base64::Engine;
    let shot = browser
        .issue_cmd(Cdp(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        ))
        .await?;
    let data = shot["data"].as_str().unwrap_or_default();
    Ok(base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64 PNG"))
}

/// The page printed to PDF as chromium prints it (A4, the page's own print styles): the
/// number of pages.
async fn printed_pages(browser: &Client) -> Result<usize, fantoccini::error::CmdError> {
    use base64::Engine;
    let pdf = browser
        .issue_cmd(Cdp(
            "Page.printToPDF",
            json!({ "preferCSSPageSize": true, "printBackground": false }),
        ))
        .await?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pdf["data"].as_str().unwrap_or_default())
        .expect("base64 PDF");
    std::fs::write(screenshots().join("call-print.pdf"), &bytes).unwrap();
    // each page is an object "/Type /Page" (the tree's root is "/Type /Pages")
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + "/Type /Page".len()..].starts_with('s'))
        .count())
}

/// Logs in through the login page (a wrong token first shows the error).
async fn log_in(c: &Console, browser: &Client) -> Result<(), fantoccini::error::CmdError> {
    browser.goto(&c.url("/console")).await?;
    wait_for(browser, "#login-page").await;
    browser
        .find(Locator::Css("#token"))
        .await?
        .send_keys("not-the-token")
        .await?;
    browser.find(Locator::Css("#login")).await?.click().await?;
    wait_for_text(browser, "#login-error", "坐席令牌不正确").await;
    browser
        .find(Locator::Css("#token"))
        .await?
        .send_keys(&c.token)
        .await?;
    browser.find(Locator::Css("#login")).await?.click().await?;
    wait_for(browser, "#caller-text").await;
    assert_eq!(browser.current_url().await?.path(), "/console");
    Ok(())
}

/// The value of the form's field for `slot`.
async fn value(browser: &Client, slot: &str) -> Result<String, fantoccini::error::CmdError> {
    let v = browser
        .execute(
            &format!("return document.getElementById('f-{slot}').value"),
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Where the field's value came from: `text`, `hand`, `inferred` or "".
async fn source_of(browser: &Client, slot: &str) -> Result<String, fantoccini::error::CmdError> {
    let v = browser
        .execute(
            &format!(
                "return document.querySelector('.field[data-slot=\"{slot}\"]').dataset.source || ''"
            ),
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Waits until the field for `slot` holds `expected`.
async fn wait_for_value(browser: &Client, slot: &str, expected: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(v) = value(browser, slot).await
            && v == expected
        {
            return;
        }
        if Instant::now() > deadline {
            let v = value(browser, slot).await.unwrap_or_default();
            panic!("{slot} never became {expected:?} (it is {v:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element's box in the window, and the window's size: whether it is in view without
/// scrolling anything.
async fn in_view(browser: &Client, css: &str) -> Result<bool, fantoccini::error::CmdError> {
    let v = browser
        .execute(
            "const e = document.querySelector(arguments[0]);\n\
             if (!e) return false;\n\
             const r = e.getBoundingClientRect();\n\
             return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight \
                    && r.left >= 0 && r.right <= window.innerWidth;",
            vec![json!(css)],
        )
        .await?;
    Ok(v.as_bool().unwrap_or(false))
}

/// The page is no wider than the window (no horizontal scrolling).
pub(crate) async fn no_horizontal_scroll(
    browser: &Client,
) -> Result<(), fantoccini::error::CmdError> {
    let v = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
                     Array.from(document.querySelectorAll('body *')).filter(e => \
                       e.getBoundingClientRect().right > window.innerWidth + 1).map(e => \
                       e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)]",
            vec![],
        )
        .await?;
    let (scroll, width) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
    assert!(
        scroll <= width,
        "the page is {scroll}px wide in {width}px: {v}"
    );
    Ok(())
}

/// Reads the clipboard (permission granted to the page's origin first).
async fn clipboard(browser: &Client) -> Result<String, fantoccini::error::CmdError> {
    let copied = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             navigator.clipboard.readText().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await?;
    Ok(copied.as_str().unwrap_or_default().to_string())
}

async fn grant_clipboard(c: &Console, browser: &Client) -> Result<(), fantoccini::error::CmdError> {
    let permissions = json!({
        "origin": c.base,
        "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
    });
    browser
        .issue_cmd(Cdp("Browser.grantPermissions", permissions))
        .await?;
    Ok(())
}

/// Puts `text` into the field `css` at once, as a paste does (one input event).
async fn paste(browser: &Client, css: &str, text: &str) -> Result<(), fantoccini::error::CmdError> {
    browser
        .execute(
            "const e = document.querySelector(arguments[0]);\n\
             e.focus(); e.value = arguments[1];\n\
             e.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![json!(css), json!(text)],
        )
        .await?;
    Ok(())
}

/// The caller of issue 21.
const THE_CALL: &str =
    "我爸张家港退休的，在上海住院了，没备案，现在出院了自己垫了三万多，能报多少，要准备什么";

/// How the call went: actions counted, seconds from the first key to the text message
/// copied.
struct CallRun {
    actions: usize,
    seconds: f64,
}

/// Issue 21's call, as an agent takes it: paste the story (1), answer the two questions the
/// console asks with one click each (2, 3), copy the text message (4). Everything the agent
/// reads out must be there after those, in view without scrolling at 1440×900.
async fn take_the_call(
    c: &Console,
    browser: &Client,
    wide: bool,
) -> Result<CallRun, fantoccini::error::CmdError> {
    let started = Instant::now();
    let mut actions = 0;
    // 1. the story, pasted
    browser
        .find(Locator::Css("#caller-text"))
        .await?
        .send_keys(THE_CALL)
        .await?;
    actions += 1;
    wait_for_text(browser, "#caller-status", "已根据描述填写").await;
    // read as a colleague would: the key fact is that he is out of hospital
    wait_for_value(browser, "stage", "discharged_self_paid").await;
    for (slot, expected) in [
        ("insured_region", "zhangjiagang"),
        ("employment", "retired"),
        ("care_location", "shanghai"),
        ("filed", "false"),
        ("visit", "inpatient"),
        ("total", "30000"),
    ] {
        wait_for_value(browser, slot, expected).await;
        assert_eq!(
            source_of(browser, slot).await?,
            "text",
            "{slot} marked as from the text"
        );
    }
    // 退休 means 职工医保: inferred, and marked so
    wait_for_value(browser, "scheme", "employee").await;
    assert_eq!(source_of(browser, "scheme").await?, "inferred");
    // what is still missing, all at once, in the agent's words, the fields highlighted
    let missing = wait_for_text(browser, "#missing", "医院等级").await;
    assert!(missing.contains("备案类型"), "{missing}");
    assert!(missing.contains("还需要问来电者（2 项）"), "{missing}");
    assert!(
        !missing.contains('_') && !missing.contains('"'),
        "no API names: {missing}"
    );
    for slot in ["hospital_level", "filing_type"] {
        wait_for(browser, &format!(".field.is-missing[data-slot='{slot}']")).await;
    }
    // the answer to read out is there already
    let say = wait_for_text(browser, "#situation-answer .say", "不能再直接结算").await;
    assert!(say.starts_with("可以这样说"), "{say}");
    // what is certain already: the reimbursement materials, whatever the filing type
    let partial = wait_for_text(browser, "#checklist", "不管备案类型是哪种").await;
    assert!(partial.contains("住院费用清单"), "{partial}");
    let size = if wide { "1440x900" } else { "390x844" };
    let shot = if wide {
        browser.screenshot().await?
    } else {
        full_page_png(browser).await?
    };
    std::fs::write(screenshots().join(format!("call-{size}-asking.png")), shot).unwrap();
    // 2. 三级医院, 3. 长期住在上海: one click each
    browser
        .find(Locator::Css(
            "#missing .chip[data-slot='hospital_level'][data-value='3']",
        ))
        .await?
        .click()
        .await?;
    actions += 1;
    wait_for_value(browser, "hospital_level", "3").await;
    // the list is asked again and redrawn: one question left
    wait_for_text(browser, "#missing", "还需要问来电者（1 项）").await;
    browser
        .find(Locator::Css(
            "#missing .chip[data-slot='filing_type'][data-value='long_term_resident']",
        ))
        .await?
        .click()
        .await?;
    actions += 1;
    // the estimate side by side: as it stands, and after backfilling the filing
    let cases = wait_for_text(browser, "#estimate table.cases", "补办异地长期居住备案后").await;
    assert!(cases.contains("现在（未备案）"), "{cases}");
    assert!(
        cases.contains("22,344") && cases.contains("27,930"),
        "{cases}"
    );
    assert!(cases.contains("补备案后回参保地零星报销"), "{cases}");
    let basis = browser
        .find_all(Locator::Css("#estimate .basis li"))
        .await?
        .len();
    assert!((3..=5).contains(&basis), "{basis} lines of basis");
    let basis = browser
        .find(Locator::Css("#estimate .basis"))
        .await?
        .text()
        .await?;
    assert!(basis.contains('《'), "sources by title: {basis}");
    for raw in ["http", ".md", "zhangjiagang"] {
        assert!(!basis.contains(raw), "{raw} in the short basis: {basis}");
    }
    // the checklist: reimbursement by hand at 张家港's agency
    let list = wait_for_text(browser, "#checklist", "零星报销要带").await;
    assert!(list.contains("住院费用清单"), "{list}");
    assert!(list.contains("张家港医保经办机构"), "{list}");
    let missing_shown = browser
        .find(Locator::Css("#missing"))
        .await?
        .is_displayed()
        .await?;
    assert!(!missing_shown, "nothing left to ask");
    // 4. the text message for the estimate, copied
    browser
        .find(Locator::Css("#estimate .copy-sms"))
        .await?
        .click()
        .await?;
    actions += 1;
    wait_for(browser, "#estimate .copy-sms[data-copied='yes']").await;
    let seconds = started.elapsed().as_secs_f64();
    let sms = clipboard(browser).await?;
    assert!(sms.chars().count() <= 140, "{sms}");
    assert!(sms.contains("0512-12333") && sms.contains("27930"), "{sms}");
    // at 1440×900 every part the agent reads out is in view, without scrolling
    if wide {
        std::fs::write(
            screenshots().join("call-1440x900.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        for css in [
            "#caller-text",
            "#situation-answer .say",
            "#checklist .say",
            "#estimate .say",
            "#estimate table.cases",
            "#estimate .basis",
            "#new-call",
        ] {
            assert!(
                in_view(browser, css).await?,
                "{css} is not in view at 1440×900"
            );
        }
        let scrolled = browser
            .execute(
                "return [window.scrollY, document.documentElement.scrollTop]",
                vec![],
            )
            .await?;
        assert_eq!(scrolled, json!([0, 0]));
    }
    let _ = c;
    Ok(CallRun { actions, seconds })
}

/// Issue 21: the call from the issue, end to end in a real chromium, at 1440×900 and at
/// 390×844, counted in actions (and timed, for the closing note: not asserted); screenshots
/// of both sizes in `target/screenshots/`.
#[tokio::test]
async fn the_call_from_the_issue_takes_four_actions_at_both_sizes() {
    let c = Console::sqlite().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        log_in(&c, &browser).await?;
        grant_clipboard(&c, &browser).await?;
        let dir = screenshots();
        let mut report = String::new();
        // 1440×900: the window of a 1440×900 screen (the page gets what the browser's own
        // bars leave)
        browser.set_window_size(1440, 900).await?;
        let run = take_the_call(&c, &browser, true).await?;
        assert!(run.actions <= 5, "{} actions", run.actions);
        report.push_str(&format!(
            "1440x900: {} actions, {:.1} s\n",
            run.actions, run.seconds
        ));
        std::fs::write(dir.join("call-1440x900.png"), browser.screenshot().await?).unwrap();
        no_horizontal_scroll(&browser).await?;

        // one A4 page when printed
        browser.issue_cmd(print_media("print")).await?;
        for (css, shown) in [
            ("#checklist", true),
            ("#estimate", true),
            ("#situation-summary", true),
            ("#print-answer", true),
            ("#result .print-only", true),
            ("#search-panel", false),
            ("#situation", false),
            ("#unanswered-panel", false),
            ("#print", false),
            ("#logout", false),
            ("#estimate .full-rules", false),
        ] {
            let displayed = browser
                .find(Locator::Css(css))
                .await?
                .is_displayed()
                .await?;
            assert_eq!(displayed, shown, "{css} when printing");
        }
        // what the printed page looks like, for a person (A4 at 96 dpi)
        browser
            .issue_cmd(Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 794, "height": 1123, "deviceScaleFactor": 1, "mobile": false }),
            ))
            .await?;
        std::fs::write(
            dir.join("call-print-a4.png"),
            full_page_png(&browser).await?,
        )
        .unwrap();
        browser
            .issue_cmd(Cdp("Emulation.clearDeviceMetricsOverride", json!({})))
            .await?;
        browser.issue_cmd(print_media("")).await?;
        assert_eq!(printed_pages(&browser).await?, 1, "printed on one A4 page");

        // 新来电: nothing of this caller is left
        browser
            .find(Locator::Css("#new-call"))
            .await?
            .click()
            .await?;
        wait_for_value(&browser, "insured_region", "").await;
        assert_eq!(
            browser
                .find(Locator::Css("#caller-text"))
                .await?
                .prop("value")
                .await?
                .unwrap_or_default(),
            ""
        );
        for slot in ["stage", "total", "scheme", "hospital_level", "filing_type"] {
            assert_eq!(value(&browser, slot).await?, "", "{slot}");
            assert_eq!(source_of(&browser, slot).await?, "", "{slot}");
        }
        wait_for_text(&browser, "#estimate", "说了费用").await;
        let focused = browser
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, "caller-text", "ready for the next caller");

        // 390×844, a phone: the same call, no horizontal scrolling
        browser
            .issue_cmd(Cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
            ))
            .await?;
        let run = take_the_call(&c, &browser, false).await?;
        assert!(run.actions <= 5, "{} actions", run.actions);
        report.push_str(&format!(
            "390x844: {} actions, {:.1} s\n",
            run.actions, run.seconds
        ));
        no_horizontal_scroll(&browser).await?;
        std::fs::write(dir.join("call-390x844.png"), full_page_png(&browser).await?).unwrap();
        // the long lines (web addresses in the full rules, sources) wrap within the screen
        for css in [
            "#estimate .full-rules > summary",
            "#situation-answer details.full > summary",
            "#checklist details.sources-all > summary",
        ] {
            browser.find(Locator::Css(css)).await?.click().await?;
        }
        let rules = wait_for_text(&browser, "#estimate .full-rules .rules", "http").await;
        assert!(rules.contains("参数来源"), "{rules}");
        no_horizontal_scroll(&browser).await?;
        std::fs::write(dir.join("call-timing.txt"), report).unwrap();
        browser
            .issue_cmd(Cdp("Emulation.clearDeviceMetricsOverride", json!({})))
            .await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();

    // what the console sent and got is what the API document says
    let doc: Value = reqwest::get(c.url("/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let posted = c.posted.lock().unwrap().clone();
    let calls = posted
        .iter()
        .filter(|(p, ..)| p == "/v1/agent/call")
        .count();
    assert!(calls > 0, "{posted:?}");
    for (path, sent, got) in &posted {
        let (request, response) = match path.as_str() {
            "/v1/agent/call" => ("CallRequest", "CallView"),
            "/v1/agent/situation" => ("SituationText", "SituationSlots"),
            "/v1/agent/search" => ("AgentSearchRequest", "AgentSearch"),
            "/v1/agent/entry" => ("AgentEntryRequest", "AgentEntry"),
            "/v1/agent/unanswered" => continue,
            other if other.ends_with("/handled") => ("HandledRequest", "UnansweredQuestion"),
            other => panic!("unexpected {other}"),
        };
        for (name, body) in [(request, sent), (response, got)] {
            let validator = crate::http::schema_validator(&doc, name);
            let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{path} {name}: {errors:?}\n{body}");
        }
    }
}

/// Issue 21, item 2: the situation box reads like a colleague. Added text changes only what
/// it states; a field set by hand stays; corrections replace; the amounts of the issue are
/// read.
#[tokio::test]
async fn the_situation_box_keeps_hand_set_fields_and_reads_corrections() {
    let c = Console::sqlite().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        log_in(&c, &browser).await?;
        browser.set_window_size(1440, 900).await?;
        let story = browser.find(Locator::Css("#caller-text")).await?;
        story
            .send_keys("我妈苏州的，退休了，现在在上海住院")
            .await?;
        wait_for_value(&browser, "insured_region", "suzhou").await;
        wait_for_value(&browser, "stage", "in_hospital").await;
        // a correction in the story replaces
        story.send_keys("。不对，是张家港的").await?;
        wait_for_value(&browser, "insured_region", "zhangjiagang").await;
        assert_eq!(source_of(&browser, "insured_region").await?, "text");
        // the agent corrects a field by hand; more text leaves it alone
        select(&browser, "stage", "discharged_self_paid").await;
        wait_for(&browser, ".field[data-slot='stage'][data-source='hand']").await;
        story.send_keys("，自费3万2").await?;
        wait_for_value(&browser, "self_pay", "32000").await;
        assert_eq!(value(&browser, "stage").await?, "discharged_self_paid");
        assert_eq!(source_of(&browser, "stage").await?, "hand");
        assert_eq!(value(&browser, "insured_region").await?, "zhangjiagang");
        // text that states the hand-set field again: kept, and the status says so
        story.send_keys("，现在还在住院").await?;
        let status = wait_for_text(&browser, "#caller-status", "手填的没有改动").await;
        assert!(status.contains("就医阶段"), "{status}");
        assert_eq!(value(&browser, "stage").await?, "discharged_self_paid");
        // editing the story (not adding to it) reads it again; hand fields stay
        story.clear().await?;
        story.send_keys("总共32000，自费部分2000").await?;
        wait_for_value(&browser, "total", "32000").await;
        wait_for_value(&browser, "self_pay", "2000").await;
        wait_for_value(&browser, "insured_region", "").await;
        assert_eq!(value(&browser, "stage").await?, "discharged_self_paid");
        // a hand-set money field
        let total = browser.find(Locator::Css("#f-total")).await?;
        total.clear().await?;
        total.send_keys("5万").await?;
        wait_for(&browser, ".field[data-slot='total'][data-source='hand']").await;
        wait_for(&browser, ".field[data-slot='total']:not(.is-missing)").await;
        browser
            .execute(
                "document.querySelector('.field[data-slot=\"stage\"]').scrollIntoView({block: 'center'})",
                vec![],
            )
            .await?;
        std::fs::write(
            screenshots().join("situation-marks-1440x900.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
}

/// Issue 21, items 1 and 3: `/` focuses the search, `Esc` clears it; shorthand reaches its
/// entry; answers follow the caller's region; related entries and plausible ones are links;
/// the honest "no answer" only when nothing plausible exists.
#[tokio::test]
async fn search_for_agents_with_keys_shorthand_regions_and_links() {
    let c = Console::sqlite().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        log_in(&c, &browser).await?;
        grant_clipboard(&c, &browser).await?;
        browser.set_window_size(1440, 900).await?;
        select(&browser, "insured_region", "zhangjiagang").await;
        // `/` from anywhere outside a text field
        browser
            .find(Locator::Css("#situation-title"))
            .await?
            .click()
            .await?;
        browser
            .execute(
                "document.activeElement.blur(); document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true}));",
                vec![],
            )
            .await?;
        let focused = browser
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, "q");
        for (query, id) in [
            ("门特", "chronic-special-drugs"),
            ("门诊慢特病", "chronic-special-drugs"),
            ("张家港 窗口 地址", "contacts"),
            ("窗口地址", "contacts"),
            ("转外", "referral"),
            ("备案撤销", "filing-validity"),
        ] {
            paste(&browser, "#q", query).await?;
            wait_for_text(&browser, "#search-status", "最相关").await;
            wait_for(&browser, &format!("#answers .entry[data-faq-id='{id}']")).await;
            let text = browser
                .find(Locator::Css("#answers"))
                .await?
                .text()
                .await?;
            assert!(!text.contains("没有这个问题的可靠答案"), "{query}: {text}");
            let first = browser
                .find(Locator::Css("#answers .entry"))
                .await?
                .attr("data-faq-id")
                .await?;
            assert_eq!(first.as_deref(), Some(id), "{query}");
        }
        // the caller's region first, the others folded
        paste(&browser, "#q", "怎么查备案有没有成功").await?;
        let entry = wait_for(&browser, "#answers .entry[data-faq-id='filing-status-query']").await;
        entry.find(Locator::Css("details.full > summary")).await?.click().await?;
        let first = entry
            .find(Locator::Css("details.full > .answer-text"))
            .await?
            .text()
            .await?;
        assert!(first.starts_with("张家港参保"), "{first}");
        // with the day the entry was checked and the tiers of its documents (issue 22)
        let provenance = entry
            .find(Locator::Css("details.full > .provenance"))
            .await?
            .text()
            .await?;
        assert!(provenance.starts_with("核对日期"), "{provenance}");
        let others = entry.find(Locator::Css("details.others")).await?;
        assert_eq!(others.attr("open").await?, None, "other regions folded");
        std::fs::write(
            screenshots().join("search-1440x900.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        // the sentence to read out, copied
        entry
            .find(Locator::Css("button.copy-say"))
            .await?
            .click()
            .await?;
        wait_for(&browser, "#answers .entry button.copy-say[data-copied='yes']").await;
        let copied = clipboard(&browser).await?;
        let say = entry.find(Locator::Css(".say-text")).await?.text().await?;
        assert_eq!(copied, say);
        // a related entry is a link
        entry
            .find(Locator::Css(".related a.entry-link"))
            .await?
            .click()
            .await?;
        wait_for_text(&browser, "#search-status", "相关条目").await;
        // a question outside cross-region care: referred, not guessed
        paste(&browser, "#q", "养老金什么时候涨").await?;
        let text = wait_for_text(&browser, "#answers .notice", "不是异地就医的问题").await;
        assert!(browser.find_all(Locator::Css("#answers .entry")).await?.is_empty(), "{text}");
        // nothing plausible at all: the honest answer with the region's hotline
        paste(&browser, "#q", "").await?;
        wait_for(&browser, "#situation-answer:not([hidden])").await;
        paste(&browser, "#q", "兔子为什么爱吃胡萝卜").await?;
        let text = wait_for_text(&browser, "#answers .notice", "").await;
        assert!(
            text.contains("没有这个问题的可靠答案") || text.contains("不是异地就医的问题"),
            "{text}"
        );
        // plausible entries: clickable, with a short warning
        paste(&browser, "#q", "").await?;
        wait_for(&browser, "#situation-answer:not([hidden])").await;
        paste(&browser, "#q", "窗口").await?;
        let warning = wait_for_text(&browser, "#answers .notice.plausible", "核对").await;
        assert!(!warning.contains("没有这个问题的可靠答案"), "{warning}");
        let first = wait_for(&browser, "#answers .entry.plausible").await;
        let id = first.attr("data-faq-id").await?.unwrap_or_default();
        // each is an entry to open: what to say, the full answer folded
        first
            .find(Locator::Css("details.full > summary"))
            .await?
            .click()
            .await?;
        let opened = browser
            .find(Locator::Css(&format!(
                "#answers .entry[data-faq-id='{id}'] details.full"
            )))
            .await?
            .attr("open")
            .await?;
        assert!(opened.is_some(), "{id} opens");
        // Esc clears the search and brings back the caller's answer
        browser
            .find(Locator::Css("#q"))
            .await?
            .send_keys("\u{E00C}")
            .await?;
        let cleared = browser.find(Locator::Css("#q")).await?.prop("value").await?;
        assert_eq!(cleared.as_deref(), Some(""));
        assert!(browser.find_all(Locator::Css("#answers > *")).await?.is_empty());
        // Alt+N: a new call from the keyboard
        browser
            .find(Locator::Css("#caller-text"))
            .await?
            .send_keys("现在在上海住院")
            .await?;
        wait_for_value(&browser, "care_location", "shanghai").await;
        // the region set by hand stays through the story
        assert_eq!(value(&browser, "insured_region").await?, "zhangjiagang");
        browser
            .execute(
                "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'n', code: 'KeyN', altKey: true, bubbles: true}));",
                vec![],
            )
            .await?;
        wait_for_value(&browser, "insured_region", "").await;
        wait_for_value(&browser, "care_location", "").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
}

/// Issue 21, item 6: earlier conversations by session or caller id, transcript lines with
/// time and channel, the inbox labelled and marked handled (stored with who and when).
#[tokio::test]
async fn caller_history_and_the_inbox_in_a_real_browser() {
    let c = Console::sqlite().await;
    let out_of_scope = chat(&c, "养老金什么时候涨").await;
    // a Telegram chat's conversation, stored under its caller id's keyed hash
    let telegram =
        yidi::conversation::Conversations::new(assistant(), c.store.clone()).on_channel("telegram");
    let chat_id = "424242";
    let stored = c.store.caller_session_id(&format!("telegram:{chat_id}"));
    telegram
        .turn(&stored, "社保卡在外地刷不了怎么办")
        .await
        .unwrap();
    // an in-scope question nobody could answer
    c.store
        .save_turn(&yidi::store::TurnRecord {
            session_id: "s-unknown",
            state: "{}",
            expected_revision: None,
            user_text: "异地备案的回执单丢了要紧吗",
            reply_text: "抱歉……",
            faq_id: None,
            dialog: None,
            kind: "unanswered",
            unanswered: true,
            request: None,
            channel: Some("wechat"),
        })
        .await
        .unwrap();
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        log_in(&c, &browser).await?;
        browser.set_window_size(1440, 900).await?;
        // the inbox: both kinds, labelled
        let item = wait_for_text(&browser, "#unanswered", "养老金什么时候涨").await;
        assert!(
            item.contains("超出范围") && item.contains("未能回答"),
            "{item}"
        );
        let first = browser
            .find(Locator::Css("#unanswered li.unanswered-item"))
            .await?;
        assert!(first.text().await?.contains("回执单"), "newest first");
        first
            .find(Locator::Css("button.mark-handled"))
            .await?
            .click()
            .await?;
        let handled = wait_for_text(&browser, "#unanswered li.handled", "已处理：坐席").await;
        let tag = &c.digest[..12];
        assert!(handled.contains(tag), "{handled}");
        wait_for_text(&browser, "#unanswered-status", "未处理 1 条，共 2 条").await;
        let muted = browser
            .execute(
                "const q = document.querySelector('#unanswered li.handled .question');\n\
                 const open = document.querySelector('#unanswered li:not(.handled) .question');\n\
                 return getComputedStyle(q).color !== getComputedStyle(open).color;",
                vec![],
            )
            .await?;
        assert_eq!(muted, json!(true), "a handled question is greyed");
        // the transcript of the out-of-scope question: time and channel on every line
        let pension = browser
            .find(Locator::Css("#unanswered li.unanswered-item:nth-child(2)"))
            .await?;
        pension
            .find(Locator::Css("button.show-transcript"))
            .await?
            .click()
            .await?;
        let transcript = wait_for_text(&browser, "#transcript", "养老金什么时候涨").await;
        assert!(transcript.contains("［超出范围］"), "{transcript}");
        let metas = browser
            .find_all(Locator::Css("#transcript .line .meta"))
            .await?;
        assert_eq!(metas.len(), 2);
        for m in metas {
            let t = m.text().await?;
            assert!(t.contains("网页/API") && t.contains(':'), "{t}");
        }
        // a caller's history by their Telegram chat id
        let lookup = browser.find(Locator::Css("#history-q")).await?;
        lookup.send_keys(chat_id).await?;
        browser
            .find(Locator::Css("#history-search"))
            .await?
            .click()
            .await?;
        let found = wait_for_text(&browser, "#history", "Telegram").await;
        assert!(found.contains("2 句"), "{found}");
        browser
            .find(Locator::Css("#history .show-transcript"))
            .await?
            .click()
            .await?;
        wait_for_text(&browser, "#transcript", "社保卡在外地刷不了怎么办").await;
        wait_for_text(&browser, "#transcript .meta", "Telegram").await;
        // and by a session id as the inbox shows it
        lookup.clear().await?;
        lookup.send_keys(&out_of_scope).await?;
        browser
            .find(Locator::Css("#history-search"))
            .await?
            .click()
            .await?;
        wait_for_text(&browser, "#history", "网页/API").await;
        lookup.clear().await?;
        lookup.send_keys("nobody").await?;
        browser
            .find(Locator::Css("#history-search"))
            .await?
            .click()
            .await?;
        wait_for_text(&browser, "#history-status", "没有找到").await;
        browser
            .execute(
                "document.getElementById('records').scrollIntoView()",
                vec![],
            )
            .await?;
        std::fs::write(
            screenshots().join("records-1440x900.png"),
            browser.screenshot().await?,
        )
        .unwrap();
        // handled is stored: a reload shows it still
        browser.refresh().await?;
        wait_for_text(&browser, "#unanswered li.handled", "已处理").await;
        // logout: back to the login page, and the console stays closed
        browser.find(Locator::Css("#logout")).await?.click().await?;
        wait_for(&browser, "#login-page").await;
        browser.goto(&c.url("/console")).await?;
        wait_for(&browser, "#login-page").await;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
}

/// Issue 23 (first contact), kept by issue 25: `/` (now the residents' FAQ home) still leads
/// to the console and, in its footer, to the API document, which Redoc (served from the binary, no CDN) renders in a real
/// browser under the page's Content-Security-Policy.
#[tokio::test]
async fn the_home_page_leads_to_the_console_and_a_readable_api_document() {
    let c = Console::sqlite().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        browser.goto(&c.url("/")).await?;
        wait_for_text(&browser, "h1", "异地就医问答").await;
        browser
            .find(Locator::Css("#console-link"))
            .await?
            .click()
            .await?;
        wait_for(&browser, "#login-page").await;
        browser.goto(&c.url("/")).await?;
        browser
            .find(Locator::Css("#docs-link"))
            .await?
            .click()
            .await?;
        // Redoc has read /v1/openapi.json and rendered its operations
        wait_for_text(&browser, "body", "search the FAQ").await;
        wait_for_text(&browser, "body", "send a message, get the reply").await;
        let scripts: Vec<String> = browser
            .execute(
                "return Array.from(document.scripts).map(s => s.src)",
                vec![],
            )
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        assert!(
            scripts.iter().all(|s| s.starts_with(&c.base)),
            "only this server's scripts: {scripts:?}"
        );
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.unwrap();
}
