//! The config file's index: what a full read of the file learned (each
//! registry key as written and normalized, where its value lies and on
//! which line, its `username`, which other key names the same registry, and
//! the store choice), kept in the cache directory under the file's
//! identity. A `get` on a warm cache then reads the index and the one entry
//! it uses instead of checking every byte of the file: with 1000 entries
//! shaped like the README's (430 KB) the checking pass alone cost eight
//! times a whole hit with one entry (bench/RESULTS.md).
//!
//! The index never stands for a file it was not made from:
//! - it is used only while the file's identity (device, inode, size,
//!   modification and change times) is the one recorded. No one but the
//!   kernel sets a change time, and every write moves it;
//! - it is written only for a file whose times are a few seconds old
//!   ([`SETTLED_MS`]), so that an edit just after the read cannot fall in
//!   the same tick of a coarse file-system clock with the same size (git's
//!   "racily clean" files), and only when the file had the same identity
//!   before and after it was read;
//! - it names the file and the build that wrote it, and is checked whole
//!   (a checksum): a truncated, foreign or older index is ignored and
//!   replaced;
//! - the entry a request uses is read from the file opened for the check,
//!   and the file's identity is checked again after that read.
//!
//! So an edited file is read and checked again in full, and its errors name
//! the file, line and column as before; each entry is still parsed and
//! validated when it is used, from the file's own bytes.
//!
//! The index is a cache: written best-effort, atomically and privately
//! through the crate's atomic writer (mode 0600; a torn one would fail
//! its checksum all the same), once per version of the file that a
//! reader finds unindexed; a cache directory that is missing, read-only or another
//! user's only means that the whole file is read. Unix only: Windows' file
//! times in std have no change time, so there the whole file is read every
//! time.

// Windows never indexes (no change time in std's metadata), so there the
// reading half is compiled but unused.
#![cfg_attr(not(unix), allow(dead_code))]

mod format;
#[cfg(test)]
mod tests;

#[cfg(unix)]
use std::fs::File;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub(super) use format::Index;
use format::encode;

use super::{Config, ConfigError, TextBody};

