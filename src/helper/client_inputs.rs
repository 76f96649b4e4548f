//! What an exchange depends on that its cache key does not name: the
//! client secret, the client key and certificate, and the extra trust
//! roots (`ca_file`). A failure remembered for a few seconds records a
//! fingerprint of them and is answered only while they are unchanged, so
//! that a fix (a corrected CI variable, a rotated key file, the right CA)
//! shows at the next `get`, not after the window; and a CI job sharing a
//! HOME with another is never answered the other's `invalid_client`.
//!
//! Only what is cheap and has no side effect is read for it: environment
//! variables and files. A `command` source is not run (it may be slow, or
//! ask someone); a change there is met when the window ends. The
//! fingerprint is salted with the cache key and cut to 64 bits: it tells
//! two values apart, and says little about either.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{RegistryConfig, SourceSpec};

/// Files read for the fingerprint are small (secrets, keys, PEM bundles).
const MAX_BYTES: u64 = 1024 * 1024;

/// The fingerprint of `reg`'s client inputs for the exchange `salt` (its
/// cache key); `None` when the entry has none that can be read this way.
pub(super) fn fingerprint(reg: &RegistryConfig, salt: &str) -> Option<String> {
    let mut hash = Sha256::new();
    hash.update(salt.as_bytes());
    let mut any = false;
    let mut add = |label: &str, value: Read| {
        any = true;
        let (tag, bytes): (&[u8], &[u8]) = match &value {
            Read::Absent => (b"absent", &[]),
            Read::Unreadable => (b"unreadable", &[]),
            Read::Bytes(b) => (b"bytes", b),
        };
        for part in [label.as_bytes(), tag, bytes] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
    };
    for (label, spec) in [("client_secret", &reg.client_secret), ("client_key", &reg.client_key)] {
        match spec {
            Some(SourceSpec::Env { var }) => add(label, from_env(var)),
            Some(SourceSpec::File { path }) => add(label, from_file(path)),
            _ => {}
        }
    }
    for (label, path) in [("client_certificate", &reg.client_certificate), ("ca_file", &reg.ca_file)] {
        if let Some(path) = path {
            add(label, from_file(path));
        }
    }
    any.then(|| crate::secret::hex(&hash.finalize()[..8]))
}

/// One input as read.
enum Read {
    Absent,
    Unreadable,
    Bytes(Zeroizing<Vec<u8>>),
}

fn from_env(var: &str) -> Read {
    match std::env::var_os(var) {
        Some(value) => Read::Bytes(Zeroizing::new(value.to_string_lossy().as_bytes().to_vec())),
        None => Read::Absent,
    }
}

fn from_file(path: &std::path::Path) -> Read {
    match crate::fsutil::read_regular_file(path, MAX_BYTES) {
        Ok(Some(bytes)) => Read::Bytes(Zeroizing::new(bytes)),
        Ok(None) => Read::Absent,
        Err(_) => Read::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn entry(dir: &Path, fields: &str) -> RegistryConfig {
        let json = format!(
            "{{\"registries\": {{\"r.example\": {{\"token_endpoint\": \"https://sts.example/token\", {fields}}}}}}}"
        );
        let config = Config::parse(&dir.join("config.json"), json.into_bytes()).unwrap();
        config.registry(config.ids().next().unwrap()).unwrap().clone()
    }

    #[test]
    fn an_entry_without_client_inputs_has_no_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(fingerprint(&entry(dir.path(), r#""client_id": "docker""#), "k"), None);
    }

    #[test]
    fn a_changed_client_secret_file_changes_the_fingerprint_and_the_same_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let reg = entry(
            dir.path(),
            r#""client_id": "docker", "client_secret": {"source": "file", "path": "secret"}"#,
        );
        let absent = fingerprint(&reg, "k").unwrap();
        std::fs::write(dir.path().join("secret"), "wrong").unwrap();
        let wrong = fingerprint(&reg, "k").unwrap();
        std::fs::write(dir.path().join("secret"), "right").unwrap();
        let right = fingerprint(&reg, "k").unwrap();
        assert_ne!(absent, wrong);
        assert_ne!(wrong, right);
        assert_eq!(fingerprint(&reg, "k").unwrap(), right);
        assert_ne!(fingerprint(&reg, "another key").unwrap(), right, "salted with the cache key");
        assert_eq!(right.len(), 16);
    }

    #[cfg(unix)]
    #[test]
    fn a_command_source_is_not_run_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let reg = entry(
            dir.path(),
            &format!(
                r#""client_id": "docker", "client_secret": {{"source": "command", "argv": ["touch", "{}"]}}"#,
                marker.display()
            ),
        );
        assert_eq!(fingerprint(&reg, "k"), None);
        assert!(!marker.exists());
    }
}
