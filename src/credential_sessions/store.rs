//! The credential-session store: in memory only (a token is never written anywhere), at most
//! `max_sessions` entries with the least recently used evicted, each expiring `ttl` after it
//! was created or `idle_timeout` after it was last used. One subject holds at most
//! `max_sessions_per_subject` of them: past it, that subject's own least recently used goes.
//! Without that cap, anyone with one token the API accepts could mint sessions until the
//! store is full and push every other user's session out.
//!
//! A session id is a credential (whoever presents it uses the stored token), so ids are
//! logged only as the first 8 hex digits of their SHA-256, like bearer tokens.
//!
//! A session belongs to whoever created it: the edge principal (with
//! `sessions.auth: edge`) and the API subject of its token. The store enforces that in one
//! place, under its lock: [`SessionStore::insert`] never replaces another owner's or subject's
//! session, [`SessionStore::use_session`] hands a session only to its owner, and only that
//! marks it used; looking at a session for `/init` or DELETE ([`SessionStore::peek`]) does not,
//! so probing cannot keep a session alive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::Redacted;

/// One validated session. `Debug` never shows the token.
#[derive(Clone)]
pub struct CredentialSession {
    /// The allow-list entry the session's API matched (normalised), never the caller's spelling.
    pub api_url: url::Url,
    pub token: Redacted,
    token_digest: [u8; 32],
    /// The `sub` of the token, read after the API accepted it; `None` binds the session to
    /// the token itself.
    subject: Option<String>,
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

impl CredentialSession {
    /// A session read back from a shared store, which keeps its times itself.
    pub(super) fn restored(api_url: url::Url, token: String, subject: Option<String>, owner: Option<String>) -> Self {
        let now = Instant::now();
        let token_digest = token_digest(&token);
        Self { api_url, token: Redacted(token), token_digest, subject, owner, created: now, last_used: now }
    }

    /// Exactly these credentials (and owner): a repeated `/init`.
    pub fn same_credentials(&self, api_url: &url::Url, token: &str, owner: Option<&str>) -> bool {
        self.api_url == *api_url && self.token_digest == token_digest(token) && self.owner.as_deref() == owner
    }

    /// Whether `new` may replace this session: the same owner, the same API and the same
    /// subject (a refreshed token), or, for a token without `sub`, the same token. A subject
    /// is the API's, so the same `sub` at another allowed API is somebody else.
    pub(super) fn may_be_replaced_by(&self, new: &CredentialSession) -> bool {
        self.owner == new.owner && self.same_subject(new)
    }

    /// Whether both sessions speak for the same API account: the same API and `sub`, or,
    /// without a `sub`, the same token.
    fn same_subject(&self, other: &CredentialSession) -> bool {
        self.api_url == other.api_url
            && match (&self.subject, &other.subject) {
                (Some(mine), Some(theirs)) => mine == theirs,
                (None, None) => self.token_digest == other.token_digest,
                _ => false,
            }
    }

    /// Whether `caller` (an owner string, see [`super::owner_of`]) may use or end it. Without
    /// an owner (`sessions.auth: none`) the id alone is the credential.
    fn owned_by(&self, caller: Option<&str>) -> bool {
        self.owner.is_none() || self.owner.as_deref() == caller
    }
}

/// A session to store: the credentials the API accepted and who presented them.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub api_url: url::Url,
    pub token: &'a str,
    pub subject: Option<String>,
    pub owner: Option<String>,
}

/// `insert` refused: a live session with this id belongs to another owner or subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExists;

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
    max_per_subject: usize,
    ttl: Duration,
    idle_timeout: Duration,
    /// Called with (id digest, reason) whenever a session ends.
    on_end: fn(&str, EndReason),
}

