//! Where requests go: the upstream API, the passthrough peer, credential sessions.

use super::*;

/// What opens the breaker besides connect errors and timeouts: the gateway's own failures, not
/// the API's 500, which any caller can provoke with a bad input.
const DEFAULT_FAILURE_STATUSES: [u16; 3] = [502, 503, 504];

impl Builder<'_> {
    pub(super) fn build_upstream(&mut self, raw: &RawUpstream) -> Upstream {
        let base_url = self.upstream_base_url(raw);
        let auth = raw.auth.as_ref().map_or(UpstreamAuth::None, |raw_auth| self.upstream_auth(raw_auth));
        let (connect_timeout, timeout, try_timeout) = self.upstream_timeouts(raw);
        let default_retry = RawRetry::default();
        let retry = self.retry(raw.retry.as_ref().unwrap_or(&default_retry));
        let default_breaker = RawBreaker::default();
        let circuit_breaker = self.circuit_breaker(raw.circuit_breaker.as_ref().unwrap_or(&default_breaker));
        Upstream {
            base_url: base_url.unwrap_or_else(default_base_url),
            auth,
            connect_timeout,
            timeout,
            try_timeout,
            max_connections: self.number("upstream.max_connections", &raw.max_connections, 100, (1, 10_000)),
            max_idle_connections: self.number(
                "upstream.max_idle_connections",
                &raw.max_idle_connections,
                20,
                (0, 10_000),
            ),
            retry,
            circuit_breaker,
        }
    }

    /// `API_BASE_URL` when set, else `upstream.base_url`; `None` falls back to the default.
    fn upstream_base_url(&mut self, raw: &RawUpstream) -> Option<Url> {
        if let Some(value) = self.environment.get("API_BASE_URL").filter(|v| !v.is_empty()) {
            self.http_url("", value, Source::Env("API_BASE_URL"))
        } else if let Some(located) = &raw.base_url {
            self.http_url("upstream.base_url", &located.value, source_of(located))
        } else {
            None
        }
    }

    fn upstream_auth(&mut self, raw_auth: &RawUpstreamAuth) -> UpstreamAuth {
        match raw_auth.mode.value {
            UpstreamAuthName::None => UpstreamAuth::None,
            UpstreamAuthName::Forward => UpstreamAuth::Forward,
            UpstreamAuthName::Session => UpstreamAuth::Session,
            UpstreamAuthName::Static => self.static_upstream_token(raw_auth),
        }
    }

    /// `mode: static` sends its `token` as `Authorization: Bearer`.
    fn static_upstream_token(&mut self, raw_auth: &RawUpstreamAuth) -> UpstreamAuth {
        let Some(token) = raw_auth.token.as_ref().filter(|token| !token.value.is_empty()) else {
            self.at(&raw_auth.mode, "upstream.auth.token", "mode static needs a token (sent as Authorization: Bearer)");
            return UpstreamAuth::None;
        };
        if let Some(problem) = bare_reference_problem(&token.value) {
            self.at(token, "upstream.auth.token", problem);
            return UpstreamAuth::None;
        }
        UpstreamAuth::Static(Redacted(token.value.clone()))
    }

    /// `connect_timeout`, `timeout` and `try_timeout`; a try may not outlast the whole call.
    fn upstream_timeouts(&mut self, raw: &RawUpstream) -> (Duration, Duration, Duration) {
        let connect_timeout = self.bounded_duration(
            "upstream.connect_timeout",
            &raw.connect_timeout,
            Duration::from_secs(2),
            (Duration::from_millis(1), Duration::from_secs(60)),
        );
        let timeout = self.bounded_duration(
            "upstream.timeout",
            &raw.timeout,
            Duration::from_secs(30),
            (Duration::from_millis(1), Duration::from_secs(3600)),
        );
        let try_timeout = self.bounded_duration(
            "upstream.try_timeout",
            &raw.try_timeout,
            Duration::from_secs(10),
            (Duration::from_millis(1), Duration::from_secs(3600)),
        );
        if try_timeout > timeout
            && let Some(located) = raw.try_timeout.as_ref().or(raw.timeout.as_ref())
        {
            self.at(located, "upstream.try_timeout", "is longer than upstream.timeout, which includes every try");
        }
        (connect_timeout, timeout, try_timeout)
    }

    /// `upstream.retry`; `max_backoff` may not be shorter than `backoff`.
    fn retry(&mut self, raw_retry: &RawRetry) -> Retry {
        let backoff = self.bounded_duration(
            "upstream.retry.backoff",
            &raw_retry.backoff,
            Duration::from_millis(500),
            (Duration::from_millis(1), Duration::from_secs(60)),
        );
        let max_backoff = self.bounded_duration(
            "upstream.retry.max_backoff",
            &raw_retry.max_backoff,
            Duration::from_secs(5),
            (Duration::from_millis(1), Duration::from_secs(300)),
        );
        if max_backoff < backoff
            && let Some(located) = raw_retry.max_backoff.as_ref().or(raw_retry.backoff.as_ref())
        {
            self.at(located, "upstream.retry.max_backoff", "is shorter than upstream.retry.backoff");
        }
        Retry {
            attempts: self.number("upstream.retry.attempts", &raw_retry.attempts, 3, (1, 10)),
            backoff,
            max_backoff,
            budget_percent: self.number("upstream.retry.budget_percent", &raw_retry.budget_percent, 20, (0, 100)),
        }
    }

    fn circuit_breaker(&mut self, raw_breaker: &RawBreaker) -> CircuitBreaker {
        CircuitBreaker {
            failure_threshold: self.number(
                "upstream.circuit_breaker.failure_threshold",
                &raw_breaker.failure_threshold,
                5,
                (1, 1000),
            ),
            open_for: self.bounded_duration(
                "upstream.circuit_breaker.open_for",
                &raw_breaker.open_for,
                Duration::from_secs(30),
                (Duration::from_millis(1), Duration::from_secs(3600)),
            ),
            half_open_probes: self.number(
                "upstream.circuit_breaker.half_open_probes",
                &raw_breaker.half_open_probes,
                1,
                (1, 100),
            ),
            failure_statuses: self.failure_statuses(raw_breaker.failure_statuses.as_deref()),
        }
    }

    pub(super) fn build_passthrough(&mut self, raw: &RawPassthrough) -> Option<Passthrough> {
        let Some(located) = &raw.url else {
            self.problem(Source::Document, "passthrough.url", "is missing; set the URL of the server to proxy to");
            return None;
        };
        let url = self.http_url("passthrough.url", &located.value, source_of(located))?;
        if url.path() != "/" || url.query().is_some() {
            self.at(
                located,
                "passthrough.url",
                "must be scheme://host[:port] only; the request path is forwarded as received",
            );
            return None;
        }
        let host = url.host_str()?.to_string();
        let tls = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(if tls { 443 } else { 80 });
        // Resolved once here: pingora's HttpPeer::new does blocking DNS and panics on failure.
        let address = match (host.trim_start_matches('[').trim_end_matches(']'), port).to_socket_addrs() {
            Ok(mut addresses) => addresses.next(),
            Err(error) => {
                self.at(located, "passthrough.url", format!("cannot resolve {host}: {error}"));
                return None;
            }
        };
        let Some(address) = address else {
            self.at(located, "passthrough.url", format!("{host} resolves to no address"));
            return None;
        };
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Some(Passthrough {
            url,
            address,
            tls,
            authority,
            scopes: raw.scopes.clone(),
            websocket: raw.websocket.unwrap_or(false),
        })
    }

    pub(super) fn build_sessions(&mut self, raw: &RawSessions) -> Sessions {
        let enabled = raw.enabled.unwrap_or(false);
        let allowed_api_urls: Vec<Url> = match &raw.allowed_api_urls {
            None => vec![default_base_url()],
            Some(list) => list
                .iter()
                .filter_map(|located| self.http_url("sessions.allowed_api_urls", &located.value, source_of(located)))
                .collect(),
        };
        if enabled && allowed_api_urls.is_empty() {
            self.problem(
                Source::Document,
                "sessions.allowed_api_urls",
                "is empty while sessions are enabled; list the API base URLs clients may use",
            );
        }
        let validate_path = match &raw.validate_path {
            None => "/settings/validate".to_string(),
            Some(located) => {
                if !located.value.starts_with('/') {
                    self.at(located, "sessions.validate_path", "must start with /");
                }
                located.value.clone()
            }
        };
        let hour = Duration::from_secs(3600);
        Sessions {
            enabled,
            auth: match raw.auth {
                None | Some(SessionAuthName::None) => SessionAuth::None,
                Some(SessionAuthName::Edge) => SessionAuth::Edge,
            },
            allow_short_ids: raw.allow_short_ids.unwrap_or(false),
            allowed_api_urls,
            validate_path,
            validate_timeout: self.bounded_duration(
                "sessions.validate_timeout",
                &raw.validate_timeout,
                Duration::from_secs(5),
                (Duration::from_millis(1), Duration::from_secs(60)),
            ),
            ttl: self.bounded_duration("sessions.ttl", &raw.ttl, 8 * hour, (Duration::from_secs(1), 30 * 24 * hour)),
            idle_timeout: self.bounded_duration(
                "sessions.idle_timeout",
                &raw.idle_timeout,
                hour,
                (Duration::from_secs(1), 30 * 24 * hour),
            ),
            max_sessions: self.number("sessions.max_sessions", &raw.max_sessions, 10_000, (1, 1_000_000)) as usize,
            max_sessions_per_subject: self.number(
                "sessions.max_sessions_per_subject",
                &raw.max_sessions_per_subject,
                100,
                (1, 1_000_000),
            ) as usize,
            encryption_key: raw.encryption_key.as_ref().and_then(|located| self.encryption_key(located)),
        }
    }

    /// `upstream.circuit_breaker.failure_statuses`: 5xx statuses only, default 502, 503, 504.
    fn failure_statuses(&mut self, raw: Option<&[Located<u16>]>) -> Vec<u16> {
        const KEY: &str = "upstream.circuit_breaker.failure_statuses";
        let Some(raw) = raw else { return DEFAULT_FAILURE_STATUSES.to_vec() };
        let mut statuses = Vec::with_capacity(raw.len());
        for located in raw {
            if (500..=599).contains(&located.value) {
                statuses.push(located.value);
            } else {
                self.at(
                    located,
                    KEY,
                    format!("{} is not a 5xx status; only server errors can open the breaker", located.value),
                );
            }
        }
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }
}
