//! Loader behaviour as data: a policy, an environment, and what comes out.

use std::time::Duration;

use super::*;

fn load_text(yaml: &str, environment: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, yaml).expect("write");
    let environment: Environment = environment.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    load_with_environment(&path, &environment)
}

const PLAIN: &str = "listen: {https: null, http: 127.0.0.1:0, admin: 127.0.0.1:0}\n";

fn messages(result: Result<Config, ConfigErrors>) -> Vec<String> {
    result.expect_err("invalid").errors.into_iter().map(|error| format!("{}: {}", error.key, error.message)).collect()
}

#[test]
fn defaults_follow_the_design() {
    let config = load_text(&format!("{PLAIN}auth: {{mode: none}}\n"), &[]).expect("valid");
    assert_eq!(config.limits.max_header_bytes, 16 * 1024);
    assert_eq!(config.limits.max_headers, 100);
    assert_eq!(config.limits.max_body_bytes, 1024 * 1024);
    assert!(config.limits.reject_underscore_headers);
    assert_eq!(config.rate_limit.requests_per_minute.get(), 100);
    assert_eq!(config.rate_limit.burst, 20);
    assert_eq!(config.upstream.base_url.as_str(), "http://127.0.0.1:5000/api");
    assert_eq!(config.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.upstream.try_timeout, Duration::from_secs(10));
    assert_eq!(config.upstream.timeout, Duration::from_secs(30));
    assert_eq!(config.mcp.path, "/mcp");
    assert_eq!(config.shutdown.drain_delay, Duration::from_secs(5));
    assert_eq!(config.shutdown.drain_timeout, Duration::from_secs(15));
    assert!(!config.cors.allow_credentials, "auto resolves to false without auth");
    assert_eq!(config.telemetry.log_format, LogFormat::Json);
}

#[test]
fn a_missing_auth_section_is_refused() {
    let problems = messages(load_text(PLAIN, &[]));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("auth: section is missing"), "{problems:?}");
}

#[test]
fn variables_interpolate_in_quoted_and_plain_scalars_with_defaults() {
    let yaml = format!(
        "{PLAIN}auth:\n  mode: bearer\n  bearer:\n    tokens:\n      - \"${{FIRST}}\"\n      - ${{SECOND}}\n      - \"${{UNSET_ROTATION}}\"\n\
         rate_limit:\n  burst: ${{BURST:-7}}\n"
    );
    let config = load_text(&yaml, &[("FIRST", "first-token-value"), ("SECOND", "second-token-value")]).expect("valid");
    let values: Vec<&str> = config.auth.bearer.tokens.iter().map(|token| token.value.as_str()).collect();
    assert_eq!(values, ["first-token-value", "second-token-value"], "an unset ${{VAR}} entry is dropped");
    assert_eq!(config.rate_limit.burst, 7);
}

#[test]
fn overrides_replace_and_add() {
    let yaml = format!("{PLAIN}auth: {{mode: bearer}}\ncors: {{allowed_origins: [https://old.example]}}\n");
    let config = load_text(
        &yaml,
        &[
            ("MCP_AUTH_TOKEN", "from-the-environment"),
            ("ALLOWED_ORIGINS", "https://a.example, http://localhost:8080"),
            ("API_BASE_URL", "https://api.internal:8443/api"),
            ("LOG_LEVEL", "debug"),
        ],
    )
    .expect("valid");
    assert_eq!(config.auth.bearer.tokens.len(), 1);
    assert_eq!(config.auth.bearer.tokens[0].value, "from-the-environment");
    assert_eq!(
        config.cors.allowed_origins,
        AllowedOrigins::List(vec!["https://a.example".to_string(), "http://localhost:8080".to_string()])
    );
    assert_eq!(config.upstream.base_url.as_str(), "https://api.internal:8443/api");
    assert_eq!(config.telemetry.log_level, "debug");
    assert!(config.cors.allow_credentials, "auto resolves to true with auth");
}

#[test]
fn bearer_without_tokens_starts_with_a_warning() {
    let config = load_text(&format!("{PLAIN}auth: {{mode: bearer}}\n"), &[]).expect("valid");
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0].message.contains("every authenticated request is refused"));
}

