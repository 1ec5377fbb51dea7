//! JWT authentication of WebSocket connections (docs/protocol.md, section
//! 2) and the `hearth token` helper. Every refusal maps to one of exactly three
//! close reasons; the token itself is never logged.

use std::collections::HashSet;

use hearth_actors::model::ids::PlayerId;
use hearth_actors::protocol::Close;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::AuthConfig;

/// Who a valid token says the client is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub player: PlayerId,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    pub channels: Vec<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("token expired")]
    Expired,
    /// The detail is for debug logs only; the client sees `invalid token`.
    #[error("invalid token")]
    Invalid(String),
}

impl AuthError {
    /// The close docs/protocol.md (section 2) names for this refusal.
    pub fn close(&self) -> Close {
        match self {
            AuthError::Missing => Close::MissingToken,
            AuthError::Expired => Close::ExpiredToken,
            AuthError::Invalid(_) => Close::InvalidToken,
        }
    }
}

#[derive(Debug, Error)]
pub enum AuthSetupError {
    #[error("auth.algorithm {0:?} is not one of HS256, RS256, ES256")]
    Algorithm(String),
    #[error("auth.secret must not be empty for HS256")]
    EmptySecret,
    #[error("cannot read auth.public_key_file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("auth.public_key_file is not a usable key: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("signing tokens needs HS256 and a secret")]
    CannotSign,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The publisher name of the server API (docs/protocol.md, section 5).
const RESERVED_PLAYER: &str = "server";

pub struct Authenticator {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    algorithm: Algorithm,
    validation: Validation,
    leeway_s: u64,
}

impl Authenticator {
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        let algorithm = match config.algorithm.to_ascii_uppercase().as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            _ => return Err(AuthSetupError::Algorithm(config.algorithm.clone())),
        };
        let (decoding, encoding) = if algorithm == Algorithm::HS256 {
            if config.secret.is_empty() {
                return Err(AuthSetupError::EmptySecret);
            }
            let secret = config.secret.as_bytes();
            (
                DecodingKey::from_secret(secret),
                Some(EncodingKey::from_secret(secret)),
            )
        } else {
            let pem = std::fs::read(&config.public_key_file).map_err(|source| {
                AuthSetupError::KeyFile {
                    path: config.public_key_file.clone(),
                    source,
                }
            })?;
            let key = if algorithm == Algorithm::RS256 {
                DecodingKey::from_rsa_pem(&pem)
            } else {
                DecodingKey::from_ec_pem(&pem)
            };
            (key.map_err(AuthSetupError::Key)?, None)
        };

        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp".to_string(), "sub".to_string()]);
        if config.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&[&config.issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        if config.audience.is_empty() {
            // Not configured: ignored, as docs/protocol.md (section 2) says.
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[&config.audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        Ok(Authenticator {
            decoding,
            encoding,
            algorithm,
            validation,
            leeway_s: config.leeway_s,
        })
    }

    pub fn verify(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        let token = match token {
            Some(token) if !token.is_empty() => token,
            _ => return Err(AuthError::Missing),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                other => AuthError::Invalid(format!("{other:?}")),
            })?;
        let claims = data.claims;
        let player = PlayerId::parse(&claims.sub)
            .map_err(|err| AuthError::Invalid(format!("sub: {err}")))?;
        // "server" names the server API as a publisher on the wire: no
        // player may sign in as it and publish in its name.
        if player.as_str().eq_ignore_ascii_case(RESERVED_PLAYER) {
            return Err(AuthError::Invalid("sub: \"server\" is reserved".into()));
        }
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat.is_some_and(|iat| iat > now + self.leeway_s) {
            return Err(AuthError::Invalid("iat is in the future".into()));
        }
        Ok(Identity {
            player,
            expires_at: claims.exp,
            channels: claims.channels,
            name: claims.name,
        })
    }

    /// Signs a token for `player`, valid for `ttl_s` seconds: the `hearth
    /// token` command, so a new user can connect at once.
    pub fn issue(
        &self,
        player: &PlayerId,
        ttl_s: u64,
        name: Option<String>,
        channels: Vec<String>,
    ) -> Result<String, AuthSetupError> {
        #[derive(Serialize)]
        struct NewClaims<'a> {
            sub: &'a str,
            iat: u64,
            exp: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<String>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            channels: Vec<String>,
        }
        let encoding = self.encoding.as_ref().ok_or(AuthSetupError::CannotSign)?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = NewClaims {
            sub: player.as_str(),
            iat: now,
            exp: now + ttl_s,
            name,
            channels,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(AuthSetupError::Key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::from_config(&AuthConfig::default()).unwrap()
    }

    #[test]
    fn an_issued_token_verifies() {
        let auth = authenticator();
        let alice = PlayerId::parse("alice").unwrap();
        let token = auth
            .issue(&alice, 60, Some("Alice".into()), vec!["team:a".into()])
            .unwrap();
        let identity = auth.verify(Some(&token)).unwrap();
        assert_eq!(identity.player, alice);
        assert_eq!(identity.name.as_deref(), Some("Alice"));
        assert_eq!(identity.channels, ["team:a"]);
    }

    #[test]
    fn refusals_map_to_the_three_reasons() {
        let auth = authenticator();
        let reason = |token| auth.verify(token).err().map(|e| e.close().reason());
        assert_eq!(reason(None), Some("missing token"));
        assert_eq!(reason(Some("")), Some("missing token"));
        assert_eq!(reason(Some("a.b.c")), Some("invalid token"));
    }
}
