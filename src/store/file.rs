//! The explicit file store for machines without a keyring: one JSON file,
//! mode 0600 in a 0700 directory, written atomically under a lock.
//!
//! Chosen only on request (`"store": "file"` or
//! `DOCKER_CREDENTIAL_EXCHANGE_STORE=file`): secrets in a file are only as
//! safe as the account, and the user should decide that, not a fallback.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::jsonfile::JsonMapFile;
use super::{CredentialStore, EntryKind, ListedCredential, StoreError, StoredCredential};
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::server_url::ServerUrl;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    server_url: String,
    username: String,
    secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<EntryKind>,
}

/// Credentials in `credentials.json` under the data directory.
#[derive(Debug)]
pub struct FileStore {
    file: JsonMapFile,
}

impl FileStore {
    /// The file store under `data_dir`; writers wait for each other until
    /// `deadline` at most.
    pub fn new(data_dir: PathBuf, deadline: Deadline) -> FileStore {
        FileStore { file: JsonMapFile::new(&data_dir, "credentials.json", deadline) }
    }
}

impl CredentialStore for FileStore {
    fn check_ready(&self) -> Result<(), StoreError> {
        // Its failures are the file's, and the file's checks report them.
        Ok(())
    }

    fn get(&self, key: &ServerUrl) -> Result<Option<StoredCredential>, StoreError> {
        let mut entries = self.file.load::<Entry>()?;
        Ok(entries.remove(key.as_str()).map(|e| StoredCredential {
            server_url: e.server_url,
            username: e.username,
            secret: Secret::new(e.secret),
            kind: e.kind,
        }))
    }

    fn username(&self, key: &ServerUrl) -> Result<Option<String>, StoreError> {
        Ok(self.file.load::<Entry>()?.remove(key.as_str()).map(|e| e.username))
    }

    fn put(&self, key: &ServerUrl, cred: &StoredCredential) -> Result<(), StoreError> {
        self.file.update::<Entry, ()>(|entries| {
            let entry = Entry {
                server_url: cred.server_url.clone(),
                username: cred.username.clone(),
                secret: cred.secret.expose().to_owned(),
                kind: cred.kind,
            };
            entries.insert(key.as_str().to_owned(), entry);
            (true, ())
        })
    }

    fn remove(&self, key: &ServerUrl) -> Result<bool, StoreError> {
        self.file.update::<Entry, bool>(|entries| {
            let removed = entries.remove(key.as_str()).is_some();
            (removed, removed)
        })
    }

    fn list(&self) -> Result<BTreeMap<String, ListedCredential>, StoreError> {
        Ok(self
            .file
            .load::<Entry>()?
            .into_iter()
            .map(|(k, e)| {
                (k, ListedCredential { server_url: e.server_url, username: e.username, kind: e.kind })
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("file store {}", self.file.path().display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(secret: &str) -> StoredCredential {
        StoredCredential {
            server_url: "https://r.example/".into(),
            username: "alice".into(),
            secret: Secret::new(secret.into()),
            kind: Some(EntryKind::Credential),
        }
    }

    #[test]
    fn put_get_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileStore::new(dir.path().to_owned(), Deadline::after(std::time::Duration::from_secs(10)));
        let key = ServerUrl::parse("r.example").unwrap();
        store.put(&key, &cred("s3cret")).unwrap();
        let got = store.get(&key).unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.secret.expose()), ("alice", "s3cret"));
        assert!(store.remove(&key).unwrap());
        assert!(store.get(&key).unwrap().is_none());
        assert!(!store.remove(&key).unwrap());
    }

    #[test]
    fn list_never_carries_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileStore::new(dir.path().to_owned(), Deadline::after(std::time::Duration::from_secs(10)));
        store.put(&ServerUrl::parse("r.example").unwrap(), &cred("s3cret")).unwrap();
        let listed = format!("{:?}", store.list().unwrap());
        assert!(!listed.contains("s3cret"));
        assert!(listed.contains("alice"));
    }

    #[test]
    fn sixteen_kib_secret_is_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            FileStore::new(dir.path().to_owned(), Deadline::after(std::time::Duration::from_secs(10)));
        let key = ServerUrl::parse("r.example").unwrap();
        let long = "x".repeat(16 * 1024);
        store.put(&key, &cred(&long)).unwrap();
        assert_eq!(store.get(&key).unwrap().unwrap().secret.expose(), long);
    }
}
