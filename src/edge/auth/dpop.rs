//! DPoP proofs (RFC 9449): the check that an access token is presented by the holder of the
//! key it is bound to.
//!
//! A pure check: it reads the `DPoP` header values, the request method and URI as the edge
//! served them, the access token and the token's `cnf.jkt`, and says yes or why not. The
//! checks run in the order of RFC 9449 §4.3, then §7.1 (the binding) and §11.1 (replay):
//! one header; a JWS with `typ: dpop+jwt`; `alg` from the allow-list; a public `jwk` with no
//! private parts; the signature by that key; `htm`; `htu` (query and fragment dropped,
//! scheme, host and default port normalised by `url`'s WHATWG parser on both sides); `iat`
//! within `max_age` of now either way; `ath`; the key's RFC 7638 thumbprint = `cnf.jkt`; and
//! last `jti` unseen, so that a proof that fails any other check never takes a cache slot.
//!
//! Proofs are verified on every request: unlike an access token, a proof is single-use, so
//! there is nothing to cache but its `jti`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Dpop, OnStoreError};
use crate::store::RedisStore;

/// A proof longer than this is refused before it is decoded (an RSA-8192 `jwk` and its
/// signature take about 3 KiB).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// A `jti` longer than this is refused; only its digest is remembered either way.
const MAX_JTI_BYTES: usize = 256;
/// JWK members that hold private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a proof was refused. The first two are proof problems (`invalid_dpop_proof` to the
/// client), the binding problems are `invalid_token`, and a full replay cache is the edge's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopFailure {
    /// Missing, two headers, malformed, `typ`, `alg`, `jwk`, signature, `htm`, `htu`, `iat`,
    /// `jti` missing.
    InvalidProof,
    /// The `jti` was seen inside the window.
    Replay,
    /// `ath` is not the token's hash, or the proof key is not the token's `cnf.jkt`.
    BindingMismatch,
    /// Every remembered `jti` is still inside the window; try again after this long.
    ReplayCacheFull { retry_after: Duration },
    /// The shared store did not answer and `store.redis.on_error` is `deny`: a proof whose
    /// `jti` cannot be remembered is not accepted.
    StoreUnavailable,
}

/// The request a proof must describe, as the edge sees it.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// Every `DPoP` header value of the request (exactly one is allowed).
    pub proofs: &'a [&'a [u8]],
    pub method: &'a str,
    /// `https` when the request came over TLS, else `http`.
    pub scheme: &'a str,
    /// The `Host` header or `:authority` the request was served for.
    pub authority: &'a str,
    /// The request path, with or without a query (it is dropped).
    pub path: &'a str,
}

/// Checks proofs for one `auth.jwt` configuration and remembers their `jti`s.
#[derive(Debug)]
pub struct DpopChecker {
    algorithms: Vec<Algorithm>,
    max_age: u64,
    public_origin: Option<String>,
    replay: ReplayCache,
    /// With `store.backend: redis`, where `jti`s are remembered, so that a proof replayed
    /// to another replica is refused too.
    shared: Option<Arc<RedisStore>>,
}

/// What a proof proved; its `jti` is still to be remembered.
struct Proved {
    thumbprint: String,
    jti: [u8; 32],
    /// The last second the proof's `iat` would still be accepted.
    expires_at: u64,
}

