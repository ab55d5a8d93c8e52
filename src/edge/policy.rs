//! The policy the edge enforces, built from a validated [`Config`]: credentials as digests,
//! the CORS policy, the rate limiter, the passthrough peer, and the MCP [`Gateway`]. Requests hold an `Arc<Policy>` for
//! their whole life; a reload builds a new policy and swaps it in ([`PolicyHandle`]), carrying
//! over the stateful parts (limiter buckets, breakers and pools, key caches, session keys)
//! whose configuration did not change.

use std::sync::Arc;

use http::HeaderValue;

use super::auth::Authenticator;
use super::cors::CorsPolicy;
use super::rate_limit::EdgeRateLimiter;
use crate::config::{Config, DpopMode, Passthrough, UpstreamAuth};
use crate::credential_sessions::SessionService;
use crate::mcp::Gateway;
use crate::mcp::catalogue::Catalogue;
use crate::mcp::session_keys::SessionKeys;
use crate::mcp::target::{CallTargets, SessionUpstreams};
use crate::request::AuthFailure;
use crate::store::{Buckets, RedisStore};
use crate::upstream::UpstreamClient;
use crate::upstream::breaker::CircuitBreaker;

#[derive(Debug)]
pub struct Policy {
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    /// `WWW-Authenticate` on 401s, with `resource_metadata` when configured.
    pub unauthorized_challenge: HeaderValue,
    /// The `WWW-Authenticate` challenges of each 401, `DPoP` ones included.
    pub challenges: Challenges,
    /// RFC 9728 metadata document and the URL it is served at, when configured.
    pub resource_metadata: Option<ResourceMetadataDocument>,
    pub cors: CorsPolicy,
    /// `None` when `rate_limit.enabled` is false.
    pub rate_limiter: Option<Arc<EdgeRateLimiter>>,
    /// The shared store (`store.backend: redis`), kept across reloads that leave it unchanged.
    pub store: Option<Arc<RedisStore>>,
    /// Named rate-limit buckets (principals, per-tool quotas; client IPs with `scope: global`).
    pub buckets: Arc<Buckets>,
    /// `RateLimit-Policy` (IETF draft form), the same on every response.
    pub rate_limit_policy: HeaderValue,
    pub passthrough: Option<Passthrough>,
    /// The passthrough's upstream peer (address, TLS, timeouts) and its pool key.
    pub passthrough_peer: Option<super::passthrough::UpstreamPeer>,
    /// Guards the passthrough upstream with the same thresholds as the tool upstream.
    pub passthrough_breaker: Option<Arc<CircuitBreaker>>,
    /// Credential sessions (`POST /init`), when `sessions.enabled`.
    pub credential_sessions: Option<Arc<SessionService>>,
    /// The MCP endpoint's and REST tool routes' part: catalogue, MCP session keys, call targets.
    pub gateway: Gateway,
}

/// The current policy, swapped atomically by a reload.
pub type PolicyHandle = Arc<arc_swap::ArcSwap<Policy>>;

/// Files whose content (not only the policy text) shapes a policy part.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangedFiles {
    /// `auth.jwt.jwks_file` changed: the authenticator must be rebuilt even if its config
    /// is the same.
    pub jwks_file: bool,
}

/// The protected-resource metadata (RFC 9728) the edge serves.
#[derive(Debug, Clone)]
pub struct ResourceMetadataDocument {
    pub url: String,
    pub body: serde_json::Value,
}

impl Policy {
    pub fn new(config: Arc<Config>) -> Result<Self, String> {
        Self::build(config, None, ChangedFiles::default())
    }

    /// A policy for `config` that keeps `previous`'s stateful parts where their configuration
    /// is unchanged.
    pub fn rebuild(config: Arc<Config>, previous: &Policy, changed: ChangedFiles) -> Result<Self, String> {
        Self::build(config, Some(previous), changed)
    }

