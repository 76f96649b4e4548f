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
    if !method.uses_key() && reg.client_key.is_some() {
        return Err(unused(
            "client_key",
            "\"private_key_jwt\", \"tls_client_auth\" or \"self_signed_tls_client_auth\"",
        ));
    }
    if !method.is_mutual_tls() && reg.client_certificate.is_some() {
        return Err(unused("client_certificate", "\"tls_client_auth\" or \"self_signed_tls_client_auth\""));
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError, KeyAlgorithm, OneOrMany, RegistryConfig, SourceSpec};
    use super::ClientAuth;

    fn entry(fields: &str) -> Result<RegistryConfig, ConfigError> {
        let json = format!(
            "{{\"registries\": {{\"r.example\": {{\"token_endpoint\": \"https://sts.example/token\", {fields}}}}}}}"
        );
        let config = Config::parse(Path::new("/etc/dce/config.json"), json.into_bytes())?;
        let id = config.ids().next().expect("one entry");
        config.registry(id).cloned()
    }

    fn refused(fields: &str, field: &str) -> String {
        let err = entry(fields).unwrap_err().to_string();
        assert!(err.contains(&format!("registries.\"r.example\".{field}")), "{field}: {err}");
        assert!(err.contains("/etc/dce/config.json"), "{err}");
        err
    }

    const JWT: &str = r#""client_auth": "private_key_jwt", "client_id": "docker",
        "client_key": {"source": "file", "path": "client.pem"}"#;

    #[test]
    fn a_private_key_jwt_entry_takes_every_documented_field() {
        let text = format!(
            r#"{{"registries": {{"r.example": {{"token_endpoint": "https://sts.example/token", {JWT},
            "client_key_algorithm": "PS256", "client_key_id": "k1",
            "client_assertion_audience": ["https://idp.example", "https://sts.example/token"],
            "actor_token": {{"source": "env", "var": "ACTOR"}},
            "actor_token_type": "urn:ietf:params:oauth:token-type:jwt"}}}}}}"#
        );
        // The fast pass over the file takes the new fields like any others.
        assert!(super::super::skim::config(&text).is_some());
        let config = Config::parse(Path::new("/etc/dce/config.json"), text.into_bytes()).unwrap();
        let reg = config.registry(config.ids().next().unwrap()).unwrap();
        assert_eq!(reg.client_auth, ClientAuth::PrivateKeyJwt);
        assert_eq!(reg.client_key, Some(SourceSpec::File { path: "/etc/dce/client.pem".into() }));
        assert_eq!(reg.client_key_algorithm, Some(KeyAlgorithm::PS256));
        assert_eq!(reg.client_key_id.as_deref(), Some("k1"));
        assert!(matches!(&reg.client_assertion_audience, Some(OneOrMany::Many(v)) if v.len() == 2));
        assert_eq!(reg.actor_token, Some(SourceSpec::Env { var: "ACTOR".into() }));
    }

    #[test]
    fn a_mutual_tls_entry_resolves_its_certificate_beside_the_config() {
        let reg = entry(
            r#""client_auth": "tls_client_auth", "client_id": "docker", "client_certificate": "certs/client.pem",
            "client_key": {"source": "file", "path": "certs/client.key"}"#,
        )
        .unwrap();
        assert_eq!(reg.client_certificate.as_deref(), Some(Path::new("/etc/dce/certs/client.pem")));
    }

    #[test]
    fn the_rfc_7591_names_of_the_secret_methods_are_accepted() {
        let reg = entry(r#""client_auth": "client_secret_post""#).unwrap();
        assert_eq!(reg.client_auth, ClientAuth::Post);
        let err = refused(r#""client_auth": "private_key""#, "client_auth");
        assert!(err.contains("private_key_jwt"), "{err}");
    }

    #[test]
    fn each_method_names_what_it_lacks() {
        refused(r#""client_auth": "private_key_jwt", "client_id": "docker""#, "client_key");
        refused(
            r#""client_auth": "private_key_jwt", "client_key": {"source": "env", "var": "K"}"#,
            "client_id",
        );
        refused(
            r#""client_auth": "self_signed_tls_client_auth", "client_id": "d", "client_key": {"source": "env", "var": "K"}"#,
            "client_certificate",
        );
    }

    #[test]
    fn a_field_the_method_would_not_read_is_an_error() {
        refused(r#""client_key": {"source": "env", "var": "K"}"#, "client_key");
        refused(r#""client_key_algorithm": "PS256""#, "client_key_algorithm");
        refused(&format!(r#"{JWT}, "client_certificate": "c.pem""#), "client_certificate");
        refused(&format!(r#"{JWT}, "client_secret": {{"source": "env", "var": "S"}}"#), "client_secret");
        refused(
            r#""client_auth": "tls_client_auth", "client_id": "d", "client_certificate": "c.pem",
            "client_key": {"source": "env", "var": "K"}, "client_key_id": "k1""#,
            "client_key_id",
        );
    }

    #[test]
    fn a_client_key_from_the_keyring_is_refused_with_the_way_out() {
        let err = refused(
            r#""client_auth": "private_key_jwt", "client_id": "d", "client_key": {"source": "keyring"}"#,
            "client_key",
        );
        assert!(err.contains("command"), "{err}");
    }

    #[test]
    fn an_unknown_algorithm_is_an_error_naming_the_field() {
        let err = entry(&format!(r#"{JWT}, "client_key_algorithm": "HS256""#)).unwrap_err().to_string();
        assert!(err.contains("client_key_algorithm") && err.contains("HS256"), "{err}");
    }

    #[test]
    fn mutual_tls_over_plain_http_is_refused_naming_the_entry() {
        let json = r#"{"registries": {"r.example": {"token_endpoint": "http://127.0.0.1:8080/token",
            "client_auth": "tls_client_auth", "client_id": "d", "client_certificate": "c.pem",
            "client_key": {"source": "env", "var": "K"}}}}"#;
        let config = Config::parse(Path::new("/etc/dce/config.json"), json.as_bytes().to_vec()).unwrap();
        let err = config.registry(config.ids().next().unwrap()).unwrap_err().to_string();
        assert!(err.contains("registries.\"r.example\".token_endpoint"), "{err}");
        assert!(err.contains("tls_client_auth") && err.contains("https://"), "{err}");
    }

    #[test]
    fn an_actor_token_needs_its_type_and_a_type_needs_its_token() {
        let err = refused(r#""actor_token": {"source": "env", "var": "A"}"#, "actor_token_type");
        assert!(err.contains("RFC 8693"), "{err}");
        refused(r#""actor_token_type": "urn:ietf:params:oauth:token-type:jwt""#, "actor_token_type");
        refused(
            r#""actor_token": {"source": "keyring"}, "actor_token_type": "urn:ietf:params:oauth:token-type:jwt""#,
            "actor_token",
        );
    }
}
