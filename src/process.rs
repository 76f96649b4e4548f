//! Process-wide hardening, done first thing in `main`, before any secret
//! is read: a crash must not leave a core file holding the login token.

/// Turns off core dumps: `RLIMIT_CORE` 0 and, on Linux, not dumpable (which
/// also keeps other processes of the same user from attaching a debugger or
/// reading `/proc/<pid>/mem`). Failures are ignored: the helper still works,
/// it is only less hardened, and there is nobody to tell at this point.
pub fn disable_core_dumps() {
    #[cfg(unix)]
    {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: setrlimit reads a valid rlimit struct; no other effects.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_DUMPABLE takes one integer argument; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    const CHILD: &str = "DCE_TEST_HARDEN_CHILD";

    #[test]
    fn after_hardening_the_process_is_not_dumpable_and_has_no_core_limit() {
        if std::env::var_os(CHILD).is_some() {
            super::disable_core_dumps();
            // SAFETY: plain queries into a valid struct.
            let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
            let mut limit = libc::rlimit { rlim_cur: 1, rlim_max: 1 };
            // SAFETY: getrlimit writes into a valid rlimit struct.
            unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) };
            println!("dumpable={dumpable} core={}", limit.rlim_cur);
            return;
        }
        // Harden a child running this same test: the test binary itself
        // must stay debuggable for the other tests.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tests::after_hardening_the_process_is_not_dumpable_and_has_no_core_limit",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("dumpable=0 core=0"), "{text}");
    }
}
