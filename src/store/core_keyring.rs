//! The macOS and Windows keyrings through `keyring-core` and their platform
//! store crates (`apple-native-keyring-store`, `windows-native-keyring-store`).
//! Linux has its own client (`secret_service.rs`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use keyring_core::{CredentialStore as KeyringBackend, Entry};

use super::chunked::RawKeyring;
use super::{SERVICE, StoreError};

/// The platform keyring through `keyring-core`, connected lazily.
#[derive(Default)]
pub struct CoreKeyring {
    backend: OnceLock<Result<Arc<KeyringBackend>, String>>,
}

impl CoreKeyring {
    fn backend(&self) -> Result<&Arc<KeyringBackend>, StoreError> {
        self.backend
            .get_or_init(|| platform_store().map_err(|e| describe(&e)))
            .as_ref()
            .map_err(|e| StoreError::KeyringUnavailable(e.clone()))
    }

    fn entry(&self, name: &str) -> Result<Entry, StoreError> {
        // None: the store crates refuse keys they do not list (see `backend`).
        let modifiers: HashMap<&str, &str> = super::backend::ENTRY_MODIFIERS.into_iter().collect();
        Entry::new_in_store_with_modifiers(self.backend()?, SERVICE, name, &modifiers).map_err(to_store_error)
    }
}

impl RawKeyring for CoreKeyring {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.entry(name)?.get_secret() {
            Ok(bytes) => Ok(Some(bytes)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(to_store_error(e)),
        }
    }

    fn set(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.entry(name)?.set_secret(bytes).map_err(|e| write_error(e, name))
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(write_error(e, name)),
        }
    }
}

/// A failed write or delete of `name`: a refusal by the item's access list
/// (macOS) is named as such, not as an unreachable keyring.
fn write_error(e: keyring_core::Error, name: &str) -> StoreError {
    if let keyring_core::Error::NoStorageAccess(p) = &e
        && let Some(code) = platform_status(p.as_ref())
        && let Some(refused) = super::keychain_status::refused_by_access_list(code, name)
    {
        return refused;
    }
    to_store_error(e)
}

/// The Keychain's status code inside a store-crate error.
#[cfg(target_os = "macos")]
fn platform_status(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<i32> {
    e.downcast_ref::<security_framework::base::Error>().map(|e| e.code())
}

#[cfg(not(target_os = "macos"))]
fn platform_status(_: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<i32> {
    None
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    let store: Arc<KeyringBackend> = apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(windows)]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    let store: Arc<KeyringBackend> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_store() -> keyring_core::Result<Arc<KeyringBackend>> {
    Err(keyring_core::Error::NotSupportedByStore("no OS keyring on this platform".into()))
}

/// keyring-core errors, described without the data some variants carry
/// (`BadEncoding` and `BadDataFormat` hold the secret's bytes).
fn describe(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(p) | E::NoStorageAccess(p) => p.to_string(),
        E::BadEncoding(_) | E::BadDataFormat(..) => "a keyring item is not in the expected format".into(),
        E::Ambiguous(items) => format!(
            "{} keyring items match; remove the duplicates (e.g. with seahorse or secret-tool clear)",
            items.len()
        ),
        other => other.to_string(),
    }
}

fn to_store_error(e: keyring_core::Error) -> StoreError {
    use keyring_core::Error as E;
    match &e {
        E::NoStorageAccess(_) | E::NoDefaultStore => StoreError::KeyringUnavailable(describe(&e)),
        // A Secret Service that is absent shows up as a D-Bus failure on
        // first use; name the ways out rather than the D-Bus error alone.
        E::PlatformFailure(p) if looks_unreachable(&p.to_string()) => {
            StoreError::KeyringUnavailable(describe(&e))
        }
        _ => StoreError::Keyring(describe(&e)),
    }
}

fn looks_unreachable(msg: &str) -> bool {
    let msg = msg.to_ascii_lowercase();
    // The last is macOS's errSecInteractionNotAllowed (-25308), which
    // apple-native-keyring-store 1.0.3's `decode_error` leaves a
    // `PlatformFailure`: the login keychain is locked and nobody can be
    // asked to unlock it (an SSH session, a launchd job).
    ["connect", "no such file", "not provided", "locked", "interaction is not allowed"]
        .iter()
        .any(|needle| msg.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_keychain_that_cannot_prompt_is_unreachable() {
        // SecCopyErrorMessageString's text for errSecInteractionNotAllowed.
        assert!(looks_unreachable("User interaction is not allowed."));
    }

    #[test]
    fn an_ordinary_keyring_failure_is_not_unreachable() {
        assert!(!looks_unreachable("Windows error code 1783"));
    }
}
