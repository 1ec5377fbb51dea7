//! Keyed pseudonyms for players in log lines that hold health data (a
//! crisis detected): an HMAC-SHA256 of the player id under a server key,
//! so a log pipeline never holds player id and crisis together, while
//! whoever holds the key can still find a player's lines. The key is set
//! once at start (`[log] pseudonym_key`); without one, a random key per
//! process start.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::ids::PlayerId;

static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// Sets the key; the first call wins. An empty key leaves the random one.
pub fn set_key(key: &[u8]) {
    if !key.is_empty() {
        let _ = KEY.set(key.to_vec());
    }
}

fn key() -> &'static [u8] {
    KEY.get_or_init(|| {
        let mut random = uuid::Uuid::new_v4().as_bytes().to_vec();
        random.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        random
    })
}

/// `p_` and 16 hex digits (64 bits) of the player's HMAC.
pub fn of(player: &PlayerId) -> String {
    of_with(key(), player)
}

fn of_with(key: &[u8], player: &PlayerId) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return "p_unavailable".into();
    };
    mac.update(player.as_str().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("p_");
    for byte in &digest[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_stable_per_key_and_hides_the_id() {
        let alice = PlayerId::parse("alice").unwrap();
        let bob = PlayerId::parse("bob").unwrap();
        let one = of_with(b"key one", &alice);
        assert_eq!(one, of_with(b"key one", &alice));
        assert_ne!(one, of_with(b"key one", &bob));
        assert_ne!(one, of_with(b"key two", &alice));
        assert!(one.starts_with("p_") && one.len() == 18, "{one}");
        assert!(!one.contains("alice"));
    }
}
