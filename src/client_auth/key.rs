//! The client's private key: found in PEM text (PKCS#8 `PRIVATE KEY`,
//! SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`, among any other
//! sections, e.g. the certificate it belongs to), told apart by its
//! algorithm, and held in the DER form that ring (and so jsonwebtoken)
//! reads: PKCS#1 for RSA, PKCS#8 for the rest.
//!
//! Nothing here ever shows key material: errors describe the key's shape
//! ("a PKCS#8 key for an algorithm other than RSA, P-256, P-384 or
//! Ed25519"), never its bytes, and the DER is wiped when dropped.

use der::{Decode as _, Encode as _};
use pkcs8::ObjectIdentifier;
use pkcs8::spki::AlgorithmIdentifierRef;
use rustls_pki_types::pem::SectionKind;
use zeroize::Zeroizing;

use crate::config::KeyAlgorithm;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why text is not a usable client key. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No private key section in the text.
    #[error(
        "holds no PEM private key (expected -----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY)"
    )]
    NoKey,
    /// A password-protected key, which the helper cannot decrypt.
    #[error(
        "is an encrypted private key; decrypt it (openssl pkcs8 -in KEY -out KEY.pem), or use a command source that prints it decrypted"
    )]
    Encrypted,
    /// More than one private key: which one is meant is not clear.
    #[error("holds more than one private key; keep only the client's")]
    Several,
    /// The PEM framing or its base64 is broken.
    #[error("is not valid PEM ({0})")]
    Pem(&'static str),
    /// The key's DER does not parse, or names an algorithm the helper does
    /// not sign with.
    #[error("is not a usable private key: {0}")]
    Unsupported(String),
    /// `client_key_algorithm` names an algorithm the key cannot sign with.
    #[error("client_key_algorithm {requested} does not fit the client key, {kind}; {advice}")]
    AlgorithmMismatch {
        /// What the config asked for.
        requested: &'static str,
        /// What the key is.
        kind: &'static str,
        /// What would work.
        advice: &'static str,
    },
    /// ring refused the key (too small, inconsistent, or malformed inside).
    #[error("is not a usable private key: {0}")]
    Rejected(String),
}

/// The algorithm family of a key, which decides the JWS algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (RS256 or PS256).
    Rsa,
    /// ECDSA on P-256 (ES256).
    P256,
    /// ECDSA on P-384 (ES384).
    P384,
    /// Ed25519 (EdDSA).
    Ed25519,
}

impl KeyKind {
    /// The key in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::P256 => "a P-256 EC key",
            KeyKind::P384 => "a P-384 EC key",
            KeyKind::Ed25519 => "an Ed25519 key",
        }
    }
}