    fn build(config: Arc<Config>, previous: Option<&Policy>, changed: ChangedFiles) -> Result<Self, String> {
        // The previous policy, when `unchanged(old config, new config)` holds: its part is kept.
        let keep =
            |unchanged: fn(&Config, &Config) -> bool| previous.filter(|previous| unchanged(&previous.config, &config));
        let forward_jwt = config.upstream.auth == UpstreamAuth::Forward;
        let resource_metadata = ResourceMetadataDocument::for_config(&config);
        let unauthorized_challenge = unauthorized_challenge(resource_metadata.as_ref())?;
        let challenges = Challenges::new(&config, unauthorized_challenge.clone(), resource_metadata.as_ref())?;
        let rate_limit = &config.rate_limit;
        let rate_limit_policy = HeaderValue::try_from(format!("\"default\";q={};w=60", rate_limit.requests_per_minute))
            .map_err(|error| error.to_string())?;
        let store = match keep(|old, new| old.store == new.store) {
            Some(previous) => previous.store.clone(),
            None => crate::store::start(&config.store)?,
        };
        let auth = match keep(|old, new| {
            old.auth == new.auth && old.upstream.auth == new.upstream.auth && old.store == new.store
        })
        .filter(|_| !changed.jwks_file)
        {
            Some(previous) => Arc::clone(&previous.auth),
            None => Arc::new(Authenticator::new(&config.auth, forward_jwt, store.clone())?),
        };
        let buckets = match keep(|old, new| old.store == new.store && old.rate_limit == new.rate_limit) {
            Some(previous) => Arc::clone(&previous.buckets),
            None => {
                let global = config.rate_limit.scope == crate::config::RateLimitScope::Global;
                Arc::new(Buckets::new(config.rate_limit.max_tracked_clients, store.clone().filter(|_| global)))
            }
        };
        let credential_sessions = match keep(|old, new| old.sessions == new.sessions && old.store == new.store) {
            Some(previous) => previous.credential_sessions.clone(),
            None if config.sessions.enabled => Some(Arc::new(SessionService::new(&config.sessions, store.clone())?)),
            None => None,
        };
        let gateway = Gateway {
            catalogue: catalogue_with_zero_series(&config)?,
            session_keys: match keep(|old, new| {
                old.mcp.session_key == new.mcp.session_key
                    && old.mcp.session_ttl == new.mcp.session_ttl
                    && old.store == new.store
            }) {
                Some(previous) => Arc::clone(&previous.gateway.session_keys),
                None => Arc::new(
                    SessionKeys::new(config.mcp.session_key.as_ref().map(|key| key.0.as_str()), config.mcp.session_ttl)
                        .with_store(store.clone()),
                ),
            },
            targets: CallTargets {
                mode: config.upstream.auth.clone(),
                upstream: match keep(|old, new| old.upstream == new.upstream) {
                    Some(previous) => Arc::clone(&previous.gateway.targets.upstream),
                    None => Arc::new(UpstreamClient::new(&config.upstream)?),
                },
                credential_sessions: credential_sessions.clone(),
                session_upstreams: match keep(|old, new| {
                    old.upstream == new.upstream && old.sessions.allowed_api_urls == new.sessions.allowed_api_urls
                }) {
                    Some(previous) => Arc::clone(&previous.gateway.targets.session_upstreams),
                    None => Arc::new(SessionUpstreams::new(&config)?),
                },
                quotas: Arc::clone(&buckets),
            },
            server_name: config.mcp.server_name.clone(),
            max_body_bytes: config.limits.max_body_bytes,
            page_size: config.mcp.page_size,
            coerce_arguments: config.mcp.coerce_arguments,
        };
        Ok(Self {
            auth,
            unauthorized_challenge,
            challenges,
            resource_metadata,
            cors: CorsPolicy::new(&config.cors),
            rate_limiter: match keep(|old, new| old.rate_limit == new.rate_limit && old.store == new.store) {
                Some(previous) => previous.rate_limiter.clone(),
                None => rate_limit.enabled.then(|| Arc::new(EdgeRateLimiter::new(rate_limit, Arc::clone(&buckets)))),
            },
            store,
            buckets,
            rate_limit_policy,
            passthrough: config.passthrough.clone(),
            passthrough_peer: config
                .passthrough
                .as_ref()
                .map(|target| super::passthrough::UpstreamPeer::new(target, config.upstream.connect_timeout)),
            passthrough_breaker: match keep(|old, new| {
                old.passthrough == new.passthrough && old.upstream.circuit_breaker == new.upstream.circuit_breaker
            }) {
                Some(previous) => previous.passthrough_breaker.clone(),
                None => config
                    .passthrough
                    .as_ref()
                    .map(|target| CircuitBreaker::new(target.url.as_str(), &config.upstream.circuit_breaker)),
            },
            credential_sessions,
            gateway,
            config,
        })
    }
}

impl ResourceMetadataDocument {
    /// The RFC 9728 document `auth.jwt.resource_metadata` describes, if configured.
    fn for_config(config: &Config) -> Option<Self> {
        let jwt = config.auth.jwt.as_ref()?;
        let metadata = jwt.resource_metadata.as_ref()?;
        let mut body = serde_json::json!({
            "resource": metadata.resource.as_str(),
            "authorization_servers": metadata.authorization_servers,
            "bearer_methods_supported": ["header"],
            "scopes_supported": metadata.scopes_supported,
        });
        // RFC 9449 §5.2 fields, only when proofs are checked.
        if jwt.dpop.mode != DpopMode::Off {
            body["dpop_signing_alg_values_supported"] = serde_json::json!(jwt.dpop.algorithms);
            body["dpop_bound_access_tokens_required"] = serde_json::json!(jwt.dpop.mode == DpopMode::Required);
        }
        Some(Self { url: metadata_url(&metadata.resource), body })
    }
}

