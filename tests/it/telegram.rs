//! The Telegram channel end to end: `telegram::run` against the fake Bot API server
//! (`fake_telegram.rs`) with a real store (SQLite files, one PostgreSQL schema). Tests queue
//! updates, wait (polling, generous deadline) for what the bot sends, and check the store.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use yidi::assistant::Assistant;
use yidi::channels::telegram::{self, TelegramSettings, WebhookSettings};
use yidi::config::Limits;
use yidi::conversation::Conversations;
use yidi::dialog::engine::SessionState;
use yidi::store::Store;

use crate::db::TestDb;
use crate::fake_telegram::{DEADLINE, FakeTelegram, Sent, TOKEN};
use crate::helpers::{assistant, repo};

const CHAT: i64 = 1001;

/// A bot running against the fake server; `stop` shuts it down and returns `run`'s result.
struct RunningBot {
    store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningBot {
    async fn start(fake: &FakeTelegram, db: &TestDb) -> RunningBot {
        RunningBot::start_with(fake, db, assistant(), None).await
    }

    /// With the given assistant and webhook, and limits no test reaches (see
    /// `a_chat_over_its_rate_limit_is_told_to_slow_down`).
    async fn start_with(
        fake: &FakeTelegram,
        db: &TestDb,
        assistant: Arc<Assistant>,
        webhook: Option<WebhookSettings>,
    ) -> RunningBot {
        let limits = Limits {
            per_session_burst: 1_000,
            ..Limits::default()
        };
        RunningBot::launch(fake, db, assistant, webhook, &limits).await
    }

    async fn launch(
        fake: &FakeTelegram,
        db: &TestDb,
        assistant: Arc<Assistant>,
        webhook: Option<WebhookSettings>,
        limits: &Limits,
    ) -> RunningBot {
        let store = Store::connect(&db.url).await.expect("connect + migrate");
        let settings = TelegramSettings {
            token: TOKEN.to_string(),
            api_url: Some(fake.api_url.clone()),
            webhook,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let conversations = Conversations::new(assistant, store.clone()).with_limits(limits);
        let handle = tokio::spawn(telegram::run(settings, conversations, async {
            let _ = rx.await;
        }));
        RunningBot {
            store,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.take().unwrap().send(());
        let handle = self.handle.take().unwrap();
        tokio::time::timeout(DEADLINE, handle)
            .await
            .expect("the bot stops after its shutdown future completes")
            .expect("the bot task does not panic")
    }

    async fn state(&self, chat: i64) -> Option<SessionState> {
        let c = Conversations::new(assistant(), self.store.clone());
        c.state(&self.store.caller_session_id(&format!("telegram:{chat}")))
            .await
            .unwrap()
    }

    async fn user_lines(&self, chat: i64) -> Vec<String> {
        self.store
            .transcript(&self.store.caller_session_id(&format!("telegram:{chat}")))
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.role == "user")
            .map(|l| l.text)
            .collect()
    }
}

impl Drop for RunningBot {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Sends `text` in `chat` and returns the bot's next message there.
async fn say(fake: &FakeTelegram, chat: i64, text: &str) -> Sent {
    let before = fake.sent(chat).len();
    fake.push(fake.text(chat, text));
    fake.wait_sent(chat, before + 1).await[before].clone()
}

fn buttons(sent: &Sent) -> Vec<String> {
    sent.buttons().into_iter().map(|(label, _)| label).collect()
}

/// /filing, then a press on 苏州: returns (the first question, the press, the second question).
async fn filing_and_press_suzhou(fake: &FakeTelegram, chat: i64) -> (Sent, Value, Sent) {
    let first = say(fake, chat, "/filing").await;
    let before = fake.sent(chat).len();
    let press = fake.push(fake.press(&first, &first.button("苏州")));
    let second = fake.wait_sent(chat, before + 1).await[before].clone();
    (first, press, second)
}

#[tokio::test]
async fn start_gets_the_welcome_and_the_command_menu_is_set() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let reply = say(&fake, CHAT, "/start").await;
    assert!(reply.text.contains("异地就医小助手"), "{}", reply.text);
    for command in ["/filing", "/estimate", "/reset", "/help"] {
        assert!(reply.text.contains(command), "{command} in {}", reply.text);
    }
    let menu = fake.calls_of("setMyCommands");
    let names: Vec<&str> = menu[0].params["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["start", "filing", "estimate", "card", "reset", "help"]
    );
    // long polling: a webhook left over from an earlier deployment is removed first
    assert_eq!(fake.calls_of("deleteWebhook").len(), 1);
    let help = say(&fake, CHAT, "/help").await;
    assert!(help.text.contains("返回") && help.text.contains("/estimate"));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_faq_question_is_answered_with_its_sources() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let reply = say(&fake, CHAT, "已经出院自费结算了，还能补备案吗").await;
    assert!(reply.text.contains("来源："), "{}", reply.text);
    // chat-sized: the source's short name, not its full title
    assert!(
        reply.text.contains("江苏省异地就医经办规程"),
        "{}",
        reply.text
    );
    assert!(!reply.text.contains("《江苏省异地就医经办服务规程》"));
    assert!(reply.reply_markup.is_none());
    // stored like any other turn
    let lines = bot
        .store
        .transcript(&bot.store.caller_session_id(&format!("telegram:{CHAT}")))
        .await
        .unwrap();
    assert_eq!(lines[1].faq_id.as_deref(), Some("backfill-after-discharge"));
    // the README's example names a card failure: it starts the diagnosis, with buttons
    let card = say(&fake, CHAT, "社保卡在外地医院刷不了怎么办").await;
    assert_eq!(buttons(&card), ["已经办好备案", "还没有备案"]);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn filing_asks_with_buttons_and_a_press_answers_and_moves_on() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let (first, press, second) = filing_and_press_suzhou(&fake, CHAT).await;
    assert!(first.text.contains("参保地"), "{}", first.text);
    assert_eq!(buttons(&first), ["苏州", "张家港"]);

    // the press is answered without a note, the question shows the answer and loses its keys
    let answer = fake.wait_answer(&press).await;
    assert!(answer.get("text").is_none(), "{answer}");
    let edit = fake
        .calls_of("editMessageText")
        .into_iter()
        .find(|c| c.params["message_id"].as_i64() == Some(first.message_id))
        .expect("the answered question is edited");
    assert!(edit.params["text"].as_str().unwrap().ends_with("✅ 苏州"));
    assert!(edit.params.get("reply_markup").is_none());

    assert!(second.text.contains("哪里看病"), "{}", second.text);
    assert!(buttons(&second).contains(&"上海".to_string()));
    let state = bot.state(CHAT).await.unwrap();
    assert_eq!(state.slots["insured_region"], "suzhou");
    assert_eq!(state.active.unwrap().step, "location");
    assert_eq!(bot.user_lines(CHAT).await, ["/filing", "苏州"]);

    // /estimate starts the other dialog at its first question, with buttons too
    let estimate = say(&fake, CHAT, "/estimate").await;
    assert!(!estimate.buttons().is_empty(), "{}", estimate.text);
    assert_eq!(
        bot.state(CHAT).await.unwrap().active.unwrap().dialog,
        "estimate"
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_clarifying_question_offers_its_options_as_buttons() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let ask = say(&fake, CHAT, "报销的事").await;
    let options = ask.buttons();
    assert_eq!(options.len(), 3, "{}", ask.text);
    assert!(
        options.iter().all(|(_, data)| data.starts_with("o1|")),
        "{options:?}"
    );
    let state = bot.state(CHAT).await.unwrap();
    assert_eq!(state.pending.len(), 3);

    // a press answers with that entry, as if its question had been typed
    let before = fake.sent(CHAT).len();
    let (label, data) = options[1].clone();
    let press = fake.push(fake.press(&ask, &ask.button(&label)));
    let answer = fake.wait_sent(CHAT, before + 1).await[before].clone();
    assert!(fake.wait_answer(&press).await.get("text").is_none());
    assert!(answer.text.contains("来源："), "{}", answer.text);
    let state = bot.state(CHAT).await.unwrap();
    assert_eq!(state.topic.as_deref(), data.strip_prefix("o1|"));
    assert!(state.pending.is_empty());
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_stale_button_is_answered_with_a_note_and_changes_nothing() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let (first, _, _) = filing_and_press_suzhou(&fake, CHAT).await;
    let session = bot.store.caller_session_id(&format!("telegram:{CHAT}"));
    let stored = bot.store.load_session(&session).await.unwrap();
    let sent = fake.sent(CHAT).len();

    // the first question's other button, pressed after the dialog moved on
    let stale = fake.push(fake.press(&first, &first.button("张家港")));
    let answer = fake.wait_answer(&stale).await;
    assert_eq!(answer["text"], "这个问题已经过去了，请回答最新的问题。");
    // a later message is handled after the press (same chat, in order): nothing came between
    say(&fake, CHAT, "/help").await;
    assert_eq!(fake.sent(CHAT).len(), sent + 1);
    assert_eq!(bot.store.load_session(&session).await.unwrap(), stored);
    assert_eq!(bot.user_lines(CHAT).await, ["/filing", "苏州"]);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_callbacks_are_answered_and_the_bot_keeps_serving() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let question = say(&fake, CHAT, "/filing").await;
    let presses = [
        fake.push(fake.press(&question, "garbage")),
        fake.push(fake.press(&question, "c1|filing|insured_region|beijing")),
        fake.push(fake.press(&question, "c1|nope|x|y")),
        fake.push(fake.press(&question, &"界".repeat(21))),
        fake.push(fake.inline_press(CHAT, "c1|filing|insured_region|suzhou")),
    ];
    for press in &presses {
        let answer = fake.wait_answer(press).await;
        assert!(
            answer["text"].as_str().is_some_and(|t| t.contains('。')),
            "{answer}"
        );
    }
    // nothing changed and the bot still answers
    let state = bot.state(CHAT).await.unwrap();
    assert!(state.slots.is_empty());
    assert_eq!(state.active.unwrap().step, "region");
    let next = fake.push(fake.press(&question, &question.button("苏州")));
    fake.wait_answer(&next).await;
    fake.wait_sent(CHAT, 2).await;
    assert_eq!(
        bot.state(CHAT).await.unwrap().slots["insured_region"],
        "suzhou"
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn stickers_photos_voice_files_and_edits_get_a_note_and_the_bot_continues() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    for update in [
        fake.sticker(CHAT),
        fake.photo(CHAT),
        fake.voice(CHAT),
        fake.document(CHAT),
    ] {
        let before = fake.sent(CHAT).len();
        fake.push(update);
        let note = &fake.wait_sent(CHAT, before + 1).await[before];
        assert!(note.text.contains("只能看懂文字消息"), "{}", note.text);
    }
    let before = fake.sent(CHAT).len();
    fake.push(fake.edited(CHAT, "异地就医备案有效期多久"));
    let note = &fake.wait_sent(CHAT, before + 1).await[before];
    assert!(note.text.contains("修改"), "{}", note.text);
    // a service message gets no reply: the next message's reply is the only one
    fake.push(fake.member_joined(CHAT));
    let before = fake.sent(CHAT).len();
    let reply = say(&fake, CHAT, "异地就医备案有效期多久").await;
    assert!(reply.text.contains("来源："));
    assert_eq!(fake.sent(CHAT).len(), before + 1);
    // none of the notes touched the conversation: the question is its first turn
    assert_eq!(bot.user_lines(CHAT).await, ["异地就医备案有效期多久"]);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn messages_of_one_chat_are_handled_in_order() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    // a whole dialog typed quickly in chat A, interleaved with questions in chat B: every
    // answer only makes sense after the one before it
    let a = [
        "/filing",
        "苏州",
        "上海",
        "异地长期居住",
        "还没去看病",
        "还没有",
        "住院",
        "本人",
    ];
    let b = ["异地就医备案有效期多久", "已经出院自费结算了，还能补备案吗"];
    const B: i64 = 2002;
    for (i, text) in a.iter().enumerate() {
        fake.push(fake.text(CHAT, text));
        if let Some(q) = b.get(i) {
            fake.push(fake.text(B, q));
        }
    }
    fake.wait_sent(CHAT, a.len()).await;
    let replies = fake.wait_sent(B, b.len()).await;
    assert_eq!(bot.user_lines(CHAT).await, a);
    assert_eq!(bot.user_lines(B).await, b);
    assert!(replies.iter().all(|r| r.text.contains("来源：")));
    let sent = fake.sent(CHAT);
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert!(texts[1].contains("哪里看病"), "{texts:#?}");
    assert!(
        texts.last().unwrap().contains("办理异地就医备案需要准备"),
        "{texts:#?}"
    );
    assert!(bot.state(CHAT).await.unwrap().active.is_none());
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_long_reply_is_split_within_the_limit() {
    // The knowledge check caps answers at 600 characters, so no shipped reply needs
    // splitting: one loaded answer is lengthened in memory to exercise the channel.
    let mut assistant =
        Assistant::load(&repo().join("knowledge"), &repo().join("dialogs")).expect("data loads");
    let entry = assistant
        .knowledge
        .faqs
        .iter_mut()
        .find(|e| e.id == "filing-validity")
        .unwrap();
    let long: String = (1..=40)
        .map(|i| {
            format!(
                "补充说明第{i}段：{}\n\n",
                "异地就医备案的有效期以参保地规定为准。".repeat(8)
            )
        })
        .collect();
    entry.answer = format!("{long}{}", entry.answer);
    let assistant = Arc::new(assistant);
    let expected = assistant.clone();

    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start_with(&fake, &db, assistant, None).await;
    // chat answers fit one screen: the whole answer comes with "详细"
    fake.push(fake.text(CHAT, "异地就医备案有效期多久"));
    fake.wait_until("the short answer", |f| {
        f.sent(CHAT).iter().any(|s| s.text.contains("来源："))
    })
    .await;
    let short = fake.sent(CHAT).len();
    fake.push(fake.text(CHAT, "详细"));
    // the whole answer has arrived when the piece with its sources has
    fake.wait_until("the answer's last piece", |f| {
        f.sent(CHAT)[short..]
            .iter()
            .any(|s| s.text.contains("来源："))
    })
    .await;
    let pieces = fake.sent(CHAT)[short..].to_vec();
    assert!(pieces.len() >= 2, "{} pieces", pieces.len());
    for p in &pieces {
        let units: usize = p.text.encode_utf16().count();
        assert!(units <= 4096, "a piece of {units} UTF-16 units");
    }
    let joined: String = pieces.iter().map(|p| p.text.as_str()).collect();
    // cut at paragraph boundaries: every piece starts a paragraph of the whole reply (the
    // same two messages, answered by the core directly)
    let whole = {
        let mut state = yidi::dialog::engine::SessionState::new();
        expected.handle(&mut state, "异地就医备案有效期多久");
        expected.handle(&mut state, "详细").text
    };
    for p in &pieces[1..] {
        let start: String = p.text.chars().take(12).collect();
        assert!(
            !start.trim().is_empty() && whole.contains(&format!("\n\n{start}")),
            "{start}"
        );
    }
    let stored = &bot
        .store
        .transcript(&bot.store.caller_session_id(&format!("telegram:{CHAT}")))
        .await
        .unwrap()[3]
        .text;
    let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    assert_eq!(strip(&joined), strip(stored));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_over_the_length_limit_gets_a_friendly_reply() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let reply = say(&fake, CHAT, &"备案".repeat(1500)).await;
    assert!(reply.text.contains("太长"), "{}", reply.text);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn reset_clears_the_dialog_and_its_buttons_go_stale() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let (_, _, second) = filing_and_press_suzhou(&fake, CHAT).await;
    let reply = say(&fake, CHAT, "/reset").await;
    assert!(reply.text.contains("已清除"), "{}", reply.text);
    assert_eq!(bot.state(CHAT).await.unwrap(), SessionState::new());
    let press = fake.push(fake.press(&second, &second.button("上海")));
    assert_eq!(
        fake.wait_answer(&press).await["text"],
        "这个问题已经过去了，请回答最新的问题。"
    );
    assert_eq!(bot.state(CHAT).await.unwrap(), SessionState::new());
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_chat_over_its_rate_limit_is_told_to_slow_down() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let limits = Limits {
        per_session_per_minute: 1,
        per_session_burst: 2,
        ..Limits::default()
    };
    let bot = RunningBot::launch(&fake, &db, assistant(), None, &limits).await;
    let question = say(&fake, CHAT, "/filing").await;
    say(&fake, CHAT, "/help").await;
    let slow = say(&fake, CHAT, "异地就医备案有效期多久").await;
    assert!(
        slow.text.contains("请") && slow.text.contains("秒后再发"),
        "{}",
        slow.text
    );
    let sent_before = fake.sent(CHAT).len();
    // told once a minute, then ignored: the press is answered without a second note, and a
    // further message gets no reply at all
    let press = fake.push(fake.press(&question, &question.button("苏州")));
    let answer = fake.wait_answer(&press).await;
    assert!(answer.get("text").is_none_or(Value::is_null), "{answer}");
    fake.push(fake.text(CHAT, "还有别的吗"));
    // refused messages are not turns; another chat has its own allowance
    let other = say(&fake, 3003, "异地就医备案有效期多久").await;
    assert!(other.text.contains("来源："));
    fake.wait_until("the refused message to be read", |f| {
        f.pending_updates() == 0
    })
    .await;
    assert_eq!(bot.user_lines(CHAT).await, ["/filing"]);
    assert_eq!(fake.sent(CHAT).len(), sent_before, "no second note");
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_store_error_gets_a_friendly_reply_and_the_bot_keeps_serving() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let question = say(&fake, CHAT, "/filing").await;
    bot.store.close().await;
    let reply = say(&fake, CHAT, "异地就医备案有效期多久").await;
    assert!(reply.text.contains("请稍后再发一次"), "{}", reply.text);
    assert!(!reply.text.to_lowercase().contains("database"));
    let press = fake.push(fake.press(&question, &question.button("苏州")));
    assert!(
        fake.wait_answer(&press).await["text"]
            .as_str()
            .unwrap()
            .contains("稍后再点一次")
    );
    // the bot still serves what needs no database
    let help = say(&fake, CHAT, "/help").await;
    assert!(help.text.contains("命令"));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_is_an_error_at_start() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    let settings = TelegramSettings {
        token: "999:wrong".into(),
        api_url: Some(fake.api_url.clone()),
        webhook: None,
    };
    let run = telegram::run(
        settings,
        Conversations::new(assistant(), store),
        std::future::pending(),
    );
    let error = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("run gives up at once")
        .unwrap_err();
    assert!(format!("{error:#}").contains("getMe"), "{error:#}");
    // the token is not in the error
    assert!(!format!("{error:#}").contains("999:wrong"), "{error:#}");
}

#[tokio::test]
async fn shutdown_while_telegram_does_not_answer_returns_at_once() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    fake.hold("getMe");
    let bot = RunningBot::start(&fake, &db).await;
    fake.wait_until("getMe on its way", |f| f.held_requests() == 1)
        .await;
    // getMe is still unanswered: nothing is in flight, so run returns without it
    bot.stop().await.expect("a clean shutdown");
    assert_eq!(fake.held_requests(), 1);
    assert!(fake.calls_of("getUpdates").is_empty());
}

#[tokio::test]
async fn shutdown_lets_the_update_in_flight_finish() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    let bot = RunningBot::start(&fake, &db).await;
    let store = bot.store.clone();
    fake.hold("sendMessage");
    fake.push(fake.text(CHAT, "已经出院自费结算了，还能补备案吗"));
    fake.wait_until("the reply on its way", |f| f.held_requests() == 1)
        .await;
    let stopping = tokio::spawn(bot.stop());
    // the listener has stopped: its last getUpdates (limit 1, no wait) confirms the offset
    fake.wait_until("the listener's last getUpdates", |f| {
        f.calls_of("getUpdates")
            .iter()
            .any(|c| c.params["timeout"] == 0 && c.params["limit"] == 1)
    })
    .await;
    assert!(
        !stopping.is_finished(),
        "run returned with a reply in flight"
    );
    fake.release();
    stopping.await.unwrap().expect("a clean shutdown");
    let reply = &fake.sent(CHAT)[0];
    assert!(reply.text.contains("来源："));
    assert_eq!(store.count("transcripts").await.unwrap(), 2);
}

/// Runs /filing and one press on the first bot, stops it, and continues on a second bot
/// over the same database: the second question's button (sent by the first bot) works.
async fn conversation_survives_a_restart(db: TestDb) {
    let fake = FakeTelegram::start().await;
    let first_bot = RunningBot::start(&fake, &db).await;
    let (_, _, second) = filing_and_press_suzhou(&fake, CHAT).await;
    first_bot.stop().await.expect("a clean shutdown");
    // every update was confirmed before the first bot returned
    fake.wait_until("the final offset", |f| f.pending_updates() == 0)
        .await;

    let bot = RunningBot::start(&fake, &db).await;
    let sent = fake.sent(CHAT).len();
    let press = fake.push(fake.press(&second, &second.button("上海")));
    fake.wait_answer(&press).await;
    let third = &fake.wait_sent(CHAT, sent + 1).await[sent];
    assert!(third.text.contains("哪种情况"), "{}", third.text);
    let state = bot.state(CHAT).await.unwrap();
    assert_eq!(state.slots["insured_region"], "suzhou");
    assert_eq!(state.slots["care_location"], "shanghai");
    assert_eq!(bot.user_lines(CHAT).await, ["/filing", "苏州", "上海"]);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn the_conversation_survives_a_restart_on_sqlite() {
    conversation_survives_a_restart(TestDb::sqlite()).await;
}

#[tokio::test]
async fn the_conversation_survives_a_restart_on_postgres() {
    conversation_survives_a_restart(TestDb::postgres().await).await;
}

#[tokio::test]
async fn webhook_mode_sets_the_webhook_serves_updates_and_deletes_it_on_shutdown() {
    let fake = FakeTelegram::start().await;
    let db = TestDb::sqlite();
    // a free port for the webhook server
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let webhook = WebhookSettings {
        public_url: "https://bot.example.test/telegram/hook".parse().unwrap(),
        listen,
        secret_token: Some("s3cret-token".into()),
    };
    let bot = RunningBot::start_with(&fake, &db, assistant(), Some(webhook)).await;
    fake.wait_until("setWebhook", |f| !f.calls_of("setWebhook").is_empty())
        .await;
    let set = &fake.calls_of("setWebhook")[0].params;
    assert_eq!(set["url"], "https://bot.example.test/telegram/hook");
    assert_eq!(set["secret_token"], "s3cret-token");

    let mut update = fake.text(CHAT, "/start");
    update["update_id"] = 1.into();
    let client = reqwest::Client::new();
    let url = format!("http://{listen}/telegram/hook");
    // the server may still be starting: retry the first delivery until it is accepted
    let mut delivered = false;
    for _ in 0..100 {
        let sent = client
            .post(&url)
            .header("X-Telegram-Bot-Api-Secret-Token", "s3cret-token")
            .json(&update)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "the webhook accepts an update");
    let welcome = &fake.wait_sent(CHAT, 1).await[0];
    assert!(welcome.text.contains("异地就医小助手"));
    // without the secret the update is refused
    let refused = client.post(&url).json(&update).send().await.unwrap();
    assert!(refused.status().is_client_error());
    assert!(fake.calls_of("getUpdates").is_empty());

    bot.stop().await.unwrap();
    assert_eq!(fake.calls_of("deleteWebhook").len(), 1);
}

/// A message answered by one bot whose confirmation was lost: the next bot gets the same
/// update again and neither answers nor stores it twice.
async fn a_redelivered_update_is_handled_once(db: TestDb) {
    let fake = FakeTelegram::start().await;
    let first_bot = RunningBot::start(&fake, &db).await;
    let before = fake.sent(CHAT).len();
    let update = fake.push(fake.text(CHAT, "起付线是什么"));
    fake.wait_sent(CHAT, before + 1).await;
    first_bot.stop().await.expect("a clean shutdown");
    fake.wait_until("the final offset", |f| f.pending_updates() == 0)
        .await;

    let bot = RunningBot::start(&fake, &db).await;
    fake.redeliver(update);
    // a later message is answered, the redelivered one before it is not
    let sent = fake.sent(CHAT).len();
    let reply = say(&fake, CHAT, "备案材料清单").await;
    assert!(!reply.text.is_empty());
    assert_eq!(
        fake.sent(CHAT).len(),
        sent + 1,
        "one reply, to the new message"
    );
    assert_eq!(bot.user_lines(CHAT).await, ["起付线是什么", "备案材料清单"]);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_redelivered_update_is_handled_once_on_sqlite() {
    a_redelivered_update_is_handled_once(TestDb::sqlite()).await;
}

#[tokio::test]
async fn a_redelivered_update_is_handled_once_on_postgres() {
    a_redelivered_update_is_handled_once(TestDb::postgres().await).await;
}

/// Commands that change the conversation (/filing, /reset) are not done twice either when
/// Telegram delivers them again.
#[tokio::test]
async fn a_redelivered_command_is_handled_once() {
    let db = TestDb::sqlite();
    let fake = FakeTelegram::start().await;
    let first_bot = RunningBot::start(&fake, &db).await;
    let before = fake.sent(CHAT).len();
    let filing = fake.push(fake.text(CHAT, "/filing"));
    fake.wait_sent(CHAT, before + 1).await;
    let reset = fake.push(fake.text(CHAT, "/reset"));
    fake.wait_sent(CHAT, before + 2).await;
    let after_reset = fake.push(fake.text(CHAT, "/estimate"));
    fake.wait_sent(CHAT, before + 3).await;
    first_bot.stop().await.expect("a clean shutdown");
    fake.wait_until("the final offset", |f| f.pending_updates() == 0)
        .await;

    let bot = RunningBot::start(&fake, &db).await;
    for update in [filing, reset, after_reset] {
        fake.redeliver(update);
    }
    let sent = fake.sent(CHAT).len();
    let reply = say(&fake, CHAT, "苏州").await;
    assert_eq!(
        fake.sent(CHAT).len(),
        sent + 1,
        "one reply, to the new message"
    );
    // the estimate dialog started last is still the one in progress: no command ran again
    let state = bot.state(CHAT).await.unwrap();
    assert_eq!(state.active.unwrap().dialog, "estimate", "{}", reply.text);
    assert_eq!(
        bot.user_lines(CHAT).await,
        ["/filing", "/reset", "/estimate", "苏州"]
    );
    bot.stop().await.unwrap();
}
