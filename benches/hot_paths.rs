//! Micro-benchmarks of the per-request hot paths, each measured on the objects the edge
//! really runs with: a policy is loaded from YAML by the config loader and built into a
//! [`Policy`], exactly as `mcp-edge run` does.
//!
//! - `jwt`: verifying an RS256 and an ES256 token on a cache miss, twice: `rs256`/`es256` with
//!   a fresh verifier per iteration (built outside the timing, but building one reads the
//!   system root certificates for the JWKS client, so the check runs with cold caches), and
//!   `rs256_warm`/`es256_warm` with one verifier and a token it never caches (no `exp`, which
//!   that verifier does not require), so every call is the full check but the cache insert,
//!   as in a flood of distinct tokens; and a repeat token answered from the cache.
//! - `rate_limit`: one client admitted, one client over its limit, and 10 000 distinct
//!   clients taking turns.
//! - `cors`: the decision for an allowed origin, a disallowed one, a preflight and no origin.
//! - `jsonrpc`: parsing a typical MCP `tools/call` request body.
//! - `tool_arguments`: validating `tools/call` arguments against the tool's input schema.
//! - `bearer`: checking a static bearer token, accepted and refused.
//! - `dpop`: checking one ES256 DPoP proof (RFC 9449), every check and the replay-cache
//!   insert; each iteration gets a new proof (minted outside the timing), as on the wire.
//!
//! Run with `make microbench` (`cargo bench --locked --bench hot_paths`); add
//! `-- <filter>` to run some, e.g. `cargo bench --bench hot_paths -- jwt/`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a broken setup should fail loudly

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_edge::config::{self, RateLimit, RateLimitKey};
use mcp_edge::edge::Policy;
use mcp_edge::edge::auth::JwtVerifier;
use mcp_edge::edge::cors::CorsDecision;
use mcp_edge::edge::rate_limit::{ClientRateLimiter, RateDecision};
use mcp_edge::mcp::jsonrpc::Message;
use pingora::http::RequestHeader;

/// The edge's allocator (see `src/main.rs`): allocation costs are part of every path here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "mcp-edge-test";
const BEARER_TOKEN: &str = "ci-token-3f9a1c7e5b2d4086";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name)
}

/// A production-like policy: bearer tokens or JWTs (the test JWKS as a file), two CORS
/// origins, the default rate limit, and a tool with a realistic input schema.
fn policy() -> Policy {
    // The JWKS and upstream clients need the providers before they are built.
    mcp_edge::crypto::install_providers();
    let yaml = format!(
        r#"listen: {{https: null, http: 127.0.0.1:0, admin: 127.0.0.1:0}}
auth:
  mode: bearer_or_jwt
  bearer:
    tokens:
      - {{id: ci, value: "{BEARER_TOKEN}", scopes: ["shifts:read", "shifts:write"]}}
      - {{id: dashboard, value: "dashboard-token-8e41b0d6c2a9f357"}}
      - "rotating-token-5c0e7a92d1f4b863"
  jwt:
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    jwks_file: {jwks}
    algorithms: [RS256, ES256]
cors:
  allowed_origins: [https://app.example, http://localhost:8080]
tools:
  - name: create_shift
    description: Create a shift for an employee
    method: POST
    path: /companies/{{companyId}}/shifts
    input_schema:
      type: object
      required: [companyId, employeeId, start, end]
      additionalProperties: false
      properties:
        companyId: {{type: string, pattern: "^[0-9]+$"}}
        employeeId: {{type: string, minLength: 1, maxLength: 64}}
        start: {{type: string, format: date-time}}
        end: {{type: string, format: date-time}}
        role: {{type: string, enum: [cashier, cook, manager, cleaner]}}
        breakMinutes: {{type: integer, minimum: 0, maximum: 120}}
        notes: {{type: string, maxLength: 500}}
        tags: {{type: array, items: {{type: string}}, maxItems: 10}}
"#,
        jwks = fixture("jwks.json").display(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, yaml).expect("write the policy");
    let config = config::load_with_environment(&path, &config::Environment::new()).expect("a valid policy");
    Policy::new(Arc::new(config)).expect("a policy")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// A token as an identity provider issues it, signed with a test key from `tests/fixtures/jwt`.
fn sign(algorithm: Algorithm) -> String {
    sign_claims(algorithm, true)
}

/// The same token, with or without `exp`.
fn sign_claims(algorithm: Algorithm, expires: bool) -> String {
    mcp_edge::crypto::install_providers();
    let (kid, key) = match algorithm {
        Algorithm::RS256 => ("rsa-1", EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa.key")).expect("key"))),
        Algorithm::ES256 => ("ec-1", EncodingKey::from_ec_pem(&std::fs::read(fixture("ec.key")).expect("key"))),
        _ => unreachable!("only RS256 and ES256 are benchmarked"),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_string());
    let mut claims = serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "iat": now() - 10,
        "exp": now() + 3600,
        "jti": "7d2f0c4e-5a1b-4e8f-9c3d-2b6a8e1f0a57",
        "scope": "shifts:read shifts:write",
    });
    if !expires {
        claims.as_object_mut().expect("claims").remove("exp");
    }
    jsonwebtoken::encode(&header, &claims, &key.expect("key")).expect("sign")
}

/// Verifies without a runtime: with a file JWKS, verification never waits.
fn verify(verifier: &JwtVerifier, token: &[u8]) {
    let principal = verifier.verify(token).now_or_never().expect("verification never waits on a file JWKS");
    black_box(principal.expect("a valid token"));
}

fn jwt(c: &mut Criterion) {
    let policy = policy();
    let config = policy.config.auth.jwt.clone().expect("auth.jwt");
    let mut group = c.benchmark_group("jwt");
    for (name, algorithm) in [("rs256", Algorithm::RS256), ("es256", Algorithm::ES256)] {
        let token = sign(algorithm);
        // The verifier caches what it verified: a fresh one per iteration measures the full
        // check (header, key lookup, signature, claims, cache insert).
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || JwtVerifier::new(&config, false).expect("verifier"),
                |verifier| verify(verifier, black_box(token.as_bytes())),
                BatchSize::SmallInput,
            );
        });
    }
    // Without `exp` required, a token without one verifies and is never cached.
    let mut uncached = config.clone();
    uncached.required_claims.retain(|claim| claim != "exp");
    let warm = JwtVerifier::new(&uncached, false).expect("verifier");
    for (name, algorithm) in [("rs256_warm", Algorithm::RS256), ("es256_warm", Algorithm::ES256)] {
        let token = sign_claims(algorithm, false);
        group.bench_function(name, |b| b.iter(|| verify(&warm, black_box(token.as_bytes()))));
    }
    let verifier = policy.auth.jwt.as_ref().expect("jwt verifier");
    let token = sign(Algorithm::RS256);
    verify(verifier, token.as_bytes());
    group.bench_function("cached", |b| b.iter(|| verify(verifier, black_box(token.as_bytes()))));
    group.finish();
}

