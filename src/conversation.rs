//! Conversations: the assistant plus the store. Every turn reads the session, lets the pure
//! core handle the message, and saves state and transcript in one transaction, so a restart
//! or a second replica continues any conversation. Concurrent turns on one session are
//! serialised by the store's revision check: the loser re-reads and runs its turn again.

use std::sync::Arc;
use std::time::Instant;

use crate::assistant::{Assistant, Reply};
use crate::config::Limits;
use crate::dialog::engine::SessionState;
use crate::limits::{Limited, RateLimits};
use crate::live::LiveAssistant;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, TurnRecord};
/// How a session appears in logs (kept here for the channels that name it so).
pub use crate::text::log_id;

/// How often a turn is tried when other replicas write the same session concurrently (turns
/// of this process queue instead, see [`crate::turns`]).
const MAX_ATTEMPTS: usize = 6;

/// The note a user sees when their stored conversation could not be read.
pub const CORRUPTED_NOTE: &str = "（抱歉，之前保存的对话记录无法读取，我们重新开始。）";

/// The core shared by every channel: the assistant (replaceable while the server runs, see
/// [`crate::live`]), the store, the process's metrics and its per-user rate limits (which
/// the channels check before a turn).
#[derive(Clone)]
pub struct Conversations {
    pub live: Arc<LiveAssistant>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<RateLimits>,
    /// Turns of one session run one at a time (see [`crate::turns`]).
    pub turns: Arc<crate::turns::TurnQueue>,
    /// The channel whose turns these are (`http`, `telegram`, `wechat`, `terminal`),
    /// recorded on the transcript lines: set by [`Conversations::on_channel`].
    pub channel: Option<&'static str>,
}

impl Conversations {
    /// With fresh metrics and the default limits; the assistant is never reloaded.
    pub fn new(assistant: Arc<Assistant>, store: Store) -> Conversations {
        Conversations::live(Arc::new(LiveAssistant::fixed(assistant)), store)
    }

    /// With an assistant that may be reloaded while conversations go on.
    pub fn live(live: Arc<LiveAssistant>, store: Store) -> Conversations {
        Conversations {
            live,
            store,
            metrics: Arc::new(Metrics::new()),
            limits: Arc::new(RateLimits::new(&Limits::default())),
            turns: Arc::default(),
            channel: None,
        }
    }

    /// The same core (assistant, store, metrics, limits, turn queue) for channel `name`,
    /// whose turns record it on their transcript lines.
    pub fn on_channel(&self, name: &'static str) -> Conversations {
        Conversations {
            channel: Some(name),
            ..self.clone()
        }
    }

    /// The assistant in force now (a turn keeps the one it started with).
    pub fn assistant(&self) -> Arc<Assistant> {
        self.live.current()
    }

    /// The same, with configured limits.
    pub fn with_limits(mut self, limits: &Limits) -> Conversations {
        self.limits = Arc::new(RateLimits::new(limits));
        self
    }

    /// Counts one message of conversation `key` (`session:…`, `telegram:…`) against its rate
    /// limit; a refusal is counted in the metrics and logged (hashed key) here, once for
    /// every channel.
    pub fn admit(&self, key: &str) -> Result<(), Limited> {
        self.limits
            .check_session(key)
            .inspect_err(|limited| self.refused(*limited, key))
    }

    /// Records a refusal by a rate limit.
    pub fn refused(&self, limited: Limited, key: &str) {
        self.metrics.rate_limited(limited.scope.as_str());
        tracing::debug!(key = %log_id(key), scope = limited.scope.as_str(), "rate limited");
        crate::throttle::refusal_with("rate limited", &limited.scope.as_str());
    }

    /// Handles one message of session `session_id` and persists the turn.
    pub async fn turn(&self, session_id: &str, message: &str) -> Result<Reply, StoreError> {
        self.reply(session_id, message, |a, state| a.handle(state, message))
            .await
    }

    /// [`Conversations::turn`] for a request carrying an idempotency key: the response is
    /// `render(reply)`, stored with the turn under `key`; a repeat of the key (a client
    /// retrying after a lost response) gets the stored response and runs and stores nothing.
    /// Returns the response and whether it is a repeat.
    pub async fn turn_once(
        &self,
        session_id: &str,
        message: &str,
        key: &str,
        render: &(dyn Fn(&Reply) -> String + Send + Sync),
    ) -> Result<(String, bool), StoreError> {
        let mut keyed = Keyed {
            key,
            render,
            response: None,
            repeat: false,
        };
        self.apply(session_id, message, Some(&mut keyed), |a, state| {
            Some(a.handle(state, message))
        })
        .await?;
        Ok((keyed.response.unwrap_or_default(), keyed.repeat))
    }

