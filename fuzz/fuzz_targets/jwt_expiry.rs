//! Reading a JWT's `exp` without verifying it: any string, JWT-shaped or
//! not, gives `Some(seconds)` or `None`, never a panic.
#![no_main]

use docker_credential_exchange::for_tests::jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let exp = jwt::expiry(token);
    if let Some(decoded) = jwt::decode_unverified(token) {
        assert_eq!(exp, jwt::claim_seconds(&decoded.claims, "exp"));
        let _ = jwt::claim_seconds(&decoded.claims, "iat");
    } else {
        assert_eq!(exp, None);
    }
});
