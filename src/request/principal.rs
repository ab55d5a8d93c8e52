//! Who a request is from: the [`Principal`] authentication produces, how it proved it
//! ([`AuthMethod`]), and why authentication failed ([`AuthFailure`], with its stable reason
//! code).

use std::sync::Arc;

/// Longest `Authorization` value read (and longest credential-session token accepted);
/// longer ones are refused unparsed, as nginx's 8 KiB header buffers would.
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
    /// DPoP: the proof is missing, malformed, or does not describe this request.
    InvalidDpopProof,
    /// DPoP: the proof's `jti` was seen inside the window.
    DpopReplay,
    /// DPoP: the token and the proof are not bound to each other (`cnf.jkt`, `ath`), a bound
    /// token came as `Bearer`, or an unbound one under `dpop: required`.
    DpopBindingMismatch,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 12] = [
        AuthFailure::MissingToken,
        AuthFailure::InvalidToken,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
        AuthFailure::BadSignature,
        AuthFailure::WrongAudience,
        AuthFailure::WrongIssuer,
        AuthFailure::UnknownKid,
        AuthFailure::MissingClaim,
        AuthFailure::InvalidDpopProof,
        AuthFailure::DpopReplay,
        AuthFailure::DpopBindingMismatch,
    ];

    /// Stable machine code, used as the audit `event.reason` and the metric label (the list
    /// the metrics pre-register is `telemetry::metrics::AUTH_FAILURE_REASONS`).
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
            AuthFailure::InvalidDpopProof => "invalid_dpop_proof",
            AuthFailure::DpopReplay => "dpop_replay",
            AuthFailure::DpopBindingMismatch => "dpop_binding_mismatch",
        }
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Bearer,
    Jwt,
    /// A DPoP-bound JWT with a valid proof (RFC 9449).
    Dpop,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Bearer => "bearer",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Dpop => "dpop",
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
    /// The token's `cnf.jkt` (RFC 7638 thumbprint of the key it is bound to, RFC 9449 §6.1).
    pub dpop_jkt: Option<String>,
}

impl Principal {
    /// The key that binds a session (credential or MCP) to its owner: the authentication
    /// method and subject (`bearer:ci`, `jwt:user-42`), so a bearer token's id and a JWT
    /// `sub` that happen to be equal never share sessions.
    pub fn owner_key(&self) -> String {
        format!("{}:{}", self.method.as_str(), self.subject)
    }
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

/// Three non-empty base64url segments: the shape of a compact JWS.
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
    fn jwt_shape() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt(b"eyJh.eyJz"));
        assert!(!looks_like_jwt(b"eyJh..c2ln"));
        assert!(!looks_like_jwt(b"eyJh.eyJz.c2ln.x"));
        assert!(!looks_like_jwt(b"eyJh.ey+z.c2ln"));
    }

    #[test]
    fn the_metrics_pre_register_every_failure_reason() {
        let reasons: Vec<&str> = AuthFailure::ALL.iter().map(|failure| failure.reason()).collect();
        assert_eq!(reasons, crate::telemetry::metrics::AUTH_FAILURE_REASONS);
    }

    #[test]
    fn the_owner_key_names_method_and_subject() {
        let principal = |method| Principal {
            subject: "ci".into(),
            method,
            scopes: Vec::new(),
            token_id: "t".into(),
            forwardable_jwt: None,
            dpop_jkt: None,
        };
        assert_eq!(principal(AuthMethod::Bearer).owner_key(), "bearer:ci");
        assert_eq!(principal(AuthMethod::Jwt).owner_key(), "jwt:ci");
    }
}
