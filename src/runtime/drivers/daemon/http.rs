//! The daemon's HTTP endpoints and the listener that serves them.
//!
//! - `/metrics`: the Prometheus text format.
//! - `/healthz` (liveness): the event loop is making progress, and no pass over the
//!   targets has outlived its deadline. A stuck pass fails it; slow AWS does not.
//! - `/readyz` (readiness): the last passes informed at least one target (its config
//!   and metrics were read). It drops to 503 after `UNREADY_AFTER_PASSES` passes in a
//!   row that informed none, and recovers with the first that informs one. A standby
//!   (with `[leader]`) is ready while the lease store answers: it could take over.
//! - `/status` (`?target=`, `?offset=`): every decided target's latest evaluation as
//!   JSON, in config order, at most `activity::MAX_PAGE` targets per answer, projected
//!   from the shards' state when asked.
//! - `/activities` (`?target=`, `?since=` RFC 3339, `?limit=`): the history of changes,
//!   newest first, at most `activity::MAX_PAGE`.
//!
//! The listener is built for probes that must answer while something misbehaves: an
//! idle limit before the first byte, a deadline for the whole request head after it,
//! one request per connection, a cap on open connections, and small request heads. At
//! the cap, the oldest connection whose request head is not read whole yet (an idle or
//! a slow client) is closed to make room, so neither idle nor slow clients can starve
//! a probe; closed and refused connections are counted
//! (`pc_autoscaler_http_connections_dropped_total{reason}`). It
//! serves only reads; it must never await AWS, and it holds a shard's lock only to
//! render one chunk of a scrape or one page of `/status`.
//!
//! `/metrics` streams: the registry's bounded families, the shard totals, then each
//! per-target family, a chunk of [`SCRAPE_CHUNK_TARGETS`] targets at a time under the
//! shard's lock, so a scrape allocates its own text a chunk at a time and the loop
//! waits at most one chunk for it.
//!
//! What it must not do: await AWS, change a shard, or hold a shard's lock longer than
//! one chunk of a scrape or one page of `/status`.

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

use super::{LiveShards, SharedShard};
use crate::metrics::Metrics;
use crate::runtime::state::activity::{MAX_PAGE, SharedJournal};