fn rate_limit(c: &mut Criterion) {
    // A quota no client can use up during a run, so every check takes the admitted path.
    let generous = ClientRateLimiter::new(&RateLimit {
        enabled: true,
        requests_per_minute: NonZeroU32::new(6_000_000).expect("nonzero"),
        burst: u32::MAX - 1,
        key: RateLimitKey::ClientIp,
        max_tracked_clients: 100_000,
        scope: mcp_edge::config::RateLimitScope::Local,
    });
    let client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    assert!(matches!(generous.check(client), RateDecision::Admitted { .. }));
    let clients: Vec<IpAddr> = (0..10_000u32).map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))).collect();
    for client in &clients {
        generous.check(*client);
    }
    // The policy's own limiter (100 requests a minute, burst 20), with one client over it.
    let policy = policy();
    let limiter =
        policy.rate_limiter.as_ref().and_then(|limiter| limiter.local()).expect("rate limiting is on by default");
    while matches!(limiter.check(client), RateDecision::Admitted { .. }) {}

    let mut group = c.benchmark_group("rate_limit");
    group.bench_function("one_ip_admitted", |b| b.iter(|| generous.check(black_box(client))));
    group.bench_function("one_ip_limited", |b| b.iter(|| limiter.check(black_box(client))));
    group.bench_function("distinct_ips_10k", |b| {
        let mut next = clients.iter().cycle();
        b.iter(|| generous.check(black_box(*next.next().expect("cycle"))));
    });
    group.finish();
}

