//! Channels below the Broadcaster actor: the namespace rules, the values a
//! stream is made of, the `Broker` seam, and its two implementations (in
//! memory for one node, Redis for a cluster).

pub mod broker;
#[cfg(test)]
pub(crate) mod conformance;
pub mod memory;
pub mod redis;
pub mod rules;
pub mod stream;
