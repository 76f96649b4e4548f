//! Docker's credential-helper protocol, byte-compatible with
//! docker-credential-helpers: one action per process, the request on stdin,
//! the answer on stdout, and errors on **stdout** with exit status 1,
//! because that is where Docker reads them.
//!
//! Docker's client maps three error strings back to typed errors; they are
//! defined once in [`crate::protocol_strings`], below the errors that say
//! them, and pinned by a test here.

use std::io::{Read, Write};
use std::process::ExitCode;

use crate::bounded::ReadError;
use crate::deadline::{BadTimeout, Deadline};
use crate::helper::{GetOptions, Helper, HelperError};
use crate::secret::Secret;
use crate::server_url::{ServerUrl, ServerUrlError};

use crate::protocol_strings::ERR_NO_USERNAME;
/// Requests larger than this are refused unread.
pub const MAX_STDIN: u64 = crate::bounded::ONE_MIB;

/// The protocol's actions, named as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Credentials for a server URL.
    Get,
    /// Save credentials.
    Store,
    /// Delete credentials.
    Erase,
    /// Every server URL and username.
    List,
    /// The helper's version.
    Version,
}

impl Action {
    /// Every action, with the word that names it: the one list of verbs.
    pub const ALL: [(&'static str, Action); 5] = [
        ("get", Action::Get),
        ("store", Action::Store),
        ("erase", Action::Erase),
        ("list", Action::List),
        ("version", Action::Version),
    ];

    /// The action named by a command-line word, if it is one.
    pub fn from_arg(arg: &str) -> Option<Action> {
        Action::ALL.iter().find(|(name, _)| *name == arg).map(|(_, a)| *a)
    }

    /// The action the arguments ask for, and whether `-v`/`--verbose` was
    /// given: one protocol word, optionally with the verbose flag (people
    /// debugging run `docker-credential-exchange -v get`).
    pub fn from_args(args: &[std::ffi::OsString]) -> Option<(Action, bool)> {
        let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
        let mut words = args.iter().filter(|a| *a != "-v" && *a != "--verbose");
        let action = Action::from_arg(words.next()?.to_str()?)?;
        words.next().is_none().then_some((action, verbose))
    }

    /// The word that names it.
    pub fn name(self) -> &'static str {
        Action::ALL.iter().find(|(_, a)| *a == self).map_or("?", |(name, _)| name)
    }
}

/// Credentials on the wire: `store`'s request and `get`'s answer.
#[derive(Debug, serde::Serialize)]
pub struct Credentials<'a> {
    /// The server URL as Docker asked for it.
    #[serde(rename = "ServerURL")]
    pub server_url: &'a str,
    /// The username.
    #[serde(rename = "Username")]
    pub username: &'a str,
    /// The secret; serialized only here, on its way to Docker.
    #[serde(rename = "Secret")]
    pub secret: &'a str,
}

/// `store`'s request. Missing `ServerURL` or `Username` read as empty (so
/// they get the protocol's own errors, as with the Go helpers); `Secret`
/// must be present.
#[derive(serde::Deserialize)]
struct StoreRequest {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret")]
    secret: Secret,
}

/// A protocol failure: the line printed on stdout.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Bad input on stdin or in the environment; nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The answer could not be written (Docker went away).
    #[error("cannot write the answer to stdout: {0}")]
    Output(std::io::Error),
    /// The action failed.
    #[error(transparent)]
    Helper(#[from] HelperError),
}

impl ProtocolError {
    /// What went wrong, for the log: as printed, except that a missing
    /// subject token says why ([`HelperError::reason`]).
    pub fn reason(&self) -> String {
        match self {
            ProtocolError::Helper(e) => e.reason(),
            other => other.to_string(),
        }
    }
}

impl From<ServerUrlError> for ProtocolError {
    fn from(e: ServerUrlError) -> Self {
        ProtocolError::BadInput(e.to_string())
    }
}

