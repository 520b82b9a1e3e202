//! Persistence through sqlx: sessions (dialog state), transcripts, unanswered questions and
//! feedback. One set of migrations (`migrations/`) and one set of queries serve both SQLite
//! (the embedded default, `sqlite://yidi.db`) and PostgreSQL (several replicas), through
//! sqlx's `Any` driver. Personal numbers are masked before anything is written; session
//! tokens (HTTP channel) and agent console sessions are stored only as SHA-256 hashes.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::text::mask_personal_numbers;

mod receipts;

/// The default database: a SQLite file in the working directory.
pub use crate::config::DEFAULT_DATABASE_URL;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another process saved this session since it was read: re-read and retry the turn.
    /// (Displayed with the session id hashed, like every log line.)
    #[error("session {} was changed concurrently", crate::text::log_id(.0))]
    Conflict(String),
    /// Too many turns of one session are waiting already (see [`crate::turns`]): try again
    /// in a moment.
    #[error("too many turns of one session at once")]
    Busy,
    /// The database did not answer within the configured time (`database_timeout_secs`).
    #[error("the database did not answer within {0} s")]
    Timeout(u64),
    /// The URL's scheme only: the rest may hold a password.
    #[error(
        "unsupported database URL scheme `{0}` (use sqlite://FILE, a file path, or postgres://…)"
    )]
    Url(String),
    /// The folder a SQLite file would be created in does not exist.
    #[error("the folder {} of the SQLite file does not exist: create it, or choose another path", .0.display())]
    MissingFolder(std::path::PathBuf),
    /// The database server cannot be reached (its address, without any password, and why).
    #[error("cannot connect to the database at {0}")]
    Unreachable(String),
}

/// The URL a `database_url` stands for: a plain file path (`/var/lib/yidi/yidi.db`,
/// `data/yidi.db`) is a SQLite file; anything with a scheme is kept as it is.
pub fn database_url(configured: &str) -> String {
    let t = configured.trim();
    // a scheme: letters, digits, + and - before the first `:` (a path has `/` or `.`)
    let has_scheme = t.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-".contains(c))
    });
    if has_scheme {
        t.to_string()
    } else {
        format!("sqlite://{t}")
    }
}

/// A stored session: its state JSON and the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub state: String,
    pub revision: i64,
}

/// One turn to persist: the new state plus what was said.
#[derive(Debug, Clone)]
pub struct TurnRecord<'a> {
    pub session_id: &'a str,
    pub state: &'a str,
    /// The revision the state was read at; `None` for a new session.
    pub expected_revision: Option<i64>,
    pub user_text: &'a str,
    pub reply_text: &'a str,
    pub faq_id: Option<&'a str>,
    pub dialog: Option<&'a str>,
    /// The reply's kind (`faq`, `dialog`, `clarify`, …), stored on the assistant's line.
    pub kind: &'a str,
    /// The user's question went unanswered (recorded for the knowledge team).
    pub unanswered: bool,
    /// The client's idempotency key of this turn and the response sent for it, stored with
    /// the turn so that a retry gets the same response and stores nothing.
    pub request: Option<(&'a str, &'a str)>,
    /// The channel the turn came through (`http`, `telegram`, `wechat`, `terminal`), stored
    /// on both transcript lines for the agents' console.
    pub channel: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(description = "one line of a stored conversation (personal numbers masked)")]
pub struct TranscriptLine {
    /// The line's number in its conversation (1, 2, …).
    pub seq: i64,
    /// Who said it: user or assistant.
    #[schema(pattern = "^(user|assistant)$", example = "user")]
    pub role: String,
    /// What was said (personal numbers masked).
    pub text: String,
    /// The FAQ entry that answered (assistant lines).
    #[schema(required = true)]
    pub faq_id: Option<String>,
    /// The reply kind on assistant lines (None on user lines and on turns stored before it
    /// was recorded).
    #[schema(required = true)]
    pub kind: Option<String>,
    /// Unix time in milliseconds.
    pub created_at: i64,
    /// The channel the line came through: http, telegram, wechat or terminal (None on lines
    /// stored before it was recorded).
    #[schema(required = true, example = "http")]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(description = "a question the assistant could not answer")]
pub struct UnansweredQuestion {
    /// The question's id.
    pub id: String,
    /// The conversation it was asked in.
    #[schema(required = true)]
    pub session_id: Option<String>,
    /// Personal numbers masked.
    pub question: String,
    /// Unix time in milliseconds.
    pub created_at: i64,
    /// The reply it got: `unanswered` (in scope, not known) or `out_of_scope` (referred
    /// elsewhere); None when neither is recorded.
    #[schema(required = true, example = "unanswered")]
    pub kind: Option<String>,
    /// When an agent marked it handled (Unix ms); None while it is not.
    #[schema(required = true)]
    pub handled_at: Option<i64>,
    /// Who marked it handled: the first 12 hex digits of the agent's token digest.
    #[schema(required = true)]
    pub handled_by: Option<String>,
}

/// One stored conversation as the console lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(description = "a stored conversation: its id, channel, size and time span")]
pub struct ConversationSummary {
    /// The conversation's stored id (for its transcript).
    pub session_id: String,
    /// The channel of its latest line that records one (None for older conversations).
    #[schema(required = true, example = "telegram")]
    pub channel: Option<String>,
    /// How many transcript lines it has.
    pub lines: i64,
    /// Its first line's time (Unix ms).
    pub first_at: i64,
    /// Its last line's time (Unix ms).
    pub last_at: i64,
}

/// Sessions a purge deletes in one transaction (with their transcripts, tokens and keys):
/// about twenty turns, a millisecond or two of the writer. A turn that comes meanwhile waits
/// for the whole batch: with 1 M old turns purged under 16 conversations on SQLite, batches
/// of 20 / 10 / 5 / 2 sessions gave the turns a p99 of 57 / 33 / 23 / 16 ms (issue 24).
const PURGE_SESSIONS: i64 = 4;
/// Rows of the other tables a purge deletes in one statement.
const PURGE_ROWS: i64 = 500;
/// The shortest pause between a purge's batches; the pause is also at least
/// [`PURGE_IDLE`] times the batch's own time, so that a purge takes at most a tenth of the
/// writer and the turns waiting for it go first (a million old turns take about half an
/// hour to purge under load; an hourly purge deletes an hour's worth).
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
const PURGE_IDLE: u32 = 9;

/// What a purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    pub sessions: u64,
    pub transcript_lines: u64,
    pub unanswered: u64,
    pub feedback: u64,
}

impl std::fmt::Display for Purged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} conversations ({} transcript lines), {} unanswered questions, {} feedback entries",
            self.sessions, self.transcript_lines, self.unanswered, self.feedback
        )
    }
}