/// Open connections at most; past it the oldest one still waiting for its request
/// head is closed.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// From its first byte, a client has this long to send its whole request head: a
/// probe sends it in one packet; a client that sends a byte at a time cannot hold a
/// slot longer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection lives this long at most, whatever it does.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);
/// Request heads larger than this are refused (hyper's smallest buffer).
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
/// How long the loop may go without turning before liveness fails. It turns at least
/// once a second (its heartbeat timer), so this only trips when it is blocked.
pub const LOOP_STALL_LIMIT: Duration = Duration::from_secs(10);

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

    /// How long the process has run (virtual under `tokio::time::pause`).
    pub fn uptime(&self) -> Duration {
        self.origin.elapsed()
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

/// What the endpoints read.
#[derive(Clone)]
pub struct View {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub journal: SharedJournal,
    pub in_force: LiveShards,
}

pub fn router(view: View) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/activities", get(activities))
        .with_state(view)
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

async fn status(State(shared): State<View>, uri: axum::http::Uri) -> axum::response::Response {
    let target = query_value(&uri, "target");
    let offset = match query_value(&uri, "offset").map(|text| text.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return bad_request("offset must be a whole number\n".into()),
    };
    let mut targets = statuses(&shared.in_force, target.as_deref(), offset);
    // Each shard's page is projected under its lock; the newest activities after it.
    {
        let journal = shared.journal.lock();
        for status in &mut targets {
            status.last_activity = journal.newest(&status.target).map(Box::new);
        }
    }
    let more = targets.len() == MAX_PAGE;
    json(&serde_json::json!({
        "targets": targets,
        "next_offset": more.then_some(offset + MAX_PAGE),
        "shards_held": shared.in_force.held(),
        "cloudwatch": shared.metrics.cloudwatch_bill(shared.health.uptime()),
    }))
}

/// A page of every shard's decided targets, in shard and config order.
fn statuses(
    in_force: &LiveShards,
    target: Option<&str>,
    mut offset: usize,
) -> Vec<crate::runtime::state::activity::TargetStatus> {
    let mut page = Vec::new();
    for shard in in_force.shards() {
        let shard = shard.lock();
        let decided = shard.decided(target);
        if offset >= decided {
            offset -= decided;
            continue;
        }
        page.extend(shard.statuses(target, offset, MAX_PAGE - page.len()));
        offset = 0;
        if page.len() == MAX_PAGE {
            break;
        }
    }
    page
}

async fn activities(State(shared): State<View>, uri: axum::http::Uri) -> axum::response::Response {
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

async fn metrics_page(State(shared): State<View>) -> impl IntoResponse {
    let body = Scrape::new(&shared);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        axum::body::Body::new(body),
    )
}

/// The whole of `/metrics` as one text, for tests.
#[cfg(test)]
pub fn scrape_text(view: &View) -> String {
    let mut scrape = Scrape::new(view);
    let mut text = Vec::new();
    while let Some(chunk) = scrape.next_chunk() {
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).expect("the text format is UTF-8")
}

/// One target's `/status`, as the endpoint shows it, for tests.
#[cfg(test)]
pub fn status_of(
    view: &View,
    target: &str,
) -> Option<crate::runtime::state::activity::TargetStatus> {
    let mut found = statuses(&view.in_force, Some(target), 0).pop()?;
    found.last_activity = view.journal.lock().newest(target).map(Box::new);
    Some(found)
}

/// Targets per chunk of a scrape: one chunk is rendered under a shard's lock.
pub const SCRAPE_CHUNK_TARGETS: usize = 250;

/// Where a scrape stands.
#[derive(Debug, Clone, Copy)]
enum Step {
    Registry,
    Totals,
    /// Family `family`, from target `position` of shard `shard`, within the
    /// generation of targets it started in (`None`: not started on this shard).
    Family {
        family: usize,
        shard: usize,
        position: usize,
        generation: Option<u64>,
    },
    Done,
}

/// `/metrics` as a body that renders each chunk when hyper asks for it, into one
/// buffer that is reused: a scrape allocates its text once, as the chunks sent, plus
/// that buffer.
struct Scrape {
    metrics: Arc<Metrics>,
    shards: Vec<SharedShard>,
    step: Step,
    buffer: String,
}

impl Scrape {
    fn new(view: &View) -> Self {
        Scrape {
            metrics: view.metrics.clone(),
            shards: view.in_force.shards(),
            step: Step::Registry,
            buffer: String::new(),
        }
    }

    /// The next chunk of text; `None` at the end. It is rendered into the one buffer
    /// and sent as a copy of exactly its length: a grown string would hold up to
    /// twice its text.
    fn next_chunk(&mut self) -> Option<bytes::Bytes> {
        let mut out = std::mem::take(&mut self.buffer);
        out.clear();
        self.render_step(&mut out)?;
        let chunk = bytes::Bytes::copy_from_slice(out.as_bytes());
        self.buffer = out;
        Some(chunk)
    }

    /// Renders the step the scrape is at into `out` and moves on; `None` at the end.
    fn render_step(&mut self, out: &mut String) -> Option<()> {
        match self.step {
            Step::Registry => {
                self.metrics.render_registry(out);
                self.step = Step::Totals;
            }
            Step::Totals => {
                let mut totals = crate::metrics::ShardTotals::default();
                for shard in &self.shards {
                    totals += shard.lock().totals();
                }
                crate::metrics::render_shard_totals(totals, out);
                self.step = Step::Family {
                    family: 0,
                    shard: 0,
                    position: 0,
                    generation: None,
                };
            }
            Step::Family {
                family,
                shard,
                position,
                generation,
            } => self.step = self.family_chunk(out, (family, shard, position, generation)),
            Step::Done => return None,
        }
        Some(())
    }

    fn family_chunk(
        &self,
        out: &mut String,
        (family, shard, position, generation): (usize, usize, usize, Option<u64>),
    ) -> Step {
        let Some(definition) = crate::metrics::FAMILIES.get(family) else {
            return Step::Done;
        };
        if shard == 0 && position == 0 {
            definition.header(out);
        }
        let next_family = Step::Family {
            family: family + 1,
            shard: 0,
            position: 0,
            generation: None,
        };
        let Some(core) = self.shards.get(shard) else {
            return next_family;
        };
        let next_shard = Step::Family {
            family,
            shard: shard + 1,
            position: 0,
            generation: None,
        };
        let core = core.lock();
        let rows: &dyn crate::metrics::TargetRows = &*core;
        // A reload between two chunks: the rest of this family is left out of this
        // scrape for the shard rather than risk a target twice.
        if generation.is_some_and(|generation| generation != rows.generation()) {
            return next_shard;
        }
        let end = (position + SCRAPE_CHUNK_TARGETS).min(rows.len());
        crate::metrics::per_target::render_rows(definition, rows, position..end, out);
        if end >= rows.len() {
            return next_shard;
        }
        Step::Family {
            family,
            shard,
            position: end,
            generation: Some(rows.generation()),
        }
    }
}

impl http_body::Body for Scrape {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        // Empty chunks (a family with no samples in one shard) are not sent.
        loop {
            match self.next_chunk() {
                None => return std::task::Poll::Ready(None),
                Some(chunk) if chunk.is_empty() => continue,
                Some(chunk) => {
                    return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))));
                }
            }
        }
    }
}

