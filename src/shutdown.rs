//! The graceful stop: no new connections, every connection closed with
//! 1001 after its queued frames, progress writes committed, assistant
//! replies finished and chat recorded, the node taken out of the cluster,
//! all within `server.shutdown_timeout_s`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use hearth_actors::chat_processor::Conversations;
use hearth_actors::chat_server::{ChatServer, Evict, EvictAll, LeaveCluster};
use hearth_actors::exercise_flow::{ExerciseFlow, PendingWrites};
use hearth_actors::protocol::Close;
use hearth_actors::support::metered::Metered;
use hearth_actors::support::metrics::Metrics;

use crate::ws::socket::OpenSockets;

/// What a graceful shutdown needs; cheap to clone into a signal handler.
#[derive(Clone)]
pub struct Shutdown {
    pub handle: ServerHandle,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) conversations: Arc<Conversations>,
    pub(crate) chat_server: Metered<ChatServer>,
    pub(crate) exercise_flow: Metered<ExerciseFlow>,
    /// WebSockets are not the HTTP server's to wait for once upgraded.
    pub(crate) open_sockets: Arc<OpenSockets>,
    pub(crate) timeout: Duration,
}

impl Shutdown {
    /// Stops accepting, closes every connection 1001, waits (within the
    /// configured timeout) for the connections to drain and for progress
    /// writes to commit, then stops the server.
    pub async fn run(&self) {
        let deadline = Instant::now() + self.timeout;
        self.handle.pause().await;
        let evict = Evict {
            close: Close::ServerShutdown,
        };
        let asked = self.chat_server.send(EvictAll { evict }).await.unwrap_or(0);
        log::info!(connections:% = asked; "shutdown_started");
        let poll = Duration::from_millis(20);
        // Every session has ended and every socket written out its close.
        while (self.metrics.open_connections() > 0 || self.open_sockets.count() > 0)
            && Instant::now() < deadline
        {
            actix_rt::time::sleep(poll).await;
        }
        loop {
            let pending = self.exercise_flow.send(PendingWrites).await.unwrap_or(0);
            // Replies still streaming finish (a stop would cut them off,
            // to be marked failed at the next start), and recorded chat
            // reaches the store.
            let replies = self.conversations.active.count();
            let unrecorded = self
                .conversations
                .recorder
                .as_ref()
                .map_or(0, |r| r.pending());
            if pending + replies + unrecorded == 0 || Instant::now() >= deadline {
                break;
            }
            actix_rt::time::sleep(poll).await;
        }
        log::info!(connections_left:% = self.metrics.open_connections(); "shutdown_drained");
        // In a cluster, the others stop counting this node now rather than
        // when its heartbeat expires.
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = actix_rt::time::timeout(remaining, self.chat_server.send(LeaveCluster)).await;
        // Every connection is closed or out of time; the rest is the HTTP
        // layer's own graceful stop.
        self.handle.stop(true).await;
    }
}
