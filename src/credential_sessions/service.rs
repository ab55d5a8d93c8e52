//! [`SessionService`]: the credential-session feature of one policy — the store, the
//! allow-list, the client that asks the API's validate endpoint, and one validation per
//! session id at a time.

use std::sync::Arc;

use dashmap::DashMap;

use super::allow_list::AllowList;
use super::shared::SharedSessions;
use super::store::{CredentialSession, EndReason, NewSession, SessionExists, SessionStore};
use crate::config::Sessions;
use crate::store::{RedisStore, StoreUnavailable};
use crate::telemetry::audit::{self, AuditEvent, action};
use crate::upstream::credentials::bearer_authorization;

pub struct SessionService {
    /// The sessions of this process (`store.backend: memory`).
    pub store: Arc<SessionStore>,
    /// The sessions of every replica (`store.backend: redis`); `store` is then unused.
    shared: Option<SharedSessions>,
    allow_list: AllowList,
    pub(super) allow_short_ids: bool,
    validate_path: String,
    client: reqwest::Client,
    /// One validation per session id at a time.
    pub(super) in_flight: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for SessionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").field("sessions", &self.store.len()).finish_non_exhaustive()
    }
}

/// Audits sessions that end outside a request (expiry, eviction).
fn audit_end(id_digest: &str, reason: EndReason) {
    let mut event = AuditEvent::new(action::SESSION_END, "success");
    event.session_id = Some(id_digest.into());
    event.reason = Some(reason.as_str().into());
    audit::emit(event);
}

/// What the API's validate endpoint said.
pub(super) enum Validation {
    Accepted,
    Rejected,
    Failed,
}

impl SessionService {
    pub fn new(sessions: &Sessions, redis: Option<Arc<RedisStore>>) -> Result<Self, String> {
        if sessions.allow_short_ids {
            tracing::warn!(
                "sessions.allow_short_ids is on: clients may choose guessable session ids, and a session id is a credential"
            );
        }
        let client = reqwest::Client::builder()
            .timeout(sessions.validate_timeout)
            .connect_timeout(sessions.validate_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the session validation client: {error}"))?;
        Ok(Self {
            store: SessionStore::new(
                sessions.max_sessions,
                sessions.max_sessions_per_subject,
                sessions.ttl,
                sessions.idle_timeout,
                audit_end,
            ),
            shared: redis.map(|redis| SharedSessions::new(sessions, redis, audit_end)).transpose()?,
            allow_list: AllowList::new(&sessions.allowed_api_urls),
            allow_short_ids: sessions.allow_short_ids,
            validate_path: sessions.validate_path.clone(),
            client,
            in_flight: DashMap::new(),
        })
    }

    /// The live session `id`, not marked used (for `/init` and DELETE decisions).
    pub async fn peek(&self, id: &str) -> Result<Option<CredentialSession>, StoreUnavailable> {
        match &self.shared {
            Some(shared) => shared.peek(id).await,
            None => Ok(self.store.peek(id)),
        }
    }

    /// Whether `id` is live with exactly these credentials (and owner).
    pub async fn matches(
        &self,
        id: &str,
        api_url: &url::Url,
        token: &str,
        owner: Option<&str>,
    ) -> Result<bool, StoreUnavailable> {
        Ok(self.peek(id).await?.is_some_and(|session| session.same_credentials(api_url, token, owner)))
    }

    /// The live session `id` for a tool call by `caller`, marked used.
    pub async fn use_session(
        &self,
        id: &str,
        caller: Option<&str>,
    ) -> Result<Option<CredentialSession>, StoreUnavailable> {
        match &self.shared {
            Some(shared) => shared.use_session(id, caller).await,
            None => Ok(self.store.use_session(id, caller)),
        }
    }

    /// Stores a validated session (see [`SessionStore::insert`]).
    pub async fn insert(&self, id: &str, new: NewSession<'_>) -> Result<Result<(), SessionExists>, StoreUnavailable> {
        match &self.shared {
            Some(shared) => shared.insert(id, new).await,
            None => Ok(self.store.insert(id, new)),
        }
    }

    /// Ends `id` if `caller` owns it.
    pub async fn remove(&self, id: &str, caller: Option<&str>) -> Result<bool, StoreUnavailable> {
        match &self.shared {
            Some(shared) => shared.remove(id, caller).await,
            None => Ok(self.store.remove(id, caller)),
        }
    }

    /// The allow-list entry `api_url` spells, or `None`.
    pub(super) fn allowed(&self, api_url: &str) -> Option<url::Url> {
        self.allow_list.find(api_url).cloned()
    }

    /// Asks `api_url`'s validate endpoint whether it accepts `token`.
    pub(super) async fn validate(&self, api_url: &url::Url, token: &str) -> Validation {
        let target = format!("{}{}", api_url.as_str().trim_end_matches('/'), self.validate_path);
        let Ok(authorization) = bearer_authorization(token) else {
            return Validation::Rejected;
        };
        match self.client.post(target).header(http::header::AUTHORIZATION, authorization).send().await {
            Ok(response) if response.status().is_success() => Validation::Accepted,
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => Validation::Rejected,
            Ok(response) => {
                tracing::warn!(status = response.status().as_u16(), "Session validation answered an error");
                Validation::Failed
            }
            Err(error) => {
                tracing::warn!(timeout = error.is_timeout(), connect = error.is_connect(), url.path = %self.validate_path, "Session validation failed");
                Validation::Failed
            }
        }
    }
}
