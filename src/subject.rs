//! Subject tokens: the long-lived login token an exchange starts from, read
//! from the source the registry's config names (DESIGN.md section 2).
//!
//! Sources differ in cost. `env`, `file` and `command` are read on every
//! `get`, so a rotated token is noticed at once through the cache entry's
//! fingerprint; `keyring` and `github-actions` are read only when an
//! exchange is needed, because a cache hit must not touch D-Bus or the
//! network. Every read ends by the invocation's deadline: a command is
//! killed with its whole process group ([`crate::command`]), and a file
//! that is not a regular file (a FIFO would block for ever) is refused at
//! once.

use std::path::Path;
use std::time::Duration;

use crate::bounded::ONE_MIB;
use crate::config::SourceSpec;
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::StoreError;

const MAX_TOKEN_BYTES: u64 = ONE_MIB;
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// GitHub Actions: the ID-token endpoint of the job.
pub const GHA_URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token for that endpoint.
pub const GHA_TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Why a subject token could not be read. None of these carry the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The variable holds bytes that are not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The file exists but cannot be used.
    #[error("cannot read the subject token file: {0}")]
    File(String),
    /// The command could not be started.
    #[error("cannot run subject token command {program}: {reason}")]
    CommandSpawn {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// The command failed, printed nothing, or ran out of time.
    #[error("subject token command {program} {what}; run it by hand to see why")]
    CommandFailed {
        /// The program.
        program: String,
        /// What went wrong.
        what: String,
    },
    /// The GitHub Actions ID-token request failed.
    #[error("cannot get the GitHub Actions OIDC token: {0}")]
    GithubActions(String),
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
        SourceSpec::Env { var } => Ok(loaded(from_env(var)?)),
        SourceSpec::File { path } => Ok(loaded(from_file(path)?)),
        SourceSpec::Command { argv, timeout_seconds } => {
            let limit = timeout_seconds.map_or(DEFAULT_COMMAND_TIMEOUT, |s| Duration::from_secs(s.0));
            Ok(loaded(Some(from_command(argv, &cx.deadline.within(limit))?)))
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
            github_actions_token(audience, cx.deadline).map(|t| Some(Subject { token: t, username: None }))
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
            github_actions_token(audience.as_deref().or(default_audience), deadline)
                .map_err(|e| actor_error(format!("cannot be read: {e}")))
        }
        _ => Err(actor_error("is not available".into())),
    }
}

/// Reads a secret from a non-keyring source (the client secret).
///
/// # Errors
/// As [`probe`].
pub fn read_secret(spec: &SourceSpec, cx: Context<'_>) -> Result<Option<Secret>, SubjectError> {
    match probe(spec, cx)? {
        Probe::Loaded(s) => Ok(Some(s.token)),
        _ => Ok(None),
    }
}

/// Reads an env, file or command source for a person (`status`,
/// `doctor`); `None` for sources that are not read without a request.
///
/// # Errors
/// As [`probe`].
pub fn peek(spec: &SourceSpec, deadline: &Deadline) -> Result<Option<Secret>, SubjectError> {
    match spec {
        SourceSpec::Env { .. } | SourceSpec::File { .. } | SourceSpec::Command { .. } => {
            read_secret(spec, Context { deadline, kubelet_token: None })
        }
        _ => Ok(None),
    }
}

fn from_env(var: &str) -> Result<Option<Secret>, SubjectError> {
    match std::env::var(var) {
        Ok(v) => Ok(non_empty(v.trim())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(SubjectError::EnvNotUnicode(var.to_owned())),
    }
}

fn from_file(path: &Path) -> Result<Option<Secret>, SubjectError> {
    let Some(bytes) = crate::fsutil::read_regular_file(path, MAX_TOKEN_BYTES)
        .map_err(|e| SubjectError::File(e.to_string()))?
    else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| SubjectError::File(format!("{} is not UTF-8 text", path.display())))?;
    Ok(non_empty(text.trim()))
}

fn non_empty(s: &str) -> Option<Secret> {
    (!s.is_empty()).then(|| Secret::new(s.to_owned()))
}

fn from_command(argv: &[String], deadline: &Deadline) -> Result<Secret, SubjectError> {
    let program = argv.first().cloned().unwrap_or_default();
    let failed = |what: String| SubjectError::CommandFailed { program: program.clone(), what };
    let done = crate::command::run(argv, None, deadline).map_err(|e| match e {
        crate::command::CommandError::Spawn { reason, .. } => {
            SubjectError::CommandSpawn { program: program.clone(), reason }
        }
        crate::command::CommandError::TimedOut { limit, .. } => {
            failed(format!("did not finish within {limit}s and was killed"))
        }
        crate::command::CommandError::Output { reason, .. } => failed(reason),
    })?;
    if !done.status.success() {
        return Err(failed(format!("exited with {}", done.status)));
    }
    let text =
        String::from_utf8(done.stdout).map_err(|_| failed("printed something that is not UTF-8".into()))?;
    non_empty(text.trim()).ok_or_else(|| failed("printed nothing".into()))
}

