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
        let store = Store::connect(&db.url).await.unwrap();
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