/// A turn as written: texts cleaned and masked, the idempotency key hashed.
#[derive(Clone, Copy)]
struct Turn<'a> {
    session_id: &'a str,
    state: &'a str,
    user: &'a str,
    reply: &'a str,
    faq_id: Option<&'a str>,
    dialog: Option<&'a str>,
    kind: &'a str,
    unanswered: bool,
    /// The hash of the idempotency key and the response stored under it.
    request: Option<(&'a str, &'a str)>,
    channel: Option<&'a str>,
    now: i64,
}

impl<'a> Turn<'a> {
    /// `sql` with the turn's parameters bound in the order both databases' turn statements
    /// number them ($1 session … $11 stored response, $12 channel); PostgreSQL's adds
    /// `unanswered` as $13.
    fn bind(self, sql: &'static str, expected_revision: Option<i64>) -> TurnQuery {
        sqlx::query(sql)
            .bind(self.session_id)
            .bind(self.state)
            .bind(self.now)
            .bind(expected_revision)
            .bind(self.user)
            .bind(self.reply)
            .bind(self.faq_id)
            .bind(self.dialog)
            .bind(self.kind)
            .bind(self.request.map(|(k, _)| k))
            .bind(self.request.map(|(_, r)| r))
            .bind(self.channel)
    }
}

/// The batch of a turn on SQLite (parameters as in [`postgres_turn`]): the session row
/// first, each later insert only when the one before wrote (`changes()`); `alone`, in an
/// immediate transaction of its own, else to run inside a group's ([`sqlite_writer`]).
/// Sixteen variants (new session or not, with an idempotency record or not, unanswered or
/// not, alone or not), built once each.
fn sqlite_turn(new: bool, request: bool, unanswered: bool, alone: bool) -> &'static str {
    static BATCHES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let batches = BATCHES.get_or_init(|| {
        (0..16)
            .map(|i| {
                let (new, request, unanswered) = (i & 1 != 0, i & 2 != 0, i & 4 != 0);
                let alone = i & 8 != 0;
                let mut sql = String::from(if alone { "BEGIN IMMEDIATE; " } else { "" });
                sql.push_str(if new {
                    "INSERT INTO sessions (id, state, revision, created_at, updated_at) \
                     VALUES ($1, $2, 1, $3, $3) ON CONFLICT (id) DO NOTHING RETURNING revision; "
                } else {
                    "UPDATE sessions SET state = $2, revision = revision + 1, updated_at = $3 \
                     WHERE id = $1 AND revision = $4 RETURNING revision; "
                });
                sql.push_str(
                    "WITH last AS (SELECT COALESCE(MAX(seq), 0) AS m FROM transcripts WHERE session_id = $1) \
                     INSERT INTO transcripts (session_id, seq, role, text, faq_id, dialog, kind, created_at, channel) \
                     SELECT $1, m + 1, 'user', $5, NULL, $8, NULL, $3, $12 FROM last WHERE changes() = 1 \
                     UNION ALL SELECT $1, m + 2, 'assistant', $6, $7, $8, $9, $3, $12 FROM last WHERE changes() = 1; ",
                );
                if request {
                    sql.push_str(
                        "INSERT INTO request_keys (session_id, key_hash, reply, created_at) \
                         SELECT $1, $10, $11, $3 WHERE changes() = 2; ",
                    );
                }
                if unanswered {
                    // after the transcript lines (2 rows) or the idempotency record (1)
                    let before = if request { 1 } else { 2 };
                    sql.push_str(&format!(
                        "INSERT INTO unanswered (id, session_id, question, created_at, kind) \
                         SELECT $1 || '-' || (m - 1), $1, $5, $3, $9 \
                         FROM (SELECT MAX(seq) AS m FROM transcripts WHERE session_id = $1) \
                         WHERE changes() = {before}; "
                    ));
                }
                if alone {
                    sql.push_str("COMMIT");
                }
                sql
            })
            .collect()
    });
    let i = usize::from(new)
        | usize::from(request) << 1
        | usize::from(unanswered) << 2
        | usize::from(alone) << 3;
    batches[i].as_str()
}

/// A writer connection in the middle of a turn's batch: if the turn is abandoned (a client
/// gone, a request timed out) its transaction is rolled back before the connection goes
/// back to the pool.
struct RollbackOnDrop(Option<sqlx::pool::PoolConnection<sqlx::Any>>);

impl Drop for RollbackOnDrop {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    use sqlx::Executor;
                    // "no transaction is active" when the batch had finished
                    let _ = conn.execute("ROLLBACK").await;
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// A turn's statements, bound to its parameters.
type TurnQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// A turn waiting for the SQLite writer: its batch alone (in a transaction of its own) and
/// inside a group's transaction (each taken when it runs), when its caller stops waiting,
/// and where its outcome goes (taken when it is answered).
struct PendingTurn {
    alone: Option<TurnQuery>,
    grouped: Option<TurnQuery>,
    deadline: tokio::time::Instant,
    done: Option<tokio::sync::oneshot::Sender<Result<bool, StoreError>>>,
}

impl PendingTurn {
    /// Whether the turn may still be written: not when its caller has gone or it has been
    /// answered, nor when its time is up (then it is answered with [`StoreError::Timeout`]).
    fn still_wanted(&mut self, timeout: std::time::Duration) -> bool {
        match &self.done {
            Some(done) if !done.is_closed() => {
                if tokio::time::Instant::now() < self.deadline {
                    return true;
                }
                self.answer(Err(StoreError::Timeout(timeout.as_secs())));
                false
            }
            _ => false,
        }
    }

    /// Gives the caller the turn's outcome (once; a caller gone has no use for it).
    fn answer(&mut self, outcome: Result<bool, StoreError>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(outcome);
        }
    }
}

/// The most turns one transaction of [`sqlite_writer`] takes.
const SQLITE_GROUP_MAX: usize = 64;

/// The turns waiting for the writer at most (then a turn waits to be queued).
const SQLITE_QUEUE: usize = 1024;

