//! Every message and log line passes through the redaction step: for any
//! text and any secret this process has held, it never panics, its output
//! is one line, and no run of the secret as long as a redaction window
//! survives it.
#![no_main]

use docker_credential_exchange::for_tests::redact;
use docker_credential_exchange::for_tests::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first line is the secret, the rest the message that may echo it.
    let (secret, message) = text.split_once('\n').unwrap_or((text, ""));
    redact::forget_all();
    let _held = Secret::new(secret.to_owned());
    let out = redact::line(message);
    assert!(!out.contains('\n') && !out.contains('\r'));
    // Tokens have no whitespace or control characters; a secret that does
    // could be re-formed by joining lines, which is not an echo.
    if secret.len() >= 16 && !secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        // Cut at every mark: a run spanning a mark and its neighbour was
        // never in the message.
        let pieces: Vec<&str> = out.split(redact::MARK).collect();
        for window in secret.as_bytes().windows(redact::WINDOW) {
            if let Ok(window) = std::str::from_utf8(window) {
                assert!(pieces.iter().all(|p| !p.contains(window)), "{window:?} survived in {out:?}");
            }
        }
    }
});
