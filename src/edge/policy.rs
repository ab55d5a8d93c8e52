//! The policy the edge enforces, built once from a validated [`Config`]: credentials as
//! digests, the CORS policy, the rate limiter, the passthrough peer. Requests hold an
//! `Arc<Policy>` for their whole life.

use std::sync::Arc;

use http::HeaderValue;

use super::auth::BearerGate;
use super::cors::CorsPolicy;
use super::rate_limit::ClientRateLimiter;
use crate::config::{Config, Passthrough};

#[derive(Debug)]
pub struct Policy {
    pub config: Arc<Config>,
    pub bearer: BearerGate,
    pub cors: CorsPolicy,
    /// `None` when `rate_limit.enabled` is false.
    pub rate_limiter: Option<ClientRateLimiter>,
    /// `RateLimit-Policy` (IETF draft form), the same on every response.
    pub rate_limit_policy: HeaderValue,
    pub passthrough: Option<Passthrough>,
}

impl Policy {
    pub fn new(config: Arc<Config>) -> Result<Self, String> {
        let bearer = BearerGate::from_config(&config.auth)?;
        let rate_limit = &config.rate_limit;
        let rate_limit_policy = HeaderValue::try_from(format!("\"default\";q={};w=60", rate_limit.requests_per_minute))
            .map_err(|error| error.to_string())?;
        Ok(Self {
            bearer,
            cors: CorsPolicy::new(&config.cors),
            rate_limiter: rate_limit.enabled.then(|| ClientRateLimiter::new(rate_limit)),
            rate_limit_policy,
            passthrough: config.passthrough.clone(),
            config,
        })
    }
}
