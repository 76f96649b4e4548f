//! The on-disk cache of exchanged tokens (DESIGN.md section 3).
//!
//! One file per cache key, `<registry hash>-<key hash>.json`, 0600, written
//! atomically; a directory the cache creates is 0700, one the user named is
//! left as it is. The registry hash prefix lets `store`, `erase`, `login`
//! and `logout` drop every token of a registry without reading the files.
//! Reading is the hot path of every Docker command: it opens one file,
//! never follows a symlink, and treats anything unexpected (corrupt,
//! truncated, foreign, another key's, from the future) as a miss.
//!
//! Pruning and clearing touch only files whose names the cache makes
//! ([`names`]); the directory may hold the user's own files.

mod entry;
mod key;
mod names;
mod records;
mod remembered;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use entry::{CachedToken, Freshness, Identity, Schedule};
pub use key::{CacheKey, KeyFields};
pub use records::{Commit, Failure, Generation};
pub use remembered::{ExchangeFailure, REMEMBER_FOR, window};

use crate::deadline::Deadline;
use crate::fsutil::{self, FsError, LockError, LockGuard, Mode};
use names::CacheFile;

/// A cache file is a few KiB; anything much larger is not ours.
const MAX_ENTRY_BYTES: u64 = 256 * 1024;

/// What the cache holds for a key.
#[derive(Debug)]
pub enum Lookup {
    /// Valid and outside the margin: use it.
    Fresh(CachedToken),
    /// Inside the margin but not expired: refresh, and fall back to it if
    /// the refresh fails.
    Stale(CachedToken),
    /// Nothing usable.
    Miss,
}

/// The cache directory: tokens (unless turned off) and the records kept
/// beside them.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    /// Whether tokens are cached (`DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE`
    /// turns them off; failure records are kept either way).
    tokens: bool,
}

