//! Tool-call decisions across the cluster. The node that runs a reply
//! writes `<prefix>:approval:<session>:<call>` = `wait:<player>` (expiring
//! with the wait); a node that receives `tools.approve` or `tools.reject`
//! for a call it does not hold swaps the value for the decision if the
//! call waits for that player (`decide.lua`), and the waiting node reads it
//! back. The waiting node looks a few times a second while a call waits:
//! calls wait for a person, at most `approval_timeout_s`, and a lookup is
//! one GET, so a pub/sub route of its own would buy little.

use std::time::Duration;

use redis::RedisResult;

use crate::channels::broker::{ApprovalRelay, BrokerFuture};
use crate::model::ids::PlayerId;

use super::link::Link;

pub(super) struct RedisApprovals {
    link: Link,
}

impl RedisApprovals {
    pub(super) fn new(link: Link) -> Self {
        RedisApprovals { link }
    }

    fn key(&self, call: &str) -> String {
        format!("{}approval:{call}", self.link.keys.root())
    }
}

fn waiting_value(player: &PlayerId) -> String {
    format!("wait:{player}")
}

impl ApprovalRelay for RedisApprovals {
    fn is_shared(&self) -> bool {
        true
    }

    fn waiting(&self, call: &str, player: &PlayerId, ttl: Duration) -> BrokerFuture<()> {
        let (key, value) = (self.key(call), waiting_value(player));
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async(&mut link.commands)
                .await;
            link.health.note(result)
        })
    }

    fn forward(&self, call: &str, player: &PlayerId, approved: bool) -> BrokerFuture<bool> {
        let (key, value) = (self.key(call), waiting_value(player));
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<i64> = link
                .scripts
                .decide
                .key(&key)
                .arg(&value)
                .arg(if approved { "yes" } else { "no" })
                .invoke_async(&mut link.commands)
                .await;
            Ok(link.health.note(result)? == 1)
        })
    }

    fn take(&self, call: &str) -> BrokerFuture<Option<bool>> {
        let key = self.key(call);
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<Option<String>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut link.commands)
                .await;
            Ok(match link.health.note(result)?.as_deref() {
                Some("yes") => Some(true),
                Some("no") => Some(false),
                _ => None,
            })
        })
    }

    fn done(&self, call: &str) -> BrokerFuture<()> {
        let key = self.key(call);
        let mut link = self.link.clone();
        Box::pin(async move {
            let result: RedisResult<()> = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut link.commands)
                .await;
            link.health.note(result)
        })
    }
}
