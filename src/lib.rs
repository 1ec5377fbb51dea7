//! The Hearth server: configuration, authentication, HTTP and WebSocket
//! routes and the session actor, around the actors of `hearth-actors`.
//! [`start`] wires it all and is what both the binary and the integration
//! tests run.

pub mod auth;
pub mod config;
pub mod local_hub;
pub mod logging;
pub mod outbound;
pub mod routes;
pub mod session;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use hearth_actors::broadcaster::Broadcaster;
use hearth_actors::broker::{Broker, BrokerError};
use hearth_actors::broker_memory::MemoryBroker;
use hearth_actors::broker_redis::{RedisBroker, RedisSettings};
use hearth_actors::chat_processor::ChatShared;
use hearth_actors::chat_server::{ChatServer, Evict, EvictAll, LeaveCluster};
use hearth_actors::engine::BuiltinEngine;
use hearth_actors::exercise_flow::{ExerciseFlow, PendingWrites};
use hearth_actors::exercises::Catalogue;
use hearth_actors::metered::Metered;
use hearth_actors::metrics::{ActorKind, Metrics};
use hearth_actors::progress::{SharedProgressStore, StoreError};
use hearth_actors::progress_postgres::PostgresProgressStore;
use hearth_actors::progress_sqlite::SqliteProgressStore;
use hearth_actors::protocol::RequestLimits;
use thiserror::Error;

use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{Config, ConfigError};
use crate::outbound::OutboundLimits;
use crate::state::{AppState, RateSettings, SessionSettings};

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
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A started server: where it listens, the future that runs it to
/// completion, and how to stop it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    pub server: Server,
    pub shutdown: Shutdown,
}

/// What a graceful shutdown needs; cheap to clone into a signal handler.
#[derive(Clone)]
pub struct Shutdown {
    pub handle: ServerHandle,
    metrics: Arc<Metrics>,
    chat_server: Metered<ChatServer>,
    exercise_flow: Metered<ExerciseFlow>,
    timeout: Duration,
}

impl Shutdown {
    /// Stops accepting, closes every connection 1001, waits (within the
    /// configured timeout) for the connections to drain and for progress
    /// writes to commit, then stops the server.
    pub async fn run(&self) {
        let deadline = Instant::now() + self.timeout;
        self.handle.pause().await;
        let evict = Evict {
            code: 1001,
            reason: "server shutting down".into(),
        };
        let asked = self.chat_server.send(EvictAll { evict }).await.unwrap_or(0);
        log::info!("shutdown_started connections={asked}");
        let poll = Duration::from_millis(20);
        while self.metrics.open_connections() > 0 && Instant::now() < deadline {
            actix_rt::time::sleep(poll).await;
        }
        loop {
            let pending = self.exercise_flow.send(PendingWrites).await.unwrap_or(0);
            if pending == 0 || Instant::now() >= deadline {
                break;
            }
            actix_rt::time::sleep(poll).await;
        }
        log::info!(
            "shutdown_drained connections_left={}",
            self.metrics.open_connections()
        );
        // In a cluster, the others stop counting this node now rather than
        // when its heartbeat expires.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = actix_rt::time::timeout(remaining, self.chat_server.send(LeaveCluster)).await;
        // Every connection is closed or out of time; the rest is the HTTP
        // layer's own graceful stop.
        self.handle.stop(true).await;
    }
}

fn open_progress_store(config: &Config) -> Result<SharedProgressStore, StartError> {
    if config.progress.kind == "postgres" {
        // The blocking PostgreSQL client runs a runtime of its own, which
        // may not start inside this one: connect on a plain thread.
        let url = config.progress.url.clone();
        let store = std::thread::spawn(move || PostgresProgressStore::open(&url))
            .join()
            .map_err(|_| {
                StartError::Store(StoreError::Corrupt("the connect thread failed".into()))
            })??;
        log::info!("progress_store kind=postgres");
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(SqliteProgressStore::open(&config.progress.path)?))
}

