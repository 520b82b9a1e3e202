//! The Telegram channel: a bot (teloxide) over the same [`Conversations`] as the HTTP API.
//!
//! A thin adapter. Every chat is one session, `telegram:{chat id}`, stored through
//! [`Conversations`], so a restarted bot (or another replica on PostgreSQL) continues any
//! conversation. Updates come by long polling, or by webhook when [`TelegramSettings::webhook`]
//! is set (teloxide's `webhooks::axum`).
//!
//! | input | reply |
//! |---|---|
//! | `/start` | the welcome ([`crate::Assistant::welcome`]) and the commands |
//! | `/help` | what the bot can do, the commands and the words that steer a dialog |
//! | `/reset` | clears the conversation ([`Conversations::reset`], one persisted turn) |
//! | `/filing`, `/estimate`, `/card` | starts that dialog at its first question ([`Conversations::start`]) |
//! | other `/word` commands | a note listing the commands (`/word@otherbot` is ignored) |
//! | text | [`Conversations::turn`]: FAQ answers with their 来源, dialog questions, results |
//! | a button press | [`Conversations::choose`]; always answered (`answerCallbackQuery`) |
//! | stickers, photos, voice, files… | a note that only text is understood (captions are not read) |
//! | an edited message | a note that edits are not processed again (answering the edit could contradict the dialog the original answered) |
//! | service messages (members joined, pinned…) | nothing |
//!
//! Every message and button press of a chat counts against the per-conversation rate limit
//! (`Conversations::limits`, key `telegram:{chat id}`); over it, the user gets the limit's
//! note instead of an answer.
//!
//! A dialog question's choices become an inline keyboard; a button carries
//! `c1|{dialog}|{slot}|{value}`. A press is applied only if that question is still the one
//! being asked (checked inside the same transaction as the turn); an older button gets a
//! short note in the callback answer and changes nothing. After a press the question's
//! message shows the chosen answer and loses its keyboard.
//!
//! Replies longer than Telegram's limit are split ([`split_message`]) at paragraph or line
//! boundaries; the keyboard goes with the last piece. teloxide's dispatcher runs the updates
//! of one chat one after another, in order, and different chats concurrently.
//!
//! A store error gets a friendly "please try again" reply; the error is logged with tracing.
//! Each update is handled in a task of its own, so a panic (a bug) costs that update (the
//! user gets the same note), not the dispatcher. Logs carry chat sessions only as hashes
//! ([`log_id`]) and never message text.
//!
//! [`run`] returns once its shutdown future completes and the updates in flight are done;
//! the listener's last `getUpdates` confirms what was handled, so a restarted bot neither
//! repeats nor skips an update. (A crash, unlike a shutdown, may lose the update that was
//! being handled: Telegram counts it as delivered once it was taken from the queue.)

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use teloxide::dispatching::{Dispatcher, UpdateFilterExt, UpdateHandler};
use teloxide::error_handlers::ErrorHandler;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::{Bot, Requester};
use teloxide::requests::{Output, Request};
use teloxide::types::{
    BotCommand, CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardButtonKind,
    InlineKeyboardMarkup, Me, Message, MessageId, MessageKind, Update,
};
use teloxide::update_listeners::{Polling, UpdateListener, webhooks};
use teloxide::{RequestError, dptree};
use tokio::sync::watch;

pub use url::Url;

use crate::assistant::Reply;
use crate::conversation::{Conversations, log_id};
use crate::store::StoreError;

/// Telegram's limit on a message's text, in UTF-16 code units (Telegram counts those).
pub const MAX_TEXT_UTF16: usize = 4096;

/// Telegram's limit on a button's callback data, in bytes.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// How long one `getUpdates` call waits for updates (long polling).
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a request to Telegram is tried when the network fails or Telegram asks to wait.
const SEND_ATTEMPTS: u32 = 3;

/// The longest wait a `RetryAfter` answer is honoured with before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

const NOT_TEXT: &str = "抱歉，我目前只能看懂文字消息，暂时看不了图片、贴纸、语音和文件（图片的说明文字也读不到）。\
                        请直接用文字描述您的问题，例如“异地就医备案要带什么材料？”";
const EDITED: &str =
    "您修改了之前的一条消息。修改后的内容我不会重新处理；如需更正，请直接发一条新消息。";
const TRY_AGAIN: &str = "抱歉，系统暂时出了点问题，没能处理您的消息。请稍后再发一次。";
const TRY_AGAIN_SHORT: &str = "系统暂时出了点问题，请稍后再点一次。";
const STALE_BUTTON: &str = "这个问题已经过去了，请回答最新的问题。";
const INVALID_BUTTON: &str = "这个按钮已失效，请直接输入您的问题。";

