//! Authentication end to end: bearer, JWT (RS256, ES256, HS256) against a local JWKS, the
//! Firebase preset against a stand-in for Google's keys, every rejection a 401 with its
//! reason in the log, and no credential ever in a log line.

use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::edge::TestEdge;
use crate::support::jwt::{self, AUDIENCE, ISSUER, JwksServer, claims, now, sign};
use crate::support::mock_api::MockApi;
use crate::support::tls_client::{Protocol, client};

const BEARER: &str = "static-bearer-token-0001";

/// Sends GET /anything with `token` and returns the status and the request id.
async fn call(edge: &TestEdge, token: Option<&str>) -> (u16, String) {
    let mut request = client(Protocol::Http1).get(edge.https_url("/anything"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request");
    let request_id = response.headers()["x-request-id"].to_str().expect("ascii").to_string();
    (response.status().as_u16(), request_id)
}

/// Asserts a 401 whose log line names `reason`.
async fn refused(edge: &TestEdge, token: Option<&str>, reason: &str) {
    let (status, request_id) = call(edge, token).await;
    assert_eq!(status, 401, "expected 401 ({reason})");
    let logged = edge.stderr();
    let line = logged.lines().find(|line| line.contains(&request_id) && line.contains("Authentication failed"));
    let line = line.unwrap_or_else(|| panic!("no log line for {request_id}:\n{logged}"));
    assert!(line.contains(&format!("\"reason\":\"{reason}\"")), "expected reason {reason}: {line}");
}

async fn jwt_edge(api: &MockApi, jwks: &JwksServer, mode: &str) -> TestEdge {
    let mut policy = jwks_policy(&jwks.url());
    policy["auth"]["mode"] = json!(mode);
    policy["auth"]["bearer"] = json!({"tokens": [BEARER]});
    policy["auth"]["jwt"]["leeway"] = json!("30s");
    policy["rate_limit"] = json!({"requests_per_minute": 6000, "burst": 100});
    TestEdge::new(policy).passthrough(&api.url()).start()
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_and_bearer_tokens_get_in() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = jwt_edge(&api, &jwks, "bearer_or_jwt").await;
    assert_eq!(call(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &claims()))).await.0, 200);
    assert_eq!(call(&edge, Some(&sign(Algorithm::ES256, Some("ec-1"), &claims()))).await.0, 200);
    assert_eq!(call(&edge, Some(BEARER)).await.0, 200);
    // A repeat caller is served from the verified-token cache: no new JWKS fetch.
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims());
    let fetches = jwks.fetch_count();
    for _ in 0..5 {
        assert_eq!(call(&edge, Some(&token)).await.0, 200);
    }
    assert_eq!(jwks.fetch_count(), fetches);
}

#[tokio::test]
async fn every_bad_token_is_a_401_with_its_reason() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = jwt_edge(&api, &jwks, "bearer_or_jwt").await;
    let with = |patch: serde_json::Value| {
        let mut claims = claims();
        for (key, value) in patch.as_object().expect("object") {
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    };
    refused(&edge, None, "missing_token").await;
    refused(&edge, Some("not-the-bearer-token"), "invalid_token").await;
    let expired = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"exp": now() - 3600})));
    refused(&edge, Some(&expired), "expired").await;
    let early = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"nbf": now() + 3600})));
    refused(&edge, Some(&early), "not_yet_valid").await;
    let issued_later = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"iat": now() + 3600})));
    refused(&edge, Some(&issued_later), "not_yet_valid").await;
    let audience = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"aud": "someone-else"})));
    refused(&edge, Some(&audience), "wrong_audience").await;
    let issuer = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"iss": "https://evil.test"})));
    refused(&edge, Some(&issuer), "wrong_issuer").await;
    let no_exp = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"exp": null})));
    refused(&edge, Some(&no_exp), "missing_claim").await;
    let no_iss = sign(Algorithm::RS256, Some("rsa-1"), &with(serde_json::json!({"iss": null})));
    refused(&edge, Some(&no_iss), "missing_claim").await;
    let unknown_kid = sign(Algorithm::RS256, Some("rsa-9"), &claims());
    refused(&edge, Some(&unknown_kid), "unknown_kid").await;

    let none = jwt::unsigned(&serde_json::json!({"alg": "none", "typ": "JWT"}), &claims(), "");
    refused(&edge, Some(&format!("{none}x")), "invalid_token").await;
    let none_empty_signature = jwt::unsigned(&serde_json::json!({"alg": "none"}), &claims(), "AA");
    refused(&edge, Some(&none_empty_signature), "invalid_token").await;
    // Key confusion: HS256 "signed" with the RSA public key as the secret.
    let confused = jwt::sign_hs256(&jwt::fixture("rsa.pub"), &claims());
    refused(&edge, Some(&confused), "invalid_token").await;
    let critical =
        jwt::unsigned(&serde_json::json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}), &claims(), "AA");
    refused(&edge, Some(&critical), "invalid_token").await;

    let good = sign(Algorithm::RS256, Some("rsa-1"), &claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = jwt::unsigned(&serde_json::json!({}), &with(serde_json::json!({"sub": "admin"})), "");
    let tampered_payload = tampered_claims.split('.').nth(1).expect("payload").to_string();
    parts[1] = &tampered_payload;
    refused(&edge, Some(&parts.join(".")), "bad_signature").await;

    let long = format!("{good}{}", "A".repeat(9000));
    let (status, _) = call(&edge, Some(&long)).await;
    assert_eq!(status, 401, "tokens over 8 KiB are refused unparsed");

    let response = client(Protocol::Http1)
        .get(edge.https_url("/anything"))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401, "wrong scheme");
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"mcp-edge\", error=\"invalid_token\"");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized", "no detail for an attacker");

    // No credential ever reaches the log.
    let logged = edge.stderr();
    for secret in [BEARER, good.as_str(), expired.as_str(), tampered_payload.as_str(), "not-the-bearer-token"] {
        assert!(!logged.contains(secret), "a credential leaked into the log");
    }
}

