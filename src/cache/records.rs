//! What the cache directory keeps besides tokens.
//!
//! **The login generation of each registry.** `login`, `logout`, `store`
//! and `erase` must win over an exchange in flight: a token exchanged from a
//! login token that has since been replaced or erased must never be cached
//! or returned afterwards. A `get` reads the registry's generation before it
//! reads the login token, and writes its token only if the generation is
//! unchanged, holding the generation file's lock shared while it compares
//! and writes. A change of login takes that lock exclusively to set a new
//! generation and drop the registry's cached tokens. So either the change
//! comes first, and the `get` sees a new generation and discards its token,
//! or the `get`'s write comes first, and the change drops it.
//!
//! **The last failure of each request.** Docker shows a failing helper only
//! as "no basic auth credentials"; the one-line reason (redacted, with its
//! time) of the newest failed `get` for a request, a missing subject token
//! included, is kept until a `get` for the same request succeeds, for
//! `status` and `doctor`. (What helpers waiting for a failing exchange
//! reuse is the key's failed exchange, in `remembered`: a success for the
//! same request under another subject clears this record, not that one.)

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::key::registry_prefix;
use super::{Cache, CacheKey, CachedToken};
use crate::deadline::Deadline;
use crate::fsutil::{self, LockError, LockGuard, Mode};
use crate::secret::hex;
use crate::server_url::ServerUrl;

/// A registry's login generation as read before an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation(String);

impl Generation {
    /// Its value, as a failed exchange records it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn from_value(value: &str) -> Generation {
        Generation(value.to_owned())
    }
}

/// What became of a token offered to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Written (or the cache is off); the token may be returned.
    Accepted,
    /// The registry's login changed during the exchange: the token was made
    /// from a login that no longer exists and must not be used.
    LoginChanged,
}

const FAILURE_VERSION: u32 = 1;
const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// The last failure of a request, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Format version.
    pub version: u32,
    /// The normalized request.
    pub request: String,
    /// The cache key of the exchange that failed, when it got that far.
    pub key: Option<String>,
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// The one-line message, already redacted.
    pub message: String,
}

impl Failure {
    /// When, in Unix seconds.
    pub fn at(&self) -> i64 {
        self.at_ms.div_euclid(1000)
    }
}

use crate::time::now_ms;

impl Cache {
    fn generation_path(&self, registry_key: &str) -> PathBuf {
        self.dir.join(format!("{}.generation", registry_prefix(registry_key)))
    }

    fn failure_path(&self, request: &ServerUrl) -> PathBuf {
        let digest = hex(&Sha256::digest(request.as_str().as_bytes()));
        self.dir.join(format!("{}.failure", &digest[..16]))
    }

    fn lock_generation(
        &self,
        registry_key: &str,
        mode: Mode,
        deadline: &Deadline,
    ) -> Result<LockGuard, LockError> {
        self.ensure_dir()?;
        fsutil::lock(&self.generation_path(registry_key), mode, deadline)
    }

    /// The registry's generation now; `None` when the cache is off or
    /// unusable (then nothing is cached, so nothing can go stale).
    pub fn generation(&self, registry_key: &str, deadline: &Deadline) -> Option<Generation> {
        if !self.tokens {
            return None;
        }
        match self.lock_generation(registry_key, Mode::Shared, deadline) {
            Ok(guard) => Some(read_generation(&guard)),
            Err(e) => {
                crate::log::warn!("cannot read the login generation of {registry_key}: {e}");
                None
            }
        }
    }

    /// Writes `token` under `key` if the registry's generation is still
    /// `seen`, then prunes expired entries.
    pub fn commit(
        &self,
        registry_key: &str,
        key: &CacheKey,
        token: &CachedToken,
        seen: Option<&Generation>,
        deadline: &Deadline,
    ) -> Commit {
        let Some(seen) = seen else { return Commit::Accepted };
        let guard = match self.lock_generation(registry_key, Mode::Shared, deadline) {
            Ok(g) => g,
            Err(e) => {
                crate::log::warn!("cannot lock the token cache ({e}); the token is not cached");
                return Commit::Accepted;
            }
        };
        if &read_generation(&guard) != seen {
            return Commit::LoginChanged;
        }
        if let Err(e) = self.store(key, token, deadline) {
            crate::log::warn!("cannot write the token cache: {e}");
        }
        Commit::Accepted
    }

