//! Subject tokens: the long-lived login token an exchange starts from, read
//! from the source the registry's config names (DESIGN.md section 2).
//!
//! Sources differ in cost. `env` and `file` are read on every `get`, so a
//! rotated token is noticed at once through the cache entry's fingerprint;
//! `keyring` and `github-actions` are read only when an exchange is needed,
//! because a cache hit must not touch D-Bus or the network.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::SourceSpec;
use crate::secret::Secret;
use crate::server_url::ServerUrl;
use crate::store::{CredentialStore, StoreError};

const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
const DEFAULT_COMMAND_TIMEOUT: u64 = 10;
/// GitHub Actions: the ID-token endpoint of the job.
pub const GHA_URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token for that endpoint.
pub const GHA_TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Why a subject token could not be read. None of these carry the token.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// The variable holds bytes that are not UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    /// The file exists but cannot be read.
    #[error("cannot read the subject token file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The command could not be started.
    #[error("cannot run subject token command {program}: {source}")]
    CommandSpawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The command failed or printed nothing.
    #[error("subject token command {program} {what}; run it by hand to see why")]
    CommandFailed { program: String, what: String },
    /// The GitHub Actions ID-token request failed.
    #[error("cannot get the GitHub Actions OIDC token: {0}")]
    GithubActions(String),
    /// The token is a JWT whose `exp` has passed.
    #[error("the login token for {registry} expired at {at}; {hint}")]
    Expired { registry: String, at: String, hint: String },
    /// The keyring or file store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A subject token and where it came from.
#[derive(Debug)]
pub struct Subject {
    /// The token.
    pub token: Secret,
    /// The username stored with it (keyring source only).
    pub username: Option<String>,
}

/// What can be known about the subject without expensive work: for cheap
/// sources the token itself, for the others only whether one can exist.
#[derive(Debug)]
pub enum Probe {
    /// No token can be had: the variable is unset, the file absent, the
    /// CI variables missing. `get` answers not-found without a request.
    Absent,
    /// The token was read (env, file, command).
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
pub fn probe(spec: &SourceSpec) -> Result<Probe, SubjectError> {
    let loaded =
        |t: Option<Secret>| t.map_or(Probe::Absent, |token| Probe::Loaded(Subject { token, username: None }));
    match spec {
        SourceSpec::Keyring => Ok(Probe::Deferred { fingerprint: None }),
        SourceSpec::Env { var } => Ok(loaded(from_env(var)?)),
        SourceSpec::File { path } => Ok(loaded(from_file(path)?)),
        SourceSpec::Command { argv, timeout_seconds } => Ok(loaded(Some(from_command(
            argv,
            Duration::from_secs(timeout_seconds.unwrap_or(DEFAULT_COMMAND_TIMEOUT)),
        )?))),
        SourceSpec::GithubActions { .. } => {
            match (std::env::var(GHA_URL_ENV), std::env::var(GHA_TOKEN_ENV)) {
                (Ok(url), Ok(token)) if !url.is_empty() && !token.is_empty() => Ok(Probe::Deferred {
                    fingerprint: Some(Secret::new(format!("{url}\n{token}")).sha256_hex()),
                }),
                _ => Ok(Probe::Absent),
            }
        }
    }
}

/// Reads a deferred source: the keyring item of `key`, or the GitHub
/// Actions ID token for `audience`. `Ok(None)`: nothing stored.
///
/// # Errors
/// The store or the ID-token endpoint failed.
pub fn load_deferred(
    spec: &SourceSpec,
    key: &ServerUrl,
    store: &dyn CredentialStore,
    default_audience: Option<&str>,
) -> Result<Option<Subject>, SubjectError> {
    match spec {
        SourceSpec::Keyring => Ok(store
            .get(key)?
            .filter(|c| !c.secret.is_empty())
            .map(|c| Subject { token: c.secret, username: Some(c.username).filter(|u| !u.is_empty()) })),
        SourceSpec::GithubActions { audience } => {
            let audience = audience.as_deref().or(default_audience);
            github_actions_token(audience).map(|t| Some(Subject { token: t, username: None }))
        }
        SourceSpec::Env { .. } | SourceSpec::File { .. } | SourceSpec::Command { .. } => match probe(spec)? {
            Probe::Loaded(s) => Ok(Some(s)),
            _ => Ok(None),
        },
    }
}

/// Reads a secret from a non-keyring source (the client secret).
///
/// # Errors
/// As [`probe`].
pub fn read_secret(spec: &SourceSpec) -> Result<Option<Secret>, SubjectError> {
    match probe(spec)? {
        Probe::Loaded(s) => Ok(Some(s.token)),
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
    let file_err = |source| SubjectError::File { path: path.to_owned(), source };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_err(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut bytes).map_err(file_err)?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(file_err(std::io::Error::other("larger than 1 MiB")));
    }
    let text = String::from_utf8(bytes).map_err(|_| file_err(std::io::Error::other("not UTF-8 text")))?;
    Ok(non_empty(text.trim()))
}

fn non_empty(s: &str) -> Option<Secret> {
    (!s.is_empty()).then(|| Secret::new(s.to_owned()))
}

fn from_command(argv: &[String], timeout: Duration) -> Result<Secret, SubjectError> {
    let program = argv.first().cloned().unwrap_or_default();
    let failed = |what: String| SubjectError::CommandFailed { program: program.clone(), what };
    let mut child = Command::new(&program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| SubjectError::CommandSpawn { program: program.clone(), source })?;
    let mut stdout = child.stdout.take().ok_or_else(|| failed("has no stdout".into()))?;
    // Read on a thread so a command that fills the pipe cannot deadlock the
    // wait below, and a command that hangs is killed at the deadline.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_TOKEN_BYTES + 1).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("did not finish within {}s", timeout.as_secs())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(failed(format!("could not be waited for ({e})"))),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(format!("exited with {status}")));
    }
    if out.len() as u64 > MAX_TOKEN_BYTES {
        return Err(failed("printed more than 1 MiB".into()));
    }
    let text = String::from_utf8(out).map_err(|_| failed("printed something that is not UTF-8".into()))?;
    non_empty(text.trim()).ok_or_else(|| failed("printed nothing".into()))
}

