//! The WeChat Official Account channel end to end: the endpoint served on 127.0.0.1:0 with a
//! real store (SQLite files), WeChat's side played by `fake_wechat::Pusher` (signed and, in
//! safe mode, encrypted requests) and WeChat's API by `fake_wechat::FakeWeChat`; and
//! `yidi serve` as a real process with the channel on.

use std::time::Duration;

use yidi::channels::wechat::{WeChat, WeChatSettings};
use yidi::config::Limits;
use yidi::conversation::Conversations;
use yidi::dialog::engine::SessionState;
use yidi::store::Store;

use crate::db::TestDb;
use crate::fake_wechat::{
    ACCOUNT, AES_KEY, APP_ID, APP_SECRET, Answer, FakeWeChat, Pusher, TOKEN, encrypt, event_xml,
    image_xml, nonce, now, sha1_hex, text_xml,
};
use crate::helpers::{assistant, repo};

/// The endpoint running in this process.
struct Endpoint {
    pusher: Pusher,
    store: Store,
    conversations: Conversations,
    channel: WeChat,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const PASSIVE: Duration = Duration::from_millis(3000);

async fn start(fake: &FakeWeChat, db: &TestDb, safe: bool, deadline: Duration) -> Endpoint {
    let limits = Limits {
        per_session_burst: 1_000,
        ..Limits::default()
    };
    start_with(fake, db, safe, deadline, &limits).await
}

async fn start_with(
    fake: &FakeWeChat,
    db: &TestDb,
    safe: bool,
    deadline: Duration,
    limits: &Limits,
) -> Endpoint {
    start_full(fake, db, safe, deadline, limits, assistant()).await
}

async fn start_full(
    fake: &FakeWeChat,
    db: &TestDb,
    safe: bool,
    deadline: Duration,
    limits: &Limits,
    assistant: std::sync::Arc<yidi::Assistant>,
) -> Endpoint {
    let store = Store::connect(&db.url).await.expect("connect + migrate");
    let conversations = Conversations::new(assistant, store.clone()).with_limits(limits);
    let settings = WeChatSettings {
        token: TOKEN.into(),
        app_id: APP_ID.into(),
        app_secret: APP_SECRET.into(),
        encoding_aes_key: safe.then(|| AES_KEY.to_string()),
        api_url: fake.api_url.clone(),
        path: "/wechat".into(),
        reply_deadline: deadline,
        request_timeout: Duration::from_secs(30),
    };
    let channel = WeChat::new(settings, conversations.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wechat", listener.local_addr().unwrap());
    let router = channel.router();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Endpoint {
        pusher: Pusher::new(url, safe),
        store,
        conversations,
        channel,
        server,
    }
}

impl Endpoint {
    async fn lines(&self, openid: &str) -> Vec<(String, String)> {
        self.store
            .transcript(&self.channel.stored_session(openid))
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.role, l.text))
            .collect()
    }

    async fn state(&self, openid: &str) -> Option<SessionState> {
        self.conversations
            .state(&self.channel.stored_session(openid))
            .await
            .unwrap()
    }
}

/// Sends a text and returns the reply: the passive one, or else the customer-service
/// messages that follow (joined).
async fn say(e: &Endpoint, fake: &FakeWeChat, openid: &str, text: &str, msg_id: u64) -> String {
    let before = fake.sent(openid).len();
    let answer = e.pusher.post(&text_xml(openid, text, msg_id)).await;
    reply_of(answer, fake, openid, before).await
}

