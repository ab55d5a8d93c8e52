//! DPoP-bound tokens end to end over TLS (RFC 9449): access tokens from the local JWKS with a
//! `cnf.jkt`, proofs minted by jsonwebtoken (`encode`, or `crypto::sign` under a header
//! written out) with the EC test key; every case of the DPoP issue with its status,
//! `WWW-Authenticate` challenge and audit reason.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::edge::TestEdge;
use crate::support::jwt::{self, AUDIENCE, ISSUER, JwksServer, now, sign};
use crate::support::mock_api::MockApi;
use crate::support::tls_client::{Protocol, client};

/// A client's proof key: the EC test key, or the other RSA key for "signed by another key".
struct ProofKey {
    key: EncodingKey,
    algorithm: Algorithm,
    jwk: Jwk,
}

impl ProofKey {
    fn ec() -> Self {
        mcp_edge::crypto::install_providers();
        let key = EncodingKey::from_ec_pem(&jwt::fixture("ec.key")).expect("ec key");
        let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        Self { key, algorithm: Algorithm::ES256, jwk }
    }

    fn other_rsa() -> Self {
        mcp_edge::crypto::install_providers();
        let key = EncodingKey::from_rsa_pem(&jwt::fixture("rsa-other.key")).expect("rsa key");
        let jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
        Self { key, algorithm: Algorithm::RS256, jwk }
    }

    fn jkt(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).expect("thumbprint")
    }

    fn proof(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.typ = Some("dpop+jwt".to_string());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }

    fn proof_with_header(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", encode(header), encode(claims));
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.algorithm).expect("sign");
        format!("{message}.{signature}")
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.algorithm, "jwk": self.jwk})
    }
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// An access token from the JWKS issuer, bound to `jkt` when given.
fn access_token(jkt: Option<&str>) -> String {
    let mut claims = jwt::claims();
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({"jkt": jkt});
    }
    sign(Algorithm::RS256, Some("rsa-1"), &claims)
}

fn proof_claims(method: &str, htu: &str, token: &str) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let jti = format!("e2e-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    json!({
        "jti": jti,
        "htm": method,
        "htu": htu,
        "iat": now(),
        "ath": URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())),
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().expect("object").remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

/// JWT auth from `jwks` with `auth.jwt.dpop: mode`, and a generous rate limit.
fn dpop_policy(jwks: &JwksServer, mode: &str) -> Value {
    json!({
        "auth": {
            "mode": "jwt",
            "jwt": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "jwks_url": jwks.url(),
                "algorithms": ["RS256", "ES256"],
                "dpop": mode,
            },
        },
        "rate_limit": {"requests_per_minute": 6000, "burst": 200},
    })
}

async fn dpop_edge(api: &MockApi, jwks: &JwksServer, mode: &str) -> TestEdge {
    let mut policy = dpop_policy(jwks, mode);
    policy["auth"]["jwt"]["resource_metadata"] =
        json!({"resource": "https://edge.test/mcp", "authorization_servers": ["https://login.test"]});
    TestEdge::new(policy).passthrough(&api.url()).audit_file(None, 1).start()
}

struct Answer {
    status: u16,
    challenges: Vec<String>,
    request_id: String,
    body: Value,
}

/// `method /anything` with `Authorization: {scheme} {token}` and one `DPoP` header per proof.
async fn send(edge: &TestEdge, protocol: Protocol, method: &str, authorization: &str, proofs: &[String]) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request =
        client(protocol).request(method, edge.https_url("/anything")).header("authorization", authorization);
    for proof in proofs {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.expect("request");
    let challenges = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|value| value.to_str().expect("ascii").to_string())
        .collect();
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, challenges, request_id, body }
}

