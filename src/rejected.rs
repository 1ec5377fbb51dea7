//! `RejectedSession`: a connection refused after the upgrade (bad token, too
//! many connections, server full). PROTOCOL.md wants the upgrade completed
//! and then a close frame with the code and reason, nothing else.

use actix::prelude::*;
use actix_web_actors::ws;

pub struct RejectedSession {
    code: ws::CloseCode,
    reason: &'static str,
}

impl RejectedSession {
    pub fn new(code: ws::CloseCode, reason: &'static str) -> Self {
        RejectedSession { code, reason }
    }
}

impl Actor for RejectedSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.close(Some(ws::CloseReason {
            code: self.code,
            description: Some(self.reason.into()),
        }));
        ctx.stop();
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for RejectedSession {
    fn handle(&mut self, _: Result<ws::Message, ws::ProtocolError>, _: &mut Self::Context) {}
}
