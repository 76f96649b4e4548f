use super::*;
use crate::secret::Secret;

fn token(key: &CacheKey, now: i64, lifetime: i64, fp: Option<&str>) -> CachedToken {
    let id = Identity { key, registry: "r.example", request: "r.example", username: "u" };
    id.entry(
        Secret::new("tok".into()),
        None,
        Schedule::new(now, Some(lifetime), None, 60, 60),
        fp.map(str::to_owned),
    )
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

fn cache(dir: &tempfile::TempDir) -> Cache {
    Cache::new(dir.path().to_owned(), true)
}

/// Dates `path` `epoch` seconds after 1970, closing the file again: on
/// Windows a file still open here would outlive its removal as "delete
/// pending" (wherever POSIX delete semantics are not in force), and the
/// pruning tests would see it still exist.
fn set_modified(path: &std::path::Path, epoch: i64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(epoch_time(epoch).unwrap()).unwrap();
}

#[test]
fn keys_differ_by_every_shaping_field() {
    assert_ne!(CacheKey::new(&KeyFields::example(Some("a"))), CacheKey::new(&KeyFields::example(Some("b"))));
    assert_eq!(CacheKey::new(&KeyFields::example(Some("a"))), CacheKey::new(&KeyFields::example(Some("a"))));
    let with_username = KeyFields { username: Some("robot"), ..KeyFields::example(None) };
    assert_ne!(CacheKey::new(&with_username), CacheKey::new(&KeyFields::example(None)));
}

#[test]
fn store_then_lookup_is_fresh_then_stale_then_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("c"), true);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Fresh(_)));
    assert!(matches!(cache.lookup(&key, None, 4550), Lookup::Stale(_)));
    assert!(matches!(cache.lookup(&key, None, 4600), Lookup::Miss));
}

#[test]
fn an_entry_written_under_a_clock_a_day_ahead_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000 + 86_400, 3600, None), &soon()).unwrap();
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
}

#[test]
fn another_subject_fingerprint_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, Some("aaa")), &soon()).unwrap();
    assert!(matches!(cache.lookup(&key, Some("bbb"), 1000), Lookup::Miss));
    assert!(matches!(cache.lookup(&key, Some("aaa"), 1000), Lookup::Fresh(_)));
}

#[test]
fn corrupt_and_truncated_files_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    let path = cache.entry_path(&key);
    let full = std::fs::read(&path).unwrap();
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
    std::fs::write(&path, b"\x00\xff garbage").unwrap();
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
}

#[test]
fn entry_copied_under_another_key_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let a = CacheKey::new(&KeyFields::example(Some("a")));
    let b = CacheKey::new(&KeyFields::example(Some("b")));
    cache.store(&a, &token(&a, 1000, 3600, None), &soon()).unwrap();
    std::fs::copy(cache.entry_path(&a), cache.entry_path(&b)).unwrap();
    assert!(matches!(cache.lookup(&b, None, 1000), Lookup::Miss));
}

#[test]
fn writing_prunes_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let old = CacheKey::new(&KeyFields::example(Some("old")));
    cache.store(&old, &token(&old, 1000, 10, None), &soon()).unwrap();
    let new = CacheKey::new(&KeyFields::example(Some("new")));
    cache.store(&new, &token(&new, 5000, 3600, None), &soon()).unwrap();
    assert!(!cache.entry_path(&old).exists());
    assert!(cache.entry_path(&new).exists());
}

#[test]
fn pruning_passes_over_entries_dated_ahead_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let live = CacheKey::new(&KeyFields::example(Some("live")));
    cache.store(&live, &token(&live, 1000, 3600, None), &soon()).unwrap();
    // Unreadable content would be pruned if read; the date (its expiry,
    // 4600) says it is live at 2000, so it is not even opened.
    let path = cache.entry_path(&live);
    std::fs::write(&path, b"not an entry").unwrap();
    set_modified(&path, 4600);
    cache.prune(2000, None);
    assert!(path.exists());
    // Past its date it is read, found invalid and removed.
    cache.prune(4600, None);
    assert!(!path.exists());
}

#[test]
fn an_entry_dated_beyond_any_tokens_life_is_read_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 10, None), &soon()).unwrap();
    // Expired since 1010, but dated two days ahead of 2000.
    let path = cache.entry_path(&key);
    set_modified(&path, 2000 + 2 * 86_400);
    cache.prune(2000, None);
    assert!(!path.exists());
}

#[test]
fn an_entry_from_the_future_is_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    // Written while the clock was days ahead; it is right again.
    cache.store(&key, &token(&key, 900_000, 3600, None), &soon()).unwrap();
    let path = cache.entry_path(&key);
    cache.prune(2000, None);
    assert!(!path.exists());
}

#[test]
fn an_entry_is_dated_by_its_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    let date = std::fs::metadata(cache.entry_path(&key)).unwrap().modified().unwrap();
    assert_eq!(date, epoch_time(4600).unwrap());
}

#[test]
fn pruning_and_clearing_leave_the_users_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let theirs = ["package.json", "notes.lock", "data.json", ".hidden.json"];
    for name in theirs {
        std::fs::write(dir.path().join(name), b"{}").unwrap();
    }
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 10, None), &soon()).unwrap();
    cache.prune(1_000_000, None);
    assert_eq!(cache.clear(), 0);
    for name in theirs {
        assert!(dir.path().join(name).exists(), "{name} was removed");
    }
}

#[test]
fn drop_registry_removes_only_that_registrys_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(&dir);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    assert_eq!(cache.drop_registry("other.example"), 0);
    assert_eq!(cache.drop_registry("r.example"), 1);
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
}

#[test]
fn a_disabled_cache_stores_and_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("c"), false);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
    assert!(!dir.path().join("c").exists());
}

#[cfg(unix)]
#[test]
fn cache_files_and_the_dir_it_creates_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("c"), true);
    let key = CacheKey::new(&KeyFields::example(None));
    cache.store(&key, &token(&key, 1000, 3600, None), &soon()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(cache.dir()), 0o700);
    assert_eq!(mode(&cache.entry_path(&key)), 0o600);
}

#[test]
fn debug_of_an_entry_shows_no_token() {
    let key = CacheKey::new(&KeyFields::example(None));
    assert!(!format!("{:?}", token(&key, 1, 10, None)).contains("\"tok\""));
}
