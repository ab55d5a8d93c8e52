//! `POST /init` and `DELETE /sessions/{id}` (DESIGN.md §8), in the design's decision order:
//! missing field → 400; the same live session → 200 at once; `apiUrl` not http(s) with a host
//! or not allowed → 401; `jwtToken` not three base64url parts → 401; then the API's validate
//! endpoint decides: 2xx → stored, 200; 401/403 → 401; anything else → 500. A different token
//! for a live id is validated like a new one and replaces the old only if the API accepts it.
//! Concurrent `/init`s for one id validate once. Bodies never echo the token or the API's text.

use std::sync::Arc;

use dashmap::DashMap;
use http::HeaderValue;
use pingora::Result;
use pingora::proxy::Session;
use serde_json::{Value, json};

use super::store::{EndReason, SessionStore, id_digest};
use crate::config::Sessions;
use crate::edge::body;
use crate::edge::context::RequestContext;
use crate::edge::observe::SessionRecord;
use crate::edge::respond::{self, EdgeError};
use crate::telemetry::audit::{self, AuditEvent, action};

/// The credential-session feature of one policy.
pub struct SessionService {
    pub store: Arc<SessionStore>,
    allowed_api_urls: Vec<url::Url>,
    validate_path: String,
    client: reqwest::Client,
    /// One validation per session id at a time.
    in_flight: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
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

/// How a validation went.
enum Validation {
    Accepted,
    Rejected,
    Failed,
}

impl SessionService {
    pub fn new(sessions: &Sessions) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(sessions.validate_timeout)
            .connect_timeout(sessions.validate_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| format!("cannot build the session validation client: {error}"))?;
        Ok(Self {
            store: SessionStore::new(sessions.max_sessions, sessions.ttl, sessions.idle_timeout, audit_end),
            allowed_api_urls: sessions.allowed_api_urls.clone(),
            validate_path: sessions.validate_path.clone(),
            client,
            in_flight: DashMap::new(),
        })
    }

    /// `apiUrl` as an allowed http(s) URL with a host, or `None`.
    fn allowed(&self, api_url: &str) -> Option<url::Url> {
        let url = url::Url::parse(api_url).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return None;
        }
        let normalise = |url: &url::Url| url.as_str().trim_end_matches('/').to_string();
        self.allowed_api_urls.iter().any(|allowed| normalise(allowed) == normalise(&url)).then_some(url)
    }

    async fn validate(&self, api_url: &url::Url, token: &str) -> Validation {
        let target = format!("{}{}", api_url.as_str().trim_end_matches('/'), self.validate_path);
        let Ok(mut authorization) = HeaderValue::try_from(format!("Bearer {token}")) else {
            return Validation::Rejected;
        };
        authorization.set_sensitive(true);
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

/// Three non-empty base64url segments.
fn is_jwt_shaped(token: &str) -> bool {
    crate::edge::auth::looks_like_jwt(token.as_bytes())
}

fn string_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|value| !value.is_empty())
}