    /// [`Conversations::turn`] for a message that may be delivered twice (a Telegram update
    /// redelivered after a restart): `key` is stored with the turn, and a repeat of it runs
    /// and stores nothing (`None`).
    pub async fn turn_unless_seen(
        &self,
        session_id: &str,
        message: &str,
        key: &str,
    ) -> Result<Option<Reply>, StoreError> {
        self.unless_seen(session_id, message, key, |a, state| {
            a.handle(state, message)
        })
        .await
    }

    /// Any persisted action (a channel's command: start a dialog, reset) done at most once
    /// per `key`, like [`Conversations::turn_unless_seen`]; `user_text` is what the
    /// transcript records (`/filing`, `/reset`).
    pub async fn unless_seen(
        &self,
        session_id: &str,
        user_text: &str,
        key: &str,
        mut act: impl FnMut(&Assistant, &mut SessionState) -> Reply,
    ) -> Result<Option<Reply>, StoreError> {
        let mut keyed = Keyed {
            key,
            render: &|_| String::new(),
            response: None,
            repeat: false,
        };
        self.apply(session_id, user_text, Some(&mut keyed), |a, state| {
            Some(act(a, state))
        })
        .await
    }

    /// Starts dialog `dialog_id` at its first question (a channel's menu command, e.g.
    /// Telegram's /filing) and persists the turn like [`Conversations::turn`]; the transcript
    /// records the user's side as `/{dialog_id}`.
    pub async fn start(&self, session_id: &str, dialog_id: &str) -> Result<Reply, StoreError> {
        let command = format!("/{dialog_id}");
        self.reply(session_id, &command, |a, state| {
            a.start_dialog(state, dialog_id)
        })
        .await
    }

    /// Clears the conversation (no dialog, no slots) in one persisted turn; the transcript
    /// keeps what was said and records the user's side as `/reset`.
    pub async fn reset(&self, session_id: &str) -> Result<Reply, StoreError> {
        self.reply(session_id, "/reset", |a, state| a.reset(state))
            .await
    }

    /// A button press ([`Assistant::choose`]): `Ok(None)` when the question it answers is no
    /// longer the one being asked; then nothing is saved.
    pub async fn choose(
        &self,
        session_id: &str,
        dialog: &str,
        slot: &str,
        value: &str,
    ) -> Result<Option<Reply>, StoreError> {
        // the transcript shows what the user saw on the button, as if typed
        let label = self.assistant().dialogs.slots.label(slot, value);
        self.apply(session_id, &label, None, |a, state| {
            a.choose(state, dialog, slot, value)
        })
        .await
    }

    /// [`Conversations::apply`] for an `act` that always replies.
    async fn reply(
        &self,
        session_id: &str,
        user_text: &str,
        mut act: impl FnMut(&Assistant, &mut SessionState) -> Reply,
    ) -> Result<Reply, StoreError> {
        let reply = self
            .apply(session_id, user_text, None, |a, state| Some(act(a, state)))
            .await?;
        // `act` always replies, so `apply` always returns one; no panic path all the same
        Ok(reply.unwrap_or_else(|| Reply::text("")))
    }