#[test]
fn jwt_settings_are_checked() {
    let yaml = format!(
        "{PLAIN}auth:\n  mode: jwt\n  jwt:\n    issuer: https://issuer.example\n    audiences: [edge]\n    \
         jwks_url: http://issuer.example/jwks.json\n    algorithms: [RS256, HS256, none]\n    leeway: 10m\n"
    );
    let problems = messages(load_text(&yaml, &[]));
    for expected in [
        "auth.jwt.jwks_url: \"http://issuer.example/jwks.json\" must use https (http is allowed only for loopback)",
        "auth.jwt.algorithms: \"none\" is not allowed",
        "auth.jwt.leeway: \"10m\" is out of range",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected} missing from {problems:?}");
    }
    let loopback = format!(
        "{PLAIN}auth:\n  mode: jwt\n  jwt: {{issuer: https://issuer.example, audiences: [edge], jwks_url: \"http://127.0.0.1:9/jwks\"}}\n"
    );
    assert!(load_text(&loopback, &[]).is_ok(), "http is fine on loopback");
    let empty_audience =
        format!("{PLAIN}auth:\n  mode: jwt\n  jwt: {{issuer: https://i.example, jwks_url: https://i.example/k}}\n");
    assert!(messages(load_text(&empty_audience, &[])).iter().any(|p| p.starts_with("auth.jwt.audiences: is empty")));
    let mixed = format!(
        "{PLAIN}auth:\n  mode: jwt\n  jwt: {{issuer: https://i.example, audiences: [a], hs256_secret: 0123456789abcdef0123456789abcdef, algorithms: [HS256, RS256]}}\n"
    );
    assert!(messages(load_text(&mixed, &[])).iter().any(|p| p.contains("RS256 cannot be used here")));
}

#[test]
fn the_firebase_preset_fills_issuer_audience_and_keys() {
    let yaml = format!("{PLAIN}auth:\n  mode: jwt\n  jwt: {{preset: firebase, project_id: shiftwork-prod}}\n");
    let config = load_text(&yaml, &[]).expect("valid");
    let jwt = config.auth.jwt.expect("jwt");
    assert_eq!(jwt.issuer, "https://securetoken.google.com/shiftwork-prod");
    assert_eq!(jwt.audiences, ["shiftwork-prod"]);
    assert_eq!(jwt.algorithms, ["RS256"]);
    assert!(matches!(jwt.keys, JwtKeySource::JwksUrl(ref url) if url.host_str() == Some("www.googleapis.com")));
    let without_project = format!("{PLAIN}auth:\n  mode: jwt\n  jwt: {{preset: firebase}}\n");
    assert!(
        messages(load_text(&without_project, &[]))
            .iter()
            .any(|p| p.starts_with("auth.jwt.project_id: preset firebase needs"))
    );
    let overridden =
        format!("{PLAIN}auth:\n  mode: jwt\n  jwt: {{preset: firebase, project_id: p, issuer: https://x.example}}\n");
    assert!(
        messages(load_text(&overridden, &[]))
            .iter()
            .any(|p| p.starts_with("auth.jwt.issuer: is set by preset firebase"))
    );
}

#[test]
fn token_values_never_appear_in_debug_output() {
    let config = load_text(&format!("{PLAIN}auth:\n  mode: bearer\n  bearer: {{tokens: [super-secret-value]}}\n"), &[])
        .expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("super-secret-value"));
    assert!(debug.contains("[REDACTED]"));
}

#[test]
fn value_problems_are_located_and_all_reported() {
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\nlimits: {{max_headers: 0, max_header_bytes: 16KB}}\ntrusted_proxies: [10.0.0.0/8, not-a-cidr]\n\
         upstream: {{timeout: 1s, try_timeout: 5s}}\nmcp: {{path: /health}}\ntools:\n  - {{name: bad name!, path: /x}}\n  - {{name: ok, method: TRACE, path: x}}\n"
    );
    let errors = load_text(&yaml, &[]).expect_err("invalid").errors;
    let keys: Vec<&str> = errors.iter().map(|error| error.key.as_str()).collect();
    for key in [
        "limits.max_headers",
        "limits.max_header_bytes",
        "trusted_proxies",
        "upstream.try_timeout",
        "mcp.path",
        "tools.name",
        "tools[ok].method",
        "tools[ok].path",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(errors.iter().all(|error| matches!(error.source, Source::File { line, .. } if line > 1)), "{errors:?}");
}
