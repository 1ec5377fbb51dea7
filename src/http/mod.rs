//! HTTP: one routing table for the WebSocket upgrade, health and
//! readiness, metrics, the server API (docs/protocol.md, sections 1, 2, 7
//! and 8) and the built-in chat app.

mod api;
mod assets;
mod common;
mod health;
pub mod upgrade;

use actix_web::web;

/// Where the metrics routes are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsRoutes {
    /// On the public port, open to all (the protocol's default).
    Open,
    /// On the public port, behind the server API key.
    Keyed,
    /// On the admin listener only.
    Elsewhere,
}

/// The public port's routes.
pub fn configure(cfg: &mut web::ServiceConfig, metrics: MetricsRoutes) {
    cfg.route(upgrade::WS_PATH, web::to(upgrade::without_upgrade))
        .route(upgrade::GUIDE_PATH, web::to(upgrade::without_upgrade))
        .route(
            &format!("{}{{pillar}}", upgrade::LIAISON_PREFIX),
            web::to(upgrade::without_upgrade),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
    assets::configure(cfg);
    match metrics {
        MetricsRoutes::Open => configure_metrics(cfg),
        MetricsRoutes::Keyed => {
            cfg.route("/metrics", web::get().to(health::keyed_metrics_prometheus))
                .route("/api/metrics", web::get().to(health::keyed_metrics_json));
        }
        MetricsRoutes::Elsewhere => {}
    }
    cfg.route("/api/publish", web::post().to(api::publish))
        .route(
            "/api/channels/{channel}/presence",
            web::get().to(api::channel_presence),
        )
        .route(
            "/api/players/{player_id}/progress",
            web::get().to(api::player_progress),
        );
}

fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(health::metrics_prometheus))
        .route("/api/metrics", web::get().to(health::metrics_json));
}

/// The admin listener's routes (`[metrics] bind`): what an orchestrator
/// and a scraper ask, and nothing a client does.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
    configure_metrics(cfg);
}
