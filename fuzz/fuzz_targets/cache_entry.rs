//! Cache files as the helper finds them on disk: whatever bytes are there
//! (corrupt, truncated, foreign, hand-edited) are a miss or an entry, never
//! a panic. `KEY` in the input is replaced by the real file stem so the
//! fuzzer can reach the checks behind the key comparison.
#![no_main]

use std::sync::OnceLock;

use docker_credential_exchange::for_tests::cache::{Cache, CacheKey, CachedToken, KeyFields, Lookup};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    cache: Cache,
    key: CacheKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache_dir = dir.path().join("cache");
        std::fs::create_dir(&cache_dir).expect("cache dir");
        let key = CacheKey::new(&KeyFields {
            registry_key: "registry.example.com",
            repository: None,
            endpoint: "https://sts.example.com/token",
            subject_source: "keyring",
            subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
            audience: &[],
            resource: &[],
            scope: None,
            requested_token_type: None,
            client_id: None,
            username: None,
            subject: None,
            actor: None,
        });
        Fixture { _dir: dir, cache: Cache::new(cache_dir, true), key }
    })
}

fuzz_target!(|data: &[u8]| {
    // Each input's secrets would otherwise pile up in the redaction list.
    docker_credential_exchange::for_tests::redact::forget_all();
    // Plain deserialization first.
    if let Ok(entry) = serde_json::from_slice::<CachedToken>(data) {
        let _ = format!("{entry:?}");
    }
    let f = fixture();
    let bytes = substitute(data, b"KEY", f.key.as_str().as_bytes());
    let path = f.cache.dir().join(format!("{}.json", f.key.as_str()));
    std::fs::write(&path, &bytes).expect("write cache file");
    for now in [0, 1_700_000_000, i64::MAX, i64::MIN] {
        for subject in [None, Some("abc")] {
            match f.cache.lookup(&f.key, subject, now) {
                Lookup::Fresh(e) => assert!(e.obtained_at <= now && now < e.refresh_at),
                Lookup::Stale(e) => assert!(e.refresh_at <= now && now < e.expires_at),
                Lookup::Miss => {}
            }
        }
    }
    let _ = f.cache.entries();
    f.cache.prune(1_700_000_000, None);
});

fn substitute(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}