async fn reply_of(answer: Answer, fake: &FakeWeChat, openid: &str, before: usize) -> String {
    match answer.content() {
        Some(text) => text,
        None => {
            fake.wait_sent(openid, before + 1).await;
            // the pieces of one reply are sent one after another: let them all arrive
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sent = fake.sent(openid);
            assert!(sent.len() > before, "{sent:?}");
            sent[before..]
                .iter()
                .map(|s| s.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

#[tokio::test]
async fn the_server_url_check_answers_echostr_only_to_a_good_signature() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let (ts, n) = (now(), nonce());
    let good = e
        .pusher
        .verify(&sha1_hex(&[TOKEN, &ts.to_string(), &n]), ts, &n)
        .await;
    assert_eq!(
        (good.status, good.body.as_str()),
        (200, "8422910737447061155")
    );
    let n = nonce();
    let bad = e
        .pusher
        .verify(&sha1_hex(&["other", &ts.to_string(), &n]), ts, &n)
        .await;
    assert_eq!(bad.status, 403);
    assert!(!bad.body.contains("8422910737447061155"));
    let (old, n) = (now() - 600, nonce());
    let stale = e
        .pusher
        .verify(&sha1_hex(&[TOKEN, &old.to_string(), &n]), old, &n)
        .await;
    assert_eq!(stale.status, 403);
}

#[tokio::test]
async fn a_text_message_gets_a_passive_reply_in_its_own_session() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let answer = e
        .pusher
        .post(&text_xml("oUserA", "起付线是什么", 1001))
        .await;
    let xml = answer.body.clone();
    assert_eq!(
        crate::fake_wechat::element(&xml, "ToUserName").as_deref(),
        Some("oUserA")
    );
    assert_eq!(
        crate::fake_wechat::element(&xml, "FromUserName").as_deref(),
        Some(ACCOUNT)
    );
    let text = answer.content().expect("a passive reply");
    assert!(text.contains("来源"), "{text}");
    let lines = e.lines("oUserA").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], ("user".into(), "起付线是什么".into()));
    // nothing went through the customer-service API, and no token was needed
    assert!(fake.sent("oUserA").is_empty());
    assert_eq!(fake.token_requests(), 0);
    let metrics = e.conversations.metrics.render();
    assert!(
        metrics.contains("yidi_http_requests_total{route=\"/wechat\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("yidi_turns_total{kind=\"faq\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_replayed_nonces_are_refused() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let xml = text_xml("oUserB", "备案要带什么材料", 2001);
    let wrong = e
        .pusher
        .post_with(&xml, now(), &nonce(), "notTheToken")
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    for ts in [now() - 301, now() + 400] {
        let stale = e.pusher.post_with(&xml, ts, &nonce(), TOKEN).await;
        assert_eq!(stale.status, 403, "{}", stale.body);
    }
    let unsigned = e
        .pusher
        .raw(
            &[("timestamp", now().to_string()), ("nonce", nonce())],
            xml.clone(),
        )
        .await;
    assert_eq!(unsigned.status, 400);
    assert!(
        e.lines("oUserB").await.is_empty(),
        "refused requests make no turn"
    );

    // a signed request, then the same timestamp and nonce with another message: a replay
    let (ts, n) = (now(), nonce());
    let first = e.pusher.post_with(&xml, ts, &n, TOKEN).await;
    assert!(first.content().is_some());
    let forged = text_xml("oUserB", "重新开始", 2002);
    let replay = e.pusher.post_with(&forged, ts, &n, TOKEN).await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert_eq!(e.lines("oUserB").await.len(), 2);
    let metrics = e.conversations.metrics.render();
    assert!(
        metrics.contains("yidi_http_requests_total{route=\"/wechat\",status=\"403\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn safe_mode_decrypts_the_message_and_encrypts_the_reply() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, true, PASSIVE).await;
    assert!(e.channel.safe_mode());
    let text = say(&e, &fake, "oUserC", "起付线是什么", 3001).await;
    assert!(text.contains("来源"), "{text}");
    assert_eq!(e.lines("oUserC").await.len(), 2);

    // plaintext requests are refused in safe mode
    let plain = Pusher::new(e.pusher.url.clone(), false);
    let answer = plain.post(&text_xml("oUserC", "你好", 3002)).await;
    assert_eq!(answer.status, 403);
    // a bad msg_signature, and a message encrypted for another app id
    let (ts, n) = (now().to_string(), nonce());
    let encrypted = encrypt(&text_xml("oUserC", "你好", 3003), APP_ID);
    let envelope = format!("<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>");
    let query = |msg_signature: String| {
        vec![
            ("signature", sha1_hex(&[TOKEN, &ts, &n])),
            ("timestamp", ts.clone()),
            ("nonce", n.clone()),
            ("encrypt_type", "aes".to_string()),
            ("msg_signature", msg_signature),
        ]
    };
    let bad = e
        .pusher
        .raw(&query(sha1_hex(&[TOKEN, &ts, &n, "x"])), envelope.clone())
        .await;
    assert_eq!(bad.status, 403);
    // without the query's own signature (WeChat sends it in safe mode too), refused before
    // the body is read
    let mut unsigned = query(sha1_hex(&[TOKEN, &ts, &n, &encrypted]));
    unsigned.remove(0);
    assert_eq!(e.pusher.raw(&unsigned, envelope).await.status, 400);
    let (ts, n) = (now().to_string(), nonce());
    let foreign = encrypt(&text_xml("oUserC", "你好", 3004), "wx_someone_else");
    let answer = e
        .pusher
        .raw(
            &[
                ("signature", sha1_hex(&[TOKEN, &ts, &n])),
                ("timestamp", ts.clone()),
                ("nonce", n.clone()),
                ("encrypt_type", "aes".to_string()),
                ("msg_signature", sha1_hex(&[TOKEN, &ts, &n, &foreign])),
            ],
            format!("<xml><Encrypt><![CDATA[{foreign}]]></Encrypt></xml>"),
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(e.lines("oUserC").await.len(), 2);
}

#[tokio::test]
async fn a_late_reply_goes_by_customer_service_message_with_a_cached_token() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    // a zero deadline: every reply misses the passive window
    let e = start(&fake, &db, true, Duration::ZERO).await;
    let answer = e
        .pusher
        .post(&text_xml("oUserD", "起付线是什么", 4001))
        .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "success"));
    let sent = fake.wait_sent("oUserD", 1).await;
    assert!(sent[0].content.contains("来源"), "{sent:?}");
    let answer = e
        .pusher
        .post(&text_xml("oUserD", "备案要带什么材料", 4002))
        .await;
    assert_eq!(answer.body, "success");
    let sent = fake.wait_sent("oUserD", 2).await;
    assert_eq!(fake.token_requests(), 1, "the token is cached");
    assert_eq!(sent[0].token, sent[1].token);
    assert_eq!(e.lines("oUserD").await.len(), 4);

    // a revoked token: refused with 40001, fetched again, sent
    fake.revoke_tokens();
    let answer = e.pusher.post(&text_xml("oUserD", "你好", 4003)).await;
    assert_eq!(answer.body, "success");
    let sent = fake.wait_sent("oUserD", 3).await;
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(sent[2].token, "TOKEN-2");
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires_and_once_for_concurrent_requests() {
    let fake = FakeWeChat::start().await;
    fake.set_expires_in(2);
    fake.set_token_delay(Duration::from_millis(300));
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, Duration::ZERO).await;
    // five users at once: one token request
    let posts = (0..5).map(|i| {
        let pusher = e.pusher.clone();
        async move {
            pusher
                .post(&text_xml(&format!("oConc{i}"), "你好", 5000 + i))
                .await
        }
    });
    for answer in futures_join_all(posts).await {
        assert_eq!(answer.body, "success");
    }
    for i in 0..5 {
        fake.wait_sent(&format!("oConc{i}"), 1).await;
    }
    assert_eq!(fake.token_requests(), 1);
    // a 2-second token is refreshed after a second, before it expires
    tokio::time::sleep(Duration::from_millis(1200)).await;
    e.pusher.post(&text_xml("oConc0", "谢谢", 5100)).await;
    let sent = fake.wait_sent("oConc0", 2).await;
    assert_eq!(fake.token_requests(), 2);
    assert_eq!(sent[1].token, "TOKEN-2");
}

/// Awaits every future concurrently.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn wechats_retries_of_a_message_never_make_a_second_turn() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let xml = text_xml("oUserE", "异地就医备案怎么办理", 6001);
    // three deliveries at once (new nonces), then one more after the reply
    let posts = (0..3).map(|_| {
        let pusher = e.pusher.clone();
        let xml = xml.clone();
        async move { pusher.post(&xml).await }
    });
    let answers = futures_join_all(posts).await;
    let texts: Vec<String> = answers.iter().filter_map(Answer::content).collect();
    assert!(!texts.is_empty());
    assert!(texts.iter().all(|t| *t == texts[0]), "{texts:?}");
    let again = e.pusher.post(&xml).await;
    assert_eq!(again.content().as_deref(), Some(texts[0].as_str()));
    // a retry may repeat the nonce too
    let (ts, n) = (now(), nonce());
    let xml2 = text_xml("oUserE", "谢谢", 6002);
    assert!(
        e.pusher
            .post_with(&xml2, ts, &n, TOKEN)
            .await
            .content()
            .is_some()
    );
    assert!(
        e.pusher
            .post_with(&xml2, ts, &n, TOKEN)
            .await
            .content()
            .is_some()
    );
    assert_eq!(e.lines("oUserE").await.len(), 4, "two messages, two turns");

    // replicas: another process on the same database sees the MsgIds recorded
    let other = start(&fake, &db, false, PASSIVE).await;
    let answer = other.pusher.post(&xml).await;
    assert_eq!(answer.body, "success");
    assert_eq!(e.lines("oUserE").await.len(), 4);

    // with late replies: one customer-service message, however many retries
    let late = start(&fake, &db, false, Duration::ZERO).await;
    let xml = text_xml("oUserE", "起付线是什么", 6003);
    for _ in 0..3 {
        assert_eq!(late.pusher.post(&xml).await.body, "success");
    }
    fake.wait_sent("oUserE", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.sent("oUserE").len(), 1);
    assert_eq!(e.lines("oUserE").await.len(), 6);
}

#[tokio::test]
async fn replicas_on_one_postgres_make_one_turn_of_a_retried_message() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::postgres().await;
    let a = start(&fake, &db, false, PASSIVE).await;
    let b = start(&fake, &db, false, PASSIVE).await;
    for id in 0..5u64 {
        let xml = text_xml("oPgUser", "起付线是什么", 12000 + id);
        // the first delivery and two retries, spread over both replicas at once
        let posts = [&a, &b, &a].map(|e| {
            let pusher = e.pusher.clone();
            let xml = xml.clone();
            tokio::spawn(async move { pusher.post(&xml).await })
        });
        let mut replies = 0;
        for p in posts {
            if p.await.unwrap().content().is_some() {
                replies += 1;
            }
        }
        assert!(replies >= 1, "someone answers");
    }
    assert_eq!(
        a.lines("oPgUser").await.len(),
        10,
        "five messages, five turns"
    );
}

#[tokio::test]
async fn a_long_reply_goes_out_in_pieces_cut_at_sentences() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let u = "oLong";
    let answers = [
        "帮我算能报多少",
        "苏州",
        "城乡居民医保",
        "其他居民",
        "住院",
        "三级医院",
        "其他临时外出就医",
        "还没有备案",
        "不是急诊",
        "5万",
        "8000",
    ];
    for (i, text) in answers.iter().enumerate() {
        say(&e, &fake, u, text, 13000 + i as u64).await;
    }
    assert!(fake.sent(u).is_empty(), "every reply so far was passive");
    // every rule of the estimate: a little over 2,048 bytes
    let answer = e.pusher.post(&text_xml(u, "详细依据", 13100)).await;
    assert_eq!(
        answer.body, "success",
        "more than one message: none passive"
    );
    fake.wait_sent(u, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = fake.sent(u);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].content.starts_with("这次估算用到的全部依据"),
        "{}",
        sent[0].content
    );
    for piece in &sent {
        assert!(piece.content.len() <= 2048);
    }
    let lines = e.lines(u).await;
    assert_eq!(lines.len(), 24);
    // the transcript keeps the reply whole (masked as stored); the cut is at a line end or
    // after a sentence
    let whole = &lines[23].1;
    assert!(whole.len() > 2048);
    let head: String = sent[1].content.chars().take(12).collect();
    assert!(
        whole.contains(&format!("\n{head}")) || sent[0].content.ends_with(['。', '；', '！', '？']),
        "cut inside a sentence: …{:?} | {head:?}…",
        sent[0].content.chars().rev().take(20).collect::<String>()
    );
}

