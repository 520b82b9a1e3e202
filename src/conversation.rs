//! Conversations: the assistant plus the store. Every turn reads the session, lets the pure
//! core handle the message, and saves state and transcript in one transaction, so a restart
//! or a second replica continues any conversation. Concurrent turns on one session are
//! serialised by the store's revision check: the loser re-reads and runs its turn again.

use std::sync::Arc;
use std::time::Instant;

use crate::assistant::{Assistant, Reply};
use crate::config::Limits;
use crate::dialog::engine::SessionState;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, TurnRecord};

/// How often a turn is retried after a concurrent write to the same session.
const MAX_ATTEMPTS: usize = 4;

/// The note a user sees when their stored conversation could not be read.
pub const CORRUPTED_NOTE: &str = "（抱歉，之前保存的对话记录无法读取，我们重新开始。）";

/// The core shared by every channel: the assistant, the store, the process's metrics and
/// its per-user rate limits (which the channels check before a turn).
#[derive(Clone)]
pub struct Conversations {
    pub assistant: Arc<Assistant>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<RateLimits>,
}

impl Conversations {
    /// With fresh metrics and the default limits.
    pub fn new(assistant: Arc<Assistant>, store: Store) -> Conversations {
        Conversations {
            assistant,
            store,
            metrics: Arc::new(Metrics::new()),
            limits: Arc::new(RateLimits::new(&Limits::default())),
        }
    }

    /// The same, with configured limits.
    pub fn with_limits(mut self, limits: &Limits) -> Conversations {
        self.limits = Arc::new(RateLimits::new(limits));
        self
    }

    /// Handles one message of session `session_id` and persists the turn.
    pub async fn turn(&self, session_id: &str, message: &str) -> Result<Reply, StoreError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut state, revision, note) = self.load(session_id).await?;
            let mut reply = self.assistant.handle(&mut state, message);
            if let Some(note) = note {
                reply.text = format!("{note}\n{}", reply.text);
            }
            let json = serde_json::to_string(&state).unwrap_or_else(|_| "{}".into());
            let record = TurnRecord {
                session_id,
                state: &json,
                expected_revision: revision,
                user_text: message,
                reply_text: &reply.text,
                faq_id: reply.faq.as_ref().map(|f| f.id.as_str()),
                dialog: reply.dialog.as_deref(),
                unanswered: reply.unanswered,
            };
            match self.store.save_turn(&record).await {
                Ok(_) => {
                    tracing::info!(session = %log_id(session_id), faq = ?record.faq_id, dialog = ?record.dialog,
                        unanswered = record.unanswered, "turn");
                    self.metrics.turn(&reply, started.elapsed());
                    return Ok(reply);
                }
                Err(StoreError::Conflict(_)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(session = %log_id(session_id), attempt, "concurrent turn, retrying");
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
        Ok(match self.store.load_session(id).await? {
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

/// How a session appears in logs: a short hash, never the id itself (a caller may use a
/// phone number as the session id).
pub fn log_id(session_id: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    session_id.hash(&mut h);
    format!("{:08x}", h.finish() as u32)
}
