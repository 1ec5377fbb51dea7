//! What runs once per worker thread: the `LocalHub`, and the thread's
//! `ChatProcessor` (so a chat message never crosses threads).
//!
//! `LocalHub`: one actor per worker thread, which delivers `ChatServer`'s
//! frames straight into the queues of the connections on that thread. A
//! room's publication reaches the hub once; the hub walks its local members
//! and pushes a reference-counted copy of the same bytes into each queue.
//! No per-recipient message, allocation or serialization.
//!
//! The hub and the sessions of its thread share one thread-local index of
//! connections and rooms: a session joins it when it starts, leaves rooms
//! in it the moment it unsubscribes (so nothing of the channel follows the
//! reply), and leaves it when it stops.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use hearth_actors::chat_processor::{ChatProcessor, ChatShared};
use hearth_actors::chat_server::{HubCommand, HubRef};
use hearth_actors::model::channel_name::ChannelName;
use hearth_actors::model::ids::ConnId;
use hearth_actors::protocol::EncodedFrame;
use hearth_actors::support::metered::Metered;
use hearth_actors::support::metrics::{ActorKind, Metrics};

use crate::ws::queue::OutboundQueue;

/// Told to a session whose queue overflowed while its hub delivered to it.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Overflowed;

/// What the hub needs of one local connection.
pub struct LocalConn {
    pub outbound: OutboundQueue,
    pub session: Recipient<Overflowed>,
    /// The channels the session wants: a join that arrives after the
    /// session unsubscribed is not applied.
    pub wanted: Rc<RefCell<HashSet<ChannelName>>>,
}

#[derive(Default)]
struct LocalIndex {
    conns: HashMap<ConnId, LocalConn>,
    /// channel -> local member -> watermark
    rooms: HashMap<ChannelName, HashMap<ConnId, u64>>,
}

impl LocalIndex {
    fn leave(&mut self, conn: ConnId, channel: &ChannelName) {
        if let Some(members) = self.rooms.get_mut(channel) {
            members.remove(&conn);
            if members.is_empty() {
                self.rooms.remove(channel);
            }
        }
    }
}

thread_local! {
    static INDEX: RefCell<LocalIndex> = RefCell::new(LocalIndex::default());
    static HUB: OnceCell<HubRef> = const { OnceCell::new() };
    static PROCESSOR: OnceCell<Metered<ChatProcessor>> = const { OnceCell::new() };
}

/// This thread's chat processor, started on the current arbiter on first use.
pub fn chat_processor(shared: &ChatShared) -> Metered<ChatProcessor> {
    PROCESSOR.with(|processor| {
        processor
            .get_or_init(|| {
                let addr = ChatProcessor::new(shared.clone()).start();
                Metered::new(addr, shared.metrics.clone(), ActorKind::ChatProcessor)
            })
            .clone()
    })
}

static NEXT_HUB_ID: AtomicUsize = AtomicUsize::new(0);

/// This thread's hub, started on the current arbiter on first use.
pub fn this_thread_hub(metrics: &Arc<Metrics>) -> HubRef {
    HUB.with(|hub| {
        hub.get_or_init(|| {
            let addr = LocalHub {
                metrics: metrics.clone(),
            }
            .start();
            HubRef {
                id: NEXT_HUB_ID.fetch_add(1, Ordering::Relaxed),
                recipient: addr.recipient(),
            }
        })
        .clone()
    })
}

pub fn register(conn: ConnId, local: LocalConn) {
    INDEX.with(|index| {
        index.borrow_mut().conns.insert(conn, local);
    });
}

/// Leaves `channels` at once: nothing of them is delivered after this.
pub fn leave(conn: ConnId, channels: &[ChannelName]) {
    INDEX.with(|index| {
        let mut index = index.borrow_mut();
        for channel in channels {
            index.leave(conn, channel);
        }
    });
}

/// Forgets the connection and its rooms. Idempotent.
pub fn unregister(conn: ConnId, channels: &[ChannelName]) {
    INDEX.with(|index| {
        let mut index = index.borrow_mut();
        index.conns.remove(&conn);
        for channel in channels {
            index.leave(conn, channel);
        }
    });
}

pub struct LocalHub {
    metrics: Arc<Metrics>,
}

impl Actor for LocalHub {
    type Context = Context<Self>;
}

/// Pushes `frames` to one connection, in order, counting what went in;
/// false when its queue filled up.
fn push_all(local: &LocalConn, frames: &[EncodedFrame], sent: &mut u64) -> bool {
    for frame in frames {
        if local.outbound.text(frame.clone().into_inner()).is_err() {
            return false;
        }
        *sent += 1;
    }
    true
}

impl Handler<HubCommand> for LocalHub {
    type Result = ();

    fn handle(&mut self, msg: HubCommand, _: &mut Context<Self>) {
        let _timer = self.metrics.handling(ActorKind::Session);
        let mut overflowed = Vec::new();
        // Counted once per command, not once per recipient.
        let mut sent = 0;
        INDEX.with(|index| {
            let mut index = index.borrow_mut();
            let index = &mut *index;
            match msg {
                HubCommand::Deliver { conn, frames } => {
                    if let Some(local) = index.conns.get(&conn) {
                        if !push_all(local, &frames, &mut sent) {
                            overflowed.push(conn);
                        }
                    }
                }
                HubCommand::Join {
                    conn,
                    frames,
                    channels,
                    done,
                } => {
                    // No early return here: an overflow must reach the
                    // handling below, or the client would silently miss
                    // what its reply promised.
                    if let Some(local) = index.conns.get(&conn) {
                        if push_all(local, &frames, &mut sent) {
                            let wanted = local.wanted.borrow();
                            for (channel, watermark) in channels {
                                if wanted.contains(&channel) {
                                    index
                                        .rooms
                                        .entry(channel)
                                        .or_default()
                                        .insert(conn, watermark);
                                }
                            }
                        } else {
                            overflowed.push(conn);
                        }
                    }
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                HubCommand::FanOut {
                    channel,
                    offset,
                    frame,
                } => {
                    let before = sent;
                    let frames = std::slice::from_ref(&frame);
                    for (conn, watermark) in index.rooms.get(&channel).into_iter().flatten() {
                        if offset.is_some_and(|offset| offset <= *watermark) {
                            continue;
                        }
                        let Some(local) = index.conns.get(conn) else {
                            continue;
                        };
                        if !push_all(local, frames, &mut sent) {
                            overflowed.push(*conn);
                        }
                    }
                    self.metrics.delivered(sent - before);
                }
            }
            for conn in &overflowed {
                // Stop feeding it; its session closes it 4002.
                for members in index.rooms.values_mut() {
                    members.remove(conn);
                }
                index.rooms.retain(|_, members| !members.is_empty());
                if let Some(local) = index.conns.get(conn) {
                    local.session.do_send(Overflowed);
                }
            }
        });
        self.metrics.messages_out(sent);
        self.metrics.dropped(overflowed.len() as u64);
    }
}
