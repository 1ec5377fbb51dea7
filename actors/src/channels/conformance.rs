//! One suite of the `Broker` contract that every broker runs: the embedded
//! one from `memory.rs`, the Redis one from `redis/mod.rs`. It checks that
//!
//! - offsets start at 1 and grow by one per publish, and a publication
//!   carries its channel, publisher, data and the channel's epoch;
//! - history keeps at most the rules' `history_size` publications;
//! - `recover` without a position answers the position and nothing else;
//!   from an offset the history still follows on from, exactly the
//!   publications after it (`recovered`); from an offset it no longer
//!   reaches, a future offset or another epoch, no publications at all;
//! - only watched channels' events reach the sink, publications in offset
//!   order, and the same publications that `publish` and `recover` return;
//! - presence emits one `Join` when a player's count leaves zero and one
//!   `Leave` when it returns there, and lists each player with its count;
//! - a working broker is ready.
//!
//! A Redis broker delivers events later than the embedded one, which emits
//! them during the call. So events are awaited with a deadline, and an
//! event that must not come is shown absent by a later event that either
//! broker would have delivered after it.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::channels::broker::{Broker, BrokerEvent, BrokerSink, FromBroker};
use crate::channels::rules::{ChannelRules, NamespaceRules, PublishRule, SubscribeRule};
use crate::channels::stream::{
    Epoch, Payload, PresenceEntry, Publication, Publisher, RecoverFrom, Recovery, StreamPosition,
};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::support::metrics::Metrics;

/// Long enough for a Redis round trip on a loaded machine; a broker that
/// works answers well within it.
const DEADLINE: Duration = Duration::from_secs(5);

/// Small, so that a few publications already push the oldest out.
const HISTORY_SIZE: usize = 3;

/// Runs the suite on a broker made by `make`, inside an actix system of
/// its own: a networked broker must be built inside the runtime it runs in.
pub fn run(make: impl FnOnce() -> Box<dyn Broker>) {
    System::new().block_on(async move {
        let mut broker = make();
        let (sender, receiver) = mpsc::unbounded_channel();
        let collector = Collector(sender).start();
        broker.set_sink(BrokerSink::new(
            collector.recipient(),
            Arc::new(Metrics::new()),
        ));
        // As the broadcaster starts a broker: a Redis node counts (and its
        // presence is listed) only once its first heartbeat has landed.
        broker.maintain(&ChannelRules::default());
        until_ready(&*broker).await;

        let mut pushed = Pushed(receiver);
        // Unique names, so that runs sharing a Redis never meet.
        let run = uuid::Uuid::new_v4().simple().to_string();
        let channel = |what: &str| ChannelName::parse(&format!("room:{what}-{run}")).unwrap();
        let broker = &mut *broker;
        publications_history_and_recovery(broker, &mut pushed, &channel("history")).await;
        no_history_kept(broker, &channel("no-history")).await;
        only_watched_channels_are_pushed(broker, &mut pushed, &channel("live"), &channel("quiet"))
            .await;
        presence(broker, &mut pushed, &channel("presence")).await;
        assert!(broker.gate().is_ready(), "the broker stopped being ready");
    });
}