    /// Loads the session, lets `act` change its state and reply, and saves both in one
    /// transaction, running `act` again on a fresh read after a concurrent write. When `act`
    /// has nothing to say (`None`), nothing is saved.
    async fn apply(
        &self,
        session_id: &str,
        user_text: &str,
        mut keyed: Option<&mut Keyed<'_>>,
        mut act: impl FnMut(&Assistant, &mut SessionState) -> Option<Reply>,
    ) -> Result<Option<Reply>, StoreError> {
        let started = Instant::now();
        let _turn = self.turns.enter(session_id).await?;
        if let Some(k) = keyed.as_deref_mut()
            && let Some(response) = self.store.request_reply(session_id, k.key).await?
        {
            k.response = Some(response);
            k.repeat = true;
            return Ok(None);
        }
        // one assistant for the whole turn, also when a reload swaps it meanwhile
        let assistant = self.assistant();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut state, revision, note) = self.load(session_id).await?;
            let Some(mut reply) = act(&assistant, &mut state) else {
                return Ok(None);
            };
            if let Some(note) = note {
                reply.text = format!("{note}\n{}", reply.text);
            }
            let json = serde_json::to_string(&state).unwrap_or_else(|_| "{}".into());
            let reply_text = reply.transcript_text();
            let response = keyed.as_deref().map(|k| (k.render)(&reply));
            let record = TurnRecord {
                session_id,
                state: &json,
                expected_revision: revision,
                user_text,
                reply_text: &reply_text,
                faq_id: reply.faq.as_ref().map(|f| f.id.as_str()),
                dialog: reply.dialog.as_deref(),
                kind: reply.kind.as_str(),
                unanswered: reply.unanswered,
                request: keyed
                    .as_deref()
                    .zip(response.as_deref())
                    .map(|(k, r)| (k.key, r)),
                channel: self.channel,
            };
            match self.store.save_turn(&record).await {
                Ok(_) => {
                    tracing::info!(session = %log_id(session_id), kind = record.kind, faq = ?record.faq_id,
                        dialog = ?record.dialog, unanswered = record.unanswered, "turn");
                    self.metrics.turn(&reply, started.elapsed());
                    if let Some(k) = keyed {
                        k.response = response;
                    }
                    return Ok(Some(reply));
                }
                Err(StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(session = %log_id(session_id), attempt, "concurrent turn, retrying");
                    // another replica wrote this session: wait a jittered moment, re-read
                    tokio::time::sleep(crate::turns::backoff(attempt as u32)).await;
                    // it may have been this very request, sent to both: its stored reply
                    if let Some(k) = keyed.as_deref_mut()
                        && let Some(response) = self.store.request_reply(session_id, k.key).await?
                    {
                        k.response = Some(response);
                        k.repeat = true;
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The stored state of a session (a fresh one when none is stored or it is unreadable).
    pub async fn state(&self, session_id: &str) -> Result<Option<SessionState>, StoreError> {
        Ok(match self.store.load_session(session_id).await? {
            Some(s) => Some(serde_json::from_str(&s.state).unwrap_or_else(|_| SessionState::new())),
            None => None,
        })
    }

    async fn load(
        &self,
        id: &str,
    ) -> Result<(SessionState, Option<i64>, Option<&'static str>), StoreError> {
        Ok(match self.store.load_session_for_turn(id).await? {
            None => (SessionState::new(), None, None),
            Some(stored) => match serde_json::from_str::<SessionState>(&stored.state) {
                Ok(state) => (state, Some(stored.revision), None),
                Err(e) => {
                    tracing::warn!(session = %log_id(id), error = %e, "unreadable session state, starting afresh");
                    (
                        SessionState::new(),
                        Some(stored.revision),
                        Some(CORRUPTED_NOTE),
                    )
                }
            },
        })
    }
}

/// An idempotency key of a turn, how its response is rendered, and (after the turn) the
/// response and whether it was stored before.
struct Keyed<'a> {
    key: &'a str,
    render: &'a (dyn Fn(&Reply) -> String + Send + Sync),
    response: Option<String>,
    repeat: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::shipped as assistant;

    async fn conversations() -> (Conversations, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&url).await.unwrap();
        (Conversations::new(assistant(), store), dir)
    }

    #[tokio::test]
    async fn start_choose_and_reset_are_persisted_turns() {
        let (c, _dir) = conversations().await;
        let reply = c.start("s", "filing").await.unwrap();
        assert_eq!(reply.asking.as_deref(), Some("insured_region"));
        let state = c.state("s").await.unwrap().unwrap();
        assert_eq!(state.active.unwrap().step, "region");

        let reply = c
            .choose("s", "filing", "insured_region", "suzhou")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.asking.as_deref(), Some("care_location"));
        let state = c.state("s").await.unwrap().unwrap();
        assert_eq!(state.slots["insured_region"], "suzhou");

        let lines = c.store.transcript("s").await.unwrap();
        let user: Vec<&str> = lines
            .iter()
            .filter(|l| l.role == "user")
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            user,
            ["/filing", "苏州"],
            "the button label, as the user saw it"
        );

        c.reset("s").await.unwrap();
        assert_eq!(c.state("s").await.unwrap().unwrap(), SessionState::new());
        assert_eq!(c.store.transcript("s").await.unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_stale_choice_saves_nothing() {
        let (c, _dir) = conversations().await;
        c.start("s", "filing").await.unwrap();
        c.choose("s", "filing", "insured_region", "suzhou")
            .await
            .unwrap()
            .unwrap();
        let before = c.store.load_session("s").await.unwrap().unwrap();
        let stale = c
            .choose("s", "filing", "insured_region", "zhangjiagang")
            .await
            .unwrap();
        assert!(stale.is_none());
        assert_eq!(c.store.load_session("s").await.unwrap().unwrap(), before);
        assert_eq!(c.store.transcript("s").await.unwrap().len(), 4);
        // a session that does not exist is not created by a stale press
        assert!(
            c.choose("t", "filing", "insured_region", "suzhou")
                .await
                .unwrap()
                .is_none()
        );
        assert!(c.store.load_session("t").await.unwrap().is_none());
    }
}
