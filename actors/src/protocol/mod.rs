//! Every type that crosses the wire, in one place (docs/protocol.md): the
//! client's frames, parsed once at the edge ([`client`]); the methods of
//! v1.1 requests ([`calls`]) and the assistant sessions they return and
//! stream ([`sessions`]); the server's frames, built by actors as typed
//! values and turned into JSON once ([`server`]); the catalogue of error
//! codes ([`errors`]) and of close codes ([`close`]). Nothing here knows a
//! socket.

pub mod agents;
pub mod calls;
pub mod client;
pub mod close;
pub mod errors;
pub mod server;
pub mod sessions;

pub use client::*;
pub use close::{Close, Ending};
pub use errors::{ErrorCode, ErrorFrame, Refusal};
pub use server::*;
