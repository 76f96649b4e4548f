//! `docker-credential-exchange`: a Docker credential helper that keeps
//! secrets in the OS keyring and, for registries configured for it,
//! exchanges a long-lived login token for short-lived registry tokens
//! through an OAuth 2.0 Token Exchange endpoint (RFC 8693).
//!
//! The binary's `main` is [`main`]: the protocol verbs Docker runs are
//! dispatched before any argument parsing (the cache-hit `get` is the hot
//! path of every build), and everything else goes to the clap-based
//! subcommands in `cli`.

pub(crate) mod bounded;
pub(crate) mod cache;
pub(crate) mod checkup;
pub(crate) mod cli;
pub(crate) mod client_auth;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod deadline;
pub(crate) mod docker_config;
pub(crate) mod exchange;
pub(crate) mod fsutil;
pub(crate) mod helper;
pub(crate) mod http;
pub(crate) mod json;
pub(crate) mod jwt;
pub(crate) mod kubelet;
pub(crate) mod log;
pub(crate) mod other_helper;
pub(crate) mod paths;
pub(crate) mod plan;
pub(crate) mod process;
pub(crate) mod program;
pub(crate) mod prompt;
pub(crate) mod protocol;
pub(crate) mod protocol_strings;
pub(crate) mod redact;
pub(crate) mod secret;
pub(crate) mod server_url;
pub(crate) mod source;
pub(crate) mod store;
pub(crate) mod subject;
pub(crate) mod time;

/// What the integration tests and the fuzz targets need of the helper's
/// internals, so that they check what the code really does
/// rather than a copy of it that can drift. Not an API: the crate's public
/// surface is the binary (and [`main`]); everything here is re-exported
/// from modules private to the crate, so rustc still reports what nothing
/// uses.
#[doc(hidden)]
pub mod for_tests {
    pub use crate::fsutil::TMP_SUFFIX;
    pub use crate::secret::{Secret, fingerprint};
    pub use crate::time::rfc3339;

    /// The cache as files on disk (fuzz: `cache_entry`; tests that seed or
    /// read entries).
    pub mod cache {
        pub use crate::cache::{Cache, CacheKey, CachedToken, KeyFields, Lookup};
    }

    /// The config file's parser and lookups (fuzz: `config`).
    pub mod config {
        pub use crate::config::Config;
    }

    /// The token endpoint's answers (fuzz: `sts_response`).
    pub mod exchange {
        pub use crate::exchange::{ErrorResponse, TokenResponse};
    }

    /// Reading a JWT without verifying it (fuzz: `jwt_expiry`; tests that
    /// look inside an issued token).
    pub mod jwt {
        pub use crate::jwt::{claim_seconds, decode_unverified, expiry};
    }

    /// The kubelet's request, image and response (fuzz: `kubelet_request`).
    pub mod kubelet {
        pub use crate::kubelet::image::{Coverage, ImageRef};
        pub use crate::kubelet::wire::CredentialProviderRequest;
        pub use crate::kubelet::{Issued, respond};
    }

    /// Docker's stdin and the protocol's answers (fuzz: `protocol_stdin`).
    pub mod protocol {
        pub use crate::protocol::{parse_store_request, read_request};
    }

    /// The redaction step every message passes through (fuzz: `redact`).
    pub mod redact {
        #[cfg(fuzzing)]
        pub use crate::redact::forget_all;
        pub use crate::redact::{MARK, WINDOW, line};
    }

    /// `list`'s read of the keyring's index (fuzz: `store_listing`).
    pub mod store {
        pub use crate::store::listing_of;
    }

    /// Server URL normalization (fuzz: `server_url`, `config`).
    pub mod server_url {
        pub use crate::server_url::{ServerUrl, is_repository_name, is_under};
    }
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
