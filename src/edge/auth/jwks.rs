//! Verification keys: a JWKS fetched over HTTP (cached per `Cache-Control`, refreshed in the
//! background, refetched on an unknown `kid` at most once per 30 s with a single flight, the
//! last good set kept through a failed refresh) or read from a file.
//!
//! Keys are parsed one by one: a key type this build cannot use is skipped, not fatal, and
//! RSA keys shorter than 2048 bits are refused here, with the key named in the log (ring, which
//! checks the signatures, would refuse them too, but only token by token).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The shortest and longest time a fetched key set is trusted without refetching.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// When the response says nothing about caching.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// An unknown `kid` triggers at most one fetch in this window.
pub const MISS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 1 << 20;
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// One usable verification key.
pub struct KeyEntry {
    pub kid: Option<String>,
    /// The key's own `alg`, when the JWKS pins one.
    pub algorithm: Option<Algorithm>,
    pub key: DecodingKey,
}

/// A parsed key set.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<KeyEntry>,
}

/// What a lookup found.
pub enum Lookup<'a> {
    Found(&'a DecodingKey),
    /// No key with that `kid` (or none at all).
    UnknownKid,
    /// No `kid` in the token and more than one key in the set.
    Ambiguous,
}

impl KeySet {
    /// Parses a JWKS document, keeping every key this build can verify with.
    pub fn parse(document: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(document).map_err(|error| format!("not a JWKS document: {error}"))?;
        let mut keys = Vec::new();
        for value in document.keys {
            match parse_key(value) {
                Ok(entry) => keys.push(entry),
                Err(reason) => tracing::warn!(%reason, "Skipping a JWKS key"),
            }
        }
        Ok(Self { keys })
    }

    /// The key for a token's `kid` and `alg`.
    pub fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Lookup<'_> {
        let usable = |entry: &&KeyEntry| entry.algorithm.is_none_or(|pinned| pinned == algorithm);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(usable)
                .find(|entry| entry.kid.as_deref() == Some(kid))
                .map_or(Lookup::UnknownKid, |entry| Lookup::Found(&entry.key)),
            // `kid` is required when the set holds more than one key, whatever
            // their types; only a single-key set may be used without one.
            None => match self.keys.as_slice() {
                [] => Lookup::UnknownKid,
                [entry] if usable(&entry) && entry.key.family() == algorithm.family() => Lookup::Found(&entry.key),
                [_] => Lookup::UnknownKid,
                _ => Lookup::Ambiguous,
            },
        }
    }
}

fn parse_key(value: serde_json::Value) -> Result<KeyEntry, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|error| format!("unsupported key: {error}"))?;
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != jsonwebtoken::jwk::PublicKeyUse::Signature
    {
        return Err("key is not for signatures".to_string());
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        // A shared secret has no business in a public key set.
        return Err("symmetric keys are not accepted from a JWKS".to_string());
    }
    if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
        let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(rsa.n.trim_end_matches('='))
            .map_err(|_| "RSA modulus is not base64url".to_string())?;
        let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
        if significant < MIN_RSA_MODULUS_BYTES {
            return Err(format!("RSA key of {} bits is shorter than 2048", significant * 8));
        }
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(key_algorithm) => Some(
            key_algorithm
                .to_string()
                .parse::<Algorithm>()
                .map_err(|_| format!("key algorithm {key_algorithm} is not for signatures"))?,
        ),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|error| format!("unusable key: {error}"))?;
    Ok(KeyEntry { kid: jwk.common.key_id, algorithm, key })
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Url(url::Url),
    File(PathBuf),
}

/// The current key set and how to refresh it.
pub struct KeyStore {
    source: KeySource,
    keys: ArcSwap<KeySet>,
    client: reqwest::Client,
    /// When a fetch last started because of an unknown `kid`; also the single-flight lock.
    last_miss_fetch: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").field("source", &self.source).field("keys", &self.keys.load().keys.len()).finish()
    }
}

