//! Turns the serde shape into the validated runtime [`Config`], collecting every problem.
//!
//! Each section has one `build_*` function that reads top to bottom: take the raw value or
//! its default, check it, record a located problem if it is wrong, and carry on with a
//! default so later sections are still checked. Environment overrides are applied here too,
//! so their errors name the variable.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::Environment;
use super::error::{ConfigError, Source};
use super::runtime::*;
use super::shape::*;
use super::tls_material::{TlsFile, TlsMaterial, TlsPaths};
use super::units::{parse_duration, parse_size};

mod auth;
mod edge;
mod openapi;
mod overrides;
mod service;
mod store;
mod tools;
mod upstream;

/// Matched as parts of a key (`access_token`, `client_secret`, `x-api-key`, `sessionId`), so
/// a short list covers the usual spellings.
pub(super) const DEFAULT_REDACT_KEYS: [&str; 12] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "jwt",
    "apiKey",
    "privateKey",
    "credential",
    "cookie",
    "session",
];
pub(super) const JWT_ALGORITHMS: [&str; 12] =
    ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
pub(super) const JWT_CLAIMS: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];

/// Collects problems while the sections are built.
pub(super) struct Builder<'a> {
    file: String,
    base_dir: PathBuf,
    environment: &'a Environment,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
}

pub(super) fn source_of<T>(located: &Located<T>) -> Source {
    Source::File { line: located.referenced.line(), column: located.referenced.column() }
}

impl<'a> Builder<'a> {
    pub(super) fn new(file: &Path, environment: &'a Environment) -> Self {
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self { file: file.display().to_string(), base_dir, environment, errors: Vec::new(), warnings: Vec::new() }
    }

    pub(super) fn problem(&mut self, source: Source, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            source,
            key: key.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn at<T>(&mut self, located: &Located<T>, key: &str, message: impl Into<String>) {
        self.problem(source_of(located), key, message);
    }

    pub(super) fn duration(&mut self, key: &str, raw: &Option<Located<String>>, default: Duration) -> Duration {
        let Some(located) = raw else { return default };
        match parse_duration(&located.value) {
            Ok(duration) => duration,
            Err(message) => {
                self.at(located, key, message);
                default
            }
        }
    }

    /// A duration that must be at least `min` and at most `max`.
    pub(super) fn bounded_duration(
        &mut self,
        key: &str,
        raw: &Option<Located<String>>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Duration {
        let duration = self.duration(key, raw, default);
        if let Some(located) = raw
            && (duration < min || duration > max)
        {
            let (min, max) = (super::units::format_duration(min), super::units::format_duration(max));
            self.at(located, key, format!("{:?} is out of range; allowed is {min} to {max}", located.value));
            return default;
        }
        duration
    }

    pub(super) fn size(
        &mut self,
        key: &str,
        raw: &Option<Located<String>>,
        default: u64,
        (min, max): (u64, u64),
    ) -> u64 {
        let Some(located) = raw else { return default };
        match parse_size(&located.value) {
            Ok(size) if (min..=max).contains(&size) => size,
            Ok(_) => {
                self.at(located, key, format!("{:?} is out of range; allowed is {min} to {max} bytes", located.value));
                default
            }
            Err(message) => {
                self.at(located, key, message);
                default
            }
        }
    }

    pub(super) fn number(
        &mut self,
        key: &str,
        raw: &Option<Located<u32>>,
        default: u32,
        (min, max): (u32, u32),
    ) -> u32 {
        let Some(located) = raw else { return default };
        if (min..=max).contains(&located.value) {
            located.value
        } else {
            self.at(located, key, format!("{} is out of range; allowed is {min} to {max}", located.value));
            default
        }
    }

    pub(super) fn socket_addr(&mut self, key: &str, located: &Located<String>) -> Option<SocketAddr> {
        match located.value.parse::<SocketAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                self.at(
                    located,
                    key,
                    format!(
                        "{:?} is not a listen address; write IP:PORT (e.g. 0.0.0.0:8443 or [::]:8443)",
                        located.value
                    ),
                );
                None
            }
        }
    }

