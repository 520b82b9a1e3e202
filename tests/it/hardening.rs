//! Issue 10 (hardening): bad input and data errors.

use crate::helpers::*;

/// `yidi check` on a knowledge copy: the exit code and the error lines (after the headers).
fn check(dir: &std::path::Path) -> (Option<i32>, Vec<String>) {
    let out = yidi(&["--knowledge", dir.to_str().unwrap(), "check"], "");
    let err = stderr(&out);
    let lines = err
        .lines()
        .filter(|l| !l.starts_with("invalid "))
        .map(str::to_string)
        .collect();
    (out.status.code(), lines)
}

#[test]
fn a_wrong_type_names_its_field_and_causes_no_follow_on_errors() {
    let dir = knowledge_copy();
    let path = dir.path().join("faq/contacts.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("variants = [", "variants = \"x\"\nx = [", 1),
    )
    .unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("faq/contacts.toml: entry `contacts`: field `variants`: line "),
        "{lines:#?}"
    );
    assert!(lines[0].contains("expected a sequence"), "{lines:#?}");
}

#[test]
fn an_unreadable_sources_file_is_one_error_not_one_per_citation() {
    let dir = knowledge_copy();
    std::fs::write(dir.path().join("sources.toml"), b"\xff\xfe not UTF-8").unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("sources.toml: cannot read"),
        "{lines:#?}"
    );
}

