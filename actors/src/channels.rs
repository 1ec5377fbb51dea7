//! Channel names and the per-namespace rules that say who may subscribe,
//! who may publish, whether presence is kept and how much history is
//! retained. Permission checks are pure functions of the rules and the
//! connection's identity, so the session can refuse early and the
//! broadcaster can check again for the server API.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{IdError, PlayerId};
use crate::protocol::ErrorCode;

/// `namespace:rest`, 1–200 characters of `[A-Za-z0-9_.@:-]`, with a
/// non-empty namespace and rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    pub const MAX_LEN: usize = 200;

    pub fn parse(value: &str) -> Result<Self, IdError> {
        let len = value.len();
        if len == 0 || len > Self::MAX_LEN {
            return Err(IdError::Length {
                what: "channel name",
                min: 1,
                max: Self::MAX_LEN,
            });
        }
        let allowed =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b':' | b'-');
        let shaped = value
            .split_once(':')
            .is_some_and(|(namespace, rest)| !namespace.is_empty() && !rest.is_empty());
        if !value.bytes().all(allowed) || !shaped {
            return Err(IdError::Charset {
                what: "channel name",
                allowed: "namespace:rest of A-Z a-z 0-9 _ . @ : -",
            });
        }
        Ok(ChannelName(Arc::from(value)))
    }

    /// The personal channel every connection of `player` is subscribed to.
    pub fn personal(player: &PlayerId) -> Self {
        ChannelName(Arc::from(format!("{PERSONAL_NAMESPACE}:{player}")))
    }

    pub fn namespace(&self) -> &str {
        self.0
            .split_once(':')
            .map_or("", |(namespace, _)| namespace)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const PERSONAL_NAMESPACE: &str = "user";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribeRule {
    /// Only `<namespace>:<own player id>`.
    Own,
    /// Any player.
    Any,
    /// Only names listed in the token's `channels` claim.
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishRule {
    /// Subscribers of the channel.
    Members,
    /// Only the server API.
    Server,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelRules {
    pub max_subscriptions_per_connection: usize,
    /// A channel with no history left and nobody present keeps its epoch
    /// and offset this long after its last use, then is forgotten.
    pub idle_stream_ttl_s: u64,
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
            ]),
            default: rules(SubscribeRule::Token, PublishRule::Members, true, 100, 300),
        }
    }
}

/// A refusal of one channel: the error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl ChannelRules {
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
    ) -> Result<(), Refusal> {
        let allowed = match self.for_channel(channel).subscribe {
            SubscribeRule::Any => true,
            SubscribeRule::Own => channel
                .as_str()
                .split_once(':')
                .is_some_and(|(_, rest)| rest == player.as_str()),
            SubscribeRule::Token => granted.iter().any(|name| name == channel.as_str()),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::Forbidden,
                format!("not allowed to subscribe to {channel}"),
            ))
        }
    }

    /// May a client publish into `channel`, given whether it is subscribed?
    pub fn check_client_publish(
        &self,
        channel: &ChannelName,
        is_member: bool,
    ) -> Result<(), Refusal> {
        match self.for_channel(channel).publish {
            PublishRule::Server => Err(Refusal::new(
                ErrorCode::Forbidden,
                format!("clients may not publish into {channel}"),
            )),
            PublishRule::Members if !is_member => Err(Refusal::new(
                ErrorCode::Forbidden,
                format!("subscribe to {channel} before publishing into it"),
            )),
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
    use proptest::prelude::*;

    proptest! {
        /// Whatever the input, parsing never panics, and what it accepts
        /// obeys every rule and round-trips.
        #[test]
        fn parse_accepts_exactly_the_valid_names(text in "\\PC{0,220}") {
            match ChannelName::parse(&text) {
                Ok(name) => {
                    prop_assert_eq!(name.as_str(), text.as_str());
                    prop_assert!(!text.is_empty() && text.len() <= ChannelName::MAX_LEN);
                    let (namespace, rest) = text.split_once(':').unwrap();
                    prop_assert!(!namespace.is_empty() && !rest.is_empty());
                    prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b)));
                }
                Err(_) => {
                    let valid = !text.is_empty()
                        && text.len() <= ChannelName::MAX_LEN
                        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.@:-".contains(&b))
                        && text.split_once(':').is_some_and(|(n, r)| !n.is_empty() && !r.is_empty());
                    prop_assert!(!valid, "refused a valid name {:?}", text);
                }
            }
        }

        /// Names built from the allowed alphabet are accepted.
        #[test]
        fn well_formed_names_are_accepted(namespace in "[A-Za-z0-9_.@-]{1,20}", rest in "[A-Za-z0-9_.@:-]{1,170}") {
            let text = format!("{namespace}:{rest}");
            prop_assert!(ChannelName::parse(&text).is_ok());
        }
    }

    fn name(text: &str) -> ChannelName {
        ChannelName::parse(text).unwrap()
    }

    #[test]
    fn channel_names_follow_the_rules() {
        for good in [
            "room:lobby",
            "a:b",
            "user:alice@x.y",
            "ns:a:b-c_d.e",
            &format!("r:{}", "x".repeat(198)),
        ] {
            assert!(ChannelName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "lobby",
            ":x",
            "room:",
            "room:has space",
            "room:é",
            &format!("r:{}", "x".repeat(199)),
        ] {
            assert!(ChannelName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(name("room:a:b").namespace(), "room");
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
