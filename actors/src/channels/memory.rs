//! The embedded broker: one process, state in memory. Offsets, history and
//! presence live in plain maps owned by the broadcaster; every call
//! completes at once. A restart starts every channel on a new epoch, so
//! clients recovering across it get `recovered: false`, never a wrong
//! publication.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channels::broker::{
    Broker, BrokerError, BrokerEvent, BrokerFuture, BrokerSink, Gate, HistoryBudget, OpenGate,
    HISTORY_FULL, PLAYER_HISTORY_FULL, TOO_MANY_NEW_CHANNELS,
};
use crate::channels::rules::{ChannelRules, NamespaceRules};
use crate::channels::stream::{
    Epoch, Payload, PresenceEntry, Publication, Publisher, RecoverFrom, Recovery, StreamPosition,
};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::model::time::Timestamp;

struct Stream {
    epoch: Epoch,
    latest: u64,
    /// Oldest first; each entry remembers when it was published.
    history: VecDeque<(Instant, Publication)>,
    last_used: Instant,
}

impl Stream {
    fn new(now: Instant) -> Self {
        Stream {
            epoch: Epoch::generate(),
            latest: 0,
            history: VecDeque::new(),
            last_used: now,
        }
    }

    /// Drops what the rules no longer keep, telling `dropped` of each.
    fn trim(
        &mut self,
        rules: &NamespaceRules,
        now: Instant,
        dropped: &mut impl FnMut(&Publication),
    ) {
        let ttl = rules.history_ttl();
        while self.history.len() > rules.history_size
            || self
                .history
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > ttl)
        {
            if let Some((_, publication)) = self.history.pop_front() {
                dropped(&publication);
            }
        }
    }
}

/// The bytes players' publications hold in history, in all and per player.
/// The server's own (the API's, the assistant's replies) are bounded by the
/// server, not by these budgets, so a full budget never fails a reply.
#[derive(Default)]
struct HistoryBytes {
    total: usize,
    per_player: HashMap<PlayerId, usize>,
}

impl HistoryBytes {
    fn add(&mut self, publication: &Publication) {
        if let Publisher::Player(player) = &publication.publisher {
            let size = publication.data.len();
            self.total += size;
            *self.per_player.entry(player.clone()).or_default() += size;
        }
    }

    fn remove(&mut self, publication: &Publication) {
        if let Publisher::Player(player) = &publication.publisher {
            let size = publication.data.len();
            self.total = self.total.saturating_sub(size);
            if let Some(bytes) = self.per_player.get_mut(player) {
                *bytes = bytes.saturating_sub(size);
                if *bytes == 0 {
                    self.per_player.remove(player);
                }
            }
        }
    }

    fn of(&self, player: &PlayerId) -> usize {
        self.per_player.get(player).copied().unwrap_or(0)
    }
}

pub struct MemoryBroker {
    streams: HashMap<ChannelName, Stream>,
    presence: HashMap<ChannelName, HashMap<PlayerId, (Option<String>, u32)>>,
    sink: Option<BrokerSink>,
    /// Channels with connections on this node: only their events are sent
    /// to the sink.
    watched: HashSet<ChannelName>,
    /// How long a channel with no history and no presence keeps its epoch
    /// and offset.
    idle_ttl: Duration,
    budget: HistoryBudget,
    history_bytes: HistoryBytes,
    /// Channels each player created by publishing, in the current minute.
    created: HashMap<PlayerId, (Instant, u32)>,
}

impl MemoryBroker {
    pub fn new(idle_ttl: Duration) -> Self {
        MemoryBroker {
            streams: HashMap::new(),
            presence: HashMap::new(),
            sink: None,
            watched: HashSet::new(),
            idle_ttl,
            budget: HistoryBudget::default(),
            history_bytes: HistoryBytes::default(),
            created: HashMap::new(),
        }
    }

