//! A keyring read in one round trip fewer than the `secret-service` crate
//! makes, for the common case: this user's bus, this user's service, one
//! unlocked item. Anything else is left to the crate's path in `mod.rs`,
//! which also says why a bus or service is refused.

use super::attributes;
use super::bus::{self, BUS_NAME};

/// What the short read path learned.
pub(super) enum FastRead {
    Found(Vec<u8>),
    Absent,
    Ambiguous(usize),
    /// Locked items, no `plain` session, a bus error: the crate's path
    /// (unlock prompts, the encrypted session, its error messages) decides.
    Unsettled,
}

const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_INTERFACE: &str = "org.freedesktop.Secret.Item";

/// A read in one round trip fewer than `secret-service` makes: `OpenSession`
/// and `SearchItems` do not depend on each other, so both are sent before
/// either answer is awaited, then `GetSecret` (0.2-0.3 ms, about 7% of a
/// keyring `get`; bench/RESULTS.md). Only for the `plain` session and
/// unlocked items; everything else is [`FastRead::Unsettled`].
pub(super) fn fast_read(name: &str) -> FastRead {
    use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
    type Session = (OwnedValue, OwnedObjectPath);
    type Found = (Vec<OwnedObjectPath>, Vec<OwnedObjectPath>);
    /// (session, parameters, value, content type)
    type SecretStruct = (OwnedObjectPath, Vec<u8>, Vec<u8>, String);

    let Some(stream) = bus::own_session_bus() else {
        crate::log::debug!("the session bus is not this user's (or not a Unix socket): no fast read");
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
        let (owner, (opened, searched)) = both(
            bus::service_owner(&conn),
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
        // Only a bus of this user's gets here, so its answer can be believed.
        if owner != bus::Peer::Uid(crate::fsutil::current_uid()) {
            crate::log::debug!("the Secret Service is not this user's: no fast read");
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
                        crate::log::debug!("read the keyring item for {name} over a plain session");
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
