//! Whose the session bus and the Secret Service on it are, judged before
//! any secret is sent.
//!
//! A secret written to a Secret Service belongs to whoever runs it. The
//! encrypted (Diffie-Hellman) session authenticates nobody: it keeps the
//! secret from the bus, never from the far end. So the keyring is used only
//! when the kernel says the bus daemon at the other end of the socket runs
//! as this user (`SO_PEERCRED`) and that bus says the same of the process
//! that owns `org.freedesktop.secrets` (`GetConnectionUnixUser`). A bus or
//! service known to be another user's (a stale `DBUS_SESSION_BUS_ADDRESS`
//! in tmux, screen or a CI runner pointing at someone's socket in `/tmp`)
//! is refused, saying why. A bus whose peer cannot be checked (`tcp:`,
//! `nonce-tcp:`, anything that is not a Unix socket with peer credentials)
//! is refused too, unless the user opts in with
//! `DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE=trust-unverified-bus`.

use std::os::unix::net::UnixStream;

use zbus::address::transport::{Transport, Unix, UnixSocket};

/// The variable through which a user trusts a bus that cannot be checked.
pub(crate) const TRUST_ENV: &str = "DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE";
/// Its one value.
pub(crate) const TRUST_UNVERIFIED: &str = "trust-unverified-bus";

/// The Secret Service's well-known name.
pub(super) const BUS_NAME: &str = "org.freedesktop.secrets";

/// The session bus, judged fit for secrets.
pub(super) struct SessionBus {
    /// How it is shown in messages.
    pub(super) shown: String,
    /// What was learnt of its daemon.
    pub(super) trust: Trust,
    address: zbus::Address,
    /// The connected socket, for a Unix bus (used as it is, so that the
    /// daemon checked is the daemon spoken to).
    stream: Option<UnixStream>,
}

/// Why a bus is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trust {
    /// Its daemon runs as this user, by the kernel's word.
    Own,
    /// Nobody can say whose it is; the user opted in.
    OptedIn,
}

/// Who runs the process at the far end, as far as can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// This user id.
    Uid(u32),
    /// Not known (no peer credentials, or the bus could not say).
    Unknown,
}

/// What is being judged, for the message.
#[derive(Debug, Clone, Copy)]
enum Judged {
    Bus,
    Service,
}

impl SessionBus {
    /// The session bus this process would use, if it may be used: its
    /// address (the first of `DBUS_SESSION_BUS_ADDRESS`'s, as libdbus tries
    /// them in order, or zbus's default `$XDG_RUNTIME_DIR/bus`) connected
    /// and its daemon's user checked.
    ///
    /// # Errors
    /// One line for a person: no bus, another user's bus, or a bus that
    /// cannot be checked without the opt-in.
    pub(super) fn open() -> Result<SessionBus, String> {
        let address = session_address()?;
        let shown = crate::redact::bounded(&address.to_string(), 120);
        let (stream, peer) = match address.transport() {
            Transport::Unix(unix) => {
                let stream =
                    connect_unix(unix).map_err(|e| format!("no D-Bus session bus at {shown} ({e})"))?;
                let peer = peer_uid(&stream).map_or(Peer::Unknown, Peer::Uid);
                (Some(stream), peer)
            }
            _ => (None, Peer::Unknown),
        };
        let trust = judge(Judged::Bus, &shown, peer, crate::fsutil::current_uid(), &opt_in())?;
        Ok(SessionBus { shown, trust, address, stream })
    }

    /// A blocking connection over the judged socket (or, for an opted-in
    /// bus that is not a Unix socket, to its address).
    ///
    /// # Errors
    /// The bus refused the connection.
    pub(super) fn connect_blocking(&mut self) -> zbus::Result<zbus::blocking::Connection> {
        match self.stream.take() {
            Some(stream) => zbus::blocking::connection::Builder::async_io_unix_stream(stream).build(),
            None => zbus::blocking::connection::Builder::address(self.address.clone())?.build(),
        }
    }

    /// Whether the Secret Service on `conn` (this bus) may be given
    /// secrets: it must run as this user, or the user must have opted in
    /// where that cannot be known.
    ///
    /// # Errors
    /// One line for a person, as for [`SessionBus::open`].
    pub(super) fn judge_service(&self, conn: &zbus::blocking::Connection) -> Result<(), String> {
        let owner = zbus::block_on(service_owner(conn.inner()));
        judge(Judged::Service, &self.shown, owner, crate::fsutil::current_uid(), &opt_in()).map(drop)
    }
}

/// `DBUS_SESSION_BUS_ADDRESS`'s first address (or zbus's default), for
/// messages and for connecting.
fn session_address() -> Result<zbus::Address, String> {
    let first = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .and_then(|list| list.split(';').map(str::trim).find(|a| !a.is_empty()).map(str::to_owned));
    let parsed = match &first {
        Some(address) => address.parse::<zbus::Address>(),
        None => zbus::Address::session(),
    };
    parsed.map_err(|e| {
        let shown = first.as_deref().map(|a| crate::redact::bounded(a, 120)).unwrap_or_default();
        format!("DBUS_SESSION_BUS_ADDRESS={shown:?} is not a D-Bus address this helper can use ({e})")
    })
}

/// A connection to the session bus when it is a Unix socket whose daemon
/// runs as this user, else `None`: the fast read's test, which says
/// nothing about why (a later [`SessionBus::open`] does).
pub(super) fn own_session_bus() -> Option<UnixStream> {
    let address = session_address().ok()?;
    let Transport::Unix(unix) = address.transport() else { return None };
    let stream = connect_unix(unix).ok()?;
    (peer_uid(&stream)? == crate::fsutil::current_uid()).then_some(stream)
}

