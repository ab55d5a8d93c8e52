//! `POST /init` and `DELETE /sessions/{id}` (DESIGN.md §8 and §16), in the design's decision
//! order: missing `apiUrl` or `jwtToken` → 400; a client-chosen `session_id` that breaks the id
//! rule → 400 naming the rule (no `session_id`: the edge mints one); the same live session
//! → 200 at once; `apiUrl` not http(s) with a host or not allowed → 401; `jwtToken` not three
//! base64url parts → 401; a live id of another principal → 409; then the API's validate
//! endpoint decides: 2xx → stored (unless the live id belongs to another subject: 409), 200;
//! 401/403 → 401; anything else → 500. Concurrent `/init`s for one id validate once. Bodies
//! never echo the token or the API's text.
//!
//! The 409 for another principal comes before validation (the edge knows the principal, and
//! the API should not be asked on behalf of someone who cannot have the id); the one for
//! another subject after it, because a `sub` means something only once the API has accepted
//! the token: an unvalidated payload could claim any subject.

use std::sync::Arc;

use base64::Engine;
use dashmap::DashMap;
use http::HeaderValue;
use pingora::Result;
use pingora::proxy::Session;
use serde_json::{Value, json};

use super::allow_list::AllowList;
use super::store::{EndReason, NewSession, SessionExists, SessionStore, id_digest};
use crate::config::Sessions;
use crate::edge::body;
use crate::edge::context::RequestContext;
use crate::edge::observe::SessionRecord;
use crate::edge::respond::{self, EdgeError};
use crate::telemetry::audit::{self, AuditEvent, action};

/// The credential-session feature of one policy.
pub struct SessionService {
    pub store: Arc<SessionStore>,
    allow_list: AllowList,
    allow_short_ids: bool,
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
    fn allowed(&self, api_url: &str) -> Option<url::Url> {
        self.allow_list.find(api_url).cloned()
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

/// The `sub` claim of a JWT-shaped token, unverified: call it only once the API has accepted
/// the token. `None` when the payload is not JSON or has no string `sub`.
fn token_subject(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub").and_then(Value::as_str).filter(|subject| !subject.is_empty()).map(str::to_string)
}

fn string_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|value| !value.is_empty())
}

/// The session id an `/init` is for.
enum RequestedId {
    /// The client named none: the edge made this one, and returns it.
    Minted(String),
    Chosen(String),
}

impl RequestedId {
    fn as_str(&self) -> &str {
        match self {
            RequestedId::Minted(id) | RequestedId::Chosen(id) => id,
        }
    }

    /// `{"status":"ok"}`, with the id when the edge made it (the client cannot know it).
    fn ok_body(&self) -> Value {
        match self {
            RequestedId::Minted(id) => json!({"status": "ok", "session_id": id}),
            RequestedId::Chosen(_) => json!({"status": "ok"}),
        }
    }
}

/// A session error whose message says more than [`EdgeError`]'s generic ones (the id rule,
/// "session exists"), in the same `{"error", "request_id"}` shape.
async fn write_session_error(
    session: &mut Session,
    ctx: &RequestContext,
    status: u16,
    message: &'static str,
) -> Result<()> {
    let body = json!({"error": message, "request_id": ctx.request_id});
    respond::write_json(session, ctx, status, &body, &[]).await
}