#[derive(serde::Deserialize)]
struct GhaResponse {
    value: Secret,
}

fn github_actions_token(audience: Option<&str>) -> Result<Secret, SubjectError> {
    let err = SubjectError::GithubActions;
    let url = std::env::var(GHA_URL_ENV).map_err(|_| err(format!("{GHA_URL_ENV} is not set")))?;
    let bearer =
        Secret::new(std::env::var(GHA_TOKEN_ENV).map_err(|_| err(format!("{GHA_TOKEN_ENV} is not set")))?);
    let mut url = reqwest::Url::parse(&url).map_err(|e| err(format!("{GHA_URL_ENV} is not a URL ({e})")))?;
    if let Some(aud) = audience {
        url.query_pairs_mut().append_pair("audience", aud);
    }
    let client = crate::http::client(None).map_err(|e| err(e.to_string()))?;
    let resp = crate::http::send(|| {
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
    let parsed: GhaResponse = serde_json::from_slice(&resp.body)
        .map_err(|_| err("the answer is not JSON with a \"value\" field".into()))?;
    if parsed.value.is_empty() {
        return Err(err("the answer's \"value\" is empty".into()));
    }
    Ok(parsed.value)
}

/// Fails fast if `token` is a JWT already past its `exp`: an exchange
/// would only be refused, and the user needs to log in again.
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
        SourceSpec::Keyring => format!("run `docker-credential-exchange login {registry}`"),
        SourceSpec::Env { var } => format!("set {var} to a fresh token"),
        SourceSpec::File { path } => {
            format!("{} is not being refreshed; check whatever rotates it", path.display())
        }
        SourceSpec::Command { .. } => "the subject token command printed an expired token".to_owned(),
        SourceSpec::GithubActions { .. } => "the job's OIDC token has expired; re-run the job".to_owned(),
    };
    Err(SubjectError::Expired { registry: registry.to_string(), at: crate::time::rfc3339_signed(exp), hint })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_absent_not_an_error() {
        let p = probe(&SourceSpec::File { path: "/nonexistent/token".into() }).unwrap();
        assert!(matches!(p, Probe::Absent));
    }

    #[test]
    fn file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  tok\n").unwrap();
        let Probe::Loaded(s) = probe(&SourceSpec::File { path }).unwrap() else { panic!() };
        assert_eq!(s.token.expose(), "tok");
    }

    #[test]
    fn empty_file_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(probe(&SourceSpec::File { path }).unwrap(), Probe::Absent));
    }

    #[test]
    fn command_stdout_is_trimmed() {
        let argv = vec!["sh".into(), "-c".into(), "echo '  cmd-token  '".into()];
        let Probe::Loaded(s) = probe(&SourceSpec::Command { argv, timeout_seconds: None }).unwrap() else {
            panic!()
        };
        assert_eq!(s.token.expose(), "cmd-token");
    }

    #[test]
    fn failing_command_is_an_error_without_its_output() {
        let argv = vec!["sh".into(), "-c".into(), "echo leaked-secret; exit 3".into()];
        let err = probe(&SourceSpec::Command { argv, timeout_seconds: None }).unwrap_err().to_string();
        assert!(err.contains("exit"), "{err}");
        assert!(!err.contains("leaked-secret"));
    }

    #[test]
    fn hanging_command_is_killed_at_its_timeout() {
        let argv = vec!["sleep".into(), "30".into()];
        let start = Instant::now();
        let err = probe(&SourceSpec::Command { argv, timeout_seconds: Some(1) }).unwrap_err().to_string();
        assert!(err.contains("within 1s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let argv = vec!["/nonexistent/program".into()];
        let err = probe(&SourceSpec::Command { argv, timeout_seconds: None }).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/program"), "{err}");
    }
}