impl KeyStore {
    /// A file source is read now (a bad file is a startup error); a URL source starts empty
    /// and is filled by the refresher or the first unknown `kid`.
    pub fn new(source: KeySource) -> Result<Self, String> {
        let initial = match &source {
            KeySource::File(path) => {
                let bytes = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                KeySet::parse(&bytes).map_err(|error| format!("{}: {error}", path.display()))?
            }
            KeySource::Url(_) => KeySet::default(),
        };
        // No redirects: a redirect could move the fetch to any host, or from https to http,
        // and an issuer's key set has one published address.
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the JWKS client: {error}"))?;
        Ok(Self {
            source,
            keys: ArcSwap::from_pointee(initial),
            client,
            last_miss_fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// How many JWKS fetches were made (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.source, KeySource::Url(_))
    }

    /// Fetches the JWKS now; on success swaps it in and returns how long to trust it.
    pub async fn refresh(&self) -> Result<Duration, String> {
        let KeySource::Url(url) = &self.source else { return Ok(MAX_TTL) };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut response =
            self.client.get(url.clone()).send().await.map_err(|error| format!("JWKS fetch failed: {error}"))?;
        if response.status().is_redirection() {
            return Err(format!("JWKS fetch answered {}; redirects are not followed", response.status()));
        }
        if !response.status().is_success() {
            return Err(format!("JWKS fetch answered {}", response.status()));
        }
        let ttl = response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age)
            .map_or(DEFAULT_TTL, |ttl| ttl.clamp(MIN_TTL, MAX_TTL));
        let bytes = read_capped(&mut response).await?;
        let keys = KeySet::parse(&bytes)?;
        if keys.keys.is_empty() {
            return Err("JWKS holds no usable key".to_string());
        }
        self.keys.store(Arc::new(keys));
        Ok(ttl)
    }

    /// Called when a token names a `kid` we do not have. Fetches at most once per
    /// [`MISS_REFRESH_INTERVAL`]; concurrent callers wait for the one fetch in flight.
    pub async fn refresh_after_miss(&self) {
        if !self.is_remote() {
            return;
        }
        let mut last = self.last_miss_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < MISS_REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "JWKS refresh after an unknown kid failed; keeping the last good keys");
        }
    }
}

/// The response body, refused as soon as it passes [`MAX_JWKS_BYTES`] (announced or while it
/// streams), so a huge or endless key set costs at most that much memory.
async fn read_capped(response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
    const TOO_LARGE: &str = "JWKS document larger than 1 MiB";
    if response.content_length().is_some_and(|length| length > MAX_JWKS_BYTES as u64) {
        return Err(TOO_LARGE.to_string());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| format!("JWKS body unreadable: {error}"))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(TOO_LARGE.to_string());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `max-age` from a `Cache-Control` value, unless caching is forbidden.
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = include_str!("../../../tests/fixtures/jwt/jwks.json");

    #[test]
    fn the_test_jwks_parses_rsa_and_ec_keys() {
        let keys = KeySet::parse(JWKS.as_bytes()).expect("jwks");
        assert_eq!(keys.keys.len(), 2);
        assert!(matches!(keys.find(Some("rsa-1"), Algorithm::RS256), Lookup::Found(_)));
        assert!(matches!(keys.find(Some("ec-1"), Algorithm::ES256), Lookup::Found(_)));
        assert!(matches!(keys.find(Some("rsa-1"), Algorithm::RS384), Lookup::UnknownKid), "the key pins RS256");
        assert!(matches!(keys.find(Some("nope"), Algorithm::RS256), Lookup::UnknownKid));
        assert!(matches!(keys.find(None, Algorithm::RS256), Lookup::Ambiguous), "two keys: kid is required");
        let single = r#"{"keys":[JWK]}"#.replace("JWK", &serde_json::to_string(&rsa_only(JWKS)).expect("jwk"));
        let single = KeySet::parse(single.as_bytes()).expect("one key");
        assert!(matches!(single.find(None, Algorithm::RS256), Lookup::Found(_)), "one key: kid may be omitted");
        assert!(matches!(single.find(None, Algorithm::ES256), Lookup::UnknownKid), "of the wrong type");
    }

    /// The RSA key of a JWKS document.
    fn rsa_only(document: &str) -> serde_json::Value {
        let document: serde_json::Value = serde_json::from_str(document).expect("json");
        document["keys"].as_array().expect("keys").iter().find(|key| key["kty"] == "RSA").expect("an RSA key").clone()
    }

    #[test]
    fn unusable_and_short_keys_are_skipped() {
        let document = r#"{"keys":[
            {"kty":"RSA","kid":"short","n":"AQAB","e":"AQAB"},
            {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
            {"kty":"EC","kid":"enc","use":"enc","crv":"P-256","x":"AA","y":"AA"},
            {"kty":"weird"}
        ]}"#;
        let keys = KeySet::parse(document.as_bytes()).expect("document");
        assert!(keys.keys.iter().all(|entry| entry.kid.as_deref() != Some("short")));
        assert!(keys.keys.iter().all(|entry| entry.kid.as_deref() != Some("enc")));
        assert!(KeySet::parse(b"[]").is_err());
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age("public, max-age=19845, must-revalidate, no-transform"), Some(Duration::from_secs(19845)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
