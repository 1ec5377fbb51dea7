//! The encoded frames of recent publications, shared by every subscribe
//! that recovers them: a reconnect storm (a node restarting, a network
//! blip) has many clients recover the same publications, and each is
//! serialized once, not once per client. The live fan-out already encodes
//! each publication once; it fills this cache as it goes.

use std::collections::{HashMap, VecDeque};

use crate::channels::stream::{Epoch, Publication};
use crate::model::channel_name::ChannelName;
use crate::protocol::{ChannelEvent, EncodedFrame, ServerFrame};

/// Bytes of encoded frames kept; the oldest go first past it.
pub(super) const FRAME_CACHE_BYTES: usize = 16 << 20;

type Key = (ChannelName, u64);

pub(super) struct FrameCache {
    frames: HashMap<Key, (Epoch, EncodedFrame)>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
    max_bytes: usize,
}

impl FrameCache {
    pub(super) fn new(max_bytes: usize) -> Self {
        FrameCache {
            frames: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Keeps the frame of `channel`'s publication at `offset`.
    pub(super) fn keep(
        &mut self,
        channel: &ChannelName,
        offset: u64,
        epoch: &Epoch,
        frame: &EncodedFrame,
    ) {
        if frame.len() > self.max_bytes {
            return;
        }
        let key = (channel.clone(), offset);
        let replaced = self
            .frames
            .insert(key.clone(), (epoch.clone(), frame.clone()));
        match replaced {
            Some((_, old)) => self.bytes -= old.len(),
            None => self.order.push_back(key),
        }
        self.bytes += frame.len();
        while self.bytes > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, frame)) = self.frames.remove(&oldest) {
                self.bytes -= frame.len();
            }
        }
    }

    /// The publication's frame: from the cache when the same publication
    /// (channel, offset and epoch) was encoded before, else encoded now and
    /// kept.
    pub(super) fn frame_of(&mut self, publication: Publication) -> EncodedFrame {
        let key = (publication.channel.clone(), publication.offset);
        if let Some((epoch, frame)) = self.frames.get(&key) {
            if *epoch == publication.epoch {
                return frame.clone();
            }
        }
        let (channel, offset, epoch) = (
            publication.channel.clone(),
            publication.offset,
            publication.epoch.clone(),
        );
        let frame =
            EncodedFrame::encode(&ServerFrame::Event(ChannelEvent::publication(publication)));
        self.keep(&channel, offset, &epoch, &frame);
        frame
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::stream::{Payload, Publisher};
    use crate::model::time::Timestamp;

    fn publication(channel: &str, offset: u64, epoch: &Epoch, text: &str) -> Publication {
        Publication {
            channel: ChannelName::parse(channel).unwrap(),
            offset,
            epoch: epoch.clone(),
            publisher: Publisher::Server,
            data: Payload::from_value(&serde_json::json!({ "text": text })).unwrap(),
            timestamp: Timestamp::now(),
        }
    }

    #[test]
    fn a_publication_is_encoded_once_and_shared() {
        let epoch = Epoch::generate();
        let mut cache = FrameCache::new(1 << 20);
        let first = cache.frame_of(publication("room:a", 1, &epoch, "one"));
        let again = cache.frame_of(publication("room:a", 1, &epoch, "one"));
        assert!(std::ptr::eq(first.as_str(), again.as_str()), "same bytes");
        assert!(first.as_str().contains("\"offset\":1"));
    }

    #[test]
    fn another_epoch_is_not_mistaken_for_the_same_publication() {
        let mut cache = FrameCache::new(1 << 20);
        let old = cache.frame_of(publication("room:a", 1, &Epoch::generate(), "old"));
        let new = cache.frame_of(publication("room:a", 1, &Epoch::generate(), "new"));
        assert!(old.as_str().contains("old") && new.as_str().contains("new"));
        assert_eq!(cache.len(), 1, "the newer replaced the older");
    }

    #[test]
    fn the_oldest_frames_go_past_the_byte_bound() {
        let epoch = Epoch::generate();
        let one = EncodedFrame::encode(&ServerFrame::Event(ChannelEvent::publication(
            publication("room:a", 10, &epoch, "x"),
        )));
        let mut cache = FrameCache::new(one.len() * 3);
        for offset in 11..=20 {
            cache.frame_of(publication("room:a", offset, &epoch, "x"));
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.bytes <= cache.max_bytes);
        let room = ChannelName::parse("room:a").unwrap();
        assert!(cache.frames.contains_key(&(room.clone(), 20)));
        assert!(!cache.frames.contains_key(&(room, 17)));
    }
}
