//! The built-in chat app's and the dashboard's files are served from the binary, with their
//! types and a content security policy; the development sign-in exists
//! only while the shipped development secret is in use, and its token
//! connects. (The app in a real browser: next to come.)

mod common;

use common::{http_get, http_post, Client, TestServer};
use serde_json::json;

fn fetch(server: &TestServer, path: &str) -> (u16, String, String) {
    let response = common::http_agent()
        .get(&server.http_url(path))
        .call()
        .expect("GET");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, policy) = (header("content-type"), header("content-security-policy"));
    let body = response.into_body().read_to_string().expect("body");
    (status, format!("{content_type}|{policy}"), body)
}

#[test]
fn the_app_and_the_client_are_served_from_the_binary() {
    let server = TestServer::start();
    let (status, headers, body) = fetch(&server, "/");
    assert_eq!(status, 200);
    assert!(headers.starts_with("text/html"), "{headers}");
    assert!(headers.contains("default-src 'self'"), "{headers}");
    assert!(body.contains("<script type=\"module\" src=\"/app.js\">"));
    for (path, kind) in [
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/dashboard", "text/html"),
        ("/dashboard.js", "text/javascript"),
        ("/sdk/index.js", "text/javascript"),
        ("/sdk/client.js", "text/javascript"),
        ("/sdk/assistant.js", "text/javascript"),
    ] {
        let (status, headers, body) = fetch(&server, path);
        assert_eq!(status, 200, "{path}");
        assert!(headers.starts_with(kind), "{path}: {headers}");
        assert!(!body.is_empty(), "{path}");
    }
    let (status, _) = http_get(&server.http_url("/sdk/../Cargo.toml"), None);
    assert_eq!(status, 404);
}

#[test]
fn the_development_sign_in_exists_only_with_the_development_secret() {
    let server = TestServer::start();
    let (status, _) = http_get(&server.http_url("/dev/token"), None);
    assert_eq!(status, 200, "the tests use the development secret");
    let (status, body) = http_post(
        &server.http_url("/dev/token"),
        &json!({"player": "guest"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("a token");
    let mut client = Client::open(&server.ws_url(&format!("?token={token}")), &[]);
    assert_eq!(client.recv()["metadata"]["player_id"], "guest");
    let (status, _) = http_post(
        &server.http_url("/dev/token"),
        &json!({"player": "no spaces"}),
        None,
    );
    assert_eq!(status, 400);

    let secured = TestServer::with_config(|config| {
        config.auth.secret = "a-real-secret-0123456789abcdef0123456789".into();
    });
    let (status, _) = http_get(&secured.http_url("/dev/token"), None);
    assert_eq!(status, 404);
    let (status, _) = http_post(
        &secured.http_url("/dev/token"),
        &json!({"player": "guest"}),
        None,
    );
    assert_eq!(status, 404);
}
