//! Fresh databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL schema on
//! the local server (127.0.0.1:5432, database `test`). In CI the PostgreSQL tests must run:
//! a missing server is a failure, not a skip.

use sqlx::Connection;

/// The PostgreSQL server the tests use (override with YIDI_TEST_PG).
pub fn pg_base() -> String {
    std::env::var("YIDI_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database URL and what keeps it alive.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("yidi.db").display());
        TestDb {
            url,
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A new, empty schema in the `test` database; dropped when the value is dropped.
    pub async fn postgres() -> TestDb {
        let schema = format!(
            "t_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000_000
        );
        let mut conn = sqlx::PgConnection::connect(&pg_base())
            .await
            .expect("PostgreSQL must run on 127.0.0.1:5432 for the tests (database `test`)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = format!("{}?options=-c%20search_path%3D{schema}", pg_base());
        TestDb {
            url,
            _dir: None,
            schema: Some(schema),
        }
    }

    pub fn postgres_blocking() -> TestDb {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(TestDb::postgres())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            // best effort, on a runtime of its own (Drop may run outside one)
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&pg_base()).await.ok()?;
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}
