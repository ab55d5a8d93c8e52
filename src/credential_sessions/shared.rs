//! Credential sessions in Redis (`store.backend: redis`), so `/init` on one replica and the
//! tool call on another use the same session.
//!
//! A session is a hash at `cs:<SHA-256 of the id>`: `v`, the API URL, token, subject and
//! owner sealed with AES-256-GCM (`store::sealed`, the key name as associated data); `o`, a
//! digest of the owner; `s`, a digest of the subject (API + `sub`, or the token without one);
//! `c`, when it was created (Redis' clock). Its TTL is the smaller of what is left of `ttl`
//! and `idle_timeout`, refreshed on use. Two sorted sets by last use, `cs-all` and
//! `cs-subject:<digest>`, bound `max_sessions` and `max_sessions_per_subject` (the least
//! recently used go). Nothing under the prefix holds a token, id, owner or subject in clear.
//!
//! Use, insert and remove are Lua scripts, atomic in Redis: a use checks the owner digest
//! before it refreshes anything (so probing cannot keep a session alive), and an insert
//! replaces a session only if it is still the one the edge checked the owner and subject of
//! (compare and set), so two replicas racing on one id cannot hijack it. Validation itself is
//! single-flight per replica, not across replicas: two replicas may both ask the API about
//! the same `/init` at once, which costs the API one more check and changes nothing else.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::store::{CredentialSession, EndReason, NewSession, SessionExists};
use crate::config::{OnStoreError, Sessions};
use crate::store::StoreUnavailable;
use crate::store::redis::{RedisStore, StoreError, StoreScript};
use crate::store::sealed::Sealer;

/// A use: the owner checked, the TTL and the last-use scores refreshed, the sealed value
/// returned (nil for a missing, foreign or expired session).
static USE: LazyLock<StoreScript> = LazyLock::new(|| {
    StoreScript::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'v', 'o', 's', 'c')
if not fields[1] then return false end
if fields[2] ~= '' and fields[2] ~= ARGV[1] then return false end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local subjects = ARGV[4] .. 'cs-subject:' .. fields[3]
local left = tonumber(fields[4]) + tonumber(ARGV[2]) - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('ZREM', subjects, ARGV[5])
  return false
end
local idle = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(math.min(left, idle) / 1000))
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZADD', subjects, now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], math.ceil(idle / 1000))
redis.call('PEXPIRE', subjects, math.ceil(idle / 1000))
return fields[1]
",
    )
});

/// An insert: only over the value the edge checked (`ARGV[1]`, empty for none; else nil),
/// then the per-subject and total bounds, least recently used first. Answers the digests of
/// the live sessions it evicted.
static INSERT: LazyLock<StoreScript> = LazyLock::new(|| {
    StoreScript::new(
        r"
local current = redis.call('HGET', KEYS[1], 'v') or ''
if current ~= ARGV[1] then return false end
local old_subject = redis.call('HGET', KEYS[1], 's')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local idle = tonumber(ARGV[6])
local prefix = ARGV[9]
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'o', ARGV[3], 's', ARGV[4], 'c', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(math.min(tonumber(ARGV[5]), idle) / 1000))
if old_subject and old_subject ~= ARGV[4] then
  redis.call('ZREM', prefix .. 'cs-subject:' .. old_subject, ARGV[10])
end
local evicted = {}
local function evict(member)
  local key = prefix .. 'cs:' .. member
  local subject = redis.call('HGET', key, 's')
  if redis.call('DEL', key) == 1 then table.insert(evicted, member) end
  redis.call('ZREM', KEYS[2], member)
  if subject then redis.call('ZREM', prefix .. 'cs-subject:' .. subject, member) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - idle)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - idle)
redis.call('ZADD', KEYS[2], now, ARGV[10])
redis.call('ZADD', KEYS[3], now, ARGV[10])
while redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[8]) do
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  redis.call('ZREM', KEYS[3], oldest)
  evict(oldest)
end
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[7]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  redis.call('ZREM', KEYS[2], oldest)
  evict(oldest)
