//! The server API, behind the API key: publish (and so broadcast to a
//! player), a channel's presence, a player's progress markers
//! (docs/protocol.md, section 7).

use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::broadcaster::{GetPresence, Publish};
use hearth_actors::channels::broker::BrokerError;
use hearth_actors::channels::stream::{Payload, Publisher};
use hearth_actors::model::channel_name::ChannelName;
use hearth_actors::model::ids::PlayerId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::{bearer, error_json};
use crate::state::AppState;

/// The server API's key check: the refusal to send, if any. 403 when no key
/// is configured, 401 when the request's key is missing or wrong.
pub(super) fn api_key_refusal(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let Some(expected) = state.api_key.as_deref() else {
        return Some(HttpResponse::Forbidden().json(error_json(
            "forbidden",
            "the server API is disabled: no api.key is configured",
        )));
    };
    match bearer(req.headers()) {
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

#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    data: Value,
}

/// `POST /api/publish`: a server publication; to `user:<player>` it is the
/// broadcast to every connection of that player.
pub(super) async fn publish(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
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
        Ok(Err(err @ BrokerError::LimitExceeded(_))) => {
            return HttpResponse::TooManyRequests()
                .json(error_json("limit_exceeded", err.client_message()))
        }
        Ok(Err(err)) => {
            log::warn!(error:% = err; "api_broker_failed");
            err.client_message()
        }
        Err(err) => {
            log::warn!(error:% = err; "api_broker_failed");
            "the server cannot answer now; retry shortly"
        }
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
pub(super) async fn channel_presence(
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

/// `?limit=` (1 to 1000, default 100) and `?after=` (the `next` cursor of
/// the page before) of the progress listing.
#[derive(serde::Deserialize)]
pub(super) struct ProgressQuery {
    limit: Option<usize>,
    after: Option<String>,
}

const PROGRESS_PAGE: usize = 100;
const PROGRESS_PAGE_MAX: usize = 1000;

/// `GET /api/players/{player_id}/progress`: a page of markers, oldest
/// first; a player's markers are never all read at once.
pub(super) async fn player_progress(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ProgressQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let player = match api_path(&req, &state, path, PlayerId::parse, "bad_request") {
        Ok(player) => player,
        Err(refusal) => return *refusal,
    };
    let limit = query.limit.unwrap_or(PROGRESS_PAGE);
    if !(1..=PROGRESS_PAGE_MAX).contains(&limit) {
        return HttpResponse::BadRequest().json(error_json(
            "bad_request",
            format!("limit must be between 1 and {PROGRESS_PAGE_MAX}"),
        ));
    }
    let after = match query.after.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(after)) if after >= 0 => Some(after),
        Some(_) => {
            return HttpResponse::BadRequest()
                .json(error_json("bad_request", "after is not a cursor"))
        }
    };
    let store = state.progress.clone();
    let failure = match web::block(move || store.markers_after(&player, after, limit)).await {
        Ok(Ok(page)) => {
            let mut body = json!({ "markers": page.markers });
            if let Some(next) = page.next {
                body["next"] = json!(next.to_string());
            }
            return HttpResponse::Ok().json(body);
        }
        Ok(Err(err)) => err.to_string(),
        Err(err) => err.to_string(),
    };
    log::error!(error:? = failure; "progress_read_failed");
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