/// `POST /init`.
pub async fn init(session: &mut Session, ctx: &mut RequestContext) -> Result<()> {
    if session.req_header().method != http::Method::POST {
        return respond::write_error(session, ctx, EdgeError::MethodNotAllowed { allow: "POST" }).await;
    }
    let policy = Arc::clone(&ctx.policy);
    let Some(service) = policy.sessions_service.as_ref() else {
        return respond::write_error(session, ctx, EdgeError::NotFound).await;
    };
    let body = match body::read(session, ctx.policy.config.limits.max_body_bytes).await {
        Ok(body) => serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        Err(error) => return respond::write_error(session, ctx, error).await,
    };
    let reject = |ctx: &mut RequestContext, digest: Option<String>, reason: &'static str| {
        ctx.session_record =
            Some(SessionRecord { action: action::SESSION_REJECTED, reason: Some(reason), session: digest });
    };
    // 1. Every field present.
    let (Some(id), Some(api_url), Some(token)) =
        (string_field(&body, "session_id"), string_field(&body, "apiUrl"), string_field(&body, "jwtToken"))
    else {
        reject(ctx, None, "missing_field");
        return respond::write_error(session, ctx, EdgeError::BadRequest).await;
    };
    if id.chars().count() > super::store::MAX_SESSION_ID_CHARS
        || id.chars().any(|c| c.is_control())
        || token.len() > crate::edge::auth::MAX_AUTHORIZATION_BYTES
    {
        reject(ctx, None, "malformed_field");
        return respond::write_error(session, ctx, EdgeError::BadRequest).await;
    }
    let digest = id_digest(id);
    let owner = ctx.principal.as_ref().map(|principal| format!("{}:{}", principal.method.as_str(), principal.subject));
    let ok = json!({"status": "ok"});
    // 2. The same live session: nothing to check again.
    if let Ok(parsed) = url::Url::parse(api_url)
        && service.store.matches(id, &parsed, token, owner.as_deref())
    {
        ctx.session_record =
            Some(SessionRecord { action: action::SESSION_INIT, reason: Some("existing"), session: Some(digest) });
        return respond::write_json(session, ctx, 200, &ok, &[]).await;
    }
    // 3. Only allowed APIs: the edge never carries caller credentials anywhere else.
    let Some(api_url) = service.allowed(api_url) else {
        reject(ctx, Some(digest), "api_url_not_allowed");
        return respond::write_error(session, ctx, EdgeError::CredentialsRejected).await;
    };
    // 4. A token shaped like a JWT.
    if !is_jwt_shaped(token) {
        reject(ctx, Some(digest), "malformed_token");
        return respond::write_error(session, ctx, EdgeError::CredentialsRejected).await;
    }
    // 5. The API decides, once per id at a time.
    let lock = Arc::clone(service.in_flight.entry(id.to_string()).or_default().value());
    let guard = lock.lock().await;
    let outcome = if service.store.matches(id, &api_url, token, owner.as_deref()) {
        Validation::Accepted
    } else {
        let outcome = service.validate(&api_url, token).await;
        if let Validation::Accepted = outcome {
            service.store.insert(id, api_url, token, owner);
        }
        outcome
    };
    drop(guard);
    service.in_flight.remove_if(id, |_, lock| Arc::strong_count(lock) <= 2);
    drop(lock);
    match outcome {
        Validation::Accepted => {
            ctx.session_record =
                Some(SessionRecord { action: action::SESSION_INIT, reason: None, session: Some(digest) });
            respond::write_json(session, ctx, 200, &ok, &[]).await
        }
        Validation::Rejected => {
            reject(ctx, Some(digest), "credentials_rejected");
            respond::write_error(session, ctx, EdgeError::CredentialsRejected).await
        }
        Validation::Failed => {
            reject(ctx, Some(digest), "validation_failed");
            respond::write_error(session, ctx, EdgeError::SessionValidationFailed).await
        }
    }
}

/// `DELETE /sessions/{id}`.
pub async fn end(session: &mut Session, ctx: &mut RequestContext, id: &str) -> Result<()> {
    if session.req_header().method != http::Method::DELETE {
        return respond::write_error(session, ctx, EdgeError::MethodNotAllowed { allow: "DELETE" }).await;
    }
    let policy = Arc::clone(&ctx.policy);
    let Some(service) = policy.sessions_service.as_ref() else {
        return respond::write_error(session, ctx, EdgeError::NotFound).await;
    };
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    let owner = ctx.principal.as_ref().map(|principal| format!("{}:{}", principal.method.as_str(), principal.subject));
    let owned = service.store.get(&id).is_some_and(|stored| stored.owner == owner);
    if owned && service.store.remove(&id) {
        ctx.session_record =
            Some(SessionRecord { action: action::SESSION_END, reason: Some("deleted"), session: Some(id_digest(&id)) });
        respond::write_empty(session, ctx, 204, &[]).await
    } else {
        respond::write_error(session, ctx, EdgeError::NotFound).await
    }
}
