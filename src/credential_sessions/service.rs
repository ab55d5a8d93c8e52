//! [`SessionService`]: the credential-session feature of one policy — the store, the
//! allow-list, the client that asks the API's validate endpoint, and one validation per
//! session id at a time.

use std::sync::Arc;

use dashmap::DashMap;

use super::allow_list::AllowList;
use super::store::{EndReason, SessionStore};
use crate::config::Sessions;
use crate::telemetry::audit::{self, AuditEvent, action};
use crate::upstream::credentials::bearer_authorization;

pub struct SessionService {
    pub store: Arc<SessionStore>,
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
    pub fn new(sessions: &Sessions) -> Result<Self, String> {
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
            allow_list: AllowList::new(&sessions.allowed_api_urls),
            allow_short_ids: sessions.allow_short_ids,
            validate_path: sessions.validate_path.clone(),
            client,
            in_flight: DashMap::new(),
        })
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
