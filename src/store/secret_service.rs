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
//! The session uses the Secret Service's `plain` algorithm when the bus is
//! a local Unix socket and both the bus daemon (`SO_PEERCRED`) and the
//! service (`GetConnectionUnixUser`) run as this user, and the
//! encrypted `dh-ietf1024-sha256-aes128-cbc-pkcs7` one otherwise (or when
//! a service refuses `plain`). The encrypted session
//! costs a 1024-bit Diffie-Hellman key agreement on both ends of every
//! process's first keyring call: 31 M instructions in the client and about
//! 2.5 ms of the service's time, against 0.65 M for the whole plain
//! exchange. What the encryption protects against on a per-user bus, and
//! what it does not, is in bench/RESULTS.md ("The plain session's threat
//! model").

use std::collections::HashMap;
use std::sync::OnceLock;

use secret_service::blocking::{Item, SecretService};
use secret_service::{EncryptionType, Error as SsError};

use super::chunked::RawKeyring;
use super::{SERVICE, StoreError};

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
}

/// What the short read path learned.
enum FastRead {
    Found(Vec<u8>),
    Absent,
    Ambiguous(usize),
    /// Locked items, no `plain` session, a bus error: the crate's path
    /// (unlock prompts, the encrypted session, its error messages) decides.
    Unsettled,
}

const BUS_NAME: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_INTERFACE: &str = "org.freedesktop.Secret.Item";

/// A read in one round trip fewer than `secret-service` makes: `OpenSession`
/// and `SearchItems` do not depend on each other, so both are sent before
/// either answer is awaited, then `GetSecret` (0.2-0.3 ms, about 7% of a
/// keyring `get`; bench/RESULTS.md). Only for the `plain` session and
/// unlocked items; everything else is [`FastRead::Unsettled`].
fn fast_read(name: &str) -> FastRead {
    use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
    type Session = (OwnedValue, OwnedObjectPath);
    type Found = (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>);
    /// (session, parameters, value, content type)
    type SecretStruct = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

    let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    if session_algorithm(address.as_deref()) != EncryptionType::Plain {
        return FastRead::Unsettled;
    }
    let Some(stream) = own_session_bus() else {
        crate::debug!("the session bus is not this user's (or not a Unix socket): no plain session");
        return FastRead::Unsettled;
    };
    // zbus's own executor thread would hand every reply from its reader
    // task to this thread; ticking the executor here instead saves a
    // thread and those hand-offs (another 0.2 ms).
    let connect = async {
        zbus::connection::Builder::async_io_unix_stream(stream).internal_executor(false).build().await
    };
    let Ok(conn) = zbus::block_on(connect) else { return FastRead::Unsettled };
    zbus::block_on(driven(&conn, async {
        let open_args = ("plain", Value::from(""));
        let search_args = (attributes(name),);
        // The owner check travels with the other two: no round trip of
        // its own, and no secret is asked for until it has passed.
        let (ours, (opened, searched)) = both(
            service_is_ours(&conn),
            both(
                conn.call_method(
                    Some(BUS_NAME),
                    SERVICE_PATH,
                    Some(SERVICE_INTERFACE),
                    "OpenSession",
                    &open_args,
                ),
                conn.call_method(
                    Some(BUS_NAME),
                    SERVICE_PATH,
                    Some(SERVICE_INTERFACE),
                    "SearchItems",
                    &search_args,
                ),
            ),
        )
        .await;
        if !ours {
            crate::debug!("the Secret Service is not this user's: no plain session");
            return FastRead::Unsettled;
        }
        let Ok((_, session)) = opened.and_then(|m| m.body().deserialize::<Session>()) else {
            return FastRead::Unsettled;
        };
        let Ok((unlocked, locked)) = searched.and_then(|m| m.body().deserialize::<Found>()) else {
            return FastRead::Unsettled;
        };
        match (unlocked.as_slice(), locked.len()) {
            ([], 0) => FastRead::Absent,
            ([item], 0) => {
                let reply = conn
                    .call_method(
                        Some(BUS_NAME),
                        item.as_str(),
                        Some(ITEM_INTERFACE),
                        "GetSecret",
                        &(&session,),
                    )
                    .await;
                match reply.and_then(|m| m.body().deserialize::<(SecretStruct,)>()) {
                    Ok(((_, _, value, _),)) => {
                        crate::debug!("read the keyring item for {name} over a plain session");
                        FastRead::Found(value)
                    }
                    Err(_) => FastRead::Unsettled,
                }
            }
            (_, 0) => FastRead::Ambiguous(unlocked.len()),
            _ => FastRead::Unsettled,
        }
    }))
}

/// A connection to the session bus when it is a Unix socket whose other
/// end, the bus daemon, runs as this user (the kernel's `SO_PEERCRED`, not
/// anything the daemon says). Only then can a `plain` session keep secrets
/// among this user's processes: a socket in a shared `/tmp` or a relay to
/// another user's bus gets the encrypted session. zbus can report the
/// peer's credentials too, but looks up its groups through NSS on a thread
/// of its own (0.5 M instructions); the uid is all that matters here.
fn own_session_bus() -> Option<std::os::unix::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    use zbus::address::transport::{Transport, UnixSocket};
    let address = zbus::Address::session().ok()?;
    let Transport::Unix(unix) = address.transport() else { return None };
    let stream = match unix.path() {
        UnixSocket::File(path) => UnixStream::connect(path).ok()?,
        UnixSocket::Abstract(name) => {
            UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_encoded_bytes()).ok()?).ok()?
        }
        _ => return None,
    };
    (peer_uid(&stream)? == crate::fsutil::current_uid()).then_some(stream)
}

