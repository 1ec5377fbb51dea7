//! Graceful shutdown of the real binary: on SIGTERM every client sees 1001,
//! the process exits within shutdown_timeout_s, and progress markers are
//! intact.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{spawn_hearth, test_config, Client, TestServer};
use serde_json::json;

const KEY: &str = "shutdown-test-0123456789abcdef0123456789";
const SHUTDOWN_TIMEOUT_S: u64 = 5;

/// Waits for the process to exit, at most `within`.
fn wait_for_exit(mut child: Child, within: Duration) -> std::process::ExitStatus {
    common::wait_killing_after(child.id(), within, move || {
        child.wait().expect("wait for hearth")
    })
}

/// SIGTERM with 100 open connections: each sees 1001, the process exits in
/// time and cleanly, and a marker recorded just before is still there.
#[test]
fn sigterm_closes_every_connection_with_1001() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("progress.db");
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nworkers = 1\nshutdown_timeout_s = {SHUTDOWN_TIMEOUT_S}\n\n[progress]\npath = {:?}\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    let (child, addr) = spawn_hearth(&config_path, &[("HEARTH_API_KEY", KEY)]);

    let token = common::token_with(json!({"sub": "alice", "exp": common::now() + 600}));
    let url = format!("ws://{addr}/ws/chat?token={token}");
    let mut first = Client::open(&url, &[]);
    first.recv();
    first.click("s", "ex_breathing");
    let reply = first.click("c", "ex_breathing_complete");
    let marker = reply["content"]["elements"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut clients = vec![first];
    for n in 1..100 {
        let token = common::token_with(json!({"sub": format!("p{n}"), "exp": common::now() + 600}));
        let mut client = Client::open(&format!("ws://{addr}/ws/chat?token={token}"), &[]);
        client.recv();
        clients.push(client);
    }

    let signalled = Instant::now();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    for client in &mut clients {
        assert_eq!(client.expect_close(), (1001, "server shutting down".into()));
    }
    let exit = wait_for_exit(child, Duration::from_secs(SHUTDOWN_TIMEOUT_S + 2));
    assert!(exit.success(), "exit status {exit}");
    assert!(signalled.elapsed() < Duration::from_secs(SHUTDOWN_TIMEOUT_S));

    // The store is intact and the marker is in it.
    let mut config = test_config(store);
    config.api.key = KEY.into();
    let server = TestServer::start_with(config);
    let (status, body) = server.get("/api/players/alice/progress", Some(KEY));
    assert_eq!(status, 200);
    assert_eq!(body["markers"][0]["marker_id"], marker.as_str());
}

/// A server with no connections exits at once on SIGINT too.
#[test]
fn sigint_stops_an_idle_server() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[progress]\npath = {:?}\n",
            dir.path().join("p.db").display().to_string()
        ),
    )
    .unwrap();
    let (child, addr) = spawn_hearth(&config_path, &[("HEARTH_API_KEY", KEY)]);
    assert_eq!(
        common::http_get(&format!("http://{addr}/healthz"), None).0,
        200
    );
    Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    let exit = wait_for_exit(child, Duration::from_secs(5));
    assert!(exit.success(), "exit status {exit}");
}
