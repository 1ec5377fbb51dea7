//! Configuration: `config.toml` (every setting, with defaults when a key is
//! absent) plus `HEARTH_*` environment overrides for secrets and the bind
//! address.

use std::path::{Path, PathBuf};

use hearth_actors::channels::rules::ChannelRules;
use hearth_actors::therapy::exercises::{default_exercises, Exercise};
use hearth_actors::therapy::resources::{default_crisis_resources, CrisisResource};
use serde::Deserialize;
use thiserror::Error;

/// The secret shipped in config.toml so that a new user can try Hearth at
/// once. Running with it logs a loud warning.
pub const DEV_JWT_SECRET: &str = "hearth-dev-secret-change-me";

/// The shortest HS256 secret or API key accepted: 256 bits, as RFC 7518
/// asks of an HS256 key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Whether `bind` listens only on this machine.
fn is_loopback_bind(bind: &str) -> bool {
    if let Ok(addr) = bind.parse::<std::net::SocketAddr>() {
        return addr.ip().is_loopback();
    }
    bind.rsplit_once(':')
        .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

#[derive(Debug, Clone, Default, Deserialize)]
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
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer key of the server API; empty turns the server API off (403).
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressConfig {
    /// "sqlite" (embedded, one node) or "postgres" (shared by several nodes).
    pub kind: String,
    /// The SQLite file.
    pub path: PathBuf,
    /// The PostgreSQL connection URL.
    pub url: String,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            kind: "sqlite".into(),
            path: PathBuf::from("data/progress.db"),
            url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
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
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            kind: "memory".into(),
            url: "redis://127.0.0.1:6379".into(),
            prefix: "hearth".into(),
            node_ttl_s: 10,
        }
    }
}

#[derive(Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationsConfig {
    /// "sqlite" (embedded, one node) or "postgres" (shared by several nodes).
    pub kind: String,
    /// The SQLite file; empty: `conversations.db` beside the progress store.
    pub path: PathBuf,
    pub url: String,
    /// v1 `user_message`s and their replies are kept in their session.
    pub record_v1: bool,
}

impl Default for ConversationsConfig {
    fn default() -> Self {
        ConversationsConfig {
            kind: "sqlite".into(),
            path: PathBuf::new(),
            url: String::new(),
            record_v1: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// env_logger filter syntax; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info,actix_server=warn".into(),
        }
    }
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

