//! The `hearth` command besides serving: `token` with channels, `check-config`
//! reporting every problem of the file and the environment, and `env`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Client, TestServer};

/// Runs `hearth` with `args` and only the environment given (no inherited
/// `HEARTH_*`), from a directory without a config.toml.
fn hearth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    command.current_dir(dir).args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HEARTH_")) {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run hearth")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A token from `hearth token --channels` grants exactly those channels.
#[test]
fn a_minted_token_grants_its_channels() {
    let dir = tempfile::tempdir().unwrap();
    let out = hearth(
        dir.path(),
        &["token", "alice", "--channels", "team:a,team:b"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    let server = TestServer::start();
    let mut client = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    client.recv();
    let granted = common::subscribe(&mut client, "s", &["team:a", "team:b"]);
    assert_eq!(granted["type"], "response", "{granted}");
    // Join events of the granted channels may come first.
    client.send_json(serde_json::json!({"type": "subscribe", "id": "t", "channels": ["team:c"]}));
    let refused = client.answer_to("t");
    assert_eq!(refused["code"], "forbidden", "{refused}");
}

/// `check-config` reads the file and the environment as the server would,
/// and names every problem at once; a good configuration passes.
#[test]
fn check_config_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nheartbeat_interval_s = 0\n\n[api]\nkey = \"short\"\n",
    )
    .unwrap();
    let out = hearth(
        dir.path(),
        &["check-config", "--config", bad.to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    let report = text(&out.stderr);
    for setting in ["server.heartbeat_interval_s", "api.key"] {
        assert!(report.contains(setting), "{setting} in {report}");
    }

    let out = hearth(
        dir.path(),
        &["check-config"],
        &[
            ("HEARTH_LIMITS_RATE_BURST", "many"),
            ("HEARTH_SAFETY_MODEL_CHECK", "perhaps"),
        ],
    );
    assert!(!out.status.success());
    let report = text(&out.stderr);
    for name in ["HEARTH_LIMITS_RATE_BURST", "HEARTH_SAFETY_MODEL_CHECK"] {
        assert!(report.contains(name), "{name} in {report}");
    }

    let out = hearth(
        dir.path(),
        &["check-config"],
        &[
            ("HEARTH_SERVER_BIND", "127.0.0.1:9999"),
            ("HEARTH_SERVR_BIND", "typo"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration is valid"));
    assert!(
        text(&out.stderr).contains("HEARTH_SERVR_BIND sets nothing"),
        "{}",
        text(&out.stderr)
    );
}

/// `hearth env` prints the variables README lists.
#[test]
fn env_prints_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = hearth(dir.path(), &["env"], &[]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    for name in [
        "HEARTH_SERVER_BIND",
        "HEARTH_LIMITS_RATE_BURST",
        "HEARTH_ASSISTANT_API_KEY",
    ] {
        assert!(table.contains(name), "{name}");
    }
}

/// At start the open-file soft limit rises to the hard limit, with a
/// warning when that is still short of `max_connections`.
#[test]
fn the_open_file_limit_is_raised_and_a_short_one_reported() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\nworkers = 1\n\n[progress]\npath = {:?}\n",
            dir.path().join("p.db").display().to_string()
        ),
    )
    .unwrap();
    let script = format!(
        "ulimit -Sn 256 && ulimit -Hn 512 && exec {} --config {}",
        env!("CARGO_BIN_EXE_hearth"),
        config.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hearth");
    let stderr = child.stderr.take().expect("stderr");
    let mut found = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("open_files_limit") {
            found = Some(line);
            break;
        }
        if line.contains("listening addr=") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = found.expect("an open_files_limit line before listening");
    assert!(line.contains("open_files_limit_low soft=512"), "{line}");
    assert!(line.contains("max_connections=100000"), "{line}");
}
