//! TLS on the HTTPS listener: the certificate material loaded with the policy
//! (`config::tls_material`, re-exported here) served to each handshake. The served certificate
//! and the client-CA verifier are both swappable, so a reload applies a rotated certificate or
//! CA bundle to new handshakes.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

pub use crate::config::tls_material::{TlsFile, TlsMaterial, TlsPaths, TlsProblem};

/// Serves the current certificate to every handshake; the certificate can be swapped while
/// the listener runs (certificate reload swaps the `ArcSwap`). It also holds the listener's
/// client-CA verifier, when there is one, so the reloader can swap that too.
#[derive(Debug)]
pub struct CertResolver {
    current: arc_swap::ArcSwap<CertifiedKey>,
    client_verifier: std::sync::OnceLock<Arc<SwappableClientVerifier>>,
}

impl CertResolver {
    pub fn new(certified_key: Arc<CertifiedKey>) -> Self {
        Self { current: arc_swap::ArcSwap::new(certified_key), client_verifier: std::sync::OnceLock::new() }
    }

    pub fn replace(&self, certified_key: Arc<CertifiedKey>) {
        self.current.store(certified_key);
    }

    /// Checks new handshakes' client certificates with `verifier`; false when the listener
    /// started without a client CA (turning mTLS on needs a restart).
    pub fn replace_client_verifier(&self, verifier: Arc<dyn ClientCertVerifier>) -> bool {
        match self.client_verifier.get() {
            Some(swappable) => {
                swappable.replace(verifier);
                true
            }
            None => false,
        }
    }
}

/// The listener's client-certificate check: each handshake goes to the current verifier,
/// which a reload replaces when the `tls.client_ca` bundle's content changes, so a CA removed
/// from the bundle stops admitting its clients without a restart.
///
/// It hints no CA names in its certificate request: rustls borrows the names from the
/// verifier for as long as the verifier lives, which a verifier that is replaced cannot
/// offer. The list is optional (RFC 8446 §4.2.4; empty in TLS 1.2), and a client then offers
/// the certificate it has.
#[derive(Debug)]
pub struct SwappableClientVerifier {
    current: arc_swap::ArcSwap<CurrentVerifier>,
}

#[derive(Debug)]
struct CurrentVerifier(Arc<dyn ClientCertVerifier>);

impl SwappableClientVerifier {
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> Self {
        Self { current: arc_swap::ArcSwap::from_pointee(CurrentVerifier(verifier)) }
    }

    pub fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        self.current.store(Arc::new(CurrentVerifier(verifier)));
    }
}

impl ClientCertVerifier for SwappableClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current.load().0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current.load().0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current.load().0.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current.load().0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current.load().0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().0.supported_verify_schemes()
    }
}

impl rustls::server::ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// pingora listener settings for `material`: TLS 1.2 and 1.3 (pingora's rustls builder offers
/// exactly those), h2 and http/1.1 by ALPN, and client certificates when a CA is configured.
pub fn listener_settings(
    material: &TlsMaterial,
    resolver: Arc<CertResolver>,
) -> pingora::Result<pingora::listeners::tls::TlsSettings> {
    // The paths are never read: the resolver supplies the certificate.
    let mut settings = pingora::listeners::tls::TlsSettings::intermediate("", "")?;
    if let Some(verifier) = &material.client_verifier {
        let swappable = Arc::new(SwappableClientVerifier::new(Arc::clone(verifier)));
        // A resolver serves one listener; a second call keeps the first verifier.
        let swappable = Arc::clone(resolver.client_verifier.get_or_init(|| swappable));
        settings.set_client_cert_verifier(swappable);
    }
    settings.set_cert_resolver(resolver);
    settings.enable_h2();
    Ok(settings)
}
