//! jsonwebtoken's cryptography on ring, the library rustls already links for TLS.
//!
//! jsonwebtoken 11 leaves the signature maths to a pluggable [`CryptoProvider`]; its pure-Rust
//! backend rebuilds the RSA key and runs a generic big-number exponentiation on every check
//! (about 165 µs for RS256, 190 µs for ES256), ring does the same checks in assembly in a
//! fraction of that. Everything around the signature — the header, `alg` against the allowed
//! list, the key's family, the claims — is still jsonwebtoken's and `jwt.rs`'s, unchanged.
//!
//! Each verifier refuses a key of another family (an HMAC secret for RS256, an RSA key for
//! ES256), and ring refuses RSA keys outside 2048–8192 bits, an EC point off the curve and
//! signatures of the wrong length. Signing is here too, for the tests and benchmarks that mint
//! tokens; the edge itself never signs.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    self as ring_signature, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair,
    RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm,
};
use ring::{digest, hmac};

/// The provider [`super::install_providers`] installs for the process.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key,
        ed_pub_components_from_private_key,
        compute_digest,
    },
};

/// The family a key must be of to be used with `algorithm`.
fn require_family(algorithm: Algorithm, family: AlgorithmFamily) -> Result<()> {
    if algorithm.family() == family { Ok(()) } else { Err(ErrorKind::InvalidKeyFormat.into()) }
}

