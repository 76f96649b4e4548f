//! The failure of the last exchange for a cache key, kept beside its token
//! as `<r>-<k>.failure` (DESIGN.md section 3).
//!
//! It does two jobs. Helpers that waited on the key's lock while the
//! exchange failed answer with its failure instead of repeating it: during
//! an outage N helpers cost one deadline, not N. And for a short window
//! ([`REMEMBER_FOR`]) a later `get` answers the same failure at once,
//! because some clients (BuildKit's session) ask again after each failure,
//! one call at a time, and would otherwise pay a deadline per call.
//!
//! It is filed per cache key, which holds everything that shapes the
//! request, the subject's fingerprint included for sources that carry one
//! (env, file, command, CI, kubelet): another subject is another key and
//! is never answered from it. A change of login (`login`, `logout`,
//! `store`, `erase`) starts a new generation, which drops the registry's
//! files, these included; and a record also carries the generation its
//! exchange ran under, so one written by an exchange that raced such a
//! change is never used either. Only failures of the endpoint are kept:
//! one of this process's own (a client secret it cannot read) is not
//! another helper's, and a fix must show at once.

use std::path::PathBuf;
use std::time::Duration;

use super::{Cache, CacheKey, Generation};
use crate::deadline::Deadline;
use crate::fsutil;

/// How long a failed exchange is answered from memory, at most.
pub const REMEMBER_FOR: Duration = Duration::from_secs(15);

const VERSION: u32 = 1;
const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// A record older than this serves no waiter and no window: pruned.
const KEEP_FOR: Duration = Duration::from_secs(3600);

/// The failure of the last exchange for a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeFailure {
    /// Format version.
    pub version: u32,
    /// The cache key (file stem) it belongs to.
    pub key: String,
    /// The config key of the registry.
    pub registry: String,
    /// The normalized request.
    pub request: String,
    /// The login generation the exchange ran under.
    pub generation: String,
    /// When it failed, in Unix milliseconds.
    pub at_ms: i64,
    /// Until when a `get` answers with it without asking the endpoint;
    /// `at_ms` when it is not to be remembered (only waiters share it).
    pub until_ms: i64,
    /// The time limit that ran out, when the failure was the deadline: a
    /// `get` allowed more time tries again.
    pub timed_out_after_ms: Option<u64>,
    /// A fingerprint of the client inputs the exchange used (client
    /// secret, key, certificate, trust roots) that the key does not name:
    /// once they change, the failure is no longer theirs.
    #[serde(default)]
    pub client: Option<String>,
    /// The one-line message, already redacted.
    pub message: String,
}

impl ExchangeFailure {
    /// A failure at `at_ms` of the exchange for `key` under `generation`,
    /// remembered for `window`.
    pub fn new(
        key: &CacheKey,
        registry: &str,
        request: &str,
        generation: &Generation,
        at_ms: i64,
        window: Duration,
        message: &str,
    ) -> ExchangeFailure {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        ExchangeFailure {
            version: VERSION,
            key: key.stem.clone(),
            registry: registry.to_owned(),
            request: request.to_owned(),
            generation: generation.as_str().to_owned(),
            at_ms,
            until_ms: at_ms.saturating_add(window_ms),
            timed_out_after_ms: None,
            client: None,
            message: crate::redact::line(message),
        }
    }

    /// Ties it to the client inputs of fingerprint `client`.
    pub fn with_client(mut self, client: Option<&str>) -> ExchangeFailure {
        self.client = client.map(str::to_owned);
        self
    }

