//! Where a tool call goes and with which credential: [`CallTargets`] holds the configured
//! upstream, the credential-session store and [`SessionUpstreams`], and resolves a call to a
//! [`CallTarget`] by `upstream.auth.mode`.
//!
//! `forward` hands the caller's own validated JWT to the API (the reference .NET API checks
//! Firebase tokens itself). The MCP authorization spec discourages token passthrough because
//! the API then trusts a token that was issued for the edge; use it only when the API is the
//! token's intended audience too, and prefer `static` (a service token) otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::config::{Config, UpstreamAuth};
use crate::credential_sessions::SessionService;
use crate::credential_sessions::allow_list::AllowList;
use crate::request::{AuthMethod, Principal};
use crate::upstream::UpstreamClient;
use crate::upstream::breaker::CircuitBreaker;
use crate::upstream::credentials::bearer_authorization;

/// Why no credential could be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("upstream.auth.mode forward needs a caller authenticated with a JWT")]
    NoJwtToForward,
    #[error("upstream.auth.mode session needs a credential session (X-Session-Id)")]
    SessionRequired,
    #[error("the upstream credential is not a valid header value")]
    InvalidHeader,
}

/// The `Authorization` a call carries under `mode` (not `session`, whose token comes from
/// the credential session).
pub fn authorization(
    mode: &UpstreamAuth,
    principal: Option<&Principal>,
) -> Result<Option<HeaderValue>, CredentialError> {
    let token: &str = match mode {
        UpstreamAuth::None => return Ok(None),
        UpstreamAuth::Static(token) => &token.0,
        UpstreamAuth::Forward => match principal {
            Some(Principal { method: AuthMethod::Jwt, forwardable_jwt: Some(jwt), .. }) => jwt,
            _ => return Err(CredentialError::NoJwtToForward),
        },
        UpstreamAuth::Session => return Err(CredentialError::SessionRequired),
    };
    bearer_authorization(token).map(Some).map_err(|_| CredentialError::InvalidHeader)
}

/// Upstream clients for credential-session APIs: one (pool, breaker, connection slots) per
/// `sessions.allowed_api_urls` entry, made when the policy is built, so their number, the
/// breaker metric series and `/readyz` are bounded by the allow-list (a session stores the
/// entry its `apiUrl` matched, never the caller's spelling). Only with
/// `upstream.auth.mode: session`, the one mode whose tool calls use them.
#[derive(Debug, Default)]
pub struct SessionUpstreams {
    clients: BTreeMap<url::Url, Arc<UpstreamClient>>,
}

impl SessionUpstreams {
    pub fn new(config: &Config) -> Result<Self, String> {
        if config.upstream.auth != UpstreamAuth::Session {
            return Ok(Self::default());
        }
        let allow_list = AllowList::new(&config.sessions.allowed_api_urls);
        let mut clients = BTreeMap::new();
        for entry in allow_list.entries() {
            let mut upstream = config.upstream.clone();
            upstream.base_url = entry.clone();
            clients.insert(entry.clone(), Arc::new(UpstreamClient::new(&upstream)?));
        }
        Ok(Self { clients })
    }

    /// The client for the allow-list entry `api_url` (the same one for every call to that API);
    /// `None` for anything that is not an entry.
    pub fn client_for(&self, api_url: &url::Url) -> Option<Arc<UpstreamClient>> {
        self.clients.get(api_url).cloned()
    }

    pub fn breakers(&self) -> impl Iterator<Item = Arc<CircuitBreaker>> + '_ {
        self.clients.values().map(|client| Arc::clone(&client.breaker))
    }
}

/// Everything a tool call's target is chosen from.
#[derive(Debug)]
pub struct CallTargets {
    pub mode: UpstreamAuth,
    /// `upstream.base_url`'s client.
    pub upstream: Arc<UpstreamClient>,
    /// The credential sessions, when `sessions.enabled`.
    pub credential_sessions: Option<Arc<SessionService>>,
    pub session_upstreams: Arc<SessionUpstreams>,
    /// Where per-tool quotas (`tools[].rate_limit`) are counted: the policy's buckets, in
    /// Redis with `rate_limit.scope: global`.
    pub quotas: Arc<crate::store::Buckets>,
}

/// Where one tool call goes and with which credential.
pub struct CallTarget {
    pub client: Arc<UpstreamClient>,
    pub authorization: Option<HeaderValue>,
}

/// Why a call has no target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// `upstream.auth.mode: session` and no live credential session for `X-Session-Id` (401).
    UnknownSession,
    /// No credential for the configured mode (a tool error).
    Credential(CredentialError),
    /// The shared store holding the sessions did not answer (`on_error: deny`): 503.
    StoreUnavailable,
}

impl CallTargets {
    /// The session's API and token with `upstream.auth.mode: session`, else
    /// `upstream.base_url` with `upstream.auth`. Another principal's session is as unknown
    /// as a missing one (and is not marked used).
    pub async fn resolve(
        &self,
        principal: Option<&Principal>,
        session_id: Option<&str>,
    ) -> Result<CallTarget, TargetError> {
        if self.mode != UpstreamAuth::Session {
            let authorization = authorization(&self.mode, principal).map_err(TargetError::Credential)?;
            return Ok(CallTarget { client: Arc::clone(&self.upstream), authorization });
        }
        let service = self.credential_sessions.as_ref().ok_or(TargetError::UnknownSession)?;
        let caller = crate::credential_sessions::owner_of(principal);
        let session = service
            .use_session(session_id.ok_or(TargetError::UnknownSession)?, caller.as_deref())
            .await
            .map_err(|_| TargetError::StoreUnavailable)?
            .ok_or(TargetError::UnknownSession)?;
        let client = self.session_upstreams.client_for(&session.api_url).ok_or(TargetError::UnknownSession)?;
        let authorization = bearer_authorization(&session.token.0)
            .map_err(|_| TargetError::Credential(CredentialError::InvalidHeader))?;
        Ok(CallTarget { client, authorization: Some(authorization) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Redacted;

    fn principal(method: AuthMethod, jwt: Option<&str>) -> Principal {
        Principal {
            subject: "user".into(),
            method,
            scopes: Vec::new(),
            token_id: "t".into(),
            forwardable_jwt: jwt.map(Arc::from),
            dpop_jkt: None,
        }
    }

    #[test]
    fn each_mode_yields_its_header() {
        assert_eq!(authorization(&UpstreamAuth::None, None), Ok(None));
        let service =
            authorization(&UpstreamAuth::Static(Redacted("svc-token".into())), None).expect("ok").expect("header");
        assert_eq!(service, "Bearer svc-token");
        assert!(service.is_sensitive());
        let caller = principal(AuthMethod::Jwt, Some("a.b.c"));
        assert_eq!(authorization(&UpstreamAuth::Forward, Some(&caller)).expect("ok").expect("header"), "Bearer a.b.c");
    }

    #[test]
    fn forward_needs_a_jwt_caller_and_session_a_session() {
        let bearer_caller = principal(AuthMethod::Bearer, None);
        assert_eq!(authorization(&UpstreamAuth::Forward, Some(&bearer_caller)), Err(CredentialError::NoJwtToForward));
        assert_eq!(authorization(&UpstreamAuth::Forward, None), Err(CredentialError::NoJwtToForward));
        assert_eq!(authorization(&UpstreamAuth::Session, None), Err(CredentialError::SessionRequired));
    }
}