/// `WWW-Authenticate` on 401s, pointing at the resource metadata when there is one.
fn unauthorized_challenge(resource_metadata: Option<&ResourceMetadataDocument>) -> Result<HeaderValue, String> {
    let mut challenge = "Bearer realm=\"mcp-edge\", error=\"invalid_token\"".to_string();
    if let Some(document) = resource_metadata {
        challenge.push_str(&format!(", resource_metadata=\"{}\"", document.url));
    }
    HeaderValue::try_from(challenge).map_err(|error| error.to_string())
}

/// The `WWW-Authenticate` challenges of 401s (RFC 6750 §3, RFC 9449 §7.1): `Bearer` alone
/// with `dpop: off`, one `DPoP` challenge with `required`, both as two headers with
/// `optional`. Proof problems say `invalid_dpop_proof`, everything else `invalid_token`; under
/// `optional` the `Bearer` challenge of a proof problem carries no error, since the bearer
/// side did nothing wrong.
#[derive(Debug, Clone)]
pub struct Challenges {
    mode: DpopMode,
    bearer: HeaderValue,
    bearer_without_error: HeaderValue,
    dpop_invalid_token: HeaderValue,
    dpop_invalid_proof: HeaderValue,
}

impl Challenges {
    fn new(config: &Config, bearer: HeaderValue, metadata: Option<&ResourceMetadataDocument>) -> Result<Self, String> {
        let dpop = config.auth.jwt.as_ref().map(|jwt| jwt.dpop.clone()).unwrap_or_default();
        let metadata = metadata.map(|document| format!(", resource_metadata=\"{}\"", document.url)).unwrap_or_default();
        let header = |text: String| HeaderValue::try_from(text).map_err(|error| error.to_string());
        let algs = dpop.algorithms.join(" ");
        let dpop_challenge =
            |error: &str| header(format!("DPoP realm=\"mcp-edge\", error=\"{error}\", algs=\"{algs}\"{metadata}"));
        Ok(Self {
            mode: if config.auth.jwt.is_some() { dpop.mode } else { DpopMode::Off },
            bearer,
            bearer_without_error: header(format!("Bearer realm=\"mcp-edge\"{metadata}"))?,
            dpop_invalid_token: dpop_challenge("invalid_token")?,
            dpop_invalid_proof: dpop_challenge("invalid_dpop_proof")?,
        })
    }

    /// The challenges of a 401 for `failure`.
    pub fn for_failure(&self, failure: AuthFailure) -> Vec<HeaderValue> {
        let proof_problem = matches!(failure, AuthFailure::InvalidDpopProof | AuthFailure::DpopReplay);
        let dpop = if proof_problem { &self.dpop_invalid_proof } else { &self.dpop_invalid_token };
        match self.mode {
            DpopMode::Off => vec![self.bearer.clone()],
            DpopMode::Required => vec![dpop.clone()],
            DpopMode::Optional => {
                let bearer = if proof_problem { &self.bearer_without_error } else { &self.bearer };
                vec![bearer.clone(), dpop.clone()]
            }
        }
    }
}

/// The catalogue, with each tool's metric series created at zero so dashboards see every
/// tool before its first call.
fn catalogue_with_zero_series(config: &Config) -> Result<Catalogue, String> {
    use crate::telemetry::metrics::{METRICS, ToolLabel, ToolOutcomeLabels};
    let catalogue = Catalogue::new(&config.tools)?;
    for tool in &config.tools {
        let _ = METRICS.tool_calls.get_or_create(&ToolOutcomeLabels {
            tool: tool.name.clone(),
            outcome: crate::request::ToolOutcome::Success.as_str(),
        });
        let _ = METRICS.upstream_duration.get_or_create(&ToolLabel { tool: tool.name.clone() });
    }
    Ok(catalogue)
}

impl Policy {
    /// Every breaker, for `/readyz` and metrics.
    pub fn breakers(&self) -> Vec<Arc<CircuitBreaker>> {
        let targets = &self.gateway.targets;
        let mut breakers = vec![Arc::clone(&targets.upstream.breaker)];
        breakers.extend(self.passthrough_breaker.iter().cloned());
        breakers.extend(targets.session_upstreams.breakers());
        breakers
    }

    /// The edge is the MCP server when it has tools, or when there is nothing to pass
    /// through to; with a passthrough and no tools, `/mcp` belongs to the server behind it.
    pub fn serves_mcp(&self) -> bool {
        !self.gateway.catalogue.is_empty() || self.passthrough.is_none()
    }
}

/// RFC 9728 §3.1: the well-known path goes between the host and the resource's path, so
/// `https://edge.example/mcp` is described at `https://edge.example/.well-known/oauth-protected-resource/mcp`.
fn metadata_url(resource: &url::Url) -> String {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-protected-resource{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        let url = |text: &str| super::metadata_url(&url::Url::parse(text).expect("url"));
        assert_eq!(url("https://edge.example/mcp"), "https://edge.example/.well-known/oauth-protected-resource/mcp");
        assert_eq!(url("https://edge.example/"), "https://edge.example/.well-known/oauth-protected-resource");
        assert_eq!(url("https://edge.example:8443"), "https://edge.example:8443/.well-known/oauth-protected-resource");
    }
}
