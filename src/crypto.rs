//! The cryptography libraries' providers, chosen once for the process: ring for rustls (the
//! listener, the upstream and validation clients, the OTLP exporter) and ring for
//! jsonwebtoken ([`jwt_ring`]), so neither library guesses at runtime and two backends never
//! meet (jsonwebtoken panics when it finds none or two).

pub mod jwt_ring;

/// Installs both providers. Idempotent; `main` calls it first thing, tests and benchmarks
/// before they build a client or verify a token.
pub fn install_providers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = jwt_ring::PROVIDER.install_default();
}
