//! `POST /init` and `DELETE /sessions/{id}`, in the documented decision order: missing `apiUrl`
//! or `jwtToken` → 400; a client-chosen `session_id` that breaks the id rule → 400 naming the
//! rule (no `session_id`: the edge mints one); the same live session → 200 at once; `apiUrl`
//! not http(s) with a host or not allowed → 401; `jwtToken` not three base64url parts → 401;
//! a live id of another principal → 409; then the API's validate endpoint decides: 2xx →
//! stored (unless the live id belongs to another subject: 409), 200; 401/403 → 401;
//! anything else → 500. Concurrent `/init`s for one id validate once. Bodies never echo the
//! token or the API's text.
//!
//! The 409 for another principal comes before validation (the edge knows the principal, and
//! the API should not be asked on behalf of someone who cannot have the id); the one for
//! another subject after it, because a `sub` means something only once the API has accepted
//! the token: an unvalidated payload could claim any subject.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::service::{SessionService, Validation};
use super::store::{NewSession, SessionExists, id_digest};
use crate::request::principal::{MAX_AUTHORIZATION_BYTES, looks_like_jwt};
use crate::request::{Caller, Downstream, EdgeError, Records, Reply, SessionRecord};
use crate::store::StoreUnavailable;
use crate::telemetry::audit::action;

/// How long a client waits when the shared store does not answer.
const STORE_RETRY_AFTER_SECONDS: u64 = 1;

fn store_unavailable(_: StoreUnavailable) -> EdgeError {
    EdgeError::StoreUnavailable { retry_after_seconds: STORE_RETRY_AFTER_SECONDS }
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
    fn ok_reply(&self) -> Reply {
        match self {
            RequestedId::Minted(id) => Reply::json(200, &json!({"status": "ok", "session_id": id})),
            RequestedId::Chosen(_) => Reply::json(200, &json!({"status": "ok"})),
        }
    }
}

/// An `/init` body that passed the shape checks (step 1).
struct InitRequest<'a> {
    api_url: &'a str,
    token: &'a str,
    id: RequestedId,
}

/// A refused `/init`: the audit reason and the answer.
type Refused = (&'static str, EdgeError);

/// Step 1: every field present and well-formed (`session_id` may be left out).
fn parse(body: &Value, allow_short_ids: bool) -> Result<InitRequest<'_>, Refused> {
    let (Some(api_url), Some(token)) = (string_field(body, "apiUrl"), string_field(body, "jwtToken")) else {
        return Err(("missing_field", EdgeError::BadRequest));
    };
    let id = match body.get("session_id") {
        None | Some(Value::Null) => RequestedId::Minted(super::id::mint()),
        Some(Value::String(id)) if super::id::acceptable(id, allow_short_ids) => RequestedId::Chosen(id.clone()),
        Some(_) => return Err(("malformed_field", EdgeError::SessionIdRule(super::id::rule(allow_short_ids)))),
    };
    if token.len() > MAX_AUTHORIZATION_BYTES {
        return Err(("malformed_field", EdgeError::BadRequest));
    }
    Ok(InitRequest { api_url, token, id })
}

/// How an `/init` for an id that passed the shape checks ended.
enum Outcome {
    Accepted,
    Exists,
    Rejected,
    Failed,
    /// The shared store did not answer (`on_error: deny`, or a session could not be stored).
    StoreUnavailable,
}

/// Step 5: another principal's live id is not asked about; else the API decides, once per id
/// at a time, and the store keeps a live session of another subject as it is.
async fn validate_and_store(
    service: &SessionService,
    id: &str,
    api_url: url::Url,
    token: &str,
    owner: Option<String>,
) -> Outcome {
    let lock = Arc::clone(service.in_flight.entry(id.to_string()).or_default().value());
    let guard = lock.lock().await;
    let outcome = match service.peek(id).await {
        Err(StoreUnavailable) => Outcome::StoreUnavailable,
        Ok(Some(live)) if live.owner != owner => Outcome::Exists,
        // Validated meanwhile by a concurrent `/init` with the same credentials.
        Ok(Some(live)) if live.same_credentials(&api_url, token, owner.as_deref()) => Outcome::Accepted,
        Ok(_) => match service.validate(&api_url, token).await {
            Validation::Accepted => {
                let new = NewSession { api_url, token, subject: token_subject(token), owner };
                match service.insert(id, new).await {
                    Ok(Ok(())) => Outcome::Accepted,
                    Ok(Err(SessionExists)) => Outcome::Exists,
                    Err(StoreUnavailable) => Outcome::StoreUnavailable,
                }
            }
            Validation::Rejected => Outcome::Rejected,
            Validation::Failed => Outcome::Failed,
        },
    };
    drop(guard);
    service.in_flight.remove_if(id, |_, lock| Arc::strong_count(lock) <= 2);
    outcome
}

