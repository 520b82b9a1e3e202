//! `yidi serve` as real processes: configuration from a file and the environment, two
//! replicas sharing one PostgreSQL database, and a shutdown that finishes a turn in flight.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yidi::store::Store;

use crate::db::TestDb;
use crate::helpers::repo;

/// A running `yidi serve`; killed on drop if a test did not stop it.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// What the server wrote to standard error after it started listening.
    log: Arc<Mutex<String>>,
}

/// `yidi` with none of the caller's YIDI_…, TELOXIDE_… or DATABASE_URL variables.
fn yidi_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_yidi"));
    for (key, _) in std::env::vars() {
        if key.starts_with("YIDI_") || key.starts_with("TELOXIDE_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

impl ServeProcess {
    /// Starts `yidi serve ARGS` with only the given environment variables of ours (the
    /// caller's YIDI_…, DATABASE_URL and TELOXIDE_… are removed), in `dir`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> ServeProcess {
        let mut command = yidi_command();
        command.arg("serve").args(args).current_dir(dir);
        command.env("YIDI_LOG", "warn");
        command.envs(env.iter().copied());
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("yidi serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            let n = stderr.read_line(&mut line).unwrap();
            if n == 0 {
                let status = child.wait().unwrap();
                panic!("yidi serve ended before listening ({status}): {line}");
            }
            if let Some(rest) = line.trim().strip_prefix("yidi: listening on ") {
                break rest.to_string();
            }
        };
        // keep draining standard error so the server never blocks on a full pipe
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(stderr.read_line(&mut line), Ok(n) if n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        ServeProcess { child, base, log }
    }

    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends SIGHUP (reload the data).
    pub fn hangup(&self) {
        self.signal("-HUP");
    }

    fn signal(&self, which: &str) {
        let sent = Command::new("kill")
            .args([which, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits (up to 60 s) until the log holds `needle`; returns the log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (up to 30 s) for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "yidi serve did not stop; log:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = reqwest::Client::new();
            let mut request = match method {
                "GET" => client.get(url),
                _ => client.post(url),
            };
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            if let Some(b) = body {
                request = request.json(&b);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
            (status, body)
        })
}

fn say(server: &ServeProcess, id: &str, token: &str, text: &str) -> Value {
    let (status, reply) = call(
        "POST",
        &format!("{}/v1/sessions/{id}/messages", server.base),
        Some(token),
        Some(json!({ "text": text })),
    );
    assert_eq!(status, 200, "{reply}");
    reply
}

#[test]
fn two_replicas_on_one_postgres_continue_each_others_conversations() {
    let db = TestDb::postgres_blocking();
    let args = ["--addr", "127.0.0.1:0", "--database-url", &db.url];
    let a = ServeProcess::spawn(&args, &[], &repo());
    let b = ServeProcess::spawn(&args, &[], &repo());
    assert_ne!(a.base, b.base);

    let (status, created) = call("POST", &format!("{}/v1/sessions", a.base), None, None);
    assert_eq!(status, 201, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();

    // turn 1 on replica A, turn 2 on replica B, turn 3 back on A
    let first = say(
        &a,
        id,
        token,
        "我是苏州的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？",
    );
    assert_eq!(first["dialog"], "estimate", "{first}");
    let second = say(&b, id, token, "三级医院");
    assert_eq!(second["dialog"], "estimate", "{second}");
    assert_eq!(
        second["asking"], "filed",
        "B continued A's dialog: {second}"
    );
    let third = say(&a, id, token, "已经备案了");
    assert_eq!(third["dialog"], "estimate", "{third}");
    assert_ne!(third["asking"], "filed", "A saw B's turn: {third}");

    // the token issued by A opens the session on B, and B reads all three turns
    let (status, session) = call(
        "GET",
        &format!("{}/v1/sessions/{id}", b.base),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        session["transcript"].as_array().unwrap().len(),
        6,
        "{session}"
    );
    assert_eq!(session["slots"]["hospital_level"], "3", "{session}");
    // a wrong token is refused on both
    for server in [&a, &b] {
        let (status, _) = call(
            "GET",
            &format!("{}/v1/sessions/{id}", server.base),
            Some("0000"),
            None,
        );
        assert_eq!(status, 401);
    }
}

#[test]
fn a_turn_in_flight_finishes_after_sigterm() {
    let db = TestDb::sqlite();
    let mut server = ServeProcess::spawn(
        &["--addr", "127.0.0.1:0", "--database-url", &db.url],
        &[],
        &repo(),
    );
    let (status, created) = call("POST", &format!("{}/v1/sessions", server.base), None, None);
    assert_eq!(status, 201);
    let id = created["session_id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();

    // a request whose body is only half sent when the signal arrives
    let body = json!({ "text": "起付线是什么" }).to_string();
    let (head, tail) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    write!(
        stream,
        "POST /v1/sessions/{id}/messages HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr(),
        body.len()
    )
    .unwrap();
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    // let the server take the connection before the signal (this orders events; it
    // asserts nothing about time)
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.is_running(),
        "the server waits for the request in flight; log:\n{}",
        server.log()
    );
    stream.write_all(tail).unwrap();
    let mut response = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let reply: Value = serde_json::from_str(json_body).unwrap_or_else(|e| {
        panic!("{e}: {response}");
    });
    assert_eq!(reply["faq"]["id"], "deductible", "{reply}");
    assert!(server.wait().success(), "log:\n{}", server.log());

    // and the turn was stored before the process exited
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lines = rt.block_on(async {
        let store = Store::connect(&db.url).await.unwrap();
        store.transcript(&id).await.unwrap()
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].text, "起付线是什么");
}

#[test]
fn configuration_comes_from_a_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("from-file.db").display());
    std::fs::write(
        dir.path().join("yidi.toml"),
        format!("addr = \"127.0.0.1:0\"\ndatabase_url = \"{db}\"\n[limits]\nper_ip_burst = 2\n"),
    )
    .unwrap();
    // yidi.toml in the working directory, one limit overridden by the environment
    let server = ServeProcess::spawn(&[], &[("YIDI_LIMITS__PER_IP_PER_MINUTE", "2")], dir.path());
    let url = format!("{}/v1/faq/deductible", server.base);
    assert_eq!(call("GET", &url, None, None).0, 200);
    assert_eq!(call("GET", &url, None, None).0, 200);
    let (status, body) = call("GET", &url, None, None);
    assert_eq!(status, 429, "the file's burst of 2 applies: {body}");
    assert!(
        dir.path().join("from-file.db").exists(),
        "the file's database"
    );
    drop(server);

    // --print-config shows the merged result, with the bot token redacted
    let out = yidi_command()
        .args(["serve", "--print-config", "--addr", "127.0.0.1:9999"])
        .current_dir(dir.path())
        .env("TELOXIDE_TOKEN", "123456:SECRET-TOKEN")
        .env("YIDI_LIMITS__PER_SESSION_BURST", "5")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    // TOML, as a config file is written (issue 23)
    let parsed: toml::Table = toml::from_str(&printed).unwrap_or_else(|e| panic!("{e}: {printed}"));
    assert_eq!(parsed["addr"].as_str(), Some("127.0.0.1:9999"), "{printed}");
    assert_eq!(
        parsed["limits"]["per_ip_burst"].as_integer(),
        Some(2),
        "{printed}"
    );
    assert_eq!(
        parsed["limits"]["per_session_burst"].as_integer(),
        Some(5),
        "{printed}"
    );
    assert_eq!(
        parsed["telegram"]["token"].as_str(),
        Some("<redacted>"),
        "{printed}"
    );
    assert!(!printed.contains("SECRET"), "{printed}");

    // a closed pipe (`yidi serve --print-config | head -0`) is not a panic
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = yidi_command()
        .args(["serve", "--print-config"])
        .current_dir(dir.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_bad_configuration_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        ("adress = \"127.0.0.1:1\"\n", &[], "adress"),
        ("[limits]\nper_ip_burst = 0\n", &[], "limits.per_ip_burst"),
        ("", &[("YIDI_LIMITS__PER_IP_BURST", "many")], "per_ip_burst"),
        (
            "agent_token_sha256 = [\"secret\"]\n",
            &[],
            "agent_token_sha256",
        ),
    ];
    for (file, env, key) in cases {
        std::fs::write(dir.path().join("yidi.toml"), file).unwrap();
        let out = yidi_command()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.to_lowercase().contains(key), "{file}: {stderr}");
    }
    let out = yidi_command()
        .args(["serve", "--config", "missing.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

/// Issue 23 (first contact, item 3): what a newcomer tried, and what `yidi serve` says now:
/// one line, one prefix (`yidi serve:`), naming the fix.
#[test]
fn configuration_mistakes_are_explained_with_their_fix() {
    let dir = tempfile::tempdir().unwrap();
    let broken = crate::helpers::knowledge_copy();
    let region = broken.path().join("regions/suzhou.toml");
    let text = std::fs::read_to_string(&region).unwrap();
    std::fs::write(&region, text.replacen("id = \"suzhou\"", "id = 5", 1)).unwrap();
    let missing_folder = dir.path().join("no-such-folder/yidi.db");
    let missing_db = format!("sqlite://{}", missing_folder.display());
    let broken_knowledge = broken.path().display().to_string();
    std::fs::write(dir.path().join("typo.toml"), "adr = \"127.0.0.1:0\"\n").unwrap();
    type Case<'a> = (Vec<&'a str>, i32, &'a [&'a str]);
    let cases: Vec<Case> = vec![
        (
            vec!["--addr", "nowhere"],
            2,
            &[
                "yidi serve: key `addr` (command line)",
                "e.g. 127.0.0.1:8080",
            ],
        ),
        (
            vec!["--database-url", &missing_db],
            2,
            &[
                "yidi serve: the folder ",
                "no-such-folder of the SQLite file does not exist",
            ],
        ),
        (
            vec!["--database-url", "postgres://postgres@127.0.0.1:1/test"],
            1,
            &[
                "yidi serve: cannot open the database",
                "127.0.0.1:1",
                "Connection refused",
            ],
        ),
        (
            vec!["--dialogs", "no-such-dialogs"],
            2,
            &[
                "yidi serve: the dialogs folder no-such-dialogs does not exist",
                "--dialogs",
            ],
        ),
        (
            vec!["--config", "typo.toml"],
            2,
            &["yidi serve: unknown key `adr` in ", "did you mean `addr`?"],
        ),
        (
            vec!["--knowledge", &broken_knowledge],
            1,
            &[
                "yidi serve: invalid data:",
                "invalid region files:",
                "regions/suzhou.toml",
            ],
        ),
    ];
    for (args, code, says) in cases {
        let out = yidi_command()
            .arg("serve")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.starts_with("yidi serve: "), "{args:?}: {stderr}");
        for said in says {
            assert!(stderr.contains(said), "{args:?}: {said:?} not in {stderr}");
        }
        assert!(
            !stderr.contains("invalid checklist texts"),
            "{args:?}: {stderr}"
        );
        // said once, not repeated by a wrapper
        assert_eq!(
            stderr.matches("yidi serve:").count(),
            1,
            "{args:?}: {stderr}"
        );
    }
}

/// Issue 23: a host name and a plain file path work as a newcomer would write them.
#[test]
fn serve_takes_a_host_name_and_a_plain_database_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.db");
    let mut server = ServeProcess::spawn(
        &[
            "--addr",
            "localhost:0",
            "--database-url",
            file.to_str().unwrap(),
        ],
        &[],
        &repo(),
    );
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    let (status, _) = call("POST", &format!("{}/v1/sessions", server.base), None, None);
    assert_eq!(status, 201);
    assert!(file.exists(), "the plain path is the SQLite file");
    server.terminate();
    assert!(server.wait().success(), "{}", server.log());
}

#[test]
fn agent_token_prints_a_token_and_its_digest() {
    let out = crate::helpers::yidi(&["agent-token"], "");
    assert!(out.status.success());
    let text = crate::helpers::stdout(&out);
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token:"))
        .unwrap()
        .trim();
    assert_eq!(token.len(), 64);
    let digest = yidi::store::token_hash(token);
    assert!(
        text.contains(&format!("agent_token_sha256 = [\"{digest}\"]")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_bot_token_serve_also_runs_the_telegram_bot_on_the_same_store() {
    let fake = crate::fake_telegram::FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let api_url = fake.api_url.to_string();
    let mut server = tokio::task::block_in_place(|| {
        ServeProcess::spawn(
            &["--addr", "127.0.0.1:0", "--database-url", &db.url],
            &[
                ("TELOXIDE_TOKEN", crate::fake_telegram::TOKEN),
                ("TELOXIDE_API_URL", &api_url),
                // everything the server logs at info is checked for the token below
                ("YIDI_LOG", "info"),
            ],
            &repo(),
        )
    });
    const CHAT: i64 = 4242;
    fake.push(fake.text(CHAT, "/start"));
    let sent = fake.wait_sent(CHAT, 1).await;
    assert!(sent[0].text.contains("/filing"), "{}", sent[0].text);
    fake.push(fake.text(CHAT, "起付线是什么"));
    let sent = fake.wait_sent(CHAT, 2).await;
    assert!(sent[1].text.contains("来源"), "{}", sent[1].text);

    // the HTTP API of the same process is up, and the turns are in its store
    let base = server.base.clone();
    let (status, body) = tokio::task::block_in_place(|| {
        call("GET", &format!("{base}/v1/faq/deductible"), None, None)
    });
    assert_eq!(status, 200, "{body}");
    tokio::task::block_in_place(|| {
        server.terminate();
        assert!(server.wait().success(), "log:\n{}", server.log());
    });
    assert!(
        server.log().contains("starting the Telegram bot") && server.log().contains("turn"),
        "the log checked below is the real one: {}",
        server.log()
    );
    assert!(
        !server.log().contains(crate::fake_telegram::TOKEN),
        "{}",
        server.log()
    );
    let store = Store::connect(&db.url).await.unwrap();
    let lines = store
        .transcript(&store.caller_session_id(&format!("telegram:{CHAT}")))
        .await
        .unwrap();
    // /start is a command, not a turn: the question and its answer are stored
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].text, "起付线是什么");
    assert_eq!(lines[1].faq_id.as_deref(), Some("deductible"));
}

#[test]
fn a_malformed_bot_url_stops_the_server_naming_the_key() {
    let out = yidi_command()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .current_dir(repo())
        .env("TELOXIDE_TOKEN", "123456:X")
        .env("TELOXIDE_API_URL", "http://[::1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("telegram.api_url"), "{stderr}");
}

/// Issue 23, finding 7: refusals are logged once a minute per kind with a count, like store
/// errors in an outage, not once each: thirty wrong tokens and thirty rate-limited requests
/// make one line each.
#[test]
fn refusals_are_logged_once_a_minute_per_kind() {
    let db = TestDb::sqlite();
    let mut server = ServeProcess::spawn(
        &["--addr", "127.0.0.1:0", "--database-url", &db.url],
        &[
            ("YIDI_LOG", "info"),
            ("YIDI_LIMITS__PER_IP_BURST", "40"),
            ("YIDI_LIMITS__PER_IP_PER_MINUTE", "1"),
        ],
        &repo(),
    );
    let (status, created) = call("POST", &format!("{}/v1/sessions", server.base), None, None);
    assert_eq!(status, 201);
    let id = created["session_id"].as_str().unwrap().to_string();
    let url = format!("{}/v1/sessions/{id}", server.base);
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(call("GET", &url, Some("wrong-token"), None).0);
    }
    assert!(
        statuses.iter().filter(|s| **s == 401).count() >= 30,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 10,
        "{statuses:?}"
    );
    server.terminate();
    assert!(server.wait().success());
    let log = server.log();
    for kind in ["rejected session token", "rate limited"] {
        let lines = log.lines().filter(|l| l.contains(kind)).count();
        assert_eq!(lines, 1, "{kind}: {lines} lines\n{log}");
    }
    assert!(log.contains("held_back=0"), "{log}");
}

#[test]
fn the_data_reloads_on_sighup_and_for_agents_while_conversations_go_on() {
    let data = crate::helpers::data_copy();
    let (knowledge, dialogs) = (data.path().join("knowledge"), data.path().join("dialogs"));
    let db = format!("sqlite://{}", data.path().join("reload.db").display());
    let agent = "a".repeat(64);
    let digests = format!("[\"{}\"]", yidi::store::token_hash(&agent));
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--knowledge",
        knowledge.to_str().unwrap(),
        "--dialogs",
        dialogs.to_str().unwrap(),
    ];
    let env = [
        ("YIDI_LOG", "info"),
        ("YIDI_AGENT_TOKEN_SHA256", digests.as_str()),
    ];
    let server = ServeProcess::spawn(&args, &env, data.path());
    let faq = |id: &str| call("GET", &format!("{}/v1/faq/{id}", server.base), None, None);

    // a conversation is in the middle of the filing dialog when the data changes
    let (status, created) = call("POST", &format!("{}/v1/sessions", server.base), None, None);
    assert_eq!(status, 201, "{created}");
    let id = created["session_id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    let first = say(&server, id, token, "帮我列个备案材料清单");
    assert_eq!(
        (&first["dialog"], &first["asking"]),
        (&json!("filing"), &json!("insured_region")),
        "{first}"
    );

    // 1. an edited answer is in force after SIGHUP
    let file = knowledge.join("faq/contacts.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let edited = original.replace(
        "地址：张家港市华昌路3号",
        "地址：张家港市华昌路3号（第二版）",
    );
    assert_ne!(edited, original);
    std::fs::write(&file, &edited).unwrap();
    server.hangup();
    let log = server.wait_for_log("reloaded the knowledge, dialogs and regions");
    assert!(log.contains("SIGHUP"), "{log}");
    let (status, entry) = faq("contacts");
    assert_eq!(status, 200);
    assert!(
        entry["answer"].as_str().unwrap().contains("（第二版）"),
        "{entry}"
    );
    // the dialog goes on from where it was
    let second = say(&server, id, token, "苏州");
    assert_eq!(
        (&second["dialog"], &second["asking"]),
        (&json!("filing"), &json!("care_location")),
        "{second}"
    );

    // 2. a broken file: refused with the precise problem, the previous data keeps serving
    std::fs::write(
        &file,
        edited.replacen("as_of = \"2026-12-07\"", "as_of = \"2026-12\"", 1),
    )
    .unwrap();
    server.hangup();
    let log = server.wait_for_log("reload refused: invalid knowledge: faq/contacts.toml");
    assert!(
        log.contains(
            "reload refused: invalid knowledge: faq/contacts.toml: entry `contacts`: field `as_of`: 2026-12 names no day"
        ),
        "{log}"
    );
    assert!(log.contains("still serving the previous data"), "{log}");
    let (_, entry) = faq("contacts");
    assert!(
        entry["answer"].as_str().unwrap().contains("（第二版）"),
        "{entry}"
    );
    let third = say(&server, id, token, "上海");
    assert_eq!(third["dialog"], "filing", "{third}");
    assert_ne!(third["asking"], "care_location", "{third}");

    // 3. the agents' endpoint: agents only; the same refusal in JSON, then a reload in force
    let reload = |token: Option<&str>| {
        call(
            "POST",
            &format!("{}/v1/agent/reload", server.base),
            token,
            None,
        )
    };
    let (status, body) = reload(None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "missing_agent_token");
    let (status, body) = reload(Some(&agent));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_data");
    let problems = body["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().starts_with(
                "invalid knowledge: faq/contacts.toml: entry `contacts`: field `as_of`"
            )),
        "{body}"
    );
    std::fs::write(
        &file,
        original.replace(
            "地址：张家港市华昌路3号",
            "地址：张家港市华昌路3号（第三版）",
        ),
    )
    .unwrap();
    let (status, body) = reload(Some(&agent));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["generation"], 2, "{body}");
    assert!(body["entries"].as_u64().unwrap() > 40, "{body}");
    let (_, entry) = faq("contacts");
    assert!(
        entry["answer"].as_str().unwrap().contains("（第三版）"),
        "{entry}"
    );
    // and the conversation still goes on, on the new data
    let (status, session) = call(
        "GET",
        &format!("{}/v1/sessions/{id}", server.base),
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["slots"]["insured_region"], "suzhou", "{session}");
    let fourth = say(&server, id, token, "异地备案有效期多久");
    assert_eq!(fourth["kind"], "faq", "{fourth}");
}
