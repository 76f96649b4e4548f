//! The store on macOS's own login Keychain, through the real binary: what
//! `docker login`, `docker pull` and `docker logout` do to it, a login token
//! far longer than a password, and that no file ever holds a secret (the
//! specification every OS keyring meets: `support::native_keyring::spec`).
//!
//! Runs in CI on a macOS runner, whose login keychain is unlocked. The
//! presence of an item is checked with `security find-generic-password`
//! without `-g`/`-w`: reading only attributes needs no access to the
//! secret, so no program other than the helper ever asks the Keychain for
//! one (which would raise an access prompt).

#![cfg(target_os = "macos")]

mod support;

use std::process::Command;

use support::native_keyring::{Keyring, native_keyring_spec};

/// The service every item of the helper is filed under.
const SERVICE: &str = "docker-credential-exchange";
/// `security`'s exit status for errSecItemNotFound.
const NOT_FOUND: i32 = 44;

/// The login keychain search list.
struct Keychain;

impl Keyring for Keychain {
    fn has_item(account: &str) -> bool {
        let out = Command::new("/usr/bin/security")
            .args(["find-generic-password", "-s", SERVICE, "-a", account])
            .output()
            .expect("run /usr/bin/security");
        match out.status.code() {
            Some(0) => true,
            Some(NOT_FOUND) => false,
            other => panic!(
                "security find-generic-password failed ({other:?}): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Found, never read (that would prompt), and never split: the
    /// Keychain has no size limit that needs it.
    fn assert_holds(name: &str, _secret: &str) {
        assert!(Keychain::has_item(name), "no Keychain item for {name}");
        assert!(!Keychain::has_item(&format!("{name}#part-0")), "split on a keyring without a size limit");
    }
}

native_keyring_spec!(Keychain);
