//! The bodies of the fuzz targets: each takes raw bytes, drives one parser or decision of
//! mcp-edge through its public entry point, and asserts what must hold for every input
//! (beyond "does not panic").
//!
//! `fuzz_targets/*.rs` call these under libFuzzer (`make fuzz`, nightly). The main crate's
//! `tests/fuzz_replay.rs` includes this file and feeds every committed corpus file through
//! the same functions on every `cargo test`, so CI replays the corpus on stable without a
//! sanitizer build, and a fixed crash stays fixed.
//!
//! Inputs with several parts are lines: the first lines are the small parts (a peer address,
//! a list), the rest is the bytes under test. Seeds stay readable and libFuzzer's mutations
//! still reach every part.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64::Engine;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use mcp_edge::config::{AllowedOrigins, Cors, Environment, PathTemplate};
use mcp_edge::edge::auth::Authenticator;
use mcp_edge::edge::client_ip;
use mcp_edge::edge::cors::{CorsDecision, CorsPolicy};
use mcp_edge::mcp::jsonrpc::{self, Message};
use mcp_edge::request::principal::{MAX_AUTHORIZATION_BYTES, looks_like_jwt};
use mcp_edge::request::{AuthFailure, AuthMethod, EdgeError, Principal, RpcErrorKind};
use mcp_edge::telemetry::audit;
use serde_json::{Map, Value};

/// The first `count` lines of `data` and the rest (which may hold more newlines); `None`
/// when there are fewer lines.
fn split_lines(data: &[u8], count: usize) -> Option<(Vec<&[u8]>, &[u8])> {
    let mut lines = Vec::with_capacity(count);
    let mut rest = data;
    for _ in 0..count {
        let end = rest.iter().position(|b| *b == b'\n')?;
        lines.push(&rest[..end]);
        rest = &rest[end + 1..];
    }
    Some((lines, rest))
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// The variables the policy loader sees: enough for the committed policies' `${VAR}`s, with
/// the development certificate by absolute path so a policy with TLS can load completely.
fn policy_environment() -> &'static Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        // This file is compiled in the fuzz crate (fuzz/) and in the main crate's tests.
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let repository = if manifest.join("fuzz_targets").is_dir() { manifest.join("..") } else { manifest.into() };
        let certificates = repository.join("certs.example");
        let certificate = |name: &str| certificates.join(name).display().to_string();
        [
            ("MCP_AUTH_TOKEN", "fuzz-static-bearer-token-0123456789".to_string()),
            ("FIREBASE_PROJECT_ID", "fuzz-project".to_string()),
            ("API_JWT_SECRET", "fuzz-hs256-secret-0123456789abcdef0123456789".to_string()),
            ("MCP_EDGE_TLS_CERT", certificate("server-chain.crt")),
            ("MCP_EDGE_TLS_KEY", certificate("server.key")),
            ("MCP_EDGE_TLS_CLIENT_CA", certificate("ca.crt")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    })
}

/// Loads `policy` as a policy file. It is written to a fresh temporary directory, so a
/// relative path in it (`tokens_file`, `tls.cert`, a schema) names nothing real; only an
/// absolute path the YAML spells out is looked at.
fn load_policy(policy: &[u8]) -> Option<Result<mcp_edge::config::Config, mcp_edge::config::ConfigErrors>> {
    let directory = tempfile::tempdir().ok()?;
    let path = directory.path().join("policy.yaml");
    std::fs::write(&path, policy).ok()?;
    Some(mcp_edge::config::load_with_environment(&path, policy_environment()))
}

/// `config::load`: any bytes give a config or a non-empty list of located problems.
pub fn policy(data: &[u8]) {
    let Some(result) = load_policy(data) else { return };
    if let Err(errors) = result {
        assert!(!errors.errors.is_empty(), "a refused policy names at least one problem");
        for error in &errors.errors {
            assert!(!error.message.is_empty(), "every problem has a message: {error:?}");
        }
    }
}

