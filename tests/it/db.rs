//! Fresh databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL schema in
//! the database `test` of the tests' PostgreSQL server. That server is `YIDI_TEST_PG` when
//! set; else the local one on 127.0.0.1:5432 when it answers (`YIDI_TEST_PG_DEFAULT` names
//! another to try first, e.g. an unreachable port to exercise the fallback); else a
//! throwaway server of this test run ([`Throwaway`]: `initdb` and `pg_ctl` in a temp dir on a
//! free port, Debian's postgresql installed by `.ci/install-postgres` when its programs are
//! missing), stopped when the test binary exits. A server that cannot be had is a failure,
//! not a skip.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::Connection;

/// The server tried before a throwaway one.
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server the tests use (see the module's documentation).
pub fn pg_base() -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Ok(url) = std::env::var("YIDI_TEST_PG") {
            return url;
        }
        let default = std::env::var("YIDI_TEST_PG_DEFAULT").unwrap_or_else(|_| DEFAULT_PG.into());
        if answers(&default) {
            return default;
        }
        eprintln!("no PostgreSQL server answers at {default}: starting a throwaway one");
        let server = Throwaway::start();
        let url = server.url.clone();
        // stopped when this process exits (by the watchdog the server was started with)
        std::mem::forget(server);
        url
    })
    .clone()
}

/// Whether something accepts connections at the host and port of `url`.
fn answers(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or("127.0.0.1");
    let port = u.port().unwrap_or(5432);
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// A PostgreSQL server of its own: a new cluster in a temp dir (trust authentication, user
/// `postgres`, database `test`), listening on 127.0.0.1 on a free port. Stopped, and its
/// folder removed, when dropped, or else when this process exits (a watchdog process
/// started with it waits for that).
pub struct Throwaway {
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
}

/// The folder of PostgreSQL's server programs (Debian's layout, the newest version).
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

/// Whether this process runs as root (initdb and pg_ctl refuse to).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program ARGS` as the user that owns the cluster: `postgres` when we are root.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Throwaway {
    /// Starts one (installing the server programs first when they are missing).
    pub fn start() -> Throwaway {
        let bin = pg_bin().unwrap_or_else(|| {
            let script = crate::helpers::repo().join(".ci/install-postgres");
            run(Command::new("bash").arg(&script), ".ci/install-postgres");
            pg_bin().expect("PostgreSQL's programs after .ci/install-postgres")
        });
        let dir = tempfile::Builder::new()
            .prefix("yidi-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown",
            );
        }
        let data = dir.join("data");
        run(
            as_owner(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
            "initdb",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            dir.display()
        );
        run(
            as_owner(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(dir.join("log"))
                .args(["-w", "start"]),
            "pg_ctl start",
        );
        // the watchdog: stops the server and removes its folder once this process is gone
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = if is_root() {
                format!("runuser -u postgres -- '{}'", bin.join("pg_ctl").display())
            } else {
                format!("'{}'", bin.join("pg_ctl").display())
            },
            data = data.display(),
            dir = dir.display(),
        );
        {
            use std::os::unix::process::CommandExt;
            // it outlives this process by design: nothing here waits for it
            #[allow(clippy::zombie_processes)]
            Command::new("sh")
                .args(["-c", &script])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the throwaway server's watchdog starts");
        }
        run(
            as_owner(&bin.join("createdb")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "test",
            ]),
            "createdb test",
        );
        Throwaway {
            url: format!("postgres://postgres@127.0.0.1:{port}/test"),
            port,
            dir,
            bin,
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
            .unwrap_or_else(|e| panic!("the tests' PostgreSQL server {}: {e}", pg_base()));
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

/// Issue 23 (first contact, item 5): on a machine without a PostgreSQL server the tests start
/// their own. Exercised here whatever the machine has: a throwaway server starts, the store
/// migrates and saves a turn in it, and it is gone (port closed, folder removed) once dropped.
#[tokio::test]
async fn a_throwaway_server_serves_the_store_and_goes_away() {
    let server = tokio::task::spawn_blocking(Throwaway::start).await.unwrap();
    let store = yidi::store::Store::connect(&server.url).await.unwrap();
    let turn = yidi::store::TurnRecord {
        session_id: "throwaway",
        state: "{}",
        expected_revision: None,
        user_text: "起付线是什么",
        reply_text: "……",
        faq_id: None,
        dialog: None,
        kind: "faq",
        unanswered: false,
        request: None,
        channel: None,
    };
    store.save_turn(&turn).await.unwrap();
    assert_eq!(store.transcript("throwaway").await.unwrap().len(), 2);
    store.close().await;
    let (port, dir) = (server.port, server.dir.clone());
    assert!(answers(&server.url));
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
    assert!(!answers(&format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    )));
    assert!(!dir.exists(), "{}", dir.display());
}
