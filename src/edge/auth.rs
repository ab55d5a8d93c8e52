//! Who a request is from: static bearer tokens, JWTs (JWKS, HS256 or the Firebase preset),
//! or both, as `auth.mode` says. The result is a [`Principal`] carried in the request context.
//!
//! `bearer` keeps token digests (and re-reads `tokens_file` when it changes), `jwt` verifies
//! tokens with `jwks` supplying keys, and `scopes` decides whether a principal may call a
//! tool. Failures carry a stable reason code for the audit log; the client only ever sees a
//! generic 401.

pub mod bearer;
pub mod jwks;
pub mod jwt;
pub mod jwt_ring;
pub mod scopes;

use std::sync::Arc;

use crate::config::{Auth, AuthMode};

pub use bearer::BearerTokens;
pub use jwt::JwtVerifier;

/// Longest `Authorization` value read; longer ones are refused unparsed (DESIGN.md §13).
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    MissingToken,
    InvalidToken,
    Expired,
    NotYetValid,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    UnknownKid,
    MissingClaim,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 9] = [
        AuthFailure::MissingToken,
        AuthFailure::InvalidToken,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
        AuthFailure::BadSignature,
        AuthFailure::WrongAudience,
        AuthFailure::WrongIssuer,
        AuthFailure::UnknownKid,
        AuthFailure::MissingClaim,
    ];

    /// Stable machine code, used as the audit `event.reason` and the metric label.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::UnknownKid => "unknown_kid",
            AuthFailure::MissingClaim => "missing_claim",
        }
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Bearer,
    Jwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Bearer => "bearer",
            AuthMethod::Jwt => "jwt",
        }
    }
}

/// An authenticated caller. `Debug` never shows the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The JWT `sub`, a bearer token's configured id, or the first 8 hex digits of its SHA-256.
    pub subject: String,
    pub method: AuthMethod,
    pub scopes: Vec<String>,
    /// The JWT `jti` or the token digest prefix: names the credential without revealing it.
    pub token_id: String,
    /// The verified JWT itself, kept only for `upstream.auth.mode: forward`.
    pub forwardable_jwt: Option<Arc<str>>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject)
            .field("method", &self.method)
            .field("scopes", &self.scopes)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

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

/// Three non-empty base64url segments.
pub fn looks_like_jwt(token: &[u8]) -> bool {
    let mut segments = 0;
    for segment in token.split(|b| *b == b'.') {
        if segment.is_empty() || !segment.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_') {
            return false;
        }
        segments += 1;
    }
    segments == 3
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

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt(b"eyJh.eyJz"));
        assert!(!looks_like_jwt(b"eyJh..c2ln"));
        assert!(!looks_like_jwt(b"eyJh.eyJz.c2ln.x"));
        assert!(!looks_like_jwt(b"eyJh.ey+z.c2ln"));
    }
}
