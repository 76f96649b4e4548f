//! The Linux keyring: the freedesktop Secret Service (gnome-keyring,
//! KWallet, KeePassXC) on the user's session bus, through the
//! `secret-service` crate.
//!
//! Items are the ones `zbus-secret-service-keyring-store` made before this
//! client replaced it, so nothing stored earlier needs migrating: the
//! attributes `service` (always [`SERVICE`]) and `username` (the item's
//! name), in the default collection, with a readable label. A lookup
//! matches on those two attributes only, as that store did, so an item
//! that also carries a `target` is still found.
//!
//! Secrets go only to a Secret Service that is this user's ([`bus`]): the
//! bus daemon's peer credentials and the service's owner must be this
//! user's, or, where they cannot be checked (`tcp:`), the user must have
//! opted in; anything else is refused with the reason.
//!
//! The session uses the Secret Service's `plain` algorithm on this user's
//! own bus, and the encrypted `dh-ietf1024-sha256-aes128-cbc-pkcs7` one on
//! a bus trusted by opt-in (whose traffic may cross a network) or when a
//! service refuses `plain`. The encrypted session authenticates nobody, so
//! it is never a reason to trust a service; it costs a 1024-bit
//! Diffie-Hellman key agreement on both ends of every process's first
//! keyring call: 31 M instructions in the client and about 2.5 ms of the
//! service's time, against 0.65 M for the whole plain exchange.
//! bench/RESULTS.md ("The keyring path's threat model") says what the
//! keyring path trusts and refuses.

use std::collections::HashMap;
use std::sync::OnceLock;

use secret_service::blocking::{Item, SecretService};
use secret_service::{EncryptionType, Error as SsError};

use super::chunked::RawKeyring;
use super::{SERVICE, StoreError};
use bus::{SessionBus, Trust};
use fast::{FastRead, fast_read};

mod bus;
mod fast;

/// The content type of every item written, as the previous store wrote it.
const CONTENT_TYPE: &str = "application/octet-stream";

/// What people see in seahorse or KWallet for the item named `name`.
pub(crate) fn label(name: &str) -> String {
    format!("Docker credentials for {name} (docker-credential-exchange)")
}

/// The Secret Service, connected on first use (a cache hit or a `list`
/// never pays for a D-Bus connection).
#[derive(Default)]
pub struct SecretServiceKeyring {
    connection: OnceLock<Result<SecretService<'static>, Unreachable>>,
}

/// Why the service cannot be used at all, described once.
#[derive(Clone)]
struct Unreachable(String);

impl SecretServiceKeyring {
    fn service(&self) -> Result<&SecretService<'static>, StoreError> {
        self.connection
            .get_or_init(connect)
            .as_ref()
            .map_err(|Unreachable(why)| StoreError::KeyringUnavailable(why.clone()))
    }

    /// Every item filed under `name`, unlocked (unlocking may prompt).
    fn items<'a>(&self, ss: &'a SecretService<'a>, name: &str) -> Result<Vec<Item<'a>>, StoreError> {
        let found = ss.search_items(attributes(name)).map_err(to_store_error)?;
        if !found.locked.is_empty() {
            let locked: Vec<&Item<'_>> = found.locked.iter().collect();
            ss.unlock_all(&locked).map_err(to_store_error)?;
        }
        Ok(found.unlocked.into_iter().chain(found.locked).collect())
    }

    /// The one item filed under `name`, if any; several are an error the
    /// user resolves, never a guess.
    fn unique<'a>(&self, ss: &'a SecretService<'a>, name: &str) -> Result<Option<Item<'a>>, StoreError> {
        let mut items = self.items(ss, name)?;
        match items.len() {
            0 => Ok(None),
            1 => Ok(items.pop()),
            n => Err(ambiguous(n, name)),
        }
    }
}

fn ambiguous(n: usize, name: &str) -> StoreError {
    StoreError::Keyring(format!(
        "{n} keyring items match {name}; remove the duplicates (e.g. with seahorse or secret-tool clear)"
    ))
}