fn is_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// `jsonrpc::Message::parse`: accepts exactly the JSON-RPC 2.0 shapes, and every rejection
/// has a JSON-RPC code and an id a client can match.
pub fn jsonrpc(data: &[u8]) {
    let parsed = Message::parse(data);
    let json: Option<Value> = serde_json::from_slice(data).ok();
    match parsed {
        Ok(message) => {
            let Some(Value::Object(object)) = &json else { panic!("accepted a body that is not a JSON object") };
            assert_eq!(object.get("jsonrpc").and_then(Value::as_str), Some("2.0"));
            match message {
                Message::Request { id, method, params } => {
                    assert!(is_id(&id), "request id {id}");
                    assert_eq!(object.get("id"), Some(&id));
                    assert_eq!(object.get("method").and_then(Value::as_str), Some(method.as_str()));
                    match object.get("params") {
                        None | Some(Value::Null) => assert!(params.is_empty()),
                        Some(given) => assert_eq!(given, &Value::Object(params)),
                    }
                    // The answer we build for it is a response our own parser accepts.
                    let answer = jsonrpc::result(id, Value::Null).to_string();
                    assert_eq!(Message::parse(answer.as_bytes()), Ok(Message::Response), "{answer}");
                }
                Message::Notification { method, params } => {
                    assert!(object.get("id").is_none(), "a notification has no id");
                    assert_eq!(object.get("method").and_then(Value::as_str), Some(method.as_str()));
                    match object.get("params") {
                        None | Some(Value::Null) => assert!(params.is_empty()),
                        Some(given) => assert_eq!(given, &Value::Object(params)),
                    }
                }
                Message::Response => {
                    assert!(object.get("id").is_some_and(is_id), "a response has an id");
                    assert!(object.get("method").is_none());
                    assert!(object.contains_key("result") || object.contains_key("error"));
                }
            }
        }
        Err(rejection) => {
            assert!(rejection.id.is_null() || is_id(&rejection.id), "rejection id {}", rejection.id);
            match rejection.kind {
                RpcErrorKind::ParseError => assert!(json.is_none(), "valid JSON refused as a parse error"),
                RpcErrorKind::InvalidMessage => assert!(json.is_some(), "invalid JSON refused as an invalid request"),
                kind => panic!("unexpected kind {kind:?}"),
            }
            let answer = EdgeError::from(rejection).into_reply("fuzz");
            assert_eq!(answer.status, 400, "a malformed message is a 400");
        }
    }
}

/// One `X-Forwarded-For` entry as the oracle reads it: an address, optionally with a port.
fn forwarded_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// `client_ip::resolve`. Input: the peer address, a line of trusted networks (comma or
/// space separated), then the `X-Forwarded-For` lines. The result is the peer or an address
/// from the header, and a header address is only believed past trusted hops.
pub fn forwarded_for(data: &[u8]) {
    let Some((lines, header)) = split_lines(data, 2) else { return };
    let peer: IpAddr = text(lines[0]).and_then(|line| line.trim().parse().ok()).unwrap_or(IpAddr::from([10, 0, 0, 1]));
    let trusted: Vec<IpNet> =
        text(lines[1]).unwrap_or_default().split([',', ' ']).filter_map(|cidr| cidr.trim().parse().ok()).collect();
    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(&address));
    // The rest of the input is the header's lines, one per `\n`: all of them are the list.
    let header_lines: Vec<&[u8]> = header.split(|byte| *byte == b'\n').collect();
    let resolved = client_ip::resolve(peer, header_lines.iter().copied(), &trusted);
    let header = header_lines.join(&b',');
    let peer = client_ip::canonical(peer);
    assert_eq!(client_ip::canonical(resolved), resolved, "{resolved} is not canonical");
    if !is_trusted(peer) {
        assert_eq!(resolved, peer, "an untrusted peer is the client whatever it sends");
        return;
    }
    let hops: Option<Vec<IpAddr>> = text(&header)
        .and_then(|list| list.split(',').map(|entry| forwarded_hop(entry).map(client_ip::canonical)).collect());
    let Some(hops) = hops else {
        assert_eq!(resolved, peer, "a malformed list falls back to the peer");
        return;
    };
    if resolved == peer {
        return;
    }
    let position = hops.iter().rposition(|hop| *hop == resolved);
    let Some(position) = position else { panic!("{resolved} is neither the peer nor in the header") };
    if is_trusted(resolved) {
        assert!(hops.iter().all(|hop| is_trusted(*hop)), "a trusted hop is only the answer when all are");
        assert_eq!(hops.first(), Some(&resolved), "all trusted: the leftmost");
    } else {
        assert!(hops[position + 1..].iter().all(|hop| is_trusted(*hop)), "only trusted hops are skipped");
    }
}