/// How old the file's times must be before an index is written for it.
/// File systems stamp times from a coarse clock (a scheduler tick on
/// Linux; 1 s on HFS+ and ext3, 2 s on FAT): an edit less than a tick after
/// the read could otherwise leave size and times as they were.
pub(super) const SETTLED_MS: i64 = 3_000;
/// Indexes far larger than any 1 MiB config makes are not ours.
const MAX_INDEX_BYTES: u64 = 8 * 1024 * 1024;
/// Indexes kept in one cache directory (one per config path used with it).
const MAX_INDEXES: usize = 8;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Identity {
    /// The identity of an open file, where the platform gives one.
    #[cfg(unix)]
    pub(super) fn of(meta: &Metadata) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        Some(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(super) fn of(_meta: &Metadata) -> Option<Identity> {
        None
    }

    /// Whether both times lie at least [`SETTLED_MS`] before `now_ms`.
    fn settled(&self, now_ms: i64) -> bool {
        let ms = |(secs, nanos): (i64, i64)| secs.saturating_mul(1000).saturating_add(nanos / 1_000_000);
        now_ms.saturating_sub(ms(self.modified).max(ms(self.changed))) >= SETTLED_MS
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.dev, self.ino, self.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [self.modified.0, self.modified.1, self.changed.0, self.changed.1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Where the index of the config at `config` lives in `dir`: one file per
/// config path, so that two configs used with one cache (a test suite, a
/// benchmark) do not keep replacing each other's.
pub(super) fn file_for(dir: &Path, config: &Path) -> PathBuf {
    let digest = Sha256::digest(config.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("config-{hex}.index"))
}

/// Reads the index of the config at `config` whose identity is `identity`;
/// `None` when there is none, or it is unreadable, damaged, foreign or
/// for another version of the file.
pub(super) fn read(index: &Path, config: &Path, identity: &Identity) -> Option<Index> {
    match crate::fsutil::read_private(index, MAX_INDEX_BYTES) {
        Ok(Some(bytes)) => {
            let found = Index::decode(bytes, config, identity);
            if found.is_none() {
                crate::log::debug!(
                    "ignoring {}: not an index of this version of {}",
                    index.display(),
                    config.display()
                );
            }
            found
        }
        Ok(None) => None,
        Err(e) => {
            crate::log::debug!("ignoring the config index: {e}");
            None
        }
    }
}

/// Writes the index of `config`, which was read whole from a file with
/// `identity`, if that version has settled; best effort: whatever fails
/// only means the next reader checks the whole file too.
pub(super) fn write(
    index: &Path,
    config: &Config,
    text: &TextBody,
    identity: &Identity,
    text_offset: usize,
    now_ms: i64,
) {
    if !identity.settled(now_ms) {
        return;
    }
    let Some(path) = config.path() else { return };
    let Some(bytes) = encode(config, text, path, identity, text_offset) else { return };
    if let Err(e) = replace(index, &bytes) {
        crate::log::debug!("not writing the config index {}: {e}", index.display());
    }
}

/// Puts `bytes` at `index` atomically, through the crate's atomic writer
/// (a private temporary file, renamed over the index), then removes the
/// least recently written indexes beyond [`MAX_INDEXES`].
///
/// No lock: concurrent writers each rename a complete file into place and
/// the last one wins. Each describes the version of the config it read and
/// checked, and a reader uses an index only for the version it names, so
/// any winner is right. (The writer's sweep of its own orphans may remove
/// a concurrent writer's temporary file; that writer's rename then fails
/// and it leaves the index to the other.)
fn replace(index: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = index.parent().ok_or("no directory")?;
    crate::fsutil::ensure_private_dir(dir).map_err(|e| e.to_string())?;
    // A rename on Unix is never refused for being held open; the deadline
    // bounds Windows' retries, where the index is not used anyway.
    let deadline = crate::deadline::Deadline::after(std::time::Duration::from_secs(1));
    crate::fsutil::write_atomic(index, bytes, &deadline).map_err(|e| e.to_string())?;
    tidy(dir, index);
    Ok(())
}

/// Removes all but the [`MAX_INDEXES`] most recently written indexes. Only
/// names this module makes are touched: the cache directory may be one the
/// user named. (Temporary files of killed writers are the atomic writer's
/// and the cache's pruning to remove.)
fn tidy(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut indexes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_index_name(name) || entry.path() == keep {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        indexes.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), entry.path()));
    }
    if indexes.len() >= MAX_INDEXES {
        indexes.sort();
        for (_, path) in &indexes[..=indexes.len() - MAX_INDEXES] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `config-<16 hex digits>.index`: the names [`file_for`] makes.
fn is_index_name(name: &str) -> bool {
    name.strip_prefix("config-")
        .and_then(|rest| rest.strip_suffix(".index"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where the values of an indexed config are read from.
#[derive(Debug)]
pub(super) enum Values {
    /// The config file, open since its identity was checked.
    #[cfg(unix)]
    File { file: File, identity: Identity },
    /// The text itself (unit tests and the fuzz target's check).
    #[cfg(any(test, fuzzing))]
    Text(String),
}

/// An index and the file it describes.
#[derive(Debug)]
pub(super) struct Indexed {
    pub(super) index: Index,
    pub(super) values: Values,
}

impl Indexed {
    /// The text of entry `i`'s value, read from the file and checked to
    /// come from the version the index describes.
    pub(super) fn value(&self, i: usize, path: &Path) -> Result<String, ConfigError> {
        let (start, end) = self.index.span(i);
        let changed = || ConfigError::Read {
            path: path.to_owned(),
            reason: "it changed while it was being read; run the command again".into(),
        };
        match &self.values {
            #[cfg(unix)]
            Values::File { file, identity } => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0; end.checked_sub(start).ok_or_else(changed)?];
                let offset = self.index.text_offset().saturating_add(start) as u64;
                file.read_exact_at(&mut buf, offset)
                    .map_err(|e| ConfigError::Read { path: path.to_owned(), reason: e.to_string() })?;
                let now = file.metadata().ok().and_then(|m| Identity::of(&m));
                if now.as_ref() != Some(identity) {
                    return Err(changed());
                }
                String::from_utf8(buf).map_err(|_| changed())
            }
            #[cfg(any(test, fuzzing))]
            Values::Text(text) => text.get(start..end).map(str::to_owned).ok_or_else(changed),
            // No variant on Windows, where nothing is indexed.
            #[cfg(not(any(unix, test, fuzzing)))]
            _ => {
                let _ = (start, end);
                Err(changed())
            }
        }
    }
}

/// A config read through an index of its own text, for checking that the
/// index answers exactly what the full read answers (unit tests, and the
/// `config` fuzz target under `cfg(fuzzing)`).
#[cfg(any(test, fuzzing))]
pub(super) fn round_trip(config: &Config) -> Option<Config> {
    let super::Body::Text(text) = &config.body else { return None };
    let identity = Identity { dev: 1, ino: 2, size: 3, modified: (4, 5), changed: (6, 7) };
    let path = config.path()?;
    let bytes = encode(config, text, path, &identity, 0)?;
    let index = Index::decode(bytes, path, &identity)?;
    Some(Config::from_index(path, Indexed { index, values: Values::Text(text.text.clone()) }))
}

/// Where a config read through its index answers differently from the
/// full read `full`: store, entries, names, keys, usernames, settings or
/// errors, and the lookup of each key and of a repository under it.
#[cfg(any(test, fuzzing))]
pub(super) fn differences(full: &Config, indexed: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: full read {a}, index {b}"));
        }
    };
    differ("store", format!("{:?}", full.store), format!("{:?}", indexed.store));
    differ("entries", full.ids().count().to_string(), indexed.ids().count().to_string());
    for id in full.ids().filter(|id| id.0 < indexed.lazy.len()) {
        differ("name", full.name(id).into(), indexed.name(id).into());
        differ("key", full.key(id).to_string(), indexed.key(id).to_string());
        differ("username", format!("{:?}", full.username_of(id)), format!("{:?}", indexed.username_of(id)));
        differ("settings", format!("{:?}", full.registry(id)), format!("{:?}", indexed.registry(id)));
        for url in [full.key(id).to_string(), format!("{}/x/y", full.key(id))] {
            if let Ok(url) = crate::server_url::ServerUrl::parse(&url) {
                differ(
                    &format!("lookup {url}"),
                    format!("{:?}", full.lookup(&url)),
                    format!("{:?}", indexed.lookup(&url)),
                );
            }
        }
    }
    out
}

/// The fuzz target's check: every config that parses can be indexed, and
/// its index answers what the full read answers.
#[cfg(fuzzing)]
pub(super) fn assert_round_trip(config: &Config) {
    let indexed = round_trip(config).expect("a config read whole can be indexed");
    let differences = differences(config, &indexed);
    assert!(differences.is_empty(), "{differences:#?}");
}