/// The commands, as the menu shows them (`setMyCommands`) and `/help` lists them.
const COMMANDS: [(&str, &str); 6] = [
    ("start", "开始使用，看看我能做什么"),
    ("filing", "备案材料清单：按您的情况逐步问答"),
    ("estimate", "估算医保大概能报多少"),
    ("card", "医保卡在外地刷不了：帮您排查原因"),
    ("reset", "清除当前对话，从头开始"),
    ("help", "使用帮助"),
];

/// How to reach Telegram.
#[derive(Clone)]
pub struct TelegramSettings {
    /// The bot token from @BotFather.
    pub token: String,
    /// The Bot API server (default `https://api.telegram.org/`; tests use a fake one).
    pub api_url: Option<Url>,
    /// Receive updates by webhook instead of long polling.
    pub webhook: Option<WebhookSettings>,
}

/// Webhook mode: Telegram posts updates to `public_url`, which must reach `listen`.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The HTTPS address Telegram posts to (its path is the route served on `listen`).
    pub public_url: Url,
    /// Where the webhook server listens.
    pub listen: SocketAddr,
    /// Telegram sends it in `X-Telegram-Bot-Api-Secret-Token`; requests without it are
    /// refused. Generated when not given.
    pub secret_token: Option<String>,
}

impl fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &"(redacted)")
            .field("api_url", &self.api_url.as_ref().map(Url::as_str))
            .field("webhook", &self.webhook)
            .finish()
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("public_url", &self.public_url.as_str())
            .field("listen", &self.listen)
            .field(
                "secret_token",
                &self.secret_token.as_ref().map(|_| "(redacted)"),
            )
            .finish()
    }
}

/// Runs the bot until `shutdown` completes; updates in flight are then finished before this
/// returns. Fails when Telegram cannot be reached or refuses the token at start (`getMe`),
/// when the webhook cannot be set up, or its address cannot be bound. Does not install a
/// Ctrl-C handler: the caller owns the signals.
pub async fn run(
    settings: TelegramSettings,
    conversations: Conversations,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = teloxide::net::default_reqwest_settings()
        .build()
        .context("cannot build the HTTP client for Telegram")?;
    let mut bot = Bot::with_client(settings.token.clone(), client);
    if let Some(url) = settings.api_url.clone() {
        bot = bot.set_api_url(url);
    }

    // the shutdown future is awaited once; every stage below watches its outcome
    let (stop_tx, stop_rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let conversations = conversations.on_channel("telegram");
    let result = serve(bot, settings, conversations, stop_rx).await;
    signal.abort();
    result
}

/// `step` of the start-up, unless shutdown is requested first (`None`): while starting
/// (e.g. Telegram unreachable) no update is in flight, so there is nothing to finish.
async fn unless_stopped<T>(
    stop: &watch::Receiver<bool>,
    step: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        v = step => Some(v),
        () = stopped(stop.clone()) => None,
    }
}

/// Resolves once shutdown was requested (never, when it cannot be any more).
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // the sender is gone without a shutdown: wait forever
        std::future::pending::<()>().await;
    }
}

async fn serve(
    bot: Bot,
    settings: TelegramSettings,
    conversations: Conversations,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let Some(me) = unless_stopped(&stop, bot.get_me().into_future()).await else {
        return Ok(());
    };
    let me = me.context("cannot reach Telegram or the bot token was refused (getMe)")?;
    tracing::info!(
        bot = me.user.username.as_deref().unwrap_or("?"),
        "telegram bot connected"
    );
    let commands = COMMANDS
        .iter()
        .map(|(c, d)| BotCommand::new(*c, *d))
        .collect::<Vec<_>>();
    let Some(set) = unless_stopped(&stop, bot.set_my_commands(commands).into_future()).await else {
        return Ok(());
    };
    if let Err(e) = set {
        // the commands still work without the menu
        tracing::warn!(error = %e, "cannot set the bot's command menu");
    }

    let dispatcher = Dispatcher::builder(bot.clone(), schema())
        .dependencies(dptree::deps![conversations])
        .default_handler(|update| async move {
            tracing::debug!(update = update.id.0, "update ignored");
        })
        .error_handler(Arc::new(LogErrors))
        .build();

    match settings.webhook {
        None => {
            // polling and a webhook exclude each other
            let Some(deleted) = unless_stopped(&stop, bot.delete_webhook().into_future()).await
            else {
                return Ok(());
            };
            if let Err(e) = deleted {
                tracing::warn!(error = %e, "cannot delete the webhook before polling");
            }
            let listener = Polling::builder(bot).timeout(POLL_TIMEOUT).build();
            tracing::info!("telegram: long polling");
            dispatch(dispatcher, listener, stop).await
        }
        Some(webhook) => {
            let socket = tokio::net::TcpListener::bind(webhook.listen)
                .await
                .with_context(|| format!("cannot listen on {} for the webhook", webhook.listen))?;
            let mut options = webhooks::Options::new(webhook.listen, webhook.public_url.clone());
            if let Some(secret) = webhook.secret_token.clone() {
                options = options.secret_token(secret);
            }
            let Some(set) = unless_stopped(&stop, webhooks::axum_to_router(bot, options)).await
            else {
                return Ok(());
            };
            let (listener, stop_flag, router) =
                set.context("cannot set the webhook (setWebhook)")?;
            // stop_flag resolves once the listener is stopped, after deleteWebhook
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(socket, router)
                    .with_graceful_shutdown(stop_flag)
                    .await
                {
                    tracing::error!(error = %e, "webhook server failed");
                }
            });
            tracing::info!(listen = %webhook.listen, "telegram: webhook");
            let result = dispatch(dispatcher, listener, stop).await;
            if result.is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
            } else {
                server.abort();
            }
            result
        }
    }
}

