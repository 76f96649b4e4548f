//! Why an action failed, shaped by what callers do with it: the protocol
//! and the kubelet tell only "not found" apart; `login`, `doctor` and
//! `token` react to a subject, plan or exchange failure; every other
//! failure is reported as it reads ([`Failure`]).

use super::LOGIN_CHANGE_RETRIES;
use crate::config::ConfigError;
use crate::exchange::ExchangeError;
use crate::paths::NoHomeError;
use crate::plan::PlanError;
use crate::store::StoreError;
use crate::subject::SubjectError;

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// Docker's "not logged in", the protocol's exact string: nothing is
    /// stored, or (with a `reason`) an exchange registry has no subject
    /// token here (nothing stored, the variable unset, not a CI job).
    /// Docker is told only this; people and the log get the reason
    /// ([`HelperError::reason`]).
    #[error("{}", crate::protocol_strings::ERR_NOT_FOUND)]
    NotFound {
        /// Which registry, which source, and why it has no token.
        reason: Option<String>,
    },
    /// The subject token cannot be had (`login` and `doctor` say to log
    /// in again when it has expired).
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// The request cannot be resolved against its entry (`login` says to
    /// name a repository when a template needs one).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The exchange failed and no still-valid token was cached (`doctor`
    /// says what to fix by how it failed).
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// Anything else: callers report it as it reads.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// A failure callers only report: its message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The config file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A directory cannot be determined.
    #[error(transparent)]
    Paths(#[from] NoHomeError),
    /// The keyring or file store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another helper's exchange for the same token failed while this one
    /// waited for it; its message, as it recorded it.
    #[error("{0}")]
    Shared(String),
    /// The same exchange failed moments ago and is answered from memory
    /// rather than retried (see [`crate::cache::REMEMBER_FOR`]).
    #[error(
        "{message} (remembered from a failure at {at}: until {until} `get` answers so at once instead of \
         waiting on the endpoint again; `docker-credential-exchange token {request} --refresh` retries now)",
        at = crate::time::rfc3339_signed(*at),
        until = crate::time::rfc3339_signed(*until)
    )]
    Remembered {
        /// The failure's message, as it was recorded.
        message: String,
        /// The request, for the command that retries it.
        request: String,
        /// When it failed (Unix seconds).
        at: i64,
        /// Until when it is remembered (Unix seconds).
        until: i64,
    },
    /// A login token is stored for a registry the config no longer makes
    /// an exchange registry; it is never handed out as a password.
    #[error(
        "the credentials stored for {registry} are a login token for a token exchange, but {registry} is not \
         configured for exchange; add it back to the config, or run `docker-credential-exchange logout {registry}`"
    )]
    LoginTokenWithoutExchange {
        /// The registry.
        registry: String,
    },
    /// `login` for a registry whose subject token comes from elsewhere.
    #[error(
        "{registry} takes its login token from {from} (subject_token in the config), not from the keyring; \
         provide the token there"
    )]
    NotAKeyringSource {
        /// The registry.
        registry: String,
        /// Where its subject comes from.
        from: String,
    },
    /// The login changed during every attempt.
    #[error("the login for {0} changed during the exchange {LOGIN_CHANGE_RETRIES} times in a row; try again")]
    LoginKeptChanging(String),
}

/// `?` on the store, the config and the paths, as on the errors callers
/// tell apart.
macro_rules! failed_from {
    ($($source:ty),*) => {$(
        impl From<$source> for HelperError {
            fn from(e: $source) -> Self {
                HelperError::Failed(e.into())
            }
        }
    )*};
}
failed_from!(ConfigError, NoHomeError, StoreError);

impl HelperError {
    /// Nothing stored: "not found", with no reason beyond it.
    pub const NOT_FOUND: HelperError = HelperError::NotFound { reason: None };

    /// What went wrong, for a person or the log file: the message, except
    /// that a missing subject token says why rather than Docker's "not
    /// found in native keychain".
    pub fn reason(&self) -> String {
        match self {
            HelperError::NotFound { reason: Some(reason) } => reason.clone(),
            other => other.to_string(),
        }
    }
}
