//! Credential-session ids. An id is a credential: whoever presents it uses the
//! session (with `sessions.auth: none`, nothing else is asked), so it must be unguessable.
//! The edge mints one when `/init` names none; a client-chosen id must look like one the edge
//! could have minted: 32 to 128 characters of the URL-safe set, which at 6 bits a character
//! leaves at least 192 bits for a random id. `sessions.allow_short_ids` relaxes this for
//! clients that send user names or other guessable ids, knowingly.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The rule a client-chosen id must follow, as `/init` states it in its 400.
pub const RULE: &str = "session_id must match ^[A-Za-z0-9._~-]{32,128}$ (or be left out, and the edge makes one)";

/// The rule with `sessions.allow_short_ids`.
pub const SHORT_RULE: &str =
    "session_id must be 1 to 128 characters, none of them control characters (or be left out, and the edge makes one)";

/// The rule `/init` states for this setting.
pub fn rule(allow_short_ids: bool) -> &'static str {
    if allow_short_ids { SHORT_RULE } else { RULE }
}

/// Longest session id accepted, with or without `allow_short_ids`.
pub const MAX_CHARS: usize = 128;

/// Shortest client-chosen id without `allow_short_ids`.
pub const MIN_CHARS: usize = 32;

/// A new id: 256 bits from the thread's CSPRNG (ChaCha, seeded and reseeded from the OS),
/// base64url without padding (43 characters).
pub fn mint() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether a client may choose `id`. With `allow_short_ids` the old rule applies: 1 to 128
/// characters, none of them control characters.
pub fn acceptable(id: &str, allow_short_ids: bool) -> bool {
    if allow_short_ids {
        let chars = id.chars().count();
        return (1..=MAX_CHARS).contains(&chars) && !id.chars().any(char::is_control);
    }
    (MIN_CHARS..=MAX_CHARS).contains(&id.len())
        && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'~' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_follow_the_rule_and_differ() {
        let (first, second) = (mint(), mint());
        assert_eq!(first.len(), 43);
        assert!(acceptable(&first, false) && acceptable(&second, false));
        assert_ne!(first, second);
    }

    #[test]
    fn client_ids_need_32_to_128_url_safe_characters() {
        let cases: &[(&str, bool)] = &[
            (&"a".repeat(31), false),
            (&"a".repeat(32), true),
            (&"Az09._~-".repeat(16), true),
            (&"a".repeat(129), false),
            (&format!("{}+", "a".repeat(31)), false),
            (&format!("{}/", "a".repeat(31)), false),
            (&format!("{} ", "a".repeat(31)), false),
            (&format!("{}é", "a".repeat(31)), false),
            ("team-a", false),
            ("", false),
        ];
        for (id, expected) in cases {
            assert_eq!(acceptable(id, false), *expected, "{id:?}");
        }
    }

    #[test]
    fn allow_short_ids_keeps_the_old_rule() {
        assert!(acceptable("1", true));
        assert!(acceptable("ada@example.com", true));
        assert!(!acceptable("", true));
        assert!(!acceptable("a\nb", true));
        assert!(!acceptable(&"a".repeat(129), true));
    }
}
