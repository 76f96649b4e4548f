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
    match &reg.client_secret {
        Some(SourceSpec::Keyring | SourceSpec::GithubActions { .. } | SourceSpec::Kubelet) => {
            return Err(("client_secret", "use an env, file or command source".into()));
        }
        Some(src) => check_source(src).map_err(|r| ("client_secret", r))?,
        None => {}
    }
    if reg.client_secret.is_some() && reg.client_id.is_none() {
        return Err(("client_id", "is required when client_secret is set".into()));
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
