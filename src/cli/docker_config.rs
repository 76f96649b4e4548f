//! What the helper knows about its clients' configs, in one place: where
//! Docker's `config.json` and containers' `auth.json` are, how Docker routes
//! a registry to a helper (`credHelpers`, `credsStore`), which `auths`
//! entries shadow a helper (a stored `auth` wins over it), and how to edit
//! the file without disturbing anything else in it.
//!
//! Docker's config holds other people's settings (proxies, plugins, keys
//! this helper has never heard of), so edits are surgical: the top-level
//! object is read as an ordered list of keys and raw values, only the keys
//! being changed are rewritten, and every other value is written back byte
//! for byte, in its place. Every change keeps the previous file as a
//! timestamped backup.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::server_url::{DOCKER_HUB, DOCKER_HUB_LEGACY_URL};

mod auths;

pub(crate) use auths::Credential;

/// The name Docker appends to `docker-credential-` to find this helper.
pub(crate) const HELPER_NAME: &str = "exchange";
/// Docker's config is small; anything larger is not one.
const MAX_DOCKER_CONFIG: u64 = 16 * 1024 * 1024;

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
///
/// # Errors
/// Neither `DOCKER_CONFIG` nor a home directory is available.
pub(crate) fn docker_config_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    Ok(home_dir()?.join(".docker").join("config.json"))
}

/// The `auth.json` files skopeo, podman and buildah read (before Docker's
/// config): `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers` and
/// `$XDG_CONFIG_HOME` (or `~/.config`)`/containers`.
pub(crate) fn containers_auth_paths() -> Vec<PathBuf> {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(f)];
    }
    let mut files = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(run).join("containers").join("auth.json"));
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().ok().map(|h| h.join(".config")));
    if let Some(dir) = config_home {
        files.push(dir.join("containers").join("auth.json"));
    }
    files
}

/// The user's home directory.
fn home_dir() -> anyhow::Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_owned())
        .context("cannot determine your home directory (is HOME set?); set DOCKER_CONFIG")
}

/// The `credHelpers` keys under which Docker and containers/image look a
/// registry up: `host[:port]`, and for Docker Hub both Docker's
/// `https://index.docker.io/v1/` and containers/image's `docker.io`.
pub(crate) fn helper_keys(host: &str) -> Vec<String> {
    if host == DOCKER_HUB { vec![DOCKER_HUB_LEGACY_URL.into(), DOCKER_HUB.into()] } else { vec![host.into()] }
}

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
        if self.original.is_none() || !is_read_only(&self.path) {
            return Ok(());
        }
        bail!(
            "{} is read-only, and this change would replace it; make it writable (chmod u+w {}) and run again, \
             or edit it by hand; nothing was changed",
            self.path.display(),
            self.path.display()
        )
    }

    /// Writes the document back, keeping the old file as a timestamped
    /// backup and its mode (0600 for a new file: `auths` holds passwords).
    /// Returns the backup's path.
    ///
    /// # Errors
    /// The file is read-only, or the backup or the file cannot be written;
    /// then nothing was changed.
    pub fn write(&self, deadline: &crate::deadline::Deadline) -> anyhow::Result<Option<PathBuf>> {
        self.ensure_writable()?;
        let trailing_newline = self.original.as_deref().is_none_or(|b| b.ends_with(b"\n"));
        let contents = self.doc.render(trailing_newline);
        // An existing directory (a dotfile manager's symlink included) is
        // used as it is; a missing one is created 0700.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) {
            crate::fsutil::ensure_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mode = std::fs::metadata(&self.path).ok().map(|m| m.permissions());
        let backup = match &self.original {
            Some(old) => {
                let backup = backup_path(&self.path);
                crate::fsutil::write_atomic(&backup, old, deadline)
                    .context("cannot write the backup; nothing was changed")?;
                Some(backup)
            }
            None => None,
        };
        crate::fsutil::write_atomic(&self.path, contents.as_bytes(), deadline)?;
        if let Some(perms) = mode {
            std::fs::set_permissions(&self.path, perms)
                .with_context(|| format!("cannot restore the permissions of {}", self.path.display()))?;
        }
        Ok(backup)
    }
}