/// Runs one action with the process's stdin and stdout.
pub fn run(action: Action) -> ExitCode {
    // One deadline for the whole action, reading stdin included.
    let deadline = Deadline::from_env();
    let mut stdin = crate::bounded::Stdin::until(deadline.as_ref().ok().copied());
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(action, deadline, &mut stdin, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        // Nobody is reading; there is no one to tell.
        Err(ProtocolError::Output(_)) => ExitCode::FAILURE,
        Err(e) => {
            let line = crate::redact::line(&e.to_string());
            // The log says why: "not found in native keychain" is for
            // Docker, which matches the words; a person reading the log in
            // CI needs the variable that is not set. (The log redacts each
            // line it writes, and only when it writes one.)
            if crate::log::debug_enabled() {
                crate::log::log_failure(action.name(), &e.reason());
            }
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            ExitCode::FAILURE
        }
    }
}

/// Runs `action` by `deadline`, reading `input` and writing the answer to
/// `output`. A bad deadline setting is an error of every action that may
/// wait, never ignored.
///
/// # Errors
/// The protocol error to print.
pub fn execute(
    action: Action,
    deadline: Result<Deadline, BadTimeout>,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), ProtocolError> {
    let deadline = || deadline.map_err(|e| ProtocolError::BadInput(e.to_string()));
    match action {
        Action::Version => {
            writeln!(output, "docker-credential-exchange {}", env!("CARGO_PKG_VERSION"))
                .map_err(ProtocolError::Output)?;
        }
        Action::List => {
            // `list` never waits: it reads the index and the config.
            let helper = Helper::from_env(Deadline::after(crate::deadline::DEFAULT_TIMEOUT))?;
            helper.list(|answer| write_json(output, answer))??;
        }
        Action::Get => {
            let deadline = deadline()?;
            let request = read_request(input)?;
            let url = ServerUrl::parse(&request)?;
            let answer = Helper::from_env(deadline)?.get(&url, GetOptions::default())?;
            let creds = Credentials {
                server_url: &request,
                username: &answer.username,
                secret: answer.secret.expose(),
            };
            write_json(output, &creds)?;
        }
        Action::Store => {
            let deadline = deadline()?;
            let req = parse_store_request(&read_request(input)?)?;
            Helper::from_env(deadline)?.store_credential(
                &req.url,
                req.server_url.trim(),
                &req.username,
                req.secret,
            )?;
        }
        Action::Erase => {
            let deadline = deadline()?;
            let request = read_request(input)?;
            let url = ServerUrl::parse(&request)?;
            Helper::from_env(deadline)?.erase(&url)?;
        }
    }
    output.flush().map_err(ProtocolError::Output)
}

/// JSON and one newline, as Go's `json.Encoder` frames it in
/// docker-credential-helpers.
fn write_json(output: &mut dyn Write, value: &impl serde::Serialize) -> Result<(), ProtocolError> {
    let mut bytes = serde_json::to_vec(value).map_err(|e| ProtocolError::Output(e.into()))?;
    bytes.push(b'\n');
    output.write_all(&bytes).map_err(ProtocolError::Output)
}

/// A `store` request that passed validation.
#[derive(Debug)]
pub struct StoreInput {
    /// The normalized server URL.
    pub url: ServerUrl,
    /// The server URL as Docker sent it.
    pub server_url: String,
    /// The username, never blank.
    pub username: String,
    /// The secret.
    pub secret: Secret,
}

/// Parses and validates `store`'s request (already read and trimmed).
///
/// # Errors
/// Not a JSON object of the right shape, a bad or empty server URL, or an
/// empty username.
pub fn parse_store_request(request: &str) -> Result<StoreInput, ProtocolError> {
    let req: StoreRequest = crate::json::from_object_slice(request.as_bytes()).map_err(|e| {
        ProtocolError::BadInput(format!(
            "invalid credentials JSON on stdin: {} (expected {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}})",
            e.reason
        ))
    })?;
    let url = ServerUrl::parse(&req.server_url)?;
    if req.username.trim().is_empty() {
        return Err(ProtocolError::BadInput(ERR_NO_USERNAME.to_owned()));
    }
    Ok(StoreInput { url, server_url: req.server_url, username: req.username, secret: req.secret })
}

