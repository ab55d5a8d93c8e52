//! The serde shape of the policy file: one struct per YAML section, mirroring the reference policy `conf/mcp-edge.yaml`.
//!
//! Nothing here is validated beyond types: values that need parsing (addresses, durations,
//! URLs) stay strings with their location, so `build.rs` can report every problem at once
//! instead of serde stopping at the first. Unknown keys are refused everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A value with the line and column it was read from.
pub type Located<T> = serde_saphyr::Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: RawListen,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub trusted_proxies: Vec<Located<String>>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub rate_limit: RawRateLimit,
    pub auth: Option<RawAuth>,
    #[serde(default)]
    pub cors: RawCors,
    #[serde(default)]
    pub upstream: RawUpstream,
    pub passthrough: Option<RawPassthrough>,
    #[serde(default)]
    pub mcp: RawMcp,
    #[serde(default)]
    pub tools: Vec<RawTool>,
    /// OpenAPI documents whose operations become tools (DESIGN.md §18).
    #[serde(default)]
    pub openapi: Vec<RawOpenApi>,
    /// Changes to any tool, imported or hand-written, by its name before the change.
    #[serde(default)]
    pub tool_overrides: BTreeMap<String, Located<RawToolOverride>>,
    #[serde(default)]
    pub sessions: RawSessions,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(default)]
    pub shutdown: RawShutdown,
    #[serde(default)]
    pub reload: RawReload,
    #[serde(default)]
    pub store: RawStore,
}

