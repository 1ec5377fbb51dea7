//! WebSocket upgrades. The HTTP dispatcher hands every request that asks
//! for an upgrade here, with its socket: `GET /ws/chat` gets the checks
//! before a WebSocket starts (origin, server capacity, the token), then the
//! upgrade, or the upgrade and an immediate close with the code that says
//! why (docs/protocol.md, section 2). From then on the socket is Hearth's
//! own (`ws/socket.rs`), not the dispatcher's.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::{BodySize, MessageBody};
use actix_http::h1::{self, Message};
use actix_http::{HttpMessage, Request, Response, StatusCode};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use hearth_actors::assistant::agents::{Agents, DEFAULT_AGENT};
use hearth_actors::protocol::Close;

use super::common::{bearer, error_json};
use crate::auth::AuthError;
use crate::state::AppState;
use crate::ws::socket::Socket;
use crate::ws::{self, ConnOptions};

/// The WebSocket's own path; the agents' paths below serve the same
/// protocol with a default agent for new sessions.
pub const WS_PATH: &str = "/ws/chat";
pub const GUIDE_PATH: &str = "/api/ws/guide";
pub const LIAISON_PREFIX: &str = "/api/ws/liaison/";

/// Which agent a WebSocket path sets, if the path serves a WebSocket at
/// all: `/ws/chat` none, `/api/ws/guide` the guide, and
/// `/api/ws/liaison/{pillar}` that pillar's liaison (a pillar without one
/// is not served).
fn path_agent(path: &str, agents: &Agents) -> Option<Option<Arc<str>>> {
    if path == WS_PATH {
        return Some(None);
    }
    let agent = if path == GUIDE_PATH {
        agents.get(DEFAULT_AGENT)
    } else {
        agents.liaison(path.strip_prefix(LIAISON_PREFIX)?)
    };
    agent.map(|agent| Some(Arc::from(agent.id.as_str())))
}

fn flag(value: Option<&String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `GET /ws/chat` without an upgrade: the handshake's own error (400, or
/// 405 for another method).
pub(super) async fn without_upgrade(req: HttpRequest) -> HttpResponse {
    match actix_http::ws::handshake(req.head()) {
        Err(err) => HttpResponse::from(Response::from(err)),
        // An upgrade request never reaches the routing table.
        Ok(_) => HttpResponse::BadRequest().json(error_json("bad_request", "upgrade required")),
    }
}

/// Answers one upgrade request on its socket.
pub async fn upgrade(
    state: web::Data<AppState>,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error> {
    let requested_at = std::time::Instant::now();
    let refused = |reason: &str| state.metrics.connection.refused(reason);
    let Some(agent) = path_agent(req.path(), &state.chat.agents) else {
        refused("not_found");
        return refuse_http(
            framed,
            StatusCode::NOT_FOUND,
            "not_found",
            "no WebSocket is served here",
        )
        .await;
    };
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
                log::info!(reason = "origin", origin:? = origin; "ws_refused");
                refused("origin");
                return refuse_http(
                    framed,
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "origin not allowed",
                )
                .await;
            }
        }
    }
    let switching = match actix_http::ws::handshake(req.head()) {
        Ok(mut builder) => builder.finish().drop_body(),
        Err(err) => {
            refused("bad_handshake");
            let response = Response::from(err);
            let status = response.status();
            return send_response(framed, response.drop_body(), Bytes::new(), status).await;
        }
    };
    // A malformed query string is treated as an empty one: the client then
    // gets the `missing token` close rather than an HTTP error.
    let query =
        web::Query::<HashMap<String, String>>::from_query(req.uri().query().unwrap_or_default())
            .map(web::Query::into_inner)
            .unwrap_or_default();
    let options = ConnOptions {
        typing: flag(query.get("typing")),
        stream: flag(query.get("stream")),
        agent,
    };
    let token = query
        .get("token")
        .map(String::as_str)
        .or_else(|| bearer(req.headers()));
    let verdict = state.auth.verify(token);

    Pin::new(&mut framed).write(Message::Item((switching, BodySize::None)))?;
    flush(&mut framed).await?;
    let parts = framed.into_parts();
    let socket = Socket::new(parts.io, state.open_sockets.clone());
    let read = parts.read_buf;
    let limits = &state.session.outbound;

    if state.metrics.open_connections() >= i64::try_from(state.max_connections).unwrap_or(i64::MAX)
    {
        log::warn!(reason = "server_full"; "ws_refused");
        refused("server_full");
        ws::refuse(socket, read, Close::ServerFull, limits);
        return Ok(());
    }
    match verdict {
        Ok(identity) => ws::serve(
            socket,
            read,
            identity,
            options,
            state.into_inner(),
            requested_at,
        ),
        Err(err) => {
            let reason = match err {
                AuthError::Missing => "missing_token",
                AuthError::Expired => "token_expired",
                AuthError::Invalid(_) => "invalid_token",
            };
            log::info!(reason; "ws_refused");
            log::debug!(detail:? = err; "ws_refused");
            refused(reason);
            ws::refuse(socket, read, err.close(), limits);
        }
    }
    Ok(())
}

/// Answers the upgrade request with an HTTP error and a JSON body.
async fn refuse_http(
    framed: Framed<TcpStream, h1::Codec>,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Result<(), actix_web::Error> {
    let body = Bytes::from(error_json(code, message).to_string());
    let mut response = Response::with_body(status, ());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    send_response(framed, response, body, status).await
}

async fn send_response(
    mut framed: Framed<TcpStream, h1::Codec>,
    mut response: Response<()>,
    body: Bytes,
    status: StatusCode,
) -> Result<(), actix_web::Error> {
    *response.status_mut() = status;
    let size = body.size();
    Pin::new(&mut framed).write(Message::Item((response, size)))?;
    if !body.is_empty() {
        Pin::new(&mut framed).write(Message::Chunk(Some(body)))?;
    }
    Pin::new(&mut framed).write(Message::Chunk(None))?;
    flush(&mut framed).await?;
    Ok(())
}

/// Hands what was written to the socket.
async fn flush(framed: &mut Framed<TcpStream, h1::Codec>) -> Result<(), actix_web::Error> {
    std::future::poll_fn(|cx| {
        Pin::new(&mut *framed).flush::<Message<(Response<()>, BodySize)>>(cx)
    })
    .await?;
    Ok(())
}
