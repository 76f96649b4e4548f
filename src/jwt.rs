//! Reading JWTs without verifying them: the helper only needs a token's
//! `exp` (to know when it expires) and, for `token --decode`, its header and
//! claims for a person to read. Verification is the registry's job; a
//! forged `exp` can only make the helper refresh sooner or later than it
//! should, never grant anything.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The header and claims of a JWT, unverified.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
}

/// Decodes `token` as a JWT without checking its signature; `None` if it is
/// not a JWT (an opaque token). Any `alg` is read, `none` and ES512
/// included: the helper never verifies, it only needs `exp`, and a JWT
/// library that refuses algorithms it cannot verify would make a short
/// lived token look valid for the whole `expires_in`.
pub fn decode_unverified(token: &str) -> Option<Decoded> {
    let mut parts = token.split('.');
    let (header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let object = |segment: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
    };
    Some(Decoded { header: object(header)?, claims: object(claims)? })
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
    fn exp_is_read_whatever_the_algorithm() {
        for alg in ["none", "ES512", "HS256", "EdDSA", "made-up"] {
            let token =
                format!("{}.{}.", b64url(&format!(r#"{{"alg":"{alg}"}}"#)), b64url(r#"{"exp":1700000000}"#));
            assert_eq!(expiry(&token), Some(1_700_000_000), "{alg}");
        }
    }

    #[test]
    fn non_numeric_exp_is_ignored() {
        assert_eq!(expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(expiry(&jwt(r#"{"exp":1e300}"#)), None);
    }
}
