//! Whether the outside services some tests need are there (Redis,
//! PostgreSQL, the `redis-server` program), and what such a test does when
//! one is not.
//!
//! This exists for the test suites of both crates, not for the server. It
//! lives in the library because the integration tests of the server crate
//! and the unit tests of this crate share it, and a public module here is
//! the one place both can reach. It uses only the standard library.
//!
//! A plain `cargo test --workspace` has to pass on a machine with none of
//! these services, so a test whose service is unreachable prints one
//! `skipped:` line and returns. Where the services are meant to be up (CI),
//! `HEARTH_TEST_SERVICES=require` turns that into a failure, so a service
//! that went missing cannot pass unnoticed as a row of skips.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `require` fails instead of skipping; unset, empty or `skip` skips.
pub const MODE_VARIABLE: &str = "HEARTH_TEST_SERVICES";

/// A local service answers well within this; a closed or filtered port
/// should not hold up a test run.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The shared Redis: `HEARTH_TEST_REDIS_URL`, else redis://127.0.0.1:6379.
    Redis,
    /// PostgreSQL with a `test` database: `HEARTH_TEST_POSTGRES_URL`, else
    /// postgres://postgres@127.0.0.1:5432/test.
    Postgres,
    /// The `redis-server` program on PATH, for tests that run a Redis of
    /// their own so that they can stop it.
    RedisServer,
    /// PostgreSQL's `initdb` on PATH, for tests that run a server of their
    /// own (with TLS).
    PostgresServer,
    /// Node.js on PATH, for the JavaScript client's tests.
    Node,
    /// Debian's Chromium on PATH, for the browser tests (whose set-up
    /// installs it when it can).
    Chromium,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Redis => "Redis",
            Service::Postgres => "PostgreSQL",
            Service::RedisServer => "redis-server",
            Service::PostgresServer => "initdb",
            Service::Node => "Node.js",
            Service::Chromium => "Chromium",
        }
    }

    /// The variable that points the tests at another instance.
    fn url_variable(self) -> Option<&'static str> {
        match self {
            Service::Redis => Some("HEARTH_TEST_REDIS_URL"),
            Service::Postgres => Some("HEARTH_TEST_POSTGRES_URL"),
            Service::RedisServer | Service::PostgresServer | Service::Node | Service::Chromium => {
                None
            }
        }
    }

    fn default_location(self) -> &'static str {
        match self {
            Service::Redis => "redis://127.0.0.1:6379",
            Service::Postgres => "postgres://postgres@127.0.0.1:5432/test",
            Service::RedisServer => "redis-server",
            Service::PostgresServer => "initdb",
            Service::Node => "node",
            Service::Chromium => "chromium",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Service::Redis | Service::RedisServer => 6379,
            Service::Postgres | Service::PostgresServer | Service::Node | Service::Chromium => 5432,
        }
    }

    /// Where the tests find the service: a URL, or for `RedisServer` the
    /// program to run.
    pub fn location(self) -> String {
        self.url_variable()
            .and_then(|name| std::env::var(name).ok())
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| self.default_location().to_string())
    }
}

