//! Where plain credentials and login tokens are kept: the OS keyring (with
//! an index beside it, since not every keyring can enumerate its items), or
//! an explicit file store for machines that have no keyring.
//!
//! Both stores answer the same [`CredentialStore`] trait, keyed by the
//! normalized server URL, so the protocol and the exchange never know which
//! one they talk to.

mod backend;
mod chunked;
#[cfg(not(target_os = "linux"))]
mod core_keyring;
mod file;
mod jsonfile;
// macOS's reading of Keychain status codes, tested on every platform.
#[cfg_attr(target_os = "linux", allow(dead_code))]
mod keychain_status;
mod keyring;
pub mod listing;
#[cfg(target_os = "linux")]
mod secret_service;

use std::path::PathBuf;

pub use file::FileStore;
pub use jsonfile::listing_of;
pub use keyring::KeyringStore;

pub use crate::config::{STORE_ENV, StoreKind};
use crate::deadline::Deadline;
use crate::fsutil::FsError;
use crate::secret::Secret;
use crate::server_url::ServerUrl;

/// The keyring service name under which every item is filed.
pub const SERVICE: &str = "docker-credential-exchange";

/// What a stored entry is. A login token is never handed out as a plain
/// password: with a broken or missing config, exchange registries fail
/// with the config's error while plain credentials keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A password or token from `docker login` for an ordinary registry.
    Credential,
    /// The login (subject) token of an exchange registry.
    LoginToken,
}

/// One stored credential.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    /// The server URL as it was given to `store`, which `list` reports.
    pub server_url: String,
    /// The username given to `store`.
    pub username: String,
    /// The password, token or login token.
    pub secret: Secret,
    /// What it is; `None` for entries stored before kinds were recorded.
    pub kind: Option<EntryKind>,
}

/// What `list` shows of a credential: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListedCredential {
    /// The server URL as given to `store`.
    pub server_url: String,
    /// The username given to `store`.
    pub username: String,
    /// What it is; absent in entries stored before kinds were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EntryKind>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No keyring is reachable and the file store was not chosen. The
    /// message names every way out; the caller shows it as it is.
    #[error(
        "no OS keyring is reachable ({0}). Either {how}, or choose the file store with \
         \"store\": \"file\" in the config or {STORE_ENV}=file, or give exchange registries a \
         non-keyring subject_token source",
        how = backend::Backend::current().map_or("use a platform with a keyring", backend::Backend::how_to_reach)
    )]
    KeyringUnavailable(String),
    /// The keyring is there but locked, and nobody unlocked it: no prompt
    /// could be shown (no desktop session) or it was dismissed. The message
    /// names the ways to unlock it that need no desktop, and the ways
    /// around the keyring.
    #[error(
        "the OS keyring is locked ({0}). Unlock it ({how}), or choose the file store with \"store\": \"file\" \
         in the config or {STORE_ENV}=file, or give exchange registries a non-keyring subject_token source",
        how = how_to_unlock()
    )]
    KeyringLocked(String),
    /// The keyring answered with an error.
    #[error("keyring error: {0}")]
    Keyring(String),
    /// The keyring did not answer by the invocation's deadline.
    #[error(
        "the OS keyring did not answer within {}s{}: it may be waiting for an unlock prompt \
         that nobody can see, or its service is hung. Unlock the keyring (log in to the \
         desktop session), or choose the file store with \"store\": \"file\" in the config \
         or {STORE_ENV}=file",
        limit.as_secs_f32(),
        write.caveat()
    )]
    KeyringTimedOut {
        /// The invocation's whole limit.
        limit: std::time::Duration,
        /// What was asked of it.
        write: Write,
    },
    /// Another helper held the store's lock past the deadline.
    #[error("{0}")]
    Locked(String),
    /// A file of ours is not valid; it is never overwritten silently.
    #[error("{} is not valid (line {line}, column {column}): {reason}; fix or remove it", path.display())]
    Corrupt { path: PathBuf, line: usize, column: usize, reason: String },
    /// Serializing our own data failed (should not happen).
    #[error("cannot encode the store: {0}")]
    Encode(String),
    /// A filesystem failure.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// The change a keyring call that timed out was making, if any: a hung
/// service may still make it when it recovers, and the user must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A read.
    None,
    /// Storing a credential.
    Store,
    /// Erasing one.
    Erase,
}

