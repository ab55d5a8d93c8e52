//! The policy the edge enforces, built once from a validated [`Config`]: credentials as
//! digests, the passthrough peer, limits. Requests hold an `Arc<Policy>` for their whole life.

use std::sync::Arc;

use crate::config::{Config, Passthrough};

use super::auth::BearerGate;

#[derive(Debug)]
pub struct Policy {
    pub config: Arc<Config>,
    pub bearer: BearerGate,
    pub passthrough: Option<Passthrough>,
}

impl Policy {
    pub fn new(config: Arc<Config>) -> Result<Self, String> {
        let bearer = BearerGate::from_config(&config.auth)?;
        Ok(Self { passthrough: config.passthrough.clone(), bearer, config })
    }
}
