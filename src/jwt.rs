//! Reading JWTs without verifying them: the helper only needs a token's
//! `exp` (to know when it expires) and, for `token --decode`, its header and
//! claims for a person to read. Verification is the registry's job; a
//! forged `exp` can only make the helper refresh sooner or later than it
//! should, never grant anything.

use jsonwebtoken::{DecodingKey, Header, Validation};
use serde_json::Value;

/// The header and claims of a JWT, unverified.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The JOSE header.
    pub header: Header,
    /// The claims as JSON.
    pub claims: Value,
}

/// Decodes `token` as a JWT without checking its signature; `None` if it is
/// not a JWT (an opaque token).
pub fn decode_unverified(token: &str) -> Option<Decoded> {
    // Cheap rejection of opaque tokens before any decoding work.
    if token.bytes().filter(|&b| b == b'.').count() != 2 {
        return None;
    }
    let mut validation = Validation::default();
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(&[]), &validation).ok()?;
    Some(Decoded { header: data.header, claims: data.claims })
}

/// The `exp` claim in Unix seconds, if `token` is a JWT that has one.
pub fn expiry(token: &str) -> Option<i64> {
    claim_seconds(&decode_unverified(token)?.claims, "exp")
}

/// A NumericDate claim (`exp`, `iat`, `nbf`) in whole seconds.
pub fn claim_seconds(claims: &Value, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= i64::MIN as f64 && *f <= i64::MAX as f64)
            .map(|f| f.floor() as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(s: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn jwt(claims: &str) -> String {
        format!("{}.{}.c2ln", b64url(r#"{"alg":"RS256","typ":"JWT"}"#), b64url(claims))
    }

    #[test]
    fn exp_is_read_without_a_key() {
        assert_eq!(expiry(&jwt(r#"{"exp":1700000000,"sub":"x"}"#)), Some(1_700_000_000));
    }

    #[test]
    fn fractional_exp_is_floored() {
        assert_eq!(expiry(&jwt(r#"{"exp":1700000000.9}"#)), Some(1_700_000_000));
    }

    #[test]
    fn opaque_tokens_have_no_expiry() {
        assert_eq!(expiry("gho_abcdef0123456789"), None);
        assert_eq!(expiry("a.b"), None);
        assert_eq!(expiry("not.a.jwt"), None);
    }

    #[test]
    fn jwt_without_exp_has_no_expiry() {
        assert_eq!(expiry(&jwt(r#"{"sub":"x"}"#)), None);
    }

    #[test]
    fn non_numeric_exp_is_ignored() {
        assert_eq!(expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(expiry(&jwt(r#"{"exp":1e300}"#)), None);
    }
}
