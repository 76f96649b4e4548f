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

use super::backend::Backend;
use super::chunked;
use super::jsonfile::JsonMapFile;
use super::{CredentialStore, ListedCredential, SERVICE, StoreError, StoredCredential};
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
    os: OsKeyring,
    index: JsonMapFile,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore").field("index", &self.index.path()).finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// The keyring store, indexed in `data_dir/index.json`.
    pub fn new(data_dir: PathBuf) -> KeyringStore {
        KeyringStore { os: OsKeyring::default(), index: JsonMapFile::new(&data_dir, "index.json") }
    }
}

impl CredentialStore for KeyringStore {
    fn get(&self, key: &ServerUrl) -> Result<Option<StoredCredential>, StoreError> {
        let Some(bytes) = chunked::load(&self.os, key.as_str())? else {
            return Ok(None);
        };
        let secret = String::from_utf8(bytes).map_err(|_| {
            StoreError::Keyring(format!("the keyring item for {key} is not UTF-8 text; store it again"))
        })?;
        let listed = self.index.load::<ListedCredential>()?.remove(key.as_str());
        let (server_url, username) = match listed {
            Some(l) => (l.server_url, l.username),
            // Stored by an older index or restored by hand: the secret is
            // authoritative, the name falls back to the key.
            None => (key.display_name().to_owned(), String::new()),
        };
        Ok(Some(StoredCredential { server_url, username, secret: Secret::new(secret) }))
    }

    fn username(&self, key: &ServerUrl) -> Result<Option<String>, StoreError> {
        Ok(self.index.load::<ListedCredential>()?.remove(key.as_str()).map(|l| l.username))
    }

    fn put(&self, key: &ServerUrl, cred: &StoredCredential) -> Result<(), StoreError> {
        // Keyring first: if it refuses, the index must not claim an entry.
        chunked::store(&self.os, key.as_str(), cred.secret.expose().as_bytes(), MAX_BLOB)?;
        self.index.update::<ListedCredential, ()>(|entries| {
            let listed =
                ListedCredential { server_url: cred.server_url.clone(), username: cred.username.clone() };
            let changed = entries.get(key.as_str()) != Some(&listed);
            entries.insert(key.as_str().to_owned(), listed);
            (changed, ())
        })
    }

    fn remove(&self, key: &ServerUrl) -> Result<bool, StoreError> {
        let in_keyring = chunked::delete(&self.os, key.as_str())?;
        let in_index = self.index.update::<ListedCredential, bool>(|entries| {
            let removed = entries.remove(key.as_str()).is_some();
            (removed, removed)
        })?;
        Ok(in_keyring || in_index)
    }

    fn list(&self) -> Result<BTreeMap<String, ListedCredential>, StoreError> {
        self.index.load()
    }

    fn describe(&self) -> String {
        format!("OS keyring (service {SERVICE}), index {}", self.index.path().display())
    }
}
