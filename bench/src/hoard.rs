//! `hoard`: the most one ordinary player token can make a server hold. The
//! player opens as many connections as it may, subscribes each to the same
//! rooms, stops reading on all but one, and publishes the largest payload
//! allowed until the server refuses: history fills to the player's budget,
//! every publication is queued for each connection that does not read,
//! until those are closed as slow consumers. The server's resident memory
//! is sampled throughout; the peak over the start is the figure.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{connect, request, rss_kib, BenchResult, Socket, Target};

pub(crate) struct HoardPlan {
    pub connections: usize,
    pub channels: usize,
    /// Bytes of each publication's padding (the server's default limit on
    /// a publication is 32 KiB serialized).
    pub payload: usize,
    /// Publications to attempt at most.
    pub max_publications: usize,
    pub timeout: Duration,
}

pub(crate) async fn hoard(
    target: &Target,
    server_pid: Option<u32>,
    plan: HoardPlan,
) -> BenchResult<Value> {
    let pid = server_pid.ok_or("hoard needs --server-pid to read the server's memory")?;
    let before = rss_kib(pid)?;
    let peak = Rc::new(Cell::new(before));
    let sampling = Rc::new(Cell::new(true));
    let sampler = tokio::task::spawn_local({
        let (peak, sampling) = (peak.clone(), sampling.clone());
        async move {
            while sampling.get() {
                if let Ok(now) = rss_kib(pid) {
                    peak.set(peak.get().max(now));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let rooms: Vec<String> = (0..plan.channels)
        .map(|n| format!("room:hoard-{n}"))
        .collect();
    let mut sockets: Vec<Socket> = Vec::with_capacity(plan.connections);
    for n in 0..plan.connections {
        let mut socket = connect(target, "hoarder").await?;
        let joined = request(
            &mut socket,
            &format!("s{n}"),
            json!({"type": "subscribe", "channels": rooms}),
        )
        .await?;
        if joined["type"] != "response" {
            return Err(format!("subscribe refused: {joined}"));
        }
        sockets.push(socket);
    }
    // The first connection publishes and reads its answers; the others
    // never read again.
    let mut publisher = sockets.remove(0);
    let pad = "x".repeat(plan.payload);
    let deadline = Instant::now() + plan.timeout;
    let (mut accepted, mut refused, mut refusals_in_a_row) = (0usize, 0usize, 0usize);
    let mut last_refusal = Value::Null;
    // New rooms first; once the server refuses more new channels, the
    // rooms that took a publication are filled round-robin.
    let mut published_to: Vec<usize> = Vec::new();
    let mut next_new = 0;
    for n in 0..plan.max_publications {
        if Instant::now() > deadline || refusals_in_a_row >= 20 {
            break;
        }
        let new_room = next_new < rooms.len();
        let index = match new_room {
            true => next_new,
            false if published_to.is_empty() => break,
            false => published_to[n % published_to.len()],
        };
        let answer = request(
            &mut publisher,
            &format!("p{n}"),
            json!({"type": "publish", "channel": rooms[index], "data": pad}),
        )
        .await?;
        if new_room {
            next_new += 1;
        }
        if answer["type"] == "response" {
            accepted += 1;
            crate::progress::add(1);
            refusals_in_a_row = 0;
            if new_room {
                published_to.push(index);
            }
        } else if new_room
            && answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("new"))
        {
            // No more new channels this minute: stay with the known ones.
            next_new = rooms.len();
            refused += 1;
        } else {
            refused += 1;
            refusals_in_a_row += 1;
            last_refusal = answer;
        }
    }
    // Let the server settle what it queued before the last sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = rss_kib(pid)?;
    drop(sockets);
    drop(publisher);
    tokio::time::sleep(Duration::from_secs(1)).await;
    sampling.set(false);
    let _ = sampler.await;
    let after = rss_kib(pid)?;
    Ok(json!({
        "scenario": "hoard",
        "connections": plan.connections,
        "channels": plan.channels,
        "payload": plan.payload,
        "accepted": accepted,
        "refused": refused,
        "last_refusal": last_refusal,
        "rss_before_kib": before,
        "rss_peak_kib": peak.get(),
        "rss_held_kib": held,
        "rss_after_kib": after,
        "peak_growth_mib": peak.get().saturating_sub(before) as f64 / 1024.0,
    }))
}
