//! Keeping a connection honest: heartbeats that close a silent client, the
//! token's expiry that closes 4001, and `refresh`, which moves the expiry
//! and leaves the channels the new token no longer grants.

use std::time::Duration;

use actix::prelude::*;
use hearth_actors::channels::rules::SubscribeRule;
use hearth_actors::model::time::Timestamp;
use hearth_actors::protocol::{
    ChannelEvent, Close, ErrorCode, ErrorFrame, RefreshResult, ServerFrame, Unsubscribed,
};

use super::{Ctx, WsSession};
use crate::auth::AuthError;

impl WsSession {
    /// Pings every heartbeat interval and closes a silent connection. The
    /// first ping comes after a random part of the interval, so that
    /// connections opened together do not all ping at once.
    pub(super) fn start_heartbeat(&self, ctx: &mut Ctx) {
        let interval = self.state.session.heartbeat_interval;
        let spread = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| u64::from(since.subsec_nanos()));
        ctx.run_later(Duration::from_nanos(nanos % spread), move |act, ctx| {
            act.heartbeat(ctx);
            ctx.run_interval(interval, |act, ctx| act.heartbeat(ctx));
        });
    }

    pub(super) fn heartbeat(&mut self, ctx: &mut Ctx) {
        if self.last_heard.elapsed() > self.state.session.client_timeout {
            log::info!(player_id:% = self.identity.player, conn_id:% = self.conn, silent_ms:% = self.last_heard.elapsed().as_millis(); "ws_idle_timeout");
            self.close(ctx, Close::IdleTimeout);
        } else if self.outbound.is_stale() || self.outbound.ping().is_err() {
            self.slow_consumer(ctx);
        }
    }

    /// Closes with 4001 when the token's `exp` (plus the leeway that let it
    /// in) passes, unless a `refresh` replaced the timer first.
    pub(super) fn schedule_expiry(&mut self, ctx: &mut Ctx) {
        if let Some(previous) = self.expiry.take() {
            ctx.cancel_future(previous);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let left = Duration::from_secs(self.identity.expires_at.saturating_sub(now))
            + self.state.session.auth_leeway;
        self.expiry = Some(ctx.run_later(left, |act, ctx| {
            log::info!(player_id:% = act.identity.player, conn_id:% = act.conn; "ws_token_expired");
            act.send_error(
                ctx,
                ErrorFrame::new(
                    ErrorCode::TokenExpired,
                    "token expired; refresh it and reconnect",
                ),
            );
            act.close(ctx, Close::TokenExpired);
        }));
    }

    /// A new token may grant fewer channels than the old one: those it no
    /// longer grants are left, each with a server-sent `unsubscribe` event
    /// before the refresh is answered. Channels whose right does not come
    /// from the token (one's own, open rooms, owned sessions) stay.
    fn drop_subscriptions_no_longer_granted(&mut self, ctx: &mut Ctx) {
        let rules = &self.state.channel_rules;
        let revoked: Vec<String> = self
            .subscriptions
            .borrow()
            .iter()
            .filter(|channel| rules.for_channel(channel).subscribe == SubscribeRule::Token)
            .filter(|channel| {
                rules
                    .check_subscribe(channel, &self.identity.player, &self.identity.channels)
                    .is_err()
            })
            .map(|channel| channel.as_str().to_owned())
            .collect();
        if revoked.is_empty() {
            return;
        }
        for channel in self.unsubscribe(&revoked) {
            log::info!(player_id:% = self.identity.player, conn_id:% = self.conn, channel:%; "ws_subscription_revoked");
            let event = ChannelEvent::Unsubscribe {
                channel,
                data: Unsubscribed {
                    code: ErrorCode::Forbidden,
                    reason: "the refreshed token no longer grants this channel".into(),
                },
            };
            self.send(ctx, &ServerFrame::Event(event));
        }
    }

    pub(super) fn refresh(
        &mut self,
        token: &str,
        ctx: &mut Ctx,
    ) -> Result<RefreshResult, ErrorFrame> {
        let identity = self.state.auth.verify(Some(token)).map_err(|err| {
            let message = match err {
                AuthError::Expired => "the new token has expired",
                _ => "the new token is invalid",
            };
            ErrorFrame::new(ErrorCode::BadRequest, message)
        })?;
        if identity.player != self.identity.player {
            log::warn!(player_id:% = self.identity.player, conn_id:% = self.conn, reason = "other_player"; "ws_refresh_refused");
            return Err(ErrorFrame::new(
                ErrorCode::Forbidden,
                "a refresh token must be for the same player",
            ));
        }
        self.identity = identity;
        self.schedule_expiry(ctx);
        self.drop_subscriptions_no_longer_granted(ctx);
        let expires_at = i64::try_from(self.identity.expires_at)
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(Timestamp)
            .unwrap_or_else(Timestamp::now);
        Ok(RefreshResult { expires_at })
    }
}
