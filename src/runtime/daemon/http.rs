//! The daemon's HTTP endpoints and the listener that serves them.
//!
//! - `/metrics`: the Prometheus text format.
//! - `/healthz` (liveness): the event loop is making progress, and no pass over the
//!   targets has outlived its deadline. A stuck pass fails it; slow AWS does not.
//! - `/readyz` (readiness): the last passes informed at least one target (its config
//!   and metrics were read). It drops to 503 after `UNREADY_AFTER_PASSES` passes in a
//!   row that informed none, and recovers with the first that informs one. A standby
//!   (with `[leader]`) is ready while the lease store answers: it could take over.
//! - `/status` (`?target=`, `?offset=`): every target's latest evaluation as JSON, at
//!   most `activity::MAX_PAGE` targets per answer.
//! - `/activities` (`?target=`, `?since=` RFC 3339, `?limit=`): the history of changes,
//!   newest first, at most `activity::MAX_PAGE`.
//!
//! The listener is built for probes that must answer while something misbehaves: a
//! header-read timeout, one request per connection, a cap on open connections, and
//! small request heads. At the cap, the oldest connection that has not sent a byte
//! is closed to make room, so idle or half-open clients cannot starve a probe. It
//! serves only reads; it must never hold a lock of the loop's or await AWS.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use crate::metrics::Metrics;
use crate::runtime::activity::{MAX_PAGE, SharedJournal};

/// Open connections at most; past it the oldest idle one is closed.
pub const MAX_CONNECTIONS: usize = 32;
/// A client has this long to send its whole request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection lives this long at most, whatever it does.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Request heads larger than this are refused (hyper's smallest buffer).
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// How long the loop may go without turning before liveness fails. It turns at least
/// once a second (its heartbeat timer), so this only trips when it is blocked.
pub const LOOP_STALL_LIMIT: Duration = Duration::from_secs(10);
/// Passes in a row that inform no target before `/readyz` says 503.
pub const UNREADY_AFTER_PASSES: u32 = 3;

/// What the endpoints report; the loop updates it.
pub struct Health {
    /// Monotonic, not the wall clock: a clock step must not fail liveness. Virtual
    /// under `tokio::time::pause`.
    origin: tokio::time::Instant,
    /// Milliseconds after `origin` of the loop's last turn.
    loop_turned_ms: AtomicI64,
    /// Milliseconds after `origin` at which the running pass must end; `i64::MAX`
    /// when none runs.
    pass_due_ms: AtomicI64,
    ready: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            loop_turned_ms: AtomicI64::new(0),
            pass_due_ms: AtomicI64::new(i64::MAX),
            ready: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    pub fn loop_turned(&self) {
        self.loop_turned_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    pub fn pass_started(&self, deadline: Duration) {
        let due = self
            .now_ms()
            .saturating_add(i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX));
        self.pass_due_ms.store(due, Ordering::Relaxed);
    }

