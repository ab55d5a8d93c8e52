//! JWT verification: algorithm allow-list, key by `kid`, `iss`/`aud`/`exp`/`nbf` with
//! bounded leeway, required claims, and the Firebase rules; verified tokens are cached by
//! digest until they expire, so a repeat caller costs no signature check.
//!
//! jsonwebtoken checks `iss`, `aud` and `sub` only when the token carries them unless they are
//! required, never checks `iat` or `auth_time`, ignores `crit`, and silently skips `iat` and
//! `jti` in its required-claims list: all of these are handled here, so every claim
//! `required_claims` accepts is enforced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use dashmap::DashMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use super::jwks::{KeySource, KeyStore, Lookup};
use crate::config::{Jwt, JwtKeySource};
use crate::request::{AuthFailure, AuthMethod, Principal};

/// Verified tokens remembered at most; past it, expired entries are dropped, then all.
const CACHE_CAPACITY: usize = 10_000;
/// Firebase limits `sub` (the user id) to this many characters.
const MAX_FIREBASE_SUBJECT: usize = 128;

enum Keys {
    Secret(DecodingKey),
    Store(Arc<KeyStore>),
}

struct CachedPrincipal {
    principal: Principal,
    expires_at: u64,
}

/// Verifies JWTs for one `auth.jwt` configuration.
pub struct JwtVerifier {
    validations: HashMap<Algorithm, Validation>,
    keys: Keys,
    firebase: bool,
    leeway: u64,
    forward: bool,
    /// `required_claims` jsonwebtoken does not enforce (it checks only exp, nbf, iss, aud, sub).
    require_iat: bool,
    require_jti: bool,
    cache: DashMap<[u8; 32], CachedPrincipal>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validations.keys().collect::<Vec<_>>())
            .field("firebase", &self.firebase)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

impl JwtVerifier {
    /// `forward` keeps the verified token in the principal for `upstream.auth.mode: forward`.
    pub fn new(jwt: &Jwt, forward: bool) -> Result<Self, String> {
        let leeway = jwt.leeway.as_secs();
        let mut validations = HashMap::new();
        for name in &jwt.algorithms {
            let algorithm: Algorithm = name.parse().map_err(|_| format!("unknown JWT algorithm {name}"))?;
            // One algorithm per validation: jsonwebtoken refuses a key whose family differs
            // from any allowed algorithm, so a mixed list would reject everything.
            let mut validation = Validation::new(algorithm);
            validation.leeway = leeway;
            validation.validate_nbf = true;
            validation.set_issuer(&[jwt.issuer.as_str()]);
            validation.set_audience(&jwt.audiences);
            let required: Vec<&str> = jwt.required_claims.iter().map(String::as_str).collect();
            validation.set_required_spec_claims(&required);
            validations.insert(algorithm, validation);
        }
        let keys = match &jwt.keys {
            JwtKeySource::Hs256Secret(secret) => Keys::Secret(DecodingKey::from_secret(secret.0.as_bytes())),
            JwtKeySource::JwksUrl(url) => Keys::Store(Arc::new(KeyStore::new(KeySource::Url(url.clone()))?)),
            JwtKeySource::JwksFile(path) => Keys::Store(Arc::new(KeyStore::new(KeySource::File(path.clone()))?)),
        };
        let required = |claim: &str| jwt.required_claims.iter().any(|name| name == claim);
        Ok(Self {
            validations,
            keys,
            firebase: jwt.firebase_project.is_some(),
            leeway,
            forward,
            require_iat: required("iat"),
            require_jti: required("jti"),
            cache: DashMap::new(),
        })
    }

    /// The key store, when keys come from a JWKS (for the background refresher).
    pub fn key_store(&self) -> Option<Arc<KeyStore>> {
        match &self.keys {
            Keys::Store(store) => Some(Arc::clone(store)),
            Keys::Secret(_) => None,
        }
    }