/// The `reason` the log line of a refused request names.
fn logged_reason(edge: &TestEdge, request_id: &str) -> String {
    let logged = edge.stderr();
    let line = logged.lines().find(|line| line.contains(request_id) && line.contains("Authentication failed"));
    let line = line.unwrap_or_else(|| panic!("no log line for {request_id}:\n{logged}"));
    let start = line.find("\"reason\":\"").map(|at| at + 10).unwrap_or_else(|| panic!("no reason: {line}"));
    line[start..].split('"').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_proof_is_accepted_on_h1_and_h2_and_never_forwarded() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = dpop_edge(&api, &jwks, "required").await;
    let key = ProofKey::ec();
    let token = access_token(Some(&key.jkt()));
    let htu = edge.https_url("/anything");
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let proof = key.proof(&proof_claims("POST", &htu, &token));
        let answer = send(&edge, protocol, "POST", &format!("DPoP {token}"), &[proof]).await;
        assert_eq!(answer.status, 200, "{protocol:?}: {:?}", answer.challenges);
        assert!(answer.body["headers"].get("dpop").is_none(), "the proof is not forwarded: {}", answer.body);
    }
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "AUTH_SUCCESS"));
    let success = events.iter().find(|event| event["event.action"] == "AUTH_SUCCESS").expect("AUTH_SUCCESS");
    assert_eq!(success["auth.method"], "dpop");
    assert_eq!(success["dpop.jkt"], key.jkt());
    let audit = serde_json::to_string(&events).expect("json");
    assert!(!audit.contains(&token[..40]), "the token is never logged");
}