#[derive(serde::Deserialize)]
struct GhaResponse {
    value: Secret,
}

fn github_actions_token(audience: Option<&str>, deadline: &Deadline) -> Result<Secret, SubjectError> {
    let err = SubjectError::GithubActions;
    let url = std::env::var(GHA_URL_ENV).map_err(|_| err(format!("{GHA_URL_ENV} is not set")))?;
    let bearer =
        Secret::new(std::env::var(GHA_TOKEN_ENV).map_err(|_| err(format!("{GHA_TOKEN_ENV} is not set")))?);
    let mut url = url::Url::parse(&url).map_err(|e| err(format!("{GHA_URL_ENV} is not a URL ({e})")))?;
    if let Some(aud) = audience {
        url.query_pairs_mut().append_pair("audience", aud);
    }
    let http = crate::http::Http::new(&url, None).map_err(|e| err(e.to_string()))?;
    let resp = http
        .send(deadline, |client| {
            client
                .get(url.clone())
                .bearer_auth(bearer.expose())
                .header(reqwest::header::USER_AGENT, "actions/oidc-client")
                .header(reqwest::header::ACCEPT, "application/json")
        })
        .map_err(|e| err(e.to_string()))?;
    if resp.status != 200 {
        return Err(err(format!("the endpoint answered HTTP {}", resp.status)));
    }
    let parsed: GhaResponse = crate::json::from_object_slice(&resp.body)
        .map_err(|_| err("the answer is not JSON with a \"value\" field".into()))?;
    if parsed.value.is_empty() {
        return Err(err("the answer's \"value\" is empty".into()));
    }
    Ok(parsed.value)
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
    use crate::config::schema::Seconds;
    use std::time::Instant;

    fn probe_now(spec: &SourceSpec) -> Result<Probe, SubjectError> {
        probe(spec, Context { deadline: &Deadline::after(Duration::from_secs(30)), kubelet_token: None })
    }

    fn command(script: &str, timeout: Option<u64>) -> SourceSpec {
        SourceSpec::Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            timeout_seconds: timeout.map(Seconds),
        }
    }

    #[test]
    fn missing_file_is_absent_not_an_error() {
        let p = probe_now(&SourceSpec::File { path: "/nonexistent/token".into() }).unwrap();
        assert!(matches!(p, Probe::Absent));
    }

    #[test]
    fn file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  tok\n").unwrap();
        let Probe::Loaded(s) = probe_now(&SourceSpec::File { path }).unwrap() else { panic!() };
        assert_eq!(s.token.expose(), "tok");
    }

    #[test]
    fn empty_file_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(probe_now(&SourceSpec::File { path }).unwrap(), Probe::Absent));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_file_source_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = probe_now(&SourceSpec::File { path: fifo }).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn command_stdout_is_trimmed() {
        let Probe::Loaded(s) = probe_now(&command("echo '  cmd-token  '", None)).unwrap() else { panic!() };
        assert_eq!(s.token.expose(), "cmd-token");
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn failing_command_is_an_error_without_its_output() {
        let err = probe_now(&command("echo leaked-secret; exit 3", None)).unwrap_err().to_string();
        assert!(err.contains("exit"), "{err}");
        assert!(!err.contains("leaked-secret"));
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn hanging_command_is_killed_at_its_timeout() {
        let start = Instant::now();
        let err = probe_now(&command("sleep 30", Some(1))).unwrap_err().to_string();
        assert!(err.contains("within 1s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[cfg(unix)]
    #[test]
    fn a_background_child_holding_stdout_is_killed_with_the_group() {
        let start = Instant::now();
        let Probe::Loaded(s) = probe_now(&command("echo tok; sleep 30 &", Some(2))).unwrap() else {
            panic!()
        };
        assert_eq!(s.token.expose(), "tok");
        assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
    }

    #[test]
    fn the_invocation_deadline_bounds_a_command_with_a_longer_timeout() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let start = Instant::now();
        let err =
            probe(&command("sleep 30", Some(600)), Context { deadline: &deadline, kubelet_token: None });
        assert!(err.is_err());
        assert!(start.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let spec = SourceSpec::Command { argv: vec!["/nonexistent/program".into()], timeout_seconds: None };
        let err = probe_now(&spec).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/program"), "{err}");
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
