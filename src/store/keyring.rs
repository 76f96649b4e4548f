//! The OS keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) through `keyring-core` and the platform store crates,
//! plus an index file of server URLs and usernames, because `list` must
//! enumerate and not every keyring can.
//!
//! The platform store is created on first use, never at start-up: a cache
//! hit or a `list` must not pay for a D-Bus connection.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore as KeyringBackend, Entry};

use super::backend::Backend;
use super::chunked::{self, RawKeyring};
use super::jsonfile::JsonMapFile;
use super::{CredentialStore, ListedCredential, SERVICE, StoreError, StoredCredential, Write};
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::server_url::ServerUrl;

/// The largest secret one item may hold on this platform.
const MAX_BLOB: usize = match Backend::current() {
    Some(backend) => backend.max_blob(),
    None => usize::MAX,
};

/// The keyring plus its index.
pub struct KeyringStore {
    os: Arc<OsKeyring>,
    index: JsonMapFile,
    deadline: Deadline,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore").field("index", &self.index.path()).finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// The keyring store, indexed in `data_dir/index.json`, waiting for
    /// the index's lock until `deadline` at most.
    pub fn new(data_dir: PathBuf, deadline: Deadline) -> KeyringStore {
        KeyringStore {
            os: Arc::new(OsKeyring::default()),
            index: JsonMapFile::new(&data_dir, "index.json", deadline),
            deadline,
        }
    }

    /// Runs `op` on the keyring, giving up at the deadline.
    ///
    /// A keyring call can block for ever: a Secret Service that accepted
    /// the connection and hung, an unlock prompt on a desktop nobody is
    /// looking at, a Keychain waiting for a password. None of the platform
    /// crates takes a timeout, so the call runs on a thread of its own and
    /// is abandoned at the deadline; the process ends soon after, and the
    /// thread with it.
    fn in_time<T: Send + 'static>(
        &self,
        write: Write,
        op: impl FnOnce(&OsKeyring) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let os = Arc::clone(&self.os);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                // The receiver is gone only if the deadline passed first.
                let _ = tx.send(op(&os));
            })
            .map_err(|e| StoreError::Keyring(format!("cannot start the keyring call: {e}")))?;
        match rx.recv_timeout(self.deadline.remaining()) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(StoreError::KeyringTimedOut { limit: self.deadline.limit(), write })
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(StoreError::Keyring("the keyring call ended without an answer".into()))
            }
        }
    }
}

impl CredentialStore for KeyringStore {
    fn get(&self, key: &ServerUrl) -> Result<Option<StoredCredential>, StoreError> {
        let name = key.as_str().to_owned();
        let Some(bytes) = self.in_time(Write::None, move |os| chunked::load(os, &name))? else {
            return Ok(None);
        };
        let secret = String::from_utf8(bytes).map_err(|_| {
            StoreError::Keyring(format!("the keyring item for {key} is not UTF-8 text; store it again"))
        })?;
        let listed = self.index.load::<ListedCredential>()?.remove(key.as_str());
        let (server_url, username, kind) = match listed {
            Some(l) => (l.server_url, l.username, l.kind),
            // Stored by an older index or restored by hand: the secret is
            // authoritative, the name falls back to the key.
            None => (key.display_name().to_owned(), String::new(), None),
        };
        Ok(Some(StoredCredential { server_url, username, secret: Secret::new(secret), kind }))
    }

    fn username(&self, key: &ServerUrl) -> Result<Option<String>, StoreError> {
        Ok(self.index.load::<ListedCredential>()?.remove(key.as_str()).map(|l| l.username))
    }

    fn put(&self, key: &ServerUrl, cred: &StoredCredential) -> Result<(), StoreError> {
        // The keyring is written while the index's lock is held, after the
        // index has been read: a lock that cannot be had, or an index that
        // cannot be read, fails the store before the keyring is touched,
        // and a keyring that refuses leaves the index as it was. So a
        // `store` that reports failure never pairs the old username with
        // the new secret.
        self.index.try_update::<ListedCredential, ()>(|entries| {
            let (name, secret) = (key.as_str().to_owned(), cred.secret.clone());
            self.in_time(Write::Store, move |os| {
                chunked::store(os, &name, secret.expose().as_bytes(), MAX_BLOB)
            })?;
            let listed = ListedCredential {
                server_url: cred.server_url.clone(),
                username: cred.username.clone(),
                kind: cred.kind,
            };
            let changed = entries.get(key.as_str()) != Some(&listed);
            entries.insert(key.as_str().to_owned(), listed);
            Ok((changed, ()))
        })
    }