async fn healthz(State(shared): State<View>) -> impl IntoResponse {
    match shared.health.not_alive() {
        None => (StatusCode::OK, "ok\n"),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(shared): State<View>) -> impl IntoResponse {
    let held = match shared.in_force.held() {
        None => String::new(),
        Some(held) if held.is_empty() => "shards held: none\n".to_owned(),
        Some(held) => format!("shards held: {}\n", held.join(", ")),
    };
    if shared.health.ready() {
        (StatusCode::OK, format!("ready\n{held}"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: no recent pass could read any target (see pc_autoscaler_passes_total and the log)\n{held}"
            ),
        )
    }
}

/// Connections whose request head has not been read whole yet (idle, or sending
/// slowly), oldest first: the ones to close when the cap is reached.
type Waiting = Arc<Mutex<VecDeque<(u64, AbortHandle)>>>;

/// Counts a connection as open, and as waiting until its request head is read; both
/// undone on drop, which also runs when the connection's task is aborted.
struct Open {
    id: u64,
    open: Arc<AtomicUsize>,
    waiting: Waiting,
}

impl Open {
    /// Its request head is read: it is served, and no longer the first to go.
    fn served(&self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|(id, _)| *id != self.id);
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.served();
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then closes every
/// connection. At [`MAX_CONNECTIONS`], a new connection closes the oldest one still
/// waiting for its request head (a slow or idle client); when every one is being
/// served, the new one is refused. Both are counted in `metrics`.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let waiting: Waiting = Arc::default();
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
                if open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let closed = close_oldest_waiting(&waiting);
                    let reason = if closed { "evicted" } else { "refused" };
                    metrics.http_connections_dropped.with_label_values(&[reason]).inc();
                    if !closed {
                        // Every slot serves a request right now: refuse this one.
                        drop(stream);
                        continue;
                    }
                }
                next_id += 1;
                open.fetch_add(1, Ordering::Relaxed);
                let guard = Open { id: next_id, open: open.clone(), waiting: waiting.clone() };
                // Queued under the lock, before the task can take itself off the queue.
                let mut queue = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                let handle = connections.spawn(serve_connection(stream, router.clone(), guard));
                queue.push_back((next_id, handle));
            }
        }
    }
    connections.shutdown().await;
}

/// Closes the oldest connection still waiting for its request head; false when there
/// is none.
fn close_oldest_waiting(waiting: &Waiting) -> bool {
    let oldest = waiting
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
    // Nothing at all within the idle limit: closed.
    let mut first = [0u8; 1];
    match tokio::time::timeout(IDLE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(read)) if read > 0 => {}
        _ => return,
    }
    // From the first byte, the whole head within `HEADER_READ_TIMEOUT`.
    let guard = Arc::new(guard);
    let watched = HeadWatch {
        inner: stream,
        tail: [0; 3],
        guard: Some(guard.clone()),
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .serve_connection(TokioIo::new(watched), TowerToHyperService::new(router));
    let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
    drop(guard);
}