/// The user id of the process at the other end of `stream`.
fn peer_uid(stream: &std::os::unix::net::UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given,
    // and the descriptor is open for as long as `stream` is borrowed.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<libc::ucred>()).then_some(cred.uid)
}

/// Whether the process that owns the Secret Service's name on `conn` (a
/// bus of this user's, so its answer can be believed) runs as this user:
/// not a name someone else took first.
async fn service_is_ours(conn: &zbus::Connection) -> bool {
    let owner = conn
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetConnectionUnixUser",
            &(BUS_NAME,),
        )
        .await
        .and_then(|m| m.body().deserialize::<u32>());
    matches!(owner, Ok(uid) if uid == crate::fsutil::current_uid())
}

/// Both checks, on a connection of their own, for the crate's path, which
/// does not lend its connection.
fn bus_and_service_are_ours() -> bool {
    let Some(stream) = own_session_bus() else { return false };
    zbus::block_on(async {
        match zbus::connection::Builder::async_io_unix_stream(stream).build().await {
            Ok(conn) => service_is_ours(&conn).await,
            Err(_) => false,
        }
    })
}

/// Runs `work` while ticking `conn`'s executor, which reads the socket and
/// dispatches replies (the connection was built without its own thread).
async fn driven<F: Future>(conn: &zbus::Connection, work: F) -> F::Output {
    use std::task::Poll;
    let mut work = std::pin::pin!(work);
    let mut ticker = std::pin::pin!(async {
        loop {
            conn.executor().tick().await;
        }
    });
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        // The ticker never finishes; it only makes progress.
        let _: Poll<()> = ticker.as_mut().poll(cx);
        Poll::Pending
    })
    .await
}

/// Awaits two futures together (both make progress; neither waits for the
/// other to finish first).
async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut done_a, mut done_b) = (None, None);
    std::future::poll_fn(|cx| {
        if done_a.is_none()
            && let Poll::Ready(out) = a.as_mut().poll(cx)
        {
            done_a = Some(out);
        }
        if done_b.is_none()
            && let Poll::Ready(out) = b.as_mut().poll(cx)
        {
            done_b = Some(out);
        }
        match (done_a.take(), done_b.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (done_a, done_b) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

fn attributes(name: &str) -> HashMap<&str, &str> {
    HashMap::from([("service", SERVICE), ("username", name)])
}

/// Opens the session: `plain` on a local bus that is this user's, with a
/// service that is this user's; else (or if the service refuses `plain`)
/// the encrypted one.
fn connect() -> Result<SecretService<'static>, Unreachable> {
    let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
    let mut algorithm = session_algorithm(address.as_deref());
    if algorithm == EncryptionType::Plain && !bus_and_service_are_ours() {
        algorithm = EncryptionType::Dh;
    }
    crate::debug!(
        "opening {} Secret Service session",
        if algorithm == EncryptionType::Plain { "a plain" } else { "an encrypted" }
    );
    let result = match algorithm {
        EncryptionType::Plain => match SecretService::connect(EncryptionType::Plain) {
            // A service that refuses `plain` still speaks the encrypted one.
            Err(e) if !matches!(e, SsError::Unavailable) => SecretService::connect(EncryptionType::Dh),
            other => other,
        },
        EncryptionType::Dh => SecretService::connect(EncryptionType::Dh),
    };
    result.map_err(|e| Unreachable(describe(&e)))
}

/// The session algorithm for a session bus at `address`
/// (`DBUS_SESSION_BUS_ADDRESS`; unset means zbus's default,
/// `$XDG_RUNTIME_DIR/bus`, a Unix socket).
///
/// Secrets cross the bus in the clear with `plain`, so it is considered
/// only when every address the client might use is a Unix socket: that
/// traffic stays in the kernel. A TCP bus (`tcp:`, `nonce-tcp:`, anything
/// unknown) gets the encrypted session; a Unix one gets `plain` only once
/// [`own_session_bus`] and [`service_is_ours`] have seen that the bus and
/// the service are this user's.
fn session_algorithm(address: Option<&str>) -> EncryptionType {
    let local = match address {
        None => true,
        Some(list) => {
            let mut addresses = list.split(';').map(str::trim).filter(|a| !a.is_empty()).peekable();
            addresses.peek().is_some() && addresses.all(|a| a.starts_with("unix:"))
        }
    };
    if local { EncryptionType::Plain } else { EncryptionType::Dh }
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
            "the keyring's unlock prompt was dismissed; unlock the keyring and run again".into()
        }
        SsError::PromptDisconnected => {
            "the keyring's unlock prompt was cut off; unlock the keyring and run again".into()
        }
        other => format!("Secret Service: {other}"),
    }
}

fn to_store_error(e: SsError) -> StoreError {
    match e {
        // The keyring exists but cannot be opened: name the ways out.
        SsError::Unavailable | SsError::Locked | SsError::NoResult => {
            StoreError::KeyringUnavailable(describe(&e))
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
    fn a_unix_socket_bus_gets_the_plain_session() {
        for address in [
            None,
            Some("unix:path=/run/user/1000/bus"),
            Some("unix:abstract=/tmp/dbus-x,guid=0123"),
            Some("unix:path=/a;unix:path=/b"),
        ] {
            assert_eq!(session_algorithm(address), EncryptionType::Plain, "{address:?}");
        }
    }

    #[test]
    fn a_bus_that_may_be_reached_over_tcp_gets_the_encrypted_session() {
        for address in [
            "tcp:host=10.0.0.5,port=4000",
            "nonce-tcp:host=localhost,port=4000,noncefile=/tmp/n",
            "unix:path=/run/user/1000/bus;tcp:host=h,port=1",
            "autolaunch:",
            "",
        ] {
            assert_eq!(session_algorithm(Some(address)), EncryptionType::Dh, "{address:?}");
        }
    }

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
