//! A client config file on disk: read through a dotfile manager's symlink,
//! refused when it cannot be edited safely, and replaced atomically with a
//! timestamped backup, both keeping the file's owner, group and mode.
//!
//! Ownership matters because people run `sudo docker-credential-exchange
//! configure-docker` with `HOME` kept (many `sudo` set-ups do): a rewrite
//! that handed `~/.docker/config.json` to root, mode 0600, would leave the
//! user unable to read their own Docker config. Docker's CLI keeps the
//! owner and mode when it saves the file (docker/cli
//! `cli/config/configfile/file_unix.go`, `copyFilePermissions`); so does
//! this, and a file or directory that root creates inside a user's
//! directory is given to that user.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{Document, MAX_DOCKER_CONFIG};

/// A client config file, read and parsed.
pub(crate) struct ConfigFile {
    /// The file edited (a symlink's target).
    pub path: PathBuf,
    /// Its bytes, if it exists.
    pub original: Option<Vec<u8>>,
    /// Its content.
    pub doc: Document,
}

impl ConfigFile {
    /// Reads `path` (following a dotfile manager's symlink); a missing
    /// file is an empty config.
    ///
    /// # Errors
    /// Unreadable, over 16 MiB, not UTF-8 or not a JSON object.
    pub fn read(path: &Path) -> anyhow::Result<ConfigFile> {
        let link = path;
        let path = resolve_symlink(path)?;
        // A directory is somebody's data: say what it is, and never
        // suggest removing it (the generic "not a regular file" does).
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            if path.as_path() == link {
                bail!(
                    "{} is a directory, not a file; clients read it as a JSON file, so move the directory \
                     elsewhere (or point the client at another config), then run again",
                    path.display()
                );
            }
            bail!(
                "{} is a symbolic link to the directory {}, not to a file; clients read it as a JSON file, so \
                 point the link at a file, then run again",
                link.display(),
                path.display()
            );
        }
        let original = crate::fsutil::read_regular_file(&path, MAX_DOCKER_CONFIG)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let doc = match &original {
            Some(bytes) => {
                Document::parse(bytes).with_context(|| format!("{} cannot be used", path.display()))?
            }
            None => Document::default(),
        };
        Ok(ConfigFile { path, original, doc })
    }

    /// Refuses a file that is read-only. The edit replaces the file by a
    /// rename, which a read-only file does not stop, so a file the user
    /// made read-only (or that belongs to another user, after `sudo docker
    /// login`) would be replaced without a word.
    ///
    /// # Errors
    /// The file exists and cannot be written by this user, or its owner
    /// has no write permission on it (mode 0444).
    pub fn ensure_writable(&self) -> anyhow::Result<()> {
        if self.original.is_none() {
            return Ok(());
        }
        match read_only(&self.path) {
            None => Ok(()),
            Some(fix) => bail!(
                "{} is read-only, and this change would replace it; {fix} and run again, or edit it by hand; \
                 nothing was changed",
                self.path.display()
            ),
        }
    }

    /// Writes the document back, keeping the old file as a timestamped
    /// backup; both keep the old file's owner, group and mode (a new file
    /// is 0600, as `auths` holds passwords). Returns the backup's path.
    ///
    /// # Errors
    /// The file is read-only, or the backup or the file cannot be written
    /// with its owner and mode; then the file was not changed.
    pub fn write(&self, deadline: &crate::deadline::Deadline) -> anyhow::Result<Option<PathBuf>> {
        self.ensure_writable()?;
        let trailing_newline = self.original.as_deref().is_none_or(|b| b.ends_with(b"\n"));
        let contents = self.doc.render(trailing_newline);
        // An existing directory (a dotfile manager's symlink included) is
        // used as it is; a missing one is created 0700, its owner's.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            crate::fsutil::ensure_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Ownership::for_new_in(dir.parent()).apply_to_path(dir)?;
        }
        let keep = match &self.original {
            Some(_) => Ownership::of(&self.path)?,
            None => Ownership::for_new_in(self.path.parent()),
        };
        let backup = match &self.original {
            Some(old) => {
                let backup = backup_path(&self.path);
                crate::fsutil::write_atomic_prepared(&backup, old, deadline, |f| keep.apply(f))
                    .context("cannot write the backup; nothing was changed")?;
                Some(backup)
            }
            None => None,
        };
        crate::fsutil::write_atomic_prepared(&self.path, contents.as_bytes(), deadline, |f| keep.apply(f))?;
        Ok(backup)
    }
}

/// The owner, group and mode a written file is given.
#[derive(Debug, Clone, Copy, Default)]
struct Ownership {
    /// (uid, gid) to give it, when not the writer's own.
    #[cfg(unix)]
    owner: Option<(u32, u32)>,
    /// Permission bits, when not the temporary file's 0600.
    #[cfg(unix)]
    mode: Option<u32>,
}

