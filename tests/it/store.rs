//! The store against real databases: SQLite in a temp dir and PostgreSQL in a fresh schema.

use yidi::store::{SqliteSynchronous, Store, StoreError, StoreOptions, TurnRecord};

use crate::db::TestDb;

fn turn<'a>(id: &'a str, state: &'a str, rev: Option<i64>, user: &'a str) -> TurnRecord<'a> {
    TurnRecord {
        session_id: id,
        state,
        expected_revision: rev,
        user_text: user,
        reply_text: "好的",
        faq_id: Some("filing-who"),
        dialog: None,
        kind: "faq",
        unanswered: false,
        request: None,
        channel: Some("http"),
    }
}

async fn exercise(db: &TestDb) {
    let store = Store::connect(&db.url).await.expect("connect + migrate");
    store.ping().await.unwrap();
    assert_eq!(store.load_session("s1").await.unwrap(), None);

    let r1 = store
        .save_turn(&turn("s1", "{\"a\":1}", None, "你好"))
        .await
        .unwrap();
    assert_eq!(r1, 1);
    let loaded = store.load_session("s1").await.unwrap().unwrap();
    assert_eq!((loaded.state.as_str(), loaded.revision), ("{\"a\":1}", 1));

    // personal numbers are masked before storage
    let mut t = turn(
        "s1",
        "{\"a\":2}",
        Some(1),
        "我身份证32058219800101123X，手机13912345678",
    );
    t.unanswered = true;
    assert_eq!(store.save_turn(&t).await.unwrap(), 2);
    let lines = store.transcript("s1").await.unwrap();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(lines[2].text, "我身份证320***********123X，手机139****5678");
    assert!(
        !lines
            .iter()
            .any(|l| l.text.contains("13912345678") || l.text.contains("19800101"))
    );
    assert_eq!(lines[1].faq_id.as_deref(), Some("filing-who"));
    // the reply kind is kept on the assistant's lines only
    assert_eq!(
        lines.iter().map(|l| l.kind.as_deref()).collect::<Vec<_>>(),
        vec![None, Some("faq"), None, Some("faq")]
    );
    let unanswered = store.unanswered(10).await.unwrap();
    assert_eq!(unanswered.len(), 1);
    assert!(unanswered[0].question.contains("139****5678"));
    // named after the user's line of the turn
    assert_eq!(unanswered[0].id, "s1-3");

    // a stale revision is a conflict and writes nothing
    let stale = store
        .save_turn(&turn("s1", "{\"stale\":true}", Some(1), "旧的"))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    // a second "new" session with the same id is a conflict too
    assert!(matches!(
        store.save_turn(&turn("s1", "{}", None, "x")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.load_session("s1").await.unwrap().unwrap().state,
        "{\"a\":2}"
    );
    assert_eq!(store.count("transcripts").await.unwrap(), 4);

    let fb = store
        .add_feedback(Some("s1"), Some("filing-who"), true, Some("很有用"))
        .await
        .unwrap();
    assert!(fb.starts_with("fb-"));
    assert_eq!(store.count("feedback").await.unwrap(), 1);

    // migrations are idempotent: a second connect (another replica) works on the same data
    let again = Store::connect(&db.url).await.unwrap();
    assert_eq!(again.load_session("s1").await.unwrap().unwrap().revision, 2);
}

/// Console logins: only hashes stored, expiry, logout.
async fn agent_sessions(db: &TestDb) {
    let store = Store::connect(&db.url).await.expect("connect + migrate");
    let agent = "a".repeat(64);
    store
        .add_agent_session("secret-session-1", &agent, 60_000)
        .await
        .unwrap();
    assert_eq!(
        store.agent_session("secret-session-1").await.unwrap(),
        Some(agent.clone())
    );
    assert_eq!(store.agent_session("secret-session-2").await.unwrap(), None);
    assert_eq!(store.agent_session("").await.unwrap(), None);
    // an expired session no longer counts, and the next login removes it
    store
        .add_agent_session("secret-session-old", &agent, -1)
        .await
        .unwrap();
    assert_eq!(
        store.agent_session("secret-session-old").await.unwrap(),
        None
    );
    assert_eq!(store.count("agent_sessions").await.unwrap(), 2);
    store
        .add_agent_session("secret-session-3", &agent, 60_000)
        .await
        .unwrap();
    assert_eq!(store.count("agent_sessions").await.unwrap(), 2);
    // logout
    assert!(
        store
            .delete_agent_session("secret-session-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_agent_session("secret-session-1")
            .await
            .unwrap()
    );
    assert_eq!(store.agent_session("secret-session-1").await.unwrap(), None);
    assert_eq!(
        store.agent_session("secret-session-3").await.unwrap(),
        Some(agent)
    );
}

#[tokio::test]
async fn agent_sessions_on_sqlite() {
    agent_sessions(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn agent_sessions_on_postgres() {
    agent_sessions(&TestDb::postgres().await).await;
}

#[tokio::test]
async fn store_works_on_sqlite() {
    exercise(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn store_works_on_postgres() {
    exercise(&TestDb::postgres().await).await;
}

#[tokio::test]
async fn unsupported_urls_are_rejected() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::Url(_))
    ));
}

/// Every text value of `sql`'s first column, read past the store's API.
async fn texts(url: &str, sql: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| r.get::<Option<String>, _>(0).unwrap_or_default())
        .collect()
}

async fn feedback_comments_are_masked(db: &TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    store
        .add_feedback(
            None,
            None,
            false,
            Some("请回电 139 1234 5678，我的卡号6222 0212 3456 7890 123，身份证32058219800101１２３Ｘ"),
        )
        .await
        .unwrap();
    let comments = texts(&db.url, "SELECT comment FROM feedback").await;
    assert_eq!(
        comments,
        ["请回电 139 **** 5678，我的卡号622* **** **** ***0 123，身份证320***********１２３Ｘ"]
    );
}

#[tokio::test]
async fn feedback_comments_are_masked_on_sqlite() {
    feedback_comments_are_masked(&TestDb::sqlite()).await;
}

#[tokio::test]
async fn feedback_comments_are_masked_on_postgres() {
    feedback_comments_are_masked(&TestDb::postgres().await).await;
}

#[tokio::test]
async fn caller_session_ids_are_keyed_hashes_stable_per_database() {
    let db = TestDb::sqlite();
    let a = Store::connect(&db.url).await.unwrap();
    let id = a.caller_session_id("13912345678");
    assert!(id.starts_with("c-") && id.len() == 42, "{id}");
    assert!(!id.contains("1391234"));
    // another process on the same database finds the same conversation
    let b = Store::connect(&db.url).await.unwrap();
    assert_eq!(b.caller_session_id("13912345678"), id);
    assert_ne!(b.caller_session_id("13912345679"), id);
    // another database has another key: the hash cannot be matched across databases
    let other = Store::connect(&TestDb::sqlite().url).await.unwrap();
    assert_ne!(other.caller_session_id("13912345678"), id);
}

/// SQLite runs in WAL mode: a reader is not held up by another connection's write
/// transaction (even an exclusive one), and a write waits for it (busy timeout) instead of
/// failing.
#[tokio::test]
async fn sqlite_readers_do_not_wait_for_a_writer_and_writers_wait_their_turn() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let store = Store::connect_with(
        &db.url,
        StoreOptions {
            sqlite_synchronous: SqliteSynchronous::Full,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    store
        .save_turn(&turn("s1", "{}", None, "你好"))
        .await
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(mode, "wal");

    sqlx::raw_sql("BEGIN EXCLUSIVE; UPDATE sessions SET updated_at = 0")
        .execute(&mut other)
        .await
        .unwrap();
    // reads go on during the other connection's transaction
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), store.load_session("s1"));
    assert_eq!(read.await.unwrap().unwrap().unwrap().revision, 1);
    // a turn waits for the lock and lands once it is released
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .save_turn(&turn("s1", "{\"b\":1}", Some(1), "再问"))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !writer.is_finished(),
        "the write waits for the other transaction"
    );
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    assert_eq!(writer.await.unwrap().unwrap(), 2);
    assert_eq!(store.transcript("s1").await.unwrap().len(), 4);
}