/// `POST /init`.
pub async fn init(
    service: &SessionService,
    downstream: &mut dyn Downstream,
    caller: &Caller<'_>,
    records: &mut Records,
    max_body_bytes: u64,
) -> Result<Reply, EdgeError> {
    if downstream.head().method != http::Method::POST {
        return Err(EdgeError::MethodNotAllowed { allow: "POST" });
    }
    let body = serde_json::from_slice::<Value>(&downstream.read_body(max_body_bytes).await?).unwrap_or(Value::Null);
    let mut record = |action, reason, digest| records.session = Some(SessionRecord { action, reason, session: digest });
    let request = match parse(&body, service.allow_short_ids) {
        Ok(request) => request,
        Err((reason, error)) => {
            record(action::SESSION_REJECTED, Some(reason), None);
            return Err(error);
        }
    };
    let (id, token) = (request.id.as_str(), request.token);
    let digest = id_digest(id);
    let owner = super::owner_of(caller.principal);
    let allowed = service.allowed(request.api_url);
    // 2. The same live session: nothing to check again (and nothing marked used: only tool
    //    calls are uses).
    if let Some(entry) = &allowed
        && service.matches(id, entry, token, owner.as_deref()).await.map_err(store_unavailable)?
    {
        record(action::SESSION_INIT, Some("existing"), Some(digest));
        return Ok(request.id.ok_reply());
    }
    // 3. Only allowed APIs: the edge never carries caller credentials anywhere else.
    let Some(api_url) = allowed else {
        record(action::SESSION_REJECTED, Some("api_url_not_allowed"), Some(digest));
        return Err(EdgeError::CredentialsRejected);
    };
    // 4. A token shaped like a JWT.
    if !looks_like_jwt(token.as_bytes()) {
        record(action::SESSION_REJECTED, Some("malformed_token"), Some(digest));
        return Err(EdgeError::CredentialsRejected);
    }
    let (reason, answer) = match validate_and_store(service, id, api_url, token, owner).await {
        Outcome::Accepted => {
            record(action::SESSION_INIT, None, Some(digest));
            return Ok(request.id.ok_reply());
        }
        Outcome::Exists => ("session_exists", EdgeError::SessionExists),
        Outcome::Rejected => ("credentials_rejected", EdgeError::CredentialsRejected),
        Outcome::Failed => ("validation_failed", EdgeError::SessionValidationFailed),
        Outcome::StoreUnavailable => ("store_unavailable", store_unavailable(StoreUnavailable)),
    };
    record(action::SESSION_REJECTED, Some(reason), Some(digest));
    Err(answer)
}

/// `DELETE /sessions/{id}`: only by the session's owner (with `sessions.auth: edge`); another
/// principal's session is as unknown as a missing one (404), so DELETE tells nobody else
/// which ids exist.
pub async fn end(
    service: &SessionService,
    downstream: &dyn Downstream,
    caller: &Caller<'_>,
    records: &mut Records,
) -> Result<Reply, EdgeError> {
    if downstream.head().method != http::Method::DELETE {
        return Err(EdgeError::MethodNotAllowed { allow: "DELETE" });
    }
    let id = downstream.head().uri.path().strip_prefix("/sessions/").unwrap_or_default();
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy().into_owned();
    if !service.remove(&id, super::owner_of(caller.principal).as_deref()).await.map_err(store_unavailable)? {
        return Err(EdgeError::NotFound);
    }
    records.session =
        Some(SessionRecord { action: action::SESSION_END, reason: Some("deleted"), session: Some(id_digest(&id)) });
    Ok(Reply::empty(204))
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
