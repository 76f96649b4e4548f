//! The client assertion of `private_key_jwt` (RFC 7523 sections 2.2 and 3,
//! OpenID Connect Core section 9): a JWT the client signs for one request,
//! with `iss` = `sub` = its client id, `aud` = the token endpoint (or what
//! the entry names), a random `jti` the server can refuse to see twice,
//! `iat` now and `exp` five minutes on.

use super::key::ClientKey;
use super::{ClientAuthError, KeyError};
use crate::config::KeyAlgorithm;
use crate::secret::Secret;

/// How long an assertion is valid: long enough for a slow endpoint and a
/// little clock skew, short enough that a captured one is soon useless.
pub const LIFETIME_SECS: i64 = 300;

/// The claims of one assertion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Claims {
    /// The client id.
    pub iss: String,
    /// The client id again (RFC 7523 3, item 2).
    pub sub: String,
    /// One audience as a string, several as a list.
    pub aud: Audience,
    /// 128 random bits in hex.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at: `iat` + [`LIFETIME_SECS`].
    pub exp: i64,
}

/// `aud`: a string for one value, as most servers compare it, or a list.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Claims {
    /// Fresh claims for `client_id` and `audience` at `now`.
    pub fn new(client_id: &str, mut audience: Vec<String>, now: i64) -> Claims {
        let aud =
            if audience.len() == 1 { Audience::One(audience.remove(0)) } else { Audience::Many(audience) };
        Claims {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud,
            jti: random_id(),
            iat: now,
            exp: now + LIFETIME_SECS,
        }
    }
}

/// 16 bytes from the operating system's CSPRNG, in hex. Should the OS
/// refuse (it does not on any supported platform), the id falls back to
/// the time and process, still unique though predictable: a `jti` is a
/// replay guard, not a secret.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&(nanos ^ (u128::from(std::process::id()) << 96)).to_be_bytes());
    }
    crate::secret::hex(&bytes)
}

/// Signs `claims` with `key`, with the `kid` header when `key_id` is set.
///
/// # Errors
/// The algorithm does not fit the key, or ring refuses the key.
pub fn sign(
    key: &ClientKey,
    requested: Option<KeyAlgorithm>,
    key_id: Option<&str>,
    claims: &Claims,
) -> Result<Secret, ClientAuthError> {
    let alg = key.algorithm(requested)?;
    let mut header = jsonwebtoken::Header::new(match alg {
        KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        KeyAlgorithm::PS256 => jsonwebtoken::Algorithm::PS256,
        KeyAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        KeyAlgorithm::ES384 => jsonwebtoken::Algorithm::ES384,
        KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    });
    header.kid = key_id.map(str::to_owned);
    let token = jsonwebtoken::encode(&header, claims, &key.encoding_key()).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidRsaKey(reason) => {
            ClientAuthError::KeyInvalid(KeyError::Rejected(format!("ring refuses the RSA key ({reason})")))
        }
        jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey
        | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => ClientAuthError::KeyInvalid(
            KeyError::Rejected("ring refuses it (malformed, or an EC key without its public half)".into()),
        ),
        _ => ClientAuthError::Sign { alg: alg.name(), reason: "the signature could not be made".into() },
    })?;
    Ok(Secret::new(token))
}
