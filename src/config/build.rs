//! Turns the serde shape into the validated runtime [`Config`], collecting every problem.
//!
//! Each section has one `build_*` function that reads top to bottom: take the raw value or
//! its default, check it, record a located problem if it is wrong, and carry on with a
//! default so later sections are still checked. Environment overrides are applied here too,
//! so their errors name the variable.

use std::collections::{BTreeMap, HashSet};
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
use super::units::{parse_duration, parse_size};
use crate::tls::{self, TlsFile};

const DEFAULT_REDACT_KEYS: [&str; 6] = ["password", "secret", "token", "authorization", "jwt", "apiKey"];
const JWT_ALGORITHMS: [&str; 12] =
    ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
const JWT_CLAIMS: [&str; 7] = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"];

/// Collects problems while the sections are built.
pub(super) struct Builder<'a> {
    file: String,
    base_dir: PathBuf,
    environment: &'a Environment,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
}

fn source_of<T>(located: &Located<T>) -> Source {
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

    fn at<T>(&mut self, located: &Located<T>, key: &str, message: impl Into<String>) {
        self.problem(source_of(located), key, message);
    }

    fn duration(&mut self, key: &str, raw: &Option<Located<String>>, default: Duration) -> Duration {
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
    fn bounded_duration(
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

    fn size(&mut self, key: &str, raw: &Option<Located<String>>, default: u64, (min, max): (u64, u64)) -> u64 {
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

    fn number(&mut self, key: &str, raw: &Option<Located<u32>>, default: u32, (min, max): (u32, u32)) -> u32 {
        let Some(located) = raw else { return default };
        if (min..=max).contains(&located.value) {
            located.value
        } else {
            self.at(located, key, format!("{} is out of range; allowed is {min} to {max}", located.value));
            default
        }
    }

    fn socket_addr(&mut self, key: &str, located: &Located<String>) -> Option<SocketAddr> {
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
    fn http_url(&mut self, key: &str, text: &str, source: Source) -> Option<Url> {
        match check_http_url(text) {
            Ok(url) => Some(url),
            Err(message) => {
                self.problem(source, key, message);
                None
            }
        }
    }

    /// Resolves a path from the policy file relative to the file's folder.
    fn path(&self, text: &str) -> PathBuf {
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
        let sessions = self.build_sessions(&raw.sessions);
        let audit = self.build_audit(&raw.audit);
        let telemetry = self.build_telemetry(&raw.telemetry);
        let shutdown = self.build_shutdown(&raw.shutdown);
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
            sessions,
            audit,
            telemetry,
            shutdown,
            warnings: Vec::new(),
        }
    }

    fn build_listen(&mut self, raw: &RawListen) -> Listen {
        let https = match &raw.https {
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            Some(None) => None,
            Some(Some(located)) => self.socket_addr("listen.https", located),
        };
        let http = raw.http.as_ref().and_then(|located| self.socket_addr("listen.http", located));
        let admin = match &raw.admin {
            None => SocketAddr::from(([0, 0, 0, 0], 9901)),
            Some(located) => {
                self.socket_addr("listen.admin", located).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9901)))
            }
        };
        if https.is_none() && http.is_none() && matches!(raw.https, Some(None)) {
            self.problem(Source::Document, "listen", "no public listener; set listen.https or listen.http");
        }
        let used: Vec<(&str, SocketAddr)> = [("https", https), ("http", http), ("admin", Some(admin))]
            .into_iter()
            .filter_map(|(n, a)| a.map(|a| (n, a)))
            .collect();
        for (index, (name, address)) in used.iter().enumerate() {
            for (other, other_address) in &used[index + 1..] {
                if address == other_address && address.port() != 0 {
                    self.problem(
                        Source::Document,
                        "listen",
                        format!("listen.{name} and listen.{other} are both {address}"),
                    );
                }
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let threads = self.number("listen.threads", &raw.threads, cores as u32, (1, 64)) as usize;
        Listen { https, http, admin, threads }
    }

    fn build_tls(&mut self, raw: Option<&RawTls>, https: bool) -> Option<Arc<tls::TlsMaterial>> {
        if !https {
            if let Some(client_ca) = raw.and_then(|raw| raw.client_ca.as_ref()) {
                self.at(client_ca, "tls.client_ca", "client certificates need the https listener (listen.https)");
            }
            return None;
        }
        let default_cert = Located::new(
            "/etc/mcp-edge/tls/tls.crt".to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        );
        let default_key = Located::new(
            "/etc/mcp-edge/tls/tls.key".to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        );
        let cert = raw.and_then(|raw| raw.cert.as_ref()).unwrap_or(&default_cert);
        let key = raw.and_then(|raw| raw.key.as_ref()).unwrap_or(&default_key);
        let client_ca = raw.and_then(|raw| raw.client_ca.as_ref());
        let paths = tls::TlsPaths {
            cert: self.path(&cert.value),
            key: self.path(&key.value),
            client_ca: client_ca.map(|located| self.path(&located.value)),
        };
        match tls::TlsMaterial::load(&paths) {
            Ok(material) => Some(Arc::new(material)),
            Err(problems) => {
                for problem in problems {
                    let (key_name, located) = match problem.file {
                        TlsFile::Cert => ("tls.cert", Some(cert)),
                        TlsFile::Key => ("tls.key", Some(key)),
                        TlsFile::ClientCa => ("tls.client_ca", client_ca),
                    };
                    let source = match located {
                        Some(located) if located.referenced.line() > 0 => source_of(located),
                        _ => Source::Document,
                    };
                    self.problem(source, key_name, problem.message);
                }
                None
            }
        }
    }

    fn build_trusted_proxies(&mut self, raw: &[Located<String>]) -> Vec<IpNet> {
        let mut networks = Vec::new();
        for located in raw {
            let text = located.value.trim();
            let parsed = text.parse::<IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(network) => networks.push(network.trunc()),
                Err(_) => self.at(
                    located,
                    "trusted_proxies",
                    format!("{text:?} is not a CIDR; write an address or network such as 10.0.0.0/8 or fd00::/8"),
                ),
            }
        }
        networks
    }

    fn build_limits(&mut self, raw: &RawLimits) -> Limits {
        Limits {
            max_header_bytes: self.size("limits.max_header_bytes", &raw.max_header_bytes, 16 * 1024, (1024, 1 << 20))
                as usize,
            max_headers: self.number("limits.max_headers", &raw.max_headers, 100, (1, 1000)) as usize,
            max_body_bytes: self.size("limits.max_body_bytes", &raw.max_body_bytes, 1 << 20, (0, 1 << 30)),
            reject_underscore_headers: raw.reject_underscore_headers.unwrap_or(true),
        }
    }

    fn build_rate_limit(&mut self, raw: &RawRateLimit) -> RateLimit {
        let requests_per_minute =
            self.number("rate_limit.requests_per_minute", &raw.requests_per_minute, 100, (1, 6_000_000));
        RateLimit {
            enabled: raw.enabled.unwrap_or(true),
            requests_per_minute: NonZeroU32::new(requests_per_minute).unwrap_or(NonZeroU32::MIN),
            burst: self.number("rate_limit.burst", &raw.burst, 20, (0, 1_000_000)),
            key: match raw.key {
                None | Some(RateLimitKeyName::ClientIp) => RateLimitKey::ClientIp,
            },
            max_tracked_clients: self.number(
                "rate_limit.max_tracked_clients",
                &raw.max_tracked_clients,
                100_000,
                (1, 10_000_000),
            ) as usize,
        }
    }

    fn build_auth(&mut self, raw: Option<&RawAuth>) -> Auth {
        let fallback = Auth { mode: AuthMode::None, bearer: Bearer::default(), jwt: None };
        let Some(raw) = raw else {
            self.problem(
                Source::Document,
                "auth",
                "section is missing; mcp-edge does not start without one. Set auth.mode to bearer, jwt, \
                 bearer_or_jwt, or none (none must be written out)",
            );
            return fallback;
        };
        let Some(mode) = &raw.mode else {
            self.problem(Source::Document, "auth.mode", "is missing; allowed: none, bearer, jwt, bearer_or_jwt");
            return fallback;
        };
        let auth_mode = match mode.value {
            AuthModeName::None => AuthMode::None,
            AuthModeName::Bearer => AuthMode::Bearer,
            AuthModeName::Jwt => AuthMode::Jwt,
            AuthModeName::BearerOrJwt => AuthMode::BearerOrJwt,
        };
        let bearer = self.build_bearer(raw.bearer.as_ref());
        let wants_bearer = matches!(auth_mode, AuthMode::Bearer | AuthMode::BearerOrJwt);
        if wants_bearer && bearer.tokens.is_empty() && bearer.tokens_file.is_none() {
            // Not an error: the edge fails closed (every request gets 401) until a token is
            // configured, which is what a deployment waiting for its Secret should do.
            self.warnings.push(ConfigError {
                file: self.file.clone(),
                source: source_of(mode),
                key: "auth.bearer".to_string(),
                message: format!(
                    "mode {} has no token, so every authenticated request is refused; set auth.bearer.tokens, \
                     auth.bearer.tokens_file or MCP_AUTH_TOKEN",
                    auth_mode.as_str()
                ),
            });
        }
        let wants_jwt = matches!(auth_mode, AuthMode::Jwt | AuthMode::BearerOrJwt);
        let jwt = match (&raw.jwt, wants_jwt) {
            (Some(raw_jwt), true) => self.build_jwt(raw_jwt),
            (None, true) => {
                self.at(mode, "auth.jwt", format!("mode {} needs an auth.jwt section", auth_mode.as_str()));
                None
            }
            (_, false) => None,
        };
        if wants_jwt {
            // Refuse rather than run without verification: JWT validation lands with the
            // authentication work (issue 4). A config that asks for it must not start.
            self.at(
                mode,
                "auth.mode",
                format!("mode {} is not available in this build yet; use bearer or none", auth_mode.as_str()),
            );
        }
        Auth { mode: auth_mode, bearer, jwt }
    }

    fn build_bearer(&mut self, raw: Option<&RawBearer>) -> Bearer {
        let mut tokens: Vec<BearerToken> = Vec::new();
        let mut ids = HashSet::new();
        for located in raw.map(|raw| raw.tokens.as_slice()).unwrap_or_default().iter().flatten() {
            let token = match &located.value {
                RawToken::Plain(value) => BearerToken { id: None, value: value.clone(), scopes: Vec::new() },
                RawToken::Named(named) => {
                    let value = match named.value.clone() {
                        Some(Some(value)) => value,
                        Some(None) => continue,
                        None => {
                            self.at(located, "auth.bearer.tokens", "a token object needs a value");
                            continue;
                        }
                    };
                    BearerToken { id: named.id.clone(), value, scopes: named.scopes.clone() }
                }
            };
            if let Some(message) = bearer_token_problem(&token.value) {
                self.at(located, "auth.bearer.tokens", message);
                continue;
            }
            if let Some(id) = &token.id
                && !ids.insert(id.clone())
            {
                self.at(located, "auth.bearer.tokens", format!("token id {id:?} is used twice"));
            }
            if !tokens.iter().any(|known| known.value == token.value) {
                tokens.push(token);
            }
        }
        if let Some(value) = self.environment.get("MCP_AUTH_TOKEN").filter(|value| !value.is_empty()) {
            if let Some(message) = bearer_token_problem(value) {
                self.problem(Source::Env("MCP_AUTH_TOKEN"), "", message);
            } else if !tokens.iter().any(|known| &known.value == value) {
                tokens.push(BearerToken { id: None, value: value.clone(), scopes: Vec::new() });
            }
        }
        let tokens_file = raw.and_then(|raw| raw.tokens_file.as_ref()).and_then(|located| {
            let path = self.path(&located.value);
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_file() => Some(path),
                Ok(_) => {
                    self.at(located, "auth.bearer.tokens_file", format!("{} is not a file", path.display()));
                    None
                }
                Err(error) => {
                    self.at(located, "auth.bearer.tokens_file", format!("cannot read {}: {error}", path.display()));
                    None
                }
            }
        });
        Bearer { tokens, tokens_file }
    }

    fn build_jwt(&mut self, raw: &RawJwt) -> Option<Jwt> {
        let leeway = self.bounded_duration(
            "auth.jwt.leeway",
            &raw.leeway,
            Duration::from_secs(60),
            (Duration::ZERO, Duration::from_secs(300)),
        );
        let mut algorithms = Vec::new();
        for located in &raw.algorithms {
            if JWT_ALGORITHMS.contains(&located.value.as_str()) {
                algorithms.push(located.value.clone());
            } else {
                self.at(
                    located,
                    "auth.jwt.algorithms",
                    format!("{:?} is not allowed; allowed: {}", located.value, JWT_ALGORITHMS.join(", ")),
                );
            }
        }
        let mut required_claims = Vec::new();
        for located in raw.required_claims.iter().flatten() {
            if JWT_CLAIMS.contains(&located.value.as_str()) {
                required_claims.push(located.value.clone());
            } else {
                self.at(
                    located,
                    "auth.jwt.required_claims",
                    format!("{:?} is not a known claim; allowed: {}", located.value, JWT_CLAIMS.join(", ")),
                );
            }
        }
        if raw.required_claims.is_none() {
            required_claims = ["exp", "iss", "aud", "sub"].map(String::from).to_vec();
        }
        let resource_metadata = raw.resource_metadata.as_ref().and_then(|raw| {
            let Some(resource) = &raw.resource else {
                self.problem(
                    Source::Document,
                    "auth.jwt.resource_metadata.resource",
                    "is missing; set the public URL of the MCP endpoint",
                );
                return None;
            };
            let resource =
                self.http_url("auth.jwt.resource_metadata.resource", &resource.value, source_of(resource))?;
            let authorization_servers = raw
                .authorization_servers
                .iter()
                .filter_map(|located| {
                    self.http_url(
                        "auth.jwt.resource_metadata.authorization_servers",
                        &located.value,
                        source_of(located),
                    )
                })
                .collect();
            Some(ResourceMetadata { resource, authorization_servers, scopes_supported: raw.scopes_supported.clone() })
        });

        if let Some(preset) = &raw.preset {
            let JwtPresetName::Firebase = preset.value;
            let Some(project) = &raw.project_id else {
                self.at(preset, "auth.jwt.project_id", "preset firebase needs project_id (your Firebase project id)");
                return None;
            };
            let project_id = project.value.trim().to_string();
            if project_id.is_empty() || !project_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                self.at(
                    project,
                    "auth.jwt.project_id",
                    format!("{:?} is not a Firebase project id (letters, digits and -)", project.value),
                );
                return None;
            }
            let jwks =
                Url::parse("https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com")
                    .ok()?;
            return Some(Jwt {
                issuer: format!("https://securetoken.google.com/{project_id}"),
                audiences: vec![project_id.clone()],
                firebase_project: Some(project_id),
                keys: JwtKeySource::JwksUrl(jwks),
                algorithms: vec!["RS256".to_string()],
                leeway,
                required_claims,
                resource_metadata,
            });
        }

        let issuer = match &raw.issuer {
            Some(located) if !located.value.trim().is_empty() => located.value.clone(),
            _ => {
                self.problem(
                    Source::Document,
                    "auth.jwt.issuer",
                    "is missing; set the expected iss claim (or preset: firebase)",
                );
                String::new()
            }
        };
        let audiences: Vec<String> = raw.audiences.iter().map(|located| located.value.clone()).collect();
        if audiences.is_empty() {
            self.problem(Source::Document, "auth.jwt.audiences", "is empty; list the aud values this edge accepts");
        }
        let sources = [raw.jwks_url.is_some(), raw.jwks_file.is_some(), raw.hs256_secret.is_some()];
        if sources.iter().filter(|set| **set).count() != 1 {
            self.problem(Source::Document, "auth.jwt", "set exactly one of jwks_url, jwks_file, hs256_secret");
            return None;
        }
        let keys = if let Some(located) = &raw.jwks_url {
            JwtKeySource::JwksUrl(self.http_url("auth.jwt.jwks_url", &located.value, source_of(located))?)
        } else if let Some(located) = &raw.jwks_file {
            JwtKeySource::JwksFile(self.path(&located.value))
        } else {
            let located = raw.hs256_secret.as_ref()?;
            if located.value.len() < 32 {
                self.at(located, "auth.jwt.hs256_secret", "is shorter than 32 bytes; use a long random secret");
            }
            JwtKeySource::Hs256Secret(Redacted(located.value.clone()))
        };
        let hmac = matches!(keys, JwtKeySource::Hs256Secret(_));
        if algorithms.is_empty() {
            algorithms = if hmac { vec!["HS256".to_string()] } else { vec!["RS256".to_string(), "ES256".to_string()] };
        }
        for algorithm in &algorithms {
            if algorithm.starts_with("HS") != hmac {
                let reason = if hmac {
                    "an hs256_secret only verifies HS algorithms"
                } else {
                    "HS algorithms need hs256_secret, never a public key"
                };
                self.problem(
                    Source::Document,
                    "auth.jwt.algorithms",
                    format!("{algorithm} cannot be used here: {reason}"),
                );
            }
        }
        Some(Jwt {
            firebase_project: None,
            issuer,
            audiences,
            keys,
            algorithms,
            leeway,
            required_claims,
            resource_metadata,
        })
    }

    fn build_cors(&mut self, raw: &RawCors, auth_mode: AuthMode) -> Cors {
        let allow_credentials = match raw.allow_credentials.as_ref().map(|located| located.value) {
            None | Some(CredentialsName::Auto) => auth_mode != AuthMode::None,
            Some(CredentialsName::True) => true,
            Some(CredentialsName::False) => false,
        };
        let mut origins: Vec<(String, Source)> =
            raw.allowed_origins.iter().flatten().map(|located| (located.value.clone(), source_of(located))).collect();
        if let Some(value) = self.environment.get("ALLOWED_ORIGINS") {
            origins = value
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(|origin| (origin.to_string(), Source::Env("ALLOWED_ORIGINS")))
                .collect();
        }
        let mut any = false;
        let mut list = Vec::new();
        for (text, source) in origins {
            if text == "*" {
                if allow_credentials {
                    self.problem(
                        source,
                        "cors.allowed_origins",
                        "\"*\" cannot be used while credentials are allowed (cors.allow_credentials resolves to true); list exact origins",
                    );
                }
                any = true;
                continue;
            }
            match parse_origin(&text) {
                Ok(origin) => {
                    if !list.contains(&origin) {
                        list.push(origin);
                    }
                }
                Err(message) => self.problem(source, "cors.allowed_origins", message),
            }
        }
        let max_age = self.bounded_duration(
            "cors.max_age",
            &raw.max_age,
            Duration::from_secs(600),
            (Duration::ZERO, Duration::from_secs(86_400)),
        );
        let allowed_origins = if any { AllowedOrigins::Any } else { AllowedOrigins::List(list) };
        Cors { allowed_origins, allow_credentials, max_age }
    }

    fn build_upstream(&mut self, raw: &RawUpstream) -> Upstream {
        let base_url = if let Some(value) = self.environment.get("API_BASE_URL").filter(|v| !v.is_empty()) {
            self.http_url("", value, Source::Env("API_BASE_URL"))
        } else if let Some(located) = &raw.base_url {
            self.http_url("upstream.base_url", &located.value, source_of(located))
        } else {
            None
        };
        let auth = match &raw.auth {
            None => UpstreamAuth::None,
            Some(raw_auth) => match raw_auth.mode.value {
                UpstreamAuthName::None => UpstreamAuth::None,
                UpstreamAuthName::Forward => UpstreamAuth::Forward,
                UpstreamAuthName::Session => UpstreamAuth::Session,
                UpstreamAuthName::Static => match &raw_auth.token {
                    Some(token) if !token.value.is_empty() => UpstreamAuth::Static(Redacted(token.value.clone())),
                    _ => {
                        self.at(
                            &raw_auth.mode,
                            "upstream.auth.token",
                            "mode static needs a token (sent as Authorization: Bearer)",
                        );
                        UpstreamAuth::None
                    }
                },
            },
        };
        let minute = Duration::from_secs(60);
        let connect_timeout = self.bounded_duration(
            "upstream.connect_timeout",
            &raw.connect_timeout,
            Duration::from_secs(2),
            (Duration::from_millis(1), minute),
        );
        let timeout = self.bounded_duration(
            "upstream.timeout",
            &raw.timeout,
            Duration::from_secs(30),
            (Duration::from_millis(1), Duration::from_secs(3600)),
        );
        let try_timeout = self.bounded_duration(
            "upstream.try_timeout",
            &raw.try_timeout,
            Duration::from_secs(10),
            (Duration::from_millis(1), Duration::from_secs(3600)),
        );
        if try_timeout > timeout
            && let Some(located) = raw.try_timeout.as_ref().or(raw.timeout.as_ref())
        {
            self.at(located, "upstream.try_timeout", "is longer than upstream.timeout, which includes every try");
        }
        let default_retry = RawRetry::default();
        let raw_retry = raw.retry.as_ref().unwrap_or(&default_retry);
        let backoff = self.bounded_duration(
            "upstream.retry.backoff",
            &raw_retry.backoff,
            Duration::from_millis(500),
            (Duration::from_millis(1), minute),
        );
        let max_backoff = self.bounded_duration(
            "upstream.retry.max_backoff",
            &raw_retry.max_backoff,
            Duration::from_secs(5),
            (Duration::from_millis(1), Duration::from_secs(300)),
        );
        if max_backoff < backoff
            && let Some(located) = raw_retry.max_backoff.as_ref().or(raw_retry.backoff.as_ref())
        {
            self.at(located, "upstream.retry.max_backoff", "is shorter than upstream.retry.backoff");
        }
        let retry = Retry {
            attempts: self.number("upstream.retry.attempts", &raw_retry.attempts, 3, (1, 10)),
            backoff,
            max_backoff,
            budget_percent: self.number("upstream.retry.budget_percent", &raw_retry.budget_percent, 20, (0, 100)),
        };
        let default_breaker = RawBreaker::default();
        let raw_breaker = raw.circuit_breaker.as_ref().unwrap_or(&default_breaker);
        let circuit_breaker = CircuitBreaker {
            failure_threshold: self.number(
                "upstream.circuit_breaker.failure_threshold",
                &raw_breaker.failure_threshold,
                5,
                (1, 1000),
            ),
            open_for: self.bounded_duration(
                "upstream.circuit_breaker.open_for",
                &raw_breaker.open_for,
                Duration::from_secs(30),
                (Duration::from_millis(1), Duration::from_secs(3600)),
            ),
            half_open_probes: self.number(
                "upstream.circuit_breaker.half_open_probes",
                &raw_breaker.half_open_probes,
                1,
                (1, 100),
            ),
        };
        Upstream {
            base_url: base_url.unwrap_or_else(default_base_url),
            auth,
            connect_timeout,
            timeout,
            try_timeout,
            max_connections: self.number("upstream.max_connections", &raw.max_connections, 100, (1, 10_000)),
            max_idle_connections: self.number(
                "upstream.max_idle_connections",
                &raw.max_idle_connections,
                20,
                (0, 10_000),
            ),
            retry,
            circuit_breaker,
        }
    }

    fn build_passthrough(&mut self, raw: &RawPassthrough) -> Option<Passthrough> {
        let Some(located) = &raw.url else {
            self.problem(Source::Document, "passthrough.url", "is missing; set the URL of the server to proxy to");
            return None;
        };
        let url = self.http_url("passthrough.url", &located.value, source_of(located))?;
        if url.path() != "/" || url.query().is_some() {
            self.at(
                located,
                "passthrough.url",
                "must be scheme://host[:port] only; the request path is forwarded as received",
            );
            return None;
        }
        let host = url.host_str()?.to_string();
        let tls = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        // Resolved once here: pingora's HttpPeer::new does blocking DNS and panics on failure.
        let address = match (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs() {
            Ok(mut addresses) => addresses.next(),
            Err(error) => {
                self.at(located, "passthrough.url", format!("cannot resolve {host}: {error}"));
                return None;
            }
        };
        let Some(address) = address else {
            self.at(located, "passthrough.url", format!("{host} resolves to no address"));
            return None;
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Some(Passthrough { url, address, tls, authority })
    }

    fn build_mcp(&mut self, raw: &RawMcp) -> Mcp {
        let path = match &raw.path {
            None => "/mcp".to_string(),
            Some(located) => {
                let path = located.value.clone();
                let reserved = ["/health", "/init", "/api/tools", "/sessions", "/.well-known"];
                if !path.starts_with('/') || path.contains(['?', '#', ' ']) || path.len() < 2 {
                    self.at(located, "mcp.path", format!("{path:?} is not a path; write one such as /mcp"));
                } else if reserved.iter().any(|r| path == *r || path.starts_with(&format!("{r}/"))) {
                    self.at(
                        located,
                        "mcp.path",
                        format!("{path:?} collides with a built-in route ({})", reserved.join(", ")),
                    );
                }
                path
            }
        };
        let server_name =
            raw.server_name.as_ref().map_or_else(|| "mcp-edge".to_string(), |located| located.value.clone());
        let session_ttl = self.bounded_duration(
            "mcp.session_ttl",
            &raw.session_ttl,
            Duration::from_secs(3600),
            (Duration::from_secs(1), Duration::from_secs(7 * 86_400)),
        );
        Mcp { path, server_name, session_ttl }
    }

    fn build_tools(&mut self, raw: Vec<RawTool>) -> Vec<Tool> {
        let mut tools = Vec::new();
        let mut names = HashSet::new();
        for raw_tool in raw {
            let name = raw_tool.name.value.clone();
            if !is_tool_name(&name) {
                self.at(
                    &raw_tool.name,
                    "tools.name",
                    format!("{name:?} is not a tool name; use 1 to 128 of A-Z a-z 0-9 _ . -"),
                );
            } else if !names.insert(name.clone()) {
                self.at(&raw_tool.name, "tools.name", format!("{name:?} is declared twice"));
            }
            let key = format!("tools[{name}]");
            let method = match &raw_tool.method {
                None => http::Method::GET,
                Some(located) => match located.value.to_ascii_uppercase().as_str() {
                    "GET" => http::Method::GET,
                    "POST" => http::Method::POST,
                    "PUT" => http::Method::PUT,
                    "PATCH" => http::Method::PATCH,
                    "DELETE" => http::Method::DELETE,
                    "HEAD" => http::Method::HEAD,
                    other => {
                        self.at(
                            located,
                            &format!("{key}.method"),
                            format!("{other:?} is not allowed; use GET, POST, PUT, PATCH, DELETE or HEAD"),
                        );
                        http::Method::GET
                    }
                },
            };
            let path = match &raw_tool.path {
                Some(located) if located.value.starts_with('/') => located.value.clone(),
                Some(located) => {
                    self.at(
                        located,
                        &format!("{key}.path"),
                        format!("{:?} must start with / (it is appended to upstream.base_url)", located.value),
                    );
                    String::new()
                }
                None => {
                    self.at(
                        &raw_tool.name,
                        &format!("{key}.path"),
                        "is missing; set the upstream path, e.g. /companies/{companyId}/shifts",
                    );
                    String::new()
                }
            };
            let idempotent = raw_tool.idempotent.unwrap_or(matches!(
                method,
                http::Method::GET | http::Method::HEAD | http::Method::PUT | http::Method::DELETE
            ));
            tools.push(Tool {
                name,
                description: raw_tool.description.unwrap_or_default(),
                method,
                path,
                input_schema: raw_tool.input_schema.unwrap_or_else(|| serde_json::json!({"type": "object"})),
                output_schema: raw_tool.output_schema,
                idempotent,
                scopes: raw_tool.scopes,
                query: raw_tool.query,
                body: raw_tool.body,
                headers: raw_tool.headers.unwrap_or_else(BTreeMap::new),
            });
        }
        tools
    }

    fn build_sessions(&mut self, raw: &RawSessions) -> Sessions {
        let enabled = raw.enabled.unwrap_or(false);
        let allowed_api_urls: Vec<Url> = match &raw.allowed_api_urls {
            None => vec![default_base_url()],
            Some(list) => list
                .iter()
                .filter_map(|located| self.http_url("sessions.allowed_api_urls", &located.value, source_of(located)))
                .collect(),
        };
        if enabled && allowed_api_urls.is_empty() {
            self.problem(
                Source::Document,
                "sessions.allowed_api_urls",
                "is empty while sessions are enabled; list the API base URLs clients may use",
            );
        }
        let validate_path = match &raw.validate_path {
            None => "/settings/validate".to_string(),
            Some(located) => {
                if !located.value.starts_with('/') {
                    self.at(located, "sessions.validate_path", "must start with /");
                }
                located.value.clone()
            }
        };
        let hour = Duration::from_secs(3600);
        Sessions {
            enabled,
            auth: match raw.auth {
                None | Some(SessionAuthName::None) => SessionAuth::None,
                Some(SessionAuthName::Edge) => SessionAuth::Edge,
            },
            allowed_api_urls,
            validate_path,
            validate_timeout: self.bounded_duration(
                "sessions.validate_timeout",
                &raw.validate_timeout,
                Duration::from_secs(5),
                (Duration::from_millis(1), Duration::from_secs(60)),
            ),
            ttl: self.bounded_duration("sessions.ttl", &raw.ttl, 8 * hour, (Duration::from_secs(1), 30 * 24 * hour)),
            idle_timeout: self.bounded_duration(
                "sessions.idle_timeout",
                &raw.idle_timeout,
                hour,
                (Duration::from_secs(1), 30 * 24 * hour),
            ),
            max_sessions: self.number("sessions.max_sessions", &raw.max_sessions, 10_000, (1, 1_000_000)) as usize,
        }
    }

    fn build_audit(&mut self, raw: &RawAudit) -> Audit {
        let rotation = match raw.rotation {
            None | Some(RotationName::Hourly) => Rotation::Hourly,
            Some(RotationName::Daily) => Rotation::Daily,
            Some(RotationName::Never) => Rotation::Never,
        };
        let sink = match raw.sink {
            None | Some(AuditSinkName::Stdout) => AuditSink::Stdout,
            Some(AuditSinkName::File) => {
                let path = raw
                    .file
                    .as_ref()
                    .map_or_else(|| PathBuf::from("/var/log/mcp-edge/audit.log"), |located| self.path(&located.value));
                if path.file_name().is_none() {
                    self.problem(Source::Document, "audit.file", format!("{} is not a file path", path.display()));
                }
                AuditSink::File { path, rotation }
            }
        };
        let redact_keys =
            raw.redact_keys.clone().unwrap_or_else(|| DEFAULT_REDACT_KEYS.iter().map(|key| key.to_string()).collect());
        Audit { sink, redact_keys }
    }

    fn build_telemetry(&mut self, raw: &RawTelemetry) -> Telemetry {
        let (log_level, source) = match (self.environment.get("LOG_LEVEL").filter(|v| !v.is_empty()), &raw.log_level) {
            (Some(value), _) => (value.clone(), Source::Env("LOG_LEVEL")),
            (None, Some(located)) => (located.value.clone(), source_of(located)),
            (None, None) => ("info".to_string(), Source::Document),
        };
        let log_level = match tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            Ok(_) => log_level,
            Err(error) => {
                self.problem(
                    source,
                    "telemetry.log_level",
                    format!("{log_level:?} is not a log filter ({error}); use error, warn, info, debug or trace"),
                );
                "info".to_string()
            }
        };
        let otlp_endpoint = raw
            .otlp_endpoint
            .as_ref()
            .and_then(|located| self.http_url("telemetry.otlp_endpoint", &located.value, source_of(located)));
        Telemetry {
            log_format: match raw.log_format {
                None | Some(LogFormatName::Json) => LogFormat::Json,
                Some(LogFormatName::Text) => LogFormat::Text,
            },
            log_level,
            otlp_endpoint,
        }
    }

    fn build_shutdown(&mut self, raw: &RawShutdown) -> Shutdown {
        let limit = (Duration::ZERO, Duration::from_secs(3600));
        Shutdown {
            drain_delay: self.bounded_duration("shutdown.drain_delay", &raw.drain_delay, Duration::from_secs(5), limit),
            drain_timeout: self.bounded_duration(
                "shutdown.drain_timeout",
                &raw.drain_timeout,
                Duration::from_secs(15),
                limit,
            ),
        }
    }
}

/// The reference deployment's API (DESIGN.md §5).
#[allow(clippy::expect_used)] // startup: a literal URL that is known to parse
fn default_base_url() -> Url {
    Url::parse("http://127.0.0.1:5000/api").expect("literal URL")
}

fn check_http_url(text: &str) -> Result<Url, String> {
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
fn parse_origin(text: &str) -> Result<String, String> {
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

fn bearer_token_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("a token is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a token contains whitespace or control characters")
    } else if value.len() > 8 * 1024 {
        Some("a token is longer than 8 KiB")
    } else {
        None
    }
}

pub(crate) fn is_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