impl Write {
    fn caveat(self) -> &'static str {
        match self {
            Write::None => "",
            Write::Store => {
                " (the credential may still be stored if it recovers; store it again once it answers)"
            }
            Write::Erase => {
                " (the credential may still be erased if it recovers; erase it again once it answers)"
            }
        }
    }
}

/// How a person unlocks this platform's keyring, a desktop or not.
pub fn how_to_unlock() -> &'static str {
    backend::Backend::current().map_or("log in to a session with a keyring", backend::Backend::how_to_unlock)
}

/// A store of credentials keyed by normalized server URL.
pub trait CredentialStore {
    /// Whether secrets can be read and written now without asking anyone:
    /// the keyring reachable, trusted and unlocked. Never unlocks and never
    /// prompts (`doctor` asks this on machines where nobody can answer).
    ///
    /// # Errors
    /// Why not, as the first read or write would fail
    /// ([`StoreError::KeyringLocked`] for a locked keyring).
    fn check_ready(&self) -> Result<(), StoreError>;

    /// The credential filed under `key`, secret included.
    ///
    /// # Errors
    /// The store cannot be read.
    fn get(&self, key: &ServerUrl) -> Result<Option<StoredCredential>, StoreError>;

    /// The username filed under `key`, without touching any secret (for
    /// the keyring store this reads only the index, never the keyring).
    ///
    /// # Errors
    /// The index cannot be read.
    fn username(&self, key: &ServerUrl) -> Result<Option<String>, StoreError>;

    /// Files `cred` under `key`, replacing what was there.
    ///
    /// # Errors
    /// The store cannot be written; what was there is unchanged.
    fn put(&self, key: &ServerUrl, cred: &StoredCredential) -> Result<(), StoreError>;

    /// Removes what is filed under `key`; `Ok(false)` if nothing was.
    ///
    /// # Errors
    /// The store cannot be written.
    fn remove(&self, key: &ServerUrl) -> Result<bool, StoreError>;

    /// Every stored credential by key, without secrets.
    ///
    /// # Errors
    /// The store (or its index) cannot be read.
    fn list(&self) -> Result<std::collections::BTreeMap<String, ListedCredential>, StoreError>;

    /// What `list` needs of every stored credential, sorted by key: the
    /// same entries as [`CredentialStore::list`], read as cheaply as the
    /// store can.
    ///
    /// # Errors
    /// As [`CredentialStore::list`].
    fn listing(&self) -> Result<listing::Listing, StoreError> {
        Ok(listing::Listing::from_map(&self.list()?))
    }

    /// A one-line description for `status` and `doctor`.
    fn describe(&self) -> String;
}

/// Opens the store of the given kind under the given data directory; its
/// waits end by `deadline`.
pub fn open(kind: StoreKind, data_dir: PathBuf, deadline: Deadline) -> Box<dyn CredentialStore> {
    match kind {
        StoreKind::Keyring => Box::new(KeyringStore::new(data_dir, deadline)),
        StoreKind::File => Box::new(FileStore::new(data_dir, deadline)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_unavailable_names_every_way_out() {
        let msg = StoreError::KeyringUnavailable("no D-Bus session".into()).to_string();
        // This OS's own way to reach its keyring (Secret Service, Keychain, Credential Manager).
        if let Some(backend) = backend::Backend::current() {
            assert!(msg.contains(backend.how_to_reach()), "{msg}");
        }
        assert!(msg.contains("\"store\": \"file\""));
        assert!(msg.contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=file"));
        assert!(msg.contains("subject_token source"));
    }

    #[test]
    fn a_locked_keyring_names_a_way_to_unlock_it_without_a_desktop() {
        let msg = StoreError::KeyringLocked("its default collection is locked".into()).to_string();
        assert!(msg.starts_with("the OS keyring is locked (its default collection is locked)"), "{msg}");
        if cfg!(target_os = "linux") {
            assert!(msg.contains("gnome-keyring-daemon --replace --unlock"), "{msg}");
        }
        assert!(msg.contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=file"), "{msg}");
        assert!(msg.contains("subject_token source"), "{msg}");
    }

    #[test]
    fn stored_credential_debug_hides_the_secret() {
        let c = StoredCredential {
            server_url: "r".into(),
            username: "u".into(),
            secret: Secret::new("pa55word".into()),
            kind: None,
        };
        assert!(!format!("{c:?}").contains("pa55word"));
    }
}
