//! reqwest clients over real TLS (rustls) that trust `certs.example/ca.crt`.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

fn tls_config(protocol: Protocol) -> rustls::ClientConfig {
    tls_config_with_identity(protocol, false)
}

fn tls_config_with_identity(protocol: Protocol, client_certificate: bool) -> rustls::ClientConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let ca = super::repo_root().join("certs.example/ca.crt");
    for cert in CertificateDer::pem_file_iter(&ca).expect("dev CA").map(|cert| cert.expect("PEM")) {
        roots.add(cert).expect("CA accepted");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut config = if client_certificate {
        let certs_dir = super::repo_root().join("certs.example");
        let chain = CertificateDer::pem_file_iter(certs_dir.join("client.crt"))
            .expect("client cert")
            .map(|c| c.expect("PEM"))
            .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(certs_dir.join("client.key")).expect("client key");
        builder.with_client_auth_cert(chain, key).expect("client identity")
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = match protocol {
        Protocol::Http1 => vec![b"http/1.1".to_vec()],
        Protocol::Http2 => vec![b"h2".to_vec()],
    };
    config
}

/// A client that speaks exactly `protocol` over TLS.
pub fn client(protocol: Protocol) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(protocol))
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(4);
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
    };
    builder.build().expect("client")
}

/// A client presenting `certs.example/client.crt` (signed by the dev CA).
pub fn client_with_certificate(protocol: Protocol) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config_with_identity(protocol, true))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// The rustls config for tests that drive TLS by hand.
pub fn raw_config(protocol: Protocol) -> Arc<rustls::ClientConfig> {
    Arc::new(tls_config(protocol))
}
