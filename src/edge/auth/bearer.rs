//! Static bearer tokens, kept only as SHA-256 digests.
//!
//! A presented token is hashed once and compared with every configured digest in constant
//! time without an early exit, so neither the match position nor a prefix of a token leaks
//! through timing. Tokens come from the policy, from `MCP_AUTH_TOKEN` (already merged by the
//! config loader) and from `tokens_file`, which is re-read when it changes so tokens rotate
//! without a restart; several may be valid at once during a rotation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Bearer;
use crate::request::{AuthFailure, AuthMethod, Principal};

#[derive(Clone)]
struct TokenDigest {
    id: String,
    digest: [u8; 32],
    /// [`short_id`] of `digest`, computed once.
    short_id: String,
    scopes: Vec<String>,
}

/// What identifies a version of the tokens file (Kubernetes swaps a `..data` symlink, which
/// changes the inode the path resolves to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    length: u64,
    inode: u64,
}

/// The current set of valid bearer tokens.
pub struct BearerTokens {
    configured: Vec<TokenDigest>,
    file: Option<PathBuf>,
    current: ArcSwap<Vec<TokenDigest>>,
    stamp: std::sync::Mutex<Option<FileStamp>>,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokens").field("tokens", &self.current.load().len()).field("file", &self.file).finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The first 8 hex digits of a token's SHA-256: names a token without revealing it.
pub fn short_id(digest: &[u8; 32]) -> String {
    format!("{:08x}", u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]))
}

impl BearerTokens {
    pub fn new(bearer: &Bearer) -> Result<Self, String> {
        let configured: Vec<TokenDigest> = bearer
            .tokens
            .iter()
            .map(|token| {
                let digest = digest(token.value.as_bytes());
                let short_id = short_id(&digest);
                TokenDigest {
                    id: token.id.clone().unwrap_or_else(|| short_id.clone()),
                    digest,
                    short_id,
                    scopes: token.scopes.clone(),
                }
            })
            .collect();
        let tokens = Self {
            current: ArcSwap::from_pointee(configured.clone()),
            configured,
            file: bearer.tokens_file.clone(),
            stamp: std::sync::Mutex::new(None),
        };
        tokens.reload_file()?;
        Ok(tokens)
    }

