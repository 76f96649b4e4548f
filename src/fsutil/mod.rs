//! Careful file handling for everything the helper keeps on disk: private
//! directories, atomic writes, reads that never follow a planted symlink,
//! and lock files that are never truncated.
//!
//! The cache, the file store and the index all live in directories that
//! another process on the machine might try to tamper with, and the helper
//! is killed at arbitrary points by impatient clients, so every write is
//! "temporary file, fsync, rename" ([`atomic`]), every open of our own files
//! refuses symlinks, and every wait for a lock ends by a deadline
//! ([`lock`]). Directories the helper did not create are never re-moded:
//! the cache directory may be one the user named.

mod atomic;
mod lock;
#[cfg(windows)]
mod windows;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub use atomic::{Prepared, prepare, write_atomic, write_atomic_dated, write_atomic_prepared};
pub use lock::{LockError, LockGuard, Mode, lock, try_lock_and_remove};

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
    /// Windows: another program kept the file open, in a way that refuses
    /// replacing it, until the deadline. Nothing was changed.
    #[error(
        "cannot replace {path}: it is held open by another program (Docker Desktop, an antivirus \
         scanner or the search indexer?) and was still held after {}s ({source}); nothing was \
         changed, retry once it lets go",
        limit.as_secs_f32()
    )]
    HeldOpen {
        path: PathBuf,
        /// The invocation's whole limit.
        limit: std::time::Duration,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError::Io { what, path: path.to_owned(), source }
}

/// How a directory of the user's is open to others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// Unix: its mode is looser than 0700. Others may list it, but the
    /// files the helper writes in it are 0600.
    #[cfg_attr(not(unix), expect(dead_code, reason = "modes are read on Unix only"))]
    Mode(u32),
    /// Windows: its access list lets these broad groups read it, and the
    /// files the helper writes in it inherit that access.
    #[cfg_attr(not(windows), expect(dead_code, reason = "access lists are read on Windows only"))]
    Readers(Vec<String>),
    /// Windows: another account owns it (a SID), though this user may use it.
    #[cfg_attr(not(windows), expect(dead_code, reason = "owners are SIDs on Windows only"))]
    Owner(String),
}

impl Exposure {
    /// What is open, for a message about the directory: "has mode 755: …".
    pub fn describe(&self) -> String {
        match self {
            Exposure::Mode(mode) => format!("has mode {mode:o}: others can see which registries you use"),
            Exposure::Readers(who) => format!(
                "can be read by {}: they can read the tokens cached in it, which inherit its access list",
                who.join(", ")
            ),
            Exposure::Owner(sid) => format!("is owned by {sid}, not by you"),
        }
    }

    /// Whether secrets in the directory, not only its listing, are open.
    pub fn exposes_secrets(&self) -> bool {
        matches!(self, Exposure::Readers(_))
    }

    /// How to close it.
    pub fn fix(&self, dir: &Path) -> String {
        match self {
            Exposure::Mode(_) => {
                format!("chmod 700 {} (the token files in it are 0600 either way)", dir.display())
            }
            Exposure::Readers(_) | Exposure::Owner(_) => format!(
                "make it yours alone: icacls \"{}\" /setowner %USERNAME% /inheritance:r /grant:r \"%USERNAME%:(OI)(CI)F\" /T, \
                 or point DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR at a directory under %LOCALAPPDATA%",
                dir.display()
            ),
        }
    }
}

/// What a private directory is, for messages: "private (…)".
pub const PRIVATE_DIR: &str =
    if cfg!(windows) { "yours, and no one else's access list lets them read it" } else { "0700, yours" };

/// Creates `dir` (and its parents, mode 0700) if needed and makes sure it
/// is a directory of the current user and not a symlink. An existing
/// directory's mode is left as it is, since it may be one the user named
/// and shares; the files the helper puts in it are 0600 whatever the
/// directory's mode, and `doctor` points out a loose one.
///
/// # Errors
/// A symlink, not a directory, a foreign owner, or an I/O failure.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FsError> {
    match check_dir(dir) {
        Ok(()) => Ok(()),
        Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            create_dir_all_private(dir)?;
            check_dir(dir)
        }
        Err(e) => Err(e),
    }
}

/// Checks, without changing anything, that `dir` is a directory of the
/// current user and says who else can read it: `Ok(None)` means it is
/// private. A symlink to such a directory is followed (on macOS `/tmp` is
/// one, and people link their cache elsewhere); the target's owner is what
/// counts, so on Unix a link planted by someone else to their own
/// directory is refused. On Windows the owner and the access list are read
/// (an `Exposure`, never a refusal: directories made by an elevated
/// process belong to Administrators, and the helper may still use them).
///
/// # Errors
/// Not a directory, a foreign owner (Unix), or an I/O failure (`NotFound`
/// when it does not exist).
pub fn inspect_private_dir(dir: &Path) -> Result<Option<Exposure>, FsError> {
    check_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = fs::metadata(dir).map_err(io_err("cannot inspect directory", dir))?.mode() & 0o777;
        Ok((mode != 0o700).then_some(Exposure::Mode(mode)))
    }
    #[cfg(windows)]
    {
        windows::exposure(dir).map_err(io_err("cannot read the access list of", dir))
    }
    #[cfg(not(any(unix, windows)))]
    Ok(None)
}

/// That `dir` is a directory and, on Unix, the current user's.
fn check_dir(dir: &Path) -> Result<(), FsError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return Err(blocked_or(dir, e, "cannot inspect directory")),
    };
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
    }
    Ok(())
}

