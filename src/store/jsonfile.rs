//! A JSON map kept in one private file, updated read-modify-write under an
//! exclusive lock and replaced atomically: the shape shared by the index of
//! keyring entries and by the file store.
//!
//! Readers take no lock: an atomic rename means they see a whole old file
//! or a whole new one. Writers serialize on a lock file beside the data so
//! that two concurrent `store`s cannot lose each other's entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::listing::Listing;
use super::{ListedCredential, StoreError};
use crate::deadline::Deadline;
use crate::fsutil;

/// The files never grow near this; a larger one is not ours.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk<E> {
    version: u32,
    entries: E,
}

const VERSION: u32 = 1;

/// A map from normalized server URL to `T`, persisted at `path`.
#[derive(Debug, Clone)]
pub struct JsonMapFile {
    path: PathBuf,
    lock_path: PathBuf,
    /// How long a writer waits for another's lock: the invocation's deadline.
    deadline: Deadline,
}

impl JsonMapFile {
    /// The map at `dir/name`, locked through `dir/name.lock`, whose
    /// writers wait for each other until `deadline` at most.
    pub fn new(dir: &Path, name: &str, deadline: Deadline) -> JsonMapFile {
        JsonMapFile { path: dir.join(name), lock_path: dir.join(format!("{name}.lock")), deadline }
    }

    /// Where the map lives, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the whole map; a missing file is an empty map.
    ///
    /// # Errors
    /// An unreadable or invalid file, named with line and column: it holds
    /// the user's data, so it is never silently replaced.
    pub fn load<T: DeserializeOwned>(&self) -> Result<BTreeMap<String, T>, StoreError> {
        let Some(bytes) = fsutil::read_private(&self.path, MAX_FILE_BYTES)? else {
            return Ok(BTreeMap::new());
        };
        parse(&self.path, &bytes)
    }

    /// What `list` needs of a map of [`ListedCredential`]s (the keyring's
    /// index): read without serde when the file is of the shape the helper
    /// writes, through [`JsonMapFile::load`]'s parser otherwise, so that
    /// it is accepted or refused exactly as `load` would.
    ///
    /// # Errors
    /// As [`JsonMapFile::load`].
    pub fn listing(&self) -> Result<Listing, StoreError> {
        let Some(bytes) = fsutil::read_private(&self.path, MAX_FILE_BYTES)? else {
            return Ok(Listing::default());
        };
        listing_of(&self.path, bytes)
    }
}

/// The listing of an index file's `bytes` (see [`JsonMapFile::listing`]).
/// Under the fuzzer, the fast read is held to serde's answer.
///
/// # Errors
/// As [`JsonMapFile::load`].
pub fn listing_of(path: &Path, bytes: Vec<u8>) -> Result<Listing, StoreError> {
    #[cfg(fuzzing)]
    let copy = bytes.clone();
    match Listing::read(bytes) {
        Ok(listing) => {
            #[cfg(fuzzing)]
            assert!(
                parse::<ListedCredential>(path, &copy).is_ok_and(|map| Listing::from_map(&map) == listing),
                "serde_json reads what the fast read read, the same"
            );
            Ok(listing)
        }
        Err(bytes) => Ok(Listing::from_map(&parse::<ListedCredential>(path, &bytes)?)),
    }
}

/// Parses a map file's bytes; `path` names it in errors.
pub(super) fn parse<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<String, T>, StoreError> {
    let on_disk: OnDisk<BTreeMap<String, T>> = crate::json::from_object_slice(bytes).map_err(|e| {
        StoreError::Corrupt { path: path.to_owned(), line: e.line, column: e.column, reason: e.reason }
    })?;
    if on_disk.version != VERSION {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            line: 1,
            column: 1,
            reason: format!("unsupported version {}", on_disk.version),
        });
    }
    Ok(on_disk.entries)
}

impl JsonMapFile {
    /// Applies `change` to the map under the lock and writes the result
    /// atomically if `change` says it changed something.
    ///
    /// # Errors
    /// A failure to lock, read or write; the file is then unchanged.
    pub fn update<T, R>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, T>) -> (bool, R),
    ) -> Result<R, StoreError>
    where
        T: DeserializeOwned + Serialize,
    {
        let mut edit = self.edit::<T>()?;
        let (changed, result) = change(&mut edit.entries);
        if changed {
            edit.prepare()?.commit(&self.deadline)?;
        }
        Ok(result)
    }

    /// Takes the writers' lock and reads the map, for a change made in two
    /// steps: [`Edit::prepare`] writes the new map beside the file, and
    /// the caller commits it once the work it describes (a keyring write)
    /// is done. The lock is held until the `Edit` is dropped, so that work
    /// is ordered with every other writer's.
    ///
    /// # Errors
    /// A failure to make the directory, lock or read.
    pub fn edit<T: DeserializeOwned>(&self) -> Result<Edit<'_, T>, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fsutil::ensure_private_dir(dir)?;
        let lock =
            fsutil::lock(&self.lock_path, fsutil::Mode::Exclusive, &self.deadline).map_err(|e| match e {
                fsutil::LockError::Fs(e) => StoreError::Fs(e),
                timed_out => StoreError::Locked(timed_out.to_string()),
            })?;
        let entries = self.load::<T>()?;
        Ok(Edit { file: self, entries, _lock: lock })
    }
}

/// The map read under the writers' lock, to be changed and written back.
#[derive(Debug)]
pub struct Edit<'a, T> {
    file: &'a JsonMapFile,
    /// The entries as read; change them, then [`prepare`](Edit::prepare).
    pub entries: BTreeMap<String, T>,
    _lock: fsutil::LockGuard,
}

impl<T: Serialize> Edit<'_, T> {
    /// Writes the entries as they are now beside the file, synced, but not
    /// yet in its place: all that is left to fail is the rename
    /// ([`fsutil::Prepared::commit`]).
    ///
    /// # Errors
    /// The new file cannot be encoded or written; the file is unchanged.
    pub fn prepare(&self) -> Result<fsutil::Prepared, StoreError> {
        let bytes = serde_json::to_vec_pretty(&OnDisk { version: VERSION, entries: &self.entries })
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok(fsutil::prepare(&self.file.path, &bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_an_empty_map() {
        let dir = tempfile::tempdir().unwrap();
        let map = JsonMapFile::new(dir.path(), "m.json", Deadline::after(std::time::Duration::from_secs(10)));
        assert!(map.load::<String>().unwrap().is_empty());
    }

    #[test]
    fn update_persists_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let map = JsonMapFile::new(dir.path(), "m.json", Deadline::after(std::time::Duration::from_secs(10)));
        map.update::<String, ()>(|m| {
            m.insert("a".into(), "1".into());
            (true, ())
        })
        .unwrap();
        assert_eq!(map.load::<String>().unwrap()["a"], "1");
    }

    #[test]
    fn corrupt_file_is_an_error_naming_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.json"), "{\n  \"version\": 1,\n  oops").unwrap();
        let map = JsonMapFile::new(dir.path(), "m.json", Deadline::after(std::time::Duration::from_secs(10)));
        let err = map.load::<String>().unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