/// An allowed-origin entry as `config` stores it: the ASCII serialisation of an http(s)
/// origin.
fn configured_origin(entry: &str) -> Option<String> {
    let url = url::Url::parse(entry).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" || url.query().is_some() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// `CorsPolicy::decide`. Input: the allowed origins (space separated, `*` for any), then
/// the method and optionally an `Access-Control-Request-Method` value, then the `Origin`
/// value. Only a listed origin is ever allowed, and it is echoed as sent.
pub fn cors(data: &[u8]) {
    let Some((lines, origin)) = split_lines(data, 2) else { return };
    let (Some(list), Some(request_line)) = (text(lines[0]), text(lines[1])) else { return };
    let credentials = list.starts_with('!');
    let list = list.trim_start_matches('!');
    let allowed_origins = if list.trim() == "*" {
        AllowedOrigins::Any
    } else {
        AllowedOrigins::List(list.split_whitespace().filter_map(configured_origin).collect())
    };
    let credentials = credentials && !matches!(allowed_origins, AllowedOrigins::Any);
    let policy = CorsPolicy::new(&Cors {
        allowed_origins: allowed_origins.clone(),
        allow_credentials: credentials,
        max_age: std::time::Duration::from_secs(600),
    });
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET");
    let Ok(mut request) = pingora::http::RequestHeader::build(method, b"/mcp", None) else { return };
    if let Some(requested) = words.next()
        && request.insert_header("access-control-request-method", requested).is_err()
    {
        return;
    }
    let Ok(origin_value) = http::HeaderValue::from_bytes(origin) else { return };
    if request.insert_header("origin", origin_value.clone()).is_err() {
        return;
    }
    let decision = policy.decide(&request);
    let allowed = match &decision {
        CorsDecision::NoOrigin => panic!("an Origin was sent"),
        CorsDecision::Rejected => return,
        CorsDecision::Preflight(allowed) => {
            assert_eq!(request.method, http::Method::OPTIONS, "only OPTIONS is a preflight");
            allowed
        }
        CorsDecision::Allowed(allowed) => allowed,
    };
    let AllowedOrigins::List(list) = &allowed_origins else {
        assert_eq!(allowed.allow_origin, "*");
        assert!(!allowed.credentials, "a wildcard never allows credentials");
        return;
    };
    assert_eq!(allowed.allow_origin, origin_value, "the allowed origin is echoed as sent");
    assert_eq!(allowed.credentials, credentials);
    let Some(sent) = text(origin) else { panic!("a non-UTF-8 Origin was allowed") };
    let url = url::Url::parse(sent).ok();
    let Some(url) = url else { panic!("{sent:?} is not a URL but was allowed") };
    assert!(url.origin().is_tuple(), "an opaque origin ({sent:?}) was allowed");
    assert!(list.contains(&url.origin().ascii_serialization()), "{sent:?} is not in {list:?}");
}

/// `PathTemplate::parse` and `render`. Input: the template, then either a JSON object of
/// arguments or, if the rest is not one, a string given to every variable. A variable can
/// never add a `/`, `?` or `#`, nor make a `.` or `..` segment.
pub fn template(data: &[u8]) {
    let Some((lines, rest)) = split_lines(data, 1) else { return };
    let Some(source) = text(lines[0]) else { return };
    let Ok(template) = PathTemplate::parse(source) else { return };
    assert_eq!(template.to_string(), source, "a template prints as written");
    assert_eq!(PathTemplate::parse(source).as_ref(), Ok(&template));
    let arguments = match serde_json::from_slice::<Value>(rest) {
        Ok(Value::Object(arguments)) => arguments,
        _ => {
            let value = Value::String(String::from_utf8_lossy(rest).into_owned());
            template.variables().map(|name| (name.to_string(), value.clone())).collect::<Map<String, Value>>()
        }
    };
    let Ok(path) = template.render(&arguments) else { return };
    assert!(!path.contains(['?', '#']), "{path:?} from {source:?}");
    assert_eq!(path.matches('/').count(), source.matches('/').count(), "{path:?} from {source:?}");
    for (rendered, written) in path.split('/').zip(source.split('/')) {
        let decoded = percent_encoding::percent_decode_str(rendered).decode_utf8_lossy();
        if decoded == "." || decoded == ".." {
            assert!(!written.contains('{'), "a variable made the segment {rendered:?} of {path:?}");
        }
    }
}

/// The `auth.bearer`/`auth.jwt` settings the auth target verifies against.
const AUTH_POLICY: &str = "listen: {https: null, http: 127.0.0.1:0, admin: 127.0.0.1:0}
auth:
  mode: bearer_or_jwt
  bearer: {tokens: [fuzz-static-bearer-token-0123456789]}
  jwt:
    issuer: https://issuer.fuzz
    audiences: [mcp-edge]
    hs256_secret: fuzz-hs256-secret-0123456789abcdef0123456789
    algorithms: [HS256]
    leeway: 60s
    required_claims: [exp, iss, aud, sub]
";
const AUTH_SECRET: &[u8] = b"fuzz-hs256-secret-0123456789abcdef0123456789";
const AUTH_ISSUER: &str = "https://issuer.fuzz";
const AUTH_LEEWAY: u64 = 60;

fn authenticator() -> Option<&'static Authenticator> {
    static AUTHENTICATOR: OnceLock<Option<Authenticator>> = OnceLock::new();
    AUTHENTICATOR
        .get_or_init(|| {
            // As `main` does before anything verifies a token.
            mcp_edge::crypto::install_providers();
            let config = load_policy(AUTH_POLICY.as_bytes())?.ok()?;
            Authenticator::new(&config.auth, false, None).ok()
        })
        .as_ref()
}

