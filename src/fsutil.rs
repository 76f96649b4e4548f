//! Careful file handling for everything the helper keeps on disk: private
//! directories, atomic writes, reads that never follow a planted symlink,
//! and lock files that are never truncated.
//!
//! The cache, the file store and the index all live in directories that
//! another process on the machine might try to tamper with, and the helper
//! is killed at arbitrary points by impatient clients, so every write is
//! "temporary file, fsync, rename" and every open refuses symlinks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What went wrong with a file or directory the helper owns.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// An I/O error, with the path it happened on.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A symlink where the helper expects its own file; never followed.
    #[error("{0} is a symbolic link; refusing to follow it (remove it and retry)")]
    Symlink(PathBuf),
    /// A file or directory that belongs to someone else.
    #[error("{path} is owned by uid {owner}, not by you (uid {me}); remove it or point the helper elsewhere")]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
    /// Not a regular file (a FIFO, a device, a directory).
    #[error("{0} is not a regular file; remove it and retry")]
    NotAFile(PathBuf),
    /// A file where the helper expects its own directory.
    #[error("{0} is not a directory; remove it and retry")]
    NotADirectory(PathBuf),
    /// Larger than the helper will ever write there.
    #[error("{path} is larger than {limit} bytes; remove it and retry")]
    TooLarge { path: PathBuf, limit: u64 },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError::Io { what, path: path.to_owned(), source }
}

/// Creates `dir` (and its parents) if needed and makes sure it is a private
/// directory: not a symlink, owned by the current user, mode 0700. A
/// directory of ours with looser permissions is repaired and `repaired` is
/// called with a description, so the caller can warn.
///
/// # Errors
/// A symlink, a foreign owner, or an I/O failure.
pub fn ensure_private_dir(dir: &Path, repaired: impl FnOnce(&str)) -> Result<(), FsError> {
    create_dir_all_private(dir)?;
    if let Some(mode) = inspect_private_dir(dir)? {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("cannot restrict permissions of", dir))?;
        }
        repaired(&format!("{} had mode {mode:o}; set it to 700", dir.display()));
    }
    Ok(())
}

/// Checks, without changing anything, that `dir` is a directory of the
/// current user and not a symlink. `Ok(Some(mode))` means it is ours but
/// its mode is looser than 0700; `Ok(None)` means it is private.
///
/// # Errors
/// A symlink, not a directory, a foreign owner, or an I/O failure
/// (`NotFound` when it does not exist).
pub fn inspect_private_dir(dir: &Path) -> Result<Option<u32>, FsError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err("cannot inspect directory", dir))?;
    if meta.file_type().is_symlink() {
        return Err(FsError::Symlink(dir.to_owned()));
    }
    if !meta.is_dir() {
        return Err(FsError::NotADirectory(dir.to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = current_uid();
        if meta.uid() != me {
            return Err(FsError::ForeignOwner { path: dir.to_owned(), owner: meta.uid(), me });
        }
        let mode = meta.mode() & 0o777;
        if mode != 0o700 {
            return Ok(Some(mode));
        }
    }
    Ok(None)
}

fn create_dir_all_private(dir: &Path) -> Result<(), FsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err("cannot create directory", dir))
}

/// The effective user id of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory (mode 0600), fsync, rename over the target, fsync of the
/// directory. A reader sees the old content or the new, never a torn file,
/// and a symlink planted at `path` is replaced, not followed.
///
/// # Errors
/// An I/O failure; the target is then unchanged.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("cannot create a temporary file in", dir))?;
    tmp.write_all(contents).map_err(io_err("cannot write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err("cannot sync", path))?;
    tmp.persist(path).map_err(|e| FsError::Io {
        what: "cannot replace",
        path: path.to_owned(),
        source: e.error,
    })?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename durable. Best effort: some filesystems refuse to fsync a
/// directory, and the rename itself is already atomic.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn open_options_nofollow() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    opts
}

/// Reads a file the helper owns, refusing symlinks, files that are not
/// regular, files of other users, and files over `limit` bytes.
/// `Ok(None)` means the file does not exist.
///
/// # Errors
/// Any of the refusals above, or an I/O failure.
pub fn read_private(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
    let mut opts = open_options_nofollow();
    // A FIFO planted at `path` would block a plain open until a writer
    // appears; O_NONBLOCK makes the open return so the type check below
    // refuses it. It has no effect on reading a regular file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let file = match opts.read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if is_symlink_error(&e) => return Err(FsError::Symlink(path.to_owned())),
        Err(e) => return Err(io_err("cannot open", path)(e)),
    };
    let meta = file.metadata().map_err(io_err("cannot inspect", path))?;
    if !meta.is_file() {
        return Err(FsError::NotAFile(path.to_owned()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = current_uid();
        if meta.uid() != me {
            return Err(FsError::ForeignOwner { path: path.to_owned(), owner: meta.uid(), me });
        }
    }
    if meta.len() > limit {
        return Err(FsError::TooLarge { path: path.to_owned(), limit });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut buf).map_err(io_err("cannot read", path))?;
    if buf.len() as u64 > limit {
        return Err(FsError::TooLarge { path: path.to_owned(), limit });
    }
    Ok(Some(buf))
}

fn is_symlink_error(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// An exclusive lock on a lock file, released when dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Opens (creating, mode 0600, never truncating, never through a symlink)
/// the lock file at `path` and waits for an exclusive lock on it.
///
/// # Errors
/// A symlink at `path`, or an I/O failure.
pub fn lock_exclusive(path: &Path) -> Result<LockGuard, FsError> {
    let mut opts = open_options_nofollow();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if is_symlink_error(&e) => return Err(FsError::Symlink(path.to_owned())),
        Err(e) => return Err(io_err("cannot open lock file", path)(e)),
    };
    file.lock().map_err(io_err("cannot lock", path))?;
    Ok(LockGuard { file })
}

/// Removes a file, treating "already gone" as success.
///
/// # Errors
/// Any other I/O failure.
pub fn remove_if_exists(path: &Path) -> Result<(), FsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("cannot remove", path)(e)),
    }
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

    #[cfg(unix)]
    #[test]
    fn read_private_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(read_private(&link, 100), Err(FsError::Symlink(_))));
    }

    #[cfg(unix)]
    #[test]
    fn read_private_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read_private(&fifo, 100), Err(FsError::NotAFile(_))));
    }

    #[test]
    fn read_private_of_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_private(&dir.path().join("nope"), 10).unwrap().is_none());
    }

    #[test]
    fn read_private_refuses_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; 11]).unwrap();
        assert!(matches!(read_private(&path, 10), Err(FsError::TooLarge { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn lock_file_through_a_symlink_is_refused_and_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let lock = dir.path().join("k.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        assert!(matches!(lock_exclusive(&lock), Err(FsError::Symlink(_))));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[cfg(unix)]
    #[test]
    fn loose_private_dir_is_repaired() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("cache");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let mut warned = String::new();
        ensure_private_dir(&d, |m| warned = m.to_owned()).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(warned.contains("777"));
    }
}
