//! `docker-credential-exchange`: a Docker credential helper that keeps
//! secrets in the OS keyring and, for registries configured for it,
//! exchanges a long-lived login token for short-lived registry tokens
//! through an OAuth 2.0 Token Exchange endpoint (RFC 8693).
//!
//! The binary's `main` is [`main`]: the protocol verbs Docker runs are
//! dispatched before any argument parsing (the cache-hit `get` is the hot
//! path of every build), and everything else goes to the clap-based
//! subcommands in [`cli`].

pub(crate) mod bounded;
pub mod cache;
pub(crate) mod cli;
pub mod client_auth;
pub(crate) mod command;
pub mod config;
pub(crate) mod deadline;
pub mod exchange;
pub(crate) mod fsutil;
pub(crate) mod helper;
pub(crate) mod http;
pub(crate) mod json;
pub mod jwt;
// Public for the fuzz target and the end-to-end harness (its request and
// image parsers meet outside bytes; the harness reads Go durations).
pub mod kubelet;
pub(crate) mod log;
pub(crate) mod paths;
pub(crate) mod plan;
pub(crate) mod process;
pub mod protocol;
pub(crate) mod protocol_strings;
pub mod redact;
pub mod secret;
pub mod server_url;
pub(crate) mod store;
pub(crate) mod subject;
pub mod time;

/// What the integration tests need of the helper's internals, so that they
/// check what the code really does rather than a copy of it that can
/// drift. Not an API.
#[doc(hidden)]
pub mod for_tests {
    pub use crate::fsutil::TMP_SUFFIX;
}

use std::process::ExitCode;

/// Runs the helper with the process's arguments.
pub fn main() -> ExitCode {
    // Before anything can read a secret.
    process::disable_core_dumps();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some((action, verbose)) = protocol::Action::from_args(&args) {
        log::init(verbose);
        return protocol::run(action);
    }
    cli::main(args)
}
