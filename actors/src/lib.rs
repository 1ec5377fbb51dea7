//! Hearth's transport-free core: the wire types, the actors and the
//! therapeutic domain. Nothing here accepts a connection; the server crate
//! adapts these actors to HTTP and WebSocket. The connections made here are
//! a client's: to Redis, PostgreSQL and a model server.
//!
//! # Layout
//!
//! The four actors stand at the top; each file holds one actor and the
//! messages it receives.
//!
//! - [`chat_server`]: ACTOR `ChatServer`, the registry of live connections
//!   (player -> connections, channel rooms) and delivery to them; its
//!   bookkeeping is the plain struct in `chat_server/registry.rs`.
//! - [`broadcaster`]: ACTOR `Broadcaster`, channel semantics (offsets,
//!   history, recovery, presence) over a [`channels::broker::Broker`].
//! - [`chat_processor`]: ACTOR `ChatProcessor`, crisis check, then the
//!   assistant's reply in pieces, then the reply message; feedback; the
//!   v1.1 requests of assistant sessions (`sessions.rs`), each reply a task
//!   that publishes it through the Broadcaster (`reply.rs`), and v1 chat
//!   recorded in its session (`record.rs`).
//! - [`exercise_flow`]: ACTOR `ExerciseFlow`, guided exercises and durable
//!   progress markers.
//! - [`protocol`]: every wire type: client frames and their parser, the
//!   v1.1 request methods and the sessions they return, server frames, the
//!   error-code and close-code catalogues.
//! - [`assistant`]: the `Assistant` seam (a turn in, a stream of reply
//!   events out), the built-in assistant, the client of OpenAI-compatible
//!   model servers, and the guard in front of a model (built-in crisis
//!   reply, fallback, requests in flight).
//! - [`therapy`]: the domain: crisis detection, resources, exercises,
//!   recommendations, text normalisation.
//! - [`channels`]: namespace rules, stream values, the `Broker` trait, the
//!   in-memory and Redis brokers.
//! - [`store`]: durable stores behind traits (progress markers,
//!   conversations).
//! - [`model`]: ids, channel names, timestamps, progress markers.
//! - [`support`]: metrics, the metered address, rate limiting, bounded maps.
//!
//! # The dependency rule
//!
//! Dependencies run one way: the actors -> `protocol`, `assistant` ->
//! `therapy`, `channels`, `store` -> `model`, `support`. Nothing lower
//! imports something higher, and no two files import each other. Where a
//! lower actor must tell a higher one something (ChatServer telling the
//! Broadcaster that a room closed), the lower one defines the message as
//! its outbound port and holds a `Recipient` of it.

pub mod assistant;
pub mod broadcaster;
pub mod channels;
pub mod chat_processor;
pub mod chat_server;
pub mod exercise_flow;
pub mod model;
pub mod protocol;
pub mod store;
pub mod support;
pub mod therapy;