/// The writer never checkpoints on commit; the store's checkpointer copies the WAL into the
/// database beside it, and once the WAL is long the writer finishes a checkpoint between two
/// groups so that the WAL starts over: under steady writes the WAL stays short rather than
/// growing with every turn ever written (issue 24).
#[tokio::test]
async fn the_sqlite_wal_is_copied_beside_the_writer_and_starts_over() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    let file = db.url.strip_prefix("sqlite://").unwrap().to_string();
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    // about 15,000 WAL pages in all, written without a pause (as under a server's full load,
    // where a passive checkpoint never catches up with the last commit by itself)
    let long = "异地就医备案".repeat(700);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..16 {
        let store = store.clone();
        let long = long.clone();
        set.spawn(async move {
            let id = format!("wal-{c}");
            for n in 0..150i64 {
                let rev = (n > 0).then_some(n);
                store
                    .save_turn(&turn(&id, "{}", rev, &long))
                    .await
                    .expect("turn");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    // (busy, frames in the WAL now, frames copied)
    let (_, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut other)
        .await
        .unwrap();
    let turns: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transcripts")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(turns, 16 * 150 * 2);
    assert!(
        size() > before + 16 * 150 * 4096,
        "the checkpointer copied the turns into the database file: {} → {} bytes",
        before,
        size()
    );
    assert!(
        frames < 8192,
        "the WAL started over instead of holding every page written: {frames} frames"
    );
    assert_eq!(frames, copied, "everything in the WAL is in the database");
}

/// Two processes on one database (replicas on PostgreSQL, `yidi chat` beside the server on
/// SQLite): a turn that starts from the state this process remembers, after the other wrote
/// the session, is a conflict that writes nothing; the retry reads the database, and so do
/// that session's later turns in this process (no conflict each time).
async fn a_remembered_state_made_stale_by_another_process_conflicts_then_rereads(db: TestDb) {
    let a = Store::connect(&db.url).await.unwrap();
    let b = Store::connect(&db.url).await.unwrap();
    let (by_a, by_b) = ("{\"by\":\"a\"}", "{\"by\":\"b\"}");
    assert_eq!(a.load_session_for_turn("s").await.unwrap(), None);
    a.save_turn(&turn("s", by_a, None, "一")).await.unwrap();
    assert_eq!(start_of(&b, "s").await, (by_a.to_string(), 1));
    b.save_turn(&turn("s", by_b, Some(1), "二")).await.unwrap();

    // a remembers revision 1: refused, nothing written; the retry starts from what b wrote
    assert_eq!(start_of(&a, "s").await, (by_a.to_string(), 1));
    assert_refused(&a, &turn("s", by_a, Some(1), "三")).await;
    assert_eq!(a.count("transcripts").await.unwrap(), 4);
    assert_eq!(start_of(&a, "s").await, (by_b.to_string(), 2));
    a.save_turn(&turn("s", by_a, Some(2), "三")).await.unwrap();
    assert_eq!(user_lines(&a, "s").await, ["一", "二", "三"]);

    // b in turn starts from what it wrote, is refused, and re-reads
    assert_eq!(start_of(&b, "s").await, (by_b.to_string(), 2));
    assert_refused(&b, &turn("s", by_b, Some(2), "四")).await;
    assert_eq!(start_of(&b, "s").await, (by_a.to_string(), 3));
    b.save_turn(&turn("s", by_b, Some(3), "四")).await.unwrap();
    // the session is now known to be shared: a reads what b wrote, without a conflict
    assert_eq!(start_of(&a, "s").await, (by_b.to_string(), 4));
    // while another session, written by a alone, is remembered (b's write to the database
    // behind a's back is not seen: its save would be refused, as above)
    a.save_turn(&turn("t", by_a, None, "一")).await.unwrap();
    b.write_raw_state("t", by_b).await.unwrap();
    assert_eq!(start_of(&a, "t").await, (by_a.to_string(), 1));
}

/// What the user said in session `id`, in order.
async fn user_lines(store: &Store, id: &str) -> Vec<String> {
    let lines = store.transcript(id).await.unwrap().into_iter();
    lines.filter(|l| l.role == "user").map(|l| l.text).collect()
}

/// The session as `store`'s next turn starts from it: its state and revision.
async fn start_of(store: &Store, id: &str) -> (String, i64) {
    let s = store.load_session_for_turn(id).await.unwrap().unwrap();
    (s.state, s.revision)
}

/// Saving `t` is refused as a conflict.
async fn assert_refused(store: &Store, t: &TurnRecord<'_>) {
    let saved = store.save_turn(t).await;
    assert!(matches!(saved, Err(StoreError::Conflict(_))), "{saved:?}");
}

#[tokio::test]
async fn a_remembered_state_made_stale_by_another_process_conflicts_then_rereads_on_sqlite() {
    a_remembered_state_made_stale_by_another_process_conflicts_then_rereads(TestDb::sqlite()).await;
}

#[tokio::test]
async fn a_remembered_state_made_stale_by_another_replica_conflicts_then_rereads_on_postgres() {
    a_remembered_state_made_stale_by_another_process_conflicts_then_rereads(
        TestDb::postgres().await,
    )
    .await;
}

/// Turns saved at once (on SQLite the writer puts the turns that queue together in one
/// transaction) each keep their own outcome: of eight turns racing for one session at the
/// same revision exactly one is saved and the others are refused, writing nothing; a turn
/// whose statement fails (its idempotency record exists already) is refused alone as a
/// conflict, writing nothing; the turns of other sessions are all saved.
async fn turns_at_once_each_keep_their_outcome(db: TestDb) {
    let store = Store::connect(&db.url).await.unwrap();
    store
        .save_turn(&turn("race", "{}", None, "零"))
        .await
        .unwrap();
    let mut keyed = turn("keyed", "{}", None, "零");
    keyed.request = Some(("key-1", "{\"reply\":1}"));
    store.save_turn(&keyed).await.unwrap();

    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let s = store.clone();
        set.spawn(async move {
            let user = format!("抢{i}");
            (
                "race",
                s.save_turn(&turn("race", "{}", Some(1), &user)).await,
            )
        });
    }
    let s = store.clone();
    set.spawn(async move {
        let mut again = turn("keyed", "{}", Some(1), "一");
        again.request = Some(("key-1", "{\"reply\":2}"));
        ("keyed", s.save_turn(&again).await)
    });
    for i in 0..24 {
        let s = store.clone();
        set.spawn(async move {
            let id = format!("other-{i}");
            ("other", s.save_turn(&turn(&id, "{}", None, "一")).await)
        });
    }
    let (mut won, mut refused, mut others) = (0, 0, 0);
    while let Some(joined) = set.join_next().await {
        match joined.unwrap() {
            ("race", Ok(2)) => won += 1,
            ("race", Err(StoreError::Conflict(_))) => refused += 1,
            // its key is stored already (another process answered it): a conflict
            ("keyed", Err(StoreError::Conflict(_))) => {}
            ("other", Ok(1)) => others += 1,
            (what, outcome) => panic!("{what}: unexpected {outcome:?}"),
        }
    }
    assert_eq!((won, refused, others), (1, 7, 24));
    let users = user_lines(&store, "race").await;
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(users[0], "零");
    assert!(users[1].starts_with('抢'), "{users:?}");
    let keyed = store.load_session("keyed").await.unwrap().unwrap();
    assert_eq!(keyed.revision, 1);
    assert_eq!(store.transcript("keyed").await.unwrap().len(), 2);
    // 2 (race) + 4 (race's winner, keyed) + 2 × 24
    assert_eq!(store.count("transcripts").await.unwrap(), 2 + 4 + 48);
    assert_eq!(store.count("sessions").await.unwrap(), 2 + 24);
}

#[tokio::test]
async fn turns_at_once_each_keep_their_outcome_on_sqlite() {
    turns_at_once_each_keep_their_outcome(TestDb::sqlite()).await;
}

#[tokio::test]
async fn turns_at_once_each_keep_their_outcome_on_postgres() {
    turns_at_once_each_keep_their_outcome(TestDb::postgres().await).await;
}

/// A SQLite file locked by another process for longer than the timeout: turns queued for
/// the writer meanwhile fail within about one timeout (not one after another, each waiting
/// its own), and none of them is written once the lock is gone.
#[tokio::test]
async fn turns_queued_behind_a_locked_sqlite_file_fail_together_and_are_not_written_later() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let timeout = std::time::Duration::from_millis(500);
    let store = Store::connect_with_timeout(&db.url, timeout).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE; UPDATE sessions SET updated_at = 0")
        .execute(&mut other)
        .await
        .unwrap();

    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = store.clone();
        set.spawn(async move {
            let id = format!("locked-{i}");
            s.save_turn(&turn(&id, "{}", None, "一")).await
        });
    }
    // with every turn waiting out its own busy timeout in turn, this would take 20 of them
    let all = tokio::time::timeout(timeout * 8, async {
        let mut outcomes = Vec::new();
        while let Some(joined) = set.join_next().await {
            outcomes.push(joined.unwrap());
        }
        outcomes
    })
    .await
    .expect("the queued turns fail together, not one timeout after another");
    assert_eq!(all.len(), 20);
    for outcome in &all {
        assert!(
            matches!(outcome, Err(StoreError::Db(_) | StoreError::Timeout(_))),
            "{outcome:?}"
        );
    }

    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    store
        .save_turn(&turn("after", "{}", None, "一"))
        .await
        .unwrap();
    assert_eq!(store.count("sessions").await.unwrap(), 1);
    assert_eq!(store.count("transcripts").await.unwrap(), 2);
}