#[tokio::test]
async fn fifty_unknown_kids_cause_at_most_two_jwks_fetches() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = jwt_edge(&api, &jwks, "jwt").await;
    let http = client(Protocol::Http2);
    let requests = (0..50).map(|n| {
        let token = sign(Algorithm::RS256, Some(&format!("unknown-{n}")), &claims());
        let request = http.get(edge.https_url("/anything")).header("authorization", format!("Bearer {token}"));
        async move { request.send().await.expect("request").status().as_u16() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|status| *status == 401), "{statuses:?}");
    assert!(jwks.fetch_count() <= 2, "{} JWKS fetches", jwks.fetch_count());
}

#[tokio::test]
async fn hs256_when_configured_and_nothing_else() {
    let api = MockApi::start().await;
    let secret = "hs256-test-secret-with-32-bytes-at-least";
    let edge = TestEdge::new(hs256_policy(secret)).passthrough(&api.url()).start();
    assert_eq!(call(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &claims()))).await.0, 200);
    refused(&edge, Some(&jwt::sign_hs256(b"another-secret-another-secret-xx", &claims())), "bad_signature").await;
    refused(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &claims())), "invalid_token").await;
    assert!(!edge.stderr().contains(secret));
}

#[tokio::test]
async fn firebase_tokens_are_checked_against_the_preset_rules() {
    let api = MockApi::start().await;
    let google = JwksServer::start("jwks.json").await;
    let policy = json!({
        "auth": {"mode": "jwt", "jwt": {"preset": "firebase", "project_id": "shiftwork-test", "jwks_url": google.url()}},
    });
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();
    let firebase = |patch: serde_json::Value| {
        let mut claims = serde_json::json!({
            "iss": "https://securetoken.google.com/shiftwork-test", "aud": "shiftwork-test",
            "sub": "firebase-uid-1", "auth_time": now() - 60, "iat": now() - 60, "exp": now() + 3600,
        });
        for (key, value) in patch.as_object().expect("object") {
            claims[key] = value.clone();
        }
        claims
    };
    assert_eq!(
        call(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &firebase(serde_json::json!({}))))).await.0,
        200
    );
    refused(
        &edge,
        Some(&sign(Algorithm::RS256, Some("rsa-1"), &firebase(serde_json::json!({"sub": ""})))),
        "invalid_token",
    )
    .await;
    let long_sub = "u".repeat(129);
    refused(
        &edge,
        Some(&sign(Algorithm::RS256, Some("rsa-1"), &firebase(serde_json::json!({"sub": long_sub})))),
        "invalid_token",
    )
    .await;
    let future_auth = firebase(serde_json::json!({"auth_time": now() + 3600}));
    refused(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &future_auth)), "not_yet_valid").await;
    refused(&edge, Some(&sign(Algorithm::RS256, None, &firebase(serde_json::json!({})))), "invalid_token").await;
    refused(&edge, Some(&sign(Algorithm::ES256, Some("ec-1"), &firebase(serde_json::json!({})))), "invalid_token")
        .await;
    let other_project = firebase(serde_json::json!({"aud": "another-project"}));
    refused(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &other_project)), "wrong_audience").await;
}

