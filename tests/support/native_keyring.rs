//! The keyring of the session the tests run in (the login Keychain on macOS,
//! Credential Manager on Windows), for the suites that prove the helper's
//! store works on each OS's own keyring.
//!
//! Unlike the Secret Service on Linux, these keyrings cannot be started
//! privately for a test: the tests share the user's real keyring. So every
//! registry a test uses is named uniquely for the run (process id, clock
//! and a label, under the reserved `.invalid` domain), and [`Session`]
//! erases each one through the helper itself when it is dropped, pass or
//! fail. Erasing through the helper matters on macOS: the binary that made
//! a Keychain item may use it without a prompt, another program may not.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cmd::{Output, Sandbox};

/// A sandbox whose helper uses the session's keyring, and the registries a
/// test stored there.
pub struct Session {
    pub sandbox: Sandbox,
    registries: RefCell<Vec<String>>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A sandbox (own config, cache and index) on the session's keyring.
    pub fn new() -> Session {
        let mut sandbox = Sandbox::new();
        sandbox.use_session_keyring();
        Session { sandbox, registries: RefCell::new(Vec::new()) }
    }

    /// A registry name no other test, run or person uses, e.g.
    /// `plain-4242-1733000000123456789.dce-test.invalid`; erased on drop.
    pub fn registry(&self, label: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("{label}-{}-{nanos}.dce-test.invalid", std::process::id());
        self.registries.borrow_mut().push(name.clone());
        name
    }

    /// `store` of a plain credential, as `docker login` does.
    pub fn store(&self, registry: &str, username: &str, secret: &str) -> Output {
        self.sandbox.store(registry, username, secret)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for registry in self.registries.borrow().iter() {
            let out = self.sandbox.erase(registry);
            if out.code != Some(0) {
                eprintln!("could not erase the test's keyring items for {registry}: {out:?}");
            }
        }
    }
}
