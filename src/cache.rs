//! The on-disk cache of exchanged tokens (DESIGN.md section 3).
//!
//! One file per cache key, `<registry hash>-<key hash>.json`, in a 0700
//! directory; files 0600, written atomically. The registry hash prefix lets
//! `store`, `erase`, `login` and `logout` drop every token of a registry
//! without reading the files. Reading is the hot path of every Docker
//! command: it opens one file, never follows a symlink, and treats anything
//! unexpected (corrupt, truncated, foreign, another key's) as a miss.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsutil::{self, FsError, LockGuard};
use crate::secret::{Secret, hex};

const VERSION: u32 = 1;
/// A cache file is a few KiB; anything much larger is not ours.
const MAX_ENTRY_BYTES: u64 = 256 * 1024;
/// Orphaned lock files older than this are removed when pruning.
const STALE_LOCK_SECS: u64 = 24 * 3600;
/// Temporary files of writers killed mid-write are removed after this.
const STALE_TMP_SECS: u64 = 600;

/// Everything that shapes an exchanged token; two requests share a cached
/// token only if all of these are equal.
#[derive(Debug, serde::Serialize)]
pub struct KeyFields<'a> {
    /// The config key of the exchange registry.
    pub registry_key: &'a str,
    /// The repository the token is scoped to, if the request named one.
    pub repository: Option<&'a str>,
    /// The token endpoint.
    pub endpoint: &'a str,
    /// Subject source, described.
    pub subject_source: &'a str,
    /// Subject token type.
    pub subject_token_type: &'a str,
    /// Resolved audiences.
    pub audience: &'a [String],
    /// Resolved resources.
    pub resource: &'a [String],
    /// Resolved scope.
    pub scope: Option<&'a str>,
    /// Requested token type.
    pub requested_token_type: Option<&'a str>,
    /// Client id.
    pub client_id: Option<&'a str>,
}

/// A cache key: the file stem of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    stem: String,
}

impl CacheKey {
    /// The key for `fields`.
    pub fn new(fields: &KeyFields<'_>) -> CacheKey {
        let canonical = serde_json::to_vec(fields).unwrap_or_default();
        let digest = hex(&Sha256::digest(&canonical));
        CacheKey { stem: format!("{}-{}", registry_prefix(fields.registry_key), &digest[..32]) }
    }

    /// The file stem, for messages and tests.
    pub fn as_str(&self) -> &str {
        &self.stem
    }
}

fn registry_prefix(registry_key: &str) -> String {
    hex(&Sha256::digest(registry_key.as_bytes()))[..16].to_owned()
}

/// An exchanged token as cached.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedToken {
    /// Format version.
    pub version: u32,
    /// The file stem it belongs to; a file copied under another name is a miss.
    pub key: String,
    /// The config key of the registry.
    pub registry: String,
    /// The normalized server URL that was asked for.
    pub request: String,
    /// The username `get` returns.
    pub username: String,
    /// The token.
    #[serde(with = "secret_string")]
    pub token: Secret,
    /// `issued_token_type` from the response.
    #[serde(default)]
    pub issued_token_type: Option<String>,
    /// When it was obtained (Unix seconds).
    pub obtained_at: i64,
    /// When it expires.
    pub expires_at: i64,
    /// When it should be refreshed: expiry minus the effective margin.
    pub refresh_at: i64,
    /// SHA-256 of the subject token it came from, for sources that can
    /// change behind the helper's back (env, file, command).
    #[serde(default)]
    pub subject_fingerprint: Option<String>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("registry", &self.registry)
            .field("request", &self.request)
            .field("username", &self.username)
            .field("token", &self.token.fingerprint())
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .finish_non_exhaustive()
    }
}

