//! One deadline per invocation (DESIGN.md section 3): made once when the
//! process starts and passed down to everything that can wait: the wait for
//! another helper's lock, connects, response bodies, retries and their
//! back-off, `Retry-After`, subject-token commands. Whatever the endpoint
//! does, a `get` ends by its deadline (30 s unless
//! `DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS` says otherwise).

use std::time::{Duration, Instant};

/// Sets the whole invocation's time limit, in seconds.
pub const TIMEOUT_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS";
/// The limit without the variable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Larger settings are clamped to this: a day is longer than any pull will
/// wait, and an `Instant` this far ahead cannot overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A setting that is not a positive number of seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not a positive number of seconds (e.g. 30 or 2.5)")]
pub struct BadTimeout {
    /// The variable or field.
    pub name: String,
    /// What it was set to (never a secret).
    pub value: String,
}

/// An instant by which the invocation must be done.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// `limit` from now, clamped to [`MAX_TIMEOUT`].
    pub fn after(limit: Duration) -> Deadline {
        let limit = limit.min(MAX_TIMEOUT);
        Deadline { at: Instant::now() + limit, limit }
    }

    /// The deadline `DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS` sets.
    ///
    /// # Errors
    /// The variable is set to something that is not a positive number.
    pub fn from_env() -> Result<Deadline, BadTimeout> {
        match std::env::var_os(TIMEOUT_ENV) {
            // Empty is unset, as for every other variable of the helper (CI
            // templates often expand to nothing).
            None => Ok(Deadline::after(DEFAULT_TIMEOUT)),
            Some(raw) if raw.is_empty() => Ok(Deadline::after(DEFAULT_TIMEOUT)),
            Some(raw) => {
                let value = raw.to_string_lossy();
                parse_seconds(TIMEOUT_ENV, &value).map(Deadline::after)
            }
        }
    }

    /// The instant itself.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// The whole limit, for messages ("timed out after 30s").
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// `wait`, or less if the deadline comes first.
    pub fn cap(&self, wait: Duration) -> Duration {
        wait.min(self.remaining())
    }

    /// The earlier of this deadline and `limit` from now: a step with a
    /// budget of its own (a subject-token command) inside the invocation.
    pub fn within(&self, limit: Duration) -> Deadline {
        let own = Deadline::after(limit);
        if own.at < self.at { own } else { *self }
    }
}

/// Parses a positive number of seconds (`30`, `2.5`), clamped to
/// [`MAX_TIMEOUT`].
///
/// # Errors
/// Not a number, not positive, or not finite.
pub fn parse_seconds(name: &str, value: &str) -> Result<Duration, BadTimeout> {
    let bad = || BadTimeout { name: name.to_owned(), value: crate::redact::truncate(value, 40) };
    let secs: f64 = value.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(MAX_TIMEOUT).min(MAX_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_seconds_are_accepted() {
        assert_eq!(parse_seconds("T", "30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("T", " 2.5 "), Ok(Duration::from_millis(2500)));
    }

    #[test]
    fn non_numbers_zero_and_negatives_are_errors() {
        for bad in ["abc", "", "0", "-1", "NaN", "inf", "1e999"] {
            let err = parse_seconds("T", bad).unwrap_err().to_string();
            assert!(err.contains("not a positive number of seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn huge_values_are_clamped_not_a_panic() {
        assert_eq!(parse_seconds("T", "9223372036854775807"), Ok(MAX_TIMEOUT));
        let d = Deadline::after(Duration::MAX);
        assert_eq!(d.limit(), MAX_TIMEOUT);
    }

    #[test]
    fn within_takes_the_earlier_deadline() {
        let outer = Deadline::after(Duration::from_secs(10));
        assert!(outer.within(Duration::from_secs(2)).remaining() <= Duration::from_secs(2));
        assert!(outer.within(Duration::from_secs(60)).remaining() <= Duration::from_secs(10));
    }
}
