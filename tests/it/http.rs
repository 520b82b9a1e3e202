//! The HTTP API over real HTTP: the server on 127.0.0.1:0 with a fresh database (SQLite in a
//! temp dir, or a PostgreSQL schema), driven with reqwest; and `yidi serve` as a process,
//! stopped with SIGTERM.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use yidi::assistant::MAX_MESSAGE_CHARS;
use yidi::channels::console::{AgentAuth, new_agent_token};
use yidi::channels::http::{self, AppState, MAX_BODY_BYTES};
use yidi::config::Limits;
use yidi::conversation::Conversations;
use yidi::store::Store;

use crate::db::TestDb;
use crate::helpers::{assistant, repo};

/// A running server and what keeps it alive; stopped (gracefully) on drop.
struct TestServer {
    base: String,
    client: reqwest::Client,
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    _db: TestDb,
}

/// Limits no test reaches unless it means to.
fn roomy_limits() -> Limits {
    Limits {
        per_ip_per_minute: 100_000,
        per_ip_burst: 10_000,
        per_session_per_minute: 100_000,
        per_session_burst: 10_000,
        trust_forwarded_for: false,
    }
}

impl TestServer {
    async fn start(db: TestDb) -> TestServer {
        TestServer::start_with(db, roomy_limits(), AgentAuth::default()).await
    }

