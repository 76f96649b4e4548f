//! What a Keychain status code means to a person, where
//! apple-native-keyring-store 1.0.3's mapping misleads.
//!
//! security-framework 3.7.0's `set_generic_password` looks the item up and,
//! when that fails *for any reason*, adds a new one. An item whose access
//! list does not trust this binary (the usual case after an upgrade changed
//! its signature, with no one to answer the access prompt, or a prompt
//! denied) fails the lookup, and the add then meets the item itself:
//! errSecDuplicateItem (-25299). The store crate's `decode_error` maps
//! that, like errSecInvalidOwnerEdit (-25244) and wrPermErr (-61), to
//! `NoStorageAccess`, which reads as "no keyring is reachable; unlock it",
//! although the keychain is there and unlocked. These codes are named here
//! for what they are: the item's access list. Pure logic, compiled and
//! tested on every platform; only macOS calls it.

use super::{SERVICE, StoreError};

/// errSecDuplicateItem.
pub(crate) const DUPLICATE_ITEM: i32 = -25299;
/// errSecInvalidOwnerEdit.
pub(crate) const INVALID_OWNER_EDIT: i32 = -25244;
/// wrPermErr.
pub(crate) const WRITE_PERMISSION: i32 = -61;

/// The error for a Keychain status `code` met writing or deleting the item
/// `name`, when the code means the item's access list refused this
/// program; `None` for every other code (the store crate's mapping
/// stands).
pub(crate) fn refused_by_access_list(code: i32, name: &str) -> Option<StoreError> {
    if !matches!(code, DUPLICATE_ITEM | INVALID_OWNER_EDIT | WRITE_PERMISSION) {
        return None;
    }
    Some(StoreError::Keyring(format!(
        "the Keychain item for {name} exists, but its access list does not let this program change it \
         (status {code}; usually after an upgrade replaced the binary). Delete the item and store the \
         credentials again (`security delete-generic-password -s {SERVICE} -a {name}`, or in Keychain \
         Access), or allow this program under the item's Access Control in Keychain Access"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_access_list_is_named_with_both_ways_out() {
        for code in [DUPLICATE_ITEM, INVALID_OWNER_EDIT, WRITE_PERMISSION] {
            let e = refused_by_access_list(code, "registry.example.com").expect("an access-list error");
            let text = e.to_string();
            assert!(!matches!(e, StoreError::KeyringUnavailable(_)), "{text}");
            assert!(text.contains("access list"), "{text}");
            assert!(
                text.contains(
                    "security delete-generic-password -s docker-credential-exchange -a registry.example.com"
                ),
                "{text}"
            );
            assert!(text.contains("Access Control in Keychain Access"), "{text}");
        }
    }

    #[test]
    fn other_keychain_codes_keep_the_store_crates_meaning() {
        // errSecItemNotFound, errSecNotAvailable, errSecInteractionNotAllowed.
        for code in [-25300, -25291, -25308] {
            assert!(refused_by_access_list(code, "r").is_none(), "{code}");
        }
    }
}