impl DpopChecker {
    pub fn new(dpop: &Dpop) -> Result<Self, String> {
        let algorithms = dpop
            .algorithms
            .iter()
            .map(|name| name.parse::<Algorithm>().map_err(|_| format!("unknown DPoP algorithm {name}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            algorithms,
            max_age: dpop.max_age.as_secs(),
            public_origin: dpop.public_url.clone(),
            replay: ReplayCache::new(dpop.replay_cache),
            shared: None,
        })
    }

    /// Remembers `jti`s in the shared store instead of this process (with `on_error: allow`,
    /// here while the store is down).
    pub fn with_store(mut self, store: Option<Arc<RedisStore>>) -> Self {
        self.shared = store;
        self
    }

    /// The proof algorithms, for `dpop_signing_alg_values_supported` and the challenge.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Checks the proof of `target` for `access_token`, bound to the thumbprint `jkt`, and
    /// remembers its `jti` in this process; `Ok` carries the proof key's thumbprint. `now` is
    /// seconds since the epoch.
    pub fn check(
        &self,
        target: &ProofTarget<'_>,
        access_token: &[u8],
        jkt: &str,
        now: u64,
    ) -> Result<String, DpopFailure> {
        let proved = self.prove(target, access_token, jkt, now)?;
        self.remember_here(proved, now)
    }

    /// Remembers the proof's `jti` in this process's cache.
    fn remember_here(&self, proved: Proved, now: u64) -> Result<String, DpopFailure> {
        self.replay.insert(proved.jti, proved.expires_at, now)?;
        Ok(proved.thumbprint)
    }

    /// [`Self::check`], with the `jti` remembered where `store.backend` says: in Redis (one
    /// `SET NX` with the proof's remaining window as its expiry), or in this process.
    pub async fn check_and_remember(
        &self,
        target: &ProofTarget<'_>,
        access_token: &[u8],
        jkt: &str,
        now: u64,
    ) -> Result<String, DpopFailure> {
        let proved = self.prove(target, access_token, jkt, now)?;
        let Some(store) = &self.shared else { return self.remember_here(proved, now) };
        let key = store.key(&format!("dpop-jti:{}", URL_SAFE_NO_PAD.encode(proved.jti)));
        let ttl_ms = proved.expires_at.saturating_sub(now).max(1).saturating_mul(1000);
        let first_use = store
            .run("dpop_replay", move |mut connection| async move {
                ::redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<Option<String>>(&mut connection)
                    .await
            })
            .await;
        match first_use {
            Ok(Some(_)) => Ok(proved.thumbprint),
            Ok(None) => Err(DpopFailure::Replay),
            Err(_) if store.on_error == OnStoreError::Allow => self.remember_here(proved, now),
            Err(_) => Err(DpopFailure::StoreUnavailable),
        }
    }

    /// Every check but the replay: the proof itself, then its binding to the token.
    fn prove(&self, target: &ProofTarget<'_>, access_token: &[u8], jkt: &str, now: u64) -> Result<Proved, DpopFailure> {
        use DpopFailure::{BindingMismatch, InvalidProof};
        let [proof] = target.proofs else { return Err(InvalidProof) };
        if proof.len() > MAX_PROOF_BYTES {
            return Err(InvalidProof);
        }
        let proof = std::str::from_utf8(proof).map_err(|_| InvalidProof)?.trim_ascii();
        let mut parts = proof.split('.');
        let (Some(header_part), Some(claims_part), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(InvalidProof);
        };
        let header = json_object(header_part).ok_or(InvalidProof)?;
        let claims = json_object(claims_part).ok_or(InvalidProof)?;
        // RFC 9449 §4.2: the media type `dpop+jwt`, compared as media types are.
        let typ = header.get("typ").and_then(serde_json::Value::as_str).ok_or(InvalidProof)?;
        if !typ.eq_ignore_ascii_case("dpop+jwt") || header.contains_key("crit") {
            return Err(InvalidProof);
        }
        let alg = header.get("alg").and_then(serde_json::Value::as_str).ok_or(InvalidProof)?;
        // `none` and the HS family never parse into the list: the config refuses them.
        let algorithm = alg.parse::<Algorithm>().map_err(|_| InvalidProof)?;
        if !self.algorithms.contains(&algorithm) {
            return Err(InvalidProof);
        }
        let raw_jwk = header.get("jwk").and_then(serde_json::Value::as_object).ok_or(InvalidProof)?;
        if PRIVATE_MEMBERS.iter().any(|member| raw_jwk.contains_key(*member)) {
            return Err(InvalidProof);
        }
        let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(raw_jwk.clone())).map_err(|_| InvalidProof)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| InvalidProof)?;
        let signed = &proof[..header_part.len() + 1 + claims_part.len()];
        // The provider refuses a key of another family than `alg` (an RSA jwk with ES256).
        if !jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, algorithm).unwrap_or(false) {
            return Err(InvalidProof);
        }
        let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if claim("htm") != Some(target.method) {
            return Err(InvalidProof);
        }
        let expected = self.expected_htu(target).ok_or(InvalidProof)?;
        if claim("htu").and_then(normalised_htu) != Some(expected) {
            return Err(InvalidProof);
        }
        let iat = claims.get("iat").and_then(serde_json::Value::as_f64).ok_or(InvalidProof)?;
        if !iat.is_finite() || (iat - now as f64).abs() > self.max_age as f64 {
            return Err(InvalidProof);
        }
        let jti = claim("jti").filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_BYTES).ok_or(InvalidProof)?;
        // §7.1: `ath` binds the proof to this token; a proof without one was made for no token.
        if claim("ath") != Some(URL_SAFE_NO_PAD.encode(Sha256::digest(access_token)).as_str()) {
            return Err(BindingMismatch);
        }
        let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| InvalidProof)?;
        if thumbprint != jkt {
            return Err(BindingMismatch);
        }
        // Remembered until the last moment its `iat` would still be accepted.
        let expires_at = (iat as u64).saturating_add(self.max_age);
        Ok(Proved { thumbprint, jti: Sha256::digest(jti.as_bytes()).into(), expires_at })
    }

    /// The URI the proof must name: the configured public origin, or the edge's own view.
    fn expected_htu(&self, target: &ProofTarget<'_>) -> Option<String> {
        let path = target.path.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') {
            return None;
        }
        let origin = match &self.public_origin {
            Some(origin) => origin.clone(),
            None => format!("{}://{}", target.scheme, target.authority),
        };
        normalised_htu(&format!("{origin}{path}"))
    }

    /// How many `jti`s are remembered (for tests and the bound check).
    pub fn remembered(&self) -> usize {
        self.replay.len()
    }
}

