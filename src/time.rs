//! Wall-clock helpers: Unix seconds, RFC 3339 for people and logs, and
//! "41m 12s" durations for `status`. Hand-written because these three
//! functions are all the helper needs of a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is before it.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-25T09:00:00Z` for a Unix time in seconds (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// [`rfc3339`] for a signed time; times before 1970 print as the epoch.
pub fn rfc3339_signed(secs: i64) -> String {
    rfc3339(u64::try_from(secs).unwrap_or(0))
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A duration for people: `41m 12s`, `2h 5m`, `3d 4h`, `12s`; negative
/// durations read `expired 3m 2s ago`.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return format!("expired {} ago", human_duration(secs.saturating_neg()));
    }
    let (d, h, m, s) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_597_200), "2026-11-25T09:00:00Z");
    }

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human_duration(12), "12s");
        assert_eq!(human_duration(41 * 60 + 12), "41m 12s");
        assert_eq!(human_duration(2 * 3600 + 5 * 60 + 7), "2h 5m");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(human_duration(-62), "expired 1m 2s ago");
    }

    #[test]
    fn extreme_durations_do_not_overflow() {
        assert!(human_duration(i64::MIN).starts_with("expired "));
        assert!(human_duration(i64::MAX).ends_with('h'));
    }
}
