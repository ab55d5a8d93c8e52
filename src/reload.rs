//! Live reload: the policy file and the files it names (certificate, key, client CA, JWKS
//! file) are watched, and SIGHUP forces a reload. A new policy is loaded and validated by the
//! same `config::load` as startup, built keeping the stateful parts whose configuration did not
//! change, and swapped in atomically; requests in flight finish on the policy they started
//! with. An invalid policy is rejected with its problems logged and audited, and the old one
//! keeps serving. A new certificate serves new handshakes through the `CertResolver`.
//!
//! Kubernetes updates a mounted Secret or ConfigMap by swapping the `..data` symlink, so the
//! file's identity (inode, device), size and mtime are compared through the symlink rather
//! than waiting for in-place writes. A changed client CA bundle is swapped into the
//! listener's verifier for new handshakes. Listen addresses, worker threads and whether
//! client certificates are required at all are fixed when the listeners start: a change to
//! them is reported as needing a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};

use crate::config::{self, Config};
use crate::edge::policy::{ChangedFiles, Policy, PolicyHandle};
use crate::telemetry::audit::{self, AuditEvent, action};
use crate::telemetry::metrics::{METRICS, OutcomeLabel};
use crate::tls::CertResolver;

/// A file's identity and version, read through symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    length: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        device: metadata.dev(),
        inode: metadata.ino(),
        length: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

/// The watched files of a config and their stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    policy: Option<Stamp>,
    certificate: Vec<Option<Stamp>>,
    jwks_file: Option<Stamp>,
    /// `openapi[].file` documents: a change re-imports the catalogue like a policy change
    /// (URL documents are fetched again on every reload).
    documents: Vec<Option<Stamp>>,
}

fn certificate_paths(config: &Config) -> Vec<PathBuf> {
    config
        .tls
        .iter()
        .flat_map(|material| {
            [Some(material.paths.cert.clone()), Some(material.paths.key.clone()), material.paths.client_ca.clone()]
        })
        .flatten()
        .collect()
}

fn jwks_file(config: &Config) -> Option<PathBuf> {
    match config.auth.jwt.as_ref().map(|jwt| &jwt.keys) {
        Some(config::JwtKeySource::JwksFile(path)) => Some(path.clone()),
        _ => None,
    }
}

fn watched(config: &Config) -> Watched {
    Watched {
        policy: stamp(&config.file),
        certificate: certificate_paths(config).iter().map(|path| stamp(path)).collect(),
        jwks_file: jwks_file(config).and_then(|path| stamp(&path)),
        documents: config
            .openapi
            .iter()
            .map(|source| match source {
                config::OpenApiSource::File(path) => stamp(path),
                config::OpenApiSource::Url(_) => None,
            })
            .collect(),
    }
}

/// Why a reload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Signal,
    Files { policy: bool, certificate: bool, jwks_file: bool },
}

/// The pingora background service that watches and reloads.
pub struct Reloader {
    pub policy: PolicyHandle,
    /// The HTTPS listener's certificate source, when there is one.
    pub certificates: Option<Arc<CertResolver>>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Reloader {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::error!("Cannot listen for SIGHUP; reload by signal is off");
            return;
        };
        let mut seen = watched(&self.policy.load().config);
        loop {
            let interval = self.policy.load().config.reload.watch_interval;
            let tick = if interval.is_zero() { Duration::from_secs(3600) } else { interval };
            let trigger = tokio::select! {
                _ = tokio::time::sleep(tick) => {
                    if interval.is_zero() {
                        continue;
                    }
                    let config = Arc::clone(&self.policy.load().config);
                    let now = tokio::task::spawn_blocking(move || watched(&config)).await.unwrap_or_else(|_| seen.clone());
                    if now == seen {
                        continue;
                    }
                    let trigger = Trigger::Files {
                        policy: now.policy != seen.policy || now.documents != seen.documents,
                        certificate: now.certificate != seen.certificate,
                        jwks_file: now.jwks_file != seen.jwks_file,
                    };
                    seen = now;
                    trigger
                }
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP received: reloading the policy");
                    Trigger::Signal
                }
                _ = shutdown.changed() => return,
            };
            self.reload(trigger).await;
            let config = Arc::clone(&self.policy.load().config);
            seen = tokio::task::spawn_blocking(move || watched(&config)).await.unwrap_or(seen);
        }
    }
}

