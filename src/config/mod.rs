//! Configuration: `config.toml` (every setting, with defaults when a key is
//! absent), then the environment: every key can be set as
//! `HEARTH_<SECTION>_<KEY>` (`env.rs`); then the checks (`validate.rs`).

mod env;
mod validate;

pub use env::{env_table, unknown_env_names, EnvError};

use std::path::{Path, PathBuf};

use hearth_actors::assistant::agents::{Agent, Agents};
use hearth_actors::channels::rules::ChannelRules;
use hearth_actors::therapy::exercises::{default_exercises, Exercise};
use hearth_actors::therapy::resources::{default_crisis_resources, CrisisResource};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The secret shipped in config.toml so that a new user can try Hearth at
/// once. Running with it logs a loud warning.
pub const DEV_JWT_SECRET: &str = "hearth-dev-secret-change-me";

/// The shortest HS256 secret or API key accepted: 256 bits, as RFC 7518
/// asks of an HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Whether `bind` listens only on this machine.
pub(crate) fn is_loopback_bind(bind: &str) -> bool {
    if let Ok(addr) = bind.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    bind.rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub api: ApiConfig,
    pub limits: LimitsConfig,
    pub chat: ChatConfig,
    pub exercises: ExercisesConfig,
    pub progress: ProgressConfig,
    pub broker: BrokerConfig,
    pub channels: ChannelRules,
    pub assistant: AssistantConfig,
    pub conversations: ConversationsConfig,
    pub safety: SafetyConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    /// Development mode (`hearth --dev`, `HEARTH_DEV=1`): the shipped
    /// development secret is accepted on any bind address. Never from a
    /// file, so that a copied config cannot turn it on.
    #[serde(skip)]
    pub dev: bool,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    pub heartbeat_interval_s: u64,
    pub client_timeout_s: u64,
    pub shutdown_timeout_s: u64,
    /// When non-empty, a WebSocket upgrade from any other Origin gets 403.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            dev: false,
            workers: 0,
            heartbeat_interval_s: 10,
            client_timeout_s: 30,
            shutdown_timeout_s: 10,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 (shared secret), RS256 or ES256 (public key PEM file).
    pub algorithm: String,
    pub secret: String,
    pub public_key_file: String,
    pub leeway_s: u64,
    /// Checked when non-empty.
    pub issuer: String,
    pub audience: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            algorithm: "HS256".into(),
            secret: DEV_JWT_SECRET.into(),
            public_key_file: String::new(),
            leeway_s: 5,
            issuer: String::new(),
            audience: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer key of the server API; empty turns the server API off (403).
    pub key: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest frame, and largest message after reassembly; over it: close 1009.
    pub max_message_bytes: usize,
    pub max_text_chars: usize,
    pub max_publish_bytes: usize,
    pub max_connections_per_player: usize,
    pub max_connections: usize,
    /// Token bucket per connection: `rate_burst` messages at once, refilled
    /// at `rate_per_second`.
    pub rate_burst: u32,
    pub rate_per_second: f64,
    /// Rate-limited messages in a row that close the connection 1008.
    pub rate_limited_close_after: u32,
    /// Frames and bytes queued for one client before it is closed 4002.
    pub outbound_max_frames: usize,
    pub outbound_max_bytes: usize,
    /// A frame left unread this long closes the connection 4002, however
    /// few are queued (a client that pings but never reads).
    pub outbound_max_age_ms: u64,
    /// What may wait in all connections' queues together; past it, a
    /// connection holding more than its share is closed 4002.
    pub outbound_max_total_bytes: usize,
    /// After a close the server starts, what the client still sends is
    /// read and discarded for up to this long, until its own close.
    pub close_linger_ms: u64,
    /// Assistant sessions one player may keep; past it, creating one is
    /// refused `limit_exceeded` (archiving does not delete).
    pub sessions_per_player: usize,
    /// Progress markers one player may keep; past it, a completed exercise
    /// is answered `limit_exceeded` and nothing older is dropped.
    pub progress_markers_per_player: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            max_text_chars: 4000,
            max_publish_bytes: 32 * 1024,
            max_connections_per_player: 16,
            max_connections: 100_000,
            rate_burst: 20,
            rate_per_second: 10.0,
            rate_limited_close_after: 50,
            outbound_max_frames: 1024,
            outbound_max_bytes: 4 * 1024 * 1024,
            outbound_max_age_ms: 60_000,
            outbound_max_total_bytes: 1 << 30,
            close_linger_ms: 2000,
            sessions_per_player: 10_000,
            progress_markers_per_player: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Players whose feedback and exercise runs are kept in memory at once.
    pub max_tracked_players: usize,
    pub crisis_resources: Vec<CrisisResource>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_tracked_players: 100_000,
            crisis_resources: default_crisis_resources(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExercisesConfig {
    pub catalogue: Vec<Exercise>,
}

impl Default for ExercisesConfig {
    fn default() -> Self {
        ExercisesConfig {
            catalogue: default_exercises(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressConfig {
    /// "sqlite" (embedded, one node) or "postgres" (shared by several nodes).
    pub kind: String,
    /// The SQLite file.
    pub path: PathBuf,
    /// The PostgreSQL connection URL.
    pub url: String,
    /// TLS to PostgreSQL: "auto" (none on this machine, "verify-full"
    /// elsewhere), "disable", "require" or "verify-full".
    pub sslmode: String,
    /// PEM file of the CA to trust for "verify-full" instead of the
    /// system's roots.
    pub ca_file: PathBuf,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            kind: "sqlite".into(),
            path: PathBuf::from("data/progress.db"),
            url: String::new(),
            sslmode: "auto".into(),
            ca_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// "memory" (embedded, one node) or "redis" (several nodes as one).
    pub kind: String,
    pub url: String,
    /// Every Redis key and pub/sub channel of this cluster starts with
    /// `<prefix>:`, so that clusters can share a Redis.
    pub prefix: String,
    /// A node that stops beating (killed, cut off) still counts in
    /// presence and connection limits for at most this long.
    pub node_ttl_s: u64,
    /// PEM file of the CA that signed a `rediss://` server's certificate,
    /// when it is not one the system trusts.
    pub tls_ca_file: PathBuf,
    /// Accept `redis://` (no TLS) to a host that is not this machine.
    pub allow_plaintext: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            kind: "memory".into(),
            url: "redis://127.0.0.1:6379".into(),
            prefix: "hearth".into(),
            node_ttl_s: 10,
            tls_ca_file: PathBuf::new(),
            allow_plaintext: false,
        }
    }
}

/// Whether a service URL's host is this machine (`127.0.0.0/8`, `::1`,
/// `localhost`, or a Unix socket path), where TLS is not required.
pub fn url_host_is_loopback(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    // Past any user:password@, up to the port, path or query.
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host),
    };
    if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
        // No host: a Unix socket, or the library's own default of localhost.
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssistantConfig {
    /// "builtin" (the deterministic engine, no network) or "openai" (a
    /// server speaking the chat-completions API).
    pub kind: String,
    /// The API's root, e.g. `http://127.0.0.1:11434/v1` for Ollama.
    pub base_url: String,
    pub model: String,
    /// Only from `HEARTH_ASSISTANT_API_KEY`, never from a file.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Connecting and the first token may take this long; after it, the
    /// stream may go quiet this long.
    pub timeout_s: u64,
    /// 0: the model server's own limit.
    pub max_tokens: u32,
    pub temperature: f32,
    /// Earlier turns of the session the model reads.
    pub history_turns: usize,
    /// Who words the reply to a message with a crisis: "builtin" (the
    /// built-in crisis reply) or "model". The resources are Hearth's
    /// either way.
    pub crisis_reply: String,
    /// Deltas after the first are published at most this often (ms).
    pub coalesce_ms: u64,
    /// Model requests in flight, per server and per player; past either a
    /// request is answered `unavailable` with `retry_after_ms`.
    pub max_in_flight: usize,
    pub max_in_flight_per_player: usize,
    /// How long a tool call that needs the player's approval waits for
    /// `tools.approve` / `tools.reject` before it is rejected.
    pub approval_timeout_s: u64,
    /// The personas a session is bound to (file only: an array of
    /// tables); naming any replaces the shipped ones, and `guide` must be
    /// among them.
    pub agents: Vec<Agent>,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        AssistantConfig {
            kind: "builtin".into(),
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: String::new(),
            api_key: None,
            timeout_s: 20,
            max_tokens: 512,
            temperature: 0.7,
            history_turns: 12,
            crisis_reply: "builtin".into(),
            coalesce_ms: 40,
            max_in_flight: 256,
            max_in_flight_per_player: 2,
            approval_timeout_s: 120,
            agents: Agents::defaults(),
        }
    }
}

impl std::fmt::Debug for AssistantConfig {
    // By hand, so that the key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssistantConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_s", &self.timeout_s)
            .field("history_turns", &self.history_turns)
            .field("crisis_reply", &self.crisis_reply)
            .field("coalesce_ms", &self.coalesce_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationsConfig {
    /// "sqlite" (embedded, one node) or "postgres" (shared by several nodes).
    pub kind: String,
    /// The SQLite file; empty: `conversations.db` beside the progress store.
    pub path: PathBuf,
    pub url: String,
    /// As `progress.sslmode` and `progress.ca_file`.
    pub sslmode: String,
    pub ca_file: PathBuf,
    /// v1 `user_message`s and their replies are kept in their session.
    pub record_v1: bool,
}

impl Default for ConversationsConfig {
    fn default() -> Self {
        ConversationsConfig {
            kind: "sqlite".into(),
            path: PathBuf::new(),
            url: String::new(),
            sslmode: "auto".into(),
            ca_file: PathBuf::new(),
            record_v1: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyConfig {
    /// Asks the configured model (`assistant.kind = "openai"`) for a second
    /// opinion on every chat message the rules do not already find
    /// imminent; it may raise the verdict, never lower it.
    pub model_check: bool,
    /// The longest a reply waits for that opinion (ms); past it, the rules'
    /// verdict stands.
    pub model_check_deadline_ms: u64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            model_check: false,
            model_check_deadline_ms: 800,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// env_logger filter syntax; `RUST_LOG` wins when set.
    pub level: String,
    /// "text" (logfmt) or "json" (one object per line, the same keys).
    pub format: String,
    /// One `ws_frame` line per client frame (who wrote when, and how much).
    pub frames: bool,
    /// Key of the pseudonyms that stand for players in lines holding
    /// health data (`crisis_detected`). Empty: a new random key at every
    /// start, so pseudonyms cannot be matched across restarts or nodes.
    pub pseudonym_key: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info,actix_server=warn".into(),
            format: "text".into(),
            frames: false,
            pseudonym_key: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// An address of its own for `/metrics`, `/api/metrics`, `/healthz` and
    /// `/readyz` (an admin port inside the private network); the public
    /// port then has no metrics. Empty: metrics on the public port.
    pub bind: String,
    /// On the public port, metrics need the server API key.
    pub require_key: bool,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads `path`. A missing file is an error only when `required` (the
    /// user named it); otherwise the built-in defaults apply.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Where the SQLite conversation store lives: as configured, or beside
    /// the progress store's file.
    pub fn conversations_path(&self) -> PathBuf {
        if !self.conversations.path.as_os_str().is_empty() {
            return self.conversations.path.clone();
        }
        self.progress.path.with_file_name("conversations.db")
    }

    pub fn uses_dev_secret(&self) -> bool {
        self.auth.algorithm.eq_ignore_ascii_case("HS256") && self.auth.secret == DEV_JWT_SECRET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_and_equals_the_defaults() {
        let shipped = include_str!("../../config.toml");
        let config = Config::parse(shipped).expect("config.toml parses");
        config.validate().expect("config.toml is valid");
        let defaults = Config::default();
        assert_eq!(config.server.bind, defaults.server.bind);
        assert_eq!(config.auth.secret, defaults.auth.secret);
        assert_eq!(
            config.limits.max_message_bytes,
            defaults.limits.max_message_bytes
        );
        assert_eq!(config.chat.crisis_resources, defaults.chat.crisis_resources);
        assert_eq!(
            config.exercises.catalogue.len(),
            defaults.exercises.catalogue.len()
        );
        assert_eq!(config.progress.path, defaults.progress.path);
        assert_eq!(config.channels, defaults.channels);
        assert_eq!(config.assistant.agents, defaults.assistant.agents);
        assert_eq!(config.safety.model_check, defaults.safety.model_check);
        assert_eq!(
            config.safety.model_check_deadline_ms,
            defaults.safety.model_check_deadline_ms
        );
    }

    #[test]
    fn agents_are_checked_with_the_rest() {
        let mut config = Config::default();
        config.assistant.agents.retain(|agent| agent.id != "guide");
        config.assistant.agents[0]
            .tools
            .push("launch_rockets".into());
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("agents without a guide and with an unknown tool are refused");
        };
        assert!(problems.contains("\"guide\""), "{problems}");
        assert!(problems.contains("launch_rockets"), "{problems}");
    }

    #[test]
    fn secrets_fail_closed() {
        let mut config = Config::default();
        assert!(config.validate().is_ok(), "the dev secret on loopback");
        config.server.bind = "0.0.0.0:8080".into();
        assert!(config.validate().is_err(), "the dev secret in the open");
        config.server.dev = true;
        assert!(config.validate().is_ok(), "--dev allows it");
        config.server.dev = false;
        config.auth.secret = "short".into();
        assert!(config.validate().is_err());
        config.auth.secret = "s".repeat(32);
        assert!(config.validate().is_ok());
        config.api.key = "k".repeat(31);
        assert!(config.validate().is_err());
        config.api.key = "k".repeat(32);
        assert!(config.validate().is_ok());
        config.auth.algorithm = "RS256".into();
        assert!(config.validate().is_err(), "no audience or issuer");
        config.auth.audience = "hearth".into();
        config.auth.issuer = "https://id.example".into();
        assert!(config.validate().is_ok());
        assert!(is_loopback_bind("[::1]:80") && is_loopback_bind("localhost:1"));
        assert!(!is_loopback_bind("example.org:80"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut config = Config::default();
        config.server.heartbeat_interval_s = 0;
        config.api.key = "short".into();
        config.auth.leeway_s = u64::MAX;
        config.assistant.timeout_s = u64::MAX;
        let Err(ConfigError::Invalid(problems)) = config.validate() else {
            panic!("invalid settings were accepted");
        };
        for setting in [
            "server.heartbeat_interval_s",
            "api.key",
            "auth.leeway_s",
            "assistant.timeout_s",
        ] {
            assert!(problems.contains(setting), "{setting} in {problems}");
        }
    }

    #[test]
    fn services_on_another_host_need_tls() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://localhost",
            "redis://:pw@[::1]:6379/0",
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres:///test?host=/run/postgresql",
        ] {
            assert!(url_host_is_loopback(url), "{url}");
        }
        for url in [
            "redis://10.0.0.5:6379",
            "redis://user:pw@cache.example.org:6379",
            "postgres://db.example.org/hearth",
        ] {
            assert!(!url_host_is_loopback(url), "{url}");
        }
        let mut config = Config::default();
        config.broker.kind = "redis".into();
        config.broker.url = "redis://cache.example.org:6379".into();
        assert!(config.validate().is_err(), "plaintext to another host");
        config.broker.url = "rediss://cache.example.org:6380".into();
        assert!(config.validate().is_ok());
        config.broker.url = "redis://cache.example.org:6379".into();
        config.broker.allow_plaintext = true;
        assert!(config.validate().is_ok(), "allowed explicitly");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::parse("[server]\nbnid = \"x\"").is_err());
    }
}
