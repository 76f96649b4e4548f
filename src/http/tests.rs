use super::*;

#[test]
fn backoff_doubles_and_stays_within_jitter() {
    for attempt in 1..=3 {
        let base = Duration::from_millis(250) * 2u32.pow(attempt - 1);
        let d = backoff(attempt, None);
        assert!(d >= base && d <= base * 3 / 2, "{attempt}: {d:?}");
    }
}

#[test]
fn retry_after_is_honoured_up_to_ten_seconds() {
    let mut h = HeaderMap::new();
    h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
    assert_eq!(backoff(1, retry_after(&h)), Duration::from_secs(2));
    h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
    assert_eq!(retry_after(&h), Some(Duration::from_secs(10)));
}

#[test]
fn retry_after_as_a_date_is_the_time_until_it_by_the_answers_own_clock() {
    let mut h = HeaderMap::new();
    h.insert(reqwest::header::DATE, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
    h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:03 GMT".parse().unwrap());
    assert_eq!(retry_after_header(&h), Some(Duration::from_secs(3)));
    h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 09:28:00 GMT".parse().unwrap());
    assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    // Past already: retry at once, remember nothing.
    h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:27:00 GMT".parse().unwrap());
    assert_eq!(retry_after_header(&h), Some(Duration::ZERO));
}

#[test]
fn retry_after_as_a_date_without_a_date_header_is_read_against_this_clock() {
    let mut h = HeaderMap::new();
    let soon = crate::time::now() + 5;
    h.insert(reqwest::header::RETRY_AFTER, http_date(soon).parse().unwrap());
    let wait = retry_after_header(&h).unwrap();
    assert!(wait <= Duration::from_secs(5) && wait >= Duration::from_secs(4), "{wait:?}");
    h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&h), None);
}

/// An IMF-fixdate for Unix seconds `secs`.
fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let iso = crate::time::rfc3339_signed(secs);
    let (y, m, d) = (&iso[0..4], iso[5..7].parse::<usize>().unwrap(), &iso[8..10]);
    let weekday = DAYS[usize::try_from(secs.div_euclid(86_400).rem_euclid(7)).unwrap()];
    format!("{weekday}, {d} {} {y} {} GMT", MONTHS[m - 1], &iso[11..19])
}

#[test]
fn loopback_hosts_are_recognized() {
    for url in ["http://127.0.0.1:1/t", "http://127.9.9.9/t", "http://localhost/t", "http://[::1]/t"] {
        assert!(is_loopback(&url::Url::parse(url).unwrap()), "{url}");
    }
    assert!(!is_loopback(&url::Url::parse("http://10.0.0.1/t").unwrap()));
}

#[test]
fn the_root_cause_drops_the_os_error_number() {
    // Each OS's own number and words for a refused connection: 111 is
    // ECONNREFUSED on Linux only (macOS's is 61; on Windows 111 is
    // ERROR_BUFFER_OVERFLOW).
    #[cfg(unix)]
    let refused = libc::ECONNREFUSED;
    #[cfg(windows)]
    let refused = 10061; // WSAECONNREFUSED
    let cause = root_cause(&std::io::Error::from_raw_os_error(refused));
    assert!(!cause.contains("os error"), "{cause}");
    assert!(cause.starts_with(|c: char| !c.is_uppercase()) && cause.contains("refused"), "{cause}");
    #[cfg(target_os = "linux")]
    assert_eq!(cause, "connection refused");
}