    async fn start_with(db: TestDb, limits: Limits, agents: AgentAuth) -> TestServer {
        let store = Store::connect(&db.url).await.expect("connect + migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let conversations = Conversations::new(assistant(), store.clone()).with_limits(&limits);
        // /metrics is closed by default (issue 23); these tests read it
        let state = AppState::from_conversations(conversations)
            .with_agents(agents)
            .with_open_metrics();
        tokio::spawn(async move {
            http::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            client: reqwest::Client::new(),
            store,
            shutdown: Some(tx),
            _db: db,
        }
    }

    async fn sqlite() -> TestServer {
        TestServer::start(TestDb::sqlite()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        into_json(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        into_json(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST a raw body with the given content type.
    async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
        into_json(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn new_session(&self) -> (String, String) {
        let (status, body) = self.post("/v1/sessions", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["session_id"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    }

    /// GET a session with its bearer token.
    async fn read_session(&self, id: &str, token: &str) -> (StatusCode, Value) {
        let request = self.client.get(self.url(&format!("/v1/sessions/{id}")));
        into_json(request.bearer_auth(token).send().await.unwrap()).await
    }

    async fn say(&self, id: &str, token: &str, text: &str) -> (StatusCode, Value) {
        into_json(
            self.client
                .post(self.url(&format!("/v1/sessions/{id}/messages")))
                .bearer_auth(token)
                .json(&json!({ "text": text }))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn into_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "status {status}: {text}"
    );
    (status, body)
}

/// Asserts the error shape and returns the code.
fn error_code(status: StatusCode, body: &Value, expected: StatusCode) -> String {
    assert_eq!(status, expected, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "the message is Chinese: {body}"
    );
    body["error"]["code"].as_str().expect("a code").to_string()
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::sqlite().await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = server.get("/readyz").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({ "status": "ready" }))
    );

    // the database goes away: not ready, but the process still answers
    server.store.close().await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(
        error_code(status, &body, StatusCode::SERVICE_UNAVAILABLE),
        "database_unavailable"
    );
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn search_answers_or_abstains_in_the_cli_form() {
    let server = TestServer::sqlite().await;
    let q = "社保卡在外地医院刷不了怎么办";
    let (status, body) = server
        .get(&format!("/v1/faq/search?q={}", urlencode(q)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["query"], q);
    assert_eq!(body["answered"], true, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 3, "{body}");
    assert!(hits[0]["id"].is_string() && hits[0]["score"].is_number());
    assert!(hits[0]["question"].is_string());
    // the same line as `yidi search --json`
    let cli = crate::helpers::json_lines(&crate::helpers::yidi(&["search", "--json", q], ""));
    assert_eq!(body["hits"][0]["id"], cli[0]["hits"][0]["id"]);

    let (status, body) = server
        .get(&format!(
            "/v1/faq/search?q={}&limit=1",
            urlencode("养老金什么时候涨")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answered"], false, "{body}");
    assert!(body["hits"].as_array().unwrap().len() <= 1);

    // bad parameters are 4xx naming the field
    let (status, body) = server.get("/v1/faq/search").await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_field"
    );
    assert_eq!(body["error"]["field"], "q");
    for limit in ["0", "abc", "1000", "-1"] {
        let (status, body) = server
            .get(&format!("/v1/faq/search?q=x&limit={limit}"))
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
            "invalid_field"
        );
        assert_eq!(body["error"]["field"], "limit");
    }
}

#[tokio::test]
async fn faq_entry_by_id_or_404() {
    let server = TestServer::sqlite().await;
    let (status, body) = server.get("/v1/faq/deductible").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "deductible");
    for key in ["question", "answer"] {
        assert!(body[key].is_string(), "{key}: {body}");
    }
    for key in ["variants", "sources", "tags"] {
        assert!(body[key].is_array(), "{key}: {body}");
    }
    // provenance: the day it was checked, its tier, each source's document, date and tier;
    // 起付线 rests on secondary sources only, and its brief says so
    assert!(body["as_of"].as_str().unwrap().len() == 10, "{body}");
    assert_eq!(body["tier"], "secondary", "{body}");
    let provenance = body["provenance"].as_array().unwrap();
    assert_eq!(provenance.len(), body["sources"].as_array().unwrap().len());
    assert!(
        provenance.iter().all(|p| p["tier"] == "secondary"
            && p["document"].is_string()
            && p["date"].is_string()),
        "{body}"
    );
    let (_, trauma) = server.get("/v1/faq/third-party-injury").await;
    assert_eq!(trauma["tier"], "official", "{trauma}");
    assert!(
        trauma["provenance"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["date"] == "2026-01-05"
                && p["url"].as_str().is_some_and(|u| u.starts_with("https://"))),
        "{trauma}"
    );
    let (status, body) = server.get("/v1/faq/no-such-entry").await;
    assert_eq!(
        error_code(status, &body, StatusCode::NOT_FOUND),
        "faq_not_found"
    );
    let (status, body) = server.get("/v1/faq/..%2F..%2Fetc%2Fpasswd").await;
    assert_eq!(
        error_code(status, &body, StatusCode::NOT_FOUND),
        "faq_not_found"
    );
    let (status, body) = server.get("/v1/nowhere").await;
    assert_eq!(
        error_code(status, &body, StatusCode::NOT_FOUND),
        "not_found"
    );
}

#[tokio::test]
async fn checklist_and_estimate_match_the_cli_and_name_bad_fields() {
    let server = TestServer::sqlite().await;
    let situation = json!({
        "insured_region": "suzhou", "care_location": "other_province",
        "filing_type": "long_term_resident", "filed": false,
        "stage": "before_care", "visit": "inpatient", "by_proxy": false
    });
    let (status, body) = server.post("/v1/checklist", situation.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cli = crate::helpers::json_lines(&crate::helpers::yidi(
        &["checklist", "--json"],
        &format!("{situation}\n"),
    ));
    assert_eq!(body, cli[0]);
    assert!(!body["filing"].as_array().unwrap().is_empty(), "{body}");

    let (status, body) = server
        .post(
            "/v1/checklist",
            json!({ "insured_region": "suzhou", "visit": "teleport" }),
        )
        .await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_field"
    );
    assert_eq!(body["error"]["field"], "visit");

    let input = json!({
        "policy": "suzhou", "visit": "inpatient", "hospital_level": 3,
        "filing_type": "long_term_resident", "filed": true, "total": "20000",
        "scheme": "employee", "employment": "retired"
    });
    let (status, body) = server.post("/v1/estimate", input.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cli = crate::helpers::json_lines(&crate::helpers::yidi(
        &["estimate", "--json"],
        &format!("{input}\n"),
    ));
    assert_eq!(body, cli[0]);

    let mut bad = input.clone();
    bad["total"] = json!("很多钱");
    let (status, body) = server.post("/v1/estimate", bad).await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_field"
    );
    assert_eq!(body["error"]["field"], "total");

    // not an object at all
    let (status, body) = server.post("/v1/estimate", json!([1, 2])).await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_field"
    );
}

/// A whole estimate conversation over two messages, then the session read back.
async fn conversation(server: &TestServer) {
    let (id, token) = server.new_session().await;
    assert_eq!(id.len(), 32);
    assert_eq!(token.len(), 64, "256 random bits in hex");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));

    let (status, first) = server
        .say(
            &id,
            &token,
            "我是苏州的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["dialog"], "estimate", "{first}");
    assert!(first["asking"].is_string(), "{first}");
    assert!(!first["choices"].as_array().unwrap().is_empty(), "{first}");
    for key in [
        "text",
        "asking",
        "choices",
        "faq",
        "checklist",
        "estimate",
        "dialog",
    ] {
        assert!(
            first.get(key).is_some(),
            "the chat --json form has {key}: {first}"
        );
    }

    let (status, second) = server.say(&id, &token, "三级医院").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["asking"], "filed", "{second}");

    let (status, session) = server.read_session(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["session_id"], id.as_str());
    assert_eq!(session["dialog"], "estimate");
    assert_eq!(session["slots"]["insured_region"], "suzhou", "{session}");
    let transcript = session["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 4, "{session}");
    assert_eq!(transcript[0]["role"], "user");
    assert_eq!(transcript[2]["text"], "三级医院");
    assert_eq!(transcript[3]["role"], "assistant");

    // the token is stored only as its hash
    assert_eq!(server.store.count("session_tokens").await.unwrap(), 1);
    assert!(server.store.check_session_token(&id, &token).await.unwrap());
    assert!(!server.store.check_session_token(&id, "x").await.unwrap());
}

#[tokio::test]
async fn a_conversation_over_http_on_sqlite() {
    conversation(&TestServer::sqlite().await).await;
}

#[tokio::test]
async fn a_conversation_over_http_on_postgres() {
    conversation(&TestServer::start(TestDb::postgres().await).await).await;
}

#[tokio::test]
async fn sessions_need_their_own_token() {
    let server = TestServer::sqlite().await;
    let (id, token) = server.new_session().await;
    let (other_id, other_token) = server.new_session().await;
    assert_ne!(id, other_id);
    assert_ne!(token, other_token);
    let message = json!({ "text": "起付线是什么" });
    let messages = server.url(&format!("/v1/sessions/{id}/messages"));

    // no token
    let (status, body) = into_json(
        server
            .client
            .post(&messages)
            .json(&message)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNAUTHORIZED),
        "missing_token"
    );
    // a wrong token, another session's token, a malformed header
    for auth in [
        format!("Bearer {}", "0".repeat(64)),
        format!("Bearer {other_token}"),
        format!("Basic {token}"),
        "Bearer".to_string(),
        format!("Bearer {}", "a".repeat(5000)),
    ] {
        let (status, body) = into_json(
            server
                .client
                .post(&messages)
                .header("authorization", &auth)
                .json(&message)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            error_code(status, &body, StatusCode::UNAUTHORIZED),
            "invalid_token",
            "{auth:.20}"
        );
    }
    // reading the session, and an unknown session, are guarded the same way
    let (status, body) = server.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNAUTHORIZED),
        "missing_token"
    );
    let (status, body) = server.say("no-such-session", &token, "你好").await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNAUTHORIZED),
        "invalid_token"
    );
    // nothing was stored by the rejected requests
    assert_eq!(server.store.count("transcripts").await.unwrap(), 0);

    // the owner is let in, and a new session reads back empty
    let (status, body) = server.read_session(&other_id, &other_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["transcript"], json!([]));
    assert_eq!(body["dialog"], Value::Null);
    let (status, reply) = server.say(&id, &token, "起付线是什么").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["faq"]["id"], "deductible", "{reply}");
}

#[tokio::test]
async fn bad_bodies_get_4xx_never_5xx() {
    let server = TestServer::sqlite().await;
    let (id, token) = server.new_session().await;

    // too large: 413
    let big = format!("{{\"text\": \"{}\"}}", "a".repeat(MAX_BODY_BYTES + 10));
    for path in ["/v1/checklist", "/v1/estimate", "/v1/feedback"] {
        let (status, body) = server
            .post_raw(path, "application/json", big.clone().into_bytes())
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::PAYLOAD_TOO_LARGE),
            "payload_too_large",
            "{path}"
        );
    }
    let (status, body) = into_json(
        server
            .client
            .post(server.url(&format!("/v1/sessions/{id}/messages")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        error_code(status, &body, StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );

    // a body without a JSON content type: 415
    let (status, body) = server
        .post_raw("/v1/checklist", "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        "unsupported_media_type"
    );

    // malformed JSON: 400
    for raw in [
        &b"{\"insured_region\": "[..],
        b"",
        b"\xff\xfe\x00",
        b"not json",
        b"{\"a\":1}}",
    ] {
        let (status, body) = server
            .post_raw("/v1/estimate", "application/json", raw.to_vec())
            .await;
        assert_eq!(
            error_code(status, &body, StatusCode::BAD_REQUEST),
            "malformed_json",
            "{raw:?}"
        );
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _) = server
        .post_raw("/v1/checklist", "application/json", deep.into_bytes())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // a message without text, or with the wrong type: 422 naming the field
    for body in [json!({}), json!({ "text": 5 }), json!({ "txt": "你好" })] {
        let (status, err) = into_json(
            server
                .client
                .post(server.url(&format!("/v1/sessions/{id}/messages")))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            error_code(status, &err, StatusCode::UNPROCESSABLE_ENTITY),
            "invalid_field",
            "{body}"
        );
    }

    // a wrong method: 405 in the same shape
    let (status, body) = server.get("/v1/checklist").await;
    assert_eq!(
        error_code(status, &body, StatusCode::METHOD_NOT_ALLOWED),
        "method_not_allowed"
    );

    // garbage of every kind to every POST route: never a 5xx
    let garbage: Vec<Value> = vec![
        json!(null),
        json!(true),
        json!("文本"),
        json!(1e308),
        json!({ "filed": [1, { "x": null }] }),
        json!({ "total": "-1" }),
        json!({ "total": 1e300, "policy": "suzhou" }),
        json!({ "helpful": "yes" }),
        json!({ "helpful": true, "faq_id": "no-such" }),
        json!({ "text": "\u{0000}\u{202e}😀" }),
    ];
    for path in [
        "/v1/checklist",
        "/v1/estimate",
        "/v1/feedback",
        "/v1/sessions",
    ] {
        for g in &garbage {
            let (status, body) = server.post(path, g.clone()).await;
            assert!(
                status.is_success() || status.is_client_error(),
                "{path} {g}: {status} {body}"
            );
        }
    }
    // the server still serves
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_overlong_message_gets_the_cores_friendly_reply() {
    let server = TestServer::sqlite().await;
    let (id, token) = server.new_session().await;
    let long = "住院".repeat(MAX_MESSAGE_CHARS);
    let (status, reply) = server.say(&id, &token, &long).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply["text"].as_str().unwrap().contains("太长"), "{reply}");
    // the conversation goes on
    let (status, reply) = server.say(&id, &token, "起付线是什么").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["faq"]["id"], "deductible", "{reply}");
}

#[tokio::test]
async fn feedback_is_stored_and_guarded() {
    let server = TestServer::sqlite().await;
    let (status, body) = server
        .post(
            "/v1/feedback",
            json!({ "helpful": true, "faq_id": "deductible", "comment": "很清楚" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("fb-"));

    let (status, body) = server
        .post(
            "/v1/feedback",
            json!({ "helpful": true, "faq_id": "no-such-entry" }),
        )
        .await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNPROCESSABLE_ENTITY),
        "invalid_field"
    );
    assert_eq!(body["error"]["field"], "faq_id");
    let (status, body) = server
        .post("/v1/feedback", json!({ "faq_id": "deductible" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "helpful");

    // feedback on a conversation needs that conversation's token
    let (id, token) = server.new_session().await;
    let about_session = json!({ "helpful": false, "session_id": id, "comment": "没答上来" });
    let (status, body) = server.post("/v1/feedback", about_session.clone()).await;
    assert_eq!(
        error_code(status, &body, StatusCode::UNAUTHORIZED),
        "missing_token"
    );
    let (status, body) = into_json(
        server
            .client
            .post(server.url("/v1/feedback"))
            .bearer_auth(&token)
            .json(&about_session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(server.store.count("feedback").await.unwrap(), 2);
}

#[test]
fn yidi_serve_runs_and_stops_on_sigterm() {
    let db = TestDb::sqlite();
    let mut server = crate::serve::ServeProcess::spawn(
        &["--addr", "127.0.0.1:0", "--database-url", &db.url],
        &[],
        &repo(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = rt.block_on(async {
        into_json(
            reqwest::get(format!("{}/v1/faq/deductible", server.base))
                .await
                .unwrap(),
        )
        .await
    });
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], "deductible");
    server.terminate();
    let status = server.wait();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
}

#[test]
fn yidi_serve_rejects_a_bad_database_url() {
    let out = crate::helpers::yidi(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            "mysql://nope",
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        crate::helpers::stderr(&out)
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of a non-JSON response.
async fn text_of(server: &TestServer, path: &str) -> (StatusCode, Option<String>, String) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn the_public_api_is_rate_limited_per_ip_with_retry_after() {
    let limits = Limits {
        per_ip_per_minute: 6,
        per_ip_burst: 3,
        ..roomy_limits()
    };
    let server = TestServer::start_with(TestDb::sqlite(), limits, AgentAuth::default()).await;
    for _ in 0..3 {
        let (status, body) = server.get("/v1/faq/deductible").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = server
        .client
        .get(server.url("/v1/faq/search?q=起付线"))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let (status, body) = into_json(response).await;
    assert_eq!(
        error_code(status, &body, StatusCode::TOO_MANY_REQUESTS),
        "rate_limited"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("秒后再试")
    );

    // a forged X-Forwarded-For does not open a new bucket unless the proxy is trusted
    let response = server
        .client
        .get(server.url("/v1/faq/deductible"))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // health, metrics and the API description are not limited
    assert_eq!(server.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(server.get("/v1/openapi.json").await.0, StatusCode::OK);
    let (status, _, metrics) = text_of(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("yidi_rate_limited_total{scope=\"ip\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn agents_are_exempt_from_the_ip_limit() {
    let (agent_token, digest) = new_agent_token();
    let limits = Limits {
        per_ip_per_minute: 6,
        per_ip_burst: 2,
        ..roomy_limits()
    };
    let agents = AgentAuth::from_sha256_hex(&[digest]).unwrap();
    let server = TestServer::start_with(TestDb::sqlite(), limits, agents).await;
    let search = |token: Option<&str>| {
        let request = server.client.get(server.url("/v1/faq/search?q=起付线"));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
        .send()
    };
    for _ in 0..2 {
        assert_eq!(search(None).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        search(None).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        search(Some("not-an-agent")).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // the agent on the same IP keeps working: a call centre shares one address
    for _ in 0..5 {
        assert_eq!(
            search(Some(&agent_token)).await.unwrap().status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_ip_is_limited() {
    let limits = Limits {
        per_ip_per_minute: 6,
        per_ip_burst: 2,
        trust_forwarded_for: true,
        ..roomy_limits()
    };
    let server = TestServer::start_with(TestDb::sqlite(), limits, AgentAuth::default()).await;
    let get_as = |ip: &'static str| {
        server
            .client
            .get(server.url("/v1/faq/deductible"))
            .header("x-forwarded-for", format!("10.0.0.1, {ip}"))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            get_as("198.51.100.1").await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        get_as("198.51.100.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // another client behind the same proxy has its own bucket
    assert_eq!(
        get_as("198.51.100.2").await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn messages_are_rate_limited_per_session() {
    let limits = Limits {
        per_session_per_minute: 6,
        per_session_burst: 2,
        ..roomy_limits()
    };
    let server = TestServer::start_with(TestDb::sqlite(), limits, AgentAuth::default()).await;
    let (id, token) = server.new_session().await;
    for text in ["起付线是什么", "封顶线呢"] {
        let (status, body) = server.say(&id, &token, text).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = server
        .client
        .post(server.url(&format!("/v1/sessions/{id}/messages")))
        .bearer_auth(&token)
        .json(&json!({ "text": "还有别的吗" }))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) = into_json(response).await;
    assert_eq!(
        error_code(status, &body, StatusCode::TOO_MANY_REQUESTS),
        "rate_limited"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("秒后再发")
    );
    // the refused message was not half-handled: two turns stored, nothing more
    let (_, session) = server.read_session(&id, &token).await;
    assert_eq!(
        session["transcript"].as_array().unwrap().len(),
        4,
        "{session}"
    );
    // another conversation is not affected
    let (id2, token2) = server.new_session().await;
    assert_eq!(
        server.say(&id2, &token2, "起付线是什么").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_count_turns_latency_and_unanswered_questions() {
    let server = TestServer::sqlite().await;
    let (id, token) = server.new_session().await;
    assert_eq!(
        server.say(&id, &token, "起付线是什么").await.0,
        StatusCode::OK
    );
    let (_, reply) = server.say(&id, &token, "养老金什么时候涨").await;
    assert!(reply["faq"].is_null(), "{reply}");
    let (_, reply) = server.say(&id, &token, "帮我列一下备案材料清单").await;
    assert_eq!(reply["dialog"], "filing", "{reply}");

    let (status, content_type, text) = text_of(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    for expected in [
        "yidi_turns_total{kind=\"faq\"} 1",
        "yidi_turns_total{kind=\"out_of_scope\"} 1",
        "yidi_turns_total{kind=\"dialog\"} 1",
        "yidi_unanswered_total 1",
        "yidi_turn_duration_seconds_count 3",
        "yidi_http_requests_total{route=\"/v1/sessions/{id}/messages\",status=\"200\"} 3",
        "yidi_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/sessions\"} 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // routes, never paths: no session id (and no query text) in the metrics
    assert!(!text.contains(&id), "{text}");
    assert!(!text.contains("养老金"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_served() {
    let server = TestServer::sqlite().await;
    let (status, doc) = server.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path} has responses");
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    // the router's own routes, with no list kept here: the paths of its route table (as
    // axum's Debug shows them), and each path's methods as the server names them when asked
    // for one it does not serve (405 with Allow)
    let router = http::app(AppState::new(assistant(), server.store.clone()));
    let paths = route_paths(&format!("{router:?}"));
    assert!(paths.len() > 10, "the route table was read: {paths:?}");
    let mut served = Vec::new();
    for path in &paths {
        let concrete = path.replace("{id}", "deductible").replace("{name}", "x");
        let response = server
            .client
            .request(reqwest::Method::PATCH, server.url(&concrete))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allow = response.headers()["allow"].to_str().unwrap().to_string();
        let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        for method in &methods {
            // axum answers HEAD wherever it answers GET; OpenAPI leaves it implied
            if *method != "HEAD" || !methods.contains(&"GET") {
                served.push(format!("{method} {path}"));
            }
        }
    }
    served.sort();
    assert_eq!(documented, served, "documented vs served");
    // every documented operation exists on the server: never the router's 404 or 405
    for op in &documented {
        let (method, path) = op.split_once(' ').unwrap();
        let path = path
            .replace("{id}", "deductible")
            .replace("{name}", "console.css");
        let request = match method {
            "GET" => server.client.get(server.url(&path)),
            _ => server.client.post(server.url(&path)).json(&json!({})),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{op}");
        assert!(
            !body.contains("\"code\":\"not_found\""),
            "{op} is documented but not served: {body}"
        );
    }
    // every $ref resolves
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test]
async fn a_conversation_over_http_remembers_clarifies_and_stores_kinds() {
    let server = TestServer::sqlite().await;
    let (id, token) = server.new_session().await;
    let (status, hello) = server.say(&id, &token, "您好").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hello["kind"], "smalltalk", "{hello}");

    let (_, facts) = server.say(&id, &token, "我爸是张家港退休职工").await;
    assert_eq!(facts["kind"], "smalltalk", "{facts}");
    assert_eq!(facts["slots"]["insured_region"], "zhangjiagang", "{facts}");
    assert_eq!(facts["slots"]["employment"], "retired", "{facts}");

    let (_, ask) = server.say(&id, &token, "报销的事").await;
    assert_eq!(ask["kind"], "clarify", "{ask}");
    let options = ask["options"].as_array().unwrap();
    assert_eq!(options.len(), 3, "{ask}");
    let (_, picked) = server.say(&id, &token, "3").await;
    assert_eq!(picked["kind"], "faq", "{picked}");
    assert_eq!(picked["faq"]["id"], options[2]["id"], "{picked}");
    // the slots outlive the turns that stated them
    assert_eq!(picked["slots"]["insured_region"], "zhangjiagang");

    let (_, human) = server.say(&id, &token, "转人工").await;
    assert_eq!(human["kind"], "smalltalk");
    assert!(
        human["text"].as_str().unwrap().contains("0512-12333"),
        "{human}"
    );

    // the transcript keeps every reply's kind, and the options as the user saw them
    let lines = server.store.transcript(&id).await.unwrap();
    let kinds: Vec<Option<&str>> = lines
        .iter()
        .filter(|l| l.role == "assistant")
        .map(|l| l.kind.as_deref())
        .collect();
    assert_eq!(
        kinds,
        [
            Some("smalltalk"),
            Some("smalltalk"),
            Some("clarify"),
            Some("faq"),
            Some("smalltalk")
        ]
    );
    let clarify = &lines[5];
    let first_option = options[0]["question"].as_str().unwrap();
    assert!(
        clarify.text.contains(&format!("1. {first_option}")),
        "{}",
        clarify.text
    );
}

/// The paths of a router's route table, read from its `Debug` form
/// (`Router { path_router: … RouteId(n): "/path" …, fallback_router: … }`; the fallback's own
/// catch-all routes are not routes of the API).
fn route_paths(debug: &str) -> Vec<String> {
    let table = debug
        .split_once("fallback_router:")
        .map_or(debug, |(routes, _)| routes);
    let mut paths: Vec<String> = table
        .split("RouteId(")
        .skip(1)
        .filter_map(|part| {
            let rest = part.split_once("): \"")?.1;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The served document's schema `name`, as a JSON Schema validator (OpenAPI 3.1 schemas are
/// JSON Schema 2020-12) that also refuses properties the schema does not name, so that a
/// serde form and its generated schema cannot drift apart either way.
pub(crate) fn schema_validator(doc: &Value, name: &str) -> jsonschema::Validator {
    fn close(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                map.values_mut().for_each(close);
            }
            Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    let mut root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"].clone(),
    });
    assert!(root["components"]["schemas"][name].is_object(), "{name}");
    close(&mut root["components"]);
    jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Asserts `instance` fits the served schema `name`.
fn assert_fits(doc: &Value, name: &str, instance: &Value) {
    let validator = schema_validator(doc, name);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{instance:#} does not fit the schema {name}:\n{}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn the_core_types_serialize_to_their_generated_schemas() {
    let server = TestServer::sqlite().await;
    let (status, doc) = server.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);

    // the schemas check something: a reply without its kind, or with a field they do not
    // name, does not fit
    let a = assistant();
    let mut state = yidi::dialog::engine::SessionState::new();
    let faq = serde_json::to_value(a.handle(&mut state, "起付线是什么")).unwrap();
    assert_eq!(faq["kind"], "faq", "{faq}");
    assert_fits(&doc, "Reply", &faq);
    let validator = schema_validator(&doc, "Reply");
    let mut broken = faq.clone();
    broken.as_object_mut().unwrap().remove("kind");
    assert!(!validator.is_valid(&broken));
    let mut broken = faq.clone();
    broken["unanswered"] = json!(false);
    assert!(!validator.is_valid(&broken));
    let mut broken = faq.clone();
    broken["kind"] = json!("faq_answer");
    assert!(!validator.is_valid(&broken));

    // replies of every kind the shipped knowledge gives, a checklist and an estimate among
    // them (core instances, serialized as the API sends them)
    let mut replies = vec![faq];
    for message in [
        "你好",
        "养老金什么时候涨",
        "社保卡在外地医院刷不了怎么办",
        "报销",
    ] {
        let mut state = yidi::dialog::engine::SessionState::new();
        replies.push(serde_json::to_value(a.handle(&mut state, message)).unwrap());
    }
    for (first, answers) in [
        (
            "帮我列备案材料清单，苏州参保，去北京跟女儿长住，还没去",
            &["没有", "住院", "家人代办"][..],
        ),
        (
            "我是张家港的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？",
            &["三级", "已经备案了", "0", "不清楚"][..],
        ),
    ] {
        let mut state = yidi::dialog::engine::SessionState::new();
        let mut reply = a.handle(&mut state, first);
        replies.push(serde_json::to_value(&reply).unwrap());
        for answer in answers {
            if reply.asking.is_none() {
                break;
            }
            reply = a.handle(&mut state, answer);
            replies.push(serde_json::to_value(&reply).unwrap());
        }
    }
    assert!(replies.iter().any(|r| r["checklist"].is_object()));
    assert!(replies.iter().any(|r| {
        r["estimate"].is_object() && !r["estimate"]["bands"].as_array().unwrap().is_empty()
    }));
    assert!(replies.iter().any(|r| r["kind"] == "dialog"));
    for reply in &replies {
        assert_fits(&doc, "Reply", reply);
    }

    // search results, answered and not (with `also` where a second question is asked)
    for q in [
        "社保卡在外地医院刷不了怎么办",
        "养老金什么时候涨",
        "异地就医怎么备案，另外起付线是多少",
    ] {
        let (status, body) = server
            .get(&format!("/v1/faq/search?q={}", urlencode(q)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_fits(&doc, "SearchResult", &body);
    }

    // the checklist and the estimate endpoints: their inputs fit the input schemas, their
    // outputs the output schemas
    let situation = json!({
        "insured_region": "suzhou", "care_location": "other_province",
        "filing_type": "long_term_resident", "filed": false,
        "stage": "discharged_self_paid", "visit": "inpatient", "by_proxy": true
    });
    assert_fits(&doc, "Situation", &situation);
    let (status, body) = server.post("/v1/checklist", situation).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_fits(&doc, "Checklist", &body);
    let input = json!({
        "policy": "suzhou", "visit": "inpatient", "hospital_level": 3,
        "filing_type": "long_term_resident", "filed": true, "total": "200000",
        "self_pay": 1000, "scheme": "employee", "employment": "retired"
    });
    assert_fits(&doc, "EstimateInput", &input);
    let (status, body) = server.post("/v1/estimate", input).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["bands"].as_array().unwrap().is_empty(), "{body}");
    assert_fits(&doc, "Estimate", &body);

    // stored transcript lines (a session read) and unanswered questions
    let (id, token) = server.new_session().await;
    for text in ["起付线是什么", "养老金什么时候涨"] {
        let (status, reply) = server.say(&id, &token, text).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_fits(&doc, "Reply", &reply);
    }
    let (status, session) = server.read_session(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["transcript"].as_array().unwrap().len(), 4);
    assert_fits(&doc, "Session", &session);
    let unanswered = server.store.unanswered(10).await.unwrap();
    assert!(!unanswered.is_empty());
    for question in &unanswered {
        assert_fits(
            &doc,
            "UnansweredQuestion",
            &serde_json::to_value(question).unwrap(),
        );
    }
}

/// The separator sweep of issue 23 over the real server and database: every sweep text sent
/// as a message (stored in the transcript, and as an unanswered question when it is one) and
/// as a feedback comment; then every stored text is read back from the tables themselves.
async fn separator_sweep_stores_no_readable_number(db: TestDb) {
    use crate::masking::{shows, sweep_texts};
    let url = db.url.clone();
    let s = TestServer::start(db).await;
    let (id, token) = s.new_session().await;
    // out of scope, so also recorded as an unanswered question
    let texts = sweep_texts(|n| format!("养老金什么时候涨？我的号码{n}"));
    for (_, _, text) in &texts {
        let (status, body) = s.say(&id, &token, text).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .post(
                "/v1/feedback",
                json!({ "helpful": false, "comment": format!("请回电{text}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let column = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    let users = column("SELECT text FROM transcripts WHERE role = 'user'").await;
    let unanswered = column("SELECT question FROM unanswered").await;
    let comments = column("SELECT comment FROM feedback").await;
    assert_eq!(users.len(), texts.len());
    assert_eq!(comments.len(), texts.len());
    assert!(
        !unanswered.is_empty(),
        "no unanswered question was recorded"
    );
    let mut leaks = 0;
    for stored in users.iter().chain(&unanswered).chain(&comments) {
        for (sep, secret, _) in &texts {
            if shows(stored, secret) {
                leaks += 1;
                eprintln!("{secret} readable (separator {sep:?}): {stored:?}");
            }
        }
    }
    assert_eq!(leaks, 0, "{leaks} stored texts show a number");
}

#[tokio::test]
async fn the_separator_sweep_stores_no_readable_number_on_sqlite() {
    separator_sweep_stores_no_readable_number(TestDb::sqlite()).await;
}

#[tokio::test]
async fn the_separator_sweep_stores_no_readable_number_on_postgres() {
    separator_sweep_stores_no_readable_number(TestDb::postgres().await).await;
}

/// Issue 23 (first contact, item 6): every field of every schema is described; the main
/// schemas carry examples, made by the running assistant, that fit their own schemas; the
/// slots are typed by the loaded vocabulary; `scheme` is required as the server requires it.
#[tokio::test]
async fn the_document_describes_every_field_and_its_examples_fit() {
    let server = TestServer::sqlite().await;
    let (status, doc) = server.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut undescribed = Vec::new();
    for (name, schema) in schemas {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if property.get("description").is_none() {
                undescribed.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(undescribed.is_empty(), "no description: {undescribed:?}");
    for name in [
        "Reply",
        "SearchResult",
        "Situation",
        "Checklist",
        "EstimateInput",
        "Estimate",
        "ErrorBody",
        "Message",
        "Feedback",
        "NewSession",
        "Slots",
    ] {
        let examples = schemas[name]["examples"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no examples"));
        assert!(!examples.is_empty(), "{name}");
        for example in examples {
            let validator = schema_validator(&doc, name);
            let errors: Vec<String> = validator
                .iter_errors(example)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}\n{example}");
        }
    }
    // the slots are the vocabulary's, with their values
    assert_eq!(
        schemas["Reply"]["properties"]["slots"]["$ref"],
        "#/components/schemas/Slots"
    );
    let slots = &schemas["Slots"]["properties"];
    assert_eq!(slots["scheme"]["enum"], json!(["employee", "resident"]));
    assert!(slots["total"]["pattern"].is_string(), "{}", slots["total"]);
    // both shipped policies set their parameters by scheme, and the server refuses an
    // estimate without it: so the document says it is required
    let required = schemas["EstimateInput"]["required"].as_array().unwrap();
    assert!(required.contains(&json!("scheme")), "{required:?}");
    let mut without: Value = schemas["EstimateInput"]["examples"][0].clone();
    without.as_object_mut().unwrap().remove("scheme");
    let (status, body) = server.post("/v1/estimate", without).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "scheme", "{body}");
}