/// How an `/init` for an id that passed the shape checks ended.
enum Outcome {
    Accepted,
    Exists,
    Rejected,
    Failed,
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
    // 1. Every field present (`session_id` may be left out: then the edge makes one).
    let (Some(api_url), Some(token)) = (string_field(&body, "apiUrl"), string_field(&body, "jwtToken")) else {
        reject(ctx, None, "missing_field");
        return respond::write_error(session, ctx, EdgeError::BadRequest).await;
    };
    let id = match body.get("session_id") {
        None | Some(Value::Null) => RequestedId::Minted(super::id::mint()),
        Some(Value::String(id)) if super::id::acceptable(id, service.allow_short_ids) => {
            RequestedId::Chosen(id.clone())
        }
        Some(_) => {
            reject(ctx, None, "malformed_field");
            return write_session_error(session, ctx, 400, super::id::rule(service.allow_short_ids)).await;
        }
    };
    if token.len() > crate::edge::auth::MAX_AUTHORIZATION_BYTES {
        reject(ctx, None, "malformed_field");
        return respond::write_error(session, ctx, EdgeError::BadRequest).await;
    }
    let digest = id_digest(id.as_str());
    let owner = super::owner_of(ctx.principal.as_ref());
    let allowed = service.allowed(api_url);
    // 2. The same live session: nothing to check again (and nothing marked used: only tool
    //    calls are uses).
    if let Some(entry) = &allowed
        && service.store.matches(id.as_str(), entry, token, owner.as_deref())
    {
        ctx.session_record =
            Some(SessionRecord { action: action::SESSION_INIT, reason: Some("existing"), session: Some(digest) });
        return respond::write_json(session, ctx, 200, &id.ok_body(), &[]).await;
    }
    // 3. Only allowed APIs: the edge never carries caller credentials anywhere else.
    let Some(api_url) = allowed else {
        reject(ctx, Some(digest), "api_url_not_allowed");
        return respond::write_error(session, ctx, EdgeError::CredentialsRejected).await;
    };
    // 4. A token shaped like a JWT.
    if !is_jwt_shaped(token) {
        reject(ctx, Some(digest), "malformed_token");
        return respond::write_error(session, ctx, EdgeError::CredentialsRejected).await;
    }
    // 5. Another principal's live id is not asked about; else the API decides, once per id
    //    at a time, and the store keeps a live session of another subject as it is.
    let lock = Arc::clone(service.in_flight.entry(id.as_str().to_string()).or_default().value());
    let guard = lock.lock().await;
    let outcome = match service.store.peek(id.as_str()) {
        Some(live) if live.owner != owner => Outcome::Exists,
        // Validated meanwhile by a concurrent `/init` with the same credentials.
        Some(live) if live.same_credentials(&api_url, token, owner.as_deref()) => Outcome::Accepted,
        _ => match service.validate(&api_url, token).await {
            Validation::Accepted => {
                let new = NewSession { api_url, token, subject: token_subject(token), owner };
                match service.store.insert(id.as_str(), new) {
                    Ok(()) => Outcome::Accepted,
                    Err(SessionExists) => Outcome::Exists,
                }
            }
            Validation::Rejected => Outcome::Rejected,
            Validation::Failed => Outcome::Failed,
        },
    };
    drop(guard);
    service.in_flight.remove_if(id.as_str(), |_, lock| Arc::strong_count(lock) <= 2);
    drop(lock);
    match outcome {
        Outcome::Accepted => {
            ctx.session_record =
                Some(SessionRecord { action: action::SESSION_INIT, reason: None, session: Some(digest) });
            respond::write_json(session, ctx, 200, &id.ok_body(), &[]).await
        }
        Outcome::Exists => {
            reject(ctx, Some(digest), "session_exists");
            write_session_error(session, ctx, 409, "session exists").await
        }
        Outcome::Rejected => {
            reject(ctx, Some(digest), "credentials_rejected");
            respond::write_error(session, ctx, EdgeError::CredentialsRejected).await
        }
        Outcome::Failed => {
            reject(ctx, Some(digest), "validation_failed");
            respond::write_error(session, ctx, EdgeError::SessionValidationFailed).await
        }
    }
}

/// `DELETE /sessions/{id}`: only by the session's owner (with `sessions.auth: edge`); another
/// principal's session is as unknown as a missing one (404), so DELETE tells nobody else
/// which ids exist.
pub async fn end(session: &mut Session, ctx: &mut RequestContext, id: &str) -> Result<()> {
    if session.req_header().method != http::Method::DELETE {
        return respond::write_error(session, ctx, EdgeError::MethodNotAllowed { allow: "DELETE" }).await;
    }
    let policy = Arc::clone(&ctx.policy);
    let Some(service) = policy.sessions_service.as_ref() else {
        return respond::write_error(session, ctx, EdgeError::NotFound).await;
    };
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    let owner = super::owner_of(ctx.principal.as_ref());
    if service.store.remove(&id, owner.as_deref()) {
        ctx.session_record =
            Some(SessionRecord { action: action::SESSION_END, reason: Some("deleted"), session: Some(id_digest(&id)) });
        respond::write_empty(session, ctx, 204, &[]).await
    } else {
        respond::write_error(session, ctx, EdgeError::NotFound).await
    }
}

#[cfg(test)]
mod tests {
    use super::token_subject;

    #[test]
    fn the_subject_is_the_payload_sub() {
        // {"sub":"ada"} and {"iss":"x"} as payloads.
        assert_eq!(token_subject("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.sig").as_deref(), Some("ada"));
        assert_eq!(token_subject("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.sig"), None);
        assert_eq!(token_subject("a.b.c"), None, "not JSON");
        assert_eq!(token_subject("a"), None);
    }
}