fn open_broker(config: &Config) -> Result<Box<dyn Broker>, StartError> {
    let idle_ttl = Duration::from_secs(config.channels.idle_stream_ttl_s);
    if config.broker.kind == "redis" {
        let broker = RedisBroker::new(RedisSettings {
            url: config.broker.url.clone(),
            prefix: config.broker.prefix.clone(),
            node_ttl: Duration::from_secs(config.broker.node_ttl_s),
            idle_ttl,
            max_connections_per_player: config.limits.max_connections_per_player,
        })?;
        return Ok(Box::new(broker));
    }
    log::info!("broker kind=memory");
    Ok(Box::new(MemoryBroker::new(idle_ttl)))
}

/// Starts every actor and the HTTP server on `listener`. Must run inside an
/// actix `System`. Signals are the caller's: see [`Shutdown::run`].
pub fn start(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    config.validate()?;
    let auth = Authenticator::from_config(&config.auth)?;
    let progress = open_progress_store(&config)?;
    let metrics = Arc::new(Metrics::default());
    let catalogue = Arc::new(Catalogue::new(config.exercises.catalogue.clone()));
    let max_players = config.chat.max_tracked_players;

    let channel_rules = Arc::new(config.channels.clone());

    // ChatServer and Broadcaster address each other: the broadcaster's
    // mailbox exists before either actor starts.
    let broadcaster_ctx = actix::Context::<Broadcaster>::new();
    let broadcaster_addr = broadcaster_ctx.address();
    let chat_server = Metered::new(
        ChatServer::new(
            config.limits.max_connections_per_player,
            broadcaster_addr.clone(),
            metrics.clone(),
        )
        .start(),
        metrics.clone(),
        ActorKind::ChatServer,
    );
    let broker = open_broker(&config)?;
    broadcaster_ctx.run(Broadcaster::new(
        broker,
        channel_rules.clone(),
        chat_server.clone(),
        metrics.clone(),
    ));
    let broadcaster = Metered::new(broadcaster_addr, metrics.clone(), ActorKind::Broadcaster);
    let chat = ChatShared {
        engine: Arc::new(BuiltinEngine::new(max_players)),
        resources: Arc::new(config.chat.crisis_resources.clone()),
        exercises: catalogue.clone(),
        metrics: metrics.clone(),
    };
    let exercise_flow = Metered::new(
        ExerciseFlow::new(
            catalogue,
            chat_server.clone(),
            progress.clone(),
            max_players,
            metrics.clone(),
        )
        .start(),
        metrics.clone(),
        ActorKind::ExerciseFlow,
    );

    let state = web::Data::new(AppState {
        chat_server: chat_server.clone(),
        chat,
        exercise_flow: exercise_flow.clone(),
        broadcaster,
        channel_rules,
        metrics: metrics.clone(),
        auth,
        progress,
        session: SessionSettings {
            rate: RateSettings {
                burst: config.limits.rate_burst,
                per_second: config.limits.rate_per_second,
                close_after: config.limits.rate_limited_close_after.max(1),
            },
            outbound: OutboundLimits {
                max_frames: config.limits.outbound_max_frames,
                max_bytes: config.limits.outbound_max_bytes,
            },
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
        cluster: config.broker.kind == "redis",
        max_connections: config.limits.max_connections,
    });

    let addr = listener.local_addr()?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes::configure)
    })
    // Realtime frames go out as soon as they are written; Nagle's algorithm
    // would hold a small frame back for the previous one's ACK.
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            if let Err(err) = tcp.set_nodelay(true) {
                log::debug!("set_nodelay_failed error={err}");
            }
        }
    })
    .workers(workers)
    .shutdown_timeout(config.server.shutdown_timeout_s)
    // After a WebSocket's close handshake the server closes the TCP
    // connection at once, as RFC 6455 asks, instead of lingering for the
    // client to hang up first.
    .client_disconnect_timeout(Duration::ZERO)
    .disable_signals()
    .listen(listener)?
    .run();
    let shutdown = Shutdown {
        handle: server.handle(),
        metrics,
        chat_server,
        exercise_flow,
        timeout: Duration::from_secs(config.server.shutdown_timeout_s),
    };
    Ok(Running {
        addr,
        server,
        shutdown,
    })
}
