//! `configure-docker`: point Docker's `config.json` at this helper, with
//! `credHelpers` entries per registry or `credsStore` for all of them.
//!
//! Docker's config holds other people's settings (auths, proxies, plugins,
//! keys this helper has never heard of), so the edit is surgical: the
//! top-level object is read as an ordered list of keys and *raw* values
//! (`serde_json::value::RawValue`), only `credHelpers`/`credsStore` are
//! rewritten, and every other value is written back byte for byte, in its
//! place. Nothing is written when nothing needs to change; otherwise the old
//! file is kept as `config.json.bak` and the new one replaces it atomically
//! with the old file's mode.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::helper::Helper;
use crate::server_url::{DOCKER_HUB, DOCKER_HUB_LEGACY_URL};

/// The name Docker appends to `docker-credential-` to find this helper.
pub(crate) const HELPER_NAME: &str = "exchange";
/// Docker's config is small; anything larger is not one.
const MAX_DOCKER_CONFIG: u64 = 16 * 1024 * 1024;

/// `configure-docker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConfigureDockerArgs {
    /// Registries to add to credHelpers (default: every exchange registry in the config).
    pub registries: Vec<String>,
    /// Set credsStore instead: the helper serves every registry.
    #[arg(long)]
    pub store: bool,
}

pub(super) fn configure_docker(args: ConfigureDockerArgs) -> anyhow::Result<ExitCode> {
    let keys = helper_keys(&args)?;
    let path = docker_config_path()?;
    let target = resolve_symlink(&path)?;
    let original = read_docker_config(&target)?;
    let mut doc = match &original {
        Some(bytes) => Document::parse(bytes)
            .with_context(|| format!("Docker's config {} was not changed", target.display()))?,
        None => Document::default(),
    };
    let mut changes = Vec::new();
    if args.store {
        changes.extend(doc.set_creds_store()?);
    }
    changes.extend(
        doc.add_cred_helpers(&keys)
            .with_context(|| format!("Docker's config {} was not changed", target.display()))?,
    );
    if changes.is_empty() {
        println!("{}: already configured; nothing changed", target.display());
        return Ok(ExitCode::SUCCESS);
    }
    let trailing_newline = original.as_deref().is_none_or(|b| b.ends_with(b"\n"));
    let rendered = doc.render(trailing_newline);
    write(&target, original.as_deref(), rendered.as_bytes())?;
    for change in &changes {
        println!("{}: {change}", target.display());
    }
    if original.is_some() {
        println!("the previous file is saved as {}", backup_path(&target).display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The `credHelpers` keys for the registries asked for, as Docker and
/// containers/image look them up: `host[:port]`, and for Docker Hub both
/// Docker's `https://index.docker.io/v1/` and containers/image's `docker.io`.
fn helper_keys(args: &ConfigureDockerArgs) -> anyhow::Result<Vec<String>> {
    let hosts: Vec<String> = if args.registries.is_empty() {
        if args.store {
            return Ok(Vec::new());
        }
        let helper = Helper::from_env()?;
        let hosts: Vec<String> =
            helper.config().registries.iter().map(|(key, _)| key.registry().to_owned()).collect();
        if hosts.is_empty() {
            let config = crate::paths::config_file()?;
            bail!(
                "no exchange registries are configured in {}; name the registries \
                 (configure-docker REGISTRY…) or use --store to serve every registry",
                config.display()
            );
        }
        hosts
    } else {
        let mut hosts = Vec::new();
        for raw in &args.registries {
            let url = super::parse_registry(raw)?;
            if url.repository().is_some() {
                eprintln!(
                    "note: Docker asks credential helpers per registry host; using {} for {raw}",
                    url.registry()
                );
            }
            hosts.push(url.registry().to_owned());
        }
        hosts
    };
    let mut keys: Vec<String> = Vec::new();
    for host in hosts {
        let names: &[&str] = if host == DOCKER_HUB { &[DOCKER_HUB_LEGACY_URL, DOCKER_HUB] } else { &[&host] };
        for name in names {
            if !keys.iter().any(|k| k == name) {
                keys.push((*name).to_owned());
            }
        }
    }
    Ok(keys)
}

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

/// The user's home directory.
pub(crate) fn home_dir() -> anyhow::Result<PathBuf> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_owned())
        .context("cannot determine your home directory (is HOME set?); set DOCKER_CONFIG")
}

/// A dotfile manager may have made `config.json` a symlink; edit the file
/// it points to rather than replacing the link with a copy.
fn resolve_symlink(path: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)
            .with_context(|| format!("{} is a symbolic link that cannot be followed", path.display())),
        _ => Ok(path.to_owned()),
    }
}

