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
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Auth, AuthMode, DpopMode};
use crate::request::principal::{MAX_AUTHORIZATION_BYTES, looks_like_jwt};
use crate::request::{AuthFailure, AuthMethod, Principal};
use crate::store::RedisStore;

pub use bearer::BearerTokens;
pub use dpop::{DpopChecker, DpopFailure, ProofTarget};
pub use jwt::JwtVerifier;

/// Why authentication did not produce a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// 401, with the reason for the audit log.
    Failed(AuthFailure),
    /// 503: the DPoP replay cache is full of `jti`s still inside the window. Accepting the
    /// proof unremembered would allow its replay, so the edge refuses until entries expire.
    ReplayCacheFull { retry_after_seconds: u64 },
    /// 503: the shared store holds the replay cache and did not answer (`on_error: deny`).
    StoreUnavailable,
}

impl From<AuthFailure> for AuthRefusal {
    fn from(failure: AuthFailure) -> Self {
        Self::Failed(failure)
    }
}

/// The token scheme of an `Authorization` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// Authenticates requests according to `auth.mode`.
#[derive(Debug)]
pub struct Authenticator {
    mode: AuthMode,
    pub bearer: Arc<BearerTokens>,
    pub jwt: Option<JwtVerifier>,
    dpop_mode: DpopMode,
    /// The proof checker (and its replay cache) when `auth.jwt.dpop` is not off.
    pub dpop: Option<DpopChecker>,
}

impl Authenticator {
    /// `store`: the shared store, where DPoP `jti`s are remembered when there is one.
    pub fn new(auth: &Auth, forward_jwt: bool, store: Option<Arc<RedisStore>>) -> Result<Self, String> {
        let bearer = Arc::new(BearerTokens::new(&auth.bearer)?);
        let jwt = match (&auth.jwt, auth.mode) {
            (Some(jwt), AuthMode::Jwt | AuthMode::BearerOrJwt) => Some(JwtVerifier::new(jwt, forward_jwt)?),
            _ => None,
        };
        let dpop_mode = auth.jwt.as_ref().filter(|_| jwt.is_some()).map_or(DpopMode::Off, |jwt| jwt.dpop.mode);
        let dpop = match (&auth.jwt, dpop_mode) {
            (Some(settings), DpopMode::Optional | DpopMode::Required) => {
                Some(DpopChecker::new(&settings.dpop)?.with_store(store))
            }
            _ => None,
        };
        Ok(Self { mode: auth.mode, bearer, jwt, dpop_mode, dpop })
    }

    pub fn dpop_mode(&self) -> DpopMode {
        self.dpop_mode
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Authenticates from the raw `Authorization` header value alone (no DPoP proof);
    /// `Ok(None)` when auth is off.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Option<Principal>, AuthFailure> {
        let target = ProofTarget { proofs: &[], method: "", scheme: "", authority: "", path: "" };
        match self.authenticate_request(authorization, &target).await {
            Ok(principal) => Ok(principal),
            Err(AuthRefusal::Failed(failure)) => Err(failure),
            Err(AuthRefusal::ReplayCacheFull { .. } | AuthRefusal::StoreUnavailable) => {
                Err(AuthFailure::InvalidDpopProof)
            }
        }
    }

