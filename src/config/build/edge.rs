//! The edge sections: listeners, TLS material, trusted proxies, limits, rate limit, CORS.

use super::*;

impl Builder<'_> {
    pub(super) fn build_listen(&mut self, raw: &RawListen) -> Listen {
        let https = match &raw.https {
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            Some(None) => None,
            Some(Some(located)) => self.socket_addr("listen.https", located),
        };
        let http = raw.http.as_ref().and_then(|located| self.socket_addr("listen.http", located));
        let admin = match &raw.admin {
            None => SocketAddr::from(([0, 0, 0, 0], 9901)),
            Some(located) => {
                self.socket_addr("listen.admin", located).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9901)))
            }
        };
        if https.is_none() && http.is_none() && matches!(raw.https, Some(None)) {
            self.problem(Source::Document, "listen", "no public listener; set listen.https or listen.http");
        }
        let used: Vec<(&str, SocketAddr)> = [("https", https), ("http", http), ("admin", Some(admin))]
            .into_iter()
            .filter_map(|(n, a)| a.map(|a| (n, a)))
            .collect();
        for (index, (name, address)) in used.iter().enumerate() {
            for (other, other_address) in &used[index + 1..] {
                if address == other_address && address.port() != 0 {
                    self.problem(
                        Source::Document,
                        "listen",
                        format!("listen.{name} and listen.{other} are both {address}"),
                    );
                }
            }
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let threads = self.number("listen.threads", &raw.threads, cores as u32, (1, 64)) as usize;
        Listen { https, http, admin, threads }
    }
    pub(super) fn build_tls(&mut self, raw: Option<&RawTls>, https: bool) -> Option<Arc<TlsMaterial>> {
        if !https {
            if let Some(client_ca) = raw.and_then(|raw| raw.client_ca.as_ref()) {
                self.at(client_ca, "tls.client_ca", "client certificates need the https listener (listen.https)");
            }
            return None;
        }
        let default_cert = Located::new(
            "/etc/mcp-edge/tls/tls.crt".to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        );
        let default_key = Located::new(
            "/etc/mcp-edge/tls/tls.key".to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        );
        let cert = raw.and_then(|raw| raw.cert.as_ref()).unwrap_or(&default_cert);
        let key = raw.and_then(|raw| raw.key.as_ref()).unwrap_or(&default_key);
        let client_ca = raw.and_then(|raw| raw.client_ca.as_ref());
        let paths = TlsPaths {
            cert: self.path(&cert.value),
            key: self.path(&key.value),
            client_ca: client_ca.map(|located| self.path(&located.value)),
        };
        match TlsMaterial::load(&paths) {
            Ok(material) => Some(Arc::new(material)),
            Err(problems) => {
                for problem in problems {
                    let (key_name, located) = match problem.file {
                        TlsFile::Cert => ("tls.cert", Some(cert)),
                        TlsFile::Key => ("tls.key", Some(key)),
                        TlsFile::ClientCa => ("tls.client_ca", client_ca),
                    };
                    let source = match located {
                        Some(located) if located.referenced.line() > 0 => source_of(located),
                        _ => Source::Document,
                    };
                    self.problem(source, key_name, problem.message);
                }
                None
            }
        }
    }
    pub(super) fn build_trusted_proxies(&mut self, raw: &[Located<String>]) -> Vec<IpNet> {
        let mut networks = Vec::new();
        for located in raw {
            let text = located.value.trim();
            let parsed = text.parse::<IpNet>().or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(network) => networks.push(network.trunc()),
                Err(_) => self.at(
                    located,
                    "trusted_proxies",
                    format!("{text:?} is not a CIDR; write an address or network such as 10.0.0.0/8 or fd00::/8"),
                ),
            }
        }
        networks
    }
    pub(super) fn build_limits(&mut self, raw: &RawLimits) -> Limits {
        Limits {
            max_header_bytes: self.size("limits.max_header_bytes", &raw.max_header_bytes, 16 * 1024, (1024, 1 << 20))
                as usize,
            max_headers: self.number("limits.max_headers", &raw.max_headers, 100, (1, 1000)) as usize,
            max_body_bytes: self.size("limits.max_body_bytes", &raw.max_body_bytes, 1 << 20, (0, 1 << 30)),
            reject_underscore_headers: raw.reject_underscore_headers.unwrap_or(true),
            header_timeout: self.bounded_duration(
                "limits.header_timeout",
                &raw.header_timeout,
                Duration::from_secs(10),
                (Duration::from_secs(1), Duration::from_secs(300)),
            ),
            idle_timeout: self.bounded_duration(
                "limits.idle_timeout",
                &raw.idle_timeout,
                Duration::from_secs(60),
                (Duration::from_secs(1), Duration::from_secs(3600)),
            ),
            max_requests_per_connection: self.number(
                "limits.max_requests_per_connection",
                &raw.max_requests_per_connection,
                10_000,
                (1, 10_000_000),
            ),
            max_connections: self.number("limits.max_connections", &raw.max_connections, 4096, (1, 1_000_000)),
            max_connections_per_ip: self.number(
                "limits.max_connections_per_ip",
                &raw.max_connections_per_ip,
                0,
                (0, 1_000_000),
            ),
            h2_max_concurrent_streams: self.number(
                "limits.h2_max_concurrent_streams",
                &raw.h2_max_concurrent_streams,
                100,
                (1, 1000),
            ),
        }
    }
    pub(super) fn build_rate_limit(&mut self, raw: &RawRateLimit) -> RateLimit {
        let requests_per_minute =
            self.number("rate_limit.requests_per_minute", &raw.requests_per_minute, 100, (1, 6_000_000));
        RateLimit {
            enabled: raw.enabled.unwrap_or(true),
            requests_per_minute: NonZeroU32::new(requests_per_minute).unwrap_or(NonZeroU32::MIN),
            burst: self.number("rate_limit.burst", &raw.burst, 20, (0, 1_000_000)),
            key: match raw.key {
                None | Some(RateLimitKeyName::ClientIp) => RateLimitKey::ClientIp,
                Some(RateLimitKeyName::Principal) => RateLimitKey::Principal,
                Some(RateLimitKeyName::PrincipalAndTool) => RateLimitKey::PrincipalAndTool,
            },
            scope: match raw.scope.as_ref().map(|located| located.value) {
                None | Some(RateLimitScopeName::Local) => RateLimitScope::Local,
                Some(RateLimitScopeName::Global) => RateLimitScope::Global,
            },
            max_tracked_clients: self.number(
                "rate_limit.max_tracked_clients",
                &raw.max_tracked_clients,
                100_000,
                (1, 10_000_000),
            ) as usize,
        }
    }
    pub(super) fn build_cors(&mut self, raw: &RawCors, auth_mode: AuthMode) -> Cors {
        let allow_credentials = match raw.allow_credentials.as_ref().map(|located| located.value) {
            None | Some(CredentialsName::Auto) => auth_mode != AuthMode::None,
            Some(CredentialsName::True) => true,
            Some(CredentialsName::False) => false,
        };
        let mut origins: Vec<(String, Source)> =
            raw.allowed_origins.iter().flatten().map(|located| (located.value.clone(), source_of(located))).collect();
        if let Some(value) = self.environment.get("ALLOWED_ORIGINS") {
            origins = value
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(|origin| (origin.to_string(), Source::Env("ALLOWED_ORIGINS")))
                .collect();
        }
        let mut any = false;
        let mut list = Vec::new();
        for (text, source) in origins {
            if text == "*" {
                if allow_credentials {
                    self.problem(
                        source,
                        "cors.allowed_origins",
                        "\"*\" cannot be used while credentials are allowed (cors.allow_credentials resolves to true); list exact origins",
                    );
                }
                any = true;
                continue;
            }
            match parse_origin(&text) {
                Ok(origin) => {
                    if !list.contains(&origin) {
                        list.push(origin);
                    }
                }
                Err(message) => self.problem(source, "cors.allowed_origins", message),
            }
        }
        let max_age = self.bounded_duration(
            "cors.max_age",
            &raw.max_age,
            Duration::from_secs(600),
            (Duration::ZERO, Duration::from_secs(86_400)),
        );
        let allowed_origins = if any { AllowedOrigins::Any } else { AllowedOrigins::List(list) };
        Cors { allowed_origins, allow_credentials, max_age }
    }
}
