//! The live side: the one pub/sub connection of the node, the channels it
//! is subscribed to, and the relay of what arrives to the broadcaster, in
//! offset order, with gaps filled from history first.

use std::collections::HashMap;

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use redis::{Client, Msg, RedisResult};
use tokio::sync::{mpsc, oneshot};

use crate::channels::broker::{BrokerError, BrokerEvent, BrokerSink};
use crate::channels::stream::{Epoch, Publication};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;

use super::codec::{decode_entries, parse_publication};
use super::link::{Link, CONNECT_TIMEOUT, RECONNECT_DELAY, RESPONSE_TIMEOUT};

/// An order from the broker to the pub/sub task, which alone holds the
/// connection.
pub(super) enum Control {
    /// Subscribe, and answer once Redis confirmed (or did not).
    Watch(ChannelName, oneshot::Sender<Result<(), BrokerError>>),
    Unwatch(ChannelName),
}

/// An event's kind letter and the rest, whatever its first character is
/// (another writer to the channel could send anything).
fn split_event(text: &str) -> (Option<char>, &str) {
    let mut chars = text.chars();
    let kind = chars.next();
    (kind, chars.as_str())
}

/// Marks the pub/sub side down when the task ends for any reason, a panic
/// included, so that `/readyz` tells the truth.
struct DownOnExit(std::sync::Arc<super::link::Health>);

impl Drop for DownOnExit {
    fn drop(&mut self) {
        self.0.set_pubsub(false);
    }
}

/// Relays what the pub/sub connection receives to the broadcaster, in
/// order, filling gaps in a channel's offsets from history first.
pub(super) struct Relay {
    sink: BrokerSink,
    link: Link,
    /// The last offset relayed per watched channel, with its epoch.
    last_relayed: HashMap<ChannelName, (Epoch, u64)>,
}

impl Relay {
    pub(super) fn new(sink: BrokerSink, link: Link) -> Self {
        Relay {
            sink,
            link,
            last_relayed: HashMap::new(),
        }
    }

    /// One pub/sub message: a letter for the kind (`p` publication, `j`
    /// join, `l` leave) and what follows it, as the scripts publish them.
    async fn relay(&mut self, message: Msg, pubsub_prefix: &str) {
        let Some(channel) = message
            .get_channel_name()
            .strip_prefix(pubsub_prefix)
            .and_then(|name| ChannelName::parse(name).ok())
        else {
            return;
        };
        let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) else {
            log::warn!(channel:%; "redis_bad_event");
            return;
        };
        let (kind, rest) = split_event(text);
        let player = || PlayerId::parse(rest).ok();
        match kind {
            Some('p') => match parse_publication(&channel, rest) {
                Some(publication) => self.relay_publication(publication).await,
                None => log::warn!(channel:%; "redis_bad_event"),
            },
            Some('j') => match player() {
                Some(player) => self.sink.emit(BrokerEvent::Join { channel, player }),
                None => log::warn!(channel:%; "redis_bad_event"),
            },
            Some('l') => match player() {
                Some(player) => self.sink.emit(BrokerEvent::Leave { channel, player }),
                None => log::warn!(channel:%; "redis_bad_event"),
            },
            _ => log::warn!(channel:%; "redis_bad_event"),
        }
    }

    /// Drops an offset already relayed; within one epoch, first relays
    /// the offsets missed before this one, as far as history holds them.
    async fn relay_publication(&mut self, publication: Publication) {
        if let Some((epoch, last)) = self.last_relayed.get(&publication.channel) {
            if *epoch == publication.epoch {
                if publication.offset <= *last {
                    return;
                }
                let first_missing = *last + 1;
                if publication.offset > first_missing {
                    self.fill_gap(&publication, first_missing).await;
                }
            }
        }
        self.last_relayed.insert(
            publication.channel.clone(),
            (publication.epoch.clone(), publication.offset),
        );
        self.sink.emit(BrokerEvent::Publication(publication));
    }

    /// Publications `first_missing..next.offset` were published while
    /// this node was not listening: relays them from history.
    async fn fill_gap(&mut self, next: &Publication, first_missing: u64) {
        let wanted = next.offset - first_missing;
        let link = &mut self.link;
        let result: RedisResult<Vec<String>> = link
            .scripts
            .history
            .key(link.keys.history(&next.channel))
            .arg(first_missing)
            .arg(next.offset - 1)
            .invoke_async(&mut link.commands)
            .await;
        let found = match result {
            Ok(flat) => decode_entries(&next.channel, &next.epoch, &flat),
            Err(_) => Vec::new(),
        };
        if found.len() as u64 != wanted {
            log::warn!(channel:% = next.channel, missing:% = wanted - found.len() as u64; "redis_gap_unfilled");
        }
        for publication in found {
            self.sink.emit(BrokerEvent::Publication(publication));
        }
    }

    /// A channel no longer watched: its next watch starts afresh.
    fn forget(&mut self, watched: &mut Vec<ChannelName>, channel: &ChannelName) {
        watched.retain(|c| c != channel);
        self.last_relayed.remove(channel);
    }
}

