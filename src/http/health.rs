//! Health, readiness and metrics: what an orchestrator and a scraper ask.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::api::api_key_refusal;
use crate::state::AppState;

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Read from the broker's gate, not through the broadcaster: a busy
/// broadcaster is not a node that should leave the load balancer.
pub(super) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.gate.is_ready() {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
    }
}

/// `GET /api/metrics`: the counters, registry sizes and per-actor figures
/// as JSON (docs/protocol.md, section 8).
/// Read from counters and gauges alone: a scrape asks no actor.
pub(super) async fn metrics_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.metrics.snapshot())
}

/// `GET /metrics`: the same figures in Prometheus text format.
pub(super) async fn metrics_prometheus(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.prometheus_text())
}

/// `GET /api/metrics` with `[metrics] require_key`.
pub(super) async fn keyed_metrics_json(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    match api_key_refusal(&req, &state) {
        Some(refusal) => refusal,
        None => metrics_json(state).await,
    }
}

/// `GET /metrics` with `[metrics] require_key`.
pub(super) async fn keyed_metrics_prometheus(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    match api_key_refusal(&req, &state) {
        Some(refusal) => refusal,
        None => metrics_prometheus(state).await,
    }
}
