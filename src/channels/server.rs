//! The HTTP/1.1 server under every router of `yidi serve` (the API with the console and the
//! WeChat endpoint, the separate `/metrics` listener): its own accept loop over hyper, so
//! that connections, not only requests, have limits.
//!
//! - **Headers**: a connection must send a request's complete headers within
//!   `header_timeout_secs` of opening or of the previous response (hyper's header-read timer
//!   runs while a keep-alive connection waits, so it is also the idle timeout).
//! - **Bodies**: a request's body must arrive within `body_timeout_secs` of its headers plus
//!   one second for every `body_min_bytes_per_sec` bytes received (a floor on the sending
//!   rate, as Apache's mod_reqtimeout has). A body that falls behind is answered 408 at once
//!   and its connection closed, whatever the route was doing with it.
//! - **The cap**: at most `max_connections` connections at once. At the cap, the *slowest*
//!   connection that is not being answered (idle, still sending its headers, or still sending
//!   its body), by bytes received per second since it opened, is closed to make room;
//!   connections younger than [`EVICT_MIN_AGE`] are spared, so a newcomer that has not had
//!   time to send anything is never the one closed. When every connection is being answered,
//!   up to `probe_connections` more are accepted for health checks: they serve `/healthz` and
//!   `/readyz` only (anything else gets 503 `server_busy` with `Retry-After`), one request
//!   each, whose headers must come within two seconds. Beyond that, connections wait in the
//!   listen backlog.
//! - **Shutdown**: the listener closes; idle connections close at once; a request still
//!   sending its body gets `body_timeout_secs` more to complete it (however fast it had been
//!   sending), then its connection closes; requests being answered finish.
//!
//! Each request carries the peer address as [`ConnectInfo`] (for the per-IP limit).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};

use super::api::ErrorBody;

/// Connections younger than this are never closed to make room: long enough for a client
/// to send its request's first bytes, short enough that a flood of new silent connections
/// cannot hold the cap (at the cap, connections can be turned over `max_connections` at a
/// time every this long).
pub const EVICT_MIN_AGE: Duration = Duration::from_millis(100);

/// How often the accept loop, waiting at the cap, looks again for a connection to close.
const EVICT_RETRY: Duration = Duration::from_millis(25);