/// A client's private key, ready to sign. `Debug` shows only its kind.
pub struct ClientKey {
    kind: KeyKind,
    /// PKCS#1 `RSAPrivateKey` for RSA, PKCS#8 `PrivateKeyInfo` otherwise.
    der: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl ClientKey {
    /// The one private key in `pem` (other sections, such as certificates,
    /// are skipped).
    ///
    /// # Errors
    /// No key, several keys, an encrypted key, broken PEM, or a key of an
    /// algorithm the helper does not sign with.
    pub fn from_pem(pem: &[u8]) -> Result<ClientKey, KeyError> {
        let mut found: Option<(SectionKind, Zeroizing<Vec<u8>>)> = None;
        let mut reader = pem;
        loop {
            match rustls_pki_types::pem::from_buf(&mut reader) {
                Ok(None) => break,
                Ok(Some((
                    kind @ (SectionKind::PrivateKey | SectionKind::EcPrivateKey | SectionKind::RsaPrivateKey),
                    der,
                ))) => {
                    if found.is_some() {
                        return Err(KeyError::Several);
                    }
                    found = Some((kind, Zeroizing::new(der)));
                }
                Ok(Some(_)) => {}
                // The parser's own errors may quote a line; say what kind
                // of damage it is instead.
                Err(rustls_pki_types::pem::Error::MissingSectionEnd { .. }) => {
                    return Err(KeyError::Pem("a section has no END line"));
                }
                Err(rustls_pki_types::pem::Error::IllegalSectionStart { .. }) => {
                    return Err(KeyError::Pem("a BEGIN line is malformed"));
                }
                Err(_) => return Err(KeyError::Pem("a section's base64 is broken")),
            }
        }
        let Some((section, der)) = found else {
            // Unknown sections are skipped by the parser, so an encrypted
            // key looks like no key at all: name it.
            let text = String::from_utf8_lossy(pem);
            if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
                return Err(KeyError::Encrypted);
            }
            if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
                return Err(KeyError::Unsupported(
                    "an OpenSSH key; convert it to PKCS#8 (ssh-keygen -p -m PKCS8 -f KEY)".into(),
                ));
            }
            return Err(KeyError::NoKey);
        };
        match section {
            SectionKind::RsaPrivateKey => Ok(ClientKey { kind: KeyKind::Rsa, der }),
            SectionKind::EcPrivateKey => from_sec1(&der),
            _ => from_pkcs8(der),
        }
    }

    /// The JWS algorithm this key signs assertions with: the key's own,
    /// or for RSA the configured choice (RS256 by default).
    ///
    /// # Errors
    /// `requested` names an algorithm the key cannot sign with.
    pub fn algorithm(&self, requested: Option<KeyAlgorithm>) -> Result<KeyAlgorithm, KeyError> {
        let natural = match self.kind {
            KeyKind::Rsa => KeyAlgorithm::RS256,
            KeyKind::P256 => KeyAlgorithm::ES256,
            KeyKind::P384 => KeyAlgorithm::ES384,
            KeyKind::Ed25519 => KeyAlgorithm::EdDSA,
        };
        match (self.kind, requested) {
            (_, None) => Ok(natural),
            (KeyKind::Rsa, Some(alg @ (KeyAlgorithm::RS256 | KeyAlgorithm::PS256))) => Ok(alg),
            (_, Some(alg)) if alg == natural => Ok(alg),
            (kind, Some(alg)) => Err(KeyError::AlgorithmMismatch {
                requested: alg.name(),
                kind: kind.describe(),
                advice: match kind {
                    KeyKind::Rsa => "an RSA key signs RS256 or PS256",
                    KeyKind::P256 => "a P-256 key signs ES256; omit client_key_algorithm",
                    KeyKind::P384 => "a P-384 key signs ES384; omit client_key_algorithm",
                    KeyKind::Ed25519 => "an Ed25519 key signs EdDSA; omit client_key_algorithm",
                },
            }),
        }
    }

    /// The key as jsonwebtoken signs with it.
    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        match self.kind {
            KeyKind::Rsa => jsonwebtoken::EncodingKey::from_rsa_der(&self.der),
            KeyKind::P256 | KeyKind::P384 => jsonwebtoken::EncodingKey::from_ec_der(&self.der),
            KeyKind::Ed25519 => jsonwebtoken::EncodingKey::from_ed_der(&self.der),
        }
    }

    /// The public half, as a certificate's `subjectPublicKey` holds it
    /// (RSA: the DER `RSAPublicKey`; EC: the uncompressed point; Ed25519:
    /// the 32 bytes). Loading the key this way also checks it the way
    /// signing will (size, consistency).
    ///
    /// # Errors
    /// ring refuses the key.
    pub fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        use ring::signature::{self, KeyPair as _};
        let rejected = |e: ring::error::KeyRejected| KeyError::Rejected(describe_rejection(&e));
        Ok(match self.kind {
            KeyKind::Rsa => {
                signature::RsaKeyPair::from_der(&self.der).map_err(rejected)?.public_key().as_ref().to_vec()
            }
            KeyKind::P256 | KeyKind::P384 => {
                let alg = if self.kind == KeyKind::P256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let rng = ring::rand::SystemRandom::new();
                signature::EcdsaKeyPair::from_pkcs8(alg, &self.der, &rng)
                    .map_err(rejected)?
                    .public_key()
                    .as_ref()
                    .to_vec()
            }
            KeyKind::Ed25519 => signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.der)
                .map_err(rejected)?
                .public_key()
                .as_ref()
                .to_vec(),
        })
    }

    /// The key as one PEM section, for the TLS client identity.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let label = if self.kind == KeyKind::Rsa { "RSA PRIVATE KEY" } else { "PRIVATE KEY" };
        super::pem_section(label, &self.der)
    }
}

