//! CORS: exact-match origins, preflights answered at the edge, a present but
//! disallowed `Origin` refused with 403 (the MCP transport's DNS-rebinding rule).
//!
//! There is deliberately no same-origin exemption: a DNS-rebinding page sends an `Origin` that
//! matches the `Host` it rebinds, so only the configured list decides.

use http::HeaderValue;
use pingora::http::RequestHeader;

use crate::config::{AllowedOrigins, Cors};
use crate::request::Reply;

pub const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// What browser MCP clients send: auth, JSON-RPC content negotiation, both protocol eras'
/// MCP headers, SSE resumption, credential sessions and trace context.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, \
     Mcp-Method, Mcp-Name, Last-Event-ID, X-Session-Id, traceparent, tracestate";
pub const EXPOSE_HEADERS: &str = "Mcp-Session-Id, Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate";

/// The CORS outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsDecision {
    /// No `Origin`: not a cross-origin browser request.
    NoOrigin,
    /// An allowed preflight: answer 204 now.
    Preflight(AllowedOrigin),
    /// An allowed actual request: add the CORS headers to its response.
    Allowed(AllowedOrigin),
    /// A present but disallowed `Origin`: 403 without CORS headers.
    Rejected,
}

/// The value to send as `Access-Control-Allow-Origin`, and whether credentials are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    pub allow_origin: HeaderValue,
    pub credentials: bool,
}

/// The CORS policy, built once from config.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    allowed: AllowedOrigins,
    credentials: bool,
    pub max_age: HeaderValue,
}

impl CorsPolicy {
    pub fn new(cors: &Cors) -> Self {
        Self {
            allowed: cors.allowed_origins.clone(),
            credentials: cors.allow_credentials,
            max_age: HeaderValue::from(cors.max_age.as_secs()),
        }
    }

    /// The 204 an allowed preflight gets, with the allowed methods and headers.
    pub fn preflight_reply(&self, allowed: &AllowedOrigin) -> Reply {
        let mut reply = Reply::empty(204)
            .with_header(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed.allow_origin.clone())
            .with_header(http::header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS))
            .with_header(http::header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS))
            .with_header(http::header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        if allowed.credentials {
            reply = reply.with_header(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        reply
    }

    pub fn decide(&self, request: &RequestHeader) -> CorsDecision {
        let Some(origin) = request.headers.get(http::header::ORIGIN) else { return CorsDecision::NoOrigin };
        let Some(allowed) = self.allow(origin) else { return CorsDecision::Rejected };
        let preflight = request.method == http::Method::OPTIONS
            && request.headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight { CorsDecision::Preflight(allowed) } else { CorsDecision::Allowed(allowed) }
    }

    fn allow(&self, origin: &HeaderValue) -> Option<AllowedOrigin> {
        match &self.allowed {
            AllowedOrigins::Any => {
                // `*` is refused at load time when credentials are on, so this is credential-free.
                Some(AllowedOrigin { allow_origin: HeaderValue::from_static("*"), credentials: false })
            }
            AllowedOrigins::List(list) => {
                // Compared in serialised form: scheme and host are case-insensitive and the
                // default port is implied.
                let normalised = normalise(origin.to_str().ok()?)?;
                list.contains(&normalised)
                    .then(|| AllowedOrigin { allow_origin: origin.clone(), credentials: self.credentials })
            }
        }
    }
}

fn normalise(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin).ok()?;
    if url.path() != "/" || url.query().is_some() || origin.ends_with('/') {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        let allowed = if origins == ["*"] {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(origins.iter().map(|origin| normalise(origin).expect("origin")).collect())
        };
        CorsPolicy::new(&Cors {
            allowed_origins: allowed,
            allow_credentials: credentials,
            max_age: Duration::from_secs(600),
        })
    }

    fn check(policy: &CorsPolicy, method: &str, origin: Option<&str>, preflight: bool, expected: &str) {
        let mut request = RequestHeader::build(method, b"/mcp", None).expect("request");
        if let Some(origin) = origin {
            request.insert_header("origin", origin).expect("header");
        }
        if preflight {
            request.insert_header("access-control-request-method", "POST").expect("header");
        }
        let decision = match policy.decide(&request) {
            CorsDecision::NoOrigin => "none".to_string(),
            CorsDecision::Rejected => "rejected".to_string(),
            CorsDecision::Preflight(allowed) => format!("preflight {:?} {}", allowed.allow_origin, allowed.credentials),
            CorsDecision::Allowed(allowed) => format!("allowed {:?} {}", allowed.allow_origin, allowed.credentials),
        };
        assert_eq!(decision, expected, "{method} origin {origin:?}");
    }

    #[test]
    fn exact_origins_only() {
        let policy = policy(&["https://app.example", "http://localhost:8080"], true);
        check(&policy, "POST", Some("https://app.example"), false, "allowed \"https://app.example\" true");
        check(&policy, "POST", Some("https://APP.example:443"), false, "allowed \"https://APP.example:443\" true");
        check(&policy, "POST", Some("http://localhost:8080"), false, "allowed \"http://localhost:8080\" true");
        check(&policy, "POST", Some("http://app.example"), false, "rejected");
        check(&policy, "POST", Some("https://app.example:8443"), false, "rejected");
        check(&policy, "POST", Some("https://evil.app.example"), false, "rejected");
        check(&policy, "POST", Some("http://localhost:8081"), false, "rejected");
        check(&policy, "POST", Some("null"), false, "rejected");
        check(&policy, "POST", Some("https://app.example/"), false, "rejected");
        check(&policy, "POST", None, false, "none");
    }

    #[test]
    fn preflights_need_origin_and_requested_method() {
        let policy = policy(&["https://app.example"], false);
        check(&policy, "OPTIONS", Some("https://app.example"), true, "preflight \"https://app.example\" false");
        check(&policy, "OPTIONS", Some("https://app.example"), false, "allowed \"https://app.example\" false");
        check(&policy, "OPTIONS", Some("https://other.example"), true, "rejected");
        check(&policy, "OPTIONS", None, true, "none");
    }

    #[test]
    fn wildcard_answers_star_without_credentials() {
        let policy = policy(&["*"], false);
        check(&policy, "GET", Some("https://anything.example"), false, "allowed \"*\" false");
    }
}