/// Reads stdin whole: at most [`MAX_STDIN`] bytes of UTF-8, trimmed.
///
/// # Errors
/// Too large, not UTF-8, or unreadable.
pub fn read_request(input: &mut dyn Read) -> Result<String, ProtocolError> {
    let text = crate::bounded::read_text(input, MAX_STDIN).map_err(|e| match e {
        ReadError::TooLarge(_) => ProtocolError::BadInput(format!(
            "the request on stdin is larger than {MAX_STDIN} bytes; refusing it"
        )),
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            ProtocolError::BadInput("the request on stdin is not valid UTF-8".to_owned())
        }
        ReadError::Io(e) => ProtocolError::BadInput(format!("cannot read stdin: {e}")),
    })?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol_strings::ERR_NOT_FOUND;

    #[test]
    fn error_strings_are_exactly_docker_credential_helpers() {
        assert_eq!(ERR_NOT_FOUND, "credentials not found in native keychain");
        assert_eq!(HelperError::NOT_FOUND.to_string(), ERR_NOT_FOUND);
        use crate::protocol_strings::ERR_NO_SERVER_URL;
        assert_eq!(ERR_NO_SERVER_URL, "no credentials server URL");
        assert_eq!(ProtocolError::from(ServerUrlError::Empty).to_string(), ERR_NO_SERVER_URL);
        assert_eq!(ERR_NO_USERNAME, "no credentials username");
    }

    #[test]
    fn get_answer_has_docker_field_names_in_order() {
        let c = Credentials { server_url: "r", username: "u", secret: "s" };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"ServerURL":"r","Username":"u","Secret":"s"}"#);
    }

    #[test]
    fn store_request_reads_docker_field_names() {
        let r: StoreRequest =
            serde_json::from_str(r#"{"ServerURL":"r","Username":"u","Secret":"s"}"#).unwrap();
        assert_eq!((r.server_url.as_str(), r.username.as_str(), r.secret.expose()), ("r", "u", "s"));
    }

    #[test]
    fn store_request_without_secret_is_refused() {
        assert!(serde_json::from_str::<StoreRequest>(r#"{"ServerURL":"r","Username":"u"}"#).is_err());
    }

    #[test]
    fn request_is_trimmed() {
        assert_eq!(read_request(&mut &b"  registry.example.com\n"[..]).unwrap(), "registry.example.com");
    }

    #[test]
    fn oversized_request_is_refused() {
        let big = vec![b'a'; MAX_STDIN as usize + 1];
        assert!(read_request(&mut &big[..]).unwrap_err().to_string().contains("larger than"));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(read_request(&mut &b"\xff\xfe"[..]).unwrap_err().to_string().contains("UTF-8"));
    }

    #[test]
    fn a_json_array_is_not_a_positional_store_request() {
        let err = parse_store_request(r#"["registry.example.com","user","pw"]"#).unwrap_err().to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn get_answers_end_with_one_newline() {
        let mut out = Vec::new();
        write_json(&mut out, &Credentials { server_url: "r", username: "u", secret: "s" }).unwrap();
        assert_eq!(out, b"{\"ServerURL\":\"r\",\"Username\":\"u\",\"Secret\":\"s\"}\n");
    }

    #[test]
    fn the_verbose_flag_may_come_with_a_protocol_word() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(Action::from_args(&args(&["get"])), Some((Action::Get, false)));
        assert_eq!(Action::from_args(&args(&["-v", "get"])), Some((Action::Get, true)));
        assert_eq!(Action::from_args(&args(&["get", "extra"])), None);
        assert_eq!(Action::from_args(&args(&["login"])), None);
    }

    #[test]
    fn actions_are_the_five_protocol_words() {
        for w in ["get", "store", "erase", "list", "version"] {
            assert!(Action::from_arg(w).is_some());
        }
        assert!(Action::from_arg("login").is_none());
    }
}