impl RawKeyring for SecretServiceKeyring {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // The first read of a process takes the one-round-trip-shorter
        // path; anything it cannot settle falls through to the crate.
        if self.connection.get().is_none() {
            match fast_read(name) {
                FastRead::Found(secret) => return Ok(Some(secret)),
                FastRead::Absent => return Ok(None),
                FastRead::Ambiguous(n) => return Err(ambiguous(n, name)),
                FastRead::Unsettled => {}
            }
        }
        let ss = self.service()?;
        match self.unique(ss, name)? {
            Some(item) => item.get_secret().map(Some).map_err(to_store_error),
            None => Ok(None),
        }
    }

    fn set(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let ss = self.service()?;
        if let Some(item) = self.unique(ss, name)? {
            return item.set_secret(bytes, CONTENT_TYPE).map_err(to_store_error);
        }
        let collection = ss.get_default_collection().map_err(to_store_error)?;
        if collection.is_locked().map_err(to_store_error)? {
            collection.unlock().map_err(to_store_error)?;
        }
        collection
            .create_item(&label(name), attributes(name), bytes, true, CONTENT_TYPE)
            .map(drop)
            .map_err(to_store_error)
    }

    fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let ss = self.service()?;
        match self.unique(ss, name)? {
            Some(item) => item.delete().map(|()| true).map_err(to_store_error),
            None => Ok(false),
        }
    }

    /// Reachable, trusted, and unlocked: the default collection (where
    /// items are made) and every item of this helper's. Reads only the
    /// `Locked` properties; unlocking would prompt.
    fn ready(&self) -> Result<(), StoreError> {
        let ss = self.service()?;
        let collection = ss.get_default_collection().map_err(to_store_error)?;
        if collection.is_locked().map_err(to_store_error)? {
            let label = collection.get_label().unwrap_or_default();
            return Err(StoreError::KeyringLocked(format!(
                "its default collection{} is locked, and reading or storing a credential would need \
                 an unlock prompt",
                if label.is_empty() { String::new() } else { format!(", {label:?},") }
            )));
        }
        let locked = ss.search_items(HashMap::from([("service", SERVICE)])).map_err(to_store_error)?.locked;
        if !locked.is_empty() {
            return Err(StoreError::KeyringLocked(format!(
                "{} of this helper's items are in a locked collection, and reading them would need an \
                 unlock prompt",
                locked.len()
            )));
        }
        Ok(())
    }
}

fn attributes(name: &str) -> HashMap<&str, &str> {
    HashMap::from([("service", SERVICE), ("username", name)])
}

/// Opens the session on a bus and with a service that may be given
/// secrets ([`bus`]): `plain` when both are this user's (or if the
/// service refuses `plain`, the encrypted one); the encrypted one on a bus
/// the user chose to trust without a check, whose traffic may leave the
/// machine.
fn connect() -> Result<SecretService<'static>, Unreachable> {
    let mut bus = SessionBus::open().map_err(Unreachable)?;
    let plain = bus.trust == Trust::Own;
    crate::log::debug!(
        "opening {} Secret Service session on {}",
        if plain { "a plain" } else { "an encrypted" },
        bus.shown
    );
    let conn = bus
        .connect_blocking()
        .map_err(|e| Unreachable(format!("no D-Bus session bus at {} ({e})", bus.shown)))?;
    // Opening a session sends no secret, and activates a service that is
    // not running yet; only then does the name have an owner to check.
    let algorithm = if plain { EncryptionType::Plain } else { EncryptionType::Dh };
    let service = match SecretService::connect_with_existing(algorithm, conn.clone()) {
        Err(e) if plain && !matches!(e, SsError::Unavailable) => {
            // A service that refuses `plain` still speaks the encrypted one.
            SecretService::connect_with_existing(EncryptionType::Dh, conn.clone())
        }
        other => other,
    }
    .map_err(|e| Unreachable(describe(&e)))?;
    bus.judge_service(&conn).map_err(Unreachable)?;
    Ok(service)
}

/// One line for a person; never holds a secret (the crate's errors carry
/// D-Bus names and messages, not item contents).
fn describe(e: &SsError) -> String {
    match e {
        SsError::Unavailable => "no D-Bus session bus or no Secret Service on it".into(),
        SsError::Locked => "the keyring is locked".into(),
        SsError::NoResult => {
            "the Secret Service has no default collection (create one, e.g. in seahorse)".into()
        }
        SsError::Prompt => {
            "its unlock prompt was dismissed, or could not be shown without a desktop session".into()
        }
        SsError::PromptDisconnected => "its unlock prompt was cut off".into(),
        other => format!("Secret Service: {other}"),
    }
}

fn to_store_error(e: SsError) -> StoreError {
    match e {
        // The keyring exists but cannot be opened: name the ways out.
        SsError::Unavailable | SsError::NoResult => StoreError::KeyringUnavailable(describe(&e)),
        // It is there, locked, and nobody unlocked it: name the ways to
        // unlock it, a desktop or not.
        SsError::Locked | SsError::Prompt | SsError::PromptDisconnected => {
            StoreError::KeyringLocked(describe(&e))
        }
        // The keyring is there and someone said no (or the prompt died):
        // starting a Secret Service is not the way out.
        _ => StoreError::Keyring(describe(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_the_attributes_and_label_of_the_previous_store() {
        let attrs = attributes("registry.example.com");
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs["service"], "docker-credential-exchange");
        assert_eq!(attrs["username"], "registry.example.com");
        assert_eq!(
            label("registry.example.com"),
            "Docker credentials for registry.example.com (docker-credential-exchange)"
        );
    }

    #[test]
    fn an_absent_service_names_the_ways_out() {
        let e = to_store_error(SsError::Unavailable);
        assert!(matches!(e, StoreError::KeyringUnavailable(_)));
        assert!(e.to_string().contains("DOCKER_CREDENTIAL_EXCHANGE_STORE=file"), "{e}");
    }
}