/// The SQLite writer's task: takes the turns in the order they come, and writes the turns
/// that arrived while the last transaction was written in one transaction (group commit).
///
/// A commit writes every page it changed to the WAL: the session row's, the transcripts'
/// and their index's, about five pages of 4 KiB for one turn. The turns of one group share
/// most of those pages, so the WAL (and the checkpoints that copy it into the database)
/// grows by a fraction of that per turn, and the one writer connection is handed over once
/// per group instead of once per turn.
///
/// A turn is not written once its caller has gone (a client gone, a request timed out) or
/// its `timeout` has passed in the queue (then it fails with [`StoreError::Timeout`]), as
/// long as its transaction has not begun. Each turn keeps its own outcome: a conflict
/// writes nothing of that turn and does not touch the others. If one turn's statement
/// fails, the group is rolled back and its turns are written one by one, so that one turn's
/// error is not the others'; if the group itself fails (no connection in time, the database
/// locked by another process past the busy timeout, the commit), every turn of it gets
/// that error at once, as each would have alone. Ends when the store is dropped.
async fn sqlite_writer(
    pool: AnyPool,
    mut turns: tokio::sync::mpsc::Receiver<PendingTurn>,
    timeout: std::time::Duration,
    restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut group = Vec::with_capacity(SQLITE_GROUP_MAX);
    while turns.recv_many(&mut group, SQLITE_GROUP_MAX).await > 0 {
        finish_checkpoint(&pool, &restart).await;
        group.retain_mut(|t| t.still_wanted(timeout));
        if let [t] = group.as_mut_slice() {
            if let Some(alone) = t.alone.take() {
                let outcome = write_alone(&pool, alone).await;
                t.answer(outcome);
            }
        } else if !group.is_empty() {
            let batches = group.iter_mut().filter_map(|t| t.grouped.take()).collect();
            match write_group(&pool, batches).await {
                Ok(saved) => {
                    for (t, saved) in group.iter_mut().zip(saved) {
                        t.answer(Ok(saved));
                    }
                }
                Err(GroupFailed::Turn(e)) => {
                    tracing::debug!(error = %e, "a turn of a group failed; writing them one by one");
                    for t in &mut group {
                        if t.still_wanted(timeout)
                            && let Some(alone) = t.alone.take()
                        {
                            let outcome = write_alone(&pool, alone).await;
                            t.answer(outcome);
                        }
                    }
                }
                Err(GroupFailed::Group(e)) => {
                    for t in &mut group {
                        t.answer(Err(StoreError::Db(same_error(&e))));
                    }
                }
            }
        }
        group.clear();
    }
}

/// How a group's transaction failed: one turn's own statement, or the group as a whole.
enum GroupFailed {
    Turn(sqlx::Error),
    Group(sqlx::Error),
}

/// The same failure again, for each turn of a group (sqlx's errors cannot be cloned): the
/// pool's own conditions as they are, anything else by its message.
fn same_error(e: &sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::AnyDriverError(other.to_string().into()),
    }
}

/// How often [`sqlite_checkpointer`] copies the WAL into the database.
const SQLITE_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// The WAL's size (pages of 4 KiB) from which the writer finishes a checkpoint itself, so
/// that the WAL starts over (see [`sqlite_checkpointer`]).
const SQLITE_WAL_RESTART_PAGES: i64 = 4096;

/// Copies the WAL into the database file now and then, from a connection of its own, while
/// the writer goes on.
///
/// SQLite's default checkpoints on commit, in the connection that commits, once the WAL
/// holds 1,000 pages: then one group of turns waits for about 4 MiB to be copied and the
/// database file synced (the turns' worst latencies: at 1 M stored turns, p99 11.0–12.7 ms
/// with it, 9.2–10.4 ms with this task; issue 24). The writer has `wal_autocheckpoint = 0` instead, and this task copies with a
/// passive checkpoint, which waits for no reader or writer. Under steady writes it never
/// catches up with the last commit, and a WAL starts over only once all of it is copied:
/// so when it holds [`SQLITE_WAL_RESTART_PAGES`] pages, this task raises `restart` and the
/// writer, between two groups, checkpoints the rest itself (what was committed since this
/// task's pass, a few pages), after which its next transaction writes the WAL from its start.
/// (A restart checkpoint from here would hold the writer back for as long as SQLite's busy
/// handler sleeps waiting for readers: tens of milliseconds.) Ends when the store's writer
/// queue is gone.
async fn sqlite_checkpointer(
    pool: AnyPool,
    alive: tokio::sync::mpsc::WeakSender<PendingTurn>,
    restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            break;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
            .and_then(|row| row.try_get::<i64, _>(1))
        {
            // (busy, pages in the WAL, pages copied)
            Ok(pages) => {
                if pages >= SQLITE_WAL_RESTART_PAGES {
                    restart.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed (the next one retries)");
            }
        }
    }
    pool.close().await;
}

/// The writer's own checkpoint when [`sqlite_checkpointer`] asks for it: copies what is left
/// of the WAL, so that the next transaction starts it over.
async fn finish_checkpoint(pool: &AnyPool, restart: &std::sync::atomic::AtomicBool) {
    if restart.swap(false, std::sync::atomic::Ordering::Relaxed)
        && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_optional(pool)
            .await
    {
        tracing::warn!(error = %e, "SQLite checkpoint failed (the next one retries)");
    }
}

/// One turn's batch in a transaction of its own (one hand-over to the connection's thread).
async fn write_alone(pool: &AnyPool, batch: TurnQuery) -> Result<bool, StoreError> {
    let mut guard = RollbackOnDrop(Some(pool.acquire().await?));
    let Some(conn) = guard.0.as_mut() else {
        return Err(StoreError::Db(sqlx::Error::PoolClosed));
    };
    let rows = batch.fetch_all(&mut **conn).await;
    match rows {
        Ok(rows) => {
            guard.0 = None;
            Ok(!rows.is_empty())
        }
        Err(e) => {
            // a statement failed inside the batch: end its transaction before the
            // connection serves anyone else ("no transaction" is fine: none was begun)
            if let Some(mut conn) = guard.0.take() {
                use sqlx::Executor;
                let _ = conn.execute("ROLLBACK").await;
            }
            Err(e.into())
        }
    }
}

/// Several turns' batches in one immediate transaction: whether each saved, or how it
/// failed (then nothing of the group is written).
async fn write_group(pool: &AnyPool, batches: Vec<TurnQuery>) -> Result<Vec<bool>, GroupFailed> {
    use sqlx::Executor;
    let conn = pool.acquire().await.map_err(GroupFailed::Group)?;
    let mut guard = RollbackOnDrop(Some(conn));
    let Some(conn) = guard.0.as_mut() else {
        return Err(GroupFailed::Group(sqlx::Error::PoolClosed));
    };
    let written = async {
        let begun = conn.execute("BEGIN IMMEDIATE").await;
        begun.map_err(GroupFailed::Group)?;
        let mut saved = Vec::with_capacity(batches.len());
        for batch in batches {
            let rows = batch.fetch_all(&mut **conn).await;
            saved.push(!rows.map_err(GroupFailed::Turn)?.is_empty());
        }
        let committed = conn.execute("COMMIT").await;
        committed.map_err(GroupFailed::Group)?;
        Ok(saved)
    }
    .await;
    match written {
        Ok(saved) => {
            guard.0 = None;
            Ok(saved)
        }
        Err(e) => {
            // "no transaction is active" when BEGIN failed
            if let Some(mut conn) = guard.0.take() {
                let _ = conn.execute("ROLLBACK").await;
            }
            Err(e)
        }
    }
}

