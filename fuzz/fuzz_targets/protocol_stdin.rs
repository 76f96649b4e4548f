//! Docker's stdin, as every protocol action reads it: the size, UTF-8 and
//! trim rules, then a server URL (`get`, `erase`) or credentials JSON
//! (`store`). Nothing may panic, and a request that parses must name a
//! registry and a non-blank username.
#![no_main]

use docker_credential_exchange::for_tests::protocol::{parse_store_request, read_request};
use docker_credential_exchange::for_tests::server_url::ServerUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each input's secrets would otherwise pile up in the redaction list.
    docker_credential_exchange::for_tests::redact::forget_all();
    let Ok(request) = read_request(&mut &data[..]) else { return };
    assert_eq!(request, request.trim());
    // `get` and `erase`.
    let _ = ServerUrl::parse(&request);
    // `store`.
    if let Ok(input) = parse_store_request(&request) {
        assert!(!input.username.trim().is_empty());
        assert!(!input.url.as_str().is_empty());
        // The secret never shows in Debug output: its field is redacted.
        // (Searching the output for the value gives false alarms when the
        // secret is also part of the server URL or username.)
        assert!(format!("{input:?}").contains("secret: Secret(REDACTED)"));
    }
});
