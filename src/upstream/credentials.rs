//! The `Authorization` header an upstream call carries, per `upstream.auth.mode`.
//!
//! `forward` hands the caller's own validated JWT to the API (the reference .NET API checks
//! Firebase tokens itself). The MCP authorization spec discourages token passthrough because
//! the API then trusts a token that was issued for the edge; use it only when the API is the
//! token's intended audience too, and prefer `static` (a service token) otherwise.

use http::HeaderValue;

use crate::config::UpstreamAuth;
use crate::edge::auth::{AuthMethod, Principal};

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

/// The header value to send, if any. Values are marked sensitive so HTTP/2 never indexes them.
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
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| CredentialError::InvalidHeader)?;
    value.set_sensitive(true);
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Redacted;

    fn principal(method: AuthMethod, jwt: Option<&str>) -> Principal {
        Principal {
            subject: "user".into(),
            method,
            scopes: Vec::new(),
            token_id: "t".into(),
            forwardable_jwt: jwt.map(Arc::from),
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
