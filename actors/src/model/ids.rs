//! Newtype identifiers that validate on construction, so an invalid player,
//! session or client id cannot exist past the edge where a frame is parsed.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// Why a client-supplied identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("{what} must be {min}-{max} characters long")]
    Length {
        what: &'static str,
        min: usize,
        max: usize,
    },
    #[error("{what} may only contain {allowed}")]
    Charset {
        what: &'static str,
        allowed: &'static str,
    },
}

fn check(
    value: &str,
    what: &'static str,
    max: usize,
    allowed: &'static str,
    ok: fn(u8) -> bool,
) -> Result<(), IdError> {
    // Lengths are counted in characters; the allowed sets are ASCII, so a
    // valid id has as many bytes as characters and a non-ASCII one fails below.
    let chars = value.chars().count();
    if chars == 0 || chars > max {
        return Err(IdError::Length { what, min: 1, max });
    }
    if !value.bytes().all(ok) {
        return Err(IdError::Charset { what, allowed });
    }
    Ok(())
}

fn player_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b':' | b'-')
}

fn session_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// A player: the JWT's `sub`. Cheap to clone, because it travels with every
/// message between actors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PlayerId(Arc<str>);

impl PlayerId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(
            value,
            "player id",
            Self::MAX_LEN,
            "A-Z a-z 0-9 _ . @ : -",
            player_char,
        )?;
        Ok(PlayerId(Arc::from(value)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A therapeutic session, scoped to its player: server-made `sess_<hex>` or
/// named by the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &str) -> Result<Self, IdError> {
        check(
            value,
            "session_id",
            Self::MAX_LEN,
            "A-Z a-z 0-9 _ -",
            session_char,
        )?;
        Ok(SessionId(Arc::from(value)))
    }

    pub fn generate() -> Self {
        SessionId(Arc::from(format!("sess_{}", Uuid::new_v4().simple())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        SessionId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's correlation id (`id` on a request, `reply_to` on replies).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientRef(Arc<str>);

impl ClientRef {
    pub const MAX_LEN: usize = 64;

    /// 1 to 64 characters: an empty id could not be told from none in a
    /// reply, so it is refused rather than echoed.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        let chars = value.chars().count();
        if chars == 0 || chars > Self::MAX_LEN {
            return Err(IdError::Length {
                what: "id",
                min: 1,
                max: Self::MAX_LEN,
            });
        }
        Ok(ClientRef(Arc::from(value)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One WebSocket connection. Random rather than a counter so that ids stay
/// unique across the nodes of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(Uuid);

impl ConnId {
    pub fn generate() -> Self {
        ConnId(Uuid::new_v4())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn_{}", self.0.simple())
    }
}

impl Serialize for ConnId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A chat message's id: `msg_<32 lowercase hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(Uuid);

impl MessageId {
    const PREFIX: &'static str = "msg_";

    pub fn generate() -> Self {
        MessageId(Uuid::new_v4())
    }

    /// Reads back the exact shape `Display` writes, so that a parsed id
    /// prints as the text it came from (a stored id, or one a client names).
    pub fn parse(value: &str) -> Result<Self, IdError> {
        const WHAT: &str = "message id";
        const LEN: usize = MessageId::PREFIX.len() + 32;
        if value.len() != LEN {
            return Err(IdError::Length {
                what: WHAT,
                min: LEN,
                max: LEN,
            });
        }
        let charset = IdError::Charset {
            what: WHAT,
            allowed: "msg_ and 32 lowercase hex digits",
        };
        let Some(hex) = value.strip_prefix(Self::PREFIX) else {
            return Err(charset);
        };
        // Uuid also takes upper case, which would not print back the same.
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(charset);
        }
        Uuid::try_parse(hex).map(MessageId).map_err(|_| charset)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0.simple())
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_ids_follow_the_jwt_sub_rules() {
        assert!(PlayerId::parse("alice").is_ok());
        assert!(PlayerId::parse("a.b@c:d-e_f").is_ok());
        assert!(PlayerId::parse(&"x".repeat(128)).is_ok());
        assert!(PlayerId::parse(&"x".repeat(129)).is_err());
        assert!(PlayerId::parse("").is_err());
        assert!(PlayerId::parse("has space").is_err());
        assert!(PlayerId::parse("émile").is_err());
    }

    #[test]
    fn session_ids_are_scoped_names() {
        assert!(SessionId::parse("sess_1-a").is_ok());
        assert!(SessionId::parse(&"s".repeat(65)).is_err());
        assert!(SessionId::parse("a.b").is_err());
        let made = SessionId::generate();
        assert!(made.as_str().starts_with("sess_"));
        assert!(SessionId::parse(made.as_str()).is_ok());
    }

    #[test]
    fn client_refs_are_bounded() {
        assert!(ClientRef::parse("").is_err());
        assert!(ClientRef::parse("a").is_ok());
        assert!(ClientRef::parse(&"é".repeat(64)).is_ok());
        assert!(ClientRef::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn generated_ids_have_their_wire_shape() {
        let msg = MessageId::generate().to_string();
        assert_eq!(msg.len(), 4 + 32);
        assert!(msg[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(ConnId::generate().to_string().starts_with("conn_"));
    }

    #[test]
    fn message_ids_parse_back_only_from_their_own_shape() {
        let made = MessageId::generate();
        assert_eq!(MessageId::parse(&made.to_string()), Ok(made));
        let hex = "0123456789abcdef0123456789abcdef";
        assert!(MessageId::parse(&format!("msg_{hex}")).is_ok());
        assert!(MessageId::parse(&format!("msg_{}", hex.to_uppercase())).is_err());
        assert!(MessageId::parse(&format!("mxg_{hex}")).is_err());
        assert!(MessageId::parse(&format!("msg_{hex}0")).is_err());
        assert!(MessageId::parse("msg_").is_err());
        assert!(MessageId::parse(&format!("msg_{}é", &hex[..30])).is_err());
    }
}
