//! `yidi chat --json --session ID` across process restarts, on SQLite and PostgreSQL.

use crate::db::TestDb;
use crate::helpers::*;

fn chat(db: &TestDb, session: &str, input: &str) -> Vec<serde_json::Value> {
    json_lines(&yidi(
        &[
            "chat",
            "--json",
            "--session",
            session,
            "--database-url",
            &db.url,
        ],
        input,
    ))
}

fn continues_after_a_restart(db: &TestDb) {
    // first process: a rich first message, then one answer; then the process ends
    let first = chat(
        db,
        "caller-1",
        "我是苏州的退休职工，搬去上海跟儿子住，住院花了五万，能报多少？\n三级医院\n",
    );
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["dialog"], "estimate");
    assert_eq!(first[1]["asking"], "filed", "{}", first[1]);

    // a new process continues at the same step with the same slots
    let second = chat(db, "caller-1", "办好了\n不清楚\n不清楚\n");
    assert_eq!(second[0]["asking"], "self_pay", "{}", second[0]);
    assert_eq!(second[1]["asking"], "admissions_before", "{}", second[1]);
    assert!(second[2]["estimate"].is_object(), "{}", second[2]);
    assert_eq!(
        second[2]["estimate"]["patient_pays"]
            .as_str()
            .map(|s| s.contains('.')),
        Some(true)
    );

    // another session id is a separate conversation
    let other = chat(db, "caller-2", "三级医院\n");
    assert!(
        other[0]["asking"].is_null(),
        "a new session is not in a dialog: {}",
        other[0]
    );
}

#[test]
fn chat_session_continues_after_restart_on_sqlite() {
    continues_after_a_restart(&TestDb::sqlite());
}

#[test]
fn chat_session_continues_after_restart_on_postgres() {
    continues_after_a_restart(&TestDb::postgres_blocking());
}

#[test]
fn a_corrupted_session_row_gets_a_fresh_start_and_a_note() {
    let db = TestDb::sqlite();
    let first = chat(&db, "s", "备案材料清单\n");
    assert_eq!(first[0]["asking"], "insured_region");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = yidi::store::Store::connect(&db.url).await.unwrap();
        let stored = store.caller_session_id("s");
        store.write_raw_state(&stored, "{not json").await.unwrap();
    });
    let after = chat(&db, "s", "起付线是什么\n苏州\n");
    assert!(
        after[0]["text"].as_str().unwrap().contains("无法读取"),
        "{}",
        after[0]
    );
    assert_eq!(after[0]["faq"]["id"], "deductible");
    assert!(
        after[1]["asking"].is_null(),
        "the old dialog is gone: {}",
        after[1]
    );
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = yidi(
        &["chat", "--session", "x", "--database-url", "mysql://nope"],
        "你好\n",
    );
    assert_eq!(out.status.code(), Some(2), "a wrong URL is a usage error");
    // the scheme is named; the rest of a URL (which may hold a password) is not echoed
    assert!(stderr(&out).contains("`mysql`"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn a_session_id_given_on_the_command_line_is_never_stored_as_written() {
    let db = TestDb::sqlite();
    let first = chat(&db, "13912345678", "备案材料清单\n");
    assert_eq!(first[0]["asking"], "insured_region");
    let second = chat(&db, "13912345678", "苏州\n");
    assert!(
        second[0]["asking"].is_string(),
        "it continues: {}",
        second[0]
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let mut ids = Vec::new();
        for sql in [
            "SELECT id FROM sessions",
            "SELECT DISTINCT session_id FROM transcripts",
        ] {
            for row in sqlx::query(sql).fetch_all(&pool).await.unwrap() {
                ids.push(row.get::<String, _>(0));
            }
        }
        ids
    });
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in ids {
        assert!(id.starts_with("c-") && !id.contains("1391234"), "{id}");
    }
}
