//! The per-namespace rules that say who may subscribe, who may publish,
//! whether presence is kept and how much history is retained. Permission
//! checks are pure functions of the rules and the connection's identity,
//! so the session can refuse early and the server API can check again.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::channel_name::{ChannelName, PERSONAL_NAMESPACE, SESSION_NAMESPACE};
use crate::model::ids::PlayerId;

/// A permission the rules deny, with a message for the client; the
/// protocol layer names it `forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribeRule {
    /// Only `<namespace>:<own player id>`.
    Own,
    /// Any player.
    Any,
    /// Only names listed in the token's `channels` claim.
    Token,
    /// Only the owner of what the name after the colon names (the player
    /// whose assistant session it is). Who owns it is in a store, not in
    /// these rules: the session asks before it subscribes, and the rules
    /// alone refuse.
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishRule {
    /// Subscribers of the channel.
    Members,
    /// Only the server API.
    Server,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRules {
    pub subscribe: SubscribeRule,
    pub publish: PublishRule,
    pub presence: bool,
    pub history_size: usize,
    pub history_ttl_s: u64,
}

impl NamespaceRules {
    pub fn history_ttl(&self) -> Duration {
        Duration::from_secs(self.history_ttl_s)
    }
}

/// Every namespace's rules, and the rules of any namespace not listed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelRules {
    pub max_subscriptions_per_connection: usize,
    /// A channel with no history left and nobody present keeps its epoch
    /// and offset this long after its last use, then is forgotten.
    pub idle_stream_ttl_s: u64,
    /// The most one subscribe recovers over all its channels, in
    /// publications and in bytes; past either, the remaining channels
    /// answer `recovered: false` and send nothing old.
    pub recovery_max_publications: usize,
    pub recovery_max_bytes: usize,
    /// The brokers' budgets: bytes players' publications hold in
    /// history, in all and per player (past either, `publish` gets
    /// `limit_exceeded`; the server's own publications are not counted),
    /// and channels one player may create per minute by publishing to new
    /// names.
    pub history_max_bytes: usize,
    pub history_max_bytes_per_player: usize,
    pub new_channels_per_minute_per_player: u32,
    pub namespaces: HashMap<String, NamespaceRules>,
    pub default: NamespaceRules,
}

impl Default for ChannelRules {
    fn default() -> Self {
        let rules = |subscribe, publish, presence, history_size, history_ttl_s| NamespaceRules {
            subscribe,
            publish,
            presence,
            history_size,
            history_ttl_s,
        };
        ChannelRules {
            max_subscriptions_per_connection: 128,
            idle_stream_ttl_s: 3600,
            recovery_max_publications: 1000,
            recovery_max_bytes: 4 << 20,
            history_max_bytes: 256 << 20,
            history_max_bytes_per_player: 16 << 20,
            new_channels_per_minute_per_player: 60,
            namespaces: HashMap::from([
                (
                    PERSONAL_NAMESPACE.to_string(),
                    rules(SubscribeRule::Own, PublishRule::Server, false, 100, 300),
                ),
                (
                    "room".to_string(),
                    rules(SubscribeRule::Any, PublishRule::Members, true, 100, 300),
                ),
                (
                    "news".to_string(),
                    rules(SubscribeRule::Any, PublishRule::Server, false, 50, 600),
                ),
                (SESSION_NAMESPACE.to_string(), session_rules()),
            ]),
            default: rules(SubscribeRule::Token, PublishRule::Members, true, 100, 300),
        }
    }
}

/// An assistant session's channel: only its owner subscribes, only the
/// server publishes, presence shows the owner's other devices, and history
/// keeps the last two replies of a long answer (one delta every 40 ms for a
/// minute is 1,500) for an hour.
pub fn session_rules() -> NamespaceRules {
    NamespaceRules {
        subscribe: SubscribeRule::Owner,
        publish: PublishRule::Server,
        presence: true,
        history_size: 4000,
        history_ttl_s: 3600,
    }
}

impl ChannelRules {
    /// The `session` namespace's rules, put back when a configuration
    /// lists namespaces without it: assistant replies need them.
    pub fn with_session_namespace(mut self) -> Self {
        self.namespaces
            .entry(SESSION_NAMESPACE.to_string())
            .or_insert_with(session_rules);
        self
    }