impl Cache {
    /// The cache in `dir` (created on first write).
    pub fn new(dir: PathBuf, tokens: bool) -> Cache {
        Cache { dir, tokens }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether tokens are cached at all.
    pub fn tokens_enabled(&self) -> bool {
        self.tokens
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.stem))
    }

    fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.lock", key.stem))
    }

    fn ensure_dir(&self) -> Result<(), FsError> {
        fsutil::ensure_private_dir(&self.dir)
    }

    /// Looks `key` up at time `now`; the entry must have been made from a
    /// subject with fingerprint `subject` (when the source has one).
    pub fn lookup(&self, key: &CacheKey, subject: Option<&str>, now: i64) -> Lookup {
        if !self.tokens {
            return Lookup::Miss;
        }
        let entry = match self.read(key) {
            Ok(Some(e)) => e,
            Ok(None) => return Lookup::Miss,
            Err(reason) => {
                crate::log::warn!("ignoring cache entry {}: {reason}", self.entry_path(key).display());
                return Lookup::Miss;
            }
        };
        if entry.subject_fingerprint.as_deref() != subject {
            crate::log::debug!("cache entry {} was made from another subject token", key.stem);
            return Lookup::Miss;
        }
        match entry.schedule().freshness(now) {
            Freshness::Fresh => Lookup::Fresh(entry),
            Freshness::RefreshDue => Lookup::Stale(entry),
            Freshness::Expired => Lookup::Miss,
            Freshness::FromTheFuture => {
                crate::log::debug!("cache entry {} was obtained in the future; ignoring it", key.stem);
                Lookup::Miss
            }
        }
    }

    /// Reads the entry for `key`. `Ok(None)`: absent. `Err`: present but
    /// unusable, with the reason (the caller treats it as a miss).
    fn read(&self, key: &CacheKey) -> Result<Option<CachedToken>, EntryError> {
        read_entry(&self.entry_path(key), &key.stem)
    }

    /// Waits, until `deadline` at most, for the per-key lock that makes
    /// concurrent helpers share one exchange.
    ///
    /// # Errors
    /// The deadline passed, or the directory or lock file cannot be made
    /// safe.
    pub fn lock(&self, key: &CacheKey, deadline: &Deadline) -> Result<LockGuard, LockError> {
        self.ensure_dir()?;
        fsutil::lock(&self.lock_path(key), Mode::Exclusive, deadline)
    }

    /// Stores `token` under `key` (atomically, waiting until `deadline` at
    /// most for a reader that holds the file on Windows), then prunes
    /// expired entries. The caller holds the key's lock.
    ///
    /// # Errors
    /// The directory is unsafe or the write failed.
    pub fn store(&self, key: &CacheKey, token: &CachedToken, deadline: &Deadline) -> Result<(), FsError> {
        if !self.tokens {
            return Ok(());
        }
        self.ensure_dir()?;
        let bytes = serde_json::to_vec(token).unwrap_or_default();
        // Dated by its expiry: pruning skips an entry whose date is still
        // ahead without opening it.
        fsutil::write_atomic_dated(&self.entry_path(key), &bytes, epoch_time(token.expires_at), deadline)?;
        self.prune(token.obtained_at, Some(key));
        Ok(())
    }

    /// The cache's own files in its directory, with their kinds.
    fn own_files(&self) -> impl Iterator<Item = (PathBuf, CacheFile)> + '_ {
        std::fs::read_dir(&self.dir).into_iter().flatten().flatten().filter_map(|item| {
            let kind = names::parse(item.file_name().to_str()?)?;
            Some((item.path(), kind))
        })
    }

    /// Removes expired and unreadable entries, the lock files of entries
    /// that are gone, and the temporary files of killed writers, so the
    /// cache stays bounded. Touches nothing the cache did not make.
    ///
    /// Every write prunes, so its cost must not grow with what the cache
    /// holds: an entry dated (by [`Cache::store`]) after `now`, and no
    /// further ahead than a token can live, is live and only `stat`ed. Any
    /// other date (an entry copied, touched, written by an older version or
    /// under a clock that was ahead) means reading it, as before.
    pub fn prune(&self, now: i64, keep: Option<&CacheKey>) {
        let keep = keep.map(|k| self.entry_path(k));
        let now_time = epoch_time(now);
        for (path, kind) in self.own_files() {
            match kind {
                CacheFile::Entry if Some(&path) != keep.as_ref() => {
                    if dated_after(&path, now_time) {
                        continue;
                    }
                    let stem = stem_of(&path);
                    let expired = match read_entry(&path, &stem) {
                        // From the future: written under a clock that was
                        // ahead; a miss until then, and by then stale.
                        Ok(Some(e)) => {
                            matches!(
                                e.schedule().freshness(now),
                                Freshness::Expired | Freshness::FromTheFuture
                            )
                        }
                        Ok(None) => false,
                        Err(_) => true,
                    };
                    if expired {
                        crate::log::debug!("pruning cache entry {}", path.display());
                        let _ = fsutil::remove_if_exists(&path);
                    }
                }
                CacheFile::Lock if !path.with_extension("json").exists() => {
                    fsutil::try_lock_and_remove(&path);
                }
                CacheFile::Temporary if older_than(&path, 60) => {
                    let _ = fsutil::remove_if_exists(&path);
                }
                // Kept for its key's waiters and a window of seconds; one
                // of a subject that never comes back (a CI job's) would
                // otherwise stay for ever.
                CacheFile::ExchangeFailure if remembered::outlived(&path) => {
                    let _ = fsutil::remove_if_exists(&path);
                }
                _ => {}
            }
        }
    }

    /// Removes every cached token (and failed exchange) of the registry
    /// with config key `registry_key`; returns how many tokens.
    pub fn drop_registry(&self, registry_key: &str) -> usize {
        let prefix = format!("{}-", key::registry_prefix(registry_key));
        self.remove_entries(|stem| stem.starts_with(&prefix))
    }

    /// Removes every cached token and failure record; returns how many
    /// tokens.
    pub fn clear(&self) -> usize {
        for (path, kind) in self.own_files() {
            if matches!(kind, CacheFile::Failure | CacheFile::Temporary) {
                let _ = fsutil::remove_if_exists(&path);
            }
        }
        self.remove_entries(|_| true)
    }

    fn remove_entries(&self, matches: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for (path, kind) in self.own_files() {
            let stem = stem_of(&path);
            if !matches(&stem) {
                continue;
            }
            match kind {
                CacheFile::Entry if fsutil::remove_if_exists(&path).is_ok() => removed += 1,
                CacheFile::Lock => {
                    fsutil::try_lock_and_remove(&path);
                }
                CacheFile::ExchangeFailure => {
                    let _ = fsutil::remove_if_exists(&path);
                }
                _ => {}
            }
        }
        removed
    }

    /// Whether `token` is one this cache holds for the registry with config
    /// key `registry_key`: a token the helper issued, not a new login.
    pub fn issued(&self, registry_key: &str, token: &crate::secret::Secret) -> bool {
        let prefix = format!("{}-", key::registry_prefix(registry_key));
        self.own_files()
            .filter(|(path, kind)| matches!(kind, CacheFile::Entry) && stem_of(path).starts_with(&prefix))
            .filter_map(|(path, _)| read_entry(&path, &stem_of(&path)).ok().flatten())
            .any(|entry| entry.token == *token)
    }

    /// Every readable entry, for `status`.
    pub fn entries(&self) -> Vec<CachedToken> {
        let mut out: Vec<CachedToken> = self
            .own_files()
            .filter(|(_, kind)| matches!(kind, CacheFile::Entry))
            .filter_map(|(path, _)| read_entry(&path, &stem_of(&path)).ok().flatten())
            .collect();
        out.sort_by(|a, b| a.request.cmp(&b.request));
        out
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned()
}

/// `secs` after the Unix epoch, if representable (not before 1970).
fn epoch_time(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs).ok().and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
}

/// Whether the file at `path` is dated after `now` by at most the longest
/// life a cached token can have: what an entry written at or before `now`
/// can honestly carry.
fn dated_after(path: &Path, now: Option<SystemTime>) -> bool {
    let Some(now) = now else { return false };
    let horizon = now + Duration::from_secs(entry::MAX_LIFETIME.unsigned_abs());
    std::fs::symlink_metadata(path).and_then(|m| m.modified()).is_ok_and(|date| date > now && date <= horizon)
}

fn older_than(path: &Path, secs: u64) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > secs)
}

/// Why a cache file is not used; every one is a miss, never a failure.
#[derive(Debug, thiserror::Error)]
enum EntryError {
    /// A symlink, a FIFO, another user's file, too large, unreadable.
    #[error(transparent)]
    Unreadable(#[from] FsError),
    /// Corrupt, truncated, or not an entry at all.
    #[error("not a valid cache entry")]
    Invalid,
    /// An entry of another key (copied or renamed) or format version.
    #[error("written for another key or version")]
    Foreign,
}

fn read_entry(path: &Path, stem: &str) -> Result<Option<CachedToken>, EntryError> {
    let Some(bytes) = fsutil::read_private(path, MAX_ENTRY_BYTES)? else {
        return Ok(None);
    };
    let entry: CachedToken = serde_json::from_slice(&bytes).map_err(|_| EntryError::Invalid)?;
    if entry.version != entry::VERSION || entry.key != stem {
        return Err(EntryError::Foreign);
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests;
