//! The built-in chat app at `/` and the dashboard at `/dashboard`: their
//! files and the JavaScript client's,
//! embedded in the binary at build time (no Node.js to build or run the
//! server), and the development sign-in that exists only while the shipped
//! development secret is in use (anyone can mint tokens with it anyway).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::model::ids::PlayerId;
use serde::Deserialize;
use serde_json::json;

use super::common::error_json;
use crate::state::AppState;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file served, by path.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", include_str!("../../web/index.html"), HTML),
    ("/app.js", include_str!("../../web/app.js"), JS),
    ("/style.css", include_str!("../../web/style.css"), CSS),
    ("/dashboard", include_str!("../../web/dashboard.html"), HTML),
    ("/dashboard.js", include_str!("../../web/dashboard.js"), JS),
    (
        "/sdk/index.js",
        include_str!("../../clients/js/src/index.js"),
        JS,
    ),
    (
        "/sdk/client.js",
        include_str!("../../clients/js/src/client.js"),
        JS,
    ),
    (
        "/sdk/assistant.js",
        include_str!("../../clients/js/src/assistant.js"),
        JS,
    ),
    (
        "/sdk/backoff.js",
        include_str!("../../clients/js/src/backoff.js"),
        JS,
    ),
    (
        "/sdk/errors.js",
        include_str!("../../clients/js/src/errors.js"),
        JS,
    ),
];

/// The page may load only its own files and talk only to its own server.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    for (path, _, _) in ASSETS {
        cfg.route(path, web::get().to(asset));
    }
    cfg.route("/dev/token", web::get().to(dev_available))
        .route("/dev/token", web::post().to(dev_token));
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let Some((_, body, content_type)) = ASSETS.iter().find(|(path, _, _)| *path == req.path())
    else {
        return HttpResponse::NotFound().finish();
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *content_type))
        // Embedded in this build: revalidated, never stale after an upgrade.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .body(*body)
}

/// 200 while the development sign-in exists, 404 otherwise.
async fn dev_available(state: web::Data<AppState>) -> HttpResponse {
    if state.dev_sign_in {
        HttpResponse::Ok().json(json!({"dev": true}))
    } else {
        HttpResponse::NotFound().json(error_json("not_found", "no development sign-in here"))
    }
}

#[derive(Deserialize)]
struct DevSignIn {
    player: String,
}

/// A one-hour token for any player name, while the development secret is
/// in use.
async fn dev_token(state: web::Data<AppState>, body: web::Json<DevSignIn>) -> HttpResponse {
    if !state.dev_sign_in {
        return HttpResponse::NotFound()
            .json(error_json("not_found", "no development sign-in here"));
    }
    let Ok(player) = PlayerId::parse(&body.player) else {
        return HttpResponse::BadRequest().json(error_json(
            "bad_request",
            "a name is 1-128 characters of letters, digits and _.@:-",
        ));
    };
    match state.auth.issue(&player, 3600, None, Vec::new()) {
        Ok(token) => HttpResponse::Ok().json(json!({"token": token})),
        Err(err) => {
            log::warn!(error:% = err; "dev_token_failed");
            HttpResponse::InternalServerError()
                .json(error_json("internal", "no token could be made"))
        }
    }
}
