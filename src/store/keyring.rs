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
use std::time::Duration;

use zeroize::Zeroizing;

use super::backend::Backend;
use super::chunked::{self, RawKeyring};
use super::jsonfile::JsonMapFile;
use super::{CredentialStore, ListedCredential, SERVICE, StoreError, StoredCredential, Write};
use crate::deadline::Deadline;
use crate::fsutil;
use crate::secret::Secret;
use crate::server_url::ServerUrl;

/// The largest secret one item may hold on this platform.
const MAX_BLOB: usize = match Backend::current() {
    Some(backend) => backend.max_blob(),
    None => usize::MAX,
};

/// Time kept back from the index's rename for putting the keyring back if
/// the rename is refused to the end: one keyring write.
const UNDO_RESERVE: Duration = Duration::from_secs(1);

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

/// What a keyring item held before a write that may have to be undone.
enum Previous {
    /// Not read: not needed where the index's rename cannot be refused.
    Unread,
    /// There was no item.
    Absent,
    /// The item's bytes.
    Secret(Zeroizing<Vec<u8>>),
}

impl KeyringStore {
    /// The secret now under `name`, where a write may have to be undone:
    /// only on Windows, where another program can refuse the index's
    /// rename for as long as it holds the file. Elsewhere the rename of a
    /// file already written and synced beside the index cannot be refused
    /// (rename(2) replaces a file whoever holds it), and on macOS reading
    /// the item could ask the user for Keychain access a second time.
    fn previous(&self, name: &str) -> Result<Previous, StoreError> {
        if !cfg!(windows) {
            return Ok(Previous::Unread);
        }
        let name = name.to_owned();
        Ok(match self.in_time(Write::None, move |os| chunked::load(os, &name))? {
            Some(bytes) => Previous::Secret(Zeroizing::new(bytes)),
            None => Previous::Absent,
        })
    }

    /// Puts the prepared index in place, or, if that is refused to the
    /// end, puts the keyring item `name` back as it was, so that the index
    /// and the keyring still agree. Some of the deadline is kept for that.
    fn commit_or_undo(
        &self,
        prepared: fsutil::Prepared,
        name: String,
        previous: Previous,
    ) -> Result<(), StoreError> {
        let rename_by = self.deadline.within(self.deadline.remaining().saturating_sub(UNDO_RESERVE));
        let Err(error) = prepared.commit(&rename_by) else { return Ok(()) };
        let undone = match previous {
            // Only an I/O error fails a rename there; say what is left.
            Previous::Unread => Err(StoreError::Keyring("it was not read beforehand".into())),
            Previous::Absent => {
                self.in_time(Write::Store, move |os| chunked::delete(os, &name, MAX_BLOB).map(drop))
            }
            Previous::Secret(bytes) => {
                self.in_time(Write::Store, move |os| chunked::store(os, &name, &bytes, MAX_BLOB))
            }
        };
        Err(match undone {
            Ok(()) => error.into(),
            Err(e) => StoreError::Keyring(format!(
                "{error}; and the keyring item could not be put back as it was ({e}), so the index may \
                 not match it: store the credentials again"
            )),
        })
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
        // The keyring write and the index write succeed or fail together, so
        // that no username is ever paired with another credential's secret.
        // Under the index's lock: the new index is written and synced beside
        // the old one before the keyring is touched (a lock that cannot be
        // had, or an index that cannot be read or written, fails the store
        // with nothing changed); then the keyring; then only the rename is
        // left, and if it is refused to the end (Windows, a reader holding
        // the index), the keyring is put back as it was.
        let mut index = self.index.edit::<ListedCredential>()?;
        let listed = ListedCredential {
            server_url: cred.server_url.clone(),
            username: cred.username.clone(),
            kind: cred.kind,
        };
        let changed = index.entries.get(key.as_str()) != Some(&listed);
        index.entries.insert(key.as_str().to_owned(), listed);
        let prepared = if changed { Some(index.prepare()?) } else { None };
        let name = key.as_str().to_owned();
        let previous = if prepared.is_some() { self.previous(&name)? } else { Previous::Unread };
        let secret = cred.secret.clone();
        self.in_time(Write::Store, {
            let name = name.clone();
            move |os| chunked::store(os, &name, secret.expose().as_bytes(), MAX_BLOB)
        })?;
        match prepared {
            Some(prepared) => self.commit_or_undo(prepared, name, previous),
            None => Ok(()),
        }
    }

    fn remove(&self, key: &ServerUrl) -> Result<bool, StoreError> {
        // As for `put`: nothing is deleted unless the index can follow.
        let mut index = self.index.edit::<ListedCredential>()?;
        let in_index = index.entries.remove(key.as_str()).is_some();
        let prepared = if in_index { Some(index.prepare()?) } else { None };
        let name = key.as_str().to_owned();
        let previous = if prepared.is_some() { self.previous(&name)? } else { Previous::Unread };
        let in_keyring = self.in_time(Write::Erase, {
            let name = name.clone();
            move |os| chunked::delete(os, &name, MAX_BLOB)
        })?;
        if let Some(prepared) = prepared {
            self.commit_or_undo(prepared, name, previous)?;
        }
        Ok(in_keyring || in_index)
    }

    fn list(&self) -> Result<BTreeMap<String, ListedCredential>, StoreError> {
        self.index.load()
    }

    fn listing(&self) -> Result<super::listing::Listing, StoreError> {
        self.index.listing()
    }

    fn describe(&self) -> String {
        format!("OS keyring (service {SERVICE}), index {}", self.index.path().display())
    }
}
