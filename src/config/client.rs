//! The rules that tie an entry's client-authentication fields together
//! (DESIGN.md section 2): each method names what it needs, and a field no
//! method of the entry would read is an error rather than silently unused,
//! so a typo in `client_auth` cannot send a secret where a key was meant.
//! Nothing here reads a key or a certificate: that is the cold path's work
//! ([`crate::client_auth`]), so a cache hit pays only for these checks.

use super::schema::{ClientAuth, RegistryConfig};

/// Checks the client-authentication fields of one entry; `Err((field,
/// reason))` names what to fix.
pub(super) fn check(reg: &RegistryConfig) -> Result<(), (&'static str, String)> {
    let method = reg.client_auth;
    let needs =
        |field: &'static str| (field, format!("is required with \"client_auth\": \"{}\"", method.name()));
    let unused = |field: &'static str, used_by: &str| {
        (field, format!("is only used with \"client_auth\": {used_by}; this entry uses {}", method.name()))
    };
    if !method.uses_key() {
        if reg.client_key.is_some() {
            return Err(unused(
                "client_key",
                "\"private_key_jwt\", \"tls_client_auth\" or \"self_signed_tls_client_auth\"",
            ));
        }
        if reg.client_certificate.is_some() {
            return Err(unused(
                "client_certificate",
                "\"tls_client_auth\" or \"self_signed_tls_client_auth\"",
            ));
        }
    }
    if method != ClientAuth::PrivateKeyJwt {
        for (field, set) in [
            ("client_key_algorithm", reg.client_key_algorithm.is_some()),
            ("client_key_id", reg.client_key_id.is_some()),
            ("client_assertion_audience", reg.client_assertion_audience.is_some()),
        ] {
            if set {
                return Err(unused(field, "\"private_key_jwt\""));
            }
        }
    }
    if !method.uses_key() {
        return Ok(());
    }
    if reg.client_id.as_deref().is_none_or(str::is_empty) {
        return Err(needs("client_id"));
    }
    if reg.client_secret.is_some() {
        return Err((
            "client_secret",
            format!("is not sent with \"client_auth\": \"{}\"; remove it", method.name()),
        ));
    }
    if reg.client_key.is_none() {
        return Err(needs("client_key"));
    }
    if reg.client_key_id.as_deref().is_some_and(str::is_empty) {
        return Err(("client_key_id", "must not be empty (omit it to send no kid)".into()));
    }
    if let Some(audience) = &reg.client_assertion_audience
        && (audience.values().is_empty() || audience.values().iter().any(String::is_empty))
    {
        return Err(("client_assertion_audience", "must be a non-empty string or list of them".into()));
    }
    if method.is_mutual_tls() {
        if reg.client_certificate.is_none() {
            return Err(needs("client_certificate"));
        }
        // The certificate proves the client only inside TLS; over plain
        // http (allowed for loopback) there is nothing to present it in.
        if url::Url::parse(&reg.token_endpoint).is_ok_and(|u| u.scheme() != "https") {
            return Err((
                "token_endpoint",
                format!(
                    "{} uses http://, but \"client_auth\": \"{}\" presents the client certificate in TLS; use https://",
                    reg.token_endpoint,
                    method.name()
                ),
            ));
        }
    }
    Ok(())
}
