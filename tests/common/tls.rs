//! Certificates for the tests that run a TLS server of their own (Redis,
//! PostgreSQL): a CA of the test's own and a server certificate it signed
//! for `localhost` and 127.0.0.1, written as PEM files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

pub struct TestCerts {
    /// Holds the files for the certificates' life.
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    pub fn generate() -> TestCerts {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Hearth test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca = write("ca.pem", ca_cert.pem());
        let cert = write("server.pem", server_cert.pem());
        let key = write("server.key", server_key.serialize_pem());
        TestCerts {
            _dir: dir,
            ca,
            cert,
            key,
        }
    }
}
