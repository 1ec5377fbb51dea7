//! Every check on a loaded configuration, each problem reported, all of
//! them at once.

use super::{is_loopback_bind, url_host_is_loopback, Config, ConfigError, MIN_SECRET_BYTES};
use hearth_actors::assistant::agents::Agents;

impl Config {
    /// Checks every setting and reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        self.validate_secrets(&mut problems);
        if self.broker.kind == "redis"
            && self.broker.url.starts_with("redis://")
            && !url_host_is_loopback(&self.broker.url)
            && !self.broker.allow_plaintext
        {
            problems.push("broker.url: a Redis on another host needs TLS (rediss://), or broker.allow_plaintext = true".into());
        }
        for (section, sslmode) in [
            ("progress", &self.progress.sslmode),
            ("conversations", &self.conversations.sslmode),
        ] {
            if !matches!(
                sslmode.as_str(),
                "auto" | "disable" | "require" | "verify-full"
            ) {
                problems.push(format!("{section}.sslmode must be \"auto\", \"disable\", \"require\" or \"verify-full\""));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push("log.format must be \"text\" or \"json\"".into());
        }
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
        if !(1..=3600).contains(&assistant.approval_timeout_s) {
            problems.push("assistant.approval_timeout_s must be between 1 and 3600".into());
        }
        if let Err(agent_problems) = Agents::new(assistant.agents.clone()) {
            problems.extend(agent_problems);
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
}