/// The pub/sub connection's life: connect, subscribe to every watched
/// channel, relay until the connection drops, and start again. Watch orders
/// are answered at once while disconnected, so nothing waits on a
/// connection that is not there; the channel is subscribed on reconnect.
/// Ends when the broker, and with it the order sender, is dropped.
pub(super) async fn run_pubsub(
    client: Client,
    mut orders: mpsc::Receiver<Control>,
    mut relay: Relay,
) {
    let health = relay.link.health.clone();
    let _down_on_exit = DownOnExit(health.clone());
    let keys = relay.link.keys.clone();
    let pubsub_prefix = keys.pubsub_prefix();
    let mut watched: Vec<ChannelName> = Vec::new();
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        if let Ok(Ok(pubsub)) = connected {
            let (mut subscriber, mut messages) = pubsub.split();
            let names: Vec<String> = watched.iter().map(|c| keys.pubsub(c)).collect();
            let resubscribed = names.is_empty()
                || matches!(
                    tokio::time::timeout(RESPONSE_TIMEOUT, subscriber.subscribe(&names)).await,
                    Ok(Ok(()))
                );
            if resubscribed {
                health.set_pubsub(true);
                log::info!(channels:% = watched.len(); "redis_pubsub_up");
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                // A bug in relaying one event must not end
                                // the node's only pub/sub connection.
                                let relayed = AssertUnwindSafe(relay.relay(message, &pubsub_prefix))
                                    .catch_unwind()
                                    .await;
                                if relayed.is_err() {
                                    log::error!("redis_relay_panicked");
                                }
                            }
                            None => break,
                        },
                        order = orders.recv() => match order {
                            None => return,
                            Some(Control::Watch(channel, done)) => {
                                let name = keys.pubsub(&channel);
                                watched.push(channel);
                                let answer = tokio::time::timeout(
                                    RESPONSE_TIMEOUT,
                                    subscriber.subscribe(&name),
                                )
                                .await;
                                let ok = matches!(answer, Ok(Ok(())));
                                let _ = done.send(if ok {
                                    Ok(())
                                } else {
                                    Err(BrokerError::Unavailable("subscribing failed".into()))
                                });
                                // A subscribe that failed or timed out
                                // leaves the connection in doubt: start
                                // it again.
                                if !ok {
                                    break;
                                }
                            }
                            Some(Control::Unwatch(channel)) => {
                                relay.forget(&mut watched, &channel);
                                let name = keys.pubsub(&channel);
                                let answer = tokio::time::timeout(
                                    RESPONSE_TIMEOUT,
                                    subscriber.unsubscribe(&name),
                                )
                                .await;
                                if !matches!(answer, Ok(Ok(()))) {
                                    break;
                                }
                            }
                        },
                    }
                }
                health.set_pubsub(false);
                log::warn!(channels:% = watched.len(); "redis_pubsub_down");
            }
        }
        let pause = tokio::time::sleep(RECONNECT_DELAY);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                order = orders.recv() => match order {
                    None => return,
                    Some(Control::Watch(channel, done)) => {
                        watched.push(channel);
                        let _ = done.send(Err(BrokerError::Unavailable(
                            "the pub/sub connection is down".into(),
                        )));
                    }
                    Some(Control::Unwatch(channel)) => relay.forget(&mut watched, &channel),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_any_first_character() {
        assert_eq!(split_event("palice"), (Some('p'), "alice"));
        assert_eq!(split_event("é rest"), (Some('é'), " rest"));
        assert_eq!(split_event("€"), (Some('€'), ""));
        assert_eq!(split_event(""), (None, ""));
    }
}