    /// Only the `session` namespace names what an owner is checked
    /// against (an assistant session), and its publications come from the
    /// server alone.
    pub fn session_rules_hold(&self) -> bool {
        let session_ok = self.namespaces.get(SESSION_NAMESPACE).is_none_or(|rules| {
            rules.subscribe == SubscribeRule::Owner && rules.publish == PublishRule::Server
        });
        let others_ok = self
            .namespaces
            .iter()
            .filter(|(name, _)| name.as_str() != SESSION_NAMESPACE)
            .map(|(_, rules)| rules)
            .chain([&self.default])
            .all(|rules| rules.subscribe != SubscribeRule::Owner);
        session_ok && others_ok
    }

    /// Does subscribing to `channel` need its owner checked?
    pub fn needs_owner(&self, channel: &ChannelName) -> bool {
        self.for_channel(channel).subscribe == SubscribeRule::Owner
    }

    pub fn for_channel(&self, channel: &ChannelName) -> &NamespaceRules {
        self.namespaces
            .get(channel.namespace())
            .unwrap_or(&self.default)
    }

    /// May `player`, whose token grants `granted`, subscribe to `channel`?
    pub fn check_subscribe(
        &self,
        channel: &ChannelName,
        player: &PlayerId,
        granted: &[String],
    ) -> Result<(), Denied> {
        let allowed = match self.for_channel(channel).subscribe {
            SubscribeRule::Any => true,
            SubscribeRule::Own => channel
                .as_str()
                .split_once(':')
                .is_some_and(|(_, rest)| rest == player.as_str()),
            SubscribeRule::Token => granted.iter().any(|name| name == channel.as_str()),
            SubscribeRule::Owner => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Denied(format!("not allowed to subscribe to {channel}")))
        }
    }

    /// May a client publish into `channel`, given whether it is subscribed?
    pub fn check_client_publish(
        &self,
        channel: &ChannelName,
        is_member: bool,
    ) -> Result<(), Denied> {
        match self.for_channel(channel).publish {
            PublishRule::Server => Err(Denied(format!("clients may not publish into {channel}"))),
            PublishRule::Members if !is_member => Err(Denied(format!(
                "subscribe to {channel} before publishing into it"
            ))),
            PublishRule::Members => Ok(()),
        }
    }

    /// Does a subscription to `channel` count against the per-connection
    /// limit? The automatic personal channel does not.
    pub fn counts_against_limit(&self, channel: &ChannelName, player: &PlayerId) -> bool {
        *channel != ChannelName::personal(player)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ChannelName {
        ChannelName::parse(text).unwrap()
    }

    #[test]
    fn default_permissions_match_the_protocol() {
        let rules = ChannelRules::default();
        let alice = PlayerId::parse("alice").unwrap();
        assert!(rules
            .check_subscribe(&name("user:alice"), &alice, &[])
            .is_ok());
        assert!(rules
            .check_subscribe(&name("user:bob"), &alice, &[])
            .is_err());
        assert!(rules.check_subscribe(&name("room:x"), &alice, &[]).is_ok());
        assert!(rules.check_subscribe(&name("news:x"), &alice, &[]).is_ok());
        assert!(rules.check_subscribe(&name("team:x"), &alice, &[]).is_err());
        assert!(rules
            .check_subscribe(&name("team:x"), &alice, &["team:x".to_string()])
            .is_ok());
        assert!(rules.check_client_publish(&name("room:x"), true).is_ok());
        assert!(rules.check_client_publish(&name("room:x"), false).is_err());
        assert!(rules.check_client_publish(&name("news:x"), true).is_err());
        assert!(rules
            .check_client_publish(&name("user:alice"), true)
            .is_err());
        assert!(rules.for_channel(&name("room:x")).presence);
        assert!(!rules.for_channel(&name("news:x")).presence);
        assert_eq!(rules.for_channel(&name("news:x")).history_size, 50);
        assert!(!rules.counts_against_limit(&name("user:alice"), &alice));
        assert!(rules.counts_against_limit(&name("user:bob"), &alice));
    }
}
