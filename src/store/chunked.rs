//! Splitting long secrets across several keyring items.
//!
//! Windows Credential Manager refuses a credential blob over 2560 bytes, and
//! login tokens are often longer JWTs. On such a store a long secret is kept
//! as a header item naming the number of parts, plus one item per part; a
//! read joins them. The logic is platform-independent and unit-tested
//! everywhere against an in-memory keyring.
//!
//! On a keyring without a size limit (the Keychain, the Secret Service)
//! nothing is ever split, so `store` and `delete` never read the item to
//! find a header: on macOS a read of an item the Keychain no longer
//! trusts this binary with (after an upgrade changed its signature) raises
//! an access prompt, or fails over SSH, and an `erase` must not read the
//! secret it deletes.

use super::StoreError;

/// Marks a header item. It starts with a NUL byte, which no token or
/// password typed into Docker contains.
const HEADER: &[u8] = b"\0docker-credential-exchange-chunked-v1:";

/// The raw operations of one keyring, keyed by item name.
pub trait RawKeyring {
    /// The bytes stored under `name`, if any.
    ///
    /// # Errors
    /// The keyring failed.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `bytes` under `name`, replacing what was there.
    ///
    /// # Errors
    /// The keyring failed or refused the item.
    fn set(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Deletes `name`; `Ok(false)` if it was not there.
    ///
    /// # Errors
    /// The keyring failed.
    fn delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Whether items can be read and written now without asking anyone.
    /// By default, a read of an item that cannot exist: it reaches the
    /// keyring without touching (or being asked for) any real item.
    ///
    /// # Errors
    /// Why not.
    fn ready(&self) -> Result<(), StoreError> {
        self.get("docker-credential-exchange-doctor.invalid").map(drop)
    }
}

/// Item names of the parts. `#` cannot occur in a normalized server URL,
/// so a part never collides with another registry's item.
fn part_name(name: &str, i: usize) -> String {
    format!("{name}#part-{i}")
}

fn parse_header(bytes: &[u8]) -> Option<usize> {
    let count = bytes.strip_prefix(HEADER)?;
    std::str::from_utf8(count).ok()?.parse().ok()
}

/// Whether a keyring whose items hold at most `max_blob` bytes may hold
/// split secrets, and so must be read before a write or a delete.
fn may_split(max_blob: usize) -> bool {
    max_blob != usize::MAX
}

/// The parts of the secret under `name`, read only where secrets are split.
fn parts_of(kr: &dyn RawKeyring, name: &str, max_blob: usize) -> Result<usize, StoreError> {
    if !may_split(max_blob) {
        return Ok(0);
    }
    Ok(kr.get(name)?.as_deref().and_then(parse_header).unwrap_or(0))
}

/// Stores `secret` under `name`, split into parts of at most `max_blob`
/// bytes when it does not fit in one item.
///
/// # Errors
/// The keyring failed; parts already written are then orphans that the
/// next successful write or delete of `name` replaces or removes. A secret
/// that begins with the header's marker (a NUL byte, then the helper's
/// name) is refused: it would read back as a header, and no token or
/// password begins so.
pub fn store(kr: &dyn RawKeyring, name: &str, secret: &[u8], max_blob: usize) -> Result<(), StoreError> {
    if secret.starts_with(HEADER) {
        return Err(StoreError::Keyring(format!(
            "the secret for {name} begins with a NUL byte and the marker this helper gives split items; \
             no token or password does, so check what is being stored"
        )));
    }
    let old_parts = parts_of(kr, name, max_blob)?;
    let new_parts = if secret.len() <= max_blob {
        kr.set(name, secret)?;
        0
    } else {
        let chunks: Vec<&[u8]> = secret.chunks(max_blob.max(1)).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            kr.set(&part_name(name, i), chunk)?;
        }
        // The header goes last: until it is written, readers see the old
        // secret (or nothing), never a header pointing at missing parts.
        let mut header = HEADER.to_vec();
        header.extend_from_slice(chunks.len().to_string().as_bytes());
        kr.set(name, &header)?;
        chunks.len()
    };
    for i in new_parts..old_parts {
        kr.delete(&part_name(name, i))?;
    }
    Ok(())
}

/// Reads the secret under `name`, joining its parts if it was split.
///
/// # Errors
/// The keyring failed, or a part is missing (reported as corrupt).
pub fn load(kr: &dyn RawKeyring, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(first) = kr.get(name)? else {
        return Ok(None);
    };
    let Some(count) = parse_header(&first) else {
        return Ok(Some(first));
    };
    let mut joined = Vec::new();
    for i in 0..count {
        match kr.get(&part_name(name, i))? {
            Some(part) => joined.extend_from_slice(&part),
            None => {
                return Err(StoreError::Keyring(format!(
                    "the keyring item for {name} is split into {count} parts but part {i} is missing; store the credentials again"
                )));
            }
        }
    }
    Ok(Some(joined))
}

