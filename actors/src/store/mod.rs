//! Durable storage behind traits, each with one conformance suite that
//! every implementation runs: progress markers today (SQLite embedded,
//! PostgreSQL for a cluster).

pub mod progress;