end
redis.call('PEXPIRE', KEYS[2], math.ceil(idle / 1000))
redis.call('PEXPIRE', KEYS[3], math.ceil(idle / 1000))
return evicted
",
    )
});

/// A removal by its owner (1), or nothing (0).
static REMOVE: LazyLock<StoreScript> = LazyLock::new(|| {
    StoreScript::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'o', 's')
if not fields[1] then return 0 end
if fields[1] ~= '' and fields[1] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', ARGV[2] .. 'cs-subject:' .. fields[2], ARGV[3])
return 1
",
    )
});

const ALL: &str = "cs-all";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The digest a session id is stored under.
fn id_key(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// The owner as stored (`""` for none) and as a caller presents it (`"-"` for none, which
/// matches no stored digest).
fn owner_digest(owner: Option<&str>, none: &str) -> String {
    owner.map_or_else(|| none.to_string(), |owner| hex(&Sha256::digest(format!("owner\0{owner}").as_bytes())))
}

/// The subject a session counts against: the API and its `sub`, or the token without one
/// (what `CredentialSession::same_subject` compares).
fn subject_digest(api_url: &url::Url, subject: Option<&str>, token: &str) -> String {
    let who = match subject {
        Some(subject) => format!("sub\0{subject}"),
        None => format!("token\0{}", hex(&Sha256::digest(token.as_bytes()))),
    };
    hex(&Sha256::digest(format!("{}\0{who}", api_url.as_str()).as_bytes()))
}

/// The sealed part of a session.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedSession {
    api_url: String,
    token: String,
    subject: Option<String>,
    owner: Option<String>,
}

/// The credential sessions of every replica, in Redis.
#[derive(Debug)]
pub struct SharedSessions {
    redis: Arc<RedisStore>,
    sealer: Sealer,
    ttl: Duration,
    idle_timeout: Duration,
    max_sessions: usize,
    max_per_subject: usize,
    /// Audits sessions the bounds evicted (expiry in Redis is silent: a key just goes).
    on_end: fn(&str, EndReason),
}

impl SharedSessions {
    pub fn new(config: &Sessions, redis: Arc<RedisStore>, on_end: fn(&str, EndReason)) -> Result<Self, String> {
        let key =
            config.encryption_key.as_ref().ok_or("sessions.encryption_key is required with store.backend redis")?;
        Ok(Self {
            redis,
            sealer: Sealer::new(key)?,
            ttl: config.ttl,
            idle_timeout: config.idle_timeout,
            max_sessions: config.max_sessions,
            max_per_subject: config.max_sessions_per_subject,
            on_end,
        })
    }

    /// A failed read: a miss with `on_error: allow`, a refusal with `deny`.
    fn miss<T>(&self, value: T) -> Result<T, StoreUnavailable> {
        match self.redis.on_error {
            OnStoreError::Allow => Ok(value),
            OnStoreError::Deny => Err(StoreUnavailable),
        }
    }

    fn open(&self, key: &str, sealed: &[u8]) -> Option<CredentialSession> {
        let Some(plain) = self.sealer.open(key.as_bytes(), sealed) else {
            // Sealed under another key (a rotated sessions.encryption_key) or tampered with.
            tracing::debug!("A stored credential session does not open with sessions.encryption_key");
            return None;
        };
        let session: SealedSession = serde_json::from_slice(&plain).ok()?;
        let api_url = url::Url::parse(&session.api_url).ok()?;
        Some(CredentialSession::restored(api_url, session.token, session.subject, session.owner))
    }

    /// The live session and its sealed value as stored, without marking it used.
    async fn read(&self, id: &str) -> Result<Option<(Vec<u8>, CredentialSession)>, StoreError> {
        let key = format!("cs:{}", id_key(id));
        let full_key = self.redis.key(&key);
        let sealed: Option<Vec<u8>> = self
            .redis
            .run("session_get", move |mut connection| async move {
                ::redis::cmd("HGET").arg(full_key).arg("v").query_async(&mut connection).await
            })
            .await?;
        Ok(sealed.and_then(|sealed| self.open(&key, &sealed).map(|session| (sealed, session))))
    }

