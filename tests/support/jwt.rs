//! Test tokens and a local JWKS server (the test keys in `tests/fixtures/jwt/`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "mcp-edge-test";

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(super::repo_root().join("tests/fixtures/jwt").join(name)).expect("fixture")
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// Claims that pass: issuer, audience, subject, an hour of validity.
pub fn claims() -> serde_json::Value {
    serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now() - 10, "exp": now() + 3600})
}

pub fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
    mcp_edge::crypto::install_providers();
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&fixture("rsa.key")).expect("rsa key"),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&fixture("ec.key")).expect("ec key"),
        _ => panic!("sign_hs256 for HMAC"),
    };
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

pub fn sign_rs256_other_key(kid: &str, claims: &serde_json::Value) -> String {
    mcp_edge::crypto::install_providers();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(&fixture("rsa-other.key")).expect("key"))
        .expect("sign")
}

pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    mcp_edge::crypto::install_providers();
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).expect("sign")
}

/// A token with a hand-written header (e.g. `alg: none`), signed or not by the caller.
pub fn unsigned(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
    use base64::Engine;
    let encode = |value: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{signature}", encode(header), encode(claims))
}

/// Serves `/jwks.json` from a fixture and counts the fetches.
pub struct JwksServer {
    pub address: SocketAddr,
    pub fetches: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct JwksState {
    document: Arc<Vec<u8>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks(State(state): State<JwksState>) -> impl IntoResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    ([("content-type", "application/json"), ("cache-control", "public, max-age=300")], state.document.as_ref().clone())
}

impl JwksServer {
    pub async fn start(fixture_name: &str) -> Self {
        let fetches = Arc::new(AtomicUsize::new(0));
        let state = JwksState { document: Arc::new(fixture(fixture_name)), fetches: Arc::clone(&fetches) };
        let app = Router::new().route("/jwks.json", get(jwks)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, fetches, _task: task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.address)
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
