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

const DPOP_JWT: &str = "auth:\n  mode: jwt\n  jwt:\n    issuer: https://issuer.example\n    audiences: [edge]\n    \
                        jwks_url: https://issuer.example/jwks.json\n";

#[test]
fn dpop_defaults_follow_the_design() {
    let config = load_text(&format!("{PLAIN}{DPOP_JWT}"), &[]).expect("valid");
    let dpop = config.auth.jwt.expect("jwt").dpop;
    assert_eq!(dpop.mode, DpopMode::Off);
    assert_eq!(dpop.max_age, Duration::from_secs(60));
    assert_eq!(dpop.algorithms, ["ES256", "RS256", "PS256", "EdDSA"]);
    assert_eq!(dpop.public_url, None);
    assert_eq!(dpop.replay_cache, 100_000);
}

#[test]
fn dpop_settings_are_read_and_false_means_off() {
    let yaml = format!(
        "{PLAIN}{DPOP_JWT}    dpop: required\n    dpop_max_age: 30s\n    dpop_algorithms: [EdDSA, ES256]\n    \
         dpop_public_url: \"HTTPS://Edge.Example:443\"\n    dpop_replay_cache: 500\n"
    );
    let dpop = load_text(&yaml, &[]).expect("valid").auth.jwt.expect("jwt").dpop;
    assert_eq!(dpop.mode, DpopMode::Required);
    assert_eq!(dpop.max_age, Duration::from_secs(30));
    assert_eq!(dpop.algorithms, ["EdDSA", "ES256"]);
    assert_eq!(dpop.public_url.as_deref(), Some("https://edge.example"), "an origin, normalised");
    assert_eq!(dpop.replay_cache, 500);
    for (written, mode) in [("false", DpopMode::Off), ("off", DpopMode::Off), ("optional", DpopMode::Optional)] {
        let yaml = format!("{PLAIN}{DPOP_JWT}    dpop: {written}\n");
        let config = load_text(&yaml, &[]).unwrap_or_else(|errors| panic!("dpop: {written}: {errors:?}"));
        assert_eq!(config.auth.jwt.expect("jwt").dpop.mode, mode, "dpop: {written}");
    }
}

#[test]
fn dpop_settings_are_checked() {
    let yaml = format!("{PLAIN}{DPOP_JWT}    dpop: sometimes\n");
    assert!(load_text(&yaml, &[]).is_err(), "an unknown dpop mode is refused");
    let yaml = format!(
        "{PLAIN}{DPOP_JWT}    dpop: optional\n    dpop_max_age: 2h\n    dpop_algorithms: [HS256, none, ES256]\n    \
         dpop_public_url: https://edge.example/mcp\n    dpop_replay_cache: 0\n"
    );
    let problems = messages(load_text(&yaml, &[]));
    for expected in [
        "auth.jwt.dpop_max_age: \"2h\" is out of range",
        "auth.jwt.dpop_algorithms: \"HS256\" is not allowed for DPoP proofs",
        "auth.jwt.dpop_algorithms: \"none\" is not allowed for DPoP proofs",
        "auth.jwt.dpop_public_url: \"https://edge.example/mcp\" is not an origin",
        "auth.jwt.dpop_replay_cache: 0 is out of range",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected} missing from {problems:?}");
    }
    assert_eq!(problems.len(), 5, "{problems:?}");
    let empty = format!("{PLAIN}{DPOP_JWT}    dpop_algorithms: []\n");
    assert!(messages(load_text(&empty, &[])).iter().any(|p| p.starts_with("auth.jwt.dpop_algorithms: is empty")));
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

