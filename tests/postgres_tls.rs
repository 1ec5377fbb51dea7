//! PostgreSQL over TLS: a server of the test's own that refuses every
//! connection without TLS, its certificate signed by a CA of the test's
//! own. Hearth's stores reach it with `sslmode = "verify-full"` and the CA
//! as `ca_file`; without TLS, or trusting another CA, they cannot. Without
//! PostgreSQL's `initdb` the test skips (fails under CI).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tls::TestCerts;
use common::TestServer;
use hearth_actors::store::postgres_link::{PgPool, SslMode};
use hearth_actors::store::progress::postgres::PostgresProgressStore;
use hearth_actors::support::test_services::require_service;
use serde_json::json;

const KEY: &str = "pg-tls-test-key-0123456789abcdef0123456789";

/// A PostgreSQL server of the test's own, TLS only, on a free port.
struct OwnPostgres {
    _dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

/// Runs a PostgreSQL program as the `postgres` user when this process is
/// root (PostgreSQL refuses to run as root), as itself otherwise.
fn as_postgres(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

fn give_to_postgres(path: &Path) {
    // Only meaningful as root; harmless otherwise.
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status();
}

impl OwnPostgres {
    fn start(initdb: &str, certs: &TestCerts) -> OwnPostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::copy(&certs.cert, dir.path().join("server.pem")).unwrap();
        std::fs::copy(&certs.key, dir.path().join("server.key")).unwrap();
        give_to_postgres(dir.path());
        let status = as_postgres(initdb)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let key = dir.path().join("server.key");
        let _ = as_postgres("chmod").arg("600").arg(&key).status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let postgres = Path::new(initdb).with_file_name("postgres");
        let program = if postgres.is_absolute() {
            postgres.display().to_string()
        } else {
            "postgres".to_string()
        };
        let child = as_postgres(&program)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "ssl=on",
                "-c",
                "fsync=off",
            ])
            .arg("-c")
            .arg(format!(
                "ssl_cert_file={}",
                dir.path().join("server.pem").display()
            ))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = OwnPostgres {
            _dir: dir,
            port,
            child,
        };
        let ca = std::fs::read(&certs.ca).unwrap();
        let url = server.url();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pool = PgPool::new(&url, SslMode::VerifyFull, Some(&ca)).unwrap();
            if opens(pool) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the test's PostgreSQL did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a progress store opens (creating its table) through `pool`.
fn opens(pool: PgPool) -> bool {
    std::thread::spawn(move || PostgresProgressStore::open(pool).is_ok())
        .join()
        .unwrap_or(false)
}

#[test]
fn the_stores_reach_postgresql_only_over_verified_tls() {
    let initdb = require_service!(PostgresServer);
    let certs = TestCerts::generate();
    let postgres = OwnPostgres::start(&initdb, &certs);
    let url = postgres.url();

    assert!(!opens(PgPool::plain(&url).unwrap()), "refused without TLS");
    let stranger = std::fs::read(TestCerts::generate().ca).unwrap();
    assert!(
        !opens(PgPool::new(&url, SslMode::VerifyFull, Some(&stranger)).unwrap()),
        "a certificate from another CA is refused"
    );
    assert!(opens(PgPool::new(&url, SslMode::Require, None).unwrap()));

    // End to end: progress and conversations in that PostgreSQL.
    let server = TestServer::with_config(|config| {
        config.api.key = KEY.into();
        config.progress.kind = "postgres".into();
        config.progress.url = url.clone();
        config.progress.sslmode = "verify-full".into();
        config.progress.ca_file = certs.ca.clone();
        config.conversations.kind = "postgres".into();
        config.conversations.url = url.clone();
        config.conversations.sslmode = "verify-full".into();
        config.conversations.ca_file = certs.ca.clone();
    });
    let mut client = server.connect("tls-player");
    client.click("s", "ex_grounding");
    let done = client.click("c", "ex_grounding_complete");
    let marker = done["content"]["elements"][0]["id"].clone();
    let (status, body) = server.get("/api/players/tls-player/progress", Some(KEY));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["markers"][0]["marker_id"], marker, "{body}");
    let created = client.request(
        "n",
        json!({"type": "request", "method": "sessions.create", "params": {"title": "over tls"}}),
    );
    assert_eq!(created["type"], "response", "{created}");
}