mod secret_string {
    use crate::secret::Secret;
    pub fn serialize<S: serde::Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

/// Expiry and refresh time of a token obtained at `now`.
///
/// Expiry is the earlier of `now + expires_in` and the JWT's `exp`, else
/// `now + default_lifetime`. The margin applied is `min(margin,
/// lifetime / 2)`, so a 10-second token is still reused for 5 seconds.
pub fn schedule(
    now: i64,
    expires_in: Option<u64>,
    jwt_exp: Option<i64>,
    default_lifetime: u64,
    margin: u64,
) -> (i64, i64) {
    let from_expires_in = expires_in.map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
    let expires_at = match (from_expires_in, jwt_exp) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => now.saturating_add(i64::try_from(default_lifetime).unwrap_or(i64::MAX)),
    };
    let lifetime = expires_at.saturating_sub(now).max(0);
    let margin = i64::try_from(margin).unwrap_or(i64::MAX).min(lifetime / 2);
    (expires_at, expires_at - margin)
}

/// What the cache holds for a key.
#[derive(Debug)]
pub enum Lookup {
    /// Valid and outside the margin: use it.
    Fresh(CachedToken),
    /// Inside the margin but not expired: refresh, and fall back to it if
    /// the refresh fails.
    Stale(CachedToken),
    /// Nothing usable.
    Miss,
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.stem))
    }

    fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.lock", key.stem))
    }

    /// Looks `key` up at time `now`; the entry must have been made from a
    /// subject with fingerprint `subject` (when the source has one).
    pub fn lookup(&self, key: &CacheKey, subject: Option<&str>, now: i64) -> Lookup {
        let entry = match self.read(key) {
            Ok(Some(e)) => e,
            Ok(None) => return Lookup::Miss,
            Err(reason) => {
                crate::warn!("ignoring cache entry {}: {reason}", self.entry_path(key).display());
                return Lookup::Miss;
            }
        };
        if entry.subject_fingerprint.as_deref() != subject {
            crate::debug!("cache entry {} was made from another subject token", key.stem);
            return Lookup::Miss;
        }
        if now < entry.refresh_at {
            Lookup::Fresh(entry)
        } else if now < entry.expires_at {
            Lookup::Stale(entry)
        } else {
            Lookup::Miss
        }
    }

    /// Reads the entry for `key`. `Ok(None)`: absent. `Err`: present but
    /// unusable, with the reason (the caller treats it as a miss).
    fn read(&self, key: &CacheKey) -> Result<Option<CachedToken>, String> {
        let path = self.entry_path(key);
        let Some(bytes) = fsutil::read_private(&path, MAX_ENTRY_BYTES).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let entry: CachedToken =
            serde_json::from_slice(&bytes).map_err(|_| "not a valid cache entry".to_owned())?;
        if entry.version != VERSION || entry.key != key.stem {
            return Err("written for another key or version".into());
        }
        Ok(Some(entry))
    }

    /// Waits for the per-key lock that makes concurrent helpers share one
    /// exchange. A symlink planted as the lock file is removed (unlinking
    /// removes the link, never its target) and the lock retried once.
    ///
    /// # Errors
    /// The directory or lock file cannot be made safe.
    pub fn lock(&self, key: &CacheKey) -> Result<LockGuard, FsError> {
        self.ensure_dir()?;
        let path = self.lock_path(key);
        match fsutil::lock_exclusive(&path) {
            Err(FsError::Symlink(_)) => {
                crate::warn!("removed a symbolic link planted as lock file {}", path.display());
                fsutil::remove_if_exists(&path)?;
                fsutil::lock_exclusive(&path)
            }
            other => other,
        }
    }

    fn ensure_dir(&self) -> Result<(), FsError> {
        fsutil::ensure_private_dir(&self.dir, |m| crate::warn!("{m}"))
    }

    /// Stores `token` under `key` (atomically), then prunes expired entries.
    ///
    /// # Errors
    /// The directory is unsafe or the write failed.
    pub fn store(&self, key: &CacheKey, token: &CachedToken) -> Result<(), FsError> {
        self.ensure_dir()?;
        let bytes = serde_json::to_vec(token).unwrap_or_default();
        fsutil::write_atomic(&self.entry_path(key), &bytes)?;
        self.prune(token.obtained_at, Some(key));
        Ok(())
    }

    /// Builds the entry for a token just obtained.
    pub fn entry_for(key: &CacheKey, registry: &str, request: &str, username: &str) -> CachedTokenBuilder {
        CachedTokenBuilder {
            key: key.stem.clone(),
            registry: registry.to_owned(),
            request: request.to_owned(),
            username: username.to_owned(),
        }
    }

    /// Removes expired and unreadable entries, orphaned lock files and
    /// leftovers of killed writers, so the cache stays bounded.
    pub fn prune(&self, now: i64, keep: Option<&CacheKey>) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let now_u = u64::try_from(now).unwrap_or(0);
        for item in dir.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = item.path();
            let age = item
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| now_u.saturating_sub(d.as_secs()));
            if name.starts_with(".tmp-") {
                if age > STALE_TMP_SECS {
                    let _ = fsutil::remove_if_exists(&path);
                }
            } else if let Some(stem) = name.strip_suffix(".json") {
                if keep.is_some_and(|k| k.stem == stem) {
                    continue;
                }
                let expired = match self.read(&CacheKey { stem: stem.to_owned() }) {
                    Ok(Some(e)) => e.expires_at <= now,
                    Ok(None) => false,
                    Err(_) => true,
                };
                if expired {
                    crate::debug!("pruning cache entry {name}");
                    let _ = fsutil::remove_if_exists(&path);
                }
            } else if let Some(stem) = name.strip_suffix(".lock")
                && age > STALE_LOCK_SECS
                && !self.dir.join(format!("{stem}.json")).exists()
            {
                let _ = fsutil::remove_if_exists(&path);
            }
        }
    }

    /// Removes every cached token of the registry with config key
    /// `registry_key`; returns how many.
    pub fn drop_registry(&self, registry_key: &str) -> usize {
        let prefix = format!("{}-", registry_prefix(registry_key));
        self.remove_matching(|name| name.starts_with(&prefix))
    }

    /// Removes every cached token; returns how many.
    pub fn clear(&self) -> usize {
        self.remove_matching(|_| true)
    }

    fn remove_matching(&self, matches: impl Fn(&str) -> bool) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for item in dir.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".json") && matches(name) && fsutil::remove_if_exists(&item.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Every readable entry, for `status`.
    pub fn entries(&self) -> Vec<CachedToken> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<CachedToken> = dir
            .flatten()
            .filter_map(|item| {
                let name = item.file_name();
                let stem = name.to_str()?.strip_suffix(".json")?.to_owned();
                self.read(&CacheKey { stem }).ok().flatten()
            })
            .collect();
        out.sort_by(|a, b| a.request.cmp(&b.request));
        out
    }
}

