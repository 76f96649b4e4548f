//! Lock files (std `File::lock`): opened without following symlinks,
//! created 0600, never truncated, and waited for only until a deadline, so
//! that a helper stuck behind another one's hanging exchange still answers
//! in time.
//!
//! Lock files may be pruned. A pruner removes one only while it holds the
//! lock itself ([`try_lock_and_remove`]), and a locker checks after locking
//! that the path still names the file it locked; if not, a pruner removed it
//! between the open and the lock, and the locker starts again. Without that
//! check two processes could each hold "the" lock on different files.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FsError, io_err, is_symlink_error, open_options_nofollow, remove_if_exists};
use crate::deadline::Deadline;

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One holder at a time.
    Exclusive,
    /// Any number of holders, none exclusive.
    Shared,
}

/// A held lock, released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl LockGuard {
    /// The locked file, for data kept in the lock file itself.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The deadline passed while another process held the lock.
    #[error("timed out after {}s waiting for {} (another docker-credential-exchange holds it)", waited.as_secs(), path.display())]
    TimedOut {
        /// The lock file.
        path: PathBuf,
        /// How long the invocation's limit was.
        waited: Duration,
    },
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Fs(#[from] FsError),
}

const FIRST_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// Takes the lock at `path`, waiting until `deadline` at most. A symlink
/// planted as the lock file is removed (unlinking removes the link, never
/// its target) and the lock retried.
///
/// # Errors
/// The deadline passed, or the lock file cannot be opened or locked.
pub fn lock(path: &Path, mode: Mode, deadline: &Deadline) -> Result<LockGuard, LockError> {
    let mut pause = FIRST_PAUSE;
    loop {
        let file = open(path)?;
        loop {
            let attempt = match mode {
                Mode::Exclusive => file.try_lock(),
                Mode::Shared => file.try_lock_shared(),
            };
            match attempt {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if deadline.expired() => {
                    return Err(LockError::TimedOut { path: path.to_owned(), waited: deadline.limit() });
                }
                Err(TryLockError::WouldBlock) => {
                    if pause == FIRST_PAUSE {
                        // Says why a helper is slow, and tells a test that
                        // this helper has reached the lock and waits on it.
                        crate::log::debug!("waiting for {}, which another helper holds", path.display());
                    }
                    std::thread::sleep(deadline.cap(pause));
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", path)(e).into()),
            }
        }
        let guard = LockGuard { file };
        if still_names(path, &guard.file) {
            return Ok(guard);
        }
    }
}

/// Removes the lock file at `path` if nobody holds or awaits it now;
/// returns whether it did.
pub fn try_lock_and_remove(path: &Path) -> bool {
    let Ok(file) = open_options_nofollow().read(true).write(true).open(path) else { return false };
    if file.try_lock().is_err() || !still_names(path, &file) {
        return false;
    }
    let removed = remove_if_exists(path).is_ok();
    drop(file);
    removed
}

fn open(path: &Path) -> Result<File, FsError> {
    let mut opts = open_options_nofollow();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(f) => Ok(f),
        Err(e) if is_symlink_error(&e) => {
            crate::log::warn!("removed a symbolic link planted as lock file {}", path.display());
            remove_if_exists(path)?;
            opts.open(path).map_err(io_err("cannot open lock file", path))
        }
        Err(e) => Err(io_err("cannot open lock file", path)(e)),
    }
}

/// Whether `path` still names the open `file` (it was not unlinked and
/// replaced in between): the same device and inode on Unix, the same volume
/// and file index on Windows.
fn still_names(path: &Path, file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::symlink_metadata(path), file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => false,
            _ => true,
        }
    }
    #[cfg(windows)]
    {
        super::windows::still_names(path, file)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (path, file);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_as_lock_file_is_removed_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("k.lock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let _guard = lock(&path, Mode::Exclusive, &Deadline::after(Duration::from_secs(5))).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_held_lock_is_waited_for_only_until_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let _held = lock(&path, Mode::Exclusive, &Deadline::after(Duration::from_secs(5))).unwrap();
        let err = lock(&path, Mode::Exclusive, &Deadline::after(Duration::from_millis(100))).unwrap_err();
        assert!(matches!(err, LockError::TimedOut { .. }), "{err}");
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        let soon = || Deadline::after(Duration::from_millis(100));
        let _a = lock(&path, Mode::Shared, &soon()).unwrap();
        let _b = lock(&path, Mode::Shared, &soon()).unwrap();
        assert!(lock(&path, Mode::Exclusive, &soon()).is_err());
    }

    #[test]
    fn a_held_lock_file_is_not_removed_by_a_pruner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let guard = lock(&path, Mode::Exclusive, &Deadline::after(Duration::from_secs(5))).unwrap();
        assert!(!try_lock_and_remove(&path));
        drop(guard);
        assert!(try_lock_and_remove(&path));
        assert!(!path.exists());
    }

    #[test]
    fn a_lock_file_replaced_since_a_locker_opened_it_is_not_taken_for_the_lock() {
        // A locker opened the lock file; before it locked it, a pruner took
        // the file away and another locker made and locked a new one at the
        // same name. (Moved aside here rather than removed: Wine, unlike
        // Windows, keeps a removed file under its name while it is open.)
        // The first locker's lock would be on a file nobody else locks.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let first = open(&path).unwrap();
        std::fs::rename(&path, dir.path().join("pruned")).unwrap();
        let _second = lock(&path, Mode::Exclusive, &Deadline::after(Duration::from_secs(5))).unwrap();
        first.try_lock().unwrap();
        assert!(!still_names(&path, &first), "two lockers would both hold the lock");
    }
}
