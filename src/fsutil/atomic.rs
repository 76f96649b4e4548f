//! Atomic replacement of a file: a temporary file beside it (mode 0600),
//! fsync, rename over the target, fsync of the directory. A reader sees the
//! old content or the new, never a torn file, and a symlink planted at the
//! target is replaced, not followed. Every file the helper replaces (the
//! index, the file store, cache entries and records, Docker's config.json)
//! goes through [`Prepared::commit`].
//!
//! A writer killed between creating its temporary file and renaming it
//! leaves the file behind, and it holds secrets (the whole file store, or a
//! token). Temporary files are named `.<target>.<random>.dce-tmp`, a name
//! no one else makes, and every write removes the ones left for its own
//! target first. Callers serialize writers of one target (the store's lock,
//! the cache key's lock), so any such file found then belongs to a writer
//! that died.
//!
//! On Windows another program that reads the target (Docker Desktop, an
//! antivirus scanner, the search indexer) may hold it open without
//! `FILE_SHARE_DELETE`, and then a rename over it is refused (access denied
//! or a sharing violation) until that program lets go. The rename is
//! `std::fs::rename`: `MoveFileExW`, and where that is refused,
//! `SetFileInformationByHandle` with POSIX rename semantics (Windows 10
//! 1607 and later, on NTFS), which replaces a file that is open. What is
//! still refused is retried until the caller's deadline.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{FsError, io_err, open_options_nofollow, remove_if_exists};
use crate::deadline::Deadline;

/// What every temporary file of ours ends with. Public (through
/// `for_tests`) so that the crash tests look for exactly the names that
/// writers leave; the cache's name grammar uses it too.
pub const TMP_SUFFIX: &str = ".dce-tmp";
/// Random characters in a temporary file's name.
const RANDOM_LEN: usize = 6;
/// The first pause before a refused rename is tried again; it doubles up
/// to the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Writes `contents` to `path` atomically, first removing temporary files
/// that earlier writers of `path` left when they were killed. The caller
/// holds whatever lock serializes writers of `path`; a replace that another
/// program refuses for now is retried until `deadline`.
///
/// # Errors
/// An I/O failure, or the target still held at the deadline; the target is
/// then unchanged.
pub fn write_atomic(path: &Path, contents: &[u8], deadline: &Deadline) -> Result<(), FsError> {
    prepare(path, contents)?.commit(deadline)
}

/// [`write_atomic`], then the file's modification time set to `modified`
/// (best effort): the cache dates each entry by its expiry, so pruning can
/// pass over live entries with a `stat` instead of reading them.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_dated(
    path: &Path,
    contents: &[u8],
    modified: Option<SystemTime>,
    deadline: &Deadline,
) -> Result<(), FsError> {
    let mut prepared = prepare(path, contents)?;
    prepared.modified = modified;
    prepared.commit(deadline)
}

/// [`write_atomic`], with `set_up` run on the temporary file once it holds
/// `contents` and before it replaces the target: the file appears with the
/// owner and mode `set_up` gave it, never for a moment with the temporary
/// file's (a user's Docker config rewritten by root must not pass through
/// root's ownership).
///
/// # Errors
/// An I/O failure, or `set_up` failed; the target is then unchanged.
pub fn write_atomic_prepared(
    path: &Path,
    contents: &[u8],
    deadline: &Deadline,
    set_up: impl FnOnce(&File) -> io::Result<()>,
) -> Result<(), FsError> {
    let prepared = prepare(path, contents)?;
    set_up(prepared.tmp.as_file()).map_err(io_err("cannot set the owner or mode of", path))?;
    prepared.commit(deadline)
}

/// The new content of a file, written and synced beside it but not yet in
/// its place: the first half of an atomic write, for a caller that must do
/// something else (write the keyring) between making sure the file can be
/// written and replacing it. Dropped without [`commit`](Self::commit), it
/// removes itself and the target is unchanged.
#[derive(Debug)]
pub struct Prepared {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    modified: Option<SystemTime>,
}

/// Writes `contents` to a temporary file beside `path` and syncs it,
/// leaving `path` as it is.
///
/// # Errors
/// The temporary file cannot be created, written or synced.
pub fn prepare(path: &Path, contents: &[u8]) -> Result<Prepared, FsError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("file");
    remove_orphans(dir, name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(TMP_SUFFIX)
        .rand_bytes(RANDOM_LEN)
        .make_in(dir, create_private)
        .map_err(io_err("cannot create a temporary file in", dir))?;
    tmp.write_all(contents).map_err(io_err("cannot write", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err("cannot sync", path))?;
    Ok(Prepared { tmp, target: path.to_owned(), modified: None })
}

impl Prepared {
    /// Puts the new content in place, retrying a replace that another
    /// program refuses for now until `deadline`.
    ///
    /// # Errors
    /// The rename failed, or was still refused at the deadline; the target
    /// is then unchanged and the temporary file removed.
    pub fn commit(mut self, deadline: &Deadline) -> Result<(), FsError> {
        replace(self.tmp.path(), &self.target, deadline)?;
        // Renamed: the temporary name no longer exists, so there is nothing
        // left for the guard to remove.
        self.tmp.disable_cleanup(true);
        // Dated only once renamed: a temporary file keeps its true age, which
        // is how an orphan is told from a live writer's. Best effort: the
        // date is an optimisation for the reader of dates, never a
        // correctness one. The open handle follows the file to its new name.
        if let Some(time) = self.modified {
            let _ = self.tmp.as_file().set_modified(time);
        }
        let dir = self.target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir);
        Ok(())
    }
}

