//! One scenario run against each broker: a player cycling subscribe,
//! publish and unsubscribe over fresh room names creates at most
//! `new_channels_per_minute_per_player` channels a minute, and its
//! publications fill at most its share of history: past either, `publish`
//! is answered `limit_exceeded`.

use serde_json::{json, Value};

use super::{Client, TestServer};

/// The budgets the scenario expects: 5 new channels a minute, 100 KiB of
/// history per player.
pub fn tight(config: &mut hearth::config::Config) {
    config.channels.new_channels_per_minute_per_player = 5;
    config.channels.history_max_bytes_per_player = 100 * 1024;
}

pub fn one_player_is_held_to_them(server: &TestServer) {
    let mut hoarder = server.connect("hoarder");
    let ask = |client: &mut Client, id: &str, mut request: Value| -> Value {
        request["id"] = json!(id);
        client.send_json(request);
        client.answer_to(id)
    };
    let mut refused = None;
    for n in 0..10 {
        let room = format!("room:fresh{n}");
        ask(
            &mut hoarder,
            "s",
            json!({"type": "subscribe", "channels": [room]}),
        );
        let answer = ask(
            &mut hoarder,
            "p",
            json!({"type": "publish", "channel": room, "data": n}),
        );
        ask(
            &mut hoarder,
            "u",
            json!({"type": "unsubscribe", "channels": [room]}),
        );
        if answer["type"] == "error" {
            refused = Some((n, answer));
            break;
        }
    }
    let (n, answer) = refused.expect("a new channel was refused");
    assert_eq!(n, 5, "the sixth new channel in a minute: {answer}");
    assert_eq!(answer["code"], "limit_exceeded", "{answer}");

    // Its share of history: 30 KiB publications into one room it is in.
    let pad = "x".repeat(30 * 1024);
    ask(
        &mut hoarder,
        "s",
        json!({"type": "subscribe", "channels": ["room:fresh0"]}),
    );
    let mut stored = 0;
    let refusal = loop {
        let answer = ask(
            &mut hoarder,
            "b",
            json!({"type": "publish", "channel": "room:fresh0", "data": pad}),
        );
        if answer["type"] == "error" {
            break answer;
        }
        stored += 1;
        assert!(
            stored < 10,
            "the per-player history budget held nothing back"
        );
    };
    assert_eq!(refusal["code"], "limit_exceeded", "{refusal}");
    // 100 KiB holds three 30 KiB publications (the first room's one small
    // publication is there too).
    assert_eq!(stored, 3);
}
