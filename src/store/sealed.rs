//! What the edge keeps about a credential session outside its own memory is sealed:
//! AES-256-GCM (ring's AEAD, the library TLS already uses) under `sessions.encryption_key`,
//! a fresh random 96-bit nonce per seal, and the Redis key as associated data, so a sealed
//! value copied to another key does not open. Layout: `nonce || ciphertext || tag`.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::EncryptionKey;

pub struct Sealer {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

impl Sealer {
    pub fn new(key: &EncryptionKey) -> Result<Self, String> {
        let key =
            UnboundKey::new(&AES_256_GCM, &key.0).map_err(|_| "sessions.encryption_key is not usable".to_string())?;
        Ok(Self { key: LessSafeKey::new(key), random: SystemRandom::new() })
    }

    /// `plaintext` sealed for `context` (the key it will be stored under).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| "no randomness for a nonce".to_string())?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut in_out)
            .map_err(|_| "sealing failed".to_string())?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// The plaintext, or `None` when `sealed` was not sealed by this key for `context`
    /// (another key, another Redis key, or tampered with).
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self.key.open_in_place(nonce, Aad::from(context), &mut in_out).ok()?;
        Some(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let sealer = Sealer::new(&EncryptionKey([7; 32])).expect("key");
        let sealed = sealer.seal(b"cs:abc", b"the token").expect("seal");
        assert!(!sealed.windows(9).any(|window| window == b"the token"), "no plaintext");
        assert_eq!(sealer.open(b"cs:abc", &sealed).as_deref(), Some(&b"the token"[..]));
        assert_eq!(sealer.open(b"cs:abd", &sealed), None, "another key name");
        assert_eq!(Sealer::new(&EncryptionKey([8; 32])).expect("key").open(b"cs:abc", &sealed), None, "another key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("bytes") ^= 1;
        assert_eq!(sealer.open(b"cs:abc", &tampered), None);
        assert_ne!(sealer.seal(b"cs:abc", b"the token").expect("seal"), sealed, "a fresh nonce each time");
    }
}