/// Deletes the secret under `name` and all of its parts (on a keyring of
/// items of at most `max_blob` bytes; one without a limit is not read).
///
/// # Errors
/// The keyring failed.
pub fn delete(kr: &dyn RawKeyring, name: &str, max_blob: usize) -> Result<bool, StoreError> {
    let parts = parts_of(kr, name, max_blob)?;
    for i in 0..parts {
        kr.delete(&part_name(name, i))?;
    }
    kr.delete(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::backend::WINDOWS_MAX_BLOB;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    /// An in-memory keyring that, like Windows, refuses blobs over a limit,
    /// and counts the secrets read from it (each one a Keychain access
    /// prompt on macOS when the binary has changed).
    pub(crate) struct MemoryKeyring {
        pub items: RefCell<BTreeMap<String, Vec<u8>>>,
        pub limit: usize,
        pub reads: Cell<usize>,
    }

    impl MemoryKeyring {
        pub(crate) fn new(limit: usize) -> Self {
            MemoryKeyring { items: RefCell::new(BTreeMap::new()), limit, reads: Cell::new(0) }
        }
    }

    impl RawKeyring for MemoryKeyring {
        fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.items.borrow().get(name).cloned())
        }
        fn set(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
            if bytes.len() > self.limit {
                return Err(StoreError::Keyring(format!("blob of {} bytes is too long", bytes.len())));
            }
            self.items.borrow_mut().insert(name.to_owned(), bytes.to_vec());
            Ok(())
        }
        fn delete(&self, name: &str) -> Result<bool, StoreError> {
            Ok(self.items.borrow_mut().remove(name).is_some())
        }
    }

    fn secret_of(len: usize) -> Vec<u8> {
        (0..len).map(|i| b'a' + (i % 26) as u8).collect()
    }

    #[test]
    fn short_secret_is_one_plain_item() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        store(&kr, "r", b"short", WINDOWS_MAX_BLOB).unwrap();
        assert_eq!(kr.items.borrow().len(), 1);
        assert_eq!(kr.items.borrow()["r"], b"short");
    }

    #[test]
    fn sixteen_kib_secret_round_trips_through_a_2560_byte_keyring() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        let secret = secret_of(16 * 1024);
        store(&kr, "r", &secret, WINDOWS_MAX_BLOB).unwrap();
        assert_eq!(load(&kr, "r").unwrap().unwrap(), secret);
        assert_eq!(kr.items.borrow().len(), 1 + 7);
    }

    #[test]
    fn shrinking_a_secret_removes_the_extra_parts() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        store(&kr, "r", &secret_of(10_000), WINDOWS_MAX_BLOB).unwrap();
        store(&kr, "r", b"tiny", WINDOWS_MAX_BLOB).unwrap();
        assert_eq!(kr.items.borrow().len(), 1);
        assert_eq!(load(&kr, "r").unwrap().unwrap(), b"tiny");
    }

    #[test]
    fn delete_removes_every_part() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        store(&kr, "r", &secret_of(6000), WINDOWS_MAX_BLOB).unwrap();
        assert!(delete(&kr, "r", WINDOWS_MAX_BLOB).unwrap());
        assert!(kr.items.borrow().is_empty());
    }

    #[test]
    fn a_keyring_without_a_size_limit_is_never_read_to_store_or_erase() {
        let kr = MemoryKeyring::new(usize::MAX);
        store(&kr, "r", &secret_of(16 * 1024), usize::MAX).unwrap();
        store(&kr, "r", b"replaced", usize::MAX).unwrap();
        assert!(delete(&kr, "r", usize::MAX).unwrap());
        assert!(!delete(&kr, "r", usize::MAX).unwrap());
        assert_eq!(kr.reads.get(), 0, "a secret was read to store or erase it");
        assert!(kr.items.borrow().is_empty());
    }

    #[test]
    fn a_keyring_with_a_size_limit_is_read_to_find_the_parts_it_replaces() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        store(&kr, "r", &secret_of(6000), WINDOWS_MAX_BLOB).unwrap();
        assert!(delete(&kr, "r", WINDOWS_MAX_BLOB).unwrap());
        assert!(kr.reads.get() > 0);
        assert!(kr.items.borrow().is_empty(), "{:?}", kr.items.borrow().keys());
    }

    #[test]
    fn a_secret_that_reads_as_a_header_is_refused_on_every_keyring() {
        for limit in [WINDOWS_MAX_BLOB, usize::MAX] {
            let kr = MemoryKeyring::new(limit);
            let mut secret = HEADER.to_vec();
            secret.extend_from_slice(b"1");
            assert!(store(&kr, "r", &secret, limit).is_err(), "{limit}");
            assert!(kr.items.borrow().is_empty());
        }
    }

    #[test]
    fn missing_part_is_an_error_not_a_short_secret() {
        let kr = MemoryKeyring::new(WINDOWS_MAX_BLOB);
        store(&kr, "r", &secret_of(6000), WINDOWS_MAX_BLOB).unwrap();
        kr.items.borrow_mut().remove("r#part-1");
        assert!(load(&kr, "r").is_err());
    }
}
