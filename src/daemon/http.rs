//! The daemon's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` (the
//! loop is alive: it ticked within three intervals) and `/readyz` (the configuration is
//! loaded and the first evaluation has completed; otherwise why not).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the endpoints report; the loop updates it.
pub struct Health {
    /// Unix milliseconds of the loop's last heartbeat.
    last_heartbeat_ms: AtomicI64,
    interval_ms: AtomicI64,
    ready: AtomicBool,
}

impl Health {
    pub fn new(interval: Duration) -> Self {
        Self {
            last_heartbeat_ms: AtomicI64::new(now_ms()),
            interval_ms: AtomicI64::new(interval.as_millis() as i64),
            ready: AtomicBool::new(false),
        }
    }

    pub fn heartbeat(&self) {
        self.last_heartbeat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn set_interval(&self, interval: Duration) {
        self.interval_ms
            .store(interval.as_millis() as i64, Ordering::Relaxed);
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// Alive when the loop beat within three intervals.
    pub fn alive(&self) -> bool {
        now_ms() - self.last_heartbeat_ms.load(Ordering::Relaxed)
            <= 3 * self.interval_ms.load(Ordering::Relaxed)
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Shared { metrics, health })
}

async fn metrics_page(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.render(),
    )
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.health.alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the evaluation loop has not ticked for three intervals\n",
        )
    }
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    if shared.health.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first evaluation has not completed yet\n",
        )
    }
}