    /// An absolute http(s) URL with a host, or a problem at `source`.
    pub(super) fn http_url(&mut self, key: &str, text: &str, source: Source) -> Option<Url> {
        match check_http_url(text) {
            Ok(url) => Some(url),
            Err(message) => {
                self.problem(source, key, message);
                None
            }
        }
    }

    /// Resolves a path from the policy file relative to the file's folder.
    pub(super) fn path(&self, text: &str) -> PathBuf {
        let path = Path::new(text);
        if path.is_absolute() { path.to_path_buf() } else { self.base_dir.join(path) }
    }

    pub(super) fn build(&mut self, raw: RawConfig, file: &Path) -> Config {
        let listen = self.build_listen(&raw.listen);
        let tls = self.build_tls(raw.tls.as_ref(), listen.https.is_some());
        let trusted_proxies = self.build_trusted_proxies(&raw.trusted_proxies);
        let limits = self.build_limits(&raw.limits);
        let rate_limit = self.build_rate_limit(&raw.rate_limit);
        let auth = self.build_auth(raw.auth.as_ref());
        let cors = self.build_cors(&raw.cors, auth.mode);
        let upstream = self.build_upstream(&raw.upstream);
        let passthrough = raw.passthrough.as_ref().and_then(|raw| self.build_passthrough(raw));
        let mcp = self.build_mcp(&raw.mcp);
        let tools = self.build_tools(raw.tools);
        let (imported, openapi) = self.build_openapi(&raw.openapi, &upstream);
        let tools = self.with_imported_tools(tools, imported);
        let sessions = self.build_sessions(&raw.sessions);
        let store = self.build_store(&raw.store);
        self.check_store_needs((&raw.rate_limit, &raw.sessions), &store, &rate_limit, &sessions);
        let tools = self.with_builtin_tools(tools, &sessions, &upstream);
        let tools = self.with_overrides(tools, &raw.tool_overrides);
        let audit = self.build_audit(&raw.audit);
        let telemetry = self.build_telemetry(&raw.telemetry);
        let shutdown = self.build_shutdown(&raw.shutdown);
        let reload = Reload {
            watch_interval: self.bounded_duration(
                "reload.watch_interval",
                &raw.reload.watch_interval,
                Duration::from_secs(2),
                (Duration::ZERO, Duration::from_secs(3600)),
            ),
        };
        Config {
            file: file.to_path_buf(),
            listen,
            tls,
            trusted_proxies,
            limits,
            rate_limit,
            auth,
            cors,
            upstream,
            passthrough,
            mcp,
            tools,
            openapi,
            sessions,
            audit,
            telemetry,
            shutdown,
            reload,
            store,
            warnings: Vec::new(),
        }
    }
}

/// The reference deployment's API (the ShiftWork API of `conf/mcp-edge.yaml`).
#[allow(clippy::expect_used)] // startup: a literal URL that is known to parse
pub(super) fn default_base_url() -> Url {
    Url::parse("http://127.0.0.1:5000/api").expect("literal URL")
}

pub(super) fn check_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim())
        .map_err(|error| format!("{text:?} is not a URL ({error}); write http://host[:port][/path]"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} has scheme {}; only http and https are allowed", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} carries credentials in the URL; configure them as auth instead"));
    }
    Ok(url)
}

/// An exact browser origin: scheme, host and optional port, nothing else.
pub(super) fn parse_origin(text: &str) -> Result<String, String> {
    let url = check_http_url(text).map_err(|_| {
        format!("{text:?} is not an origin; write scheme://host[:port] with scheme http or https (e.g. https://app.example.com)")
    })?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || text.trim_end().ends_with('/') {
        return Err(format!(
            "{text:?} is not an origin; write scheme://host[:port] with no path (e.g. https://app.example.com)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// What is wrong with a secret written as a bare `$NAME`. Before only `${NAME}` was
/// interpolated such a value was an environment reference; taken literally it would be a
/// secret that anyone who reads the policy knows, so it is refused where a secret is expected.
/// The message never quotes the value.
pub(super) fn bare_reference_problem(value: &str) -> Option<&'static str> {
    let name = value.strip_prefix('$')?;
    let starts = name.chars().next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    (starts && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
        .then_some("is a bare $NAME, which is not interpolated (only ${NAME} is); write ${NAME} or the value itself")
}

pub(crate) fn is_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