impl Ownership {
    /// What the existing file at `path` has.
    #[cfg(unix)]
    fn of(path: &Path) -> anyhow::Result<Ownership> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).with_context(|| format!("cannot inspect {}", path.display()))?;
        Ok(Ownership { owner: Some((meta.uid(), meta.gid())), mode: Some(meta.mode() & 0o7777) })
    }

    #[cfg(not(unix))]
    fn of(_: &Path) -> anyhow::Result<Ownership> {
        Ok(Ownership::default())
    }

    /// For a file or directory created in `dir`: when root writes into a
    /// directory of another user (`sudo` keeping `HOME`), that user's;
    /// otherwise the writer's own. The mode stays the private default.
    #[cfg(unix)]
    fn for_new_in(dir: Option<&Path>) -> Ownership {
        use std::os::unix::fs::MetadataExt;
        let owner = dir
            .filter(|_| crate::fsutil::current_uid() == 0)
            .and_then(|d| std::fs::metadata(d).ok())
            .filter(|m| m.uid() != 0)
            .map(|m| (m.uid(), m.gid()));
        Ownership { owner, mode: None }
    }

    #[cfg(not(unix))]
    fn for_new_in(_: Option<&Path>) -> Ownership {
        Ownership::default()
    }

    /// Gives `file` this owner and mode. The owner is required (a file the
    /// user can no longer read is the failure this prevents); a group the
    /// writer may not give (not root, not a member) is left as it is.
    #[cfg(unix)]
    fn apply(&self, file: &File) -> std::io::Result<()> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if let Some((uid, gid)) = self.owner {
            let now = file.metadata()?;
            let changed = now.uid() != uid || now.gid() != gid;
            if let Err(e) = changed.then(|| std::os::unix::fs::fchown(file, Some(uid), Some(gid))).transpose()
            {
                if now.uid() != uid {
                    return Err(e);
                }
                crate::log::debug!("cannot keep the group {gid} of the file: {e}");
            }
        }
        // After the owner: changing it may clear set-id bits.
        if let Some(mode) = self.mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn apply(&self, _: &File) -> std::io::Result<()> {
        Ok(())
    }

    /// Gives the directory (or file) at `path` this owner.
    fn apply_to_path(&self, path: &Path) -> anyhow::Result<()> {
        #[cfg(unix)]
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("cannot give {} to uid {uid}", path.display()))?;
        }
        let _ = path;
        Ok(())
    }
}

/// How to make `path` writable, if this user may not write it: opening it
/// for writing (which changes nothing) is refused, or, since root may
/// write anything, its owner's write bit is off.
fn read_only(path: &Path) -> Option<String> {
    let refused = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if !refused && !owner_cannot_write(path) {
        return None;
    }
    Some(how_to_make_writable(path, current_uid()))
}

#[cfg(unix)]
fn current_uid() -> u32 {
    crate::fsutil::current_uid()
}

#[cfg(not(unix))]
fn current_uid() -> u32 {
    0
}

#[cfg(unix)]
fn owner_cannot_write(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o200 == 0)
}

// Windows has no owner bits; its read-only attribute refuses the open.
#[cfg(not(unix))]
fn owner_cannot_write(_: &Path) -> bool {
    false
}

/// The command that makes `path` writable for this user: its read-only
/// attribute on Windows; on Unix `chmod u+w` for the user's own file, and
/// for another user's (root's, after `sudo docker login`) taking it back.
#[cfg(unix)]
fn how_to_make_writable(path: &Path, me: u32) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        // Root may write any file: only the mode stops it.
        Ok(m) if me != 0 && m.uid() != me => format!(
            "it belongs to uid {} (after `sudo docker login`, say): take it back with `sudo chown $(id -u) {}`{}",
            m.uid(),
            path.display(),
            if m.mode() & 0o200 == 0 {
                format!(" and `chmod u+w {}`", path.display())
            } else {
                String::new()
            }
        ),
        _ => format!("make it writable (chmod u+w {})", path.display()),
    }
}

#[cfg(not(unix))]
fn how_to_make_writable(path: &Path, _: u32) -> String {
    format!("clear its read-only attribute (attrib -r \"{}\")", path.display())
}

/// A dotfile manager may have made the file a symlink; edit the file it
/// points to rather than replacing the link with a copy.
fn resolve_symlink(path: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("{} is a symbolic link that cannot be followed", path.display())),
        _ => Ok(path.to_owned()),
    }
}

/// `config.json.bak.20261125T204000Z`, or with `-2`, `-3`… if that exists:
/// every change keeps its own backup, so the original survives any number
/// of runs.
fn backup_path(target: &Path) -> PathBuf {
    let stamp = crate::time::rfc3339(u64::try_from(crate::time::now()).unwrap_or(0)).replace(['-', ':'], "");
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut candidate = target.with_file_name(format!("{name}.bak.{stamp}"));
    let mut n = 2;
    while candidate.exists() {
        candidate = target.with_file_name(format!("{name}.bak.{stamp}-{n}"));
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn another_users_file_is_taken_back_with_chown_not_chmod() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{}").unwrap();
        let owner = std::fs::metadata(&path).unwrap().uid();
        let fix = how_to_make_writable(&path, owner + 1);
        assert!(fix.contains(&format!("belongs to uid {owner}")) && fix.contains("sudo chown"), "{fix}");
        assert!(how_to_make_writable(&path, owner).contains("chmod u+w"));
    }

    #[cfg(windows)]
    #[test]
    fn a_read_only_file_on_windows_is_made_writable_with_attrib() {
        assert!(how_to_make_writable(Path::new("C:\\x\\config.json"), 0).contains("attrib -r"));
    }
}
