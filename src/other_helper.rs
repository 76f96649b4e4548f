//! Another credential helper (secretservice, pass, osxkeychain, wincred,
//! desktop, …), run as Docker runs it: `list` and `get` with the request
//! on stdin, by one deadline. What it prints is never trusted: an answer
//! that is not the protocol's is an error, and its own words are kept
//! only as a short excerpt, redacted strictly, since it may echo a secret
//! this helper never held.

use crate::command::CommandError;
use crate::deadline::Deadline;
use crate::secret::Secret;

/// A credential as a helper's `get` answers it.
#[derive(serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Answer {
    #[serde(rename = "Username", default)]
    pub(crate) username: String,
    #[serde(rename = "Secret")]
    pub(crate) secret: Secret,
}

/// Why a call to the other helper failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// It could not be run, or not to the end.
    #[error("{action}: {source}")]
    Run {
        /// The action (`list`, `get`).
        action: &'static str,
        #[source]
        source: CommandError,
    },
    /// It ran and reported failure; a short excerpt of what it printed
    /// (helpers print their error on stdout), redacted strictly (see
    /// [`crate::redact::excerpt`]).
    #[error("{program} {action} failed ({status}): {said}")]
    Failed { program: String, action: &'static str, status: std::process::ExitStatus, said: String },
    /// Its answer is not what the protocol says.
    #[error("{program} {action} did not answer {expected}: {reason}")]
    BadAnswer { program: String, action: &'static str, expected: &'static str, reason: String },
}

/// `get` of the other helper for `server`.
pub(crate) fn get(program: &str, server: &str, deadline: &Deadline) -> Result<Answer, CallError> {
    let out = call(program, "get", server.as_bytes(), deadline)?;
    crate::json::from_object_slice(&out).map_err(|e| CallError::BadAnswer {
        program: program.to_owned(),
        action: "get",
        expected: "credentials",
        reason: e.to_string(),
    })
}

/// Runs `program action` with `input` on stdin, as Docker would, by
/// `deadline` (one for a whole import: a helper that hangs costs it once).
pub(crate) fn call(
    program: &str,
    action: &'static str,
    input: &[u8],
    deadline: &Deadline,
) -> Result<Vec<u8>, CallError> {
    let done = crate::command::run(&[program.to_owned(), action.to_owned()], Some(input), deadline)
        .map_err(|source| CallError::Run { action, source })?;
    if !done.status.success() {
        let said = crate::redact::excerpt(&String::from_utf8_lossy(&done.stdout), crate::redact::MAX_EXCERPT);
        return Err(CallError::Failed { program: program.to_owned(), action, status: done.status, said });
    }
    Ok(done.stdout)
}
