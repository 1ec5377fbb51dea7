//! Wiring: opens the stores and the broker, starts the four actors and
//! the HTTP server on a listener. [`start`] is what both the binary and the
//! integration tests run.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory};
use actix_web::dev::{AppConfig, Server};
use actix_web::{web, App};
use hearth_actors::assistant::agents::Agents;
use hearth_actors::assistant::builtin::BuiltinAssistant;
use hearth_actors::assistant::guarded::{CrisisReply, GuardedAssistant, ModelPermits};
use hearth_actors::assistant::openai::{OpenAiAssistant, OpenAiSettings, SettingsError};
use hearth_actors::assistant::opinion::ModelOpinion;
use hearth_actors::assistant::Assistant;
use hearth_actors::broadcaster::Broadcaster;
use hearth_actors::channels::broker::{Broker, BrokerError, HistoryBudget};
use hearth_actors::channels::memory::MemoryBroker;
use hearth_actors::channels::redis::{RedisBroker, RedisSettings};
use hearth_actors::chat_processor::approvals::PendingApprovals;
use hearth_actors::chat_processor::{
    ActiveReplies, ChatShared, ConversationSettings, Conversations, Recorder,
};
use hearth_actors::chat_server::ChatServer;
use hearth_actors::exercise_flow::ExerciseFlow;
use hearth_actors::protocol::RequestLimits;
use hearth_actors::store::conversations::postgres::PostgresConversationStore;
use hearth_actors::store::conversations::sqlite::SqliteConversationStore;
use hearth_actors::store::conversations::{ConversationError, SharedConversationStore};
use hearth_actors::store::postgres_link::{PgPool, SslMode};
use hearth_actors::store::progress::postgres::PostgresProgressStore;
use hearth_actors::store::progress::sqlite::SqliteProgressStore;
use hearth_actors::store::progress::{SharedProgressStore, StoreError};
use hearth_actors::support::metered::Metered;
use hearth_actors::support::metrics::{ActorKind, Metrics};
use hearth_actors::therapy::crisis::CrisisCategory;
use hearth_actors::therapy::exercises::Catalogue;
use thiserror::Error;

use crate::auth::{AuthSetupError, Authenticator};
use crate::config::{url_host_is_loopback, Config, ConfigError};
use crate::http;
use crate::shutdown::Shutdown;
use crate::state::{AppState, OutboundLimits, QueuedTotal, RateSettings, SessionSettings};

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
    #[error(transparent)]
    Conversations(#[from] ConversationError),
    #[error(transparent)]
    Assistant(#[from] SettingsError),
    #[error("cannot start the conversation recorder: {0}")]
    Recorder(std::io::Error),
}

/// A started server: where it listens, the future that runs it to
/// completion, and how to stop it gracefully.
pub struct Running {
    pub addr: SocketAddr,
    /// The admin listener (`[metrics] bind`), when there is one.
    pub admin_addr: Option<SocketAddr>,
    pub server: Server,
    pub shutdown: Shutdown,
}

fn open_progress_store(config: &Config) -> Result<SharedProgressStore, StartError> {
    let max_markers = to_i64(config.limits.progress_markers_per_player);
    if config.progress.kind == "postgres" {
        // The store waits on its pool's runtime, which may not be done
        // from inside this one: open it on a plain thread.
        let pool = postgres_pool(
            &config.progress.url,
            &config.progress.sslmode,
            &config.progress.ca_file,
        )
        .map_err(|err| StartError::Store(StoreError::Corrupt(err)))?;
        let store = std::thread::spawn(move || PostgresProgressStore::open(pool))
            .join()
            .map_err(|_| {
                StartError::Store(StoreError::Corrupt("the connect thread failed".into()))
            })??;
        log::info!(kind = "postgres"; "progress_store");
        return Ok(Arc::new(store.with_max_per_player(max_markers)));
    }
    let store = SqliteProgressStore::open(&config.progress.path)?;
    Ok(Arc::new(store.with_max_per_player(max_markers)))
}

/// Opens the conversation store and fails the replies a stop cut off. A
/// store that several nodes share is left alone unless this node is the
/// only one (no cluster broker): another node may be streaming.
fn open_conversation_store(config: &Config) -> Result<SharedConversationStore, StartError> {
    let max_sessions = to_i64(config.limits.sessions_per_player);
    let (store, sole_node): (SharedConversationStore, bool) =
        if config.conversations.kind == "postgres" {
            let pool = postgres_pool(
                &config.conversations.url,
                &config.conversations.sslmode,
                &config.conversations.ca_file,
            )
            .map_err(|err| StartError::Conversations(ConversationError::Corrupt(err)))?;
            let store = off_the_runtime(move || PostgresConversationStore::open(pool))?;
            log::info!(kind = "postgres"; "conversation_store");
            let store = store.with_max_per_player(max_sessions);
            (Arc::new(store), config.broker.kind != "redis")
        } else {
            let store = SqliteConversationStore::open(&config.conversations_path())?
                .with_max_per_player(max_sessions);
            (Arc::new(store), true)
        };
    if sole_node {
        let failing = store.clone();
        let failed = off_the_runtime(move || failing.fail_interrupted_replies())?;
        if failed > 0 {
            log::warn!(count:% = failed; "interrupted_replies_failed");
        }
    }
    Ok(store)
}

/// Runs blocking store work on a plain thread: a PostgreSQL store waits
/// on its pool's runtime, which may not be done from inside this one.
fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConversationError> + Send + 'static,
) -> Result<T, StartError> {
    std::thread::spawn(work)
        .join()
        .map_err(|_| {
            StartError::Conversations(ConversationError::Corrupt("the store thread failed".into()))
        })?
        .map_err(StartError::from)
}

