//! What each OS keyring accepts, in one table, so that a setting valid on
//! one OS can never silently break another.
//!
//! On macOS and Windows `keyring-core` builds an entry by handing the
//! caller's *modifiers* to the platform store, and every store crate passes
//! them through
//! `keyring_core::attributes::parse_attributes` with its own list of keys:
//! an unknown key is `Invalid(key, "unknown key")` and the entry is never
//! built. A `label` modifier, which only the Secret Service store accepts,
//! once made every `store`, `get` and `erase` fail on macOS and Windows.
//! The lists below are read from the store crates' `build` functions at the
//! versions pinned in Cargo.toml; a unit test checks the modifiers we pass
//! against each list on every platform, and another fails when a pinned
//! version changes, so the lists are re-read before an upgrade lands.

use std::collections::HashMap;

/// An OS keyring, named by the store crate that speaks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// Linux: the freedesktop Secret Service (gnome-keyring, KWallet)
    /// through the helper's own client on the `secret-service` crate
    /// (`secret_service.rs`), which sets the label itself.
    SecretService,
    /// macOS: the login Keychain through `apple-native-keyring-store`.
    MacKeychain,
    /// Windows: Credential Manager through `windows-native-keyring-store`.
    WindowsCredentialManager,
}

/// The store crates and versions whose `build` the tables were read from,
/// and the `secret-service` version whose search, unlock and create
/// semantics `secret_service.rs` was written against.
#[cfg(test)]
pub(crate) const CHECKED_AGAINST: &[(&str, &str)] = &[
    ("keyring-core", "1.1.0"),
    ("secret-service", "5.2.0"),
    ("apple-native-keyring-store", "1.0.3"),
    // Its `set_generic_password` adds after any failed find, which is what
    // `keychain_status` reads errSecDuplicateItem as.
    ("security-framework", "3.7.0"),
    ("windows-native-keyring-store", "1.1.0"),
];

/// Windows Credential Manager's `CRED_MAX_CREDENTIAL_BLOB_SIZE`: the store
/// crate refuses a longer secret with `TooLong`.
pub(crate) const WINDOWS_MAX_BLOB: usize = 2560;

impl Backend {
    /// Every backend, for tests that must hold on all of them.
    #[cfg(test)]
    pub(crate) const ALL: [Backend; 3] =
        [Backend::SecretService, Backend::MacKeychain, Backend::WindowsCredentialManager];

    /// The backend of the OS this binary was built for.
    pub(crate) const fn current() -> Option<Backend> {
        if cfg!(target_os = "linux") {
            Some(Backend::SecretService)
        } else if cfg!(target_os = "macos") {
            Some(Backend::MacKeychain)
        } else if cfg!(windows) {
            Some(Backend::WindowsCredentialManager)
        } else {
            None
        }
    }

    /// The modifier keys the store crate's `build` accepts:
    /// - Secret Service: none, no store crate is involved (the helper's own
    ///   client labels its items);
    /// - apple-native-keyring-store 1.0.3, `keychain::Store::build`:
    ///   `parse_attributes(&["keychain"], modifiers)`;
    /// - windows-native-keyring-store 1.1.0, `Store::build`:
    ///   `parse_attributes(&["target", "persistence"], modifiers)`.
    #[cfg(test)]
    pub(crate) const fn accepted_modifiers(self) -> &'static [&'static str] {
        match self {
            Backend::SecretService => &[],
            Backend::MacKeychain => &["keychain"],
            Backend::WindowsCredentialManager => &["target", "persistence"],
        }
    }

    /// The modifiers the helper passes to `keyring-core` when it builds the
    /// entry for `name`: none. The Keychain shows the service and account,
    /// and Credential Manager the target `name.docker-credential-exchange`,
    /// both readable already; the Secret Service, which shows a label to
    /// people (seahorse, KWallet), is labelled by `secret_service.rs`.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    pub(crate) fn modifiers(self, _name: &str) -> HashMap<&'static str, String> {
        HashMap::new()
    }

    /// The longest secret one item may hold; longer ones are split across
    /// items (see `chunked`).
    pub(crate) const fn max_blob(self) -> usize {
        match self {
            Backend::WindowsCredentialManager => WINDOWS_MAX_BLOB,
            Backend::SecretService | Backend::MacKeychain => usize::MAX,
        }
    }

    /// How a person unlocks this keyring when it is locked, with or
    /// without a desktop session. (gnome-keyring takes a password on stdin
    /// only when it starts, so a running one is replaced by one that
    /// unlocks: `--replace`.)
    pub(crate) const fn how_to_unlock(self) -> &'static str {
        match self {
            Backend::SecretService => {
                "in a desktop session, log in to it or unlock the login keyring in seahorse; without one, \
                 give gnome-keyring its password on stdin: \
                 `read -rs pw && printf '%s' \"$pw\" | gnome-keyring-daemon --replace --unlock`"
            }
            Backend::MacKeychain => "`security unlock-keychain login.keychain-db`",
            Backend::WindowsCredentialManager => "log in interactively to this Windows session",
        }
    }

    /// What a person does when this keyring cannot be reached, besides the
    /// file store and non-keyring subject sources.
    pub(crate) const fn how_to_reach(self) -> &'static str {
        match self {
            Backend::SecretService => "start a Secret Service (e.g. gnome-keyring under dbus-run-session)",
            Backend::MacKeychain => {
                "unlock the login keychain (`security unlock-keychain login.keychain-db`)"
            }
            Backend::WindowsCredentialManager => {
                "log in interactively so Credential Manager is available to this session"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_accepts_every_modifier_the_helper_passes() {
        for backend in Backend::ALL {
            let ours = backend.modifiers("registry.example.com");
            let borrowed: HashMap<&str, &str> = ours.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // The very function each store crate's `build` runs first.
            let parsed =
                keyring_core::attributes::parse_attributes(backend.accepted_modifiers(), Some(&borrowed));
            assert!(parsed.is_ok(), "{backend:?} would refuse {:?}: {parsed:?}", borrowed.keys());
        }
    }

    #[test]
    fn a_label_is_refused_where_the_store_does_not_list_it() {
        // The bug this table exists to prevent, reproduced on Linux.
        let label = HashMap::from([("label", "x")]);
        for backend in Backend::ALL {
            let parsed =
                keyring_core::attributes::parse_attributes(backend.accepted_modifiers(), Some(&label));
            assert!(parsed.is_err(), "{backend:?}");
        }
    }

    #[test]
    fn the_tables_were_read_from_the_locked_store_crates() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
        for (name, version) in CHECKED_AGAINST {
            let entry = format!("name = \"{name}\"\nversion = \"{version}\"");
            assert!(
                lock.contains(&entry),
                "Cargo.lock no longer has {name} {version}: re-read its `build` and update Backend's tables"
            );
        }
    }

    #[test]
    fn only_windows_splits_long_secrets() {
        assert_eq!(Backend::WindowsCredentialManager.max_blob(), 2560);
        assert_eq!(Backend::SecretService.max_blob(), usize::MAX);
        assert_eq!(Backend::MacKeychain.max_blob(), usize::MAX);
    }

    #[test]
    fn this_platform_has_a_backend() {
        if cfg!(any(target_os = "linux", target_os = "macos", windows)) {
            assert!(Backend::current().is_some());
        }
    }
}
