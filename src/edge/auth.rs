//! Who a request is from: static bearer tokens, JWTs (JWKS, HS256 or the Firebase preset),
//! or both, as `auth.mode` says. The result is a [`Principal`] carried in the request context.
//!
//! `bearer` keeps token digests (and re-reads `tokens_file` when it changes), `jwt` verifies
//! tokens with `jwks` supplying keys. Who may call what (scopes) is `request::scopes`. Failures carry a stable reason code for the audit log; the client only ever sees a
//! generic 401.

pub mod bearer;
pub mod dpop;
pub mod jwks;
pub mod jwt;

use std::sync::Arc;

use crate::config::{Auth, AuthMode};
use crate::request::principal::{MAX_AUTHORIZATION_BYTES, looks_like_jwt};
use crate::request::{AuthFailure, Principal};

pub use bearer::BearerTokens;
pub use jwt::JwtVerifier;

/// Authenticates requests according to `auth.mode`.
#[derive(Debug)]
pub struct Authenticator {
    mode: AuthMode,
    pub bearer: Arc<BearerTokens>,
    pub jwt: Option<JwtVerifier>,
}

impl Authenticator {
    pub fn new(auth: &Auth, forward_jwt: bool) -> Result<Self, String> {
        let bearer = Arc::new(BearerTokens::new(&auth.bearer)?);
        let jwt = match (&auth.jwt, auth.mode) {
            (Some(jwt), AuthMode::Jwt | AuthMode::BearerOrJwt) => Some(JwtVerifier::new(jwt, forward_jwt)?),
            _ => None,
        };
        Ok(Self { mode: auth.mode, bearer, jwt })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Authenticates from the raw `Authorization` header value; `Ok(None)` when auth is off.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Option<Principal>, AuthFailure> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        let value = authorization.ok_or(AuthFailure::MissingToken)?;
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthFailure::InvalidToken);
        }
        let token = bearer_token(value).ok_or(AuthFailure::InvalidToken)?;
        let principal = match (self.mode, &self.jwt) {
            (AuthMode::Bearer, _) => self.bearer.check(token),
            (AuthMode::Jwt, Some(jwt)) => jwt.verify(token).await,
            (AuthMode::BearerOrJwt, Some(jwt)) => match self.bearer.check(token) {
                Ok(principal) => Ok(principal),
                Err(_) if looks_like_jwt(token) => jwt.verify(token).await,
                Err(failure) => Err(failure),
            },
            (AuthMode::BearerOrJwt, None) => self.bearer.check(token),
            (AuthMode::None | AuthMode::Jwt, _) => Err(AuthFailure::InvalidToken),
        };
        principal.map(Some)
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), or `None` for any other shape.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty() && !token.iter().any(|b| b.is_ascii_whitespace())).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer   abc  "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer a b"), None);
    }
}