/// A JSON Schema is full of `$` (`$ref`, `$defs`, `$id`): only `${VAR}` is interpolated, so a
/// schema loads as written even when the environment happens to hold `ref` or `defs`.
#[test]
fn a_schema_with_ref_and_defs_loads_unchanged_and_validates() {
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\ntools:\n  - name: ship\n    path: /ship\n    input_schema:\n      \
         $id: \"https://schemas.example/ship\"\n      type: object\n      \
         $defs: {{address: {{type: string, pattern: \"^[A-Z]+$\"}}}}\n      \
         properties: {{to: {{$ref: \"#/$defs/address\"}}}}\n      required: [to]\n    \
         output_schema: {{$ref: \"#/$defs/receipt\", $defs: {{receipt: {{type: object}}}}}}\n"
    );
    let environment = [("ref", "x"), ("defs", "x"), ("id", "x")];
    let config = load_text(&yaml, &environment).expect("valid");
    let tool = &config.tools[0];
    let expected = serde_json::json!({
        "$id": "https://schemas.example/ship",
        "type": "object",
        "$defs": {"address": {"type": "string", "pattern": "^[A-Z]+$"}},
        "properties": {"to": {"$ref": "#/$defs/address"}},
        "required": ["to"],
    });
    assert_eq!(tool.input_schema, expected);
    assert_eq!(
        tool.output_schema,
        Some(serde_json::json!({"$ref": "#/$defs/receipt", "$defs": {"receipt": {"type": "object"}}}))
    );
    let validator = jsonschema::draft202012::new(&tool.input_schema).expect("compiles");
    assert!(validator.is_valid(&serde_json::json!({"to": "BERLIN"})));
    assert!(!validator.is_valid(&serde_json::json!({"to": "berlin"})), "the $ref is followed");
}

#[test]
fn a_bare_dollar_name_is_kept_as_written() {
    let yaml = format!("{PLAIN}auth: {{mode: none}}\nmcp: {{server_name: \"edge-$REGION-$\"}}\n");
    let config = load_text(&yaml, &[("REGION", "eu")]).expect("valid");
    assert_eq!(config.mcp.server_name, "edge-$REGION-$");
}

#[test]
fn braced_variables_interpolate_everywhere_schemas_included() {
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\nmcp: {{server_name: \"edge-${{REGION}}-${{ZONE:-a}}\"}}\ntools:\n  - name: t\n    \
         path: /t\n    input_schema: {{type: object, description: \"in ${{REGION}}\", properties: {{}}}}\n"
    );
    let config = load_text(&yaml, &[("REGION", "eu")]).expect("valid");
    assert_eq!(config.mcp.server_name, "edge-eu-a");
    assert_eq!(config.tools[0].input_schema["description"], "in eu");
}

#[test]
fn a_doubled_dollar_is_a_literal_dollar() {
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\nmcp: {{server_name: \"$$5 $${{REGION}} $$$$\"}}\ntools:\n  - name: t\n    \
         path: /t\n    input_schema: {{type: object, description: \"$${{REGION}} costs $$1\", properties: {{}}}}\n"
    );
    let config = load_text(&yaml, &[("REGION", "eu")]).expect("valid");
    assert_eq!(config.mcp.server_name, "$5 ${REGION} $$");
    assert_eq!(config.tools[0].input_schema["description"], "${REGION} costs $1");
}

#[test]
fn an_unset_braced_variable_is_null_and_reported_where_it_is_needed() {
    let yaml =
        format!("{PLAIN}auth: {{mode: none}}\nupstream: {{auth: {{mode: static, token: \"${{UNSET_TOKEN}}\"}}}}\n");
    let errors = load_text(&yaml, &[]).expect_err("invalid").errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "upstream.auth.token");
    assert_eq!(errors[0].message, "mode static needs a token (sent as Authorization: Bearer)");
    assert_eq!(errors[0].source, Source::File { line: 3, column: 25 });
}

/// Columns count the file as written, whatever `$` the loader had to escape before them.
#[test]
fn problems_after_a_bare_dollar_keep_their_column() {
    let yaml = format!("{PLAIN}auth: {{mode: none}}\nmcp: {{server_name: \"$a $b $$\", path: nope}}\n");
    let errors = load_text(&yaml, &[]).expect_err("invalid").errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key, "mcp.path");
    assert_eq!(errors[0].source, Source::File { line: 3, column: 38 });
    let yaml = format!("{PLAIN}auth: {{mode: none}}\nmcp: {{server_name: \"$a $b\", bogus: 1}}\n");
    let errors = load_text(&yaml, &[]).expect_err("invalid").errors;
    assert!(matches!(errors[0].source, Source::File { line: 3, column: 29 }), "{errors:?}");
}