#[test]
fn data_errors_name_paths_relative_to_the_knowledge_folder() {
    let dir = knowledge_copy();
    let path = dir.path().join("policies/suzhou.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\ngarbage = [\n");
    std::fs::write(&path, text).unwrap();
    let (code, lines) = check(dir.path());
    assert_eq!(code, Some(1));
    let root = dir.path().to_str().unwrap();
    assert!(
        lines.iter().all(|l| !l.contains(root)),
        "no absolute path: {lines:#?}"
    );
    assert!(
        lines[0].starts_with("policies/suzhou.toml: line "),
        "{lines:#?}"
    );

    let dir = knowledge_copy();
    std::fs::write(dir.path().join("checklist.toml"), b"\xff").unwrap();
    let (_, lines) = check(dir.path());
    let root = dir.path().to_str().unwrap();
    assert!(lines.iter().all(|l| !l.contains(root)), "{lines:#?}");
    assert!(
        lines[0].starts_with("checklist.toml: cannot read"),
        "{lines:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTP API on a real database

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use yidi::channels::console::{AgentAuth, new_agent_token};
use yidi::channels::http::{self, AppState};
use yidi::config::Limits;
use yidi::conversation::Conversations;
use yidi::store::Store;

use crate::db::TestDb;

/// A server on 127.0.0.1:0 with roomy limits; stopped when the sender drops.
struct Server {
    base: String,
    client: reqwest::Client,
    store: Store,
    agent_token: String,
    _stop: oneshot::Sender<()>,
    _db: TestDb,
}

impl Server {
    async fn start(db: TestDb) -> Server {
        Server::start_with(db, |s| s).await
    }

    async fn start_with(db: TestDb, configure: impl FnOnce(AppState) -> AppState) -> Server {
        let store = Store::connect_with_timeout(&db.url, Duration::from_secs(1))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let limits = Limits {
            per_ip_per_minute: 100_000,
            per_ip_burst: 10_000,
            per_session_per_minute: 100_000,
            per_session_burst: 10_000,
            trust_forwarded_for: false,
        };
        let (agent_token, digest) = new_agent_token();
        let state = AppState::from_conversations(
            Conversations::new(assistant(), store.clone()).with_limits(&limits),
        )
        .with_agents(AgentAuth::from_sha256_hex(&[digest]).unwrap());
        let state = configure(state);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(http::serve(listener, state, async {
            let _ = rx.await;
        }));
        Server {
            base,
            client: reqwest::Client::new(),
            store,
            agent_token,
            _stop: tx,
            _db: db,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A new session: (id, token).
    async fn session(&self) -> (String, String) {
        let (status, body) = self
            .send(self.client.post(format!("{}/v1/sessions", self.base)))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        (
            body["session_id"].as_str().unwrap().into(),
            body["token"].as_str().unwrap().into(),
        )
    }
}

#[tokio::test]
async fn nul_bytes_anywhere_are_client_errors_or_stripped_never_5xx_on_postgres() {
    let s = Server::start(TestDb::postgres().await).await;
    let (id, token) = s.session().await;
    let url = |p: &str| format!("{}{p}", s.base);
    let bearer = format!("Bearer {token}");

    // a message with NUL: answered, stored without it
    let (status, _) = s
        .send(
            s.client
                .post(url(&format!("/v1/sessions/{id}/messages")))
                .header("authorization", &bearer)
                .json(&json!({"text": "备案\u{0}材料清单"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines = s.store.transcript(&id).await.unwrap();
    assert_eq!(lines[0].text, "备案材料清单");

    let mut statuses = Vec::new();
    // NUL in a path, a session id, a comment, a FAQ id, an agent's look-up
    for (method, path, body) in [
        (
            "POST",
            format!("/v1/sessions/{id}%00/messages"),
            Some(json!({"text": "你好"})),
        ),
        ("GET", format!("/v1/sessions/%00{id}"), None),
        ("GET", "/v1/faq/%00".to_string(), None),
        ("GET", "/v1/faq/search?q=%00".to_string(), None),
        (
            "POST",
            "/v1/feedback".to_string(),
            Some(json!({"helpful": true, "comment": "好\u{0}的"})),
        ),
        (
            "POST",
            "/v1/feedback".to_string(),
            Some(json!({"helpful": true, "session_id": format!("{id}\u{0}")})),
        ),
        (
            "POST",
            "/v1/feedback".to_string(),
            Some(json!({"helpful": false, "faq_id": "\u{0}"})),
        ),
        ("GET", "/v1/agent/sessions/%00/transcript".to_string(), None),
        (
            "GET",
            format!("/v1/agent/sessions/{id}%00/transcript"),
            None,
        ),
    ] {
        let mut req = match method {
            "GET" => s.client.get(url(&path)),
            _ => s.client.post(url(&path)),
        };
        req = if path.starts_with("/v1/agent") {
            req.header("authorization", format!("Bearer {}", s.agent_token))
        } else {
            req.header("authorization", &bearer)
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, body) = s.send(req).await;
        assert!(
            status.is_success() || status.is_client_error(),
            "{method} {path}: {status} {body}"
        );
        statuses.push(status.as_u16());
    }
    // the stripped id is the session itself: its owner's token opens it, anyone else's does not
    assert_eq!(statuses, [200, 200, 404, 200, 201, 201, 422, 404, 200]);
    assert_eq!(s.store.count("feedback").await.unwrap(), 2);
}

#[tokio::test]
async fn agent_and_session_json_is_never_cached_nor_sniffed() {
    let s = Server::start(TestDb::sqlite()).await;
    let (id, token) = s.session().await;
    for (path, bearer) in [
        ("/v1/agent/unanswered".to_string(), s.agent_token.clone()),
        (format!("/v1/sessions/{id}"), token.clone()),
        ("/v1/faq/search?q=备案".to_string(), String::new()),
    ] {
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

/// Issue 23: without a token, its own listener or `metrics.open`, `/metrics` refuses.
#[tokio::test]
async fn metrics_are_closed_unless_configured_open() {
    let s = Server::start(TestDb::sqlite()).await;
    let r = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "metrics_closed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metrics.open"),
        "{body}"
    );
    let s = Server::start_with(TestDb::sqlite(), AppState::with_open_metrics).await;
    let r = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("# EOF"));
}

#[tokio::test]
async fn metrics_can_require_a_token_or_live_on_another_listener() {
    let (token, digest) = new_agent_token();
    let s = Server::start_with(TestDb::sqlite(), |state| {
        state.with_metrics_access(Some(AgentAuth::from_sha256_hex(&[digest]).unwrap()), false)
    })
    .await;
    let metrics = |bearer: Option<&str>| {
        let mut req = s.client.get(format!("{}/metrics", s.base));
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        req.send()
    };
    assert_eq!(
        metrics(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics(Some("wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = metrics(Some(&token)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("# EOF"));

    // elsewhere: not on the API's address, but on its own listener
    let s = Server::start_with(TestDb::sqlite(), |state| {
        state.with_metrics_access(None, true)
    })
    .await;
    let r = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let store = Store::connect(&TestDb::sqlite().url).await.unwrap();
    let state = AppState::from_conversations(Conversations::new(assistant(), store))
        .with_metrics_access(None, true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve_router(
        listener,
        http::metrics_app(state),
        Default::default(),
        std::future::pending(),
    ));
    let r = s
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .client
        .get(format!("http://{addr}/v1/faq/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn early_refusals_close_the_connection_and_say_so() {
    let s = Server::start(TestDb::sqlite()).await;
    let big = "x".repeat(http::MAX_BODY_BYTES + 10);
    let url = |p: &str| format!("{}{p}", s.base);
    for (req, status) in [
        (
            s.client
                .post(url("/v1/estimate"))
                .header("content-type", "application/json")
                .body(big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            s.client.get(url("/v1/estimate")),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            s.client.post(url("/v1/estimate")).body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            s.client
                .post(url("/v1/sessions/abc/messages"))
                .json(&json!({"text": "你好"})),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["connection"], "close", "{status}");
    }
}

// ---------------------------------------------------------------------------------------------
// Connections: raw sockets against the server's limits

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the server closes the connection (or `limit` passes): what it sent, and when
/// it closed.
async fn read_until_closed(
    sock: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), sock.read(&mut buf))
            .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

fn tight(http: &mut yidi::config::Http) {
    http.header_timeout_secs = 1;
    http.max_connections = 4;
}

#[tokio::test]
async fn slow_or_silent_connections_are_closed_after_the_header_timeout() {
    let s = Server::start_with(TestDb::sqlite(), |state| {
        let mut h = yidi::config::Http::default();
        tight(&mut h);
        state.with_http(h)
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();

    // silent
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // half a request (slowloris)
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // idle keep-alive after one request
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for (name, sock) in [
        ("silent", &mut silent),
        ("slow", &mut slow),
        ("idle", &mut idle),
    ] {
        let (got, closed) = read_until_closed(sock, Duration::from_secs(5)).await;
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open after 5 s"));
        assert!(closed < Duration::from_millis(2500), "{name}: {closed:?}");
        if name == "idle" {
            assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        }
    }
}

#[tokio::test]
async fn idle_sockets_over_the_cap_make_room_and_health_checks_still_pass() {
    let s = Server::start_with(TestDb::sqlite(), |state| {
        state.with_http(yidi::config::Http {
            // long enough that only making room can let the checks in
            header_timeout_secs: 60,
            max_connections: 4,
            ..Default::default()
        })
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    // ten times the cap of idle and half-sent sockets
    let mut idle = Vec::new();
    for i in 0..40 {
        let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(sock);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..6 {
        let started = Instant::now();
        let r = s
            .client
            .get(format!("{}/healthz", s.base))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        assert!(
            r.is_ok_and(|r| r.status() == StatusCode::OK),
            "health check {i} failed after {:?}",
            started.elapsed()
        );
    }
    drop(idle);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_half_sent_requests() {
    let store = Store::connect(&TestDb::sqlite().url).await.unwrap();
    let state = AppState::from_conversations(Conversations::new(assistant(), store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(listener, state, async {
        let _ = rx.await;
    }));
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("the server stops at once")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(1)).await;
    assert!(closed.is_some());
}

#[tokio::test]
async fn a_stalled_database_answers_503_quickly_and_readyz_turns_red() {
    use sqlx::Connection;
    let db = TestDb::postgres().await;
    let url = db.url.clone();
    let s = Server::start(db).await;
    let (id, token) = s.session().await;
    let ready = || s.client.get(format!("{}/readyz", s.base)).send();
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);

    // another client holds the sessions table: every statement on it waits
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = s
        .send(
            s.client
                .post(format!("{}/v1/sessions/{id}/messages", s.base))
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({"text": "备案材料清单"})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(
        ready().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .unwrap();
    assert_eq!(ready().await.unwrap().status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Concurrent turns of one session

async fn twenty_concurrent_turns_on_one_session(db: TestDb) {
    let s = Server::start(db).await;
    let (id, token) = s.session().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let req = s
            .client
            .post(format!("{}/v1/sessions/{id}/messages", s.base))
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({"text": format!("起付线是什么 {i}")}));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    eprintln!(
        "20 concurrent turns on one session: {:?}",
        started.elapsed()
    );
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let lines = s.store.transcript(&id).await.unwrap();
    assert_eq!(
        lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn twenty_concurrent_turns_on_one_session_all_succeed_on_sqlite() {
    twenty_concurrent_turns_on_one_session(TestDb::sqlite()).await;
}

#[tokio::test]
async fn twenty_concurrent_turns_on_one_session_all_succeed_on_postgres() {
    twenty_concurrent_turns_on_one_session(TestDb::postgres().await).await;
}

#[tokio::test]
async fn two_replicas_writing_one_session_retry_with_backoff_and_all_turns_land() {
    let db = TestDb::postgres().await;
    let a = Conversations::new(assistant(), Store::connect(&db.url).await.unwrap());
    let b = Conversations::new(assistant(), Store::connect(&db.url).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            c.turn("shared", &format!("起付线是什么 {i}"))
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.store.transcript("shared").await.unwrap().len(), 32);
}

#[tokio::test]
async fn a_session_too_busy_is_a_409_with_retry_after_not_a_database_error() {
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    let mut conversations = Conversations::new(assistant(), store.clone());
    // no room to wait, and not for long
    conversations.turns =
        std::sync::Arc::new(yidi::turns::TurnQueue::new(1, Duration::from_millis(200)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::from_conversations(conversations.clone());
    tokio::spawn(http::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    // a turn of this session is running (held here)
    let held = conversations.turns.enter(id).await.unwrap();
    let r = client
        .post(format!("{base}/v1/sessions/{id}/messages"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"text": "你好"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_busy");
    drop(held);
    let r = client
        .post(format!("{base}/v1/sessions/{id}/messages"))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({"text": "你好"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Idempotency

async fn retried_messages_are_stored_once(db: TestDb) {
    let s = Server::start(db).await;
    let (id, token) = s.session().await;
    let send = |key: &str, text: &str| {
        s.client
            .post(format!("{}/v1/sessions/{id}/messages", s.base))
            .header("authorization", format!("Bearer {token}"))
            .header("idempotency-key", key)
            .json(&json!({ "text": text }))
            .send()
    };
    let first = send("k-1", "备案材料清单").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.unwrap();
    // the client lost the response and retries; twice at once, even
    let (a, b) = tokio::join!(send("k-1", "备案材料清单"), send("k-1", "备案材料清单"));
    for r in [a.unwrap(), b.unwrap()] {
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(
            r.text().await.unwrap(),
            first,
            "the stored reply, byte for byte"
        );
    }
    assert_eq!(
        s.store.transcript(&id).await.unwrap().len(),
        2,
        "stored once"
    );
    // another key is another message
    let next = send("k-2", "苏州").await.unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(s.store.transcript(&id).await.unwrap().len(), 4);
    // a malformed key is refused before anything runs
    let bad = send(&"x".repeat(300), "苏州").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.store.transcript(&id).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_retried_message_with_the_same_idempotency_key_is_stored_once_on_sqlite() {
    retried_messages_are_stored_once(TestDb::sqlite()).await;
}

#[tokio::test]
async fn a_retried_message_with_the_same_idempotency_key_is_stored_once_on_postgres() {
    retried_messages_are_stored_once(TestDb::postgres().await).await;
}

/// A replica: its own store and server on the database at `url` (the database outlives it).
async fn replica(url: &str, limits: Limits) -> (String, Store, oneshot::Sender<()>) {
    let store = Store::connect(url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::from_conversations(
        Conversations::new(assistant(), store.clone()).with_limits(&limits),
    );
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(http::serve(listener, state, async {
        let _ = rx.await;
    }));
    (base, store, tx)
}

fn roomy() -> Limits {
    Limits {
        per_ip_per_minute: 100_000,
        per_ip_burst: 10_000,
        per_session_per_minute: 100_000,
        per_session_burst: 10_000,
        trust_forwarded_for: false,
    }
}

/// Issue 23, finding 4: the same Idempotency-Key sent to two replicas at the same moment.
/// The loser of the race waits for the winner's turn and answers with its stored reply:
/// both 200 with the same body, one turn stored, no database error.
async fn one_key_on_two_replicas_at_once(db: TestDb) {
    let (a, store, _stop_a) = replica(&db.url, roomy()).await;
    let (b, _, _stop_b) = replica(&db.url, roomy()).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{a}/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    let send = |base: &str, key: String| {
        client
            .post(format!("{base}/v1/sessions/{id}/messages"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({ "text": "备案要带什么材料" }))
            .send()
    };
    let mut outcomes = Vec::new();
    for pair in 0..10 {
        let key = format!("pair-{pair}");
        let (ra, rb) = tokio::join!(send(&a, key.clone()), send(&b, key));
        let mut replayed = 0;
        let mut bodies = Vec::new();
        for r in [ra.unwrap(), rb.unwrap()] {
            let status = r.status();
            replayed += usize::from(r.headers().contains_key("idempotent-replayed"));
            bodies.push((status, r.text().await.unwrap()));
        }
        outcomes.push((bodies[0].0, bodies[1].0, replayed));
        assert_eq!(bodies[0].0, StatusCode::OK, "pair {pair}: {}", bodies[0].1);
        assert_eq!(bodies[1].0, StatusCode::OK, "pair {pair}: {}", bodies[1].1);
        assert_eq!(bodies[0].1, bodies[1].1, "pair {pair}: the same reply");
        assert_eq!(replayed, 1, "pair {pair}: one of them is the replay");
    }
    eprintln!("10 pairs: {outcomes:?}");
    // one turn per key
    assert_eq!(store.transcript(id).await.unwrap().len(), 20);
}

#[tokio::test]
async fn one_idempotency_key_on_two_replicas_at_once_is_one_turn_on_postgres() {
    one_key_on_two_replicas_at_once(TestDb::postgres().await).await;
}

#[tokio::test]
async fn one_idempotency_key_on_two_replicas_at_once_is_one_turn_on_shared_sqlite() {
    one_key_on_two_replicas_at_once(TestDb::sqlite()).await;
}

/// A retry with a stored key is answered from the store and not charged to the session's
/// rate limit; a new message still is.
#[tokio::test]
async fn a_retry_with_a_stored_key_is_not_charged_to_the_rate_limit() {
    let db = TestDb::sqlite();
    let limits = Limits {
        per_session_per_minute: 1,
        per_session_burst: 1,
        ..roomy()
    };
    let (base, store, _stop) = replica(&db.url, limits).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["session_id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    let send = |key: &'static str| {
        client
            .post(format!("{base}/v1/sessions/{id}/messages"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&json!({ "text": "备案要带什么材料" }))
            .send()
    };
    let first = send("k-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    for _ in 0..3 {
        let retry = send("k-1").await.unwrap();
        assert_eq!(retry.status(), StatusCode::OK);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
    }
    let next = send("k-2").await.unwrap();
    assert_eq!(next.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(store.transcript(id).await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Retention

async fn age(url: &str, days: i64) {
    // everything stored so far becomes `days` days old
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let ms = days * 86_400_000;
    for sql in [
        "UPDATE sessions SET updated_at = updated_at - $1, created_at = created_at - $1",
        "UPDATE transcripts SET created_at = created_at - $1",
        "UPDATE unanswered SET created_at = created_at - $1",
        "UPDATE feedback SET created_at = created_at - $1",
        "UPDATE session_tokens SET created_at = created_at - $1",
        "UPDATE request_keys SET created_at = created_at - $1",
    ] {
        sqlx::query(sql).bind(ms).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

async fn old_conversations_are_purged_recent_ones_kept(db: TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    let c = Conversations::new(assistant(), store.clone());
    c.turn("old", "养老金什么时候涨").await.unwrap(); // unanswered, too
    store
        .add_feedback(Some("old"), None, false, Some("没用"))
        .await
        .unwrap();
    store.add_session_token("old", "t").await.unwrap();
    age(&db.url, 100).await;
    c.turn("recent", "起付线是什么").await.unwrap();

    // nothing is 200 days old
    assert_eq!(
        store.purge_older_than_days(200).await.unwrap(),
        yidi::store::Purged::default()
    );
    let purged = store.purge_older_than_days(90).await.unwrap();
    assert_eq!(purged.sessions, 1);
    assert_eq!(purged.transcript_lines, 2);
    assert_eq!(purged.unanswered, 1);
    assert_eq!(purged.feedback, 1);
    assert!(store.load_session("old").await.unwrap().is_none());
    assert!(store.transcript("old").await.unwrap().is_empty());
    assert!(!store.check_session_token("old", "t").await.unwrap());
    assert_eq!(store.transcript("recent").await.unwrap().len(), 2);
    assert_eq!(store.count("unanswered").await.unwrap(), 0);
}

#[tokio::test]
async fn retention_purges_old_conversations_on_sqlite() {
    old_conversations_are_purged_recent_ones_kept(TestDb::sqlite()).await;
}

#[tokio::test]
async fn retention_purges_old_conversations_on_postgres() {
    old_conversations_are_purged_recent_ones_kept(TestDb::postgres().await).await;
}

#[test]
fn yidi_purge_deletes_what_is_older_than_the_retention() {
    let db = TestDb::sqlite();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = Conversations::new(assistant(), Store::connect(&db.url).await.unwrap());
        c.turn("x", "起付线是什么").await.unwrap();
        age(&db.url, 40).await;
    });
    let out = yidi(&["purge", "--database-url", &db.url, "--days", "60"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 conversations"), "{}", stdout(&out));
    let out = yidi(&["purge", "--database-url", &db.url, "--days", "30"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 conversations (2 transcript lines)"),
        "{}",
        stdout(&out)
    );
    let out = yidi(&["purge", "--database-url", &db.url, "--days", "0"], "");
    assert_eq!(out.status.code(), Some(2), "0 keeps everything");
}