    pub async fn verify(&self, token: &[u8]) -> Result<Principal, AuthFailure> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let now = now();
        // Saturating: `exp` is the token's to choose, up to u64::MAX (fuzz/corpus/auth/18-huge-exp).
        if let Some(cached) = self.cache.get(&digest)
            && cached.expires_at.saturating_add(self.leeway) > now
        {
            return Ok(cached.principal.clone());
        }
        let token = std::str::from_utf8(token).map_err(|_| AuthFailure::InvalidToken)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::InvalidToken)?;
        if has_critical_header(token) {
            return Err(AuthFailure::InvalidToken);
        }
        let validation = self.validations.get(&header.alg).ok_or(AuthFailure::InvalidToken)?;
        if self.firebase && header.kid.is_none() {
            return Err(AuthFailure::InvalidToken);
        }
        let claims = match &self.keys {
            Keys::Secret(key) => decode(token, key, validation)?,
            Keys::Store(store) => {
                let mut keys = store.current();
                if matches!(keys.find(header.kid.as_deref(), header.alg), Lookup::UnknownKid) {
                    // Boxed: a JWKS fetch's state is large, and inline it would make every
                    // request's future that large.
                    Box::pin(store.refresh_after_miss()).await;
                    keys = store.current();
                }
                match keys.find(header.kid.as_deref(), header.alg) {
                    Lookup::Found(key) => decode(token, key, validation)?,
                    Lookup::UnknownKid => return Err(AuthFailure::UnknownKid),
                    Lookup::Ambiguous => return Err(AuthFailure::InvalidToken),
                }
            }
        };
        self.check_claims(&claims, now)?;
        let expires_at = claims.get("exp").and_then(serde_json::Value::as_f64).map_or(0, |exp| exp as u64);
        let principal = Principal {
            subject: claims.get("sub").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
            method: AuthMethod::Jwt,
            scopes: scopes_of(&claims),
            token_id: claims
                .get("jti")
                .and_then(serde_json::Value::as_str)
                .map_or_else(|| super::bearer::short_id(&digest), str::to_string),
            forwardable_jwt: self.forward.then(|| Arc::from(token)),
            dpop_jkt: bound_key(&claims)?,
        };
        if expires_at > 0 {
            self.remember(digest, &principal, expires_at, now);
        }
        Ok(principal)
    }

    /// The checks jsonwebtoken does not make.
    fn check_claims(&self, claims: &serde_json::Map<String, serde_json::Value>, now: u64) -> Result<(), AuthFailure> {
        let latest = now + self.leeway;
        let in_the_past = |name: &str| {
            claims.get(name).map(|value| value.as_f64().is_some_and(|at| at >= 0.0 && (at as u64) <= latest))
        };
        match in_the_past("iat") {
            Some(false) => return Err(AuthFailure::NotYetValid),
            None if self.require_iat => return Err(AuthFailure::MissingClaim),
            _ => {}
        }
        if self.require_jti && claims.get("jti").and_then(serde_json::Value::as_str).is_none_or(str::is_empty) {
            return Err(AuthFailure::MissingClaim);
        }
        if let Some(subject) = claims.get("sub")
            && !subject.is_string()
        {
            return Err(AuthFailure::InvalidToken);
        }
        // jsonwebtoken skips an `iss` or `aud` of the wrong type unless the claim is in
        // `required_claims`, and takes an array `iss`. A present claim must be well-formed
        // whatever `required_claims` says: `iss` one string (RFC 7519 §4.1.1), `aud` a string
        // or an array of strings.
        if claims.get("iss").is_some_and(|issuer| !issuer.is_string()) {
            return Err(AuthFailure::WrongIssuer);
        }
        if let Some(audience) = claims.get("aud")
            && !(audience.is_string()
                || audience.as_array().is_some_and(|list| list.iter().all(serde_json::Value::is_string)))
        {
            return Err(AuthFailure::WrongAudience);
        }
        if self.firebase {
            let subject = claims.get("sub").and_then(serde_json::Value::as_str).unwrap_or_default();
            if subject.is_empty() || subject.chars().count() > MAX_FIREBASE_SUBJECT {
                return Err(AuthFailure::InvalidToken);
            }
            match in_the_past("auth_time") {
                None => return Err(AuthFailure::MissingClaim),
                Some(false) => return Err(AuthFailure::NotYetValid),
                Some(true) => {}
            }
        }
        Ok(())
    }

    fn remember(&self, digest: [u8; 32], principal: &Principal, expires_at: u64, now: u64) {
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.retain(|_, cached| cached.expires_at.saturating_add(self.leeway) > now);
            if self.cache.len() >= CACHE_CAPACITY {
                self.cache.clear();
            }
        }
        self.cache.insert(digest, CachedPrincipal { principal: principal.clone(), expires_at });
    }
}

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<serde_json::Map<String, serde_json::Value>, AuthFailure> {
    jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|error| match error.kind() {
            ErrorKind::ExpiredSignature => AuthFailure::Expired,
            ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
            ErrorKind::InvalidSignature => AuthFailure::BadSignature,
            ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
            ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
            ErrorKind::MissingRequiredClaim(_) => AuthFailure::MissingClaim,
            _ => AuthFailure::InvalidToken,
        })
}

/// RFC 7515 §4.1.11: a `crit` header we do not understand must fail verification, and we
/// understand none.
fn has_critical_header(token: &str) -> bool {
    let Some(header) = token.split('.').next() else { return true };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else { return true };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .map_or(true, |map| map.contains_key("crit"))
}

/// The `cnf.jkt` of a DPoP-bound token (RFC 9449 §6.1); a `cnf` without a usable `jkt` is
/// refused, since the token claims a binding the edge cannot honour.
fn bound_key(claims: &serde_json::Map<String, serde_json::Value>) -> Result<Option<String>, AuthFailure> {
    let Some(confirmation) = claims.get("cnf") else { return Ok(None) };
    match confirmation.get("jkt") {
        Some(serde_json::Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.clone())),
        Some(_) => Err(AuthFailure::InvalidToken),
        // Another confirmation method (`x5t#S256`, mTLS-bound tokens): not DPoP.
        None => Ok(None),
    }
}

/// Scopes from `scope` (space-separated, RFC 8693) or `scp` (array or string).
fn scopes_of(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let split = |text: &str| text.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(serde_json::Value::String(scope)), _) => split(scope),
        (_, Some(serde_json::Value::Array(list))) => {
            list.iter().filter_map(|item| item.as_str().map(str::to_string)).collect()
        }
        (_, Some(serde_json::Value::String(scope))) => split(scope),
        _ => Vec::new(),
    }
}