    pub fn pass_ended(&self) {
        self.pass_due_ms.store(i64::MAX, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// `None` when alive; otherwise why not.
    pub fn not_alive(&self) -> Option<&'static str> {
        let now = self.now_ms();
        let stall_limit = i64::try_from(LOOP_STALL_LIMIT.as_millis()).unwrap_or(i64::MAX);
        if now - self.loop_turned_ms.load(Ordering::Relaxed) > stall_limit {
            return Some("the event loop has not turned for 10 s\n");
        }
        let due = self.pass_due_ms.load(Ordering::Relaxed);
        if now > due {
            return Some("a pass over the targets has outlived its deadline\n");
        }
        None
    }

    pub fn alive(&self) -> bool {
        self.not_alive().is_none()
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    journal: SharedJournal,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>, journal: SharedJournal) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/activities", get(activities))
        .with_state(Shared {
            metrics,
            health,
            journal,
        })
}

/// The value of `key` in a query string, percent-decoded.
fn query_value(uri: &axum::http::Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name == key).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|byte| (*byte as char).to_digit(16));
        match bytes[index] {
            b'%' if hex(index + 1).is_some() && hex(index + 2).is_some() => {
                let (high, low) = (hex(index + 1).unwrap_or(0), hex(index + 2).unwrap_or(0));
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(value: &serde_json::Value) -> axum::response::Response {
    (
        [(CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).unwrap_or_default(),
    )
        .into_response()
}

fn bad_request(why: String) -> axum::response::Response {
    (StatusCode::BAD_REQUEST, why).into_response()
}

async fn status(State(shared): State<Shared>, uri: axum::http::Uri) -> axum::response::Response {
    let target = query_value(&uri, "target");
    let offset = match query_value(&uri, "offset").map(|text| text.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return bad_request("offset must be a whole number\n".into()),
    };
    // Copied out under the lock, serialized after it.
    let targets = shared.journal.lock().statuses(target.as_deref(), offset);
    let more = targets.len() == MAX_PAGE;
    json(&serde_json::json!({
        "targets": targets,
        "next_offset": more.then_some(offset + MAX_PAGE),
    }))
}

async fn activities(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    let target = query_value(&uri, "target");
    let since = match query_value(&uri, "since") {
        None => None,
        Some(text) => match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(since) => Some(since.with_timezone(&chrono::Utc)),
            Err(error) => {
                return bad_request(format!(
                    "since must be an RFC 3339 time such as 2026-11-24T08:00:00Z: {error}\n"
                ));
            }
        },
    };
    let limit = match query_value(&uri, "limit").map(|text| text.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(limit)) => limit,
        Some(Err(_)) => return bad_request("limit must be a whole number\n".into()),
    };
    let found = shared
        .journal
        .lock()
        .activities(target.as_deref(), since, limit);
    json(&serde_json::json!({ "activities": found }))
}

async fn metrics_page(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.render(),
    )
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.health.not_alive() {
        None => (StatusCode::OK, "ok\n"),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.health.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no recent pass could read any target (see pc_autoscaler_passes_total and the log)\n",
        )
    }
}

/// Connections that have not sent a byte yet, oldest first: the ones to close when
/// the cap is reached.
type IdleQueue = Arc<Mutex<VecDeque<(u64, AbortHandle)>>>;

/// Counts a connection as open, and as idle until it sends; both undone on drop,
/// which also runs when the connection's task is aborted.
struct Open {
    id: u64,
    open: Arc<AtomicUsize>,
    idle: IdleQueue,
}

impl Open {
    fn not_idle(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain(|(id, _)| *id != self.id);
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.not_idle();
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then closes every
/// connection.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let idle: IdleQueue = Arc::default();
    let mut connections = JoinSet::new();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = connections.join_next() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, or a connection reset before accept:
                        // wait briefly rather than spin, then go on.
                        tracing::warn!(error = %error, "accepting an HTTP connection failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS && !close_oldest_idle(&idle) {
                    // Every slot serves a request right now: refuse this one.
                    drop(stream);
                    continue;
                }
                next_id += 1;
                open.fetch_add(1, Ordering::Relaxed);
                let guard = Open { id: next_id, open: open.clone(), idle: idle.clone() };
                // Queued under the lock, before the task can take itself off the queue.
                let mut queue = idle.lock().unwrap_or_else(PoisonError::into_inner);
                let handle = connections.spawn(serve_connection(stream, router.clone(), guard));
                queue.push_back((next_id, handle));
            }
        }
    }
    connections.shutdown().await;
}

/// Closes the oldest connection that has not sent anything; false when there is none.
fn close_oldest_idle(idle: &IdleQueue) -> bool {
    let oldest = idle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    match oldest {
        Some((_, handle)) => {
            handle.abort();
            true
        }
        None => false,
    }
}

async fn serve_connection(stream: TcpStream, router: axum::Router, guard: Open) {
    // Wait for the first byte before anything else: until then the connection is
    // idle, and the first to go when the cap is reached.
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(read)) if read > 0 => guard.not_idle(),
        _ => return,
    }
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
    drop(guard);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_past_its_deadline_is_not_alive_until_it_ends() {
        let health = Health::new();
        assert_eq!(health.not_alive(), None);
        health.pass_started(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            health.not_alive(),
            Some("a pass over the targets has outlived its deadline\n")
        );
        health.pass_ended();
        assert_eq!(health.not_alive(), None);
    }

    #[test]
    fn readiness_is_set_and_reset() {
        let health = Health::new();
        assert!(!health.ready());
        health.set_ready(true);
        assert!(health.ready());
        health.set_ready(false);
        assert!(!health.ready());
    }
}