/// Dispatches until shutdown is requested through `stop`, then lets the updates in flight
/// finish.
async fn dispatch<L>(
    mut dispatcher: Dispatcher<Bot, RequestError, teloxide::dispatching::DefaultKey>,
    listener: L,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()>
where
    L: UpdateListener + Send,
    L::Err: fmt::Debug + Send + 'static,
{
    let token = dispatcher.shutdown_token();
    let stopper = tokio::spawn(async move {
        stopped(stop).await;
        // the dispatcher refuses a shutdown until it runs (it first calls getMe): retry
        while token.shutdown().is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let result = dispatcher
        .try_dispatch_with_listener(listener, Arc::new(LogErrors))
        .await;
    stopper.abort();
    result.context("cannot start dispatching (getMe)")?;
    tracing::info!("telegram bot stopped");
    Ok(())
}

/// Logs handler and listener errors with tracing. Their `Debug` carries Telegram's error
/// descriptions and (token-redacted) request URLs, never message text.
struct LogErrors;

impl<E: fmt::Debug + Send + 'static> ErrorHandler<E> for LogErrors {
    fn handle_error(self: Arc<Self>, error: E) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        tracing::error!(error = ?error, "telegram request failed");
        Box::pin(async {})
    }
}

fn schema() -> UpdateHandler<RequestError> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(
            |bot: Bot, msg: Message, me: Me, conversations: Conversations, update: Update| async move {
                let chat = msg.chat.id;
                let handled =
                    tokio::spawn(on_message(bot.clone(), msg, me, conversations, update.id.0));
                match isolated(handled).await {
                    Some(result) => result,
                    None => send_text(&bot, chat, TRY_AGAIN).await,
                }
            },
        ))
        .branch(Update::filter_edited_message().endpoint(on_edited_message))
        .branch(Update::filter_callback_query().endpoint(
            |bot: Bot, q: CallbackQuery, conversations: Conversations| async move {
                let id = q.id.clone();
                let handled = tokio::spawn(on_callback(bot.clone(), q, conversations));
                match isolated(handled).await {
                    Some(result) => result,
                    // the press may be unanswered yet (if it was, Telegram refuses this)
                    None => bot
                        .answer_callback_query(id)
                        .text(TRY_AGAIN_SHORT)
                        .await
                        .map(drop),
                }
            },
        ))
}

/// Awaits a handler run as a task of its own, so that a panic (a bug) costs one update, not
/// the dispatcher: teloxide's worker for the chat would die with it and take the
/// dispatcher down on that chat's next update. `None` after a panic, which is logged.
async fn isolated<T>(handled: tokio::task::JoinHandle<T>) -> Option<T> {
    match handled.await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(panic = e.is_panic(), "an update handler failed");
            None
        }
    }
}

/// The session of a chat, as the channel names it (stored under
/// [`Store::caller_session_id`](crate::store::Store::caller_session_id) of it).
pub fn session_id(chat: ChatId) -> String {
    format!("telegram:{}", chat.0)
}