/// Where shared state lives (DESIGN.md §17).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub backend: Option<Located<StoreBackendName>>,
    pub redis: Option<RawRedis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackendName {
    Memory,
    Redis,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    pub url: Option<Located<String>>,
    pub key_prefix: Option<Located<String>>,
    pub timeout: Option<Located<String>>,
    pub on_error: Option<Located<OnErrorName>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnErrorName {
    Allow,
    Deny,
}

/// Live reload (extension).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    /// How often the policy and certificate files are checked; `0s` leaves only SIGHUP.
    pub watch_interval: Option<Located<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// `Some(None)` is an explicit `https: null` (no TLS listener).
    #[serde(default, deserialize_with = "explicit_null")]
    pub https: Option<Option<Located<String>>>,
    pub http: Option<Located<String>>,
    pub admin: Option<Located<String>>,
    /// Worker threads of the public listener (extension; default: available cores, at most 4).
    pub threads: Option<Located<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<Located<String>>,
    pub key: Option<Located<String>>,
    pub client_ca: Option<Located<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_header_bytes: Option<Located<String>>,
    pub max_headers: Option<Located<u32>>,
    pub max_body_bytes: Option<Located<String>>,
    pub reject_underscore_headers: Option<bool>,
    pub header_timeout: Option<Located<String>>,
    pub idle_timeout: Option<Located<String>>,
    pub max_requests_per_connection: Option<Located<u32>>,
    pub max_connections: Option<Located<u32>>,
    pub max_connections_per_ip: Option<Located<u32>>,
    pub h2_max_concurrent_streams: Option<Located<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub enabled: Option<bool>,
    pub requests_per_minute: Option<Located<u32>>,
    pub burst: Option<Located<u32>>,
    pub key: Option<RateLimitKeyName>,
    pub max_tracked_clients: Option<Located<u32>>,
    pub scope: Option<Located<RateLimitScopeName>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKeyName {
    ClientIp,
    Principal,
    PrincipalAndTool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScopeName {
    Local,
    Global,
}

/// `tools[].rate_limit`: a quota per principal for one tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolRateLimit {
    pub requests_per_minute: Option<Located<u32>>,
    pub burst: Option<Located<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub mode: Option<Located<AuthModeName>>,
    pub bearer: Option<RawBearer>,
    pub jwt: Option<RawJwt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthModeName {
    None,
    Bearer,
    Jwt,
    BearerOrJwt,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBearer {
    /// `None` entries come from an unset `${VAR}` and are dropped.
    #[serde(default)]
    pub tokens: Vec<Option<Located<RawToken>>>,
    pub tokens_file: Option<Located<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawToken {
    Plain(String),
    Named(RawNamedToken),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamedToken {
    pub id: Option<String>,
    /// `Some(None)`: the value is an unset `${VAR}` and the entry is dropped.
    #[serde(default, deserialize_with = "explicit_null")]
    pub value: Option<Option<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub preset: Option<Located<JwtPresetName>>,
    pub project_id: Option<Located<String>>,
    pub issuer: Option<Located<String>>,
    #[serde(default)]
    pub audiences: Vec<Located<String>>,
    pub jwks_url: Option<Located<String>>,
    pub jwks_file: Option<Located<String>>,
    pub hs256_secret: Option<Located<String>>,
    #[serde(default)]
    pub algorithms: Vec<Located<String>>,
    pub leeway: Option<Located<String>>,
    pub required_claims: Option<Vec<Located<String>>>,
    pub resource_metadata: Option<RawResourceMetadata>,
    pub dpop: Option<Located<DpopModeName>>,
    pub dpop_max_age: Option<Located<String>>,
    pub dpop_algorithms: Option<Vec<Located<String>>>,
    pub dpop_public_url: Option<Located<String>>,
    pub dpop_replay_cache: Option<Located<u32>>,
}

/// `auth.jwt.dpop`; YAML `false` reads as `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopModeName {
    #[serde(alias = "false")]
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JwtPresetName {
    Firebase,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResourceMetadata {
    pub resource: Option<Located<String>>,
    #[serde(default)]
    pub authorization_servers: Vec<Located<String>>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    pub allowed_origins: Option<Vec<Located<String>>>,
    pub allow_credentials: Option<Located<CredentialsName>>,
    pub max_age: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsName {
    Auto,
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub base_url: Option<Located<String>>,
    pub auth: Option<RawUpstreamAuth>,
    pub connect_timeout: Option<Located<String>>,
    pub timeout: Option<Located<String>>,
    pub try_timeout: Option<Located<String>>,
    pub max_connections: Option<Located<u32>>,
    pub max_idle_connections: Option<Located<u32>>,
    pub retry: Option<RawRetry>,
    pub circuit_breaker: Option<RawBreaker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstreamAuth {
    pub mode: Located<UpstreamAuthName>,
    pub token: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamAuthName {
    None,
    Static,
    Forward,
    Session,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub attempts: Option<Located<u32>>,
    pub backoff: Option<Located<String>>,
    pub max_backoff: Option<Located<String>>,
    pub budget_percent: Option<Located<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub failure_threshold: Option<Located<u32>>,
    pub open_for: Option<Located<String>>,
    pub half_open_probes: Option<Located<u32>>,
    pub failure_statuses: Option<Vec<Located<u16>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassthrough {
    pub url: Option<Located<String>>,
    /// Scopes a principal needs to reach the passthrough (extension; default none).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Forward WebSocket upgrades (default false: the upgrade headers are removed).
    pub websocket: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcp {
    pub path: Option<Located<String>>,
    pub server_name: Option<Located<String>>,
    pub session_ttl: Option<Located<String>>,
    /// Key that signs MCP session ids (extension): share it between replicas through a
    /// Secret; without it each process generates its own at start.
    pub session_key: Option<Located<String>>,
    /// Tools per `tools/list` page (default 100).
    pub page_size: Option<Located<u32>>,
    /// Lossless scalar coercion before argument validation (DESIGN.md §21); default true.
    pub coerce_arguments: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub name: Located<String>,
    pub description: Option<String>,
    pub method: Option<Located<String>>,
    pub path: Option<Located<String>>,
    pub input_schema: Option<serde_json::Value>,
    pub output_schema: Option<serde_json::Value>,
    pub idempotent: Option<bool>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub query: Option<Vec<String>>,
    pub body: Option<Vec<String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub rate_limit: Option<Located<RawToolRateLimit>>,
}

/// One `openapi:` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    pub file: Option<Located<String>>,
    pub url: Option<Located<String>>,
    /// Its origin replaces `upstream.base_url`'s for these tools.
    pub base_url: Option<Located<String>>,
    pub include: Option<RawSelection>,
    pub exclude: Option<RawSelection>,
    #[serde(default)]
    pub name_prefix: String,
    /// How long fetching `url` may take (default 10s).
    pub timeout: Option<Located<String>>,
}

/// Operations by tag and by `operationId` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelection {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolOverride {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: BTreeMap<String, RawArgumentOverride>,
    pub scopes: Option<Vec<String>>,
    pub rate_limit: Option<Located<RawToolRateLimit>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArgumentOverride {
    /// Sent upstream on every call; the argument disappears from `inputSchema`.
    pub value: Option<serde_json::Value>,
    /// Sent when the caller leaves the argument out; published as the schema's `default`.
    pub default: Option<serde_json::Value>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    pub enabled: Option<bool>,
    pub auth: Option<SessionAuthName>,
    /// Accept client-chosen session ids shorter than 32 characters (unsafe; compatibility).
    pub allow_short_ids: Option<bool>,
    pub allowed_api_urls: Option<Vec<Located<String>>>,
    pub validate_path: Option<Located<String>>,
    pub validate_timeout: Option<Located<String>>,
    pub ttl: Option<Located<String>>,
    pub idle_timeout: Option<Located<String>>,
    pub max_sessions: Option<Located<u32>>,
    pub max_sessions_per_subject: Option<Located<u32>>,
    /// AES-256-GCM key for tokens kept in a shared store: 32 bytes, base64.
    pub encryption_key: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionAuthName {
    None,
    Edge,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub sink: Option<AuditSinkName>,
    pub file: Option<Located<String>>,
    pub rotation: Option<RotationName>,
    pub redact_keys: Option<Vec<String>>,
    /// Lines buffered before the writer drops (extension; default 16384).
    pub buffer_lines: Option<Located<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSinkName {
    Stdout,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationName {
    Hourly,
    Daily,
    Never,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub log_format: Option<LogFormatName>,
    pub log_level: Option<Located<String>>,
    pub otlp_endpoint: Option<Located<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormatName {
    Json,
    Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShutdown {
    pub drain_delay: Option<Located<String>>,
    pub drain_timeout: Option<Located<String>>,
}

/// Keeps an explicit `null` apart from an absent key (`Some(None)` vs `None`).
fn explicit_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
