//! v1 chat on its way into the conversation store: a v1 session is a v1.1
//! session, so every `user_message` and its reply are kept like a
//! `messages.send`. They are recorded after the reply has gone out, by one
//! writer thread that commits what has queued up in one transaction, so
//! that a chat message costs the chat a queue push, not a disk flush.
//!
//! The queue is bounded: when the writer falls behind, a chat reply waits
//! for room rather than the queue growing or an exchange being dropped.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::store::conversations::{Exchange, SharedConversationStore};

/// Exchanges waiting for the writer, at most.
const QUEUE: usize = 16384;
/// Exchanges committed in one transaction, at most.
const BATCH: usize = 4096;

#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Exchange>,
    /// Queued or being written: what a graceful stop waits for.
    pending: Arc<AtomicUsize>,
}

impl Recorder {
    /// Starts the writer thread; it ends once every `Recorder` is dropped
    /// and the queue is written.
    pub fn start(store: SharedConversationStore) -> std::io::Result<Recorder> {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let writer_pending = pending.clone();
        std::thread::Builder::new()
            .name("hearth-recorder".into())
            .spawn(move || write_batches(store, receiver, writer_pending))?;
        Ok(Recorder { queue, pending })
    }

    /// Queues `exchange`. `None` when it is queued; when the queue is full,
    /// a future that queues it once there is room.
    pub(crate) fn record(&self, exchange: Exchange) -> Option<impl Future<Output = ()>> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let exchange = match self.queue.try_send(exchange) {
            Ok(()) => return None,
            Err(mpsc::error::TrySendError::Full(exchange)) => exchange,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                log::warn!(reason = "writer_stopped"; "conversation_record_dropped");
                return None;
            }
        };
        let (queue, pending) = (self.queue.clone(), self.pending.clone());
        Some(async move {
            if queue.send(exchange).await.is_err() {
                pending.fetch_sub(1, Ordering::Relaxed);
                log::warn!(reason = "writer_stopped"; "conversation_record_dropped");
            }
        })
    }

    /// Exchanges not yet committed.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

fn write_batches(
    store: SharedConversationStore,
    mut receiver: mpsc::Receiver<Exchange>,
    pending: Arc<AtomicUsize>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match store.record_exchanges(&batch) {
            Ok(recorded) if recorded < batch.len() => {
                log::debug!(count:% = batch.len() - recorded, reason = "foreign_session"; "conversation_record_skipped")
            }
            Ok(_) => {}
            Err(err) => {
                log::warn!(count:% = batch.len(), error:% = err; "conversation_record_failed")
            }
        }
        pending.fetch_sub(batch.len(), Ordering::Relaxed);
        batch.clear();
    }
}
