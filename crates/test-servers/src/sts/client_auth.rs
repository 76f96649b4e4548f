//! The STS's checks of key-based client authentication, as a strict
//! authorization server makes them:
//!
//! - `private_key_jwt` (RFC 7523 sections 2.2 and 3): the assertion type,
//!   a signature by a key of the client's JWK Set (by `kid`, else any key
//!   of the algorithm's family), `iss` = `sub` = the client id, `aud` = the
//!   token endpoint (or the configured values), `exp` in the future and at
//!   most `max_lifetime_secs` ahead, `iat`, and a `jti` never seen before;
//! - mutual TLS (RFC 8705): the `client_id` form field, and the client
//!   certificate the TLS front saw (passed on as a header the front sets
//!   and overwrites) equal to the registered one.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::token::{OAuthError, oauth_error};
use super::{AssertionClient, Shared, TlsClient, values};
use crate::codec::{base64_decode, now_secs};

/// `client_assertion_type` of RFC 7523.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The header the mutual-TLS front sets to the client certificate it saw
/// (standard base64 of the DER), replacing any the client sent.
pub const CLIENT_CERT_HEADER: &str = "X-Client-Certificate";

fn invalid_client(why: impl Into<String>) -> OAuthError {
    oauth_error("invalid_client", why)
}

pub(super) fn verify_assertion(
    shared: &Shared,
    client: &AssertionClient,
    headers_basic: bool,
    form: &[(String, String)],
) -> Result<(), OAuthError> {
    let single = |key: &str| values(form, key).into_iter().next();
    if headers_basic || single("client_secret").is_some() {
        return Err(oauth_error("invalid_request", "more than one client authentication method"));
    }
    match single("client_assertion_type") {
        Some(ASSERTION_TYPE) => {}
        Some(other) => return Err(invalid_client(format!("client_assertion_type {other} is not supported"))),
        None => return Err(invalid_client("client authentication required (private_key_jwt)")),
    }
    let assertion = single("client_assertion").ok_or_else(|| invalid_client("missing client_assertion"))?;
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| invalid_client(format!("client_assertion is not a JWT: {e}")))?;
    let jwks: JwkSet = serde_json::from_value(client.jwks.clone())
        .map_err(|e| oauth_error("server_error", format!("the registered JWKS does not parse: {e}")))?;
    let candidates: Vec<DecodingKey> = match &header.kid {
        Some(kid) => jwks.find(kid).into_iter().filter_map(|jwk| DecodingKey::from_jwk(jwk).ok()).collect(),
        None => jwks.keys.iter().filter_map(|jwk| DecodingKey::from_jwk(jwk).ok()).collect(),
    };
    if candidates.is_empty() {
        return Err(invalid_client(format!("no registered key for kid {:?}", header.kid)));
    }
    let token_url = crate::serve::lock(&shared.token_url).clone();
    let audiences = if client.audiences.is_empty() { vec![token_url] } else { client.audiences.clone() };
    let mut validation = Validation::new(header.alg);
    validation.leeway = 5;
    validation.set_audience(&audiences);
    validation.set_issuer(&[&client.id]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Keys of another family than the header's algorithm fail to verify;
    // the first key that verifies wins.
    let mut last_error = None;
    let mut claims = None;
    for key in &candidates {
        match jsonwebtoken::decode::<Value>(assertion, key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some(claims) = claims else {
        let why = last_error.map(|e| e.to_string()).unwrap_or_default();
        return Err(invalid_client(format!("client assertion rejected: {why}")));
    };
    if claims.get("sub").and_then(Value::as_str) != Some(client.id.as_str()) {
        return Err(invalid_client("client assertion sub is not the client id"));
    }
    if let Some(id) = single("client_id")
        && id != client.id
    {
        return Err(invalid_client("client_id does not match the assertion"));
    }
    let now = now_secs();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp > now + client.max_lifetime_secs + 5 {
        return Err(invalid_client(format!(
            "client assertion expires {}s from now; at most {} allowed",
            exp - now,
            client.max_lifetime_secs
        )));
    }
    if claims.get("iat").and_then(Value::as_i64).is_none() {
        return Err(invalid_client("client assertion has no iat"));
    }
    let jti = claims.get("jti").and_then(Value::as_str).filter(|j| !j.is_empty());
    let jti = jti.ok_or_else(|| invalid_client("client assertion has no jti"))?;
    if !crate::serve::lock(&shared.seen_jti).insert(jti.to_string()) {
        return Err(invalid_client(format!("client assertion jti {jti} was already used")));
    }
    Ok(())
}

pub(super) fn verify_tls_client(
    client: &TlsClient,
    cert_header: Option<&str>,
    headers_basic: bool,
    form: &[(String, String)],
) -> Result<(), OAuthError> {
    let single = |key: &str| values(form, key).into_iter().next();
    if headers_basic || single("client_secret").is_some() || single("client_assertion").is_some() {
        return Err(oauth_error("invalid_request", "more than one client authentication method"));
    }
    // RFC 8705 section 2: the client_id parameter is required.
    match single("client_id") {
        Some(id) if id == client.id => {}
        Some(_) => return Err(invalid_client("unknown client_id")),
        None => return Err(oauth_error("invalid_request", "client_id is required with mutual TLS")),
    }
    let presented = cert_header.and_then(base64_decode);
    match presented {
        Some(der) if der == client.certificate_der => Ok(()),
        Some(_) => Err(invalid_client("the client certificate is not the one registered for this client")),
        None => Err(invalid_client("no client certificate was presented")),
    }
}
