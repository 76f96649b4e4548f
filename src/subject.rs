//! Subject tokens: the long-lived login token an exchange starts from, read
//! from the source the registry's config names (DESIGN.md section 2).
//!
//! Sources differ in cost. `env`, `file` and `command` are read on every
//! `get`, so a rotated token is noticed at once through the cache entry's
//! fingerprint; `keyring` and `github-actions` are read only when an
//! exchange is needed, because a cache hit must not touch D-Bus or the
//! network. Reading a source is [`crate::source`]'s; this module decides
//! which source is read when, and what a missing or expired token means.

use crate::config::SourceSpec;
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::source::{self, GHA_TOKEN_ENV, GHA_URL_ENV, SourceError};
use crate::store::StoreError;

/// Why a subject token could not be read. None of these carry the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The source exists but cannot be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The token is a JWT whose `exp` has passed.
    #[error("the login token for {registry} expired at {at}; {hint}")]
    Expired {
        /// The registry.
        registry: String,
        /// When, RFC 3339.
        at: String,
        /// What to do, for this source.
        hint: String,
    },
    /// The keyring or file store failed.
    #[error("{0}")]
    Store(String),
    /// The actor token of an entry that delegates (RFC 8693) cannot be
    /// had: without it the exchange would ask for another token than the
    /// config describes.
    #[error("the actor token for {registry} ({source_name}) {reason}")]
    Actor {
        /// The registry.
        registry: String,
        /// Its source, described.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<StoreError> for SubjectError {
    fn from(e: StoreError) -> Self {
        SubjectError::Store(e.to_string())
    }
}

/// A subject token and where it came from.
#[derive(Debug)]
pub struct Subject {
    /// The token.
    pub token: Secret,
    /// The username stored with it (keyring source only).
    pub username: Option<String>,
}

/// What the sources may draw on for one request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The invocation's deadline.
    pub deadline: &'a Deadline,
    /// The service account token of a kubelet request, if any.
    pub kubelet_token: Option<&'a Secret>,
}

/// What can be known about the subject without expensive work: for cheap
/// sources the token itself, for the others only whether one can exist.
#[derive(Debug)]
pub enum Probe {
    /// No token can be had: the variable is unset, the file absent, the
    /// CI variables missing. `get` answers not-found without a request.
    Absent,
    /// The token was read (env, file, command, kubelet).
    Loaded(Subject),
    /// The token will be read on a cache miss (keyring, github-actions).
    Deferred {
        /// Changes when the token would change (github-actions: the job's
        /// request token), for the cache entry.
        fingerprint: Option<String>,
    },
}

impl Probe {
    /// The fingerprint that a cache entry must match.
    pub fn fingerprint(&self) -> Option<String> {
        match self {
            Probe::Absent => None,
            Probe::Loaded(s) => Some(s.token.sha256_hex()),
            Probe::Deferred { fingerprint } => fingerprint.clone(),
        }
    }
}

/// Looks at the source as cheaply as the source allows.
///
/// # Errors
/// A source that exists but cannot be read.
pub fn probe(spec: &SourceSpec, cx: Context<'_>) -> Result<Probe, SubjectError> {
    let loaded =
        |t: Option<Secret>| t.map_or(Probe::Absent, |token| Probe::Loaded(Subject { token, username: None }));
    match spec {
        SourceSpec::Keyring => Ok(Probe::Deferred { fingerprint: None }),
        SourceSpec::Env { .. } | SourceSpec::File { .. } | SourceSpec::Command { .. } => {
            Ok(loaded(source::read(spec, cx.deadline)?))
        }
        SourceSpec::GithubActions { .. } => {
            match (std::env::var(GHA_URL_ENV), std::env::var(GHA_TOKEN_ENV)) {
                (Ok(url), Ok(token)) if !url.is_empty() && !token.is_empty() => Ok(Probe::Deferred {
                    fingerprint: Some(Secret::new(format!("{url}\n{token}")).sha256_hex()),
                }),
                _ => Ok(Probe::Absent),
            }
        }
        SourceSpec::Kubelet => Ok(loaded(cx.kubelet_token.cloned())),
    }
}

/// Reads the subject the probe deferred or already loaded: the keyring
/// item of `key`, or the GitHub Actions ID token for `audience`.
/// `Ok(None)`: nothing stored.
///
/// # Errors
/// The store or the ID-token endpoint failed.
pub fn load(
    spec: &SourceSpec,
    probe: Probe,
    store: impl FnOnce() -> Result<Option<crate::store::StoredCredential>, StoreError>,
    default_audience: Option<&str>,
    cx: Context<'_>,
) -> Result<Option<Subject>, SubjectError> {
    match (probe, spec) {
        (Probe::Absent, _) => Ok(None),
        (Probe::Loaded(s), _) => Ok(Some(s)),
        (Probe::Deferred { .. }, SourceSpec::GithubActions { audience }) => {
            let audience = audience.as_deref().or(default_audience);
            let token = source::github_actions(audience, cx.deadline)?;
            Ok(Some(Subject { token, username: None }))
        }
        (Probe::Deferred { .. }, _) => Ok(store()?
            .filter(|c| !c.secret.is_empty())
            .map(|c| Subject { token: c.secret, username: Some(c.username).filter(|u| !u.is_empty()) })),
    }
}

