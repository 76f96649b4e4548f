//! The one type that holds a secret: a password, a login token, an exchanged
//! token or a client secret.
//!
//! A [`Secret`] has no `Display`, prints `Secret(REDACTED)` under `Debug`, is
//! wiped from memory when dropped, and gives its value up only through
//! [`Secret::expose`], so every place a secret leaves the process is a call
//! to `expose` that a reviewer can find with grep. People see a secret only
//! as its [`fingerprint`](Secret::fingerprint).
//!
//! Every secret made in this process is also remembered by
//! [`crate::redact`], so that no message or log line can carry it out, even
//! when a server echoes it back in its own words.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A secret string.
///
/// ```
/// use docker_credential_exchange::for_tests::Secret;
/// let s = Secret::new("hunter2".to_owned());
/// assert_eq!(format!("{s:?}"), "Secret(REDACTED)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value that must never be printed, and has every message of
    /// this process redact it from now on.
    pub fn new(value: String) -> Self {
        crate::redact::remember(&value);
        Secret(Zeroizing::new(value))
    }

    /// The value itself, for the few places that must send it somewhere:
    /// the protocol's stdout, the keyring, the exchange request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, stable name for the secret that is safe to show to people:
    /// `sha256:` and the first 12 hex digits of its SHA-256.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.expose().as_bytes())
    }

    /// The full SHA-256 of the value in hex, for comparisons stored on disk
    /// (the cache records which subject token an exchanged token came from).
    pub fn sha256_hex(&self) -> String {
        hex(&Sha256::digest(self.expose().as_bytes()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// `sha256:` and the first 12 hex digits of the SHA-256 of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = hex(&Sha256::digest(bytes));
    format!("sha256:{}", &digest[..12])
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("very-secret-value".into());
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!format!("{s:#?}").contains("very-secret"));
    }

    #[test]
    fn fingerprint_is_short_stable_and_prefixed() {
        let s = Secret::new("abc".into());
        // SHA-256("abc") = ba7816bf8f01cfea…
        assert_eq!(s.fingerprint(), "sha256:ba7816bf8f01");
    }

    #[test]
    fn hex_encodes_every_nibble() {
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }
}
