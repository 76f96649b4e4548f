//! A skipped test is seen where a person reads `cargo test`'s output
//! (tests/support/skip.rs): its line escapes libtest's capture, the binary
//! counts its skips after libtest's own result line, and under CI a skip is
//! a failure. Each test runs this binary again on the one ignored test
//! below, as `cargo test` would, and reads what a person would see.

mod support;

use std::process::{Command, Output};

const REASON: &str = "frobnicator not installed; install it (a skip made on purpose)";

/// The skip the other tests look at; ignored, so a plain `cargo test` does
/// not report it (it is run only by them, with `--ignored`).
#[test]
#[ignore = "run by the other tests of this file, which read its output"]
fn a_test_that_skips() {
    support::skip::skip(REASON);
}

/// This binary, run on [`a_test_that_skips`] alone, with `CI` as given.
fn run_the_skipping_test(ci: Option<&str>) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", "a_test_that_skips", "--test-threads=1"]);
    match ci {
        Some(value) => cmd.env("CI", value),
        None => cmd.env_remove("CI"),
    };
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

#[test]
fn a_skip_is_shown_on_stderr_although_libtest_captures_the_test() {
    let (out, stderr) = run_the_skipping_test(None);
    assert!(out.status.success(), "{out:?}");
    assert!(stderr.contains(&format!("*** SKIPPED: a_test_that_skips: {REASON} ***")), "{stderr}");
}

#[test]
fn the_binary_counts_its_skips_after_libtests_result_line() {
    let (out, stderr) = run_the_skipping_test(None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    let count = "SKIPPED 1 test in skip_report: reported ok without running";
    assert!(stderr.contains(count), "{stderr}");
    assert!(stderr.contains(&format!("    a_test_that_skips: {REASON}")), "{stderr}");
}

#[test]
fn under_ci_a_skip_is_a_failure() {
    let (out, _) = run_the_skipping_test(Some("true"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{out:?}");
    assert!(stdout.contains("test a_test_that_skips ... FAILED"), "{stdout}");
}

#[test]
fn ci_set_to_false_or_0_is_not_ci() {
    for value in ["false", "0", ""] {
        let (out, stderr) = run_the_skipping_test(Some(value));
        assert!(out.status.success(), "CI={value:?}: {out:?}");
        assert!(stderr.contains("*** SKIPPED: a_test_that_skips"), "CI={value:?}: {stderr}");
    }
}
