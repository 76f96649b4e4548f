//! What `configure-docker` replaced in a Docker config, kept so that
//! `configure-docker --remove` can put it back: the `credsStore` and
//! `credHelpers` values it overwrote, and the `auths` entries whose stored
//! credentials it moved into this helper's store.
//!
//! The record lives in the helper's data directory, one small JSON file
//! per Docker config (named by a hash of the config's path, which it also
//! holds), never inside Docker's config: Docker's CLI reads `config.json`
//! into a fixed struct and writes that struct back on every `docker login`
//! (docker/cli `cli/config/configfile/file.go`, `ConfigFile` and
//! `SaveToWriter`), so a key Docker does not know is lost at the next
//! save, and Docker Desktop and other tools rewrite the file as well.
//!
//! The record holds no secret: a moved credential stays in the store, and
//! `--remove` reads it back from there. A record is written before the
//! change it describes, so a change cut short leaves a record of more than
//! was done, never less; `--remove` checks the file's state before it
//! puts anything back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::deadline::Deadline;
use crate::fsutil;

/// Records are small; anything larger is not one.
const MAX_RECORD: u64 = 1024 * 1024;

/// What was replaced in one Docker config.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// The Docker config this is about.
    pub config: PathBuf,
    /// The `credsStore` helper that this helper replaced.
    #[serde(default, rename = "credsStore", skip_serializing_if = "Option::is_none")]
    pub creds_store: Option<String>,
    /// The `credHelpers` helpers that this helper replaced, by key.
    #[serde(default, rename = "credHelpers", skip_serializing_if = "BTreeMap::is_empty")]
    pub cred_helpers: BTreeMap<String, String>,
    /// Stored credentials moved from `auths` entries into the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<Moved>,
}

/// One `auths` entry whose credential was moved into the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Moved {
    /// The file the entry was in (Docker's config or an `auth.json`).
    pub file: PathBuf,
    /// The entry's key, as the file spelled it.
    pub key: String,
    /// The key the store files the credential under (its registry).
    pub registry: String,
    /// The username, to say what is put back.
    pub username: String,
    /// Whether `configure-docker` put it in the store (else the store held
    /// it already, and keeps it when it is put back).
    pub copied: bool,
}

impl Record {
    /// Whether there is nothing to put back.
    pub fn is_empty(&self) -> bool {
        self.creds_store.is_none() && self.cred_helpers.is_empty() && self.moved.is_empty()
    }

    /// Adds what a later run replaced: a newer replaced value wins (the
    /// older one was taken out by hand since, or this run would not have
    /// replaced anything), and an entry moved again is recorded once.
    pub fn merge(&mut self, newer: Record) {
        if newer.creds_store.is_some() {
            self.creds_store = newer.creds_store;
        }
        self.cred_helpers.extend(newer.cred_helpers);
        for moved in newer.moved {
            self.moved.retain(|m| (&m.file, &m.key) != (&moved.file, &moved.key));
            self.moved.push(moved);
        }
    }
}

/// Where the record for the Docker config `config` is kept.
///
/// # Errors
/// No data directory can be found.
fn record_path(config: &Path) -> anyhow::Result<PathBuf> {
    let digest = Sha256::digest(config.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(crate::paths::data_dir()?.join("configure-docker").join(format!("{name}.json")))
}

/// The record for `config`, or an empty one.
///
/// # Errors
/// The record exists but cannot be read, or is another config's.
pub(crate) fn load(config: &Path) -> anyhow::Result<Record> {
    let empty = || Record { config: config.to_owned(), ..Record::default() };
    // Without a data directory no record was ever kept.
    let Ok(path) = record_path(config) else { return Ok(empty()) };
    let bytes = fsutil::read_private(&path, MAX_RECORD)
        .with_context(|| format!("cannot read what configure-docker replaced in {}", config.display()))?;
    let Some(bytes) = bytes else { return Ok(empty()) };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} (what configure-docker replaced in {}) is not a record it wrote: {e}; move it away, then run \
             again",
            path.display(),
            config.display()
        )
    })?;
    if record.config != config {
        anyhow::bail!(
            "{} records {}, not {}; move it away, then run again",
            path.display(),
            record.config.display(),
            config.display()
        );
    }
    Ok(record)
}

/// The records of Docker configs that are no longer where they were
/// recorded (a `DOCKER_CONFIG` directory moved or renamed since): what
/// they hold can no longer be put back by `--remove`, which finds records
/// by path, so it is said instead. Unreadable records are skipped here;
/// `--remove` of their own config names them.
pub(crate) fn orphans() -> Vec<Record> {
    let Ok(dir) = crate::paths::data_dir().map(|d| d.join("configure-docker")) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut found: Vec<Record> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| fsutil::read_private(&e.path(), MAX_RECORD).ok()?)
        .filter_map(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .filter(|r| !r.is_empty() && !r.config.exists())
        .collect();
    found.sort_by(|a, b| a.config.cmp(&b.config));
    found
}

