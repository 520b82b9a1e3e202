//! The agent console (`/console`) and the agent-only endpoints: plain HTTP (reqwest, raw TCP
//! for paths a client would normalise) against the real server, and a real headless browser
//! (Debian's chromium through chromedriver and fantoccini) that logs in, searches and fills
//! the situation form.

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
    /// The bodies posted to /v1/checklist and /v1/estimate: (path, body).
    posted: Posted,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

type Posted = Arc<std::sync::Mutex<Vec<(String, Value)>>>;

impl Console {
    async fn start(db: TestDb, with_agent: bool) -> Console {
        let store = Store::connect(&db.url).await.expect("connect + migrate");
        let (token, digest) = new_agent_token();
        let mut state = AppState::new(assistant(), store.clone());
        if with_agent {
            state = state.with_agents(AgentAuth::from_sha256_hex(&[digest]).unwrap());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        // the bodies the console posts to the checklist and the estimate, kept to check
        // them against the API document
        let posted: Posted = Arc::default();
        let record = posted.clone();
        let app = http::app(state).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let record = record.clone();
                async move {
                    let path = req.uri().path().to_string();
                    if !matches!(path.as_str(), "/v1/checklist" | "/v1/estimate") {
                        return next.run(req).await;
                    }
                    let (parts, body) = req.into_parts();
                    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                        record.lock().unwrap().push((path, v));
                    }
                    let req =
                        axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
                    next.run(req).await
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

/// Installs chromium and chromedriver with the project's script when they are missing. A
/// failure is a test failure.
fn ensure_browser() {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return;
    }
    let status = Command::new("bash")
        .arg(repo().join(".ci/install-browser"))
        .status()
        .expect(".ci/install-browser runs");
    assert!(status.success(), ".ci/install-browser failed: {status}");
    assert!(Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists());
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
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

    async fn browser(&self, profile: &Path) -> Client {
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
struct Cdp(&'static str, Value);

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

async fn wait_for(browser: &Client, css: &str) -> fantoccini::elements::Element {
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
async fn wait_for_text(browser: &Client, css: &str, needle: &str) -> String {
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

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let c = Console::sqlite().await;
    let unanswered = chat(&c, "养老金什么时候涨").await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = browse(&c, &browser, &unanswered).await;
    let _ = browser.close().await;
    result.unwrap();

    // what the console posted is what the API document says (issue 23: integers and
    // booleans as such, not strings); required fields aside, since the form posts as it is
    // filled in
    let mut doc: Value = reqwest::get(c.url("/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for name in ["Situation", "EstimateInput"] {
        doc["components"]["schemas"][name]
            .as_object_mut()
            .unwrap()
            .remove("required");
    }
    let posted = c.posted.lock().unwrap().clone();
    let estimates = posted.iter().filter(|(p, _)| p == "/v1/estimate").count();
    assert!(estimates > 0 && posted.len() > estimates, "{posted:?}");
    for (path, body) in &posted {
        let name = if path == "/v1/estimate" {
            "EstimateInput"
        } else {
            "Situation"
        };
        let validator = crate::http::schema_validator(&doc, name);
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{path}: {errors:?}\n{body}");
    }
}

async fn browse(
    c: &Console,
    browser: &Client,
    unanswered_session: &str,
) -> Result<(), fantoccini::error::CmdError> {
    // the login page; a wrong token shows the error
    browser.goto(&c.url("/console")).await?;
    wait_for(browser, "#login-page").await;
    browser
        .find(Locator::Css("#token"))
        .await?
        .send_keys("not-the-token")
        .await?;
    browser.find(Locator::Css("#login")).await?.click().await?;
    wait_for_text(browser, "#login-error", "坐席令牌不正确").await;

    // the right token opens the console
    browser
        .find(Locator::Css("#token"))
        .await?
        .send_keys(&c.token)
        .await?;
    browser.find(Locator::Css("#login")).await?.click().await?;
    let q = wait_for(browser, "#q").await;
    assert_eq!(browser.current_url().await?.path(), "/console");

    // search as you type: answers with their sources and a copy button
    q.send_keys("社保卡在外地刷不了怎么办").await?;
    let sources = wait_for_text(browser, "#answers li.answer .sources", "来源：").await;
    assert!(sources.contains('《'), "cited by title: {sources}");
    // with the day the entry was checked and the tiers of its documents
    let provenance = wait_for_text(browser, "#answers li.answer .provenance", "核对日期").await;
    assert!(provenance.contains("官方原文"), "{provenance}");
    let first = browser.find(Locator::Css("#answers li.answer")).await?;
    let answer = first
        .find(Locator::Css(".answer-text"))
        .await?
        .text()
        .await?;
    assert!(answer.chars().count() > 20, "{answer}");
    assert!(answer.contains("备案"), "{answer}");
    assert!(
        browser
            .find_all(Locator::Css("#answers li.answer"))
            .await?
            .len()
            <= 3
    );
    // 复制 puts the answer and its sources on the clipboard
    let permissions = json!({
        "origin": c.base,
        "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
    });
    browser
        .issue_cmd(Cdp("Browser.grantPermissions", permissions))
        .await?;
    first
        .find(Locator::Css("button.copy"))
        .await?
        .click()
        .await?;
    wait_for(browser, "#answers li.answer button.copy[data-copied='yes']").await;
    let copied = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             navigator.clipboard.readText().then(done, e => done('error: ' + e));",
            vec![],
        )
        .await?;
    let copied = copied.as_str().unwrap_or_default();
    assert!(copied.starts_with(&answer), "{copied}");
    assert!(copied.contains("\n来源：《"), "{copied}");

    // a question outside the knowledge: the honest "no answer" with the hotline
    q.clear().await?;
    q.send_keys("养老金什么时候涨").await?;
    let text = wait_for_text(browser, "#answers .no-answer", "没有这个问题的可靠答案").await;
    assert!(text.contains("0512-12333"), "{text}");
    assert!(
        browser
            .find_all(Locator::Css("#answers li.answer"))
            .await?
            .is_empty()
    );

    // the situation form fills the checklist
    for (slot, value) in [
        ("insured_region", "suzhou"),
        ("scheme", "employee"),
        ("employment", "retired"),
        ("care_location", "shanghai"),
        ("filing_type", "long_term_resident"),
        ("filed", "false"),
        ("stage", "before_care"),
        ("visit", "inpatient"),
        ("by_proxy", "true"),
    ] {
        select(browser, slot, value).await;
    }
    wait_for(browser, "#checklist .filing li[data-id='identity']").await;
    let checklist = wait_for_text(browser, "#checklist", "办理渠道").await;
    assert!(checklist.contains("备案所需材料"), "{checklist}");
    assert!(checklist.contains("来源："), "{checklist}");
    wait_for(browser, "#checklist .filing li[data-id='residence-proof']").await;
    wait_for(browser, "#checklist .filing li[data-id='proxy-identity']").await;
    let summary = wait_for_text(browser, "#situation-summary", "参保地：苏州").await;
    assert!(summary.contains("异地长期居住"), "{summary}");

    // ... and the estimate (once filed, with a level and a total)
    select(browser, "filed", "true").await;
    select(browser, "hospital_level", "3").await;
    browser
        .find(Locator::Css("#f-total"))
        .await?
        .send_keys("50000")
        .await?;
    let estimate = wait_for_text(browser, "#estimate", "医保基金支付").await;
    assert!(estimate.contains("仅供参考"), "{estimate}");
    assert!(estimate.contains("个人负担"), "{estimate}");
    wait_for(browser, "#estimate table.bands td.money").await;
    wait_for(browser, "#estimate .rules li").await;
    // printing shows the result only (print media emulated through chromedriver's CDP bridge)
    browser.issue_cmd(print_media("print")).await?;
    for (css, shown) in [
        ("#checklist", true),
        ("#estimate", true),
        ("#situation-summary", true),
        ("#result .print-only", true),
        ("#search-panel", false),
        ("#situation", false),
        ("#unanswered-panel", false),
        ("#print", false),
        ("#logout", false),
    ] {
        let displayed = browser
            .find(Locator::Css(css))
            .await?
            .is_displayed()
            .await?;
        assert_eq!(displayed, shown, "{css} when printing");
    }
    browser.issue_cmd(print_media("")).await?;
    assert!(
        browser
            .find(Locator::Css("#search-panel"))
            .await?
            .is_displayed()
            .await?
    );
    // a field the estimate rejects: its Chinese message, not a crash
    let total = browser.find(Locator::Css("#f-total")).await?;
    total.clear().await?;
    total.send_keys("-5").await?;
    let error = wait_for_text(browser, "#estimate .error", "").await;
    assert!(
        error
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{error}"
    );
    // 张家港: estimated with the Suzhou table, saying so with the hotline that confirms
    total.clear().await?;
    total.send_keys("50000").await?;
    wait_for_text(browser, "#estimate", "医保基金支付").await;
    select(browser, "insured_region", "zhangjiagang").await;
    let zjg = wait_for_text(browser, "#estimate", "按苏州大市统一的医保待遇表估算").await;
    assert!(zjg.contains("0512-12333"), "{zjg}");
    // a case the policy refuses (residents' outpatient care): its reason, shown as such
    select(browser, "scheme", "resident").await;
    select(browser, "visit", "outpatient").await;
    let refusal = wait_for_text(browser, "#estimate .error", "无法估算").await;
    assert!(refusal.contains("0512-12333"), "{refusal}");
    // the checklist follows the situation too: filed, before care, nothing to prepare
    wait_for_text(browser, "#situation-summary", "参保地：张家港").await;
    wait_for_text(browser, "#checklist", "不需要另外准备").await;
    // the print button is there (printing itself opens a dialog)
    wait_for(browser, "#print").await;
    // YIDI_CONSOLE_SCREENSHOT=DIR keeps a picture of the page for a human to look at
    if let Some(dir) = std::env::var_os("YIDI_CONSOLE_SCREENSHOT") {
        let png = browser.screenshot().await?;
        std::fs::write(Path::new(&dir).join("console.png"), png).unwrap();
    }

    // unanswered questions, with the conversation behind them
    let item = wait_for_text(
        browser,
        "#unanswered li.unanswered-item",
        "养老金什么时候涨",
    )
    .await;
    assert!(!item.is_empty());
    browser
        .find(Locator::Css(
            "#unanswered li.unanswered-item button.show-transcript",
        ))
        .await?
        .click()
        .await?;
    let transcript = wait_for_text(browser, "#transcript", "用户：").await;
    assert!(transcript.contains("养老金什么时候涨"), "{transcript}");
    // each reply shows its kind
    assert!(transcript.contains("［超出范围］"), "{transcript}");
    assert!(!unanswered_session.is_empty());

    // what the agent types about the caller fills the form; the agent can still change it
    browser.find(Locator::Css("#reset")).await?.click().await?;
    browser
        .find(Locator::Css("#caller-text"))
        .await?
        .send_keys("我爸苏州退休的，在上海住院，出院了才想起没备案")
        .await?;
    wait_for_text(browser, "#caller-status", "已根据描述填写").await;
    let value = |slot: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .execute(
                    &format!("return document.getElementById('f-{slot}').value"),
                    vec![],
                )
                .await
        }
    };
    assert_eq!(value("insured_region").await?, "suzhou");
    assert_eq!(value("employment").await?, "retired");
    assert_eq!(value("care_location").await?, "shanghai");
    assert_eq!(value("filed").await?, "false");
    wait_for_text(browser, "#situation-summary", "参保地：苏州").await;
    select(browser, "insured_region", "zhangjiagang").await;
    wait_for_text(browser, "#situation-summary", "参保地：张家港").await;

    // logout: back to the login page, and the console stays closed
    browser.find(Locator::Css("#logout")).await?.click().await?;
    wait_for(browser, "#login-page").await;
    browser.goto(&c.url("/console")).await?;
    wait_for(browser, "#login-page").await;
    Ok(())
}

/// Issue 23 (first contact): `/` tells a newcomer what this is and leads to the console and
/// to the API document, which Redoc (served from the binary, no CDN) renders in a real
/// browser under the page's Content-Security-Policy.
#[tokio::test]
async fn the_home_page_leads_to_the_console_and_a_readable_api_document() {
    let c = Console::sqlite().await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let result = async {
        browser.goto(&c.url("/")).await?;
        wait_for_text(&browser, "h1", "异地就医小助手").await;
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
