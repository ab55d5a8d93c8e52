//! The credential-session store: in memory only (a token is never written anywhere), at most
//! `max_sessions` entries with the least recently used evicted, each expiring `ttl` after it
//! was created or `idle_timeout` after it was last used.
//!
//! A session id is a credential (whoever presents it uses the stored token), so ids are
//! logged only as the first 8 hex digits of their SHA-256, like bearer tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::Redacted;

/// Longest session id accepted.
pub const MAX_SESSION_ID_CHARS: usize = 128;

/// One validated session. `Debug` never shows the token.
#[derive(Clone)]
pub struct CredentialSession {
    pub api_url: url::Url,
    pub token: Redacted,
    token_digest: [u8; 32],
    /// The edge principal that created it (with `sessions.auth: edge`); only it may use it.
    pub owner: Option<String>,
    created: Instant,
    last_used: Instant,
}

impl std::fmt::Debug for CredentialSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSession")
            .field("api_url", &self.api_url.as_str())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// What ended a session (for `SESSION_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Expired,
    Evicted,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Evicted => "evicted",
        }
    }
}

/// The first 8 hex digits of the SHA-256 of a session id: names it without revealing it.
pub fn id_digest(id: &str) -> String {
    Sha256::digest(id.as_bytes())[..4].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The sessions of this process.
#[derive(Debug)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, CredentialSession>>,
    max_sessions: usize,
    ttl: Duration,
    idle_timeout: Duration,
    /// Called with (id digest, reason) whenever a session ends.
    on_end: fn(&str, EndReason),
}

impl SessionStore {
    pub fn new(max_sessions: usize, ttl: Duration, idle_timeout: Duration, on_end: fn(&str, EndReason)) -> Arc<Self> {
        Arc::new(Self {
            sessions: Mutex::new(HashMap::new()),
            max_sessions: max_sessions.max(1),
            ttl,
            idle_timeout,
            on_end,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CredentialSession>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expired(&self, session: &CredentialSession, now: Instant) -> bool {
        now.duration_since(session.created) >= self.ttl || now.duration_since(session.last_used) >= self.idle_timeout
    }

    /// The live session `id`, marked as used; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<CredentialSession> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let expired = sessions.get(id).is_some_and(|session| self.expired(session, now));
        if expired {
            sessions.remove(id);
            drop(sessions);
            (self.on_end)(&id_digest(id), EndReason::Expired);
            return None;
        }
        let session = sessions.get_mut(id)?;
        session.last_used = now;
        Some(session.clone())
    }

    /// Whether `id` is live with exactly these credentials (and owner).
    pub fn matches(&self, id: &str, api_url: &url::Url, token: &str, owner: Option<&str>) -> bool {
        self.get(id).is_some_and(|session| {
            session.api_url == *api_url
                && session.token_digest == token_digest(token)
                && session.owner.as_deref() == owner
        })
    }

    /// Stores a validated session, evicting the least recently used when full.
    pub fn insert(&self, id: &str, api_url: url::Url, token: &str, owner: Option<String>) {
        let now = Instant::now();
        let session = CredentialSession {
            api_url,
            token: Redacted(token.to_string()),
            token_digest: token_digest(token),
            owner,
            created: now,
            last_used: now,
        };
        let mut ended = Vec::new();
        {
            let mut sessions = self.lock();
            if !sessions.contains_key(id) && sessions.len() >= self.max_sessions {
                sessions.retain(|id, session| {
                    let keep = !self.expired(session, now);
                    if !keep {
                        ended.push((id_digest(id), EndReason::Expired));
                    }
                    keep
                });
                if sessions.len() >= self.max_sessions
                    && let Some(oldest) =
                        sessions.iter().min_by_key(|(_, session)| session.last_used).map(|(id, _)| id.clone())
                {
                    sessions.remove(&oldest);
                    ended.push((id_digest(&oldest), EndReason::Evicted));
                }
            }
            sessions.insert(id.to_string(), session);
        }
        for (digest, reason) in ended {
            (self.on_end)(&digest, reason);
        }
    }

    /// Ends a session (the caller audits it); `false` when there was none.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Drops expired sessions (run on a timer).
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut ended = Vec::new();
        self.lock().retain(|id, session| {
            let keep = !self.expired(session, now);
            if !keep {
                ended.push(id_digest(id));
            }
            keep
        });
        for digest in ended {
            (self.on_end)(&digest, EndReason::Expired);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> url::Url {
        url::Url::parse("http://127.0.0.1:5000/api").expect("url")
    }

    fn ignore(_: &str, _: EndReason) {}

    #[test]
    fn sessions_match_only_their_own_credentials() {
        let store = SessionStore::new(10, Duration::from_secs(60), Duration::from_secs(60), ignore);
        store.insert("s1", url(), "a.b.c", None);
        assert!(store.matches("s1", &url(), "a.b.c", None));
        assert!(!store.matches("s1", &url(), "a.b.d", None), "another token is not the same session");
        assert!(!store.matches("s1", &url::Url::parse("http://127.0.0.1:5001/api").expect("url"), "a.b.c", None));
        assert!(!store.matches("s1", &url(), "a.b.c", Some("someone")));
        assert!(!format!("{:?}", store.get("s1").expect("session")).contains("a.b.c"));
    }

    #[test]
    fn the_least_recently_used_session_is_evicted_at_the_cap() {
        let store = SessionStore::new(2, Duration::from_secs(60), Duration::from_secs(60), ignore);
        store.insert("old", url(), "t.t.t", None);
        std::thread::sleep(Duration::from_millis(2));
        store.insert("used", url(), "t.t.t", None);
        std::thread::sleep(Duration::from_millis(2));
        assert!(store.get("old").is_some(), "touching it makes it recent");
        std::thread::sleep(Duration::from_millis(2));
        store.insert("new", url(), "t.t.t", None);
        assert_eq!(store.len(), 2);
        assert!(store.get("used").is_none(), "the least recently used went");
        assert!(store.get("old").is_some() && store.get("new").is_some());
    }

    #[test]
    fn sessions_expire_by_ttl_and_by_idleness() {
        let store = SessionStore::new(10, Duration::from_millis(30), Duration::from_secs(60), ignore);
        store.insert("s", url(), "t.t.t", None);
        std::thread::sleep(Duration::from_millis(40));
        assert!(store.get("s").is_none(), "past its ttl");
        let store = SessionStore::new(10, Duration::from_secs(60), Duration::from_millis(30), ignore);
        store.insert("s", url(), "t.t.t", None);
        std::thread::sleep(Duration::from_millis(40));
        store.sweep();
        assert!(store.is_empty(), "idle too long");
    }

    #[test]
    fn ids_are_logged_as_digests() {
        assert_eq!(id_digest("my-session").len(), 8);
        assert!(!id_digest("my-session").contains("session"));
    }
}