/// A stream that tells its connection's [`Open`] when the request head has been read
/// whole (the blank line after the headers), so the connection stops being the first
/// to go when the cap is reached.
struct HeadWatch {
    inner: TcpStream,
    /// The last three bytes read, to find a `\r\n\r\n` split across reads.
    tail: [u8; 3],
    guard: Option<Arc<Open>>,
}

impl tokio::io::AsyncRead for HeadWatch {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(context, buf);
        if self.guard.is_some() {
            let mut seen = self.tail.to_vec();
            seen.extend_from_slice(&buf.filled()[before..]);
            if seen.windows(4).any(|window| window == b"\r\n\r\n") {
                if let Some(guard) = self.guard.take() {
                    guard.served();
                }
            } else if seen.len() >= 3 {
                let start = seen.len() - 3;
                self.tail.copy_from_slice(&seen[start..]);
            }
        }
        polled
    }
}

impl tokio::io::AsyncWrite for HeadWatch {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(context, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(context)
    }
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

    fn view_of(shard: crate::runtime::shard::Shard) -> View {
        let in_force = LiveShards::default();
        in_force.set(vec![SharedShard::new(shard)]);
        View {
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new()),
            journal: SharedJournal::default(),
            in_force,
        }
    }

    /// Bytes the scrape allocated while it was drained (not the test's copy of its
    /// text), and its text.
    fn scrape_measured(view: &View) -> (usize, Vec<u8>) {
        let mut scrape = Scrape::new(view);
        let (mut allocated, mut text) = (0, Vec::new());
        loop {
            let before = crate::test_alloc::allocated();
            let chunk = scrape.next_chunk();
            allocated += crate::test_alloc::allocated() - before;
            match chunk {
                Some(chunk) => text.extend_from_slice(&chunk),
                None => return (allocated, text),
            }
        }
    }

    #[test]
    fn a_scrape_allocates_its_own_text_and_a_bounded_rest_whatever_the_targets() {
        let (small_allocated, small_text) =
            scrape_measured(&view_of(crate::runtime::shard::tests::decided_shard(250)));
        let (allocated, text) =
            scrape_measured(&view_of(crate::runtime::shard::tests::decided_shard(2_500)));
        let beyond = |allocated: usize, text: &[u8]| allocated.saturating_sub(text.len());
        // What is allocated besides the text: the chunk buffer and the registry's
        // bounded families; it does not grow with the targets.
        let rest = beyond(allocated, &text);
        eprintln!(
            "scrape of 5,000 targets: {} B of text, {allocated} B allocated; 500 targets: {} B, {small_allocated} B",
            text.len(),
            small_text.len()
        );
        assert!(
            rest <= beyond(small_allocated, &small_text) + 256 * 1024,
            "5,000 targets: {allocated} B allocated for {} B of text; 500: {small_allocated} for {}",
            text.len(),
            small_text.len()
        );
        assert!(rest <= 1024 * 1024, "{rest} B beyond the text");
        let text = String::from_utf8(text).expect("UTF-8");
        assert!(text.contains("pc_autoscaler_target_desired_capacity{target=\"fn2499:7\"} 5\n"));
        assert_eq!(
            text.matches("pc_autoscaler_scaling_actions_total{").count(),
            5_000 * 2 * crate::policy::TRIGGERS.len(),
            "every counter reads 0 for every target"
        );
    }

    #[test]
    fn every_family_is_announced_before_any_target_is_known() {
        let text = scrape_text(&view_of(crate::runtime::shard::Shard::new(
            Default::default(),
            0,
            1,
        )));
        for family in &crate::metrics::FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {} ", family.name)),
                "{}",
                family.name
            );
        }
        assert!(text.contains("pc_autoscaler_targets_unknown 0\n"));
        assert!(text.contains("# TYPE pc_autoscaler_passes_total counter\n"));
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