impl SessionStore {
    pub fn new(
        max_sessions: usize,
        max_per_subject: usize,
        ttl: Duration,
        idle_timeout: Duration,
        on_end: fn(&str, EndReason),
    ) -> Arc<Self> {
        Arc::new(Self {
            sessions: Mutex::new(HashMap::new()),
            max_sessions: max_sessions.max(1),
            max_per_subject: max_per_subject.max(1),
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

    /// The live session `id` under the lock, or `None`; an expired one is removed (and
    /// reported to `on_end` once the lock is released).
    fn live<'a>(
        &self,
        sessions: &'a mut HashMap<String, CredentialSession>,
        id: &str,
        now: Instant,
        ended: &mut Option<String>,
    ) -> Option<&'a mut CredentialSession> {
        if sessions.get(id).is_some_and(|session| self.expired(session, now)) {
            sessions.remove(id);
            *ended = Some(id_digest(id));
            return None;
        }
        sessions.get_mut(id)
    }

    fn report_expired(&self, ended: Option<String>) {
        if let Some(digest) = ended {
            (self.on_end)(&digest, EndReason::Expired);
        }
    }

    /// The live session `id`, without marking it used (for `/init` and DELETE decisions).
    pub fn peek(&self, id: &str) -> Option<CredentialSession> {
        let mut ended = None;
        let session = self.live(&mut self.lock(), id, Instant::now(), &mut ended).map(|session| session.clone());
        self.report_expired(ended);
        session
    }

    /// The live session `id` for a tool call by `caller`, marked as used; `None` when there
    /// is none or it belongs to another principal (which leaves it untouched).
    pub fn use_session(&self, id: &str, caller: Option<&str>) -> Option<CredentialSession> {
        let now = Instant::now();
        let mut ended = None;
        let session = {
            let mut sessions = self.lock();
            self.live(&mut sessions, id, now, &mut ended).filter(|session| session.owned_by(caller)).map(|session| {
                session.last_used = now;
                session.clone()
            })
        };
        self.report_expired(ended);
        session
    }

    /// Whether `id` is live with exactly these credentials (and owner). Does not mark it used.
    pub fn matches(&self, id: &str, api_url: &url::Url, token: &str, owner: Option<&str>) -> bool {
        self.peek(id).is_some_and(|session| session.same_credentials(api_url, token, owner))
    }

    /// Stores a validated session, evicting the least recently used when full. A live
    /// session with this id is replaced only by its own owner with a token of the same
    /// subject (see [`CredentialSession::may_be_replaced_by`]); otherwise it stays as it was.
    pub fn insert(&self, id: &str, new: NewSession<'_>) -> Result<(), SessionExists> {
        let now = Instant::now();
        let session = CredentialSession {
            api_url: new.api_url,
            token: Redacted(new.token.to_string()),
            token_digest: token_digest(new.token),
            subject: new.subject,
            owner: new.owner,
            created: now,
            last_used: now,
        };
        let mut ended = Vec::new();
        let mut expired = None;
        let outcome = {
            let mut sessions = self.lock();
            match self.live(&mut sessions, id, now, &mut expired) {
                Some(live) if !live.may_be_replaced_by(&session) => Err(SessionExists),
                Some(live) => {
                    *live = session;
                    Ok(())
                }
                None => {
                    self.make_room_for_subject(&mut sessions, &session, &mut ended);
                    if sessions.len() >= self.max_sessions {
                        self.make_room(&mut sessions, now, &mut ended);
                    }
                    sessions.insert(id.to_string(), session);
                    Ok(())
                }
            }
        };
        self.report_expired(expired);
        for (digest, reason) in ended {
            (self.on_end)(&digest, reason);
        }
        outcome
    }

    /// Evicts the least recently used session of `new`'s subject while it holds
    /// `max_per_subject` (a scan: inserts follow an API validation, so they are rare).
    fn make_room_for_subject(
        &self,
        sessions: &mut HashMap<String, CredentialSession>,
        new: &CredentialSession,
        ended: &mut Vec<(String, EndReason)>,
    ) {
        let mut same: Vec<(&String, Instant)> = sessions
            .iter()
            .filter(|(_, session)| session.same_subject(new))
            .map(|(id, session)| (id, session.last_used))
            .collect();
        if same.len() < self.max_per_subject {
            return;
        }
        same.sort_unstable_by_key(|(_, last_used)| *last_used);
        let evicted: Vec<String> =
            same.iter().take(same.len() + 1 - self.max_per_subject).map(|(id, _)| (*id).clone()).collect();
        for id in evicted {
            sessions.remove(&id);
            ended.push((id_digest(&id), EndReason::Evicted));
        }
    }

    /// Drops the expired sessions, then the least recently used if still full.
    fn make_room(
        &self,
        sessions: &mut HashMap<String, CredentialSession>,
        now: Instant,
        ended: &mut Vec<(String, EndReason)>,
    ) {
        sessions.retain(|id, session| {
            let keep = !self.expired(session, now);
            if !keep {
                ended.push((id_digest(id), EndReason::Expired));
            }
            keep
        });
        if sessions.len() >= self.max_sessions
            && let Some(oldest) = sessions.iter().min_by_key(|(_, session)| session.last_used).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
            ended.push((id_digest(&oldest), EndReason::Evicted));
        }
    }