    /// Re-reads `tokens_file` if it changed; returns whether the token set was replaced.
    /// A file that cannot be read keeps the tokens already loaded.
    pub fn reload_file(&self) -> Result<bool, String> {
        let Some(path) = &self.file else { return Ok(false) };
        let metadata = std::fs::metadata(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let stamp = FileStamp {
            modified: metadata.modified().ok(),
            length: metadata.len(),
            inode: std::os::unix::fs::MetadataExt::ino(&metadata),
        };
        let mut last = self.stamp.lock().map_err(|_| "tokens file lock poisoned".to_string())?;
        if *last == Some(stamp) {
            return Ok(false);
        }
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let entries = match crate::config::tokens_file_entries(&text) {
            Ok(entries) => entries,
            Err(problem) => {
                // This version of the file is refused as a whole (a half-applied rotation is
                // worse than none) and reported once, not on every poll.
                *last = Some(stamp);
                return Err(format!("{}: {problem}; the file is ignored until fixed", path.display()));
            }
        };
        let mut tokens = self.configured.clone();
        for line in entries {
            let digest = digest(line.as_bytes());
            if !tokens.iter().any(|known| known.digest == digest) {
                let short_id = short_id(&digest);
                tokens.push(TokenDigest { id: short_id.clone(), digest, short_id, scopes: Vec::new() });
            }
        }
        self.current.store(Arc::new(tokens));
        *last = Some(stamp);
        Ok(true)
    }

    /// How many tokens are accepted now.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Checks a presented token against every valid one.
    pub fn check(&self, token: &[u8]) -> Result<Principal, AuthFailure> {
        let presented = digest(token);
        let tokens = self.current.load();
        let mut matched: Option<&TokenDigest> = None;
        for candidate in tokens.iter() {
            // Evaluate every candidate; remember the first match without leaving early.
            let equal: bool = candidate.digest.ct_eq(&presented).into();
            if equal && matched.is_none() {
                matched = Some(candidate);
            }
        }
        let token = matched.ok_or(AuthFailure::InvalidToken)?;
        Ok(Principal {
            subject: token.id.clone(),
            method: AuthMethod::Bearer,
            scopes: token.scopes.clone(),
            token_id: token.short_id.clone(),
            forwardable_jwt: None,
            dpop_jkt: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BearerToken;

    fn tokens(values: &[&str]) -> BearerTokens {
        let bearer = Bearer {
            tokens: values
                .iter()
                .map(|value| BearerToken { id: None, value: value.to_string(), scopes: Vec::new() })
                .collect(),
            tokens_file: None,
        };
        BearerTokens::new(&bearer).expect("tokens")
    }

    #[test]
    fn every_configured_token_is_accepted() {
        let tokens = tokens(&["old-token-aaaaaaaa", "new-token-bbbbbbbb"]);
        assert!(tokens.check(b"old-token-aaaaaaaa").is_ok());
        assert!(tokens.check(b"new-token-bbbbbbbb").is_ok());
        assert_eq!(tokens.check(b"new-token-bbbbbbbbX"), Err(AuthFailure::InvalidToken));
        assert_eq!(tokens.check(b"new-token"), Err(AuthFailure::InvalidToken));
    }

    #[test]
    fn principal_is_a_digest_prefix_never_the_token() {
        let principal = tokens(&["secret-token-value"]).check(b"secret-token-value").expect("ok");
        assert_eq!(principal.subject.len(), 8);
        assert!(!principal.subject.contains("secret"));
        assert!(!format!("{principal:?}").contains("secret-token-value"));
    }

    #[test]
    fn named_tokens_carry_id_and_scopes() {
        let bearer = Bearer {
            tokens: vec![BearerToken {
                id: Some("ci".into()),
                value: "ci-token-value-1".into(),
                scopes: vec!["shifts:read".into()],
            }],
            tokens_file: None,
        };
        let principal = BearerTokens::new(&bearer).expect("tokens").check(b"ci-token-value-1").expect("ok");
        assert_eq!(principal.subject, "ci");
        assert_eq!(principal.scopes, ["shifts:read"]);
    }

    #[test]
    fn the_tokens_file_rotates_without_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# rotation\nfirst-token-1111\n").expect("write");
        let tokens =
            BearerTokens::new(&Bearer { tokens: Vec::new(), tokens_file: Some(path.clone()) }).expect("tokens");
        assert!(tokens.check(b"first-token-1111").is_ok());
        assert_eq!(tokens.reload_file(), Ok(false), "unchanged file is not re-read");
        // Kubernetes-style swap: a new file replaces the old one.
        let next = dir.path().join("tokens.next");
        std::fs::write(&next, "first-token-1111\nsecond-token-2222\n").expect("write");
        std::fs::rename(&next, &path).expect("swap");
        assert_eq!(tokens.reload_file(), Ok(true));
        assert!(tokens.check(b"second-token-2222").is_ok());
        std::fs::write(&path, "second-token-2222\n").expect("write");
        assert_eq!(tokens.reload_file(), Ok(true));
        assert_eq!(tokens.check(b"first-token-1111"), Err(AuthFailure::InvalidToken), "a removed token stops working");
    }

    #[test]
    fn a_tokens_file_with_a_short_token_is_refused_by_line_and_the_old_tokens_stay() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("tokens");
        std::fs::write(&path, "first-token-1111\n").expect("write");
        let tokens =
            BearerTokens::new(&Bearer { tokens: Vec::new(), tokens_file: Some(path.clone()) }).expect("tokens");
        let next = dir.path().join("tokens.next");
        std::fs::write(&next, "# rotation\nsecond-token-2222\nshort-tok\n").expect("write");
        std::fs::rename(&next, &path).expect("swap");
        let error = tokens.reload_file().expect_err("a short token is refused");
        assert!(error.contains("line 3: a token is shorter than 16 characters"), "{error}");
        assert!(!error.contains("short-tok"), "the message names the line, never the token: {error}");
        assert!(tokens.check(b"first-token-1111").is_ok(), "the old tokens keep working");
        assert_eq!(tokens.check(b"second-token-2222"), Err(AuthFailure::InvalidToken), "nothing of the file applies");
        assert_eq!(tokens.reload_file(), Ok(false), "reported once per version of the file");
        std::fs::write(&path, "second-token-2222\n").expect("write");
        assert!(
            BearerTokens::new(&Bearer { tokens: Vec::new(), tokens_file: Some(path.clone()) }).is_ok(),
            "a fixed file loads"
        );
        std::fs::write(&path, "tiny\n").expect("write");
        assert!(
            BearerTokens::new(&Bearer { tokens: Vec::new(), tokens_file: Some(path) }).is_err(),
            "refused at start"
        );
    }
}
