//! `GET /ws/chat`: the checks before a WebSocket starts (origin, server
//! capacity, the token), then the upgrade, or the upgrade and an
//! immediate close with the code that says why (docs/protocol.md, section 2).

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use hearth_actors::protocol::Close;

use super::common::{bearer, error_json};
use crate::state::AppState;
use crate::ws::{self, ConnOptions};

fn flag(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

pub(super) async fn ws_chat(
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
        return ws::refuse(
            &req,
            stream,
            Close::ServerFull,
            state.session.outbound.close_linger,
        );
    }
    match state.auth.verify(token) {
        Ok(identity) => ws::serve(&req, stream, identity, options, state.into_inner()),
        Err(err) => {
            log::info!("ws_refused reason={:?}", err.close().reason());
            log::debug!("ws_refused detail={err:?}");
            ws::refuse(
                &req,
                stream,
                err.close(),
                state.session.outbound.close_linger,
            )
        }
    }
}
