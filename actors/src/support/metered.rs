//! An actor address that counts what it puts in the mailbox, so that each
//! actor's backlog (queued minus handled) is known without reaching into
//! actix's mailbox.

use std::sync::Arc;

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::support::metrics::{ActorKind, Metrics};

pub struct Metered<A: Actor> {
    addr: Addr<A>,
    metrics: Arc<Metrics>,
    kind: ActorKind,
}

impl<A: Actor> Clone for Metered<A> {
    fn clone(&self) -> Self {
        Metered {
            addr: self.addr.clone(),
            metrics: self.metrics.clone(),
            kind: self.kind,
        }
    }
}

impl<A: Actor> Metered<A> {
    pub fn new(addr: Addr<A>, metrics: Arc<Metrics>, kind: ActorKind) -> Self {
        Metered {
            addr,
            metrics,
            kind,
        }
    }

    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.metrics.actor(self.kind).queued(1);
        self.addr.do_send(msg);
    }

    pub fn send<M>(&self, msg: M) -> Request<A, M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        self.metrics.actor(self.kind).queued(1);
        self.addr.send(msg)
    }
}
