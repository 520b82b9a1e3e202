//! Issue 23, findings 2 and 3: clients that send their request bodies slowly, from many
//! addresses, against the real server (`http::serve_router` on 127.0.0.1:0, the real router,
//! a SQLite file): a body's own deadline (408), health checks that still pass when the
//! connection cap is full, the slowest connection closed first, and a shutdown that does not
//! wait for bodies still being sent. Client sockets are bound to 127.0.0.x addresses (all of
//! 127/8 is this machine) to come from many addresses, as in the review.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use yidi::channels::http::{self, AppState};
use yidi::config::{Http, Limits};
use yidi::conversation::Conversations;
use yidi::store::Store;

use crate::db::TestDb;
use crate::helpers::assistant;

/// Limits no client here reaches.
fn roomy() -> Limits {
    Limits {
        per_ip_per_minute: 100_000,
        per_ip_burst: 10_000,
        per_session_per_minute: 100_000,
        per_session_burst: 10_000,
        trust_forwarded_for: false,
    }
}

/// The API's router on a fresh SQLite database (kept alive by the returned value).
async fn api(http: &Http) -> (Router, TestDb) {
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    let state =
        AppState::from_conversations(Conversations::new(assistant(), store).with_limits(&roomy()))
            .with_http(http.clone());
    (http::app(state), db)
}

/// Serves `router` with `limits`; the server stops when the sender is dropped or sent to,
/// and the returned task ends when it has stopped.
async fn serve(
    router: Router,
    limits: Http,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        http::serve_router(listener, router, limits, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx, task)
}

/// A connection to `server` from 127.0.0.`host`.
async fn connect_from(host: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// A POST whose headers arrive at once and whose body of `length` bytes then trickles one
/// byte every `every`, in tasks of its own; the handle gives what the server answered by the
/// time it closed the connection (or the trickle ended). Dropping it does not stop it: abort.
async fn trickle(
    host: u8,
    server: SocketAddr,
    path: &str,
    length: usize,
    every: Duration,
) -> tokio::task::JoinHandle<String> {
    let stream = connect_from(host, server).await;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: yidi\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..length {
            tokio::time::sleep(every).await;
            if write.write_all(b" ").await.is_err() {
                break;
            }
        }
        write
    });
    tokio::spawn(async move {
        // read as it comes: a reset after the answer must not lose the answer
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        writer.abort();
        String::from_utf8_lossy(&answer).into_owned()
    })
}

/// `GET path` on a new connection from 127.0.0.1: the status, or `None` when no answer came
/// within `wait` (the probe of a health checker with its timeout).
async fn get(server: SocketAddr, path: &str, wait: Duration) -> Option<(u16, String)> {
    let attempt = async {
        let mut stream = connect_from(1, server).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: yidi\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        Some((status, answer))
    };
    tokio::time::timeout(wait, attempt).await.ok().flatten()
}

/// Of `n` health checks one after another (each with a 3-second timeout), how many got 200.
async fn probes(server: SocketAddr, n: usize) -> usize {
    let mut passed = 0;
    for _ in 0..n {
        if get(server, "/healthz", Duration::from_secs(3))
            .await
            .is_some_and(|(status, _)| status == 200)
        {
            passed += 1;
        }
    }
    passed
}

/// Finding 3: twice the connection cap of bodies trickled from different addresses. Before,
/// they held the cap for the whole request timeout and the eviction closed the newest
/// connections (the probes themselves): 18 of 36 probes passed in the review. Now the
/// slowest connections not being answered make room, and every probe passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_pass_while_slow_bodies_from_many_addresses_fill_the_cap() {
    let limits = Http {
        max_connections: 16,
        probe_connections: 4,
        // long enough that the bodies' own deadline does not clear them during the test:
        // the cap's eviction has to
        body_timeout_secs: 60,
        body_min_bytes_per_sec: 1,
        ..Http::default()
    };
    let (router, _db) = api(&limits).await;
    let (addr, _stop, _task) = serve(router, limits).await;
    let mut slow = Vec::new();
    for i in 0..32u8 {
        slow.push(
            trickle(
                2 + i,
                addr,
                "/v1/feedback",
                1_000,
                Duration::from_millis(700),
            )
            .await,
        );
    }
    // every trickling connection is older than the age that protects newcomers
    tokio::time::sleep(yidi::channels::server::EVICT_MIN_AGE + Duration::from_millis(500)).await;
    let passed = probes(addr, 9).await;
    eprintln!("health checks passed under slow bodies: {passed}/9");
    assert_eq!(passed, 9);
    for t in slow {
        t.abort();
    }
}

/// Finding 3: a body slower than the floor is answered 408 and its connection closed, long
/// before the request timeout.
#[tokio::test]
async fn a_body_slower_than_the_floor_gets_408_and_the_connection_closes() {
    let limits = Http {
        body_timeout_secs: 1,
        body_min_bytes_per_sec: 1_000,
        ..Http::default()
    };
    let (router, _db) = api(&limits).await;
    let (addr, _stop, _task) = serve(router, limits).await;
    let answer = trickle(2, addr, "/v1/feedback", 50, Duration::from_millis(300))
        .await
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // a body sent at a normal pace is unaffected
    let (status, answer) = get(addr, "/healthz", Duration::from_secs(3)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
}

/// When every connection of the cap is being answered, the connections kept for health
/// checks answer `/healthz` and refuse anything else with 503 and Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_is_being_answered_health_checks_still_pass() {
    let limits = Http {
        max_connections: 4,
        probe_connections: 2,
        ..Http::default()
    };
    let (router, _db) = api(&limits).await;
    // a route that keeps its connection busy being answered
    let router = router.merge(Router::new().route(
        "/test/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            "done"
        }),
    ));
    let (addr, _stop, _task) = serve(router, limits).await;
    let mut busy = Vec::new();
    for i in 0..4u8 {
        let mut stream = connect_from(2 + i, addr).await;
        stream
            .write_all(b"GET /test/slow HTTP/1.1\r\nHost: yidi\r\n\r\n")
            .await
            .unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(yidi::channels::server::EVICT_MIN_AGE + Duration::from_millis(300)).await;
    let (status, answer) = get(addr, "/healthz", Duration::from_secs(3)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(addr, "/v1/faq/search?q=备案", Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("\"server_busy\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    drop(busy);
}

/// Finding 2: at a shutdown, a request still sending its body gets `body_timeout_secs` to
/// complete it, however much its rate floor would still allow, and its connection is then
/// closed (before: the shutdown waited for such bodies until the request timeout, and `yidi
/// serve` gave up after its 20-second grace with exit status 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_does_not_wait_for_bodies_still_being_sent() {
    let limits = Http {
        // the rate floor would let these bodies go on for a quarter of an hour
        body_timeout_secs: 2,
        body_min_bytes_per_sec: 1,
        ..Http::default()
    };
    let (router, _db) = api(&limits).await;
    let (addr, stop, task) = serve(router, limits).await;
    let mut slow = Vec::new();
    for i in 0..8u8 {
        slow.push(
            trickle(
                2 + i,
                addr,
                "/v1/feedback",
                1_000,
                Duration::from_millis(500),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).unwrap();
    // a bound for the test not to hang, far above what the shutdown takes
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stopped without waiting for the slow bodies")
        .unwrap();
    for t in slow {
        t.abort();
    }
}
