//! Tool calls waiting for the player's approval, by session and call id,
//! so that `tools.approve` or `tools.reject` from any of the player's
//! connections reaches the reply that waits: on this node at once, from
//! another node of a cluster through the broker's relay. A waiting call
//! is taken out when it is decided, when it times out, and when its reply
//! ends (the guard), so nothing is left behind.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::channels::broker::{ApprovalRelay, LocalApprovals};
use crate::model::ids::{PlayerId, SessionId};

/// What the player said about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected,
}

type Key = (SessionId, String);

struct Waiting {
    player: PlayerId,
    decide: oneshot::Sender<Decision>,
}

/// The calls waiting on this node, and the relay that carries decisions
/// between nodes.
#[derive(Clone)]
pub struct PendingApprovals {
    waiting: Arc<Mutex<HashMap<Key, Waiting>>>,
    relay: Arc<dyn ApprovalRelay>,
}

impl Default for PendingApprovals {
    /// A node alone.
    fn default() -> Self {
        PendingApprovals::with_relay(Arc::new(LocalApprovals))
    }
}

/// The relay's name for a call.
pub(super) fn relay_key(session: &SessionId, call_id: &str) -> String {
    format!("{session}:{call_id}")
}

/// A call's place in the registry; dropping it takes the call out.
pub(super) struct WaitingCall {
    approvals: PendingApprovals,
    key: Key,
}

impl Drop for WaitingCall {
    fn drop(&mut self) {
        self.approvals.lock().remove(&self.key);
    }
}

impl PendingApprovals {
    pub fn with_relay(relay: Arc<dyn ApprovalRelay>) -> Self {
        PendingApprovals {
            waiting: Arc::default(),
            relay,
        }
    }

    pub(super) fn relay(&self) -> &Arc<dyn ApprovalRelay> {
        &self.relay
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Waiting>> {
        // Entries go in and out whole: a panic elsewhere leaves the map
        // consistent.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call; `None` when a call of the same id in the same
    /// session is already waiting (the later one is refused).
    pub(super) fn wait(
        &self,
        player: &PlayerId,
        session: &SessionId,
        call_id: &str,
    ) -> Option<(WaitingCall, oneshot::Receiver<Decision>)> {
        let key = (session.clone(), call_id.to_string());
        let mut waiting = self.lock();
        if waiting.contains_key(&key) {
            return None;
        }
        let (decide, decision) = oneshot::channel();
        waiting.insert(
            key.clone(),
            Waiting {
                player: player.clone(),
                decide,
            },
        );
        Some((
            WaitingCall {
                approvals: self.clone(),
                key,
            },
            decision,
        ))
    }

    /// Decides the call, when it waits here for this player; false
    /// otherwise (another player's session is not told apart from none).
    pub fn decide(
        &self,
        player: &PlayerId,
        session: &SessionId,
        call_id: &str,
        decision: Decision,
    ) -> bool {
        let key = (session.clone(), call_id.to_string());
        match self.lock().entry(key) {
            Entry::Occupied(entry) if &entry.get().player == player => {
                entry.remove().decide.send(decision).is_ok()
            }
            _ => false,
        }
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_decided_once_by_its_player_and_freed_with_its_guard() {
        let approvals = PendingApprovals::default();
        let (ana, bo) = (
            PlayerId::parse("ana").unwrap(),
            PlayerId::parse("bo").unwrap(),
        );
        let session = SessionId::generate();
        let (guard, mut decision) = approvals.wait(&ana, &session, "call_0").unwrap();
        assert!(
            approvals.wait(&ana, &session, "call_0").is_none(),
            "one at a time"
        );
        assert!(!approvals.decide(&bo, &session, "call_0", Decision::Approved));
        assert!(approvals.decide(&ana, &session, "call_0", Decision::Rejected));
        assert_eq!(decision.try_recv(), Ok(Decision::Rejected));
        assert!(!approvals.decide(&ana, &session, "call_0", Decision::Approved));
        drop(guard);
        let (guard, _) = approvals.wait(&ana, &session, "call_0").unwrap();
        assert_eq!(approvals.count(), 1);
        drop(guard);
        assert_eq!(approvals.count(), 0);
    }
}