/// How long a connection kept for health checks waits for its request's headers.
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes a connection kept for health checks serves.
pub const PROBE_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// Serves `router` on `listener` with the limits of `http` (see the module's documentation)
/// until `shutdown` completes; requests being answered then finish before this returns.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    http: crate::config::Http,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let max = http.max_connections.clamp(1, Semaphore::MAX_PERMITS / 2);
    let reserve = http.probe_connections.min(Semaphore::MAX_PERMITS / 2);
    let permits = Arc::new(Semaphore::new(max));
    let probe_permits = Arc::new(Semaphore::new(reserve));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_timeout_secs.max(1)));
    let builder = Arc::new(builder);
    // a health checker sends its request at once: the connections kept for them wait briefly
    let mut probe_builder = hyper::server::conn::http1::Builder::new();
    probe_builder
        .timer(TokioTimer::new())
        .keep_alive(false)
        .header_read_timeout(
            PROBE_HEADER_TIMEOUT.min(Duration::from_secs(http.header_timeout_secs.max(1))),
        );
    let probe_builder = Arc::new(probe_builder);
    let body_grace = Duration::from_secs(http.body_timeout_secs.max(1));
    let body_limits = BodyLimits {
        base: Duration::from_secs(http.body_timeout_secs.max(1)),
        bytes_per_sec: http.body_min_bytes_per_sec.max(1),
    };
    tokio::pin!(shutdown);
    let open: Arc<Mutex<VecDeque<Arc<OpenConn>>>> = Arc::default();
    let mut next_id = 0u64;
    loop {
        // a place for the next connection: a free one, one made by closing the slowest
        // connection not being answered, or one kept for health checks
        let slot = loop {
            if let Ok(p) = permits.clone().try_acquire_owned() {
                break Some(Slot::Main(p));
            }
            let evicted = evict_slowest(&open);
            tokio::select! {
                () = &mut shutdown => break None,
                p = permits.clone().acquire_owned() => break p.ok().map(Slot::Main),
                p = probe_permits.clone().acquire_owned(), if !evicted => {
                    break p.ok().map(Slot::Probe)
                }
                // connections grow old enough to be closed, or slower than others: look again
                () = tokio::time::sleep(EVICT_RETRY), if !evicted => {}
            }
        };
        let Some(slot) = slot else {
            break;
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of file descriptors, a connection reset before accept: wait a little
                    crate::throttle::store_error(&e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Arc::new(OpenConn {
            id: next_id,
            opened: Instant::now(),
            received: Arc::new(AtomicU64::new(0)),
            in_flight: AtomicUsize::new(0),
            sending_body: Arc::new(AtomicUsize::new(0)),
            evict: Notify::new(),
        });
        let probe_only = matches!(slot, Slot::Probe(_));
        if !probe_only {
            open.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(conn.clone());
        }
        let service = {
            let conn = conn.clone();
            let router = router.clone();
            tower::service_fn(move |req: Request<hyper::body::Incoming>| {
                let conn = conn.clone();
                let router = router.clone();
                async move {
                    let _in_flight = InFlight::enter(&conn.in_flight);
                    Ok::<_, std::convert::Infallible>(
                        answer(router, req, peer, &conn, body_limits, probe_only).await,
                    )
                }
            })
        };
        let builder = if probe_only {
            probe_builder.clone()
        } else {
            builder.clone()
        };
        let mut stop = stop_rx.clone();
        let registry = open.clone();
        let io = TokioIo::new(Counted {
            inner: stream,
            received: conn.received.clone(),
        });
        tokio::spawn(async move {
            let _slot = slot;
            let served = builder.serve_connection(io, TowerToHyperService::new(service));
            tokio::pin!(served);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let finished = tokio::select! {
                r = served.as_mut() => Some(Some(r)),
                () = stopping => None,
                // closed to make room for a new connection
                () = conn.evict.notified() => Some(None),
            };
            let result = match finished {
                Some(Some(r)) => r,
                Some(None) => Ok(()),
                None => {
                    served.as_mut().graceful_shutdown();
                    let stopping_since = Instant::now();
                    loop {
                        tokio::select! {
                            r = served.as_mut() => break r,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {
                                // idle or half-sent headers: closed at once; a body still
                                // arriving gets `body_timeout_secs` to complete (its rate
                                // floor no longer extends that), then is closed
                                let idle = conn.in_flight.load(Ordering::SeqCst) == 0;
                                if !conn.answering()
                                    && (idle || stopping_since.elapsed() >= body_grace)
                                {
                                    break Ok(());
                                }
                            }
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|c| c.id != conn.id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // every connection gives its place back when it closes
    let _all = permits.acquire_many(max as u32).await;
    let _probes = probe_permits.acquire_many(reserve as u32).await;
    Ok(())
}

/// Where a connection was let in.
enum Slot {
    Main(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
    /// Beyond the cap, for health checks only.
    Probe(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
}

/// One request: its body under the deadline, then the router, unless the body falls behind
/// (408) or the connection is kept for health checks and this is not one (503).
async fn answer(
    router: Router,
    req: Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
    conn: &OpenConn,
    limits: BodyLimits,
    probe_only: bool,
) -> Response<Body> {
    use tower::ServiceExt;
    if probe_only && !PROBE_PATHS.contains(&req.uri().path()) {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "服务器正忙，请稍后再试。",
            Some(1),
        );
    }
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let late = Arc::new(Late::default());
    let body = DeadlineBody::new(body, limits, late.clone(), conn.sending_body.clone());
    let req = Request::from_parts(parts, Body::new(body));
    let answered = tokio::select! {
        r = router.oneshot(req) => match r {
            Ok(r) => Some(r),
            Err(never) => match never {},
        },
        () = late.notify.notified() => None,
    };
    // a route that saw the body fail may have answered first (400): the answer is 408
    let mut response = match answered {
        Some(r) if !late.flag.load(Ordering::SeqCst) => r,
        _ => {
            crate::throttle::refusal("a request body arrived too slowly; answered 408");
            refusal(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "请求内容发送得太慢，连接已关闭，请重新发送。",
                None,
            )
        }
    };
    if probe_only {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// An error answer of the server itself, in the API's shape, closing the connection.
fn refusal(
    status: StatusCode,
    code: &'static str,
    message: &str,
    retry_after: Option<u64>,
) -> Response<Body> {
    let body =
        serde_json::to_string(&ErrorBody::new(code, message.to_string(), None)).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// An open connection, as the accept loop sees it.
struct OpenConn {
    id: u64,
    opened: Instant,
    /// Bytes read from the client so far.
    received: Arc<AtomicU64>,
    /// Requests of it being handled (a request still sending its body included).
    in_flight: AtomicUsize,
    /// Requests of it whose bodies are still arriving.
    sending_body: Arc<AtomicUsize>,
    evict: Notify,
}

impl OpenConn {
    /// Whether a request of it is being answered (not merely still being sent).
    fn answering(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > self.sending_body.load(Ordering::SeqCst)
    }

    /// Bytes received per second since it opened.
    fn rate(&self, now: Instant) -> f64 {
        let secs = now.duration_since(self.opened).as_secs_f64().max(1e-3);
        self.received.load(Ordering::Relaxed) as f64 / secs
    }
}

/// Closes the slowest connection that is not being answered and is at least
/// [`EVICT_MIN_AGE`] old, if any; true when one was closed.
fn evict_slowest(open: &Mutex<VecDeque<Arc<OpenConn>>>) -> bool {
    let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let slowest = open
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.answering() && now.duration_since(c.opened) >= EVICT_MIN_AGE)
        // the oldest first among equals: min_by keeps the first of equal ones
        .min_by(|(_, a), (_, b)| a.rate(now).total_cmp(&b.rate(now)))
        .map(|(i, _)| i);
    match slowest.and_then(|i| open.remove(i)) {
        Some(c) => {
            tracing::debug!(
                bytes_per_sec = c.rate(now),
                "connection cap reached: closing the slowest connection not being answered"
            );
            c.evict.notify_one();
            true
        }
        None => false,
    }
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The client side of a connection, counting the bytes it sends.
struct Counted {
    inner: tokio::net::TcpStream,
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The body deadline's settings.
#[derive(Clone, Copy)]
struct BodyLimits {
    base: Duration,
    bytes_per_sec: u64,
}

/// Whether a request's body missed its deadline, and a wake-up when it does.
#[derive(Default)]
struct Late {
    flag: std::sync::atomic::AtomicBool,
    notify: Notify,
}

/// The error of a body that did not arrive in time.
#[derive(Debug)]
struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body arrived too slowly")
    }
}

impl std::error::Error for BodyTooSlow {}

/// A request body under its deadline: `base` after the headers plus one second per
/// `bytes_per_sec` bytes received. When it passes, reading fails and `late` is set (the
/// request is then answered 408). While the body is incomplete, the connection counts it in
/// `sending`.
struct DeadlineBody {
    inner: hyper::body::Incoming,
    started: tokio::time::Instant,
    received: u64,
    limits: BodyLimits,
    sleep: Pin<Box<tokio::time::Sleep>>,
    late: Arc<Late>,
    /// Counted in the connection's `sending_body` while `Some`.
    sending: Option<Arc<AtomicUsize>>,
}

impl DeadlineBody {
    fn new(
        inner: hyper::body::Incoming,
        limits: BodyLimits,
        late: Arc<Late>,
        sending: Arc<AtomicUsize>,
    ) -> DeadlineBody {
        use http_body::Body as _;
        let started = tokio::time::Instant::now();
        let sending = (!inner.is_end_stream()).then(|| {
            sending.fetch_add(1, Ordering::SeqCst);
            sending
        });
        DeadlineBody {
            inner,
            started,
            received: 0,
            limits,
            sleep: Box::pin(tokio::time::sleep_until(started + limits.base)),
            late,
            sending,
        }
    }

    /// The body is complete (or abandoned): no longer counted as being sent.
    fn done(&mut self) {
        if let Some(sending) = self.sending.take() {
            sending.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.sending.is_none() {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.done();
            this.late.flag.store(true, Ordering::SeqCst);
            this.late.notify.notify_one();
            return Poll::Ready(Some(Err(Box::new(BodyTooSlow))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let earned = Duration::from_secs_f64(
                        this.received as f64 / this.limits.bytes_per_sec as f64,
                    );
                    let deadline = this.started + this.limits.base + earned;
                    this.sleep.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.done();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.done();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
