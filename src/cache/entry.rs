//! One cached token: what shapes it (its key), when it was obtained, when
//! it must be refreshed and when it expires ([`Schedule`]), and whether it
//! is still usable at a given time ([`Freshness`], shared with `status`).

use super::key::CacheKey;
use crate::secret::Secret;

/// Format version of a cache file; any other is a miss.
pub(super) const VERSION: u32 = 2;
/// No exchanged token is kept longer than this, whatever `expires_in` or
/// `exp` claims: a token "valid for ever" is a server's mistake, and a
/// day bounds the damage of one.
pub const MAX_LIFETIME: i64 = 24 * 3600;

/// When a token was obtained, must be refreshed and expires (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When it was obtained.
    pub obtained_at: i64,
    /// When it should be refreshed: expiry minus the effective margin.
    pub refresh_at: i64,
    /// When it expires.
    pub expires_at: i64,
}

/// Whether a cached token may be used at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid and outside the margin: use it.
    Fresh,
    /// Inside the margin but not expired: refresh, and fall back to it if
    /// the refresh fails.
    RefreshDue,
    /// Past its expiry: never returned.
    Expired,
    /// Obtained "later than now": written under a clock that was ahead.
    /// Its times cannot be trusted, so it is a miss.
    FromTheFuture,
}

impl Schedule {
    /// The schedule of a token obtained at `now`. Expiry is the earlier of
    /// `now + expires_in` and the JWT's `exp`, else `now +
    /// default_lifetime`, and never more than [`MAX_LIFETIME`] away. A zero
    /// or negative `expires_in` gives an expiry at or before `now`: the
    /// token is already expired. The margin applied is `min(margin,
    /// lifetime / 2)`, so a 10-second token is still reused for 5 seconds.
    pub fn new(
        now: i64,
        expires_in: Option<i64>,
        jwt_exp: Option<i64>,
        default_lifetime: u64,
        margin: u64,
    ) -> Schedule {
        let after = |secs: i64| now.saturating_add(secs);
        let expires_at = match (expires_in.map(after), jwt_exp) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => after(i64::try_from(default_lifetime).unwrap_or(i64::MAX)),
        }
        .min(now.saturating_add(MAX_LIFETIME));
        let lifetime = expires_at.saturating_sub(now).max(0);
        let margin = i64::try_from(margin).unwrap_or(i64::MAX).min(lifetime / 2);
        Schedule { obtained_at: now, refresh_at: expires_at - margin, expires_at }
    }

    /// How usable the token is at `now`.
    pub fn freshness(&self, now: i64) -> Freshness {
        if self.obtained_at > now {
            Freshness::FromTheFuture
        } else if now < self.refresh_at {
            Freshness::Fresh
        } else if now < self.expires_at {
            Freshness::RefreshDue
        } else {
            Freshness::Expired
        }
    }
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
    /// change behind the helper's back (env, file, command, kubelet).
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

/// Who a token is for; [`Identity::entry`] adds the token and its schedule.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    /// The cache key.
    pub key: &'a CacheKey,
    /// The registry's config key.
    pub registry: &'a str,
    /// The normalized request.
    pub request: &'a str,
    /// The username `get` returns.
    pub username: &'a str,
}

impl Identity<'_> {
    /// The complete entry.
    pub fn entry(
        &self,
        token: Secret,
        issued_token_type: Option<String>,
        schedule: Schedule,
        subject_fingerprint: Option<String>,
    ) -> CachedToken {
        CachedToken {
            version: VERSION,
            key: self.key.stem.clone(),
            registry: self.registry.to_owned(),
            request: self.request.to_owned(),
            username: self.username.to_owned(),
            token,
            issued_token_type,
            obtained_at: schedule.obtained_at,
            expires_at: schedule.expires_at,
            refresh_at: schedule.refresh_at,
            subject_fingerprint,
        }
    }
}

impl CachedToken {
    /// Its schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule { obtained_at: self.obtained_at, refresh_at: self.refresh_at, expires_at: self.expires_at }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(now: i64, expires_in: Option<i64>, exp: Option<i64>) -> Schedule {
        Schedule::new(now, expires_in, exp, 60, 60)
    }

    #[test]
    fn margin_is_capped_at_half_the_lifetime() {
        let s = schedule(1000, Some(10), None);
        assert_eq!((s.expires_at, s.refresh_at), (1010, 1005));
        let s = schedule(1000, Some(3600), None);
        assert_eq!((s.expires_at, s.refresh_at), (4600, 4540));
    }

    #[test]
    fn jwt_exp_wins_when_earlier_than_expires_in() {
        assert_eq!(schedule(1000, Some(3600), Some(1300)).expires_at, 1300);
        assert_eq!(schedule(1000, Some(100), Some(5000)).expires_at, 1100);
    }

    #[test]
    fn default_lifetime_applies_without_expires_in_or_exp() {
        let s = Schedule::new(1000, None, None, 120, 60);
        assert_eq!((s.expires_at, s.refresh_at), (1120, 1060));
    }

    #[test]
    fn lifetimes_are_capped_at_a_day() {
        assert_eq!(schedule(1000, Some(i64::MAX), None).expires_at, 1000 + MAX_LIFETIME);
        assert_eq!(schedule(1000, None, Some(i64::MAX)).expires_at, 1000 + MAX_LIFETIME);
    }

    #[test]
    fn an_already_expired_token_is_never_fresh() {
        assert_eq!(schedule(1000, None, Some(900)).freshness(1000), Freshness::Expired);
        assert_eq!(schedule(1000, Some(0), None).freshness(1000), Freshness::Expired);
        assert_eq!(schedule(1000, Some(-5), None).freshness(1000), Freshness::Expired);
        assert_eq!(schedule(1000, Some(i64::MIN), None).freshness(1000), Freshness::Expired);
    }

    #[test]
    fn freshness_moves_from_fresh_to_refresh_due_to_expired() {
        let s = schedule(1000, Some(3600), None);
        assert_eq!(s.freshness(1000), Freshness::Fresh);
        assert_eq!(s.freshness(4550), Freshness::RefreshDue);
        assert_eq!(s.freshness(4600), Freshness::Expired);
    }

    #[test]
    fn an_entry_obtained_in_the_future_is_not_trusted() {
        assert_eq!(schedule(1000 + 86_400, Some(3600), None).freshness(1000), Freshness::FromTheFuture);
    }
}
