//! Token endpoint answers: the success body (RFC 8693 section 2.2.1, with
//! lenient `expires_in`) and the error body (RFC 6749 section 5.2). Any
//! bytes a server sends give a value or an error, never a panic, and the
//! token never shows in Debug output.
#![no_main]

use docker_credential_exchange::for_tests::exchange::{ErrorResponse, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each input's secrets would otherwise pile up in the redaction list.
    docker_credential_exchange::for_tests::redact::forget_all();
    if let Ok(r) = serde_json::from_slice::<TokenResponse>(data) {
        // Debug shows the token only as its fingerprint. (Searching the
        // output for the value gives false alarms: a short token can be a
        // substring of a field name or equal another field's value.)
        let shown = format!("{r:?}");
        assert!(shown.contains(&format!("access_token: {:?}", r.access_token.fingerprint())));
    }
    if let Ok(e) = serde_json::from_slice::<ErrorResponse>(data) {
        let _ = format!("{e:?}");
    }
});