    /// Marks it as the deadline's: `limit` ran out.
    pub fn timed_out_after(mut self, limit: Duration) -> ExchangeFailure {
        self.timed_out_after_ms = Some(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Whether it was made under `generation` (the login has not changed).
    pub fn under(&self, generation: &Generation) -> bool {
        self.generation == generation.as_str()
    }

    /// Whether it was made with the client inputs of fingerprint `client`
    /// (see [`ExchangeFailure::client`]).
    pub fn with_same_client(&self, client: Option<&str>) -> bool {
        self.client.as_deref() == client
    }

    /// Whether a `get` at `now_ms` with the time limit `limit` answers with
    /// it: inside its window, and not allowed more time than ran out. A
    /// record dated after `now_ms` was written under a clock that has since
    /// gone back (or was not written by this helper): its window cannot be
    /// trusted, so it is not answered, as a cached token from the future is
    /// a miss.
    pub fn remembered_at(&self, now_ms: i64, limit: Duration) -> bool {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        (self.at_ms..self.window_end()).contains(&now_ms)
            && self.timed_out_after_ms.is_none_or(|ran_out| limit_ms <= ran_out)
    }

    /// The end of its window in Unix milliseconds: `until_ms`, but never
    /// more than [`REMEMBER_FOR`] after the failure, whatever the record
    /// says (a damaged or foreign one may say anything).
    fn window_end(&self) -> i64 {
        let longest = i64::try_from(REMEMBER_FOR.as_millis()).unwrap_or(i64::MAX);
        self.until_ms.min(self.at_ms.saturating_add(longest))
    }

    /// When it failed, in Unix seconds.
    pub fn at(&self) -> i64 {
        self.at_ms.div_euclid(1000)
    }

    /// Until when it is remembered, in Unix seconds (rounded up: never
    /// earlier than it is).
    pub fn until(&self) -> i64 {
        let end = self.window_end();
        end.div_euclid(1000) + i64::from(end.rem_euclid(1000) != 0)
    }
}

/// How long to remember a failure whose endpoint said `retry_after`: never
/// past the time the endpoint itself named, after which a retry could
/// change the answer.
pub fn window(retry_after: Option<Duration>) -> Duration {
    retry_after.map_or(REMEMBER_FOR, |wait| wait.min(REMEMBER_FOR))
}

impl Cache {
    fn exchange_failure_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.failure", key.stem))
    }

    /// Keeps `failure` as the last failed exchange of its key. The caller
    /// holds the key's lock, so helpers waiting on it find it.
    pub fn remember_failure(&self, key: &CacheKey, failure: &ExchangeFailure, deadline: &Deadline) {
        if !self.tokens {
            return;
        }
        let written = self.ensure_dir().and_then(|()| {
            fsutil::write_atomic(
                &self.exchange_failure_path(key),
                &serde_json::to_vec(failure).unwrap_or_default(),
                deadline,
            )
        });
        if let Err(e) = written {
            crate::log::debug!("cannot record the failed exchange of {}: {e}", key.stem);
        }
    }

    /// The last failed exchange of `key`, if one is kept.
    pub fn exchange_failure(&self, key: &CacheKey) -> Option<ExchangeFailure> {
        if !self.tokens {
            return None;
        }
        read(&self.exchange_failure_path(key), &key.stem)
    }

    /// Forgets the failed exchange of `key`: an exchange for it succeeded.
    pub fn forget_failure(&self, key: &CacheKey) {
        if self.tokens {
            let _ = fsutil::remove_if_exists(&self.exchange_failure_path(key));
        }
    }

    /// Every failed exchange a `get` would answer from memory now (for
    /// `status` and `doctor`), newest first.
    pub fn remembered(&self, deadline: &Deadline) -> Vec<ExchangeFailure> {
        let now = crate::time::now_ms();
        let mut out: Vec<ExchangeFailure> = self
            .own_files()
            .filter(|(_, kind)| matches!(kind, super::names::CacheFile::ExchangeFailure))
            .filter_map(|(path, _)| {
                let stem = path.file_stem()?.to_str()?.to_owned();
                read(&path, &stem)
            })
            .filter(|f| f.remembered_at(now, deadline.limit()))
            .filter(|f| self.generation(&f.registry, deadline).is_some_and(|g| f.under(&g)))
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
        out
    }
}

fn read(path: &std::path::Path, stem: &str) -> Option<ExchangeFailure> {
    let bytes = fsutil::read_private(path, MAX_RECORD_BYTES).ok()??;
    let record: ExchangeFailure = serde_json::from_slice(&bytes).ok()?;
    (record.version == VERSION && record.key == stem).then_some(record)
}

/// Whether the record at `path` is past any use (see [`KEEP_FOR`]), by its
/// date alone: pruning must not read every record.
pub(super) fn outlived(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > KEEP_FOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyFields;

    fn key(scope: &str) -> CacheKey {
        CacheKey::new(&KeyFields::example(Some(scope)))
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[test]
    fn a_failure_is_remembered_for_its_window_and_no_longer() {
        let g = Generation::from_value("g1");
        let f = ExchangeFailure::new(&key("a"), "r.example", "r.example", &g, 1_000, REMEMBER_FOR, "down");
        let limit = Duration::from_secs(30);
        assert!(f.remembered_at(1_000, limit));
        assert!(f.remembered_at(15_999, limit));
        assert!(!f.remembered_at(16_000, limit));
    }

    #[test]
    fn a_failure_dated_after_now_is_not_answered() {
        // Recorded at 100 s; the clock has since been set back to 50 s.
        let g = Generation::from_value("g1");
        let f = ExchangeFailure::new(&key("a"), "r", "r", &g, 100_000, REMEMBER_FOR, "down");
        assert!(!f.remembered_at(50_000, Duration::from_secs(30)));
        assert!(!f.remembered_at(99_999, Duration::from_secs(30)));
        assert!(f.remembered_at(100_000, Duration::from_secs(30)));
    }

    #[test]
    fn a_record_claiming_a_longer_window_is_answered_no_longer_than_any_kept() {
        let g = Generation::from_value("g1");
        let mut f = ExchangeFailure::new(&key("a"), "r", "r", &g, 1_000, REMEMBER_FOR, "down");
        f.until_ms = i64::MAX;
        let limit = Duration::from_secs(30);
        assert!(f.remembered_at(15_999, limit));
        assert!(!f.remembered_at(16_000, limit));
        assert!(!f.remembered_at(1_000 + 3_600_000, limit));
        assert_eq!(f.until(), 16);
    }

    #[test]
    fn the_window_never_outlasts_a_retry_after() {
        assert_eq!(window(None), REMEMBER_FOR);
        assert_eq!(window(Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(window(Some(Duration::ZERO)), Duration::ZERO);
        assert_eq!(window(Some(Duration::from_secs(3600))), REMEMBER_FOR);
    }

    #[test]
    fn a_timeout_is_not_answered_to_a_get_allowed_more_time() {
        let g = Generation::from_value("g1");
        let f = ExchangeFailure::new(&key("a"), "r", "r", &g, 0, REMEMBER_FOR, "timed out")
            .timed_out_after(Duration::from_secs(4));
        assert!(f.remembered_at(1, Duration::from_secs(4)));
        assert!(f.remembered_at(1, Duration::from_secs(2)));
        assert!(!f.remembered_at(1, Duration::from_secs(30)));
    }

    #[test]
    fn a_failure_under_another_login_generation_is_not_this_logins() {
        let f =
            ExchangeFailure::new(&key("a"), "r", "r", &Generation::from_value("g1"), 0, REMEMBER_FOR, "x");
        assert!(f.under(&Generation::from_value("g1")));
        assert!(!f.under(&Generation::from_value("g2")));
    }

    /// A cache in `dir` that keeps one failure of key "a" for r.example.
    fn with_a_kept_failure(dir: &std::path::Path) -> (Cache, ExchangeFailure) {
        let cache = Cache::new(dir.to_owned(), true);
        let g = cache.generation("r.example", &deadline()).unwrap();
        let now = crate::time::now_ms();
        let f = ExchangeFailure::new(&key("a"), "r.example", "r.example", &g, now, REMEMBER_FOR, "down");
        cache.remember_failure(&key("a"), &f, &deadline());
        (cache, f)
    }

    #[test]
    fn a_kept_failure_is_found_under_its_own_key_only_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, f) = with_a_kept_failure(dir.path());
        assert_eq!(cache.exchange_failure(&key("a")), Some(f.clone()));
        assert_eq!(cache.exchange_failure(&key("b")), None);
        // A file copied under another key's name is not that key's.
        std::fs::copy(cache.exchange_failure_path(&key("a")), cache.exchange_failure_path(&key("b")))
            .unwrap();
        assert_eq!(cache.exchange_failure(&key("b")), None);
        assert_eq!(cache.remembered(&deadline()), [f]);
        cache.forget_failure(&key("a"));
        assert_eq!(cache.exchange_failure(&key("a")), None);
    }

    #[test]
    fn a_new_login_generation_drops_the_registrys_failures() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, f) = with_a_kept_failure(dir.path());
        cache.new_generation("r.example", &deadline()).unwrap();
        assert_eq!(cache.exchange_failure(&key("a")), None);
        // Written late by an exchange that raced the change: not shown.
        cache.remember_failure(&key("a"), &f, &deadline());
        assert!(cache.remembered(&deadline()).is_empty());
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"), false);
        let f = ExchangeFailure::new(&key("a"), "r", "r", &Generation::from_value("g"), 0, REMEMBER_FOR, "x");
        cache.remember_failure(&key("a"), &f, &deadline());
        assert_eq!(cache.exchange_failure(&key("a")), None);
        assert!(!dir.path().join("c").exists());
    }
}