#[tokio::test]
async fn events_welcome_start_dialogs_reset_and_other_messages_get_a_note() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, true, PASSIVE).await;
    let u = "oUserF";
    let post = |xml: String| {
        let pusher = e.pusher.clone();
        async move { pusher.post(&xml).await }
    };
    let t = now();
    let welcome = post(event_xml(u, "subscribe", None, t))
        .await
        .content()
        .unwrap();
    assert!(
        welcome.contains("异地就医小助手") && welcome.contains("备案清单"),
        "{welcome}"
    );
    assert!(e.lines(u).await.is_empty(), "the welcome is no turn");

    let filing = post(event_xml(u, "CLICK", Some("filing"), t + 1))
        .await
        .content()
        .unwrap();
    assert!(filing.contains("\n1. 苏州\n2. 张家港"), "{filing}");
    assert_eq!(e.state(u).await.unwrap().active.unwrap().dialog, "filing");
    let card = post(event_xml(u, "CLICK", Some("card"), t + 2))
        .await
        .content()
        .unwrap();
    assert!(card.contains("1. "), "{card}");
    assert_eq!(
        e.state(u).await.unwrap().active.unwrap().dialog,
        "card_failure"
    );
    let reset = post(event_xml(u, "CLICK", Some("reset"), t + 3))
        .await
        .content()
        .unwrap();
    assert!(!reset.is_empty());
    assert_eq!(e.state(u).await.unwrap(), SessionState::new());
    let users: Vec<String> = e
        .lines(u)
        .await
        .into_iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text)
        .collect();
    assert_eq!(users, ["/filing", "/card_failure", "/reset"]);

    let unknown = post(event_xml(u, "CLICK", Some("nope"), t + 4))
        .await
        .content()
        .unwrap();
    assert!(unknown.contains("菜单"), "{unknown}");
    let image = post(image_xml(u, 7001)).await.content().unwrap();
    assert!(image.contains("文字"), "{image}");
    for (event, key) in [("VIEW", Some("https://example.org")), ("unsubscribe", None)] {
        let answer = post(event_xml(u, event, key, t + 5)).await;
        assert_eq!(answer.body, "success", "{event}");
    }
    assert_eq!(e.lines(u).await.len(), 6, "unsubscribe ends nothing stored");
    assert!(fake.sent(u).is_empty());
}