/// A turn on PostgreSQL in one statement around `$session`, which writes the session row
/// and returns it (nothing when it was changed or created concurrently: then nothing else
/// is written). Parameters: $1 id, $2 state, $3 now, $4 revision read, $5 user's text,
/// $6 reply, $7 FAQ id, $8 dialog, $9 reply kind, $10 key hash, $11 stored response,
/// $12 channel, $13 unanswered.
macro_rules! postgres_turn {
    ($session:literal) => {
        concat!(
            "WITH s AS (",
            $session,
            "), last AS (SELECT COALESCE(MAX(seq), 0) AS m FROM transcripts WHERE session_id = $1), \
             t AS (INSERT INTO transcripts (session_id, seq, role, text, faq_id, dialog, kind, created_at, channel) \
                   SELECT $1, m + 1, 'user', $5, NULL, $8, NULL, $3, $12 FROM s, last \
                   UNION ALL SELECT $1, m + 2, 'assistant', $6, $7, $8, $9, $3, $12 FROM s, last), \
             k AS (INSERT INTO request_keys (session_id, key_hash, reply, created_at) \
                   SELECT $1, $10, $11, $3 FROM s WHERE $10 IS NOT NULL), \
             u AS (INSERT INTO unanswered (id, session_id, question, created_at, kind) \
                   SELECT $1 || '-' || (m + 1), $1, $5, $3, $9 FROM s, last WHERE $13) \
             SELECT COUNT(*) FROM s"
        )
    };
}

/// The first turn of a session on PostgreSQL ($4, NULL, is unused).
const SAVE_TURN_NEW: &str = postgres_turn!(
    "INSERT INTO sessions (id, state, revision, created_at, updated_at) VALUES ($1, $2, 1, $3, $3) \
     ON CONFLICT (id) DO NOTHING RETURNING id"
);
/// A later turn on PostgreSQL, against the revision read.
const SAVE_TURN_NEXT: &str = postgres_turn!(
    "UPDATE sessions SET state = $2, revision = revision + 1, updated_at = $3 \
     WHERE id = $1 AND revision = $4 RETURNING id"
);

/// The database handle (cheap to clone: pools).
///
/// On SQLite (a file) the store keeps two pools: one connection that writes (SQLite allows
/// one writer at a time; a single connection queues writers in the process instead of in
/// SQLite's busy handler) and a few read-only connections, which in WAL mode read the last
/// committed state without waiting for the writer. On PostgreSQL (and an in-memory SQLite)
/// one pool does both.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Reads outside a transaction (on SQLite, connections with `query_only`).
    reader: AnyPool,
    backend: Backend,
    session_id_key: SecretKey,
    /// How long a statement (and waiting for a connection) may take.
    timeout: std::time::Duration,
    memo: std::sync::Arc<Memo>,
    /// On SQLite, the queue of [`sqlite_writer`], which writes every turn.
    writer: Option<tokio::sync::mpsc::Sender<PendingTurn>>,
}

/// What this process remembers instead of asking the database on every turn: the tokens it
/// has checked (for [`MEMO_TOKEN_TTL`]) and the state it last wrote of each session (for
/// [`MEMO_SESSION_TTL`], see [`Store::load_session_for_turn`]). Each map is cleared when it
/// reaches [`MEMO_CAP`] entries, so memory stays bounded whatever the traffic.
#[derive(Default)]
struct Memo {
    sessions: std::sync::Mutex<std::collections::HashMap<String, MemoSession>>,
    tokens: std::sync::Mutex<std::collections::HashMap<String, (String, std::time::Instant)>>,
}

/// A session as this process last saw it.
#[derive(Clone)]
enum MemoSession {
    /// The state it wrote, and when.
    Wrote(StoredSession, std::time::Instant),
    /// Another process wrote the session too (replicas without sticky routing): its turns
    /// always read the database, rather than find out by a refused save each time.
    Shared,
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

/// Most sessions (and tokens) remembered at once.
const MEMO_CAP: usize = 4096;
/// How long the state a turn wrote stands in for reading the session again: well below the
/// idle age at which sessions are purged, so that a session purged and begun again
/// elsewhere (its revisions counting from 1 again) can never match a remembered revision.
const MEMO_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a checked session token is trusted without asking the database again (a purge
/// by another replica is noticed within this time).
const MEMO_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(60);

fn remember<V>(map: &std::sync::Mutex<std::collections::HashMap<String, V>>, key: &str, value: V) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= MEMO_CAP && !map.contains_key(key) {
        map.clear();
    }
    map.insert(key.to_string(), value);
}

fn forget<V>(map: &std::sync::Mutex<std::collections::HashMap<String, V>>, key: Option<&str>) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    match key {
        Some(key) => {
            map.remove(key);
        }
        None => map.clear(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The default of `database_timeout_secs`.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections of a PostgreSQL pool (each replica).
const POSTGRES_CONNECTIONS: u32 = 16;
/// Read-only connections of a SQLite file, beside its one writer.
const SQLITE_READERS: u32 = 4;

/// When SQLite makes a commit durable: defined with the configuration.
pub use crate::config::SqliteSynchronous;

/// How to open a store: [`Store::connect_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Longest a statement, or waiting for a connection, may take.
    pub timeout: std::time::Duration,
    pub sqlite_synchronous: SqliteSynchronous,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            timeout: DEFAULT_TIMEOUT,
            sqlite_synchronous: SqliteSynchronous::Normal,
        }
    }
}