/// Stands in for the broadcaster: hands every event to the suite.
struct Collector(mpsc::UnboundedSender<BrokerEvent>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<FromBroker> for Collector {
    type Result = ();

    fn handle(&mut self, msg: FromBroker, _: &mut Context<Self>) {
        // The receiver is gone only once the suite has ended.
        let _ = self.0.send(msg.event);
    }
}

/// The events the broker pushed, in the order the sink received them.
struct Pushed(mpsc::UnboundedReceiver<BrokerEvent>);

impl Pushed {
    async fn next(&mut self, awaited: &str) -> BrokerEvent {
        match tokio::time::timeout(DEADLINE, self.0.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the sink closed while awaiting {awaited}"),
            Err(_) => panic!("nothing pushed within {DEADLINE:?} while awaiting {awaited}"),
        }
    }

    async fn publication(&mut self, awaited: &str) -> Publication {
        match self.next(awaited).await {
            BrokerEvent::Publication(publication) => publication,
            other => panic!("awaiting {awaited}, the broker pushed {other:?}"),
        }
    }

    /// The next event, as something `assert_eq!` can compare.
    async fn seen(&mut self, awaited: &str) -> Seen {
        Seen::of(&self.next(awaited).await)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Publication { channel: String, offset: u64 },
    Join { channel: String, player: String },
    Leave { channel: String, player: String },
}

impl Seen {
    fn of(event: &BrokerEvent) -> Seen {
        match event {
            BrokerEvent::Publication(p) => Seen::Publication {
                channel: p.channel.to_string(),
                offset: p.offset,
            },
            BrokerEvent::Join { channel, player } => Seen::Join {
                channel: channel.to_string(),
                player: player.to_string(),
            },
            BrokerEvent::Leave { channel, player } => Seen::Leave {
                channel: channel.to_string(),
                player: player.to_string(),
            },
        }
    }

    fn publication(channel: &ChannelName, offset: u64) -> Seen {
        Seen::Publication {
            channel: channel.to_string(),
            offset,
        }
    }

    fn join(channel: &ChannelName, player: &PlayerId) -> Seen {
        Seen::Join {
            channel: channel.to_string(),
            player: player.to_string(),
        }
    }

    fn leave(channel: &ChannelName, player: &PlayerId) -> Seen {
        Seen::Leave {
            channel: channel.to_string(),
            player: player.to_string(),
        }
    }
}

/// A Redis broker is ready once connected and registered, which takes a
/// few round trips; the embedded one is ready at once.
async fn until_ready(broker: &dyn Broker) {
    let waited = tokio::time::timeout(DEADLINE, async {
        let gate = broker.gate();
        while !gate.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the broker was not ready within {DEADLINE:?}"
    );
}

fn rules(history_size: usize) -> NamespaceRules {
    NamespaceRules {
        subscribe: SubscribeRule::Any,
        publish: PublishRule::Members,
        presence: true,
        history_size,
        // Far longer than the suite: age never trims history here.
        history_ttl_s: 300,
    }
}

fn player(name: &str) -> PlayerId {
    PlayerId::parse(name).unwrap()
}

fn payload(n: u64) -> Payload {
    Payload::from_value(&serde_json::json!({ "n": n, "text": "hello" })).unwrap()
}

/// `got` is the publication `sent` was, as a broker hands it back later.
/// Timestamps agree to the millisecond: the Redis broker keeps no finer.
fn assert_same(got: &Publication, sent: &Publication, context: &str) {
    assert_eq!(got.channel, sent.channel, "{context}: channel");
    assert_eq!(got.offset, sent.offset, "{context}: offset");
    assert_eq!(got.epoch, sent.epoch, "{context}: epoch");
    assert_eq!(got.publisher, sent.publisher, "{context}: publisher");
    assert_eq!(
        got.data.as_raw().get(),
        sent.data.as_raw().get(),
        "{context}: data"
    );
    assert_eq!(
        got.timestamp.0.timestamp_millis(),
        sent.timestamp.0.timestamp_millis(),
        "{context}: timestamp"
    );
}

async fn recover(
    broker: &mut dyn Broker,
    channel: &ChannelName,
    since: Option<&RecoverFrom>,
    rules: &NamespaceRules,
) -> Recovery {
    broker
        .recover(channel, since, usize::MAX, rules)
        .await
        .expect("recover")
}

fn from(offset: u64, epoch: &Epoch) -> RecoverFrom {
    RecoverFrom {
        offset,
        epoch: epoch.as_str().to_string(),
    }
}

/// Recovering from `since` must fail whole: the position, and nothing old.
fn assert_unrecovered(recovery: &Recovery, position: &StreamPosition, why: &str) {
    assert!(!recovery.recovered, "{why}: recovered");
    assert!(
        recovery.publications.is_empty(),
        "{why}: publications {:?}",
        offsets(&recovery.publications)
    );
    assert_eq!(&recovery.position, position, "{why}: position");
}

/// Publishes a filler from the server; its offset.
async fn publish(broker: &mut dyn Broker, channel: &ChannelName) -> u64 {
    broker
        .publish(channel, Publisher::Server, payload(0), &rules(HISTORY_SIZE))
        .await
        .expect("publish")
        .offset
}

fn offsets(publications: &[Publication]) -> Vec<u64> {
    publications.iter().map(|p| p.offset).collect()
}

async fn publications_history_and_recovery(
    broker: &mut dyn Broker,
    pushed: &mut Pushed,
    channel: &ChannelName,
) {
    let rules = rules(HISTORY_SIZE);
    let start = recover(broker, channel, None, &rules).await;
    assert_eq!(start.position.offset, 0, "a new channel is at offset 0");
    assert!(!start.recovered && start.publications.is_empty());
    let epoch = start.position.epoch.clone();

    // Watched before publishing, as the broadcaster does, so that every
    // publication is pushed.
    broker.watch(channel).await.expect("watch");
    let alice = player("alice");
    let mut sent = Vec::new();
    for n in 1..=5 {
        let publisher = match n % 2 {
            1 => Publisher::Player(alice.clone()),
            _ => Publisher::Server,
        };
        let data = payload(n);
        let publication = broker
            .publish(channel, publisher.clone(), data.clone(), &rules)
            .await
            .expect("publish");
        assert_eq!(publication.offset, n, "offsets start at 1, one per publish");
        assert_eq!(&publication.channel, channel);
        assert_eq!(publication.publisher, publisher);
        assert_eq!(publication.data.as_raw().get(), data.as_raw().get());
        assert_eq!(publication.epoch, epoch, "publishing keeps the epoch");
        sent.push(publication);
    }
    for publication in &sent {
        let context = format!("pushed offset {}", publication.offset);
        assert_same(&pushed.publication(&context).await, publication, &context);
    }

    let position = StreamPosition {
        offset: 5,
        epoch: epoch.clone(),
    };
    let current = recover(broker, channel, None, &rules).await;
    assert_unrecovered(&current, &position, "no position to recover from");

    // History holds offsets 3..=5, so a client that saw 2 or later gets
    // all it missed, and nothing it did not.
    for since in 2..=5 {
        let recovery = recover(broker, channel, Some(&from(since, &epoch)), &rules).await;
        let context = format!("recovering from {since}");
        assert!(recovery.recovered, "{context}: not recovered");
        assert_eq!(recovery.position, position, "{context}: position");
        assert_eq!(
            offsets(&recovery.publications),
            ((since + 1)..=5).collect::<Vec<_>>(),
            "{context}"
        );
        for (got, sent) in recovery.publications.iter().zip(&sent[since as usize..]) {
            assert_same(got, sent, &context);
        }
    }
    // A client that saw only 1 (or nothing) missed 2, which is gone.
    for since in [0, 1] {
        let recovery = recover(broker, channel, Some(&from(since, &epoch)), &rules).await;
        assert_unrecovered(&recovery, &position, &format!("history lost {}", since + 1));
    }
    let future = recover(broker, channel, Some(&from(6, &epoch)), &rules).await;
    assert_unrecovered(&future, &position, "an offset not published yet");
    let other = Epoch::from_string(format!("{epoch}-other"));
    let elsewhere = recover(broker, channel, Some(&from(4, &other)), &rules).await;
    assert_unrecovered(&elsewhere, &position, "another epoch");
    // Past the caller's limit nothing is read: 3 missed, 2 allowed.
    let limited = broker
        .recover(channel, Some(&from(2, &epoch)), 2, &rules)
        .await
        .expect("recover");
    assert_unrecovered(&limited, &position, "more missed than the limit");
    let within = broker
        .recover(channel, Some(&from(3, &epoch)), 2, &rules)
        .await
        .expect("recover");
    assert_eq!(
        offsets(&within.publications),
        vec![4, 5],
        "within the limit"
    );
}

/// With `history_size` 0 offsets still grow, but only a client that is
/// up to date recovers.
async fn no_history_kept(broker: &mut dyn Broker, channel: &ChannelName) {
    let rules = rules(0);
    for n in 1..=2 {
        let publication = broker
            .publish(channel, Publisher::Server, payload(n), &rules)
            .await
            .expect("publish");
        assert_eq!(publication.offset, n);
    }
    let position = recover(broker, channel, None, &rules).await.position;
    assert_eq!(position.offset, 2);
    let behind = recover(broker, channel, Some(&from(1, &position.epoch)), &rules).await;
    assert_unrecovered(&behind, &position, "no history kept");
    let current = recover(broker, channel, Some(&from(2, &position.epoch)), &rules).await;
    assert!(current.recovered && current.publications.is_empty());
}

/// `watched` is pushed, `quiet` is not; then the other way round. A
/// publication of the channel that must stay silent goes first, so it
/// would be pushed before the one that is awaited.
async fn only_watched_channels_are_pushed(
    broker: &mut dyn Broker,
    pushed: &mut Pushed,
    watched: &ChannelName,
    quiet: &ChannelName,
) {
    broker.watch(watched).await.expect("watch");
    assert_eq!(publish(broker, quiet).await, 1);
    assert_eq!(publish(broker, watched).await, 1);
    assert_eq!(
        pushed.seen("the watched channel").await,
        Seen::publication(watched, 1)
    );

    // The embedded broker stops at once; the Redis one once its pub/sub
    // connection has unsubscribed. It takes watch orders in turn, so the
    // next watch having completed shows the unwatch took effect.
    broker.unwatch(watched);
    broker.watch(quiet).await.expect("watch");
    assert_eq!(publish(broker, watched).await, 2);
    assert_eq!(publish(broker, quiet).await, 2);
    assert_eq!(
        pushed.seen("the channel watched now").await,
        Seen::publication(quiet, 2)
    );

    // Watched again: pushed again from the next publication on.
    broker.watch(watched).await.expect("watch");
    assert_eq!(publish(broker, watched).await, 3);
    assert_eq!(
        pushed.seen("the channel watched again").await,
        Seen::publication(watched, 3)
    );
    broker.unwatch(quiet);
}

async fn listed(broker: &mut dyn Broker, channel: &ChannelName) -> Vec<PresenceEntry> {
    broker.presence(channel).await.expect("presence")
}

async fn presence(broker: &mut dyn Broker, pushed: &mut Pushed, channel: &ChannelName) {
    let (alice, bob) = (player("alice"), player("bob"));
    let entry = |player: &PlayerId, name: Option<&str>, connections| PresenceEntry {
        player_id: player.clone(),
        name: name.map(str::to_string),
        connections,
    };
    let set = |broker: &mut dyn Broker, player: &PlayerId, name: Option<&str>, connections| {
        broker.set_presence(channel, player, name, connections)
    };
    broker.watch(channel).await.expect("watch");
    assert!(
        listed(broker, channel).await.is_empty(),
        "nobody is present yet"
    );

    set(broker, &alice, Some("Alice"), 1)
        .await
        .expect("set_presence");
    assert_eq!(
        pushed.seen("alice joining").await,
        Seen::join(channel, &alice)
    );
    // More connections of a present player are no new join: bob's join is
    // the next event.
    set(broker, &alice, Some("Alice"), 3)
        .await
        .expect("set_presence");
    set(broker, &bob, None, 1).await.expect("set_presence");
    assert_eq!(pushed.seen("bob joining").await, Seen::join(channel, &bob));
    assert_eq!(
        listed(broker, channel).await,
        [entry(&alice, Some("Alice"), 3), entry(&bob, None, 1)],
        "players by id, with their counts"
    );

    set(broker, &alice, None, 0).await.expect("set_presence");
    assert_eq!(
        pushed.seen("alice leaving").await,
        Seen::leave(channel, &alice)
    );
    // Gone already: no second leave before the publication.
    set(broker, &alice, None, 0).await.expect("set_presence");
    let offset = publish(broker, channel).await;
    assert_eq!(
        pushed.seen("a publication after the leave").await,
        Seen::publication(channel, offset)
    );
    assert_eq!(listed(broker, channel).await, [entry(&bob, None, 1)]);

    set(broker, &bob, None, 0).await.expect("set_presence");
    assert_eq!(pushed.seen("bob leaving").await, Seen::leave(channel, &bob));
    assert!(listed(broker, channel).await.is_empty(), "everybody left");
    broker.unwatch(channel);
}