#[tokio::test]
async fn a_whole_estimate_dialog_answered_with_numbers() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let u = "oUserG";
    let first = e
        .pusher
        .post(&event_xml(u, "CLICK", Some("estimate"), now()))
        .await
        .content()
        .unwrap();
    assert!(
        first.contains("参保地") && first.contains("1. 苏州"),
        "{first}"
    );
    let mut id = 8000;
    let mut answer = |text: &'static str| {
        id += 1;
        let id = id;
        let e = &e;
        let fake = &fake;
        async move { say(e, fake, u, text, id).await }
    };
    // region 苏州, scheme 职工医保, 退休, 住院, 三级医院, 异地安置退休, 备案办好了
    let expected = [
        ("1", "insured_region", "suzhou"),
        ("1", "scheme", "employee"),
        ("2", "employment", "retired"),
        ("1", "visit", "inpatient"),
        ("1", "hospital_level", "3"),
        ("1", "filing_type", "resettled_retiree"),
        ("1", "filed", "true"),
    ];
    for (text, slot, _) in expected {
        let reply = answer(text).await;
        let state = e.state(u).await.unwrap();
        assert!(
            state.slots.contains_key(slot),
            "{text} for {slot}: {reply}\n{:?}",
            state.slots
        );
    }
    let state = e.state(u).await.unwrap();
    for (_, slot, value) in expected {
        assert_eq!(
            state.slots.get(slot).map(String::as_str),
            Some(value),
            "{slot}"
        );
    }
    let reply = answer("5万").await;
    assert!(reply.contains("自费"), "{reply}");
    let result = answer("不清楚").await;
    assert!(result.contains("估算"), "{result}");
    // the estimate is there; an optional question about earlier care may follow
    // the transcript shows the choices as the user saw them
    let users: Vec<String> = e
        .lines(u)
        .await
        .into_iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text)
        .collect();
    assert_eq!(users[..3], ["/estimate", "苏州", "职工医保"]);
}

