//! The Hearth server: configuration, authentication, HTTP and WebSocket,
//! and the wiring of the actors of `hearth-actors`.
//!
//! # Layout
//!
//! - [`app`]: opens the stores and the broker, starts the actors and the
//!   HTTP server ([`start`]).
//! - [`shutdown`]: the graceful stop.
//! - [`config`], [`auth`], [`logging`], [`state`]: settings, JWT
//!   verification, log lines, and what every handler shares.
//! - [`http`]: the one routing table: the WebSocket upgrade, health,
//!   metrics and the server API.
//! - [`ws`]: one connection: the transport moves whole messages
//!   (`ws/transport.rs`), the worker's hub delivers fan-out
//!   (`ws/worker.rs`), and the session actor holds the logic
//!   (`ws/session/`).
//!
//! Dependencies run one way: `app` -> `http` -> `ws` -> `state`, `auth`,
//! `config` -> the actors crate.

pub mod app;
pub mod auth;
pub mod config;
pub mod http;
pub mod logging;
pub mod shutdown;
pub mod state;
pub mod ws;

pub use app::{start, Running, StartError};
pub use shutdown::Shutdown;