/// An http(s) URI without query and fragment, scheme and host lower-cased, default port
/// dropped, as the WHATWG parser serialises it; `None` for anything else.
fn normalised_htu(text: &str) -> Option<String> {
    let mut url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !url.username().is_empty() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

fn json_object(part: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The `jti`s seen inside the window, by SHA-256 digest, at most `capacity` of them.
#[derive(Debug)]
struct ReplayCache {
    capacity: usize,
    inner: Mutex<ReplayEntries>,
}

#[derive(Debug, Default)]
struct ReplayEntries {
    /// Digest → the second after which the proof would be stale anyway.
    seen: HashMap<[u8; 32], u64>,
    /// The smallest expiry in `seen` (or later): sweeping before it frees nothing, so a full
    /// cache under a flood costs one comparison per proof, not a scan.
    earliest: u64,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(ReplayEntries { seen: HashMap::new(), earliest: u64::MAX }) }
    }

    fn len(&self) -> usize {
        self.inner.lock().map_or(0, |entries| entries.seen.len())
    }

    fn insert(&self, digest: [u8; 32], expires_at: u64, now: u64) -> Result<(), DpopFailure> {
        // A poisoned lock means a panic elsewhere mid-update: refusing is the safe answer.
        let mut entries =
            self.inner.lock().map_err(|_| DpopFailure::ReplayCacheFull { retry_after: Duration::ZERO })?;
        if entries.seen.get(&digest).is_some_and(|&until| until >= now) {
            return Err(DpopFailure::Replay);
        }
        if entries.seen.len() >= self.capacity && !entries.seen.contains_key(&digest) {
            if now > entries.earliest {
                entries.seen.retain(|_, until| *until >= now);
                entries.earliest = entries.seen.values().copied().min().unwrap_or(u64::MAX);
            }
            if entries.seen.len() >= self.capacity {
                let retry_after = Duration::from_secs(entries.earliest.saturating_sub(now).saturating_add(1));
                return Err(DpopFailure::ReplayCacheFull { retry_after });
            }
        }
        entries.seen.insert(digest, expires_at);
        entries.earliest = entries.earliest.min(expires_at);
        Ok(())
    }
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
