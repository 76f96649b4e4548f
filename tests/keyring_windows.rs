//! The store on Windows Credential Manager, through the real binary: what
//! `docker login`, `docker pull` and `docker logout` do to it, a login token
//! far over Credential Manager's 2560-byte blob limit (split across items
//! and joined on read), and that no file ever holds a secret (the
//! specification every OS keyring meets: `support::native_keyring::spec`,
//! plus what splitting adds here).
//!
//! Runs in CI on a Windows runner. What the helper wrote is read back here
//! through Credential Manager itself (`CredReadW`, by way of the same store
//! crate), independently of the helper's own reading.

#![cfg(windows)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use support::native_keyring::{Keyring, Session, native_keyring_spec};

/// The service every item of the helper is filed under.
const SERVICE: &str = "docker-credential-exchange";
/// `CRED_MAX_CREDENTIAL_BLOB_SIZE`.
const MAX_BLOB: usize = 2560;

/// The blob Credential Manager holds under the helper's item `name`
/// (target `name.docker-credential-exchange`), if any.
fn credential_blob(name: &str) -> Option<Vec<u8>> {
    let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new().expect("Credential Manager");
    let entry = Entry::new_in_store_with_modifiers(&store, SERVICE, name, &HashMap::new()).expect("an entry");
    match entry.get_secret() {
        Ok(bytes) => Some(bytes),
        Err(keyring_core::Error::NoEntry) => None,
        Err(e) => panic!("CredReadW of {name} failed: {e}"),
    }
}

/// The item names of the parts of a split secret, as the helper names them.
fn part(name: &str, i: usize) -> String {
    format!("{name}#part-{i}")
}

/// Credential Manager, read with `CredReadW`.
struct CredentialManager;

impl Keyring for CredentialManager {
    fn has_item(name: &str) -> bool {
        credential_blob(name).is_some()
    }

    /// Whole in one blob up to the limit; above it, a header item and
    /// parts of at most the limit that join to the secret.
    fn assert_holds(name: &str, secret: &str) {
        let head = credential_blob(name).unwrap_or_else(|| panic!("no credential for {name}"));
        if secret.len() <= MAX_BLOB {
            assert!(head == secret.as_bytes(), "the credential of {name} is not the secret");
            assert_eq!(credential_blob(&part(name, 0)), None, "a secret within the limit was split");
            return;
        }
        assert!(head.len() <= MAX_BLOB && head != secret.as_bytes(), "the first item is not a header");
        let mut joined = Vec::new();
        let mut parts = 0;
        while let Some(blob) = credential_blob(&part(name, parts)) {
            assert!(blob.len() <= MAX_BLOB, "part {parts} has {} bytes", blob.len());
            joined.extend_from_slice(&blob);
            parts += 1;
        }
        assert_eq!(parts, secret.len().div_ceil(MAX_BLOB));
        assert!(joined == secret.as_bytes(), "the parts do not join to the secret");
    }
}

native_keyring_spec!(CredentialManager);

#[test]
fn erasing_a_split_secret_removes_every_part() {
    let session = Session::new();
    let registry = session.registry("erase-long");
    session.store(&registry, "alice", &"e".repeat(16 * 1024)).quiet_success();
    session.sandbox.erase(&registry).quiet_success();
    assert!(credential_blob(&registry).is_none(), "the item itself (the parts' header) outlived erase");
    for i in 0..8 {
        assert_eq!(credential_blob(&part(&registry, i)), None, "part {i} outlived erase");
    }
}

#[test]
fn a_short_secret_after_a_long_one_leaves_no_parts() {
    let session = Session::new();
    let registry = session.registry("shrink");
    session.store(&registry, "alice", &"l".repeat(10_000)).quiet_success();
    session.store(&registry, "alice", "short-now").quiet_success();
    assert_eq!(credential_blob(&registry).as_deref(), Some(&b"short-now"[..]));
    for i in 0..4 {
        assert_eq!(credential_blob(&part(&registry, i)), None, "part {i} outlived the shrink");
    }
    assert_eq!(session.sandbox.get(&registry).quiet_success().secret(), "short-now");
}
