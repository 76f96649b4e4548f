//! Atomic replacement of a file: a temporary file beside it (mode 0600),
//! fsync, rename over the target, fsync of the directory. A reader sees the
//! old content or the new, never a torn file, and a symlink planted at the
//! target is replaced, not followed.
//!
//! A writer killed between creating its temporary file and renaming it
//! leaves the file behind, and it holds secrets (the whole file store, or a
//! token). Temporary files are named `.<target>.<random>.dce-tmp`, a name
//! no one else makes, and every write removes the ones left for its own
//! target first. Callers serialize writers of one target (the store's lock,
//! the cache key's lock), so any such file found then belongs to a writer
//! that died.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use super::{FsError, io_err, remove_if_exists};

/// What every temporary file of ours ends with. Public (through
/// `for_tests`) so that the crash tests look for exactly the names that
/// writers leave; the cache's name grammar uses it too.
pub const TMP_SUFFIX: &str = ".dce-tmp";
/// Random characters in a temporary file's name.
const RANDOM_LEN: usize = 6;

/// Writes `contents` to `path` atomically, first removing temporary files
/// that earlier writers of `path` left when they were killed. The caller
/// holds whatever lock serializes writers of `path`.
///
/// # Errors
/// An I/O failure; the target is then unchanged.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    write_atomic_dated(path, contents, None)
}

/// [`write_atomic`], then the file's modification time set to `modified`
/// (best effort): the cache dates each entry by its expiry, so pruning can
/// pass over live entries with a `stat` instead of reading them.
///
/// # Errors
/// An I/O failure; the target is then unchanged.
pub fn write_atomic_dated(path: &Path, contents: &[u8], modified: Option<SystemTime>) -> Result<(), FsError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("file");
    remove_orphans(dir, name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TMP_SUFFIX)
        .rand_bytes(RANDOM_LEN)
        .tempfile_in(dir)
        .map_err(io_err("cannot create a temporary file in", dir))?;
    tmp.write_all(contents).map_err(io_err("cannot write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err("cannot sync", path))?;
    let file = tmp.persist(path).map_err(|e| FsError::Io {
        what: "cannot replace",
        path: path.to_owned(),
        source: e.error,
    })?;
    // Dated only once renamed: a temporary file keeps its true age, which
    // is how an orphan is told from a live writer's. Best effort: the date
    // is an optimisation for the reader of dates, never a correctness one.
    if let Some(time) = modified {
        let _ = file.set_modified(time);
    }
    sync_dir(dir);
    Ok(())
}

/// Whether `file_name` is a temporary file of ours for the target `name`.
fn is_orphan_of(file_name: &str, name: &str) -> bool {
    let Some(rest) = file_name.strip_prefix('.').and_then(|r| r.strip_prefix(name)) else { return false };
    let Some(random) = rest.strip_prefix('.').and_then(|r| r.strip_suffix(TMP_SUFFIX)) else { return false };
    random.len() == RANDOM_LEN && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn remove_orphans(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_str().is_some_and(|f| is_orphan_of(f, name)) {
            crate::debug!("removing {}, left by a writer that was killed", entry.path().display());
            let _ = remove_if_exists(&entry.path());
        }
    }
}

/// Makes a rename durable. Best effort: some filesystems refuse to fsync a
/// directory, and the rename itself is already atomic.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = (dir, File::open::<&Path>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"hello").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("f");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_killed_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join(".credentials.json.Ab3dE9.dce-tmp");
        fs::write(&orphan, b"every secret").unwrap();
        write_atomic(&dir.path().join("credentials.json"), b"{}").unwrap();
        assert!(!orphan.exists());
    }

    #[test]
    fn other_files_are_never_taken_for_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let keep =
            [".credentials.json.swp", ".tmp-abc", "credentials.json.bak", ".index.json.Ab3dE9.dce-tmp"];
        for name in keep {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        write_atomic(&dir.path().join("credentials.json"), b"{}").unwrap();
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name}");
        }
    }
}
