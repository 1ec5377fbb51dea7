//! Channel names: `namespace:rest`, validated on construction, so an
//! invalid name cannot exist past the edge where it was parsed.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::model::ids::{IdError, PlayerId, SessionId};

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

    /// `session:<id>`, where an assistant session's replies stream. A
    /// session id's characters are all allowed in a channel name.
    pub fn session(session: &SessionId) -> Self {
        ChannelName(Arc::from(format!("{SESSION_NAMESPACE}:{session}")))
    }

    /// The session a `session:` channel names, if it names one.
    pub fn session_id(&self) -> Option<SessionId> {
        let rest = self.0.strip_prefix(SESSION_NAMESPACE)?.strip_prefix(':')?;
        SessionId::parse(rest).ok()
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
/// Where each assistant session's reply stream is published.
pub const SESSION_NAMESPACE: &str = "session";

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
}