/// A PostgreSQL store's pool: its URL and TLS as configured.
fn postgres_pool(url: &str, sslmode: &str, ca_file: &Path) -> Result<PgPool, String> {
    let mode = SslMode::parse(sslmode, url_host_is_loopback(url))
        .ok_or_else(|| format!("sslmode {sslmode:?} is not one Hearth knows"))?;
    let ca = match ca_file.as_os_str().is_empty() {
        true => None,
        false => Some(
            std::fs::read(ca_file)
                .map_err(|err| format!("cannot read {}: {err}", ca_file.display()))?,
        ),
    };
    let pool = PgPool::new(url, mode, ca.as_deref())?;
    log::info!(sslmode:? = mode; "postgres_tls");
    Ok(pool)
}

/// A configured count as a database integer (config validation keeps it
/// far below the edge).
fn to_i64(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Where the configured model is and how it is asked.
fn model_settings(config: &Config) -> OpenAiSettings {
    let settings = &config.assistant;
    OpenAiSettings {
        base_url: settings.base_url.clone(),
        model: settings.model.clone(),
        api_key: settings.api_key.clone(),
        timeout: Duration::from_secs(settings.timeout_s),
        max_tokens: Some(settings.max_tokens).filter(|n| *n > 0),
        temperature: Some(settings.temperature),
    }
}

/// The model's safety second opinion, when `[safety] model_check` is on.
fn build_opinion(config: &Config) -> Result<Option<Arc<ModelOpinion>>, StartError> {
    if !config.safety.model_check {
        return Ok(None);
    }
    let deadline = Duration::from_millis(config.safety.model_check_deadline_ms);
    log::info!(deadline_ms:% = config.safety.model_check_deadline_ms; "safety_model_check");
    Ok(Some(Arc::new(ModelOpinion::new(
        model_settings(config),
        deadline,
    )?)))
}

/// The assistant the server runs: the built-in one, or a model behind it.
fn build_assistant(
    config: &Config,
    builtin: Arc<BuiltinAssistant>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn Assistant>, StartError> {
    let settings = &config.assistant;
    if settings.kind != "openai" {
        return Ok(Arc::new(GuardedAssistant::builtin(
            builtin,
            metrics.clone(),
        )));
    }
    let model = OpenAiAssistant::new(model_settings(config))?.with_profiles(builtin.clone());
    let crisis_reply = match settings.crisis_reply.as_str() {
        "model" => CrisisReply::Model,
        _ => CrisisReply::Builtin,
    };
    log::info!(kind = "openai", base_url:% = settings.base_url, model:% = settings.model, crisis_reply:% = settings.crisis_reply; "assistant");
    Ok(Arc::new(GuardedAssistant::with_model(
        builtin,
        Arc::new(model),
        crisis_reply,
        ModelPermits::new(settings.max_in_flight, settings.max_in_flight_per_player),
        metrics.clone(),
    )))
}

fn open_broker(config: &Config) -> Result<Box<dyn Broker>, StartError> {
    let idle_ttl = Duration::from_secs(config.channels.idle_stream_ttl_s);
    let budget = HistoryBudget {
        max_bytes: config.channels.history_max_bytes,
        max_bytes_per_player: config.channels.history_max_bytes_per_player,
        new_channels_per_minute: config.channels.new_channels_per_minute_per_player,
    };
    if config.broker.kind == "redis" {
        let rules = &config.channels;
        let budget_window = rules
            .namespaces
            .values()
            .chain([&rules.default])
            .map(|namespace| namespace.history_ttl())
            .max()
            .unwrap_or_default();
        let tls_ca = match config.broker.tls_ca_file.as_os_str().is_empty() {
            true => None,
            false => Some(std::fs::read(&config.broker.tls_ca_file).map_err(|err| {
                StartError::Broker(BrokerError::Unavailable(format!(
                    "cannot read broker.tls_ca_file {}: {err}",
                    config.broker.tls_ca_file.display()
                )))
            })?),
        };
        let broker = RedisBroker::new(RedisSettings {
            url: config.broker.url.clone(),
            tls_ca,
            prefix: config.broker.prefix.clone(),
            node_ttl: Duration::from_secs(config.broker.node_ttl_s),
            idle_ttl,
            max_connections_per_player: config.limits.max_connections_per_player,
            budget,
            budget_window,
        })?;
        return Ok(Box::new(broker));
    }
    log::info!(kind = "memory"; "broker");
    Ok(Box::new(MemoryBroker::new(idle_ttl).with_budget(budget)))
}

/// Starts every actor and the HTTP server on `listener`. Must run inside an
/// actix `System`. Signals are the caller's: see [`Shutdown::run`].
pub fn start(config: Config, listener: TcpListener) -> Result<Running, StartError> {
    config.validate()?;
    let auth = Authenticator::from_config(&config.auth)?;
    let progress = open_progress_store(&config)?;
    let conversation_store = open_conversation_store(&config)?;
    let metrics = Arc::new(Metrics::default());
    metrics.crisis_categories_known(CrisisCategory::ALL.iter().map(|category| category.as_str()));
    let catalogue = Arc::new(Catalogue::new(config.exercises.catalogue.clone()));
    let max_players = config.chat.max_tracked_players;

    let channel_rules = Arc::new(config.channels.clone().with_session_namespace());

    // The Broadcaster delivers through ChatServer, and ChatServer reports
    // rooms back through its outbound port, which the Broadcaster serves:
    // ChatServer's mailbox exists first so that the Broadcaster can start
    // with its address, then ChatServer starts with the port.
    let broker = open_broker(&config)?;
    let gate = broker.gate();
    let approval_relay = broker.approvals();
    let chat_server_ctx = actix::Context::<ChatServer>::new();
    let chat_server = Metered::new(
        chat_server_ctx.address(),
        metrics.clone(),
        ActorKind::ChatServer,
    );
    let broadcaster_addr = Broadcaster::new(
        broker,
        channel_rules.clone(),
        chat_server.clone(),
        metrics.clone(),
    )
    .start();
    chat_server_ctx.run(ChatServer::new(
        config.limits.max_connections_per_player,
        Broadcaster::observer(&broadcaster_addr),
        metrics.clone(),
    ));
    let broadcaster = Metered::new(broadcaster_addr, metrics.clone(), ActorKind::Broadcaster);
    let builtin = Arc::new(BuiltinAssistant::new(max_players));
    let conversations = Arc::new(Conversations {
        recorder: if config.conversations.record_v1 {
            Some(Recorder::start(conversation_store.clone()).map_err(StartError::Recorder)?)
        } else {
            None
        },
        store: conversation_store,
        broadcaster: broadcaster.clone(),
        active: ActiveReplies::default(),
        approvals: PendingApprovals::with_relay(approval_relay),
        settings: ConversationSettings {
            coalesce: Duration::from_millis(config.assistant.coalesce_ms),
            history_turns: config.assistant.history_turns,
            approval_timeout: Duration::from_secs(config.assistant.approval_timeout_s),
        },
    });
    let chat = ChatShared {
        assistant: build_assistant(&config, builtin, &metrics)?,
        resources: Arc::new(config.chat.crisis_resources.clone()),
        agents: Arc::new(
            Agents::new(config.assistant.agents.clone())
                .map_err(|problems| ConfigError::Invalid(problems.join("; ")))?,
        ),
        progress: progress.clone(),
        exercises: catalogue.clone(),
        metrics: metrics.clone(),
        conversations: conversations.clone(),
        opinion: build_opinion(&config)?,
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
        gate,
        open_sockets: Arc::default(),
        dev_sign_in: config.uses_dev_secret(),
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
                max_age: Duration::from_millis(config.limits.outbound_max_age_ms),
                close_linger: Duration::from_millis(config.limits.close_linger_ms),
                close_write_limit: Duration::from_secs(config.server.client_timeout_s),
                total: Arc::new(QueuedTotal {
                    bytes: Default::default(),
                    max: config.limits.outbound_max_total_bytes,
                }),
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
    let open_sockets = state.open_sockets.clone();
    let metrics_routes = match (config.metrics.bind.is_empty(), config.metrics.require_key) {
        (false, _) => http::MetricsRoutes::Elsewhere,
        (true, true) => http::MetricsRoutes::Keyed,
        (true, false) => http::MetricsRoutes::Open,
    };
    let admin_listener = match config.metrics.bind.as_str() {
        "" => None,
        bind => Some(TcpListener::bind(bind)?),
    };
    let admin_addr = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let public_state = state.clone();
    // actix-web's HttpServer, built by hand for one thing it does not
    // offer: an upgrade service, through which the dispatcher hands a
    // WebSocket's socket over instead of carrying its frames as a response
    // body (`http/upgrade.rs`).
    let mut builder = actix_server::Server::build().listen("hearth", listener, move || {
        let app = App::new()
            .app_data(public_state.clone())
            .configure(|cfg| http::configure(cfg, metrics_routes))
            .into_factory();
        let upgrade_state = public_state.clone();
        let upgrade = fn_service(move |(req, framed)| {
            http::upgrade::upgrade(upgrade_state.clone(), req, framed)
        });
        HttpService::build()
            // Realtime frames go out as soon as they are written;
            // Nagle's algorithm would hold a small frame back for the
            // previous one's ACK.
            .tcp_nodelay(true)
            .client_disconnect_timeout(Duration::ZERO)
            .upgrade(upgrade)
            .finish(map_config(app, |_| AppConfig::default()))
            .tcp()
    })?;
    if let Some(admin_listener) = admin_listener {
        builder = builder.listen("hearth-admin", admin_listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .configure(http::configure_admin)
                .into_factory();
            HttpService::build()
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?;
    }
    let server = builder
        .workers(workers)
        .shutdown_timeout(config.server.shutdown_timeout_s)
        .disable_signals()
        .run();
    let shutdown = Shutdown {
        handle: server.handle(),
        metrics,
        conversations,
        chat_server,
        exercise_flow,
        open_sockets,
        timeout: Duration::from_secs(config.server.shutdown_timeout_s),
    };
    Ok(Running {
        addr,
        admin_addr,
        server,
        shutdown,
    })
}
