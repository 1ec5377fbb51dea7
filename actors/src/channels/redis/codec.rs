//! How a publication is written as Redis text and read back. The body
//! (publisher, time, data) is JSON, stored as is in history and sent to
//! the other nodes; the offset and epoch travel beside it, in the stream
//! entry id and in the pub/sub message. Text that does not decode is
//! skipped, never trusted.

use std::time::Duration;

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::channels::stream::{Epoch, Payload, Publication, Publisher};
use crate::model::channel_name::ChannelName;
use crate::model::ids::PlayerId;
use crate::model::time::Timestamp;

/// Short field names keep every history entry and pub/sub message small.
#[derive(Serialize)]
struct BodyOut<'a> {
    /// The publishing player; absent for the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    u: Option<&'a str>,
    /// Milliseconds since the Unix epoch.
    t: i64,
    d: &'a RawValue,
}

#[derive(Deserialize)]
struct BodyIn {
    #[serde(default)]
    u: Option<String>,
    t: i64,
    d: Box<RawValue>,
}

pub(super) fn encode_body(publisher: &Publisher, timestamp: &Timestamp, data: &Payload) -> String {
    let body = BodyOut {
        u: match publisher {
            Publisher::Player(player) => Some(player.as_str()),
            Publisher::Server => None,
        },
        t: timestamp.0.timestamp_millis(),
        d: data.as_raw(),
    };
    // Serializing a string, an integer and already valid JSON cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

fn decode_publication(
    channel: &ChannelName,
    offset: u64,
    epoch: Epoch,
    body: &str,
) -> Option<Publication> {
    let body: BodyIn = serde_json::from_str(body).ok()?;
    let publisher = match body.u {
        Some(player) => Publisher::Player(PlayerId::parse(&player).ok()?),
        None => Publisher::Server,
    };
    Some(Publication {
        channel: channel.clone(),
        offset,
        epoch,
        publisher,
        data: Payload::from_raw(body.d),
        timestamp: Timestamp(DateTime::from_timestamp_millis(body.t)?),
    })
}

/// History entries as the scripts return them: id, body, id, body...
/// Entries of another epoch never reach here: a new epoch starts with the
/// history deleted.
pub(super) fn decode_entries(
    channel: &ChannelName,
    epoch: &Epoch,
    flat: &[String],
) -> Vec<Publication> {
    flat.chunks_exact(2)
        .filter_map(|entry| {
            let offset = entry[0].split('-').next()?.parse().ok()?;
            decode_publication(channel, offset, epoch.clone(), &entry[1])
        })
        .collect()
}

/// A publication as `publish.lua` announces it on pub/sub, after the
/// event's kind letter: `<offset> <epoch> <body>`.
pub(super) fn parse_publication(channel: &ChannelName, text: &str) -> Option<Publication> {
    let (offset, rest) = text.split_once(' ')?;
    let (epoch, body) = rest.split_once(' ')?;
    decode_publication(
        channel,
        offset.parse().ok()?,
        Epoch::from_string(epoch.to_string()),
        body,
    )
}

/// A duration as the scripts take it, in milliseconds. At least 1: Redis
/// refuses `SET ... PX 0`, and `PEXPIRE ... 0` would delete the key.
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelName {
        ChannelName::parse("room:lobby").unwrap()
    }

    #[test]
    fn a_publication_survives_the_trip_through_redis_text() {
        let data = Payload::from_value(&serde_json::json!({"text": "hi", "n": [1, 2]})).unwrap();
        let publisher = Publisher::Player(PlayerId::parse("alice").unwrap());
        let timestamp = Timestamp::now();
        let body = encode_body(&publisher, &timestamp, &data);
        let text = format!("7 abcd {body}");
        let publication = parse_publication(&channel(), &text).unwrap();
        assert_eq!(publication.offset, 7);
        assert_eq!(publication.epoch.as_str(), "abcd");
        assert_eq!(publication.publisher, publisher);
        assert_eq!(publication.data.as_raw().get(), data.as_raw().get());
        assert_eq!(
            publication.timestamp.0.timestamp_millis(),
            timestamp.0.timestamp_millis()
        );
    }

    #[test]
    fn server_publications_carry_no_player() {
        let data = Payload::from_value(&serde_json::json!(1)).unwrap();
        let body = encode_body(&Publisher::Server, &Timestamp::now(), &data);
        let publication = parse_publication(&channel(), &format!("1 e {body}")).unwrap();
        assert_eq!(publication.publisher, Publisher::Server);
    }

    #[test]
    fn malformed_events_are_refused() {
        for text in ["", "x", "1", "1 e", "1 e {", "one e {\"t\":1,\"d\":1}"] {
            assert!(parse_publication(&channel(), text).is_none(), "{text}");
        }
    }

    #[test]
    fn history_entries_decode_in_order_and_skip_garbage() {
        let data = Payload::from_value(&serde_json::json!("x")).unwrap();
        let body = encode_body(&Publisher::Server, &Timestamp::now(), &data);
        let flat = vec![
            "3-0".to_string(),
            body.clone(),
            "bad".to_string(),
            body.clone(),
            "4-0".to_string(),
            body,
        ];
        let epoch = Epoch::from_string("e".into());
        let offsets: Vec<u64> = decode_entries(&channel(), &epoch, &flat)
            .iter()
            .map(|p| p.offset)
            .collect();
        assert_eq!(offsets, vec![3, 4]);
    }
}