    /// Ends the live session `id` if `caller` owns it (the caller audits it); `false` when
    /// there was none or it is another principal's.
    pub fn remove(&self, id: &str, caller: Option<&str>) -> bool {
        let mut ended = None;
        let removed = {
            let mut sessions = self.lock();
            let owned = self
                .live(&mut sessions, id, Instant::now(), &mut ended)
                .is_some_and(|session| session.owned_by(caller));
            owned && sessions.remove(id).is_some()
        };
        self.report_expired(ended);
        removed
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

    fn new<'a>(token: &'a str, subject: Option<&str>, owner: Option<&str>) -> NewSession<'a> {
        NewSession { api_url: url(), token, subject: subject.map(str::to_string), owner: owner.map(str::to_string) }
    }

    fn store(max_sessions: usize) -> Arc<SessionStore> {
        SessionStore::new(max_sessions, max_sessions, Duration::from_secs(60), Duration::from_secs(60), ignore)
    }

    #[test]
    fn sessions_match_only_their_own_credentials() {
        let store = store(10);
        store.insert("s1", new("a.b.c", None, None)).expect("insert");
        assert!(store.matches("s1", &url(), "a.b.c", None));
        assert!(!store.matches("s1", &url(), "a.b.d", None), "another token is not the same session");
        assert!(!store.matches("s1", &url::Url::parse("http://127.0.0.1:5001/api").expect("url"), "a.b.c", None));
        assert!(!store.matches("s1", &url(), "a.b.c", Some("someone")));
        assert!(!format!("{:?}", store.peek("s1").expect("session")).contains("a.b.c"));
    }

    #[test]
    fn only_the_same_owner_and_subject_replace_a_live_session() {
        let store = store(10);
        store.insert("s", new("ada.1.sig", Some("ada"), Some("bearer:alice"))).expect("first");
        let token = |store: &SessionStore| store.peek("s").expect("live").token.0;
        assert_eq!(store.insert("s", new("bob.1.sig", Some("bob"), Some("bearer:alice"))), Err(SessionExists));
        assert_eq!(store.insert("s", new("ada.2.sig", Some("ada"), Some("bearer:mallory"))), Err(SessionExists));
        assert_eq!(store.insert("s", new("ada.2.sig", Some("ada"), None)), Err(SessionExists));
        assert_eq!(store.insert("s", new("anon.1.sig", None, Some("bearer:alice"))), Err(SessionExists));
        let mut elsewhere = new("ada.2.sig", Some("ada"), Some("bearer:alice"));
        elsewhere.api_url = url::Url::parse("http://127.0.0.1:5001/api").expect("url");
        assert_eq!(store.insert("s", elsewhere), Err(SessionExists), "a subject is the API's");
        assert_eq!(token(&store), "ada.1.sig", "refused inserts leave the session as it was");
        store.insert("s", new("ada.2.sig", Some("ada"), Some("bearer:alice"))).expect("a refreshed token");
        assert_eq!(token(&store), "ada.2.sig");

        // Without `sub`, the token itself is the subject.
        store.insert("t", new("anon.1.sig", None, None)).expect("first");
        assert_eq!(store.insert("t", new("anon.2.sig", None, None)), Err(SessionExists));
        assert_eq!(store.insert("t", new("anon.1.sig", Some("anon"), None)), Err(SessionExists));
        store.insert("t", new("anon.1.sig", None, None)).expect("the same token again");
    }

    #[test]
    fn only_the_owner_uses_or_removes_a_session_and_only_use_refreshes_it() {
        let store = SessionStore::new(10, 10, Duration::from_secs(60), Duration::from_millis(300), ignore);
        store.insert("s", new("a.b.c", Some("ada"), Some("bearer:alice"))).expect("insert");
        assert!(store.use_session("s", Some("bearer:mallory")).is_none());
        assert!(store.use_session("s", None).is_none());
        assert!(!store.remove("s", Some("bearer:mallory")) && !store.remove("s", None));
        assert!(store.use_session("s", Some("bearer:alice")).is_some());
        // Peeking, matching and foreign use do not keep it alive.
        let deadline = Instant::now() + Duration::from_millis(400);
        while Instant::now() < deadline {
            let _ = store.peek("s");
            let _ = store.matches("s", &url(), "x.y.z", None);
            let _ = store.use_session("s", Some("bearer:mallory"));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(store.use_session("s", Some("bearer:alice")).is_none(), "idle past idle_timeout");

        // Without an owner the id alone is the credential.
        store.insert("open", new("a.b.c", None, None)).expect("insert");
        assert!(store.use_session("open", Some("bearer:anyone")).is_some());
        assert!(store.remove("open", None));
        assert!(!store.remove("open", None), "gone");
    }

    #[test]
    fn the_least_recently_used_session_is_evicted_at_the_cap() {
        let store = store(2);
        store.insert("old", new("t.t.t", None, None)).expect("insert");
        std::thread::sleep(Duration::from_millis(2));
        store.insert("used", new("t.t.t", None, None)).expect("insert");
        std::thread::sleep(Duration::from_millis(2));
        assert!(store.use_session("old", None).is_some(), "using it makes it recent");
        std::thread::sleep(Duration::from_millis(2));
        store.insert("new", new("t.t.t", None, None)).expect("insert");
        assert_eq!(store.len(), 2);
        assert!(store.peek("used").is_none(), "the least recently used went");
        assert!(store.peek("old").is_some() && store.peek("new").is_some());
    }

    #[test]
    fn sessions_expire_by_ttl_and_by_idleness() {
        let store = SessionStore::new(10, 10, Duration::from_millis(30), Duration::from_secs(60), ignore);
        store.insert("s", new("t.t.t", None, None)).expect("insert");
        std::thread::sleep(Duration::from_millis(40));
        assert!(store.use_session("s", None).is_none(), "past its ttl");
        let store = SessionStore::new(10, 10, Duration::from_secs(60), Duration::from_millis(30), ignore);
        store.insert("s", new("t.t.t", None, None)).expect("insert");
        std::thread::sleep(Duration::from_millis(40));
        store.sweep();
        assert!(store.is_empty(), "idle too long");
    }

    #[test]
    fn ids_are_logged_as_digests() {
        assert_eq!(id_digest("my-session").len(), 8);
        assert!(!id_digest("my-session").contains("session"));
    }

    #[test]
    fn one_subject_cannot_push_other_subjects_sessions_out() {
        let store = SessionStore::new(10, 3, Duration::from_secs(60), Duration::from_secs(60), ignore);
        store.insert("victim", new("vic.1.sig", Some("victim"), None)).expect("victim");
        for n in 0..50 {
            store.insert(&format!("flood-{n}"), new("att.1.sig", Some("attacker"), None)).expect("attacker");
        }
        assert!(store.peek("victim").is_some(), "another subject's session survives the flood");
        assert_eq!(store.len(), 4, "the attacker holds its cap of 3, no more");
        assert!(store.peek("flood-49").is_some() && store.peek("flood-0").is_none(), "its own oldest went");
        // Tokens without `sub` count per token.
        for n in 0..5 {
            store.insert(&format!("anon-{n}"), new(&format!("anon.{n}.sig"), None, None)).expect("anon");
        }
        assert_eq!(store.len(), 9);
    }
}
