//! HTTP: one routing table for the WebSocket upgrade, health and
//! readiness, metrics and the server API (docs/protocol.md, sections 1, 2,
//! 7 and 8), and what their handlers share.

mod api;
mod health;
mod upgrade;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::get().to(upgrade::ws_chat))
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

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The body of every HTTP error: a stable code and a message.
pub(crate) fn error_json(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"error": code, "message": message.to_string()})
}