/// One refused case: what the client sends and what it must get back.
struct Refusal {
    case: &'static str,
    authorization: String,
    proofs: Vec<String>,
    error: &'static str,
    reason: &'static str,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dpop_problem_gets_the_rfc_answer() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = dpop_edge(&api, &jwks, "required").await;
    let key = ProofKey::ec();
    let token = access_token(Some(&key.jkt()));
    let dpop = format!("DPoP {token}");
    let htu = edge.https_url("/anything");
    let good = || proof_claims("POST", &htu, &token);
    let replayed = key.proof(&good());
    assert_eq!(send(&edge, Protocol::Http1, "POST", &dpop, std::slice::from_ref(&replayed)).await.status, 200);
    let mut private_jwk = key.header();
    private_jwk["jwk"]["d"] = json!("c2VjcmV0");
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.typ = Some("dpop+jwt".to_string());
    hs256.jwk = Some(key.jwk.clone());
    let other_host = htu.replace("localhost", "127.0.0.1");
    let invalid_proof = |case, proofs: Vec<String>| Refusal {
        case,
        authorization: dpop.clone(),
        proofs,
        error: "invalid_dpop_proof",
        reason: "invalid_dpop_proof",
    };
    let cases = [
        Refusal { reason: "dpop_replay", ..invalid_proof("replayed jti", vec![replayed]) },
        invalid_proof("no proof", vec![]),
        invalid_proof("two DPoP headers", vec![key.proof(&good()), key.proof(&good())]),
        invalid_proof("wrong htm", vec![key.proof(&with(good(), "htm", json!("GET")))]),
        invalid_proof("htu with another path", vec![key.proof(&with(good(), "htu", json!(format!("{htu}/other"))))]),
        invalid_proof("htu with another host", vec![key.proof(&with(good(), "htu", json!(other_host)))]),
        invalid_proof("stale iat", vec![key.proof(&with(good(), "iat", json!(now() - 120)))]),
        invalid_proof("future iat", vec![key.proof(&with(good(), "iat", json!(now() + 120)))]),
        invalid_proof("typ missing", vec![key.proof_with_header(&with(key.header(), "typ", Value::Null), &good())]),
        invalid_proof(
            "alg none",
            vec![format!("{}.{}.", encode(&with(key.header(), "alg", json!("none"))), encode(&good()))],
        ),
        invalid_proof(
            "alg HS256",
            vec![
                jsonwebtoken::encode(&hs256, &good(), &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"))
                    .expect("sign"),
            ],
        ),
        invalid_proof("private key in jwk", vec![key.proof_with_header(&private_jwk, &good())]),
        invalid_proof("jti missing", vec![key.proof(&with(good(), "jti", Value::Null))]),
        Refusal {
            case: "wrong ath",
            authorization: dpop.clone(),
            proofs: vec![key.proof(&with(good(), "ath", json!(URL_SAFE_NO_PAD.encode(Sha256::digest(b"other")))))],
            error: "invalid_token",
            reason: "dpop_binding_mismatch",
        },
        Refusal {
            case: "proof signed by another key than cnf.jkt",
            authorization: dpop.clone(),
            proofs: vec![ProofKey::other_rsa().proof(&good())],
            error: "invalid_token",
            reason: "dpop_binding_mismatch",
        },
        Refusal {
            case: "bound token sent as Bearer",
            authorization: format!("Bearer {token}"),
            proofs: vec![key.proof(&good())],
            error: "invalid_token",
            reason: "dpop_binding_mismatch",
        },
        Refusal {
            case: "unbound token under required",
            authorization: format!("Bearer {}", access_token(None)),
            proofs: vec![],
            error: "invalid_token",
            reason: "dpop_binding_mismatch",
        },
    ];
    for refusal in cases {
        let answer = send(&edge, Protocol::Http1, "POST", &refusal.authorization, &refusal.proofs).await;
        assert_eq!(answer.status, 401, "{}", refusal.case);
        assert_eq!(
            answer.challenges.len(),
            1,
            "{}: one DPoP challenge under required: {:?}",
            refusal.case,
            answer.challenges
        );
        let challenge = &answer.challenges[0];
        assert!(challenge.starts_with("DPoP "), "{}: {challenge}", refusal.case);
        assert!(challenge.contains(&format!("error=\"{}\"", refusal.error)), "{}: {challenge}", refusal.case);
        assert!(challenge.contains("algs=\"ES256 RS256 PS256 EdDSA\""), "{}: {challenge}", refusal.case);
        assert_eq!(logged_reason(&edge, &answer.request_id), refusal.reason, "{}", refusal.case);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn optional_accepts_unbound_bearer_tokens_and_answers_with_two_challenges() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = dpop_edge(&api, &jwks, "optional").await;
    let key = ProofKey::ec();
    let htu = edge.https_url("/anything");
    let unbound = access_token(None);
    assert_eq!(send(&edge, Protocol::Http1, "GET", &format!("Bearer {unbound}"), &[]).await.status, 200);
    let bound = access_token(Some(&key.jkt()));
    let proof = key.proof(&proof_claims("GET", &htu, &bound));
    assert_eq!(send(&edge, Protocol::Http2, "GET", &format!("DPoP {bound}"), &[proof]).await.status, 200);
    let answer = send(&edge, Protocol::Http1, "GET", &format!("Bearer {bound}"), &[]).await;
    assert_eq!(answer.status, 401, "a bound token as Bearer");
    assert_eq!(answer.challenges.len(), 2, "{:?}", answer.challenges);
    assert!(
        answer.challenges[0].starts_with("Bearer realm=\"mcp-edge\", error=\"invalid_token\""),
        "{:?}",
        answer.challenges
    );
    assert!(
        answer.challenges[1].starts_with("DPoP realm=\"mcp-edge\", error=\"invalid_token\""),
        "{:?}",
        answer.challenges
    );
    assert_eq!(logged_reason(&edge, &answer.request_id), "dpop_binding_mismatch");
    let stale = key.proof(&with(proof_claims("GET", &htu, &bound), "iat", json!(now() - 120)));
    let answer = send(&edge, Protocol::Http1, "GET", &format!("DPoP {bound}"), &[stale]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenges.len(), 2, "{:?}", answer.challenges);
    assert!(answer.challenges[1].contains("error=\"invalid_dpop_proof\""), "{:?}", answer.challenges);
    // RFC 9449 §5.2 metadata: advertised, and not required under optional.
    let document: Value = client(Protocol::Http1)
        .get(edge.https_url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(document["dpop_signing_alg_values_supported"], json!(["ES256", "RS256", "PS256", "EdDSA"]));
    assert_eq!(document["dpop_bound_access_tokens_required"], json!(false));
}

#[tokio::test(flavor = "multi_thread")]
async fn off_keeps_bearer_behaviour_and_refuses_the_dpop_scheme() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = dpop_edge(&api, &jwks, "off").await;
    let key = ProofKey::ec();
    let bound = access_token(Some(&key.jkt()));
    assert_eq!(send(&edge, Protocol::Http1, "GET", &format!("Bearer {bound}"), &[]).await.status, 200);
    let proof = key.proof(&proof_claims("GET", &edge.https_url("/anything"), &bound));
    let answer = send(&edge, Protocol::Http1, "GET", &format!("DPoP {bound}"), &[proof]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.challenges.len(), 1);
    assert!(answer.challenges[0].starts_with("Bearer "), "{:?}", answer.challenges);
}

/// rmcp's HTTP client holding a DPoP-bound token, as a DPoP-aware MCP client sends it: every
/// request carries `Authorization: DPoP <token>` and a fresh proof for its own method and
/// URI, in the custom headers rmcp lets a client add (its own `Bearer` header stays unused).
#[derive(Clone)]
struct DpopClient {
    inner: reqwest::Client,
    key: std::sync::Arc<ProofKey>,
    token: std::sync::Arc<str>,
}

type Headers = std::collections::HashMap<http::HeaderName, http::HeaderValue>;
type Failure = rmcp::transport::streamable_http_client::StreamableHttpError<reqwest::Error>;

impl DpopClient {
    fn with_proof(&self, method: &str, uri: &str, mut headers: Headers) -> Headers {
        let proof = self.key.proof(&proof_claims(method, uri, &self.token));
        let authorization = format!("DPoP {}", self.token);
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_str(&authorization).expect("ascii"));
        headers.insert(http::HeaderName::from_static("dpop"), http::HeaderValue::from_str(&proof).expect("ascii"));
        headers
    }
}

impl rmcp::transport::streamable_http_client::StreamableHttpClient for DpopClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: std::sync::Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<std::sync::Arc<str>>,
        _bearer: Option<String>,
        headers: Headers,
    ) -> Result<rmcp::transport::streamable_http_client::StreamableHttpPostResponse, Failure> {
        let headers = self.with_proof("POST", &uri, headers);
        self.inner.post_message(uri, message, session_id, None, headers).await
    }

    async fn delete_session(
        &self,
        uri: std::sync::Arc<str>,
        session_id: std::sync::Arc<str>,
        _bearer: Option<String>,
        headers: Headers,
    ) -> Result<(), Failure> {
        let headers = self.with_proof("DELETE", &uri, headers);
        self.inner.delete_session(uri, session_id, None, headers).await
    }

    async fn get_stream(
        &self,
        uri: std::sync::Arc<str>,
        session_id: Option<std::sync::Arc<str>>,
        last_event_id: Option<String>,
        _bearer: Option<String>,
        headers: Headers,
    ) -> Result<
        futures_util::stream::BoxStream<
            'static,
            Result<sse_stream::Sse, rmcp::transport::streamable_http_client::SseError>,
        >,
        Failure,
    > {
        let headers = self.with_proof("GET", &uri, headers);
        self.inner.get_stream(uri, session_id, last_event_id, None, headers).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rmcp_client_initializes_lists_and_calls_a_tool_with_a_dpop_bound_token() {
    use rmcp::ServiceExt;

    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let mut policy = dpop_policy(&jwks, "required");
    policy["upstream"] = json!({"base_url": format!("{}/api", api.url()), "timeout": "2s", "try_timeout": "1s"});
    policy["tools"] = json!([{
        "name": "get_company",
        "method": "GET",
        "path": "/companies/{companyId}",
        "input_schema": {"type": "object", "required": ["companyId"], "properties": {"companyId": {"type": "string"}}},
    }]);
    let edge = TestEdge::new(policy).audit_file(None, 1024).start();
    let key = std::sync::Arc::new(ProofKey::ec());
    let token = access_token(Some(&key.jkt()));
    let http = DpopClient { inner: client(Protocol::Http2), key, token: token.as_str().into() };
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(edge.https_url("/mcp"));
    let transport = rmcp::transport::StreamableHttpClientTransport::with_client(http, config);
    let client = ().serve(transport).await.expect("initialize with a DPoP proof");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.iter().map(|tool| tool.name.to_string()).collect::<Vec<_>>(), ["get_company"]);
    let arguments = json!({"companyId": "42"}).as_object().expect("object").clone();
    let params = rmcp::model::CallToolRequestParams::new("get_company").with_arguments(arguments);
    let result = client.call_tool(params).await.expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let seen = api.last_request().expect("the API was called");
    assert_eq!(seen["path"], "/api/companies/42");
    assert!(seen["headers"].get("dpop").is_none(), "the proof stays at the edge: {seen}");
    let events = edge.wait_audit(|events| events.iter().any(|event| event["event.action"] == "TOOL_EXECUTE"));
    let successes: Vec<&Value> = events.iter().filter(|event| event["event.action"] == "AUTH_SUCCESS").collect();
    assert!(successes.len() >= 3, "initialize, tools/list and tools/call each proved the key: {successes:?}");
    assert!(successes.iter().all(|event| event["auth.method"] == "dpop"), "{successes:?}");
    assert!(
        !events.iter().any(|event| event["event.action"] == "AUTH_FAILED"),
        "no request of the client was refused (a proof reused across requests would be a replay)"
    );
    client.cancel().await.expect("close");
}

