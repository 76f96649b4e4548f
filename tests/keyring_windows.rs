//! The store on Windows Credential Manager, through the real binary: what
//! `docker login`, `docker pull` and `docker logout` do to it, a login token
//! far over Credential Manager's 2560-byte blob limit (split across items
//! and joined on read), and that no file ever holds a secret.
//!
//! Runs in CI on a Windows runner. What the helper wrote is read back here
//! through Credential Manager itself (`CredReadW`, by way of the same store
//! crate), independently of the helper's own reading.

#![cfg(windows)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use serde_json::json;
use support::native_keyring::Session;
use support::sts::{Sts, StsOptions};

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

#[test]
fn stored_secret_is_a_credential_and_in_no_file() {
    let session = Session::new();
    let registry = session.registry("plain");
    let secret = "credman-only-secret-4f1b9c";
    session.store(&registry, "alice", secret).quiet_success();
    assert_eq!(credential_blob(&registry).as_deref(), Some(secret.as_bytes()));
    assert_eq!(session.sandbox.files_containing(secret), Vec::<std::path::PathBuf>::new());
}

#[test]
fn get_reads_the_secret_back_from_credential_manager() {
    let session = Session::new();
    let registry = session.registry("get");
    session.store(&registry, "alice", "pw-from-credman").quiet_success();
    let out = session.sandbox.get(&format!("https://{registry}/")).quiet_success();
    assert_eq!(out.json()["Username"], "alice");
    assert_eq!(out.secret(), "pw-from-credman");
}

#[test]
fn storing_again_replaces_the_credential() {
    let session = Session::new();
    let registry = session.registry("replace");
    session.store(&registry, "alice", "first-password").quiet_success();
    session.store(&registry, "bob", "second-password").quiet_success();
    let out = session.sandbox.get(&registry).quiet_success();
    assert_eq!(out.json()["Username"], "bob");
    assert_eq!(out.secret(), "second-password");
}

#[test]
fn erase_removes_the_credential() {
    let session = Session::new();
    let registry = session.registry("erase");
    session.store(&registry, "alice", "to-be-erased").quiet_success();
    session.sandbox.erase(&registry).quiet_success();
    assert_eq!(credential_blob(&registry), None);
    session.sandbox.get(&registry).protocol_error("credentials not found in native keychain");
}

#[test]
fn erasing_a_registry_never_stored_succeeds() {
    // CredDeleteW answers ERROR_NOT_FOUND, which must not fail `docker logout`.
    let session = Session::new();
    let registry = session.registry("never");
    session.sandbox.erase(&registry).quiet_success();
}

#[test]
fn get_of_a_registry_never_stored_is_not_found() {
    let session = Session::new();
    let registry = session.registry("missing");
    session.sandbox.get(&registry).protocol_error("credentials not found in native keychain");
}

#[test]
fn list_comes_from_the_index_without_secrets() {
    let session = Session::new();
    let a = session.registry("list-a");
    let b = session.registry("list-b");
    session.store(&a, "alice", "secret-a").quiet_success();
    session.store(&format!("https://{b}/"), "bob", "secret-b").quiet_success();
    let out = session.sandbox.list().quiet_success();
    assert_eq!(out.json(), json!({ a.clone(): "alice", format!("https://{b}/"): "bob" }));
    assert!(session.sandbox.files_containing("secret-").is_empty());
}

#[test]
fn sixteen_kib_secret_is_split_into_items_within_the_blob_limit() {
    let session = Session::new();
    let registry = session.registry("long");
    let long: String = (0..16 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    session.store(&registry, "alice", &long).quiet_success();

    let head = credential_blob(&registry).expect("the header item");
    assert!(head.len() <= MAX_BLOB && head != long.as_bytes(), "the first item is not a header");
    let mut joined = Vec::new();
    let mut parts = 0;
    while let Some(blob) = credential_blob(&part(&registry, parts)) {
        assert!(blob.len() <= MAX_BLOB, "part {parts} has {} bytes", blob.len());
        joined.extend_from_slice(&blob);
        parts += 1;
    }
    assert_eq!(parts, (16 * 1024usize).div_ceil(MAX_BLOB));
    assert!(joined == long.as_bytes(), "the parts do not join to the secret");
    assert!(session.sandbox.get(&registry).quiet_success().secret() == long, "get did not join the parts");
}

#[test]
fn erasing_a_split_secret_removes_every_part() {
    let session = Session::new();
    let registry = session.registry("erase-long");
    session.store(&registry, "alice", &"e".repeat(16 * 1024)).quiet_success();
    session.sandbox.erase(&registry).quiet_success();
    assert_eq!(credential_blob(&registry), None);
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

#[test]
fn sixteen_kib_login_token_is_split_joined_and_sent_whole() {
    let session = Session::new();
    let registry = session.registry("login");
    let sts = Sts::start(StsOptions::default());
    session.sandbox.write_exchange_config(&registry, &sts.url(), json!({}));
    let token = sts.mint_subject_token(&"s".repeat(12 * 1024), 3600);
    assert!(token.len() > 16 * 1024, "{}", token.len());

    session.sandbox.cmd(&["login", &registry, "--token-stdin"]).stdin(&token).run().success();
    assert!(credential_blob(&part(&registry, 0)).is_some(), "a login token over 2560 bytes was not split");
    // Without the cache this `get` must join the login token from
    // Credential Manager and exchange it.
    session
        .sandbox
        .cmd(&["get"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1")
        .stdin(&registry)
        .run()
        .quiet_success();
    let request = sts.last_request().expect("an exchange");
    assert!(request.form_value("subject_token") == Some(token.as_str()), "the STS got a different token");
    assert!(session.sandbox.files_containing(&token).is_empty(), "the login token is in a file");
}
