//! The `Authorization` header an outgoing call carries: `Bearer <token>`, marked sensitive so
//! HTTP/2 never indexes it (HPACK) and `Debug` never prints it. Which token a call carries is
//! the caller's business (`mcp::target` for tool calls, the credential-session validation).

use http::HeaderValue;

/// The token cannot be a header value (a control character or non-visible byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the upstream credential is not a valid header value")]
pub struct InvalidCredential;

/// `Bearer <token>`, sensitive.
pub fn bearer_authorization(token: &str) -> Result<HeaderValue, InvalidCredential> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidCredential)?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_bearer_and_sensitive() {
        let value = bearer_authorization("svc-token").expect("header");
        assert_eq!(value, "Bearer svc-token");
        assert!(value.is_sensitive());
        assert_eq!(bearer_authorization("bad\ntoken"), Err(InvalidCredential));
    }
}
