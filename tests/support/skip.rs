//! Tests that cannot run here say so where a person reads it.
//!
//! libtest has no "skipped" result: a test that returns early reports `ok`,
//! and what it prints with `eprintln!` is captured and shown only if it
//! fails. So `cargo test` on a machine without dockerd would print "N
//! passed" while some of the N did nothing. Every skip goes through
//! [`skip`] instead, which
//! - writes its line straight to the process's stderr (libtest captures the
//!   print macros only, not the stderr handle), and
//! - counts it: when the test binary exits it prints one line saying how
//!   many of its tests were skipped, and which, after libtest's own
//!   "test result" line.
//!
//! Under CI (`CI` set, and not `0` or `false`) a skip is a failure instead:
//! `.ci/run` installs every tool and runs as root, so there a test that
//! cannot run is a broken machine, not a reason to pass.

use std::io::Write;
use std::sync::{Mutex, Once};

/// The skips of this test binary so far: "test: reason".
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static REPORT_AT_EXIT: Once = Once::new();

/// Whether this run is CI, where a skip is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "0" && value != "false")
}

/// Skips the calling test, which must then return without testing
/// anything: says so on stderr at once and again when the binary exits.
/// Under CI it panics instead.
///
/// `reason` says what is missing and what to do, e.g. "dockerd not
/// installed; run .ci/run or install docker.io".
pub fn skip(reason: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("<unnamed test>");
    if in_ci() {
        panic!("SKIPPED: {test}: {reason} (CI is set, so a test that cannot run is a failure)");
    }
    REPORT_AT_EXIT.call_once(|| {
        // SAFETY: atexit is the C library's (std links it on every
        // platform); `report` is a plain function that cannot unwind
        // out (it catches nothing and panics on nothing).
        unsafe {
            atexit(report);
        }
    });
    SKIPPED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{test}: {reason}"));
    let _ = std::io::stderr().write_all(format!("\n*** SKIPPED: {test}: {reason} ***\n").as_bytes());
}

/// True when the tests run as root, which a test that hands a file or a
/// process to another user needs (`why` says for what); otherwise a
/// [`skip`].
#[cfg(unix)]
pub fn require_root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(&format!("needs root ({why}); run it as root, as .ci/run does"));
    false
}

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Runs when the test binary exits (libtest's `main` returns, or it calls
/// `exit` after a failure): one line counting this binary's skips, then
/// one line for each.
extern "C" fn report() {
    // A test thread still running at exit may hold the lock; then say less
    // rather than wait.
    let Ok(skipped) = SKIPPED.try_lock() else { return };
    let binary = env!("CARGO_CRATE_NAME");
    let mut text = format!(
        "\nSKIPPED {} test{} in {binary}: reported ok without running (CI=true makes a skip fail):\n",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" }
    );
    for line in skipped.iter() {
        text.push_str(&format!("    {line}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}