/// The error for a failed open of `path`: on Windows a "not found" that is
/// really a file standing where one of its directories should be is that
/// file's error (Unix says `ENOTDIR` itself), so that a data directory that
/// is a file is never read as an empty store.
fn blocked_or(path: &Path, e: io::Error, what: &'static str) -> FsError {
    #[cfg(windows)]
    if let Some(file) = windows::blocking_file(path, &e) {
        return FsError::NotADirectory(file);
    }
    io_err(what, path)(e)
}

fn create_dir_all_private(dir: &Path) -> Result<(), FsError> {
    #[cfg(windows)]
    return windows::create_private_dirs(dir).map_err(io_err("cannot create directory", dir));
    #[cfg(not(windows))]
    {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(io_err("cannot create directory", dir))
    }
}

/// The effective user id of this process.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

pub(crate) fn open_options_nofollow() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    opts
}

// The temporary files' names, for the cache's name grammar and the tests.
pub use atomic::TMP_SUFFIX;

/// What a bounded read of a file accepts. Both refuse, at once and
/// without blocking, anything that is not a regular file (a FIFO, a device
/// such as /dev/zero, a directory) and a file over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A file the helper owns (the cache, the file store, its records):
    /// symlinks are refused, and on Unix so are files of other users.
    Private,
    /// A file that need not be the helper's own: the config, a
    /// subject-token file, a CA bundle, a login token file. Symlinks are
    /// followed (Kubernetes projects its tokens through them, dotfile
    /// managers link configs).
    Regular,
}

/// Reads `path` whole, within `limit` bytes, as `policy` allows.
/// `Ok(None)` means the file does not exist.
///
/// # Errors
/// What the policy refuses, over `limit` bytes, or an I/O failure.
pub fn read_bounded(path: &Path, limit: u64, policy: Policy) -> Result<Option<Vec<u8>>, FsError> {
    let Some((file, _)) = open_bounded(path, limit, policy)? else { return Ok(None) };
    read_open(file, path, limit).map(Some)
}

/// Opens `path` as [`read_bounded`] reads it and returns it with its
/// metadata, for a reader that decides from the metadata how much to read
/// (the config's index, `config/index/`). `Ok(None)` means the file does
/// not exist.
///
/// # Errors
/// As [`read_bounded`], but nothing is read.
pub fn open_bounded(
    path: &Path,
    limit: u64,
    policy: Policy,
) -> Result<Option<(File, fs::Metadata)>, FsError> {
    let private = policy == Policy::Private;
    let mut opts = if private { open_options_nofollow() } else { OpenOptions::new() };
    opts.read(true);
    // A FIFO planted at `path` would block a plain open until a writer
    // appears; O_NONBLOCK makes the open return so the type check below
    // refuses it. It has no effect on reading a regular file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if private { libc::O_NOFOLLOW } else { 0 };
        opts.custom_flags(nofollow | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return not_found(path, e),
        Err(e) if private && is_symlink_error(&e) => return Err(FsError::Symlink(path.to_owned())),
        Err(e) => return Err(io_err("cannot open", path)(e)),
    };
    let meta = file.metadata().map_err(io_err("cannot inspect", path))?;
    if !meta.is_file() {
        return Err(FsError::NotAFile(path.to_owned()));
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::MetadataExt;
        let me = current_uid();
        if meta.uid() != me {
            return Err(FsError::ForeignOwner { path: path.to_owned(), owner: meta.uid(), me });
        }
    }
    if meta.len() > limit {
        return Err(FsError::TooLarge { path: path.to_owned(), limit });
    }
    Ok(Some((file, meta)))
}

/// [`read_bounded`] of a file the helper owns ([`Policy::Private`]).
///
/// # Errors
/// As [`read_bounded`].
pub fn read_private(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
    read_bounded(path, limit, Policy::Private)
}

/// [`read_bounded`] of a file that need not be the helper's own
/// ([`Policy::Regular`]).
///
/// # Errors
/// As [`read_bounded`].
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, FsError> {
    read_bounded(path, limit, Policy::Regular)
}

/// A file that is not there: `Ok(None)`, unless a file stands where one of
/// its directories should be (see [`blocked_or`]).
fn not_found<T>(path: &Path, e: io::Error) -> Result<Option<T>, FsError> {
    match blocked_or(path, e, "cannot open") {
        FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => Ok(None),
        blocked => Err(blocked),
    }
}

/// Reads an open file (or any reader) to its end, refusing more than
/// `limit` bytes: the second half of [`read_bounded`], for a reader that
/// opened the file with [`open_bounded`] and looked at it first.
///
/// # Errors
/// Over `limit` bytes, or unreadable.
pub(crate) fn read_open(file: impl io::Read, path: &Path, limit: u64) -> Result<Vec<u8>, FsError> {
    crate::bounded::read_to_end(file, limit).map_err(|e| match e {
        crate::bounded::ReadError::TooLarge(_) => FsError::TooLarge { path: path.to_owned(), limit },
        crate::bounded::ReadError::Io(e) => io_err("cannot read", path)(e),
    })
}

pub(crate) fn is_symlink_error(e: &io::Error) -> bool {
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
    fn a_symlink_to_a_directory_of_ours_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        ensure_private_dir(&link).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_the_helper_creates_is_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a").join("cache");
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_directory_is_never_re_moded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("project");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o755);
    }

    #[cfg(unix)]
    #[test]
    fn read_regular_file_refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read_regular_file(&fifo, 100), Err(FsError::NotAFile(_))));
    }

    #[cfg(unix)]
    #[test]
    fn read_regular_file_refuses_a_device_instead_of_reading_without_end() {
        assert!(matches!(read_regular_file(Path::new("/dev/zero"), 100), Err(FsError::NotAFile(_))));
    }

    #[cfg(unix)]
    #[test]
    fn read_regular_file_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"token").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_regular_file(&link, 100).unwrap().unwrap(), b"token");
    }
}
