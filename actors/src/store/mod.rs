//! Durable storage behind traits, each with one conformance suite that
//! every implementation runs, and each kept in SQLite (embedded, one node)
//! or PostgreSQL (shared by a cluster): progress markers, and assistant
//! conversations. `postgres_link.rs`: how both PostgreSQL stores connect,
//! TLS included.

pub mod conversations;
pub mod postgres_link;
pub mod progress;
mod sqlite;