/// Creates a temporary file: new, 0600, never through a symlink.
fn create_private(path: &Path) -> io::Result<File> {
    let mut opts = open_options_nofollow();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Renames `from` over `to`, trying again while another program holds `to`
/// in a way that refuses it, until `deadline`.
fn replace(from: &Path, to: &Path, deadline: &Deadline) -> Result<(), FsError> {
    let mut pause = FIRST_PAUSE;
    loop {
        match fs::rename(from, to) {
            Ok(()) => return Ok(()),
            Err(e) if held_by_another(&e) && !deadline.expired() => {
                crate::log::debug!("{} is held open by another program; retrying ({e})", to.display());
                std::thread::sleep(deadline.cap(pause));
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            Err(e) if held_by_another(&e) => {
                return Err(FsError::HeldOpen { path: to.to_owned(), limit: deadline.limit(), source: e });
            }
            Err(e) => return Err(io_err("cannot replace", to)(e)),
        }
    }
}

/// Whether a refused rename is Windows saying that another program has the
/// target open (or mapped) in a way that excludes replacing it: an answer
/// for now, not for ever.
fn held_by_another(e: &io::Error) -> bool {
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{
            ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, ERROR_USER_MAPPED_FILE,
        };
        let held =
            [ERROR_ACCESS_DENIED, ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION, ERROR_USER_MAPPED_FILE];
        e.raw_os_error().is_some_and(|code| held.iter().any(|&h| i32::try_from(h) == Ok(code)))
    }
    #[cfg(not(windows))]
    {
        // rename(2) replaces a file whoever holds it open.
        let _ = e;
        false
    }
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
            crate::log::debug!("removing {}, left by a writer that was killed", entry.path().display());
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
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    #[test]
    fn atomic_write_creates_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"hello", &soon()).unwrap();
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
        write_atomic(&path, b"new", &soon()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_killed_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join(".credentials.json.Ab3dE9.dce-tmp");
        fs::write(&orphan, b"every secret").unwrap();
        write_atomic(&dir.path().join("credentials.json"), b"{}", &soon()).unwrap();
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
        write_atomic(&dir.path().join("credentials.json"), b"{}", &soon()).unwrap();
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name}");
        }
    }

    #[test]
    fn a_prepared_write_dropped_uncommitted_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        fs::write(&path, b"old").unwrap();
        drop(prepare(&path, b"new").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_reader_that_shares_deletion_never_delays_a_replace_and_keeps_the_old_content() {
        // How the helper's own readers (std's default share mode) hold a
        // file: on Windows MoveFileExW refuses to replace it, and the POSIX
        // rename that std falls back to does it at once. No time to retry.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        fs::write(&path, b"old").unwrap();
        let mut reader = File::open(&path).unwrap();
        let written = write_atomic(&path, b"new", &Deadline::after(Duration::ZERO));
        #[cfg(windows)]
        if super::super::windows::under_wine() {
            // Wine has no POSIX rename semantics (it answers the fallback with
            // ERROR_INVALID_PARAMETER), so there even this reader refuses the
            // replace, as a reader without FILE_SHARE_DELETE does on Windows;
            // docs/platforms.md names this test. What Wine can show: the
            // refusal is reported as such and changes nothing.
            // Straight to stderr, past the test harness's capture: loud.
            let _ = writeln!(
                io::stderr(),
                "UNDER WINE: a_reader_that_shares_deletion_never_delays_a_replace_and_keeps_the_old_content: \
                 no POSIX rename semantics; checked the refusal instead of the replace"
            );
            assert!(matches!(written, Err(FsError::HeldOpen { .. })), "{written:?}");
            assert_eq!(fs::read(&path).unwrap(), b"old");
            return;
        }
        written.unwrap();
        let mut seen = Vec::new();
        io::Read::read_to_end(&mut reader, &mut seen).unwrap();
        assert_eq!(seen, b"old");
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    /// Opens `path` for reading as a scanner or Docker Desktop may: sharing
    /// reads but not deletion, so that nothing may replace it meanwhile.
    #[cfg(windows)]
    fn hold_without_share_delete(path: &Path) -> File {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_SHARE_READ;
        fs::OpenOptions::new().read(true).share_mode(FILE_SHARE_READ).open(path).unwrap()
    }

    #[cfg(windows)]
    #[test]
    fn a_replace_refused_while_a_reader_holds_the_file_is_retried_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        fs::write(&path, b"old").unwrap();
        let held = hold_without_share_delete(&path);
        let watched = dir.path().to_owned();
        let reader = std::thread::spawn(move || {
            // The writer has its temporary file, so it is at the rename or
            // about to be. The pause only makes a refusal before the reader
            // lets go near certain (so that the test fails without the
            // retry); the verdict never depends on it.
            let started = std::time::Instant::now();
            while fs::read_dir(&watched).unwrap().count() < 2 && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let written = write_atomic(&path, b"new", &soon());
        reader.join().unwrap();
        written.unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[cfg(windows)]
    #[test]
    fn a_replace_still_refused_at_the_deadline_leaves_the_file_and_names_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        fs::write(&path, b"old").unwrap();
        let _held = hold_without_share_delete(&path);
        let err = write_atomic(&path, b"new", &Deadline::after(Duration::from_millis(500))).unwrap_err();
        assert!(matches!(err, FsError::HeldOpen { .. }), "{err}");
        assert!(err.to_string().contains("held open by another program"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the temporary file was left behind");
    }
}
