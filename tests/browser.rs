//! The chat app and the dashboard in headless Chromium (`tests/browser`):
//! sign in, a streamed reply, an exercise and its progress marker, crisis
//! resources, a dropped network recovered, the dashboard changing, and a
//! model's tool call approved in the app. The
//! set-up installs Debian's Chromium when it can and playwright-core with
//! `npm ci`; without Node.js or Chromium the test skips (fails under CI).
//! Screenshots of each step are kept in `target/tmp/browser/`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::fake_model::FakeModel;
use common::TestServer;
use hearth_actors::support::test_services::require_service;

#[test]
fn the_chat_app_and_the_dashboard_work_in_a_browser() {
    let node = require_service!(Node);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let setup = Command::new("bash")
        .arg("setup.sh")
        .current_dir(dir)
        .output()
        .expect("run tests/browser/setup.sh");
    let chromium = require_service!(Chromium);
    assert!(
        setup.status.success(),
        "the browser tests' set-up failed:\n{}{}",
        String::from_utf8_lossy(&setup.stdout),
        String::from_utf8_lossy(&setup.stderr)
    );
    let chromium = which(&chromium);

    // The test configuration keeps the development secret: the app offers
    // its development sign-in.
    let server = TestServer::start();
    // A second server whose assistant is the fake model, which calls
    // tools on cue: the approval prompt needs a model's call.
    let fake = FakeModel::start();
    let model_server = fake.server(|_| {});
    let artifacts = concat!(env!("CARGO_TARGET_TMPDIR"), "/browser");
    let run = Command::new(node)
        .current_dir(dir)
        // The test drives a second device with the JavaScript client, on
        // Node.js 20's WebSocket.
        .args(["--experimental-websocket", "--test", "app.test.mjs"])
        .env("HEARTH_HTTP", server.http_url(""))
        .env("HEARTH_MODEL_HTTP", model_server.http_url(""))
        .env("HEARTH_ARTIFACTS", artifacts)
        .env("HEARTH_CHROMIUM", chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let output = common::wait_killing_after(run.id(), Duration::from_secs(180), move || {
        run.wait_with_output().expect("wait for node")
    });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser tests failed (screenshots in {artifacts}):\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.lines().any(|line| line == "# pass 3"),
        "every browser test ran:\n{report}"
    );
}

/// The program's full path, as the browser launcher wants one.
fn which(program: &str) -> String {
    Command::new("bash")
        .args(["-c", "command -v \"$0\"", program])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| program.to_string())
}