    pub fn with_budget(mut self, budget: HistoryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Whether `publisher` may put `size` more bytes into history, and, for
    /// a channel that does not exist yet, create one.
    fn admit(
        &mut self,
        publisher: &Publisher,
        size: usize,
        keeps_history: bool,
        creates: bool,
        now: Instant,
    ) -> Result<(), BrokerError> {
        let Publisher::Player(player) = publisher else {
            return Ok(());
        };
        if keeps_history && self.history_bytes.total + size > self.budget.max_bytes {
            return Err(BrokerError::LimitExceeded(HISTORY_FULL));
        }
        if keeps_history && self.history_bytes.of(player) + size > self.budget.max_bytes_per_player
        {
            return Err(BrokerError::LimitExceeded(PLAYER_HISTORY_FULL));
        }
        if creates {
            let (since, count) = self.created.entry(player.clone()).or_insert((now, 0));
            if now.duration_since(*since) >= Duration::from_secs(60) {
                *since = now;
                *count = 0;
            }
            if *count >= self.budget.new_channels_per_minute {
                return Err(BrokerError::LimitExceeded(TOO_MANY_NEW_CHANNELS));
            }
            *count += 1;
        }
        Ok(())
    }

    fn emit(&self, event: BrokerEvent) {
        let channel = match &event {
            BrokerEvent::Publication(publication) => &publication.channel,
            BrokerEvent::Join { channel, .. } | BrokerEvent::Leave { channel, .. } => channel,
        };
        if !self.watched.contains(channel) {
            return;
        }
        if let Some(sink) = &self.sink {
            sink.emit(event);
        }
    }

    pub fn channel_count(&self) -> usize {
        self.streams.len()
    }
}

/// The channel's stream, made if there is none, marked used at `now`. A
/// free function over the map alone, so that the history byte counts stay
/// borrowable beside it.
fn touch<'a>(
    streams: &'a mut HashMap<ChannelName, Stream>,
    channel: &ChannelName,
    now: Instant,
) -> &'a mut Stream {
    let stream = streams
        .entry(channel.clone())
        .or_insert_with(|| Stream::new(now));
    stream.last_used = now;
    stream
}

