//! Reading a secret from the source a config entry names (DESIGN.md
//! section 2): an environment variable, a file, a command, or the GitHub
//! Actions ID-token endpoint. Subject tokens, actor tokens, client secrets
//! and client keys are all read here; what a source means for an exchange
//! (the keyring item, the kubelet's token, when each is read) is the
//! subject's business ([`crate::subject`]).
//!
//! Every read ends by the invocation's deadline: a command is killed with
//! its whole process group ([`crate::command`]), and a file that is not a
//! regular file (a FIFO would block for ever) is refused at once.

use std::path::Path;
use std::time::Duration;

use crate::bounded::ONE_MIB;
use crate::config::{SourceSpec, StoreKind};
use crate::deadline::Deadline;
use crate::secret::Secret;

const MAX_TOKEN_BYTES: u64 = ONE_MIB;
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// GitHub Actions: the ID-token endpoint of the job.
pub const GHA_URL_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub Actions: the bearer token for that endpoint.
pub const GHA_TOKEN_ENV: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// Why a source could not be read. None of these carry the secret. The
/// words are a subject token's, the common case; a caller reading another
/// secret rewords them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
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
}

/// Where a login token comes from, in words that say where it really is
/// (`status` and `doctor` show it): the `keyring` source is the file store
/// when that was chosen (`store`, the config's choice, if it reads).
pub fn location(spec: &SourceSpec, store: Option<StoreKind>) -> String {
    match spec {
        SourceSpec::Keyring if store == Some(StoreKind::File) => "file store".to_owned(),
        other => other.describe(),
    }
}

/// Reads a source that holds its secret here (env, file, command), within
/// `deadline` (and a command's own timeout). `Ok(None)`: the source is
/// empty, or is one read only for a request (keyring, github-actions,
/// kubelet).
///
/// # Errors
/// A source that exists but cannot be read.
pub fn read(spec: &SourceSpec, deadline: &Deadline) -> Result<Option<Secret>, SourceError> {
    match spec {
        SourceSpec::Env { var } => env(var),
        SourceSpec::File { path } => file(path),
        SourceSpec::Command { argv, timeout_seconds } => {
            let limit = timeout_seconds.map_or(DEFAULT_COMMAND_TIMEOUT, |s| Duration::from_secs(s.0));
            command(argv, &deadline.within(limit)).map(Some)
        }
        SourceSpec::Keyring | SourceSpec::GithubActions { .. } | SourceSpec::Kubelet => Ok(None),
    }
}

fn env(var: &str) -> Result<Option<Secret>, SourceError> {
    match std::env::var(var) {
        Ok(v) => Ok(non_empty(v.trim())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(SourceError::EnvNotUnicode(var.to_owned())),
    }
}

fn file(path: &Path) -> Result<Option<Secret>, SourceError> {
    let Some(bytes) = crate::fsutil::read_regular_file(path, MAX_TOKEN_BYTES)
        .map_err(|e| SourceError::File(e.to_string()))?
    else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| SourceError::File(format!("{} is not UTF-8 text", path.display())))?;
    Ok(non_empty(text.trim()))
}

fn non_empty(s: &str) -> Option<Secret> {
    (!s.is_empty()).then(|| Secret::new(s.to_owned()))
}

fn command(argv: &[String], deadline: &Deadline) -> Result<Secret, SourceError> {
    let program = argv.first().cloned().unwrap_or_default();
    let failed = |what: String| SourceError::CommandFailed { program: program.clone(), what };
    let done = crate::command::run(argv, None, deadline).map_err(|e| match e {
        crate::command::CommandError::Spawn { reason, .. } => {
            SourceError::CommandSpawn { program: program.clone(), reason }
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

/// The job's OIDC token from the GitHub Actions ID-token endpoint, for
/// `audience`.
///
/// # Errors
/// The variables are missing, or the endpoint fails or answers no token.
pub fn github_actions(audience: Option<&str>, deadline: &Deadline) -> Result<Secret, SourceError> {
    let err = SourceError::GithubActions;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Seconds;
    use std::time::Instant;

    fn read_now(spec: &SourceSpec) -> Result<Option<Secret>, SourceError> {
        read(spec, &Deadline::after(Duration::from_secs(30)))
    }

    fn command(script: &str, timeout: Option<u64>) -> SourceSpec {
        SourceSpec::Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            timeout_seconds: timeout.map(Seconds),
        }
    }

    #[test]
    fn missing_file_is_absent_not_an_error() {
        assert_eq!(read_now(&SourceSpec::File { path: "/nonexistent/token".into() }).unwrap(), None);
    }

    #[test]
    fn file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "  tok\n").unwrap();
        let token = read_now(&SourceSpec::File { path }).unwrap().expect("a token");
        assert_eq!(token.expose(), "tok");
    }

    #[test]
    fn empty_file_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(read_now(&SourceSpec::File { path }).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_file_source_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_now(&SourceSpec::File { path: fifo }).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn command_stdout_is_trimmed() {
        let token = read_now(&command("echo '  cmd-token  '", None)).unwrap().expect("a token");
        assert_eq!(token.expose(), "cmd-token");
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn failing_command_is_an_error_without_its_output() {
        let err = read_now(&command("echo leaked-secret; exit 3", None)).unwrap_err().to_string();
        assert!(err.contains("exit"), "{err}");
        assert!(!err.contains("leaked-secret"));
    }

    // Runs sh or sleep, which Windows does not have.
    #[cfg(unix)]
    #[test]
    fn hanging_command_is_killed_at_its_timeout() {
        let start = Instant::now();
        let err = read_now(&command("sleep 30", Some(1))).unwrap_err().to_string();
        assert!(err.contains("within 1s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[cfg(unix)]
    #[test]
    fn a_background_child_holding_stdout_is_killed_with_the_group() {
        let start = Instant::now();
        let token = read_now(&command("echo tok; sleep 30 &", Some(2))).unwrap().expect("a token");
        assert_eq!(token.expose(), "tok");
        assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
    }

    #[test]
    fn the_invocation_deadline_bounds_a_command_with_a_longer_timeout() {
        let deadline = Deadline::after(Duration::from_secs(1));
        let start = Instant::now();
        assert!(read(&command("sleep 30", Some(600)), &deadline).is_err());
        assert!(start.elapsed() < Duration::from_secs(15));
    }

    #[test]
    fn missing_program_is_a_clear_error() {
        let spec = SourceSpec::Command { argv: vec!["/nonexistent/program".into()], timeout_seconds: None };
        let err = read_now(&spec).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/program"), "{err}");
    }
}
