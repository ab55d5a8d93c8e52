//! Self-contained MCP session ids: signed, bound to the principal, expiring.
//!
//! An id is `base64url(claims) "." base64url(HMAC-SHA256(claims))`, so any replica holding the
//! key accepts it without a session store or sticky routing. The claims carry a digest of the
//! principal (an id presented by someone else is unknown), the expiry and a random nonce.
//! `DELETE` ends a session by remembering its id until it would have expired anyway; that
//! list is per process (a replica that did not see the DELETE accepts the id until expiry).
//!
//! With `store.backend: redis` an ended id is also written to Redis (`mcp-ended:<digest>`,
//! expiring with the id), and every check of a session-era id asks Redis too, so a DELETE on
//! one replica is honoured on all ([`SessionKeys::verify_shared`], [`SessionKeys::end_shared`]).
//! With Redis unreachable, `on_error: allow` accepts the id as not ended (this process's own
//! list still applies) and `deny` answers 503.
//!
//! The list is bounded: at most `MAX_ENDED` digests, oldest first out. Every id has the same
//! lifetime, so the oldest ended is also the first to expire, and dropping one early only
//! lets the principal it is bound to (who ended it) use it again, never anyone else.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::OnStoreError;
use crate::request::Principal;
use crate::store::RedisStore;

type HmacSha256 = Hmac<Sha256>;

/// Ended sessions remembered at most (24 bytes each in the map, as many in the queue).
const MAX_ENDED: usize = 100_000;

/// An ended id, remembered by digest: ids are long, the digest is 16 bytes.
type EndedDigest = [u8; 16];

fn ended_digest(id: &str) -> EndedDigest {
    let digest = Sha256::digest(id.as_bytes());
    let mut short = [0; 16];
    short.copy_from_slice(&digest[..16]);
    short
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    /// Principal digest (hex, 16 bytes).
    p: String,
    /// Expiry, Unix seconds.
    e: u64,
    /// Negotiated protocol version.
    v: String,
    /// Random nonce.
    n: String,
}

/// Why a presented id was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Malformed, forged, expired, ended, or issued to someone else: all look the same (404).
    Unknown,
    /// The shared store did not answer and `store.redis.on_error` is `deny` (503).
    StoreUnavailable,
}

/// Issues and checks session ids.
pub struct SessionKeys {
    key: Vec<u8>,
    ttl: Duration,
    /// Ended ids and when they expire anyway, for the lookup on every request.
    ended: DashMap<EndedDigest, u64>,
    /// The same entries in the order they ended (= the order they expire), so a DELETE drops
    /// the expired or oldest in O(1) instead of scanning the map.
    ended_order: Mutex<VecDeque<(EndedDigest, u64)>>,
    max_ended: usize,
    /// Where ended ids are shared with the other replicas (`store.backend: redis`).
    shared: Option<Arc<RedisStore>>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

fn principal_digest(principal: Option<&Principal>) -> String {
    let identity = principal.map_or_else(|| "anonymous".to_string(), Principal::owner_key);
    Sha256::digest(identity.as_bytes())[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

impl SessionKeys {
    /// With no configured key a random one is generated: ids then work only on this process.
    pub fn new(key: Option<&str>, ttl: Duration) -> Self {
        let key = key.map_or_else(|| rand::random::<[u8; 32]>().to_vec(), |key| key.as_bytes().to_vec());
        Self {
            key,
            ttl,
            ended: DashMap::new(),
            ended_order: Mutex::new(VecDeque::new()),
            max_ended: MAX_ENDED,
            shared: None,
        }
    }

    /// Shares ended ids through `store` (when there is one).
    pub fn with_store(mut self, store: Option<Arc<RedisStore>>) -> Self {
        self.shared = store;
        self
    }

    /// The Redis key of an ended id (a digest, never the id).
    fn shared_key(id: &str) -> String {
        let digest: String = ended_digest(id).iter().map(|byte| format!("{byte:02x}")).collect();
        format!("mcp-ended:{digest}")
    }

    /// [`Self::verify`], and not ended on another replica.
    pub async fn verify_shared(&self, id: &str, principal: Option<&Principal>) -> Result<String, SessionError> {
        let version = self.verify(id, principal)?;
        let Some(store) = &self.shared else { return Ok(version) };
        let key = store.key(&Self::shared_key(id));
        let ended = store
            .run("revocation", move |mut connection| async move {
                ::redis::cmd("EXISTS").arg(key).query_async::<bool>(&mut connection).await
            })
            .await;
        match ended {
            Ok(false) => Ok(version),
            Ok(true) => Err(SessionError::Unknown),
            Err(_) if store.on_error == OnStoreError::Allow => Ok(version),
            Err(_) => Err(SessionError::StoreUnavailable),
        }
    }

    /// [`Self::end`], told to every replica through the store.
    pub async fn end_shared(&self, id: &str, principal: Option<&Principal>) -> Result<(), SessionError> {
        self.verify_shared(id, principal).await?;
        self.end(id, principal)?;
        let Some(store) = &self.shared else { return Ok(()) };
        let key = store.key(&Self::shared_key(id));
        let expires_in = self.expiry(id).saturating_sub(now()).max(1);
        let written = store
            .run("revocation", move |mut connection| async move {
                ::redis::cmd("SET").arg(key).arg(1).arg("EX").arg(expires_in).query_async::<()>(&mut connection).await
            })
            .await;
        match written {
            Ok(()) => Ok(()),
            // Ended here in any case; the other replicas learn it only from a working store.
            Err(_) if store.on_error == OnStoreError::Allow => Ok(()),
            Err(_) => Err(SessionError::StoreUnavailable),
        }
    }

    /// When a well-formed id expires (Unix seconds), 0 when it cannot be read.
    fn expiry(&self, id: &str) -> u64 {
        id.split_once('.')
            .and_then(|(payload, _)| URL_SAFE_NO_PAD.decode(payload).ok())
            .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok())
            .map_or(0, |claims| claims.e)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(payload);
        mac
    }

    pub fn issue(&self, principal: Option<&Principal>, version: &str) -> String {
        let claims = Claims {
            p: principal_digest(principal),
            e: now() + self.ttl.as_secs(),
            v: version.to_string(),
            n: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>()),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Checks an id and returns the protocol version it was negotiated with.
    pub fn verify(&self, id: &str, principal: Option<&Principal>) -> Result<String, SessionError> {
        let (payload, signature) = id.split_once('.').ok_or(SessionError::Unknown)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| SessionError::Unknown)?;
        self.mac(payload.as_bytes()).verify_slice(&signature).map_err(|_| SessionError::Unknown)?;
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| SessionError::Unknown)?)
                .map_err(|_| SessionError::Unknown)?;
        if claims.e <= now() || claims.p != principal_digest(principal) || self.has_ended(id) {
            return Err(SessionError::Unknown);
        }
        Ok(claims.v)
    }

