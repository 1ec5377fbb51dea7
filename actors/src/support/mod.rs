//! Small tools the rest of the crate leans on: the metrics registry (with
//! the assistant's own figures) and the
//! metered actor address, the token-bucket rate limit, and the eviction
//! rule of bounded per-player maps; the keyed pseudonyms of players in log
//! lines that hold health data; and the guard that lets tests needing
//! Redis or PostgreSQL skip where those are missing.

pub mod assistant_meters;
pub mod bounded;
pub mod connection_meters;
pub mod metered;
pub mod metrics;
pub mod pseudonym;
pub mod rate_limit;
mod registered;
pub mod test_services;
