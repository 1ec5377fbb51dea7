//! The Hearth server: configuration, authentication, HTTP and WebSocket,
//! and the wiring of the actors of `hearth-actors`.
//!
//! # Layout
//!
//! - [`app`]: opens the stores and the broker, starts the actors and the
//!   HTTP server ([`start`]).
//! - [`shutdown`]: the graceful stop.
//! - [`system`]: what the process asks of the operating system (the
//!   open-file limit).
//! - [`config`], [`auth`], [`logging`], [`state`]: settings, JWT
//!   verification, log lines, and what every handler shares.
//! - [`http`]: the one routing table (health, metrics, the server API) and
//!   the WebSocket upgrade, which takes the socket over from the HTTP
//!   dispatcher (`http/upgrade.rs`).
//! - [`ws`]: one connection: the socket (`ws/socket.rs`), the transport
//!   that moves whole messages over it (`ws/transport.rs`), the worker's
//!   hub that delivers fan-out (`ws/worker.rs`), and the session actor
//!   that holds the logic (`ws/session/`).
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
pub mod system;
pub mod ws;

pub use app::{start, Running, StartError};
pub use shutdown::Shutdown;
