//! How the PostgreSQL stores connect: the URL, and TLS as `sslmode` asks
//! (`disable`, `require`: encrypted but the certificate unchecked, as
//! libpq's `require`; `verify-full`: the certificate checked against the
//! system's roots or a CA file, and the host name against it). `auto`
//! is `disable` for a server on this machine and `verify-full` for any
//! other, so data and passwords never cross a network in clear by default.

use std::sync::Arc;

use postgres::config::SslMode as WireSslMode;
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
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

/// Everything a store needs to (re)connect; cheap to clone.
#[derive(Clone)]
pub struct PgLink {
    config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl PgLink {
    /// `ca_pem`: certificates to trust instead of the system's (for
    /// `verify-full`).
    pub fn new(url: &str, mode: SslMode, ca_pem: Option<&[u8]>) -> Result<PgLink, String> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|err| format!("bad PostgreSQL url: {err}"))?;
        let tls = match mode {
            SslMode::Disable => {
                config.ssl_mode(WireSslMode::Disable);
                None
            }
            SslMode::Require | SslMode::VerifyFull => {
                config.ssl_mode(WireSslMode::Require);
                Some(MakeRustlsConnect::new(client_config(mode, ca_pem)?))
            }
        };
        Ok(PgLink { config, tls })
    }

    /// Without TLS: for a server on this machine, and the tests.
    pub fn plain(url: &str) -> Result<PgLink, String> {
        PgLink::new(url, SslMode::Disable, None)
    }

    /// A blocking client: call it off any async runtime's threads.
    pub fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
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
        let refused = PgLink::new(
            "postgres://u@db.example.org/x",
            SslMode::VerifyFull,
            Some(b"not a pem"),
        );
        assert!(refused.is_err());
        assert!(PgLink::new("postgres://u@db.example.org/x", SslMode::VerifyFull, None).is_ok());
        assert!(PgLink::new("postgres://u@db.example.org/x", SslMode::Require, None).is_ok());
    }
}