#[tokio::test]
async fn a_clarifying_questions_options_are_numbered_and_picked_by_number() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let u = "oUserH";
    let ask = say(&e, &fake, u, "报销的事", 9001).await;
    assert!(ask.contains("\n1. ") && ask.contains("\n2. "), "{ask}");
    let first_option = ask
        .lines()
        .find_map(|l| l.strip_prefix("1. "))
        .unwrap()
        .to_string();
    let picked = say(&e, &fake, u, "1", 9002).await;
    let lines = e
        .store
        .transcript(&e.channel.stored_session(u))
        .await
        .unwrap();
    assert_eq!(
        lines.last().unwrap().kind.as_deref(),
        Some("faq"),
        "{picked}"
    );
    let faq = lines.last().unwrap().faq_id.clone().unwrap();
    let assistant = e.conversations.assistant();
    let entry = assistant.knowledge.faq(&faq).unwrap();
    assert_eq!(entry.question, first_option);
}

#[tokio::test]
async fn a_user_over_the_rate_limit_is_told_once() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let limits = Limits {
        per_session_burst: 2,
        per_session_per_minute: 1,
        ..Limits::default()
    };
    let e = start_with(&fake, &db, false, PASSIVE, &limits).await;
    let u = "oUserI";
    say(&e, &fake, u, "你好", 10001).await;
    say(&e, &fake, u, "谢谢", 10002).await;
    let note = e
        .pusher
        .post(&text_xml(u, "在吗", 10003))
        .await
        .content()
        .unwrap();
    assert!(note.contains("秒后再发"), "{note}");
    assert_eq!(
        e.pusher.post(&text_xml(u, "在吗", 10004)).await.body,
        "success"
    );
    assert_eq!(e.lines(u).await.len(), 4);
    // another user is not limited
    assert!(!say(&e, &fake, "oUserJ", "你好", 10005).await.is_empty());
    let metrics = e.conversations.metrics.render();
    assert!(
        metrics.contains("yidi_rate_limited_total{scope=\"session\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_wechat_endpoint_in_safe_mode() {
    use crate::serve::ServeProcess;
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let api_url = fake.api_url.to_string();
    let mut server = tokio::task::block_in_place(|| {
        ServeProcess::spawn(
            &["--addr", "127.0.0.1:0", "--database-url", &db.url],
            &[
                ("YIDI_WECHAT__TOKEN", TOKEN),
                ("YIDI_WECHAT__APP_ID", APP_ID),
                ("YIDI_WECHAT__APP_SECRET", APP_SECRET),
                ("YIDI_WECHAT__ENCODING_AES_KEY", AES_KEY),
                ("YIDI_WECHAT__API_URL", &api_url),
                ("YIDI_WECHAT__PATH", "/wx/callback"),
                // /metrics is closed by default (issue 23): opened here to read it
                ("YIDI_METRICS__OPEN", "true"),
                // everything logged at info is checked for secrets and content below
                ("YIDI_LOG", "info"),
            ],
            &repo(),
        )
    });
    let pusher = Pusher::new(format!("{}/wx/callback", server.base), true);
    let (ts, n) = (now(), nonce());
    let check = pusher
        .verify(&sha1_hex(&[TOKEN, &ts.to_string(), &n]), ts, &n)
        .await;
    assert_eq!(check.body, "8422910737447061155");
    let reply = pusher
        .post(&text_xml("oServe1", "起付线是什么", 11001))
        .await
        .content()
        .unwrap();
    assert!(reply.contains("来源"), "{reply}");
    let refused = pusher
        .post_with(
            &text_xml("oServe1", "机密内容", 11002),
            now(),
            &nonce(),
            "wrongToken",
        )
        .await;
    assert_eq!(refused.status, 403);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("route=\"/wx/callback\",status=\"403\""),
        "{metrics}"
    );
    tokio::task::block_in_place(|| {
        server.terminate();
        assert!(server.wait().success(), "log:\n{}", server.log());
    });
    let log = server.log();
    assert!(
        log.contains("WeChat Official Account endpoint") && log.contains("request refused"),
        "{log}"
    );
    for secret in [APP_SECRET, AES_KEY, TOKEN, "机密内容", "起付线"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let store = Store::connect(&db.url).await.unwrap();
    let stored = store.caller_session_id("wechat:oServe1");
    assert_eq!(store.transcript(&stored).await.unwrap().len(), 2);
    // the database never holds an OpenID
    assert!(store.transcript("wechat:oServe1").await.unwrap().is_empty());
}

/// `yidi` with only the given variables of ours.
fn yidi(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_yidi"));
    for (key, _) in std::env::vars() {
        if key.starts_with("YIDI_") || key.starts_with("TELOXIDE_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_menu_prints_the_menu_and_posts_it() {
    let out = tokio::task::block_in_place(|| yidi(&["wechat-menu"], &[]));
    assert!(out.status.success());
    let menu: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(menu, yidi::channels::wechat::menu());
    assert!(String::from_utf8_lossy(&out.stdout).contains("报销估算"));

    let fake = FakeWeChat::start().await;
    let api_url = fake.api_url.to_string();
    let env = [
        ("YIDI_WECHAT__APP_ID", APP_ID),
        ("YIDI_WECHAT__APP_SECRET", APP_SECRET),
        ("YIDI_WECHAT__API_URL", api_url.as_str()),
    ];
    let out = tokio::task::block_in_place(|| yidi(&["wechat-menu", "--post"], &env));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.menus(), vec![menu]);
    // a wrong secret: WeChat's refusal, exit 1, no secret printed
    let env = [
        ("YIDI_WECHAT__APP_ID", APP_ID),
        ("YIDI_WECHAT__APP_SECRET", "WRONGSECRET"),
        ("YIDI_WECHAT__API_URL", api_url.as_str()),
    ];
    let out = tokio::task::block_in_place(|| yidi(&["wechat-menu", "--post"], &env));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("40125") && !stderr.contains("WRONGSECRET"),
        "{stderr}"
    );
    let out = tokio::task::block_in_place(|| yidi(&["wechat-menu", "--post"], &[]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn print_config_redacts_the_wechat_secrets_and_a_bad_key_stops_serve() {
    let env = [
        ("YIDI_WECHAT__TOKEN", TOKEN),
        ("YIDI_WECHAT__APP_ID", APP_ID),
        ("YIDI_WECHAT__APP_SECRET", APP_SECRET),
        ("YIDI_WECHAT__ENCODING_AES_KEY", AES_KEY),
    ];
    let out = yidi(&["serve", "--print-config"], &env);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("wechat") && printed.contains(APP_ID),
        "{printed}"
    );
    for secret in [TOKEN, APP_SECRET, AES_KEY] {
        assert!(!printed.contains(secret), "{printed}");
    }
    let out = yidi(
        &["serve", "--addr", "127.0.0.1:0"],
        &[("YIDI_WECHAT__TOKEN", TOKEN)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wechat.app_id"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Issue 23: an outside review's findings on the endpoint

/// Finding 6: a timestamp at the ends of i64 is refused as stale; computing how far it is
/// from now used to overflow (a panic in a debug build, a wrapped value in release).
#[tokio::test]
async fn extreme_timestamps_are_refused_not_overflowed() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0] {
        let answer = e
            .pusher
            .post_with(&text_xml("oUserT", "你好", 9100), ts, &nonce(), TOKEN)
            .await;
        assert_eq!(answer.status, 403, "timestamp {ts}: {}", answer.body);
    }
    assert!(e.lines("oUserT").await.is_empty());
}

/// Finding 6: messages are deduplicated by (FromUserName, MsgId): a MsgId that another user's
/// message had is a new message, answered for this user.
#[tokio::test]
async fn a_msg_id_reused_by_another_user_gets_that_users_own_reply() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let first = say(&e, &fake, "oUserA", "起付线是什么", 9200).await;
    let second = say(&e, &fake, "oUserB", "异地就医备案要带什么材料", 9200).await;
    assert_ne!(first, second, "user B got user A's reply");
    assert_eq!(e.lines("oUserA").await.len(), 2);
    let b = e.lines("oUserB").await;
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b[0].1, "异地就医备案要带什么材料");
    // the same user's retry is still one turn
    let again = e
        .pusher
        .post(&text_xml("oUserB", "异地就医备案要带什么材料", 9200))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(e.lines("oUserB").await.len(), 2);
}

/// Finding 6: the endpoint's answers say `nosniff` and `no-store`, refusals included.
#[tokio::test]
async fn the_endpoints_answers_are_not_sniffed_or_cached() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let e = start(&fake, &db, false, PASSIVE).await;
    let client = reqwest::Client::new();
    let (ts, n) = (now().to_string(), nonce());
    let good = client
        .post(&e.pusher.url)
        .query(&[
            ("signature", sha1_hex(&[TOKEN, &ts, &n])),
            ("timestamp", ts.clone()),
            ("nonce", n.clone()),
        ])
        .body(text_xml("oUserN", "起付线是什么", 9300))
        .send()
        .await
        .unwrap();
    let bad = client
        .post(&e.pusher.url)
        .query(&[
            ("signature", "0".repeat(40)),
            ("timestamp", ts),
            ("nonce", nonce()),
        ])
        .body(text_xml("oUserN", "你好", 9301))
        .send()
        .await
        .unwrap();
    for (what, r) in [("reply", good), ("refusal", bad)] {
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
    }
}

/// The endpoint served as `yidi serve` serves it: on `http::serve_router`, with `limits`.
async fn start_served(
    fake: &FakeWeChat,
    db: &TestDb,
    limits: yidi::config::Http,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let store = Store::connect(&db.url).await.unwrap();
    let conversations = Conversations::new(assistant(), store);
    let settings = WeChatSettings {
        token: TOKEN.into(),
        app_id: APP_ID.into(),
        app_secret: APP_SECRET.into(),
        encoding_aes_key: None,
        api_url: fake.api_url.clone(),
        path: "/wechat".into(),
        reply_deadline: PASSIVE,
        request_timeout: Duration::from_secs(limits.request_timeout_secs),
    };
    let router = WeChat::new(settings, conversations).unwrap().router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(yidi::channels::http::serve_router(
        listener,
        router,
        limits,
        async {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// Sends a POST to /wechat with `query` whose body (`length` bytes declared) is never sent,
/// or trickled one byte every `every`; returns what came back within `wait`.
async fn post_slowly(
    addr: std::net::SocketAddr,
    query: &str,
    length: usize,
    every: Option<Duration>,
    wait: Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /wechat?{query} HTTP/1.1\r\nHost: yidi\r\nContent-Type: text/xml\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        if let Some(every) = every {
            for _ in 0..length {
                tokio::time::sleep(every).await;
                if write.write_all(b" ").await.is_err() {
                    break;
                }
            }
        }
        // keep the connection open, sending nothing more
        std::future::pending::<()>().await;
        drop(write);
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Finding 2: the signature in the query string is checked before the body is read, so a
/// request that is not WeChat's is refused at once even if its body never comes (before: the
/// server waited for the body, with no timeout at all on this route).
#[tokio::test]
async fn a_bad_signature_is_refused_before_the_body_is_read() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let (addr, _stop) = start_served(&fake, &db, yidi::config::Http::default()).await;
    let query = format!(
        "signature={}&timestamp={}&nonce={}",
        "0".repeat(40),
        now(),
        nonce()
    );
    let answer = post_slowly(addr, &query, 1_000, None, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer:?}");
}

/// Finding 2: a signed request whose body trickles gets the server's body deadline (408);
/// one whose body keeps above the floor but takes longer than the request timeout gets the
/// route's timeout (503), like every other route.
#[tokio::test]
async fn a_signed_request_with_a_slow_body_gets_the_body_deadline_and_the_request_timeout() {
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let signed = || {
        let (ts, n) = (now().to_string(), nonce());
        format!(
            "signature={}&timestamp={ts}&nonce={n}",
            sha1_hex(&[TOKEN, &ts, &n])
        )
    };
    let limits = yidi::config::Http {
        body_timeout_secs: 1,
        body_min_bytes_per_sec: 1_000,
        ..yidi::config::Http::default()
    };
    let (addr, _stop) = start_served(&fake, &db, limits).await;
    let answer = post_slowly(
        addr,
        &signed(),
        100,
        Some(Duration::from_millis(300)),
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    let limits = yidi::config::Http {
        body_timeout_secs: 60,
        body_min_bytes_per_sec: 1,
        request_timeout_secs: 1,
        ..yidi::config::Http::default()
    };
    let (addr, _stop) = start_served(&fake, &db, limits).await;
    let answer = post_slowly(
        addr,
        &signed(),
        100,
        Some(Duration::from_millis(200)),
        Duration::from_secs(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
}

/// Finding 2 as the review ran it: `yidi serve` with the WeChat endpoint, many signed
/// requests trickling their bodies, then SIGTERM. Before, the shutdown waited for them until
/// its 20-second grace ran out and exited 1; now they get `body_timeout_secs` to finish, are
/// closed, and it exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_cleanly_with_wechat_bodies_still_trickling() {
    use crate::serve::ServeProcess;
    let fake = FakeWeChat::start().await;
    let db = TestDb::sqlite();
    let api_url = fake.api_url.to_string();
    let mut server = tokio::task::block_in_place(|| {
        ServeProcess::spawn(
            &["--addr", "127.0.0.1:0", "--database-url", &db.url],
            &[
                ("YIDI_WECHAT__TOKEN", TOKEN),
                ("YIDI_WECHAT__APP_ID", APP_ID),
                ("YIDI_WECHAT__APP_SECRET", APP_SECRET),
                ("YIDI_WECHAT__API_URL", &api_url),
                // the bodies keep above this floor (two bytes a second): their own deadline
                // never ends them, the shutdown's grace for bodies (3 s) does
                ("YIDI_HTTP__BODY_TIMEOUT_SECS", "3"),
                ("YIDI_HTTP__BODY_MIN_BYTES_PER_SEC", "1"),
            ],
            &repo(),
        )
    });
    let addr: std::net::SocketAddr = server.addr().parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let (ts, n) = (now().to_string(), nonce());
        let query = format!(
            "signature={}&timestamp={ts}&nonce={n}",
            sha1_hex(&[TOKEN, &ts, &n])
        );
        slow.push(tokio::spawn(async move {
            post_slowly(
                addr,
                &query,
                1_000,
                Some(Duration::from_millis(500)),
                Duration::from_secs(60),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = tokio::task::block_in_place(|| {
        server.terminate();
        server.wait()
    });
    assert!(status.success(), "{status}; log:\n{}", server.log());
    for t in slow {
        t.abort();
    }
}
