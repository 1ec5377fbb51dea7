//! Hearth's transport-free core: the wire types, the actors and the
//! therapeutic domain. Nothing here opens a socket; the server crate adapts
//! these actors to HTTP and WebSocket.

pub mod bounded;
pub mod broadcaster;
pub mod broker;
pub mod broker_memory;
pub mod broker_redis;
pub mod channels;
pub mod chat_processor;
pub mod chat_server;
pub mod crisis;
pub mod engine;
pub mod exercise_flow;
pub mod exercises;
pub mod ids;
pub mod metered;
pub mod metrics;
pub mod progress;
pub mod progress_postgres;
pub mod progress_sqlite;
pub mod protocol;
pub mod rate_limit;
pub mod resources;
pub mod text;