/// The id a chat's conversation is stored under: never the chat id itself (see
/// [`Store::caller_session_id`](crate::store::Store::caller_session_id)). Every handler
/// goes through this.
fn stored_session(conversations: &Conversations, chat: ChatId) -> String {
    conversations.store.caller_session_id(&session_id(chat))
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn on_message(
    bot: Bot,
    msg: Message,
    me: Me,
    conversations: Conversations,
    update_id: u32,
) -> Result<(), RequestError> {
    let chat = msg.chat.id;
    let session = stored_session(&conversations, chat);
    let Some(text) = msg.text() else {
        return match msg.kind {
            MessageKind::Common(_) | MessageKind::Dice(_) => {
                if let Some(note) = rate_limited(&conversations, &session) {
                    return send_limit_note(&bot, chat, note).await;
                }
                tracing::info!(session = %log_id(&session), "non-text message");
                send_text(&bot, chat, NOT_TEXT).await
            }
            _ => {
                tracing::debug!(session = %log_id(&session), "service message ignored");
                Ok(())
            }
        };
    };
    let input = classify(text, me.user.username.as_deref());
    if input == Input::NotForUs {
        return Ok(());
    }
    if let Some(note) = rate_limited(&conversations, &session) {
        return send_limit_note(&bot, chat, note).await;
    }
    // an update delivered again (after a restart, before Telegram saw it confirmed) is
    // recognised by its id, stored with the turn, and neither answered nor stored twice;
    // commands that change the conversation likewise
    let key = format!("telegram-update:{update_id}");
    let once = match input {
        Input::Text(text) => {
            conversations
                .unless_seen(&session, text, &key, |a, state| a.handle(state, text))
                .await
        }
        Input::NotForUs => return Ok(()),
        Input::UnknownCommand => return send_text(&bot, chat, &unknown_command()).await,
        Input::Command(command) => {
            tracing::info!(session = %log_id(&session), ?command, "command");
            let dialog = match command {
                Command::Start => return send_text(&bot, chat, &welcome(&conversations)).await,
                Command::Help => return send_text(&bot, chat, &help()).await,
                Command::Reset => None,
                Command::Filing => Some("filing"),
                Command::Estimate => Some("estimate"),
                Command::Card => Some("card_failure"),
            };
            match dialog {
                None => {
                    conversations
                        .unless_seen(&session, "/reset", &key, |a, state| a.reset(state))
                        .await
                }
                Some(d) => {
                    conversations
                        .unless_seen(&session, &format!("/{d}"), &key, |a, state| {
                            a.start_dialog(state, d)
                        })
                        .await
                }
            }
        }
    };
    let result = match once {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => {
            tracing::info!(session = %log_id(&session), update = update_id, "update seen before, ignored");
            return Ok(());
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(reply) => send_reply(&bot, chat, &reply).await,
        Err(e) => {
            store_failed(&session, &e);
            send_text(&bot, chat, TRY_AGAIN).await
        }
    }
}

async fn on_edited_message(
    bot: Bot,
    msg: Message,
    conversations: Conversations,
) -> Result<(), RequestError> {
    let session = stored_session(&conversations, msg.chat.id);
    if let Some(note) = rate_limited(&conversations, &session) {
        return send_limit_note(&bot, msg.chat.id, note).await;
    }
    tracing::info!(session = %log_id(&session), "edited message not processed");
    send_text(&bot, msg.chat.id, EDITED).await
}

async fn on_callback(
    bot: Bot,
    q: CallbackQuery,
    conversations: Conversations,
) -> Result<(), RequestError> {
    let answer = |note: Option<String>| {
        let bot = bot.clone();
        let id = q.id.clone();
        async move {
            let mut request = bot.answer_callback_query(id);
            if let Some(note) = note {
                request = request.text(note);
            }
            if let Err(e) = with_retry(&request).await {
                tracing::warn!(error = ?e, "cannot answer a callback query");
            }
        }
    };
    // a clarifying question's option: as if the user had typed the option's question
    if let (Some(id), Some(message)) = (
        q.data.as_deref().and_then(decode_option),
        q.message.as_ref(),
    ) && let Some(question) = conversations
        .assistant()
        .knowledge
        .faq(id)
        .map(|e| e.question.clone())
    {
        let chat = message.chat().id;
        let session = stored_session(&conversations, chat);
        if let Some(note) = rate_limited(&conversations, &session) {
            answer(note).await;
            return Ok(());
        }
        return match conversations.turn(&session, &question).await {
            Ok(reply) => {
                answer(None).await;
                mark_chosen(&bot, &q, chat, message.id()).await;
                send_reply(&bot, chat, &reply).await
            }
            Err(e) => {
                store_failed(&session, &e);
                answer(Some(TRY_AGAIN_SHORT.into())).await;
                Ok(())
            }
        };
    }
    let parsed = q.data.as_deref().and_then(decode_choice);
    let (Some((dialog, slot, value)), Some(message)) = (parsed, q.message.as_ref()) else {
        // not one of our buttons, or a button on an inline message (no chat of ours)
        tracing::warn!(
            data_bytes = q.data.as_ref().map_or(0, String::len),
            "callback query that is not one of our buttons"
        );
        answer(Some(INVALID_BUTTON.into())).await;
        return Ok(());
    };
    let chat = message.chat().id;
    let session = stored_session(&conversations, chat);
    if let Some(note) = rate_limited(&conversations, &session) {
        answer(note).await;
        return Ok(());
    }
    match conversations.choose(&session, dialog, slot, value).await {
        Ok(Some(reply)) => {
            answer(None).await;
            mark_chosen(&bot, &q, chat, message.id()).await;
            send_reply(&bot, chat, &reply).await
        }
        Ok(None) => {
            // callback data is client input: only a known dialog id goes to the log
            let known = conversations.assistant().dialogs.get(dialog).is_some();
            tracing::info!(session = %log_id(&session), dialog = known.then_some(dialog), "stale button");
            answer(Some(STALE_BUTTON.into())).await;
            Ok(())
        }
        Err(e) => {
            store_failed(&session, &e);
            answer(Some(TRY_AGAIN_SHORT.into())).await;
            Ok(())
        }
    }
}

/// Counts one message of the chat against its rate limit ([`crate::limits`], shared with the
/// HTTP sessions). Over the limit: `Some(note)` the first time in a minute, `Some(None)` after
/// that (a flooding chat is told once, then ignored, so its notes cannot hold up other
/// chats' replies).
fn rate_limited(conversations: &Conversations, session: &str) -> Option<Option<String>> {
    let limited = conversations.admit(session).err()?;
    Some(
        conversations
            .limits
            .should_notify(session)
            .then(|| limited.message()),
    )
}

/// The rate-limit note, sent once without retries (see [`rate_limited`]).
async fn send_limit_note(
    bot: &Bot,
    chat: ChatId,
    note: Option<String>,
) -> Result<(), RequestError> {
    if let Some(note) = note
        && let Err(e) = bot.send_message(chat, note).send_ref().await
    {
        tracing::warn!(error = ?e, "cannot send the rate-limit note");
    }
    Ok(())
}

fn store_failed(session: &str, e: &StoreError) {
    tracing::debug!(session = %log_id(session), "store error, the user was asked to try again");
    crate::throttle::store_error(e, "store error, a Telegram user was asked to try again");
}

/// After a press: the question's message shows the chosen answer and loses its keyboard
/// (best effort: an old message may no longer be editable).
async fn mark_chosen(bot: &Bot, q: &CallbackQuery, chat: ChatId, message_id: MessageId) {
    let regular = q.message.as_ref().and_then(|m| m.regular_message());
    let label = regular
        .and_then(Message::reply_markup)
        .and_then(|markup| {
            markup.inline_keyboard.iter().flatten().find(|b| {
                matches!(&b.kind, InlineKeyboardButtonKind::CallbackData(d) if Some(d) == q.data.as_ref())
            })
        })
        .map(|b| b.text.clone());
    let edited = match (regular.and_then(Message::text), label) {
        (Some(text), Some(label)) => {
            let text = format!("{text}\n\n✅ {label}");
            if utf16_len(&text) <= MAX_TEXT_UTF16 {
                Some(bot.edit_message_text(chat, message_id, text).await)
            } else {
                None
            }
        }
        _ => None,
    };
    let result = match edited {
        Some(r) => r.map(drop),
        // no markup given: the keyboard is removed
        None => bot
            .edit_message_reply_markup(chat, message_id)
            .await
            .map(drop),
    };
    if let Err(e) = result {
        tracing::debug!(error = ?e, "cannot edit the answered question");
    }
}

// ---------------------------------------------------------------------------------------------
// Commands

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Start,
    Help,
    Reset,
    Filing,
    Estimate,
    Card,
}

#[derive(Debug, PartialEq)]
enum Input<'a> {
    Command(Command),
    /// `/word` that is none of ours.
    UnknownCommand,
    /// `/word@otherbot` in a group.
    NotForUs,
    /// Anything else, for the core (which also reads `/重新开始` and the like).
    Text(&'a str),
}

fn classify<'a>(text: &'a str, bot_username: Option<&str>) -> Input<'a> {
    let Some(rest) = text.trim_start().strip_prefix('/') else {
        return Input::Text(text);
    };
    let word = rest.split_whitespace().next().unwrap_or("");
    let (name, addressee) = match word.split_once('@') {
        Some((name, to)) => (name, Some(to)),
        None => (word, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Input::Text(text);
    }
    if let (Some(to), Some(me)) = (addressee, bot_username)
        && !to.eq_ignore_ascii_case(me)
    {
        return Input::NotForUs;
    }
    match name.to_ascii_lowercase().as_str() {
        "start" => Input::Command(Command::Start),
        "help" => Input::Command(Command::Help),
        "reset" => Input::Command(Command::Reset),
        "filing" => Input::Command(Command::Filing),
        "estimate" => Input::Command(Command::Estimate),
        "card" => Input::Command(Command::Card),
        _ => Input::UnknownCommand,
    }
}

