//! How the PostgreSQL stores connect: a small pool of async clients
//! (`tokio-postgres` through `deadpool-postgres`) on a runtime of their own,
//! and TLS as `sslmode` asks
//! (`disable`, `require`: encrypted but the certificate unchecked, as
//! libpq's `require`; `verify-full`: the certificate checked against the
//! system's roots or a CA file, and the host name against it). `auto`
//! is `disable` for a server on this machine and `verify-full` for any
//! other, so data and passwords never cross a network in clear by default.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Require,
    VerifyFull,
}

impl SslMode {
    /// `auto`, `disable`, `require` or `verify-full`; `auto` decided by
    /// whether the URL's host is this machine.
    pub fn parse(text: &str, host_is_local: bool) -> Option<SslMode> {
        match text {
            "auto" if host_is_local => Some(SslMode::Disable),
            "auto" => Some(SslMode::VerifyFull),
            "disable" => Some(SslMode::Disable),
            "require" => Some(SslMode::Require),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }
}

/// Connections each store keeps open at most: a few queries at once from
/// the blocking pool, without one connection per blocking thread.
const POOL_SIZE: usize = 4;

/// How long a call waits for a free connection, or for a new one.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// The runtime the pools' connections live on. The stores are called from
/// the blocking thread pool (their traits are synchronous), which may
/// block on this runtime; its one thread drives every connection.
fn pg_runtime() -> Result<&'static tokio::runtime::Runtime, PoolUnavailable> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("hearth-postgres")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|err| PoolUnavailable(format!("cannot start the PostgreSQL runtime: {err}")))
}

/// No connection could be had: the database is unreachable, refused us,
/// or every connection stayed busy past the wait.
#[derive(Debug, Clone)]
pub struct PoolUnavailable(pub String);

impl std::fmt::Display for PoolUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store's connections; cheap to clone.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
}

impl PgPool {
    /// `ca_pem`: certificates to trust instead of the system's (for
    /// `verify-full`). Connects lazily: nothing is opened until a call.
    pub fn new(url: &str, mode: SslMode, ca_pem: Option<&[u8]>) -> Result<PgPool, String> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| format!("bad PostgreSQL url: {err}"))?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match mode {
            SslMode::Disable => {
                config.ssl_mode(WireSslMode::Disable);
                Manager::from_config(config, NoTls, manager_config)
            }
            SslMode::Require | SslMode::VerifyFull => {
                config.ssl_mode(WireSslMode::Require);
                let tls = MakeRustlsConnect::new(client_config(mode, ca_pem)?);
                Manager::from_config(config, tls, manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|err| format!("PostgreSQL pool: {err}"))?;
        Ok(PgPool { pool })
    }

    /// Without TLS: for a server on this machine, and the tests.
    pub fn plain(url: &str) -> Result<PgPool, String> {
        PgPool::new(url, SslMode::Disable, None)
    }

    /// Runs a store's schema script (`CREATE ... IF NOT EXISTS`) as the
    /// store opens. Blocking, like [`PgPool::run`].
    pub fn create_schema<E>(&self, schema: &'static str) -> Result<(), E>
    where
        E: From<PoolUnavailable> + From<tokio_postgres::Error>,
    {
        self.run(|client| async move { client.batch_execute(schema).await.map_err(E::from) })
    }

    /// Runs `work` with a pooled connection and waits for it. Call it from
    /// a thread that may block (the blocking pool, a plain thread), never
    /// from an async task. A connection that broke is dropped by the pool
    /// and replaced on a later call.
    pub fn run<T, E, Fut>(&self, work: impl FnOnce(Object) -> Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<PoolUnavailable>,
    {
        pg_runtime()?.block_on(async {
            let client = self
                .pool
                .get()
                .await
                .map_err(|err| PoolUnavailable(format!("PostgreSQL: {err}")))?;
            work(client).await
        })
    }
}

fn client_config(mode: SslMode, ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    // The provider is named rather than installed for the process, as the
    // model client does.
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| err.to_string())?;
    if mode == SslMode::Require {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|err| format!("CA file: {err}"))?;
                roots.add(cert).map_err(|err| format!("CA file: {err}"))?;
            }
            if roots.is_empty() {
                return Err("CA file: no certificate in it".into());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `sslmode = "require"`: encryption against a passive listener, with the
/// server's certificate taken as it comes (libpq's meaning of `require`).
/// The handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_tls_off_this_machine_only() {
        assert_eq!(SslMode::parse("auto", true), Some(SslMode::Disable));
        assert_eq!(SslMode::parse("auto", false), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("require", true), Some(SslMode::Require));
        assert_eq!(SslMode::parse("prefer", true), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let refused = PgPool::new(
            "postgres://u@db.example.org/x",
            SslMode::VerifyFull,
            Some(b"not a pem"),
        );
        assert!(refused.is_err());
        assert!(PgPool::new("postgres://u@db.example.org/x", SslMode::VerifyFull, None).is_ok());
        assert!(PgPool::new("postgres://u@db.example.org/x", SslMode::Require, None).is_ok());
    }
}
