//! HTTP: one routing table for the WebSocket upgrade, health and
//! readiness, metrics and the server API (docs/protocol.md, sections 1, 2,
//! 7 and 8).

mod api;
mod common;
mod health;
pub mod upgrade;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(upgrade::WS_PATH, web::to(upgrade::without_upgrade))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics_prometheus))
        .route("/api/metrics", web::get().to(health::metrics_json))
        .route("/api/publish", web::post().to(api::publish))
        .route(
            "/api/channels/{channel}/presence",
            web::get().to(api::channel_presence),
        )
        .route(
            "/api/players/{player_id}/progress",
            web::get().to(api::player_progress),
        );
}
