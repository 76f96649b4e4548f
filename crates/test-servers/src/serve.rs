//! What both servers share: binding 127.0.0.1, the accept loop that gives
//! every request its own thread (so one hanging request never blocks the
//! others) and a door where a test may hold them ([`crate::hold`]),
//! stopping on drop, and building replies.

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::hold::{Gate, Hold};

/// A server's request handling and its stop flag.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answers one request (on its own thread).
    fn handle(&self, request: tiny_http::Request);
    /// Set when the server stops; long waits inside a handler poll it.
    fn stopped(&self) -> &AtomicBool;
}

/// A running accept loop; dropping it stops the server.
pub(crate) struct Serving<H: Handler> {
    pub(crate) handler: Arc<H>,
    server: Arc<tiny_http::Server>,
    acceptor: Option<JoinHandle<()>>,
    port: u16,
    gate: Arc<Gate>,
}

impl<H: Handler> Serving<H> {
    /// Serves `server` with `handler` until dropped.
    pub(crate) fn start(server: tiny_http::Server, handler: H) -> Serving<H> {
        let server = Arc::new(server);
        let port = server.server_addr().to_ip().map(|a| a.port()).expect("a TCP listener");
        let handler = Arc::new(handler);
        let gate = Arc::new(Gate::default());
        let (s, h, g) = (Arc::clone(&server), Arc::clone(&handler), Arc::clone(&gate));
        let acceptor = std::thread::spawn(move || {
            loop {
                match s.recv() {
                    Ok(request) => {
                        let (h, g) = (Arc::clone(&h), Arc::clone(&g));
                        std::thread::spawn(move || {
                            g.pass(&split_target(request.url()).0);
                            h.handle(request);
                        });
                    }
                    // `unblock` from Drop also lands here.
                    Err(_) if h.stopped().load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
        });
        Serving { handler, server, acceptor: Some(acceptor), port, gate }
    }

    /// The port the server listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Holds every following request to `path` until the [`Hold`] is
    /// released.
    pub(crate) fn hold(&self, path: &str) -> Hold {
        Hold::start(&self.gate, path)
    }
}

impl<H: Handler> Drop for Serving<H> {
    fn drop(&mut self) {
        self.handler.stopped().store(true, Ordering::SeqCst);
        self.gate.open();
        self.server.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Plain HTTP on 127.0.0.1:`port` (0: any free port).
///
/// # Errors
/// The port cannot be bound.
pub(crate) fn bind_http(port: u16) -> Result<tiny_http::Server, String> {
    tiny_http::Server::from_listener(listener(port)?, None)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))
}

/// A listener on 127.0.0.1:`port` whose connections send without Nagle's
/// delay, as production servers do (nginx's `tcp_nodelay on`): tiny_http
/// writes a TLS response in several records, and with Nagle each waits for
/// the client's delayed ACK, adding 40 ms to a request that takes 5. The
/// option is set on the listener because tiny_http never shows us the
/// accepted sockets; Linux, macOS and Windows copy it to them.
fn listener(port: u16) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY on 127.0.0.1:{port}: {e}"))?;
    Ok(listener)
}

/// HTTPS on 127.0.0.1:`port` with a PEM certificate chain and PKCS#8 key.
///
/// # Errors
/// The port cannot be bound or the key pair is unusable.
pub(crate) fn bind_https(port: u16, cert_pem: &str, key_pem: &str) -> Result<tiny_http::Server, String> {
    let ssl = tiny_http::SslConfig {
        certificate: cert_pem.as_bytes().to_vec(),
        private_key: key_pem.as_bytes().to_vec(),
    };
    tiny_http::Server::from_listener(listener(port)?, Some(ssl))
        .map_err(|e| format!("cannot listen with TLS on 127.0.0.1:{port}: {e}"))
}

/// Locks a mutex whatever a panicking thread left in it: a failing test
/// must not wedge the server for the others.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A reply with any body.
pub(crate) type Reply = tiny_http::Response<Box<dyn Read + Send>>;

/// A reply with a body held in memory and its length declared.
pub(crate) fn reply(status: u16, content_type: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Reply {
    let len = body.len();
    let mut headers = vec![header("Content-Type", content_type)];
    headers.extend(extra.iter().map(|(k, v)| header(k, v)));
    tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        Box::new(Cursor::new(body)),
        Some(len),
        None,
    )
}

/// A JSON reply.
pub(crate) fn json_reply(status: u16, body: &serde_json::Value, extra: &[(&str, &str)]) -> Reply {
    reply(status, "application/json", body.to_string().into_bytes(), extra)
}

/// A header; values are ours or test-chosen, and one that cannot be encoded
/// degrades to empty rather than failing the reply.
pub(crate) fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .or_else(|()| tiny_http::Header::from_bytes(name.as_bytes(), &b""[..]))
        .expect("header names are ASCII constants")
}

/// `path` and `query` of a request target.
pub(crate) fn split_target(url: &str) -> (String, String) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    (path.to_string(), query.to_string())
}

/// A request header by case-insensitive name.
pub(crate) fn request_header(request: &tiny_http::Request, name: &str) -> Option<String> {
    let found = request.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name));
    found.map(|h| h.value.to_string())
}