/// A browser MCP client's `POST /mcp`, with the headers it usually carries.
fn mcp_request(method: &str, origin: Option<&str>) -> RequestHeader {
    let mut request = RequestHeader::build(method, b"/mcp", None).expect("request");
    for (name, value) in [
        ("host", "edge.example"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("authorization", "Bearer ci-token-3f9a1c7e5b2d4086"),
        ("mcp-protocol-version", "2025-06-18"),
        ("mcp-session-id", "c2Vzc2lvbi0xMjM0NTY3ODkw"),
    ] {
        request.insert_header(name, value).expect("header");
    }
    if let Some(origin) = origin {
        request.insert_header("origin", origin).expect("header");
    }
    request
}

fn cors(c: &mut Criterion) {
    let policy = policy();
    let allowed = mcp_request("POST", Some("https://app.example"));
    let disallowed = mcp_request("POST", Some("https://evil.example"));
    let mut preflight = RequestHeader::build("OPTIONS", b"/mcp", None).expect("request");
    preflight.insert_header("host", "edge.example").expect("header");
    preflight.insert_header("origin", "https://app.example").expect("header");
    preflight.insert_header("access-control-request-method", "POST").expect("header");
    preflight.insert_header("access-control-request-headers", "authorization, content-type").expect("header");
    let no_origin = mcp_request("POST", None);

    let mut group = c.benchmark_group("cors");
    for (name, request, expected) in [
        ("allowed_origin", &allowed, "Allowed"),
        ("disallowed_origin", &disallowed, "Rejected"),
        ("preflight", &preflight, "Preflight"),
        ("no_origin", &no_origin, "NoOrigin"),
    ] {
        let decision = policy.cors.decide(request);
        let kind = match decision {
            CorsDecision::Allowed(_) => "Allowed",
            CorsDecision::Rejected => "Rejected",
            CorsDecision::Preflight(_) => "Preflight",
            CorsDecision::NoOrigin => "NoOrigin",
        };
        assert_eq!(kind, expected, "{name}");
        group.bench_function(name, |b| b.iter(|| policy.cors.decide(black_box(request))));
    }
    group.finish();
}

const TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"create_shift","arguments":{"companyId":"1042","employeeId":"emp-7731","start":"2025-07-14T08:00:00Z","end":"2025-07-14T16:30:00Z","role":"cashier","breakMinutes":30,"notes":"Covers for Sam; keys at the front desk.","tags":["summer","weekday"]},"_meta":{"progressToken":"b1f6c3"}}}"#;

fn jsonrpc(c: &mut Criterion) {
    assert!(matches!(Message::parse(TOOLS_CALL.as_bytes()), Ok(Message::Request { .. })));
    let mut group = c.benchmark_group("jsonrpc");
    group.bench_function("tools_call", |b| b.iter(|| Message::parse(black_box(TOOLS_CALL.as_bytes()))));
    group.finish();
}

fn tool_arguments(c: &mut Criterion) {
    let policy = policy();
    let tool = policy.gateway.catalogue.get("create_shift").expect("tool");
    let Ok(Message::Request { params, .. }) = Message::parse(TOOLS_CALL.as_bytes()) else { unreachable!() };
    let valid = params["arguments"].clone();
    let invalid = serde_json::json!({
        "companyId": "acme",
        "start": "2025-07-14T08:00:00Z",
        "end": 1752510600,
        "role": "owner",
        "breakMinutes": 240,
    });
    assert!(tool.validate(&valid).is_ok());
    assert!(tool.validate(&invalid).is_err());

    let mut group = c.benchmark_group("tool_arguments");
    group.bench_function("valid", |b| b.iter(|| tool.validate(black_box(&valid))));
    group.bench_function("invalid", |b| b.iter(|| tool.validate(black_box(&invalid))));
    group.finish();
}

fn bearer(c: &mut Criterion) {
    let policy = policy();
    let tokens = &policy.auth.bearer;
    assert!(tokens.check(BEARER_TOKEN.as_bytes()).is_ok());
    let wrong = "ci-token-3f9a1c7e5b2d4087";
    assert!(tokens.check(wrong.as_bytes()).is_err());

    let mut group = c.benchmark_group("bearer");
    group.bench_function("valid", |b| b.iter(|| tokens.check(black_box(BEARER_TOKEN.as_bytes()))));
    group.bench_function("invalid", |b| b.iter(|| tokens.check(black_box(wrong.as_bytes()))));
    group.finish();
}

fn dpop(c: &mut Criterion) {
    use base64::Engine;
    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
    use mcp_edge::edge::auth::{DpopChecker, ProofTarget};
    use sha2::Digest;
    mcp_edge::crypto::install_providers();
    let key = EncodingKey::from_ec_pem(&std::fs::read(fixture("ec.key")).expect("key")).expect("key");
    let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).expect("thumbprint");
    let token = sign(Algorithm::RS256);
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes()));
    // Room for every iteration: a full cache would measure the 503, not the check.
    let settings = config::Dpop { replay_cache: 10_000_000, ..config::Dpop::default() };
    let checker = DpopChecker::new(&settings).expect("checker");
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".to_string());
    header.jwk = Some(jwk);
    let mut next = 0u64;
    let mut group = c.benchmark_group("dpop");
    group.bench_function("es256_proof", |b| {
        b.iter_batched(
            || {
                next += 1;
                let claims = serde_json::json!({
                    "jti": format!("bench-{next}"), "htm": "POST", "htu": "https://edge.example/mcp",
                    "iat": now(), "ath": ath,
                });
                jsonwebtoken::encode(&header, &claims, &key).expect("sign")
            },
            |proof| {
                let proofs = [proof.as_bytes()];
                let target = ProofTarget {
                    proofs: &proofs,
                    method: "POST",
                    scheme: "https",
                    authority: "edge.example",
                    path: "/mcp",
                };
                black_box(checker.check(&target, token.as_bytes(), &jkt, now()).expect("a valid proof"))
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(hot_paths, jwt, rate_limit, cors, jsonrpc, tool_arguments, bearer, dpop);
criterion_main!(hot_paths);
