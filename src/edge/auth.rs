//! Authentication of downstream requests: static bearer tokens for now (JWT arrives with the
//! authentication work, and configs asking for it are refused until then).
//!
//! Tokens are kept only as SHA-256 digests. A presented token is hashed once and compared
//! with every configured digest in constant time without an early exit, so neither the
//! match position nor a prefix of a token leaks through timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Auth, AuthMode};

/// Longest `Authorization` value read; longer ones are refused unparsed (DESIGN.md §13).
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    MissingToken,
    InvalidToken,
}

impl AuthFailure {
    /// Stable machine code, used as the audit `event.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::InvalidToken => "invalid_token",
        }
    }
}

/// Who made the request, as far as the edge could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's configured id, or the first 8 hex digits of its SHA-256.
    pub subject: String,
}

struct TokenDigest {
    id: String,
    digest: [u8; 32],
}

/// Checks bearer tokens against the configured set.
pub struct BearerGate {
    mode: AuthMode,
    tokens: Vec<TokenDigest>,
}

impl std::fmt::Debug for BearerGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerGate").field("mode", &self.mode).field("tokens", &self.tokens.len()).finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn short_id(digest: &[u8; 32]) -> String {
    digest[..4].iter().map(|byte| format!("{byte:02x}")).collect()
}

impl BearerGate {
    pub fn from_config(auth: &Auth) -> Result<Self, String> {
        let mut tokens: Vec<TokenDigest> = auth
            .bearer
            .tokens
            .iter()
            .map(|token| {
                let digest = digest(token.value.as_bytes());
                TokenDigest { id: token.id.clone().unwrap_or_else(|| short_id(&digest)), digest }
            })
            .collect();
        if let Some(path) = &auth.bearer.tokens_file {
            let text =
                std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
                let digest = digest(line.as_bytes());
                tokens.push(TokenDigest { id: short_id(&digest), digest });
            }
        }
        Ok(Self { mode: auth.mode, tokens })
    }

    /// Authenticates from the raw `Authorization` header value, if any.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Option<Principal>, AuthFailure> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        let value = authorization.ok_or(AuthFailure::MissingToken)?;
        if value.len() > MAX_AUTHORIZATION_BYTES {
            return Err(AuthFailure::InvalidToken);
        }
        let token = bearer_token(value).ok_or(AuthFailure::InvalidToken)?;
        let presented = digest(token);
        let mut matched: Option<&TokenDigest> = None;
        for candidate in &self.tokens {
            // Evaluate every candidate; remember a match without branching out early.
            let equal: bool = candidate.digest.ct_eq(&presented).into();
            if equal && matched.is_none() {
                matched = Some(candidate);
            }
        }
        matched.map(|token| Some(Principal { subject: token.id.clone() })).ok_or(AuthFailure::InvalidToken)
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
    use crate::config::{Bearer, BearerToken};

    fn gate(tokens: &[&str]) -> BearerGate {
        let bearer = Bearer {
            tokens: tokens
                .iter()
                .map(|value| BearerToken { id: None, value: value.to_string(), scopes: Vec::new() })
                .collect(),
            tokens_file: None,
        };
        BearerGate::from_config(&Auth { mode: AuthMode::Bearer, bearer, jwt: None }).expect("gate")
    }

    fn check(gate: &BearerGate, header: Option<&str>) -> Result<Option<Principal>, AuthFailure> {
        gate.authenticate(header.map(str::as_bytes))
    }

    #[test]
    fn every_configured_token_is_accepted() {
        let gate = gate(&["old-token-aaaaaaaa", "new-token-bbbbbbbb"]);
        assert!(check(&gate, Some("Bearer old-token-aaaaaaaa")).is_ok());
        assert!(check(&gate, Some("bearer new-token-bbbbbbbb")).is_ok());
    }

    #[test]
    fn principal_is_digest_prefix_never_the_token() {
        let gate = gate(&["secret-token-value"]);
        let principal = check(&gate, Some("Bearer secret-token-value")).expect("ok").expect("principal");
        assert_eq!(principal.subject.len(), 8);
        assert!(!principal.subject.contains("secret"));
    }

    #[test]
    fn wrong_missing_and_malformed_tokens_are_refused() {
        let gate = gate(&["right-token"]);
        assert_eq!(check(&gate, None), Err(AuthFailure::MissingToken));
        assert_eq!(check(&gate, Some("Bearer wrong-token")), Err(AuthFailure::InvalidToken));
        assert_eq!(check(&gate, Some("Bearer right-token-plus")), Err(AuthFailure::InvalidToken));
        assert_eq!(check(&gate, Some("Basic right-token")), Err(AuthFailure::InvalidToken));
        assert_eq!(check(&gate, Some("Bearer")), Err(AuthFailure::InvalidToken));
        assert_eq!(check(&gate, Some("Bearer right token")), Err(AuthFailure::InvalidToken));
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        assert_eq!(check(&gate, Some(&huge)), Err(AuthFailure::InvalidToken));
    }

    #[test]
    fn mode_none_lets_everyone_in_without_a_principal() {
        let gate = BearerGate::from_config(&Auth { mode: AuthMode::None, bearer: Bearer::default(), jwt: None })
            .expect("gate");
        assert_eq!(check(&gate, None), Ok(None));
    }
}
