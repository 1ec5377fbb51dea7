//! What the HTTP handlers share: reading a bearer token, and the shape of
//! every error body.

use actix_web::http::header::{self, HeaderMap};
use serde_json::{json, Value};

/// The token of an `Authorization: Bearer` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The body of every HTTP error: a stable code and a message.
pub(super) fn error_json(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"error": code, "message": message.to_string()})
}
