//! Certificate material for the HTTPS listener: the certificate chain, its key and the
//! optional client CA, read and checked into rustls types while the policy loads, so a bad
//! path or a key that does not match is a located problem of `validate` and `run` alike.
//!
//! It lives in the config layer because loading the policy loads the material (`Config.tls`
//! holds it); serving it to handshakes, and swapping it on reload, is the top-level `tls` module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
