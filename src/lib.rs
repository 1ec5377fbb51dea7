//! The Hearth server: configuration, authentication, HTTP and WebSocket
//! routes and the session actor, around the actors of `hearth-actors`.
//! [`start`] wires it all and is what both the binary and the integration
//! tests run.

pub mod auth;
pub mod config;
pub mod logging;
pub mod rejected;
pub mod routes;
pub mod session;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use hearth_actors::broadcaster::Broadcaster;
use hearth_actors::broker_memory::MemoryBroker;
use hearth_actors::chat_processor::ChatProcessor;
use hearth_actors::chat_server::ChatServer;
use hearth_actors::engine::BuiltinEngine;
use hearth_actors::exercise_flow::ExerciseFlow;
use hearth_actors::exercises::Catalogue;
use hearth_actors::metrics::Metrics;
use hearth_actors::progress::{SharedProgressStore, SqliteProgressStore, StoreError};
use hearth_actors::protocol::RequestLimits;
use thiserror::Error;

use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{Config, ConfigError};
use crate::state::{AppState, SessionSettings};

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// A started server: where it listens, how to stop it, and the future that
/// runs it to completion.
pub struct Running {
    pub addr: SocketAddr,
    pub handle: ServerHandle,
    pub server: Server,
    pub metrics: Arc<Metrics>,
    pub chat_server: Addr<ChatServer>,
}

/// Starts every actor and the HTTP server on `listener`. Must run inside an
/// actix `System`. Signals are left to the caller (`handle_signals`).
pub fn start(
    config: Config,
    listener: TcpListener,
    handle_signals: bool,
) -> Result<Running, StartError> {
    config.validate()?;
    let auth = Authenticator::from_config(&config.auth)?;
    let progress: SharedProgressStore = Arc::new(SqliteProgressStore::open(&config.progress.path)?);
    let metrics = Arc::new(Metrics::default());
    let catalogue = Arc::new(Catalogue::new(config.exercises.catalogue.clone()));
    let max_players = config.chat.max_tracked_players;

    let channel_rules = Arc::new(config.channels.clone());

    // ChatServer and Broadcaster address each other: the broadcaster's
    // mailbox exists before either actor starts.
    let broadcaster_ctx = actix::Context::<Broadcaster>::new();
    let chat_server = ChatServer::new(
        config.limits.max_connections_per_player,
        broadcaster_ctx.address().recipient(),
    )
    .start();
    let broker = MemoryBroker::new(Duration::from_secs(config.channels.idle_stream_ttl_s));
    let broadcaster = broadcaster_ctx.run(Broadcaster::new(
        Box::new(broker),
        channel_rules.clone(),
        chat_server.clone(),
    ));
    let chat_processor = ChatProcessor::new(
        Box::new(BuiltinEngine::new(max_players)),
        config.chat.crisis_resources.clone(),
        catalogue.clone(),
        metrics.clone(),
    )
    .start();
    let exercise_flow = ExerciseFlow::new(
        catalogue,
        chat_server.clone(),
        progress.clone(),
        max_players,
    )
    .start();

    let state = web::Data::new(AppState {
        chat_server: chat_server.clone(),
        chat_processor,
        exercise_flow,
        broadcaster,
        channel_rules,
        metrics: metrics.clone(),
        auth,
        progress,
        session: SessionSettings {
            heartbeat_interval: Duration::from_secs(config.server.heartbeat_interval_s),
            client_timeout: Duration::from_secs(config.server.client_timeout_s),
            max_message_bytes: config.limits.max_message_bytes,
            auth_leeway: Duration::from_secs(config.auth.leeway_s),
            request_limits: RequestLimits {
                max_text_chars: config.limits.max_text_chars,
                max_publish_bytes: config.limits.max_publish_bytes,
            },
        },
        api_key: Some(config.api.key.clone()).filter(|key| !key.is_empty()),
        allowed_origins: config.server.allowed_origins.clone(),
        max_connections: config.limits.max_connections,
    });

    let addr = listener.local_addr()?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    .workers(workers)
    .shutdown_timeout(config.server.shutdown_timeout_s);
    if !handle_signals {
        server = server.disable_signals();
    }
    let server = server.listen(listener)?.run();
    Ok(Running {
        addr,
        handle: server.handle(),
        server,
        metrics,
        chat_server,
    })
}
