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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let ca = super::repo_root().join("certs.example/ca.crt");
    for cert in CertificateDer::pem_file_iter(&ca).expect("dev CA").map(|cert| cert.expect("PEM")) {
        roots.add(cert).expect("CA accepted");
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
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

/// The rustls config for tests that drive TLS by hand.
pub fn raw_config(protocol: Protocol) -> Arc<rustls::ClientConfig> {
    Arc::new(tls_config(protocol))
}