/// The identity half of a [`CachedToken`]; [`CachedTokenBuilder::build`]
/// adds the token and its schedule.
#[derive(Debug)]
pub struct CachedTokenBuilder {
    key: String,
    registry: String,
    request: String,
    username: String,
}

impl CachedTokenBuilder {
    /// The complete entry.
    pub fn build(
        self,
        token: Secret,
        issued_token_type: Option<String>,
        obtained_at: i64,
        (expires_at, refresh_at): (i64, i64),
        subject_fingerprint: Option<String>,
    ) -> CachedToken {
        CachedToken {
            version: VERSION,
            key: self.key,
            registry: self.registry,
            request: self.request,
            username: self.username,
            token,
            issued_token_type,
            obtained_at,
            expires_at,
            refresh_at,
            subject_fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(scope: Option<&'a str>) -> KeyFields<'a> {
        KeyFields {
            registry_key: "r.example",
            repository: None,
            endpoint: "https://sts/token",
            subject_source: "keyring",
            subject_token_type: "t",
            audience: &[],
            resource: &[],
            scope,
            requested_token_type: None,
            client_id: None,
        }
    }

    fn token(key: &CacheKey, now: i64, lifetime: u64, fp: Option<&str>) -> CachedToken {
        Cache::entry_for(key, "r.example", "r.example", "u").build(
            Secret::new("tok".into()),
            None,
            now,
            schedule(now, Some(lifetime), None, 60, 60),
            fp.map(str::to_owned),
        )
    }

    #[test]
    fn margin_is_capped_at_half_the_lifetime() {
        assert_eq!(schedule(1000, Some(10), None, 60, 60), (1010, 1005));
        assert_eq!(schedule(1000, Some(3600), None, 60, 60), (4600, 4540));
    }

    #[test]
    fn jwt_exp_wins_when_earlier_than_expires_in() {
        assert_eq!(schedule(1000, Some(3600), Some(1300), 60, 60).0, 1300);
        assert_eq!(schedule(1000, Some(100), Some(5000), 60, 60).0, 1100);
    }

    #[test]
    fn default_lifetime_applies_without_expires_in_or_exp() {
        assert_eq!(schedule(1000, None, None, 120, 60), (1120, 1060));
    }

    #[test]
    fn already_expired_token_is_never_fresh() {
        let (exp, refresh) = schedule(1000, None, Some(900), 60, 60);
        assert!(exp <= 1000 && refresh <= 1000);
    }

    #[test]
    fn keys_differ_by_every_shaping_field() {
        assert_ne!(CacheKey::new(&fields(Some("a"))), CacheKey::new(&fields(Some("b"))));
        assert_eq!(CacheKey::new(&fields(Some("a"))), CacheKey::new(&fields(Some("a"))));
    }

    #[test]
    fn store_then_lookup_is_fresh_then_stale_then_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let key = CacheKey::new(&fields(None));
        cache.store(&key, &token(&key, 1000, 3600, None)).unwrap();
        assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Fresh(_)));
        assert!(matches!(cache.lookup(&key, None, 4550), Lookup::Stale(_)));
        assert!(matches!(cache.lookup(&key, None, 4600), Lookup::Miss));
    }