impl Reloader {
    async fn reload(&self, trigger: Trigger) {
        let current = self.policy.load_full();
        let path = current.config.file.clone();
        // Reading files and resolving the passthrough host stay off the async workers.
        let loaded = tokio::task::spawn_blocking(move || config::load(&path)).await;
        let policy_event = !matches!(trigger, Trigger::Files { policy: false, .. });
        let config = match loaded {
            Ok(Ok(config)) => Arc::new(config),
            Ok(Err(errors)) => {
                for error in &errors.errors {
                    tracing::error!(problem = %error, "Rejected the new policy; the old one keeps serving");
                }
                self.report_failure(trigger, "invalid_config");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "Policy reload failed");
                self.report_failure(trigger, "internal_error");
                return;
            }
        };
        let changed =
            ChangedFiles { jwks_file: matches!(trigger, Trigger::Files { jwks_file: true, .. } | Trigger::Signal) };
        let policy = match Policy::rebuild(Arc::clone(&config), &current, changed) {
            Ok(policy) => policy,
            Err(error) => {
                tracing::error!(%error, "Rejected the new policy; the old one keeps serving");
                self.report_failure(trigger, "invalid_config");
                return;
            }
        };
        let restart_needed = restart_only_changes(&current.config, &config);
        for key in &restart_needed {
            tracing::warn!(key, "This change takes effect only after a restart; the running value stays");
        }
        self.swap_certificate(&current.config, &config);
        self.swap_client_ca(&current.config, &config);
        self.policy.store(Arc::new(policy));
        if policy_event {
            METRICS.config_reloads.get_or_create(&OutcomeLabel { outcome: "success" }).inc();
            let mut event = AuditEvent::new(action::CONFIG_RELOAD, "success");
            if !restart_needed.is_empty() {
                event.reason = Some(format!("restart_required: {}", restart_needed.join(", ")).into());
            }
            audit::emit(event);
            tracing::info!("Policy reloaded");
        }
    }

    fn report_failure(&self, trigger: Trigger, reason: &str) {
        let certificate_only = matches!(trigger, Trigger::Files { policy: false, certificate: true, .. });
        let event_action = if certificate_only { action::CERT_RELOAD } else { action::CONFIG_RELOAD };
        if !certificate_only {
            METRICS.config_reloads.get_or_create(&OutcomeLabel { outcome: "failure" }).inc();
        }
        let mut event = AuditEvent::new(event_action, "failure");
        event.reason = Some(reason.into());
        audit::emit(event);
    }

    /// Serves the new certificate to new handshakes when it changed.
    fn swap_certificate(&self, old: &Config, new: &Config) {
        let (Some(resolver), Some(material)) = (&self.certificates, &new.tls) else { return };
        let unchanged =
            old.tls.as_ref().is_some_and(|previous| previous.certified_key.cert == material.certified_key.cert);
        if unchanged {
            return;
        }
        resolver.replace(Arc::clone(&material.certified_key));
        if let Some(expiry) = material.not_after() {
            METRICS.cert_expiry.set(expiry);
        }
        audit::emit(AuditEvent::new(action::CERT_RELOAD, "success"));
        tracing::info!(cert = %material.paths.cert.display(), "Certificate reloaded: new handshakes present it");
    }
}

impl Reloader {
    /// Checks new handshakes against the new client CA bundle when its content changed.
    fn swap_client_ca(&self, old: &Config, new: &Config) {
        let Some(resolver) = &self.certificates else { return };
        let (Some(previous), Some(material)) = (&old.tls, &new.tls) else { return };
        let Some(verifier) = &material.client_verifier else { return };
        if previous.client_verifier.is_none() || previous.client_ca_certs == material.client_ca_certs {
            // Turning mTLS on is reported by restart_only_changes; unchanged needs nothing.
            return;
        }
        if resolver.replace_client_verifier(Arc::clone(verifier)) {
            let mut event = AuditEvent::new(action::CERT_RELOAD, "success");
            event.reason = Some("client_ca".into());
            audit::emit(event);
            tracing::info!(
                client_ca = ?material.paths.client_ca,
                certificates = material.client_ca_certs.len(),
                "Client CA reloaded: new handshakes are checked against it"
            );
        }
    }
}

/// Settings fixed when the listeners start.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.listen.https != new.listen.https {
        keys.push("listen.https");
    }
    if old.listen.http != new.listen.http {
        keys.push("listen.http");
    }
    if old.listen.admin != new.listen.admin {
        keys.push("listen.admin");
    }
    if old.listen.threads != new.listen.threads {
        keys.push("listen.threads");
    }
    // A changed bundle is swapped in (`swap_client_ca`); requiring client certificates or not
    // is fixed with the listener.
    let requires_client_certificates =
        |config: &Config| config.tls.as_ref().is_some_and(|material| material.client_verifier.is_some());
    if requires_client_certificates(old) != requires_client_certificates(new) {
        keys.push("tls.client_ca");
    }
    if old.shutdown != new.shutdown {
        keys.push("shutdown");
    }
    keys
}