fn ready<T: 'static>(value: T) -> BrokerFuture<T> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Broker for MemoryBroker {
    fn set_sink(&mut self, sink: BrokerSink) {
        self.sink = Some(sink);
    }

    fn watch(&mut self, channel: &ChannelName) -> BrokerFuture<()> {
        self.watched.insert(channel.clone());
        ready(())
    }

    fn unwatch(&mut self, channel: &ChannelName) {
        self.watched.remove(channel);
    }

    fn publish(
        &mut self,
        channel: &ChannelName,
        publisher: Publisher,
        data: Payload,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Publication> {
        let now = Instant::now();
        let keeps_history = rules.history_size > 0;
        // A stream a subscribe made but nobody published to is not a
        // channel yet: the first publication creates it.
        let creates = self
            .streams
            .get(channel)
            .is_none_or(|stream| stream.latest == 0);
        if let Err(refused) = self.admit(&publisher, data.len(), keeps_history, creates, now) {
            return Box::pin(std::future::ready(Err(refused)));
        }
        let stream = touch(&mut self.streams, channel, now);
        stream.latest += 1;
        let publication = Publication {
            channel: channel.clone(),
            offset: stream.latest,
            epoch: stream.epoch.clone(),
            publisher,
            data,
            timestamp: Timestamp::now(),
        };
        let bytes = &mut self.history_bytes;
        if keeps_history {
            bytes.add(&publication);
            stream.history.push_back((now, publication.clone()));
        }
        stream.trim(rules, now, &mut |dropped| bytes.remove(dropped));
        self.emit(BrokerEvent::Publication(publication.clone()));
        ready(publication)
    }

    fn recover(
        &mut self,
        channel: &ChannelName,
        since: Option<&RecoverFrom>,
        limit: usize,
        rules: &NamespaceRules,
    ) -> BrokerFuture<Recovery> {
        let now = Instant::now();
        let stream = touch(&mut self.streams, channel, now);
        let bytes = &mut self.history_bytes;
        stream.trim(rules, now, &mut |dropped| bytes.remove(dropped));
        let position = StreamPosition {
            offset: stream.latest,
            epoch: stream.epoch.clone(),
        };
        let missed = since.map_or(0, |since| stream.latest.saturating_sub(since.offset));
        let after = match since {
            Some(since) if since.epoch == stream.epoch.as_str() && missed <= limit as u64 => stream
                .history
                .iter()
                .filter(|(_, p)| p.offset > since.offset)
                .map(|(_, p)| p.clone())
                .collect(),
            _ => Vec::new(),
        };
        ready(Recovery::settle(position, since, after))
    }

    fn set_presence(
        &mut self,
        channel: &ChannelName,
        player: &PlayerId,
        name: Option<&str>,
        connections: u32,
    ) -> BrokerFuture<()> {
        let members = self.presence.entry(channel.clone()).or_default();
        let was_present = members.contains_key(player);
        if connections == 0 {
            members.remove(player);
            if members.is_empty() {
                self.presence.remove(channel);
            }
        } else {
            members.insert(player.clone(), (name.map(str::to_string), connections));
        }
        let event = match (was_present, connections > 0) {
            (false, true) => Some(BrokerEvent::Join {
                channel: channel.clone(),
                player: player.clone(),
            }),
            (true, false) => Some(BrokerEvent::Leave {
                channel: channel.clone(),
                player: player.clone(),
            }),
            _ => None,
        };
        if let Some(event) = event {
            self.emit(event);
        }
        ready(())
    }

    fn presence(&mut self, channel: &ChannelName) -> BrokerFuture<Vec<PresenceEntry>> {
        let mut players: Vec<PresenceEntry> = self
            .presence
            .get(channel)
            .map(|members| {
                members
                    .iter()
                    .map(|(player, (name, connections))| PresenceEntry {
                        player_id: player.clone(),
                        name: name.clone(),
                        connections: *connections,
                    })
                    .collect()
            })
            .unwrap_or_default();
        players.sort_by(|a, b| a.player_id.cmp(&b.player_id));
        ready(players)
    }

    fn gate(&self) -> Arc<dyn Gate> {
        Arc::new(OpenGate)
    }

    fn maintain(&mut self, rules: &ChannelRules) {
        let now = Instant::now();
        let idle_ttl = self.idle_ttl;
        let presence = &self.presence;
        let watched = &self.watched;
        let bytes = &mut self.history_bytes;
        self.streams.retain(|channel, stream| {
            // Expired history goes now, not when the channel is next used:
            // a quiet channel must not keep its payloads past their age.
            stream.trim(rules.for_channel(channel), now, &mut |dropped| {
                bytes.remove(dropped)
            });
            if presence.contains_key(channel) || watched.contains(channel) {
                return true;
            }
            // A channel nobody ever published to carries nothing worth
            // keeping: subscribing to fresh names leaves no state behind.
            if stream.latest == 0 {
                return false;
            }
            // Otherwise its epoch and offset are kept for recovery until it
            // has been quiet for idle_ttl.
            let newest = stream.history.back().map(|(at, _)| *at);
            let quiet_since = newest.map_or(stream.last_used, |at| at.max(stream.last_used));
            let keep = now.duration_since(quiet_since) < idle_ttl;
            if !keep {
                for (_, publication) in &stream.history {
                    bytes.remove(publication);
                }
            }
            keep
        });
        self.created
            .retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: BrokerFuture<T>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result.expect("memory broker never fails"),
            std::task::Poll::Pending => panic!("memory broker futures are ready at once"),
        }
    }

    fn setup() -> (MemoryBroker, ChannelName, NamespaceRules) {
        let channel = ChannelName::parse("room:test").unwrap();
        let mut rules = ChannelRules::default().for_channel(&channel).clone();
        rules.history_size = 5;
        (MemoryBroker::new(Duration::from_secs(60)), channel, rules)
    }

    fn publish(
        broker: &mut MemoryBroker,
        channel: &ChannelName,
        rules: &NamespaceRules,
        n: u64,
    ) -> Publication {
        let data = Payload::from_value(&serde_json::json!({ "n": n })).unwrap();
        block(broker.publish(channel, Publisher::Server, data, rules))
    }

    #[test]
    fn offsets_grow_by_one_and_history_is_bounded() {
        let (mut broker, channel, rules) = setup();
        for n in 1..=8 {
            assert_eq!(publish(&mut broker, &channel, &rules, n).offset, n);
        }
        let position = block(broker.recover(&channel, None, usize::MAX, &rules)).position;
        assert_eq!(position.offset, 8);
        let epoch = position.epoch.as_str().to_string();

        // Offsets 4..=8 are kept: recovering from 3 works, from 2 does not.
        let from = |offset| RecoverFrom {
            offset,
            epoch: epoch.clone(),
        };
        let recovery = block(broker.recover(&channel, Some(&from(3)), usize::MAX, &rules));
        assert!(recovery.recovered);
        let offsets: Vec<u64> = recovery.publications.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [4, 5, 6, 7, 8]);
        let too_old = block(broker.recover(&channel, Some(&from(2)), usize::MAX, &rules));
        assert!(!too_old.recovered && too_old.publications.is_empty());
        let current = block(broker.recover(&channel, Some(&from(8)), usize::MAX, &rules));
        assert!(current.recovered && current.publications.is_empty());
        let future = block(broker.recover(&channel, Some(&from(9)), usize::MAX, &rules));
        assert!(!future.recovered);
        let wrong_epoch = RecoverFrom {
            offset: 7,
            epoch: "other".into(),
        };
        assert!(!block(broker.recover(&channel, Some(&wrong_epoch), usize::MAX, &rules)).recovered);
    }

    #[test]
    fn presence_counts_and_lists_players() {
        let (mut broker, channel, _) = setup();
        let alice = PlayerId::parse("alice").unwrap();
        block(broker.set_presence(&channel, &alice, Some("Alice"), 2));
        let listed = block(broker.presence(&channel));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].connections, 2);
        assert_eq!(listed[0].name.as_deref(), Some("Alice"));
        block(broker.set_presence(&channel, &alice, None, 0));
        assert!(block(broker.presence(&channel)).is_empty());
        assert!(broker.presence.is_empty());
    }

    #[test]
    fn the_shared_suite_passes() {
        crate::channels::conformance::run(|| Box::new(MemoryBroker::new(Duration::from_secs(60))));
    }

    #[test]
    fn idle_channels_are_forgotten() {
        let (mut broker, channel, rules) = setup();
        broker.idle_ttl = Duration::ZERO;
        publish(&mut broker, &channel, &rules, 1);
        std::thread::yield_now();
        broker.maintain(&ChannelRules::default());
        assert_eq!(broker.channel_count(), 0);
    }

    #[test]
    fn history_bytes_and_new_channels_are_budgeted() {
        let (broker, channel, rules) = setup();
        let mut broker = broker.with_budget(HistoryBudget {
            max_bytes: 1000,
            max_bytes_per_player: 300,
            new_channels_per_minute: 2,
        });
        let alice = Publisher::Player(PlayerId::parse("alice").unwrap());
        let blob = |n: usize| Payload::from_value(&serde_json::json!("x".repeat(n))).unwrap();
        let publish_as = |broker: &mut MemoryBroker, who: &Publisher, name: &str, size: usize| {
            let channel = ChannelName::parse(name).unwrap();
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            match broker
                .publish(&channel, who.clone(), blob(size), &rules)
                .as_mut()
                .poll(&mut cx)
            {
                std::task::Poll::Ready(result) => result.map(|_| ()),
                std::task::Poll::Pending => panic!("ready at once"),
            }
        };
        let refused =
            |result: Result<(), BrokerError>| matches!(result, Err(BrokerError::LimitExceeded(_)));
        assert!(publish_as(&mut broker, &alice, channel.as_str(), 100).is_ok());
        assert!(publish_as(&mut broker, &alice, channel.as_str(), 100).is_ok());
        assert!(
            refused(publish_as(&mut broker, &alice, channel.as_str(), 150)),
            "past her share"
        );
        // Players' publications in all; the server's are not counted.
        for other in ["bob", "carol"] {
            let other = Publisher::Player(PlayerId::parse(other).unwrap());
            assert!(publish_as(&mut broker, &other, channel.as_str(), 290).is_ok());
        }
        let dave = Publisher::Player(PlayerId::parse("dave").unwrap());
        assert!(
            refused(publish_as(&mut broker, &dave, channel.as_str(), 290)),
            "full"
        );
        assert!(publish_as(&mut broker, &Publisher::Server, channel.as_str(), 5000).is_ok());
        // New names: two a minute.
        assert!(publish_as(&mut broker, &alice, "room:n1", 1).is_ok());
        assert!(
            refused(publish_as(&mut broker, &alice, "room:n2", 1)),
            "third new channel"
        );
        // Trimmed history gives its bytes back.
        let mut gone = rules.clone();
        gone.history_ttl_s = 0;
        let mut all = ChannelRules::default();
        all.namespaces.insert("room".into(), gone);
        std::thread::sleep(Duration::from_millis(2));
        broker.maintain(&all);
        assert_eq!(broker.history_bytes.total, 0);
        assert!(broker.history_bytes.per_player.is_empty());
    }

    #[test]
    fn expired_history_goes_on_the_timer_and_unused_names_leave_nothing() {
        let (mut broker, channel, mut rules) = setup();
        for n in 1..=3 {
            publish(&mut broker, &channel, &rules, n);
        }
        rules.history_ttl_s = 0;
        let mut all = ChannelRules::default();
        all.namespaces.insert("room".into(), rules.clone());
        std::thread::sleep(Duration::from_millis(2));
        broker.maintain(&all);
        let stream = broker.streams.get(&channel).expect("kept for its offset");
        assert!(stream.history.is_empty(), "expired history trimmed");
        assert_eq!(stream.latest, 3);

        let fresh = ChannelName::parse("room:fresh").unwrap();
        block(broker.watch(&fresh));
        block(broker.recover(&fresh, None, usize::MAX, &rules));
        broker.maintain(&all);
        assert!(broker.streams.contains_key(&fresh), "kept while watched");
        broker.unwatch(&fresh);
        broker.maintain(&all);
        assert!(!broker.streams.contains_key(&fresh), "nothing left behind");
    }
}