impl Record {
    /// What it would put back, in words: `credsStore "secretservice"`,
    /// `credHelpers "h": "gcloud"`, `the credentials of auths "h"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(store) = &self.creds_store {
            parts.push(format!("\"credsStore\": {store:?}"));
        }
        for (key, helper) in &self.cred_helpers {
            parts.push(format!("\"credHelpers\" {key:?}: {helper:?}"));
        }
        if !self.moved.is_empty() {
            let keys: Vec<String> = self.moved.iter().map(|m| format!("{:?}", m.key)).collect();
            parts.push(format!("the stored credentials of auths {}", keys.join(", ")));
        }
        parts.join(", ")
    }
}

/// Keeps `record` (removes it when it is empty).
///
/// # Errors
/// The data directory or the record cannot be written.
pub(crate) fn save(record: &Record, deadline: &Deadline) -> anyhow::Result<()> {
    let what = || format!("cannot keep what configure-docker replaced in {}", record.config.display());
    let path = match record_path(&record.config) {
        Ok(path) => path,
        Err(_) if record.is_empty() => return Ok(()),
        Err(e) => return Err(e).with_context(what),
    };
    if record.is_empty() {
        return fsutil::remove_if_exists(&path).with_context(what);
    }
    if let Some(dir) = path.parent() {
        fsutil::ensure_private_dir(dir).with_context(what)?;
    }
    let mut json = serde_json::to_vec_pretty(record).context("internal error: the record is not JSON")?;
    json.push(b'\n');
    fsutil::write_atomic(&path, &json, deadline).with_context(what)
}

/// The canonical name of a Docker config, under which its record is kept:
/// the same file reached through `DOCKER_CONFIG=~/.docker` or a symlinked
/// directory has one record.
pub(crate) fn config_name(path: &Path) -> PathBuf {
    match (path.parent().and_then(|d| std::fs::canonicalize(d).ok()), path.file_name()) {
        (Some(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// `path` as people write it: Windows' `canonicalize` answers the verbatim
/// form (`\\?\C:\…`, `\\?\UNC\server\…`), which is exact but not what a
/// user typed or would recognise in a message.
pub(crate) fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    if let Some(unc) = text.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{unc}")
    } else if let Some(local) = text.strip_prefix(r"\\?\").filter(|rest| rest.get(1..2) == Some(":")) {
        local.to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verbatim_windows_path_is_shown_as_people_write_it() {
        assert_eq!(
            shown(Path::new(r"\\?\C:\Users\a\.docker\config.json")),
            r"C:\Users\a\.docker\config.json"
        );
        assert_eq!(shown(Path::new(r"\\?\UNC\srv\share\config.json")), r"\\srv\share\config.json");
        assert_eq!(shown(Path::new(r"\\?\Volume{x}\config.json")), r"\\?\Volume{x}\config.json");
        assert_eq!(shown(Path::new("/home/a/.docker/config.json")), "/home/a/.docker/config.json");
    }

    fn moved(key: &str, copied: bool) -> Moved {
        Moved {
            file: "/h/.docker/config.json".into(),
            key: key.into(),
            registry: "r.example".into(),
            username: "u".into(),
            copied,
        }
    }

    #[test]
    fn a_newer_replaced_value_wins_and_an_entry_moved_again_is_kept_once() {
        let mut record = Record {
            config: "/h/.docker/config.json".into(),
            creds_store: Some("secretservice".into()),
            cred_helpers: BTreeMap::from([("a".into(), "gcloud".into())]),
            moved: vec![moved("r.example", true)],
        };
        record.merge(Record {
            config: record.config.clone(),
            creds_store: None,
            cred_helpers: BTreeMap::from([("b".into(), "ecr-login".into())]),
            moved: vec![moved("r.example", false)],
        });
        assert_eq!(record.creds_store.as_deref(), Some("secretservice"));
        assert_eq!(record.cred_helpers.len(), 2);
        assert_eq!(record.moved, [moved("r.example", false)]);
        record.merge(Record { creds_store: Some("pass".into()), ..Record::default() });
        assert_eq!(record.creds_store.as_deref(), Some("pass"));
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            config: "/h/.docker/config.json".into(),
            creds_store: Some("desktop".into()),
            cred_helpers: BTreeMap::new(),
            moved: vec![moved("quay.io/team", true)],
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"credsStore\":\"desktop\""), "{json}");
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), record);
    }
}
