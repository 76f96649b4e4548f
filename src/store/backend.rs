//! What each OS keyring is and does differently: its limits and the words
//! that tell a person how to unlock or reach it.
//!
//! On macOS and Windows `keyring-core` builds an entry by handing the
//! caller's *modifiers* to the platform store, which refuses any key its
//! `build` does not list (a `label`, which only the Secret Service takes,
//! once made every `store`, `get` and `erase` fail there). So the helper
//! passes none, [`ENTRY_MODIFIERS`], and a unit test holds that against
//! each store crate's list, read from its `build` at the versions pinned in
//! Cargo.toml (another test fails when a pinned version changes).

/// The modifiers the helper passes to `keyring-core` for every entry:
/// none. The Keychain shows the service and account, Credential Manager
/// the target `name.docker-credential-exchange`, both readable already; the
/// Secret Service, which shows a label to people, is labelled by
/// `secret_service.rs`.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) const ENTRY_MODIFIERS: [(&str, &str); 0] = [];

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
    fn no_store_refuses_the_modifiers_the_helper_passes() {
        use std::collections::HashMap;
        // Each store crate's `build` runs this first with its own keys:
        // apple-native-keyring-store 1.0.3 `["keychain"]`,
        // windows-native-keyring-store 1.1.0 `["target", "persistence"]`
        // (the Secret Service goes through no store crate).
        let ours: HashMap<&str, &str> = ENTRY_MODIFIERS.into_iter().collect();
        for accepted in [&["keychain"][..], &["target", "persistence"][..]] {
            let parsed = keyring_core::attributes::parse_attributes(accepted, Some(&ours));
            assert!(parsed.is_ok(), "{accepted:?} refuses {:?}: {parsed:?}", ours.keys());
        }
        // A key a store does not list is refused: what broke every entry
        // when the helper once passed a `label`.
        let label = HashMap::from([("label", "x")]);
        assert!(keyring_core::attributes::parse_attributes(&["keychain"], Some(&label)).is_err());
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