    /// Authenticates a request: its `Authorization` value and, for a DPoP-bound token, the
    /// proof in `target`. `Ok(None)` when auth is off.
    ///
    /// With `dpop: optional` or `required` (RFC 9449 §7.1): a token with `cnf.jkt` must come
    /// as `DPoP <token>` with a valid proof, and as `Bearer` it is refused; `DPoP` with an
    /// unbound token is refused; `required` refuses every unbound JWT. With `dpop: off` the
    /// edge behaves as before DPoP existed: `Bearer` only, `cnf` not looked at.
    pub async fn authenticate_request(
        &self,
        authorization: Option<&[u8]>,
        target: &ProofTarget<'_>,
    ) -> Result<Option<Principal>, AuthRefusal> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        let value = authorization.ok_or(AuthFailure::MissingToken)?;
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthFailure::InvalidToken.into());
        }
        let (scheme, token) = token_of(value).ok_or(AuthFailure::InvalidToken)?;
        let Some(dpop) = &self.dpop else {
            if scheme == Scheme::Dpop {
                return Err(AuthFailure::InvalidToken.into());
            }
            return Ok(Some(self.principal_of(token).await?));
        };
        let principal = match scheme {
            // A bearer token of `bearer_or_jwt` cannot be bound: it is tried as before.
            Scheme::Bearer => self.principal_of(token).await?,
            Scheme::Dpop => match &self.jwt {
                Some(jwt) if looks_like_jwt(token) => jwt.verify(token).await?,
                _ => return Err(AuthFailure::DpopBindingMismatch.into()),
            },
        };
        let bound = principal.method == AuthMethod::Jwt && principal.dpop_jkt.is_some();
        match (scheme, bound) {
            (Scheme::Bearer, true) => Err(AuthFailure::DpopBindingMismatch.into()),
            (Scheme::Bearer, false) if principal.method == AuthMethod::Jwt && self.dpop_mode == DpopMode::Required => {
                Err(AuthFailure::DpopBindingMismatch.into())
            }
            (Scheme::Bearer, false) => Ok(Some(principal)),
            (Scheme::Dpop, false) => Err(AuthFailure::DpopBindingMismatch.into()),
            (Scheme::Dpop, true) => {
                let jkt = principal.dpop_jkt.as_deref().unwrap_or_default();
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
                match dpop.check_and_remember(target, token, jkt, now).await {
                    Ok(_) => Ok(Some(Principal { method: AuthMethod::Dpop, ..principal })),
                    Err(DpopFailure::InvalidProof) => Err(AuthFailure::InvalidDpopProof.into()),
                    Err(DpopFailure::Replay) => Err(AuthFailure::DpopReplay.into()),
                    Err(DpopFailure::BindingMismatch) => Err(AuthFailure::DpopBindingMismatch.into()),
                    Err(DpopFailure::ReplayCacheFull { retry_after }) => {
                        Err(AuthRefusal::ReplayCacheFull { retry_after_seconds: retry_after.as_secs().max(1) })
                    }
                    Err(DpopFailure::StoreUnavailable) => Err(AuthRefusal::StoreUnavailable),
                }
            }
        }
    }

    /// The principal of a `Bearer` token, as `auth.mode` says.
    async fn principal_of(&self, token: &[u8]) -> Result<Principal, AuthFailure> {
        match (self.mode, &self.jwt) {
            (AuthMode::Bearer, _) => self.bearer.check(token),
            (AuthMode::Jwt, Some(jwt)) => jwt.verify(token).await,
            (AuthMode::BearerOrJwt, Some(jwt)) => match self.bearer.check(token) {
                Ok(principal) => Ok(principal),
                Err(_) if looks_like_jwt(token) => jwt.verify(token).await,
                Err(failure) => Err(failure),
            },
            (AuthMode::BearerOrJwt, None) => self.bearer.check(token),
            (AuthMode::None | AuthMode::Jwt, _) => Err(AuthFailure::InvalidToken),
        }
    }
}

/// The scheme and token of `Bearer <token>` or `DPoP <token>` (schemes case-insensitive).
fn token_of(value: &[u8]) -> Option<(Scheme, &[u8])> {
    if let Some(token) = bearer_token(value) {
        return Some((Scheme::Bearer, token));
    }
    let (scheme, rest) = value.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case(b"dpop ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty() && !token.iter().any(|b| b.is_ascii_whitespace())).then_some((Scheme::Dpop, token))
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
        assert_eq!(token_of(b"DPoP abc"), Some((Scheme::Dpop, &b"abc"[..])));
        assert_eq!(token_of(b"dpop  abc "), Some((Scheme::Dpop, &b"abc"[..])));
        assert_eq!(token_of(b"DPoPabc"), None);
        assert_eq!(token_of(b"Bearer abc"), Some((Scheme::Bearer, &b"abc"[..])));
    }
}
