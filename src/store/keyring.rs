//! The OS keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows), plus an index file of server URLs and usernames,
//! because `list` must enumerate and not every keyring can.
//!
//! macOS and Windows go through `keyring-core` and their platform store
//! crates; Linux through the helper's own Secret Service client
//! (`secret_service.rs`), which can open the cheap `plain` session that
//! the store crate cannot (bench/RESULTS.md). Either way the keyring is
//! reached on first use, never at start-up: a cache hit or a `list` must
//! not pay for a D-Bus connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

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

/// The platform keyring, connected lazily.
#[cfg(target_os = "linux")]
type OsKeyring = super::secret_service::SecretServiceKeyring;
#[cfg(not(target_os = "linux"))]
type OsKeyring = super::core_keyring::CoreKeyring;

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
        // Spent already (waiting for the index lock, say): ask nothing, so
        // that no write can land after the error is reported.
        if self.deadline.expired() {
            return Err(StoreError::KeyringTimedOut { limit: self.deadline.limit(), write: Write::None });
        }
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
    fn check_ready(&self) -> Result<(), StoreError> {
        self.in_time(Write::None, |os| os.ready())
    }

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
            let in_keyring = self.in_time(Write::Erase, move |os| chunked::delete(os, &name, MAX_BLOB))?;
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
