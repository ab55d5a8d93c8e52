//! The validated configuration the proxy runs on. Every value is parsed and checked: after
//! startup nothing looks at configuration strings again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::template::PathTemplate;
use super::tls_material::TlsMaterial;

/// The whole validated policy.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path the policy was read from (for reload and messages).
    pub file: PathBuf,
    pub listen: Listen,
    /// Certificate material, loaded and checked; present exactly when `listen.https` is set.
    pub tls: Option<Arc<TlsMaterial>>,
    pub trusted_proxies: Vec<IpNet>,
    pub limits: Limits,
    pub rate_limit: RateLimit,
    pub auth: Auth,
    pub cors: Cors,
    pub upstream: Upstream,
    pub passthrough: Option<Passthrough>,
    pub mcp: Mcp,
    pub tools: Vec<Tool>,
    /// The OpenAPI documents the catalogue imports from (`openapi:`), for reload to watch.
    pub openapi: Vec<OpenApiSource>,
    pub sessions: Sessions,
    pub audit: Audit,
    pub telemetry: Telemetry,
    pub shutdown: Shutdown,
    pub reload: Reload,
    pub store: Store,
    /// Problems that do not stop the edge but that an operator should see.
    pub warnings: Vec<super::ConfigError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub https: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub threads: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
    pub reject_underscore_headers: bool,
    /// The whole request head must arrive within this: from accept (TLS handshake included)
    /// for a connection's first request, from its first byte for later ones.
    pub header_timeout: Duration,
    /// How long a kept-alive HTTP/1 connection or an HTTP/2 connection without streams may
    /// stay silent.
    pub idle_timeout: Duration,
    /// Requests (HTTP/1) or streams (HTTP/2) one connection may carry before it is closed
    /// (HTTP/2: GOAWAY).
    pub max_requests_per_connection: u32,
    /// Open downstream connections on the public listeners together.
    pub max_connections: u32,
    /// Open downstream connections from one peer address (IPv6 by /64); 0 is unlimited.
    pub max_connections_per_ip: u32,
    pub h2_max_concurrent_streams: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub enabled: bool,
    pub requests_per_minute: NonZeroU32,
    /// Requests admitted beyond the steady rate (nginx `burst`): a fresh client may send
    /// `burst + 1` at once.
    pub burst: u32,
    pub key: RateLimitKey,
    pub max_tracked_clients: usize,
    /// Where the buckets live: this process, or the shared store (`global`).
    pub scope: RateLimitScope,
}

/// What a client is, for rate limiting: its IP (IPv6 keyed by /64), or once authenticated
/// its principal (and the tool it calls). Unauthenticated requests are always limited by IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitKey {
    ClientIp,
    Principal,
    PrincipalAndTool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitScope {
    Local,
    Global,
}

/// A quota: `requests_per_minute` with `burst` more at once (nginx semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests_per_minute: NonZeroU32,
    pub burst: u32,
}

/// Where shared state lives (DESIGN.md §17).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Store {
    pub backend: StoreBackend,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreBackend {
    /// This process's memory: nothing is shared.
    #[default]
    Memory,
    Redis(RedisStore),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStore {
    /// `redis://[user:password@]host:port/db`; may carry a password, hence redacted.
    pub url: Redacted,
    pub key_prefix: String,
    /// Bound on every command, connection waits included.
    pub timeout: Duration,
    pub on_error: OnStoreError,
}

/// What the edge does when the store does not answer in time or answers an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Fall back to this process's limiter; a session lookup is a miss.
    Allow,
    /// Answer 503 with `Retry-After`.
    Deny,
}

/// A 256-bit key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(pub [u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Bearer,
    Jwt,
    BearerOrJwt,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer => "bearer",
            Self::Jwt => "jwt",
            Self::BearerOrJwt => "bearer_or_jwt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub mode: AuthMode,
    pub bearer: Bearer,
    pub jwt: Option<Jwt>,
}

/// A configured bearer token. `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    pub id: Option<String>,
    pub value: String,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerToken")
            .field("id", &self.id)
            .field("value", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// The shortest bearer token accepted. A short token can be guessed, and the audit log's
/// `user.id` for an unnamed token is an unsalted digest prefix, which makes an offline search
/// of a short token space cheap.
pub const MIN_BEARER_TOKEN_CHARS: usize = 16;

/// What is wrong with a bearer token value, if anything. The message never quotes the value.
pub fn bearer_token_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("a token is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a token contains whitespace or control characters")
    } else if value.len() > 8 * 1024 {
        Some("a token is longer than 8 KiB")
    } else if value.chars().count() < MIN_BEARER_TOKEN_CHARS {
        Some("a token is shorter than 16 characters; use a long random value (e.g. openssl rand -hex 32)")
    } else {
        None
    }
}