    fn has_ended(&self, id: &str) -> bool {
        !self.ended.is_empty() && self.ended.contains_key(&ended_digest(id))
    }

    /// Ends a valid session (DELETE); `Err` for an id that was not valid.
    pub fn end(&self, id: &str, principal: Option<&Principal>) -> Result<(), SessionError> {
        self.verify(id, principal)?;
        let now = now();
        let digest = ended_digest(id);
        let mut order = self.ended_order.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(&(oldest, expires)) = order.front() {
            if expires > now && order.len() < self.max_ended {
                break;
            }
            order.pop_front();
            self.ended.remove(&oldest);
        }
        order.push_back((digest, now + self.ttl.as_secs()));
        self.ended.insert(digest, now + self.ttl.as_secs());
        Ok(())
    }

    /// Ended ids remembered now.
    #[cfg(test)]
    fn ended_len(&self) -> usize {
        self.ended.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::AuthMethod;

    fn principal(subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            method: AuthMethod::Jwt,
            scopes: Vec::new(),
            token_id: "t".into(),
            forwardable_jwt: None,
            dpop_jkt: None,
        }
    }

    #[test]
    fn ids_verify_for_their_principal_only() {
        let keys = SessionKeys::new(Some("a-shared-key-of-at-least-32-bytes!!"), Duration::from_secs(60));
        let alice = principal("alice");
        let id = keys.issue(Some(&alice), "2025-11-25");
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)), "visible ASCII");
        assert_eq!(keys.verify(&id, Some(&alice)), Ok("2025-11-25".to_string()));
        assert_eq!(keys.verify(&id, Some(&principal("mallory"))), Err(SessionError::Unknown));
        assert_eq!(keys.verify(&id, None), Err(SessionError::Unknown));
    }

    #[test]
    fn another_replica_with_the_same_key_accepts_and_others_do_not() {
        let key = "a-shared-key-of-at-least-32-bytes!!";
        let id = SessionKeys::new(Some(key), Duration::from_secs(60)).issue(None, "2025-06-18");
        assert!(SessionKeys::new(Some(key), Duration::from_secs(60)).verify(&id, None).is_ok());
        assert!(SessionKeys::new(None, Duration::from_secs(60)).verify(&id, None).is_err());
    }

    #[test]
    fn forged_expired_and_ended_ids_are_unknown() {
        let keys = SessionKeys::new(None, Duration::from_secs(60));
        let id = keys.issue(None, "2025-11-25");
        let (payload, signature) = id.split_once('.').expect("two parts");
        let forged = format!("{}x.{signature}", payload);
        assert!(keys.verify(&forged, None).is_err());
        assert!(keys.verify("garbage", None).is_err());
        let expired = SessionKeys::new(None, Duration::ZERO);
        let expired = SessionKeys { key: keys.key.clone(), ..expired }.issue(None, "2025-11-25");
        assert!(keys.verify(&expired, None).is_err());
        assert!(keys.end(&id, None).is_ok());
        assert!(keys.verify(&id, None).is_err(), "ended");
        assert!(keys.end(&id, None).is_err(), "ending twice is unknown");
    }

    #[test]
    fn the_ended_list_is_bounded_and_drops_the_oldest_first() {
        const MAX: usize = 100;
        let keys = SessionKeys { max_ended: MAX, ..SessionKeys::new(None, Duration::from_secs(600)) };
        let ids: Vec<String> = (0..MAX + 10).map(|_| keys.issue(None, "2025-11-25")).collect();
        for id in &ids {
            keys.end(id, None).expect("valid");
        }
        assert_eq!(keys.ended_len(), MAX, "bounded");
        assert!(keys.verify(&ids[0], None).is_ok(), "the oldest was dropped (usable again by its owner only)");
        assert!(keys.verify(&ids[MAX + 9], None).is_err(), "the newest is still ended");
        assert!(keys.verify(&ids[10], None).is_err());
    }
}