/// Probes the actor token of an entry that delegates, as cheaply as its
/// source allows (its fingerprint joins the cache key); `None` when the
/// entry has no `actor_token`.
///
/// # Errors
/// The source fails, or has no token: unlike a missing subject (nothing
/// to do, "not found"), a missing actor is a broken set-up.
pub fn probe_actor(
    registry: &ServerUrl,
    spec: Option<&SourceSpec>,
    cx: Context<'_>,
) -> Result<Option<Probe>, SubjectError> {
    let Some(spec) = spec else { return Ok(None) };
    let actor_error = |reason: String| SubjectError::Actor {
        registry: registry.to_string(),
        source_name: spec.describe(),
        reason,
    };
    match probe(spec, cx) {
        Ok(Probe::Absent) => {
            Err(actor_error("is not available; provide it, or remove actor_token from the entry".into()))
        }
        Ok(found) => Ok(Some(found)),
        Err(e) => Err(actor_error(format!("cannot be read: {e}"))),
    }
}

/// The actor token that [`probe_actor`] read, or for a deferred source
/// (github-actions) fetches it now, on the cold path.
///
/// # Errors
/// The deferred fetch failed.
pub fn load_actor(
    registry: &ServerUrl,
    spec: &SourceSpec,
    probe: &Probe,
    default_audience: Option<&str>,
    deadline: &Deadline,
) -> Result<Secret, SubjectError> {
    let actor_error = |reason: String| SubjectError::Actor {
        registry: registry.to_string(),
        source_name: spec.describe(),
        reason,
    };
    match (probe, spec) {
        (Probe::Loaded(s), _) => Ok(s.token.clone()),
        (Probe::Deferred { .. }, SourceSpec::GithubActions { audience }) => {
            source::github_actions(audience.as_deref().or(default_audience), deadline)
                .map_err(|e| actor_error(format!("cannot be read: {e}")))
        }
        _ => Err(actor_error("is not available".into())),
    }
}

/// Why `spec` has no token here, for a person (the `token` command) and the
/// log file: "credentials not found" is all Docker may be told. `key` is
/// the registry's entry. Called only once a token was found missing, so it
/// looks at the environment again rather than make the probe carry this.
pub fn why_absent(spec: &SourceSpec, key: &ServerUrl) -> String {
    let unset = |var: &str| match std::env::var_os(var) {
        None => format!("{var} is not set"),
        Some(_) => format!("{var} is empty"),
    };
    match spec {
        SourceSpec::Keyring => format!("nothing is stored; run `docker-credential-exchange login {key}`"),
        SourceSpec::Env { var } => format!("the environment variable {}", unset(var)),
        SourceSpec::File { path } => format!("{} does not exist or is empty", path.display()),
        SourceSpec::Command { .. } => "the command printed no token".to_owned(),
        SourceSpec::GithubActions { .. } => {
            let missing: Vec<String> = [GHA_URL_ENV, GHA_TOKEN_ENV]
                .into_iter()
                .filter(|var| std::env::var_os(var).is_none_or(|v| v.is_empty()))
                .map(unset)
                .collect();
            format!(
                "{}: this is not a GitHub Actions job, or the job lacks `permissions: id-token: write`",
                missing.join(" and ")
            )
        }
        SourceSpec::Kubelet => "the kubelet passed no service account token (is tokenAttributes set in its \
                                CredentialProviderConfig?)"
            .to_owned(),
    }
}

/// Fails fast if `token` is a JWT already past its `exp`: an exchange
/// would only be refused, and the user needs a fresh token.
///
/// # Errors
/// [`SubjectError::Expired`] with a hint that fits the source.
pub fn check_not_expired(
    token: &Secret,
    registry: &ServerUrl,
    spec: &SourceSpec,
    now: i64,
) -> Result<(), SubjectError> {
    let Some(exp) = crate::jwt::expiry(token.expose()) else {
        return Ok(());
    };
    if exp > now {
        return Ok(());
    }
    let hint = match spec {
        SourceSpec::Keyring => {
            format!("run `docker-credential-exchange login {registry}` with a fresh token")
        }
        SourceSpec::Env { var } => format!("set {var} to a fresh token"),
        SourceSpec::File { path } => {
            format!("{} is not being refreshed; check whatever rotates it", path.display())
        }
        SourceSpec::Command { .. } => "the subject token command printed an expired token".to_owned(),
        SourceSpec::GithubActions { .. } => "the job's OIDC token has expired; re-run the job".to_owned(),
        SourceSpec::Kubelet => "the kubelet passed an expired service account token".to_owned(),
    };
    Err(SubjectError::Expired { registry: registry.to_string(), at: crate::time::rfc3339_signed(exp), hint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe_now(spec: &SourceSpec) -> Result<Probe, SubjectError> {
        probe(spec, Context { deadline: &Deadline::after(Duration::from_secs(30)), kubelet_token: None })
    }

    #[test]
    fn a_kubelet_source_is_the_requests_token() {
        let token = Secret::new("sa-token-value".into());
        let deadline = Deadline::after(Duration::from_secs(5));
        let cx = Context { deadline: &deadline, kubelet_token: Some(&token) };
        let Probe::Loaded(s) = probe(&SourceSpec::Kubelet, cx).unwrap() else { panic!() };
        assert_eq!(s.token.expose(), "sa-token-value");
        assert!(matches!(probe_now(&SourceSpec::Kubelet).unwrap(), Probe::Absent));
    }
}