/// Whether this user may not write `path`: opening it for writing (which
/// changes nothing) is refused, or, since root may write anything, its
/// owner's write bit is off.
fn is_read_only(path: &Path) -> bool {
    if let Err(e) = std::fs::OpenOptions::new().write(true).open(path) {
        return e.kind() == std::io::ErrorKind::PermissionDenied;
    }
    owner_cannot_write(path)
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

/// A JSON object as an ordered list of keys and untouched raw values.
#[derive(Default, Clone)]
pub(crate) struct Document {
    entries: Vec<(String, Box<RawValue>)>,
}

struct Ordered(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

fn raw(json: String) -> anyhow::Result<Box<RawValue>> {
    RawValue::from_string(json).context("internal error: produced invalid JSON")
}

fn quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn string_of(value: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(value.get()) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

impl Document {
    /// Parses a client config.
    ///
    /// # Errors
    /// Not UTF-8, not a JSON object, or with a key twice that the helper
    /// would edit.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Document> {
        let text = std::str::from_utf8(bytes).context("it is not UTF-8 text")?;
        // Docker treats an empty file as an empty config.
        if text.trim().is_empty() {
            return Ok(Document::default());
        }
        crate::json::require_object(bytes).map_err(|e| anyhow::anyhow!("it is not a JSON object: {e}"))?;
        let Ordered(entries) = serde_json::from_str(text).map_err(|e| {
            let e = crate::json::JsonError::from_serde(&e, bytes);
            anyhow::anyhow!("it is not a valid JSON object: {e}")
        })?;
        for key in ["credHelpers", "credsStore", "auths"] {
            if entries.iter().filter(|(k, _)| k == key).count() > 1 {
                bail!("it has more than one \"{key}\"; merge them by hand");
            }
        }
        Ok(Document { entries })
    }

    fn get(&self, key: &str) -> Option<&RawValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.entries.push((key.to_owned(), value)),
        }
    }

    fn object(&self, key: &str) -> anyhow::Result<Vec<(String, Box<RawValue>)>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => match serde_json::from_str::<Ordered>(v.get()) {
                Ok(Ordered(entries)) => Ok(entries),
                Err(_) => bail!("its \"{key}\" is not a JSON object; fix it by hand"),
            },
        }
    }

    /// Writes an object back in Docker's indentation; removes it if empty.
    fn set_object(&mut self, key: &str, entries: &[(String, Box<RawValue>)]) -> anyhow::Result<()> {
        if entries.is_empty() {
            self.entries.retain(|(k, _)| k != key);
            return Ok(());
        }
        let body: Vec<String> =
            entries.iter().map(|(k, v)| format!("\t\t{}: {}", quoted(k), v.get())).collect();
        self.set(key, raw(format!("{{\n{}\n\t}}", body.join(",\n")))?);
        Ok(())
    }

    /// The helper `credsStore` names.
    pub fn creds_store(&self) -> Option<String> {
        self.get("credsStore").and_then(string_of).filter(|s| !s.is_empty())
    }

    /// The helper `credHelpers` names for `key`.
    pub fn cred_helper(&self, key: &str) -> Option<String> {
        let helpers = self.object("credHelpers").ok()?;
        helpers.iter().rev().find(|(k, _)| k == key).and_then(|(_, v)| string_of(v))
    }

    /// Sets `credsStore` to this helper; the change made, if any.
    ///
    /// # Errors
    /// Producing the JSON failed (a bug).
    pub fn set_creds_store(&mut self) -> anyhow::Result<Option<String>> {
        let current = self.creds_store();
        if current.as_deref() == Some(HELPER_NAME) {
            return Ok(None);
        }
        self.set("credsStore", raw(quoted(HELPER_NAME))?);
        Ok(Some(match current {
            Some(old) => format!("set \"credsStore\": \"{HELPER_NAME}\" (was {})", quoted(&old)),
            None => format!("set \"credsStore\": \"{HELPER_NAME}\""),
        }))
    }

    /// Removes `credsStore` if it names this helper.
    pub fn unset_creds_store(&mut self) -> Option<String> {
        if self.creds_store().as_deref() != Some(HELPER_NAME) {
            return None;
        }
        self.entries.retain(|(k, _)| k != "credsStore");
        Some(format!("removed \"credsStore\": \"{HELPER_NAME}\""))
    }

    /// Points `credHelpers` at this helper for each of `keys`.
    ///
    /// # Errors
    /// `credHelpers` is not an object.
    pub fn add_cred_helpers(&mut self, keys: &[String]) -> anyhow::Result<Vec<String>> {
        let mut helpers = self.object("credHelpers")?;
        let mut changes = Vec::new();
        for key in keys {
            let current = helpers.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.get().to_owned());
            match current {
                Some(old) if string_of(&raw(old.clone())?).as_deref() == Some(HELPER_NAME) => continue,
                Some(old) => {
                    helpers.retain(|(k, _)| k != key);
                    helpers.push((key.clone(), raw(quoted(HELPER_NAME))?));
                    changes.push(format!(
                        "credHelpers {}: \"{HELPER_NAME}\" (replaced {old}, which Docker ran as docker-credential-{})",
                        quoted(key),
                        old.trim_matches('"')
                    ));
                }
                None => {
                    helpers.push((key.clone(), raw(quoted(HELPER_NAME))?));
                    changes.push(format!("added credHelpers {}: \"{HELPER_NAME}\"", quoted(key)));
                }
            }
        }
        if !changes.is_empty() {
            self.set_object("credHelpers", &helpers)?;
        }
        Ok(changes)
    }

    /// Removes the `credHelpers` entries that name this helper (all, or
    /// those of `keys`).
    ///
    /// # Errors
    /// `credHelpers` is not an object.
    pub fn remove_cred_helpers(&mut self, keys: Option<&[String]>) -> anyhow::Result<Vec<String>> {
        let mut helpers = self.object("credHelpers")?;
        let mut changes = Vec::new();
        helpers.retain(|(k, v)| {
            let ours =
                string_of(v).as_deref() == Some(HELPER_NAME) && keys.is_none_or(|keys| keys.contains(k));
            if ours {
                changes.push(format!("removed credHelpers {}", quoted(k)));
            }
            !ours
        });
        if !changes.is_empty() {
            self.set_object("credHelpers", &helpers)?;
        }
        Ok(changes)
    }

    /// Docker's own layout (`json.MarshalIndent` with a tab), so a file
    /// Docker wrote changes only where the helper changed it.
    pub fn render(&self, trailing_newline: bool) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.entries.iter().enumerate() {
            out.push_str(if i == 0 { "\n\t" } else { ",\n\t" });
            out.push_str(&quoted(k));
            out.push_str(": ");
            out.push_str(v.get());
        }
        out.push_str(if self.entries.is_empty() { "}" } else { "\n}" });
        if trailing_newline {
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_values_keep_their_bytes_and_order() {
        let before = "{\n\t\"z\": {\"a\":  1},\n\t\"credsStore\": \"desktop\",\n\t\"a\": [1,2]\n}";
        let mut doc = Document::parse(before.as_bytes()).unwrap();
        doc.add_cred_helpers(&["r.example".into()]).unwrap();
        assert_eq!(
            doc.render(false),
            "{\n\t\"z\": {\"a\":  1},\n\t\"credsStore\": \"desktop\",\n\t\"a\": [1,2],\n\t\"credHelpers\": {\n\t\t\"r.example\": \"exchange\"\n\t}\n}"
        );
    }

    #[test]
    fn cred_helpers_that_is_not_an_object_is_refused() {
        let mut doc = Document::parse(br#"{"credHelpers": []}"#).unwrap();
        assert!(doc.add_cred_helpers(&["r".into()]).is_err());
    }

    #[test]
    fn a_present_entry_is_no_change() {
        let mut doc = Document::parse(br#"{"credHelpers": {"r": "exchange"}}"#).unwrap();
        assert!(doc.add_cred_helpers(&["r".into()]).unwrap().is_empty());
    }

    #[test]
    fn a_top_level_array_is_refused() {
        assert!(Document::parse(b"[]").is_err());
    }

    #[test]
    fn removing_this_helper_leaves_other_helpers() {
        let mut doc = Document::parse(
            br#"{"credHelpers": {"a": "exchange", "b": "gcloud"}, "credsStore": "exchange"}"#,
        )
        .unwrap();
        assert_eq!(doc.remove_cred_helpers(None).unwrap().len(), 1);
        assert!(doc.unset_creds_store().is_some());
        assert_eq!(doc.render(false), "{\n\t\"credHelpers\": {\n\t\t\"b\": \"gcloud\"\n\t}\n}");
    }

    #[test]
    fn docker_hub_is_configured_under_both_names() {
        assert_eq!(helper_keys("docker.io"), ["https://index.docker.io/v1/", "docker.io"]);
        assert_eq!(helper_keys("r.example:5000"), ["r.example:5000"]);
    }
}