/// The file's bytes, `None` if it does not exist.
///
/// # Errors
/// The file cannot be read or is not a plausible config.
pub(crate) fn read_docker_config(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_DOCKER_CONFIG + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_DOCKER_CONFIG {
        bail!("{} is larger than {MAX_DOCKER_CONFIG} bytes; not a Docker config", path.display());
    }
    Ok(Some(bytes))
}

fn backup_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".bak");
    target.with_file_name(name)
}

/// Backs up the old content, writes the new one atomically and keeps the
/// old file's mode (0600 for a new file: `auths` may hold passwords).
fn write(target: &Path, original: Option<&[u8]>, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let mode = std::fs::metadata(target).ok().map(|m| m.permissions());
    if let Some(old) = original {
        let backup = backup_path(target);
        crate::fsutil::write_atomic(&backup, old).context("cannot write the backup; nothing was changed")?;
    }
    crate::fsutil::write_atomic(target, contents)?;
    if let Some(perms) = mode {
        std::fs::set_permissions(target, perms)
            .with_context(|| format!("cannot restore the permissions of {}", target.display()))?;
    }
    Ok(())
}

/// A JSON object as an ordered list of keys and untouched raw values.
#[derive(Default)]
struct Document {
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
    serde_json::Value::String(s.to_owned()).to_string()
}

impl Document {
    fn parse(bytes: &[u8]) -> anyhow::Result<Document> {
        let text = std::str::from_utf8(bytes).context("it is not UTF-8 text")?;
        // Docker treats an empty file as an empty config.
        if text.trim().is_empty() {
            return Ok(Document::default());
        }
        let Ordered(entries) = serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "it is not a valid JSON object (line {}, column {}): {}",
                e.line(),
                e.column(),
                crate::store::describe_json_error(&e)
            )
        })?;
        for key in ["credHelpers", "credsStore"] {
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

    fn set_creds_store(&mut self) -> anyhow::Result<Option<String>> {
        let current = self.get("credsStore").map(|v| serde_json::from_str::<serde_json::Value>(v.get()));
        let current = match current {
            Some(Ok(serde_json::Value::String(s))) => Some(s),
            Some(_) => Some("(not a string)".to_owned()),
            None => None,
        };
        if current.as_deref() == Some(HELPER_NAME) {
            return Ok(None);
        }
        self.set("credsStore", raw(quoted(HELPER_NAME))?);
        Ok(Some(match current {
            Some(old) => format!("set \"credsStore\": \"{HELPER_NAME}\" (was {})", quoted(&old)),
            None => format!("set \"credsStore\": \"{HELPER_NAME}\""),
        }))
    }

    fn add_cred_helpers(&mut self, keys: &[String]) -> anyhow::Result<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut helpers = match self.get("credHelpers") {
            None => Vec::new(),
            Some(v) => match serde_json::from_str::<Ordered>(v.get()) {
                Ok(Ordered(entries)) => entries,
                Err(_) => bail!("its \"credHelpers\" is not a JSON object; fix it by hand"),
            },
        };
        let mut changes = Vec::new();
        for key in keys {
            let current = helpers
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| serde_json::from_str::<serde_json::Value>(v.get()).ok());
            match current {
                Some(Some(serde_json::Value::String(s))) if s == HELPER_NAME => continue,
                Some(old) => {
                    let old = old.map_or_else(|| "?".to_owned(), |v| v.to_string());
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
            let body: Vec<String> =
                helpers.iter().map(|(k, v)| format!("\t\t{}: {}", quoted(k), v.get())).collect();
            self.set("credHelpers", raw(format!("{{\n{}\n\t}}", body.join(",\n")))?);
        }
        Ok(changes)
    }

    /// Docker's own layout (`json.MarshalIndent` with a tab), so a file
    /// Docker wrote changes only where the helper changed it.
    fn render(&self, trailing_newline: bool) -> String {
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
}