    pub async fn peek(&self, id: &str) -> Result<Option<CredentialSession>, StoreUnavailable> {
        match self.read(id).await {
            Ok(found) => Ok(found.map(|(_, session)| session)),
            Err(_) => self.miss(None),
        }
    }

    pub async fn use_session(
        &self,
        id: &str,
        caller: Option<&str>,
    ) -> Result<Option<CredentialSession>, StoreUnavailable> {
        let digest = id_key(id);
        let key = format!("cs:{digest}");
        let args = vec![
            owner_digest(caller, "-").into_bytes(),
            (self.ttl.as_micros() as u64).to_string().into_bytes(),
            (self.idle_timeout.as_micros() as u64).to_string().into_bytes(),
            self.redis.key("").into_bytes(),
            digest.into_bytes(),
        ];
        match self.redis.eval::<Option<Vec<u8>>>("session_get", &USE, &[key.clone(), ALL.to_string()], args).await {
            Ok(sealed) => Ok(sealed.and_then(|sealed| self.open(&key, &sealed))),
            Err(_) => self.miss(None),
        }
    }

    /// Stores a validated session unless a live one of another owner or subject holds the id.
    pub async fn insert(&self, id: &str, new: NewSession<'_>) -> Result<Result<(), SessionExists>, StoreUnavailable> {
        let digest = id_key(id);
        let key = format!("cs:{digest}");
        let current = self.read(id).await.map_err(|_| StoreUnavailable)?;
        let candidate = CredentialSession::restored(
            new.api_url.clone(),
            new.token.to_string(),
            new.subject.clone(),
            new.owner.clone(),
        );
        if let Some((_, live)) = &current
            && !live.may_be_replaced_by(&candidate)
        {
            return Ok(Err(SessionExists));
        }
        let plain = serde_json::to_vec(&SealedSession {
            api_url: new.api_url.to_string(),
            token: new.token.to_string(),
            subject: new.subject.clone(),
            owner: new.owner.clone(),
        })
        .map_err(|_| StoreUnavailable)?;
        let sealed = self.sealer.seal(key.as_bytes(), &plain).map_err(|_| StoreUnavailable)?;
        let subject = subject_digest(&new.api_url, new.subject.as_deref(), new.token);
        let args = vec![
            current.map(|(sealed, _)| sealed).unwrap_or_default(),
            sealed,
            owner_digest(new.owner.as_deref(), "").into_bytes(),
            subject.clone().into_bytes(),
            (self.ttl.as_micros() as u64).to_string().into_bytes(),
            (self.idle_timeout.as_micros() as u64).to_string().into_bytes(),
            self.max_sessions.to_string().into_bytes(),
            self.max_per_subject.to_string().into_bytes(),
            self.redis.key("").into_bytes(),
            digest.into_bytes(),
        ];
        let keys = [key, ALL.to_string(), format!("cs-subject:{subject}")];
        match self.redis.eval::<Option<Vec<String>>>("session_put", &INSERT, &keys, args).await {
            // Changed between the check and the write (another replica): as if it existed.
            Ok(None) => Ok(Err(SessionExists)),
            Ok(Some(evicted)) => {
                for digest in evicted {
                    // The first 8 hex digits of the id's SHA-256: the same name the logs use.
                    (self.on_end)(digest.get(..8).unwrap_or_default(), EndReason::Evicted);
                }
                Ok(Ok(()))
            }
            Err(_) => Err(StoreUnavailable),
        }
    }

    pub async fn remove(&self, id: &str, caller: Option<&str>) -> Result<bool, StoreUnavailable> {
        let digest = id_key(id);
        let args =
            vec![owner_digest(caller, "-").into_bytes(), self.redis.key("").into_bytes(), digest.clone().into_bytes()];
        match self.redis.eval::<i64>("session_delete", &REMOVE, &[format!("cs:{digest}"), ALL.to_string()], args).await
        {
            Ok(removed) => Ok(removed == 1),
            Err(_) => self.miss(false),
        }
    }
}
