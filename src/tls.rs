//! Certificate material for the HTTPS listener: read, checked and turned into rustls types
//! before pingora sees it, so a bad path or a key that does not match is a clear startup error.
//! The served certificate and the client-CA verifier are both swappable, so a reload applies
//! a rotated certificate or CA bundle to new handshakes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// Installs the one crypto provider each TLS and JWT library uses (ring for both), so neither
/// has to guess at runtime. Idempotent.
pub fn install_crypto_providers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = crate::edge::auth::jwt_ring::PROVIDER.install_default();
}

/// Where the certificate, its key and the optional client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Which of the files a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
    ClientCa,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProblem {
    pub file: TlsFile,
    pub message: String,
}

/// A loaded and checked certificate, key and client-certificate verifier.
#[derive(Debug)]
pub struct TlsMaterial {
    pub paths: TlsPaths,
    pub certified_key: Arc<CertifiedKey>,
    pub client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// The client CA bundle's certificates (empty without one), to tell a changed bundle.
    pub client_ca_certs: Vec<CertificateDer<'static>>,
}

impl TlsMaterial {
    /// Reads and checks every file, reporting every problem found.
    pub fn load(paths: &TlsPaths) -> Result<Self, Vec<TlsProblem>> {
        let mut problems = Vec::new();
        let certs = read_certificates(&paths.cert)
            .map_err(|message| problems.push(TlsProblem { file: TlsFile::Cert, message }))
            .ok();
        let key = read_private_key(&paths.key)
            .map_err(|message| problems.push(TlsProblem { file: TlsFile::Key, message }))
            .ok();
        let client_verifier = match &paths.client_ca {
            None => None,
            Some(path) => client_verifier(path)
                .map_err(|message| problems.push(TlsProblem { file: TlsFile::ClientCa, message }))
                .ok(),
        };
        let (client_verifier, client_ca_certs) =
            client_verifier.map_or((None, Vec::new()), |(verifier, certs)| (Some(verifier), certs));
        let (Some(certs), Some(key)) = (certs, key) else { return Err(problems) };
        let provider = rustls::crypto::ring::default_provider();
        let certified_key = match CertifiedKey::from_der(certs, key, &provider) {
            Ok(certified_key) => certified_key,
            Err(rustls::Error::InconsistentKeys(_)) => {
                problems.push(TlsProblem {
                    file: TlsFile::Key,
                    message: format!(
                        "the private key in {} does not match the certificate in {}",
                        paths.key.display(),
                        paths.cert.display()
                    ),
                });
                return Err(problems);
            }
            Err(error) => {
                problems.push(TlsProblem {
                    file: TlsFile::Key,
                    message: format!("{} cannot be used: {error}", paths.key.display()),
                });
                return Err(problems);
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self { paths: paths.clone(), certified_key: Arc::new(certified_key), client_verifier, client_ca_certs })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read_file(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{} is not a PEM certificate chain: {error}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|error| format!("{} holds no usable PEM private key: {error}", path.display()))
}

type LoadedClientCa = (Arc<dyn ClientCertVerifier>, Vec<CertificateDer<'static>>);

fn client_verifier(path: &Path) -> Result<LoadedClientCa, String> {
    let mut roots = RootCertStore::empty();
    let certs = read_certificates(path)?;
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|error| format!("{} holds a CA certificate rustls refuses: {error}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|error| format!("cannot build a client verifier from {}: {error}", path.display()))?;
    Ok((verifier, certs))
}

impl TlsMaterial {
    /// When the served (leaf) certificate expires, as Unix seconds.
    pub fn not_after(&self) -> Option<i64> {
        let leaf = self.certified_key.cert.first()?;
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        Some(certificate.validity().not_after.timestamp())
    }
}

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