/// A key read from the database; never printed.
#[derive(Clone)]
struct SecretKey(std::sync::Arc<str>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Store {
    /// Connects to `url` (creating a SQLite file if needed) and runs the migrations, with
    /// the default options.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    /// As [`Store::connect`]; a statement, or waiting for a free connection, that takes
    /// longer than `timeout` fails (PostgreSQL cancels it itself: `statement_timeout`), so a
    /// stalled database makes requests fail fast instead of piling up.
    pub async fn connect_with_timeout(
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<Store, StoreError> {
        Store::connect_with(
            url,
            StoreOptions {
                timeout,
                ..StoreOptions::default()
            },
        )
        .await
    }

    /// Connects with `options`. A SQLite file is switched to WAL mode (it stays so), with
    /// `synchronous` as configured and a busy timeout of `options.timeout` on every
    /// connection.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        install_default_drivers();
        let url = &database_url(url);
        if let Some(file) = sqlite_file(url)
            && let Some(folder) = file.parent()
            && !folder.as_os_str().is_empty()
            && !folder.is_dir()
        {
            return Err(StoreError::MissingFolder(folder.to_path_buf()));
        }
        let url = if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.contains("mode=") || rest.contains(":memory:") {
                url.to_string()
            } else if rest.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url.to_string()
        } else {
            let scheme = url
                .split_once(':')
                .map_or(url.as_str(), |(scheme, _)| scheme);
            return Err(StoreError::Url(scheme.chars().take(20).collect()));
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let timeout = options.timeout.max(std::time::Duration::from_millis(1));
        let memory =
            backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let pool = match backend {
            // one writer for SQLite: writers queue here rather than in SQLite's lock
            Backend::Sqlite => sqlite_pool(&url, 1, timeout, options, SqliteRole::Writer).await?,
            Backend::Postgres => postgres_pool(&url, timeout).await?,
        };
        sqlx::migrate!("./migrations").run(&pool).await?;
        let reader = if backend == Backend::Sqlite && !memory {
            sqlite_pool(&url, SQLITE_READERS, timeout, options, SqliteRole::Reader).await?
        } else {
            pool.clone()
        };
        let session_id_key = SecretKey(secret(&pool, "session_id_key").await?.into());
        let restart = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = (backend == Backend::Sqlite).then(|| {
            let (queue, turns) = tokio::sync::mpsc::channel(SQLITE_QUEUE);
            tokio::spawn(sqlite_writer(pool.clone(), turns, timeout, restart.clone()));
            queue
        });
        if let Some(queue) = &writer
            && !memory
        {
            let pool = sqlite_pool(&url, 1, timeout, options, SqliteRole::Checkpointer).await?;
            tokio::spawn(sqlite_checkpointer(pool, queue.downgrade(), restart));
        }
        Ok(Store {
            pool,
            reader,
            backend,
            session_id_key,
            timeout,
            memo: std::sync::Arc::default(),
            writer,
        })
    }

    /// The stored form of a session id that a caller chose (`yidi chat --session ID`, a
    /// Telegram chat): `c-` and 40 hex digits of a SHA-256 keyed with this database's own
    /// random key, so the same id always finds its conversation while the database never
    /// holds the id itself (it may be a phone number), nor a hash that could be reversed by
    /// trying every phone number without the key. Ids the server makes (HTTP sessions) are
    /// random and stored as they are.
    pub fn caller_session_id(&self, caller_id: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.session_id_key.0.as_bytes());
        h.update([0u8]);
        h.update(caller_id.as_bytes());
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        format!("c-{}", &hex[..40])
    }

    /// Checks that the database answers a read of the sessions table within the timeout
    /// (a table locked or a server stalled counts as not answering).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let read = sqlx::query("SELECT id FROM sessions LIMIT 1").fetch_optional(&self.pool);
        match tokio::time::timeout(self.timeout, read).await {
            Ok(r) => r.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.timeout.as_secs())),
        }
    }

    pub async fn load_session(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query("SELECT state, revision FROM sessions WHERE id = $1")
            .bind(no_nul(id))
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|r| StoredSession {
            state: r.get::<String, _>(0),
            revision: r.get::<i64, _>(1),
        }))
    }

    /// The session as a turn starts from: the state this process wrote last, when it wrote
    /// it within [`MEMO_SESSION_TTL`] (turns of one session run one at a time in a
    /// process, see [`crate::turns`]), else [`Store::load_session`]. Should another
    /// process (a replica behind the same load balancer, `yidi chat` on the same SQLite
    /// file) have written the session since, the turn's save is refused as a
    /// [`StoreError::Conflict`] (it is checked against the revision read), the retry reads
    /// the database, and this process reads that session from the database from then on.
    pub async fn load_session_for_turn(
        &self,
        id: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let remembered = match self
            .memo
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            Some(MemoSession::Wrote(stored, at)) if at.elapsed() < MEMO_SESSION_TTL => {
                Some(stored.clone())
            }
            _ => None,
        };
        match remembered {
            Some(stored) => Ok(Some(stored)),
            None => self.load_session(id).await,
        }
    }

    /// Saves a turn atomically: the session state (checked against the revision it was read
    /// at), both transcript lines, the idempotency record and the question if it went
    /// unanswered. Returns the new revision. A stale revision, or an idempotency key stored
    /// meanwhile by another process, is a [`StoreError::Conflict`] and writes nothing.
    ///
    /// On PostgreSQL this is one statement (data-modifying CTEs: one round trip, one
    /// commit); on SQLite one transaction of two to four statements on the writer.
    pub async fn save_turn(&self, t: &TurnRecord<'_>) -> Result<i64, StoreError> {
        let now = now_ms();
        let session_id = no_nul(t.session_id);
        let user = mask_personal_numbers(&no_nul(t.user_text));
        let reply = mask_personal_numbers(&no_nul(t.reply_text));
        let request = t
            .request
            .map(|(key, reply)| (token_hash(key), no_nul(reply)));
        let turn = Turn {
            session_id: &session_id,
            state: t.state,
            user: &user,
            reply: &reply,
            faq_id: t.faq_id,
            dialog: t.dialog,
            kind: t.kind,
            unanswered: t.unanswered,
            request: request.as_ref().map(|(k, r)| (k.as_str(), r.as_str())),
            channel: t.channel,
            now,
        };
        let saved = match self.backend {
            Backend::Postgres => self.save_turn_postgres(&turn, t.expected_revision).await,
            Backend::Sqlite => self.save_turn_sqlite(&turn, t.expected_revision).await,
        };
        let saved = match saved {
            Ok(saved) => saved,
            // another process stored a turn with this idempotency key first (the session's
            // row let both through): a conflict like any other, nothing of this turn
            // written; the caller finds the stored reply
            Err(StoreError::Db(sqlx::Error::Database(e))) if e.is_unique_violation() => false,
            Err(e) => return Err(e),
        };
        if !saved {
            remember(&self.memo.sessions, &session_id, MemoSession::Shared);
            return Err(StoreError::Conflict(session_id));
        }
        let revision = t.expected_revision.map_or(1, |rev| rev + 1);
        let mut sessions = self.memo.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(sessions.get(&*session_id), Some(MemoSession::Shared)) {
            let stored = StoredSession {
                state: t.state.to_string(),
                revision,
            };
            if sessions.len() >= MEMO_CAP && !sessions.contains_key(&*session_id) {
                sessions.clear();
            }
            let wrote = MemoSession::Wrote(stored, std::time::Instant::now());
            sessions.insert(session_id.to_string(), wrote);
        }
        Ok(revision)
    }

    /// The turn as one PostgreSQL statement; false when the session was changed (or, for a
    /// new one, created) concurrently, and then nothing is written.
    async fn save_turn_postgres(
        &self,
        t: &Turn<'_>,
        expected_revision: Option<i64>,
    ) -> Result<bool, StoreError> {
        let sql = match expected_revision {
            None => SAVE_TURN_NEW,
            Some(_) => SAVE_TURN_NEXT,
        };
        let row = t
            .bind(sql, expected_revision)
            .bind(t.unanswered)
            .fetch_one(&self.pool)
            .await;
        Ok(row?.get::<i64, _>(0) == 1)
    }

    /// The turn on the SQLite writer, through [`sqlite_writer`]: one transaction, alone or
    /// with the turns that arrived while the one before was written. Its batch: the session
    /// row (`RETURNING` says whether it matched the revision read), both transcript lines,
    /// then the idempotency record and the unanswered question when there are; each insert
    /// runs only when the statement before it wrote (`changes()`), so a conflict writes
    /// nothing. False on a conflict.
    async fn save_turn_sqlite(
        &self,
        t: &Turn<'_>,
        expected_revision: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (new, request) = (expected_revision.is_none(), t.request.is_some());
        let (done, saved) = tokio::sync::oneshot::channel();
        let turn = PendingTurn {
            alone: Some(t.bind(
                sqlite_turn(new, request, t.unanswered, true),
                expected_revision,
            )),
            grouped: Some(t.bind(
                sqlite_turn(new, request, t.unanswered, false),
                expected_revision,
            )),
            deadline: tokio::time::Instant::now() + self.timeout,
            done: Some(done),
        };
        let Some(writer) = &self.writer else {
            return Err(StoreError::Db(sqlx::Error::PoolClosed));
        };
        writer
            .send(turn)
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        // the writer answers every turn it takes; a closed channel means it has stopped
        saved.await.unwrap_or_else(|_| {
            tracing::error!("the SQLite writer has stopped: turns cannot be saved");
            Err(StoreError::Db(sqlx::Error::WorkerCrashed))
        })
    }

    /// The response stored for the idempotency key `key` of session `session_id`, if any.
    pub async fn request_reply(
        &self,
        session_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT reply FROM request_keys WHERE session_id = $1 AND key_hash = $2")
                .bind(no_nul(session_id))
                .bind(token_hash(key))
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn transcript(&self, session_id: &str) -> Result<Vec<TranscriptLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, role, text, faq_id, kind, created_at, channel FROM transcripts WHERE session_id = $1 ORDER BY seq",
        )
        .bind(no_nul(session_id))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TranscriptLine {
                seq: r.get(0),
                role: r.get(1),
                text: r.get(2),
                faq_id: r.get(3),
                kind: r.get(4),
                created_at: r.get(5),
                channel: r.get(6),
            })
            .collect())
    }

    /// The latest `limit` questions that went unanswered, newest first, with the kind of
    /// reply they got (for questions stored before it was recorded: their transcript's
    /// reply of the same turn) and whether an agent has handled them.
    pub async fn unanswered(&self, limit: i64) -> Result<Vec<UnansweredQuestion>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.session_id, u.question, u.created_at, \
                    COALESCE(u.kind, (SELECT t.kind FROM transcripts t \
                        WHERE t.session_id = u.session_id AND t.created_at = u.created_at \
                          AND t.role = 'assistant' ORDER BY t.seq DESC LIMIT 1)), \
                    u.handled_at, u.handled_by \
             FROM unanswered u ORDER BY u.created_at DESC, u.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| UnansweredQuestion {
                id: r.get(0),
                session_id: r.get(1),
                question: r.get(2),
                created_at: r.get(3),
                kind: r.get(4),
                handled_at: r.get(5),
                handled_by: r.get(6),
            })
            .collect())
    }

    /// Marks the unanswered question `id` handled by `agent` (the first 12 hex digits of
    /// the agent's token digest) now, or (`handled` false) not handled any more. Returns the
    /// question as stored afterwards; `None` when there is no such question.
    pub async fn set_unanswered_handled(
        &self,
        id: &str,
        agent: &str,
        handled: bool,
    ) -> Result<Option<UnansweredQuestion>, StoreError> {
        let id = no_nul(id);
        let (at, by) = if handled {
            (Some(now_ms()), Some(no_nul(agent)))
        } else {
            (None, None)
        };
        let done =
            sqlx::query("UPDATE unanswered SET handled_at = $1, handled_by = $2 WHERE id = $3")
                .bind(at)
                .bind(by)
                .bind(&id)
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, session_id, question, created_at, kind, handled_at, handled_by \
             FROM unanswered WHERE id = $1",
        )
        .bind(&id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| UnansweredQuestion {
            id: r.get(0),
            session_id: r.get(1),
            question: r.get(2),
            created_at: r.get(3),
            kind: r.get(4),
            handled_at: r.get(5),
            handled_by: r.get(6),
        }))
    }

    /// The stored conversations among `ids` (each at most once, in the order given): how
    /// many lines, when, and through which channel.
    pub async fn conversations(
        &self,
        ids: &[String],
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let mut found: Vec<ConversationSummary> = Vec::new();
        for id in ids {
            let id = no_nul(id);
            if found.iter().any(|c| c.session_id == id) {
                continue;
            }
            let row = sqlx::query(
                "SELECT COUNT(*), MIN(created_at), MAX(created_at), \
                        (SELECT channel FROM transcripts WHERE session_id = $1 AND channel IS NOT NULL \
                         ORDER BY seq DESC LIMIT 1) \
                 FROM transcripts WHERE session_id = $1",
            )
            .bind(&id)
            .fetch_one(&self.reader)
            .await?;
            let lines: i64 = row.get(0);
            if lines == 0 {
                continue;
            }
            found.push(ConversationSummary {
                session_id: id,
                channel: row.get(3),
                lines,
                first_at: row.get(1),
                last_at: row.get(2),
            });
        }
        Ok(found)
    }

    /// Records a question asked outside a conversation (the residents' FAQ search page) that
    /// nothing answered, for the agents' inbox: `kind` is `unanswered` or `out_of_scope`, as
    /// for a turn. Personal numbers are masked first. Returns the question's id.
    pub async fn add_unanswered(&self, question: &str, kind: &str) -> Result<String, StoreError> {
        let now = now_ms();
        let id = format!("web-{now}-{}", next_nonce());
        sqlx::query(
            "INSERT INTO unanswered (id, session_id, question, created_at, kind) VALUES ($1, NULL, $2, $3, $4)",
        )
        .bind(&id)
        .bind(mask_personal_numbers(&no_nul(question)))
        .bind(now)
        .bind(no_nul(kind))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Records a user's verdict on an answer. Returns the feedback id.
    pub async fn add_feedback(
        &self,
        session_id: Option<&str>,
        faq_id: Option<&str>,
        helpful: bool,
        comment: Option<&str>,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let id = format!("fb-{now}-{}", next_nonce());
        sqlx::query(
            "INSERT INTO feedback (id, session_id, faq_id, helpful, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(session_id.map(no_nul))
        .bind(faq_id.map(no_nul))
        .bind(i64::from(helpful))
        .bind(comment.map(|c| mask_personal_numbers(&no_nul(c))))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Records the bearer token of a new session. Only the token's SHA-256 hash is stored.
    /// A session id that already has a token is a [`StoreError::Conflict`].
    pub async fn add_session_token(&self, session_id: &str, token: &str) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO session_tokens (session_id, token_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(no_nul(session_id))
        .bind(token_hash(token))
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(session_id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `token` is the bearer token of `session_id` (false for a session without one).
    pub async fn check_session_token(
        &self,
        session_id: &str,
        token: &str,
    ) -> Result<bool, StoreError> {
        let session_id = no_nul(session_id);
        let hash = token_hash(token);
        let remembered = self
            .memo
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&session_id)
            .filter(|(_, checked)| checked.elapsed() < MEMO_TOKEN_TTL)
            .map(|(stored, _)| stored.clone());
        if let Some(stored) = remembered {
            return Ok(constant_time_eq(stored.as_bytes(), hash.as_bytes()));
        }
        let row = sqlx::query("SELECT token_hash FROM session_tokens WHERE session_id = $1")
            .bind(&session_id)
            .fetch_optional(&self.reader)
            .await?;
        let Some(stored) = row.map(|r| r.get::<String, _>(0)) else {
            return Ok(false);
        };
        let valid = constant_time_eq(stored.as_bytes(), hash.as_bytes());
        if valid {
            // only a token shown to be right is remembered: a wrong guess always asks
            let now = std::time::Instant::now();
            remember(&self.memo.tokens, &session_id, (stored, now));
        }
        Ok(valid)
    }

    /// Records a console login: the agent session `session` (a random secret held in the
    /// agent's cookie; only its SHA-256 hash is stored) for the agent whose configured token
    /// digest is `agent`, valid for `ttl_ms`. Expired agent sessions are deleted on the way.
    pub async fn add_agent_session(
        &self,
        session: &str,
        agent: &str,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query("DELETE FROM agent_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO agent_sessions (id_hash, agent, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(session))
        .bind(agent)
        .bind(now)
        .bind(now.saturating_add(ttl_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The agent (configured token digest) of the agent session `session`, if it exists and
    /// has not expired.
    pub async fn agent_session(&self, session: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT agent FROM agent_sessions WHERE id_hash = $1 AND expires_at > $2")
                .bind(token_hash(session))
                .bind(now_ms())
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Ends the agent session `session` (logout). Returns whether it existed.
    pub async fn delete_agent_session(&self, session: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM agent_sessions WHERE id_hash = $1")
            .bind(token_hash(session))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes what residents typed before `cutoff_ms` (Unix ms): conversations whose last
    /// activity is older (state, transcript, token, idempotency records), and unanswered
    /// questions and feedback recorded before it. Returns what was deleted.
    ///
    /// In small batches, each its own short transaction (a conversation is deleted whole, in
    /// one of them), with a pause between them: a purge of millions of rows never holds the
    /// database's write lock (SQLite) or its row locks for long, so turns keep being served
    /// while it runs (issue 24). The old rows are found through indexes on their times.
    pub async fn purge_before(&self, cutoff_ms: i64) -> Result<Purged, StoreError> {
        let mut purged = Purged {
            sessions: 0,
            transcript_lines: 0,
            unanswered: 0,
            feedback: 0,
        };
        // conversations, a batch of sessions at a time
        loop {
            let ids: Vec<String> = sqlx::query(
                "SELECT id FROM sessions WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
            )
            .bind(cutoff_ms)
            .bind(PURGE_SESSIONS)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            if ids.is_empty() {
                break;
            }
            // placeholders for the ids, from $1 (and from $2 after the cutoff)
            let list = |from: usize| {
                (0..ids.len())
                    .map(|i| format!("${}", i + from))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let batch_started = std::time::Instant::now();
            let mut tx = self.pool.begin().await?;
            let mut n = [0u64; 4];
            for (i, sql) in [
                format!("DELETE FROM transcripts WHERE session_id IN ({})", list(1)),
                format!("DELETE FROM request_keys WHERE session_id IN ({})", list(1)),
                format!(
                    "DELETE FROM session_tokens WHERE session_id IN ({})",
                    list(1)
                ),
                // a session written again since it was selected is kept
                format!(
                    "DELETE FROM sessions WHERE updated_at < $1 AND id IN ({})",
                    list(2)
                ),
            ]
            .iter()
            .enumerate()
            {
                // built here from placeholders only: the ids are bound
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                if i == 3 {
                    q = q.bind(cutoff_ms);
                }
                for id in &ids {
                    q = q.bind(id);
                }
                n[i] = q.execute(&mut *tx).await?.rows_affected();
            }
            if n[3] as usize != ids.len() {
                // a session came back to life meanwhile: keep all of it
                tx.rollback().await?;
                for id in &ids {
                    self.purge_session_if_old(id, cutoff_ms, &mut purged)
                        .await?;
                }
            } else {
                tx.commit().await?;
                purged.sessions += n[3];
                purged.transcript_lines += n[0];
            }
            for id in &ids {
                forget(&self.memo.sessions, Some(id));
                forget(&self.memo.tokens, Some(id));
            }
            tokio::time::sleep(PURGE_PAUSE.max(batch_started.elapsed() * PURGE_IDLE)).await;
        }
        // the rest: rows of their own age, a batch at a time
        for (i, sql) in [
            "DELETE FROM unanswered WHERE id IN \
             (SELECT id FROM unanswered WHERE created_at < $1 LIMIT $2)",
            "DELETE FROM feedback WHERE id IN \
             (SELECT id FROM feedback WHERE created_at < $1 LIMIT $2)",
            "DELETE FROM request_keys WHERE created_at < $1 AND session_id IN \
             (SELECT session_id FROM request_keys WHERE created_at < $1 LIMIT $2)",
            "DELETE FROM session_tokens WHERE session_id IN \
             (SELECT t.session_id FROM session_tokens t WHERE t.created_at < $1 \
              AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = t.session_id) LIMIT $2)",
        ]
        .into_iter()
        .enumerate()
        {
            loop {
                let batch_started = std::time::Instant::now();
                let n = sqlx::query(sql)
                    .bind(cutoff_ms)
                    .bind(PURGE_ROWS)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                match i {
                    0 => purged.unanswered += n,
                    1 => purged.feedback += n,
                    _ => {}
                }
                if n < PURGE_ROWS as u64 {
                    break;
                }
                tokio::time::sleep(PURGE_PAUSE.max(batch_started.elapsed() * PURGE_IDLE)).await;
            }
        }
        Ok(purged)
    }

    /// Deletes one conversation if it is still older than the cutoff (one transaction).
    async fn purge_session_if_old(
        &self,
        id: &str,
        cutoff_ms: i64,
        purged: &mut Purged,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM sessions WHERE id = $1 AND updated_at < $2")
            .bind(id)
            .bind(cutoff_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            tx.rollback().await?;
            return Ok(());
        }
        let lines = sqlx::query("DELETE FROM transcripts WHERE session_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM request_keys WHERE session_id = $1",
            "DELETE FROM session_tokens WHERE session_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        purged.sessions += 1;
        purged.transcript_lines += lines;
        Ok(())
    }

    /// [`Store::purge_before`] `days` days ago.
    pub async fn purge_older_than_days(&self, days: u32) -> Result<Purged, StoreError> {
        let cutoff = now_ms().saturating_sub(i64::from(days) * 86_400_000);
        self.purge_before(cutoff).await
    }

    /// Closes the pool: every later query fails (tests use it to simulate a database outage).
    pub async fn close(&self) {
        forget(&self.memo.sessions, None);
        forget(&self.memo.tokens, None);
        self.pool.close().await;
        self.reader.close().await;
    }

    /// Counts rows of a table (for tests and metrics): `sessions`, `transcripts`,
    /// `unanswered`, `feedback`, `session_tokens` or `agent_sessions`.
    pub async fn count(&self, table: &str) -> Result<i64, StoreError> {
        let sql = match table {
            "sessions" => "SELECT COUNT(*) FROM sessions",
            "transcripts" => "SELECT COUNT(*) FROM transcripts",
            "unanswered" => "SELECT COUNT(*) FROM unanswered",
            "feedback" => "SELECT COUNT(*) FROM feedback",
            "session_tokens" => "SELECT COUNT(*) FROM session_tokens",
            "agent_sessions" => "SELECT COUNT(*) FROM agent_sessions",
            _ => return Ok(0),
        };
        let row = sqlx::query(sql).fetch_one(&self.reader).await?;
        Ok(row.get::<i64, _>(0))
    }

    /// Writes a raw state (tests use it to simulate a corrupted row).
    #[doc(hidden)]
    pub async fn write_raw_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        forget(&self.memo.sessions, Some(id));
        Ok(())
    }
}

/// The `PRAGMA synchronous` statement of a setting.
fn synchronous_pragma(setting: SqliteSynchronous) -> &'static str {
    match setting {
        SqliteSynchronous::Normal => "PRAGMA synchronous = NORMAL",
        SqliteSynchronous::Full => "PRAGMA synchronous = FULL",
    }
}

/// What a SQLite pool's connections are for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SqliteRole {
    /// The one connection that writes turns: it never checkpoints on commit.
    Writer,
    /// Reads only (`query_only`, so that a reader can never write by mistake).
    Reader,
    /// The connection of [`sqlite_checkpointer`].
    Checkpointer,
}

/// A pool of SQLite connections in WAL mode with `options.sqlite_synchronous`, a busy
/// timeout, and what `role` needs.
async fn sqlite_pool(
    url: &str,
    connections: u32,
    timeout: std::time::Duration,
    options: StoreOptions,
    role: SqliteRole,
) -> Result<AnyPool, StoreError> {
    let read_only = role == SqliteRole::Reader;
    let busy = format!("PRAGMA busy_timeout = {}", timeout.as_millis());
    let synchronous = synchronous_pragma(options.sqlite_synchronous);
    Ok(AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(timeout)
        .after_connect(move |conn, _| {
            let busy = busy.clone();
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(sqlx::AssertSqlSafe(busy)).await?;
                if !read_only {
                    // persistent in the file; readers find it set
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                }
                if role == SqliteRole::Writer {
                    // the checkpointer copies the WAL into the database, not the commit
                    // of a turn (see `sqlite_checkpointer`)
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                conn.execute(synchronous).await?;
                if read_only {
                    conn.execute("PRAGMA query_only = ON").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// A pool of PostgreSQL connections whose statements time out after `timeout`.
/// The file of a SQLite URL (`sqlite://FILE?…`), if it names one.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:") && !url.contains("mode=memory"))
        .then(|| std::path::PathBuf::from(path))
}

/// Where a PostgreSQL URL points (host and port, never the password), for messages.
fn postgres_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432)
        ),
        Err(_) => "the configured address".to_string(),
    }
}

async fn postgres_pool(url: &str, timeout: std::time::Duration) -> Result<AnyPool, StoreError> {
    // one connection first, for its own error: the pool would retry until its timeout and
    // report only that ("pool timed out"), not why (connection refused, no such database…)
    use sqlx::Connection;
    let target = postgres_target(url);
    match tokio::time::timeout(timeout, sqlx::AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(StoreError::Unreachable(format!("{target}: {e}"))),
        Err(_) => {
            return Err(StoreError::Unreachable(format!(
                "{target}: no answer within {} s",
                timeout.as_secs_f32()
            )));
        }
    }
    let statement_timeout = format!("SET statement_timeout = {}", timeout.as_millis());
    Ok(AnyPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(timeout)
        .after_connect(move |conn, _| {
            let sql = statement_timeout.clone();
            Box::pin(async move {
                use sqlx::Executor;
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// `s` without NUL characters, which PostgreSQL refuses in text (and SQLite would cut at):
/// text from outside (a message, a comment, an id in a URL) may carry them, and must not turn
/// into a database error. Ids are cleaned the same way wherever they are read or written.
fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

/// The secret `name` of this database, made (random) by the first process that asks.
async fn secret(pool: &AnyPool, name: &str) -> Result<String, StoreError> {
    // replicas starting together: the first insert wins, everyone reads the winner
    sqlx::query(
        "INSERT INTO store_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(random_token())
    .execute(pool)
    .await?;
    let row = sqlx::query("SELECT value FROM store_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(row.get::<String, _>(0))
}

/// 256 random bits from the thread's CSPRNG, in lower-case hex: session and agent tokens.
pub fn random_token() -> String {
    random_hex::<32>()
}

/// A random value of `N` bytes in lower-case hex, from the thread's CSPRNG.
pub fn random_hex<const N: usize>() -> String
where
    [u8; N]: Default + AsMut<[u8]>,
{
    use rand::RngCore;
    let mut bytes = <[u8; N]>::default();
    rand::rng().fill_bytes(bytes.as_mut());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of a session token: its SHA-256 hash in lower-case hex.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn next_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u64) << 32
}