#[tokio::test]
async fn keys_rotated_at_the_issuer_are_picked_up_on_an_unknown_kid() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks-rotated.json").await;
    let edge = jwt_edge(&api, &jwks, "jwt").await;
    let token = jwt::sign_rs256_other_key("rsa-2", &claims());
    assert_eq!(call(&edge, Some(&token)).await.0, 200);
}

#[tokio::test]
async fn bearer_tokens_rotate_through_the_tokens_file() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("tokens");
    std::fs::write(&file, "first-rotation-token-1\n").expect("write");
    let policy = json!({"auth": {"mode": "bearer", "bearer": {"tokens_file": file}}});
    let edge = TestEdge::new(policy).start();
    let health_or_404 = |status: u16| status == 404;
    assert!(health_or_404(call(&edge, Some("first-rotation-token-1")).await.0));
    assert_eq!(call(&edge, Some("second-rotation-token-2")).await.0, 401);

    let next = dir.path().join("tokens.next");
    std::fs::write(&next, "second-rotation-token-2\n").expect("write");
    std::fs::rename(&next, &file).expect("swap");
    let deadline = Instant::now() + Duration::from_secs(15);
    while call(&edge, Some("second-rotation-token-2")).await.0 == 401 {
        assert!(Instant::now() < deadline, "the new token was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(call(&edge, Some("first-rotation-token-1")).await.0, 401, "the removed token stops working");
}

#[tokio::test]
async fn resource_metadata_is_served_and_advertised_on_401() {
    let jwks = JwksServer::start("jwks.json").await;
    let mut policy = jwks_policy(&jwks.url());
    policy["auth"]["jwt"].as_object_mut().expect("jwt").remove("algorithms");
    policy["auth"]["jwt"]["resource_metadata"] = json!({
        "resource": "https://edge.test/mcp",
        "authorization_servers": ["https://login.test"],
        "scopes_supported": ["shifts:read"],
    });
    let edge = TestEdge::new(policy).start();
    let http = client(Protocol::Http1);
    let response = http.get(edge.https_url("/mcp")).send().await.expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"mcp-edge\", error=\"invalid_token\", resource_metadata=\"https://edge.test/.well-known/oauth-protected-resource/mcp\""
    );
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let response = http.get(edge.https_url(path)).send().await.expect("metadata");
        assert_eq!(response.status(), 200, "{path} needs no token");
        let document: serde_json::Value = response.json().await.expect("json");
        assert_eq!(document["resource"], "https://edge.test/mcp");
        assert_eq!(document["authorization_servers"], serde_json::json!(["https://login.test"]));
        assert_eq!(document["bearer_methods_supported"], serde_json::json!(["header"]));
        assert_eq!(document["scopes_supported"], serde_json::json!(["shifts:read"]));
    }
}

#[tokio::test]
async fn a_scope_protected_route_answers_403_with_the_challenge_and_keeps_the_connection() {
    let api = MockApi::start().await;
    let policy = json!({"auth": {"mode": "bearer", "bearer": {"tokens": [
        {"id": "reader", "value": "reader-token-0001", "scopes": ["mcp:read"]},
        {"id": "admin", "value": "admin-token-0001", "scopes": ["mcp:read", "mcp:admin"]},
    ]}}});
    let api_url = api.url();
    let edge = TestEdge::new(policy).passthrough(&api_url).passthrough_scopes("[mcp:admin]").start();
    let mut connection = crate::support::raw_http::RawConnection::connect(edge.https).await;
    let response = connection.get("/anything", &["Authorization: Bearer reader-token-0001"]).await;
    assert_eq!(response.status, 403);
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"mcp-edge\", error=\"insufficient_scope\", scope=\"mcp:admin\"")
    );
    assert_eq!(response.json()["error"], "insufficient scope");
    let response = connection.get("/anything", &["Authorization: Bearer admin-token-0001"]).await;
    assert_eq!(response.status, 200, "same connection, principal with the scope");
}

/// Serves `app` on a free loopback port and returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}