    /// Starts a new login generation for the registry and drops its cached
    /// tokens: after a `login`, `logout`, `store` or `erase`.
    ///
    /// # Errors
    /// The generation file cannot be locked or written.
    pub fn new_generation(&self, registry_key: &str, deadline: &Deadline) -> Result<usize, LockError> {
        if !self.tokens {
            return Ok(0);
        }
        let guard = self.lock_generation(registry_key, Mode::Exclusive, deadline)?;
        let mut file = guard.file();
        let value = fresh_value();
        let written =
            file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(value.as_bytes()));
        if let Err(e) = written {
            return Err(fsutil::io_err("cannot write", &self.generation_path(registry_key))(e).into());
        }
        Ok(self.drop_registry(registry_key))
    }

    /// Keeps `failure` as the last failure of its request.
    pub fn record_failure(
        &self,
        request: &ServerUrl,
        key: Option<&CacheKey>,
        message: &str,
        deadline: &Deadline,
    ) {
        let record = Failure {
            version: FAILURE_VERSION,
            request: request.to_string(),
            key: key.map(|k| k.stem.clone()),
            at_ms: now_ms(),
            message: crate::redact::line(message),
        };
        let written = self.ensure_dir().and_then(|()| {
            fsutil::write_atomic(
                &self.failure_path(request),
                &serde_json::to_vec(&record).unwrap_or_default(),
                deadline,
            )
        });
        if let Err(e) = written {
            crate::log::debug!("cannot record the failure of {request}: {e}");
        }
    }

    /// [`Cache::record_failure`] for an outcome that repeats on every call
    /// (a missing subject token, answered without a request on every
    /// build): written only when it differs from the one on file or that
    /// one is older than `refresh`, so the fast "not found" stays fast.
    /// The message is compared as it is: one that redaction would change
    /// never equals the record and is simply written again.
    pub fn record_repeated_failure(
        &self,
        request: &ServerUrl,
        message: &str,
        refresh: std::time::Duration,
        deadline: &Deadline,
    ) {
        let refresh_ms = i64::try_from(refresh.as_millis()).unwrap_or(i64::MAX);
        if let Some(on_file) = self.failure(request)
            && on_file.message == message
            && (on_file.at_ms..on_file.at_ms.saturating_add(refresh_ms)).contains(&now_ms())
        {
            return;
        }
        self.record_failure(request, None, message, deadline);
    }

    /// The last failure of `request`, if one is kept.
    pub fn failure(&self, request: &ServerUrl) -> Option<Failure> {
        let bytes = fsutil::read_private(&self.failure_path(request), MAX_RECORD_BYTES).ok()??;
        let record: Failure = serde_json::from_slice(&bytes).ok()?;
        (record.version == FAILURE_VERSION && record.request == request.as_str()).then_some(record)
    }

    /// Forgets the last failure of `request`: a `get` for it succeeded.
    pub fn clear_failure(&self, request: &ServerUrl) {
        let _ = fsutil::remove_if_exists(&self.failure_path(request));
    }

    /// Every failure record, newest first.
    pub fn failures(&self) -> Vec<Failure> {
        let mut out: Vec<Failure> = self
            .own_files()
            .filter(|(_, kind)| matches!(kind, super::names::CacheFile::Failure))
            .filter_map(|(path, _)| fsutil::read_private(&path, MAX_RECORD_BYTES).ok()?)
            .filter_map(|bytes| serde_json::from_slice::<Failure>(&bytes).ok())
            .filter(|f| f.version == FAILURE_VERSION)
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
        out
    }
}

fn read_generation(guard: &LockGuard) -> Generation {
    let mut value = String::new();
    let mut file = guard.file();
    let _ = file.rewind().and_then(|()| file.take(64).read_to_string(&mut value));
    Generation(value)
}

/// A value no earlier generation had: the time, the process and a
/// per-process random seed.
fn fresh_value() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_ms());
    h.write_u32(std::process::id());
    format!("{:016x}-{:x}", h.finish(), now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Identity, Lookup, Schedule};
    use crate::secret::Secret;
    use std::time::Duration;

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    fn token(cache_key: &CacheKey, now: i64) -> CachedToken {
        let id = Identity { key: cache_key, registry: "r.example", request: "r.example", username: "u" };
        id.entry(Secret::new("tok".into()), None, Schedule::new(now, Some(3600), None, 60, 60), None)
    }

    fn key() -> CacheKey {
        CacheKey { stem: format!("{}-{}", registry_prefix("r.example"), "0".repeat(32)) }
    }

    #[test]
    fn a_token_from_before_a_login_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned(), true);
        let seen = cache.generation("r.example", &deadline());
        cache.new_generation("r.example", &deadline()).unwrap();
        let now = crate::time::now();
        assert_eq!(
            cache.commit("r.example", &key(), &token(&key(), now), seen.as_ref(), &deadline()),
            Commit::LoginChanged
        );
        assert!(matches!(cache.lookup(&key(), None, now), Lookup::Miss));
    }

    #[test]
    fn a_token_from_the_current_login_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned(), true);
        let seen = cache.generation("r.example", &deadline());
        let now = crate::time::now();
        assert_eq!(
            cache.commit("r.example", &key(), &token(&key(), now), seen.as_ref(), &deadline()),
            Commit::Accepted
        );
        assert!(matches!(cache.lookup(&key(), None, now), Lookup::Fresh(_)));
    }

    #[test]
    fn a_new_generation_drops_the_registrys_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned(), true);
        let now = crate::time::now();
        cache.store(&key(), &token(&key(), now), &deadline()).unwrap();
        assert_eq!(cache.new_generation("r.example", &deadline()).unwrap(), 1);
        assert!(matches!(cache.lookup(&key(), None, now), Lookup::Miss));
    }

    #[test]
    fn a_failure_is_kept_redacted_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_owned(), true);
        let request = ServerUrl::parse("r.example").unwrap();
        crate::redact::remember("the-long-subject-token-value");
        cache.record_failure(&request, None, "refused the-long-subject-token-value\nbecause", &deadline());
        let failure = cache.failure(&request).unwrap();
        assert_eq!(failure.message, "refused [REDACTED] because");
        assert_eq!(cache.failures().len(), 1);
        cache.clear_failure(&request);
        assert!(cache.failure(&request).is_none());
    }
}
