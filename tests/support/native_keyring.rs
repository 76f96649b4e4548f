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
//!
//! Both keyrings meet one specification ([`spec`]): a suite names how its
//! OS shows the helper's items to a test ([`Keyring`]) and runs the spec
//! with [`native_keyring_spec!`], keeping only what is its OS's own.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::cmd::{Output, Sandbox};

/// What a test can see of the helper's items in the OS keyring, read past
/// the helper.
pub trait Keyring {
    /// Whether the keyring holds the helper's item `name`.
    fn has_item(name: &str) -> bool;
    /// Asserts that the helper's item `name` holds `secret` the way this
    /// keyring keeps one: as much of it as the OS lets a test check (a
    /// macOS Keychain item is only found, since reading another program's
    /// secret raises a prompt) and in the items this OS needs (Windows
    /// splits a secret over its blob limit).
    fn assert_holds(name: &str, secret: &str);
}

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

/// The behaviour every OS keyring's suite checks, each function one test,
/// generic over how the OS shows items to a test.
pub mod spec {
    use serde_json::json;

    use super::{Keyring, Session};
    use crate::support::sts::{Sts, StsOptions};

    /// A secret of 16 KiB that no slice of another secret matches.
    fn sixteen_kib() -> String {
        (0..16 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
    }

    pub fn stored_secret_is_a_keyring_item_and_in_no_file<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("plain");
        let secret = "keyring-only-secret-4f1b9c";
        session.store(&registry, "alice", secret).quiet_success();
        K::assert_holds(&registry, secret);
        assert_eq!(session.sandbox.files_containing(secret), Vec::<std::path::PathBuf>::new());
    }

    pub fn get_reads_the_secret_back_from_the_keyring<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("get");
        session.store(&registry, "alice", "pw-from-the-keyring").quiet_success();
        let out = session.sandbox.get(&format!("https://{registry}/")).quiet_success();
        assert_eq!(out.json()["Username"], "alice");
        assert_eq!(out.secret(), "pw-from-the-keyring");
    }

    pub fn storing_again_replaces_the_item<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("replace");
        session.store(&registry, "alice", "first-password").quiet_success();
        session.store(&registry, "bob", "second-password").quiet_success();
        K::assert_holds(&registry, "second-password");
        let out = session.sandbox.get(&registry).quiet_success();
        assert_eq!(out.json()["Username"], "bob");
        assert_eq!(out.secret(), "second-password");
    }

    pub fn erase_removes_the_item<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("erase");
        session.store(&registry, "alice", "to-be-erased").quiet_success();
        session.sandbox.erase(&registry).quiet_success();
        assert!(!K::has_item(&registry), "the keyring item outlived erase");
        session.sandbox.get(&registry).protocol_error("credentials not found in native keychain");
    }

    pub fn erasing_a_registry_never_stored_succeeds<K: Keyring>() {
        // The keyring answers "not found" (errSecItemNotFound,
        // ERROR_NOT_FOUND), which must not fail `docker logout`.
        let session = Session::new();
        let registry = session.registry("never");
        session.sandbox.erase(&registry).quiet_success();
        assert!(!K::has_item(&registry));
    }

    pub fn get_of_a_registry_never_stored_is_not_found<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("missing");
        session.sandbox.get(&registry).protocol_error("credentials not found in native keychain");
    }

    pub fn list_comes_from_the_index_without_secrets<K: Keyring>() {
        let session = Session::new();
        let a = session.registry("list-a");
        let b = session.registry("list-b");
        session.store(&a, "alice", "secret-a").quiet_success();
        session.store(&format!("https://{b}/"), "bob", "secret-b").quiet_success();
        let out = session.sandbox.list().quiet_success();
        assert_eq!(out.json(), json!({ a.clone(): "alice", format!("https://{b}/"): "bob" }));
        assert!(session.sandbox.files_containing("secret-").is_empty());
    }

    pub fn sixteen_kib_secret_is_kept_as_the_keyring_allows_and_read_back_whole<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("long");
        let long = sixteen_kib();
        session.store(&registry, "alice", &long).quiet_success();
        K::assert_holds(&registry, &long);
        assert!(session.sandbox.get(&registry).quiet_success().secret() == long, "get did not read it whole");
    }

    pub fn sixteen_kib_login_token_is_kept_and_sent_whole<K: Keyring>() {
        let session = Session::new();
        let registry = session.registry("login");
        let sts = Sts::start(StsOptions::default());
        session.sandbox.write_exchange_config(&registry, &sts.url(), json!({}));
        let token = sts.mint_subject_token(&"s".repeat(12 * 1024), 3600);
        assert!(token.len() > 16 * 1024, "{}", token.len());

        session.sandbox.cmd(&["login", &registry, "--token-stdin"]).stdin(&token).run().success();
        K::assert_holds(&registry, &token);
        // Without the cache this `get` must read the login token back from
        // the keyring and exchange it.
        session
            .sandbox
            .cmd(&["get"])
            .env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1")
            .stdin(&registry)
            .run()
            .quiet_success();
        let request = sts.last_request().expect("an exchange");
        assert!(request.form_value("subject_token") == Some(token.as_str()), "the STS got a different token");
        assert!(session.sandbox.files_containing(&token).is_empty(), "the login token is in a file");
    }
}

/// One `#[test]` for each function of [`spec`], run against the keyring
/// type given (an implementation of [`Keyring`]). Every suite compiles this
/// module; only the keyring suites use the macro.
#[allow(unused_macros)]
macro_rules! native_keyring_spec {
    ($keyring:ty) => {
        $crate::support::native_keyring::native_keyring_spec!(@tests $keyring:
            stored_secret_is_a_keyring_item_and_in_no_file,
            get_reads_the_secret_back_from_the_keyring,
            storing_again_replaces_the_item,
            erase_removes_the_item,
            erasing_a_registry_never_stored_succeeds,
            get_of_a_registry_never_stored_is_not_found,
            list_comes_from_the_index_without_secrets,
            sixteen_kib_secret_is_kept_as_the_keyring_allows_and_read_back_whole,
            sixteen_kib_login_token_is_kept_and_sent_whole,
        );
    };
    (@tests $keyring:ty: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::support::native_keyring::spec::$name::<$keyring>();
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use native_keyring_spec;