    fn remove(&self, key: &ServerUrl) -> Result<bool, StoreError> {
        // As for `put`: nothing is deleted unless the index can follow.
        self.index.try_update::<ListedCredential, bool>(|entries| {
            let name = key.as_str().to_owned();
            let in_keyring = self.in_time(Write::Erase, move |os| chunked::delete(os, &name))?;
            let in_index = entries.remove(key.as_str()).is_some();
            Ok((in_index, in_keyring || in_index))
        })
    }

    fn list(&self) -> Result<BTreeMap<String, ListedCredential>, StoreError> {
        self.index.load()
    }

    fn describe(&self) -> String {
        format!("OS keyring (service {SERVICE}), index {}", self.index.path().display())
    }
}

/// The platform keyring, connected lazily.
#[derive(Default)]
struct OsKeyring {
    backend: OnceLock<Result<Arc<KeyringBackend>, String>>,
}

impl OsKeyring {
    fn backend(&self) -> Result<&Arc<KeyringBackend>, StoreError> {
        self.backend
            .get_or_init(|| platform_store().map_err(|e| describe(&e)))
            .as_ref()
            .map_err(|e| StoreError::KeyringUnavailable(e.clone()))
    }

    fn entry(&self, name: &str) -> Result<Entry, StoreError> {
        // Only the modifiers this platform's store accepts (see `backend`).
        let owned = Backend::current().map(|b| b.modifiers(name)).unwrap_or_default();
        let modifiers: HashMap<&str, &str> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Entry::new_in_store_with_modifiers(self.backend()?, SERVICE, name, &modifiers).map_err(to_store_error)
    }
}

impl RawKeyring for OsKeyring {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.entry(name)?.get_secret() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(to_store_error(e)),
        }
    }

    fn set(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.entry(name)?.set_secret(bytes).map_err(to_store_error)
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(to_store_error(e)),
        }
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    let store: Arc<KeyringBackend> = zbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    let store: Arc<KeyringBackend> = apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(windows)]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    let store: Arc<KeyringBackend> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    Err(keyring_core::Error::NotSupportedByStore("no OS keyring on this platform".into()))
}

/// keyring-core errors, described without the data some variants carry
/// (`BadEncoding` and `BadDataFormat` hold the secret's bytes).
fn describe(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(p) | E::NoStorageAccess(p) => p.to_string(),
        E::BadEncoding(_) | E::BadDataFormat(..) => "a keyring item is not in the expected format".into(),
        E::Ambiguous(items) => format!(
            "{} keyring items match; remove the duplicates (e.g. with seahorse or secret-tool clear)",
            items.len()
        ),
        other => other.to_string(),
    }
}

fn to_store_error(e: keyring_core::Error) -> StoreError {
    use keyring_core::Error as E;
    match &e {
        E::NoStorageAccess(_) | E::NoDefaultStore => StoreError::KeyringUnavailable(describe(&e)),
        // A Secret Service that is absent shows up as a D-Bus failure on
        // first use; name the ways out rather than the D-Bus error alone.
        E::PlatformFailure(p) if looks_unreachable(&p.to_string()) => {
            StoreError::KeyringUnavailable(describe(&e))
        }
        _ => StoreError::Keyring(describe(&e)),
    }
}

fn looks_unreachable(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    // The last is macOS's errSecInteractionNotAllowed (-25308), which
    // apple-native-keyring-store 1.0.3's `decode_error` leaves a
    // `PlatformFailure`: the login keychain is locked and nobody can be
    // asked to unlock it (an SSH session, a launchd job).
    [
        "dbus",
        "d-bus",
        "connect",
        "no such file",
        "not provided",
        "serviceunknown",
        "locked",
        "interaction is not allowed",
    ]
    .iter()
    .any(|needle| msg.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_keychain_that_cannot_prompt_is_unreachable() {
        // SecCopyErrorMessageString's text for errSecInteractionNotAllowed.
        assert!(looks_unreachable("User interaction is not allowed."));
    }

    #[test]
    fn an_ordinary_keyring_failure_is_not_unreachable() {
        assert!(!looks_unreachable("Windows error code 1783"));
    }
}
