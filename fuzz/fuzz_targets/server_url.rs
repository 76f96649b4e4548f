//! Server URL normalization: never panics, and is idempotent: the
//! normalized form parses to itself, so a key written once is found again.
#![no_main]

use docker_credential_exchange::for_tests::server_url::{ServerUrl, is_under};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(url) = ServerUrl::parse(raw) else { return };
    let again = ServerUrl::parse(url.as_str()).expect("a normalized URL parses");
    assert_eq!(again, url, "normalization is not idempotent for {raw:?}");
    // The parts are consistent with the whole.
    match url.repository() {
        Some(repo) => assert_eq!(url.as_str(), format!("{}/{repo}", url.registry())),
        None => assert_eq!(url.as_str(), url.registry()),
    }
    assert!(is_under(url.as_str(), url.as_str()));
    let _ = url.display_name();
});