    /// `HEARTH_BIND`, `HEARTH_JWT_SECRET`, `HEARTH_API_KEY`,
    /// `HEARTH_PROGRESS`, `HEARTH_PROGRESS_PATH`, `HEARTH_PROGRESS_URL`,
    /// `HEARTH_BROKER`, `HEARTH_BROKER_URL`, `HEARTH_BROKER_PREFIX`: so
    /// secrets need not live in a file, and nodes of one cluster can share
    /// one.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if matches!(lookup("HEARTH_DEV").as_deref(), Some("1" | "true")) {
            self.server.dev = true;
        }
        if let Some(bind) = lookup("HEARTH_BIND") {
            self.server.bind = bind;
        }
        if let Some(secret) = lookup("HEARTH_JWT_SECRET") {
            self.auth.secret = secret;
        }
        if let Some(key) = lookup("HEARTH_API_KEY") {
            self.api.key = key;
        }
        if let Some(kind) = lookup("HEARTH_PROGRESS") {
            self.progress.kind = kind;
        }
        if let Some(path) = lookup("HEARTH_PROGRESS_PATH") {
            self.progress.path = PathBuf::from(path);
        }
        if let Some(url) = lookup("HEARTH_PROGRESS_URL") {
            self.progress.url = url;
        }
        if let Some(kind) = lookup("HEARTH_BROKER") {
            self.broker.kind = kind;
        }
        if let Some(url) = lookup("HEARTH_BROKER_URL") {
            self.broker.url = url;
        }
        if let Some(prefix) = lookup("HEARTH_BROKER_PREFIX") {
            self.broker.prefix = prefix;
        }
        self.apply_assistant_env(&lookup);
    }

    /// `HEARTH_ASSISTANT_API_KEY` (the only way to give the key),
    /// `HEARTH_ASSISTANT_KIND`, `_BASE_URL`, `_MODEL`, `_COALESCE_MS`,
    /// `_MAX_IN_FLIGHT`, `_MAX_IN_FLIGHT_PER_PLAYER`; `HEARTH_CONVERSATIONS`,
    /// `HEARTH_CONVERSATIONS_PATH`, `HEARTH_CONVERSATIONS_URL`;
    /// `HEARTH_SAFETY_MODEL_CHECK` (`true`/`false`),
    /// `HEARTH_SAFETY_MODEL_CHECK_DEADLINE_MS`.
    fn apply_assistant_env(&mut self, lookup: &impl Fn(&str) -> Option<String>) {
        let assistant = &mut self.assistant;
        if let Some(key) = lookup("HEARTH_ASSISTANT_API_KEY").filter(|key| !key.is_empty()) {
            assistant.api_key = Some(key);
        }
        for (name, field) in [
            ("HEARTH_ASSISTANT_KIND", &mut assistant.kind),
            ("HEARTH_ASSISTANT_BASE_URL", &mut assistant.base_url),
            ("HEARTH_ASSISTANT_MODEL", &mut assistant.model),
            ("HEARTH_CONVERSATIONS", &mut self.conversations.kind),
            ("HEARTH_CONVERSATIONS_URL", &mut self.conversations.url),
        ] {
            if let Some(value) = lookup(name) {
                *field = value;
            }
        }
        if let Some(path) = lookup("HEARTH_CONVERSATIONS_PATH") {
            self.conversations.path = PathBuf::from(path);
        }
        let number = |name: &str| -> Option<u64> {
            let text = lookup(name)?;
            match text.parse() {
                Ok(value) => Some(value),
                Err(_) => {
                    log::warn!("config_env_ignored name={name} reason=not_a_number");
                    None
                }
            }
        };
        if let Some(ms) = number("HEARTH_ASSISTANT_COALESCE_MS") {
            assistant.coalesce_ms = ms;
        }
        if let Some(n) = number("HEARTH_ASSISTANT_MAX_IN_FLIGHT") {
            assistant.max_in_flight = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("HEARTH_ASSISTANT_MAX_IN_FLIGHT_PER_PLAYER") {
            assistant.max_in_flight_per_player = usize::try_from(n).unwrap_or(usize::MAX);
        }
        match lookup("HEARTH_SAFETY_MODEL_CHECK").as_deref() {
            None => {}
            Some("true" | "1") => self.safety.model_check = true,
            Some("false" | "0") => self.safety.model_check = false,
            Some(_) => {
                log::warn!("config_env_ignored name=HEARTH_SAFETY_MODEL_CHECK reason=not_a_bool")
            }
        }
        if let Some(ms) = number("HEARTH_SAFETY_MODEL_CHECK_DEADLINE_MS") {
            self.safety.model_check_deadline_ms = ms;
        }
    }

    /// Checks every setting and reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        self.validate_secrets(&mut problems);
        self.validate_ranges(&mut problems);
        if self.server.heartbeat_interval_s == 0 {
            problems.push("server.heartbeat_interval_s must be at least 1".into());
        }
        if self.server.client_timeout_s <= self.server.heartbeat_interval_s {
            problems.push("server.client_timeout_s must exceed server.heartbeat_interval_s".into());
        }
        if !self.limits.rate_per_second.is_finite()
            || self.limits.rate_per_second <= 0.0
            || self.limits.rate_burst == 0
        {
            problems.push("limits.rate_per_second and limits.rate_burst must be positive".into());
        }
        if self.limits.outbound_max_frames == 0 || self.limits.outbound_max_bytes < 65536 {
            problems.push("limits.outbound_max_frames must be positive and limits.outbound_max_bytes at least 65536".into());
        }
        if self.limits.outbound_max_total_bytes < 1 << 20 {
            problems.push("limits.outbound_max_total_bytes must be at least 1048576".into());
        }
        if self.limits.outbound_max_age_ms < 1000 {
            problems.push("limits.outbound_max_age_ms must be at least 1000".into());
        }
        if self.limits.close_linger_ms > 60_000 {
            problems.push("limits.close_linger_ms must be at most 60000".into());
        }
        for (key, value) in [
            ("sessions_per_player", self.limits.sessions_per_player),
            (
                "progress_markers_per_player",
                self.limits.progress_markers_per_player,
            ),
        ] {
            if !(1..=100_000_000).contains(&value) {
                problems.push(format!("limits.{key} must be between 1 and 100000000"));
            }
        }
        if self.limits.max_message_bytes < 1024 {
            problems.push("limits.max_message_bytes must be at least 1024".into());
        }
        match self.progress.kind.as_str() {
            "sqlite" => {}
            "postgres" if !self.progress.url.is_empty() => {}
            "postgres" => problems.push("progress.kind \"postgres\" needs progress.url".into()),
            _ => problems.push("progress.kind must be \"sqlite\" or \"postgres\"".into()),
        }
        match self.broker.kind.as_str() {
            "memory" => {}
            "redis" if !self.broker.url.is_empty()
                && !self.broker.prefix.is_empty()
                && self.broker.node_ttl_s > 0 => {}
            "redis" => {
                problems.push("broker.kind \"redis\" needs broker.url, a broker.prefix and broker.node_ttl_s of at least 1".into())
            }
            _ => problems.push("broker.kind must be \"memory\" or \"redis\"".into()),
        }
        match self.conversations.kind.as_str() {
            "sqlite" => {}
            "postgres" if !self.conversations.url.is_empty() => {}
            "postgres" => {
                problems.push("conversations.kind \"postgres\" needs conversations.url".into())
            }
            _ => problems.push("conversations.kind must be \"sqlite\" or \"postgres\"".into()),
        }
        self.validate_assistant(&mut problems);
        if self.channels.max_subscriptions_per_connection == 0 {
            problems.push("channels.max_subscriptions_per_connection must be at least 1".into());
        }
        if self
            .exercises
            .catalogue
            .iter()
            .any(|e| e.id.ends_with("_complete"))
        {
            problems.push("an exercise id may not end in _complete".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }

    /// Bounds that keep durations and sizes from overflowing the clock
    /// arithmetic they feed (a deadline far in the future, a TTL in ms).
    fn validate_ranges(&self, problems: &mut Vec<String>) {
        const DAY_S: u64 = 24 * 3600;
        let bounds: [(&str, u64, u64); 10] = [
            (
                "server.heartbeat_interval_s",
                self.server.heartbeat_interval_s,
                DAY_S,
            ),
            (
                "server.client_timeout_s",
                self.server.client_timeout_s,
                DAY_S,
            ),
            (
                "server.shutdown_timeout_s",
                self.server.shutdown_timeout_s,
                DAY_S,
            ),
            ("auth.leeway_s", self.auth.leeway_s, 3600),
            ("broker.node_ttl_s", self.broker.node_ttl_s, DAY_S),
            (
                "channels.idle_stream_ttl_s",
                self.channels.idle_stream_ttl_s,
                30 * DAY_S,
            ),
            ("assistant.timeout_s", self.assistant.timeout_s, 3600),
            (
                "limits.outbound_max_age_ms",
                self.limits.outbound_max_age_ms,
                DAY_S * 1000,
            ),
            (
                "safety.model_check_deadline_ms",
                self.safety.model_check_deadline_ms,
                10_000,
            ),
            (
                "channels history_ttl_s (longest)",
                self.channels
                    .namespaces
                    .values()
                    .chain(std::iter::once(&self.channels.default))
                    .map(|rules| rules.history_ttl_s)
                    .max()
                    .unwrap_or(0),
                30 * DAY_S,
            ),
        ];
        for (name, value, most) in bounds {
            if value > most {
                problems.push(format!("{name} must be at most {most}"));
            }
        }
    }

    /// Fail closed: the published development secret only where nobody
    /// else can reach the server (a loopback bind) or in development mode;
    /// secrets and keys long enough not to be guessed; public-key tokens
    /// only for this service (audience) from a known issuer.
    fn validate_secrets(&self, problems: &mut Vec<String>) {
        let algorithm = self.auth.algorithm.to_ascii_uppercase();
        if self.uses_dev_secret() {
            if !self.server.dev && !is_loopback_bind(&self.server.bind) {
                problems.push("auth.secret is the shipped development secret, which anyone can sign tokens with: set HEARTH_JWT_SECRET (32 bytes or more) to serve on a non-loopback address, or run with --dev".into());
            }
        } else if algorithm == "HS256" && self.auth.secret.len() < MIN_SECRET_BYTES {
            problems.push("auth.secret must be at least 32 bytes".into());
        }
        if !self.api.key.is_empty() && self.api.key.len() < MIN_SECRET_BYTES {
            problems.push("api.key must be empty (the server API off) or at least 32 bytes".into());
        }
        if matches!(algorithm.as_str(), "RS256" | "ES256")
            && (self.auth.audience.is_empty() || self.auth.issuer.is_empty())
        {
            problems.push("RS256 and ES256 tokens need auth.audience and auth.issuer, so that a token issued for another service is refused".into());
        }
    }

    fn validate_assistant(&self, problems: &mut Vec<String>) {
        let assistant = &self.assistant;
        match assistant.kind.as_str() {
            "builtin" => {}
            "openai" if !assistant.model.trim().is_empty() && !assistant.base_url.is_empty() => {}
            "openai" => problems.push(
                "assistant.kind \"openai\" needs assistant.base_url and assistant.model".into(),
            ),
            _ => problems.push("assistant.kind must be \"builtin\" or \"openai\"".into()),
        }
        if !matches!(assistant.crisis_reply.as_str(), "builtin" | "model") {
            problems.push("assistant.crisis_reply must be \"builtin\" or \"model\"".into());
        }
        if assistant.timeout_s == 0 {
            problems.push("assistant.timeout_s must be at least 1".into());
        }
        if !(0.0..=2.0).contains(&assistant.temperature) {
            problems.push("assistant.temperature must be between 0 and 2".into());
        }
        if assistant.max_in_flight == 0 || assistant.max_in_flight_per_player == 0 {
            problems.push(
                "assistant.max_in_flight and assistant.max_in_flight_per_player must be at least 1"
                    .into(),
            );
        }
        if assistant.coalesce_ms > 10_000 {
            problems.push("assistant.coalesce_ms must be at most 10000".into());
        }
        if self.safety.model_check && assistant.kind != "openai" {
            problems.push("safety.model_check needs a model: assistant.kind = \"openai\"".into());
        }
        if !(50..=10_000).contains(&self.safety.model_check_deadline_ms) {
            problems.push("safety.model_check_deadline_ms must be between 50 and 10000".into());
        }
        if !self.channels.session_rules_hold() {
            problems.push("channels.namespaces.session must keep subscribe = \"owner\" and publish = \"server\", and no other namespace may use subscribe = \"owner\"".into());
        }
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
        let shipped = include_str!("../config.toml");
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
        assert_eq!(config.safety.model_check, defaults.safety.model_check);
        assert_eq!(
            config.safety.model_check_deadline_ms,
            defaults.safety.model_check_deadline_ms
        );
    }

    #[test]
    fn the_safety_model_check_needs_a_model_and_a_sane_deadline() {
        let mut config = Config::default();
        config.apply_env(|key| match key {
            "HEARTH_SAFETY_MODEL_CHECK" => Some("true".into()),
            "HEARTH_SAFETY_MODEL_CHECK_DEADLINE_MS" => Some("300".into()),
            _ => None,
        });
        assert!(config.safety.model_check);
        assert_eq!(config.safety.model_check_deadline_ms, 300);
        assert!(
            config.validate().is_err(),
            "the built-in assistant has no model"
        );
        config.assistant.kind = "openai".into();
        config.assistant.model = "m".into();
        assert!(config.validate().is_ok());
        config.safety.model_check_deadline_ms = 0;
        assert!(config.validate().is_err());
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
    fn unknown_keys_are_refused() {
        assert!(Config::parse("[server]\nbnid = \"x\"").is_err());
    }

    #[test]
    fn env_overrides_secrets_and_bind() {
        let mut config = Config::default();
        config.apply_env(|key| match key {
            "HEARTH_BIND" => Some("0.0.0.0:9000".into()),
            "HEARTH_API_KEY" => Some("k".into()),
            _ => None,
        });
        assert_eq!(config.server.bind, "0.0.0.0:9000");
        assert_eq!(config.api.key, "k");
        assert!(config.uses_dev_secret());
    }
}
