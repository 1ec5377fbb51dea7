//! Health, readiness and metrics: what an orchestrator and a scraper ask.

use actix_web::{web, HttpResponse};
use hearth_actors::chat_server::GetRegistryStats;
use hearth_actors::support::metrics::RegistrySizes;
use serde_json::json;

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

async fn registry_sizes(state: &AppState) -> RegistrySizes {
    state
        .chat_server
        .send(GetRegistryStats)
        .await
        .unwrap_or_default()
}

/// `GET /api/metrics`: the counters, registry sizes and per-actor figures
/// as JSON (docs/protocol.md, section 8).
pub(super) async fn metrics_json(state: web::Data<AppState>) -> HttpResponse {
    let sizes = registry_sizes(&state).await;
    HttpResponse::Ok().json(state.metrics.snapshot(sizes))
}

/// `GET /metrics`: the same figures in Prometheus text format.
pub(super) async fn metrics_prometheus(state: web::Data<AppState>) -> HttpResponse {
    let sizes = registry_sizes(&state).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.prometheus_text(sizes))
}
