//! Admission and readiness for a Redis cluster. Connections are admitted
//! from the worker threads they live on, and `/readyz` reads the link's
//! health, without either passing through the broadcaster's mailbox.

use redis::RedisResult;

use crate::channels::broker::{BrokerFuture, Gate};
use crate::model::ids::PlayerId;

use super::link::Link;

pub(super) struct RedisGate {
    link: Link,
    max_connections_per_player: usize,
}

impl RedisGate {
    pub(super) fn new(link: Link, max_connections_per_player: usize) -> Self {
        RedisGate {
            link,
            max_connections_per_player,
        }
    }
}

impl Gate for RedisGate {
    fn admit(&self, player: &PlayerId) -> BrokerFuture<bool> {
        let limit = self.max_connections_per_player;
        let player = player.clone();
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<i64> = link
                .scripts
                .admit
                .key(link.keys.connections(&player))
                .key(link.keys.node_players(&link.node))
                .arg(&*link.node)
                .arg(limit)
                .arg(player.as_str())
                .arg(link.keys.node_prefix())
                .invoke_async(&mut link.commands)
                .await;
            // A reply lost after Redis counted would leave one too many.
            let admitted = link.note_write(result)? == 1;
            if admitted {
                *link.claims().connections.entry(player).or_default() += 1;
            }
            Ok(admitted)
        })
    }

    fn release(&self, player: &PlayerId) {
        {
            let mut claims = self.link.claims();
            if let Some(count) = claims.connections.get_mut(player) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    claims.connections.remove(player);
                }
            }
        }
        let player = player.clone();
        let mut link = self.link.clone();
        actix_rt::spawn(async move {
            let result: RedisResult<i64> = link
                .scripts
                .release
                .key(link.keys.connections(&player))
                .key(link.keys.node_players(&link.node))
                .arg(&*link.node)
                .arg(player.as_str())
                .invoke_async(&mut link.commands)
                .await;
            if let Err(err) = link.note_write(result) {
                log::warn!(player_id:% = player, error:% = err; "redis_release_failed");
            }
        });
    }

    fn is_ready(&self) -> bool {
        self.link.health.is_ready()
    }
}