/// ring's reason in words a person can act on.
fn describe_rejection(e: &ring::error::KeyRejected) -> String {
    match e.to_string().as_str() {
        "TooSmall" => "the key is too small (RSA keys need at least 2048 bits)".into(),
        "TooLarge" => "the key is too large (RSA keys up to 8192 bits)".into(),
        "InconsistentComponents" | "PublicKeyIsMissing" => {
            "its parts do not belong together, or its public half is missing".into()
        }
        other => format!("it does not parse as its algorithm's key ({other})"),
    }
}

fn unsupported(what: &str) -> KeyError {
    KeyError::Unsupported(what.to_owned())
}

fn from_pkcs8(der: Zeroizing<Vec<u8>>) -> Result<ClientKey, KeyError> {
    let info = pkcs8::PrivateKeyInfo::from_der(&der)
        .map_err(|_| unsupported("the PKCS#8 structure does not parse"))?;
    let kind = match info.algorithm.oid {
        RSA_ENCRYPTION => {
            // ring signs RSA from the PKCS#1 key the envelope carries.
            let inner = Zeroizing::new(info.private_key.to_vec());
            return Ok(ClientKey { kind: KeyKind::Rsa, der: inner });
        }
        RSASSA_PSS => {
            return Err(unsupported(
                "an RSASSA-PSS-only key; use a plain RSA key with client_key_algorithm PS256",
            ));
        }
        EC_PUBLIC_KEY => curve(info.algorithm.parameters_oid().ok())?,
        ED25519 => KeyKind::Ed25519,
        _ => return Err(unsupported("a key for an algorithm other than RSA, P-256, P-384 or Ed25519")),
    };
    Ok(ClientKey { kind, der })
}

fn curve(oid: Option<ObjectIdentifier>) -> Result<KeyKind, KeyError> {
    match oid {
        Some(SECP256R1) => Ok(KeyKind::P256),
        Some(SECP384R1) => Ok(KeyKind::P384),
        Some(SECP521R1) => Err(unsupported("a P-521 key; ES512 is not supported, use P-256 or P-384")),
        Some(_) => Err(unsupported("an EC key on a curve other than P-256 or P-384")),
        None => Err(unsupported("an EC key that does not name its curve")),
    }
}

/// Wraps a SEC1 `ECPrivateKey` in the PKCS#8 envelope ring reads, with
/// the curve its parameters name.
fn from_sec1(der: &[u8]) -> Result<ClientKey, KeyError> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|_| unsupported("the SEC1 EC key does not parse"))?;
    let named = key.parameters.and_then(|p| p.named_curve());
    let kind = curve(named)?;
    let Some(oid) = named else { return Err(unsupported("an EC key that does not name its curve")) };
    let info = pkcs8::PrivateKeyInfo {
        algorithm: AlgorithmIdentifierRef { oid: EC_PUBLIC_KEY, parameters: Some((&oid).into()) },
        private_key: der,
        public_key: None,
    };
    let wrapped = info.to_der().map_err(|_| unsupported("the SEC1 EC key cannot be re-wrapped as PKCS#8"))?;
    Ok(ClientKey { kind, der: Zeroizing::new(wrapped) })
}
