//! What the helper knows about its clients' configs, in one place: where
//! Docker's `config.json` and containers' `auth.json` are, how Docker routes
//! a registry to a helper (`credHelpers`, `credsStore`), which `auths`
//! entries shadow a helper (a stored `auth` wins over it), how to edit
//! the file without disturbing anything else in it, and what such an edit
//! replaced, kept so that it can be put back ([`record`]).
//!
//! Docker's config holds other people's settings (proxies, plugins, keys
//! this helper has never heard of), so edits are surgical: the top-level
//! object is read as an ordered list of keys and raw values, only the keys
//! being changed are rewritten, and every other value is written back byte
//! for byte, in its place. Every change keeps the previous file as a
//! timestamped backup.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::server_url::{DOCKER_HUB, DOCKER_HUB_LEGACY_URL};

mod auths;
mod file;
mod held;
pub(crate) mod record;
mod routing;

pub(crate) use auths::{Credential, StoredAuth};
pub(crate) use file::ConfigFile;
pub(crate) use held::{already_held, check_stored, difference};

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
    fn a_top_level_array_is_refused() {
        assert!(Document::parse(b"[]").is_err());
    }

    #[test]
    fn docker_hub_is_configured_under_both_names() {
        assert_eq!(helper_keys("docker.io"), ["https://index.docker.io/v1/", "docker.io"]);
        assert_eq!(helper_keys("r.example:5000"), ["r.example:5000"]);
    }
}