/// The rule holds whatever the scalar's style: plain, quoted, block, tagged, inside flow
/// collections, and in a `headers` map whose keys are never interpolated.
#[test]
fn every_scalar_style_keeps_a_bare_dollar_and_interpolates_braces() {
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\ntools:\n  - name: plain\n    path: /a\n    description: $a ${{R}} $$b\n  \
         - {{name: single, path: /a, description: '$a ${{R}} $$b'}}\n  \
         - {{name: double, path: /a, description: \"$a ${{R}} $$b\"}}\n  \
         - name: literal\n    path: /a\n    description: |\n      $a ${{R}} $$b\n  \
         - name: folded\n    path: /a\n    description: >-\n      $a\n      ${{R}} $$b\n  \
         - {{name: tagged, path: /a, description: !!str \"$a ${{R}} $$b\"}}\n  \
         - {{name: headers, path: /a, headers: {{X-$a: \"$a ${{R}}\"}}}}\n"
    );
    let config = load_text(&yaml, &[("R", "eu"), ("a", "oops"), ("b", "oops")]).expect("valid");
    let descriptions: Vec<(&str, &str)> =
        config.tools.iter().map(|tool| (tool.name.as_str(), tool.description.as_str())).collect();
    assert_eq!(
        descriptions,
        [
            ("plain", "$a eu $b"),
            ("single", "$a eu $b"),
            ("double", "$a eu $b"),
            ("literal", "$a eu $b\n"),
            ("folded", "$a eu $b"),
            ("tagged", "$a eu $b"),
            ("headers", ""),
        ]
    );
    assert_eq!(config.tools[6].headers.get("X-$a").map(String::as_str), Some("$a eu"));
}

/// A secret written `$NAME` was an environment reference before only `${NAME}` was
/// interpolated; taken literally it would be a secret anyone reading the policy knows.
#[test]
fn a_secret_written_as_a_bare_reference_is_refused() {
    let environment = [("EDGE_TOKEN_FOR_THE_CI_RUNNER", "0123456789abcdef0123456789abcdef")];
    let yaml = format!(
        "{PLAIN}auth:\n  mode: bearer\n  bearer: {{tokens: [$EDGE_TOKEN_FOR_THE_CI_RUNNER, {{id: ci, value: $EDGE_TOKEN_FOR_THE_CI_RUNNER}}]}}\n\
         upstream: {{auth: {{mode: static, token: $UPSTREAM_TOKEN}}}}\nmcp: {{session_key: $MCP_SESSION_KEY}}\n"
    );
    let problems = messages(load_text(&yaml, &environment));
    let bare = "is a bare $NAME, which is not interpolated (only ${NAME} is); write ${NAME} or the value itself";
    assert_eq!(
        problems,
        [
            format!("auth.bearer.tokens: a token {bare}"),
            format!("auth.bearer.tokens: token \"ci\": a token {bare}"),
            format!("upstream.auth.token: {bare}"),
            format!("mcp.session_key: {bare}"),
        ]
    );
    assert!(problems.iter().all(|problem| !problem.contains("EDGE_TOKEN")), "the value is never quoted");
    let hs256 = format!(
        "{PLAIN}auth:\n  mode: jwt\n  jwt: {{issuer: https://i.example, audiences: [a], hs256_secret: $JWT_SECRET_OF_AT_LEAST_32_BYTES_}}\n"
    );
    assert_eq!(messages(load_text(&hs256, &[])), [format!("auth.jwt.hs256_secret: {bare}")]);
    let braced =
        format!("{PLAIN}auth:\n  mode: bearer\n  bearer: {{tokens: [\"${{EDGE_TOKEN_FOR_THE_CI_RUNNER}}\"]}}\n");
    assert_eq!(load_text(&braced, &environment).expect("valid").auth.bearer.tokens.len(), 1);
}

#[test]
fn the_store_defaults_to_memory_and_redis_keys_follow_the_design() {
    let config = load_text(&format!("{PLAIN}auth: {{mode: none}}\n"), &[]).expect("valid");
    assert_eq!(config.store.backend, StoreBackend::Memory);
    assert_eq!(config.rate_limit.scope, RateLimitScope::Local);
    let yaml = format!(
        "{PLAIN}auth: {{mode: none}}\nstore:\n  backend: redis\n  redis: {{url: \"${{REDIS_URL}}\"}}\n\
         rate_limit: {{scope: global, key: principal_and_tool}}\n\
         tools:\n  - {{name: t, path: /t, rate_limit: {{requests_per_minute: 10}}}}\n"
    );
    let config = load_text(&yaml, &[("REDIS_URL", "redis://:pw@127.0.0.1:6390/2")]).expect("valid");
    let StoreBackend::Redis(redis) = &config.store.backend else { panic!("redis") };
    assert_eq!(redis.url.0, "redis://:pw@127.0.0.1:6390/2");
    assert_eq!(
        (redis.key_prefix.as_str(), redis.timeout, redis.on_error),
        ("mcp-edge:", Duration::from_millis(50), OnStoreError::Allow)
    );
    assert!(!format!("{redis:?}").contains("pw"), "the URL's password is redacted");
    assert_eq!(config.rate_limit.key, RateLimitKey::PrincipalAndTool);
    assert_eq!(
        config.tools[0].rate_limit,
        Some(Quota { requests_per_minute: std::num::NonZeroU32::new(10).expect("10"), burst: 0 })
    );
}

#[test]
fn store_problems_are_located_and_named() {
    let cases: &[(&str, &[&str])] = &[
        ("rate_limit: {scope: global}\n", &["rate_limit.scope: global needs a shared store; set store.backend: redis"]),
        ("store: {backend: redis}\n", &["store.redis.url: is required with store.backend redis"]),
        (
            "store: {backend: redis, redis: {url: \"http://r\"}}\n",
            &["store.redis.url: has scheme http; write redis://host:port/db (rediss:// for TLS)"],
        ),
        (
            "store: {backend: redis, redis: {url: \"redis://r\", timeout: 0ms, on_error: deny}}\n",
            &["store.redis.timeout: \"0ms\" is out of range; allowed is 1ms to 10s"],
        ),
        (
            "store: {backend: redis, redis: {url: \"redis://r\"}}\nsessions: {enabled: true}\n",
            &[
                "sessions.encryption_key: is required when sessions are enabled with store.backend redis (32 bytes, base64)",
            ],
        ),
        (
            "sessions: {encryption_key: c2hvcnQ=}\n",
            &["sessions.encryption_key: must be 32 bytes in base64 (e.g. openssl rand -base64 32)"],
        ),
        (
            "tools:\n  - {name: t, path: /t, rate_limit: {burst: 2}}\n",
            &["tools[t].rate_limit.requests_per_minute: is required"],
        ),
    ];
    for (yaml, expected) in cases {
        let got = messages(load_text(&format!("{PLAIN}auth: {{mode: none}}\n{yaml}"), &[]));
        assert_eq!(&got, expected, "for {yaml}");
    }
    let located =
        load_text(&format!("{PLAIN}auth: {{mode: none}}\nrate_limit:\n  scope: global\n"), &[]).expect_err("invalid");
    assert_eq!(located.errors[0].source, Source::File { line: 4, column: 10 });
    let key = "sessions: {enabled: true, encryption_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}\n";
    let yaml = format!("{PLAIN}auth: {{mode: none}}\nstore: {{backend: redis, redis: {{url: \"redis://r\"}}}}\n{key}");
    let config = load_text(&yaml, &[]).expect("valid");
    assert_eq!(config.sessions.encryption_key.as_ref().map(|key| key.0), Some(*b"0123456789abcdef0123456789abcdef"));
}