/// The guard at the top of a test that needs `service`: its location when it
/// is there; `None` (after one `skipped:` line) when it is not, and the test
/// returns; a panic when it is not and `HEARTH_TEST_SERVICES=require`.
/// The panic points at the test, not here.
#[track_caller]
pub fn require(service: Service) -> Option<String> {
    let location = service.location();
    let (available, at) = match service {
        Service::RedisServer | Service::PostgresServer | Service::Node | Service::Chromium => {
            (program_runs(&location), "on PATH".to_string())
        }
        Service::Redis | Service::Postgres => match address_of(&location, service.default_port()) {
            Some(address) => (reachable(&address), format!("at {address}")),
            // Not a host and port (a socket path, say): nothing to probe,
            // so the test runs and meets the service itself.
            None => return Some(location),
        },
    };
    if available {
        return Some(location);
    }
    let required = match mode(std::env::var(MODE_VARIABLE).ok().as_deref()) {
        Ok(required) => required,
        Err(message) => panic!("{message}"),
    };
    let test = current_test();
    if required {
        let (missing, remedy) = match service.url_variable() {
            Some(name) => ("unreachable", format!("start it, or point {name} at one")),
            None => ("not found", "install it".to_string()),
        };
        panic!(
            "{test} needs {} {at}, which is {missing}, and {MODE_VARIABLE}=require \
             makes that a failure: {remedy}",
            service.name()
        );
    }
    // Straight to the stderr handle: libtest captures `eprintln!` and shows
    // it only for failed tests, and a skip has to be seen. One write, so
    // that other tests' output cannot split the line.
    let line = format!("{}\n", skip_line(&test, service, &at));
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// `require` as the one-line guard at the top of a test:
/// `let url = require_service!(Redis);` is the service's location, or
/// returns from the test when the service is missing and not required.
#[macro_export]
macro_rules! require_service {
    ($service:ident) => {
        match $crate::support::test_services::require(
            $crate::support::test_services::Service::$service,
        ) {
            Some(location) => location,
            None => return,
        }
    };
}

// `macro_export` puts the macro at the crate root; this names it here too.
pub use crate::require_service;

fn skip_line(test: &str, service: Service, at: &str) -> String {
    format!(
        "skipped: {test} needs {} {at} (set {MODE_VARIABLE}=require to fail instead)",
        service.name()
    )
}

/// Whether a missing service fails the test; an unknown value is an error
/// rather than a quiet skip, so that a typo in CI does not hide failures.
fn mode(value: Option<&str>) -> Result<bool, String> {
    match value.unwrap_or("") {
        "" | "skip" => Ok(false),
        "require" => Ok(true),
        other => Err(format!(
            "{MODE_VARIABLE}={other:?}: expected \"require\", \"skip\" or nothing"
        )),
    }
}

/// libtest runs each test on a thread named after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// The `host:port` that a URL of the form
/// `scheme://[user[:password]@]host[:port][/path][?query]` points at, with
/// `default_port` when it names none; `None` when it names no host.
pub fn address_of(url: &str, default_port: u16) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal keeps its brackets, as socket addresses want them.
        Some(inside) => {
            let (host, after) = inside.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (format!("[{host}]"), port)
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (host_port.to_string(), None),
        },
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port = match port {
        None | Some("") => default_port,
        Some(port) => port.parse().ok()?,
    };
    Some(format!("{host}:{port}"))
}

/// Whether something accepts a TCP connection at `address` (any of the
/// addresses a name resolves to).
pub fn reachable(address: &str) -> bool {
    address.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|addr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok())
    })
}

fn program_runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_out_of_service_urls() {
        let cases = [
            ("redis://127.0.0.1:6379", Some("127.0.0.1:6379")),
            ("redis://127.0.0.1", Some("127.0.0.1:6379")),
            ("redis://localhost:7000/2", Some("localhost:7000")),
            (
                "redis://:secret@cache.internal:6380/0",
                Some("cache.internal:6380"),
            ),
            (
                "postgres://postgres@127.0.0.1:5432/test",
                Some("127.0.0.1:5432"),
            ),
            (
                "postgresql://user:pw@db:6000/x?sslmode=disable",
                Some("db:6000"),
            ),
            ("postgres://db/test", Some("db:6379")),
            ("postgres://[::1]:5433/test", Some("[::1]:5433")),
            ("postgres://[::1]/test", Some("[::1]:6379")),
        ];
        for (url, address) in cases {
            assert_eq!(address_of(url, 6379).as_deref(), address, "{url}");
        }
    }

    #[test]
    fn urls_without_a_host_and_port_have_no_address() {
        for url in [
            "",
            "127.0.0.1:6379",
            "host=localhost port=5432",
            "postgres:///test",
            "redis://user@",
            "redis://host:port",
            "redis://host:99999",
            "postgres://[::1/test",
            "postgres://[::1]x/test",
        ] {
            assert_eq!(address_of(url, 1), None, "{url}");
        }
    }

    #[test]
    fn only_an_open_port_is_reachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let open = listener.local_addr().expect("address").to_string();
        assert!(reachable(&open));
        drop(listener);
        assert!(!reachable(&open), "{open} is closed now");
        assert!(!reachable("not an address"));
    }

    #[test]
    fn only_require_fails_and_anything_unknown_is_refused() {
        assert_eq!(mode(None), Ok(false));
        assert_eq!(mode(Some("")), Ok(false));
        assert_eq!(mode(Some("skip")), Ok(false));
        assert_eq!(mode(Some("require")), Ok(true));
        assert!(mode(Some("requir")).is_err());
    }

    #[test]
    fn a_skip_is_one_line_naming_the_test_the_service_and_the_variable() {
        assert_eq!(
            skip_line("cluster_test", Service::Redis, "at 127.0.0.1:6379"),
            "skipped: cluster_test needs Redis at 127.0.0.1:6379 \
             (set HEARTH_TEST_SERVICES=require to fail instead)"
        );
    }

    #[test]
    fn a_missing_program_does_not_run() {
        assert!(!program_runs("hearth-no-such-program"));
    }
}
