//! Docker's credential-helper protocol, byte-compatible with
//! docker-credential-helpers: one action per process, the request on stdin,
//! the answer on stdout, and errors on **stdout** with exit status 1,
//! because that is where Docker reads them.
//!
//! Docker's client maps three error strings back to typed errors, so they
//! are constants here, each pinned by a test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use crate::helper::{GetOptions, Helper, HelperError};
use crate::secret::Secret;
use crate::server_url::{ServerUrl, ServerUrlError};

/// Docker's "not logged in".
pub const ERR_NOT_FOUND: &str = "credentials not found in native keychain";
/// An empty server URL.
pub const ERR_NO_SERVER_URL: &str = "no credentials server URL";
/// An empty username in `store`.
pub const ERR_NO_USERNAME: &str = "no credentials username";
/// Requests larger than this are refused unread.
pub const MAX_STDIN: u64 = 1024 * 1024;

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
    /// The action named by a command-line word, if it is one.
    pub fn from_arg(arg: &str) -> Option<Action> {
        match arg {
            "get" => Some(Action::Get),
            "store" => Some(Action::Store),
            "erase" => Some(Action::Erase),
            "list" => Some(Action::List),
            "version" => Some(Action::Version),
            _ => None,
        }
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
    /// Bad input on stdin; nothing was changed.
    #[error("{0}")]
    BadInput(String),
    /// The action failed.
    #[error(transparent)]
    Helper(#[from] HelperError),
}

impl From<ServerUrlError> for ProtocolError {
    fn from(e: ServerUrlError) -> Self {
        ProtocolError::BadInput(e.to_string())
    }
}

/// Runs one action with the process's stdin and stdout.
pub fn run(action: Action) -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(action, &mut stdin.lock(), &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = one_line(&e.to_string());
            crate::log::log_failure(action_name(action), &line);
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            ExitCode::FAILURE
        }
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Get => "get",
        Action::Store => "store",
        Action::Erase => "erase",
        Action::List => "list",
        Action::Version => "version",
    }
}

/// Docker shows the first line of an error; make sure that line has it all.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Runs `action` reading `input` and writing the answer to `output`.
///
/// # Errors
/// The protocol error to print.
pub fn execute(action: Action, input: &mut dyn Read, output: &mut dyn Write) -> Result<(), ProtocolError> {
    match action {
        Action::Version => {
            writeln!(output, "docker-credential-exchange {}", env!("CARGO_PKG_VERSION"))
                .map_err(write_failed)?;
        }
        Action::List => {
            let listed: BTreeMap<String, String> = Helper::from_env()?.list()?;
            serde_json::to_writer(&mut *output, &listed).map_err(|e| write_failed(e.into()))?;
        }
        Action::Get => {
            let request = read_request(input)?;
            let url = ServerUrl::parse(&request)?;
            let answer = Helper::from_env()?.get(&url, GetOptions::default())?;
            let creds = Credentials {
                server_url: &request,
                username: &answer.username,
                secret: answer.secret.expose(),
            };
            serde_json::to_writer(&mut *output, &creds).map_err(|e| write_failed(e.into()))?;
        }
        Action::Store => {
            let req = parse_store_request(&read_request(input)?)?;
            Helper::from_env()?.store_credential(
                &req.url,
                req.server_url.trim(),
                &req.username,
                req.secret,
            )?;
        }
        Action::Erase => {
            let request = read_request(input)?;
            let url = ServerUrl::parse(&request)?;
            Helper::from_env()?.erase(&url)?;
        }
    }
    output.flush().map_err(write_failed)
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
/// Invalid JSON, a bad or empty server URL, or an empty username.
pub fn parse_store_request(request: &str) -> Result<StoreInput, ProtocolError> {
    let req: StoreRequest = serde_json::from_str(request).map_err(|e| {
        ProtocolError::BadInput(format!(
            "invalid credentials JSON on stdin: {} (expected {{\"ServerURL\":…,\"Username\":…,\"Secret\":…}})",
            crate::store::describe_json_error(&e)
        ))
    })?;
    let url = ServerUrl::parse(&req.server_url)?;
    if req.username.trim().is_empty() {
        return Err(ProtocolError::BadInput(ERR_NO_USERNAME.to_owned()));
    }
    Ok(StoreInput { url, server_url: req.server_url, username: req.username, secret: req.secret })
}

fn write_failed(e: std::io::Error) -> ProtocolError {
    ProtocolError::BadInput(format!("cannot write to stdout: {e}"))
}

/// Reads stdin whole: at most [`MAX_STDIN`] bytes of UTF-8, trimmed.
///
/// # Errors
/// Too large, not UTF-8, or unreadable.
pub fn read_request(input: &mut dyn Read) -> Result<String, ProtocolError> {
    let mut buf = Vec::new();
    input
        .take(MAX_STDIN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ProtocolError::BadInput(format!("cannot read stdin: {e}")))?;
    if buf.len() as u64 > MAX_STDIN {
        return Err(ProtocolError::BadInput(format!(
            "the request on stdin is larger than {MAX_STDIN} bytes; refusing it"
        )));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| ProtocolError::BadInput("the request on stdin is not valid UTF-8".to_owned()))?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_strings_are_exactly_docker_credential_helpers() {
        assert_eq!(ERR_NOT_FOUND, "credentials not found in native keychain");
        assert_eq!(HelperError::NotFound.to_string(), ERR_NOT_FOUND);
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
    fn multi_line_errors_become_one_line() {
        assert_eq!(one_line("a\n  b\r\nc"), "a b c");
    }

    #[test]
    fn actions_are_the_five_protocol_words() {
        for w in ["get", "store", "erase", "list", "version"] {
            assert!(Action::from_arg(w).is_some());
        }
        assert!(Action::from_arg("login").is_none());
    }
}