    #[test]
    fn another_subject_fingerprint_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let key = CacheKey::new(&fields(None));
        cache.store(&key, &token(&key, 1000, 3600, Some("aaa"))).unwrap();
        assert!(matches!(cache.lookup(&key, Some("bbb"), 1000), Lookup::Miss));
        assert!(matches!(cache.lookup(&key, Some("aaa"), 1000), Lookup::Fresh(_)));
    }

    #[test]
    fn corrupt_and_truncated_files_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let key = CacheKey::new(&fields(None));
        cache.store(&key, &token(&key, 1000, 3600, None)).unwrap();
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
        let cache = Cache::new(dir.path().to_owned());
        let a = CacheKey::new(&fields(Some("a")));
        let b = CacheKey::new(&fields(Some("b")));
        cache.store(&a, &token(&a, 1000, 3600, None)).unwrap();
        std::fs::copy(cache.entry_path(&a), cache.entry_path(&b)).unwrap();
        assert!(matches!(cache.lookup(&b, None, 1000), Lookup::Miss));
    }

    #[test]
    fn writing_prunes_expired_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let old = CacheKey::new(&fields(Some("old")));
        cache.store(&old, &token(&old, 1000, 10, None)).unwrap();
        let new = CacheKey::new(&fields(Some("new")));
        cache.store(&new, &token(&new, 5000, 3600, None)).unwrap();
        assert!(!cache.entry_path(&old).exists());
        assert!(cache.entry_path(&new).exists());
    }

    #[test]
    fn drop_registry_removes_only_that_registrys_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned());
        let key = CacheKey::new(&fields(None));
        cache.store(&key, &token(&key, 1000, 3600, None)).unwrap();
        assert_eq!(cache.drop_registry("other.example"), 0);
        assert_eq!(cache.drop_registry("r.example"), 1);
        assert!(matches!(cache.lookup(&key, None, 1000), Lookup::Miss));
    }

    #[cfg(unix)]
    #[test]
    fn cache_files_and_dir_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let key = CacheKey::new(&fields(None));
        cache.store(&key, &token(&key, 1000, 3600, None)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(cache.dir()), 0o700);
        assert_eq!(mode(&cache.entry_path(&key)), 0o600);
    }

    #[test]
    fn debug_of_an_entry_shows_no_token() {
        let key = CacheKey::new(&fields(None));
        assert!(!format!("{:?}", token(&key, 1, 10, None)).contains("\"tok\""));
    }
}
