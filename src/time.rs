//! Wall-clock helpers: Unix seconds, RFC 3339 for people and logs, HTTP
//! dates (for `doctor`'s clock check), and "41m 12s" durations for
//! `status`. Hand-written because these few functions are all the helper
//! needs of a date library; all the calendar arithmetic is here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is before it.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Milliseconds since the Unix epoch; 0 if the clock is before it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
        .saturating_add(test_offset_ms())
}

/// The test suite's clock seam: in debug builds (the ones the tests run)
/// `DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET` moves the helper's clock
/// by that many seconds, so a test can cross a refresh margin without
/// sleeping across it. Release builds have no such knob.
#[cfg(debug_assertions)]
fn test_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(0, |secs| secs.saturating_mul(1000))
    })
}

#[cfg(not(debug_assertions))]
fn test_offset_ms() -> i64 {
    0
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

/// Howard Hinnant's days-from-civil (proleptic Gregorian): the inverse of
/// [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, the form of HTTP's
/// `Date` header) in Unix seconds.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, hms, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = i64::try_from(MONTHS.iter().position(|m| m == month)?).ok()? + 1;
    let day: i64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let in_range = (1..=31).contains(&day)
        && (0..=23).contains(&h)
        && (0..=59).contains(&m)
        && (0..=60).contains(&s)
        && (1970..=9999).contains(&year);
    in_range.then(|| days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
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
    fn http_dates_parse_to_unix_seconds() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn http_dates_and_rfc3339_agree() {
        let t = parse_http_date("Wed, 25 Nov 2026 09:00:00 GMT").unwrap();
        assert_eq!(rfc3339(u64::try_from(t).unwrap()), "2026-11-25T09:00:00Z");
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
