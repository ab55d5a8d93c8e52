//! Authorization: may this principal use a route or tool that requires these scopes?

use http::HeaderValue;

use super::{EdgeError, Principal};

/// The scopes `required` that `principal` lacks; empty when the call is allowed. With auth
/// off (no principal) nothing is enforced.
pub fn missing_scopes<'a>(principal: Option<&Principal>, required: &'a [String]) -> Vec<&'a str> {
    let Some(principal) = principal else { return Vec::new() };
    required.iter().filter(|scope| !principal.scopes.contains(scope)).map(String::as_str).collect()
}

/// `Ok` when `principal` holds every scope of `required`, else the 403 that names them.
pub fn require(principal: Option<&Principal>, required: &[String]) -> Result<(), EdgeError> {
    if missing_scopes(principal, required).is_empty() {
        return Ok(());
    }
    let challenge = HeaderValue::try_from(insufficient_scope_challenge(required)).ok();
    Err(EdgeError::InsufficientScope { challenge })
}

/// The `WWW-Authenticate` challenge for a call that lacks `required` scopes (RFC 6750 §3.1).
pub fn insufficient_scope_challenge(required: &[String]) -> String {
    let scope: String = required.join(" ").chars().filter(|c| *c != '"' && *c != '\\').collect();
    format!("Bearer realm=\"mcp-edge\", error=\"insufficient_scope\", scope=\"{scope}\"")
}

#[cfg(test)]
mod tests {
    use super::super::AuthMethod;
    use super::*;

    fn principal(scopes: &[&str]) -> Principal {
        Principal {
            subject: "user".into(),
            method: AuthMethod::Jwt,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            token_id: "t".into(),
            forwardable_jwt: None,
            dpop_jkt: None,
        }
    }

    #[test]
    fn every_required_scope_must_be_held() {
        let required = vec!["shifts:read".to_string(), "shifts:write".to_string()];
        assert!(missing_scopes(Some(&principal(&["shifts:read", "shifts:write", "x"])), &required).is_empty());
        assert_eq!(missing_scopes(Some(&principal(&["shifts:read"])), &required), ["shifts:write"]);
        assert!(missing_scopes(Some(&principal(&[])), &[]).is_empty());
        assert!(missing_scopes(None, &required).is_empty(), "auth off: nothing to enforce");
    }

    #[test]
    fn a_missing_scope_is_a_403_carrying_its_challenge() {
        let required = vec!["shifts:write".to_string()];
        assert_eq!(require(Some(&principal(&["shifts:write"])), &required), Ok(()));
        let Err(EdgeError::InsufficientScope { challenge: Some(challenge) }) =
            require(Some(&principal(&["shifts:read"])), &required)
        else {
            panic!("expected a 403 with a challenge");
        };
        assert_eq!(challenge, "Bearer realm=\"mcp-edge\", error=\"insufficient_scope\", scope=\"shifts:write\"");
    }

    #[test]
    fn challenge_names_the_scopes() {
        let challenge = insufficient_scope_challenge(&["a:read".to_string(), "b\"x".to_string()]);
        assert_eq!(challenge, "Bearer realm=\"mcp-edge\", error=\"insufficient_scope\", scope=\"a:read bx\"");
    }
}
