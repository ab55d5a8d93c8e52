//! The `auth` section: mode, bearer tokens, JWT settings and the Firebase preset.

use super::*;

/// Google's public keys for Firebase ID tokens, as a JWKS.
const FIREBASE_JWKS_URL: &str =
    "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";

impl Builder<'_> {
    /// A JWKS URL: https, or http only to a loopback address (a key set fetched in the clear
    /// could be swapped by anyone on the path).
    fn jwks_url(&mut self, located: &Located<String>) -> Option<Url> {
        let url = self.http_url("auth.jwt.jwks_url", &located.value, source_of(located))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if url.scheme() != "https" && !loopback {
            self.at(
                located,
                "auth.jwt.jwks_url",
                format!("{:?} must use https (http is allowed only for loopback)", located.value),
            );
            return None;
        }
        Some(url)
    }

    pub(super) fn build_auth(&mut self, raw: Option<&RawAuth>) -> Auth {
        let fallback = Auth { mode: AuthMode::None, bearer: Bearer::default(), jwt: None };
        let Some(raw) = raw else {
            self.problem(
                Source::Document,
                "auth",
                "section is missing; mcp-edge does not start without one. Set auth.mode to bearer, jwt, \
                 bearer_or_jwt, or none (none must be written out)",
            );
            return fallback;
        };
        let Some(mode) = &raw.mode else {
            self.problem(Source::Document, "auth.mode", "is missing; allowed: none, bearer, jwt, bearer_or_jwt");
            return fallback;
        };
        let auth_mode = match mode.value {
            AuthModeName::None => AuthMode::None,
            AuthModeName::Bearer => AuthMode::Bearer,
            AuthModeName::Jwt => AuthMode::Jwt,
            AuthModeName::BearerOrJwt => AuthMode::BearerOrJwt,
        };
        let bearer = self.build_bearer(raw.bearer.as_ref());
        if auth_mode == AuthMode::Bearer && bearer.tokens.is_empty() && bearer.tokens_file.is_none() {
            // Not an error: the edge fails closed (every request gets 401) until a token is
            // configured, which is what a deployment waiting for its Secret should do.
            self.warnings.push(ConfigError {
                file: self.file.clone(),
                source: source_of(mode),
                key: "auth.bearer".to_string(),
                message: format!(
                    "mode {} has no token, so every authenticated request is refused; set auth.bearer.tokens, \
                     auth.bearer.tokens_file or MCP_AUTH_TOKEN",
                    auth_mode.as_str()
                ),
            });
        }
        let wants_jwt = matches!(auth_mode, AuthMode::Jwt | AuthMode::BearerOrJwt);
        let jwt = match (&raw.jwt, wants_jwt) {
            (Some(raw_jwt), true) => self.build_jwt(raw_jwt),
            (None, true) => {
                self.at(mode, "auth.jwt", format!("mode {} needs an auth.jwt section", auth_mode.as_str()));
                None
            }
            (_, false) => None,
        };
        Auth { mode: auth_mode, bearer, jwt }
    }

    pub(super) fn build_bearer(&mut self, raw: Option<&RawBearer>) -> Bearer {
        let mut tokens = self.bearer_tokens(raw.map(|raw| raw.tokens.as_slice()).unwrap_or_default());
        if let Some(value) = self.environment.get("MCP_AUTH_TOKEN").filter(|value| !value.is_empty()) {
            if let Some(message) = bearer_token_problem(value) {
                self.problem(Source::Env("MCP_AUTH_TOKEN"), "", message);
            } else if !tokens.iter().any(|known| &known.value == value) {
                tokens.push(BearerToken { id: None, value: value.clone(), scopes: Vec::new() });
            }
        }
        let tokens_file = raw.and_then(|raw| raw.tokens_file.as_ref()).and_then(|located| self.tokens_file(located));
        Bearer { tokens, tokens_file }
    }

    /// `auth.bearer.tokens`: plain values or `{id, value, scopes}` objects, deduplicated; an
    /// entry whose value is an unset `${VAR}` is dropped.
    fn bearer_tokens(&mut self, raw: &[Option<Located<RawToken>>]) -> Vec<BearerToken> {
        let mut tokens: Vec<BearerToken> = Vec::new();
        let mut ids = HashSet::new();
        for located in raw.iter().flatten() {
            let token = match &located.value {
                RawToken::Plain(value) => BearerToken { id: None, value: value.clone(), scopes: Vec::new() },
                RawToken::Named(named) => {
                    let value = match named.value.clone() {
                        Some(Some(value)) => value,
                        Some(None) => continue,
                        None => {
                            self.at(located, "auth.bearer.tokens", "a token object needs a value");
                            continue;
                        }
                    };
                    BearerToken { id: named.id.clone(), value, scopes: named.scopes.clone() }
                }
            };
            let bare = bare_reference_problem(&token.value).map(|problem| format!("a token {problem}"));
            if let Some(message) = bare.or_else(|| bearer_token_problem(&token.value).map(str::to_string)) {
                // The entry is named by its position (and id), never by its value.
                let message = match &token.id {
                    Some(id) => format!("token {id:?}: {message}"),
                    None => message,
                };
                self.at(located, "auth.bearer.tokens", message);
                continue;
            }
            if let Some(id) = &token.id
                && !ids.insert(id.clone())
            {
                self.at(located, "auth.bearer.tokens", format!("token id {id:?} is used twice"));
            }
            if !tokens.iter().any(|known| known.value == token.value) {
                tokens.push(token);
            }
        }
        tokens
    }

    /// `auth.bearer.tokens_file`: a readable file of usable tokens.
    fn tokens_file(&mut self, located: &Located<String>) -> Option<PathBuf> {
        let path = self.path(&located.value);
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => {
                // Checked here too, so `validate` names the line; the file is re-checked
                // on every re-read (`BearerTokens::reload_file`).
                match std::fs::read_to_string(&path).map(|text| tokens_file_entries(&text).map(|_| ())) {
                    Ok(Ok(())) => {}
                    Ok(Err(problem)) => {
                        self.at(located, "auth.bearer.tokens_file", format!("{}: {problem}", path.display()));
                    }
                    Err(error) => {
                        self.at(located, "auth.bearer.tokens_file", format!("cannot read {}: {error}", path.display()));
                    }
                }
                Some(path)
            }
            Ok(_) => {
                self.at(located, "auth.bearer.tokens_file", format!("{} is not a file", path.display()));
                None
            }
            Err(error) => {
                self.at(located, "auth.bearer.tokens_file", format!("cannot read {}: {error}", path.display()));
                None
            }
        }
    }

    pub(super) fn build_jwt(&mut self, raw: &RawJwt) -> Option<Jwt> {
        let leeway = self.bounded_duration(
            "auth.jwt.leeway",
            &raw.leeway,
            Duration::from_secs(60),
            (Duration::ZERO, Duration::from_secs(300)),
        );
        let algorithms = self.jwt_algorithms(&raw.algorithms);
        let required_claims = self.jwt_required_claims(raw.required_claims.as_deref());
        let resource_metadata = raw.resource_metadata.as_ref().and_then(|raw| self.resource_metadata(raw));
        let dpop = self.dpop(raw);
        let checks = JwtChecks { leeway, required_claims, resource_metadata, dpop };
        match &raw.preset {
            Some(preset) => self.firebase_jwt(raw, preset, checks),
            None => self.explicit_jwt(raw, algorithms, checks),
        }
    }

    /// `auth.jwt.algorithms`: the known names kept, every other one a problem.
    fn jwt_algorithms(&mut self, raw: &[Located<String>]) -> Vec<String> {
        let mut algorithms = Vec::new();
        for located in raw {
            if JWT_ALGORITHMS.contains(&located.value.as_str()) {
                algorithms.push(located.value.clone());
            } else {
                self.at(
                    located,
                    "auth.jwt.algorithms",
                    format!("{:?} is not allowed; allowed: {}", located.value, JWT_ALGORITHMS.join(", ")),
                );
            }
        }
        algorithms
    }

    /// The `auth.jwt.dpop*` keys (RFC 9449 proofs). They are checked whatever the mode, so
    /// a typo shows before the day DPoP is turned on.
    fn dpop(&mut self, raw: &RawJwt) -> Dpop {
        let defaults = Dpop::default();
        let mode = match raw.dpop.as_ref().map(|located| located.value) {
            None | Some(DpopModeName::Off) => DpopMode::Off,
            Some(DpopModeName::Optional) => DpopMode::Optional,
            Some(DpopModeName::Required) => DpopMode::Required,
        };
        // Below a second every proof would be stale on arrival; past ten minutes a captured
        // proof stays replayable for long and the replay cache must hold every jti that long.
        let max_age = self.bounded_duration(
            "auth.jwt.dpop_max_age",
            &raw.dpop_max_age,
            defaults.max_age,
            (Duration::from_secs(1), Duration::from_secs(600)),
        );
        let algorithms = match &raw.dpop_algorithms {
            None => defaults.algorithms,
            Some(raw_algorithms) => self.dpop_algorithms(raw_algorithms),
        };
        let public_url = raw.dpop_public_url.as_ref().and_then(|located| match parse_origin(&located.value) {
            Ok(origin) => Some(origin),
            Err(message) => {
                self.at(located, "auth.jwt.dpop_public_url", message);
                None
            }
        });
        let replay_cache = self.number(
            "auth.jwt.dpop_replay_cache",
            &raw.dpop_replay_cache,
            defaults.replay_cache as u32,
            (1, 10_000_000),
        ) as usize;
        Dpop { mode, max_age, algorithms, public_url, replay_cache }
    }

    /// `auth.jwt.dpop_algorithms`: asymmetric algorithms only (RFC 9449 §4.2: a proof is
    /// checked with the public key it carries, which a shared secret cannot be), at least one.
    fn dpop_algorithms(&mut self, raw: &[Located<String>]) -> Vec<String> {
        let mut algorithms: Vec<String> = Vec::new();
        for located in raw {
            let name = located.value.as_str();
            if JWT_ALGORITHMS.contains(&name) && !name.starts_with("HS") {
                if !algorithms.iter().any(|known| known == name) {
                    algorithms.push(name.to_string());
                }
            } else {
                let allowed: Vec<&str> =
                    JWT_ALGORITHMS.iter().copied().filter(|name| !name.starts_with("HS")).collect();
                self.at(
                    located,
                    "auth.jwt.dpop_algorithms",
                    format!("{name:?} is not allowed for DPoP proofs; allowed: {}", allowed.join(", ")),
                );
            }
        }
        if raw.is_empty() {
            self.problem(Source::Document, "auth.jwt.dpop_algorithms", "is empty; list at least one, e.g. [ES256]");
        }
        algorithms
    }

    /// `auth.jwt.required_claims`: the known claims, or `exp iss aud sub` when the key is absent.
    fn jwt_required_claims(&mut self, raw: Option<&[Located<String>]>) -> Vec<String> {
        let Some(raw) = raw else { return ["exp", "iss", "aud", "sub"].map(String::from).to_vec() };
        let mut required_claims = Vec::new();
        for located in raw {
            if JWT_CLAIMS.contains(&located.value.as_str()) {
                required_claims.push(located.value.clone());
            } else {
                self.at(
                    located,
                    "auth.jwt.required_claims",
                    format!("{:?} is not a known claim; allowed: {}", located.value, JWT_CLAIMS.join(", ")),
                );
            }
        }
        required_claims
    }

    /// `auth.jwt.resource_metadata` (RFC 9728): the resource URL and the authorization servers.
    fn resource_metadata(&mut self, raw: &RawResourceMetadata) -> Option<ResourceMetadata> {
        let Some(resource) = &raw.resource else {
            self.problem(
                Source::Document,
                "auth.jwt.resource_metadata.resource",
                "is missing; set the public URL of the MCP endpoint",
            );
            return None;
        };
        let resource = self.http_url("auth.jwt.resource_metadata.resource", &resource.value, source_of(resource))?;
        let authorization_servers = raw
            .authorization_servers
            .iter()
            .filter_map(|located| {
                self.http_url("auth.jwt.resource_metadata.authorization_servers", &located.value, source_of(located))
                    // Issuer identifiers are compared as strings: keep them as written.
                    .map(|_| located.value.trim().to_string())
            })
            .collect();
        Some(ResourceMetadata { resource, authorization_servers, scopes_supported: raw.scopes_supported.clone() })
    }

    /// `preset: firebase`: issuer, audience, keys and algorithm follow from `project_id`, and
    /// setting any of them as well is a problem.
    fn firebase_jwt(&mut self, raw: &RawJwt, preset: &Located<JwtPresetName>, checks: JwtChecks) -> Option<Jwt> {
        let JwtPresetName::Firebase = preset.value;
        let Some(project) = &raw.project_id else {
            self.at(preset, "auth.jwt.project_id", "preset firebase needs project_id (your Firebase project id)");
            return None;
        };
        let project_id = project.value.trim().to_string();
        if project_id.is_empty() || !project_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            self.at(
                project,
                "auth.jwt.project_id",
                format!("{:?} is not a Firebase project id (letters, digits and -)", project.value),
            );
            return None;
        }
        for (set, key) in [
            (raw.issuer.is_some(), "issuer"),
            (!raw.audiences.is_empty(), "audiences"),
            (raw.jwks_file.is_some(), "jwks_file"),
            (raw.hs256_secret.is_some(), "hs256_secret"),
            (!raw.algorithms.is_empty(), "algorithms"),
        ] {
            if set {
                self.at(preset, &format!("auth.jwt.{key}"), "is set by preset firebase; remove it");
            }
        }
        // Google's key set, unless jwks_url points at a stand-in (tests, air-gapped mirrors).
        let jwks = match &raw.jwks_url {
            Some(located) => self.jwks_url(located)?,
            None => Url::parse(FIREBASE_JWKS_URL).ok()?,
        };
        Some(Jwt {
            issuer: format!("https://securetoken.google.com/{project_id}"),
            audiences: vec![project_id.clone()],
            firebase_project: Some(project_id),
            keys: JwtKeySource::JwksUrl(jwks),
            algorithms: vec!["RS256".to_string()],
            leeway: checks.leeway,
            required_claims: checks.required_claims,
            resource_metadata: checks.resource_metadata,
            dpop: checks.dpop,
        })
    }

    /// A JWT setup written out: issuer, audiences, exactly one key source, and algorithms
    /// that fit the key (HS only with a shared secret, never with a public key).
    fn explicit_jwt(&mut self, raw: &RawJwt, mut algorithms: Vec<String>, checks: JwtChecks) -> Option<Jwt> {
        let issuer = match &raw.issuer {
            Some(located) if !located.value.trim().is_empty() => located.value.clone(),
            _ => {
                self.problem(
                    Source::Document,
                    "auth.jwt.issuer",
                    "is missing; set the expected iss claim (or preset: firebase)",
                );
                String::new()
            }
        };
        let audiences: Vec<String> = raw.audiences.iter().map(|located| located.value.clone()).collect();
        if audiences.is_empty() {
            self.problem(Source::Document, "auth.jwt.audiences", "is empty; list the aud values this edge accepts");
        }
        let keys = self.jwt_keys(raw)?;
        let hmac = matches!(keys, JwtKeySource::Hs256Secret(_));
        if algorithms.is_empty() {
            algorithms = if hmac { vec!["HS256".to_string()] } else { vec!["RS256".to_string(), "ES256".to_string()] };
        }
        self.check_algorithms_fit_keys(&algorithms, hmac);
        Some(Jwt {
            firebase_project: None,
            issuer,
            audiences,
            keys,
            algorithms,
            leeway: checks.leeway,
            required_claims: checks.required_claims,
            resource_metadata: checks.resource_metadata,
            dpop: checks.dpop,
        })
    }

    /// Exactly one of `jwks_url`, `jwks_file`, `hs256_secret`.
    fn jwt_keys(&mut self, raw: &RawJwt) -> Option<JwtKeySource> {
        let sources = [raw.jwks_url.is_some(), raw.jwks_file.is_some(), raw.hs256_secret.is_some()];
        if sources.iter().filter(|set| **set).count() != 1 {
            self.problem(Source::Document, "auth.jwt", "set exactly one of jwks_url, jwks_file, hs256_secret");
            return None;
        }
        if let Some(located) = &raw.jwks_url {
            return Some(JwtKeySource::JwksUrl(self.jwks_url(located)?));
        }
        if let Some(located) = &raw.jwks_file {
            return Some(JwtKeySource::JwksFile(self.path(&located.value)));
        }
        let located = raw.hs256_secret.as_ref()?;
        if let Some(problem) = bare_reference_problem(&located.value) {
            self.at(located, "auth.jwt.hs256_secret", problem);
        } else if located.value.len() < 32 {
            self.at(located, "auth.jwt.hs256_secret", "is shorter than 32 bytes; use a long random secret");
        }
        Some(JwtKeySource::Hs256Secret(Redacted(located.value.clone())))
    }

    fn check_algorithms_fit_keys(&mut self, algorithms: &[String], hmac: bool) {
        for algorithm in algorithms {
            if algorithm.starts_with("HS") != hmac {
                let reason = if hmac {
                    "an hs256_secret only verifies HS algorithms"
                } else {
                    "HS algorithms need hs256_secret, never a public key"
                };
                self.problem(
                    Source::Document,
                    "auth.jwt.algorithms",
                    format!("{algorithm} cannot be used here: {reason}"),
                );
            }
        }
    }
}

/// The JWT settings checked the same way with or without a preset.
struct JwtChecks {
    leeway: Duration,
    required_claims: Vec<String>,
    resource_metadata: Option<ResourceMetadata>,
    dpop: Dpop,
}
