//! A client that stops reading is closed 4002 while a reader in the same
//! channel keeps up. How much memory such a client can hold is a figure
//! of `hearth-bench hoard` (BENCHMARKS.md), not of a test: the process's
//! RSS moves with the allocator and whatever else runs.

mod common;

use common::TestServer;
use serde_json::json;

/// A client that stops reading while a channel floods is closed 4002; a
/// reader in the same channel gets every publication.
#[test]
fn a_non_reading_client_is_closed_4002() {
    const KEY: &str = "slow-test-0123456789abcdef0123456789";
    const COUNT: usize = 2000;
    let server = TestServer::with_config(|config| config.api.key = KEY.into());
    let mut slow = server.connect("slow");
    slow.request(
        "s",
        json!({"type": "subscribe", "channels": ["news:flood"]}),
    );
    let mut reader = server.connect("reader");
    reader.request(
        "s",
        json!({"type": "subscribe", "channels": ["news:flood"]}),
    );
    let reading = std::thread::spawn(move || {
        for expected in 1..=COUNT as u64 {
            let event = reader.recv();
            assert_eq!(event["offset"], expected, "the reader misses nothing");
        }
        reader
    });

    let agent = common::http_agent();
    let payload = "x".repeat(30 * 1024);
    for n in 0..COUNT {
        let body = json!({"channel": "news:flood", "data": {"n": n, "pad": payload}}).to_string();
        let status = agent
            .post(&server.http_url("/api/publish"))
            .header("Authorization", &format!("Bearer {KEY}"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .expect("publish")
            .status();
        assert_eq!(status.as_u16(), 200);
    }
    let mut reader = reading.join().expect("reader thread");
    reader.expect_quiet();
    let metrics = server.wait_for_metrics("the slow consumer closed", |m| {
        m["slow_consumer_closes"] == 1
    });
    assert_eq!(
        metrics["connections"], 1,
        "only the reader is left: {metrics}"
    );

    // What the slow client finally reads ends with the 4002 close.
    assert_eq!(slow.raw_close(), (4002, "slow consumer".into()));
    let mut fresh = server.connect("fresh-client");
    assert_eq!(fresh.say("alive", "hello?")["role"], "assistant");
}