/// JWT authentication (RS256 and ES256) against the key set at `jwks_url`.
fn jwks_policy(jwks_url: &str) -> Value {
    json!({
        "auth": {
            "mode": "jwt",
            "jwt": {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_url": jwks_url, "algorithms": ["RS256", "ES256"]},
        },
    })
}

/// JWT authentication with HS256 and this shared secret only.
fn hs256_policy(secret: &str) -> Value {
    json!({
        "auth": {
            "mode": "jwt",
            "jwt": {"issuer": ISSUER, "audiences": [AUDIENCE], "hs256_secret": secret, "algorithms": ["HS256"]},
        },
    })
}

/// A claim set to a malformed value, and the reason the edge refuses the token with.
struct ClaimCase {
    claim: &'static str,
    value: Value,
    reason: &'static str,
}

/// Waits (bounded: 15 s) until the edge's log has a line containing `text`.
fn wait_log(edge: &TestEdge, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let logged = edge.stderr();
        if let Some(line) = logged.lines().find(|line| line.contains(text)) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no log line with {text:?}:\n{logged}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_jwks_over_1_mib_without_a_length_is_refused_while_it_streams() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;
    let served = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&served);
    // A chunked body that never ends: only a cap applied while reading can refuse it.
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let counter = Arc::clone(&counter);
            async move {
                let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
                let stream = futures_util::stream::repeat(chunk).map(move |chunk| {
                    counter.fetch_add(chunk.len(), Ordering::Relaxed);
                    Ok::<_, std::convert::Infallible>(chunk)
                });
                axum::response::Response::new(axum::body::Body::from_stream(stream))
            }
        }),
    );
    let url = format!("{}/jwks.json", serve(app).await);
    let edge = TestEdge::new(jwks_policy(&url)).start();
    // The token's kid is unknown, so the edge fetches the key set now (the startup fetch may
    // have found this test's runtime still busy starting the edge).
    refused(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &claims())), "unknown_kid").await;
    let line = wait_log(&edge, "JWKS document larger than 1 MiB");
    assert!(line.contains("keeping the last good keys"), "{line}");
    assert!(served.load(Ordering::Relaxed) > 1 << 20, "the server did stream past the cap");
}

#[tokio::test]
async fn a_redirecting_jwks_url_is_not_followed() {
    let jwks = JwksServer::start("jwks.json").await;
    let target = jwks.url();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let url = format!("{}/jwks.json", serve(app).await);
    let edge = TestEdge::new(jwks_policy(&url)).start();
    refused(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &claims())), "unknown_kid").await;
    let line = wait_log(&edge, "redirects are not followed");
    assert!(line.contains("307"), "{line}");
    assert_eq!(jwks.fetch_count(), 0, "the redirect target was never fetched");
}

#[tokio::test]
async fn a_token_without_kid_is_refused_when_the_key_set_has_two_keys() {
    let api = MockApi::start().await;
    let jwks = JwksServer::start("jwks.json").await;
    let edge = jwt_edge(&api, &jwks, "jwt").await;
    assert_eq!(call(&edge, Some(&sign(Algorithm::RS256, Some("rsa-1"), &claims()))).await.0, 200);
    refused(&edge, Some(&sign(Algorithm::RS256, None, &claims())), "invalid_token").await;
    refused(&edge, Some(&sign(Algorithm::ES256, None, &claims())), "invalid_token").await;
}

#[tokio::test]
async fn required_iat_and_jti_are_enforced() {
    let api = MockApi::start().await;
    let secret = "hs256-test-secret-with-32-bytes-at-least";
    let mut policy = hs256_policy(secret);
    policy["auth"]["jwt"]["required_claims"] = json!(["exp", "iss", "aud", "sub", "iat", "jti"]);
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();
    let mut complete = claims();
    complete["jti"] = serde_json::json!("token-id-1");
    assert_eq!(call(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &complete))).await.0, 200);
    refused(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &claims())), "missing_claim").await;
    let mut no_iat = complete.clone();
    no_iat.as_object_mut().expect("object").remove("iat");
    refused(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &no_iat)), "missing_claim").await;
}

/// jsonwebtoken skips an `iss`/`aud` of the wrong type when the claim is not required: a
/// present claim must be well-formed whatever `required_claims` lists.
#[tokio::test]
async fn a_malformed_iss_or_aud_is_refused_even_when_not_required() {
    let api = MockApi::start().await;
    let secret = "hs256-test-secret-with-32-bytes-at-least";
    let mut policy = hs256_policy(secret);
    policy["auth"]["jwt"]["required_claims"] = json!(["exp"]);
    let edge = TestEdge::new(policy).passthrough(&api.url()).start();
    assert_eq!(call(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &claims()))).await.0, 200);
    for ClaimCase { claim, value, reason } in [
        ClaimCase { claim: "iss", value: json!(123), reason: "wrong_issuer" },
        ClaimCase { claim: "iss", value: json!([ISSUER]), reason: "wrong_issuer" },
        ClaimCase { claim: "iss", value: json!({"x": ISSUER}), reason: "wrong_issuer" },
        ClaimCase { claim: "aud", value: json!(7), reason: "wrong_audience" },
        ClaimCase { claim: "aud", value: json!([AUDIENCE, 7]), reason: "wrong_audience" },
    ] {
        let mut malformed = claims();
        malformed[claim] = value;
        refused(&edge, Some(&jwt::sign_hs256(secret.as_bytes(), &malformed)), reason).await;
    }
}