fn command_list() -> String {
    COMMANDS
        .iter()
        .map(|(c, d)| format!("/{c} {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn welcome(conversations: &Conversations) -> String {
    format!(
        "{}\n\n也可以直接点命令：\n{}",
        conversations.assistant().welcome().text,
        command_list()
    )
}

fn help() -> String {
    format!(
        "我是异地就医小助手，可以回答异地就医备案、直接结算、零星（手工）报销等问题，\
         每个回答都注明来源；也可以按您的情况列出备案材料清单、估算医保大概能报多少。\n\n\
         直接用文字提问即可，例如“社保卡在外地医院刷不了怎么办”。\n\
         逐步问答时，可以点按钮，也可以直接输入；随时可以输入“返回”回到上一步，\
         “重新开始”从头再来，“退出”结束问答。\n\n\
         命令：\n{}",
        command_list()
    )
}

fn unknown_command() -> String {
    format!("没有这个命令。可以使用的命令：\n{}", command_list())
}

// ---------------------------------------------------------------------------------------------
// Buttons

/// An option's callback data: `o1|{faq id}`, or `None` when it would not fit Telegram's
/// 64 bytes.
pub fn encode_option(faq_id: &str) -> Option<String> {
    let data = format!("o1|{faq_id}");
    (!faq_id.is_empty() && !faq_id.contains('|') && data.len() <= MAX_CALLBACK_DATA_BYTES)
        .then_some(data)
}

/// The FAQ id of an option's callback data; `None` for anything else.
pub fn decode_option(data: &str) -> Option<&str> {
    data.strip_prefix("o1|")
        .filter(|id| !id.is_empty() && !id.contains('|'))
}

/// A button's text: the option's question, shortened to what a button shows.
fn button_label(question: &str) -> String {
    const MAX: usize = 30;
    if question.chars().count() <= MAX {
        question.to_string()
    } else {
        format!("{}…", question.chars().take(MAX - 1).collect::<String>())
    }
}

/// A choice's callback data: `c1|{dialog}|{slot}|{value}`, or `None` when it would not fit
/// Telegram's 64 bytes or a part contains the separator.
pub fn encode_choice(dialog: &str, slot: &str, value: &str) -> Option<String> {
    if [dialog, slot, value]
        .iter()
        .any(|p| p.is_empty() || p.contains('|'))
    {
        return None;
    }
    let data = format!("c1|{dialog}|{slot}|{value}");
    (data.len() <= MAX_CALLBACK_DATA_BYTES).then_some(data)
}

/// The `(dialog, slot, value)` of our callback data; `None` for anything else.
pub fn decode_choice(data: &str) -> Option<(&str, &str, &str)> {
    let mut parts = data.split('|');
    let (Some("c1"), Some(dialog), Some(slot), Some(value), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if dialog.is_empty() || slot.is_empty() || value.is_empty() {
        return None;
    }
    Some((dialog, slot, value))
}

/// The inline keyboard of a reply's choices, one button a row; `None` without choices or
/// when a choice cannot be encoded.
fn keyboard(reply: &Reply) -> Option<InlineKeyboardMarkup> {
    if !reply.options.is_empty() {
        // a clarifying question: one button per option, labelled with its question
        let rows = reply
            .options
            .iter()
            .map(|o| {
                encode_option(&o.id).map(|data| {
                    vec![InlineKeyboardButton::callback(
                        button_label(&o.question),
                        data,
                    )]
                })
            })
            .collect::<Option<Vec<_>>>();
        return rows.map(InlineKeyboardMarkup::new);
    }
    if reply.choices.is_empty() {
        return None;
    }
    let (dialog, slot) = (reply.dialog.as_deref()?, reply.asking.as_deref()?);
    let rows = reply
        .choices
        .iter()
        .map(|c| {
            encode_choice(dialog, slot, &c.value)
                .map(|data| vec![InlineKeyboardButton::callback(c.label.clone(), data)])
        })
        .collect::<Option<Vec<_>>>();
    if rows.is_none() {
        tracing::warn!(dialog, slot, "choices too long for buttons, listed as text");
    }
    rows.map(InlineKeyboardMarkup::new)
}

// ---------------------------------------------------------------------------------------------
// Sending

/// Sends a reply: its text in pieces within Telegram's limit, the choices as buttons under
/// the last piece (or listed as text when they cannot be buttons).
async fn send_reply(bot: &Bot, chat: ChatId, reply: &Reply) -> Result<(), RequestError> {
    let markup = keyboard(reply);
    let text = crate::render::button_text(reply, markup.is_some());
    let mut pieces = split_message(&text, MAX_TEXT_UTF16);
    if pieces.is_empty() {
        // Telegram refuses blank messages; the core always says something, but buttons need
        // a message to hang under
        match markup {
            Some(_) => pieces.push("请选择：".to_string()),
            None => return Ok(()),
        }
    }
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.into_iter().enumerate() {
        let mut request = bot.send_message(chat, piece);
        if i == last
            && let Some(markup) = markup.clone()
        {
            request = request.reply_markup(markup);
        }
        with_retry(&request).await?;
    }
    Ok(())
}

async fn send_text(bot: &Bot, chat: ChatId, text: &str) -> Result<(), RequestError> {
    send_reply(bot, chat, &Reply::text(text)).await
}

/// Sends a request, again after a network failure or when Telegram asks to wait.
async fn with_retry<R>(request: &R) -> Result<Output<R>, RequestError>
where
    R: Request<Err = RequestError>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match request.send_ref().await {
            Ok(v) => return Ok(v),
            Err(RequestError::RetryAfter(wait))
                if attempt < SEND_ATTEMPTS && wait.duration() <= MAX_RETRY_AFTER =>
            {
                tokio::time::sleep(wait.duration()).await;
            }
            Err(RequestError::Network(e)) if attempt < SEND_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "network error, retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting

/// The length of `s` as Telegram counts it: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into pieces of at most `limit` UTF-16 code units (`limit` ≥ 2), never inside
/// a character. A cut goes, by preference, at a paragraph break, a line break, after the end
/// of a sentence or at a space in the second half of the piece; else at the last line break;
/// else at the limit. The whitespace at a cut is dropped, and so are pieces of only
/// whitespace: the pieces, in order and separated by whitespace, are the text. A text within
/// the limit is one piece, unchanged (none when it is blank).
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(2);
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        if utf16_len(rest) <= limit {
            if !rest.trim().is_empty() {
                pieces.push(rest.to_string());
            }
            return pieces;
        }
        // the longest prefix within the limit (bytes), at a character boundary
        let mut units = 0;
        let mut hard = 0;
        for (i, c) in rest.char_indices() {
            units += c.len_utf16();
            if units > limit {
                break;
            }
            hard = i + c.len_utf8();
        }
        let window = &rest[..hard];
        let half = hard / 2;
        let late = |i: Option<usize>| i.filter(|&i| i >= half && i > 0);
        // (end of the piece, start of the rest)
        let cut = late(window.rfind("\n\n"))
            .or_else(|| late(window.rfind('\n')))
            .map(|i| (i, i))
            .or_else(|| {
                late(
                    window
                        .rfind(['。', '！', '？', '；'])
                        .map(|i| i + '。'.len_utf8()),
                )
                .map(|i| (i, i))
            })
            .or_else(|| late(window.rfind(char::is_whitespace)).map(|i| (i, i)))
            .or_else(|| window.rfind('\n').filter(|&i| i > 0).map(|i| (i, i)))
            .unwrap_or((hard, hard));
        let (end, start) = cut;
        let piece = rest[..end].trim_end();
        if !piece.is_empty() {
            pieces.push(piece.to_string());
        }
        let next = rest[start..].trim_start();
        rest = if next.len() < rest.len() {
            next
        } else {
            // unreachable in practice (`start` > 0), but never loop without progress
            &rest[hard.max(1)..]
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pieces, in order, separated only by whitespace, make up `text`.
    fn reassembles(text: &str, pieces: &[String]) -> bool {
        let mut rest = text;
        for p in pieces {
            // a piece may keep the text's own leading whitespace
            match rest
                .strip_prefix(p.as_str())
                .or_else(|| rest.trim_start().strip_prefix(p.as_str()))
            {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.trim().is_empty()
    }

    fn check(text: &str, limit: usize) -> Vec<String> {
        let pieces = split_message(text, limit);
        for p in &pieces {
            assert!(utf16_len(p) <= limit, "piece over {limit}: {p:?}");
            assert!(!p.trim().is_empty(), "blank piece in {pieces:?}");
        }
        assert!(reassembles(text, &pieces), "{text:?} → {pieces:?}");
        pieces
    }

    #[test]
    fn a_short_text_is_one_unchanged_piece() {
        assert_eq!(check("  你好\n", 4096), vec!["  你好\n".to_string()]);
        assert!(split_message(" \n ", 10).is_empty());
    }

    #[test]
    fn paragraphs_are_preferred_to_lines_and_sentences() {
        let text = format!(
            "{}\n\n{}\n{}",
            "甲".repeat(60),
            "乙".repeat(20),
            "丙".repeat(30)
        );
        let pieces = check(&text, 100);
        assert_eq!(pieces[0], "甲".repeat(60));
        assert_eq!(
            pieces[1],
            format!("{}\n{}", "乙".repeat(20), "丙".repeat(30))
        );
    }

    #[test]
    fn a_sentence_end_is_preferred_to_a_hard_cut() {
        let text = format!("{}。{}", "甲".repeat(70), "乙".repeat(70));
        let pieces = check(&text, 100);
        assert_eq!(pieces[0], format!("{}。", "甲".repeat(70)));
    }

    #[test]
    fn astral_characters_count_two_units_and_are_never_cut() {
        let text = "😀".repeat(5000);
        let pieces = check(&text, MAX_TEXT_UTF16);
        assert_eq!(pieces[0].chars().count(), MAX_TEXT_UTF16 / 2);
        // an odd limit cannot hold half a surrogate pair
        let pieces = check("😀😀😀", 3);
        assert_eq!(pieces, vec!["😀", "😀", "😀"]);
    }

    #[test]
    fn option_data_round_trips_and_every_shipped_option_fits() {
        let a = crate::assistant::shipped();
        for e in &a.knowledge.faqs {
            let data = encode_option(&e.id).expect(&e.id);
            assert_eq!(decode_option(&data), Some(e.id.as_str()));
            assert_eq!(decode_choice(&data), None);
        }
        for garbage in ["o1|", "o1|a|b", "c1|x|y|z", "o2|contacts", ""] {
            assert_eq!(decode_option(garbage), None, "{garbage}");
        }
        assert_eq!(button_label("短问题"), "短问题");
        assert_eq!(button_label(&"长".repeat(40)).chars().count(), 30);
    }

    #[test]
    fn callback_data_round_trips_and_rejects_garbage() {
        let data = encode_choice("filing", "insured_region", "suzhou").unwrap();
        assert_eq!(
            decode_choice(&data),
            Some(("filing", "insured_region", "suzhou"))
        );
        for garbage in [
            "",
            "c1",
            "c1|a|b",
            "c1|a|b|c|d",
            "c2|a|b|c",
            "c1||b|c",
            "随便",
        ] {
            assert_eq!(decode_choice(garbage), None, "{garbage:?}");
        }
        assert_eq!(encode_choice("a|b", "s", "v"), None);
        assert_eq!(encode_choice("d", "s", &"v".repeat(60)), None);
    }

    #[test]
    fn every_shipped_choice_fits_in_callback_data() {
        let dialogs = crate::dialog::Dialogs::load(crate::default_dialogs_dir()).unwrap();
        for d in &dialogs.dialogs {
            for step in &d.steps {
                let Some(slot) = &step.slot else { continue };
                for (value, _) in crate::dialog::engine::choices(&dialogs, &d.id, &step.id) {
                    assert!(
                        encode_choice(&d.id, slot, &value).is_some(),
                        "{} {} {value}",
                        d.id,
                        step.id
                    );
                }
            }
        }
    }

    #[test]
    fn commands_are_recognised_and_other_bots_commands_ignored() {
        let me = Some("yidi_bot");
        assert_eq!(classify("/start", me), Input::Command(Command::Start));
        assert_eq!(
            classify("/start deeplink", me),
            Input::Command(Command::Start)
        );
        assert_eq!(
            classify("/Filing@yidi_bot", me),
            Input::Command(Command::Filing)
        );
        assert_eq!(classify("/filing@other_bot", me), Input::NotForUs);
        assert_eq!(classify("/nope", me), Input::UnknownCommand);
        assert_eq!(classify("/重新开始", me), Input::Text("/重新开始"));
        assert_eq!(classify("备案要带什么", me), Input::Text("备案要带什么"));
        assert_eq!(classify("/", me), Input::Text("/"));
    }

    proptest! {
        #[test]
        fn pieces_fit_and_reassemble(
            text in "([a-z ]{0,12}|[甲乙丙。，\n]{0,12}|😀|\n\n| ){0,80}",
            limit in 2usize..40,
        ) {
            check(&text, limit);
        }

        #[test]
        fn any_string_splits_within_the_limit(text in any::<String>(), limit in 2usize..64) {
            check(&text, limit);
        }
    }
}
