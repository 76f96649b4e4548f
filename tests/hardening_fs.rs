//! Filesystem attacks on the files the helper keeps (DESIGN.md sections 3
//! and 4): a symbolic link planted as a cache, store, index or lock file, a
//! cache directory that is someone else's or world-writable, a cache file
//! that is not what it claims to be. Each is refused or repaired with a
//! clear message, and a link is never followed: its target stays unchanged.
#![cfg(unix)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::json;
use support::cmd::Sandbox;
use support::sts::{Sts, StsOptions};

const REGISTRY: &str = "registry.example.com";
const PLAIN: &str = "plain.example.com";
const VICTIM: &[u8] = b"precious content that must never change\n";

/// An exchange registry with a stored login token, and the STS behind it.
fn exchange_setup() -> (Sandbox, Sts) {
    let sts = Sts::start(StsOptions::default());
    let sandbox = Sandbox::new();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    (sandbox, sts)
}

/// A file outside the helper's directories that an attacker wants changed.
fn victim(sandbox: &Sandbox) -> PathBuf {
    let path = sandbox.root().join("victim");
    std::fs::write(&path, VICTIM).unwrap();
    path
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // A writer's temporary file ends in TMP_SUFFIX, never in `suffix`.
        .filter(|p| p.file_name().unwrap().to_str().unwrap().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// The one cache entry of the sandbox, made by a first `get`.
fn cache_entry(sandbox: &Sandbox) -> PathBuf {
    sandbox.get(REGISTRY).quiet_success();
    let entries = files_with_suffix(&sandbox.cache_dir(), ".json");
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).unwrap().file_type().is_symlink()
}

#[test]
fn symlink_planted_as_cache_entry_is_not_followed_and_is_replaced() {
    let (sandbox, sts) = exchange_setup();
    let entry = cache_entry(&sandbox);
    // The link points at a copy of a valid entry: following it would be a hit.
    let target = sandbox.root().join("planted.json");
    std::fs::copy(&entry, &target).unwrap();
    let before = std::fs::read(&target).unwrap();
    std::fs::remove_file(&entry).unwrap();
    symlink(&target, &entry).unwrap();
    let requests = sts.requests();

    let out = sandbox.get(REGISTRY).success();

    assert!(out.stderr.contains("symbolic link"), "expected a warning naming the link: {out:?}");
    assert_eq!(sts.requests(), requests + 1, "the linked entry must be a miss");
    assert_eq!(std::fs::read(&target).unwrap(), before, "the link's target changed");
    assert!(!is_symlink(&entry), "the link should be replaced by a real entry");
}

#[test]
fn symlink_planted_as_cache_lock_is_removed_and_its_target_untouched() {
    let (sandbox, _sts) = exchange_setup();
    let entry = cache_entry(&sandbox);
    let lock = entry.with_extension("lock");
    let target = victim(&sandbox);
    let _ = std::fs::remove_file(&lock);
    symlink(&target, &lock).unwrap();
    std::fs::remove_file(&entry).unwrap();

    let out = sandbox.get(REGISTRY).success();

    assert!(out.stderr.contains("symbolic link"), "{out:?}");
    assert_eq!(std::fs::read(&target).unwrap(), VICTIM, "the lock opened through the link");
    assert!(!is_symlink(&lock));
}

#[test]
fn symlink_planted_as_store_file_is_refused_and_its_target_untouched() {
    let sandbox = Sandbox::new();
    sandbox.store(PLAIN, "bob", "first-password").quiet_success();
    let file = sandbox.data_dir().join("credentials.json");
    let target = victim(&sandbox);
    std::fs::remove_file(&file).unwrap();
    symlink(&target, &file).unwrap();

    let list = sandbox.list().failure();
    let store = sandbox.store(PLAIN, "bob", "second-password").failure();
    let get = sandbox.get(PLAIN).failure();

    for out in [&list, &store, &get] {
        assert!(out.stdout.contains("symbolic link"), "expected a clear refusal: {out:?}");
        assert!(out.stdout.contains("credentials.json"), "the message should name the file: {out:?}");
    }
    assert_eq!(std::fs::read(&target).unwrap(), VICTIM);
    assert!(is_symlink(&file), "a store file is the user's data: refused, not replaced");
}

#[test]
fn symlink_planted_as_store_lock_is_replaced_and_its_target_untouched() {
    let sandbox = Sandbox::new();
    sandbox.store(PLAIN, "bob", "first-password").quiet_success();
    let lock = sandbox.data_dir().join("credentials.json.lock");
    let target = victim(&sandbox);
    let _ = std::fs::remove_file(&lock);
    symlink(&target, &lock).unwrap();

    let out = sandbox.store(PLAIN, "bob", "second-password").success();

    assert!(out.stderr.contains("symbolic link") && out.stderr.contains(".lock"), "{out:?}");
    assert_eq!(std::fs::read(&target).unwrap(), VICTIM, "the lock was truncated or written through");
    assert!(!std::fs::symlink_metadata(&lock).unwrap().file_type().is_symlink());
    assert_eq!(sandbox.get(PLAIN).success().secret(), "second-password");
}

#[test]
fn symlink_planted_as_keyring_index_is_refused_and_its_target_untouched() {
    // `list` on the keyring store reads only the index, so no keyring is
    // needed to reach it.
    let mut sandbox = Sandbox::new();
    sandbox.use_keyring(&[]);
    std::fs::create_dir_all(sandbox.data_dir()).unwrap();
    let target = victim(&sandbox);
    symlink(&target, sandbox.data_dir().join("index.json")).unwrap();

    let out = sandbox.list().failure();

    assert!(out.stdout.contains("symbolic link") && out.stdout.contains("index.json"), "{out:?}");
    assert_eq!(std::fs::read(&target).unwrap(), VICTIM);
}

#[test]
fn a_cache_dir_the_user_made_keeps_its_mode_and_tokens_stay_private() {
    let (sandbox, _sts) = exchange_setup();
    let entry = cache_entry(&sandbox);
    std::fs::remove_file(&entry).unwrap();
    std::fs::set_permissions(sandbox.cache_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();

    sandbox.get(REGISTRY).quiet_success();

    let mode = std::fs::metadata(sandbox.cache_dir()).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o777, "a directory the helper did not create was re-moded");
    let entry = cache_entry(&sandbox);
    assert_eq!(std::fs::metadata(&entry).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn cache_dir_owned_by_another_user_is_not_written_and_named_in_a_warning() {
    if !support::skip::require_root("to chown to another user") {
        return;
    }
    let (sandbox, sts) = exchange_setup();
    let cache = sandbox.cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).unwrap();
    let before = sandbox.snapshot();

    let first = sandbox.get(REGISTRY).success();
    let second = sandbox.get(REGISTRY).success();

    assert!(first.stderr.contains("owned by uid 65534"), "expected a clear warning: {first:?}");
    assert_eq!(sandbox.snapshot(), before, "wrote into a foreign directory");
    assert_eq!(sts.requests(), 2, "without a usable cache every get exchanges: {second:?}");
}

#[test]
fn cache_entry_owned_by_another_user_is_a_miss_and_is_replaced() {
    if !support::skip::require_root("to chown to another user") {
        return;
    }
    let (sandbox, sts) = exchange_setup();
    let entry = cache_entry(&sandbox);
    std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();

    let out = sandbox.get(REGISTRY).success();

    assert!(out.stderr.contains("owned by uid 65534"), "{out:?}");
    assert_eq!(sts.requests(), 2);
    assert_eq!(std::fs::metadata(&entry).unwrap().uid(), 0, "the entry should be rewritten as ours");
}

#[test]
fn cache_entry_swapped_for_another_keys_entry_is_a_miss() {
    // A file moved under another entry's name (the swap a writer to the
    // directory could make) names its own key inside, so it is never used.
    let (sandbox, sts) = exchange_setup();
    let team = format!("{REGISTRY}/team/app");
    let host_entry = cache_entry(&sandbox);
    sandbox.get(&team).quiet_success();
    let repo_entry = files_with_suffix(&sandbox.cache_dir(), ".json")
        .into_iter()
        .find(|p| *p != host_entry)
        .expect("a second entry for the repository");
    std::fs::copy(&repo_entry, &host_entry).unwrap();
    let requests = sts.requests();

    let out = sandbox.get(REGISTRY).success();

    assert_eq!(sts.requests(), requests + 1, "a swapped entry must be a miss: {out:?}");
    assert!(out.stderr.contains("another key"), "{out:?}");
}

#[test]
fn fifo_planted_as_cache_entry_is_a_miss_not_a_hang() {
    let (sandbox, sts) = exchange_setup();
    let entry = cache_entry(&sandbox);
    std::fs::remove_file(&entry).unwrap();
    let c = std::ffi::CString::new(entry.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    let out = sandbox.get(REGISTRY).success();

    assert!(out.stderr.contains("not a regular file"), "{out:?}");
    assert_eq!(sts.requests(), 2);
}