/// The tokens of a `tokens_file` (one a line; blank lines and `#` comments skipped), or the
/// first line that is not a usable token, named by its number only.
pub fn tokens_file_entries(text: &str) -> Result<Vec<&str>, String> {
    let mut tokens = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(problem) = bearer_token_problem(line) {
            return Err(format!("line {}: {problem}", index + 1));
        }
        tokens.push(line);
    }
    Ok(tokens)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bearer {
    pub tokens: Vec<BearerToken>,
    pub tokens_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeySource {
    JwksUrl(Url),
    JwksFile(PathBuf),
    /// An HS256 shared secret. `Debug` of the parent never shows it.
    Hs256Secret(Redacted),
}

/// A secret string whose `Debug` prints `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwt {
    pub firebase_project: Option<String>,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub keys: JwtKeySource,
    pub algorithms: Vec<String>,
    pub leeway: Duration,
    pub required_claims: Vec<String>,
    pub resource_metadata: Option<ResourceMetadata>,
    pub dpop: Dpop,
}

/// `auth.jwt.dpop`: whether access tokens must be bound to a client key (RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// Proofs are not checked and `cnf` is not read: the edge behaves as before DPoP, so
    /// turning the key on later changes nothing for existing clients until it is set.
    Off,
    /// A token with `cnf.jkt` needs a valid proof; a token without one is a bearer token.
    Optional,
    /// Every JWT must be DPoP-bound.
    Required,
}

impl DpopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// The DPoP proof settings of `auth.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpop {
    pub mode: DpopMode,
    /// How far a proof's `iat` may lie from now, in either direction; also how long a `jti`
    /// is remembered.
    pub max_age: Duration,
    /// Asymmetric JWS algorithms a proof may use, as written (`ES256`, `EdDSA`, ...).
    pub algorithms: Vec<String>,
    /// An origin (`https://edge.example`) that replaces the edge's own view of scheme and
    /// host when `htu` is checked, for an edge behind a proxy that rewrites them.
    pub public_url: Option<String>,
    /// `jti`s remembered at most.
    pub replay_cache: usize,
}

impl Default for Dpop {
    fn default() -> Self {
        Self {
            mode: DpopMode::Off,
            max_age: Duration::from_secs(60),
            algorithms: DPOP_DEFAULT_ALGORITHMS.map(String::from).to_vec(),
            public_url: None,
            replay_cache: 100_000,
        }
    }
}

/// `auth.jwt.dpop_algorithms` when the key is absent.
pub const DPOP_DEFAULT_ALGORITHMS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    pub resource: Url,
    /// As written in the policy (validated as http(s) URLs): issuers are compared as strings.
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin (refused when credentials are on).
    Any,
    /// Exact origins in their ASCII serialisation (`https://app.example:8443`).
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allowed_origins: AllowedOrigins,
    /// `auto` already resolved against the auth mode.
    pub allow_credentials: bool,
    pub max_age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    None,
    Static(Redacted),
    Forward,
    Session,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub budget_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub failure_threshold: u32,
    pub open_for: Duration,
    pub half_open_probes: u32,
    /// Upstream statuses that count as failures, besides connect errors and try timeouts.
    /// 500 is not among the defaults: a caller can make the API answer it on purpose.
    pub failure_statuses: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub base_url: Url,
    pub auth: UpstreamAuth,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub try_timeout: Duration,
    pub max_connections: u32,
    pub max_idle_connections: u32,
    pub retry: Retry,
    pub circuit_breaker: CircuitBreaker,
}

/// The reverse-proxy target for unrouted requests, resolved once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passthrough {
    pub url: Url,
    pub address: SocketAddr,
    pub tls: bool,
    /// Host (and port when not the scheme default) sent as `Host` upstream.
    pub authority: String,
    /// Scopes a principal must hold to be proxied (403 `insufficient_scope` otherwise).
    pub scopes: Vec<String>,
    /// Whether a WebSocket upgrade is forwarded. Off, the `Upgrade` and `Connection` headers
    /// are removed and the server answers the request as plain HTTP: after a 101 the
    /// connection is a raw tunnel that no per-request policy (auth expiry, rate limit, body
    /// limit, audit) sees again.
    pub websocket: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mcp {
    pub path: String,
    pub server_name: String,
    pub session_ttl: Duration,
    /// Signs session ids; `None` means a random key per process.
    pub session_key: Option<Redacted>,
    /// Tools per `tools/list` page (and `GET /api/tools` page); a longer catalogue is paged
    /// with `nextCursor`.
    pub page_size: usize,
    /// `mcp.coerce_arguments`: lossless scalar coercion before validation (`mcp::coerce`).
    pub coerce_arguments: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub method: http::Method,
    pub path: PathTemplate,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub idempotent: bool,
    pub scopes: Vec<String>,
    pub query: Option<Vec<String>>,
    pub body: Option<Vec<String>>,
    pub headers: BTreeMap<String, String>,
    /// Where each argument goes, for tools imported from OpenAPI; `None`: the rule of
    /// DESIGN.md §5 (path variables, then `query`/`body` lists or the method's default).
    pub binding: Option<Binding>,
    /// Arguments the edge sends with a fixed value (`tool_overrides.*.arguments.*.value`):
    /// absent from the published schema and refused when a caller sends them.
    pub fixed: serde_json::Map<String, serde_json::Value>,
    /// Values the edge fills in when the caller leaves the argument out
    /// (`tool_overrides.*.arguments.*.default`).
    pub defaults: serde_json::Map<String, serde_json::Value>,
    /// A quota per principal for this tool (`tools[].rate_limit` or
    /// `tool_overrides.*.rate_limit`).
    pub rate_limit: Option<Quota>,
    pub source: ToolSource,
}

