//! Certificates for the TLS tests, generated at test time with `rcgen`: a
//! private CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate, and a second CA that signed nothing here (an untrusted
//! root). PEM files in a directory of the test's.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed none of the above.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).expect("CA"), key)
}

fn leaf(
    sans: &[&str],
    name: &str,
    usage: ExtendedKeyUsagePurpose,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params.signed_by(&key, ca, ca_key).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// Writes a fresh set of certificates into `dir`.
pub fn generate(dir: &Path) -> Certs {
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("certificate file is writable");
        p
    };
    let (ca_cert, ca_key) = ca("pinbus test CA");
    let (other, _) = ca("some other CA");
    let (server_cert, server_key) = leaf(
        &["127.0.0.1", "localhost"],
        "nats-server",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca_cert,
        &ca_key,
    );
    let (client_cert, client_key) = leaf(
        &["billing"],
        "billing",
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca_cert,
        &ca_key,
    );
    Certs {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client-key.pem", &client_key),
        other_ca: write("other-ca.pem", &other.pem()),
    }
}
