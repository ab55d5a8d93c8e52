//! The shared store (DESIGN.md §17): `store.backend`, `store.redis.*`, the encryption key of
//! credential sessions, and the keys that need the store (`rate_limit.scope: global`,
//! sessions with `backend: redis`).

use base64::Engine;

use super::*;

/// Longest `store.redis.key_prefix`: keys stay short, and a prefix is a name, not data.
const MAX_KEY_PREFIX: usize = 64;

impl Builder<'_> {
    pub(super) fn build_store(&mut self, raw: &RawStore) -> Store {
        let backend = raw.backend.as_ref().map(|located| located.value);
        let redis = raw.redis.as_ref();
        match backend {
            None | Some(StoreBackendName::Memory) => Store { backend: StoreBackend::Memory },
            Some(StoreBackendName::Redis) => {
                let empty = RawRedis::default();
                let redis = redis.unwrap_or(&empty);
                let url = match &redis.url {
                    Some(located) => self.redis_url(located),
                    None => {
                        let source = raw.backend.as_ref().map_or(Source::Document, source_of);
                        self.problem(source, "store.redis.url", "is required with store.backend redis");
                        None
                    }
                };
                let key_prefix = match &redis.key_prefix {
                    None => "mcp-edge:".to_string(),
                    Some(located) => {
                        let prefix = &located.value;
                        if prefix.len() > MAX_KEY_PREFIX
                            || prefix.chars().any(|character| character.is_whitespace() || character.is_control())
                        {
                            self.at(
                                located,
                                "store.redis.key_prefix",
                                format!(
                                    "must be at most {MAX_KEY_PREFIX} characters without spaces or control characters"
                                ),
                            );
                        }
                        prefix.clone()
                    }
                };
                let timeout = self.bounded_duration(
                    "store.redis.timeout",
                    &redis.timeout,
                    Duration::from_millis(50),
                    (Duration::from_millis(1), Duration::from_secs(10)),
                );
                let on_error = match redis.on_error.as_ref().map(|located| located.value) {
                    None | Some(OnErrorName::Allow) => OnStoreError::Allow,
                    Some(OnErrorName::Deny) => OnStoreError::Deny,
                };
                Store {
                    backend: StoreBackend::Redis(RedisStore {
                        url: Redacted(url.unwrap_or_default()),
                        key_prefix,
                        timeout,
                        on_error,
                    }),
                }
            }
        }
    }

    /// `store.redis.url`: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (the server's certificate checked against the system roots, or `SSL_CERT_FILE`).
    fn redis_url(&mut self, located: &Located<String>) -> Option<String> {
        const KEY: &str = "store.redis.url";
        let text = located.value.trim();
        let Ok(url) = Url::parse(text) else {
            self.at(located, KEY, "is not a URL; write redis://host:port/db");
            return None;
        };
        match url.scheme() {
            "redis" | "rediss" => {}
            other => {
                self.at(located, KEY, format!("has scheme {other}; write redis://host:port/db (rediss:// for TLS)"));
                return None;
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.at(located, KEY, "has no host; write redis://host:port/db");
            return None;
        }
        let database = url.path().trim_start_matches('/');
        if !database.is_empty() && database.parse::<u16>().is_err() {
            self.at(located, KEY, "names a database that is not a number; write redis://host:port/0");
            return None;
        }
        Some(text.to_string())
    }

    /// `sessions.encryption_key`: 32 bytes in standard base64.
    pub(super) fn encryption_key(&mut self, located: &Located<String>) -> Option<EncryptionKey> {
        const KEY: &str = "sessions.encryption_key";
        if let Some(problem) = bare_reference_problem(&located.value) {
            self.at(located, KEY, problem);
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(located.value.trim());
        match decoded.ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()) {
            Some(key) => Some(EncryptionKey(key)),
            None => {
                self.at(located, KEY, "must be 32 bytes in base64 (e.g. openssl rand -base64 32)");
                None
            }
        }
    }

    /// What needs the shared store: a global rate limit, and credential sessions on Redis
    /// (which need the key their tokens are encrypted with).
    pub(super) fn check_store_needs(
        &mut self,
        (raw_rate_limit, raw_sessions): (&RawRateLimit, &RawSessions),
        store: &Store,
        rate_limit: &RateLimit,
        sessions: &Sessions,
    ) {
        let redis = matches!(store.backend, StoreBackend::Redis(_));
        if rate_limit.scope == RateLimitScope::Global && !redis {
            let source = raw_rate_limit.scope.as_ref().map_or(Source::Document, source_of);
            self.problem(source, "rate_limit.scope", "global needs a shared store; set store.backend: redis");
        }
        if redis && sessions.enabled && sessions.encryption_key.is_none() && raw_sessions.encryption_key.is_none() {
            self.problem(
                Source::Document,
                "sessions.encryption_key",
                "is required when sessions are enabled with store.backend redis (32 bytes, base64)",
            );
        }
    }
}