/// RFC 9449 §11.1 across replicas: with `store.backend: redis`, a proof's `jti` is remembered
/// in Redis, so a proof captured on its way to one replica is refused by the other. Both sit
/// behind one public origin (`dpop_public_url`), as replicas behind a load balancer do.
#[tokio::test(flavor = "multi_thread")]
async fn a_proof_used_on_one_replica_is_a_replay_on_the_other() {
    let redis = crate::support::redis_server::RedisServer::start();
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let mut policy = dpop_policy(&jwks, "required");
    policy["auth"]["jwt"]["dpop_public_url"] = json!("https://edge.test");
    policy["store"] = json!({
        "backend": "redis",
        "redis": {"url": redis.url(), "key_prefix": "dpop-test:", "timeout": "1s", "on_error": "deny"},
    });
    let replicas = [
        TestEdge::new(policy.clone()).passthrough(&api.url()).start(),
        TestEdge::new(policy).passthrough(&api.url()).start(),
    ];
    let key = ProofKey::ec();
    let token = access_token(Some(&key.jkt()));
    let authorization = format!("DPoP {token}");
    let proof = key.proof(&proof_claims("GET", "https://edge.test/anything", &token));

    let first = send(&replicas[0], Protocol::Http1, "GET", &authorization, std::slice::from_ref(&proof)).await;
    assert_eq!(first.status, 200, "{:?}", first.challenges);
    let replayed = send(&replicas[1], Protocol::Http1, "GET", &authorization, &[proof]).await;
    assert_eq!(replayed.status, 401, "the other replica must know the jti");
    assert!(
        replayed.challenges.iter().any(|challenge| challenge.contains("invalid_dpop_proof")),
        "{:?}",
        replayed.challenges
    );
    assert_eq!(logged_reason(&replicas[1], &replayed.request_id), "dpop_replay");

    let fresh = key.proof(&proof_claims("GET", "https://edge.test/anything", &token));
    assert_eq!(send(&replicas[1], Protocol::Http1, "GET", &authorization, &[fresh]).await.status, 200);
    // What Redis holds: two digests with the proof window as expiry, never a proof or a jti.
    let stored = redis.dump("dpop-test:");
    let jtis: Vec<&(String, String)> =
        stored.iter().filter(|(name, _)| name.starts_with("dpop-test:dpop-jti:")).collect();
    assert_eq!(jtis.len(), 2, "{stored:?}");
    let everything = format!("{stored:?}");
    assert!(!everything.contains("e2e-") && !everything.contains(&token[..40]), "{everything}");
}