fn authenticate(authenticator: &Authenticator, authorization: &[u8]) -> Result<Option<Principal>, AuthFailure> {
    let mut future = pin!(authenticator.authenticate(Some(authorization)));
    // With an HS256 secret nothing is fetched, so the future is ready when first polled.
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("authenticate waited without a key store"),
    }
}

/// `base64url(header).base64url(claims).HS256`, signed with the target's secret.
fn signed_jwt(header: &[u8], claims: &[u8]) -> Option<String> {
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing_input = format!("{}.{}", encode(header), encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(AUTH_SECRET).ok()?;
    mac.update(signing_input.as_bytes());
    Some(format!("{signing_input}.{}", encode(&mac.finalize().into_bytes())))
}

/// `Authenticator::authenticate` with `bearer_or_jwt` and an HS256 secret: the `Bearer`
/// parse, the JWT shape check, the header pre-parse (`crit`, `alg`) and the claim checks.
/// Input with a newline is a JWT header and claims that the target signs, so the checks past
/// the signature are reached; without one it is the raw `Authorization` value. A token is
/// only accepted with the allowed algorithm, no `crit`, and the configured issuer and
/// audience, an unexpired `exp` and a string `sub`; a repeat is answered the same.
pub fn auth(data: &[u8]) {
    let Some(authenticator) = authenticator() else { panic!("the auth target's policy does not load") };
    let (authorization, signed) = match split_lines(data, 1) {
        Some((lines, claims)) => match signed_jwt(lines[0], claims) {
            Some(token) => (format!("Bearer {token}").into_bytes(), Some((lines[0], claims))),
            None => return,
        },
        None => (data.to_vec(), None),
    };
    let result = authenticate(authenticator, &authorization);
    // A second presentation is answered from the verified-token cache: it must agree.
    assert_eq!(authenticate(authenticator, &authorization), result, "the cache answered differently");
    let principal = match result {
        Ok(principal) => principal,
        Err(failure) => {
            assert!(AuthFailure::ALL.contains(&failure));
            if authorization.len() > MAX_AUTHORIZATION_BYTES {
                assert_eq!(failure, AuthFailure::InvalidToken, "an oversized value is refused unparsed");
            }
            return;
        }
    };
    let Some(principal) = principal else { panic!("auth is on, yet no principal") };
    assert!(authorization.len() <= MAX_AUTHORIZATION_BYTES, "an oversized value was accepted");
    let token = authorization.get(7..).unwrap_or_default().trim_ascii();
    match principal.method {
        AuthMethod::Bearer => assert_eq!(token, b"fuzz-static-bearer-token-0123456789"),
        AuthMethod::Jwt => assert!(looks_like_jwt(token), "a JWT without three base64url segments"),
        AuthMethod::Dpop => panic!("a DPoP principal without a proof (dpop is off here)"),
    }
    let Some((header, claims)) = signed else { return };
    assert_eq!(principal.method, AuthMethod::Jwt);
    let header: Map<String, Value> = serde_json::from_slice(header).unwrap_or_default();
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("HS256"), "only the allowed algorithm");
    assert!(!header.contains_key("crit"), "a crit header is never understood");
    let claims: Map<String, Value> = serde_json::from_slice(claims).unwrap_or_default();
    // jsonwebtoken also takes an array of issuers when one of them is ours.
    let issuer_ok = match claims.get("iss") {
        Some(Value::String(issuer)) => issuer == AUTH_ISSUER,
        Some(Value::Array(issuers)) => issuers.iter().any(|issuer| issuer == AUTH_ISSUER),
        _ => false,
    };
    assert!(issuer_ok, "issuer {:?}", claims.get("iss"));
    let audience_ok = match claims.get("aud") {
        Some(Value::String(audience)) => audience == "mcp-edge",
        Some(Value::Array(audiences)) => audiences.iter().any(|audience| audience == "mcp-edge"),
        _ => false,
    };
    assert!(audience_ok, "audience {:?}", claims.get("aud"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    let expires = claims.get("exp").and_then(Value::as_f64);
    assert!(expires.is_some_and(|exp| exp + AUTH_LEEWAY as f64 >= now as f64), "exp {:?}", claims.get("exp"));
    assert_eq!(claims.get("sub").and_then(Value::as_str), Some(principal.subject.as_str()));
}

/// True when `key` must be redacted under `redact_keys` (lower-cased, as `audit::install`
/// stores them). Matching may grow broader, so the check below only demands these.
fn must_redact(key: &str, redact_keys: &[String]) -> bool {
    redact_keys.contains(&key.to_ascii_lowercase())
}

fn check_redacted(input: &Value, output: &Value, redact_keys: &[String]) {
    match (input, output) {
        (Value::Object(input), Value::Object(output)) => {
            assert_eq!(input.len(), output.len(), "redaction keeps every key");
            for (key, value) in input {
                let Some(redacted) = output.get(key) else { panic!("key {key:?} was lost") };
                if must_redact(key, redact_keys) {
                    assert_eq!(redacted, "[REDACTED]", "the value under {key:?} was kept");
                } else if redacted != "[REDACTED]" {
                    check_redacted(value, redacted, redact_keys);
                }
            }
        }
        (Value::Array(input), Value::Array(output)) => {
            assert_eq!(input.len(), output.len());
            for (value, redacted) in input.iter().zip(output) {
                check_redacted(value, redacted, redact_keys);
            }
        }
        (Value::String(input), Value::String(output)) => {
            assert!(output.chars().count() <= 256, "a string over 256 characters was kept");
            assert!(input.starts_with(output.as_str()), "a string was changed, not cut");
        }
        (input, output) => assert_eq!(input, output),
    }
}

/// `audit::redact`. Input: the redact keys (comma separated), then a JSON value (tool
/// arguments). Nothing under a redacted key survives, at any depth; strings are cut.
pub fn redact(data: &[u8]) {
    let Some((lines, rest)) = split_lines(data, 1) else { return };
    let Some(keys) = text(lines[0]) else { return };
    let redact_keys: Vec<String> = keys.split(',').map(|key| key.trim().to_ascii_lowercase()).collect();
    let Ok(arguments) = serde_json::from_slice::<Value>(rest) else { return };
    let redacted = audit::redact(&arguments, &redact_keys);
    check_redacted(&arguments, &redacted, &redact_keys);
}

/// Runs `target` on every file of `corpus` (a directory of seeds or a single file); the
/// replay test's loop, kept here so its paths and order match the fuzz targets'.
pub fn replay(corpus: &Path, target: fn(&[u8])) -> std::io::Result<usize> {
    let mut files: Vec<_> = std::fs::read_dir(corpus)?.filter_map(Result::ok).map(|entry| entry.path()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file)?;
        let outcome = std::panic::catch_unwind(|| target(&data));
        if let Err(panic) = outcome {
            eprintln!("{} failed", file.display());
            std::panic::resume_unwind(panic);
        }
    }
    Ok(files.len())
}
