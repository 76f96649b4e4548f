//! What serde cannot check about one registry entry: URL schemes, the
//! placeholders its templates use, its sources and its key. Each failure
//! names the field, in the user's words.

use super::schema::{RegistryConfig, SourceSpec};
use super::template;
use crate::server_url::{ServerUrl, is_repository_name};

/// Checks one entry; `Err((field, reason))` names what to fix.
pub(super) fn entry(key: &ServerUrl, reg: &RegistryConfig) -> Result<(), (&'static str, String)> {
    if let Some(repository) = key.repository()
        && !is_repository_name(repository)
    {
        return Err((
            "(key)",
            format!(
                "{repository:?} is not a repository name (lower-case letters, digits, and . _ __ - between them)"
            ),
        ));
    }
    check_endpoint(&reg.token_endpoint).map_err(|r| ("token_endpoint", r))?;
    let annotations = &reg.kubelet_annotations;
    if annotations.iter().any(|a| a.is_empty() || a.contains(['{', '}'])) {
        return Err((
            "kubelet_annotations",
            "annotation keys must be non-empty and contain no braces".into(),
        ));
    }
    for (field, values) in [("audience", &reg.audience), ("resource", &reg.resource)] {
        for v in values.iter().flat_map(|v| v.values()) {
            template::check(v, annotations).map_err(|r| (field, r))?;
        }
    }
    if let Some(scope) = &reg.scope {
        template::check(scope, annotations).map_err(|r| ("scope", r))?;
    }
    check_source(&reg.subject_token).map_err(|r| ("subject_token", r))?;
    for (field, src) in [("client_secret", &reg.client_secret), ("client_key", &reg.client_key)] {
        match src {
            // The keyring item of a registry is its login token; a client
            // credential kept in a keyring is read by a command source
            // (e.g. `secret-tool lookup …`).
            Some(SourceSpec::Keyring | SourceSpec::GithubActions { .. } | SourceSpec::Kubelet) => {
                return Err((
                    field,
                    "use an env, file or command source (a command can read it from a keyring, e.g. secret-tool lookup)"
                        .into(),
                ));
            }
            Some(src) => check_source(src).map_err(|r| (field, r))?,
            None => {}
        }
    }
    if reg.client_secret.is_some() && reg.client_id.is_none() {
        return Err(("client_id", "is required when client_secret is set".into()));
    }
    super::client::check(reg)?;
    match (&reg.actor_token, &reg.actor_token_type) {
        // The keyring item is the subject's; an actor comes from elsewhere.
        (Some(SourceSpec::Keyring), _) => {
            return Err((
                "actor_token",
                "use an env, file, command, github-actions or kubelet source".into(),
            ));
        }
        (Some(src), Some(t)) if !t.is_empty() => check_source(src).map_err(|r| ("actor_token", r))?,
        (Some(_), _) => {
            return Err((
                "actor_token_type",
                "is required with actor_token (RFC 8693 section 2.1), e.g. urn:ietf:params:oauth:token-type:jwt"
                    .into(),
            ));
        }
        (None, Some(_)) => return Err(("actor_token_type", "is only used with actor_token".into())),
        (None, None) => {}
    }
    if reg.username.as_deref().is_some_and(str::is_empty) {
        return Err(("username", "must not be empty (omit it for the default)".into()));
    }
    Ok(())
}

/// `https://` anywhere, `http://` only to a loopback host: the subject
/// token must not cross a network in clear text.
///
/// # Errors
/// Why the endpoint is refused, in words.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("{endpoint:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use client_id and client_secret".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::http::is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "{endpoint} uses http:// to a non-loopback host; the subject token would travel in clear text, use https://"
        )),
        other => Err(format!("scheme {other}:// is not supported; use https://")),
    }
}

fn check_source(src: &SourceSpec) -> Result<(), String> {
    match src {
        SourceSpec::Env { var } if var.is_empty() || var.contains('=') => {
            Err("var must name an environment variable".into())
        }
        SourceSpec::Command { argv, .. } if argv.first().is_none_or(String::is_empty) => {
            Err("argv must name a program".into())
        }
        SourceSpec::Command { timeout_seconds: Some(s), .. } if s.0 == 0 => {
            Err("timeout_seconds must be a positive number of seconds".into())
        }
        _ => Ok(()),
    }
}