/// Where a tool was declared, for `mcp-edge tools` and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// `tools:` in the policy.
    Policy,
    /// Made by the edge itself (`validate_settings` with credential sessions).
    Builtin,
    /// An operation of an OpenAPI document: the document as configured and the operation's
    /// JSON pointer (`/paths/~1pet~1{petId}/get`).
    OpenApi { document: String, pointer: String },
}

impl std::fmt::Display for ToolSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Policy => f.write_str("policy"),
            Self::Builtin => f.write_str("builtin"),
            Self::OpenApi { document, pointer } => write!(f, "openapi:{document}#{pointer}"),
        }
    }
}

/// How an imported tool's arguments become the request: by argument name, where it goes and
/// under which name; how the body is encoded; and which origin the path is joined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub arguments: BTreeMap<String, ArgumentBinding>,
    /// How body arguments are encoded; `None`: the operation takes no body.
    pub body: Option<BodyFormat>,
    /// Whether the operation's body is required (an empty JSON object is sent without
    /// arguments for it).
    pub body_required: bool,
    /// `openapi[].base_url`: the origin the path is joined to instead of the upstream's.
    /// The tool's `path` is then the whole path from that origin (DESIGN.md §18).
    pub origin: Option<Url>,
}

/// One argument of an imported tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentBinding {
    /// The name on the wire: the parameter, header or body property name as the document
    /// spells it (the argument may carry a `body_`-style prefix after a clash).
    pub wire_name: String,
    pub place: ArgumentPlace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentPlace {
    Path,
    Query(QueryStyle),
    Header,
    /// A property of an object body (JSON or form).
    BodyProperty,
    /// The whole body: a non-object JSON value, or base64 bytes for a binary body.
    Body,
}

impl ArgumentPlace {
    /// `path | query | header | body`, as `mcp-edge tools --json` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Path => "path",
            Self::Query(_) => "query",
            Self::Header => "header",
            Self::BodyProperty | Self::Body => "body",
        }
    }
}

/// How an array (or object) query argument is written, from the parameter's
/// `style`/`explode` (Swagger 2.0: `collectionFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStyle {
    /// `form`, `explode: true` (the default): `a=1&a=2`; objects `k=v&k2=v2`.
    Repeated,
    /// `form`, `explode: false`: `a=1,2`.
    Comma,
    /// `spaceDelimited`: `a=1%202`.
    Space,
    /// `pipeDelimited`: `a=1|2`.
    Pipe,
    /// `deepObject`: `a[k]=v`.
    DeepObject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// Raw bytes of this content type, given as one base64 argument `body`.
    Binary {
        content_type: String,
    },
}

/// An `openapi:` entry as loaded: where its document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenApiSource {
    File(PathBuf),
    Url(Url),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAuth {
    None,
    Edge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sessions {
    pub enabled: bool,
    pub auth: SessionAuth,
    /// Client-chosen ids need not follow the id rule (`credential_sessions::id`): unsafe, for clients
    /// that send user names as ids.
    pub allow_short_ids: bool,
    pub allowed_api_urls: Vec<Url>,
    pub validate_path: String,
    pub validate_timeout: Duration,
    pub ttl: Duration,
    pub idle_timeout: Duration,
    pub max_sessions: usize,
    /// Sessions one API subject (or one `sub`-less token) may hold at once; past it its own
    /// least recently used goes, so one account cannot evict everyone else's.
    pub max_sessions_per_subject: usize,
    /// Encrypts tokens kept in a shared store (required with `store.backend: redis`).
    pub encryption_key: Option<EncryptionKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    Stdout,
    File { path: PathBuf, rotation: Rotation },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Hourly,
    Daily,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub sink: AuditSink,
    pub redact_keys: Vec<String>,
    /// Lines buffered before the writer starts dropping.
    pub buffer_lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    pub log_format: LogFormat,
    /// A `tracing` filter directive (`info`, `mcp_edge=debug,warn`).
    pub log_level: String,
    pub otlp_endpoint: Option<Url>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload {
    /// Zero: files are not watched, only SIGHUP reloads.
    pub watch_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    pub drain_delay: Duration,
    pub drain_timeout: Duration,
}
