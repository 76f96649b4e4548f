//! The store on macOS's own login Keychain, through the real binary: what
//! `docker login`, `docker pull` and `docker logout` do to it, a login token
//! far longer than a password, and that no file ever holds a secret.
//!
//! Runs in CI on a macOS runner, whose login keychain is unlocked. The
//! presence of an item is checked with `security find-generic-password`
//! without `-g`/`-w`: reading only attributes needs no access to the
//! secret, so no program other than the helper ever asks the Keychain for
//! one (which would raise an access prompt).

#![cfg(target_os = "macos")]

mod support;

use std::process::Command;

use serde_json::json;
use support::native_keyring::Session;
use support::sts::{Sts, StsOptions};

/// The service every item of the helper is filed under.
const SERVICE: &str = "docker-credential-exchange";
/// `security`'s exit status for errSecItemNotFound.
const NOT_FOUND: i32 = 44;

/// Whether the login keychain search list holds a generic password for
/// `account` under the helper's service.
fn keychain_has(account: &str) -> bool {
    let out = Command::new("/usr/bin/security")
        .args(["find-generic-password", "-s", SERVICE, "-a", account])
        .output()
        .expect("run /usr/bin/security");
    match out.status.code() {
        Some(0) => true,
        Some(NOT_FOUND) => false,
        other => panic!(
            "security find-generic-password failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn stored_secret_is_a_keychain_item_and_in_no_file() {
    let session = Session::new();
    let registry = session.registry("plain");
    let secret = "keychain-only-secret-4f1b9c";
    session.store(&registry, "alice", secret).quiet_success();
    assert!(keychain_has(&registry), "no Keychain item for {registry}");
    assert_eq!(session.sandbox.files_containing(secret), Vec::<std::path::PathBuf>::new());
}

#[test]
fn get_reads_the_secret_back_from_the_keychain() {
    let session = Session::new();
    let registry = session.registry("get");
    session.store(&registry, "alice", "pw-from-keychain").quiet_success();
    let out = session.sandbox.get(&format!("https://{registry}/")).quiet_success();
    assert_eq!(out.json()["Username"], "alice");
    assert_eq!(out.secret(), "pw-from-keychain");
}

#[test]
fn storing_again_replaces_the_keychain_item() {
    let session = Session::new();
    let registry = session.registry("replace");
    session.store(&registry, "alice", "first-password").quiet_success();
    session.store(&registry, "bob", "second-password").quiet_success();
    let out = session.sandbox.get(&registry).quiet_success();
    assert_eq!(out.json()["Username"], "bob");
    assert_eq!(out.secret(), "second-password");
}

#[test]
fn erase_removes_the_keychain_item() {
    let session = Session::new();
    let registry = session.registry("erase");
    session.store(&registry, "alice", "to-be-erased").quiet_success();
    session.sandbox.erase(&registry).quiet_success();
    assert!(!keychain_has(&registry), "the Keychain item outlived erase");
    session.sandbox.get(&registry).protocol_error("credentials not found in native keychain");
}

#[test]
fn erasing_a_registry_never_stored_succeeds() {
    // The Keychain answers errSecItemNotFound, which must not fail `docker logout`.
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
fn sixteen_kib_secret_is_one_keychain_item() {
    let session = Session::new();
    let registry = session.registry("long");
    let long = "k".repeat(16 * 1024);
    session.store(&registry, "alice", &long).quiet_success();
    assert_eq!(session.sandbox.get(&registry).quiet_success().secret(), long);
    // Only Windows splits secrets; here the item holds all of it.
    assert!(keychain_has(&registry));
    assert!(!keychain_has(&format!("{registry}#part-0")), "split on a keyring without a size limit");
}

#[test]
fn sixteen_kib_login_token_is_kept_in_the_keychain_and_sent_whole() {
    let session = Session::new();
    let registry = session.registry("login");
    let sts = Sts::start(StsOptions::default());
    session.sandbox.write_exchange_config(&registry, &sts.url(), json!({}));
    let token = sts.mint_subject_token(&"s".repeat(12 * 1024), 3600);
    assert!(token.len() > 16 * 1024, "{}", token.len());

    session.sandbox.cmd(&["login", &registry, "--token-stdin"]).stdin(&token).run().success();
    // Without the cache this `get` must read the login token back from the
    // Keychain and exchange it.
    session
        .sandbox
        .cmd(&["get"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1")
        .stdin(&registry)
        .run()
        .quiet_success();
    let request = sts.last_request().expect("an exchange");
    assert!(request.form_value("subject_token") == Some(token.as_str()), "the STS got a different token");
    assert!(keychain_has(&registry));
    assert!(session.sandbox.files_containing(&token).is_empty(), "the login token is in a file");
}