/// How one algorithm checks a signature.
enum Check {
    Hmac(hmac::Key),
    /// RSA: the key as jsonwebtoken holds it, PKCS#1 DER (from PEM) or `n`/`e` (from a JWK).
    Rsa(&'static RsaParameters, DecodingKeyKind),
    /// ECDSA or Ed25519 over the raw public key (an uncompressed SEC1 point, or 32 bytes).
    Public(&'static dyn VerificationAlgorithm, Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    check: Check,
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let algorithm = *algorithm;
    require_family(algorithm, key.family())?;
    let public = |scheme: &'static dyn VerificationAlgorithm| -> Result<Check> {
        Ok(Check::Public(scheme, key.try_get_as_bytes()?.to_vec()))
    };
    let check = match algorithm {
        Algorithm::HS256 => Check::Hmac(hmac::Key::new(hmac::HMAC_SHA256, key.try_get_as_bytes()?)),
        Algorithm::HS384 => Check::Hmac(hmac::Key::new(hmac::HMAC_SHA384, key.try_get_as_bytes()?)),
        Algorithm::HS512 => Check::Hmac(hmac::Key::new(hmac::HMAC_SHA512, key.try_get_as_bytes()?)),
        Algorithm::RS256 => Check::Rsa(&ring_signature::RSA_PKCS1_2048_8192_SHA256, key.kind().clone()),
        Algorithm::RS384 => Check::Rsa(&ring_signature::RSA_PKCS1_2048_8192_SHA384, key.kind().clone()),
        Algorithm::RS512 => Check::Rsa(&ring_signature::RSA_PKCS1_2048_8192_SHA512, key.kind().clone()),
        Algorithm::PS256 => Check::Rsa(&ring_signature::RSA_PSS_2048_8192_SHA256, key.kind().clone()),
        Algorithm::PS384 => Check::Rsa(&ring_signature::RSA_PSS_2048_8192_SHA384, key.kind().clone()),
        Algorithm::PS512 => Check::Rsa(&ring_signature::RSA_PSS_2048_8192_SHA512, key.kind().clone()),
        Algorithm::ES256 => public(&ring_signature::ECDSA_P256_SHA256_FIXED)?,
        Algorithm::ES384 => public(&ring_signature::ECDSA_P384_SHA384_FIXED)?,
        Algorithm::EdDSA => public(&ring_signature::ED25519)?,
        // A future jsonwebtoken algorithm is refused until it is mapped here.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier { algorithm, check }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let verified = match &self.check {
            // Constant-time comparison of the recomputed tag.
            Check::Hmac(key) => hmac::verify(key, message, signature),
            Check::Rsa(parameters, DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(*parameters, der).verify(message, signature)
            }
            Check::Rsa(parameters, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(parameters, message, signature)
            }
            Check::Public(scheme, key) => UnparsedPublicKey::new(*scheme, key).verify(message, signature),
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// How one algorithm signs.
enum Signing {
    Hmac(hmac::Key),
    Rsa(&'static dyn RsaEncoding, RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

struct RingSigner {
    algorithm: Algorithm,
    signing: Signing,
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let algorithm = *algorithm;
    require_family(algorithm, key.family())?;
    let bytes = key.as_bytes();
    // jsonwebtoken keeps an RSA private key as PKCS#1 DER, EC and Ed25519 keys as PKCS#8.
    let rsa = |encoding: &'static dyn RsaEncoding| -> Result<Signing> {
        let pair = RsaKeyPair::from_der(bytes).map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
        Ok(Signing::Rsa(encoding, pair))
    };
    let ecdsa = |scheme: &'static EcdsaSigningAlgorithm| -> Result<Signing> {
        let pair = EcdsaKeyPair::from_pkcs8(scheme, bytes, &SystemRandom::new())
            .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
        Ok(Signing::Ecdsa(pair))
    };
    let signing = match algorithm {
        Algorithm::HS256 => Signing::Hmac(hmac::Key::new(hmac::HMAC_SHA256, bytes)),
        Algorithm::HS384 => Signing::Hmac(hmac::Key::new(hmac::HMAC_SHA384, bytes)),
        Algorithm::HS512 => Signing::Hmac(hmac::Key::new(hmac::HMAC_SHA512, bytes)),
        Algorithm::RS256 => rsa(&ring_signature::RSA_PKCS1_SHA256)?,
        Algorithm::RS384 => rsa(&ring_signature::RSA_PKCS1_SHA384)?,
        Algorithm::RS512 => rsa(&ring_signature::RSA_PKCS1_SHA512)?,
        Algorithm::PS256 => rsa(&ring_signature::RSA_PSS_SHA256)?,
        Algorithm::PS384 => rsa(&ring_signature::RSA_PSS_SHA384)?,
        Algorithm::PS512 => rsa(&ring_signature::RSA_PSS_SHA512)?,
        Algorithm::ES256 => ecdsa(&ring_signature::ECDSA_P256_SHA256_FIXED_SIGNING)?,
        Algorithm::ES384 => ecdsa(&ring_signature::ECDSA_P384_SHA384_FIXED_SIGNING)?,
        Algorithm::EdDSA => Signing::Ed25519(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
        ),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingSigner { algorithm, signing }))
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        match &self.signing {
            Signing::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            Signing::Rsa(encoding, pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| signature::Error::new())?;
                Ok(signature)
            }
            Signing::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            Signing::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

// What jsonwebtoken needs to turn keys into JWKs and to compute thumbprints.

fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = RsaKeyPair::from_der(der).map_err(|error| ErrorKind::InvalidRsaKey(error.to_string()))?;
    let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

/// ring reads no standalone RSA public key: this is only used to turn a PEM public key into a
/// JWK, which mcp-edge never does (its keys come from a JWKS, as `n` and `e`).
fn rsa_pub_components_from_public_key(_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidRsaKey("reading an RSA public key from DER is not supported".to_string()).into())
}

fn ec_pub_components_from_private_key(pkcs8: &[u8], algorithm: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    let (scheme, curve, coordinate) = match algorithm {
        Algorithm::ES256 => (&ring_signature::ECDSA_P256_SHA256_FIXED_SIGNING, EllipticCurve::P256, 32),
        Algorithm::ES384 => (&ring_signature::ECDSA_P384_SHA384_FIXED_SIGNING, EllipticCurve::P384, 48),
        _ => return Err(ErrorKind::InvalidEcdsaKey.into()),
    };
    let pair = EcdsaKeyPair::from_pkcs8(scheme, pkcs8, &SystemRandom::new())
        .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    // An uncompressed SEC1 point: 0x04, then x and y.
    match pair.public_key().as_ref().split_first() {
        Some((4, point)) if point.len() == 2 * coordinate => {
            let (x, y) = point.split_at(coordinate);
            Ok((curve, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn ed_pub_components_from_private_key(pkcs8: &[u8], curve: &EllipticCurve) -> Result<Vec<u8>> {
    match curve {
        EllipticCurve::Ed25519 => Ok(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?
            .public_key()
            .as_ref()
            .to_vec()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

#[allow(clippy::needless_pass_by_value)] // the signature is `KeyUtils::compute_digest`'s
fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Header, Validation};

    use super::*;

    const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa.key");
    const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa.pub");
    const EC_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt/ec.key");
    const JWKS: &str = include_str!("../../tests/fixtures/jwt/jwks.json");
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The JWKS key with this `kid`, as the edge loads it.
    fn jwk(kid: &str) -> DecodingKey {
        let document: serde_json::Value = serde_json::from_str(JWKS).expect("jwks");
        let jwk = document["keys"].as_array().expect("keys").iter().find(|key| key["kid"] == kid).expect("kid");
        DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(jwk.clone()).expect("jwk")).expect("key")
    }

    /// A signing key and its verification key for every algorithm the config accepts: the
    /// fixtures' RSA and P-256 keys (verified from the JWKS, as the edge does, and from PEM),
    /// a fresh P-384 and Ed25519 key, and an HMAC secret.
    fn key_pairs() -> Vec<(Algorithm, EncodingKey, DecodingKey)> {
        let rng = SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&ring_signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("p384");
        let p384_public =
            EcdsaKeyPair::from_pkcs8(&ring_signature::ECDSA_P384_SHA384_FIXED_SIGNING, p384.as_ref(), &rng)
                .expect("p384 pair")
                .public_key()
                .as_ref()
                .to_vec();
        let ed25519 = Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519");
        let ed25519_public =
            Ed25519KeyPair::from_pkcs8(ed25519.as_ref()).expect("ed25519 pair").public_key().as_ref().to_vec();
        let rsa = || EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key");
        let mut pairs = Vec::new();
        for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            pairs.push((algorithm, EncodingKey::from_secret(SECRET), DecodingKey::from_secret(SECRET)));
        }
        for algorithm in
            [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]
        {
            pairs.push((algorithm, rsa(), jwk("rsa-1")));
            pairs.push((algorithm, rsa(), DecodingKey::from_rsa_pem(RSA_PUBLIC).expect("rsa pem")));
        }
        pairs.push((Algorithm::ES256, EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec key"), jwk("ec-1")));
        pairs.push((Algorithm::ES384, EncodingKey::from_ec_der(p384.as_ref()), DecodingKey::from_ec_der(&p384_public)));
        pairs.push((
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(ed25519.as_ref()),
            DecodingKey::from_ed_der(&ed25519_public),
        ));
        pairs
    }

    fn sign(algorithm: Algorithm, key: &EncodingKey) -> String {
        crate::crypto::install_providers();
        let claims = serde_json::json!({"sub": "user-42", "exp": 4_000_000_000_u64});
        jsonwebtoken::encode(&Header::new(algorithm), &claims, key).expect("sign")
    }

    fn check(token: &str, key: &DecodingKey, algorithm: Algorithm) -> std::result::Result<(), ErrorKind> {
        crate::crypto::install_providers();
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map(|_| ())
            .map_err(|error| error.kind().clone())
    }

    /// The token with its signature's last base64url digit changed (always a change of the
    /// signature bytes, not only of unused bits), and with its payload replaced.
    fn tampered(token: &str) -> [String; 2] {
        let mut signature = token.to_string();
        let last = signature.pop().expect("signature");
        signature.push(if last == 'A' { 'Q' } else { 'A' });
        let (header, rest) = token.split_once('.').expect("header");
        let (_, original) = rest.split_once('.').expect("signature");
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::json!({"sub": "admin", "exp": 4_000_000_000_u64}).to_string(),
        );
        [signature, format!("{header}.{forged}.{original}")]
    }

    #[test]
    fn a_token_signed_with_each_algorithm_verifies() {
        for (algorithm, signing, verifying) in key_pairs() {
            let token = sign(algorithm, &signing);
            let verified = check(&token, &verifying, algorithm);
            assert!(verified.is_ok(), "{algorithm:?}: {verified:?}");
        }
    }

    #[test]
    fn a_tampered_signature_or_payload_is_refused() {
        for (algorithm, signing, verifying) in key_pairs() {
            for forged in tampered(&sign(algorithm, &signing)) {
                let refused = check(&forged, &verifying, algorithm);
                assert!(matches!(refused, Err(ErrorKind::InvalidSignature)), "{algorithm:?}: {refused:?}");
            }
        }
    }

    #[test]
    fn a_token_checked_under_another_algorithm_of_its_family_is_refused() {
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key");
        let token = sign(Algorithm::RS256, &rsa);
        // `alg` RS256 is not in a list that allows only RS384 / PS256.
        assert!(matches!(check(&token, &jwk("rsa-1"), Algorithm::RS384), Err(ErrorKind::InvalidAlgorithm)));
        assert!(matches!(check(&token, &jwk("rsa-1"), Algorithm::PS256), Err(ErrorKind::InvalidAlgorithm)));
        // A PKCS#1 v1.5 signature relabelled PS256 does not pass the PSS check.
        let relabelled = relabel(&token, "PS256");
        assert!(matches!(check(&relabelled, &jwk("rsa-1"), Algorithm::PS256), Err(ErrorKind::InvalidSignature)));
    }

    #[test]
    fn a_key_of_another_family_is_refused() {
        crate::crypto::install_providers();
        let rsa_token = sign(Algorithm::RS256, &EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key"));
        let ec_token = sign(Algorithm::ES256, &EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec key"));
        assert!(check(&rsa_token, &jwk("ec-1"), Algorithm::RS256).is_err(), "RS256 with an EC key");
        assert!(check(&ec_token, &jwk("rsa-1"), Algorithm::ES256).is_err(), "ES256 with an RSA key");
        assert!(check(&rsa_token, &DecodingKey::from_secret(SECRET), Algorithm::RS256).is_err(), "RS256, a secret");
        // The factory itself refuses, whatever the caller checked before.
        for (algorithm, key) in [
            (Algorithm::RS256, jwk("ec-1")),
            (Algorithm::ES256, jwk("rsa-1")),
            (Algorithm::ES384, DecodingKey::from_secret(SECRET)),
            (Algorithm::EdDSA, jwk("ec-1")),
            (Algorithm::HS256, jwk("rsa-1")),
        ] {
            assert!((PROVIDER.verifier_factory)(&algorithm, &key).is_err(), "{algorithm:?}");
        }
        assert!((PROVIDER.signer_factory)(&Algorithm::RS256, &EncodingKey::from_secret(SECRET)).is_err());
    }

    /// The classic confusion: an HS256 token whose secret is the RSA public key, offered to a
    /// verifier holding that RSA key.
    #[test]
    fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
        // The bytes jsonwebtoken holds for each form of the key, and the key's text.
        let (pem, jwk_key) = (DecodingKey::from_rsa_pem(RSA_PUBLIC).expect("pem"), jwk("rsa-1"));
        let DecodingKeyKind::SecretOrDer(der) = pem.kind() else { panic!("a PEM key is held as DER") };
        let DecodingKeyKind::RsaModulusExponent { n, .. } = jwk_key.kind() else { panic!("a JWK as n and e") };
        for secret in [der.as_slice(), n.as_slice(), RSA_PUBLIC] {
            let token = sign(Algorithm::HS256, &EncodingKey::from_secret(secret));
            for key in [jwk("rsa-1"), DecodingKey::from_rsa_pem(RSA_PUBLIC).expect("rsa pem")] {
                assert!(check(&token, &key, Algorithm::HS256).is_err(), "HS256 allowed, RSA key");
                assert!(
                    matches!(check(&token, &key, Algorithm::RS256), Err(ErrorKind::InvalidAlgorithm)),
                    "RS256 allowed"
                );
            }
        }
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa key");
        let token = sign(Algorithm::RS256, &rsa);
        let (signed, _) = token.rsplit_once('.').expect("signature");
        for alg in ["none", "None", "NONE"] {
            let unsigned = format!("{}.", relabel(signed, alg));
            assert!(check(&unsigned, &jwk("rsa-1"), Algorithm::RS256).is_err(), "alg {alg}");
        }
        // A real header with the signature dropped.
        assert!(check(&format!("{signed}."), &jwk("rsa-1"), Algorithm::RS256).is_err());
    }

    /// The token with its header's `alg` replaced (the rest unchanged).
    fn relabel(token: &str, alg: &str) -> String {
        let (header, rest) = token.split_once('.').expect("header");
        let engine = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut header: serde_json::Value =
            serde_json::from_slice(&base64::Engine::decode(engine, header).expect("base64")).expect("json");
        header["alg"] = serde_json::Value::from(alg);
        format!("{}.{rest}", base64::Engine::encode(engine, header.to_string()))
    }

    #[test]
    fn keys_turn_into_jwks_and_thumbprints() {
        crate::crypto::install_providers();
        let rsa = Jwk::from_encoding_key(&EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("rsa"), Algorithm::RS256)
            .expect("rsa jwk");
        let expected: serde_json::Value = serde_json::from_str(JWKS).expect("jwks");
        assert_eq!(serde_json::to_value(&rsa).expect("json")["n"], expected["keys"][0]["n"]);
        let ec = Jwk::from_encoding_key(&EncodingKey::from_ec_pem(EC_PRIVATE).expect("ec"), Algorithm::ES256)
            .expect("ec jwk");
        assert_eq!(serde_json::to_value(&ec).expect("json")["x"], expected["keys"][1]["x"]);
        assert_eq!(rsa.thumbprint(ThumbprintHash::SHA256).expect("thumbprint").len(), 43);
    }
}