fn connect_unix(unix: &Unix) -> std::io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    match unix.path() {
        UnixSocket::File(path) => UnixStream::connect(path),
        UnixSocket::Abstract(name) => {
            UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_encoded_bytes())?)
        }
        _ => Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "not a socket path")),
    }
}

/// The user id of the process at the other end of `stream`, from the
/// kernel (`SO_PEERCRED`), not from anything the peer says. zbus can report
/// the peer's credentials too, but looks up its groups through NSS on a
/// thread of its own (0.5 M instructions); the uid is all that matters.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
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

/// The user the bus says owns the Secret Service's name on `conn`: the
/// one question both the blocking store and the fast read ask (a name
/// someone else took first is refused by both).
pub(super) async fn service_owner(conn: &zbus::Connection) -> Peer {
    conn.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        "GetConnectionUnixUser",
        &(BUS_NAME,),
    )
    .await
    .and_then(|m| m.body().deserialize::<u32>())
    .map_or(Peer::Unknown, Peer::Uid)
}

/// What the user said through [`TRUST_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum OptIn {
    Given,
    Absent,
    /// Set to something else, shown (bounded) in the refusal.
    Other(String),
}

fn opt_in() -> OptIn {
    match std::env::var(TRUST_ENV) {
        Ok(value) if value.trim() == TRUST_UNVERIFIED => OptIn::Given,
        Ok(value) if value.trim().is_empty() => OptIn::Absent,
        Ok(value) => OptIn::Other(crate::redact::bounded(&value, 40)),
        Err(_) => OptIn::Absent,
    }
}

/// The rule, apart from the system: a process of this user's is used; one
/// known to be another user's never is (no opt-in changes that); one that
/// cannot be checked only with the opt-in.
fn judge(what: Judged, shown: &str, peer: Peer, me: u32, opt_in: &OptIn) -> Result<Trust, String> {
    match (peer, opt_in) {
        (Peer::Uid(uid), _) if uid == me => Ok(Trust::Own),
        (Peer::Uid(uid), _) => Err(match what {
            Judged::Bus => format!(
                "the session bus at {shown} is run by uid {uid}, not by this user (uid {me}): a keyring \
                 on it is that user's and would get the secret. Use your own session bus: unset \
                 DBUS_SESSION_BUS_ADDRESS or point it at yours (e.g. unix:path=$XDG_RUNTIME_DIR/bus); a \
                 value left over in tmux, screen or a CI runner is the usual cause"
            ),
            Judged::Service => format!(
                "the Secret Service ({BUS_NAME}) on the session bus at {shown} is run by uid {uid}, not by \
                 this user (uid {me}), and would get the secret. Stop it and start your own keyring \
                 on your own session bus"
            ),
        }),
        (Peer::Unknown, OptIn::Given) => Ok(Trust::OptedIn),
        (Peer::Unknown, _) => {
            let subject = match what {
                Judged::Bus => format!("which user runs the session bus at {shown}"),
                Judged::Service => {
                    format!("which user runs the Secret Service on the session bus at {shown}")
                }
            };
            let ignored = match opt_in {
                OptIn::Other(value) => format!(" ({TRUST_ENV}={value:?} is not that value)"),
                _ => String::new(),
            };
            Err(format!(
                "{subject} cannot be checked: only a local Unix socket says who is at its other end, \
                 and the keyring there may be another user's. Use your own session bus, or, if you \
                 trust this one, set {TRUST_ENV}={TRUST_UNVERIFIED}{ignored}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;
    const SHOWN: &str = "unix:path=/tmp/dbus-x";

    #[test]
    fn a_bus_and_a_service_of_this_user_are_used() {
        for what in [Judged::Bus, Judged::Service] {
            assert_eq!(judge(what, SHOWN, Peer::Uid(ME), ME, &OptIn::Absent), Ok(Trust::Own));
        }
    }

    #[test]
    fn another_users_bus_is_refused_even_with_the_opt_in() {
        for opt_in in [OptIn::Absent, OptIn::Given] {
            let why = judge(Judged::Bus, SHOWN, Peer::Uid(65534), ME, &opt_in).unwrap_err();
            assert!(why.contains("run by uid 65534, not by this user (uid 1000)"), "{why}");
            assert!(why.contains(SHOWN), "{why}");
            assert!(why.contains("unset DBUS_SESSION_BUS_ADDRESS"), "{why}");
        }
    }

    #[test]
    fn another_users_secret_service_is_refused_even_with_the_opt_in() {
        for opt_in in [OptIn::Absent, OptIn::Given] {
            let why = judge(Judged::Service, SHOWN, Peer::Uid(0), ME, &opt_in).unwrap_err();
            assert!(why.contains("org.freedesktop.secrets"), "{why}");
            assert!(why.contains("run by uid 0, not by this user (uid 1000)"), "{why}");
        }
    }

    #[test]
    fn a_bus_that_cannot_be_checked_needs_the_opt_in_and_says_how() {
        let why = judge(Judged::Bus, "tcp:host=127.0.0.1,port=4000", Peer::Unknown, ME, &OptIn::Absent)
            .unwrap_err();
        assert!(why.contains("DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE=trust-unverified-bus"), "{why}");
        assert_eq!(
            judge(Judged::Bus, "tcp:host=127.0.0.1,port=4000", Peer::Unknown, ME, &OptIn::Given),
            Ok(Trust::OptedIn)
        );
    }

    #[test]
    fn a_misspelt_opt_in_is_named_not_obeyed() {
        let why = judge(Judged::Service, SHOWN, Peer::Unknown, ME, &OptIn::Other("yes".into())).unwrap_err();
        assert!(why.contains("DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE=\"yes\" is not that value"), "{why}");
    }
}
