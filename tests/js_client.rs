//! The JavaScript client (`clients/js`): its unit tests, and its
//! integration tests against this Hearth, started here on port 0, with
//! tokens minted here, run by Node.js (`node --test`, no packages); and its
//! types (`index.d.ts`) checked by the TypeScript compiler, which the test
//! installs (`npm ci`, the version pinned in package-lock.json). Without
//! Node.js the tests skip (fail under CI).

mod common;

use std::process::Command;

use common::TestServer;
use hearth_actors::support::test_services::require_service;
use serde_json::json;

#[test]
fn the_javascript_client_passes_its_tests() {
    let node = require_service!(Node);
    let server = TestServer::start();
    // A server of the test's own, which the restart test stops and starts.
    let dir = tempfile::tempdir().expect("temporary directory");
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nworkers = 1\nshutdown_timeout_s = 2\n\n[progress]\npath = {:?}\n\n[conversations]\npath = {:?}\n",
            dir.path().join("progress.db").display().to_string(),
            dir.path().join("conversations.db").display().to_string(),
        ),
    )
    .expect("write the config");
    let tokens: serde_json::Map<String, serde_json::Value> =
        ["alice", "bob", "carol", "dana", "erin"]
            .iter()
            .map(|player| (player.to_string(), json!(server.token(player))))
            .collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js");
    let output = Command::new(node)
        .current_dir(dir)
        // Node.js 20 has a WebSocket client behind this flag (22 has it
        // by default); the client takes any implementation.
        .args(["--experimental-websocket", "--test", "test/"])
        .env("HEARTH_URL", server.ws_url(""))
        .env("HEARTH_SECRET", common::SECRET)
        .env("HEARTH_BIN", env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_CONFIG", &config_path)
        .env(
            "HEARTH_TOKENS",
            serde_json::Value::Object(tokens).to_string(),
        )
        .output()
        .expect("run node");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the JavaScript tests failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let count = |label: &str| {
        report
            .lines()
            .find_map(|line| line.strip_prefix(label))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    let passed = count("# pass ").unwrap_or(0);
    assert!(
        passed >= 19,
        "only {passed} JavaScript tests passed:\n{report}"
    );
    assert_eq!(
        count("# skipped "),
        Some(0),
        "tests were skipped:\n{report}"
    );
}

/// `index.d.ts` describes the client as a program uses it: `tsc` checks
/// `test/types.ts` against it, strictly.
#[test]
fn the_javascript_client_types_check() {
    let node = require_service!(Node);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/js");
    let npm = std::path::Path::new(&node).with_file_name("npm");
    let npm = if npm.is_absolute() {
        npm.display().to_string()
    } else {
        "npm".to_string()
    };
    let install = Command::new(&npm)
        .current_dir(dir)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .output()
        .expect("run npm ci");
    assert!(
        install.status.success(),
        "npm ci failed:\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let check = Command::new(&node)
        .current_dir(dir)
        .args(["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"])
        .output()
        .expect("run tsc");
    assert!(
        check.status.success(),
        "the types do not check:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
