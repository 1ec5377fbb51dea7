//! HTTP routes: the WebSocket upgrade, health and readiness, metrics and the
//! server API (PROTOCOL.md sections 1, 2 and 7).

use std::collections::HashMap;

use actix_http::ws::CloseCode;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::broadcaster::{GetPresence, IsReady, Publish};
use hearth_actors::broker::{BrokerError, Payload, Publisher};
use hearth_actors::channels::ChannelName;
use hearth_actors::chat_server::GetRegistryStats;
use hearth_actors::ids::PlayerId;
use hearth_actors::metrics::RegistrySizes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::session::{self, ConnOptions};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::get().to(ws_chat))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_prometheus))
        .route("/api/metrics", web::get().to(metrics_json))
        .route("/api/publish", web::post().to(publish))
        .route(
            "/api/channels/{channel}/presence",
            web::get().to(channel_presence),
        )
        .route(
            "/api/players/{player_id}/progress",
            web::get().to(player_progress),
        );
}

fn flag(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn ws_chat(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !state.allowed_origins.is_empty() {
        // Browsers always send Origin; a client without one is not a page
        // on some other site, which is what the allowlist guards against.
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .map(|o| o.to_str().unwrap_or(""));
        if let Some(origin) = origin {
            if !state
                .allowed_origins
                .iter()
                .any(|allowed| allowed == origin)
            {
                log::info!("ws_refused reason=origin origin={origin:?}");
                return Ok(
                    HttpResponse::Forbidden().json(error_json("forbidden", "origin not allowed"))
                );
            }
        }
    }
    // A malformed query string is treated as an empty one: the client then
    // gets the `missing token` close rather than an HTTP error.
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let options = ConnOptions {
        typing: flag(query.get("typing")),
        stream: flag(query.get("stream")),
    };
    let token = query
        .get("token")
        .map(String::as_str)
        .or_else(|| bearer(&req));

    if state.metrics.open_connections() >= i64::try_from(state.max_connections).unwrap_or(i64::MAX)
    {
        log::warn!("ws_refused reason=server_full");
        return session::refuse(&req, stream, CloseCode::Again, "try again later");
    }
    match state.auth.verify(token) {
        Ok(identity) => session::serve(&req, stream, identity, options, state.into_inner()),
        Err(err) => {
            log::info!("ws_refused reason={:?}", err.close_reason());
            log::debug!("ws_refused detail={err:?}");
            session::refuse(&req, stream, CloseCode::Policy, err.close_reason())
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.broadcaster.send(IsReady).await {
        Ok(true) => HttpResponse::Ok().json(json!({"status": "ready"})),
        _ => HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})),
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
/// as JSON (PROTOCOL.md section 8).
async fn metrics_json(state: web::Data<AppState>) -> HttpResponse {
    let sizes = registry_sizes(&state).await;
    HttpResponse::Ok().json(state.metrics.snapshot(sizes))
}

/// `GET /metrics`: the same figures in Prometheus text format.
async fn metrics_prometheus(state: web::Data<AppState>) -> HttpResponse {
    let sizes = registry_sizes(&state).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.prometheus_text(sizes))
}

/// The server API's key check: the refusal to send, if any. 403 when no key
/// is configured, 401 when the request's key is missing or wrong.
fn api_key_refusal(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let Some(expected) = state.api_key.as_deref() else {
        return Some(HttpResponse::Forbidden().json(error_json(
            "forbidden",
            "the server API is disabled: no api.key is configured",
        )));
    };
    match bearer(req) {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => None,
        _ => Some(
            HttpResponse::Unauthorized().json(error_json("unauthorized", "missing or bad API key")),
        ),
    }
}

/// Compares without an early exit, so response time does not leak how much
/// of a guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error_json(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"error": code, "message": message.to_string()})
}

#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    data: Value,
}

/// `POST /api/publish`: a server publication; to `user:<player>` it is the
/// broadcast to every connection of that player.
async fn publish(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = api_key_refusal(&req, &state) {
        return refusal;
    }
    let body: PublishBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => return HttpResponse::BadRequest().json(error_json("bad_request", err)),
    };
    let channel = match ChannelName::parse(&body.channel) {
        Ok(channel) => channel,
        Err(err) => return HttpResponse::BadRequest().json(error_json("bad_channel", err)),
    };
    let data = match Payload::from_value(&body.data) {
        Ok(data) if data.len() <= state.session.request_limits.max_publish_bytes => data,
        Ok(_) => {
            let limit = state.session.request_limits.max_publish_bytes;
            return HttpResponse::BadRequest().json(error_json(
                "too_large",
                format!("data serializes to more than {limit} bytes"),
            ));
        }
        Err(err) => return HttpResponse::BadRequest().json(error_json("bad_request", err)),
    };
    let ask = Publish {
        channel,
        publisher: Publisher::Server,
        data,
    };
    broker_reply(
        state.broadcaster.send(ask).await,
        |publication| json!({"offset": publication.offset, "epoch": publication.epoch}),
    )
}

/// The broadcaster's answer as HTTP: 200 with `body`, or 503 when the
/// broker (or the actor) could not answer.
fn broker_reply<T>(
    answer: Result<Result<T, BrokerError>, actix::MailboxError>,
    body: impl FnOnce(T) -> Value,
) -> HttpResponse {
    let failure = match answer {
        Ok(Ok(value)) => return HttpResponse::Ok().json(body(value)),
        Ok(Err(err)) => err.to_string(),
        Err(err) => err.to_string(),
    };
    HttpResponse::ServiceUnavailable().json(error_json("internal", failure))
}

/// The server API's prologue for a resource named in the path: the key
/// check, then the name parsed (400 with `code` when it is not valid).
fn api_path<T, E: std::fmt::Display>(
    req: &HttpRequest,
    state: &AppState,
    path: web::Path<String>,
    parse: fn(&str) -> Result<T, E>,
    code: &str,
) -> Result<T, Box<HttpResponse>> {
    if let Some(refusal) = api_key_refusal(req, state) {
        return Err(Box::new(refusal));
    }
    parse(&path.into_inner())
        .map_err(|err| Box::new(HttpResponse::BadRequest().json(error_json(code, err))))
}

/// `GET /api/channels/{channel}/presence`.
async fn channel_presence(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let channel = match api_path(&req, &state, path, ChannelName::parse, "bad_channel") {
        Ok(channel) => channel,
        Err(refusal) => return *refusal,
    };
    if !state.channel_rules.for_channel(&channel).presence {
        return HttpResponse::NotFound().json(error_json(
            "not_available",
            format!("{channel} keeps no presence"),
        ));
    }
    broker_reply(
        state.broadcaster.send(GetPresence { channel }).await,
        |players| json!({ "players": players }),
    )
}

async fn player_progress(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let player = match api_path(&req, &state, path, PlayerId::parse, "bad_request") {
        Ok(player) => player,
        Err(refusal) => return *refusal,
    };
    let store = state.progress.clone();
    let failure = match web::block(move || store.markers(&player)).await {
        Ok(Ok(markers)) => return HttpResponse::Ok().json(json!({ "markers": markers })),
        Ok(Err(err)) => err.to_string(),
        Err(err) => err.to_string(),
    };
    log::error!("progress_read_failed error={failure:?}");
    HttpResponse::InternalServerError()
        .json(error_json("internal", "the progress store is unavailable"))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn keys_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
