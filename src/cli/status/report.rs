//! What `status` reports, as data: the JSON document of `status --json`
//! (see the module above for its shape) and what the table is made from.
//! `doctor` judges the same facts.

use serde::Serialize;

use crate::cache::{CachedToken, Freshness};
use crate::paths::ConfigOrigin;
use crate::secret::Secret;
use crate::time::{human_duration, rfc3339_signed};

/// Everything `status` shows; `doctor` judges the same facts.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub now: i64,
    pub config_file: Option<String>,
    pub config_path: String,
    #[serde(serialize_with = "origin_word")]
    pub config_source: ConfigOrigin,
    pub config_error: Option<String>,
    pub store: String,
    pub cache_dir: Option<String>,
    pub registries: Vec<RegistryStatus>,
}

/// What a registry is to the helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// Configured for exchange.
    Exchange,
    /// A stored credential.
    Plain,
    /// Neither, but a `get` for it failed.
    Unknown,
}

#[derive(Debug, Serialize)]
pub(crate) struct RegistryStatus {
    pub registry: String,
    pub kind: Kind,
    pub stored: bool,
    pub username: Option<String>,
    pub subject_source: Option<String>,
    pub token_endpoint: Option<String>,
    pub entry_error: Option<String>,
    pub login_token: Option<LoginToken>,
    pub cached_tokens: Vec<CachedStatus>,
    pub last_failure: Option<FailureStatus>,
    /// Where the login token is kept, for the table ("file store").
    #[serde(skip)]
    pub subject_where: Option<String>,
}

/// The state of a login (subject) token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LoginState {
    /// A JWT that has not expired.
    Valid,
    /// A JWT past its `exp`.
    Expired,
    /// Present, but not a JWT with `exp`.
    NoExpiry,
    /// Nothing stored, variable unset, file missing.
    Absent,
    /// A source that is not read without a request (command, CI).
    NotChecked,
    /// Reading it failed.
    Error,
}

#[derive(Debug, Serialize)]
pub(crate) struct LoginToken {
    pub state: LoginState,
    pub fingerprint: Option<String>,
    pub expires_at: Option<i64>,
    pub expires_at_rfc3339: Option<String>,
    pub remaining_seconds: Option<i64>,
    pub remaining: Option<String>,
    pub detail: Option<String>,
}

impl LoginToken {
    pub(super) fn without_token(state: LoginState, detail: Option<String>) -> LoginToken {
        LoginToken {
            state,
            fingerprint: None,
            expires_at: None,
            expires_at_rfc3339: None,
            remaining_seconds: None,
            remaining: None,
            detail,
        }
    }

    pub(super) fn of(token: &Secret, now: i64) -> LoginToken {
        let exp = crate::jwt::expiry(token.expose());
        let remaining = exp.map(|e| e.saturating_sub(now));
        LoginToken {
            state: match remaining {
                None => LoginState::NoExpiry,
                Some(r) if r > 0 => LoginState::Valid,
                Some(_) => LoginState::Expired,
            },
            fingerprint: Some(token.fingerprint()),
            expires_at: exp,
            expires_at_rfc3339: exp.map(rfc3339_signed),
            remaining_seconds: remaining,
            remaining: remaining.map(human_duration),
            detail: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct CachedStatus {
    pub request: String,
    pub username: String,
    pub fingerprint: String,
    pub obtained_at: i64,
    pub refresh_at: i64,
    pub expires_at: i64,
    pub expires_at_rfc3339: String,
    pub remaining_seconds: i64,
    pub remaining: String,
    pub state: CacheState,
}

/// A cached token's state, as [`Freshness`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CacheState {
    /// Served as it is.
    Fresh,
    /// Refreshed by the next `get`.
    RefreshDue,
    /// Never served again.
    Expired,
}

impl CachedStatus {
    pub(super) fn of(entry: &CachedToken, now: i64) -> CachedStatus {
        let remaining = entry.expires_at.saturating_sub(now);
        CachedStatus {
            request: entry.request.clone(),
            username: entry.username.clone(),
            fingerprint: entry.token.fingerprint(),
            obtained_at: entry.obtained_at,
            refresh_at: entry.refresh_at,
            expires_at: entry.expires_at,
            expires_at_rfc3339: rfc3339_signed(entry.expires_at),
            remaining_seconds: remaining,
            remaining: human_duration(remaining),
            state: match entry.schedule().freshness(now) {
                Freshness::Fresh => CacheState::Fresh,
                Freshness::RefreshDue => CacheState::RefreshDue,
                Freshness::Expired | Freshness::FromTheFuture => CacheState::Expired,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct FailureStatus {
    pub request: String,
    pub at: i64,
    pub at_rfc3339: String,
    pub message: String,
    /// Until when `get` answers this failure from memory.
    pub remembered_until: Option<i64>,
}

fn origin_word<S: serde::Serializer>(origin: &ConfigOrigin, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(origin.as_str())
}
